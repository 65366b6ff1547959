"""Archives of a git tree for git-upload-archive: tar (tarfile), tgz (zlib over it) and zip (zipfile).

Blocking; the gateway runs ``resolve`` and every ``next()`` of ``archive_chunks``
in the thread pool.  Chunks are yielded file by file, so the archive is never
held in memory whole (one blob at a time is).

Pathspecs are applied in ``resolve``: it builds trees holding only what they
select (in memory, never stored; a tree per directory on the way), so a
pathspec that selects nothing is refused before the ACK, and the archive
writers walk the filtered tree as they would the whole one.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
import stat
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, cast

from dulwich.object_store import BaseObjectStore
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree

from backends.git_objects import (
    BLOB,
    MAX_PEEL,
    PackObjectReader,
    RawLooseObjectStore,
    blob_pieces,
    size_reader,
)
from backends.git_pretty import pretty
from backends.interfaces import OBJECT_FORMATS, GitRepository, ObjectId, object_format_of
from protocols.git_archive import ArchiveOptions, ArchiveRefused, Pathspec

MAX_DEPTH = 256
"""Deepest directory nesting an archive follows (a crafted tree cannot recurse forever)."""
_HEX = re.compile(r"[0-9a-f]+")
"""A full id when it has the repository's ``hex_len`` digits (40, or 64 in SHA-256)."""
_RAW_LENGTHS = frozenset(f.raw_len for f in OBJECT_FORMATS.values())
_DWIM = ("{}", "refs/{}", "refs/tags/{}", "refs/heads/{}", "refs/remotes/{}", "refs/remotes/{}/HEAD")
"""git's ref_rev_parse_rules, the order in which a short name is looked up."""


@dataclass(frozen=True)
class ArchiveSource:
    """What to archive: a tree, the mtime of its entries (the commit time, else now), and the
    trees that pathspecs filtered (by id, looked up before the store's)."""

    tree: bytes
    mtime: int
    filtered: Mapping[bytes, Tree] = field(default_factory=dict)
    commit: bytes | None = None
    """The commit archived (its id goes in the archive, as git puts it); None for a tree."""
    attributes_tree: bytes | None = None
    """The tree before pathspecs filtered it: its ``.gitattributes`` files apply (None: ``tree``)."""


def resolve(repo: GitRepository, treeish: str, pathspecs: tuple[Pathspec, ...] = (), *,
            allow_unreachable: bool = False) -> ArchiveSource:
    """Resolve a ref name to a tree, as git's upload-archive does; with ``allow_unreachable``
    (``uploadArchive.allowUnreachable``) the full id of any object of the repository as well.

    git's archive looks up what comes before the colon as a ref (``dwim_ref``) unless that setting
    is true, and refuses anything else with "no such ref" (a commit id among them, even a ref's).
    With pathspecs, the tree keeps only what they select, and each must select something.
    """
    refs = repo.refs()
    store = repo.object_store
    ref, colon, path = treeish.partition(":")
    oid = _by_name(refs, ref)
    if oid is None and allow_unreachable:
        oid = _by_id(store, ref)
        if oid is None:
            raise ArchiveRefused(f"not a valid object name: {ref}")
    if oid is None:
        raise ArchiveRefused(f"no such ref: {ref}")
    source = _to_tree(store, oid)
    if colon and path:
        source = ArchiveSource(_subtree(store, source.tree, path, treeish), int(time.time()))  # git: no commit
    return select(store, source, pathspecs)


def select(store: BaseObjectStore, source: ArchiveSource, pathspecs: tuple[Pathspec, ...]) -> ArchiveSource:
    """``source`` keeping only what the pathspecs select together.

    As git's archive checks them, each pathspec alone must select something (an exclusion alone
    selects what it does not exclude), in the order given; what they leave together may be
    nothing, an empty archive (``docs ':!docs/a.md'``, ``'*.md' ':!docs'``), as git makes it.
    """
    if not pathspecs:
        return source
    tree = store[ObjectID(source.tree)]
    assert isinstance(tree, Tree)
    filtered: dict[bytes, Tree] = {}
    selection = _Selection(store, pathspecs, filtered)
    kept = selection.select(tree, "", not selection.includes, 0)
    for spec in pathspecs:
        if spec not in selection.used and not _selects_alone(store, tree, spec, "", 0):
            raise ArchiveRefused(f"pathspec '{spec.given or spec.text}' did not match any files")
    if kept is None:
        kept = Tree()
        kept.object_format = tree.object_format
        filtered[_tree_id(kept)] = kept
    return ArchiveSource(_tree_id(kept), source.mtime, filtered, source.commit, source.tree)


