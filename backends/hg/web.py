"""hgweb's JSON pages of a repository's names (``/NAME/json-tags``, ``json-bookmarks``,
``json-branches``), which release scripts and dashboards read: the same bytes as ``hg serve``
writes them (its ``json`` style: one key per line, its paranoid string escaping, dates as
``[seconds, offset]``), over what pulls can see (no secret or hidden changeset).

Blocking (revlog reads).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping

from backends.hg.repository import HgRepo
from backends.interfaces import NULL_NODE

PAGES = ("json-tags", "json-bookmarks", "json-branches")

_SHORT = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}


def json_string(raw: bytes) -> bytes:
    """hg's ``json`` filter on bytes (paranoid): UTF-8 as ``\\uXXXX`` beyond ASCII (surrogate pairs
    past the BMP), a byte that is not UTF-8 as ``\\udcXX``, controls, DEL, ``<`` and ``>`` escaped."""
    out = ['"']
    for ch in raw.decode("utf-8", "surrogateescape"):
        code = ord(ch)
        if code in _SHORT:
            out.append(_SHORT[code])
        elif 0x20 <= code < 0x7F and ch not in "<>":
            out.append(ch)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out).encode("ascii")


def page(repo: HgRepo, name: str) -> bytes:
    """The page ``name`` (one of ``PAGES``)."""
    return _WRITERS[name](repo)


def _date(repo: HgRepo, rev: int) -> bytes:
    changeset = repo.changeset(repo.changelog(), rev)
    return b"[%s, %d]" % (repr(float(changeset.time)).encode(), changeset.tz)


def _tip(repo: HgRepo) -> bytes:
    cl = repo.changelog()
    visible = repo.views(cl).visible
    tip = next((r for r in range(len(cl) - 1, -1, -1) if visible[r]), -1)
    return binascii.hexlify(cl.node(tip) if tip >= 0 else NULL_NODE)


def _entries(entries: list[bytes]) -> bytes:
    return b", ".join(entries)


def _named(repo: HgRepo, kind: bytes, names: Mapping[bytes, bytes]) -> bytes:
    """Tags or bookmarks on visible changesets: newest revision first, then names in reverse."""
    cl = repo.changelog()
    visible = repo.views(cl).visible
    revs = [(cl.rev(node), name, node) for name, node in names.items()
            if name != b"tip" and cl.has_node(node) and visible[cl.rev(node)]]
    items = [b'{\n"%s": %s,\n"node": "%s",\n"date": %s\n}' % (kind, json_string(name), binascii.hexlify(node),
                                                             _date(repo, rev))
             for rev, name, node in sorted(revs, reverse=True)]
    return b'{\n"node": "%s",\n"%ss": [%s]\n}' % (_tip(repo), kind, _entries(items))


def _tags(repo: HgRepo) -> bytes:
    return _named(repo, b"tag", repo.tags())


def _bookmarks(repo: HgRepo) -> bytes:
    return _named(repo, b"bookmark", dict(repo.stored_bookmarks()))


def _branches(repo: HgRepo) -> bytes:
    """Open branches first, then closed ones, each newest tip first; a branch whose tip is no head
    of the repository (merged away) is ``inactive``."""
    cl = repo.changelog()
    heads = set(repo.heads())
    tips = [(not closed, cl.rev(node), name, node, closed) for name, (node, closed) in repo.branch_tips().items()]
    items = []
    for _open, rev, name, node, closed in sorted(tips, reverse=True):
        status = b"closed" if closed else b"inactive" if node not in heads else b"open"
        items.append(b'{\n"branch": %s,\n"node": "%s",\n"date": %s,\n"status": "%s"\n}'
                     % (json_string(name), binascii.hexlify(node), _date(repo, rev), status))
    return b'{\n"branches": [%s]\n}' % _entries(items)


_WRITERS: dict[str, Callable[[HgRepo], bytes]] = {
    "json-tags": _tags, "json-bookmarks": _bookmarks, "json-branches": _branches,
}
