"""Small text files beside the revlogs: phaseroots, bookmarks, and the hgrc publish flag.

Formats as Mercurial writes them: ``phaseroots`` is ``<phase> <hex>`` lines
(phases.py), ``bookmarks`` is ``<hex> <name>`` lines (bookmarks.py), and a
repository publishes unless ``[phases] publish`` says otherwise.
"""

from __future__ import annotations

import binascii
import os
import re
from collections.abc import Callable, Mapping

from backends.interfaces import Node
from protocols.client_gone import checked
from protocols.errors import StorageError
from protocols.text import printable

HEX40 = re.compile(rb"[0-9a-fA-F]{40}\Z")


def parse_phaseroots(data: bytes, rev_of: Mapping[bytes, int]) -> dict[int, int]:
    """``<phase> <hex>`` lines -> {rev: phase}; unknown nodes are ignored as Mercurial does."""
    roots: dict[int, int] = {}
    for line in data.splitlines():
        phase, _, hexnode = line.partition(b" ")
        try:
            rev = rev_of[binascii.unhexlify(hexnode.strip())]
            roots[rev] = max(roots.get(rev, 0), int(phase))
        except (KeyError, ValueError, binascii.Error):
            continue
    return roots


def parse_bookmarks(data: bytes) -> dict[bytes, Node]:
    """The bookmarks file's names and nodes; a name that is not UTF-8 (written by an old hg or
    another tool in Latin-1) is read as Latin-1, as hg reads it (``encoding.tolocal``'s fallback),
    so that clients get it in UTF-8 and the next write stores it so."""
    marks: dict[bytes, Node] = {}
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        fallback: Callable[[bytes], bytes] | None = latin1_fallback
    else:
        fallback = None  # (every name is UTF-8: no line needs its own look)
    unhexlify, error = binascii.unhexlify, binascii.Error
    for line in checked(data.splitlines(), "the bookmarks list"):
        hexnode, _, name = line.partition(b" ")
        if not name or len(hexnode) != 40:
            continue
        try:
            node = unhexlify(hexnode)  # (what ``HEX40`` matches, either case, and only that)
        except error:
            continue
        marks[name if fallback is None else fallback(name)] = Node(node)
    return marks


