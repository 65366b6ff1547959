"""The ``--config FILE`` policy: users, groups, per-repository rules, protected refs, limits.

The file is TOML (read with ``tomllib``)::

    anonymous_read = true                      # default for repositories whose rules say nothing of read
    protected_refs = ["refs/heads/main"]       # everywhere: no force-push, no deletion

    [groups]
    admins = ["root"]
    dev = ["alice", "bob"]
    interns = ["bob"]

    [users]
    carol = ["dev"]                            # the same membership, written from the user's side

    [[repo]]
    pattern = "*"                              # glob on the repository name; * also crosses /
    write = ["@admins"]
    create = ["@admins"]

    [[repo]]
    pattern = "team/*"
    read = ["*"]                               # any authenticated user; "anonymous" for everyone
    write = ["@dev"]
    protected_refs = ["refs/tags/*", { pattern = "refs/heads/release/*", no_direct_push = true }]
    protected_branches = ["default", { pattern = "stable", no_direct_push = true }]  # hg named branches
    protected_bookmarks = ["main"]             # hg bookmarks: no deletion, no non-fast-forward move

    [[repo]]
    pattern = "team/secret"
    deny_read = ["@interns"]                   # whatever any rule grants; also deny_write, deny_create

    [git]
    export_all = false                         # git:// and HTTP serve only git repositories marked with
                                               # git-daemon-export-ok, as git daemon without --export-all
    archives = ["gz", "zip"]                   # git archive downloads over HTTP (none by default)

    [limits]                                   # see gateway.limits for every key and its default
    max_request_body = 104857600
    max_connections_per_address = 32
    idle_timeout = 300.0

Every ``[[repo]]`` whose pattern matches grants what it lists (grants add up),
and every deny list of a matching rule takes away what it names, whatever any
rule grants; denies are checked first, as hgweb checks ``deny_read`` before
``allow_read`` (``deny_read`` refuses reading, writing and creating,
``deny_write`` writing and creating, ``deny_create`` creating), and, as in hgweb,
a deny list that names anyone refuses anonymous requests too.  Writing and
creating are denied unless a rule grants them; write implies read.  Reading
follows ``anonymous_read`` (and any authenticated user may read) unless a
matching rule has a ``read`` list, in which case only the listed principals
(and writers) may read.  A principal is
a user name, ``@group``, ``*`` (any authenticated user) or, in ``read`` and deny
lists, ``anonymous``.  Globs are ``fnmatch`` patterns where ``*`` also matches ``/``;
a pattern ``team/app`` also matches ``team/app.git``, and rules are matched on every name of the
repository a request reaches (``Authorizer.rule_names``: ``app`` and ``app.git`` of a git one).

Protections (``protected_refs``, ``protected_branches``, ``protected_bookmarks``;
enforced by ``gateway.protected``) are a pattern string or a ``{ pattern = "...",
no_direct_push = true }`` table; those of every matching rule add up.  A
protected git ref or hg bookmark may not be deleted or moved to a commit that
does not descend from its old one.  A protected hg named branch (matched with
the same globs) may not end a push with more heads than it had before (closed
heads count; a new branch may appear with one head), even when the client
forces the push, and may not get a changeset that closes a head.
``no_direct_push`` refuses any move of the ref or bookmark, and any new
changeset on the branch.  A refused hg push lands nothing.

``PolicyFile`` keeps the last good policy: a broken file is logged and ignored
until it is fixed.  ``PolicyReloader`` re-reads it when it changes (checked
every ``RELOAD_INTERVAL`` seconds, in the worker pool) and on SIGHUP.
Command-line flags override the file: ``--read-only`` refuses every write
whatever the file grants.
"""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import fnmatch
import os
import re
import signal
import threading
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import Any

from twisted.application import service
from twisted.internet import task

from backends.git_maintenance import AUTO_PACK_LIMIT, BITMAP_MIN_OBJECTS
from backends.interfaces import Kind
from gateway.auth import Access, AccessRequest, Authorizer, file_stamp
from gateway.config import ServiceConfig
from gateway.logs import SafeLogger
from gateway.shared_streams import KEEP_NOTHING, KeepBounds
from gateway.threads import run_blocking
from protocols.errors import RepositoryNotFound
from protocols.forwarded import (
    HEADERS,
    UNIX_PEER,
    X_FORWARDED_FOR,
    Network,
    Trusted,
    in_networks,
    parse_network,
)
from protocols.hg_http import ENGINE_NONE, WireSettings

log = SafeLogger()

MAX_POLICY_BYTES = 1024 * 1024
RELOAD_INTERVAL = 2.0
"""Seconds between two looks at the policy file's modification time."""

ANYONE = "*"
ANONYMOUS = "anonymous"
GROUP_PREFIX = "@"


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file, the key and the fix."""


# --- the policy as values ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Protection:
    """One protected name pattern: no force-push (non-fast-forward), no deletion, optionally no push at all."""

    pattern: str
    no_direct_push: bool = False

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern)


@dataclass(frozen=True, slots=True)
class Protections:
    """The protected git refs, hg named branches and hg bookmarks of one repository."""

    refs: tuple[Protection, ...] = ()
    branches: tuple[Protection, ...] = ()
    bookmarks: tuple[Protection, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.refs or self.branches or self.bookmarks)

    def merged(self, other: Protections) -> Protections:
        return Protections(self.refs + other.refs, self.branches + other.branches, self.bookmarks + other.bookmarks)


def first_match(protections: Iterable[Protection], name: str) -> Protection | None:
    """The strictest protection covering ``name`` (``no_direct_push`` first), or None."""
    matching = [p for p in protections if p.matches(name)]
    return max(matching, key=lambda p: p.no_direct_push, default=None)


@dataclass(frozen=True, slots=True)
class RepoRule:
    """One ``[[repo]]`` table."""

    pattern: str
    read: frozenset[str] | None = None
    write: frozenset[str] = frozenset()
    create: frozenset[str] = frozenset()
    protections: Protections = Protections()
    deny_read: frozenset[str] = frozenset()
    """Who may not read (nor write, nor create) what the pattern matches, whatever any rule grants."""
    deny_write: frozenset[str] = frozenset()
    """Who may not push to (nor create) what the pattern matches, whatever any rule grants; reading stays."""
    deny_create: frozenset[str] = frozenset()
    """Who may not create what the pattern matches, whatever any rule grants."""

    @property
    def restricts_reading(self) -> bool:
        """Whether the rule keeps anyone from reading: a read list, or a ``deny_read`` list."""
        return self.read is not None or bool(self.deny_read)

    def matches(self, repo: str) -> bool:
        name = repo.strip("/")
        alias = name.removesuffix(".git")
        return fnmatch.fnmatchcase(name, self.pattern) or fnmatch.fnmatchcase(alias, self.pattern)


KEPT_GRANTS = 1024
"""Users whose granting rules a policy keeps (``Policy._granting``); past these it starts over."""

GLOB_CHARACTERS = "*?["
"""What makes a rule's pattern a glob (``fnmatch``); a pattern without any is one name."""


