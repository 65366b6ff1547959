"""The checks git's fsck makes of a push's ``.gitmodules`` and ``.gitattributes`` files.

A repository served to many people must not hand them a ``.gitmodules`` that
turns ``git clone --recurse-submodules`` into running a command or writing
outside the clone (a submodule named ``../../hooks``, a URL that reads as an
option, ``update = !command``), nor a ``.gitattributes`` that older clients
overflow on.  git's receive-pack refuses these when it checks pushed objects;
hgwire always checks them (git's message ids, ``git help fsck``):

* a tree entry that a case-insensitive, NTFS (``GITMOD~1``, ``.gitmodules .``,
  an alternate stream) or HFS+ (ignorable code points) file system would open
  as ``.gitmodules`` or ``.gitattributes`` names a file to check; as a symbolic
  link it is refused (``gitmodulesSymlink``; ``.gitattributes``, ``.gitignore``
  and ``.mailmap`` links are only "info" to git);
* once every object of the push is in, each such file is read (from the push or
  the repository) and checked: it must be a blob (``…Blob``), present
  (``…Missing``), not too large (``…Large``); a ``.gitmodules`` is read as git
  reads config files (``config_entries``), and each ``submodule.<name>.*``
  setting checked: the name (``gitmodulesName``: no ``..`` component), ``url``
  (``gitmodulesUrl``: not an option, no newline once decoded, a relative one
  not climbing into the host, an http(s)/ftp(s) one that git's URL
  normalisation takes), ``path`` (not an option) and ``update`` (not a
  ``!command``); a file git's parser stops in is only "info"
  (``gitmodulesParse``), as for git, but the settings before that point are
  checked.  A ``.gitattributes`` line may not be 2,048 bytes or longer.

Pure functions over bytes: no I/O, no git.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from protocols.text import printable

MAX_GITMODULES = 4 << 20
"""A ``.gitmodules`` larger than this is refused (``gitmodulesLarge``).  git's bound is its
``core.bigFileThreshold`` (512 MiB); a real one, even of thousands of submodules, is some hundred
KiB, and reading a hostile one of this size costs seconds here (on a push thread)."""
MAX_GITATTRIBUTES = 100 << 20
"""git's bound on a ``.gitattributes`` file (``ATTR_MAX_FILE_SIZE``)."""
MAX_ATTRIBUTE_LINE = 2048
"""git's bound on a ``.gitattributes`` line (``ATTR_MAX_LINE_LENGTH``): a line this long is refused."""

S_IFMT, S_IFLNK = 0o170000, 0o120000

Report = Callable[[str, str], None]


# -- names a file system would open as a dotfile ----------------------------------------------

_HFS_IGNORABLE = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")


def _hfs_name(name: bytes) -> str:
    """The name as HFS+ compares it: the code points it ignores dropped, ASCII case folded (as
    git folds), ended by the first bytes that are not UTF-8 (as git reads it)."""
    lowered = name.lower()
    try:
        text = lowered.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = lowered[:exc.start].decode("utf-8")
    return _HFS_IGNORABLE.sub("", text)


def _hfs_is(text: str, needle: str) -> bool:
    target = "." + needle
    return text == target or text.startswith(target + "/")


def is_hfs_dotfile(name: bytes, needle: str) -> bool:
    """Whether HFS+ opens ``name`` as ``.<needle>``."""
    return _hfs_is(_hfs_name(name), needle)


def is_dotgit(name: bytes) -> bool:
    """``.git`` as a case-insensitive file system, NTFS (trailing dots and spaces, ``git~1``, a
    stream suffix) or HFS+ (ignorable code points) would read the name (fsck's ``hasDotgit``; a
    name that is not UTF-8 does not match here, unlike ``_hfs_name``'s reading for the dotfiles)."""
    lowered = name.lower()
    ntfs = lowered.split(b":", 1)[0].rstrip(b". ")
    if ntfs in (b".git", b"git~1"):
        return True
    return _HFS_IGNORABLE.sub("", lowered.decode("utf-8", "replace")) == ".git"


def _only_dots_and_spaces(rest: bytes) -> bool:
    """NTFS drops trailing dots and spaces; ``:`` starts an alternate data stream."""
    return not rest.split(b":", 1)[0].strip(b". ")


