"""What a git repository's pages for browsers show (``gateway.hg_web`` renders them with
``protocols.hg_web_html``): the same shapes as the Mercurial pages' JSON data, so one renderer
serves both kinds.  A commit is a changeset (its author and author date, the branches and tags
at it as labels), a tree a directory, a blob a file.

Only refs a fetch may see are shown (``git_pack.snapshot_refs``: hidden refs left out); a commit
is found by a ref's name (a branch, a tag, a full ref) or its full id, as a fetch by id finds it.
Blocking (object reads); texts are bounded as the Mercurial pages bound them.
"""

from __future__ import annotations

import bz2
import codecs
import copy
import heapq
import itertools
import json
import re
import stat
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from dulwich.diff_tree import CHANGE_COPY, CHANGE_RENAME, RenameDetector, TreeChange, tree_changes
from dulwich.errors import ObjectFormatException
from dulwich.objects import S_ISGITLINK, Blob, Commit, ObjectID, Tag, Tree

from backends import git_archive, git_diff, git_pack
from backends.git_objects import LOWER_HEX, MAX_PEEL, CorruptPack, PackObjectReader, blob_pieces, size_reader
from backends.hg import webgraph
from backends.hg.archive import TYPES as ARCHIVE_TYPES
from backends.hg.archive import (
    RawFile,
    archive_directory,
    content_tag,
    raw_listing,
    shown_revision,
    url_revision,
)
from backends.hg.linediff import split_lines
from backends.hg.web import MAX_PATCH_TEXT, fold, guessed_type
from backends.interfaces import GitRepository, object_format_of
from protocols.client_gone import tick
from protocols.errors import PermissionDenied, ProtocolError, UnsupportedFeature
from protocols.git_archive import ArchiveOptions, ArchiveRefused, Pathspec

_SHORT_ID = re.compile(rb"[0-9a-f]{7,}")
"""An abbreviated commit id (shorter than a full one), as git prints them (7 digits at least:
shorter ones are not taken)."""
MAX_PREFIX_MATCHES = 64
MAX_FILE_TEXT = 64 << 20
MAX_SEARCHED = 100_000
"""Commits one search reads at most."""
RENAME_THRESHOLD = 50
"""git's default similarity for a rename (``-M``), in percent."""
MAX_BLAME_COMMITS = 100_000
"""Commits one annotation may look at (every commit back to the file's oldest line)."""
MAX_REPLACE_DEPTH = 5
"""Replacements of replacements git follows (its ``MAXREPLACEDEPTH``)."""
MAX_SKIP = 100_000
"""Commits a log page may skip (``?skip=``, its place in the walk) before the ones it shows."""


