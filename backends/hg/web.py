"""hgweb's JSON pages and raw patch, which scripts, dashboards and review tools read, written as
``hg serve`` writes them (its ``json`` style: one key per line, its paranoid string escaping, dates
as ``[seconds, offset]``) over what pulls can see (no secret or hidden changeset):

- names: ``json-tags``, ``json-bookmarks``, ``json-branches``, and ``json-summary``;
- changesets: ``json-rev/REV`` (``json-changeset``), ``json-shortlog[/REV]``, ``json-changelog[/REV]``
  (``json-log``);
- a directory or a file at a revision: ``json-manifest/REV[/PATH]``, ``json-file/REV/PATH``, and a
  file's history, ``json-filelog/REV/PATH`` (``json-log/REV/PATH``), and its annotation,
  ``json-annotate/REV/PATH`` (and its raw style; ``backends.hg.annotate``);
- ``raw-rev/REV``, a changeset as a patch (``raw_rev``);
- the feeds, ``atom-log``, ``rss-log`` and those of tags, bookmarks and branches (``backends.hg.feeds``).

Blocking (revlog reads).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import mimetypes
import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

from backends.hg import linediff
from backends.hg.annotate import stored_hints
from backends.hg.archive import (
    adjusted_linkrev,
    copy_metadata,
    file_data,
    file_node_at,
    file_parents,
    file_size,
    manifest_at,
    not_in_manifest,
    resolve,
    resolve_file_revision,
    resolve_revision,
)
from backends.hg.archive import allowed as archive_allowed
from backends.hg.blocklines import block_ancestors, block_descendants, line_range
from backends.hg.changelog import Changeset
from backends.hg.graph import NULL_REV, ancestors_mask
from backends.hg.keys import BOOLEANS, config_list
from backends.hg.repository import HgRepo
from backends.hg.revlog import Revlog
from backends.interfaces import NULL_NODE, Node
from protocols.client_gone import tick
from protocols.errors import ProtocolError, UnsupportedFeature

PAGES = ("json-tags", "json-bookmarks", "json-branches", "raw-tags", "raw-bookmarks", "raw-branches")
RAW_REV = "raw-rev"

_SHORT = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}


_PLAIN = re.compile(rb"[\x20\x21\x23-\x3b\x3d\x3f-\x5b\x5d-\x7e]*")
"""What hg's ``json`` filter writes as it is: printable ASCII but ``"``, ``\\``, ``<`` and ``>``."""


def json_string(raw: bytes) -> bytes:
    """hg's ``json`` filter on bytes (paranoid): UTF-8 as ``\\uXXXX`` beyond ASCII (surrogate pairs
    past the BMP), a byte that is not UTF-8 as ``\\udcXX``, controls, DEL, ``<`` and ``>`` escaped."""
    plain = found.end() if (found := _PLAIN.match(raw)) else 0  # most names and lines: nothing to look at
    if plain == len(raw):
        return b'"%s"' % raw
    if plain == len(raw) - 1 and raw[-1:] == b"\n":  # a line
        return b'"%s\\n"' % raw[:-1]
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


def page(repo: HgRepo, name: str, revcount: int | None = None, url: str = "/", context: str | None = None,
         query: bytes | None = None, switches: Mapping[bytes, bytes] | None = None,
         linerange: tuple[Sequence[bytes], bool] | None = None) -> bytes:
    """The page ``name``: one of ``PAGES``, ``raw-rev/REV``, ``json-rev[/REV]`` (``json-changeset``),
    ``json-shortlog[/REV]``, ``json-changelog[/REV]`` (``json-log``), ``json-manifest``, ``json-file``,
    ``json-summary``, ``json-filelog/REV/PATH``; ``revcount`` for the logs, ``url`` (the repository's, ending in ``/``) for the
    summary's archive links, ``query`` a log's search (``?rev=``), ``switches`` an annotation's
    whitespace switches (``?ignorews=1``...), ``linerange`` a file log's ``?linerange=`` values
    and whether ``descend`` was given."""
    kind, _, key = name.partition("/")
    if kind == RAW_REV:
        return raw_rev(repo, key)
    if kind in CHANGESET_PAGES:
        return json_rev(repo, key or "tip")
    if kind in LOG_PAGES:
        if query is not None and not key:  # hgweb: a log without a revision and with ?rev= is a search
            return json_search(repo, query, revcount)
        return json_log(repo, key, kind == "json-shortlog", revcount)
    if kind == RAW_LOG:
        return raw_log(repo, key, revcount, query)
    if kind == RAW_SHORTLOG:
        return b"'raw' is not a browsable style"
    if kind == RAW_FILEDIFF:
        revision, _, path = key.partition("/")
        return raw_filediff(repo, revision, path)
    if kind == SUMMARY:
        return json_summary(repo, url)
    if kind == GRAPH:
        return json_graph(repo, key, revcount)
    if kind in FEEDS:
        from backends.hg import feeds

        if key:  # a file's history: atom-log/REV/PATH
            return feeds.file_feed(repo, repo.web_name(), kind, key, url)
        return feeds.feed(repo, repo.web_name(), kind, url)
    if kind == FILELOG:
        revision, _, path = key.partition("/")
        lines = LineRange.parse(*linerange) if linerange is not None else None
        return json_filelog(repo, revision or "tip", path, revcount, lines)
    if kind in FILE_PAGES:
        revision, _, path = key.partition("/")
        return json_file(repo, revision or "tip", path, kind == "json-manifest")
    if kind in DIFF_PAGES:
        revision, _, path = key.partition("/")
        return json_diff(repo, revision, path)
    if kind == COMPARISON:
        revision, _, path = key.partition("/")
        return json_comparison(repo, revision, path, context)
    if kind in (ANNOTATE, RAW_ANNOTATE):
        revision, _, path = key.partition("/")
        return (json_annotate if kind == ANNOTATE else raw_annotate)(repo, revision, path, switches)
    return _WRITERS[name](repo)


def _date(repo: HgRepo, rev: int) -> bytes:
    return _date_of(repo.changeset(repo.changelog(), rev))


def _date_of(changeset: Changeset) -> bytes:
    """hg's ``{date|json}``: ``[seconds, offset]``, the seconds as a float."""
    return b"[%s, %d]" % (repr(float(changeset.time)).encode(), changeset.tz)


def _tip(repo: HgRepo) -> bytes:
    return binascii.hexlify(repo.lookup(b"tip"))  # the last changeset pulls can see, or the null one


def _entries(entries: list[bytes]) -> bytes:
    return b", ".join(entries)


def _named(repo: HgRepo, kind: bytes, names: Mapping[bytes, bytes]) -> bytes:
    return b'{\n"node": "%s",\n"%ss": [%s]\n}' % (_tip(repo), kind, _entries(_named_entries(repo, kind, names)))


def _named_entries(repo: HgRepo, kind: bytes, names: Mapping[bytes, bytes]) -> list[bytes]:
    return [b'{\n"%s": %s,\n"node": "%s",\n"date": %s\n}' % (kind, json_string(name), binascii.hexlify(node),
                                                             _date(repo, rev))
            for rev, name, node in _named_rows(repo, names)]


def _named_rows(repo: HgRepo, names: Mapping[bytes, bytes]) -> list[tuple[int, bytes, bytes]]:
    """Tags or bookmarks on visible changesets: newest revision first, then names in reverse."""
    cl = repo.changelog()
    visible = repo.views(cl).visible
    revs = [(cl.rev(node), name, node) for name, node in names.items()
            if name != b"tip" and cl.has_node(node) and visible[cl.rev(node)]]
    return sorted(revs, reverse=True)


def _raw_tags(repo: HgRepo) -> bytes:
    """hgweb's raw style of ``tags``: ``NAME<TAB>NODE`` lines, ``tip`` among them (as its ``tags``
    template lists every entry), newest first."""
    cl = repo.changelog()
    tip = repo.lookup(b"tip")
    rows = [*_named_rows(repo, repo.tags()), (cl.rev(tip) if tip != NULL_NODE else NULL_REV, b"tip", tip)]
    return b"".join(b"%s\t%s\n" % (name, binascii.hexlify(node)) for _rev, name, node in sorted(rows, reverse=True))


def _raw_bookmarks(repo: HgRepo) -> bytes:
    """hgweb's raw style of ``bookmarks``: ``NAME<TAB>NODE`` lines, newest first."""
    return b"".join(b"%s\t%s\n" % (name, binascii.hexlify(node))
                    for _rev, name, node in _named_rows(repo, dict(repo.stored_bookmarks())))


def _raw_branches(repo: HgRepo) -> bytes:
    """hgweb's raw style of ``branches``: ``NAME<TAB>NODE<TAB>STATUS`` lines, in the json page's order."""
    return b"".join(b"%s\t%s\t%s\n" % (name, binascii.hexlify(node), status)
                    for name, node, _rev, status in _branch_rows(repo))


def _tags(repo: HgRepo) -> bytes:
    return _named(repo, b"tag", repo.tags())


def _bookmarks(repo: HgRepo) -> bytes:
    return _named(repo, b"bookmark", dict(repo.stored_bookmarks()))


def _branches(repo: HgRepo) -> bytes:
    return b'{\n"branches": [%s]\n}' % _entries(_branch_entries(repo))


def _branch_entries(repo: HgRepo) -> list[bytes]:
    return [b'{\n"branch": %s,\n"node": "%s",\n"date": %s,\n"status": "%s"\n}'
            % (json_string(name), binascii.hexlify(node), _date(repo, rev), status)
            for name, node, rev, status in _branch_rows(repo)]


def _branch_rows(repo: HgRepo) -> list[tuple[bytes, bytes, int, bytes]]:
    """Open branches first, then closed ones, each newest tip first; a branch whose tip is no head
    of the repository (merged away) is ``inactive``."""
    cl = repo.changelog()
    heads = set(repo.heads())
    tips = [(not closed, cl.rev(node), name, node, closed) for name, (node, closed) in repo.branch_tips().items()]
    return [(name, node, rev, b"closed" if closed else b"inactive" if node not in heads else b"open")
            for _open, rev, name, node, closed in sorted(tips, reverse=True)]


_WRITERS: dict[str, Callable[[HgRepo], bytes]] = {
    "json-tags": _tags, "json-bookmarks": _bookmarks, "json-branches": _branches,
    "raw-tags": _raw_tags, "raw-bookmarks": _raw_bookmarks, "raw-branches": _raw_branches,
}


# --- json-rev, json-shortlog, json-changelog: changesets as hgweb's json style writes them -------

