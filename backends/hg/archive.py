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
import hashlib
import heapq
import itertools
import re
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from backends.git_archive import Spool, compressed
from backends.hg import kept
from backends.hg.changelog import (
    META_MARKER,
    Changeset,
    manifest_entries,
    manifest_lookup,
    parse_filelog_text,
)
from backends.hg.graph import NULL_REV, missing
from backends.hg.keys import BOOLEANS, config_list
from backends.hg.repository import HgRepo
from backends.hg.revlog import REVIDX_EXTSTORED, Revlog
from backends.interfaces import NULL_NODE
from backends.lru import LruCache
from protocols.errors import PermissionDenied, ProtocolError, StorageError, UnsupportedFeature
from protocols.git_lfs import valid_oid
from protocols.text import quoted

TYPES: dict[str, tuple[str, str]] = {
    "zip": ("application/zip", ".zip"),
    "gz": ("application/x-gzip", ".tar.gz"),
    "bz2": ("application/x-bzip2", ".tar.bz2"),
}
"""hgweb's archive types: name -> (Content-Type, the URL's extension)."""

FILE_MODE, EXEC_MODE = 0o644, 0o755
ZIP_EPOCH = 315532800
"""1980-01-01: the earliest time a zip entry can carry."""
STANDIN_DIR = b".hglf/"
"""Where the ``largefiles`` extension keeps a large file's standin (its SHA-1) in history."""
MAX_POINTER = 1024

Content = Callable[[], tuple[int, Iterator[bytes]]]
"""A member's size and bytes, read when the archive reaches it."""


def split_type(last: str) -> tuple[str, str] | None:
    """``tip.tar.gz`` -> (``tip``, ``gz``); None when the name ends in no archive type."""
    for kind, (_mime, extension) in TYPES.items():
        if last.endswith(extension) and len(last) > len(extension):
            return last[: -len(extension)], kind
    return None


def allowed(repo: HgRepo, kind: str) -> bool:
    """hgweb's rule: ``[web] allow-archive`` (or ``allow_archive``) lists the type, or ``[web]
    allow<type>`` is true.  Archives are off unless the repository's hgrc turns them on."""
    web = repo.web_settings()
    listed = web.get(b"allow-archive", web.get(b"allow_archive"))
    if listed is not None and kind.encode() in config_list(listed):
        return True
    flag = web.get(b"allow" + kind.encode())
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
    members: Sequence[tuple[bytes, bytes, Content]]
    """(name in the archive, manifest flags, its content) in the manifest's order."""
    tag: str = ""
    """Names the archive's bytes (``content_tag``): the same for the same changeset, path, type,
    top directory and ``.hg_archival.txt`` (which a new tag changes), whatever name found it."""

    @property
    def content_type(self) -> str:
        return TYPES[self.kind][0]

    def chunks(self) -> Iterator[bytes]:
        entries = self._entries()
        if self.kind == "zip":
            return _zip(entries, self.mtime)
        tar = _tar(entries, self.mtime)
        return _gzipped(tar, self.mtime) if self.kind == "gz" else compressed(tar, bz2.BZ2Compressor(9))

    def _entries(self) -> Iterator[tuple[bytes, int, bool, int, Iterator[bytes]]]:
        if self.metadata:
            yield self.prefix + b".hg_archival.txt", FILE_MODE, False, len(self.metadata), iter([self.metadata])
        for name, flags, content in self.members:
            size, chunks = content()
            yield self.prefix + name, EXEC_MODE if b"x" in flags else FILE_MODE, b"l" in flags, size, chunks