def literal_start(pattern: str) -> str:
    """The part of ``pattern`` before its first glob character: every name it matches begins so."""
    cut = min((at for at in map(pattern.find, GLOB_CHARACTERS) if at >= 0), default=len(pattern))
    return pattern[:cut]


def _matches_all_from(pattern: str, prefix: str) -> bool:
    """Whether ``pattern`` matches every name that begins with ``prefix``: its literal start
    begins ``prefix`` and only ``*`` follow (``*``, ``team/*``)."""
    start = literal_start(pattern)
    rest = pattern[len(start):]
    return bool(rest) and rest.count("*") == len(rest) and prefix.startswith(start)


def _may_match_below(pattern: str, prefix: str) -> bool:
    """Whether ``pattern`` may match a name (or that name with ``.git``, as ``RepoRule.matches``
    does) that begins with ``prefix``; True where it cannot be told from its literal start."""
    start = literal_start(pattern)
    if start == pattern:  # one name, and that name with .git
        return pattern.startswith(prefix) or (pattern + ".git").startswith(prefix)
    return start.startswith(prefix) or prefix.startswith(start)


def _without_git_part(start: str) -> str:
    """``start`` less a trailing part of ``.git`` (``app.g`` -> ``app``): a rule matches a git
    repository stored as ``app`` under its name ``app.git`` too (``Authorizer.rule_names``)."""
    for part in (".git", ".gi", ".g", "."):
        if start.endswith(part):
            return start[:-len(part)]
    return start


class RuleIndex:
    """The ``[[repo]]`` rules of a policy by the literal start of their patterns, so that a
    request tries only the rules that can match its names: with 2,000 rules (one per team and per
    repository) each access check matched every pattern, several times a request and on the event
    loop (3.5 ms for an anonymous read), and the index page or an SSH greeting that checks 10,000
    repositories took 25 s.  A name is looked up once per distinct length of those starts."""

    def __init__(self, rules: Sequence[RepoRule]) -> None:
        self._rules = tuple(rules)
        self._by_start: dict[str, list[int]] = {}
        for at, rule in enumerate(self._rules):
            self._by_start.setdefault(literal_start(rule.pattern), []).append(at)
        self._lengths = sorted({len(start) for start in self._by_start})
        readers = [(rule.pattern, at) for at, rule in enumerate(self._rules) if rule.restricts_reading]
        self._read_patterns = sorted(readers)
        self._read_keys = [pattern for pattern, _ in self._read_patterns]
        self.denies = any(rule.deny_read or rule.deny_write or rule.deny_create for rule in self._rules)
        """Whether any rule has a deny list (without one, no request looks for them)."""
        self.deny_readers = tuple(rule for rule in self._rules if rule.deny_read)
        """The rules with a ``deny_read`` list."""
        self._read_everywhere_from = frozenset(
            literal_start(rule.pattern) for rule in self._rules
            if rule.read is not None and _matches_all_from(rule.pattern, literal_start(rule.pattern)))

    def read_list_everywhere_below(self, prefix: str) -> bool:
        """Whether a rule with a read list matches every name that begins with ``prefix``
        (``*``, ``team/*`` for ``team/``)."""
        return any(prefix[:length] in self._read_everywhere_from for length in range(len(prefix) + 1))

    def _candidates(self, name: str, into: set[int]) -> None:
        for length in self._lengths:
            if length > len(name):
                break
            found = self._by_start.get(name[:length])
            if found is not None:
                into.update(found)

    def matching(self, names: Iterable[str]) -> list[RepoRule]:
        """The rules matching any of ``names`` (``RepoRule.matches``), in their order."""
        candidates: set[int] = set()
        wanted = []
        for name in names:
            stripped = name.strip("/")
            wanted.append(name)
            self._candidates(stripped, candidates)
            alias = stripped.removesuffix(".git")
            if alias != stripped:
                self._candidates(alias, candidates)
        return [rule for rule in (self._rules[at] for at in sorted(candidates))
                if any(rule.matches(name) for name in wanted)]

    @property
    def restricts_reading(self) -> bool:
        """Whether any rule keeps anyone from reading (``RepoRule.restricts_reading``)."""
        return bool(self._read_patterns)

    def read_rules_below(self, prefix: str) -> list[RepoRule]:
        """The rules with a read list or a ``deny_read`` list whose pattern starts with ``prefix``
        or matches ``prefix`` followed by anything, in their order (``_hidden_below``)."""
        found: set[int] = set()
        start = bisect.bisect_left(self._read_keys, prefix)
        for pattern, at in self._read_patterns[start:]:
            if not pattern.startswith(prefix):
                break
            found.add(at)
        below: set[int] = set()
        self._candidates(prefix + "\x00", below)
        found.update(at for at in below if self._rules[at].restricts_reading
                     and fnmatch.fnmatchcase(prefix + "\x00", self._rules[at].pattern))
        return [self._rules[at] for at in sorted(found)]


@dataclass(frozen=True, slots=True)
class Limits:
    """``[limits]``: None keeps the built-in bound.

    Each key takes effect for new connections and requests; ``gateway.limits``
    says where each one is enforced.
    """

    max_pkt_line: int | None = None
    max_request_body: int | None = None
    max_decompressed: int | None = None
    max_bundle2_part: int | None = None
    max_bundle2_chunk: int | None = None
    max_delta_result: int | None = None
    max_fulltext: int | None = None
    max_refs: int | None = None
    max_wants: int | None = None
    max_haves: int | None = None
    max_ref_prefixes: int | None = None
    max_auth_attempts: int | None = None
    max_connections_per_address: int | None = None
    max_connections: int | None = None
    max_sessions_per_user: int | None = None
    requests_per_minute: int | None = None
    idle_timeout: float | None = None
    request_timeout: float | None = None
    connection_timeout: float | None = None
    hg_lock_timeout: float | None = None
    hg_kept_repositories_bytes: int | None = None
    git_kept_refs_bytes: int | None = None
    annotate_max_revisions: int | None = None


HG_ENGINES = ("zstd", "zlib", "none")