def is_ntfs_dotfile(name: bytes, needle: bytes, short_prefix: bytes) -> bool:
    """Whether NTFS opens ``name`` as ``.<needle>``: the name itself with trailing dots or spaces
    or a stream, its 8.3 short name (``<first six>~1`` … ``~4``), or a fall-back short name
    (``<short_prefix>`` cut anywhere, ``~``, a digit 1–9, digits to eight characters)."""
    lowered = name.lower()
    if lowered.startswith(b"." + needle):
        return _only_dots_and_spaces(name[len(needle) + 1:])
    if lowered[:6] == needle[:6] and lowered[6:7] == b"~" and lowered[7:8] in (b"1", b"2", b"3", b"4"):
        return _only_dots_and_spaces(name[8:])
    tilde = False
    at = 0
    while at < 8:
        if at >= len(name):
            return False
        byte = name[at]
        if tilde:
            if not 0x30 <= byte <= 0x39:
                return False
        elif byte == 0x7E:  # "~"
            at += 1
            if at >= len(name) or not 0x31 <= name[at] <= 0x39:
                return False
            tilde = True
        elif at >= 6 or byte & 0x80 or lowered[at] != short_prefix[at]:
            return False
        at += 1
    return _only_dots_and_spaces(name[at:])


_DOTFILES = (
    # (what, its name, git's NTFS short-name prefix for it)
    ("gitmodules", b"gitmodules", b"gi7eba"),
    ("gitattributes", b"gitattributes", b"gi7d29"),
    ("gitignore", b"gitignore", b"gi250a"),
    ("mailmap", b"mailmap", b"maba30"),
)


def dotfile_kinds(name: bytes) -> frozenset[str]:
    """Which of ``.gitmodules``, ``.gitattributes``, ``.gitignore`` and ``.mailmap`` a
    case-insensitive, NTFS or HFS+ file system opens ``name`` as (a name NTFS would read as a
    path also counts as ``.gitmodules`` by its part after a ``\\``, as git has it)."""
    if name[:1] not in _LEADS and b"~" not in name and b"\\" not in name:
        return _NONE  # (every name it matches starts with "." or an ignorable code point, or holds "~" or "\\")
    text = _hfs_name(name)
    kinds = {kind for kind, needle, short in _DOTFILES
             if _hfs_is(text, kind) or is_ntfs_dotfile(name, needle, short)}
    if any(is_ntfs_dotfile(name[at + 1:], b"gitmodules", b"gi7eba") for at in _backslashes(name)):
        kinds.add("gitmodules")
    return frozenset(kinds)


_NONE: frozenset[str] = frozenset()
_LEADS = frozenset({b".", b"\xe2", b"\xef"})


def worth_a_look(lowered: bytes) -> bool:
    """Whether a lower-cased name (or names joined) holds what every name ``dotfile_kinds`` can
    match holds: ``~``, ``.git``, ``.mailmap`` or an ignorable code point's UTF-8 lead bytes.
    Substring tests, cheaper than a regular expression for every tree of a push."""
    return (b"~" in lowered or b".git" in lowered or b".mailmap" in lowered or b"\xe2\x80" in lowered
            or b"\xe2\x81" in lowered or b"\xef\xbb" in lowered)


# -- the push's dotfiles ------------------------------------------------------------------------

ObjectReader = Callable[[bytes], tuple[int, bytes]]
"""``read(hex id) -> (type number, raw)``; raises ``KeyError`` for an object that is nowhere."""

BLOB = 3


