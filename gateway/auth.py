"""Who is asking, and may they: the one place hgwire decides read, write and create.

Three pieces, all used by the transports and never by the backends:

- ``Authorizer`` decides whether a user (``None`` = anonymous) may read, write or
  create a repository over a transport.  The decision is an ordered table of
  rules (``Authorizer.rules``); the ``--config`` policy (``gateway.policy``) is
  one more row, and every transport keeps asking the same ``check``.
- ``AuthorizedKeys`` reads an OpenSSH ``authorized_keys`` file for the SSH
  server and names the user of each key.
- ``Htpasswd`` reads an Apache-style password file for HTTP Basic auth.

**authorized_keys** (``--authorized-keys FILE``): one key per line,
``[options] TYPE BASE64 [COMMENT]``, as sshd(8) "AUTHORIZED_KEYS FILE FORMAT".
The user is the hgwire-specific option ``user="NAME"`` when present, otherwise
the first word of the comment (``ssh-ed25519 AAAA... alice`` is ``alice``).  A
key with neither is skipped.  ``restrict``, ``no-pty``,
``no-port-forwarding``, ``no-agent-forwarding``, ``no-X11-forwarding`` and
``no-user-rc`` are accepted (hgwire grants none of those anyway).
``expiry-time="YYYYMMDD[HHMM[SS]][Z]"`` refuses the key from that time on (the
server's time zone, or UTC with ``Z``), as sshd does.  ``from="pattern-list"`` is honoured as sshd honours it with its default
``UseDNS no``: the client's IP address must match one of the patterns (``*``
and ``?`` wildcards, ``addr/len`` networks) and none of the negated ones
(``!pattern``); a host name pattern never matches an address; a line with a network whose
address has bits set past its length (``127.1.2.3/8``) is skipped, as sshd refuses its key.  A key listed on
several lines is accepted if any of its lines allows the address.  A
``cert-authority`` line (with ``principals="a,b"`` maybe) trusts the OpenSSH user
certificates its key signs, whose principal is then the user
(``AuthorizedKeys._certificate_user``).  A gitolite line,
``command="/path/gitolite-shell alice",no-pty,... ssh-ed25519 AAAA...`` (or
gitolite 2's ``gl-auth-command alice``), is the user the command names, so the
``authorized_keys`` gitolite wrote serves as it is: gitolite's shell would only
have run git commands as that user, and hgwire runs nothing else (what the user
may do is hgwire's rules, not gitolite's).  A line of Mercurial's ``hg-ssh``,
``command="hg-ssh [--read-only] team/app other/repo",no-pty,... ssh-ed25519 AAAA... alice``,
keeps what hg-ssh allowed: that key reaches only the repositories it lists (names under
``--root``), only with ``hg`` (``hg -R NAME serve --stdio``; no git, no ``hg init``), and
with ``--read-only`` never pushes (``KeyRestriction``), on top of hgwire's own rules for
its user (``user=`` or the comment, as for any key).  A line sshd forced to one repository,
``command="hg -R team/app serve --stdio"``, reaches that one alike (pushes included).  A key with any other option (any
other ``command=``, an hg-ssh line that needs a shell: ``cd DIR && hg-ssh ...``, globs,
``~``, quotes, an absolute path) is skipped with a logged reason, because hgwire cannot
honour the restriction it asks for.  The file is re-read when it
changes, so keys can be added without a restart.

**htpasswd** (``--htpasswd FILE``): ``user:hash`` lines.  Only bcrypt
(``$2y$``/``$2b$``/``$2a$``) and, when ``argon2-cffi`` is installed, argon2
(``$argon2id$``...) hashes are accepted; plaintext, crypt, MD5 (``$apr1$``)
and SHA entries are refused with a logged reason.  Create an entry with::

    htpasswd -B -C 12 FILE alice          # apache2-utils; -c creates FILE
    python3 -c 'import bcrypt, getpass; print("alice:" + bcrypt.hashpw(getpass.getpass().encode(), bcrypt.gensalt()).decode())' >> FILE

Checking a password costs a bcrypt/argon2 round (tens of milliseconds), so
call ``Htpasswd.check`` through ``gateway.threads.run_blocking``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import enum
import fnmatch
import functools
import hashlib
import hmac
import importlib
import ipaddress
import itertools
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import bcrypt
from twisted.conch.ssh import keys as conch_keys

from backends.interfaces import Kind
from backends.names import validate_name
from gateway.logs import SafeLogger
from protocols.errors import (
    HgwireError,
    HomePathRefused,
    PermissionDenied,
    ReadOnly,
    RepositoryNotFound,
    UnsafeName,
)
from protocols.forwarded import parse_ip
from protocols.ssh_cert import (
    USER_CERT,
    Certificate,
    CertificateError,
    critical_refusal,
    is_certificate,
    source_addresses,
)
from protocols.ssh_cert import parse as parse_certificate
from protocols.ssh_exec import from_home

if TYPE_CHECKING:
    from gateway.policy import Policy, PolicyFile, Protections

log = SafeLogger()


class Access(enum.Enum):
    """What a request does to a repository."""

    READ = "read"
    WRITE = "write"
    CREATE = "create"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One question to the authorizer."""

    user: str | None
    repo: str
    transport: str  # git-daemon | git-ssh | git-http | hg-ssh | hg-http
    access: Access
    names: tuple[str, ...] = ()
    """Every name of the repository the request reaches, as rules match them (``rule_names``);
    empty: ``repo`` alone."""
    reaches: bool | None = None
    """Whether ``repo`` reaches a repository, as the backend's ``locate`` said when ``names`` were
    made; None when it was not asked or could not say (``Authorizer.exists`` is asked then)."""


Rule = Callable[["Authorizer", AccessRequest], None]
"""A rule raises ``PermissionDenied`` (or ``ReadOnly``) to refuse; returning allows."""


def _refuse_writes_when_read_only(authorizer: Authorizer, request: AccessRequest) -> None:
    if authorizer.read_only and request.access is not Access.READ:
        raise ReadOnly("this server is read-only; pushes and repository creation are refused")


ANONYMOUS_PUSH_TRANSPORTS = frozenset({"git-daemon"})
"""Transports where nobody logs in: without a ``--config`` they push anonymously, as
``git daemon --enable=receive-pack``; with one, writes need a user the file names."""


def _writes_need_a_user(authorizer: Authorizer, request: AccessRequest) -> None:
    if request.user is not None or request.access is Access.READ:
        return
    if authorizer.policy is None and request.transport in ANONYMOUS_PUSH_TRANSPORTS:
        return
    how = "push over SSH or HTTP" if request.transport in ANONYMOUS_PUSH_TRANSPORTS else \
        "log in with an SSH key or an HTTP password"
    raise PermissionDenied(f"pushing to {request.repo} needs an authenticated user; {how}")


def _reads_need_a_user_unless_anonymous(authorizer: Authorizer, request: AccessRequest) -> None:
    if request.user is None and not authorizer.anonymous_read:
        raise PermissionDenied(f"reading {request.repo} needs an authenticated user")