@dataclass(frozen=True, slots=True)
class HgHttp:
    """``[hg_http]``: Mercurial over HTTP; None keeps the built-in choice (``protocols.hg_http.WireSettings``)."""

    compression: tuple[str, ...] | None = None
    """Engines in server preference order, from ``zstd``, ``zlib``, ``none``."""
    zstd_level: int | None = None
    zlib_level: int | None = None
    httppostargs: bool | None = None
    """Advertise ``httppostargs`` (off by default: hg cannot resend such a push after a 401)."""
    uncompressed_networks: tuple[Network, ...] = ()
    """Clients (over HTTP and SSH) whose answers go uncompressed where they accept it: ``none`` comes
    first in the server's order for them, as for a LAN or a build farm, where compressing costs
    both ends more time than the bytes it saves."""


@dataclass(frozen=True)
class GitSettings:
    """``[git]`` of the config file."""

    export_all: bool = True
    """False: over git:// and HTTP, only git repositories whose git directory holds
    ``git-daemon-export-ok`` are served, as by git daemon without ``--export-all`` and git
    http-backend without ``GIT_HTTP_EXPORT_ALL``; the others are answered as missing."""
    archives: frozenset[str] = frozenset()
    """The archive types (``zip``, ``gz``, ``bz2``) git repositories offer at hgweb's archive URLs
    over HTTP (none by default, as hgweb's ``allow-archive``)."""
    config: str | None = None
    """A git config file read before each git repository's own config, as git's receive-pack and
    upload-pack read the system's and the user's (``/etc/gitconfig``: ``receive.denyNonFastForwards``
    for every repository); None: only the repository's own."""


@dataclass(frozen=True)
class Maintenance:
    """``[maintenance]`` of the config file."""

    auto_pack_limit: int = AUTO_PACK_LIMIT
    """A git repository with this many packs is repacked after a push (0: never, nor for a bitmap)."""
    bitmap_min_objects: int = BITMAP_MIN_OBJECTS
    """A git repository whose packs hold this many objects and no bitmap is repacked (with one)
    after a push or a fetch that sent a pack (0: never)."""


@dataclass(frozen=True, slots=True)
class StatusReaders:
    """``[http] status_from``: the clients that read ``/.health``'s counts and ``/.metrics``."""

    networks: tuple[Network, ...] = ()
    unix: bool = False
    """Whether the clients of ``unix:`` listeners (``UNIX_PEER``) are among them."""

    def __contains__(self, host: object) -> bool:
        return (self.unix and host == UNIX_PEER) or in_networks(host, self.networks)


LOOPBACK_READERS = StatusReaders((parse_network("127.0.0.0/8"), parse_network("::1")))
"""``status_from``'s default: this host's own clients (a monitoring agent, ``curl`` on the host);
not ``unix:`` listeners, whose clients are a reverse proxy's, so anyone's."""


