"""Receive a pushed pack into a disk store, and check what the push's refs reach, fast.

``ingest_pack`` is receive-pack's ``index-pack --fix-thin``: copy the pushed
pack into the object directory while indexing it (dulwich's ``PackIndexer``
and ``PackStreamCopier``), append the bases a thin pack deltas against, name
it ``pack-<sha1 of its sorted object names>`` and write its index.  Bases come
from a ``PackObjectReader`` over the cached index views of the store's packs
(dict lookups and a delta cache) instead of the store's own lookups, which
bisect every index in Python.  Every commit, tree and tag is checked as the
indexer resolves it, so a malformed one is refused before any ref can name it.

``connected`` is receive-pack's connectivity check: every object reachable
from a pushed tip must exist.  Objects that were in the store before the push
are complete by the store's invariant, so the walk reads only the objects the
push added and checks only the presence of the others; blobs are never read.
"""

from __future__ import annotations

import binascii
import os
import tempfile
import time
from collections.abc import Callable, Collection, Iterable
from contextlib import suppress
from typing import BinaryIO

from dulwich.errors import ObjectFormatException
from dulwich.object_store import PACK_MODE, DiskObjectStore
from dulwich.objects import ObjectID, ShaFile, Tag, parse_tree
from dulwich.pack import (
    Pack,
    PackData,
    PackIndexEntry,
    PackIndexer,
    PackStreamCopier,
    UnpackedObject,
    extend_pack,
    iter_sha1,
    write_pack_index,
)

from backends import git_packindex
from backends.git_objects import PackObjectReader
from backends.git_packindex import PackIndexView
from backends.git_reach import MissingObject, _commit_links, _tag_target

S_IFMT, S_IFDIR, S_IFGITLINK = 0o170000, 0o040000, 0o160000
COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4


SMALL_INDEX = 256 << 10
"""An index this small (about 8,000 objects) is worth viewing for one push; a larger one only once cached."""


def cheap_views(store: DiskObjectStore) -> tuple[list[PackIndexView], bool]:
    """Index views of the store's packs that are cheap now (cached ones, small ones built), and
    whether every pack got one.

    Building the view of a large pack costs about 0.1 s per 50,000 objects:
    a clone builds it (and caches it) anyway, but a push right after a start
    names only a few of its objects, which dulwich's own lookups find faster
    (``PackObjectReader`` and ``Presence`` fall back to the store).
    """
    bases = git_packindex.pack_basenames(os.fspath(store.pack_dir))
    views = []
    for base in bases:
        view = git_packindex.cached_view(base)
        if view is None and os.path.getsize(base + ".idx") <= SMALL_INDEX:
            view = git_packindex.index_view(base)
        if view is not None:
            views.append(view)
    return views, len(views) == len(bases)


class Presence:
    """``hexsha in presence``: in a viewed pack, else in the store's other packs or loose."""

    def __init__(self, store: DiskObjectStore, views: list[PackIndexView], all_viewed: bool) -> None:
        self._store = store
        self._views = views
        self._all_viewed = all_viewed

    def __contains__(self, hexsha: object) -> bool:
        assert isinstance(hexsha, bytes)
        binsha = binascii.unhexlify(hexsha)
        if any(view.position(binsha) is not None for view in self._views):
            return True
        sha = ObjectID(hexsha)
        if not self._all_viewed and self._store.contains_packed(sha):
            return True
        return bool(self._store.contains_loose(sha))


def _raw_reader(reader: PackObjectReader) -> Callable[[bytes], tuple[int, bytes]]:
    def get_raw(sha: bytes) -> tuple[int, bytes]:
        return reader.read(sha if len(sha) == 40 else binascii.hexlify(sha))

    return get_raw


STALE_TEMPORARY_SECONDS = 24 * 3600
"""A ``tmp_pack_*`` file this old in the object directory was left by a killed writer."""


