"""hgweb's archives of a changeset (``/NAME/archive/REV.zip``, ``.tar.gz``, ``.tar.bz2``): its
files under a ``NAME-REV/`` directory, with the ``.hg_archival.txt`` that ``hg archive`` writes
(repository root, node, branch, and the tags or the latest tag and its distance, which a
``setup.py`` reading its version from an archive looks for).

Blocking (revlog reads): ``prepare`` checks everything that can fail before the first byte is
sent (the type, the revision, the path, files kept in LFS); ``Archive.chunks`` then streams one
file at a time.  Also hgweb's ``raw-file`` (``raw_file``): one file's bytes, or a directory's
listing in hgweb's raw style.
"""

from __future__ import annotations

import binascii
import bz2
import re
import stat
import tarfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from backends.git_archive import Spool, gzipped
from backends.hg.changelog import iter_manifest, parse_filelog_text
from backends.hg.keys import BOOLEANS
from backends.hg.repository import HgRepo
from backends.hg.revlog import REVIDX_EXTSTORED
from backends.interfaces import NULL_NODE, FilteredRevision
from protocols.errors import PermissionDenied, ProtocolError, UnsupportedFeature

TYPES: dict[str, tuple[str, str]] = {
    "zip": ("application/zip", ".zip"),
    "gz": ("application/x-gzip", ".tar.gz"),
    "bz2": ("application/x-bzip2", ".tar.bz2"),
}
"""hgweb's archive types: name -> (Content-Type, the URL's extension)."""

SECRET = 2
NULL_REV = -1
FILE_MODE, EXEC_MODE = 0o644, 0o755
ZIP_EPOCH = 315532800
"""1980-01-01: the earliest time a zip entry can carry."""


def split_type(last: str) -> tuple[str, str] | None:
    """``tip.tar.gz`` -> (``tip``, ``gz``); None when the name ends in no archive type."""
    for kind, (_mime, extension) in TYPES.items():
        if last.endswith(extension) and len(last) > len(extension):
            return last[: -len(extension)], kind
    return None


def allowed(repo: HgRepo, kind: str) -> bool:
    """hgweb's rule: ``[web] allow-archive`` (or ``allow_archive``) lists the type, or ``[web]
    allow<type>`` is true.  Archives are off unless the repository's hgrc turns them on."""
    listed = repo.web_setting(b"allow-archive")
    if listed is None:
        listed = repo.web_setting(b"allow_archive")
    if listed is not None and kind in re.split(r"[\s,]+", listed.decode("utf-8", "replace")):
        return True
    flag = repo.web_setting(b"allow" + kind.encode())
    return flag is not None and BOOLEANS.get(flag.strip().lower(), False)


@dataclass(frozen=True)
class Archive:
    """What one archive request sends: its file name, type and the files of its changeset."""

    filename: str
    kind: str
    prefix: bytes
    mtime: int
    metadata: bytes
    """``.hg_archival.txt``; empty: none (``[ui] archivemeta = false``)."""
    files: Sequence[tuple[bytes, bytes, bytes]]
    """(path, file node, manifest flags) in the manifest's order."""
    repo: HgRepo

    @property
    def content_type(self) -> str:
        return TYPES[self.kind][0]

    def chunks(self) -> Iterator[bytes]:
        entries = self._entries()
        if self.kind == "zip":
            return _zip(entries, self.mtime)
        tar = _tar(entries, self.mtime)
        return gzipped(tar, 6) if self.kind == "gz" else _bzipped(tar)

    def _entries(self) -> Iterator[tuple[bytes, int, bool, bytes]]:
        if self.metadata:
            yield self.prefix + b".hg_archival.txt", FILE_MODE, False, self.metadata
        for path, node, flags in self.files:
            yield self.prefix + path, EXEC_MODE if b"x" in flags else FILE_MODE, b"l" in flags, _data(self.repo, path, node)


def prepare(repo: HgRepo, name: str, key: str, kind: str, path: str = "") -> Archive:
    """The archive of revision ``key`` (anything ``hg`` resolves: a number, a hex id or prefix, a
    tag, a bookmark, a branch, ``tip``) of type ``kind``, limited to ``path`` (a file or a
    directory) when given.  Raises what the client is told: 403 for a type the repository does
    not allow, 404 for an unknown revision or path."""
    if kind not in TYPES:
        raise ProtocolError("Unsupported archive type", 404)
    if not allowed(repo, kind):
        raise PermissionDenied("Archive type not allowed")
    node, rev, mtime, files = _resolve(repo, key)
    if path:
        wanted = path.strip("/").encode("utf-8", "surrogateescape")
        files = [f for f in files if f[0] == wanted or f[0].startswith(wanted + b"/")]
        if not files:
            raise ProtocolError("file(s) not found", 404)
    for file_path, file_node, _flags in files:
        filelog = repo.filelog(file_path)
        if filelog.flags(filelog.rev(file_node)) & REVIDX_EXTSTORED:
            raise UnsupportedFeature(f"{file_path.decode('utf-8', 'replace')[:200]} is kept in LFS: archives "
                                     "of such files are not served; clone the repository instead")
    base = re.sub(r"\W+", "-", name.rstrip("/").rsplit("/", 1)[-1], flags=re.ASCII)  # also a header's file name
    version = binascii.hexlify(node)[:12].decode() if key == "tip" else re.sub(r"[^\w.+-]+", "-", key, flags=re.ASCII)
    directory = f"{base}-{version}"
    described = metadata(repo, rev, node) if repo.hgrc_bool(b"ui", b"archivemeta", True) else b""
    return Archive(directory + TYPES[kind][1], kind, directory.encode() + b"/", mtime, described, files, repo)