CHANGESET_PAGES = ("json-rev", "json-changeset")
LOG_PAGES = ("json-shortlog", "json-changelog", "json-log")
"""``json-log`` without a file is hgweb's ``changelog``."""
MAX_CHANGES, MAX_SHORT_CHANGES = 10, 60
"""hgweb's default ``[web] maxchanges`` and ``maxshortchanges``: changesets a log page lists."""
MAX_REVCOUNT = 20_000
"""A larger ``revcount`` is taken as this many (hgweb takes any number; a page is built whole in memory,
about 400 bytes a changeset)."""
_PHASES = {0: b"public", 1: b"draft", 2: b"secret"}


def web_int(repo: HgRepo, key: bytes, default: int) -> int:
    """A number of the hgrc's ``[web]`` (``maxchanges``, ``maxfiles``…); ``default`` when unset or not one."""
    setting = repo.web_settings().get(key, b"")
    return int(setting) if setting.strip().isdigit() else default


def page_count(repo: HgRepo, revcount: int | None, key: bytes, default: int) -> int:
    """How many entries a log page lists: ``revcount`` (``?revcount=``), else the hgrc's ``[web]``
    ``key`` (``default`` when unset); at least 1, at most ``MAX_REVCOUNT`` (a page is built whole)."""
    return min(max(revcount if revcount is not None else web_int(repo, key, default), 1), MAX_REVCOUNT)


class _Changesets:
    """What hgweb's pages say of each changeset, from one look at the repository: the served view's
    tip, every tag (``tip`` too) and bookmark (divergent ones too) by node, names sorted as hg sorts them."""

    def __init__(self, repo: HgRepo) -> None:
        self.repo = repo
        self.cl = repo.changelog()
        self.views = repo.views(self.cl)
        self.tip = repo.lookup(b"tip")
        self.tip_rev = self.cl.rev(self.tip) if self.tip != NULL_NODE else NULL_REV
        tags: dict[bytes, list[bytes]] = {}
        for name, node in repo.tags().items():
            tags.setdefault(node, []).append(name)
        tags.setdefault(self.tip, []).append(b"tip")  # the null node's in an empty repository, as hg's
        marks: dict[bytes, list[bytes]] = {}
        for name, node in repo.stored_bookmarks().items():
            marks.setdefault(node, []).append(name)
        self.tags = {node: sorted(names) for node, names in tags.items()}
        self.bookmarks = {node: sorted(names) for node, names in marks.items()}

    def date(self, rev: int) -> bytes:
        return _date_of(self.repo.changeset(self.cl, rev))

    def recent(self, start: int, count: int) -> list[int]:
        """The ``count`` revisions pulls can see from ``start`` down."""
        revs: list[int] = []
        rev = start
        while rev >= 0 and len(revs) < count:
            if self.views.visible[rev]:
                revs.append(rev)
            rev -= 1
        return revs

    def parents(self, rev: int) -> list[bytes]:
        return [binascii.hexlify(self.cl.node(p)) for p in self.views.parents[rev] if p >= 0]

    def children(self, rev: int) -> list[bytes]:
        visible = self.views.visible
        return [binascii.hexlify(self.cl.node(child)) for child in self.views.parents.children(rev) if visible[child]]

    def common(self, rev: int, changeset: Changeset) -> dict[str, bytes]:
        """The fields every changeset entry has, as JSON values."""
        node = self.cl.node(rev)
        return {
            "node": b'"%s"' % binascii.hexlify(node),
            "date": _date_of(changeset),
            "desc": json_string(changeset.description),
            "branch": json_string(changeset.extra.get(b"branch", b"default")),
            "bookmarks": _list([json_string(name) for name in self.bookmarks.get(node, [])]),
            "tags": _list([json_string(name) for name in self.tags.get(node, [])]),
            "user": json_string(changeset.user),
            "phase": b'"%s"' % _PHASES.get(self.views.phases[rev], b"secret"),
        }

    def log_entry(self, rev: int, parents: Sequence[int] | None = None) -> bytes:
        """A changeset as hgweb's logs and summary list it (``changelistentry``); ``parents``: the
        revisions named as its parents (a file history's), else its own."""
        return _object(self.log_fields(rev, parents))

    def log_fields(self, rev: int, parents: Sequence[int] | None = None) -> list[tuple[str, bytes]]:
        """``log_entry``'s fields, the parents last."""
        tick("the page")  # a long log's entries: stopped once its client has gone
        common = self.common(rev, self.repo.changeset(self.cl, rev))
        named = self.parents(rev) if parents is None else [binascii.hexlify(self.cl.node(p)) for p in parents]
        return [*((k, common[k]) for k in ("node", "date", "desc", "branch", "bookmarks", "tags", "user", "phase")),
                ("parents", _list([b'"%s"' % p for p in named]))]


def _list(items: Sequence[bytes]) -> bytes:
    return b"[" + b", ".join(items) + b"]"


def _object(fields: Sequence[tuple[str, bytes]]) -> bytes:
    """An object as hg's json templates write one: a key per line, nothing indented."""
    return b"{\n" + b",\n".join(b'"%s": %s' % (key.encode(), value) for key, value in fields) + b"\n}"


def json_rev(repo: HgRepo, key: str) -> bytes:
    """hgweb's ``json-rev/REV`` (``json-changeset``): the changeset, its children that pulls can
    see, its files with their status (hg's ``filesadded``: in no parent's manifest, or as the changeset
    records it, ``_recorded_added``), and its plain
    diff against its first parent (``file_diffs``), each line typed as hgweb types it."""
    _node, rev, _mtime, files = resolve(repo, key)
    info = _Changesets(repo)
    if rev < 0:  # hgweb's page of the null revision: its children are the roots
        roots = [b'"%s"' % binascii.hexlify(info.cl.node(r)) for r, (p1, p2) in enumerate(info.views.parents)
                 if p1 < 0 and p2 < 0 and info.views.visible[r]]
        return _object([("node", b'"%s"' % binascii.hexlify(NULL_NODE)), ("date", b"[0, 0]"), ("desc", b'""'),
                        ("branch", b'"default"'), ("bookmarks", b"[]"),
                        ("tags", _list([json_string(n) for n in info.tags.get(NULL_NODE, [])])), ("user", b'""'),
                        ("parents", b"[]"), ("children", _list(roots)), ("files", b"[]"), ("diff", b"[]"),
                        ("phase", b'"public"')])
    changeset = repo.changeset(info.cl, rev)
    present = {path for path, _node, _flags in files}
    in_parents: set[bytes] = set()
    for parent in info.views.parents[rev]:
        if parent >= 0:
            in_parents.update(path for path, _node, _flags in manifest_at(repo, parent)[1])
    recorded = _recorded_added(repo, changeset)
    statuses = []
    for path in changeset.files:
        added = path not in in_parents if recorded is None else path in recorded
        status = b"removed" if path not in present else b"added" if added else b"modified"
        statuses.append(_object([("file", json_string(path)), ("status", b'"%s"' % status)]))
    blocks = _diff_blocks(file_diffs(repo, rev, files))
    common = info.common(rev, changeset)
    return _object([
        *((k, common[k]) for k in ("node", "date", "desc", "branch", "bookmarks", "tags", "user")),
        ("parents", _list([b'"%s"' % p for p in info.parents(rev)])),
        ("children", _list([b'"%s"' % c for c in info.children(rev)])),
        ("files", _list(statuses)),
        ("diff", _list(blocks)),
        ("phase", common["phase"]),
    ])


DIFF_PAGES = ("json-diff", "json-filediff")


def json_diff(repo: HgRepo, key: str, path: str) -> bytes:
    """hgweb's ``json-diff/REV/PATH`` (``filediff``): one file's diff in changeset REV against its
    first parent (none when REV did not change it), with the changesets hgweb names as the file's
    parents and children (a file removed in REV: the changeset's own)."""
    info, rev, changeset, files, wanted, found = _file_at(repo, key, path)
    if found is None and wanted not in changeset.files:
        raise not_in_manifest(wanted, info.cl.node(rev))
    blocks = _diff_blocks(file_diffs(repo, rev, files, wanted))  # against the first parent, as hgweb (a merge too)
    return _object([*_file_head(repo, info, rev, changeset, wanted, found), ("diff", _list(blocks))])


def _file_at(repo: HgRepo, key: str, path: str, file_page: bool = True
             ) -> tuple[_Changesets, int, Changeset, list[tuple[bytes, bytes, bytes]], bytes, bytes | None]:
    """What a page of a file in changeset ``key`` starts from: the changesets' names, the
    revision, its changeset and manifest entries, the path as bytes and its file node there (None:
    not in it); 404 for the null revision.  A revision a file page (``file_page``) cannot find is
    hgweb's ``revision not found``, else its ``unknown revision``."""
    _node, rev, _mtime, files = resolve_file_revision(repo, key) if file_page else resolve(repo, key)
    wanted = path.strip("/").encode("utf-8", "surrogateescape")
    if rev < 0:
        raise not_in_manifest(wanted, NULL_NODE)
    found = next((file_node for file_path, file_node, _flags in files if file_path == wanted), None)
    info = _Changesets(repo)
    return info, rev, repo.changeset(info.cl, rev), files, wanted, found


def _file_head(repo: HgRepo, info: _Changesets, rev: int, changeset: Changeset, wanted: bytes,
               found: bytes | None) -> list[tuple[str, bytes]]:
    """The fields hgweb's ``filediff`` and ``filecomparison`` begin with: the path, the changeset,
    and the changesets it names as the file's parents and children (a file not in the changeset,
    removed there: the changeset's own)."""
    if found is None:
        parents, children = info.parents(rev), info.children(rev)
    else:
        parents = [binascii.hexlify(info.cl.node(p)) for p in _file_parents(repo, info, rev, wanted, found)]
        children = _file_children(repo, info, wanted, found)
    common = info.common(rev, changeset)
    return [("path", json_string(wanted)), ("node", common["node"]), ("date", common["date"]),
            ("desc", common["desc"]), ("author", common["user"]),
            ("parents", _list([b'"%s"' % p for p in parents])), ("children", _list([b'"%s"' % c for c in children]))]


COMPARISON = "json-comparison"
COMPARISON_CONTEXT = 5
"""hgweb's default ``[web] comparisoncontext``: lines of context around each change."""