def _selects_alone(store: BaseObjectStore, tree: Tree, spec: Pathspec, base: str, depth: int) -> bool:
    """Whether ``spec`` by itself selects an entry of ``tree`` (a file, or a directory it matches
    whole): what git's archive asks of each pathspec before it archives what they select together.
    An exclusion alone selects any file it does not exclude (``:!*`` selects none)."""
    if depth > MAX_DEPTH:
        raise ArchiveRefused(f"tree deeper than {MAX_DEPTH} directories")
    for entry in tree.iteritems():
        path = base + entry.path.decode("utf-8", "surrogateescape")
        directory = stat.S_ISDIR(entry.mode)
        if spec.exclude:  # a file it leaves, or one in a directory it does not exclude whole
            if spec.matches(path, directory):
                continue
            if not directory:
                return True
        elif spec.matches(path, directory):
            return True
        elif not directory or not spec.may_select_below(path):
            continue
        subtree = _get(store, entry.sha)
        if isinstance(subtree, Tree) and _selects_alone(store, subtree, spec, path + "/", depth + 1):
            return True
    return False


def _subtree(store: BaseObjectStore, tree: bytes, path: str, treeish: str) -> bytes:
    """The id of the tree at ``path`` below ``tree`` (``HEAD:docs``)."""
    oid = tree
    for name in path.encode("utf-8", "surrogateescape").split(b"/"):
        obj = _get(store, oid)
        if not isinstance(obj, Tree) or name not in obj:
            raise ArchiveRefused(f"not a valid object name: {treeish}")
        oid = obj[name][1]
    if not isinstance(_get(store, oid), Tree):  # a file, a submodule: git's words, with the id it names
        raise ArchiveRefused(f"not a tree object: {bytes(oid).decode('ascii', 'replace')}")
    return oid


class _Selection:
    """A tree walk that keeps what the including pathspecs select, less what the excluding ones do."""

    def __init__(self, store: BaseObjectStore, pathspecs: tuple[Pathspec, ...], filtered: dict[bytes, Tree]) -> None:
        self.store = store
        self.includes = tuple(spec for spec in pathspecs if not spec.exclude)
        self.excludes = tuple(spec for spec in pathspecs if spec.exclude)
        self.used: set[Pathspec] = set()
        self.filtered = filtered

    def select(self, tree: Tree, base: str, selected: bool, depth: int) -> Tree | None:
        """``tree`` with only the entries kept (None if none); new trees go to ``filtered``.

        ``selected``: an including pathspec (or none at all) already selects all of ``tree``.
        """
        if depth > MAX_DEPTH:
            raise ArchiveRefused(f"tree deeper than {MAX_DEPTH} directories")
        kept = Tree()
        kept.object_format = tree.object_format  # its id is of the repository's format
        for entry in tree.iteritems():
            path = base + entry.path.decode("utf-8", "surrogateescape")
            directory = stat.S_ISDIR(entry.mode)
            if any(spec.matches(path, directory) for spec in self.excludes):
                continue
            selecting = [spec for spec in self.includes if spec.matches(path, directory)]
            self.used.update(selecting)
            whole = selected or bool(selecting)
            if not directory:
                if whole:
                    kept.add(entry.path, entry.mode, entry.sha)
                continue
            if whole and not self._below(path):
                kept.add(entry.path, entry.mode, entry.sha)
                continue
            if not whole and not any(spec.may_select_below(path) for spec in self.includes):
                continue
            subtree = _get(self.store, entry.sha)
            if isinstance(subtree, Tree):
                below = self.select(subtree, path + "/", whole, depth + 1)
                if below is not None:
                    kept.add(entry.path, entry.mode, _tree_id(below))
        if not kept.items():
            return None
        self.filtered[_tree_id(kept)] = kept
        return kept

    def _below(self, directory: str) -> bool:
        """A selected directory must still be walked: an exclusion, or an inclusion not yet seen
        to match (so that it is not reported as matching nothing), may apply below it."""
        return any(spec.may_select_below(directory) for spec in self.excludes) or any(
            spec not in self.used and spec.may_select_below(directory) for spec in self.includes)


def _tree_id(tree: Tree) -> ObjectID:
    """The hex id of a tree in its own object format (dulwich's ``id`` is always the SHA-1 one;
    a tree read from the store keeps the id it was read by)."""
    if tree.object_format.name == "sha1":
        return tree.id
    return ObjectID(tree.get_id(tree.object_format))


class _Overlay:
    """The filtered trees in front of the repository's object store (all the archive writers read)."""

    def __init__(self, store: BaseObjectStore, filtered: Mapping[bytes, Tree]) -> None:
        self._store = store
        self.filtered = filtered

    def __getitem__(self, oid: bytes) -> ShaFile:
        found = self.filtered.get(oid)
        return found if found is not None else self._store[ObjectID(oid)]


def _by_name(refs: Mapping[bytes, ObjectId], name: str) -> bytes | None:
    for rule in _DWIM:
        oid = refs.get(rule.format(name).encode("utf-8", "surrogateescape"))
        if oid is not None:
            return bytes(oid)
    return None


def _by_id(store: BaseObjectStore, name: str) -> bytes | None:
    """The full id ``name`` (of the repository's format) of an object the repository holds."""
    if len(name) != object_format_of(store).hex_len or not _HEX.fullmatch(name):
        return None
    oid = name.encode("ascii")
    return oid if ObjectID(oid) in store else None