class DotFiles:
    """The ``.gitmodules`` and ``.gitattributes`` files a push's trees name (git's
    ``gitmodules_found``/``gitattributes_found``), checked by ``finish`` once all its objects are in."""

    __slots__ = ("gitattributes", "gitmodules")

    def __init__(self) -> None:
        self.gitmodules: set[bytes] = set()
        self.gitattributes: set[bytes] = set()

    def tree(self, entries: list[tuple[bytes, int, bytes]], report: Report, joined: bytes | None = None) -> None:
        """Note the dotfiles of one tree (``entries`` as parsed: name, mode, hex id; ``joined``: the
        names joined by NUL and lower-cased, when the caller has them); a ``.gitmodules`` link (and
        the links git only mentions) reported against the tree."""
        if joined is None:
            joined = b"\0".join([entry[0] for entry in entries]).lower()
        if not worth_a_look(joined):
            return  # (most trees: a few substring tests over all the names)
        for name, mode, child in entries:
            kinds = dotfile_kinds(name)
            if not kinds:
                continue
            if mode & S_IFMT != S_IFLNK:
                if "gitmodules" in kinds:
                    self.gitmodules.add(child)
                if "gitattributes" in kinds:
                    self.gitattributes.add(child)
                continue
            if "gitmodules" in kinds:
                report("gitmodulesSymlink", ".gitmodules is a symbolic link")
            if "gitattributes" in kinds:
                report("gitattributesSymlink", ".gitattributes is a symlink")
            if "gitignore" in kinds:
                report("gitignoreSymlink", ".gitignore is a symlink")
            if "mailmap" in kinds:
                report("mailmapSymlink", ".mailmap is a symlink")

    def finish(self, read: ObjectReader, report_for: Callable[[bytes], Report],
               sized: Callable[[bytes], tuple[int, int] | None] | None = None) -> None:
        """Check every noted file: ``read`` finds it (in the push or the repository),
        ``report_for(hex id)`` reports a finding against it.  ``sized(hex id)``, when given, is its
        type and size without reading it (None: unknown), so that a blob too large to parse is
        reported as such without being inflated (a pushed 1 GiB ``.gitattributes`` of zeros, a
        1 MB pack, was read whole: 1.1 GB of the server's memory to refuse it)."""
        for kind, found, check, limit in (("gitmodules", self.gitmodules, check_gitmodules, MAX_GITMODULES),
                                          ("gitattributes", self.gitattributes, check_gitattributes,
                                           MAX_GITATTRIBUTES)):
            for oid in sorted(found):
                report = report_for(oid)
                known = sized(oid) if sized is not None else None
                if known is not None and known[0] == BLOB and known[1] > limit:
                    report(f"{kind}Large", f".{kind} too large to parse")
                    continue
                try:
                    type_num, raw = read(oid)
                except KeyError:
                    report(f"{kind}Missing", f"unable to read .{kind} blob")
                    continue
                if type_num != BLOB:
                    report(f"{kind}Blob", f"non-blob found at .{kind}")
                elif len(raw) > limit:
                    report(f"{kind}Large", f".{kind} too large to parse")
                else:
                    check(raw, report)


def _backslashes(name: bytes) -> Iterator[int]:
    at = name.find(b"\\")
    while at >= 0:
        yield at
        at = name.find(b"\\", at + 1)


# -- .gitattributes -----------------------------------------------------------------------------

_LONG_LINE = re.compile(rb"[^\n]{%d}" % MAX_ATTRIBUTE_LINE)


def check_gitattributes(raw: bytes, report: Report) -> None:
    """No line of 2,048 bytes or more (as git reads it: up to the first NUL)."""
    end = raw.find(b"\0")
    if _LONG_LINE.search(raw, 0, end if end >= 0 else len(raw)) is not None:
        report("gitattributesLineLength", ".gitattributes has too long lines to parse")


# -- .gitmodules --------------------------------------------------------------------------------


def check_gitmodules(raw: bytes, report: Report) -> None:
    """Each ``submodule.<name>.*`` setting, as git's fsck checks it; a file git's parser stops in
    reports ``gitmodulesParse`` (only "info" to git) after the settings before that point."""
    names: dict[bytes, bool] = {}  # a section's settings share its name: checked once
    try:
        for var, value in config_entries(raw):
            var = var.split(b"\0", 1)[0]  # git hands names and values on as C strings
            if not var.startswith(b"submodule."):
                continue
            rest = var[len(b"submodule"):]
            dot = rest.rfind(b".")
            if dot == 0:
                continue  # no subsection: not about one submodule
            name, key = rest[1:dot], rest[dot + 1:]
            name_ok = names.get(name)
            if name_ok is None:
                name_ok = names[name] = submodule_name_ok(name)
            if not name_ok:
                report("gitmodulesName", f"disallowed submodule name: {_shown(name)}")
            if value is not None and key in _VALUE_CHECKS:
                _check_submodule_value(key, value.split(b"\0", 1)[0], report)
    except ConfigSyntaxError:
        report("gitmodulesParse", "could not parse gitmodules blob")