def json_comparison(repo: HgRepo, key: str, path: str, context: str | None = None) -> bytes:
    """hgweb's ``json-comparison/REV/PATH``: a file's lines before (the first parent's) and after
    changeset REV side by side, in difflib's groups of changes with ``context`` lines around them
    (``?context=N``, ``full``, else ``[web] comparisoncontext``), as hgweb makes them (with difflib
    too); a binary side as hgweb names it."""
    info, rev, changeset, _files, wanted, found = _file_at(repo, key, path, file_page=False)
    p1 = info.views.parents[rev][0]
    before = {entry_path: node for entry_path, node, _flags in manifest_at(repo, p1)[1]} if p1 >= 0 else {}
    if found is None and wanted not in before:  # hgweb looks in the first parent first
        raise not_in_manifest(wanted, info.cl.node(p1) if p1 >= 0 else NULL_NODE)
    left = _comparison_lines(repo, wanted, before.get(wanted))
    right = _comparison_lines(repo, wanted, found)
    setting = context if context is not None else repo.web_settings().get(b"comparisoncontext", b"").decode(
        "ascii", "replace").strip() or str(COMPARISON_CONTEXT)
    if setting != "full" and not setting.lstrip("-").isdigit():
        raise ProtocolError("context must be a number of lines or full", 404)
    matcher = difflib.SequenceMatcher(None, left, right)
    groups = [matcher.get_opcodes()] if setting == "full" or int(setting) < 0 else \
        list(matcher.get_grouped_opcodes(int(setting)))
    blocks = [_object([("lines", _list(list(_comparison_block(left, right, opcodes))))]) for opcodes in groups]
    head = _file_head(repo, info, rev, changeset, wanted, found)
    return _object([*head, ("leftnode", b'"%s"' % binascii.hexlify(info.cl.node(p1) if p1 >= 0 else NULL_NODE)),
                    ("rightnode", dict(head)["node"]), ("comparison", _list(blocks))])


ANNOTATE = "json-annotate"
RAW_ANNOTATE = "raw-annotate"
"""``annotate/REV/PATH?style=raw``: hgweb's raw style of the annotate page."""


def json_annotate(repo: HgRepo, key: str, path: str, switches: Mapping[bytes, bytes] | None = None) -> bytes:
    """hgweb's ``json-annotate/REV/PATH`` (``fileannotate``): the file at changeset REV, the
    changesets hgweb names as its parents and children, and each line with the changeset, path
    and line number it comes from (``backends.hg.annotate``)."""
    info, rev, changeset, wanted, found, flags, lines = _annotation(repo, key, path, switches)
    about: dict[int, dict[str, bytes]] = {}
    entries = []
    for number, line in enumerate(lines, 1):
        origin = line.origin
        if origin.rev not in about:
            about[origin.rev] = info.common(origin.rev, repo.changeset(info.cl, origin.rev))
        common = about[origin.rev]
        entries.append(_object([("node", common["node"]), ("author", common["user"]), ("desc", common["desc"]),
                                ("abspath", json_string(origin.path)), ("targetline", b"%d" % line.number),
                                ("line", json_string(line.text)), ("lineno", b"%d" % number),
                                ("revdate", common["date"])]))
    common = info.common(rev, changeset)
    parents = [b'"%s"' % binascii.hexlify(info.cl.node(p)) for p in _file_parents(repo, info, rev, wanted, found)]
    children = [b'"%s"' % c for c in _file_children(repo, info, wanted, found)]
    return _object([("abspath", json_string(wanted)), ("node", common["node"]), ("author", common["user"]),
                    ("date", common["date"]), ("desc", common["desc"]), ("parents", _list(parents)),
                    ("children", _list(children)), ("permissions", json_string(flags)),
                    ("annotate", _list(entries))])


def raw_annotate(repo: HgRepo, key: str, path: str, switches: Mapping[bytes, bytes] | None = None) -> bytes:
    """hgweb's raw style of the annotate page: ``USER@REV: LINE`` for each line (hg's short user)."""
    info, _rev, _changeset, _wanted, _found, _flags, lines = _annotation(repo, key, path, switches)
    users: dict[int, bytes] = {}
    out = [b"\n"]
    for line in lines:
        rev = line.origin.rev
        if rev not in users:
            users[rev] = short_user(repo.changeset(info.cl, rev).user)
        out.append(b"%s@%d: %s" % (users[rev], rev, line.text))
    out.append(b"\n\n\n\n")
    return b"".join(out)


def short_user(user: bytes) -> bytes:
    """hg's ``user`` filter: the name before ``@``, after ``<``, before a space and before a dot."""
    user = user.partition(b"@")[0]
    if b"<" in user:
        user = user.partition(b"<")[2]
    return user.partition(b" ")[0].partition(b".")[0]


WHITESPACE_SWITCHES = (b"ignorews", b"ignorewsamount", b"ignorewseol", b"ignoreblanklines")
"""hgweb's annotate query switches (``?ignorews=1``), over the hgrc's ``[annotate]`` ones."""


def whitespace_of(repo: HgRepo, switches: Mapping[bytes, bytes] | None) -> linediff.Whitespace:
    """The whitespace switches of an annotation: the hgrc's ``[annotate]``, then the query's (a
    value hg cannot read as a boolean is true)."""
    chosen = {name: repo.hgrc_bool(b"annotate", name, False) for name in WHITESPACE_SWITCHES[:3]}
    chosen[b"ignoreblanklines"] = False  # changes no annotation (linediff.Whitespace): not read
    for name, value in (switches or {}).items():
        if name in chosen:
            chosen[name] = BOOLEANS.get(value.lower(), True)
    return linediff.Whitespace(*(chosen[name] for name in WHITESPACE_SWITCHES))


def _annotation(repo: HgRepo, key: str, path: str, switches: Mapping[bytes, bytes] | None = None
                ) -> tuple[_Changesets, int, Changeset, bytes, bytes, bytes, list[Any]]:
    from backends.hg import annotate

    info, rev, changeset, files, wanted, found = _file_at(repo, key, path)
    flags = next((f for p, _n, f in files if p == wanted), None)
    if flags is None or found is None:
        raise not_in_manifest(wanted, info.cl.node(rev))
    filelog = repo.filelog(wanted)
    if filelog.raw_size(filelog.rev(found)) > MAX_FILE_TEXT:
        raise UnsupportedFeature(f"this file holds more than {MAX_FILE_TEXT >> 20} MiB: it is not annotated here; "
                                 "clone the repository and run hg annotate")
    lines = annotate.annotate(repo, info.views.parents, rev, wanted, found, b"(binary:%s)" % guessed_type(wanted),
                              whitespace_of(repo, switches))
    return info, rev, changeset, wanted, found, flags, lines


def guessed_type(path: bytes) -> bytes:
    """The media type hgweb names a binary file by (Python's guess from its name)."""
    return (mimetypes.guess_type(path.decode("utf-8", "surrogateescape"))[0] or "application/octet-stream").encode(
        "utf-8", "surrogateescape")


MAX_COPY_META = 128 << 10
"""What a stored file text may hold beyond its data (a copy's metadata: its source's path and
node), so that a size from the index refuses only what its data would too."""


def _stored_size(repo: HgRepo, path: bytes, file_node: bytes | None) -> int:
    """A file revision's stored text's size, from its filelog's index (its data and any copy
    metadata: at least the data's size), nothing read."""
    if file_node is None:
        return 0
    filelog = repo.filelog(path)
    return max(0, filelog.raw_size(filelog.rev(file_node)))


def _refuse_patch() -> NoReturn:
    raise UnsupportedFeature(f"this changeset's files hold more than {MAX_PATCH_TEXT >> 20} MiB: its diff "
                             "is not served; clone the repository to see it")


def _comparison_lines(repo: HgRepo, path: bytes, file_node: bytes | None) -> list[bytes]:
    if file_node is None:
        return []
    too_large = UnsupportedFeature(f"this file holds more than {MAX_PATCH_TEXT >> 20} MiB: its comparison is "
                                   "not served; clone the repository to see it")
    if _stored_size(repo, path, file_node) > MAX_PATCH_TEXT + MAX_COPY_META:  # before it is read
        raise too_large
    data = file_data(repo, path, file_node)
    if len(data) > MAX_PATCH_TEXT:
        raise too_large
    if b"\0" in data:
        return [b"(binary file %s, hash: %s)" % (guessed_type(path), binascii.hexlify(file_node))]
    return data.splitlines()


def _comparison_block(left: list[bytes], right: list[bytes], opcodes: Sequence[tuple[str, int, int, int, int]]
                      ) -> Iterator[bytes]:
    """hgweb's comparison lines of one group: pairs while both sides have lines, then one side's."""
    def line(kind: str, left_no: int | None, right_no: int | None) -> bytes:
        return _object([("t", b'"%s"' % kind.encode()), ("ln", b"%d" % left_no if left_no else b'""'),
                        ("ll", json_string(left[left_no - 1] if left_no else b"")),
                        ("rn", b"%d" % right_no if right_no else b'""'),
                        ("rl", json_string(right[right_no - 1] if right_no else b""))])

    for kind, left_lo, left_hi, right_lo, right_hi in opcodes:
        paired = min(left_hi - left_lo, right_hi - right_lo)
        for i in range(paired):
            yield line(kind, left_lo + i + 1, right_lo + i + 1)
        for i in range(left_lo + paired, left_hi):
            yield line(kind, i + 1, None)
        for i in range(right_lo + paired, right_hi):
            yield line(kind, None, i + 1)


def _file_children(repo: HgRepo, info: _Changesets, path: bytes, file_node: bytes) -> list[bytes]:
    """The changesets of a file revision's children (its filelog's), those pulls can see."""
    filelog = repo.filelog(path)
    file_rev = filelog.rev(file_node)
    linked = (filelog.linkrev(r) for r in range(file_rev + 1, len(filelog)) if file_rev in filelog.parent_revs(r))
    return [binascii.hexlify(info.cl.node(r)) for r in linked if info.views.visible[r]]


def _diff_blocks(diffs: Iterator[FileDiff]) -> list[bytes]:
    """The diff as hgweb's json style writes it: a block per file that has lines besides its
    ``diff`` line (numbered among all the files, as hgweb numbers them), its lines typed and numbered."""
    blocks = []
    for number, diff in enumerate(diffs, 1):
        shown = [*(h + b"\n" for h in diff.header), *diff.hunks]
        if not shown:
            continue
        lines = [_object([("t", b'"%s"' % _line_type(line)), ("n", b"%d" % n), ("l", json_string(line))])
                 for n, line in enumerate(shown, 1)]
        blocks.append(_object([("blockno", b"%d" % number), ("lines", _list(lines))]))
    return blocks


def _line_type(line: bytes) -> bytes:
    return line[:1] if line[:1] in (b"+", b"-", b"@") else b""


def json_log(repo: HgRepo, key: str, short: bool, revcount: int | None = None) -> bytes:
    """hgweb's ``json-shortlog[/REV]`` and ``json-changelog[/REV]`` (``json-log``): the changesets
    pulls can see from REV (the tip) down, ``revcount`` of them (else ``[web] maxshortchanges`` or
    ``maxchanges``, 60 and 10), and ``changeset_count``, hgweb's number of revisions (hidden ones too)."""
    info = _Changesets(repo)
    if key:
        node, start = resolve_revision(repo, key)
    else:
        node, start = info.tip, info.tip_rev
    count = page_count(repo, revcount, *((b"maxshortchanges", MAX_SHORT_CHANGES) if short else
                                         (b"maxchanges", MAX_CHANGES)))
    entries = [info.log_entry(rev) for rev in info.recent(start, count)]
    return (b'{\n  "node": "%s",\n  "changeset_count": %d,\n  "changesets": %s\n}\n'  # its own template file's layout
            % (binascii.hexlify(node), len(info.cl), _list(entries)))