@dataclass(frozen=True)
class Policy:
    """A parsed policy file: decides access and names the protections of a repository."""

    source: str = "<none>"
    anonymous_read: bool = True
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    rules: tuple[RepoRule, ...] = ()
    protections: Protections = Protections()
    limits: Limits = Limits()
    hg_http: HgHttp = HgHttp()
    clone_cache: KeepBounds = KEEP_NOTHING
    """``[clone_cache]``: finished full-clone answers kept for the same request later (off by default)."""
    maintenance: Maintenance = Maintenance()
    """``[maintenance]``: when pushed packs are repacked."""
    git: GitSettings = GitSettings()
    """``[git]``: which git repositories git:// and HTTP serve."""
    public_url: str | None = None
    """``[http] public_url``: where clients reach the HTTP listener (``https://git.example.com``, a
    reverse proxy's address), for the URLs hgwire hands out over SSH (Git LFS)."""
    index: bool = True
    """``[http] index``: a browser at the server's root URL gets the list of the repositories it
    may read (False: the root says what the server is, as to anything else)."""
    hg_hgrc: str | None = None
    """``[hg] hgrc``: a Mercurial config file read before each repository's own ``.hg/hgrc``, as
    ``hg serve`` reads the system's (``HgRepo.base_hgrc``)."""
    trusted_proxies: Trusted = field(default_factory=Trusted)
    """``[http] trusted_proxies``: reverse proxies whose ``X-Forwarded-For``/``-Proto`` (or, with
    ``forwarded_header = "forwarded"``, RFC 7239 ``Forwarded``) are believed."""
    status_from: StatusReaders = LOOPBACK_READERS
    """``[http] status_from``: who reads ``/.health``'s counts and ``/.metrics`` (others get a bare
    ``ok``/``failing`` and a 404)."""

    _index: RuleIndex = field(init=False, repr=False, compare=False)
    """The rules by the literal start of their patterns (``RuleIndex``), built with the policy."""

    _reading_grants: dict[str | None, tuple[RepoRule, ...]] = field(init=False, repr=False, compare=False)
    """The rules that grant each user reading (``_granting``), asked so far."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", RuleIndex(self.rules))
        object.__setattr__(self, "_reading_grants", {})

    def matching(self, names: Iterable[str]) -> list[RepoRule]:
        """The rules matching any of ``names``, in the file's order, each once; only the rules
        whose pattern's literal start begins a name are tried (``RuleIndex``)."""
        return self._index.matching(names)

    def read_rules_below(self, prefix: str) -> list[RepoRule]:
        """The rules with a read list or a ``deny_read`` list whose pattern starts with ``prefix``
        (a directory's name and ``/``) or matches anything below it (``_hidden_below``), in the
        file's order."""
        return self._index.read_rules_below(prefix)

    def restricts_reading(self) -> bool:
        """Whether any rule has a read list or a ``deny_read`` list: without one, no name is
        hidden from anyone (``_the_policy_grants`` looks no further)."""
        return self._index.restricts_reading

    def readable_starts(self, user: str | None) -> tuple[str, ...] | None:
        """What the name of every repository ``user`` may read begins with (one of these, in name
        order, none the start of another), so that a listing for them (the SSH greeting, the web
        index) reads only the folders those lie in; None when the rules do not bound it.

        A name is read where a matching rule's ``read`` or ``write`` list names the user, or where
        no rule with a read list matches it (any authenticated user then reads it, and anyone under
        ``anonymous_read``).  So the names are bounded only when a read list matches every name
        (``pattern = "*"``), or for an anonymous user without ``anonymous_read``: then they begin
        with the literal start of a granting rule's pattern (``team17/`` of ``team17/*``), less a
        trailing part of ``.git`` (``app.git`` is the rule name of a git repository stored as
        ``app``).  A granting pattern that starts with a glob (``*/docs``) is read everywhere:
        None.  A ``deny_read`` that refuses the user everything below a start takes it away."""
        denying = self._denying(user)
        if any(_matches_all_from(rule.pattern, "") for rule in denying):
            return ()
        if not self._read_by_grant_only(user, ""):
            return None
        starts = set()
        for rule in self._granting(user):
            start = literal_start(rule.pattern)
            if not start:
                return None
            if not any(_matches_all_from(deny.pattern, start) for deny in denying):
                starts.add(_without_git_part(start))
        kept: list[str] = []
        for start in sorted(starts):
            if not (kept and start.startswith(kept[-1])):
                kept.append(start)
        return tuple(kept)

    def reads_nothing_below(self, user: str | None, prefix: str) -> bool:
        """Whether the rules alone refuse ``user`` every name that begins with ``prefix`` (a
        folder's name and ``/``): a read list (or ``anonymous_read = false`` for an anonymous
        user) holds everywhere below it and no rule that grants the user reading can match there,
        or a ``deny_read`` refusing the user matches everything below it."""
        if any(_matches_all_from(rule.pattern, prefix) for rule in self._denying(user)):
            return True
        if not self._read_by_grant_only(user, prefix):
            return False
        return not any(_may_match_below(rule.pattern, prefix) for rule in self._granting(user))

    def _denying(self, user: str | None) -> list[RepoRule]:
        """The rules whose ``deny_read`` refuses ``user`` (any that is not empty refuses an anonymous one)."""
        return [rule for rule in self._index.deny_readers if user is None or self._granted(user, rule.deny_read)]

    def _granting(self, user: str | None) -> tuple[RepoRule, ...]:
        """The rules that grant ``user`` reading (``_grants_reading``), in their order: found once
        a policy and user (a scan of 2,000 rules, 1.4 ms, is asked on the event loop of a name that
        reaches no repository), for at most ``KEPT_GRANTS`` users at a time."""
        kept = self._reading_grants
        found = kept.get(user)
        if found is None:
            if len(kept) >= KEPT_GRANTS:
                kept.clear()
            found = kept[user] = tuple(rule for rule in self.rules if self._grants_reading(user, rule))
        return found

    def _grants_reading(self, user: str | None, rule: RepoRule) -> bool:
        """Whether ``rule`` lets ``user`` read what it matches where read lists hold (its ``read``
        list, or its ``write`` list: writers read)."""
        return (rule.read is not None and self._granted(user, rule.read)) or self._granted(user, rule.write)

    def _read_by_grant_only(self, user: str | None, prefix: str) -> bool:
        """Whether ``user`` reads a name beginning with ``prefix`` only where a rule grants it: an
        anonymous user without ``anonymous_read``, or a read list matching every such name."""
        return (user is None and not self.anonymous_read) or self._index.read_list_everywhere_below(prefix)

    def _is(self, user: str | None, principal: str) -> bool:
        if principal == ANONYMOUS:
            return user is None
        if user is None:
            return False
        if principal == ANYONE:
            return True
        if principal.startswith(GROUP_PREFIX):
            return user in self.groups.get(principal[1:], frozenset())
        return principal == user

    def _granted(self, user: str | None, principals: Iterable[str]) -> bool:
        return any(self._is(user, p) for p in principals)

    def refusal(self, request: AccessRequest) -> str | None:
        """Why ``request`` is refused, or None when it is allowed (rules matching any of its names).
        The deny lists come first, as hgweb checks ``deny_read`` before ``allow_read``: a user one
        of them names is refused whatever any rule grants, in the words a missing grant gets."""
        matching = self.matching(request.names or (request.repo,))
        denied = self._denied(request.user, matching, request.access)
        writers = [] if denied else [p for r in matching for p in r.write]
        decide = _DECISIONS[request.access]
        return decide(self, request, matching, writers, denied)

    def _denied(self, user: str | None, matching: Sequence[RepoRule], access: Access) -> bool:
        """Whether a deny list of a matching rule refuses ``user`` this access.  An anonymous
        request is refused by any deny list that is not empty, as hgweb refuses it by a
        ``deny_read`` naming anyone: it may come from a user the list names who did not log in
        (git://, or HTTP, where clients send a password only once asked for one)."""
        if not self._index.denies:
            return False
        if user is None:
            return any(getattr(rule, key) for rule in matching for key in DENIALS[access])
        return any(self._granted(user, getattr(rule, key)) for rule in matching for key in DENIALS[access])

    def protections_for(self, names: Sequence[str]) -> Protections:
        """The protections of a repository known by ``names`` (``Authorizer.rule_names``)."""
        found = self.protections
        for rule in self.matching(names):
            found = found.merged(rule.protections)
        return found


DENIALS: Mapping[Access, tuple[str, ...]] = {
    Access.READ: ("deny_read",),
    Access.WRITE: ("deny_read", "deny_write"),
    Access.CREATE: ("deny_read", "deny_write", "deny_create"),
}
"""The deny lists that refuse each access: ``deny_read`` takes everything away, ``deny_write``
pushing and creating, ``deny_create`` creating only."""


def _decide_read(policy: Policy, request: AccessRequest, matching: Sequence[RepoRule], writers: list[str],
                 denied: bool) -> str | None:
    listed = [r.read for r in matching if r.read is not None]
    user = request.user
    if denied:
        allowed = False
    elif listed:
        allowed = policy._granted(user, [p for read in listed for p in read] + writers)
    else:
        allowed = user is not None or policy.anonymous_read
    if allowed:
        return None
    if user is None:
        return f"reading {request.repo} needs an authenticated user; log in with an SSH key or HTTP password"
    return f"{user} may not read {request.repo}; ask the server's operator for read access"


def _decide_write(policy: Policy, request: AccessRequest, matching: Sequence[RepoRule], writers: list[str],
                  denied: bool) -> str | None:
    if not denied and request.user is not None and policy._granted(request.user, writers):
        return None
    who = request.user or "an anonymous user"
    return f"{who} may not push to {request.repo}; ask the server's operator for write access"


def _decide_create(policy: Policy, request: AccessRequest, matching: Sequence[RepoRule], writers: list[str],
                   denied: bool) -> str | None:
    creators = [p for r in matching for p in r.create]
    if not denied and request.user is not None and policy._granted(request.user, creators):
        return None
    who = request.user or "an anonymous user"
    return f"{who} may not create {request.repo}; ask the server's operator, or push to an existing repository"


_DECISIONS: Mapping[Access, Callable[[Policy, AccessRequest, Sequence[RepoRule], list[str], bool], str | None]] = {
    Access.READ: _decide_read,
    Access.WRITE: _decide_write,
    Access.CREATE: _decide_create,
}