def _the_policy_grants(authorizer: Authorizer, request: AccessRequest) -> None:
    if authorizer.policy is None:
        return
    policy = authorizer.policy.current
    if reason := policy.refusal(request):
        raise _existence_refusal(authorizer, policy, request) or PermissionDenied(reason)
    if request.access is not Access.READ or not policy.restricts_reading():
        return  # (nothing is hidden without a read list or a deny_read list: no lookup)
    if reason := _hidden_below(policy, request):
        if _reaches(authorizer, request) is False:
            raise PermissionDenied(reason)
    # (a name that reaches a repository is no directory of them: not looked into, which cost every
    # read of a repository 0.6 ms of the event loop, and an SSH greeting of 10,000 of them 6 s)
    elif request.reaches is not True and _holds_nothing_readable(authorizer, policy, request) \
            and _reaches(authorizer, request) is False:
        raise RepositoryNotFound(f"repository {request.repo} not found")


def _reaches(authorizer: Authorizer, request: AccessRequest) -> bool | None:
    """Whether the request's name reaches a repository: what ``locate`` said as its names were
    made, or else ``Authorizer.exists``."""
    return request.reaches if request.reaches is not None else authorizer.exists(request.repo)


FOLDER_SCAN_LIMIT = 64
"""Directory entries read below a directory a request names (and repositories asked of), to tell whether the
user may read any of them (``_holds_nothing_readable``): on the event loop, a few ``stat`` calls each."""


def _holds_nothing_readable(authorizer: Authorizer, policy: Policy, request: AccessRequest) -> bool:
    """Whether ``request.repo`` reaches a directory (no repository) in which the user may read no
    repository: it is then answered as a name nothing is at, "not found", on every transport.  It
    was "team is not a git or Mercurial repository", telling someone a rule on ``*/plans`` keeps
    from ``team/plans`` that ``team`` exists.  Asked of the backend's optional
    ``names_below(name, limit)``, only where some rule has a read list (the caller then asks
    whether the name reaches a repository); a directory holding a repository the user may read is
    still "not a … repository"."""
    below = authorizer.names_below
    if below is None:
        return False
    name = request.repo.strip("/")
    # (the folders names_below may find: NAME, NAME.git and NAME without .git, as a request reaches them)
    folders = dict.fromkeys(folder + "/" for folder in (name, name + ".git", name.removesuffix(".git")))
    if all(policy.reads_nothing_below(request.user, folder) for folder in folders):
        # the rules alone refuse every name below: only whether it is a folder is asked, for the time
        # the answer takes to be a missing name's (its entries, up to 64 checked, told it was a folder)
        limit = 0
    else:
        limit = FOLDER_SCAN_LIMIT
    try:
        names = below(request.repo, limit)
    except Exception:  # noqa: BLE001 - the directory is answered as the backend answers it
        return False
    if names is None:
        return False
    for name in names:
        reading = AccessRequest(request.user, name, request.transport, Access.READ,
                                authorizer.rule_names(name, reading=True))
        if policy.refusal(reading) is None:
            return False
    return True


def _hidden_below(policy: Policy, request: AccessRequest) -> str | None:
    """A read of ``request.repo`` refused as one of a repository below it would be (``private``
    under a read list on ``private/*`` or ``private/plans``), or None.  Asked of a name that
    reaches no repository: a directory of them was "not a git or Mercurial repository" where a
    name nothing is at was "not found", telling who may read none of them that the directory
    exists; both are now refused alike (a glob that first matches at a later segment,
    ``*/plans``, is not seen)."""
    name = request.repo.strip("/")
    for prefix in dict.fromkeys((name + "/", name.removesuffix(".git") + "/")):  # (git's app.git reaches app/)
        for rule in policy.read_rules_below(prefix):
            if rule.pattern.startswith(prefix):
                below = rule.pattern
            elif fnmatch.fnmatchcase(prefix + "\x00", rule.pattern):  # a glob that matches anything below
                below = prefix + "\x00"
            else:
                continue
            if reason := policy.refusal(replace(request, names=(below,))):
                return reason
    return None


PUSH_CREATES = frozenset({"git-daemon", "git-ssh", "git-http"})
"""Transports whose create is a push to a name that is not there (``--create-on-push``), maybe
mistyped, not a request to create (``hg init``, which the policy's words answer)."""


def _existence_refusal(authorizer: Authorizer, policy: Policy, request: AccessRequest) -> HgwireError | None:
    """A refused write or create whose real cause is whether the repository exists, said so to a user
    who may read the name (to anyone else the refusal says nothing of which names exist): a push to
    one that does not exist is "not found", as without ``--config``, or under ``--create-on-push``
    that it does not exist and the user may not create it (not "may not push"); a create of one that
    does (``hg init``) says it exists, as hg does (not "may not create").  None: the policy's words."""
    if request.access is Access.READ:
        return None
    reading = replace(request, access=Access.READ, names=authorizer.rule_names(request.repo, reading=True))
    if policy.refusal(reading) is not None:
        return None
    exists = _reaches(authorizer, request)
    if exists is None:
        return None
    if request.access is Access.CREATE:
        if exists:
            return HgwireError(f"repository {request.repo} already exists")
        return _may_not_create(request) if request.transport in PUSH_CREATES else None
    if exists:
        return None
    if not authorizer.create_on_push:
        return RepositoryNotFound(f"repository {request.repo} not found")
    creating = policy.refusal(replace(request, access=Access.CREATE))
    return None if creating is None else _may_not_create(request)


def _may_not_create(request: AccessRequest) -> RepositoryNotFound:
    return RepositoryNotFound(f"repository {request.repo} does not exist, and {request.user or 'an anonymous user'} "
                              "may not create it; check the name, or ask the server's operator to create it")


DEFAULT_RULES: tuple[Rule, ...] = (
    _refuse_writes_when_read_only,
    _writes_need_a_user,
    _reads_need_a_user_unless_anonymous,
    _the_policy_grants,
)