def prepare(repo: HgRepo, name: str, key: str, kind: str, path: str = "") -> Archive:
    """The archive of revision ``key`` (anything ``hg`` resolves: a number, a hex id or prefix, a
    tag, a bookmark, a branch, ``tip``) of type ``kind``, limited to ``path`` (a file or a
    directory) when given.  Raises what the client is told: 403 for a type the repository does
    not allow, 404 for an unknown revision or path."""
    if kind not in TYPES:
        raise ProtocolError("Unsupported archive type", 404)
    if not allowed(repo, kind):
        raise PermissionDenied("Archive type not allowed")
    key = url_revision(key)
    node, rev, mtime, files = resolve(repo, key)
    members = _members(repo, files, path)
    if path and not members:
        raise ProtocolError("file(s) not found", 404)
    directory = archive_directory(repo.web_name(name), key, binascii.hexlify(node)[:12].decode(), ("tip",))
    wanted = not path or _under(b".hg_archival.txt", path)  # as hg, a path leaves the file out unless it is its own
    described = metadata(repo, rev, node) if wanted and repo.hgrc_bool(b"ui", b"archivemeta", True) else b""
    prefix = directory.encode() + b"/"
    return Archive(directory + TYPES[kind][1], kind, prefix, mtime, described, members,
                   content_tag(b"hg-archive", node, kind.encode(), prefix, described, path.strip("/").encode("utf-8",
                                                                                              "surrogateescape")))


def archive_directory(name: str, key: str, short_id: str, tips: Sequence[str]) -> str:
    """An archive's top directory and file name, ``NAME-REV``: the last segment of the repository's
    name (an hg one's ``[web] name`` when set, as hgweb's) and the revision as asked for (its short
    id for one of ``tips``), each with only characters a header's file name may hold."""
    base = re.sub(r"\W+", "-", name.rstrip("/").rsplit("/", 1)[-1], flags=re.ASCII)
    version = short_id if key in tips else re.sub(r"[^\w.+-]+", "-", key, flags=re.ASCII)
    return f"{base}-{version}"


URL_SLASH = "%2F"
"""What stands for ``/`` in a revision named in hgweb's URLs: its links write ``release/1.0`` as
``release%252F1.0`` (its ``revescape``), which arrives as ``release%2F1.0`` once the path is
decoded, and hgweb reads ``%2F`` there as ``/`` (a name holding ``%2F`` itself is not reached)."""


def url_revision(key: str) -> str:
    """A revision as a page's URL names it (``release%2F1.0``, decoded once), as hgweb reads it
    (``release/1.0``)."""
    return key.replace(URL_SLASH, "/")


def shown_revision(key: str) -> str:
    """A page's revision in quotes for its error, as the client sent its bytes (``'\\xff'``, not
    Python's ``'\\udcff'``), at most 80 of them."""
    return quoted(url_revision(key).encode("utf-8", "surrogateescape"), 80)


def resolve(repo: HgRepo, key: str) -> tuple[bytes, int, int, list[tuple[bytes, bytes, bytes]]]:
    """Revision ``key``'s node, number, time and manifest entries (path, file node, flags), as
    ``resolve_revision`` finds it."""
    node, rev = resolve_revision(repo, key)
    if rev == NULL_REV:
        return node, NULL_REV, 0, []
    changeset, entries = manifest_at(repo, rev)
    return node, rev, int(changeset.time), entries


def resolve_revision(repo: HgRepo, key: str) -> tuple[bytes, int]:
    """Revision ``key``'s node and number; a 404 for an unknown one, and for one pulls cannot see
    (never served: as if it were not there).  ``key`` is read as hgweb's URLs name it
    (``url_revision``).  No manifest is read: the logs and the graph need none, and one of
    100,000 files took a log page 0.25 s to parse."""
    key = url_revision(key)
    cl = repo.changelog()
    try:
        node = repo.lookup(key.encode("utf-8", "surrogateescape"))  # (a filtered or ambiguous key is a KeyError)
    except KeyError:
        raise ProtocolError(f"unknown revision {shown_revision(key)}", 404) from None
    if node == NULL_NODE:
        return node, NULL_REV
    rev = cl.rev(node)
    if not repo.views(cl).visible[rev]:
        raise ProtocolError(f"unknown revision {shown_revision(key)}", 404)
    return node, rev


def not_in_manifest(path: bytes, node: bytes) -> ProtocolError:
    """hgweb's 404 for a file a changeset does not have."""
    return ProtocolError(f"{path.decode('utf-8', 'surrogateescape')}@{binascii.hexlify(node).decode()}: "
                         "not found in manifest", 404)