# --- parsing ----------------------------------------------------------------------------------

TOP_KEYS = frozenset(
    {"anonymous_read", "users", "groups", "repo", "protected_refs", "protected_branches",
     "protected_bookmarks", "limits", "hg_http", "clone_cache", "maintenance", "http", "hg", "git"}
)
RULE_KEYS = frozenset(
    {"pattern", "read", "write", "create", "deny_read", "deny_write", "deny_create", "protected_refs",
     "protected_branches", "protected_bookmarks"}
)
DENY_KEYS = ("deny_read", "deny_write", "deny_create")
"""The deny lists of a rule: they take the grant lists' principals, ``anonymous`` in each."""
PROTECTION_KEYS = frozenset({"pattern", "no_direct_push"})
LIMIT_TYPES: Mapping[str, type] = {f.name: float if "timeout" in f.name else int for f in fields(Limits)}
LIMIT_MAXIMA: Mapping[str, tuple[int, str]] = {"max_pkt_line": (65520, "git's own pkt-line limit")}
MAX_KEY_COMPARED = 64
"""Characters of an unknown key compared with the allowed ones for "did you mean" (difflib's cost
grows with the product of the lengths; no allowed key is half that long)."""
NEAR_KEY_CUTOFF = 0.7
"""How close (difflib's ratio) an allowed key must be to be offered: ``wirte`` is 0.8 from ``write``,
``reed`` 0.75 from ``read`` but 0.6 from ``create``, which is no help."""
LIMIT_ZERO_TAKEN = frozenset({"git_kept_refs_bytes", "hg_kept_repositories_bytes"})
"""``[limits]`` keys that may be 0 (keep nothing)."""


class _Reader:
    """Typed access to the parsed TOML with errors that name the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.source}: {key}: {problem}")

    def known_keys(self, table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                spelled = ", ".join(sorted(allowed))
                near = difflib.get_close_matches(key[:MAX_KEY_COMPARED], sorted(allowed), n=2, cutoff=NEAR_KEY_CUTOFF)
                meant = f" (did you mean {' or '.join(near)}?)" if near else ""
                raise self.fail(f"{where}{key}", f"unknown key{meant}; the keys allowed here are {spelled}")

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value

    def string_list(self, value: Any, key: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(key, 'must be a list of strings, e.g. ["alice", "@dev"]')
        return [self.string(item, f"{key}[{i}]") for i, item in enumerate(value)]

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value


def parse_policy(text: str, source: str) -> Policy:
    """Parse and validate a policy file's text; ``PolicyError`` says what is wrong and where."""
    reader = _Reader(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}; fix the syntax there") from None
    reader.known_keys(data, TOP_KEYS, "")
    groups = _parse_groups(reader, data.get("groups", {}), data.get("users", {}))
    rules = tuple(_parse_rule(reader, rule, f"repo[{i}]", groups) for i, rule in enumerate(_tables(reader, data)))
    return Policy(
        source=source,
        anonymous_read=reader.boolean(data.get("anonymous_read", True), "anonymous_read"),
        groups=groups,
        rules=rules,
        protections=_parse_protections(reader, data, ""),
        limits=_parse_limits(reader, data.get("limits", {})),
        hg_http=_parse_hg_http(reader, data.get("hg_http", {})),
        clone_cache=_parse_clone_cache(reader, data.get("clone_cache", {})),
        maintenance=_parse_maintenance(reader, data.get("maintenance", {})),
        git=_parse_git(reader, data.get("git", {})),
        trusted_proxies=_parse_http(reader, data.get("http", {})),
        hg_hgrc=_parse_hg(reader, data.get("hg", {})),
        public_url=_parse_public_url(reader, data.get("http", {})),
        index=_parse_index(reader, data.get("http", {})),
        status_from=_parse_status_from(reader, data.get("http", {})),
    )