@dataclass(frozen=True)
class Authorizer:
    """Decide read/write/create; every rule must pass (the first refusal wins)."""

    read_only: bool = False
    anonymous_read: bool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES
    policy: PolicyFile | None = None
    """The ``--config`` rules (``gateway.policy``); with them, ``anonymous_read`` is the file's."""
    locate: Callable[[str], tuple[str, Kind] | None] | None = None
    """The backend's ``locate`` (optional): the stored name and kind of the repository a request
    for a name reaches, so that rules see every name that reaches it (``rule_names``)."""
    create_on_push: bool = False
    """``--create-on-push``: a push to a repository that does not exist may make it."""
    names_below: Callable[[str, int], list[str] | None] | None = None
    """The backend's ``names_below`` (optional): the repositories inside the directory a name
    reaches, at most so many, or None when it reaches none (``_holds_nothing_readable``)."""

    def check(self, user: str | None, repo: str, transport: str, access: Access) -> None:
        """Return if allowed; raise ``PermissionDenied``/``ReadOnly`` with the reason otherwise."""
        names, reaches = self._names_and_reach(repo, reading=access is Access.READ)
        request = AccessRequest(user, repo, transport, access, names, reaches)
        for rule in self.rules:
            rule(self, request)

    def protections(self, repo: str) -> Protections | None:
        """The protected refs, branches and bookmarks of ``repo``; None without a policy."""
        return None if self.policy is None else self.policy.current.protections_for(self.rule_names(repo))

    def rule_names(self, repo: str, reading: bool = False) -> tuple[str, ...]:
        """The names rules are matched on for a request naming ``repo``: that name, and for a
        repository that exists, its stored name and, for a git repository, both ``NAME`` and
        ``NAME.git`` (git clients may say either: a rule for ``app.git`` holds for ``app`` too).
        ``reading``, for a name that reaches nothing: ``NAME.git`` too, the repository a git client
        saying ``NAME`` would reach, so that a read list on ``secret.git`` refuses ``secret``
        whether or not ``secret.git`` exists (answered "not found" when it did not, the answer told
        anyone it kept out whether it does).  Looked up only under a ``--config`` policy (a few
        ``stat`` calls)."""
        return self._names_and_reach(repo, reading)[0]

    def _names_and_reach(self, repo: str, reading: bool) -> tuple[tuple[str, ...], bool | None]:
        """``rule_names``, and whether ``repo`` reaches a repository (None: not asked, or
        ``locate`` refused the name or failed), from one ``locate``."""
        if self.policy is None or self.locate is None:
            return (repo,), None
        try:
            located = _located(self.locate, repo, raising=True)
        except Exception:  # noqa: BLE001 - as _located without raising: logged there, the name asked for
            located, reaches = None, None
        else:
            reaches = located is not None
        names = [repo]
        if located is None and reading:
            names.append(repo.strip("/").removesuffix(".git") + ".git")
        if located is not None:
            stored, kind = located
            names.append(stored)
            if kind is Kind.GIT:  # (a rule matches a name and that name without .git: NAME is in NAME.git)
                names.append(stored.strip("/").removesuffix(".git") + ".git")
        return tuple(dict.fromkeys(names)), reaches

    def readable_starts(self, user: str | None) -> tuple[str, ...] | None:
        """What the names of the repositories ``user`` may read begin with (``Policy.readable_starts``),
        for a listing to read only the folders those lie in; None where that is not bounded (no
        ``--config``, rules that grant reading everywhere, or rules of the Authorizer's own)."""
        if self.policy is None or _the_policy_grants not in self.rules:
            return None
        return self.policy.current.readable_starts(user)

    def exists(self, repo: str) -> bool | None:
        """Whether a request for ``repo`` reaches a repository (``locate``); None when the backend
        cannot say or refuses the name (it is refused where it is opened)."""
        if self.locate is None:
            return None
        try:
            return _located(self.locate, repo, raising=True) is not None
        except Exception:  # noqa: BLE001 - as in _located
            return None

    def allows(self, user: str | None, repo: str, transport: str, access: Access) -> bool:
        try:
            self.check(user, repo, transport, access)
        except HgwireError:  # a permission refused, or a push to a repository that is not there
            return False
        return True


SLOW_LOCATE = 0.25
"""Seconds past which a backend's ``locate`` is warned of: it runs on the reactor's thread (the rules
are asked there), where every connection of the service waits for it."""
LOCATE_WARNING_INTERVAL = 60.0
"""At most one warning of a slow or failing ``locate`` in this many seconds (it runs per request)."""
_locate_warned: dict[str, float] = {}
_clock = time.monotonic


def _located(locate: Callable[[str], tuple[str, Kind] | None], repo: str,
             raising: bool = False) -> tuple[str, Kind] | None:
    """The backend's ``locate(repo)``; None when it refuses the name (refused again where it is opened).
    A ``locate`` that takes long (a backend asking a database or the network) holds up the whole
    service and one that raises anything but hgwire's errors is a bug the rules would silently pass
    over: both are logged, at most once a minute, with what to do.  ``raising``: an exception is
    raised after it is logged."""
    started = _clock()
    try:
        found = locate(repo)
    except HgwireError:  # a name the backend refuses is refused where it is opened
        if raising:
            raise
        return None
    except Exception as exc:  # a bug in a backend's locate: logged, then taken as a refusal
        if _locate_warning_due("failed"):
            log.failure("the backend's locate({repo!r}) raised {error}; access rules were matched on the name "
                        "asked for only: fix the backend (locate returns None for a name it does not hold)",
                        repo=repo, error=type(exc).__name__)
        if raising:
            raise
        return None
    took = _clock() - started
    if took > SLOW_LOCATE and _locate_warning_due("slow"):
        log.warn("the backend's locate({repo!r}) took {seconds:.2f} s on the service's event loop, where every "  # noqa: G010
                 "connection waited for it: make locate answer from memory or a few stat calls",
                 repo=repo, seconds=took)
    return found


def _locate_warning_due(what: str) -> bool:
    now = _clock()
    last = _locate_warned.get(what)
    if last is not None and now - last < LOCATE_WARNING_INTERVAL:
        return False
    _locate_warned[what] = now
    return True


# --- authorized_keys -------------------------------------------------------------------------

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
"""Key types accepted in authorized_keys (no DSA: OpenSSH dropped it)."""
KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")
"""How a word naming a key type (accepted or not) begins."""

IGNORED_KEY_OPTIONS = frozenset(
    {"restrict", "no-pty", "no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding", "no-user-rc"}
)
"""Options that only take away what hgwire never grants."""

USER_OPTION = "user"
FROM_OPTION = "from"
EXPIRY_OPTION = "expiry-time"
CA_OPTION = "cert-authority"
PRINCIPALS_OPTION = "principals"
COMMAND_OPTION = "command"
KNOWN_KEY_OPTIONS = frozenset({USER_OPTION, FROM_OPTION, EXPIRY_OPTION, CA_OPTION, PRINCIPALS_OPTION, COMMAND_OPTION,
                               *IGNORED_KEY_OPTIONS})
GITOLITE_SHELLS = frozenset({"gitolite-shell", "gl-auth-command"})
"""The forced commands of gitolite 3 and 2: ``PROGRAM [-s] USER`` names the key's user."""
HG_SSH = "hg-ssh"
"""Mercurial's restricted login command: ``hg-ssh [--read-only] REPO...``."""
HG_SSH_TRANSPORT = "hg-ssh"
HG_SERVE = "hg serve"
"""A forced ``hg -R NAME serve --stdio`` (sshd's one-repository Mercurial key): that repository alone."""
_HG_REPOSITORY_FLAGS = frozenset({"-R", "--repository", "--repo"})
"""hg's spellings of its repository option (``-RNAME`` and ``--repo=NAME`` too:
``_hg_serve_restriction``).  hg itself serves only ``-R NAME serve --stdio`` to a forced command
(any other spelling aborts "potentially unsafe serve --stdio invocation"); hgwire honours each as
naming that one repository."""
GIT_SHELL = "git-shell"
"""git's restricted login shell, as a forced command: ``git-shell -c "$SSH_ORIGINAL_COMMAND"``."""
GIT_SSH_TRANSPORT = "git-ssh"
_ORIGINAL_COMMAND = frozenset({'"$SSH_ORIGINAL_COMMAND"', '"${SSH_ORIGINAL_COMMAND}"'})
MAX_KEY_REPOSITORIES = 1024
_SHELL_CHARACTERS = frozenset("*?[]{}~$`'\"\\;&|<>()#")
"""What a shell would expand, quote or run in an ``hg-ssh`` command line: hgwire runs no shell."""
MAX_FROM_PATTERNS = 256
MAX_KEYS_FILE_BYTES = 4 * 1024 * 1024
MAX_USER_LENGTH = 64
_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@+-]*\Z")
_USER_PUNCTUATION = frozenset("._@+-")
_SHOWS_NOTHING = frozenset(map(chr, (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, *range(0x180B, 0x1810), 0x3164,
                                     *range(0xFE00, 0xFE10), 0xFFA0, *range(0xE0100, 0xE01F0))))