def resolve_file_revision(repo: HgRepo, key: str) -> tuple[bytes, int, int, list[tuple[bytes, bytes, bytes]]]:
    """``resolve`` for hgweb's file pages, whose unknown revision is ``revision not found: KEY``."""
    try:
        return resolve(repo, key)
    except ProtocolError as error:
        if error.http_status != 404:
            raise
        raise ProtocolError(f"revision not found: {shown_revision(key)[1:-1]}", 404) from None


MANIFESTS_KEPT = 200_000
"""Manifest entries kept parsed over all repositories (about 200 bytes each: 40 MB at most), for
the pages, which read the same few manifests again and again (a changeset's and its parent's);
weighed by their paths too, within ``kept.KEPT`` with the rest of what is kept parsed."""
_MANIFESTS: LruCache[tuple[bytes, bytes], list[tuple[bytes, bytes, bytes]]] = LruCache(
    MANIFESTS_KEPT * 200, pool=kept.KEPT, parts=lambda entries: (
        (entries, sum(kept.MANIFEST_ENTRY_BYTES + len(path) for path, _node, _flags in entries)),))


def manifest_at(repo: HgRepo, rev: int) -> tuple[Changeset, list[tuple[bytes, bytes, bytes]]]:
    """Changeset ``rev`` and its manifest's entries (path, file node, flags) in stored order (a
    manifest is named by its hash: the entries are kept per store and node, read once)."""
    changeset = repo.changeset(repo.changelog(), rev)
    scope = repo.revlogs.scope
    key = (scope, changeset.manifest) if scope is not None else None
    if key is not None:
        found = _MANIFESTS.get(key)
        if found is not None:
            return changeset, list(found)
    manifests = repo.manifestlog()
    text = manifests.revision(manifests.rev(changeset.manifest))
    entries: list[tuple[bytes, bytes, bytes]] = list(manifest_entries(text))
    if key is not None:
        _MANIFESTS.put(key, list(entries))
    return changeset, entries


def file_node_at(repo: HgRepo, rev: int, path: bytes) -> bytes | None:
    """The file node of ``path`` in changeset ``rev`` (None: not a file there), from the kept
    entries of its manifest, else by a binary search of the manifest's text: a manifest too large
    to be kept (over 50,000 files) was parsed whole for each page of one file (50 ms of CPU)."""
    changeset = repo.changeset(repo.changelog(), rev)
    scope = repo.revlogs.scope
    found = _MANIFESTS.get((scope, changeset.manifest)) if scope is not None else None
    if found is not None:
        return next((file_node for file_path, file_node, _flags in found if file_path == path), None)
    manifests = repo.manifestlog()
    return manifest_lookup(manifests.revision(manifests.rev(changeset.manifest)), path)


def file_parents(repo: HgRepo, path: bytes, node: bytes) -> list[tuple[bytes, bytes]]:
    """A file revision's parents as hg's ``filectx.parents`` names them: (path, node) of its
    filelog parents, the source of a copy or rename first (in place of a null first parent)."""
    filelog = repo.filelog(path)
    file_rev = filelog.rev(node)
    p1, p2 = filelog.parent_revs(file_rev)
    parents: list[tuple[bytes, bytes]] = [(path, filelog.node(p)) for p in (p1, p2) if p >= 0]
    if p1 < 0:
        meta = copy_metadata(filelog, file_rev)
        if b"copy" in meta and b"copyrev" in meta:
            parents.insert(0, (meta[b"copy"], binascii.unhexlify(meta[b"copyrev"])))
    return parents


def copy_metadata(filelog: Revlog, rev: int) -> Mapping[bytes, bytes]:
    """A file revision's metadata (``copy``, ``copyrev``): of a large text stored whole, read from
    its first piece (``Revlog.text_pieces``), not from the whole text."""
    meta = _stored_meta(filelog, rev)
    return parse_filelog_text(meta if meta is not None else filelog.revision(rev)).meta


HEAD_BYTES = 256 << 10
"""What is read of a large text for its copy metadata (a path, a node: far less)."""