def _tables(reader: _Reader, data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rules = data.get("repo", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise reader.fail("repo", "must be an array of tables: write each rule under [[repo]]")
    return rules


def _parse_groups(reader: _Reader, groups: Any, users: Any) -> dict[str, frozenset[str]]:
    if not isinstance(groups, dict):
        raise reader.fail("groups", 'must be a table of group = ["user", ...]')
    if not isinstance(users, dict):
        raise reader.fail("users", 'must be a table of user = ["group", ...]')
    members: dict[str, set[str]] = {}  # (group names composed too: "@équipe" names "équipe" however spelt)
    for name, listed in groups.items():
        for i, member in enumerate(reader.string_list(listed, f"groups.{name}")):
            if member.startswith(GROUP_PREFIX):
                raise reader.fail(f"groups.{name}[{i}]", "groups cannot contain groups; list the users")
            members.setdefault(_nfc(name), set()).add(_nfc(member))
        members.setdefault(_nfc(name), set())
    for user, listed in users.items():
        for group in reader.string_list(listed, f"users.{user}"):
            members.setdefault(_nfc(group.removeprefix(GROUP_PREFIX)), set()).add(_nfc(user))
    return {name: frozenset(users_) for name, users_ in members.items()}


def _principals(reader: _Reader, rule: Mapping[str, Any], key: str, where: str,
                groups: Mapping[str, frozenset[str]]) -> frozenset[str]:
    found = reader.string_list(rule[key], f"{where}.{key}")
    for i, principal in enumerate(found):
        if principal.startswith(GROUP_PREFIX) and _nfc(principal[1:]) not in groups:
            raise reader.fail(f"{where}.{key}[{i}]", f"group {principal[1:]!r} is not defined; add it under [groups]")
        if principal == ANONYMOUS and key != "read" and key not in DENY_KEYS:
            raise reader.fail(f"{where}.{key}[{i}]", "anonymous users can only be granted read")
    return frozenset(map(_nfc, found))


def _nfc(name: str) -> str:
    """A user (or group) name as logins name it (``auth.plain_user``): ``josé`` however the file composes it."""
    return unicodedata.normalize("NFC", name)


def _parse_rule(reader: _Reader, rule: Mapping[str, Any], where: str,
                groups: Mapping[str, frozenset[str]]) -> RepoRule:
    reader.known_keys(rule, RULE_KEYS, f"{where}.")
    if "pattern" not in rule:
        raise reader.fail(f"{where}.pattern", 'is missing; every [[repo]] needs a pattern such as "team/*"')
    listed = {key: _principals(reader, rule, key, where, groups)
              for key in ("read", "write", "create", *DENY_KEYS) if key in rule}
    return RepoRule(
        pattern=reader.string(rule["pattern"], f"{where}.pattern").strip("/"),
        read=listed.get("read"),
        write=listed.get("write", frozenset()),
        create=listed.get("create", frozenset()),
        protections=_parse_protections(reader, rule, f"{where}."),
        deny_read=listed.get("deny_read", frozenset()),
        deny_write=listed.get("deny_write", frozenset()),
        deny_create=listed.get("deny_create", frozenset()),
    )


def _parse_protections(reader: _Reader, table: Mapping[str, Any], where: str) -> Protections:
    lists = {key: _protection_list(reader, table.get(key, []), f"{where}{key}")
             for key in ("protected_refs", "protected_branches", "protected_bookmarks")}
    for i, protection in enumerate(lists["protected_refs"]):
        if not protection.pattern.startswith("refs/"):
            raise reader.fail(f"{where}protected_refs[{i}]",
                              f"{protection.pattern!r} is not a full ref name; write e.g. refs/heads/main")
    return Protections(lists["protected_refs"], lists["protected_branches"], lists["protected_bookmarks"])


def _protection_list(reader: _Reader, value: Any, key: str) -> tuple[Protection, ...]:
    if not isinstance(value, list):
        raise reader.fail(key, 'must be a list of patterns or { pattern = "...", no_direct_push = true } tables')
    return tuple(_protection(reader, item, f"{key}[{i}]") for i, item in enumerate(value))


def _protection(reader: _Reader, item: Any, key: str) -> Protection:
    if isinstance(item, str):
        return Protection(reader.string(item, key))
    if not isinstance(item, dict):
        raise reader.fail(key, 'must be a pattern string or a { pattern = "..." } table')
    reader.known_keys(item, PROTECTION_KEYS, f"{key}.")
    if "pattern" not in item:
        raise reader.fail(f"{key}.pattern", "is missing")
    return Protection(reader.string(item["pattern"], f"{key}.pattern"),
                      reader.boolean(item.get("no_direct_push", False), f"{key}.no_direct_push"))


def _parse_hg_http(reader: _Reader, table: Any) -> HgHttp:
    if not isinstance(table, dict):
        raise reader.fail("hg_http", "must be a table: write the settings under [hg_http]")
    reader.known_keys(table, frozenset(f.name for f in fields(HgHttp)), "hg_http.")
    compression = None
    if "compression" in table:
        compression = tuple(reader.string_list(table["compression"], "hg_http.compression"))
        unknown = [e for e in compression if e not in HG_ENGINES]
        if not compression or unknown or len(set(compression)) != len(compression):
            raise reader.fail("hg_http.compression",
                              f"must list distinct engines from {', '.join(HG_ENGINES)}, most preferred first")
    levels: dict[str, int | None] = {}
    for key, low, high in (("zstd_level", 1, 22), ("zlib_level", -1, 9)):
        value = table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            raise reader.fail(f"hg_http.{key}", f"must be an integer from {low} to {high}")
        levels[key] = value
    post_args = table.get("httppostargs")
    if post_args is not None:
        reader.boolean(post_args, "hg_http.httppostargs")
    key = "hg_http.uncompressed_networks"
    networks = []
    for i, text in enumerate(reader.string_list(table.get("uncompressed_networks", []), key)):
        try:
            networks.append(parse_network(text))
        except ValueError as bad:
            raise reader.fail(f"{key}[{i}]", f"{bad}, e.g. \"10.0.0.0/8\" or \"fd00::/8\"") from None
    return HgHttp(compression, levels["zstd_level"], levels["zlib_level"], post_args, tuple(networks))


def _parse_http(reader: _Reader, table: Any) -> Trusted:
    if not isinstance(table, dict):
        raise reader.fail("http", "must be a table: write the settings under [http]")
    reader.known_keys(table, frozenset({"trusted_proxies", "forwarded_header", "public_url", "index",
                                                  "status_from"}), "http.")
    header = table.get("forwarded_header", X_FORWARDED_FOR)
    if not isinstance(header, str) or header.lower() not in HEADERS:
        raise reader.fail("http.forwarded_header",
                          'must be "x-forwarded-for" (with X-Forwarded-Proto) or "forwarded" (RFC 7239): '
                          "the header your reverse proxy writes")
    networks, unix = _peer_networks(reader, table.get("trusted_proxies", []), "http.trusted_proxies")
    return Trusted(networks, header.lower(), unix)


def _parse_status_from(reader: _Reader, table: Any) -> StatusReaders:
    if not isinstance(table, dict) or "status_from" not in table:
        return LOOPBACK_READERS
    networks, unix = _peer_networks(reader, table["status_from"], "http.status_from")
    return StatusReaders(networks, unix)


def _peer_networks(reader: _Reader, value: Any, key: str) -> tuple[tuple[Network, ...], bool]:
    """A list of networks (``"10.0.0.0/8"``, ``"::1"``) and ``"unix"`` (whatever reaches a unix:
    listener) at ``key``: the networks, and whether ``unix`` was among them."""
    networks = []
    unix = False
    for i, text in enumerate(reader.string_list(value, key)):
        if text.strip().lower() == UNIX_PEER:
            unix = True
            continue
        try:
            networks.append(parse_network(text))
        except ValueError as bad:
            raise reader.fail(f"{key}[{i}]",
                              f"{bad}, e.g. \"127.0.0.1\" or \"10.0.0.0/8\" "
                              '(or "unix": whatever reaches a unix: listener)') from None
    return tuple(networks), unix


def _parse_index(reader: _Reader, table: Any) -> bool:
    if not isinstance(table, dict):
        return True
    return reader.boolean(table.get("index", True), "http.index")


def _parse_public_url(reader: _Reader, table: Any) -> str | None:
    if not isinstance(table, dict) or "public_url" not in table:
        return None
    url = reader.string(table["public_url"], "http.public_url").rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~!$&'()*+,;=:@%/\-]*)?", url):
        raise reader.fail("http.public_url", f"{url!r} is not an http(s) URL: write it as \"https://git.example.com\"")
    return url


def _parse_hg(reader: _Reader, table: Any) -> str | None:
    if not isinstance(table, dict):
        raise reader.fail("hg", "must be a table: write the settings under [hg]")
    reader.known_keys(table, frozenset({"hgrc"}), "hg.")
    if "hgrc" not in table:
        return None
    path = reader.string(table["hgrc"], "hg.hgrc")
    if not os.path.isabs(path):
        raise reader.fail("hg.hgrc", f"{path!r} is not an absolute path: name the file as /etc/hgwire/hgrc")
    return path


def _parse_clone_cache(reader: _Reader, table: Any) -> KeepBounds:
    if not isinstance(table, dict):
        raise reader.fail("clone_cache", "must be a table: write the settings under [clone_cache]")
    reader.known_keys(table, frozenset(f.name for f in fields(KeepBounds)), "clone_cache.")
    max_bytes = table.get("max_bytes", 0)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise reader.fail("clone_cache.max_bytes", "must be an integer of bytes, 0 or more (0 keeps nothing)")
    max_age = table.get("max_age", KEEP_NOTHING.max_age)
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not max_age > 0:  # (nan too)
        raise reader.fail("clone_cache.max_age", "must be a positive number of seconds")
    return KeepBounds(max_bytes, float(max_age))


def _parse_maintenance(reader: _Reader, table: Any) -> Maintenance:
    if not isinstance(table, dict):
        raise reader.fail("maintenance", "must be a table: write the settings under [maintenance]")
    reader.known_keys(table, frozenset(f.name for f in fields(Maintenance)), "maintenance.")
    limit = table.get("auto_pack_limit", AUTO_PACK_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0 or limit == 1:
        raise reader.fail("maintenance.auto_pack_limit",
                          "must be an integer of packs, 2 or more (0 turns repacking off)")
    objects = table.get("bitmap_min_objects", BITMAP_MIN_OBJECTS)
    if isinstance(objects, bool) or not isinstance(objects, int) or objects < 0:
        raise reader.fail("maintenance.bitmap_min_objects",
                          "must be a number of objects, 0 or more (0: repositories are not repacked for a bitmap)")
    return Maintenance(limit, objects)


def _parse_git(reader: _Reader, table: Any) -> GitSettings:
    if not isinstance(table, dict):
        raise reader.fail("git", "must be a table: write the settings under [git]")
    reader.known_keys(table, frozenset(f.name for f in fields(GitSettings)), "git.")
    archives = reader.string_list(table.get("archives", []), "git.archives")
    for i, kind in enumerate(archives):
        if kind not in GIT_ARCHIVE_TYPES:
            raise reader.fail(f"git.archives[{i}]", f"{kind!r} is not an archive type; write zip, gz or bz2")
    config = None
    if "config" in table:
        config = reader.string(table["config"], "git.config")
        if not os.path.isabs(config):
            raise reader.fail("git.config", f"{config!r} is not an absolute path: name the file as /etc/gitconfig")
    return GitSettings(export_all=reader.boolean(table.get("export_all", True), "git.export_all"),
                       archives=frozenset(archives), config=config)


def _parse_limits(reader: _Reader, table: Any) -> Limits:
    if not isinstance(table, dict):
        raise reader.fail("limits", "must be a table: write the limits under [limits]")
    reader.known_keys(table, frozenset(LIMIT_TYPES), "limits.")
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = LIMIT_TYPES[key]
        zero = key in LIMIT_ZERO_TAKEN
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= 0 if zero else value > 0) or (
                kind is int and not isinstance(value, int)):  # (nan too)
            raise reader.fail(f"limits.{key}", f"must be {'0 or ' if zero else ''}a positive "
                                               f"{'number' if kind is float else 'integer'}")
        if key in LIMIT_MAXIMA and value > LIMIT_MAXIMA[key][0]:
            raise reader.fail(f"limits.{key}", f"must be at most {LIMIT_MAXIMA[key][0]} ({LIMIT_MAXIMA[key][1]})")
        values[key] = kind(value)
    return Limits(**values)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and parse a policy file (blocking); ``PolicyError`` if it cannot be used."""
    source = os.fspath(path)
    return _parse_policy_bytes(_read_policy_bytes(source), source)


def _read_policy_bytes(source: str) -> bytes:
    try:
        with open(source, "rb") as f:
            raw = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"{source}: cannot be read ({exc.strerror}); check the --config path") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"{source}: is larger than {MAX_POLICY_BYTES} bytes; split or shorten it")
    return raw


def _parse_policy_bytes(raw: bytes, source: str) -> Policy:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{source}: is not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    return parse_policy(text, source)


# --- the live file ----------------------------------------------------------------------------


class PolicyFile:
    """The policy of ``--config``: the last good version, re-read when the file changes.

    ``current`` is a plain attribute read (any thread); ``refresh`` does the
    blocking stat and read, so call it in the pool.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        raw = _read_policy_bytes(str(self.path))
        self.current = _parse_policy_bytes(raw, str(self.path))  # broken at start-up: fatal, no last good rules
        self._stamp = self._stat()
        self._last_read: bytes | str = raw
        """What the last read found: the file's bytes, or why it could not be read.  The same again
        (an edit the 2 s look read, then the operator's SIGHUP) is nothing new: not parsed, not logged."""
        self._lock = threading.Lock()  # (the look and a SIGHUP read in two workers at once)
        self.refused: str | None = None
        """Why the file as it is now is not in force (the last read's error), until a read that is."""

    def _stat(self) -> tuple[int, ...] | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return file_stamp(status)

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if its stamp changed (or ``force``); True if new rules are in force (not when
        it says what the last read found: the same text, or the same reason it cannot be read)."""
        with self._lock:
            stamp = self._stat()
            if stamp == self._stamp and not force:
                return False
            self._stamp = stamp
            source = str(self.path)
            try:
                read: bytes | str = _read_policy_bytes(source)
            except PolicyError as exc:
                read = str(exc)
            if read == self._last_read:  # already in force, or already refused and logged
                if force:  # the operator's SIGHUP is told what it found (it said nothing at all)
                    if self.refused is not None:
                        log.error("SIGHUP: {path} is as it was, still refused, and the last good rules stay in "
                                  "force: {reason}", path=source, reason=self.refused)
                    else:
                        log.info("SIGHUP: {path} is as it was last read; its rules stay in force", path=source)
                return False
            self._last_read = read
            try:
                if isinstance(read, str):
                    raise PolicyError(read)
                self.current = _parse_policy_bytes(read, source)
            except PolicyError as exc:
                self.refused = str(exc)
                log.error("keeping the last good rules: {reason}", path=source, reason=str(exc))
                return False
            self.refused = None
            log.info("{path}: new rules in force", path=source)
            return True


class PolicyReloader(service.Service):
    """Look at the policy file every ``RELOAD_INTERVAL`` seconds and on SIGHUP; connections stay up.

    ``in_force``: called (in the pool) each time new rules are in force, for what takes effect
    when the policy is read rather than when a request reads it (``gateway.limits.apply_kept_budgets``)."""

    def __init__(self, policy: PolicyFile, interval: float = RELOAD_INTERVAL,
                 in_force: Callable[[], None] | None = None) -> None:
        self.policy = policy
        self._in_force = in_force
        self._loop = task.LoopingCall(self._check)
        self._interval = interval
        self._previous_handler: Any = None

    def startService(self) -> None:
        super().startService()
        self._loop.start(self._interval, now=False)
        self._install_sighup()

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        if self._previous_handler is not None:
            signal.signal(signal.SIGHUP, self._previous_handler)
            self._previous_handler = None

    def reload(self) -> Any:
        """Read the file again now (SIGHUP); a Deferred that fires once it is read (or failed, logged)."""
        return self._check(True)

    def _check(self, force: bool = False) -> Any:
        d = run_blocking(self._refresh, force)
        d.addErrback(lambda failure: log.failure("re-reading {path}", failure, path=str(self.policy.path)))
        return d

    def _refresh(self, force: bool) -> bool:
        changed = self.policy.refresh(force)
        if changed and self._in_force is not None:
            self._in_force()
        return changed

    def _install_sighup(self) -> None:
        from twisted.internet import reactor

        def on_sighup(signum: int, frame: FrameType | None) -> None:
            reactor.callFromThread(self._check, True)  # type: ignore[attr-defined]

        try:
            self._previous_handler = signal.signal(signal.SIGHUP, on_sighup)
        except ValueError:  # not the main thread (embedded, tests): the timer still reloads
            self._previous_handler = None


def authorizer_for(config: ServiceConfig) -> Authorizer:
    """The one Authorizer of a service (built on first use, then shared by every listener)."""
    if config.authorizer is None:
        policy = PolicyFile(config.config_file) if config.config_file else None
        config.authorizer = Authorizer(read_only=config.read_only, policy=policy,
                                       locate=getattr(config.backend, "locate", None),  # optional in a backend
                                       create_on_push=config.create_on_push,
                                       names_below=getattr(config.backend, "names_below", None))  # optional too
    return config.authorizer


# ---------------------------------------------------------------- [hg_http] and [clone_cache] in force

SETTINGS = WireSettings()
"""Compression order and levels, argument carriers, unless ``[hg_http]`` of ``--config`` says otherwise."""


NO_POLICY = Policy()
"""What is in force without a ``--config`` file: every setting's default."""


def in_force(authorizer: Any) -> Policy:
    """The policy in force now: the config file's last good one, or the defaults without a file."""
    policy_file = getattr(authorizer, "policy", None)
    return NO_POLICY if policy_file is None else policy_file.current


def maintenance(authorizer: Any) -> Maintenance:
    """The ``[maintenance]`` settings in force now (the defaults without a config file)."""
    return in_force(authorizer).maintenance


def clone_cache(authorizer: Any) -> KeepBounds:
    """The ``[clone_cache]`` bounds in force now (none kept without a policy file that says so)."""
    return in_force(authorizer).clone_cache


GIT_ARCHIVE_TYPES = ("zip", "gz", "bz2")


def git_archives(authorizer: Any) -> frozenset[str]:
    """``[git] archives`` in force now (none without a policy file that names some)."""
    return in_force(authorizer).git.archives


def repository_index(authorizer: Any) -> bool:
    """``[http] index`` in force now (True without a policy file)."""
    return in_force(authorizer).index


def export_all(authorizer: Any) -> bool:
    """``[git] export_all`` in force now (True, every git repository served, without a policy file)."""
    return in_force(authorizer).git.export_all


def read_base_git_config(authorizer: Any, repo: Any) -> None:
    """Have a git repository (a backend's with ``base_config``) read ``[git] config`` before its own,
    as git reads the system's: for sessions, LFS and the web pages alike."""
    path = in_force(authorizer).git.config
    if path is not None and getattr(repo, "kind", None) is Kind.GIT and hasattr(repo, "base_config"):
        repo.base_config = path


EXPORT_CHECKED = frozenset({"git-daemon", "git-http"})
"""The transports where ``[git] export_all = false`` applies: those of git daemon and git
http-backend, which check the file; over SSH the login decides, as for git over ssh."""


def check_exported(authorizer: Any, transport: str, name: str, repo: Any) -> None:
    """Answer a git repository git daemon would not export as a missing one (``RepositoryNotFound``
    with the backend's own words for ``name``, so nobody learns it is there), when ``[git]
    export_all = false``.

    A repository is exported when its git directory holds ``git-daemon-export-ok`` (its backend's
    optional ``daemon_export_ok()``; a backend without it exports nothing then).
    """
    if transport not in EXPORT_CHECKED or getattr(repo, "kind", None) is not Kind.GIT or exported(authorizer, repo):
        return
    log.info("{repo}: not served over {transport}: it has no git-daemon-export-ok and [git] export_all is false",
             repo=name, transport=transport)
    raise RepositoryNotFound(f"repository {name} not found")


def exported(authorizer: Any, repo: Any) -> bool:
    """Whether git daemon would export the git repository ``repo``: ``[git] export_all``, or its
    ``git-daemon-export-ok`` (its backend's optional ``daemon_export_ok()``; a backend without it
    exports nothing then)."""
    if export_all(authorizer):
        return True
    marked = getattr(repo, "daemon_export_ok", None)
    return marked is not None and bool(marked())


def public_url(authorizer: Any) -> str | None:
    """``[http] public_url`` in force now (None without a policy file that sets it)."""
    return in_force(authorizer).public_url


def wire_settings(authorizer: Any, client: str | None = None) -> WireSettings:
    """The settings in force now: ``[hg_http]`` of the policy file (if any) over ``SETTINGS``;
    for a ``client`` address in ``uncompressed_networks``, ``none`` first among the engines."""
    chosen = in_force(authorizer).hg_http  # without a file, all None: SETTINGS as they are
    changes: dict[str, Any] = {}
    if chosen.compression is not None:
        changes["engines"] = tuple(e.encode("ascii") for e in chosen.compression)
    if in_networks(client, chosen.uncompressed_networks):
        engines = changes.get("engines", SETTINGS.engines)
        changes["engines"] = (ENGINE_NONE, *(e for e in engines if e != ENGINE_NONE))
    if chosen.zstd_level is not None:
        changes["zstd_level"] = chosen.zstd_level
        changes["zstd_window_log"] = None  # the chosen level's own window
    if chosen.zlib_level is not None:
        changes["zlib_level"] = chosen.zlib_level
    if chosen.httppostargs is not None:
        changes["post_args"] = chosen.httppostargs
    return dataclasses.replace(SETTINGS, **changes) if changes else SETTINGS