"""The letters and marks among Unicode's default-ignorable code points (a grapheme joiner,
variation selectors, Hangul fillers): they show nothing, so a user name may not hold them (the
others, format characters, are refused by their category)."""
PLAIN_NAMES = (f"letters and digits of any script (bøb, josé), _ and . @ + - (not first: . @ + -), at most "
               f"{MAX_USER_LENGTH} of them; no space, no control or invisible character, no other punctuation")
"""What a user name may hold (in hooks' REMOTE_USER, logs and rules), told where one is refused."""


def plain_user(name: str) -> str | None:
    """``name`` as hgwire keeps a user name, or None if it is not one (``PLAIN_NAMES``).

    Beyond ASCII, a name is taken in Unicode's composed form (NFC): ``josé`` typed on one system
    and ``jose`` + a combining accent from another are one user, in the password file, the keys
    file, the rules, the logs and the hooks' ``REMOTE_USER`` (UTF-8).  Letters (any script),
    combining marks (not first) and digits pass; spaces, controls, invisible format characters
    (bidi marks), symbols and punctuation other than ``. _ @ + -`` do not, so a name cannot
    break a ``user:hash`` line, an ``authorized_keys`` option, a rule's ``@group``/``*``, a log
    line or a hook's shell."""
    if name.isascii():
        return name if len(name) <= MAX_USER_LENGTH and _USER_RE.match(name) else None
    name = unicodedata.normalize("NFC", name)
    if not name or len(name) > MAX_USER_LENGTH:
        return None
    for position, char in enumerate(name):
        category = unicodedata.category(char)
        if char in _SHOWS_NOTHING:
            return None
        if category[0] in "LN" or char == "_":
            continue
        if position and (category[0] == "M" or char in _USER_PUNCTUATION):
            continue
        return None
    return name
_OPTION_RE = re.compile(r'([A-Za-z0-9-]+)(?:="((?:[^"\\]|\\.)*)")?(?:,|(?=\s)|\Z)')


class KeyLineError(ValueError):
    """One authorized_keys line that is skipped, with the reason to log."""


@dataclass(frozen=True, slots=True)
class KeyRestriction:
    """What an ``hg-ssh`` line lets its key do: hg over SSH to the repositories it lists, and
    nothing but reading with ``--read-only``; or a ``git-shell`` line: git over SSH only, wherever
    the user's rights reach.  A rule (``Rule``): it only ever takes away."""

    repos: frozenset[str]
    read_only: bool = False
    program: str = HG_SSH
    """The forced command it stands for: ``hg-ssh`` or ``git-shell``."""
    hidden: bool = False
    """A forced ``hg -R NAME serve --stdio --hidden``: each session asks for the hidden changesets
    (``forces_hidden``), as sshd's hg then serves them whatever the client asked."""

    def __call__(self, authorizer: Authorizer, request: AccessRequest) -> None:
        if self.program == GIT_SHELL:
            if request.transport != GIT_SSH_TRANSPORT:
                raise PermissionDenied(f"this SSH key may only run git ({GIT_SHELL} in authorized_keys); "
                                       "ask the server's operator for a key without that restriction")
            return
        shown = self._shown()
        if request.transport != HG_SSH_TRANSPORT:
            raise PermissionDenied(f"this SSH key may only run Mercurial ({shown} in authorized_keys); "
                                   f"ask the server's operator for a key without that restriction")
        if request.repo not in self.repos:
            raise PermissionDenied(self._unreached(request.repo))
        if request.access is Access.CREATE:
            raise PermissionDenied(f"this SSH key may not create repositories ({shown} in authorized_keys)")
        if self.read_only and request.access is not Access.READ:
            raise ReadOnly(f"this SSH key may only read {request.repo} ({shown} --read-only in authorized_keys)")

    def _shown(self) -> str:
        """The forced command as the operator wrote it, to name in a refusal."""
        if self.program == HG_SERVE:
            return f"hg -R {min(self.repos)} serve --stdio" + (" --hidden" if self.hidden else "")
        return HG_SSH

    def _unreached(self, repo: str) -> str:
        """Why ``repo`` is refused: sshd ran the forced ``hg serve`` whatever the client named, so its
        user learns the one name that reaches it now."""
        if self.program == HG_SERVE:
            served = min(self.repos)
            return (f"this SSH key serves {served} alone ({self._shown()} in authorized_keys): "
                    f"use ssh://HOST/{served}")
        return f"this SSH key may not reach {repo}: its authorized_keys line ({HG_SSH}) names the repositories it may reach"


def restricted(authorizer: Authorizer, restriction: KeyRestriction | None) -> Authorizer:
    """``authorizer`` with the key's restriction as one more rule (itself without one)."""
    return authorizer if restriction is None else replace(authorizer, rules=(*authorizer.rules, restriction))


def forces_hidden(authorizer: Authorizer) -> bool:
    """Whether the login's key forces ``hg -R NAME serve --stdio --hidden``: its sessions ask for the
    hidden changesets as ``hg pull --remote-hidden`` does, given only to a user the repository's
    ``[experimental] server.allow-hidden-access`` names (hg checks the account's user there)."""
    return any(isinstance(rule, KeyRestriction) and rule.hidden for rule in authorizer.rules)


@dataclass(frozen=True, slots=True)
class AuthorizedKey:
    user: str
    key_type: str
    blob: bytes
    sources: tuple[str, ...] | None = None
    """The ``from=`` patterns, or None: any address."""
    expires: float | None = None
    """``expiry-time=``: the POSIX time from which the key is refused, or None."""
    ca: bool = False
    """``cert-authority``: the key signs user certificates (it does not log in itself)."""
    principals: tuple[str, ...] | None = None
    """``principals=`` of a certificate authority: the certificate must name one of them."""
    restriction: KeyRestriction | None = None
    """An ``hg-ssh`` line's repositories and ``--read-only``; None: the user's own rights."""

    def allows(self, address: str | None, now: float | None = None) -> bool:
        """Whether a client at ``address`` (an IP address; None: unknown) may use this key now."""
        if self.expires is not None and (time.time() if now is None else now) >= self.expires:
            return False
        return self.sources is None or (address is not None and from_allows(self.sources, address))


_EXPIRY_FORMATS = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def parse_expiry(value: str | None) -> float:
    """sshd's ``expiry-time``: ``YYYYMMDD[HHMM[SS]]``, in the server's time zone, or in UTC with a ``Z``."""
    text = (value or "").strip()
    utc = text.endswith(("Z", "z"))
    digits = text[:-1] if utc else text
    layout = _EXPIRY_FORMATS.get(len(digits))
    try:
        if layout is None or not digits.isdigit():
            raise ValueError(text)
        moment = datetime.datetime.strptime(digits, layout)
    except ValueError:
        raise KeyLineError('expiry-time must be YYYYMMDD[HHMM[SS]][Z], e.g. expiry-time="20270101"') from None
    return moment.replace(tzinfo=datetime.UTC).timestamp() if utc else moment.timestamp()


def from_allows(patterns: Sequence[str], address: str) -> bool:
    """sshd's ``from=`` match with ``UseDNS no``: a negated pattern that matches refuses, otherwise
    a pattern that matches allows; patterns are matched against the IP address alone.  A network
    whose address has bits set past its length (``127.1.2.3/8``) makes the whole list refuse, as
    sshd's "inconsistent mask length" does, negated or not (``_parse_from`` skips such a line)."""
    parsed = parse_ip(address)
    if parsed is None:
        return False
    ip = str(parsed)
    allowed = False
    networks = {pattern: _network(pattern.lstrip("!")) for pattern in patterns if "/" in pattern}
    if None in networks.values():
        return False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        network = networks.get(pattern)
        matched = parsed in network if network is not None else \
            fnmatch.fnmatchcase(ip, body.lower().replace("[", "[[]"))
        if matched and negated:
            return False
        allowed = allowed or matched
    return allowed