def _to_tree(store: BaseObjectStore, oid: bytes) -> ArchiveSource:
    named = oid
    mtime = int(time.time())
    for _ in range(MAX_PEEL + 1):  # (the tags and what the last one names)
        obj = _get(store, oid)
        if isinstance(obj, Tag):
            oid = obj.object[1].lower()  # (git reads a tag's capital hex too)
        elif isinstance(obj, Commit):
            return ArchiveSource(obj.tree, obj.commit_time, commit=oid)
        elif isinstance(obj, Tree):
            return ArchiveSource(oid, mtime)
        else:
            break
    raise ArchiveRefused(f"not a tree object: {bytes(named).decode('ascii', 'replace')}")  # git's words


def _get(store: BaseObjectStore, oid: bytes) -> ShaFile | None:
    try:
        return store[ObjectID(oid)]
    except KeyError:
        return None


def archive_chunks(store: BaseObjectStore, source: ArchiveSource, options: ArchiveOptions,
                   note: Callable[[bytes], None] | None = None) -> Iterator[bytes]:
    """The archive as a stream of chunks, in the requested kind; ``note`` is given each entry's
    path as the writer takes it (a directory's and a submodule's ending in ``/``), for ``--verbose``."""
    if source.filtered:
        store = cast(BaseObjectStore, _Overlay(store, source.filtered))
    tree = store[ObjectID(source.tree)]
    assert isinstance(tree, Tree)
    original = store[ObjectID(source.attributes_tree)] if source.attributes_tree is not None else None
    assert original is None or isinstance(original, Tree)
    commit = _get(store, source.commit) if source.commit is not None else None
    prefix = options.prefix.encode("utf-8")
    entries = _sized_entries(store, tree, prefix, original, commit if isinstance(commit, Commit) else None)
    if prefix.endswith(b"/"):  # the prefix's own directory entry, first, as git writes it (not for --prefix=x)
        entries = itertools.chain([(prefix.rstrip(b"/"), stat.S_IFDIR, None, bytes(_tree_id(tree)))], entries)
    if note is not None:
        entries = _noting(entries, note)
    if options.kind == "zip":
        objects = store._store if isinstance(store, _Overlay) else store
        stream_above = getattr(objects, "stream_above", RawLooseObjectStore.stream_above)
        return _zip_chunks(entries, source.mtime, options.level, source.commit, stream_above)
    tar = _tar_chunks(entries, source.mtime, source.commit)
    if options.kind == "tgz":
        return gzipped(tar, 6 if options.level is None else options.level)
    return tar


def _noting(entries: Entries, note: Callable[[bytes], None]) -> Entries:
    for entry in entries:
        path, _, obj, _ = entry
        note(path + b"/" if obj is None else path)
        yield entry


TAR_FILE_MODE, TAR_EXEC_MODE, TAR_DIR_MODE = 0o664, 0o775, 0o775
"""git's modes in a tar (0666, 0777 less its default ``tar.umask`` of 002)."""


Entries = Iterator[tuple[bytes, int, "Blob | StoredBlob | None", bytes]]
"""(path, mode, the blob or None for a directory or submodule, the entry's object id)."""

LARGE_BLOB = 1 << 20
"""A file's blob this large or larger is not read until it is written (``StoredBlob``)."""


class StoredBlob:
    """A large file's blob, not read: its size from its pack entry's headers, its bytes read a
    piece at a time as a tar writes them (``git_objects.blob_pieces``: a blob stored whole in a
    pack; one stored otherwise is read then), or whole where a writer needs them so (a zip
    entry is compressed whole before it is written, as git does)."""

    def __init__(self, store: BaseObjectStore, hexsha: bytes, size: int) -> None:
        self._store = store
        self._hexsha = hexsha
        self._size = size

    def raw_length(self) -> int:
        return self._size

    @property
    def chunked(self) -> Iterator[bytes]:
        whole = blob_pieces(self._store, self._hexsha)
        return whole[1] if whole is not None else iter(self._read().chunked)

    def as_raw_string(self) -> bytes:
        return self._read().as_raw_string()

    def _read(self) -> Blob:
        blob = self._store[ObjectID(self._hexsha)]
        if not isinstance(blob, Blob) or blob.raw_length() != self._size:
            raise ArchiveRefused(f"object {self._hexsha.decode()} changed while it was being archived")
        return blob


def _sized_entries(store: BaseObjectStore, tree: Tree, prefix: bytes, original: Tree | None,
                   commit: Commit | None) -> Entries:
    """``_entries`` with the sizes of the files' blobs read from their pack entries' headers, so
    that a large one is left to be read as it is written (``StoredBlob``)."""
    objects = store._store if isinstance(store, _Overlay) else store  # (the overlay adds trees only)
    with size_reader(objects) as sizes:
        yield from _entries(store, tree, prefix, 0, original, commit=commit, sizes=sizes, objects=objects)