def _resolve(repo: HgRepo, key: str) -> tuple[bytes, int, int, list[tuple[bytes, bytes, bytes]]]:
    """Revision ``key``'s node, number, time and manifest entries (path, file node, flags); a 404
    for an unknown one, and for a secret one (never served: as if it were not there)."""
    cl = repo.changelog()
    views = repo.views(cl)
    try:
        node = repo.lookup(key.encode("utf-8", "surrogateescape"))
    except (KeyError, FilteredRevision):
        raise ProtocolError(f"unknown revision {key[:80]!r}", 404) from None
    rev = cl.rev(node) if node != NULL_NODE else NULL_REV
    if rev != NULL_REV and views.phases[rev] >= SECRET:
        raise ProtocolError(f"unknown revision {key[:80]!r}", 404)
    if rev == NULL_REV:
        return node, rev, 0, []
    changeset = repo.changeset(cl, rev)
    manifests = repo.manifestlog()
    text = manifests.revision(manifests.rev(changeset.manifest))
    return node, rev, int(changeset.time), [(e.path, e.node, e.flags) for e in iter_manifest(text)]


def _data(repo: HgRepo, path: bytes, node: bytes) -> bytes:
    filelog = repo.filelog(path)
    return parse_filelog_text(filelog.revision(filelog.rev(node))).data


def raw_file(repo: HgRepo, key: str, path: str) -> tuple[bytes, bytes | None]:
    """hgweb's ``raw-file``: the bytes of file ``path`` at revision ``key`` and its name, or, for a
    directory (or no path), its listing as hgweb's raw style writes it (name None): a line per
    subdirectory (``drwxr-xr-x NAME``), then per file (``-rw-r--r-- SIZE NAME``)."""
    _node, _rev, _mtime, files = _resolve(repo, key)
    wanted = path.strip("/").encode("utf-8", "surrogateescape")
    for file_path, file_node, _flags in files:
        if file_path == wanted:
            filelog = repo.filelog(file_path)
            if filelog.flags(filelog.rev(file_node)) & REVIDX_EXTSTORED:
                raise UnsupportedFeature(f"{path[:200]} is kept in LFS: clone the repository to read it")
            return _data(repo, file_path, file_node), file_path.rpartition(b"/")[2]
    prefix = wanted + b"/" if wanted else b""
    below = [f for f in files if f[0].startswith(prefix)]
    if not below:
        raise ProtocolError("path not found", 404)
    directories = sorted({f[0][len(prefix):].partition(b"/")[0] for f in below if b"/" in f[0][len(prefix):]})
    lines = [b"drwxr-xr-x " + d + b"\n" for d in directories]
    for file_path, file_node, flags in below:
        rest = file_path[len(prefix):]
        if b"/" not in rest:
            mode = b"lrwxrwxrwx" if b"l" in flags else b"-rwxr-xr-x" if b"x" in flags else b"-rw-r--r--"
            lines.append(b"%s %d %s\n" % (mode, len(_data(repo, file_path, file_node)), rest))
    return b"\n" + b"".join(lines) + b"\n\n", None  # hgweb's raw manifest: its empty header and footer lines


def metadata(repo: HgRepo, rev: int, node: bytes) -> bytes:
    """``.hg_archival.txt`` as ``hg archive`` writes it (its default template)."""
    cl = repo.changelog()
    views = repo.views(cl)
    first = next((r for r in range(len(cl)) if views.visible[r]), NULL_REV)
    root = cl.node(first) if first != NULL_REV else NULL_NODE
    branch = repo.changeset(cl, rev).branch if rev != NULL_REV else b"default"
    lines = [b"repo: " + binascii.hexlify(root), b"node: " + binascii.hexlify(node), b"branch: " + branch]
    tag_revs = {tag: cl.rev(tag_node) for tag, tag_node in repo.tags(local=False).items()
                if tag != b"tip" and cl.has_node(tag_node)}
    _date, distance, tags = latest_tags(repo, rev, tag_revs)
    if distance == 0:
        lines += [b"tag: " + tag for tag in tags]
    else:
        lines += [b"latesttag: " + tag for tag in tags]
        since = _changes_since(views.parents, rev, tag_revs.get(tags[0], NULL_REV))
        lines += [b"latesttagdistance: %d" % distance, b"changessincelatesttag: %d" % since]
    return b"\n".join(lines) + b"\n"