def cidr_list_allows(entries: Sequence[str], address: str | None) -> bool:
    """A certificate's ``source-address``, as sshd checks it: each entry an address or an
    ``addr/len`` network (no wildcard, no negation, no bit set past the length), one of them
    holding ``address``; any other entry refuses the certificate."""
    parsed = None if address is None else parse_ip(address)
    if parsed is None or not entries:
        return False
    allowed = False
    for entry in entries:
        network = _network(entry if "/" in entry else entry + ("/128" if ":" in entry else "/32"))
        if network is None:
            return False
        allowed = allowed or parsed in network
    return allowed


@functools.lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An ``addr/len`` network, parsed once; None if it is not one or its address has bits set past
    its length (sshd matches nothing with ``127.1.2.3/8``: it does not mean 127.0.0.0/8)."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


def _parse_from(value: str | None) -> tuple[str, ...]:
    patterns = tuple(p.strip() for p in (value or "").split(","))
    if not value or len(patterns) > MAX_FROM_PATTERNS or not all(p and p != "!" for p in patterns):
        raise KeyLineError('from= needs a list of address patterns, e.g. from="10.0.0.0/8,192.0.2.*"')
    for pattern in patterns:
        body = pattern.lstrip("!")
        if "/" not in body or _network(body) is not None:
            continue
        try:
            network = ipaddress.ip_network(body, strict=False)
        except ValueError:
            raise KeyLineError(f"from= pattern {body[:60]!r} is not a valid address/length") from None
        raise KeyLineError(f"from= pattern {body[:60]!r} has bits set past its length, so sshd matches no "
                           f"address with it (and refuses the key): write {network} if that is meant")
    return patterns


def parse_key_line(line: str) -> AuthorizedKey | None:
    """Parse one authorized_keys line; None for blanks and comments, ``KeyLineError`` if unusable."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    options: dict[str, str | None] = {}
    first = line.split(None, 1)[0]
    if first.startswith(KEY_TYPE_PREFIXES) and first not in KEY_TYPES:
        raise KeyLineError(f"key type {first[:40]!r} is not supported")
    if first not in KEY_TYPES:
        options, line = _parse_options(line)
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise KeyLineError("no supported key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*)")
    blob = _decode_blob(parts[1])
    ca = CA_OPTION in options
    if PRINCIPALS_OPTION in options and not ca:
        raise KeyLineError("principals= belongs to a cert-authority line")
    if ca and USER_OPTION in options:
        raise KeyLineError("a cert-authority line names no user: the certificate's principal is the user")
    if ca and COMMAND_OPTION in options:
        raise KeyLineError("a cert-authority line with command= cannot be honoured by hgwire")
    restriction = _forced_restriction(options[COMMAND_OPTION]) if COMMAND_OPTION in options else None
    user = "" if ca else _user_of(options, parts[2] if len(parts) > 2 else "", restriction is not None)
    sources = _parse_from(options[FROM_OPTION]) if FROM_OPTION in options else None
    expires = parse_expiry(options[EXPIRY_OPTION]) if EXPIRY_OPTION in options else None
    principals = _parse_principals(options[PRINCIPALS_OPTION]) if PRINCIPALS_OPTION in options else None
    return AuthorizedKey(user, parts[0], blob, sources, expires, ca, principals, restriction)


def _parse_principals(value: str | None) -> tuple[str, ...]:
    names = tuple(unicodedata.normalize("NFC", p.strip()) for p in (value or "").split(","))
    if not value or not all(names) or len(names) > MAX_FROM_PATTERNS:
        raise KeyLineError('principals= needs a list of names, e.g. principals="alice,bob"')
    return names


def _parse_options(line: str) -> tuple[dict[str, str | None], str]:
    options: dict[str, str | None] = {}
    position = 0
    while position < len(line) and not line[position].isspace():
        match = _OPTION_RE.match(line, position)
        if match is None:
            raise KeyLineError("malformed options")
        name, value = match.group(1).lower(), match.group(2)
        if name not in KNOWN_KEY_OPTIONS:  # quoted as written, and only its beginning (a pasted secret?)
            raise KeyLineError(f"option {shown_token(match.group(1))} cannot be honoured by hgwire")
        options[name] = None if value is None else value.replace('\\"', '"')
        position = match.end()
    return options, line[position:]


def _decode_blob(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyLineError("key is not valid base64") from None


def _hg_ssh_restriction(command: str | None) -> KeyRestriction | None:
    """The restriction of an ``hg-ssh`` forced command; None for another command (gitolite's).

    The names are hgwire's repository names (under ``--root``), as hg-ssh's paths were relative
    to the account's home (``~/repo3`` and ``./repo3`` too, the home's as over SSH); anything else a
    shell would have expanded cannot be honoured."""
    words = (command or "").split()
    if not words or words[0].rsplit("/", 1)[-1] != HG_SSH:
        return None
    arguments = words[1:]
    read_only = arguments[:1] == ["--read-only"]
    if read_only:
        arguments = arguments[1:]
    if not arguments:
        raise KeyLineError(f"command= runs {HG_SSH} without a repository")
    if len(arguments) > MAX_KEY_REPOSITORIES:
        raise KeyLineError(f"command= runs {HG_SSH} with more than {MAX_KEY_REPOSITORIES} repositories")
    return KeyRestriction(frozenset(_forced_name(HG_SSH, written) for written in arguments), read_only)


def _forced_name(program: str, written: str) -> str:
    """A repository a forced command names, as hgwire names it: its path was relative to the
    account's home (``~/repo3`` and ``./repo3`` too, the home's as over SSH), the root here;
    anything a shell would have expanded, or an absolute path, cannot be honoured."""
    path = from_home(written)
    if any(ch in _SHELL_CHARACTERS for ch in path):
        raise KeyLineError(f"command= runs {program} with {path[:80]!r}, which needs a shell: hgwire runs "
                           "none; list each repository by its name under --root")
    if path.startswith("/"):
        raise KeyLineError(f"command= runs {program} with the absolute path {path[:80]!r}: name the "
                           "repository as it is named under --root")
    try:
        return validate_name(path)
    except UnsafeName as bad:
        said = bad.over("ssh", "team/project") if isinstance(bad, HomePathRefused) else str(bad)
        raise KeyLineError(f"command= runs {program} with {path[:80]!r}: {said}") from None


def _forced_restriction(command: str | None) -> KeyRestriction | None:
    """What a forced command lets its key do (hg-ssh, ``hg -R NAME serve --stdio``, git-shell);
    None for gitolite's, which names the user instead."""
    return _hg_ssh_restriction(command) or _hg_serve_restriction(command) or _git_shell_restriction(command)