def latin1_fallback(text: bytes) -> bytes:
    """``text`` when it is UTF-8, else its bytes read as Latin-1 and written in UTF-8."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return text.decode("latin-1").encode("utf-8")
    return text


def format_bookmarks(marks: Mapping[bytes, Node]) -> bytes:
    return b"".join(binascii.hexlify(node) + b" " + name + b"\n" for name, node in sorted(marks.items()))


def parse_publishing(hgrc: bytes, include: Callable[[bytes], bytes | None] | None = None) -> bool:
    """``[phases] publish`` from an hgrc; Mercurial's default is publishing.

    ``include(path)``: the text of a file an ``%include`` names (None if it is
    missing, which Mercurial ignores too); without it ``%include`` is skipped.
    A value that is not one of Mercurial's booleans is refused, as hg refuses
    to run with it.
    """
    return config_bool(hgrc, b"phases", b"publish", include, default=True)


def config_bool(hgrc: bytes, section: bytes, name: bytes, include: Callable[[bytes], bytes | None] | None,
                default: bool) -> bool:
    """A boolean of an hgrc (Mercurial's ``parsebool``); one hg would refuse raises ``StorageError``."""
    value = config_value(hgrc, section, name, include)
    if value is None:
        return default
    parsed = BOOLEANS.get(value.lower())
    if parsed is None:
        shown = value.decode("utf-8", "replace")
        key = f"{section.decode('utf-8', 'replace')}.{name.decode('utf-8', 'replace')}"
        raise StorageError(f"the repository's .hg/hgrc is invalid: {key} is not a boolean ('{shown}'); "
                           "fix it on the server")
    return parsed


def config_list(value: bytes) -> list[bytes]:
    """A list setting (``[web] allow-push = "alice" bob``) as hg's ``ui.configlist`` reads it
    (``stringutil.parselist``): items apart at commas and white space; an item that starts with
    ``"`` runs to the next ``"`` not escaped as ``\\"`` (commas and spaces in it kept, ``""`` an
    empty item); a quote inside a plain item is kept, ``\\"`` there as ``"``; a quote left open
    keeps its ``"`` and its text is read again as a list."""
    return _list_items(value.lstrip(b" ,\n"), 0)


LIST_SEPARATORS = frozenset(b" \t\n\r\x0b\x0c,")
"""What parts the items of a list setting: ASCII white space (``bytes.isspace``) and commas."""
_AFTER_QUOTE = frozenset(b" ,")
"""What hg skips after an item's closing quote: spaces and commas only (a tab then starts an empty item)."""
MAX_OPEN_QUOTES = 64
"""Quotes left open one inside another's text that are read again; past them the text is one item
(hg recurses for each, and fails near a thousand)."""


def _list_items(text: bytes, depth: int) -> list[bytes]:
    text = text.rstrip(b" ,")
    if not text:
        return []
    items, at, quoted = [b""], 0, False
    while quoted or at < len(text):
        if not quoted:
            at, quoted = _plain_step(text, at, items)
            continue
        at, left_open = _quoted_item(text, at, items)
        if left_open:
            return items[:-1] + _reopened(items[-1], depth)
        quoted = False
    return items


def _plain_step(text: bytes, at: int, items: list[bytes]) -> tuple[int, bool]:
    """Read on from ``at`` outside quotes: separators start a new item, then a run of plain bytes
    or one quote; whether a quoted item starts there."""
    start = at
    while at < len(text) and text[at] in LIST_SEPARATORS:
        at += 1
    if at >= len(text):
        return at, False
    if at > start:
        items.append(b"")
    if text[at] == 0x22:  # '"'
        if not items[-1]:
            return at + 1, True
        items[-1] = (items[-1][:-1] if items[-1].endswith(b"\\") else items[-1]) + b'"'
        return at + 1, False
    end = at
    while end < len(text) and text[end] not in LIST_SEPARATORS and text[end] != 0x22:
        end += 1
    items[-1] += text[at:end]
    return end, False


def _quoted_item(text: bytes, at: int, items: list[bytes]) -> tuple[int, bool]:
    """Read the quoted item starting at ``at`` (past its opening quote) into ``items[-1]``; whether
    it is left open (its text, unescaped, is then ``items[-1]``)."""
    if text[at:at + 1] == b'"':  # "": hg adds an empty item
        items.append(b"")
        at += 1
        while at < len(text) and text[at] in LIST_SEPARATORS:
            at += 1
        return at, False
    content = bytearray()
    while at < len(text) and text[at] != 0x22:
        escaped = text[at:at + 2] == b'\\"'
        content += b'"' if escaped else text[at:at + 1]
        at += 2 if escaped else 1
    items[-1] = bytes(content)
    if at >= len(text):
        return at, True
    at += 1
    while at < len(text) and text[at] in _AFTER_QUOTE:
        at += 1
    if at == len(text) - 1 and text[at] == 0x22:  # a last lone quote joins the item
        items[-1] += b'"'
        return at + 1, False
    if at < len(text):
        items.append(b"")
    return at, False


def _reopened(text: bytes, depth: int) -> list[bytes]:
    """The items of a quote left open: its text read again as a list, the first item keeping the quote."""
    inner = _list_items(text, depth + 1) if depth < MAX_OPEN_QUOTES else [text.rstrip(b" ,")]
    if not inner:
        return [b'"']
    return [b'"' + inner[0], *inner[1:]]


BOOLEANS = {b"1": True, b"yes": True, b"true": True, b"on": True, b"always": True,
            b"0": False, b"no": False, b"false": False, b"off": False, b"never": False}
"""Mercurial's ``parsebool``."""
MAX_INCLUDE_DEPTH = 8
OWN_HGRC = ".hg/hgrc"
"""How a refusal names the repository's own hgrc (hg names the file it read, with its line)."""

_SECTION = re.compile(rb"\[([^\[]+)\]")
_ITEM = re.compile(rb"([^=\s][^=]*?)\s*=\s*((.*\S)?)")
_CONTINUATION = re.compile(rb"\s+(\S|\S.*\S)\s*$")
_INCLUDE = re.compile(rb"%include\s+(\S|\S.*\S)\s*$")
_UNSET = re.compile(rb"%unset\s+(\S+)")


def absolute_includes(text: bytes, directory: bytes) -> bytes:
    """``text`` with each ``%include`` of a relative path made absolute against ``directory``: hg
    resolves an include against the directory of the file that names it (``~`` and ``$VAR`` first)."""
    lines = text.split(b"\n")
    for i, line in enumerate(lines):
        found = _INCLUDE.match(line)
        if found is not None:
            path = os.path.expanduser(os.path.expandvars(found.group(1)))
            if not os.path.isabs(path):
                lines[i] = b"%include " + os.path.join(directory, path)
    return b"\n".join(lines)


def config_value(text: bytes, section: bytes, name: bytes, include: Callable[[bytes], bytes | None] | None
                 ) -> bytes | None:
    """One value of a Mercurial config file, read as Mercurial's ``config.parse`` reads it.

    ``[section]`` lines (anything may follow the ``]``; the name is kept as written, spaces
    too, so ``[ web ]`` is not ``[web]``), ``name = value`` with
    continuation lines (indented), ``#`` and ``;`` comment lines, ``%include
    FILE`` (which starts outside any section) and ``%unset NAME``; the last
    setting wins.  A ``#`` after a value is part of the value, as for Mercurial.
    """
    found = None
    for where, key, value in _settings(text, include, 0):
        if where == section and key == name:
            found = value
    return found


def config_section(text: bytes, section: bytes, include: Callable[[bytes], bytes | None] | None
                   ) -> list[tuple[bytes, bytes]]:
    """The settings of one section, in Mercurial's order (a name set again moves to the end;
    ``%unset`` removes it)."""
    found: dict[bytes, bytes] = {}
    for where, key, value in _settings(text, include, 0):
        if where != section:
            continue
        found.pop(key, None)
        if value is not None:
            found[key] = value
    return list(found.items())


def _settings(text: bytes, include: Callable[[bytes], bytes | None] | None, depth: int,
              source: str = OWN_HGRC) -> list[tuple[bytes, bytes, bytes | None]]:
    """Every setting and unsetting, in order: (section, name, value or None), each line taken as
    Mercurial's ``config.parse`` takes it (a ``%include``, a comment or blank line, a section, an
    item, an ``%unset``, in that order; a comment line inside a value's continuation lines does not
    end them).  A line it takes for none of those (``[web`` unclosed, an indented line after no
    setting, a name without ``=``) is a parse error, which makes hg refuse the repository whole
    (``config error at .hg/hgrc:N``): ``StorageError`` too, where the line was skipped and the
    settings after it read, ``allow_read`` under a ``[web`` kept from no one.  Its refusal names the
    file (``source``: ``.hg/hgrc``, or the path an ``%include`` gives) and the line's number in that
    file, as hg's ``config error at FILE:N``; a ``WithBase`` text's first line (the operator's
    ``[hg] hgrc``) is not one of ``.hg/hgrc``'s."""
    shift = 1 if depth == 0 and isinstance(text, WithBase) else 0
    out: list[tuple[bytes, bytes, bytes | None]] = []
    current, continuable = b"", False
    for number, line in enumerate(text.splitlines(), 1):
        if number == 1 and line.startswith(_BOM):  # (hg drops a first line's byte-order mark)
            line = line[len(_BOM):]
        if continuable:
            if line.startswith((b"#", b";")):
                continue
            if more := _CONTINUATION.match(line):
                where, key, value = out[-1]
                out[-1] = (where, key, (value or b"") + b"\n" + more.group(1))
                continue
            continuable = False
        if (inc := _INCLUDE.match(line)) is not None:
            included = include(inc.group(1)) if include is not None and depth < MAX_INCLUDE_DEPTH else None
            if included is not None:
                out.extend(_settings(included, include, depth + 1, _included_source(inc.group(1))))
        elif not line.strip() or line.startswith((b"#", b";")):
            continue
        elif (header := _SECTION.match(line)) is not None:
            current = header.group(1)  # as written: hg's ``[ web ]`` is the section " web ", not [web]
        elif (item := _ITEM.match(line)) is not None:
            out.append((current, item.group(1), item.group(2)))
            continuable = True
        elif (unset := _UNSET.match(line)) is not None:
            out.append((current, unset.group(1), None))
        else:
            shown = printable(line.strip()[:MAX_SHOWN_LINE])
            what = "an indented line after no setting" if line[:1].isspace() else "neither a section nor a setting"
            raise StorageError(f"config error at {source}:{number - shift}: the repository's hgrc has a line hg "
                               f"cannot read there, {what} ('{shown}'), and hg refuses the repository: fix it on "
                               "the server")
    return out


_BOM = b"\xef\xbb\xbf"


class WithBase(bytes):
    """An hgrc text whose first line is an ``%include`` of the operator's ``[hg] hgrc`` (``with_base``):
    ``.hg/hgrc``'s own lines start at its second, and a refusal numbers them from 1 as hg does."""

    __slots__ = ()


def with_base(base: bytes, own: bytes) -> bytes:
    """``own`` (a ``.hg/hgrc``) read after the file ``base`` (absolute), its lines numbered as its own
    and its first line's byte-order mark dropped as hg drops it (no longer the text's first line,
    ``_settings`` would not)."""
    return WithBase(b"%include " + base + b"\n" + own.removeprefix(_BOM))


def _included_source(path: bytes) -> str:
    """How a refusal names a file an ``%include`` read: its path, a relative one under ``.hg``."""
    shown = printable(path[:MAX_SHOWN_PATH])
    return shown if os.path.isabs(os.path.expanduser(os.fsdecode(path))) else f".hg/{shown}"


MAX_SHOWN_LINE = 80
"""Bytes of an hgrc line hg cannot read that its refusal shows."""
MAX_SHOWN_PATH = 4096
"""Bytes of an included file's path a refusal shows (the operator's own path, shown whole: cut at the
line's 80 bytes, a path under a deep folder named a file that does not exist)."""