def _tar_chunks(entries: Entries, mtime: int, commit: bytes | None) -> Iterator[bytes]:
    """A tar as git-archive writes one, byte for byte: a pax global header with the commit id (what
    ``git get-tar-commit-id`` reads), directory entries, symbolic links as links, submodules as
    empty directories, owner root; a path too long for the header's fields goes in a pax extended
    header; zeros to git's 10 KiB blocks at the end.  One entry at a time."""
    written = 0
    if commit is not None:
        record = _pax_record("comment", commit)
        head = _tar_header(b"pax_global_header", 0o100666, len(record), mtime, b"g")
        yield head + _padded(record)
        written += len(head) + len(_padded(record))
    for path, mode, obj, oid in entries:
        hex_id = oid.hex().encode() if len(oid) in _RAW_LENGTHS else oid
        if obj is None:  # a directory, or a submodule: an empty directory
            name, kind, size, perm, link = path + b"/", b"5", 0, TAR_DIR_MODE, b""
        elif stat.S_ISLNK(mode):
            name, kind, size, perm, link = path, b"2", 0, 0o777, obj.as_raw_string()
        else:
            name, kind, size, perm, link = path, b"0", obj.raw_length(), \
                TAR_EXEC_MODE if mode & 0o100 else TAR_FILE_MODE, b""
        extended = b""
        prefix = b""
        if len(name) > 100:
            cut = _path_prefix(name)
            if cut > 0 and len(name) - cut - 1 <= 100:
                prefix, name = name[:cut], name[cut + 1:]
            else:
                extended += _pax_record("path", name)
                name = hex_id + b".data"
        if len(link) > 100:
            extended += _pax_record("linkpath", link)
            link = b"see " + hex_id + b".paxheader"
        if extended:
            head = _tar_header(hex_id + b".paxheader", 0o100666, len(extended), mtime, b"x")
            yield head + _padded(extended)
            written += len(head) + len(_padded(extended))
        head = _tar_header(name, (stat.S_IFREG if kind == b"0" else 0) | perm, size, mtime, kind, link, prefix)
        yield head
        written += len(head)
        if kind == b"0":
            assert obj is not None
            yield from obj.chunked
            rest = -size % TAR_RECORD
            yield b"\0" * rest
            written += size + rest
    # git's trailer: zeros to the end of its 10 KiB block, and another block if that left less than two records
    tail = -written % TAR_BLOCK
    yield b"\0" * (tail + (TAR_BLOCK if tail < 2 * TAR_RECORD else 0))


TAR_RECORD, TAR_BLOCK = 512, 512 * 20


def _tar_header(name: bytes, mode: int, size: int, mtime: int, kind: bytes, link: bytes = b"",
                prefix: bytes = b"") -> bytes:
    """A ustar header as git fills one: octal fields of fixed widths, owner root, its checksum."""
    size = size if stat.S_ISREG(mode) else 0
    if size < _OCTAL_11 and 0 <= mtime < _OCTAL_11:  # packed in one C call; the fields as below
        octals = b"%07o%011o%011o" % (mode & 0o7777, size, mtime)
        header = _TAR_HEADER.pack(name, octals[:7], b"0000000", b"0000000", octals[7:18], octals[18:],
                                  b"        ", kind, link, b"ustar", b"00", b"root", b"root", b"0000000", b"0000000",
                                  prefix)
        # the checksum: the bytes of the fields that vary, and of those that do not (summed once)
        total = _TAR_HEADER_SUM + sum(octals) + sum(name[:100]) + sum(kind) + sum(link[:100]) + sum(prefix[:155])
        return header[:148] + b"%07o\0" % total + header[156:]

    def octal(value: int, width: int) -> bytes:
        return b"%0*o\0" % (width - 1, value)

    fields = [name.ljust(100, b"\0")[:100], octal(mode & 0o7777, 8), octal(0, 8), octal(0, 8),
              octal(size, 12), octal(mtime, 12), b" " * 8, kind,
              link.ljust(100, b"\0")[:100], b"ustar\0", b"00", b"root".ljust(32, b"\0"), b"root".ljust(32, b"\0"),
              octal(0, 8), octal(0, 8), prefix.ljust(155, b"\0")[:155]]
    header = b"".join(fields).ljust(TAR_RECORD, b"\0")
    checksum = octal(sum(header), 8)
    return header[:148] + checksum + header[156:]


_OCTAL_11 = 8 ** 11
_TAR_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
"""A ustar header's fields, each padded with NULs to its width (``_tar_header``)."""
_TAR_HEADER_SUM = sum(_TAR_HEADER.pack(b"", b"", b"0000000", b"0000000", b"", b"", b"        ", b"\0", b"", b"ustar",
                                       b"00", b"root", b"root", b"0000000", b"0000000", b""))