def _stored_meta(filelog: Revlog, rev: int) -> bytes | None:
    """Of a large text stored whole: its copy metadata block, markers included (b"" for none),
    from its first ``HEAD_BYTES``; None for any other revision (or a block not closed there),
    which is read whole where it is needed."""
    found = _head_and_rest(filelog, rev, HEAD_BYTES)
    if found is None:
        return None
    head, rest = found
    rest.close()
    if not head.startswith(META_MARKER):
        return b""
    end = head.find(META_MARKER, len(META_MARKER))
    return head[:end + len(META_MARKER)] if end >= 0 else None


def _head_and_rest(filelog: Revlog, rev: int, least: int) -> tuple[bytes, Generator[bytes, None, None]] | None:
    """Of a large text stored whole (``Revlog.text_pieces``): its first ``least`` bytes or more, and
    the pieces after them (the caller closes them); None for any other revision."""
    if not filelog.streams_text(rev):
        return None
    pieces = filelog.text_pieces(rev)
    head = b""
    while len(head) < least and (piece := next(pieces, None)) is not None:
        head += piece
    return head, pieces


def adjusted_linkrev(repo: HgRepo, parents_of: Sequence[tuple[int, int]], path: bytes, node: bytes, source: int,
                     inclusive: bool, ancestry: bytearray | None = None) -> int:
    """hg's adjusted linkrev of a file revision met from changeset ``source``: its linkrev when
    that is ``source`` or one of its ancestors (with ``inclusive``; else its parents' ancestors),
    or, given ``ancestry`` (hg's ancestry context, ``graph.ancestors_mask``), one of its; else the nearest such ancestor
    that touched ``path`` and holds this revision of it (the same file revision made on two
    branches is stored once, with the first one's linkrev).  ``parents_of``: each changeset's parents."""
    filelog = repo.filelog(path)
    linkrev = filelog.linkrev(filelog.rev(node))
    if linkrev == source:
        return linkrev
    ancestors: list[int] = []  # descending, down to linkrev
    seen: set[int] = set()
    pending = [-source] if inclusive else [-p for p in parents_of[source] if p >= linkrev]
    heapq.heapify(pending)
    while pending:
        at = -heapq.heappop(pending)
        if at in seen:
            continue
        seen.add(at)
        ancestors.append(at)
        for parent in parents_of[at]:
            if parent >= linkrev and parent not in seen:
                heapq.heappush(pending, -parent)
    if (ancestry[linkrev] if ancestry is not None else linkrev in seen):
        return linkrev
    cl = repo.changelog()
    for at in ancestors:
        if path in repo.changeset(cl, at).files and next(
                (n for p, n, _f in manifest_at(repo, at)[1] if p == path), None) == node:
            return at
    return linkrev


def file_data(repo: HgRepo, path: bytes, node: bytes) -> bytes:
    """A file revision's data, its copy metadata left out."""
    filelog = repo.filelog(path)
    return parse_filelog_text(filelog.revision(filelog.rev(node))).data


def _under(name: bytes, path: str) -> bool:
    wanted = path.strip("/").encode("utf-8", "surrogateescape")
    return name == wanted or name.startswith(wanted + b"/")


def _members(repo: HgRepo, files: Sequence[tuple[bytes, bytes, bytes]], below: str = ""
             ) -> list[tuple[bytes, bytes, Content]]:
    """Each file's name (those at or under ``below``, if given) and where its bytes are: in
    history, or, as ``hg serve`` with the extensions serves them, in the ``lfs`` blob store (a
    pointer in history) or the ``largefiles`` store (a standin under ``.hglf/``, archived under its
    own name).  A file whose bytes are not on the server is refused here, before anything is sent."""
    large = repo.largefiles()
    members: list[tuple[bytes, bytes, Content]] = []
    for path, node, flags in files:
        standin = large is not None and path.startswith(STANDIN_DIR)
        if below and not _under(path[len(STANDIN_DIR):] if standin else path, below):
            continue
        if large is not None and standin:
            shown = path[len(STANDIN_DIR):].decode("utf-8", "replace")[:200]
            sha = file_data(repo, path, node)[:MAX_POINTER].strip()
            if not large.has(sha):
                raise UnsupportedFeature(f"the large file {shown} is not on this server (its owner has not "
                                         "pushed it): the archive cannot hold it")
            # (a file whose bytes no longer hash to its name is refused, not sent: LargefileCorrupt)
            members.append((path[len(STANDIN_DIR):], flags, partial(_kept, getattr(large, "open_checked", large.open),
                                                                    sha, shown)))
        else:
            members.append((path, flags, _content(repo, path, node)))
    return members