def json_search(repo: HgRepo, query: bytes, revcount: int | None = None) -> bytes:
    """hgweb's search (``json-changelog?rev=QUERY``, any log without a revision): the changesets
    ``search`` finds, ``revcount`` of them (else ``[web] maxchanges``, 10), with the tip and the query."""
    info = _Changesets(repo)
    count = page_count(repo, revcount, b"maxchanges", MAX_CHANGES)
    entries = [info.log_entry(rev) if rev != NULL_REV else NULL_ENTRY for rev in search(repo, info, query, count)]
    return _object([("node", b'"%s"' % binascii.hexlify(info.tip)), ("query", json_string(query)),
                    ("entries", _list(entries))])


NULL_ENTRY = _object([("node", b'"%s"' % binascii.hexlify(NULL_NODE)), ("date", b"[0, 0]"), ("desc", b'""'),
                      ("branch", b'"default"'), ("bookmarks", b"[]"), ("tags", b"[]"), ("user", b'""'),
                      ("phase", b'"public"'), ("parents", b"[]")])
"""The null revision as hgweb's search lists it (``?rev=null``)."""


def search(repo: HgRepo, info: _Changesets, query: bytes, count: int) -> list[int]:
    """``search_mode``'s changesets."""
    return search_mode(repo, info, query, count)[1]


EXACT_SEARCH = b"exact revision search"
KEYWORD_SEARCH = b"literal keyword search"
REVSET_SEARCH = b"revset expression search"


def search_mode(repo: HgRepo, info: _Changesets, query: bytes, count: int) -> tuple[bytes, list[int]]:
    """hgweb's search modes (the mode's name, the changesets found): a query that names a revision (a number, an id or its prefix, a tag,
    a bookmark, a branch; ``null`` too) finds it; else each changeset, newest first, whose user, description or
    file names hold every word of the query (case folded); in hgweb's order, 100 revisions at a
    time from the newest block (whose quirk leaves revision 0 out when the revisions number 1, or
    1 more than a multiple of 100).  A revset (``backends.hg.revset``) finds its revisions, in its order
    reversed; one hgwire does not evaluate is refused (404)."""
    from backends.hg import revset

    try:
        node = repo.lookup(query)
    except KeyError:
        node = None
    if node == NULL_NODE:
        return EXACT_SEARCH, [NULL_REV]
    if node is not None and info.views.visible[info.cl.rev(node)]:
        return EXACT_SEARCH, [info.cl.rev(node)]
    try:
        revs = revset.search_revs(repo, query)
    except revset.NotServed as e:
        raise ProtocolError(str(e), 404) from e
    if revs is not None:
        return REVSET_SEARCH, revs[:count]
    words = fold(query).split()
    found: list[int] = []
    visible = info.views.visible
    for top in range(len(info.cl) - 1, 0, -100):
        for rev in range(top, max(0, top - 99) - 1, -1):
            if not visible[rev]:
                continue
            tick("the search")
            changeset = repo.changeset(info.cl, rev)
            fields = (fold(changeset.user), fold(changeset.description), fold(b" ".join(changeset.files)))
            if all(any(word in field for field in fields) for word in words):
                found.append(rev)
                if len(found) >= count:
                    return KEYWORD_SEARCH, found
    return KEYWORD_SEARCH, found


def fold(text: bytes) -> bytes:
    """hg's ``encoding.lower`` (UTF-8): ASCII lowered, else the text's characters, else its ASCII."""
    if text.isascii():
        return text.lower()
    try:
        return text.decode("utf-8").lower().encode("utf-8")
    except UnicodeError:
        return text.lower()


GRAPH = "json-graph"


def json_graph(repo: HgRepo, key: str, revcount: int | None = None) -> bytes:
    """hgweb's ``json-graph[/REV]``: the changesets pulls can see from REV (the tip) down,
    ``revcount`` of them (else ``[web] maxshortchanges``, 60), each as the logs list it with its
    column, row, colour and edges (``backends.hg.webgraph``), and hgweb's number of revisions."""
    from backends.hg import webgraph

    info = _Changesets(repo)
    node, start = resolve_revision(repo, key or "tip")
    count = page_count(repo, revcount, b"maxshortchanges", MAX_SHORT_CHANGES)
    revs = info.recent(start, count) if start >= 0 else []
    window = set(revs)
    parents = info.views.parents

    def parents_of(rev: int) -> list[int]:  # hg's dagwalker: those in the window sorted, then those off it
        return sorted({p for p in parents[rev] if p in window}) + [p for p in parents[rev] if p >= 0
                                                                    and p not in window]

    styles = webgraph.branch_styles(repo.hgrc_section(b"graph"))

    def style(rev: int) -> tuple[int, bytes]:
        if not styles:  # no [graph] settings: no changeset to read
            return -1, b""
        return styles.get(repo.changeset(info.cl, rev).extra.get(b"branch", b"default"), (-1, b""))

    rows = []
    for row, (rev, column, color, edges) in enumerate(webgraph.layout(parents_of, revs, style)):
        fields = info.log_fields(rev)
        shown = [b'{"bcolor": %s, "col": %d, "color": %d, "nextcol": %d, "width": %d}'
                 % (json_string(bcolor), col, webgraph.shown_color(edge_color), nextcol, width)
                 for col, nextcol, edge_color, width, bcolor in edges]
        rows.append(_object([*fields[:-1], ("col", b"%d" % column), ("row", b"%d" % row),
                             ("color", b"%d" % webgraph.shown_color(color)), ("edges", _list(shown)), fields[-1]]))
    return (b'{\n  "node": "%s",\n  "changeset_count": %d,\n  "changesets": %s\n}\n'  # its own template file's layout
            % (binascii.hexlify(node), len(info.cl), _list(rows)))


RAW_LOG = "raw-log"
"""``log?style=raw`` (``changelog``), and with ``?rev=`` its search: hgweb's raw style of the log."""
RAW_SHORTLOG = "raw-shortlog"
"""``shortlog?style=raw`` and the repository's own URL: hgweb's raw style has no shortlog."""
RAW_FILEDIFF = "raw-filediff"
"""``diff/REV/PATH?style=raw`` (``filediff``): one file's plain diff in hgweb's raw style."""


def raw_log(repo: HgRepo, key: str, revcount: int | None = None, query: bytes | None = None) -> bytes:
    """hgweb's raw style of the log from REV (the tip) down, ``revcount`` changesets (else ``[web]
    maxchanges``, 10), each as ``hg log`` prints one (the branch named at its branch's tip, its
    tags and bookmarks); with ``query`` and no REV, hgweb's search in that style."""
    from backends.hg import feeds

    info = _Changesets(repo)
    count = page_count(repo, revcount, b"maxchanges", MAX_CHANGES)
    if query is not None and not key:
        mode, revs = search_mode(repo, info, query, count)
        head = b'\n# HG changesets search\n# Node ID %s\n# Query "%s"\n# Mode %s\n\n' % (
            binascii.hexlify(info.tip), query, mode)
    else:
        node, start = resolve_revision(repo, key) if key else (info.tip, info.tip_rev)
        revs = info.recent(start, count) if start >= 0 else []
        head = b"\n# HG changelog\n# Node ID %s\n\n" % binascii.hexlify(node)
    tips = feeds.branch_at_tip(repo)
    out = [head]
    for rev in revs:
        if rev == NULL_REV:
            out.append(b"changeset:   %s\nrevision:    -1\nuser:        \ndate:        %s\nsummary:     \n\n"
                       % (binascii.hexlify(NULL_NODE), feeds.rfc822(None)))
            continue
        tick("the page")
        node = info.cl.node(rev)
        changeset = repo.changeset(info.cl, rev)
        out.append(b"changeset:   %s\nrevision:    %d\nuser:        %s\ndate:        %s\nsummary:     %s\n"
                   % (binascii.hexlify(node), rev, changeset.user, feeds.rfc822(changeset), changeset.description))
        branch = changeset.extra.get(b"branch", b"default")
        if tips.get(node) == branch:
            out.append(b"branch:      %s\n" % branch)
        out += [b"tag:         %s\n" % name for name in info.tags.get(node, [])]
        out += [b"bookmark:    %s\n" % name for name in info.bookmarks.get(node, [])]
        out.append(b"\n")
    out.append(b"\n")
    return b"".join(out)


def raw_filediff(repo: HgRepo, key: str, path: str) -> bytes:
    """hgweb's raw style of ``filediff``: one file's plain diff against the first parent, as the
    raw patch writes it (none when REV did not change the file)."""
    info, rev, changeset, files, wanted, found = _file_at(repo, key, path)
    if found is None and wanted not in changeset.files:
        raise not_in_manifest(wanted, info.cl.node(rev))
    return b"\n" + b"".join(raw_diff_lines(file_diffs(repo, rev, files, wanted))) + b"\n\n\n\n"


FILELOG = "json-filelog"
"""Also ``json-log/REV/PATH``: a log with a file is hgweb's ``filelog``."""


def json_filelog(repo: HgRepo, key: str, path: str, revcount: int | None = None,
                 lines: LineRange | None = None) -> bytes:
    """hgweb's ``json-filelog/REV/PATH``: the file's revisions from the one at REV (or, where REV
    does not have the file, the last one made at or before REV) down, ``revcount`` of them by file
    revision number (else ``[web] maxshortchanges``), each as the changeset that made it (its
    linkrev; one pulls cannot see is left out), with the changesets hgweb names as its parents.
    With ``lines`` (``?linerange=FROM:TO``, maybe ``&descend``): the revisions that changed those
    lines instead (``follow_lines``)."""
    info = _Changesets(repo)
    wanted = path.strip("/").encode("utf-8", "surrogateescape")
    if lines is not None:
        found = follow_lines(repo, info, key, wanted, lines, revcount)
        entries = [info.log_entry(rev, _file_parents(repo, info, rev, file_path, file_node))
                   for rev, file_path, file_node in found]
        return _object([("entries", _list(entries))])
    entries = [info.log_entry(linkrev, _file_parents(repo, info, linkrev, wanted, file_node))
               for linkrev, file_node in file_history(repo, info, key, wanted, revcount)]
    return _object([("entries", _list(entries))])


