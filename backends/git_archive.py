"""Archives of a git tree for git-upload-archive: tar (dulwich), tgz (zlib over it) and zip (zipfile).

Blocking; the gateway runs ``resolve`` and every ``next()`` of ``archive_chunks``
in the thread pool.  Chunks are yielded file by file, so the archive is never
held in memory whole (one blob at a time is).
"""

from __future__ import annotations

import re
import stat
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from dulwich.archive import tar_stream
from dulwich.object_store import BaseObjectStore
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree

from backends.interfaces import GitRepository, ObjectId
from protocols.git_archive import ArchiveOptions, ArchiveRefused

MAX_PEEL = 16
MAX_DEPTH = 256
"""Deepest directory nesting an archive follows (a crafted tree cannot recurse forever)."""
_HEX40 = re.compile(r"[0-9a-f]{40}")
_DWIM = ("{}", "refs/{}", "refs/tags/{}", "refs/heads/{}", "refs/remotes/{}", "refs/remotes/{}/HEAD")
"""git's ref_rev_parse_rules, the order in which a short name is looked up."""


@dataclass(frozen=True)
class ArchiveSource:
    """What to archive: a tree, and the mtime of its entries (the commit time, else now)."""

    tree: bytes
    mtime: int


def resolve(repo: GitRepository, treeish: str) -> ArchiveSource:
    """Resolve a ref name, or the id of an object a ref points at, to a tree; refuse anything else."""
    refs = repo.refs()
    store = repo.object_store
    oid = _by_name(refs, treeish) or _by_id(store, refs, treeish)
    if oid is None:
        raise ArchiveRefused(f"no such ref: {treeish}")
    return _to_tree(store, oid, treeish)


def _by_name(refs: Mapping[bytes, ObjectId], name: str) -> bytes | None:
    for rule in _DWIM:
        oid = refs.get(rule.format(name).encode("utf-8"))
        if oid is not None:
            return bytes(oid)
    return None


def _by_id(store: BaseObjectStore, refs: Mapping[bytes, ObjectId], name: str) -> bytes | None:
    """A full id is allowed only if a ref points at it, directly or through its tags."""
    if not _HEX40.fullmatch(name):
        return None
    wanted = name.encode("ascii")
    for oid in set(refs.values()):
        for step in _peel_chain(store, bytes(oid)):
            if step == wanted:
                return wanted
    return None


def _peel_chain(store: BaseObjectStore, oid: bytes) -> Iterator[bytes]:
    for _ in range(MAX_PEEL):
        yield oid
        obj = _get(store, oid)
        if not isinstance(obj, Tag):
            return
        oid = obj.object[1]


def _to_tree(store: BaseObjectStore, oid: bytes, name: str) -> ArchiveSource:
    mtime = int(time.time())
    for _ in range(MAX_PEEL):
        obj = _get(store, oid)
        if isinstance(obj, Tag):
            oid = obj.object[1]
        elif isinstance(obj, Commit):
            return ArchiveSource(obj.tree, obj.commit_time)
        elif isinstance(obj, Tree):
            return ArchiveSource(oid, mtime)
        else:
            break
    raise ArchiveRefused(f"'{name}' does not name a tree")


def _get(store: BaseObjectStore, oid: bytes) -> ShaFile | None:
    try:
        return store[ObjectID(oid)]
    except KeyError:
        return None


def archive_chunks(store: BaseObjectStore, source: ArchiveSource, options: ArchiveOptions) -> Iterator[bytes]:
    """The archive as a stream of chunks, in the requested kind."""
    tree = store[ObjectID(source.tree)]
    assert isinstance(tree, Tree)
    prefix = options.prefix.encode("utf-8")
    if options.kind == "zip":
        return _zip_chunks(store, tree, source.mtime, prefix, options.level)
    tar = tar_stream(store, tree, source.mtime, prefix, "")
    if options.kind == "tgz":
        return _gzipped(tar, 6 if options.level is None else options.level)
    return tar


def _gzipped(chunks: Iterator[bytes], level: int) -> Iterator[bytes]:
    """gzip a stream (wbits 31: gzip header with mtime 0, so the same tree gives the same bytes)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    try:
        for chunk in chunks:
            if out := compressor.compress(chunk):
                yield out
        yield compressor.flush()
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class _Spool:
    """A write-only, unseekable file: zipfile then writes data descriptors and we drain the bytes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        parts, self._parts = self._parts, []
        return b"".join(parts)


def _zip_chunks(store: BaseObjectStore, tree: Tree, mtime: int, prefix: bytes, level: int | None
                ) -> Iterator[bytes]:
    spool = _Spool()
    date = time.gmtime(max(mtime, 315532800))[:6]  # zip dates start in 1980
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:  # type: ignore[call-overload]
        for path, mode, blob in _files(store, tree, prefix, 0):
            info = zipfile.ZipInfo(path.decode("utf-8", "surrogateescape"), date_time=date)
            info.compress_type = zipfile.ZIP_STORED if level == 0 else zipfile.ZIP_DEFLATED
            info.external_attr = _zip_mode(mode) << 16
            with archive.open(info, "w") as out:
                for piece in blob.chunked:
                    out.write(piece)
                    if pending := spool.drain():
                        yield pending
            yield spool.drain()
    yield spool.drain()


def _zip_mode(mode: int) -> int:
    if stat.S_ISLNK(mode):
        return stat.S_IFLNK | 0o777
    return stat.S_IFREG | (0o755 if mode & 0o100 else 0o644)


def _files(store: BaseObjectStore, tree: Tree, prefix: bytes, depth: int) -> Iterator[tuple[bytes, int, Blob]]:
    """Every blob under ``tree`` with its path, depth first in tree order; submodules are skipped."""
    if depth > MAX_DEPTH:
        raise ArchiveRefused(f"tree deeper than {MAX_DEPTH} directories")
    for entry in tree.iteritems():
        path = prefix + entry.path
        obj = _get(store, entry.sha)
        if isinstance(obj, Tree):
            yield from _files(store, obj, path + b"/", depth + 1)
        elif isinstance(obj, Blob):
            yield path, entry.mode, obj
