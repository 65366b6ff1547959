"""git-upload-archive, sans-IO: the argument list, its checks and the answer's framing.

What real ``git upload-archive`` (2.39) exchanges with ``git archive --remote``
(transcript in ``tests/unit/protocols/git/test_archive.py``)::

    C: 0019argument --format=tar\\n  ... one pkt-line per argument ... 0000
    S: 0008ACK\\n 0000
    S: <band 1: archive bytes> 0000
    S: or, where the archive cannot be made: <band 2: fatal: <reason>\\n>
          <band 3: git upload-archive: archiver died with error>

git's upload-archive acknowledges as soon as it starts, before it reads the
arguments or even opens the repository, so every refusal of the request comes
after the ACK: the client prints ``remote: fatal: <reason>`` and ``remote: git
upload-archive: archiver died with error`` and exits with status 1 (``failed()``).

Only a safe subset of git-archive's options is accepted (``--format``,
``--prefix``, ``-0``..``-9``, ``-v``/``--verbose``, one tree-ish naming a ref or a ref's object, maybe
with ``:dir`` for a directory in its tree, and pathspecs); everything else,
notably ``--remote``, ``--exec`` and ``--output``, is refused
(``--worktree-attributes`` is taken and changes nothing: a served repository has no working tree
whose attributes git would read; ``--list`` answers the formats made here).  As in git-archive, options
may come after the tree-ish, and everything after ``--`` is positional.

A pathspec is a path in the tree (``docs``, ``docs/``, ``./src/main.c``:
that file, or everything below that directory) or a wildcard pattern in git's
default style, matched against file paths, where ``*``, ``?`` and ``[...]``
also match ``/`` (``*.md``, ``d*/a``); ``.`` is the whole tree.  Of the
pathspec magic, ``:(exclude)``/``:!``/``:^`` (leave out what it selects),
``:(top)``/``:/`` (a no-op: the archive's paths start at the top),
``:(literal)`` and ``:(icase)`` are understood; the rest (``glob``, ``attr``)
is refused.
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass, field, replace

from protocols import pktline, sideband
from protocols.errors import LimitExceeded, ProtocolError, UnsupportedFeature
from protocols.pktline import Signal, Special

MAX_ARGUMENTS = 64
MAX_ARGUMENT_LENGTH = 4096
WILDCARDS = frozenset("*?[")
"""Characters that make a pathspec a pattern (git's ``GLOB_SPECIAL``, backslash aside)."""
ARGUMENT_PREFIX = b"argument "
FORMATS = {"tar": "tar", "tgz": "tgz", "tar.gz": "tgz", "zip": "zip"}
"""Accepted ``--format`` values and the archive kind each one names."""


class ArchiveRefused(UnsupportedFeature):
    """An argument the server will not run; the client sees ``remote: fatal: <message>`` (``failed()``)."""


@dataclass(frozen=True)
class ArchiveRequest:
    """Every ``argument`` line of the request, in order."""

    arguments: tuple[str, ...]


@dataclass(frozen=True)
class Pathspec:
    """One checked pathspec: a literal path (no trailing slash) or a wildcard pattern, maybe excluding."""

    text: str
    pattern: bool
    exclude: bool = False
    icase: bool = False
    given: str = field(default="", compare=False)
    """The pathspec as the client sent it, for messages."""

    def matches(self, path: str, directory: bool) -> bool:
        """The entry at ``path`` is selected whole (a directory: everything below it).

        A literal names a file or a directory; a pattern is matched against file
        paths only, its wildcards crossing ``/`` (``d*/a`` selects ``docs/a``).
        ``icase``: ``text`` is lower case, and so is the path it is compared with.
        """
        if self.icase:
            path = path.lower()
        if not self.pattern:
            return path == self.text or path.startswith(self.text + "/")
        return not directory and fnmatch.fnmatchcase(path, self.text)

    def may_select_below(self, directory: str) -> bool:
        """Something under ``directory`` can match: it is worth walking."""
        if self.icase:
            directory = directory.lower()
        literal = self.text
        if self.pattern:
            literal = self.text[:min(self.text.index(c) for c in WILDCARDS if c in self.text)]
            return literal.startswith(directory + "/") or (directory + "/").startswith(literal)
        return literal == directory or literal.startswith(directory + "/") or directory.startswith(literal + "/")


@dataclass(frozen=True)
class ArchiveOptions:
    """The checked request: kind (``tar``, ``tgz``, ``zip``), prefix, level, tree-ish and pathspecs.

    No pathspecs (or ``.`` among them) is the whole tree.  ``verbose`` (``-v``, ``--verbose``):
    each entry's path is told on band 2 as it is written (``remote: docs/a.md``), as git's does.
    """

    kind: str
    prefix: str
    level: int | None
    treeish: str
    pathspecs: tuple[Pathspec, ...] = field(default=())
    verbose: bool = False


class State(enum.Enum):
    ARGUMENTS = "arguments"
    DONE = "done"


class UploadArchive:
    """Reads the argument pkt-lines; ``next_event()`` yields one ArchiveRequest or NEED_DATA."""

    def __init__(self) -> None:
        self._decoder = pktline.PktLineDecoder(max_buffer=MAX_ARGUMENTS * (MAX_ARGUMENT_LENGTH + 16))
        self._arguments: list[str] = []
        self.state = State.ARGUMENTS

    def receive_data(self, data: bytes) -> None:
        self._decoder.receive_data(data)

    def next_event(self) -> ArchiveRequest | Signal:
        while self.state is State.ARGUMENTS:
            packet = self._decoder.next_packet()
            if packet is Signal.NEED_DATA:
                if self._decoder.eof:
                    raise ProtocolError("the client closed the connection before the end of its arguments")
                return Signal.NEED_DATA
            if packet is Special.FLUSH:
                self.state = State.DONE
                return ArchiveRequest(tuple(self._arguments))
            self._add(packet)
        return Signal.PAUSED

    def _add(self, packet: bytes | Special | Signal) -> None:
        if not isinstance(packet, bytes) or not packet.startswith(ARGUMENT_PREFIX):
            raise ProtocolError(f"expected an 'argument' line, got {_show(packet)}")
        if len(self._arguments) >= MAX_ARGUMENTS:
            raise LimitExceeded(f"more than {MAX_ARGUMENTS} archive arguments")
        value = packet[len(ARGUMENT_PREFIX):].removesuffix(b"\n")
        if len(value) > MAX_ARGUMENT_LENGTH:
            raise LimitExceeded(f"archive argument longer than {MAX_ARGUMENT_LENGTH} bytes")
        try:
            self._arguments.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError("archive argument is not UTF-8") from None


def _show(packet: object) -> str:
    if isinstance(packet, bytes):
        return repr(packet[:40])
    return str(packet)


def parse_arguments(arguments: tuple[str, ...]) -> ArchiveOptions:
    """Check the arguments as git-archive would parse them, refusing all but the safe subset.

    ``--format``/``--prefix`` come as ``--format=tar`` or as two arguments
    (``--format``, ``tar``): the client forwards what its user typed.  Options
    may follow the tree-ish; after ``--`` every argument is positional.
    """
    values: dict[str, str] = {"--format": "tar", "--prefix": ""}
    level: int | None = None
    verbose = False
    positional: list[str] = []
    index = 0
    while index < len(arguments):
        arg = arguments[index]
        name = arg.split("=", 1)[0]
        if arg == "--":
            positional.extend(arguments[index + 1:])
            break
        if name in values:
            index, values[name] = _value(arguments, index)
        elif arg == "--worktree-attributes":  # a bare repository has no working tree: nothing to read
            index += 1
        elif arg in ("-v", "--verbose"):
            verbose, index = True, index + 1
        elif len(arg) >= 2 and arg[0] == "-" and arg[1:].isascii() and arg[1:].isdigit():
            level, index = int(arg[1:]), index + 1
        elif not arg.startswith("-") or arg == "-":
            positional.append(arg)
            index += 1
        else:
            raise ArchiveRefused(f"option not allowed: {name}")
    if not positional:
        raise ArchiveRefused("no tree-ish given")
    specs = [_pathspec(p) for p in positional[1:]]
    if None in specs:  # '.': every file, less what is excluded
        specs = [spec for spec in specs if spec is not None and spec.exclude]
    options = _options(values, level, _treeish(positional[0]), tuple(s for s in specs if s is not None))
    return replace(options, verbose=verbose)


LIST_OPTIONS = frozenset({"--list", "-l"})
LISTED_FORMATS = b"tar\ntgz\ntar.gz\nzip\n"
"""``git archive --remote --list``: the formats made here, as git's upload-archive lists its remote ones."""


def wants_list(arguments: tuple[str, ...]) -> bool:
    """``--list`` before any ``--``: the client asks for the formats, not an archive (git answers it
    whatever else the arguments say)."""
    for arg in arguments:
        if arg == "--":
            return False
        if arg in LIST_OPTIONS:
            return True
    return False


def _value(arguments: tuple[str, ...], index: int) -> tuple[int, str]:
    """The value of the option at ``index`` and the index after it."""
    arg = arguments[index]
    if "=" in arg:
        return index + 1, arg.split("=", 1)[1]
    if index + 1 >= len(arguments):
        raise ArchiveRefused(f"option '{arg}' needs a value")
    return index + 2, arguments[index + 1]


def _options(values: dict[str, str], level: int | None, treeish: str,
             pathspecs: tuple[Pathspec, ...]) -> ArchiveOptions:
    kind = _format(values["--format"])
    if level is not None and (kind == "tar" or level > 9):  # git's words
        raise ArchiveRefused(f"Argument not supported for format '{values['--format']}': -{level}")
    return ArchiveOptions(kind, _prefix(values["--prefix"]), level, treeish, pathspecs)


def _format(value: str) -> str:
    if value not in FORMATS:
        raise ArchiveRefused(f"unknown archive format '{value}' (this server makes tar, tgz, tar.gz and zip)")
    return FORMATS[value]


def _prefix(value: str) -> str:
    """A prefix that keeps every entry inside the directory the archive is extracted in.  git
    takes any (``../x/``, ``/abs/``), which a careless extractor follows out of its directory (GNU
    tar strips them, saying so; others do not): refused here, in one sentence that says what to use."""
    parts = value.split("/")
    if value.startswith("/") or ".." in parts or "\0" in value:
        shown = value.replace("\0", "\\0")
        raise ArchiveRefused(f"refusing prefix '{shown}': it would put files outside the directory the archive is "
                             "extracted in; use a relative prefix without '..', such as 'project-1.0/'")
    return value


def _treeish(name: str) -> str:
    """A ref name, or an object id, maybe with ``:path`` to a directory in its tree (``HEAD:docs``).

    git's upload-archive takes a ref name by default; an object id only where the repository sets
    ``uploadArchive.allowUnreachable`` (the backend's ``resolve`` decides).  Revision expressions
    (``main~1``, ``main^{tree}``, ``main@{1}``), which git takes only with that setting, are not
    evaluated here: they are refused with what is taken.
    """
    ref, colon, path = name.partition(":")
    if not ref or any(c in ref for c in "~^{}\\*?[") or "@{" in ref:
        raise ArchiveRefused(f"tree-ish '{name}' must be a ref name (a branch or tag, maybe followed by ':' "
                             "and a directory) or, where the repository sets uploadArchive.allowUnreachable, "
                             "a full object id")
    if not colon:
        return ref
    path = path.rstrip("/")
    parts = path.split("/")
    if path and ("\0" in path or any(part in ("", ".", "..") for part in parts)):
        raise ArchiveRefused(f"tree-ish '{name}': '{path}' is not a plain path in the tree")
    return f"{ref}:{path}"


def _pathspec(text: str) -> Pathspec | None:
    """A checked pathspec; None for one that names the whole tree (``.``, ``./``)."""
    if not text:  # git's words
        raise ArchiveRefused("empty string is not a valid pathspec. please use . instead if you meant to match all paths")
    path, words = _magic(text)
    exclude, literal, icase = "exclude" in words, "literal" in words, "icase" in words
    if "\0" in path or "\\" in path:
        raise ArchiveRefused(f"pathspec '{text}' has a character this server does not accept")
    if path.startswith("/"):
        raise ArchiveRefused(f"pathspec '{text}' is outside the repository")
    kept: list[str] = []  # normalised as git normalises it: no '.' or empty part, '..' taking one away
    for part in path.split("/"):
        if part == "..":
            if not kept:
                raise ArchiveRefused(f"pathspec '{text}' is outside the repository")
            kept.pop()
        elif part not in ("", "."):
            kept.append(part)
    path = "/".join(kept)
    if not path:
        if exclude:  # leaves out every file: git's words
            raise ArchiveRefused(f"pathspec '{text}' did not match any files")
        return None
    return Pathspec(path.lower() if icase else path, not literal and any(c in WILDCARDS for c in path), exclude,
                    icase, text)


MAGIC_WORDS = {"exclude", "top", "literal", "icase"}
MAGIC_SIGNS = {"!": "exclude", "^": "exclude", "/": "top"}


def _magic(text: str) -> tuple[str, set[str]]:
    """Split a pathspec's magic off (``:(exclude,top)path``, ``:!path``, ``:/path``): path, magic words."""
    if not text.startswith(":"):
        return text, set()
    words: set[str] = set()
    if text.startswith(":("):
        close = text.find(")")
        if close < 0:
            raise ArchiveRefused(f"pathspec '{text}' has an unclosed magic '(': add ')'")
        words = {w.strip() for w in text[2:close].split(",") if w.strip()}
        rest = text[close + 1:]
    else:
        rest = text[1:]
        while rest and rest[0] in MAGIC_SIGNS:
            words.add(MAGIC_SIGNS[rest[0]])
            rest = rest[1:]
        rest = rest.removeprefix(":")
    unknown = sorted(words - MAGIC_WORDS)
    if unknown:
        raise ArchiveRefused(f"pathspec magic '{unknown[0]}' is not supported by this server (in '{text}')")
    return rest, words


def ack() -> bytes:
    """``ACK`` and a flush: the archive follows on side-band."""
    return pktline.encode(b"ACK\n") + pktline.FLUSH


ARCHIVER_DIED = b"git upload-archive: archiver died with error"
"""What git's upload-archive sends on band 3 once its archiver failed (its own words: scripts read them)."""


def failed(message: bytes) -> bytes:
    """The archive cannot be made (after the ACK), as git's upload-archive reports its archiver's
    death: ``fatal: <message>`` on band 2, then ``ARCHIVER_DIED`` on band 3, and nothing more."""
    line = b"fatal: " + message.replace(b"\n", b" ")[: sideband.MAX_PAYLOAD_64K - 8] + b"\n"
    return (sideband.encode(sideband.Band.PROGRESS, line, sideband.MAX_PAYLOAD_64K)
            + sideband.encode(sideband.Band.ERROR, ARCHIVER_DIED, sideband.MAX_PAYLOAD_64K))


def data(chunk: bytes | memoryview) -> bytes:
    """Archive bytes on band 1 (as many 64k pkt-lines as needed)."""
    return sideband.encode(sideband.Band.DATA, chunk, sideband.MAX_PAYLOAD_64K) if chunk else b""


def progress(message: bytes) -> bytes:
    return sideband.encode(sideband.Band.PROGRESS, message, sideband.MAX_PAYLOAD_64K)


def noted(paths: list[bytes]) -> bytes:
    """``--verbose``: the paths of the entries written, one line each on band 2, as git's archive
    writes them to its standard error (a directory's and a submodule's with a ``/``); lines are
    gathered into packets without being cut, but for one longer than a packet."""
    out: list[bytes] = []
    lines: list[bytes] = []
    size = 0
    for path in paths:
        line = path + b"\n"
        if lines and size + len(line) > sideband.MAX_PAYLOAD_64K:
            out.append(progress(b"".join(lines)))
            lines, size = [], 0
        lines.append(line)
        size += len(line)
    if lines:
        out.append(progress(b"".join(lines)))
    return b"".join(out)


def listed_formats() -> bytes:
    """The answer to ``--list``, on band 1 (git prints what comes there)."""
    return sideband.encode(sideband.Band.DATA, LISTED_FORMATS, sideband.MAX_PAYLOAD_64K)


def end() -> bytes:
    """The flush that ends the side-band stream."""
    return pktline.FLUSH