@dataclass(frozen=True, slots=True)
class LineRange:
    """hgweb's ``?linerange=FROM:TO`` (1-based, both included) and ``descend``, checked as hgweb
    checks them (``parse``)."""

    start: int
    """0-based, included."""
    end: int
    """0-based, excluded."""
    descend: bool = False

    @classmethod
    def parse(cls, values: Sequence[bytes], descend: bool) -> LineRange:
        if len(values) > 1:
            raise ProtocolError("redundant linerange parameter", 400)
        first, colon, last = values[0].partition(b":")
        try:
            if not colon or len(values[0]) > 40:  # no number of lines is that long
                raise ValueError
            fromline, toline = int(first), int(last)
        except ValueError:
            raise ProtocolError("invalid linerange parameter", 400) from None
        try:
            start, end = line_range(fromline, toline)
        except ValueError as e:
            raise ProtocolError(str(e), 400) from None
        return cls(start, end, descend)


def follow_lines(repo: HgRepo, info: _Changesets, key: str, wanted: bytes, lines: LineRange,
                 revcount: int | None) -> list[tuple[int, bytes, bytes]]:
    """hgweb's filelog of a line range (hg's ``blockancestors``, or ``blockdescendants`` with
    ``descend``): (changeset, path, file node) of the file's revisions that changed the lines,
    newest first (oldest first when descending), through renames when ascending, ``revcount`` of
    them at most (else ``[web] maxshortchanges``)."""
    _node, rev, _mtime, files = resolve_file_revision(repo, key)
    node = next((file_node for file_path, file_node, _flags in files if file_path == wanted), None)
    if node is None:  # not in REV: the last revision made before it, as hgweb's filelog
        history = file_history(repo, info, key, wanted, 1)
        if not history:
            return []
        rev, node = history[0]
    count = page_count(repo, revcount, b"maxshortchanges", MAX_SHORT_CHANGES)
    charge = _line_budget(time.monotonic() + LINE_RANGE_SECONDS)
    if lines.descend:
        found = block_descendants(repo, info.views.parents, rev, wanted, node, (lines.start, lines.end), charge)
    else:
        found = block_ancestors(repo, info.views.parents, rev, wanted, node, (lines.start, lines.end), charge)
    out: list[tuple[int, bytes, bytes]] = []
    for entry in found:
        if info.views.visible[entry[0]]:  # a changeset pulls cannot see is never shown
            out.append(entry)
        if len(out) == count:
            break
    return out




LINE_RANGE_SECONDS = 10.0
"""The longest a page's ``?linerange=`` history may take (it diffs every revision of the file that
it walks: a file of 3,000 revisions took a minute, holding one of the pages' threads meanwhile)."""


def _line_budget(deadline: float) -> Callable[[int], None]:
    """A ``blocklines`` charge that refuses the walk once ``deadline`` (``time.monotonic``) is past."""
    def charge(_cost: int) -> None:
        if time.monotonic() > deadline:
            raise ProtocolError(f"this line range's history takes more than {LINE_RANGE_SECONDS:.0f} s to find; "
                                "ask for fewer lines or a later revision, or clone the repository and use "
                                "hg log -L", 404)
    return charge


def file_history(repo: HgRepo, info: _Changesets, key: str, wanted: bytes, revcount: int | None) -> list[tuple[int, bytes]]:
    """hgweb's filelog selection: (linkrev, file node) of ``revcount`` (else ``[web]
    maxshortchanges``) file revisions from the one at ``key`` down (or, where ``key`` does not have
    the file, from the last one made at or before it), those pulls can see; 404 for a file that
    has none there."""
    node, rev, _mtime, files = resolve_file_revision(repo, key)
    found = next((file_node for file_path, file_node, _flags in files if file_path == wanted), None)
    filelog = repo.filelog(wanted) if wanted else None
    if filelog is None or len(filelog) == 0:
        raise not_in_manifest(wanted, node)
    if found is not None:
        top = filelog.rev(found)
    else:  # not in REV: the last revision made at or before it
        top = len(filelog) - 1
        while top >= 0 and filelog.linkrev(top) > rev:
            top -= 1
        if top < 0:
            raise not_in_manifest(wanted, node)
    revcount = page_count(repo, revcount, b"maxshortchanges", MAX_SHORT_CHANGES)
    history: list[tuple[int, bytes]] = []
    for file_rev in range(top, max(0, top + 1 - revcount) - 1, -1):
        linkrev = filelog.linkrev(file_rev)
        if info.views.visible[linkrev]:
            history.append((linkrev, filelog.node(file_rev)))
    return history


# --- json-summary: what a repository's front page shows --------------------------------------

SUMMARY = "json-summary"
FEEDS = tuple(f"{style}-{page}" for style in ("atom", "rss") for page in ("log", "tags", "bookmarks", "branches"))
"""hgweb's feeds (``backends.hg.feeds``)."""
SUMMARY_ENTRIES = 10
"""Tags, bookmarks and branches the summary lists (hgweb's fixed number)."""
_ARCHIVE_EXTENSIONS = (("zip", ".zip"), ("gz", ".tar.gz"), ("bz2", ".tar.bz2"))
"""hgweb's archive types, in its order."""


def json_summary(repo: HgRepo, url: str) -> bytes:
    """hgweb's ``json-summary``: the tip and its date, the ten newest bookmarks, branches (as
    ``json-branches``) and tags, the last ``[web] maxchanges`` revision numbers' changesets, the
    archives the hgrc allows (their URLs under ``url``, the repository's own with a final ``/``),
    and ``[web] labels``."""
    info = _Changesets(repo)
    cl, visible = info.cl, info.views.visible
    bookmarks = _named_entries(repo, b"bookmark", repo.stored_bookmarks())[:SUMMARY_ENTRIES]
    tag_entries = _named_entries(repo, b"tag", repo.tags())[:SUMMARY_ENTRIES]
    count = web_int(repo, b"maxchanges", MAX_CHANGES)
    shortlog = []
    for rev in range(len(cl) - 1, max(0, len(cl) - count) - 1, -1):  # revision numbers, hidden ones counted
        if visible[rev]:
            shortlog.append(info.log_entry(rev))
    archives = [_object([("node", b'"tip"'), ("extension", b'"%s"' % extension.encode()), ("type", b'"%s"' % kind.encode()),
                         ("url", json_string(f"{url}archive/tip{extension}".encode("utf-8", "surrogateescape")))])
                for kind, extension in _ARCHIVE_EXTENSIONS if archive_allowed(repo, kind)]
    labels = config_list(repo.web_settings().get(b"labels", b""))
    return _object([
        ("node", b'"%s"' % binascii.hexlify(info.tip)),
        ("lastchange", info.date(info.tip_rev) if info.tip_rev >= 0 else b"[0, 0]"),
        ("bookmarks", _list(bookmarks)),
        ("branches", _list(_branch_entries(repo)[:SUMMARY_ENTRIES])),
        ("shortlog", _list(shortlog)),
        ("tags", _list(tag_entries)),
        ("archives", _list(archives)),
        ("labels", _list([json_string(label) for label in labels])),
    ])


# --- json-manifest, json-file: a directory or a file at a revision ---------------------------

FILE_PAGES = ("json-manifest", "json-file")
MAX_FILE_TEXT = 64 << 20
"""The largest file ``json-file`` shows (it is built whole in memory; hgweb has no bound)."""


@dataclass(frozen=True)
class Directory:
    """A directory at revision ``rev`` as hgweb lists one: its subdirectories, each its name and
    hgweb's ``emptydirs`` (the chain of directories below it that hold one directory alone), and
    its files, each its name, size (as ``filelog.size``) and flags, by name; names are what
    follows ``prefix`` (the directory's path and ``/``, empty for the root)."""

    node: bytes
    rev: int
    prefix: bytes
    directories: list[tuple[bytes, bytes]]
    files: list[tuple[bytes, int, bytes]]


@dataclass(frozen=True)
class FileLines:
    """A file at revision ``rev`` as hgweb's file page shows it: its lines (hgweb's stand-in
    ``(binary:TYPE)`` for a binary file)."""

    node: bytes
    rev: int
    path: bytes
    file_node: bytes
    lines: list[bytes]


def file_or_directory(repo: HgRepo, key: str, path: str, manifest_only: bool = False) -> FileLines | Directory:
    """What ``json-file/REV/PATH`` shows, for its JSON (``json_file``) and for the browser's page
    (``gateway.hg_web``, which renders it as it is, with no JSON between): the file at that
    revision, or a directory (any path with ``manifest_only``, ``json-manifest``)."""
    wanted = path.strip("/").encode("utf-8", "surrogateescape")
    if not manifest_only and wanted:
        node, rev = resolve_revision(repo, key)
        file_node = file_node_at(repo, rev, wanted) if rev >= 0 else None
        if file_node is not None:  # (the manifest is parsed only for a directory)
            return FileLines(node, rev, wanted, file_node, _file_lines(repo, wanted, file_node))
        node, rev, _mtime, files = resolve(repo, key)
        try:
            return _directory(repo, node, rev, files, wanted)
        except ProtocolError:  # neither a file nor a directory: hgweb's file error
            raise not_in_manifest(wanted, node) from None
    node, rev, _mtime, files = resolve(repo, key)
    return _directory(repo, node, rev, files, wanted)


def json_file(repo: HgRepo, key: str, path: str, manifest_only: bool) -> bytes:
    """hgweb's ``json-file/REV/PATH``: the file at that revision, its lines and the changesets
    hgweb names as its parents; a directory (or no path) is ``json-manifest/REV/PATH``, its
    subdirectories (with hgweb's ``emptydirs``, the chain of directories holding one directory
    alone) and files (size as ``filelog.size``, flags, the revision's date)."""
    shown = file_or_directory(repo, key, path, manifest_only)
    info = _Changesets(repo)
    if isinstance(shown, FileLines):
        return _file_json(repo, info, shown)
    return _directory_json(info, shown)


def _names_of(info: _Changesets, node: bytes) -> list[tuple[str, bytes]]:
    return [("bookmarks", _list([json_string(n) for n in info.bookmarks.get(node, [])])),
            ("tags", _list([json_string(n) for n in info.tags.get(node, [])]))]


def _directory(repo: HgRepo, node: bytes, rev: int, files: Sequence[tuple[bytes, bytes, bytes]],
               wanted: bytes) -> Directory:
    prefix = wanted + b"/" if wanted else b""
    tree: dict[bytes | None, Any] = {}
    found: dict[bytes, tuple[bytes, bytes, bytes]] = {}
    for entry in files:
        if not entry[0].startswith(prefix):
            continue
        elements = entry[0][len(prefix):].split(b"/")
        if len(elements) == 1:
            found[elements[0]] = entry
            continue
        level = tree  # hgweb's walk: a directory's dict stops growing once it holds two entries
        for element in elements[:-1]:
            level = level.setdefault(element, {})
            if len(level) > 1:
                break
        level[None] = None  # files here
    if files and not found and not tree:
        raise ProtocolError("path not found", 404)
    listed = [(base, file_size(repo, path, file_node), flags) for base, (path, file_node, flags) in sorted(found.items())]
    directories = []
    for name in sorted(d for d in tree if d is not None):
        empty: list[bytes] = []
        level = tree[name]
        while isinstance(level, dict) and len(level) == 1:
            only, below = next(iter(level.items()))
            if below:  # a directory (the None key, files, holds None)
                empty.append(cast(bytes, only))
            level = below
        directories.append((name, b"/".join(empty)))
    return Directory(node, rev, prefix, directories, listed)


