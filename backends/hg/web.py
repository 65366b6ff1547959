"""hgweb's JSON pages of a repository's names (``/NAME/json-tags``, ``json-bookmarks``,
``json-branches``), which release scripts and dashboards read: the same bytes as ``hg serve``
writes them (its ``json`` style: one key per line, its paranoid string escaping, dates as
``[seconds, offset]``), over what pulls can see (no secret or hidden changeset); and
``/NAME/raw-rev/REV``, a changeset as a patch (``raw_rev``), which review tools fetch.

Blocking (revlog reads).
"""

from __future__ import annotations

import binascii
import difflib
import time
from collections.abc import Callable, Mapping, Sequence

from backends.hg.archive import file_data, manifest_at, resolve
from backends.hg.repository import HgRepo
from backends.interfaces import NULL_NODE, Node
from protocols.errors import UnsupportedFeature

PAGES = ("json-tags", "json-bookmarks", "json-branches")
RAW_REV = "raw-rev"

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
    """The page ``name``: one of ``PAGES``, or ``raw-rev/REV``."""
    kind, _, key = name.partition("/")
    if kind == RAW_REV:
        return raw_rev(repo, key)
    return _WRITERS[name](repo)


def _date(repo: HgRepo, rev: int) -> bytes:
    changeset = repo.changeset(repo.changelog(), rev)
    return b"[%s, %d]" % (repr(float(changeset.time)).encode(), changeset.tz)


def _tip(repo: HgRepo) -> bytes:
    return binascii.hexlify(repo.lookup(b"tip"))  # the last changeset pulls can see, or the null one


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


# --- raw-rev: a changeset as ``hg export`` writes it (hgweb's raw style) ------------------------

CONTEXT = 3
"""Lines of context around a change, as ``hg diff`` without ``-U``."""
MAX_PATCH_TEXT = 64 << 20
"""File texts (old and new) one ``raw-rev`` may diff; it is built whole in memory."""
_NO_EOL = b"\n\\ No newline at end of file\n"


def raw_rev(repo: HgRepo, key: str) -> bytes:
    """hgweb's ``raw-rev``: the changeset's header (user, date, node, parents), description and
    its plain diff against its first parent (``hg diff`` without ``--git``: file dates in the
    headers, ``Binary file NAME has changed`` for a side holding a NUL byte, renames and copies as
    added files, mode changes not shown).  Hunks are cut as a longest-matching-block diff cuts them:
    the same as hg's own wherever the change is unambiguous; where repeated lines let a change be
    placed in more than one way, they may be cut otherwise, and the patch applies the same."""
    node, rev, _mtime, files = resolve(repo, key)
    cl = repo.changelog()
    lines = [b"", b"# HG changeset patch"]
    if rev < 0:
        return b"\n".join([*lines, b"# User ", b"# Date 0 0", b"# Node ID " + binascii.hexlify(NULL_NODE), b"", b"",
                           b"", b""])
    changeset = repo.changeset(cl, rev)
    p1, p2 = cl.parents(Node(node))
    lines += [b"# User " + changeset.user, b"# Date %d %d" % (int(changeset.time), changeset.tz),
              b"# Node ID " + binascii.hexlify(node),
              b"".join(b"# Parent  " + binascii.hexlify(p) for p in (p1, p2) if p != NULL_NODE),
              changeset.description, b""]
    head = b"\n".join(lines) + b"\n"
    if p1 != NULL_NODE:
        base, old_entries = manifest_at(repo, cl.rev(p1))
        old_files = {path: file_node for path, file_node, _flags in old_entries}
        old_date = _diff_date(base.time, base.tz)
    else:
        old_files, old_date = {}, _diff_date(0, 0)
    new_files = {path: file_node for path, file_node, _flags in files}
    new_date = _diff_date(changeset.time, changeset.tz)
    label = b"diff -r %s -r %s " % (binascii.hexlify(p1)[:12], binascii.hexlify(node)[:12])
    out = [head]
    read = 0
    for path in sorted(old_files.keys() | new_files.keys()):
        old_node, new_node = old_files.get(path), new_files.get(path)
        if old_node == new_node:
            continue
        old = file_data(repo, path, old_node) if old_node else b""
        new = file_data(repo, path, new_node) if new_node else b""
        read += len(old) + len(new)
        if read > MAX_PATCH_TEXT:
            raise UnsupportedFeature(f"this changeset's files hold more than {MAX_PATCH_TEXT >> 20} MiB: its patch "
                                     "is not served; clone the repository to see it")
        if old == new:
            continue
        out.append(label + path + b"\n")
        if b"\0" in old or b"\0" in new:
            out.append(b"Binary file %s has changed\n" % path)
            continue
        out.append(b"--- %s\t%s\n" % (b"a/" + path if old_node else b"/dev/null", old_date if old_node else _diff_date(0, 0)))
        out.append(b"+++ %s\t%s\n" % (b"b/" + path if new_node else b"/dev/null", new_date if new_node else _diff_date(0, 0)))
        out.extend(unified_hunks(old, new))
    out.append(b"\n")
    return b"".join(out)