def _hg_serve_restriction(command: str | None) -> KeyRestriction | None:
    """A forced ``hg -R NAME serve --stdio`` (also ``-RNAME``, ``--repository[=]NAME`` and ``--repo[=]NAME``,
    after ``serve`` too): sshd
    served NAME to the key whatever the client asked, pushes included, and ran nothing else; None
    for another command.  ``--hidden`` after ``serve``, which hg accepts there (``hg pull
    --remote-hidden`` sends it), is honoured as hg serves it: every session asks for the hidden
    changesets, which the hgrc's ``server.allow-hidden-access`` grants or not.  Another option of
    hg's (``--config``...) cannot be honoured."""
    words = (command or "").split()
    if not words or words[0].rsplit("/", 1)[-1] != "hg":
        return None
    rest: list[str] = []
    repos: list[str] = []
    arguments = iter(words[1:])
    for word in arguments:
        flag, equals, value = word.partition("=")
        if word in _HG_REPOSITORY_FLAGS:
            repos.append(next(arguments, ""))
        elif equals and flag in _HG_REPOSITORY_FLAGS and flag.startswith("--"):
            repos.append(value)
        elif word.startswith("-R") and len(word) > 2:  # (-RNAME, as hg reads a short option's value)
            repos.append(word[2:])
        else:
            rest.append(word)
    if rest == ["serve"] and len(repos) == 1:
        raise KeyLineError("command= runs hg serve without --stdio, which serves no SSH client: "
                           "write command=\"hg -R NAME serve --stdio\"")
    hidden = rest[2:] == ["--hidden"]
    if rest[:2] != ["serve", "--stdio"] or len(rest) != 2 + hidden or len(repos) != 1:
        return None
    return KeyRestriction(frozenset({_forced_name(HG_SERVE, repos[0])}), program=HG_SERVE, hidden=hidden)


def _git_shell_restriction(command: str | None) -> KeyRestriction | None:
    """A ``git-shell -c "$SSH_ORIGINAL_COMMAND"`` forced command (a key moved from a git-shell
    account): git's commands only, as git-shell runs; None for another program.  git-shell without
    the client's command runs nothing a key could use: refused."""
    words = (command or "").split()
    if not words or words[0].rsplit("/", 1)[-1] != GIT_SHELL:
        return None
    if len(words) != 3 or words[1] != "-c" or words[2] not in _ORIGINAL_COMMAND:
        raise KeyLineError(f'command= runs {GIT_SHELL} without -c "$SSH_ORIGINAL_COMMAND", which lets no git '
                           f'command through; write command="{GIT_SHELL} -c \\"$SSH_ORIGINAL_COMMAND\\""')
    return KeyRestriction(frozenset(), program=GIT_SHELL)


def _gitolite_user(command: str | None) -> str:
    """The user of a gitolite forced command (``/home/git/bin/gitolite-shell alice``); ``KeyLineError``
    for any other command, whose restriction hgwire cannot honour."""
    words = (command or "").split()
    program = words[0].rsplit("/", 1)[-1] if words else ""
    arguments = words[1:]
    if arguments[:1] == ["-s"]:  # gitolite's "this user may also have a shell": hgwire gives none anyway
        arguments = arguments[1:]
    if program not in GITOLITE_SHELLS:
        shown = (words[0] if words else "")[:80]
        if any(word.rsplit("/", 1)[-1] == HG_SSH for word in words):
            raise KeyLineError(f"command= runs {HG_SSH} through a shell ({shown!r} first), which hgwire "
                               f"cannot honour: write command=\"{HG_SSH} [--read-only] NAME...\" with the "
                               "repositories' names under --root")
        raise KeyLineError(f"command= runs {shown!r}, which hgwire cannot honour (only gitolite's "
                           f"'gitolite-shell USER', Mercurial's '{HG_SSH} [--read-only] NAME...' or "
                           f"'hg -R NAME serve --stdio', and '{GIT_SHELL} -c \"$SSH_ORIGINAL_COMMAND\"')")
    if len(arguments) != 1:
        raise KeyLineError(f"command= runs {program} without exactly one user name")
    return arguments[0]


def _user_of(options: Mapping[str, str | None], comment: str, hg_ssh: bool) -> str:
    """The key's user: gitolite's forced command names it; else (``hg_ssh`` too) ``user=`` or the comment."""
    if COMMAND_OPTION in options and not hg_ssh:
        user = _gitolite_user(options[COMMAND_OPTION])
        if options.get(USER_OPTION) not in (None, user):
            raise KeyLineError(f"user= names another user than command= ({user[:MAX_USER_LENGTH]!r})")
    else:
        user = options.get(USER_OPTION) or (comment.split() or [""])[0]
    if not user:
        raise KeyLineError('no user: add a comment or a user="NAME" option')
    plain = plain_user(user)
    if plain is None:
        raise KeyLineError(f"user name {user[:MAX_USER_LENGTH]!r} is not a plain name ({_why_not_plain(user)}): "
                           'give the line user="NAME" with such a name')
    return plain


NOT_UTF8 = "it is not UTF-8: save the file in UTF-8 (iconv -f latin1 -t utf-8)"


def _why_not_plain(user: str) -> str:
    """Why ``user`` is not a plain name: a file read as UTF-8 that was not (Latin-1), or ``PLAIN_NAMES``."""
    return NOT_UTF8 if "\ufffd" in user else PLAIN_NAMES


def _skipped_blob(line: str) -> bytes | None:
    """The key blob of a line ``parse_key_line`` refused, when one can be told: a word naming a key
    type followed by base64 whose own type field is that word (options may hold anything)."""
    words = line.split()
    for kind, text in itertools.pairwise(words):
        if not kind.startswith(KEY_TYPE_PREFIXES):
            continue
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            continue
        name = kind.encode("utf-8", "replace")
        if blob.startswith(len(name).to_bytes(4, "big") + name):
            return blob
    return None


@dataclass(frozen=True, slots=True)
class ParsedKeys:
    """An authorized_keys file read: its usable lines by key blob, and why the lines of other
    keys were skipped (the first such line's reason), for the login that offers such a key."""

    keys: dict[bytes, list[AuthorizedKey]]
    skipped: dict[bytes, str]


PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
"""The first line of a private key (OpenSSH's, PEM's, PKCS#8's), pasted where a public one belongs."""
_PRIVATE_KEY_BODY = re.compile(r"[A-Za-z0-9+/=]*\Z|[A-Za-z-]+: ")
"""A line inside such a key: base64 (or blank), or a PEM header (``Proc-Type: 4,ENCRYPTED``)."""
SHOWN_TOKEN = 20
"""At most this many characters of a word hgwire cannot read are quoted in the log: such a word
may be a secret pasted in (a private key, a password)."""


def private_key_blocks(lines: Sequence[str]) -> list[tuple[int, int]]:
    """The (first, last) line numbers (from 1) of each private key pasted among ``lines``: from its
    ``-----BEGIN ... PRIVATE KEY-----`` to its ``-----END`` line, or to its last base64 line when
    the end is missing."""
    blocks: list[tuple[int, int]] = []
    index = 0
    while index < len(lines):
        if not PRIVATE_KEY_BEGIN.match(lines[index].strip()):
            index += 1
            continue
        first = last = index
        while last + 1 < len(lines):
            following = lines[last + 1].strip()
            if not following.startswith("-----END") and not _PRIVATE_KEY_BODY.match(following):
                break
            last += 1
            if following.startswith("-----END"):
                break
        blocks.append((first + 1, last + 1))
        index = last + 1
    return blocks


def shown_token(word: str) -> str:
    """``word`` quoted for the log, cut to ``SHOWN_TOKEN`` characters."""
    return repr(word[:SHOWN_TOKEN]) + ("…" if len(word) > SHOWN_TOKEN else "")