def _path_prefix(path: bytes) -> int:
    """Where a long path may be cut into the header's prefix (155 bytes at most) and name: at a
    ``/`` (not a directory's last one); 0 when it cannot be."""
    at = len(path)
    if at > 1 and path[at - 1:at] == b"/":
        at -= 1
    at = min(at, 155)
    at -= 1
    while at > 0 and path[at:at + 1] != b"/":
        at -= 1
    return max(at, 0)


def _pax_record(keyword: str, value: bytes) -> bytes:
    """A pax extended header record, ``LEN KEYWORD=VALUE\\n``, LEN counting its own digits."""
    body = b" %s=%s\n" % (keyword.encode(), value)
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length = len(b"%d" % length) + len(body)
    return b"%d" % length + body


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % TAR_RECORD)


def _entries(store: BaseObjectStore, tree: Tree, prefix: bytes, depth: int, original: Tree | None = None,
             rules: tuple[_AttrRule, ...] = (), base: str = "", commit: Commit | None = None,
             sizes: PackObjectReader | None = None, objects: BaseObjectStore | None = None) -> Entries:
    """Every entry under ``tree`` in git-archive's order: a directory, then what is in it.

    Directories and submodules come with None; a missing blob is left out (as git cannot
    archive it either, but a hole is better than no archive for an incomplete repository).
    The ``.gitattributes`` files of ``original`` (the tree before pathspecs, or ``tree``
    itself) apply: what ``export-ignore`` marks is left out, a directory with all below it,
    and in what ``export-subst`` marks, ``$Format:...$`` becomes ``commit``'s details.
    """
    if depth > MAX_DEPTH:
        raise ArchiveRefused(f"tree deeper than {MAX_DEPTH} directories")
    attributes = original if original is not None else tree
    if GITATTRIBUTES in attributes:
        blob = _get(store, attributes[GITATTRIBUTES][1])
        if isinstance(blob, Blob):
            rules = (*rules, *_attribute_rules(blob.as_raw_string(), base))
            if len(rules) > MAX_ATTRIBUTE_RULES:
                raise ArchiveRefused(f"more than {MAX_ATTRIBUTE_RULES} export-ignore and export-subst rules "
                                     "in .gitattributes files")
    for entry in tree.iteritems():
        if entry.path in (b"", b".", b"..") or b"/" in entry.path or b"\0" in entry.path:
            raise ArchiveRefused(f"the tree has an entry named {entry.path!r}, which no archive may hold")
        relative = base + entry.path.decode("utf-8", "surrogateescape")
        if rules and _attribute(rules, "export-ignore", relative, stat.S_ISDIR(entry.mode)):
            continue
        path = prefix + entry.path
        if stat.S_ISDIR(entry.mode):
            yield path, entry.mode, None, bytes(entry.sha)
            subtree = _tree(store, sizes, objects, entry.sha)
            below = None
            if original is not None and entry.path in original:
                below = _tree(store, sizes, objects, original[entry.path][1])
            if isinstance(subtree, Tree):
                yield from _entries(store, subtree, path + b"/", depth + 1, below, rules, relative + "/", commit,
                                    sizes, objects)
        elif entry.mode & 0o170000 == 0o160000:
            yield path, entry.mode, None, bytes(entry.sha)
        else:
            substituted = commit is not None and bool(rules) and not stat.S_ISLNK(entry.mode) and \
                _attribute(rules, "export-subst", relative, False)
            if sizes is not None and objects is not None:
                obj = _read_blob(sizes, objects, bytes(entry.sha),
                                 stat.S_ISLNK(entry.mode) or substituted)  # (those are read whole)
            else:
                obj = _blob(store, objects, entry.sha)
            if obj is not None:
                if substituted and commit is not None:
                    assert isinstance(obj, Blob)
                    obj = _substituted(obj, commit)
                    obj.__class__ = ConvertedBlob  # (same layout: a mark, nothing more)
                yield path, entry.mode, obj, bytes(entry.sha)


def _blob(store: BaseObjectStore, objects: BaseObjectStore | None, oid: bytes) -> Blob | None:
    """A file's blob, or None when it is missing or no blob.  Read from ``objects`` (the store
    under an overlay of filtered trees) without hashing its bytes again, as git's archive reads
    them: dulwich's ``store[id]`` checks each object's id, a fifth of an archive's time."""
    get_raw = getattr(objects if objects is not None else store, "get_raw", None)
    if get_raw is None:
        found = _get(store, oid)
        return found if isinstance(found, Blob) else None
    try:
        type_num, raw = get_raw(ObjectID(oid))
    except KeyError:
        return None
    if type_num != Blob.type_num:
        return None
    blob = Blob.from_raw_string(type_num, raw, sha=ObjectID(oid))
    assert isinstance(blob, Blob)
    return blob