def _history(repo: HgRepo, path: bytes, node: bytes) -> tuple[int, Iterator[bytes]]:
    """A file revision's size and bytes: a large one stored whole read a piece at a time as it is
    sent (``Revlog.text_pieces``), unless its text begins with copy metadata."""
    filelog = repo.filelog(path)
    rev = filelog.rev(node)
    found = _head_and_rest(filelog, rev, len(META_MARKER))
    if found is not None:
        head, rest = found
        if not head.startswith(META_MARKER):
            return filelog.raw_size(rev), itertools.chain((head,), rest)
        rest.close()
    data = file_data(repo, path, node)
    return len(data), iter([data])


def _kept(opener: Callable[..., tuple[int, Iterator[bytes]] | None], key: object, shown: str
          ) -> tuple[int, Iterator[bytes]]:
    found = opener(key)
    if found is None:  # removed since the archive was checked: the download is cut, and says why in the log
        raise StorageError(f"{shown} disappeared from its store while it was being archived")
    return found


def _present(opener: Callable[..., tuple[int, Iterator[bytes]] | None], key: object) -> bool:
    found = opener(key)
    if found is None:
        return False
    close = getattr(found[1], "close", None)
    if close is not None:
        close()
    return True


def _lfs_oid(pointer: bytes) -> str | None:
    """The SHA-256 an LFS pointer names (``oid sha256:<hex>``); None for anything else."""
    for line in pointer[:MAX_POINTER].split(b"\n"):
        if line.startswith(b"oid sha256:"):
            oid = line[len(b"oid sha256:"):].decode("ascii", "replace").strip()
            return oid if valid_oid(oid) else None
    return None


@dataclass(frozen=True)
class RawFile:
    """What ``raw-file`` sends: one file's name, size and bytes, or (``name`` None) a listing."""

    name: bytes | None
    size: int
    chunks: Iterator[bytes]
    tag: str = ""
    """Names these bytes whatever revision name found them (an ``ETag``): a file's id (hg's file
    node, git's blob id: its bytes, an LFS pointer's blob included, follow from it), a listing's
    ``content_tag``; empty: none."""