class GitPages:
    """One look at a repository's visible refs, then its pages' data."""

    def __init__(self, repo: GitRepository) -> None:
        self.repo = repo
        self.store = repo.object_store
        self.object_format = object_format_of(self.store)
        self.hex_len = self.object_format.hex_len
        snapshot = git_pack.snapshot_refs(repo)
        self.refs = snapshot.refs
        self.head = self._head(snapshot)
        self.head_ref = snapshot.symrefs.get(b"HEAD")
        self.branches: dict[bytes, list[str]] = {}
        self.tags: dict[bytes, list[str]] = {}
        for name, oid in sorted(self.refs.items()):
            target = bytes(snapshot.peeled.get(name, oid))
            if name.startswith(b"refs/heads/"):
                self.branches.setdefault(target, []).append(_text(name[len(b"refs/heads/"):]))
            elif name.startswith(b"refs/tags/"):
                self.tags.setdefault(target, []).append(_text(name[len(b"refs/tags/"):]))
        self.peeled = snapshot.peeled
        self.replacements = self._replacements(repo)
        grafts = getattr(repo, "grafts", None)
        self.grafts: dict[bytes, list[bytes]] = grafts() if grafts is not None else {}
        """Commits ``info/grafts`` gives other parents, as ``git log`` and gitweb show them."""

    def _replacements(self, repo: GitRepository) -> dict[bytes, bytes]:
        """The commits replaced (``git replace A B``, ``git replace --graft``, pushed as
        ``refs/replace/A``), as ``git log`` in the repository and gitweb honour them: each
        replaced id and its replacement's, from the refs a fetch sees; none when the repository's
        ``core.useReplaceRefs`` is false."""
        use = getattr(repo, "use_replace_refs", None)
        if use is not None and use() is False:
            return {}
        found = {}
        for name, oid in self.refs.items():
            replaced = name.removeprefix(b"refs/replace/")
            if replaced is not name and len(replaced) == self.hex_len and LOWER_HEX.fullmatch(replaced):
                found[replaced] = bytes(oid)
        return found

    def _replaced(self, oid: bytes) -> bytes:
        """The id whose object stands for ``oid`` (``oid`` when none does): its replacement's, its
        replacement's replacement's, at most five deep, as git follows them (deeper, or round in
        a circle, git stops with an error: the object is shown as it is)."""
        target = oid
        for _ in range(MAX_REPLACE_DEPTH):
            target = self.replacements.get(target, target)
            if target not in self.replacements:
                return target
        return oid

    def _head(self, snapshot: git_pack.RefSnapshot) -> bytes | None:
        target = snapshot.symrefs.get(b"HEAD")
        oid = snapshot.refs.get(target) if target is not None else snapshot.refs.get(b"HEAD")
        return bytes(oid) if oid is not None else None

    def head_note(self) -> str:
        """Why the pages of HEAD show no commit, when they show none: an empty repository, or
        (a repository copied in, a branch deleted) HEAD naming a branch that does not exist while
        others do, where ``git log`` fails; "" when HEAD has its commit."""
        if self.head is not None:
            return ""
        branches = [name for name in self.refs if name.startswith(b"refs/heads/")]
        if not branches and self.object_format.name == "sha256":
            # git 2.39 clones an empty repository as SHA-1, and such a clone cannot push here
            return ("This repository has no commits yet and keeps SHA-256 objects: start with git init "
                    "--object-format=sha256, commit, and push to it (a clone of it would be SHA-1 and "
                    "could not push).")
        if not branches or self.head_ref is None:
            return "This repository has no commits yet: push some to see them here."
        missing = _text(self.head_ref.removeprefix(b"refs/heads/"))
        return (f"HEAD names branch '{missing}', which does not exist, so there is nothing at HEAD to show: "
                "pick one of the repository's branches, or have HEAD name one (git symbolic-ref HEAD "
                "refs/heads/BRANCH in the repository on the server).")

    # -- lookups -------------------------------------------------------------------------------

    def resolve(self, key: str) -> bytes:
        """The commit ``key`` names: ``tip``/``HEAD``, a branch, a tag, a full ref, a full id or an
        abbreviated one (7 digits or more, one commit's only); ``%2F`` stands for ``/``, as in
        hgweb's URLs (``feature%2Fx``: a page's URL names branch ``feature/x`` ``feature%252Fx``)."""
        key = url_revision(key)
        raw = key.encode("utf-8", "surrogateescape")
        oid: bytes | None = None
        if raw in (b"tip", b"HEAD"):
            oid = self.head
        else:
            for candidate in (b"refs/heads/" + raw, b"refs/tags/" + raw, b"refs/" + raw, raw):
                if candidate in self.refs:
                    oid = bytes(self.refs[candidate])
                    break
        if oid is None and len(raw) == self.hex_len and LOWER_HEX.fullmatch(raw) and raw in self.store:  # type: ignore[operator]
            oid = raw
        if oid is None and len(raw) < self.hex_len and _SHORT_ID.fullmatch(raw):
            oid = self._by_prefix(raw, key)
        if oid is None and raw in (b"tip", b"HEAD") and (why := self.head_note()):
            raise ProtocolError(why, 404)  # no commits yet, or HEAD names a missing branch: say which
        if oid is None:
            raise ProtocolError(f"unknown revision {shown_revision(key)}", 404)
        commit = self._object(oid)
        for _ in range(MAX_PEEL):  # an annotated tag's chain, bounded
            if not isinstance(commit, Tag):
                break
            oid = bytes(commit.object[1]).lower()  # (git reads a tag's capital hex too)
            commit = self._object(oid)
        if not isinstance(commit, Commit):
            raise ProtocolError(f"{shown_revision(key)} does not name a commit", 404)
        return oid  # a replaced commit keeps its own id, as git log shows it

    def _by_prefix(self, prefix: bytes, key: str) -> bytes | None:
        """The one commit (or tag) whose id starts with ``prefix``; None if none; 404 if several."""
        found: list[bytes] = []
        for candidate in itertools.islice(self.store.iter_prefix(prefix), MAX_PREFIX_MATCHES):
            if isinstance(self._object(bytes(candidate)), Commit | Tag):
                found.append(bytes(candidate))
        if len(found) > 1:
            raise ProtocolError(f"{shown_revision(key)} is ambiguous: give more of the commit's id", 404)
        return found[0] if found else None

    def _object(self, oid: bytes) -> Any:
        """The object ``oid`` names, a commit's replacement in its stead (``replacements``: a tree
        or blob replaced is read as it is), a grafted commit with its graft's parents (``grafts``)."""
        found = None
        if oid in self.replacements:
            replacement = self._read(self._replaced(oid))
            if isinstance(replacement, Commit):
                found = replacement
        if found is None:
            found = self._read(oid)
        if oid in self.grafts and isinstance(found, Commit):  # under its own id, with the graft's parents
            grafted = copy.copy(found)
            grafted.parents = [ObjectID(parent) for parent in self.grafts[oid]]
            return grafted
        return found

    def _read(self, oid: bytes) -> Any:
        try:
            return self.store[oid]  # type: ignore[index]
        except KeyError:
            raise ProtocolError("unknown object", 404) from None
        except (ObjectFormatException, ValueError, IndexError):  # (dulwich's IndexError: no zone at all)
            found = lenient_object(self.store, oid)
            if found is None:
                raise
            return found

    def _commit(self, oid: bytes) -> Commit:
        commit = self._object(oid)
        if not isinstance(commit, Commit):
            raise ProtocolError("not a commit", 404)
        return commit

    def last_change(self) -> list[float] | None:
        """When the repository last changed, as gitweb's project list says it: the newest
        committer date of its branches' tips (HEAD's commit when it has no branch; HEAD may name
        a branch never pushed while others were); None when it has no commit yet."""
        tips = set(self.branches) or ({self.head} if self.head is not None else set())
        newest: tuple[int, int] | None = None
        for oid in tips:
            when = self._committer_date(oid)
            if when is not None and (newest is None or when[0] > newest[0]):
                newest = when
        return [float(newest[0]), -newest[1]] if newest is not None else None

    def _committer_date(self, oid: bytes) -> tuple[int, int] | None:
        """A commit's committer time and offset (seconds east of UTC), from its header as git
        writes it (dulwich parses any other); None for what is no commit."""
        try:
            type_num, raw = self.store.get_raw(self._replaced(oid))  # type: ignore[arg-type]
            if type_num != Commit.type_num and oid in self.replacements:  # not a commit's replacement
                type_num, raw = self.store.get_raw(oid)  # type: ignore[arg-type]
        except KeyError:
            return None
        if type_num != Commit.type_num:
            return None
        end = raw.find(b"\n\n")
        for line in (raw if end < 0 else raw[:end]).split(b"\n"):
            if line.startswith(b"committer "):
                fields = line.rsplit(b" ", 2)
                zone = fields[-1]
                if (len(fields) == 3 and fields[1].isdigit() and len(zone) == 5 and zone[:1] in b"+-"
                        and zone[1:].isdigit()):
                    offset = int(zone[1:3]) * 3600 + int(zone[3:]) * 60
                    return int(fields[1]), -offset if zone[:1] == b"-" else offset
                break
        try:
            commit = Commit.from_raw_string(Commit.type_num, raw)
        except (ObjectFormatException, ValueError, IndexError):  # (dulwich's IndexError: no zone at all)
            return None
        assert isinstance(commit, Commit)
        return commit.commit_time, commit.commit_timezone

    # -- entries -------------------------------------------------------------------------------

    def entry(self, oid: bytes) -> dict[str, Any]:
        """A commit as the log pages list a changeset."""
        commit = self._commit(oid)
        return {"node": oid.decode(), "date": [float(commit.author_time), -commit.author_timezone],
                "desc": _commit_text(commit, commit.message), "user": _commit_text(commit, commit.author),
                "branch": "default",
                "tags": self.tags.get(oid, []), "bookmarks": self.branches.get(oid, []),
                "parents": [bytes(p).decode() for p in commit.parents]}

    def log(self, key: str, count: int, path: str = "", skip: int = 0) -> list[dict[str, Any]]:
        """``count`` commits from ``key`` down, in ``git log``'s order, after the first ``skip``
        of them (``git log --skip``: a later page of the same walk); with ``path``, those
        ``git log -- PATH`` shows (its default history simplification)."""
        if key in ("tip", "HEAD") and self.head is None:
            return []  # an empty repository (or an unborn HEAD): no commit to show yet
        if skip > MAX_SKIP:
            raise ProtocolError(f"a log page starts at most {MAX_SKIP} commits down: open the log of an older "
                                "commit (log/ID) instead", 400)
        start = self.resolve(key)
        parts = tuple(p for p in path.strip("/").encode("utf-8", "surrogateescape").split(b"/") if p)
        walked = self._walk(start, skip + count, parts)
        return [self.entry(oid) for oid in itertools.islice(walked, skip, None)]

    def _walk(self, start: bytes, count: int, path: tuple[bytes, ...] = ()) -> Iterator[bytes]:
        """``git log``'s default order: the newest commit date first, commits of the same date in
        the order they were reached (a parent after its child, first parents first).  With a
        path, as git simplifies history: a commit whose path is as in one of its parents is not
        shown, and of a merge only the first such parent is followed; others are shown, and all
        their parents followed."""
        queue = [(-self._commit(start).commit_time, 0, start)]
        seen = {start}
        reached = 1
        while queue and count > 0:
            _when, _order, oid = heapq.heappop(queue)
            tick("the page")  # a long walk (a path's history): stopped once the page's client has gone
            parents = [bytes(p) for p in self._commit(oid).parents if p in self.store]
            follow = parents
            shown = True
            if path:
                here = self._at_path(oid, path)
                same = [p for p in parents if self._at_path(p, path) == here]
                if same:
                    shown, follow = False, same[:1]
                elif not parents:
                    shown = here is not None
            if shown:
                yield oid
                count -= 1
            for parent in follow:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(queue, (-self._commit(parent).commit_time, reached, parent))
                    reached += 1

    def search(self, query: bytes, count: int) -> dict[str, Any]:
        """The log's search, as the Mercurial pages': a query naming a commit (a branch, a tag, a
        full id) finds it; else the commits from HEAD in ``git log``'s order whose author,
        committer or message hold every word of the query (case folded)."""
        entries: list[dict[str, Any]] = []
        try:
            entries = [self.entry(self.resolve(query.decode("utf-8", "surrogateescape")))]
        except ProtocolError:
            words = fold(query).split()
            if self.head is not None:
                for oid in self._walk(self.head, MAX_SEARCHED):
                    commit = self._commit(oid)
                    fields = tuple(fold(_commit_text(commit, raw).encode("utf-8") if commit.encoding else raw)
                                   for raw in (commit.author, commit.committer, commit.message))
                    if all(any(word in field for field in fields) for word in words):
                        entries.append(self.entry(oid))
                        if len(entries) >= count:
                            break
        return {"query": _text(query), "entries": entries}

    def graph(self, key: str, count: int) -> dict[str, Any]:
        """The graph of ``count`` commits from ``key`` down (``git log``'s order, each commit
        before its parents), laid out as the Mercurial graph (``backends.hg.webgraph``)."""
        if key in ("", "tip", "HEAD") and self.head is None:
            return {"changesets": []}
        start = self.resolve(key or "HEAD")
        found = list(self._walk(start, count))
        window = set(found)
        parents = {oid: [bytes(p) for p in self._commit(oid).parents if p in self.store] for oid in found}
        waiting = {oid: 0 for oid in found}  # children in the window not yet placed
        for oid in found:
            for parent in parents[oid]:
                if parent in window:
                    waiting[parent] += 1
        order = {oid: n for n, oid in enumerate(found)}
        ready = [(order[oid], oid) for oid in found if not waiting[oid]]
        heapq.heapify(ready)
        placed = []
        while ready:
            _n, oid = heapq.heappop(ready)
            placed.append(oid)
            for parent in parents[oid]:
                if parent in window:
                    waiting[parent] -= 1
                    if not waiting[parent]:
                        heapq.heappush(ready, (order[parent], parent))
        rows = []
        for row, (oid, column, color, edges) in enumerate(webgraph.layout(lambda oid: parents[oid], placed)):
            rows.append({**self.entry(oid), "col": column, "row": row, "color": webgraph.shown_color(color),
                         "edges": [{"col": col, "nextcol": nextcol, "color": webgraph.shown_color(edge_color),
                                    "width": width, "bcolor": ""} for col, nextcol, edge_color, width, _b in edges]})
        return {"changesets": rows}

    def _at_path(self, oid: bytes, path: tuple[bytes, ...]) -> tuple[int, bytes] | None:
        """The mode and id of what commit ``oid`` holds at ``path`` (None: nothing)."""
        obj: Any = self._object(self._commit(oid).tree)
        found: tuple[int, bytes] | None = None
        for part in path:
            if not isinstance(obj, Tree) or part not in obj:
                return None
            mode, sha = obj[part]
            found = (mode, bytes(sha))
            obj = self._object(sha) if stat.S_ISDIR(mode) else None
        return found

    def summary(self, url: str, archives: Collection[str] = ()) -> dict[str, Any]:
        """The front page: how to clone, the latest commits of HEAD, branches, tags, the archive
        links of the types ``archives`` allows."""
        links = [{"type": kind, "url": f"{url}/archive/tip{extension}"}
                 for kind, (_mime, extension) in ARCHIVE_TYPES.items() if kind in archives and self.head is not None]
        return {"shortlog": self.log("tip", 10),
                "bookmarks": [], "branches": self.names("branches", 10), "tags": self.names("tags", 10),
                "archives": links, "clone": f"git clone {url}", "description": self.description(),
                "note": self.head_note()}

    def description(self) -> str:
        """The git directory's ``description`` file (gitweb's), unless it is still git's template text."""
        read = getattr(self.repo, "description", None)
        text = read() if read is not None else None
        if not text or text.startswith(b"Unnamed repository;"):
            return ""
        return _text(text[:4096].strip())

    def names(self, kind: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Branches or tags (the ``limit`` newest), newest first (``bookmarks``: none in git).
        Each commit is read once, however many names point at it.

        Both are dated and ordered as gitweb lists them, names of one date in name order:
        branches by ``git for-each-ref --sort=-committerdate refs/heads`` (their commit's
        committer), tags by ``git for-each-ref --sort=-creatordate`` (an annotated tag by its
        tagger, a lightweight one by its commit's committer).  A tag of a
        tree or a blob (``git tag t HEAD^{tree}``) is listed too, with its ``type``; a lightweight
        one (or a tag object with no tagger) has no date (``date`` None) and comes after the dated
        ones, by name, as for-each-ref puts it.  An object's type is read from its pack entry's
        header, so a large blob is not read."""
        found = []
        undated: list[tuple[bytes, bytes, str]] = []
        dates: dict[bytes, tuple[int, int] | None] = {}
        kinds: dict[bytes, str] = {}
        prefix = {"branches": b"refs/heads/", "tags": b"refs/tags/"}.get(kind)
        tags = kind == "tags"
        with size_reader(self.store) as types:
            for name, oid in self.refs.items():
                if prefix is None or not name.startswith(prefix):
                    continue
                target = bytes(self.peeled.get(name, oid))
                if target not in dates:
                    kinds[target] = _type_name(types, target)
                    commit = self._object(target) if kinds[target] == "commit" else None
                    dates[target] = (commit.commit_time, commit.commit_timezone) if isinstance(commit, Commit) else None
                date = dates[target]
                if tags and bytes(oid) != target:  # an annotated tag: its tagger's date (gitweb's creatordate)
                    date = self._tag_date(bytes(oid))
                if date is None:
                    if tags:
                        undated.append((name, target, kinds[target]))
                    continue
                found.append((date[0], name, target, date[1]))
        # newest first, a date's names in name order (for-each-ref's tie-break)
        newest = heapq.nsmallest(limit, found, key=lambda row: (-row[0], row[1])) if limit is not None \
            else sorted(found, key=lambda row: (-row[0], row[1]))
        key = {"branches": "branch", "tags": "tag"}.get(kind, "bookmark")
        entries: list[dict[str, Any]] = [
            {key: _text(name[len(prefix or b""):]), "node": target.decode(), "date": [float(when), -tz],
             **({"status": "open"} if kind == "branches" else {}),
             **({"type": kinds[target]} if kinds[target] != "commit" else {})}
            for when, name, target, tz in newest]
        room = len(undated) if limit is None else max(0, limit - len(entries))
        entries += [{key: _text(name[len(prefix or b""):]), "node": target.decode(), "date": None,
                     **({"type": type_name} if type_name != "commit" else {})}
                    for name, target, type_name in sorted(undated)[:room]]
        return entries

    def _tag_date(self, oid: bytes) -> tuple[int, int] | None:
        """An annotated tag's tagger time and offset; None when it has none (or is no tag)."""
        tag = self._object(oid)
        if not isinstance(tag, Tag) or tag.tagger is None:
            return None
        return tag.tag_time, tag.tag_timezone

    def changeset(self, key: str, only: str = "") -> dict[str, Any]:
        """A commit with its files and diff against its first parent (``only``: that path's), as
        ``git show`` lists them: a file renamed (git's rename detection, at least 50% alike) is one
        entry under its new name, its diff against the old one."""
        oid = self.resolve(key)
        commit = self._commit(oid)
        data = self.entry(oid)
        parent_tree = self._commit(bytes(commit.parents[0])).tree if commit.parents else None
        files: list[dict[str, Any]] = []
        diff: list[dict[str, Any]] = []
        read = 0
        paths = [only.encode("utf-8", "surrogateescape")] if only else None
        with size_reader(self.store) as sizes:  # (one reader for the sizes of every file)
            for change in self._changes(parent_tree, commit.tree, paths):
                old = change.old if change.old is not None and change.old.path is not None else None
                new = change.new if change.new is not None and change.new.path is not None else None
                if change.type == CHANGE_COPY:  # git show names no copies: the file is added
                    old = None
                renamed = old.path if change.type == CHANGE_RENAME and old is not None else None
                path = (new.path if new is not None else old.path if old is not None else None) or b""
                status = ("renamed" if renamed is not None else "added" if old is None else "removed" if new is None
                          else "modified")
                files.append({"file": _path(path), "status": status, **({"from": _path(renamed)} if renamed else {})})
                sized = sum(self._size(sizes, side.sha, side.mode) for side in (old, new) if side is not None)
                read = _within_patch_text(read + sized)  # before the texts are read
                old_text = self._blob(old.sha, old.mode) if old is not None else b""
                new_text = self._blob(new.sha, new.mode) if new is not None else b""
                read = _within_patch_text(read + len(old_text) + len(new_text) - sized)  # (a size not in the headers)
                diff.append({"blockno": len(diff) + 1,
                             "lines": list(_diff_lines(path, status, old_text, new_text, renamed))})
        return {**data, "children": [], "files": files, "diff": diff}

    def _changes(self, old_tree: ObjectID | None, new_tree: ObjectID, paths: list[bytes] | None) -> list[TreeChange]:
        """The changes between two trees in git's order (tree order, which is the byte order of
        whole paths: a directory's entries sort as ``name/``; a renamed file where its new name
        is), renames paired; with ``paths``, those of these paths (a renamed one's pair)."""
        if paths is not None:  # one file's diff: the whole commit's pairs, if it was renamed
            plain = list(tree_changes(self.store, old_tree, new_tree, paths=paths))
            if not any(_gone(c) or _gone(c, new=True) for c in plain):
                return plain
            return [c for c in self._changes(old_tree, new_tree, None)
                    if _name(c) in paths or (c.type == CHANGE_RENAME and c.old is not None and c.old.path in paths)]
        detector = RenameDetector(self.store, rename_threshold=RENAME_THRESHOLD)
        return sorted(tree_changes(self.store, old_tree, new_tree, rename_detector=detector), key=_name)

    def filediff(self, key: str, path: str) -> dict[str, Any]:
        """One file's diff in commit ``key`` against its first parent (none when it did not change
        it), in the shape of hgweb's ``filediff``."""
        data = self.changeset(key, path.strip("/"))
        return {"path": path.strip("/"), "node": data["node"], "date": data["date"], "desc": data["desc"],
                "author": data["user"], "parents": data["parents"], "children": [], "diff": data["diff"]}

    def annotate(self, key: str, path: str) -> dict[str, Any]:
        """``git blame``'s answer in the shape of hgweb's ``fileannotate``: each line of the file at
        commit ``key`` with the commit that last changed it and its line number there.  As git
        blame without options: commits newest first; a commit whose file is as in one of its
        parents hands every line to the first such parent; else each parent in order takes the
        lines equal to its own (the runs git's own diff finds, ``backends.git_diff.blame_blocks``)
        and the commit keeps the rest.  A file a parent
        does not have at its path is looked for as git blame does, renamed (``_source``)."""
        oid, wanted, obj = self._at(key, path, read_file=False)
        if not isinstance(obj, _FileAt):
            raise ProtocolError("path not found", 404)
        parts = tuple(wanted.split(b"/"))
        found = self._at_path(oid, parts)
        assert found is not None
        data = self._file_blob(obj, MAX_FILE_TEXT, f"this file holds more than {MAX_FILE_TEXT >> 20} MiB: it is "
                               "not annotated here; clone the repository and run git blame").as_raw_string()
        final = [b"(binary:%s)" % guessed_type(wanted)] if b"\0" in data else split_lines(data)
        origins: list[tuple[bytes, bytes, int]] = [(oid, wanted, n) for n in range(1, len(final) + 1)]
        # suspects: for each (commit, path) still to look at, its lines: {line number there: final index}
        suspects: dict[tuple[bytes, bytes], dict[int, int]] = {(oid, wanted): {n: n for n in range(len(final))}}
        queue = [(-self._commit(oid).commit_time, 0, oid, wanted)]
        order = 1
        visited = 0
        while queue:
            _when, _order, here, at = heapq.heappop(queue)
            lines = suspects.pop((here, at), None)
            if not lines:
                continue
            visited += 1
            tick("the annotation")
            if visited > MAX_BLAME_COMMITS:
                raise UnsupportedFeature(f"this file's history passes {MAX_BLAME_COMMITS} commits: it is not "
                                         "annotated here; clone the repository and run git blame")
            mine = self._at_path(here, tuple(at.split(b"/")))
            parents = [bytes(p) for p in self._commit(here).parents if p in self.store]
            sources = {p: self._source(p, here, at) for p in parents}
            same = next(((p, source[0]) for p, source in sources.items()
                         if source is not None and mine is not None and source[1][1] == mine[1]), None)
            handed: list[tuple[bytes, bytes, dict[int, int]]] = []
            if same is not None:  # the same blob (a mode change, an exact rename): every line is the parent's
                handed.append((*same, lines))
                lines = {}
            elif b"\0" not in data:
                mine_text = self._blob(mine[1], mine[0]) if mine else b""
                for parent in parents:
                    source = sources[parent]
                    if not lines or source is None or not stat.S_ISREG(source[1][0]):
                        continue
                    taken: dict[int, int] = {}
                    parent_text = self._blob(source[1][1], source[1][0])
                    for a1, _a2, b1, b2 in git_diff.blame_blocks(parent_text, mine_text):
                        for number in range(b1, b2):
                            if number in lines:
                                taken[a1 + number - b1] = lines.pop(number)
                    if taken:
                        handed.append((parent, source[0], taken))
            for number, index in lines.items():
                origins[index] = (here, at, number + 1)
            for parent, source_path, taken in handed:
                if (parent, source_path) not in suspects:
                    suspects[parent, source_path] = {}
                    heapq.heappush(queue, (-self._commit(parent).commit_time, order, parent, source_path))
                    order += 1
                suspects[parent, source_path].update(taken)
        about: dict[bytes, dict[str, Any]] = {}
        entries = []
        for number, ((origin, origin_path, target), line) in enumerate(zip(origins, final, strict=True), 1):
            if origin not in about:
                about[origin] = self.entry(origin)
            entry = about[origin]
            entries.append({"node": entry["node"], "author": entry["user"], "desc": entry["desc"],
                            "abspath": _path(origin_path), "targetline": target, "line": _text(line),
                            "lineno": number, "revdate": entry["date"]})
        head = self.entry(oid)
        return {"abspath": _path(wanted), "node": head["node"], "author": head["user"], "date": head["date"],
                "desc": head["desc"], "parents": head["parents"], "children": [], "permissions": _flags(found[0]),
                "annotate": entries}

    def _source(self, parent: bytes, child: bytes, path: bytes) -> tuple[bytes, tuple[int, bytes]] | None:
        """Where commit ``parent`` has the file ``child`` has at ``path``: the same path, else the
        one ``child`` renamed it from (git's rename detection: at least 50% alike), else None."""
        found = self._at_path(parent, tuple(path.split(b"/")))
        if found is not None:
            return path, found
        detector = RenameDetector(self.store, rename_threshold=RENAME_THRESHOLD)
        for change in tree_changes(self.store, self._commit(parent).tree, self._commit(child).tree,
                                   rename_detector=detector):
            old_entry, new_entry = change.old, change.new
            if (change.type == CHANGE_RENAME and new_entry is not None and new_entry.path == path
                    and old_entry is not None and old_entry.path is not None):
                old = self._at_path(parent, tuple(old_entry.path.split(b"/")))
                return (old_entry.path, old) if old is not None else None
        return None

    @staticmethod
    def _size(sizes: PackObjectReader, sha: bytes | None, mode: int | None) -> int:
        """What ``_blob`` would give's length, from the blob's pack entry headers (nothing inflated;
        a loose one is read): so that a page refuses a file too large for it before reading it."""
        if sha is None or mode is None:
            return 0
        if S_ISGITLINK(mode):
            return len(b"Subproject commit \n") + len(sha)
        try:
            return sizes.size_of(sha)
        except (KeyError, CorruptPack):
            return 0  # (read, and found wanting, where it is read)

    def _file_blob(self, found: _FileAt, limit: int, refusal: str) -> Blob:
        """The blob at a file's path, refused with ``refusal`` when it is over ``limit``: before it is
        read, from its pack entry's headers, or (a size they did not give) once it is read."""
        with size_reader(self.store) as sizes:
            if self._size(sizes, found.sha, stat.S_IFREG) > limit:
                raise UnsupportedFeature(refusal)
        blob = self._object(found.sha)
        if not isinstance(blob, Blob):
            raise ProtocolError("path not found", 404)
        if blob.raw_length() > limit:
            raise UnsupportedFeature(refusal)
        return blob

    def _blob(self, sha: bytes | None, mode: int | None) -> bytes:
        if sha is None or mode is None:
            return b""
        if S_ISGITLINK(mode):
            return b"Subproject commit " + sha + b"\n"
        blob = self._object(sha)
        return blob.as_raw_string() if isinstance(blob, Blob) else b""

    def _at(self, key: str, path: str, read_file: bool = True) -> tuple[bytes, bytes, Any]:
        """Commit ``key``'s id, the path as bytes, and what is at the path: a tree, a blob (or,
        unless ``read_file``, a file's ``_FileAt``, nothing read), or a submodule's commit id
        (bytes); 404 for a path the commit does not have."""
        oid = self.resolve(key)
        return self._down(oid, self._object(self._commit(oid).tree), path, read_file)

    def _down(self, oid: bytes, obj: Any, path: str, read_file: bool) -> tuple[bytes, bytes, Any]:
        """``_at`` from tree ``obj`` (of commit or tree ``oid``) down ``path``."""
        wanted = path.strip("/").encode("utf-8", "surrogateescape")
        parts = wanted.split(b"/") if wanted else []
        for at, part in enumerate(parts, 1):
            if not isinstance(obj, Tree) or part not in obj:
                raise ProtocolError("path not found", 404)
            mode, sha = obj[part]
            if S_ISGITLINK(mode):
                if at < len(parts):  # nothing of a submodule's own is here
                    raise ProtocolError("path not found", 404)
                return oid, wanted, bytes(sha)
            if not read_file and at == len(parts) and not stat.S_ISDIR(mode):
                return oid, wanted, _FileAt(bytes(sha))
            obj = self._object(sha)
        return oid, wanted, obj

    def _tagged_object(self, key: str) -> tuple[str, bytes] | None:
        """The type (``tree`` or ``blob``) and id of what the ref ``key`` names, when it is a tag
        of a tree or a blob (``git tag t HEAD^{tree}``; peeled), looked up as ``resolve`` looks
        refs up; None when ``key`` names no ref, or one of a commit.  Nothing is read but the
        object's type."""
        raw = url_revision(key).encode("utf-8", "surrogateescape")
        for candidate in (b"refs/heads/" + raw, b"refs/tags/" + raw, b"refs/" + raw, raw):
            if candidate in self.refs:
                target = bytes(self.peeled.get(candidate, self.refs[candidate]))
                with size_reader(self.store) as types:
                    kind = _type_name(types, target)
                return (kind, target) if kind in ("tree", "blob") else None
        return None

    def raw_file(self, key: str, path: str) -> RawFile:
        """hgweb's ``raw-file`` for a git repository: a blob's bytes (a link's target), or a tree's
        listing as hgweb's raw style writes one (``drwxr-xr-x NAME``, then ``-rw-r--r-- SIZE NAME``).

        A blob stored whole in a pack, or loose and over ``core.bigFileThreshold``, is inflated a
        piece at a time as it is sent, whatever its size; one stored otherwise (a delta, a smaller
        loose one) is read whole, up to ``MAX_RAW_FILE`` (its size is known before anything is read)."""
        tagged = self._tagged_object(key)
        if tagged is not None and tagged[0] == "blob":  # a tag of a blob: its bytes (gitweb's blob link)
            if path.strip("/"):
                raise ProtocolError("path not found", 404)
            wanted, obj = b"", _FileAt(tagged[1])
        elif tagged is not None:  # a tag of a tree: its listing, or what is below it (gitweb's tree link)
            _oid, wanted, obj = self._down(tagged[1], self._object(tagged[1]), path, read_file=False)
        else:
            _oid, wanted, obj = self._at(key, path, read_file=False)
        if isinstance(obj, bytes):
            raise ProtocolError("a submodule has no bytes here", 404)
        if isinstance(obj, _FileAt):
            name = wanted.rpartition(b"/")[2] or url_revision(key).encode("utf-8", "surrogateescape").rpartition(b"/")[2]
            tag = bytes(obj.sha).decode("ascii")  # a blob's id names its bytes
            whole = blob_pieces(self.store, obj.sha)
            if whole is not None:
                return RawFile(name, *whole, tag)
            blob = self._file_blob(obj, MAX_RAW_FILE, f"this file is larger than {MAX_RAW_FILE >> 20} MiB: clone "
                                   "the repository")
            return RawFile(name, blob.raw_length(), iter(blob.as_raw_chunks()), tag)
        entries = obj.items()
        with size_reader(self.store) as sizes:  # from the packs' entry headers, as the file page: no blob inflated
            files = [(_flags(e.mode).encode(), 0 if S_ISGITLINK(e.mode) else self._listed_size(sizes, e.sha), e.path)
                     for e in entries if not stat.S_ISDIR(e.mode)]
        return raw_listing([e.path for e in entries if stat.S_ISDIR(e.mode)], files)

    def archive(self, name: str, key: str, kind: str, path: str, allowed: Collection[str]) -> WebArchive:
        """hgweb's archive URL for a git repository: commit ``key``'s tree (only ``path`` below it,
        kept at its place, when given) as ``zip``, ``gz`` (a tar.gz) or ``bz2`` (a tar.bz2), under
        ``NAME-REF/``, the commit's id in it as ``git archive`` puts it; only a type ``allowed``."""
        if kind not in ARCHIVE_TYPES:
            raise ProtocolError("Unsupported archive type", 404)
        if kind not in allowed:
            raise PermissionDenied("Archive type not allowed")
        key = url_revision(key)
        oid = self.resolve(key)
        commit = self._commit(oid)
        source = git_archive.ArchiveSource(bytes(commit.tree), commit.commit_time, commit=oid)
        if path.strip("/"):
            spec = Pathspec(path.strip("/"), pattern=False, given=path)
            try:
                source = git_archive.select(self.store, source, (spec,))
            except ArchiveRefused:
                raise ProtocolError("file(s) not found", 404) from None
        prefix = archive_directory(name.removesuffix(".git"), key, oid.decode()[:12], ("tip", "HEAD")) + "/"
        content_type, extension = ARCHIVE_TYPES[kind]
        store = self.store

        def chunks() -> Iterator[bytes]:
            options = ArchiveOptions("zip" if kind == "zip" else "tgz" if kind == "gz" else "tar", prefix, None, key)
            made = git_archive.archive_chunks(store, source, options)
            return git_archive.compressed(made, bz2.BZ2Compressor(9)) if kind == "bz2" else made

        tag = content_tag(b"git-archive", oid, kind.encode(), prefix.encode(), path.strip("/").encode("utf-8",
                                                                                                   "surrogateescape"))
        return WebArchive(prefix.rstrip("/") + extension, content_type, chunks, tag)

    @staticmethod
    def _listed_size(sizes: PackObjectReader, sha: bytes) -> int:
        """A listed file's size, from its pack entry's headers (a loose one is read); 404 for a missing one."""
        try:
            return sizes.size_of(sha)
        except KeyError:
            raise ProtocolError("unknown object", 404) from None

    def tree(self, key: str, path: str) -> dict[str, Any]:
        """A directory's entries, or (``lines`` in it) a file's lines, at commit ``key``."""
        oid, wanted, obj = self._at(key, path, read_file=False)
        if isinstance(obj, bytes):  # a submodule: the commit it names, as git diff shows it
            return {"node": oid.decode(), "path": _path(wanted), "raw": False,
                    "lines": [{"line": "Subproject commit " + obj.decode()}]}
        if isinstance(obj, _FileAt):
            text = self._file_blob(obj, MAX_FILE_TEXT, "this file is too large to be shown here; clone the "
                                   "repository").as_raw_string()
            if b"\0" in text:  # hgweb's stand-in for a binary file
                text = b"(binary:%s)" % guessed_type(wanted)
            return {"node": oid.decode(), "path": _path(wanted),
                    "lines": [{"line": _text(line)} for line in text.splitlines(True)]}
        directories, files = [], []
        prefix = wanted + b"/" if wanted else b""
        with size_reader(self.store) as sizes:  # from the packs' entry headers: no blob is inflated
            for entry in obj.items():
                tick("the page")  # a directory of 100,000 files
                name, entry_mode, sha = entry.path, entry.mode, entry.sha
                if stat.S_ISDIR(entry_mode):
                    directories.append({"abspath": _path(b"/" + prefix + name), "basename": _path(name),
                                        "emptydirs": ""})
                    continue
                size = 0 if S_ISGITLINK(entry_mode) else self._listed_size(sizes, sha)
                files.append({"abspath": _path(prefix + name), "basename": _path(name), "size": size,
                              "flags": "m" if S_ISGITLINK(entry_mode) else _flags(entry_mode)})
        return {"node": oid.decode(), "abspath": _path(b"/" + prefix), "directories": directories, "files": files}


@dataclass(frozen=True)
class WebArchive:
    """A git archive as hgweb's archive URLs send one: its file name, type and chunks."""

    filename: str
    content_type: str
    _chunks: Callable[[], Iterator[bytes]]
    tag: str = ""
    """Names the archive's bytes (``content_tag``): its commit, type, top directory and path (an
    ``export-subst`` file's ``$Format:$`` is the commit's own details)."""

    def chunks(self) -> Iterator[bytes]:
        return self._chunks()


MAX_RAW_FILE = 256 << 20
"""The largest blob ``raw-file`` reads whole to send (one stored as a delta or loose; clone the
repository for larger ones); one stored whole in a pack is sent as it is inflated, whatever its size."""


def _within_patch_text(read: int) -> int:
    """``read``, the bytes of a commit's files read for its diff, if within ``MAX_PATCH_TEXT``."""
    if read > MAX_PATCH_TEXT:
        raise UnsupportedFeature(f"this commit's files hold more than {MAX_PATCH_TEXT >> 20} MiB: its diff "
                                 "is not shown; clone the repository to see it")
    return read


@dataclass(frozen=True, slots=True)
class _FileAt:
    """A file's blob id at a path, its blob not read."""

    sha: bytes


def _gone(change: TreeChange, new: bool = False) -> bool:
    """Whether the change has no old file (``new``: no new file)."""
    entry = change.new if new else change.old
    return entry is None or entry.path is None


def _name(change: TreeChange) -> bytes:
    """The path a change is listed under: its new file's, else its old one's."""
    entry = change.old if _gone(change, new=True) else change.new
    assert entry is not None and entry.path is not None
    return entry.path


BINARY_PROBE = 8000
"""git takes a file for binary when a NUL byte is among its first 8,000."""


def _diff_lines(path: bytes, status: str, old: bytes, new: bytes, renamed: bytes | None = None
                ) -> Iterator[dict[str, Any]]:
    """One file's diff lines, typed as the Mercurial pages type them: a renamed file's first say
    so (``rename from``/``rename to``, as git's), and only a change of its content follows."""
    lines = [b"rename from %s\n" % renamed, b"rename to %s\n" % path] if renamed is not None else []
    old_name = b"a/" + (renamed if renamed is not None else path)
    if renamed is not None and old == new:
        pass
    elif b"\0" in old[:BINARY_PROBE] or b"\0" in new[:BINARY_PROBE]:  # git's test, and its words
        lines.append(b"Binary files %s and %s differ\n" % (b"/dev/null" if status == "added" else old_name,
                                                           b"/dev/null" if status == "removed" else b"b/" + path))
    else:
        lines += [(b"--- /dev/null\n" if status == "added" else b"--- %s\n" % old_name),
                  (b"+++ /dev/null\n" if status == "removed" else b"+++ b/%s\n" % path),
                  *git_diff.unified_hunks(old, new)]
    for number, line in enumerate(lines, 1):
        kind = line[:1] if line[:1] in (b"+", b"-", b"@") else b""
        yield {"t": kind.decode(), "n": number, "l": _text(line)}


def _flags(mode: int) -> str:
    """A tree entry's mode as a Mercurial manifest's flags: ``l`` a link, ``x`` an executable."""
    return "l" if stat.S_ISLNK(mode) else "x" if mode & 0o111 else ""


_IDENT_LINE = re.compile(rb"^(author|committer|tagger) ([^\n]*>)([^>\n]*)$", re.MULTILINE)
_GIT_DATE = re.compile(rb" *(\d{1,20}) ([+-]\d{4})\s*")


def lenient_object(store: Any, oid: bytes) -> Commit | Tag | None:
    """A commit or tag dulwich cannot parse, read as ``git log`` shows it: an author, committer or
    tagger line whose date is no number or has no zone gets date 0 (1970-01-01, ``+0000``), the
    rest as stored; its id is its own.  None for anything else, or when even that does not parse
    (the page then says the repository holds an object the server cannot read)."""
    try:
        type_num, raw = store.get_raw(oid)
    except (KeyError, ObjectFormatException, ValueError):
        return None
    if type_num not in (Commit.type_num, Tag.type_num):
        return None
    end = raw.find(b"\n\n")
    header, body = (raw, b"") if end < 0 else (raw[:end], raw[end:])

    def readable(line: re.Match[bytes]) -> bytes:
        date = _GIT_DATE.fullmatch(line.group(3))
        when = date.group(1) + b" " + date.group(2) if date is not None else b"0 +0000"
        return line.group(1) + b" " + line.group(2) + b" " + when

    text = _IDENT_LINE.sub(readable, header) + body
    try:
        found = (Commit if type_num == Commit.type_num else Tag).from_raw_string(
            type_num, text, sha=oid, object_format=object_format_of(store))  # type: ignore[arg-type]
    except (ObjectFormatException, ValueError, IndexError):
        return None
    return found if isinstance(found, Commit | Tag) else None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# Codecs Python knows that are no character set git's iconv would name (and punycode's decoding
# grows with the square of its input): a commit naming one is read as UTF-8.
_NOT_CHARSETS = frozenset({"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined"})


def _commit_text(commit: Commit, raw: bytes) -> str:
    """A commit's message or person as ``git log`` shows it: converted from the charset its
    ``encoding`` header names (``i18n.commitEncoding``, e.g. ISO-8859-1) when Python knows that
    charset and the text is valid in it, else read as UTF-8 (a byte that is not: U+FFFD), as git
    keeps the bytes it cannot convert."""
    named = commit.encoding
    if named:
        try:
            codec = codecs.lookup(bytes(named).decode("ascii").strip())
            if codec.name not in _NOT_CHARSETS:
                return raw.decode(codec.name)
        except (LookupError, UnicodeError, ValueError):
            pass
    return _text(raw)


def _path(raw: bytes) -> str:
    """A path as the pages' links take it back (``surrogateescape``: a byte that is not UTF-8 is
    a lone surrogate, shown as U+FFFD and linked as its own byte)."""
    return raw.decode("utf-8", "surrogateescape")


_TYPE_NAMES = {Commit.type_num: "commit", Tree.type_num: "tree", Blob.type_num: "blob", Tag.type_num: "tag"}


def _type_name(types: PackObjectReader, oid: bytes) -> str:
    """``commit``, ``tree``, ``blob`` or ``tag``: an object's type from its pack entry's header
    (read from the store when loose); ``commit`` for one that is nowhere, read (and refused) as
    before."""
    try:
        return _TYPE_NAMES.get(types.type_of(oid), "commit")
    except (KeyError, CorruptPack):
        return "commit"

JSON_LOGS = ("json-shortlog", "json-changelog", "json-log")
JSON_DEFAULT_COUNT = 60
"""Changesets a git repository's JSON log lists without ``?revcount=`` (hgweb's ``maxshortchanges``)."""


def json_page(pages: GitPages, name: str, revcount: int | None, url: str, query: bytes | None = None) -> bytes:
    """A git repository's page in hgweb's JSON names and shapes (``json-rev/REF``, the logs, with
    a path a file's history, ``json-file``/``json-manifest``, ``json-diff``, ``json-annotate``,
    ``json-tags``, ``json-branches``, ``json-graph``, ``json-summary``; a log with ``?rev=`` and no
    revision is the log's search): what the git pages show, for scripts.  404 for another page."""
    kind, _, key = name.partition("/")
    revision, _, path = key.partition("/")
    count = revcount or JSON_DEFAULT_COUNT
    data: Any
    if kind in ("json-rev", "json-changeset"):
        data = pages.changeset(key or "tip")
    elif kind in JSON_LOGS and query is not None and not key:
        data = pages.search(query, count)
    elif kind in JSON_LOGS and not path:
        data = {"node": pages.entry(pages.resolve(revision or "tip"))["node"],
                "changesets": pages.log(revision or "tip", count)}
    elif kind in (*JSON_LOGS, "json-filelog") and path:
        data = {"entries": pages.log(revision, count, path)}
    elif kind in ("json-file", "json-manifest"):
        data = pages.tree(revision or "tip", path)
    elif kind in ("json-diff", "json-filediff") and path:
        data = pages.filediff(revision, path)
    elif kind == "json-annotate" and path:
        data = pages.annotate(revision, path)
    elif kind in ("json-tags", "json-branches") and not key:
        data = {kind[5:]: pages.names(kind[5:])}
    elif kind == "json-graph":
        data = pages.graph(key, count)
    elif kind == "json-summary" and not key:
        data = pages.summary(url.rstrip("/"))
    else:
        raise ProtocolError("this page is not served for a git repository", 404)
    return json.dumps(data, indent=1, ensure_ascii=True).encode("ascii")
