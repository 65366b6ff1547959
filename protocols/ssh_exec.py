"""Parse the command string of an SSH ``exec`` request into a typed route.

An SSH client asks the server to run a command line; OpenSSH hands that line to
the user's shell.  hgwire never runs a shell: it splits the line with the small
subset of POSIX ``sh`` quoting that real clients produce, then matches the words
against ``EXEC_TABLE``.  Anything else is a typed refusal (an ``HgwireError``).

What clients send (PROTOCOL-NOTES §1.1, §2.1):

- git: ``git-upload-pack '/team/app.git'`` — the path single-quoted, a ``'`` in
  it written ``'\\''`` and a ``!`` written ``'\\!'`` (git's ``sq_quote``); the
  ``git upload-pack 'PATH'`` spelling is accepted too.
- git-lfs: ``git-lfs-transfer 'PATH' upload|download`` (its pure SSH protocol) and
  ``git-lfs-authenticate 'PATH' upload|download`` (where its HTTP API is) for an ``ssh://`` remote.
- hg: ``hg -R team/app serve --stdio`` (``sshpeer._makeconnection``), with the
  path left bare when it only holds ``[A-Za-z0-9@%_+=:,./-]`` and single-quoted
  otherwise; ``--hidden`` may follow; ``hg init PATH`` before a push that
  creates.  ``-R`` spelled ``--repository`` is accepted as well.

Why so strict: git-shell overflowed on an overlong command line
(CVE-2022-39260), so the line is bounded; ``hg -R --debugger serve --stdio``
gave a shell (CVE-2017-9462) and ``ssh://-oProxyCommand=`` style names inject
options (CVE-2017-1000117), so a path starting with ``-`` is refused here,
before the name check of ``backends.names`` even sees it.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from protocols.errors import (
    NAMES_ARE_UTF8,
    NO_REPOSITORY_NAMED,
    LimitExceeded,
    ProtocolError,
    UnsafeName,
    UnsupportedFeature,
)

MAX_COMMAND_BYTES = 4096
"""Longest exec command accepted; git and hg send well under 300 bytes."""

MAX_WORDS = 8
"""Most words in an accepted command (``hg -R P serve --stdio --hidden`` is 6)."""

MAX_ENV_VALUE_BYTES = 256
"""Longest ``GIT_PROTOCOL`` value accepted (git sends ``version=2``)."""

ALLOWED_ENV = frozenset({"GIT_PROTOCOL"})
"""The only environment variables an SSH ``env`` request may set."""

_BARE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_+=:,./-")
"""Characters a word may hold outside quotes: hg's ``_serverquote`` leaves
exactly these bare, and none of them means anything to ``sh``."""

_QUOTE = "'"
_TILDE = "~"
_ESCAPE = "\\"
_SPACE = " "


class RouteKind(enum.StrEnum):
    """What an exec request runs; the key of the gateway's session registry."""

    GIT_UPLOAD_PACK = "git-upload-pack"
    GIT_RECEIVE_PACK = "git-receive-pack"
    GIT_UPLOAD_ARCHIVE = "git-upload-archive"
    HG_SERVE = "hg-serve"
    HG_INIT = "hg-init"
    GIT_LFS_AUTH_DOWNLOAD = "git-lfs-authenticate-download"
    GIT_LFS_AUTH_UPLOAD = "git-lfs-authenticate-upload"
    GIT_LFS_TRANSFER_DOWNLOAD = "git-lfs-transfer-download"
    GIT_LFS_TRANSFER_UPLOAD = "git-lfs-transfer-upload"


class Slot(enum.Enum):
    """A placeholder word in a pattern."""

    PATH = "PATH"


PATH = Slot.PATH


@dataclass(frozen=True, slots=True)
class ExecPattern:
    """One accepted command shape: literal words and exactly one ``PATH`` slot."""

    kind: RouteKind
    words: tuple[str | Slot, ...]
    hidden: bool = False

    def usage(self) -> str:
        return " ".join("PATH" if word is PATH else word for word in self.words)


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """A parsed, accepted exec command.

    ``path`` is the repository path as the client sent it (``/team/app.git``),
    free of control characters and not option-like; the gateway still passes
    it through ``backends.names.validate_name``.
    """

    kind: RouteKind
    path: str
    hidden: bool = False


_HG_ROUTES = frozenset({RouteKind.HG_SERVE, RouteKind.HG_INIT})
_PORT_FIRST = re.compile(r"([0-9]{1,5})/(.+)")