def content_tag(*parts: bytes) -> str:
    """A name for bytes made from ``parts`` (each length-prefixed, so no two lists meet)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(b"%d:" % len(part))
        digest.update(part)
    return digest.hexdigest()


def raw_file(repo: HgRepo, key: str, path: str) -> RawFile:
    """hgweb's ``raw-file``: file ``path`` at revision ``key`` (a file kept in LFS read from the
    repository's blob store, as ``hg serve`` with the extension reads it; a large file is its
    standin, as there), or, for a directory (or no path), its listing as hgweb's raw style writes
    it: a line per subdirectory (``drwxr-xr-x NAME``), then per file (``-rw-r--r-- SIZE NAME``)."""
    node, _rev, _mtime, files = resolve_file_revision(repo, key)
    wanted = path.strip("/").encode("utf-8", "surrogateescape")
    for file_path, file_node, flags in files:
        if file_path == wanted:
            size, chunks = _content(repo, file_path, file_node)()
            return RawFile(file_path.rpartition(b"/")[2], size, chunks, binascii.hexlify(file_node).decode())
    prefix = wanted + b"/" if wanted else b""
    below = [f for f in files if f[0].startswith(prefix)]
    if not below and files:  # as hgweb: any path of an empty manifest is its (empty) root
        raise not_in_manifest(wanted, node)
    directories = sorted({f[0][len(prefix):].partition(b"/")[0] for f in below if b"/" in f[0][len(prefix):]})
    return raw_listing(directories, [(flags, file_size(repo, file_path, file_node), file_path[len(prefix):])
                                     for file_path, file_node, flags in below if b"/" not in file_path[len(prefix):]])


_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


def _listed(name: bytes) -> bytes:
    """A name as a listing line holds it: a git tree's name may hold a newline (which would forge a
    line of the listing for a script that reads it) or another control byte: each as ``\\xNN``."""
    return _CONTROL_BYTES.sub(lambda m: b"\\x%02x" % m.group()[0], name)


def raw_listing(directories: Sequence[bytes], files: Sequence[tuple[bytes, int, bytes]]) -> RawFile:
    """A directory's listing as hgweb's raw style writes it: a line per subdirectory (``drwxr-xr-x
    NAME``), then per file (``-rw-r--r-- SIZE NAME``, its mode from manifest flags ``l``/``x``),
    between the raw manifest's empty header and footer lines."""
    lines = [b"drwxr-xr-x " + _listed(d) + b"\n" for d in directories]
    for flags, size, name in files:
        mode = b"lrwxrwxrwx" if b"l" in flags else b"-rwxr-xr-x" if b"x" in flags else b"-rw-r--r--"
        lines.append(b"%s %d %s\n" % (mode, size, _listed(name)))
    listing = b"\n" + b"".join(lines) + b"\n\n"
    return RawFile(None, len(listing), iter([listing]), content_tag(b"raw-listing", listing))


def _content(repo: HgRepo, path: bytes, node: bytes) -> Content:
    """Where a file revision's bytes are: in history, or in the LFS blob store for a pointer
    (refused with the reason when the server does not have the blob)."""
    filelog = repo.filelog(path)
    rev = filelog.rev(node)
    if not filelog.flags(rev) & REVIDX_EXTSTORED:
        return partial(_history, repo, path, node)
    shown = path.decode("utf-8", "replace")[:200]
    lfs = repo.lfs()
    oid = _lfs_oid(filelog.revision(rev))
    if lfs is None or oid is None or not _present(lfs.open, oid):
        raise UnsupportedFeature(f"{shown} is kept in LFS and its blob is not on this server: "
                                 "it cannot be sent")
    # (a blob whose bytes no longer hash to its name is refused, not sent: LfsObjectCorrupt)
    return partial(_kept, getattr(lfs, "open_checked", lfs.open), oid, shown)


def file_size(repo: HgRepo, path: bytes, node: bytes) -> int:
    """A file revision's size as hg's ``filelog.size`` gives it: the one its LFS pointer names; for
    a revision without a first parent whose text starts with the metadata marker (a copy, or an
    escaped text), its data's; else the size the index stores (no text read: a listing of many
    files stays cheap; like hg, it counts the escape of a text with a first parent)."""
    filelog = repo.filelog(path)
    rev = filelog.rev(node)
    if filelog.flags(rev) & REVIDX_EXTSTORED:
        for line in filelog.revision(rev)[:MAX_POINTER].split(b"\n"):
            if line.startswith(b"size ") and line[5:].strip().isdigit():
                return int(line[5:].strip())
    if filelog.parent_revs(rev)[0] == NULL_REV:
        meta = _stored_meta(filelog, rev)
        if meta is not None:  # a large text: its metadata (if any) is in its first piece
            return filelog.raw_size(rev) - len(meta)
        text = filelog.revision(rev)
        if text.startswith(b"\x01\n"):
            return len(parse_filelog_text(text).data)
    size = filelog.raw_size(rev)
    return size if size >= 0 else len(file_data(repo, path, node))


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
    """How many of ``rev`` and its ancestors are not ``tag_rev`` or its ancestors (hg's ``only()``)."""
    return len(missing(parents, [tag_rev], [rev]))