def _directory_json(info: _Changesets, shown: Directory) -> bytes:
    prefix = shown.prefix
    date = info.date(shown.rev) if shown.rev >= 0 else b"[0.0, 0]"
    quoted_prefix = json_string(prefix)[:-1]
    files = _list([_file_entry(quoted_prefix, json_string(base), date, size, flags)
                   for base, size, flags in shown.files])
    directories = _list([_object([("abspath", json_string(b"/" + prefix + name)), ("basename", json_string(name)),
                                  ("emptydirs", json_string(empty))]) for name, empty in shown.directories])
    return _object([("node", b'"%s"' % binascii.hexlify(shown.node)), ("abspath", json_string(b"/" + prefix)),
                    ("directories", directories), ("files", files), *_names_of(info, shown.node)])


def _file_entry(quoted_prefix: bytes, quoted_name: bytes, date: bytes, size: int, flags: bytes) -> bytes:
    """A file of json-manifest; its path's JSON is its directory's and its name's, as a name
    follows a ``/``, which no character's UTF-8 holds (the name is escaped once)."""
    return _object([("abspath", quoted_prefix + quoted_name[1:]), ("basename", quoted_name), ("date", date),
                    ("size", b"%d" % size), ("flags", json_string(flags))])


def _file_lines(repo: HgRepo, path: bytes, file_node: bytes) -> list[bytes]:
    filelog = repo.filelog(path)
    if filelog.raw_size(filelog.rev(file_node)) > MAX_FILE_TEXT:
        raise UnsupportedFeature(f"this file holds more than {MAX_FILE_TEXT >> 20} MiB: it is not shown here; "
                                 "fetch it with raw-file")
    text = file_data(repo, path, file_node)
    if b"\0" in text:  # hgweb's stand-in for a binary file
        text = b"(binary:%s)" % guessed_type(path)
    return text.splitlines(True)


def _file_json(repo: HgRepo, info: _Changesets, shown: FileLines) -> bytes:
    rev, path = shown.rev, shown.path
    changeset = repo.changeset(info.cl, rev)
    common = info.common(rev, changeset)
    lines = [_object([("line", json_string(line))]) for line in shown.lines]
    return _object([
        ("node", common["node"]), ("path", json_string(path)),
        *((k, common[k]) for k in ("date", "desc", "branch", "bookmarks", "tags", "user")),
        ("parents", _list([b'"%s"' % binascii.hexlify(info.cl.node(p))
                           for p in _file_parents(repo, info, rev, path, shown.file_node)])),
        ("phase", common["phase"]), ("lines", _list(lines))])


def _file_parents(repo: HgRepo, info: _Changesets, rev: int, path: bytes, file_node: bytes) -> list[int]:
    """The changesets hgweb lists as a file's parents at changeset ``rev``: the one that brought this
    file revision, when it is not ``rev`` itself; else those that brought its parent revisions (the
    source of a copy first), each as seen from ``rev`` (hg's ``introrev``)."""
    parents_of = info.views.parents
    intro = adjusted_linkrev(repo, parents_of, path, file_node, rev, inclusive=True)
    if intro != rev:
        return [intro]
    return [adjusted_linkrev(repo, parents_of, p_path, p_node, rev, inclusive=False)
            for p_path, p_node in file_parents(repo, path, file_node)]


# --- raw-rev: a changeset as ``hg export`` writes it (hgweb's raw style) ------------------------

CONTEXT = 3
"""Lines of context around a change, as ``hg diff`` without ``-U``."""
MAX_PATCH_TEXT = 64 << 20
"""File texts (old and new) one ``raw-rev`` may diff; it is built whole in memory."""
NO_EOL = b"\\ No newline at end of file\n"


def raw_rev(repo: HgRepo, key: str) -> bytes:
    """hgweb's ``raw-rev``: the changeset's header (user, date, node, parents), description and
    its plain diff against its first parent (``file_diffs``)."""
    node, rev, _mtime, files = resolve(repo, key)
    cl = repo.changelog()
    lines = [b"", b"# HG changeset patch"]
    if rev < 0:
        return b"\n".join([*lines, b"# User ", b"# Date 0 0", b"# Node ID " + binascii.hexlify(NULL_NODE), b"", b"",
                           b"", b"", b""])
    changeset = repo.changeset(cl, rev)
    p1, p2 = cl.parents(Node(node))
    lines += [b"# User " + changeset.user, b"# Date %d %d" % (int(changeset.time), changeset.tz),
              b"# Node ID " + binascii.hexlify(node),
              b"".join(b"# Parent  " + binascii.hexlify(p) for p in (p1, p2) if p != NULL_NODE),
              changeset.description, b""]
    return b"\n".join(lines) + b"\n" + b"".join(raw_diff_lines(file_diffs(repo, rev, files))) + b"\n"


def raw_diff_lines(diffs: Iterator[FileDiff]) -> Iterator[bytes]:
    """A diff's lines as hgweb's raw style writes them: each file's ``diff`` line, its other header
    lines and its hunks, every file, whether or not it has hunks."""
    for diff in diffs:
        yield diff.label + b"\n"
        yield from (line + b"\n" for line in diff.header)
        yield from diff.hunks


@dataclass(frozen=True, slots=True)
class FileDiff:
    """One file's part of a changeset's plain diff."""

    path: bytes
    label: bytes
    """``diff -r P1 -r NODE PATH`` (``diff --git a/PATH b/PATH``), which only the raw styles show."""
    header: list[bytes]
    """The other header lines (git's modes, copies, ``index``), then ``--- a/PATH\tDATE`` and
    ``+++ b/PATH\tDATE`` (no line ends)."""
    hunks: list[bytes]
    """The hunks' lines, each with its end (``unified_hunks``; ``Binary file PATH has changed``, or
    git's binary patch)."""


@dataclass(frozen=True)
class DiffOptions:
    """The hgrc's ``[diff]`` settings hgweb's diffs follow: ``git`` (git's headers: modes,
    copies and renames, binary files as ``GIT binary patch``), ``noprefix`` (no ``a/``, ``b/``),
    ``nodates``, ``unified`` (lines of context), ``showfunc`` (the function a hunk is in) and the
    whitespace switches (``ignorews``, ``ignorewsamount``, ``ignorewseol``, ``ignoreblanklines``)."""

    git: bool = False
    noprefix: bool = False
    nodates: bool = False
    context: int = CONTEXT
    showfunc: bool = False
    whitespace: linediff.Whitespace = field(default_factory=linediff.Whitespace)


def diff_options(repo: HgRepo) -> DiffOptions:
    """The repository's ``[diff]`` settings (its hgrc after the base one), as ``hg serve`` reads them."""
    section = repo.hgrc_section(b"diff")

    def flag(name: bytes) -> bool:
        return bool(BOOLEANS.get(section.get(name, b"").strip().lower(), False))

    unified = section.get(b"unified", b"").strip()
    return DiffOptions(flag(b"git"), flag(b"noprefix"), flag(b"nodates"),
                       int(unified) if unified.isdigit() and len(unified) < 6 else CONTEXT, flag(b"showfunc"),
                       linediff.Whitespace(*(flag(name) for name in WHITESPACE_SWITCHES)))


GIT_MODES = {b"l": b"120000", b"x": b"100755", b"": b"100644"}


def file_diffs(repo: HgRepo, rev: int, files: Sequence[tuple[bytes, bytes, bytes]],
               only: bytes | None = None, opts: DiffOptions | None = None) -> Iterator[FileDiff]:
    """Changeset ``rev``'s diff against its first parent, file by file, as hgweb makes it (hg's
    ``trydiff``): every file whose node or flags differ, in path order; without ``[diff] git``,
    file dates in the headers, ``Binary file NAME has changed`` for a side holding a NUL byte,
    renames and copies as added files and a mode change as its ``diff -r`` line alone; with it,
    git's headers (modes, ``rename from``/``copy from`` for a file copied from one of the first
    parent's, the removed source of a rename folded in) and binary files as ``GIT binary patch``.
    Hunks are cut where hg's are (``backends.hg.linediff``).  ``files``: the changeset's manifest
    entries; ``only``: that file's diff alone; ``opts``: else the repository's ``[diff]``.
    Texts past ``MAX_PATCH_TEXT`` in all refuse the diff (``UnsupportedFeature``)."""
    opts = opts if opts is not None else diff_options(repo)
    cl = repo.changelog()
    node = cl.node(rev)
    changeset = repo.changeset(cl, rev)
    p1 = cl.parents(node)[0]
    if p1 != NULL_NODE:
        base, old_entries = manifest_at(repo, cl.rev(p1))
        old_files = {path: (file_node, flags) for path, file_node, flags in old_entries}
        old_date = _diff_date(base.time, base.tz)
    else:
        old_files, old_date = {}, _diff_date(0, 0)
    new_files = {path: (file_node, flags) for path, file_node, flags in files}
    new_date = _diff_date(changeset.time, changeset.tz)
    paths = sorted(old_files.keys() | new_files.keys()) if only is None else [only]
    modified = [p for p in paths if p in old_files and p in new_files and old_files[p] != new_files[p]]
    added = [p for p in paths if p in new_files and p not in old_files]
    removed = [p for p in paths if p in old_files and p not in new_files]
    copies = _copies(repo, rev, old_files, new_files, added) if opts.git else {}
    revs = b"-r %s -r %s" % (binascii.hexlify(p1)[:12], binascii.hexlify(node)[:12])
    a_prefix, b_prefix = (b"", b"") if opts.noprefix else (b"a/", b"b/")
    read = 0
    for f1, f2, copy_op in _file_pairs(modified, added, removed, copies, opts.git):
        old_node, old_flags = old_files[f1] if f1 is not None else (None, None)
        new_node, new_flags = new_files[f2] if f2 is not None else (None, None)
        path1, path2 = f1 or f2 or b"", f2 or f1 or b""
        if opts.git:
            header = [b"diff --git %s%s %s%s" % (a_prefix, path1, b_prefix, path2)]
            if f1 is None:
                header.append(b"new file mode %s" % GIT_MODES[new_flags or b""])
            elif f2 is None:
                header.append(b"deleted file mode %s" % GIT_MODES[old_flags or b""])
            else:
                if GIT_MODES[old_flags or b""] != GIT_MODES[new_flags or b""]:
                    header += [b"old mode %s" % GIT_MODES[old_flags or b""], b"new mode %s" % GIT_MODES[new_flags or b""]]
                if copy_op is not None:
                    header += [b"%s from %s" % (copy_op, path1), b"%s to %s" % (copy_op, path2)]
        else:
            header = [b"diff %s %s" % (revs, path1)]
        stored = _stored_size(repo, path1, old_node) + _stored_size(repo, path2, new_node)
        if read + stored > MAX_PATCH_TEXT + 2 * MAX_COPY_META:
            _refuse_patch()  # (before the texts are read; their copy metadata is not counted)
        old = file_data(repo, path1, old_node) if old_node is not None else None
        new = file_data(repo, path2, new_node) if new_node is not None else None
        read += len(old or b"") + len(new or b"")
        if read > MAX_PATCH_TEXT:
            _refuse_patch()
        binary = b"\0" in (old or b"") or b"\0" in (new or b"")
        if binary and opts.git:
            text = git_binary_patch(old, new)
            if text:
                header.append(b"index %s..%s" % (_git_index(old) if f1 is not None else b"0" * 40,
                                                   _git_index(new) if f2 is not None else b"0" * 40))
            yield FileDiff(path2, header[0], header[1:], [text])
            continue
        hints = _delta_hints(repo, path1, old_node, old, new_node, new) if path1 == path2 else None
        more, hunks = _unidiff(old, old_date, new, new_date, path1, path2, binary, opts, a_prefix, b_prefix, hints)
        yield FileDiff(path2, header[0], header[1:] + more, hunks)