def sweep_stale_temporaries(store: DiskObjectStore, older_than: float = STALE_TEMPORARY_SECONDS) -> int:
    """Remove ``tmp_pack_*`` files a killed writer left (``git gc`` would, much later); how many."""
    objects_dir = os.fspath(store.path)
    removed = 0
    cutoff = time.time() - older_than
    try:
        names = [n for n in os.listdir(objects_dir) if n.startswith("tmp_pack_")]
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(objects_dir, name)
        try:
            if os.lstat(path).st_mtime < cutoff:
                os.unlink(path)
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def ingest_pack(store: DiskObjectStore, read: Callable[[int], bytes],
                parsed: ParsedObjects | None = None) -> Pack:
    """Index the pack ``read`` yields into ``store`` (completing a thin pack); the new ``Pack``.

    The pack and its index are written and every object parsed under
    temporary names; only then are they renamed into ``objects/pack`` (the
    pack first: a ``.pack`` without its ``.idx`` is invisible to readers).
    Raises dulwich's errors (``ObjectFormatException``, ``ApplyDeltaError``,
    ``KeyError`` for a missing base, ``AssertionError``/``ValueError`` for a
    corrupt stream); nothing is left in the object directory then.
    ``parsed`` collects the commits, trees and tags as checked, for ``connected``.
    """
    sweep_stale_temporaries(store)
    hash_func = store.object_format.hash_func
    fd, path = tempfile.mkstemp(dir=store.path, prefix="tmp_pack_")
    idx_path = path + ".idx"
    views, _ = cheap_views(store)
    try:
        with PackObjectReader(store, views) as reader, os.fdopen(fd, "w+b") as out:
            os.chmod(path, PACK_MODE)
            entries, pack_sha = _copy_and_index(store, read, out, path, _raw_reader(reader), hash_func, parsed)
        entries.sort()
        with open(idx_path, "wb") as idx:
            write_pack_index(idx, entries, pack_sha, version=store.pack_index_version)
            if store.fsync_object_files:
                idx.flush()
                os.fsync(idx.fileno())
        os.chmod(idx_path, PACK_MODE)
        name = iter_sha1(e[0] for e in entries).decode()
        base = os.path.join(os.fspath(store.pack_dir), "pack-" + name)
        if not (os.path.exists(base + ".pack") and os.path.exists(base + ".idx")):
            os.rename(path, base + ".pack")
            os.rename(idx_path, base + ".idx")
        # else: the same objects are already stored under this name; the temporaries go
    finally:
        for leftover in (path, idx_path):
            with suppress(FileNotFoundError):
                os.unlink(leftover)
    return Pack(base, object_format=store.object_format)


def _copy_and_index(store: DiskObjectStore, read: Callable[[int], bytes], out: BinaryIO, path: str,
                    get_raw: Callable[[bytes], tuple[int, bytes]], hash_func: Callable[[], object],
                    parsed: ParsedObjects | None) -> tuple[list[tuple[bytes, int, int | None]], bytes]:
    indexer = _CheckingIndexer(out, hash_func, resolve_ext_ref=get_raw)  # type: ignore[arg-type]
    indexer.parsed = parsed
    copier = PackStreamCopier(hash_func, read, None, out, delta_iter=indexer)  # type: ignore[arg-type]
    copier.verify()
    out.flush()
    out.seek(0)
    with PackData(path, file=out, object_format=store.object_format) as data:
        indexer.set_pack_data(data)
        entries: list[tuple[bytes, int, int | None]] = list(indexer)
        # A ref-delta base the pack also carries counts as external when the store has it
        # too (an object pushed again); appending it would store it twice in one pack.
        ext_refs = set(indexer.ext_refs()) - {entry[0] for entry in entries}
    pack_sha, extra = extend_pack(out, ext_refs, get_raw=get_raw,
                                  object_format=store.object_format,
                                  compression_level=store.pack_compression_level)
    out.flush()
    if store.fsync_object_files:
        os.fsync(out.fileno())
    entries.extend(extra)
    return entries, pack_sha


class ParsedObjects:
    """The commits, trees and tags of a push as the indexer saw them, up to ``budget`` bytes.

    The connectivity walk reads these instead of inflating them from the new
    pack a second time; past the budget it reads the pack as before.
    """

    def __init__(self, budget: int = 64 << 20) -> None:
        self.budget = budget
        self.held = 0
        self.objects: dict[bytes, tuple[int, bytes]] = {}

    def keep(self, hexsha: bytes, type_num: int, raw: bytes) -> None:
        if self.held + len(raw) <= self.budget:
            self.objects[hexsha] = (type_num, raw)
            self.held += len(raw)

    def reader(self, fallback: ObjectReader) -> ObjectReader:
        objects = self.objects

        def read(hexsha: bytes) -> tuple[int, bytes]:
            found = objects.get(hexsha)
            return found if found is not None else fallback(hexsha)

        return read