def _read_blob(sizes: PackObjectReader, objects: BaseObjectStore, hexsha: bytes, whole: bool
               ) -> Blob | StoredBlob | None:
    """A file's blob read through the archive's pack reader (``read_below``: one lookup, each entry
    of its delta chain inflated once, its bytes not hashed again, as git's archive reads them), or
    a ``StoredBlob`` for one of ``LARGE_BLOB`` bytes or more stored whole in a pack (unless
    ``whole``: a link's target, a file ``export-subst`` rewrites); None when it is missing or no blob."""
    try:
        type_num, raw, size = sizes.read_below(hexsha, (1 << 63) if whole else LARGE_BLOB)
    except KeyError:
        return None
    if type_num != BLOB:
        return None
    if raw is None:
        stored = StoredBlob(objects, hexsha, size)
        if not whole:
            return stored
        raw = b"".join(stored.chunked)  # (a loose one over core.bigFileThreshold comes so whatever ``large``)
        if len(raw) != size:
            raise ArchiveRefused(f"object {hexsha.decode()} changed while it was being archived")
    blob = Blob.from_raw_string(type_num, raw, sha=ObjectID(hexsha))
    assert isinstance(blob, Blob)
    return blob


def _tree(store: BaseObjectStore, sizes: PackObjectReader | None, objects: BaseObjectStore | None, oid: bytes
          ) -> Tree | None:
    """A tree of the archive (a filtered one from the overlay), read through the pack reader
    when there is one, its bytes not hashed again; None when it is missing or no tree."""
    if sizes is None or objects is None or (isinstance(store, _Overlay) and oid in store.filtered):
        found = _get(store, oid)
        return found if isinstance(found, Tree) else None
    try:
        type_num, raw = sizes.read(bytes(oid))
    except KeyError:
        return None
    if type_num != Tree.type_num:
        return None
    tree = Tree.from_raw_string(type_num, raw, sha=ObjectID(oid), object_format=objects.object_format)
    assert isinstance(tree, Tree)
    return tree


GITATTRIBUTES = b".gitattributes"
MAX_PATTERN_SEGMENTS = 64
MAX_ATTRIBUTE_RULES = 1000
"""``export-ignore``/``export-subst`` rules an archive honours at most (each entry is matched against them)."""
ARCHIVE_ATTRIBUTES = ("export-ignore", "export-subst")


@dataclass(frozen=True)
class _AttrRule:
    """One ``.gitattributes`` line's setting of ``export-ignore`` or ``export-subst``."""

    base: str  # the directory of its file ("" at the top, else "dir/")
    segments: tuple[str, ...]  # the pattern, split at "/" (one segment: any entry's own name)
    anchored: bool  # matched against the path below ``base``, not against the name alone
    directories_only: bool  # the pattern ended with "/"
    attribute: str
    value: bool  # set; unset (-attr) and reset (!attr) both mean off here


def _attribute_rules(text: bytes, base: str) -> list[_AttrRule]:
    """The settings of one ``.gitattributes`` for the archive's attributes (the others: git's business)."""
    rules = []
    for raw in text.decode("utf-8", "surrogateescape").splitlines():
        words = raw.split()
        if not words or words[0].startswith("#") or words[0].startswith("[attr]") or words[0].startswith('"'):
            continue  # comments, macro definitions; quoted patterns are not read (rare)
        pattern = words[0]
        directories_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        segments = tuple(pattern.lstrip("/").split("/"))
        if not pattern or not all(segments) or len(segments) > MAX_PATTERN_SEGMENTS:
            continue
        for word in words[1:]:
            name = word.lstrip("-!")
            if name in ARCHIVE_ATTRIBUTES:
                rules.append(_AttrRule(base, segments, "/" in pattern, directories_only, name, word == name))
    return rules


def _attribute(rules: tuple[_AttrRule, ...], attribute: str, path: str, directory: bool) -> bool:
    """Whether ``attribute`` is set on ``path`` (from the archive's top): the last rule that matches decides,
    a deeper ``.gitattributes`` after the ones above it, as git reads them."""
    for rule in reversed(rules):
        if rule.attribute != attribute or not path.startswith(rule.base):
            continue
        if rule.directories_only and not directory:
            continue
        below = path[len(rule.base):].split("/")
        if rule.anchored:
            matched = _glob_segments(rule.segments, tuple(below))
        else:
            matched = fnmatch.fnmatchcase(below[-1], rule.segments[0])
        if matched:
            return rule.value
    return False


MAX_SUBSTITUTED_FILE = 16 << 20
"""A larger ``export-subst`` file goes out as it is."""
MAX_SUBSTITUTIONS = 64
"""``$Format:...$`` replaced per file at most (git bounds them too)."""
_FORMAT = re.compile(rb"\$Format:([^$\n]*)\$")


class ConvertedBlob(Blob):
    """A file's blob as ``export-subst`` gave it (whether or not it held a ``$Format:``): git's
    archive never streams such a file (``_zip_chunks``)."""

    __slots__ = ()


def _substituted(blob: Blob, commit: Commit) -> Blob:
    """``blob`` with each ``$Format:<pretty format>$`` replaced by ``commit``'s details."""
    data = blob.as_raw_string()
    if b"$Format:" not in data or len(data) > MAX_SUBSTITUTED_FILE:
        return blob
    count = 0

    def one(match: re.Match[bytes]) -> bytes:
        nonlocal count
        count += 1
        return match.group(0) if count > MAX_SUBSTITUTIONS else pretty(commit, match.group(1))

    return Blob.from_string(_FORMAT.sub(one, data))