_VALUE_CHECKS = frozenset({b"url", b"path", b"update"})


def _check_submodule_value(key: bytes, value: bytes, report: Report) -> None:
    if key == b"url" and not submodule_url_ok(value):
        report("gitmodulesUrl", f"disallowed submodule url: {_shown(value)}")
    if key == b"path" and value.startswith(b"-"):
        report("gitmodulesPath", f"disallowed submodule path: {_shown(value)}")
    if key == b"update" and value.startswith(b"!"):
        report("gitmodulesUpdate", f"disallowed submodule update setting: {_shown(value)}")


def _shown(value: bytes) -> str:
    """A name or value in a message: at most 200 bytes, control characters escaped, a byte that is
    not UTF-8 shown as U+FFFD."""
    return printable(value, 200, errors="replace")


def submodule_name_ok(name: bytes) -> bool:
    """git's ``check_submodule_name``: not empty, no ``..`` component (``/`` and ``\\`` both separate)."""
    return bool(name) and b".." not in _SEPARATOR.split(name)


_SEPARATOR = re.compile(rb"[/\\]")


def submodule_url_ok(url: bytes) -> bool:
    """git's ``check_submodule_url``.

    Not an option (``-…``).  A relative URL (``./``, ``../``, either slash) or a
    ``git://`` one: no newline once %-decoded, and no ``../`` climbing straight
    into ``:`` or ``/`` (it would rewrite the superproject URL's host,
    CVE-2020-11008).  One that git hands to its curl helper (``http(s)://``,
    ``ftp(s)://``, or with an ``http::``-style prefix): it must survive git's URL
    normalisation (``url_normalize``) and hold no newline once decoded.  Any
    other URL passes, as for git.
    """
    if url.startswith(b"-"):
        return False
    if _RELATIVE.match(url) or url.startswith(b"git://"):
        if b"\n" in url_decode(url):
            return False
        climbs = _LEADING_DOTS.match(url)
        assert climbs is not None  # matches the empty string
        return not (b".." in climbs.group() and url[climbs.end():climbs.end() + 1] in (b":", b"/"))
    curl = _curl_url(url)
    if curl is None:
        return True
    normalized = url_normalize(curl)
    return normalized is not None and b"\n" not in url_decode(normalized)


_RELATIVE = re.compile(rb"\.\.?[/\\]")
_LEADING_DOTS = re.compile(rb"(?:\.\.?[/\\])*")


def _curl_url(url: bytes) -> bytes | None:
    for helper in (b"http::", b"https::", b"ftp::", b"ftps::"):
        if url.startswith(helper):
            return url[len(helper):]
    if url.startswith((b"http://", b"https://", b"ftp://", b"ftps://")):
        return url
    return None


_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")


def url_decode(text: bytes) -> bytes:
    """``%XX`` decoded where ``XX`` is hex; anything else (a lone ``%``, a ``+``) as it is."""
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text)


# -- git's URL normalisation --------------------------------------------------------------------

_SCHEME = re.compile(rb"([A-Za-z][A-Za-z0-9+.-]*)://")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_HOST_CHARS = re.compile(rb"[A-Za-z0-9._:\[\]-]*")
_UNSAFE = frozenset(b'<>"{}|\\^`%')
_RESERVED = frozenset(b":/?#[]@!$&'()*+,;=")