CHANGESET_COPIES = (b"changeset-only", b"compatibility")
"""``[experimental] copies.read-from`` values by which hg reads a changeset's copies from what it records
(``p1copies`` in its extra, written by clients with ``copies.write-to=changeset-only`` or
``compatibility``), not by tracing its files' ancestors."""


def _copies_read_from(repo: HgRepo) -> bytes | None:
    """The repository's ``[experimental] copies.read-from`` where it is one of ``CHANGESET_COPIES``."""
    source = repo.hgrc_section(b"experimental").get(b"copies.read-from", b"").strip()
    return source if source in CHANGESET_COPIES else None


def _recorded_added(repo: HgRepo, changeset: Changeset) -> set[bytes] | None:
    """The files hg's ``filesadded`` names where the hgrc has it read what the changeset records (its
    ``filesadded`` extra, indexes into its files: without one, none for ``changeset-only``, as hg reads
    it); None where they are found from the parents' manifests."""
    source = _copies_read_from(repo)
    if source is None:
        return None
    raw = changeset.extra.get(b"filesadded")
    indexes = [] if raw == b"" else raw.split(b"\n") if raw is not None else None
    if indexes is not None and all(i.isdigit() and int(i) < len(changeset.files) for i in indexes):
        return {changeset.files[int(i)] for i in indexes}
    return set() if source == b"changeset-only" else None


def _copies(repo: HgRepo, rev: int, old_files: Mapping[bytes, tuple[bytes, bytes]],
            new_files: Mapping[bytes, tuple[bytes, bytes]], added: Sequence[bytes]) -> dict[bytes, bytes]:
    """Each added file's copy source in the first parent, as hg's ``pathcopies`` finds it: where the
    repository's hgrc sets ``[experimental] copies.read-from`` to ``changeset-only`` or ``compatibility``,
    from the copies the changesets record along every path from the first parent (those a merge
    brings from its second parent's side too: ``_walked_copies``), otherwise by tracing the filelogs."""
    source = _copies_read_from(repo)
    if source is None:
        return _copied_from(repo, old_files, new_files, added)
    cl = repo.changelog()
    if not added or cl.parent_revs(rev)[0] == NULL_REV:
        return {}
    walked = _walked_copies(repo, cl, rev, source)
    wanted = set(added)
    return {dst: src for dst, src in walked.items() if dst in wanted and src in old_files and dst != src}


def _recorded_copies(changeset: Changeset, key: bytes = b"p1copies") -> dict[bytes, bytes] | None:
    """The changeset's ``p1copies`` (or ``p2copies``) extra: ``INDEX\0SOURCE`` lines, INDEX into its
    sorted files; None without one, or with one of another form (hg then reads it as absent too)."""
    raw = changeset.extra.get(key)
    if raw is None:
        return None
    copies: dict[bytes, bytes] = {}
    for line in raw.split(b"\n") if raw else ():
        index, null, src = line.partition(b"\0")
        if not null or not index.isdigit() or int(index) >= len(changeset.files) or b"\0" in src:
            return None
        copies[changeset.files[int(index)]] = src
    return copies


_Copied = dict[bytes, tuple[int, bytes | None]]
"""Copies carried along the walk: destination -> (the changeset that last set it, source or None
where a later changeset removed the destination)."""


class _CopySteps:
    """What ``_walked_copies`` reads of each changeset, as hg's changectx gives it under a
    ``copies.read-from`` of ``changeset-only`` or ``compatibility``."""

    def __init__(self, repo: HgRepo, cl: Revlog, source: bytes) -> None:
        self.repo, self.cl, self.source = repo, cl, source
        self._files: dict[int, dict[bytes, bytes]] = {}

    def files(self, rev: int) -> dict[bytes, bytes]:
        """Changeset ``rev``'s manifest, path -> file node."""
        if rev == NULL_REV:
            return {}
        if rev not in self._files:
            self._files[rev] = {path: node for path, node, _flags in manifest_at(self.repo, rev)[1]}
        return self._files[rev]

    def step(self, rev: int) -> tuple[dict[bytes, bytes], dict[bytes, bytes], list[bytes]]:
        """Changeset ``rev``'s copies from its first parent, from its second, and the files it removes."""
        changeset = self.repo.changeset(self.cl, rev)
        p1copies, p2copies = _recorded_copies(changeset), _recorded_copies(changeset, b"p2copies")
        if p1copies is None and self.source == b"compatibility":
            p1copies, p2copies = self._filelog_copies(rev, changeset)
        raw = changeset.extra.get(b"filesremoved")
        indexes = [] if raw == b"" else raw.split(b"\n") if raw is not None else None
        if indexes is not None and all(i.isdigit() and int(i) < len(changeset.files) for i in indexes):
            removed = [changeset.files[int(i)] for i in indexes]
        elif self.source == b"changeset-only":
            removed = []
        else:  # (hg also keeps back, in a merge, a file one side removed and the other left as it was)
            removed = [path for path in changeset.files if path not in self.files(rev)]
        return p1copies or {}, p2copies or {}, removed

    def _filelog_copies(self, rev: int, changeset: Changeset) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """A changeset's copies where it records none: each of its files whose revision, made by this
        changeset (or by none of its parents), names as its copy source a file revision a parent holds."""
        mine = self.files(rev)
        parents = [self.files(p) for p in self.cl.parent_revs(rev)]
        found: tuple[dict[bytes, bytes], dict[bytes, bytes]] = ({}, {})
        for dst in changeset.files:
            node = mine.get(dst)
            if node is None:
                continue
            filelog = self.repo.filelog(dst)
            file_rev = filelog.rev(node)
            if filelog.parent_revs(file_rev)[0] != NULL_REV:
                continue
            if filelog.linkrev(file_rev) != rev and any(p.get(dst) == node for p in parents):
                continue
            meta = copy_metadata(filelog, file_rev)
            src, copyrev = meta.get(b"copy"), meta.get(b"copyrev")
            if src is None or copyrev is None:
                continue
            for side, parent in zip(found, parents):
                if parent.get(src) is not None and binascii.hexlify(parent[src]) == copyrev:
                    side[dst] = src
                    break
        return found

    def merged(self, rev: int, path: bytes) -> bool:
        """Whether changeset ``rev`` lists ``path`` and its file revision there has two parents."""
        node = self.files(rev).get(path)
        if node is None or path not in self.repo.changeset(self.cl, rev).files:
            return False
        filelog = self.repo.filelog(path)
        return NULL_REV not in filelog.parent_revs(filelog.rev(node))

    def is_ancestor(self, older: int, newer: int) -> bool:
        """Whether ``older`` is ``newer`` or one of its ancestors."""
        seen, pending = set(), [newer]
        while pending:
            rev = pending.pop()
            if rev == older:
                return True
            if rev > older and rev not in seen:
                seen.add(rev)
                pending.extend(p for p in self.cl.parent_revs(rev) if p >= older)
        return False


def _walked_copies(repo: HgRepo, cl: Revlog, rev: int, source: bytes) -> dict[bytes, bytes]:
    """hg's changeset-centric forward copies from ``rev``'s first parent to ``rev``: the copies each
    changeset records, chained along every path from the first parent's ancestors (the roots) through
    the changesets the first parent lacks, up to ``rev``; a destination a changeset removes is dropped
    from what it passes on; where two paths meet, the first parent's side wins unless its copy is an
    ancestor of the other's and the file was not merged there."""
    p1, p2 = cl.parent_revs(rev)
    if p2 == NULL_REV:
        missing, roots = [rev], {p1}
    else:
        parents = repo.views(cl).parents  # (every revision's, hidden ones too: hg walks the unfiltered graph)
        ours, theirs = ancestors_mask(parents, [p1]), ancestors_mask(parents, [rev])
        missing = [r for r in range(rev + 1) if theirs[r] and not ours[r]]
        roots = {p for r in missing for p in cl.parent_revs(r) if p >= 0 and ours[p]}
    children: dict[int, list[int]] = {r: [] for r in roots}
    for r in missing:  # only those reached from a root (not a history of their own the merge brought)
        if any(p in children for p in cl.parent_revs(r) if p >= 0):
            children[r] = []
            for p in cl.parent_revs(r):
                if p in children and p != r:
                    children[p].append(r)
    steps = _CopySteps(repo, cl, source)
    carried: dict[int, _Copied] = {}
    for r in sorted(children):
        if r == rev:
            continue
        copies = carried.pop(r, None)
        copies = {} if copies is None else copies
        for child in children[r]:
            first = cl.parent_revs(child)[0] == r
            p1copies, p2copies, removed = steps.step(child)
            own = p1copies if first else p2copies
            passed = copies
            if own:
                passed = dict(copies)
                for dst, src in own.items():
                    before = copies.get(src)
                    passed[dst] = (child, before[1] if before is not None and before[1] is not None else src)
            for path in removed:
                if path in passed:
                    if passed is copies:
                        passed = dict(copies)
                    passed[path] = (child, None)
            other = carried.get(child)
            if other is None:
                carried[child] = passed
            elif first:
                _meet(other, passed, child, steps)
            else:
                _meet(passed, other, child, steps)
                carried[child] = passed
    return {dst: src for dst, (_rev, src) in carried.get(rev, {}).items() if src is not None}