class _CheckingIndexer(PackIndexer):
    """dulwich's indexer, checking each commit, tree and tag (``check_object``) as it resolves it.

    The indexer inflates every object once, deltas applied; checking there
    costs no second read of the pack.  Thin-pack bases come from the store,
    where they were checked when they arrived.
    """

    parsed: ParsedObjects | None = None

    def _result(self, unpacked: UnpackedObject) -> PackIndexEntry:
        type_num = unpacked.obj_type_num
        if type_num != BLOB:
            assert type_num is not None and unpacked.obj_chunks is not None
            raw = b"".join(unpacked.obj_chunks)
            check_object(type_num, raw)
            if self.parsed is not None:
                self.parsed.keep(binascii.hexlify(unpacked.sha()), type_num, raw)
        return super()._result(unpacked)


def check_object(type_num: int, raw: bytes) -> None:
    """Refuse an object ``git fsck`` reports as an error (raises dulwich's ``ObjectFormatException``).

    Commits: dulwich's checks (tree and parent ids, author and committer
    ``Name <email>`` idents, times, header order) — git's ``missingTree``,
    ``badParentSha1``, ``badEmail``, ``missingNameBeforeEmail`` family.  Trees:
    entries sorted as git sorts them (a subtree's name compares as ``name/``)
    and no name twice (``treeNotSorted``, ``duplicateEntries``).  Tags: an
    object id and a non-empty name.  What git only warns about (zero-padded
    modes, ``.git`` entries, tags without tagger) is accepted, as a default git
    server accepts it.
    """
    if type_num == BLOB:
        return
    if type_num == TREE:
        _check_tree(raw)  # parses the entries itself: no dulwich Tree object as well
        return
    obj = ShaFile.from_raw_string(type_num, raw)
    if type_num == COMMIT:
        obj.check()
    elif type_num == TAG:
        assert isinstance(obj, Tag)
        if not obj.name or obj.object[1] is None:
            raise ObjectFormatException("a tag without a name or an object")


def _check_tree(raw: bytes) -> None:
    """Entries in git's order (a subtree sorts as ``name/``), no name twice.

    In that order an entry and a later one of the same name can only be a file
    ``X`` and a subtree ``X`` (keys ``X`` < ``X/``), with only names that start
    with ``X`` between them; so a subtree looks back over those alone.
    """
    names: list[bytes] = []
    previous = None
    for name, mode, _child in parse_tree(raw, 20):
        if mode & S_IFMT == S_IFDIR:
            key = name + b"/"
            for earlier in reversed(names):
                if earlier == name:
                    raise ObjectFormatException(f"tree has the entry {name!r} twice")
                if not earlier.startswith(name):
                    break
        else:
            key = name
        if previous is not None and key <= previous:
            if key == previous:
                raise ObjectFormatException(f"tree has the entry {name!r} twice")
            raise ObjectFormatException(f"tree entries are not sorted ({name!r} after {previous!r})")
        names.append(name)
        previous = key


ObjectReader = Callable[[bytes], tuple[int, bytes]]


def connected(store: DiskObjectStore, tips: Iterable[bytes], added: Collection[bytes],
              parsed: ParsedObjects | None = None) -> bool:
    """Whether every object reachable from ``tips`` (hex) is in ``store``, reading only ``added`` ones.

    ``parsed``: the push's objects as ``ingest_pack`` checked them, read before the pack.
    """
    views, all_viewed = cheap_views(store)
    with PackObjectReader(store, views) as reader:
        read = reader.read if parsed is None else parsed.reader(reader.read)
        return walk_connected(tips, added, read, Presence(store, views, all_viewed).__contains__)


def walk_connected(tips: Iterable[bytes], added: Collection[bytes], read: ObjectReader,
                   has: Callable[[bytes], bool]) -> bool:
    """The connectivity walk of any store: ``read(hexsha) -> (type, raw)``, ``has(hexsha)``.

    Objects that were stored before the push are complete by the store's
    invariant: only ``added`` ones are read, the others only looked up, and
    blobs are never read.
    """
    seen: set[bytes] = set()
    stack = list(tips)
    while stack:
        sha = stack.pop()
        if sha in seen:
            continue
        seen.add(sha)
        if sha not in added:
            if not has(sha):
                return False
            continue
        try:
            type_num, raw = read(sha)
            if type_num == COMMIT:
                tree, parents = _commit_links(raw)
                stack.append(tree)
                stack.extend(parents)
            elif type_num == TREE:
                for _name, mode, child in parse_tree(raw, 20):
                    kind = mode & S_IFMT
                    if kind == S_IFDIR:
                        stack.append(child)
                    elif kind != S_IFGITLINK and child not in added and not has(child):
                        return False
            elif type_num == TAG:
                stack.append(_tag_target(raw))
        except (MissingObject, KeyError, ValueError):
            return False
    return True