def url_normalize(url: bytes) -> bytes | None:
    """The URL as git's ``url_normalize`` writes it, or None where git refuses it.

    ``scheme://[userinfo@]host[:port][/path][?query][#fragment]``: a scheme of
    a letter then letters, digits, ``+-.``; every ``%`` a valid escape; a host
    (unless ``file:``) that does not start with ``:``, of letters, digits and
    ``.-_:[]`` (case folded); after the last ``:`` not followed by ``]``, a port
    of digits, 1–65535 (leading zeros, an empty port and the scheme's default
    dropped); a path whose ``.``/``..`` segments resolve without climbing above
    the root.  Escapes of characters that need none are decoded, characters
    that need one (controls, spaces, ``<>"{}|\\^```) escaped.
    """
    scheme_match = _SCHEME.match(url)
    if scheme_match is None or _BAD_ESCAPE.search(url):
        return None
    scheme = scheme_match.group(1).lower()
    rest = url[scheme_match.end():]
    end = _authority_end(rest)
    out = bytearray(scheme + b"://")
    at = rest.find(b"@", 0, end)
    if at >= 0:
        out += _normalize_escapes(rest[:at]) + b"@"
        rest = rest[at + 1:]
        end -= at + 1
    if (not rest or rest[:1] in (b":", b"/", b"?", b"#")) and scheme != b"file":
        return None
    authority = rest[:end]
    colon = max(authority.rfind(b":"), 0)
    if b"]" in authority[colon:] or authority[colon:colon + 1] != b":":
        colon = end
    host, port = authority[:colon], authority[colon + 1:]
    if _HOST_CHARS.fullmatch(host) is None:
        return None
    out += host.lower()
    port = port.lstrip(b"0") or port[-1:]
    if port and (scheme, port) not in ((b"http", b"80"), (b"https", b"443")):
        if not port.isdigit() or len(port) > 5 or not 0 < int(port) <= 65535:
            return None
        out += b":" + port
    tail = rest[end:]
    query = min((i for i in (tail.find(b"?"), tail.find(b"#")) if i >= 0), default=len(tail))
    path = _normalize_path(tail[:query])
    if path is None:
        return None
    out += path + _normalize_escapes(tail[query:])
    return bytes(out)


def _authority_end(rest: bytes) -> int:
    """Where the host and port end: at the first ``/``, ``?`` or ``#``."""
    found = [i for i in (rest.find(b"/"), rest.find(b"?"), rest.find(b"#")) if i >= 0]
    return min(found, default=len(rest))


def _normalize_escapes(text: bytes) -> bytes:
    out = bytearray()
    at = 0
    while at < len(text):
        byte = text[at]
        escaped = byte == 0x25  # "%"
        if escaped:
            byte = int(text[at + 1:at + 3], 16)
            at += 3
        else:
            at += 1
        if 0x21 <= byte <= 0x7E and byte not in _UNSAFE and not (escaped and byte in _RESERVED):
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def _normalize_path(path: bytes) -> bytes | None:
    """``/`` then the segments, ``.`` dropped and ``..`` taking the one before; None when a ``..``
    would climb above the root."""
    kept: list[bytes] = []
    segments = path[1:].split(b"/") if path.startswith(b"/") else path.split(b"/")
    for at, raw in enumerate(segments):
        segment = _normalize_escapes(raw)
        last = at == len(segments) - 1
        if segment == b".":
            if last:
                kept.append(b"")
            continue
        if segment == b"..":
            if not kept:
                return None
            kept.pop()
            if last:
                kept.append(b"")
            continue
        kept.append(segment)
    return b"/" + b"/".join(kept)


# -- git's config syntax ------------------------------------------------------------------------


class ConfigSyntaxError(ValueError):
    """Where git's config parser stops (``bad config line``)."""

    line = 0
    """The line git names where it stops (1 the first; 0 before any): that of the byte it stops
    at, a continued value's last line included (it named the line the setting began on)."""
    at: int | None = None
    """The byte it stops at, when known."""


def _bad(why: str, at: int) -> ConfigSyntaxError:
    exc = ConfigSyntaxError(why)
    exc.at = at
    return exc


_SPACE = frozenset(b" \t\r")
"""git's ``isspace`` but the newline (which ends lines)."""
_KEY = re.compile(rb"[A-Za-z0-9-]*")
_PLAIN = re.compile(rb'[^\\"\n;# \t\r]+')
_BOM = b"\xef\xbb\xbf"
_ESCAPES = {ord("t"): 0x09, ord("b"): 0x08, ord("n"): 0x0A, ord("\\"): 0x5C, ord('"'): 0x22}