def port_in_path_hint(kind: RouteKind, path: str) -> str:
    """For a git path sent as an scp-like URL's (no leading ``/``) whose first segment is a port,
    ``2222/app.git`` of ``git clone host:2222/app.git``, which names the path ``2222/app.git`` on
    port 22, what a "not found" adds: the ``ssh://`` URL with that port.  Empty otherwise (hg sends
    every ``ssh://host/path`` without its ``/``, and a path that starts ``/`` is an ``ssh://`` URL's:
    its numbers are a folder the user wrote)."""
    found = _PORT_FIRST.fullmatch(path)
    if kind in _HG_ROUTES or found is None or not 0 < int(found.group(1)) <= 65535:
        return ""
    port, rest = found.groups()
    return (f"; an scp-like URL takes no port (HOST:{port}/{rest} names the path {port}/{rest}): "
            f"to reach port {port}, write ssh://HOST:{port}/{rest}")


class UnsafeExecPath(UnsafeName):
    """A path refused before the name check (an option-like one), with the route it came in: the
    refusal is worded for that route's client and the log names both."""

    def __init__(self, message: str, kind: RouteKind, path: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path


def _git_rows(service: str, kind: RouteKind) -> tuple[ExecPattern, ExecPattern]:
    return (
        ExecPattern(kind, (f"git-{service}", PATH)),
        ExecPattern(kind, ("git", service, PATH)),
    )


def _hg_serve_rows(repo_flag: str) -> tuple[ExecPattern, ExecPattern]:
    serve = ("hg", repo_flag, PATH, "serve", "--stdio")
    return (
        ExecPattern(RouteKind.HG_SERVE, serve),
        ExecPattern(RouteKind.HG_SERVE, (*serve, "--hidden"), hidden=True),
    )


_GIT_UPLOAD = _git_rows("upload-pack", RouteKind.GIT_UPLOAD_PACK)
_GIT_RECEIVE = _git_rows("receive-pack", RouteKind.GIT_RECEIVE_PACK)
_GIT_ARCHIVE = _git_rows("upload-archive", RouteKind.GIT_UPLOAD_ARCHIVE)

EXEC_TABLE: Mapping[str, tuple[ExecPattern, ...]] = {
    "git-upload-pack": _GIT_UPLOAD[:1],
    "git-receive-pack": _GIT_RECEIVE[:1],
    "git-upload-archive": _GIT_ARCHIVE[:1],
    "git": (_GIT_UPLOAD[1], _GIT_RECEIVE[1], _GIT_ARCHIVE[1]),
    "hg": (
        *_hg_serve_rows("-R"),
        *_hg_serve_rows("--repository"),
        ExecPattern(RouteKind.HG_INIT, ("hg", "init", PATH)),
    ),
    "git-lfs-authenticate": (  # git-lfs, for an ssh:// remote: where its HTTP API is, and a token for it
        ExecPattern(RouteKind.GIT_LFS_AUTH_DOWNLOAD, ("git-lfs-authenticate", PATH, "download")),
        ExecPattern(RouteKind.GIT_LFS_AUTH_UPLOAD, ("git-lfs-authenticate", PATH, "upload")),
    ),
    "git-lfs-transfer": (  # git-lfs 3, for an ssh:// remote: objects and locks over SSH itself
        ExecPattern(RouteKind.GIT_LFS_TRANSFER_DOWNLOAD, ("git-lfs-transfer", PATH, "download")),
        ExecPattern(RouteKind.GIT_LFS_TRANSFER_UPLOAD, ("git-lfs-transfer", PATH, "upload")),
    ),
}
"""Command name (first word) → the shapes accepted for it.  Add a row to serve more."""
CHG = frozenset({"chg"})
"""Names of hg's own client that users set as ``[ui] remotecmd``, taken as ``hg``."""


def parse_exec(command: bytes) -> ExecRequest:
    """Turn an exec command line into an ``ExecRequest`` or raise a typed refusal.

    Raises ``LimitExceeded`` (too long / too many words), ``ProtocolError``
    (not UTF-8, control characters, shell syntax we do not speak),
    ``UnsupportedFeature`` (a command or argument shape we do not run) and
    ``UnsafeName`` (a path that could be read as an option).
    """
    return match_words(split_words(_decode(command)))


MAX_PROGRAM_BYTES = 256
"""Bytes of a refused command's first word ``sender`` reads: a program's name, a path to one."""


def sender(command: bytes) -> RouteKind | None:
    """The route of the client that sent ``command``, judged by its first word alone (``git``,
    ``git-upload-pack``, ``hg``, ``chg``, a path to one): for a command refused before it is read
    whole (longer than ``MAX_COMMAND_BYTES``, shell syntax, arguments of no shape of its program),
    so that the refusal is worded as that client's own server words it (git's ``fatal:``, hg's
    ``abort:``), as git-shell and ``hg serve`` answer.  None for any other program."""
    first = command[:MAX_PROGRAM_BYTES].lstrip(b" ").split(b" ", 1)[0]
    program = first.decode("utf-8", "replace").rsplit("/", 1)[-1]
    patterns = EXEC_TABLE.get("hg" if program in CHG else program)
    return patterns[0].kind if patterns else None


def _decode(command: bytes) -> str:
    if len(command) > MAX_COMMAND_BYTES:
        raise LimitExceeded(f"the command is longer than {MAX_COMMAND_BYTES} bytes: name the repository by a "
                            "shorter path")
    try:
        text = command.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(NAMES_ARE_UTF8) from None  # a repository's path is the only free text of a command
    if "\0" in text:
        raise ProtocolError("command contains a NUL byte")
    if any(_is_control(ch) for ch in text):
        raise ProtocolError("command contains a control character")
    return text


def _is_control(ch: str) -> bool:
    return ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0


def split_words(text: str) -> list[str]:
    """Split like ``sh`` for the quoting git and hg produce; refuse all other syntax.

    Words are separated by spaces.  Inside single quotes every character is
    literal.  Outside them a backslash takes the next character literally and
    only ``_BARE_SAFE`` characters and those beyond ASCII (none of which sh reads
    as syntax; controls are refused before) may appear, and a ``~`` that starts a
    word (a home directory, which ``from_home`` reads), so no other expansion, globbing,
    redirection or command separator can ever be meant.
    """
    words: list[str] = []
    current: list[str] | None = None  # None: between words
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == _SPACE:
            if current is not None:
                words.append("".join(current))
                current = None
            index += 1
            continue
        current = [] if current is None else current
        index = _read_piece(text, index, current)
        if len(words) >= MAX_WORDS:
            raise LimitExceeded(f"command has more than {MAX_WORDS} words")
    if current is not None:
        words.append("".join(current))
    return words


def _read_piece(text: str, index: int, out: list[str]) -> int:
    """Append one quoted run, escaped character or bare character; return the next index."""
    ch = text[index]
    if ch == _QUOTE:
        end = text.find(_QUOTE, index + 1)
        if end < 0:
            raise ProtocolError("command has an unterminated single quote")
        out.append(text[index + 1 : end])
        return end + 1
    if ch == _ESCAPE:
        if index + 1 >= len(text):
            raise ProtocolError("command ends with a backslash")
        out.append(text[index + 1])
        return index + 2
    if ch == _TILDE and _starts_a_home(text, index, out):
        # a word's leading ~ is a home to sh: git-lfs sends host:~/app.git's path bare, as ~/app.git (and
        # ssh://host/~/app.git's as /~/app.git, which git itself sends as '~/app.git'); from_home reads
        # either as the root's app.git (another user's, ~alice/, the name check refuses)
        out.append(ch)
        return index + 1
    if ch not in _BARE_SAFE and ch <= "\x7f":  # beyond ASCII: a letter to sh (git-lfs leaves dépôt unquoted)
        raise ProtocolError(f"command uses shell syntax {ch!r}; only single quotes are understood")
    out.append(ch)
    return index + 1


def _starts_a_home(text: str, index: int, out: list[str]) -> bool:
    """Whether the bare ``~`` at ``index`` begins its word, alone or after a bare ``/``."""
    if not out:
        start = index
    elif out == ["/"] and text[index - 1] == "/":
        start = index - 1
    else:
        return False
    return start == 0 or text[start - 1] == _SPACE


def match_words(words: list[str]) -> ExecRequest:
    """Find the ``EXEC_TABLE`` pattern these words fit and check the path."""
    if not words:
        raise UnsupportedFeature("empty command; this server runs git and hg services only")
    program = words[0].rsplit("/", 1)[-1]
    if "/" in words[0] and (program in EXEC_TABLE or program in CHG):  # hg --remotecmd /usr/bin/hg, git
        # --upload-pack /x/git-upload-pack
        words = [program, *words[1:]]  # the path to a program is the client's idea: hgwire runs none
    if words[0] in CHG:  # hg's [ui] remotecmd = chg (its command server, to start faster): hg's commands
        words = ["hg", *words[1:]]
    patterns = EXEC_TABLE.get(words[0])
    if patterns is None:
        raise UnsupportedFeature(f"unknown command {_shorten(words[0])!r}; {_supported()}")
    for pattern in patterns:
        path = _fit(pattern, words)
        if path is not None:
            return ExecRequest(pattern.kind, _check_path(path, pattern.kind), pattern.hidden)
    usages = " | ".join(pattern.usage() for pattern in patterns)
    raise UnsupportedFeature(f"unsupported arguments to {words[0]!r}; usage: {usages}")


def _fit(pattern: ExecPattern, words: list[str]) -> str | None:
    if len(words) != len(pattern.words):
        return None
    path: str | None = None
    for expected, word in zip(pattern.words, words, strict=True):
        if expected is PATH:
            path = word
        elif expected != word:
            return None
    return path


def _check_path(path: str, kind: RouteKind) -> str:
    """Refuse an empty path and an option-like one, in ``backends.names``' words for them."""
    if not path:
        raise UnsafeExecPath(NO_REPOSITORY_NAMED, kind, path)
    if path.startswith("-"):
        raise UnsafeExecPath(f"repository name {_shorten(path)!r} starts with '-'", kind, path)
    return path


def from_home(path: str) -> str:
    """The repository name of an SSH path written from the account's home: ``~/team/app.git``
    (``ssh://host/~/team/app.git``, ``host:~/team/app.git``) and ``./team/app.git`` are
    ``team/app.git``.  Over sshd a path without a leading ``/`` is the home directory's, so
    ``host:app.git``, ``host:~/app.git`` and ``host:./app.git`` name one repository; here the
    root stands where that home was, as it already does for ``host:app.git``.  Another user's
    home (``~alice/app.git``) is left as it is, for the name check to refuse."""
    if path == "~" or path.startswith("~/"):
        path = path[1:].lstrip("/")
    while path.startswith("./"):
        path = path[2:].lstrip("/")
    return path


INFO_COMMAND = "info"
"""gitolite's command that lists what the user may read (``ssh git@host info [PATTERN]``)."""
MAX_INFO_PATTERN = 255
"""Longest ``info`` pattern: a repository name is no longer (``backends.names.MAX_NAME_LENGTH``)."""
_GLOB = frozenset("*?[")


def is_info(command: bytes) -> bool:
    """Whether the exec command is gitolite's ``info`` (with or without arguments)."""
    return command.strip().split(b" ", 1)[0] == INFO_COMMAND.encode()


def parse_info(command: bytes) -> str:
    """The pattern of ``info [PATTERN]`` ("" for none), as gitolite's ``info`` takes one to list only
    the repositories it matches; anything more is refused with the usage."""
    words = split_words(_decode(command))
    if len(words) > 2 or any(word.startswith("-") for word in words[1:]):
        raise UnsupportedFeature("'info' takes one pattern at most and no options; usage: info [PATTERN]")
    pattern = words[1] if len(words) == 2 else ""
    if len(pattern) > MAX_INFO_PATTERN:
        raise LimitExceeded(f"the pattern of 'info' is longer than {MAX_INFO_PATTERN} characters")
    return pattern


def info_matches(name: str, pattern: str) -> bool:
    """Whether ``info PATTERN`` lists ``name``: one holding PATTERN (``info team`` lists
    ``team/app.git``, as gitolite's unanchored match does), or matching it whole as a glob when it
    has ``*``, ``?`` or ``[`` (``info '*.git'``); every name for no pattern."""
    if _GLOB.isdisjoint(pattern):
        return pattern in name
    return fnmatch.fnmatchcase(name, pattern)


def info_folder(pattern: str) -> str:
    """The folder every name ``info PATTERN`` lists lies in (``team/`` for ``team/*.git``), so that
    only it is listed; ``""`` (the whole root) for a pattern that is not a glob, matched anywhere."""
    if _GLOB.isdisjoint(pattern):
        return ""
    literal = pattern[:min(at for at in (pattern.find(c) for c in _GLOB) if at >= 0)]
    return literal[:literal.rfind("/") + 1]


def _supported() -> str:
    return "only git's and hg's own commands run here; 'info' lists the repositories you may use"


def _shorten(word: str, limit: int = 64) -> str:
    return word if len(word) <= limit else word[:limit] + "..."


def check_env(name: bytes, value: bytes) -> tuple[str, bytes]:
    """Accept an SSH ``env`` request only for ``ALLOWED_ENV`` with a short printable value.

    git sends ``GIT_PROTOCOL=version=2`` (PROTOCOL-NOTES §2.1); anything else
    could change how a service behaves (``LD_PRELOAD``, ``GIT_DIR``), so it is
    refused.  ``protocols.git_request`` parses the accepted value.
    """
    text = name.decode("ascii", "replace")
    if text not in ALLOWED_ENV:
        raise UnsupportedFeature(f"environment variable {text[:64]!r} is not accepted")
    if len(value) > MAX_ENV_VALUE_BYTES:
        raise LimitExceeded(f"{text} is longer than {MAX_ENV_VALUE_BYTES} bytes")
    if any(byte < 0x21 or byte > 0x7E for byte in value):
        raise ProtocolError(f"{text} holds a byte that is not printable ASCII")
    return text, value