def _meet(into: _Copied, first_side: _Copied, merge: int, steps: _CopySteps) -> None:
    """Fold the first parent's side's copies into the second's (``into``) at a merge: a destination
    both set differently takes the first side's, unless that one was set by an ancestor of the
    changeset that set the other and the merge did not merge the file."""
    for dst, ours in first_side.items():
        theirs = into.get(dst)
        if theirs is None or ours[1] != theirs[1] and (
                ours[0] == theirs[0] or not steps.is_ancestor(ours[0], theirs[0]) or steps.merged(merge, dst)):
            into[dst] = ours


def _copied_from(repo: HgRepo, old_files: Mapping[bytes, tuple[bytes, bytes]],
                 new_files: Mapping[bytes, tuple[bytes, bytes]], added: Sequence[bytes]) -> dict[bytes, bytes]:
    """hg's ``pathcopies`` from the first parent: for each file the changeset adds, the path of its
    nearest ancestor revision (following copies and renames, newest linkrev first) that the first
    parent holds as it is, if any."""
    found: dict[bytes, bytes] = {}
    for path in sorted(added):
        pending: dict[tuple[int, bytes], bytes] = {}
        _push_parents(repo, path, new_files[path][0], pending)
        steps = 0
        while pending and steps < MAX_COPY_TRACE:
            key = max(pending)
            ancestor_path = pending.pop(key)
            steps += 1
            there = old_files.get(ancestor_path)
            if there is not None and there[0] == key[1]:
                found[path] = ancestor_path
                break
            _push_parents(repo, ancestor_path, key[1], pending)
    return found


def _push_parents(repo: HgRepo, path: bytes, node: bytes, pending: dict[tuple[int, bytes], bytes]) -> None:
    """Add a file revision's parents (a copy's source first) to ``pending``, by (linkrev, node)."""
    for parent_path, parent_node in file_parents(repo, path, node):
        parent_log = repo.filelog(parent_path)
        pending[(parent_log.linkrev(parent_log.rev(parent_node)), parent_node)] = parent_path


MAX_COPY_TRACE = 10_000
"""File revisions one copy's tracing reads at most."""


def _file_pairs(modified: list[bytes], added: list[bytes], removed: list[bytes], copies: dict[bytes, bytes],
                git: bool) -> Iterator[tuple[bytes | None, bytes | None, bytes | None]]:
    """hg's ``_filepairs``: (old path, new path, ``copy``/``rename``/None) in path order; with git
    headers an added copy names its source, and a source removed by a rename is not repeated."""
    gone: set[bytes] = set()
    copied_to = {source: path for path, source in copies.items()}
    added_set, removed_set = set(added), set(removed)
    for path in sorted(modified + added + removed):
        if path in added_set:
            source = copies.get(path) if git else None
            if source is None:
                yield None, path, None
            elif source in removed_set and source not in gone:
                gone.add(source)
                yield source, path, b"rename"
            else:
                yield source, path, b"copy"
        elif path in removed_set:
            if git and path in copied_to and copied_to[path] in added_set and copies[copied_to[path]] == path:
                continue
            yield path, None, None
        else:
            yield path, path, None


def _delta_hints(repo: HgRepo, path: bytes, old_node: bytes | None, old: bytes | None, new_node: bytes | None,
                 new: bytes | None) -> Callable[[linediff.Lines, linediff.Lines], list[linediff.Run]] | None:
    """The runs the stored delta between two revisions of a file keeps (``annotate.stored_hints``),
    once their lines are split; None for a file added or removed."""
    if old_node is None or new_node is None or old is None or new is None:
        return None
    filelog = repo.filelog(path)
    old_rev, new_rev = filelog.rev(old_node), filelog.rev(new_node)

    def hints(old_lines: linediff.Lines, new_lines: linediff.Lines) -> list[linediff.Run]:
        return stored_hints(filelog, old_rev, old_lines, filelog.raw_size(old_rev) - len(old), new_rev, new_lines,
                            filelog.raw_size(new_rev) - len(new))
    return hints


def _unidiff(old: bytes | None, old_date: bytes, new: bytes | None, new_date: bytes, path1: bytes, path2: bytes,
             binary: bool, opts: DiffOptions, a_prefix: bytes, b_prefix: bytes,
             hints: Callable[[linediff.Lines, linediff.Lines], list[linediff.Run]] | None = None
             ) -> tuple[list[bytes], list[bytes]]:
    """hg's ``mdiff.unidiff``: the ``---``/``+++`` lines and the hunks (none for equal sides)."""
    if not old and not new:
        return [], []

    def tag(date: bytes, path: bytes | None = None) -> bytes:
        if not opts.git and not opts.nodates:
            return b"\t" + date
        return b"\t" if path and b" " in path else b""

    epoch = _diff_date(0, 0)
    if binary:
        if old and new and old == new:
            return [], []
        return [], [b"Binary file %s has changed\n" % path1]
    first = b"--- /dev/null%s" % tag(epoch) if old is None else b"--- %s%s%s" % (a_prefix, path1, tag(old_date, path1))
    second = b"+++ /dev/null%s" % tag(epoch) if new is None else b"+++ %s%s%s" % (b_prefix, path2, tag(new_date, path2))
    hunks = unified_hunks(old or b"", new or b"", opts.context, opts.showfunc, opts.whitespace, hints)
    if not hunks:
        return [], []
    return [first, second], hunks


def git_binary_patch(old: bytes | None, new: bytes | None) -> bytes:
    """hg's ``b85diff``: ``GIT binary patch``, the new text whole (``literal``), zlib-compressed, in
    base 85 lines of 52 bytes each led by their length's letter; b"" when the texts are equal."""
    old, new = old or b"", new or b""
    if old == new:
        return b""
    packed = zlib.compress(new)
    lines = [b"GIT binary patch\n", b"literal %d\n" % len(new)]
    for at in range(0, len(packed), 52):
        piece = packed[at:at + 52]
        size = len(piece)
        letter = bytes([ord("A") + size - 1]) if size <= 26 else bytes([size - 26 + ord("a") - 1])
        lines.append(letter + base64.b85encode(piece, pad=True) + b"\n")
    lines.append(b"\n")
    return b"".join(lines)


def _git_index(text: bytes | None) -> bytes:
    """The git blob id of a text (``index`` lines)."""
    data = text or b""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().encode()


def _diff_date(when: float, tz: int) -> bytes:
    """hg's ``datestr``: the local time of the change and its offset (``tz`` is seconds west)."""
    local = time.gmtime(int(when) - tz)
    sign = "-" if tz > 0 else "+"
    minutes = abs(tz) // 60
    return (time.strftime("%a %b %d %H:%M:%S %Y ", local) + f"{sign}{minutes // 60:02d}{minutes % 60:02d}").encode()


def unified_hunks(old_text: bytes, new_text: bytes, context: int = CONTEXT, show_function: bool = False,
                  whitespace: linediff.Whitespace | None = None,
                  hints: Callable[[linediff.Lines, linediff.Lines], list[linediff.Run]] | None = None) -> list[bytes]:
    """The ``@@ -a,b +c,d @@`` hunks between two texts, as hg writes them: ``context`` lines (3),
    changes closer than that joined into one hunk, counts always written, a last line without
    its end followed by the line ``\\ No newline at end of file``; each line is one item.  With
    ``show_function`` (``[diff] showfunc``), each header ends with the nearest line before the
    hunk that starts with a letter, ``_`` or ``$`` (since the previous hunk's start), as hg's.
    ``whitespace``'s switches (hg's ``allblocks``): lines are matched once their whitespace is
    cleaned, and with ``ignoreblanklines`` a change that differs only by blank lines is left out
    (the new side's line numbers of the hunks after it counted as if it had not changed).  The
    lines are matched from ``hints`` (runs the texts are thought to share: a stored delta's, else
    their common start and end; checked, ``linediff.hinted_blocks``)."""
    old, new = linediff.split_lines(old_text), linediff.split_lines(new_text)
    ws = whitespace or linediff.Whitespace()
    if ws.cleans:
        matched_old, matched_new = linediff.Lines.of(ws.clean(old_text)), linediff.Lines.of(ws.clean(new_text))
        found = linediff.trimmed_hints(matched_old, matched_new)
    else:
        matched_old, matched_new = linediff.Lines.of(old_text), linediff.Lines.of(new_text)
        found = (hints or linediff.trimmed_hints)(matched_old, matched_new)
    changes = []  # (old start, old end, new start, new end, new start shown, new end shown)
    a_end = b_end = ignored = 0
    for a1, a2, b1, b2 in linediff.hinted_blocks(matched_old, matched_new, found):
        if a1 > a_end or b1 > b_end:
            if ws.ignoreblanklines and ws.blank_only(old[a_end:a1], new[b_end:b1]):
                ignored += (b1 - b_end) - (a1 - a_end)
            else:
                changes.append((a_end, a1, b_end, b1, b_end - ignored, b1 - ignored))
        a_end, b_end = a2, b2
    out: list[bytes] = []
    hunk: list[int] | None = None  # [old start, old change end, new start, new change end]
    body: list[bytes] = []

    def lines(prefix: bytes, texts: Sequence[bytes]) -> Iterator[bytes]:
        for text in texts:
            if text.endswith(b"\n"):
                yield prefix + text
            else:  # the marker is a line of its own (hgweb's JSON shows it as one)
                yield prefix + text + b"\n"
                yield NO_EOL

    searched_from = [0]  # where the previous hunk's search started
    last_found = [b""]  # what a search found last

    def function_before(start_a: int) -> bytes:
        for i in range(start_a - 1, searched_from[0] - 1, -1):
            first = old[i][:1]
            if first.isalpha() or first in (b"_", b"$"):
                found = b" " + old[i].rstrip()
                last_found[0] = found[:41] if found.isascii() else found
                break
        searched_from[0] = start_a
        return last_found[0]

    def flush() -> None:
        assert hunk is not None
        start_a, end_a, start_b, end_b = hunk
        tail = min(end_a + context, len(old))
        body.extend(lines(b" ", old[end_a:tail]))
        length_a = tail - start_a
        length_b = end_b - start_b + tail - end_a
        function = function_before(start_a) if show_function else b""
        out.append(b"@@ -%d,%d +%d,%d @@%s\n" % (start_a + 1 if length_a else start_a, length_a,
                                                   start_b + 1 if length_b else start_b, length_b, function))
        out.extend(body)

    for a1, a2, b1, b2, shown_b1, shown_b2 in changes:
        start_a, start_b = max(a1 - context, 0), max(shown_b1 - context, 0)
        if hunk is not None and start_a < hunk[1] + context + 1:
            body.extend(lines(b" ", old[hunk[1]:a1]))
            hunk[1], hunk[3] = a2, shown_b2
        else:
            if hunk is not None:
                flush()
                body = []
            hunk = [start_a, a2, start_b, shown_b2]
            body.extend(lines(b" ", old[start_a:a1]))
        body.extend(lines(b"-", old[a1:a2]))
        body.extend(lines(b"+", new[b1:b2]))
    if hunk is not None:
        flush()
    return out