def _glob_segments(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """``pattern`` (``**`` a run of any directories, a trailing one all below) matches all of ``path``.

    Memoized on the two positions: patterns come from pushed files, and several ``**``
    must not make the match exponential.
    """
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        found = memo.get((i, j))
        if found is None:
            if i == len(pattern):
                found = j == len(path)
            elif pattern[i] == "**" and i == len(pattern) - 1:  # a trailing /**: everything below, not the dir
                found = j < len(path)
            elif pattern[i] == "**":
                found = any(match(i + 1, k) for k in range(j, len(path) + 1))
            else:
                found = j < len(path) and fnmatch.fnmatchcase(path[j], pattern[i]) and match(i + 1, j + 1)
            memo[(i, j)] = found
        return found

    return match(0, 0)


def gzipped(chunks: Iterator[bytes], level: int) -> Iterator[bytes]:
    """gzip a stream (wbits 31: gzip header with mtime 0, so the same tree gives the same bytes)."""
    return compressed(chunks, zlib.compressobj(level, zlib.DEFLATED, 31))


class Compressor(Protocol):
    """What ``zlib.compressobj`` and ``bz2.BZ2Compressor`` have in common."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


def compressed(chunks: Iterator[bytes], compressor: Compressor) -> Iterator[bytes]:
    """A stream through ``compressor``; closing it closes ``chunks`` (a generator's locks go)."""
    try:
        for chunk in chunks:
            if out := compressor.compress(chunk):
                yield out
        yield compressor.flush()
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class Spool:
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


def _zip_chunks(entries: Entries, mtime: int, level: int | None, commit: bytes | None,
                stream_above: int = RawLooseObjectStore.stream_above) -> Iterator[bytes]:
    """A zip as git-archive writes one, byte for byte: each entry's sizes and CRC in its local
    header (a blob is compressed whole before it is written, as git does below its big-file
    threshold), stored where deflating does not make it smaller, directories and submodules as
    empty directories, Unix modes only for executables and links, an extended-timestamp field, the
    text flag of a blob without NUL, the commit id as the archive's comment.  A regular file's
    blob over ``stream_above`` (the repository's ``core.bigFileThreshold``), unless
    ``export-subst`` rewrote it, is written as git streams it (``_zip_streamed``)."""
    dos_date, dos_time = _dos_time(mtime)
    timestamp = struct.pack("<HHBL", 0x5455, 5, 1, mtime & 0xFFFFFFFF)  # "UT": the modification time
    central: list[bytes] = []
    offset = 0
    for path, mode, blob, _oid in entries:
        creator, external, internal, method = 0, 0, 0, 0
        if (blob is not None and stat.S_ISREG(mode) and not isinstance(blob, ConvertedBlob)
                and blob.raw_length() > stream_above):
            if mode & 0o111:
                creator, external = 0x0317, mode << 16
            streamed = _ZipStreamed()
            local = _zip_stream_header(path, level, blob.raw_length(), dos_time, dos_date, timestamp)
            yield local
            yield from streamed.write(blob, level)
            name, flags, method = path, _name_flags(path) | ZIP_DATA_DESCRIPTOR, streamed.method
            fields = struct.pack("<HHHHHLLLHH", 10, flags, method, dos_time, dos_date, streamed.crc,
                                 streamed.written, streamed.size, len(name), len(timestamp))
            far = offset > 0xFFFFFFFF
            extra = timestamp + (struct.pack("<HHQ", 0x0001, 8, offset) if far else b"")
            central.append(b"PK\x01\x02" + struct.pack("<H", creator) + fields[:-2] + struct.pack("<H", len(extra))
                           + struct.pack("<HHHLL", 0, 0, streamed.internal, external, 0xFFFFFFFF if far else offset)
                           + name + extra)
            offset += len(local) + streamed.written + ZIP_DESCRIPTOR_SIZE
            continue
        if blob is None:  # a directory, or a submodule: an empty directory
            name, data, external = path + b"/", b"", 0x10
            crc = size = 0
        else:
            name, data = path, blob.as_raw_string()
            size, crc = len(data), zlib.crc32(data) & 0xFFFFFFFF
            internal = 0 if b"\0" in data[:8000] else 1  # git's "text" guess
            if stat.S_ISLNK(mode) or mode & 0o111:
                creator, external = 0x0317, ((stat.S_IFLNK | 0o777) if stat.S_ISLNK(mode) else mode) << 16
            if stat.S_ISREG(mode) and level != 0 and size:
                deflate = zlib.compressobj(-1 if level is None else level, zlib.DEFLATED, -zlib.MAX_WBITS)
                packed = deflate.compress(data) + deflate.flush()
                if len(packed) < size:
                    data, method = packed, 8
        flags = _name_flags(name)
        fields = struct.pack("<HHHHHLLLHH", 10, flags, method, dos_time, dos_date, crc, len(data), size, len(name),
                             len(timestamp))
        local = b"PK\x03\x04" + fields + name + timestamp
        yield local
        yield data
        far = offset > 0xFFFFFFFF  # past 4 GiB: the offset goes in a zip64 field of the directory entry
        extra = timestamp + (struct.pack("<HHQ", 0x0001, 8, offset) if far else b"")
        central.append(b"PK\x01\x02" + struct.pack("<H", creator) + fields[:-2] + struct.pack("<H", len(extra))
                       + struct.pack("<HHHLL", 0, 0, internal, external, 0xFFFFFFFF if far else offset) + name + extra)
        offset += len(local) + len(data)
    directory = b"".join(central)
    comment = commit or b""
    entries_count, size = len(central), len(directory)
    trailer = b""
    if entries_count > 0xFFFF or size > 0xFFFFFFFF or offset > 0xFFFFFFFF:  # zip64's end records first
        trailer = (b"PK\x06\x06" + struct.pack("<QHHLLQQQQ", 44, 0, 45, 0, 0, entries_count, entries_count, size,
                                                offset)
                   + b"PK\x06\x07" + struct.pack("<LQL", 0, offset + size, 1))
    yield directory + trailer + b"PK\x05\x06" + struct.pack(
        "<HHHHLLH", 0, 0, min(entries_count, 0xFFFF), min(entries_count, 0xFFFF), min(size, 0xFFFFFFFF),
        min(offset, 0xFFFFFFFF), len(comment)) + comment


ZIP_DATA_DESCRIPTOR = 0x0008
"""A zip entry's flag: its CRC and sizes follow its data (a data descriptor), as git writes a
streamed file's."""
ZIP_DESCRIPTOR_SIZE = 16
"""``PK\\x07\\x08``, the CRC, the compressed and the real size."""
BINARY_GUESS_BYTES = 8000
"""The bytes of a file git looks for a NUL in to call it binary (the zip's "text" flag)."""


def _zip_stream_header(name: bytes, level: int | None, size: int, dos_time: int, dos_date: int,
                       timestamp: bytes) -> bytes:
    """The local header git writes before a streamed file: the data-descriptor flag, no CRC, the
    real size, and the compressed one only when stored (it is not known yet when deflated)."""
    method = 0 if level == 0 else 8
    fields = struct.pack("<HHHHHLLLHH", 10, _name_flags(name) | ZIP_DATA_DESCRIPTOR, method, dos_time, dos_date,
                         0, size if method == 0 else 0, size, len(name), len(timestamp))
    return b"PK\x03\x04" + fields + name + timestamp


class _ZipStreamed:
    """One file's data as git's zip streams a blob over ``core.bigFileThreshold``: read a piece
    at a time (``StoredBlob.chunked``), deflated as it goes whatever that saves (stored with
    ``-0``), then its data descriptor; its CRC, sizes and text flag kept for the directory."""

    def __init__(self) -> None:
        self.method = 8
        self.crc = 0
        self.size = 0
        self.written = 0
        self.internal = 1
        self._head = b""

    def write(self, blob: Blob | StoredBlob, level: int | None) -> Iterator[bytes]:
        self.method = 0 if level == 0 else 8
        deflate = zlib.compressobj(-1 if level is None else level, zlib.DEFLATED, -zlib.MAX_WBITS) \
            if self.method == 8 else None
        for piece in blob.chunked:
            self._see(piece)
            out = deflate.compress(piece) if deflate is not None else piece
            if out:
                self.written += len(out)
                yield out
        if deflate is not None:
            out = deflate.flush()
            self.written += len(out)
            yield out
        if self.size != blob.raw_length():
            raise ArchiveRefused("a file's blob changed while it was being archived")
        yield b"PK\x07\x08" + struct.pack("<LLL", self.crc, self.written, self.size)

    def _see(self, piece: bytes) -> None:
        self.crc = zlib.crc32(piece, self.crc) & 0xFFFFFFFF
        self.size += len(piece)
        if len(self._head) < BINARY_GUESS_BYTES:
            self._head += piece[:BINARY_GUESS_BYTES - len(self._head)]
            self.internal = 0 if b"\0" in self._head else 1


def _dos_time(mtime: int) -> tuple[int, int]:
    """An MS-DOS date and time, of the server's local time, as git computes them."""
    local = time.localtime(mtime)
    return (local.tm_mday + local.tm_mon * 32 + (local.tm_year - 1980) * 512,
            local.tm_sec // 2 + local.tm_min * 32 + local.tm_hour * 2048)


def _name_flags(name: bytes) -> int:
    """A zip entry's general purpose flags as git sets them: bit 11 (the name is UTF-8) for a name
    that is not ASCII and is valid UTF-8; none for one that is not (git warns and writes it as it is)."""
    if name.isascii():
        return 0
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return 0x0800