def _tar(entries: Iterator[tuple[bytes, int, bool, int, Iterator[bytes]]], mtime: int) -> Iterator[bytes]:
    """A tar as ``hg archive`` writes one: files and symbolic links, no directory entries."""
    spool = Spool()
    with tarfile.open(fileobj=spool, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      encoding="utf-8", errors="surrogateescape") as tar:
        for path, mode, link, size, chunks in entries:
            info = tarfile.TarInfo(path.decode("utf-8", "surrogateescape"))
            info.mtime = float(mtime)  # as hg sets it, the changeset's date as a float: a pax record of it
            if link:
                info.type, info.mode = tarfile.SYMTYPE, 0o777
                info.linkname = b"".join(chunks).decode("utf-8", "surrogateescape")
                tar.addfile(info)
                yield spool.drain()
                continue
            info.mode, info.size = mode, size
            reader = _Reader(chunks)
            tar.addfile(info, reader)
            yield spool.drain()
    yield spool.drain()


class _Reader:
    """``tarfile.addfile``'s file object over a member's chunks (one chunk held at a time)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._held = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        parts = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if not self._held:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._held = memoryview(chunk)
            piece = self._held[:wanted]
            self._held = self._held[len(piece):]
            parts.append(piece.tobytes())
            wanted -= len(piece)
        return b"".join(parts)


ZIP64_LIMIT = (1 << 31) - 1


def _gzipped(chunks: Iterator[bytes], mtime: int) -> Iterator[bytes]:
    """gzip as ``hg archive`` writes it (Python's ``GzipFile`` at level 9): the changeset's date in
    the header, the best-compression flag, no file name, an unknown OS; raw deflate, then the CRC
    and the length."""
    yield b"\x1f\x8b\x08\x00" + struct.pack("<L", mtime & 0xFFFFFFFF) + b"\x02\xff"
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, 0)
    crc = size = 0
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        if out := deflate.compress(chunk):
            yield out
    yield deflate.flush() + struct.pack("<LL", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


class _BytesNamedInfo(zipfile.ZipInfo):
    """A zip member whose name is not UTF-8 (``caf\xe9.txt`` of a Latin-1 system): written as its
    own bytes without the UTF-8 flag, as ``git archive`` writes such a name, since zipfile cannot
    encode it (the download broke off after the members before it, with no directory at its end)."""

    def __init__(self, raw: bytes, date_time: tuple[int, int, int, int, int, int]) -> None:
        super().__init__(raw.decode("utf-8", "surrogateescape"), date_time=date_time)
        self.raw_name = raw

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's name writer, in headers and directory
        return self.raw_name, self.flag_bits & ~0x800


def _member(path: bytes, date: tuple[int, ...]) -> zipfile.ZipInfo:
    stamp = (date[0], date[1], date[2], date[3], date[4], date[5])
    try:
        path.decode("utf-8")
    except UnicodeDecodeError:
        return _BytesNamedInfo(path, stamp)
    return zipfile.ZipInfo(path.decode("utf-8"), date_time=stamp)


def _zip(entries: Iterator[tuple[bytes, int, bool, int, Iterator[bytes]]], mtime: int) -> Iterator[bytes]:
    """A zip as ``hg archive`` writes one: deflated files with their Unix modes, links as links."""
    spool = Spool()
    date = time.gmtime(max(mtime, ZIP_EPOCH))[:6]
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        for path, mode, link, size, chunks in entries:
            info = _member(path, date)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.extra = struct.pack("<hhBl", 0x5455, 5, 1, max(mtime, ZIP_EPOCH))  # hg's extended timestamp
            unix = (stat.S_IFLNK | 0o777) if link else (stat.S_IFREG | mode)
            info.external_attr = unix << 16
            with archive.open(info, "w", force_zip64=size > ZIP64_LIMIT) as out:
                for piece in chunks:
                    out.write(piece)
                    if pending := spool.drain():
                        yield pending
            info.external_attr = unix << 16
            yield spool.drain()
    yield spool.drain()


__all__ = ["TYPES", "Archive", "RawFile", "allowed", "archive_directory", "file_data", "latest_tags", "manifest_at",
           "metadata", "prepare", "raw_file", "raw_listing", "resolve", "shown_revision", "split_type",
           "url_revision"]