def latest_tags(repo: HgRepo, rev: int, tag_revs: dict[bytes, int]) -> tuple[float, int, list[bytes]]:
    """hg's ``{latesttag}``: the (date, distance, names) of the global tags nearest to ``rev`` (its
    own at distance 0, ``null`` with the length of the longest path to the root when there is
    none); through a merge, the side with fewer changes since its tag wins (then the later date),
    and the same tags on both sides give the longer distance."""
    cl = repo.changelog()
    parents = repo.views(cl).parents
    tagged: dict[int, list[bytes]] = {}
    for tag, tag_rev in tag_revs.items():
        tagged.setdefault(tag_rev, []).append(tag)
    known: dict[int, tuple[float, int, list[bytes]]] = {NULL_REV: (0.0, 0, [b"null"])}
    todo = [rev]
    while todo:
        current = todo.pop()
        if current in known:
            continue
        if current in tagged:
            known[current] = (repo.changeset(cl, current).time, 0, sorted(tagged[current]))
            continue
        p1, p2 = parents[current]
        own = [p1] if p2 == NULL_REV else [p1, p2]  # a root's parent is the null revision
        missing = [p for p in own if p not in known]
        if missing:
            todo.append(current)
            todo.extend(missing)
            continue
        found = [known[p] for p in own]
        if len(found) > 1 and found[0][2] != found[1][2]:
            def closeness(entry: tuple[float, int, list[bytes]], at: int = current) -> tuple[int, float]:
                return -_changes_since(parents, at, tag_revs.get(entry[2][0], NULL_REV)), entry[0]
            date, distance, names = max(found, key=closeness)
        else:
            date, distance, names = max(found)
        known[current] = (date, distance + 1, names)
    return known[rev]


def _changes_since(parents: Sequence[tuple[int, int]], rev: int, tag_rev: int) -> int:
    """How many of ``rev`` and its ancestors are not ``tag_rev`` or its ancestors (``only()``)."""
    return len(_ancestors(parents, [rev]) - _ancestors(parents, [tag_rev]))


def _ancestors(parents: Sequence[tuple[int, int]], revs: Sequence[int]) -> set[int]:
    """``revs`` and all their ancestors."""
    seen: set[int] = set()
    stack = [r for r in revs if r != NULL_REV]
    while stack:
        r = stack.pop()
        if r in seen:
            continue
        seen.add(r)
        stack.extend(p for p in parents[r] if p != NULL_REV and p not in seen)
    return seen


def _tar(entries: Iterator[tuple[bytes, int, bool, bytes]], mtime: int) -> Iterator[bytes]:
    """A tar as ``hg archive`` writes one: files and symbolic links, no directory entries."""
    spool = Spool()
    with tarfile.open(fileobj=spool, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      encoding="utf-8", errors="surrogateescape") as tar:
        for path, mode, link, data in entries:
            info = tarfile.TarInfo(path.decode("utf-8", "surrogateescape"))
            info.mtime = mtime
            if link:
                info.type, info.mode = tarfile.SYMTYPE, 0o777
                info.linkname = data.decode("utf-8", "surrogateescape")
                tar.addfile(info)
            else:
                info.mode, info.size = mode, len(data)
                tar.addfile(info, _Reader(data))
            yield spool.drain()
    yield spool.drain()


class _Reader:
    """``tarfile.addfile``'s file object over bytes, without copying them."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._at + size
        piece = self._view[self._at:end].tobytes()
        self._at += len(piece)
        return piece


def _zip(entries: Iterator[tuple[bytes, int, bool, bytes]], mtime: int) -> Iterator[bytes]:
    """A zip as ``hg archive`` writes one: deflated files with their Unix modes, links as links."""
    spool = Spool()
    date = time.gmtime(max(mtime, ZIP_EPOCH))[:6]
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        for path, mode, link, data in entries:
            info = zipfile.ZipInfo(path.decode("utf-8", "surrogateescape"), date_time=date)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            unix = (stat.S_IFLNK | 0o777) if link else (stat.S_IFREG | mode)
            info.external_attr = unix << 16
            archive.writestr(info, data)
            yield spool.drain()
    yield spool.drain()


def _bzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = bz2.BZ2Compressor(9)
    for chunk in chunks:
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()


__all__ = ["TYPES", "Archive", "allowed", "latest_tags", "metadata", "prepare", "raw_file", "split_type"]