def parse_authorized_keys(text: str, source: str = "authorized_keys") -> ParsedKeys:
    """Map key blob → its usable lines (one user); log why any other line is skipped (a private
    key pasted in: one line naming its lines, none of its content)."""
    keys: dict[bytes, list[AuthorizedKey]] = {}
    skipped: dict[bytes, str] = {}
    lines = text.splitlines()
    hidden: set[int] = set()
    for first, last in private_key_blocks(lines):
        log.warn("{source}: lines {first}–{last} look like a private key, not a public one: remove them (and "  # noqa: G010
                 "treat that key as exposed)", source=source, first=first, last=last)
        hidden.update(range(first, last + 1))
    for number, line in enumerate(lines, start=1):
        if number in hidden:
            continue
        try:
            key = parse_key_line(line)
        except KeyLineError as reason:
            log.warn("{source}:{line}: key skipped: {reason}", source=source, line=number, reason=reason)  # noqa: G010
            blob = _skipped_blob(line)
            if blob is not None:
                skipped.setdefault(blob, f"its authorized_keys line {number} was skipped: {reason}")
            continue
        if key is None:
            continue
        known = keys.setdefault(key.blob, [])
        if known and (known[0].user != key.user or known[0].ca != key.ca):
            log.warn("{source}:{line}: key already belongs to {user}; skipped", source=source,
                     line=number, user=known[0].user)
            continue
        known.append(key)
    return ParsedKeys(keys, {blob: why for blob, why in skipped.items() if blob not in keys})


def file_stamp(status: os.stat_result) -> tuple[int, ...]:
    """What tells one version of a reloaded file from another: its device and inode (a file moved
    over it), its size and mtime, and its ctime, which ``cp -p``, ``touch -r``, tar or a store that
    sets every mtime to 1 cannot set back, so that a file replaced by one of the same size and mtime
    is read again (it kept a removed key logging in until a restart)."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class _ReloadingFile:
    """A small text file parsed again whenever it changes (``file_stamp``; blocking: use the pool)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._stamp: tuple[int, ...] | None = None
        self._text = ""

    def text(self) -> tuple[str, bool]:
        """The current contents and whether they changed since the last call."""
        try:
            with open(self.path, "rb") as file:  # the stamp and the text of one and the same file
                status = os.fstat(file.fileno())
                stamp = file_stamp(status)
                if stamp == self._stamp:
                    return self._text, False
                if status.st_size > self._max_bytes:
                    raise OSError(f"{self.path} is larger than {self._max_bytes} bytes")
                data = file.read(self._max_bytes + 1)
        except FileNotFoundError:
            log.warn("{path} does not exist; nobody can authenticate", path=str(self.path))  # noqa: G010
            changed, self._stamp, self._text = self._stamp is not None, None, ""
            return self._text, changed
        if len(data) > self._max_bytes:
            raise OSError(f"{self.path} is larger than {self._max_bytes} bytes")
        self._text = data.decode("utf-8", errors="replace")
        self._stamp = stamp
        return self._text, True