def _diff_date(when: float, tz: int) -> bytes:
    """hg's ``datestr``: the local time of the change and its offset (``tz`` is seconds west)."""
    local = time.gmtime(int(when) - tz)
    sign = "-" if tz > 0 else "+"
    minutes = abs(tz) // 60
    return (time.strftime("%a %b %d %H:%M:%S %Y ", local) + f"{sign}{minutes // 60:02d}{minutes % 60:02d}").encode()


def _lines(text: bytes) -> list[bytes]:
    """The lines of a text split at each newline only, each with its end (the last may have none)."""
    parts = text.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


MAX_EXACT_LINES = 2000
"""Past this many changed lines on each side (their product; once the common start and end are set aside),
difflib's popular-line heuristic (autojunk) is used: its exact search is quadratic (20,000 equal
lines took a minute), the heuristic's answer a valid, maybe longer, patch."""


def matching_blocks(old: Sequence[bytes], new: Sequence[bytes]) -> list[tuple[int, int, int]]:
    """(old start, new start, length) of the runs of equal lines a longest-match diff finds, in
    order, ending with the empty run at both ends.  The common first and last lines are matched
    first (a change among repeated lines lands after them, where hg's own diff puts it)."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
        suffix += 1
    middle_old, middle_new = old[prefix:len(old) - suffix], new[prefix:len(new) - suffix]
    exact = len(middle_old) * len(middle_new) <= MAX_EXACT_LINES * MAX_EXACT_LINES
    matcher = difflib.SequenceMatcher(None, middle_old, middle_new, autojunk=not exact)
    blocks = [(0, 0, prefix)] if prefix else []
    blocks += [(a + prefix, b + prefix, size) for a, b, size in matcher.get_matching_blocks() if size]
    if suffix:
        blocks.append((len(old) - suffix, len(new) - suffix, suffix))
    blocks.append((len(old), len(new), 0))
    return blocks


def unified_hunks(old_text: bytes, new_text: bytes) -> list[bytes]:
    """The ``@@ -a,b +c,d @@`` hunks between two texts, as hg writes them: three lines of context,
    changes closer than that joined into one hunk, counts always written, a last line without
    its end marked ``\\ No newline at end of file``."""
    old, new = _lines(old_text), _lines(new_text)
    changes = []
    a_end = b_end = 0
    for a, b, size in matching_blocks(old, new):
        if a > a_end or b > b_end:
            changes.append((a_end, a, b_end, b))
        a_end, b_end = a + size, b + size
    out: list[bytes] = []
    hunk: list[int] | None = None  # [old start, old change end, new start, new change end]
    body: list[bytes] = []

    def line(prefix: bytes, text: bytes) -> bytes:
        return prefix + (text if text.endswith(b"\n") else text + _NO_EOL)

    def flush() -> None:
        assert hunk is not None
        start_a, end_a, start_b, end_b = hunk
        tail = min(end_a + CONTEXT, len(old))
        body.extend(line(b" ", x) for x in old[end_a:tail])
        length_a = tail - start_a
        length_b = end_b - start_b + tail - end_a
        out.append(b"@@ -%d,%d +%d,%d @@\n" % (start_a + 1 if length_a else start_a, length_a,
                                                 start_b + 1 if length_b else start_b, length_b))
        out.extend(body)

    for a1, a2, b1, b2 in changes:
        start_a, start_b = max(a1 - CONTEXT, 0), max(b1 - CONTEXT, 0)
        if hunk is not None and start_a < hunk[1] + CONTEXT + 1:
            body.extend(line(b" ", x) for x in old[hunk[1]:a1])
            hunk[1], hunk[3] = a2, b2
        else:
            if hunk is not None:
                flush()
                body = []
            hunk = [start_a, a2, start_b, b2]
            body.extend(line(b" ", x) for x in old[start_a:a1])
        body.extend(line(b"-", x) for x in old[a1:a2])
        body.extend(line(b"+", x) for x in new[b1:b2])
    if hunk is not None:
        flush()
    return out