def config_entries(data: bytes, valueless_lines: dict[bytes, int] | None = None) -> Iterator[tuple[bytes, bytes | None]]:
    """The settings of a git config file, as git's parser hands them on: ``(name, value)``, the
    name ``section[.subsection].key`` (section and key lower-cased), the value None for a bare
    key.  Raises ``ConfigSyntaxError`` where git's parser stops, after the settings before it.
    ``valueless_lines`` gets the line (1 the first) each bare key is first met on.

    As git reads it: ``\\r\\n`` is a newline; a UTF-8 byte-order mark starts the file or not at
    all; ``#`` and ``;`` start comments; ``[section]``, ``[section.sub]`` (lower-cased) or
    ``[section "sub"]`` (``\\`` takes the next character) start sections, and settings may follow
    on the same line; a value's unquoted spaces collapse, its quotes and escapes (``\\t \\b \\n
    \\\\ \\"``, a line continuation) are resolved, and it ends at an unquoted newline or comment.
    """
    text = data.replace(b"\r\n", b"\n")
    end = len(text)
    at = 0
    if text[:1] == _BOM[:1]:
        if not text.startswith(_BOM):
            raise _bad("a partial byte-order mark", at)
        at = len(_BOM)
    stem = b""
    start = at
    lines = counted = 0
    try:
        while at < end:
            start = at
            byte = text[at]
            if byte == 0x0A or byte in _SPACE:
                at += 1
            elif byte in b"#;":
                newline = text.find(b"\n", at)
                at = end if newline < 0 else newline + 1
            elif byte == 0x5B:  # "["
                stem, at = _section(text, at + 1)
            elif 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A:
                key = _KEY.match(text, at)
                assert key is not None
                name = stem + key.group().lower()
                at = key.end()
                while at < end and text[at] in b" \t":
                    at += 1
                if at >= end or text[at] == 0x0A:
                    if valueless_lines is not None and name not in valueless_lines:
                        lines += text.count(b"\n", counted, start)  # (on from the last one: one pass in all)
                        counted = start
                        valueless_lines[name] = lines + 1
                    yield name, None
                    at += 1
                elif text[at] == 0x3D:  # "="
                    value, at = _value(text, at + 1)
                    yield name, value
                else:
                    raise _bad("a key without '='", at)
            else:
                raise _bad("not a section, key or comment", at)
    except ConfigSyntaxError as exc:
        exc.line = text.count(b"\n", 0, start if exc.at is None else exc.at) + 1
        raise


@dataclass(frozen=True, slots=True)
class CanonicalConfig:
    """A git config file as ``canonical_config`` writes it for dulwich, and what that form loses."""

    text: bytes | None
    """The settings in the one form dulwich reads as git does, each key lower-cased but a valueless
    one's, upper-cased: dulwich reads it as ``true`` and keeps its key as written, so a value is
    known for valueless by its key (``git.written_values``) where a key is written both ways.  None
    for a file with a setting of no section name (``.sub.key``), left as it is."""
    valueless: frozenset[bytes]
    """The names (``section[.subsection].key``, as ``config_entries`` gives them) the file writes
    without ``=`` at least once: dulwich reads such a line as ``true``, git as no value at all (a
    boolean's true, but a size's "bad numeric config value ''")."""
    valueless_lines: Mapping[bytes, int] = field(default_factory=dict)
    """The line each of ``valueless`` is first written without ``=`` on (1 the first), for messages."""


def canonical_config(data: bytes) -> CanonicalConfig | None:
    """The settings of a git config file as git reads them, in its order, written in the one form
    dulwich's parser reads as git does: ``[section "subsection"]`` headers, each value quoted with
    its escapes, a valueless key alone (upper-cased).  dulwich refused headers git reads (``[remote  "o"]``,
    ``[remote\t"o"]``, ``[a "b"][c]``: the repository was served to nobody) and read some values
    otherwise (a continuation line's leading spaces dropped, an unquoted tab kept, ``[sec.Sub]``'s
    subsection not lower-cased).  None for a file git's parser stops in (``ConfigSyntaxError``'s
    callers say so)."""
    out: bytearray | None = bytearray()
    valueless: dict[bytes, int] = {}
    current: tuple[bytes, bytes | None] | None = None
    try:
        for name, value in config_entries(data, valueless):
            section, _, rest = name.partition(b".")
            subsection, dot, key = rest.rpartition(b".")
            if out is None:
                continue
            if not section or not key:
                out = None
                continue
            place = (section, subsection if dot else None)
            if place != current:
                current = place
                out += b"[" + section + (b"]\n" if place[1] is None else b' "' + _header_quoted(subsection) + b'"]\n')
            out += b"\t" + key.upper() + b"\n" if value is None else b"\t" + key + b" = " + _value_text(value) + b"\n"
    except ConfigSyntaxError:
        return None
    return CanonicalConfig(bytes(out) if out is not None else None, frozenset(valueless), valueless)