UNKNOWN_KEY = "unknown key"
NOT_FROM_A_PERMITTED_HOST = "not from a permitted host"
EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a key does not log in (``AuthorizedKeys.decide``): ``UNKNOWN_KEY``,
    ``NOT_FROM_A_PERMITTED_HOST``, ``EXPIRED``, ``certificate refused: ...`` or, for a key
    whose only lines were skipped, ``its authorized_keys line N was skipped: ...``."""

    reason: str


class AuthorizedKeys:
    """The keys of ``--authorized-keys``: who, if anyone, owns a public key blob."""

    def __init__(self, path: Path) -> None:
        self._file = _ReloadingFile(path, MAX_KEYS_FILE_BYTES)
        self._keys = ParsedKeys({}, {})

    @property
    def path(self) -> Path:
        return self._file.path

    def user_for(self, blob: bytes, address: str | None = None) -> str | None:
        """The user of ``blob`` for a client at ``address`` (its ``from=`` allowing); None if none.

        Blocking (it may re-read the file): call through ``run_blocking``."""
        login = self.login_for(blob, address)
        return None if login is None else login[0]

    def login_for(self, blob: bytes, address: str | None = None) -> tuple[str, KeyRestriction | None] | None:
        """``user_for``'s user and the restriction of the line that let the key in (sshd's
        first line that allows the client); None if none.  Blocking, as ``user_for``."""
        decided = self.decide(blob, address)
        return None if isinstance(decided, Refused) else decided

    def decide(self, blob: bytes, address: str | None = None,
               now: float | None = None) -> tuple[str, KeyRestriction | None] | Refused:
        """``login_for``, or why the key is refused (``Refused``).  Blocking, as ``user_for``."""
        text, changed = self._file.text()
        if changed:
            self._keys = parse_authorized_keys(text, str(self._file.path))
        moment = time.time() if now is None else now
        if is_certificate(blob):
            return self._certificate_user(blob, address, moment)
        lines = [key for key in self._keys.keys.get(blob, []) if not key.ca]  # a CA's own key does not log in
        for key in lines:
            if key.allows(address, moment):
                return key.user, key.restriction
        if not lines:  # a key whose line was skipped is named so in the login line, not "unknown key"
            return Refused(self._keys.skipped.get(blob, UNKNOWN_KEY))
        log.warn("the key of {user} was offered from {address}, which its from= or expiry-time= does not allow",  # noqa: G010
                 user=lines[0].user, address=address or "an unknown address")
        expired = all(key.expires is not None and moment >= key.expires for key in lines)
        return Refused(EXPIRED if expired else NOT_FROM_A_PERMITTED_HOST)

    def _certificate_user(self, blob: bytes, address: str | None, now: float | None = None) -> tuple[str, None] | Refused:
        """The user an OpenSSH user certificate logs in as, as sshd checks one against a
        ``cert-authority`` line: signed by that CA (whose own ``from=`` and ``expiry-time=`` allow the
        client), a user certificate, valid now, its ``source-address`` allowing the client, no
        critical option hgwire cannot honour, and a principal (one of the line's ``principals=``
        when it has them) that is a plain user name: the first such one is the user."""
        try:
            cert = parse_certificate(blob)
        except CertificateError as bad:
            log.warn("an SSH certificate was refused: {reason}", reason=str(bad))  # noqa: G010
            return Refused(f"certificate refused: {bad}")
        moment = time.time() if now is None else now
        lines = [key for key in self._keys.keys.get(cert.ca_blob, []) if key.ca and key.allows(address, moment)]
        reason = _certificate_refusal(cert, lines, address, moment)
        if reason is None:
            for line in lines:
                plain = [p for p in map(plain_user, cert.principals) if p is not None]
                user = next((p for p in plain if line.principals is None or p in line.principals), None)
                if user is not None:
                    return user, None
            reason = "no principal of the certificate is one its authority's line allows (or a plain user name)"
        log.warn("the SSH certificate {key_id} from {address} was refused: {reason}",  # noqa: G010
                 key_id=cert.key_id, address=address or "an unknown address", reason=reason)
        return Refused(f"certificate refused: {reason}")


def _certificate_refusal(cert: Certificate, lines: Sequence[AuthorizedKey], address: str | None,
                         now: float) -> str | None:
    if not lines:
        return "its authority is not a cert-authority line of --authorized-keys (or does not allow this address)"
    if cert.cert_type != USER_CERT:
        return "it is not a user certificate"
    if not cert.valid_at(now):
        return "it is not valid now"
    refusal = critical_refusal(cert)
    if refusal is not None:
        return refusal
    sources = source_addresses(cert)
    if sources is not None and not cidr_list_allows(sources, address):
        return "its source-address does not allow this address"
    try:
        authority = conch_keys.Key.fromString(cert.ca_blob)
        if not authority.verify(cert.signature, cert.signed):
            return "its authority's signature does not verify"
    except (conch_keys.BadKeyError, ValueError) as bad:
        return f"its authority's key or signature cannot be read ({bad})"
    return None


# --- htpasswd --------------------------------------------------------------------------------

MAX_HTPASSWD_BYTES = 4 * 1024 * 1024
MAX_PASSWORD_BYTES = 1024
_CACHE_SIZE = 1024

Verifier = Callable[[bytes, bytes], bool]


def _verify_bcrypt(password: bytes, hashed: bytes) -> bool:
    if len(password) > 72:  # bcrypt ignores (old) or refuses (bcrypt 5) the rest; never a match
        return False
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


def _argon2_verifier() -> Verifier | None:
    try:
        argon2 = importlib.import_module("argon2")
    except ImportError:
        return None
    hasher = argon2.PasswordHasher()
    failures = (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, ValueError)

    def verify(password: bytes, hashed: bytes) -> bool:
        try:
            return bool(hasher.verify(hashed.decode("ascii"), password))
        except failures:
            return False

    return verify


@dataclass(frozen=True)
class HashScheme:
    prefixes: tuple[str, ...]
    verifier: Verifier | None
    refusal: str = ""


def hash_schemes() -> tuple[HashScheme, ...]:
    """Recognised hash prefixes → verifier, or None with the reason the entry is refused."""
    argon2 = _argon2_verifier()
    weak = "is not accepted; use bcrypt (htpasswd -B)"
    return (
        HashScheme(("$2y$", "$2b$", "$2a$"), _verify_bcrypt),
        HashScheme(("$argon2id$", "$argon2i$", "$argon2d$"), argon2,
                   "" if argon2 else "is argon2 but argon2-cffi is not installed"),
        HashScheme(("$apr1$", "$1$"), None, f"is MD5-crypt, which {weak}"),
        HashScheme(("{SHA}",), None, f"is unsalted SHA-1, which {weak}"),
        HashScheme(("$5$", "$6$"), None, f"is SHA-crypt, which {weak}"),
    )


def _scheme_for(hashed: str, schemes: Sequence[HashScheme]) -> HashScheme:
    for scheme in schemes:
        if hashed.startswith(scheme.prefixes):
            return scheme
    return HashScheme((), None, "is plaintext or DES crypt, which is not accepted; use bcrypt (htpasswd -B)")


@dataclass(frozen=True, slots=True)
class ParsedPasswords:
    """An htpasswd file read: its usable entries by user, and why the entries of other users were
    skipped, for the login of such a user (its refusal's log line says why, not only "wrong")."""

    entries: dict[str, tuple[Verifier, bytes]]
    skipped: dict[str, str]


def parse_htpasswd(text: str, schemes: Sequence[HashScheme], source: str = "htpasswd") -> ParsedPasswords:
    """Map user → (verifier, hash) for entries with an accepted hash; log why others are refused."""
    entries: dict[str, tuple[Verifier, bytes]] = {}
    skipped: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            log.warn("{source}:{line}: entry refused: not a 'user:hash' line", source=source, line=number)
            continue
        plain = plain_user(user)
        if plain is None:
            log.warn(  # noqa: G010
                "{source}:{line}: entry refused: user name {user} is not a plain name ({plain})", source=source,
                line=number, user=repr(user[:MAX_USER_LENGTH]), plain=_why_not_plain(user))
            skipped.setdefault(user, f"its --htpasswd line {number} was skipped: the user name is not a plain name "
                                     f"({_why_not_plain(user)})")
            continue
        user = plain
        if user in first:  # Apache's and nginx's basic authentication take a user's first line too
            log.warn(  # noqa: G010
                "{source}:{line}: a second entry for {user} is ignored: line {first} is the one used; remove one of them",
                source=source, line=number, user=user, first=first[user])
            continue
        first[user] = number
        scheme = _scheme_for(hashed, schemes)
        if scheme.verifier is None:
            log.warn("{source}:{line}: entry for {user} refused: the hash {reason}", source=source,
                     line=number, user=user, reason=scheme.refusal)
            skipped.setdefault(user, f"its --htpasswd line {number} was skipped: the hash {scheme.refusal}")
            continue
        entries[user] = (scheme.verifier, hashed.encode("ascii", "replace"))
    return ParsedPasswords(entries, {user: why for user, why in skipped.items() if user not in entries})


class Htpasswd:
    """The users of ``--htpasswd``; ``check`` is blocking (hashing), call it in the pool."""

    def __init__(self, path: Path) -> None:
        self._file = _ReloadingFile(path, MAX_HTPASSWD_BYTES)
        self._schemes = hash_schemes()
        self._entries: dict[str, tuple[Verifier, bytes]] = {}
        self._skipped: dict[str, str] = {}
        self._cache_key = secrets.token_bytes(32)
        self._recent: dict[bytes, None] = {}
        self._decoy_hash: bytes | None = None

    def _decoy(self) -> bytes:
        """A bcrypt hash of a random password at the cost of the file's first bcrypt entry."""
        if self._decoy_hash is None:
            costs = [int(h[4:6]) for _, h in self._entries.values() if h[:4] in (b"$2y$", b"$2b$", b"$2a$")]
            rounds = min(max(costs[0] if costs else 4, 4), 16)  # nothing to mimic: cheapest
            self._decoy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=rounds))
        return self._decoy_hash

    @property
    def path(self) -> Path:
        return self._file.path

    def refresh(self) -> None:
        """Read the file again if it changed (logging the entries it refuses); ``OSError`` if it
        cannot be read (then nobody logs in).  Blocking: call through ``run_blocking``."""
        text, changed = self._file.text()
        if changed:
            parsed = parse_htpasswd(text, self._schemes, str(self._file.path))
            self._entries, self._skipped = parsed.entries, parsed.skipped
            self._recent.clear()
            self._decoy_hash = None

    def skipped(self, user: str) -> str | None:
        """Why ``user``'s entry was skipped when the file was read (a hash hgwire refuses); None if it was not."""
        return self._skipped.get(user)

    def check(self, user: str, password: str) -> bool:
        """True when ``password`` is the user's; good answers are cached (keyed HMAC) per file version.
        ``OSError`` when the file cannot be read (``refresh``)."""
        self.refresh()
        entry = self._entries.get(user)
        secret = password.encode("utf-8")
        if len(secret) > MAX_PASSWORD_BYTES:
            return False
        if entry is None:  # spend the same time as for a known user: no user enumeration by timing
            _verify_bcrypt(secret[:72], self._decoy())
            return False
        verifier, hashed = entry
        token = hmac.new(self._cache_key, b"\0".join((user.encode(), hashed, secret)), hashlib.sha256).digest()
        if token in self._recent:
            return True
        if not verifier(secret, hashed):
            return False
        if len(self._recent) >= _CACHE_SIZE:
            self._recent.pop(next(iter(self._recent)))
        self._recent[token] = None
        return True