_AS_IS = re.compile(rb'(?:[^\s"#;\\](?:[^"#;\\\n]*[^\s"#;\\])?)?')
"""A value dulwich reads as it stands, unquoted (quoted values cost its parser a third more)."""


def _value_text(value: bytes) -> bytes:
    return value if _AS_IS.fullmatch(value) else b'"' + _quoted(value) + b'"'


def _header_quoted(subsection: bytes) -> bytes:
    """A subsection as a header quotes it: only ``\\`` and ``"`` escaped (a header's ``\\t`` is the
    letter ``t`` to git's parser and dulwich's: a tab, or a backspace, is written as it is)."""
    return subsection.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


def _quoted(value: bytes) -> bytes:
    return value.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n") \
        .replace(b"\t", b"\\t").replace(b"\b", b"\\b")


def _section(text: bytes, at: int) -> tuple[bytes, int]:
    """A section header after its ``[``: the name stem (with its trailing ``.``) and where the header ends."""
    name = bytearray()
    end = len(text)
    while True:
        if at >= end:
            raise _bad("an unterminated section header", at)
        byte = text[at]
        if byte == 0x5D:  # "]"
            if not name:
                raise _bad("an empty section name", at)
            return bytes(name) + b".", at + 1
        if byte == 0x0A or byte in _SPACE:
            return _subsection(text, at, name)
        if not (chr(byte).isascii() and (chr(byte).isalnum() or byte in b"-.")):
            raise _bad("a bad section name", at)
        name.append(byte | 0x20 if 0x41 <= byte <= 0x5A else byte)
        at += 1


def _subsection(text: bytes, at: int, name: bytearray) -> tuple[bytes, int]:
    """``[section "sub"]`` from the space after the section name."""
    end = len(text)
    while True:
        if text[at] == 0x0A:
            raise _bad("a newline in a section header", at)
        at += 1
        if at >= end or not (text[at] == 0x0A or text[at] in _SPACE):
            break
    if at >= end or text[at] != 0x22:  # '"'
        raise _bad("a subsection not in quotes", at)
    name.append(0x2E)
    at += 1
    while True:
        if at >= end or text[at] == 0x0A:
            raise _bad("an unterminated subsection", at)
        byte = text[at]
        at += 1
        if byte == 0x22:
            break
        if byte == 0x5C:  # "\\": the next character as it is
            if at >= end or text[at] == 0x0A:
                raise _bad("an unterminated subsection", at)
            byte = text[at]
            at += 1
        name.append(byte)
    if at >= end or text[at] != 0x5D:
        raise _bad("a subsection not followed by ']'", at)
    return bytes(name) + b".", at + 1


def _value(text: bytes, at: int) -> tuple[bytes, int]:
    """A value after its ``=``: the value and where its line ends."""
    out = bytearray()
    end = len(text)
    quoted = False
    spaces = 0
    while True:
        if at >= end or text[at] == 0x0A:
            if quoted:
                raise _bad("a newline in a quoted value", at)
            return bytes(out), at + 1
        byte = text[at]
        if byte in _SPACE and not quoted:
            if out:
                spaces += 1
            at += 1
            continue
        if not quoted and byte in b";#":
            newline = text.find(b"\n", at)
            return bytes(out), end if newline < 0 else newline + 1
        if spaces:
            out += b" " * spaces
            spaces = 0
        if byte == 0x5C:  # "\\"
            at += 1
            if at >= end or text[at] == 0x0A:
                at += 1  # a continuation line (or the end of the file)
                continue
            escaped = _ESCAPES.get(text[at])
            if escaped is None:
                raise _bad("an unknown escape in a value", at)
            out.append(escaped)
            at += 1
        elif byte == 0x22:
            quoted = not quoted
            at += 1
        else:
            run = _PLAIN.match(text, at)
            if run is not None:
                out += run.group()
                at = run.end()
            else:  # a space, ";" or "#" inside quotes
                out.append(byte)
                at += 1
