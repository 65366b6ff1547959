"""Git repositories on dulwich: refs with compare-and-swap, pack ingest, connectivity.

The same class serves both backends; only the dulwich repository under it
differs (``Repo`` on disk, ``MemoryRepo`` in memory).
"""

from __future__ import annotations

import binascii
import bisect
import errno
import functools
import hashlib
import io
import itertools
import os
import re
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import BinaryIO, Literal, Self, TypeVar, cast

from dulwich.config import CaseInsensitiveOrderedMultiDict, ConditionMatcher, ConfigFile, match_glob_pattern
from dulwich.errors import ObjectFormatException, PackedRefsException, RefFormatError
from dulwich.file import FileLocked, GitFile, SharedPerm, _GitFile, adjust_shared_perm
from dulwich.object_store import BaseObjectStore, DiskObjectStore, MemoryObjectStore
from dulwich.objects import ZERO_SHA, Blob, Commit, ObjectID, ShaFile, Tree, valid_hexsha
from dulwich.pack import Pack, PackData, PackInflater, UnpackedObject
from dulwich.refs import (
    DiskRefsContainer,
    Ref,
    check_ref_format,
)
from dulwich.repo import BaseRepo, get_user_identity, parse_shared_repository

from backends import git_ingest, git_maintenance, git_pack, git_worktree
from backends.config_files import ConfigReads
from backends.git_dotfiles import (
    CanonicalConfig,
    ConfigSyntaxError,
    DotFiles,
    canonical_config,
    config_entries,
)
from backends.interfaces import (
    ATOMIC_FAILURE,
    FILTER_NAMES,
    HEX_ID_LENGTHS,
    MISSING_OBJECTS,
    FilterRules,
    HookLocation,
    Kind,
    ObjectFormat,
    ObjectId,
    PackedObject,
    PushCertSettings,
    ReceiveHooks,
    RefReport,
    RefResult,
    RefUpdate,
    UploadSettings,
    is_zero_id,
    object_format_of,
)
from backends.lfs import LfsStore
from backends.lru import LruCache, naming_under
from protocols import git_proc_receive
from protocols.client_gone import CHECK_EVERY, check
from protocols.errors import ProtocolError, StorageError, storage_advice
from protocols.git_reflines import RefLines, RefRun
from protocols.git_upload import parse_oid
from protocols.text import quoted

RefLock = Callable[[], AbstractContextManager[None]]
"""Takes the repository's ref-update lock for the duration of a ``with``."""

HEAD = Ref(b"HEAD")
HEADS_PREFIX = b"refs/heads/"
PACK_HEADER_SIZE = 12
DEFAULT_BRANCH = Ref(b"refs/heads/main")
MAX_LOCK_WAIT = 60.0
"""The longest a ref update waits for another process's lock (git's negative timeout: for ever)."""
PREFERRED_BRANCHES = (Ref(b"refs/heads/main"), Ref(b"refs/heads/master"))
KEEPALIVE_SECONDS = 5
"""git's default ``receive.keepAlive`` and ``uploadpack.keepAlive``."""
MAX_REF_LEVELS = 256
"""Levels (``/``) a pushed ref name may have: each is a directory of the loose ref's path, and
dulwich makes them recursively (2,000 levels were a ``RecursionError``, "internal error" to the
client); a file system's path limit stops git itself long before."""


class SpooledPackSink:
    """Collect a pushed pack for a memory store in a temporary file, then hand it to dulwich whole.

    Nothing is visible in the object store until ``commit``; ``commit`` completes
    a thin pack against the store and records the ids it added, so that the
    repository can check connectivity before any ref moves.
    """

    def __init__(self, repo: DulwichGitRepository, spool_dir: str | None) -> None:
        self._repo = repo
        self._file: BinaryIO = tempfile.TemporaryFile(dir=spool_dir, prefix="incoming-pack-")
        self._size = 0
        self.warnings: list[str] = []
        """After ``commit``: the checks' findings the repository lets through as warnings (git's words)."""

    def write(self, data: bytes, objects: Sequence[PackedObject] | None = None) -> None:
        with _invalid_pack():  # a full spool directory
            self._file.write(data)
        self._size += len(data)

    def commit(self) -> None:
        try:
            self._file.seek(0)
            header = self._file.read(PACK_HEADER_SIZE)
            if self._size == 0:
                return
            if len(header) < PACK_HEADER_SIZE or header[:4] != b"PACK":
                raise ProtocolError("the pushed data is not a git pack")
            if int.from_bytes(header[8:12], "big") == 0:
                return
            self._file.seek(0)
            self.warnings = self._repo._ingest(self._file)
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()


class DiskPackSink:
    """A pushed pack written and indexed straight into a quarantine of a disk store
    (``git_ingest.Quarantine``, ``git_ingest.PackIngest``): the repository moves it into the store
    once the push is accepted, and drops it otherwise."""

    def __init__(self, repo: DulwichGitRepository, store: DiskObjectStore) -> None:
        self._repo = repo
        rules = repo.fsck_rules()
        with _invalid_pack():  # a read-only or full disk
            self._quarantine: git_ingest.Quarantine | None = git_ingest.Quarantine(store)
        try:
            with _invalid_pack():
                self._ingest = git_ingest.PackIngest(store, repo._links, self._quarantine, rules,
                                                     repo.thin_base_level(), repo._store_lookups(store))
        except BaseException:
            self._quarantine.drop()
            raise

    def write(self, data: bytes, objects: Sequence[PackedObject] | None = None) -> None:
        with _invalid_pack(self._quarantine):
            self._ingest.write(data, objects)

    def commit(self) -> None:
        quarantine, self._quarantine = self._quarantine, None
        assert quarantine is not None, "a pack sink commits once"
        try:
            with _invalid_pack(quarantine):
                pack = self._ingest.commit()
        except BaseException:
            quarantine.drop()
            self._repo._close_lookups()
            raise
        finally:
            self._ingest.abort()
        if pack is None:  # an empty pack (a new branch at a commit the store has): as git's receive-pack,
            self._repo._waiting(quarantine)  # pre-receive still gets its quarantine, empty, removed after
            return
        try:
            with _invalid_pack(quarantine):  # its files gone meanwhile (a `git prune` of a quarantine it took for stale)
                self._repo._landed(pack, quarantine)
        except BaseException:
            pack.close()
            quarantine.drop()
            raise

    @property
    def warnings(self) -> list[str]:
        """After ``commit``: the checks' findings the repository lets through as warnings (git's words)."""
        return self._ingest.warnings.shown()

    def abort(self) -> None:
        self._ingest.abort()
        quarantine, self._quarantine = self._quarantine, None
        if quarantine is not None:
            quarantine.drop()
        self._repo._close_lookups()


def _naming(exc: OSError, path: bytes | None) -> OSError:
    """``exc``, or (when it names no file: a write to a file already open) the same error naming
    ``path``, raised from it."""
    if exc.filename or path is None or exc.errno is None:
        return exc
    named = OSError(exc.errno, exc.strerror or os.strerror(exc.errno), os.fsdecode(path))
    named.__cause__ = exc
    return named


def _lock_files(refs: object, ref: Ref) -> list[bytes]:
    """The lock files dulwich makes to change ``ref`` of a disk refs container (its own, and
    ``packed-refs.lock``); none for another container."""
    refpath = getattr(refs, "refpath", None)
    path = getattr(refs, "path", None)
    if refpath is None or not isinstance(path, bytes):
        return []
    return [refpath(ref) + b".lock", os.path.join(path, b"packed-refs.lock")]


def _clear_way(refs: object, ref: Ref) -> str | None:
    """Make way for ``ref``'s file as git's refs code does before it writes one: a directory there,
    left by refs another tool deleted (git removes the directories it empties; an ``rm``, JGit or
    libgit2 may not), is removed when it holds nothing but empty directories.  None once nothing
    is in the way; git's reason when the directory holds anything else."""
    refpath = getattr(refs, "refpath", None)
    if refpath is None:
        return None
    path = refpath(ref)
    if os.path.islink(path) or not os.path.isdir(path):
        return None
    for directory, _dirs, _files in os.walk(path, topdown=False):
        try:
            os.rmdir(directory)
        except OSError:  # a file, a link or a directory not empty: git's refusal
            name = ref.decode("utf-8", "replace")
            return f"there is a non-empty directory '{name}' blocking reference '{name}'"
    return None


_T = TypeVar("_T")


_LOCK_FAILS_ALL = frozenset({errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})
"""Why a ref's lock file cannot be made that no wait cures (a name longer than the file system
takes, a directory the server may not write, a read-only or full disk): an atomic push then fails
whole, as git's ref transaction does, where its other refs were written one by one."""


class _LooseLocks:
    """Refs' own lock files (``refs/heads/NAME.lock``) taken without waiting, as git's refs code
    takes them (``O_EXCL``: a ``git update-ref``, git's receive-pack or another push holding one is
    left to its ref's usual update), with the directories they needed; all let go on leaving,
    the directories made for them removed again (git leaves no empty directory for a ref it did
    not write as a loose file)."""

    def __init__(self, root: bytes) -> None:
        self._root = os.path.normpath(root)
        self._locks: list[bytes] = []
        self._made: list[bytes] = []

    def __enter__(self) -> Self:
        return self

    def take(self, loose: bytes, strict: bool = False) -> bool:
        """Whether ``loose``'s lock is now held (not: held by another, or no place for it);
        ``strict``: an ``OSError`` no wait cures (``_LOCK_FAILS_ALL``) is raised, not False."""
        lock = loose + b".lock"
        for _ in range(2):
            try:
                os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileNotFoundError:
                if not self._make_parents(os.path.dirname(lock)):
                    return False
                continue
            except OSError as exc:  # held (EEXIST), a file where a directory goes …
                if strict and exc.errno in _LOCK_FAILS_ALL:
                    raise  # no lock of that name can ever be taken there: the transaction fails
                return False
            self._locks.append(lock)
            return True
        return False

    def committed(self, loose: bytes) -> None:
        """``loose``'s lock was renamed into place (the ref written): not to be removed on leaving,
        where another process may hold it by then."""
        self._locks.remove(loose + b".lock")

    def _make_parents(self, directory: bytes) -> bool:
        missing: list[bytes] = []
        while not os.path.lexists(directory) and os.path.normpath(directory) != self._root:
            missing.append(directory)
            directory = os.path.dirname(directory)
        for made in reversed(missing):
            try:
                os.mkdir(made)
            except FileExistsError:
                continue
            except OSError:
                return False
            self._made.append(made)
        return bool(missing)

    def __exit__(self, *exc: object) -> None:
        for lock in self._locks:
            with suppress(OSError):
                os.unlink(lock)
        for made in reversed(self._made):
            with suppress(OSError):  # (not empty: another process's ref is there now)
                os.rmdir(made)


class _NamingInflater(PackInflater):
    """dulwich's ``PackInflater``, but a tree its parser refuses ("SHA truncated") is git's
    ``badTree``, named, as ``git_ingest.check_tree`` refuses it on disk: dulwich parses each object
    as it makes it, before the memory store's push is checked."""

    def _result(self, unpacked: UnpackedObject) -> ShaFile:
        try:
            return super()._result(unpacked)
        except git_ingest.FsckError:
            raise
        except ObjectFormatException as exc:
            if unpacked.obj_type_num != Tree.type_num:
                raise
            oid = binascii.hexlify(unpacked.sha())
            raise git_ingest.FsckError("badTree", git_ingest.UNPARSABLE_TREE, oid) from exc


@contextmanager
def _invalid_pack(quarantine: git_ingest.Quarantine | None = None) -> Iterator[None]:
    """dulwich's and the checks' errors as one ``ProtocolError``: the client reads it in ``unpack``.
    ``quarantine``: the push's, whose removal meanwhile is told as such."""
    try:
        yield
    except ProtocolError:
        raise
    except OSError as exc:  # the server's disk, not the pack: a full disk, a quota, an I/O error
        if quarantine is not None and _quarantine_removed(exc, [quarantine]):
            raise ProtocolError(QUARANTINE_REMOVED) from exc
        raise ProtocolError(f"the server could not store the pushed pack ({exc.strerror or exc}); "
                            f"nothing was changed, {storage_advice(exc)}") from exc
    except Exception as exc:  # dulwich raises a variety of ad-hoc errors on corrupt input
        raise ProtocolError(f"the pushed pack is invalid: {exc}") from exc


def _quarantine_removed(exc: OSError, quarantines: Sequence[git_ingest.Quarantine]) -> bool:
    """Whether ``exc`` is a file not found because one of a push's ``quarantines`` was removed
    under it (``QUARANTINE_REMOVED``)."""
    return isinstance(exc, FileNotFoundError) and any(not os.path.isdir(q.path) for q in quarantines)


MAX_SYMREF_DEPTH = 5
"""Symbolic refs followed before giving up on a chain (dulwich's ``SymrefLoop`` depth)."""
MAX_GRAFT_VERDICTS = 1024
"""Repositories' ``info/grafts`` files whose cut commits (``_graft_cuts``) are kept."""
_graft_verdicts: dict[tuple[str, int, int, int, int], tuple[bytes, ...]] = {}
_graft_verdicts_guard = threading.Lock()

MAX_GRAFTS_FILE = 16 << 20
"""What of a repository's ``info/grafts`` is read (a line a commit: some 300,000 of them)."""
_GRAFT_BLANK = re.compile(rb"[ \t\r]")
"""What parts the ids of a graft line (git's ``isspace``; a line ends at its newline)."""


class DiskRefs:
    """Every ref of a repository on disk, read in one pass: each loose ref file once, packed-refs
    once (``_packed_refs``), answering as dulwich's ``DiskRefsContainer`` does.

    dulwich looks every name up on its own, trying its loose file and checking packed-refs' stamp
    each time: 24 µs a ref, half a second for a repository of 20,000 tags, at every fetch.  Loose
    refs are the files under ``refs/`` whose names pass ``check_ref_format`` (as dulwich lists
    them) and ``HEAD``; a loose file's first line (``ref: <name>`` or an object id) wins over
    packed-refs unless it is empty, and is read as a loose ref only for names dulwich reads loose
    (``HEAD``, ``refs/stash``, valid names under ``refs/`` with a ``/`` after it).  A ref that is a
    symbolic link to ``refs/…`` reads as a symbolic ref (``symlink_ref``), and is listed only as
    ``HEAD``, as by git (dulwich read the file it leads to, and listed it).
    """

    def __init__(self, container: DiskRefsContainer, held: HeldPacked | None = None) -> None:
        path = container.path
        self.loose: dict[bytes, bytes] = {}
        head = _loose_ref(os.path.join(path, b"HEAD"))
        if head is not None:
            self.loose[b"HEAD"] = head
        self.unreadable: set[bytes] = set()
        """Listed loose names dulwich does not read as loose files (``refs/<one component>``)."""
        self.broken: set[bytes] = set()
        """Loose refs whose file holds neither an object id nor ``ref: <name>`` (an empty file, a
        damaged one): git reads them as broken, not as the packed value they hide, and so does this."""
        for count, (name, filename) in enumerate(_loose_files(os.path.join(path, b"refs"), b"refs", []), 1):
            if not count % CHECK_EVERY:  # (a worker watched for its client: 100,000 loose tags were all
                check("the ref advertisement")  # read for a client that had gone)
            if ref_format_ok(name):  # what dulwich lists
                line = _loose_ref(filename)
                if line is not None:
                    self.loose[name] = line
                    if b"/" not in name[5:] and name != b"refs/stash":  # its _check_refname: the rest
                        self.unreadable.add(name)
                    elif loose_ref_damage(line) is not None:
                        self.broken.add(name)
        self.packed_file = _packed_file(container, held)
        self.packed_path = os.path.join(path, b"packed-refs")
        self.packed = self.packed_file.refs

    def read(self, name: bytes) -> bytes | None:
        """A ref's content without following it (dulwich's ``read_ref``); None for a broken one."""
        if name in self.broken:
            return None
        found = self.loose.get(name)
        return (found if found and name not in self.unreadable else None) or self.packed.get(Ref(name))

    def resolved(self) -> dict[bytes, bytes]:
        """Every ref and the id it resolves to, as ``as_dict``: symbolic refs followed up to
        ``MAX_SYMREF_DEPTH``; a loop, a longer chain or a dangling one is left out."""
        result: dict[bytes, bytes] = dict(cast(Mapping[bytes, bytes], self.packed))  # ids: git packs no symref
        for key in self.loose:
            content: bytes | None = _SYMREF + key
            for _ in range(MAX_SYMREF_DEPTH + 1):
                if not content or not content.startswith(_SYMREF):
                    break
                content = self.read(content[len(_SYMREF):])
            else:
                content = None  # a loop, or a chain longer than dulwich follows
            if content:
                result[key] = content
            else:
                result.pop(key, None)
        return result

    def ids(self) -> dict[bytes, ObjectId]:
        """``resolved()`` less the refs that resolve to no object id (``_ids``): only loose ones can,
        packed-refs' ids being checked as it is parsed (a call a ref was 15 ms of 100,000 tags)."""
        result = self.resolved()
        for key in self.loose:
            if key in result and len(result[key]) not in HEX_ID_LENGTHS:
                del result[key]
        return cast(dict[bytes, ObjectId], result)

    def symbolic(self) -> dict[bytes, bytes]:
        """Every symbolic ref and its target (git never packs one: only loose ones are read)."""
        found = {}
        for name in self.loose:
            if name not in self.packed:
                target = _symref_target(self.read(name))
                if target is not None:
                    found[name] = target
        return found


def disk_refs(container: object, held: HeldPacked | None = None) -> DiskRefs | None:
    """``DiskRefs`` of a repository on disk; None for another container or a linked worktree (its
    refs live in two places): dulwich answers then.  ``held``: ``_packed_file``'s."""
    if not _plain_disk_refs(container):
        return None
    return DiskRefs(cast(DiskRefsContainer, container), held)


def _plain_disk_refs(container: object) -> bool:
    """Whether ``container`` is the refs of a repository on disk that is not a linked worktree."""
    return isinstance(container, DiskRefsContainer) and container.worktree_path == container.path


MAX_PACKED_REFS_KEPT = 1_200_000
"""Packed refs kept parsed, over all repositories, by default (``_packed_cost``: about ``PACKED_REF_BYTES``
each, measured with tracemalloc: 300 MB at most, held only while repositories that large are
served; ``[limits] git_kept_refs_bytes`` sets it, ``keep_packed_refs_within``); a file of more
than a quarter of that is parsed at each request (with its encoded lines,
a mirror of some 108,000 annotated tags).  A mirror of 100,000 annotated tags counts 175,000 parsed
(40 MB), 277,000 with the lines of both protocols (``_ref_lines``); its parse costs 0.1 s (dulwich's,
with its checks of each name, 0.37 s).  (400,000 before, 60 MB said, 100 MB held: such a mirror was
parsed at every request.)"""
PACKED_REF_BYTES = 250
"""What a unit of ``_packed_cost`` holds (a ref's name and id in a dict, half a peeled value's)."""
NAME_BYTES_IN_A_UNIT = 64
"""The bytes of a ref's name a unit of ``_packed_cost`` covers; the rest of its name is counted at
``PACKED_REF_BYTES`` a unit.  (A name may be 4 KB: 300,000 refs of such names, each a tag, held
2.4 GB counted as 75 MB, and the budget held several such repositories.)"""
RUN_MIN_REFS = 512
"""Packed refs from which an advertisement is spliced from their encoded lines (``ref_run``)."""


@dataclass(frozen=True, slots=True)
class PackedRefs:
    """One version of a repository's ``packed-refs`` file: its refs, and what the file says their
    objects peel to."""

    refs: Mapping[Ref, ObjectID]
    peeled: Mapping[bytes, ObjectId]
    """Object id -> the object its annotated tags finally name (itself for an object the file
    says is no annotated tag), for the refs whose peeled value the file records.  git writes a
    ``^<id>`` line after each annotated tag it packs; ``fully-peeled`` in the file's first line
    says every other packed ref is no annotated tag.  (A file whose first line says only
    ``peeled`` vouches for its ``^`` lines alone here: dulwich writes that line when it rewrites
    a file that had none.)  What an id peels to depends on the object alone, so a loose ref that
    overrides a packed one changes nothing here."""
    tags: Mapping[bytes, ObjectId] = field(default_factory=dict)
    """Ref name -> what it peels to, for the refs the file gives a ``^`` line (its annotated tags)."""
    fully: bool = False
    """The file says ``fully-peeled``: a packed ref outside ``tags`` is no annotated tag."""
    lines: list[RefLines] = field(default_factory=list)
    """Its refs' advertisement lines (``_ref_lines``), once made for a kept file."""
    long_names: int = 0
    """The bytes its ref names hold past ``NAME_BYTES_IN_A_UNIT`` each (``refs``' and ``tags``'), over
    all of them: what a unit of ``_packed_cost`` does not cover."""
    completed: list[Mapping[bytes, ObjectId]] = field(default_factory=list)
    """For a kept file that does not say ``fully-peeled`` (an old git's, another tool's): what every
    annotated tag among its refs peels to, by name, its ``^`` lines and the objects of its other refs
    read once (``_completed_tags``), once made: its advertisements are then spliced as a fully-peeled
    file's (each peeled every ref again, a mirror of 100,000 tags with no ``^`` line reading every
    tag: 1.8-2.0 s of server CPU a ``git ls-remote``, git's upload-pack 0.3)."""
    damaged: tuple[bytes, ...] = ()
    """The names of its lines left out as no valid ref name (``_dulwich_packed``), for the operator."""


_NO_PACKED_REFS = PackedRefs({}, {})


def _packed_cost(kept: tuple[tuple[int, int, int, int], PackedRefs]) -> int:
    """What a parsed file counts against ``MAX_PACKED_REFS_KEPT``: a ref each, half one a peeled
    value, a quarter one a tag's peeled value by name, half one an entry of its ``completed`` (when
    it is not ``tags`` itself: 126 bytes an entry, measured with tracemalloc), and its encoded lines
    and the bytes of its long names (``PackedRefs.long_names``) at ``PACKED_REF_BYTES``."""
    packed = kept[1]
    lines = packed.lines[0].size if packed.lines else 0
    completed = len(packed.completed[0]) // 2 if packed.completed and packed.completed[0] is not packed.tags else 0
    return (len(packed.refs) + len(packed.peeled) // 2 + len(packed.tags) // 4 + completed
            + (lines + packed.long_names) // PACKED_REF_BYTES + 1)


_PACKED_REFS: LruCache[bytes, tuple[tuple[int, int, int, int], PackedRefs]] = LruCache(
    MAX_PACKED_REFS_KEPT, _packed_cost)

KEPT_REFS_BYTES = MAX_PACKED_REFS_KEPT * PACKED_REF_BYTES
"""``[limits] git_kept_refs_bytes``'s default: what the packed refs kept parsed may hold (300 MB)."""


def keep_packed_refs_within(budget: int) -> None:
    """Bound the packed refs kept parsed between requests (``_PACKED_REFS``) to ``budget`` bytes,
    at ``PACKED_REF_BYTES`` a unit of ``_packed_cost``, at once: a lowered one lets go of the
    least recently used now; a file over a quarter of it is parsed by each request; 0 keeps none."""
    _PACKED_REFS.resize(budget // PACKED_REF_BYTES)


def packed_refs_kept() -> tuple[int, int]:
    """The ``packed-refs`` files kept parsed now, and about what they hold in bytes (``/.metrics``)."""
    return len(_PACKED_REFS.values()), _PACKED_REFS.held * PACKED_REF_BYTES


def forget_kept(path: str) -> int:
    """Let go of what the process keeps parsed of the git repository that was at ``path``, found
    gone (removed or renamed: an open of it failed): its ``packed-refs``, its packs' index views,
    its multi-pack index's layout and its bitmaps, which were held until newer ones pushed them out.
    (No pack or index stays open or mapped between requests.)  How many values went."""
    from backends import git_fastpack, git_midx, git_packindex

    match = naming_under(path)
    return (_PACKED_REFS.drop_where(match) + git_packindex.forget_views(match) + git_midx.forget_layouts(match)
            + git_fastpack.forget_bitmaps(match))


def _ref_lines(path: bytes, packed: PackedRefs, tags: Mapping[bytes, ObjectId]) -> RefLines:
    """The encoded advertisement lines of ``packed``, the parse of the file ``path`` kept in
    ``_PACKED_REFS``, whose annotated tags peel as ``tags`` says (``_whole_tags``): each form kept
    with it while it stays within a quarter of the budget, and counted against it (``_packed_cost``)."""
    with _LINES_LOCK:
        if not packed.lines:
            def may_keep(size: int) -> bool:
                kept = _PACKED_REFS.get(path)
                return (kept is not None and kept[1] is packed
                        and _packed_cost(kept) + size // PACKED_REF_BYTES + 1 <= _PACKED_REFS.budget // 4)

            def counted() -> None:
                kept = _PACKED_REFS.get(path)
                if kept is not None and kept[1] is packed:
                    _PACKED_REFS.put(path, kept)

            refs = cast(Mapping[bytes, ObjectId], packed.refs)
            packed.lines.append(RefLines(sorted(refs), refs, tags, may_keep, counted))
        return packed.lines[0]


_LINES_LOCK = threading.Lock()
_COMPLETING_LOCK = threading.Lock()
"""Held while a kept file's ``completed`` is made (one reading of its objects at a time)."""


def _completed_tags(packed: PackedRefs, store: BaseObjectStore) -> Mapping[bytes, ObjectId]:
    """What every annotated tag among ``packed``'s refs peels to, by name: its ``^`` lines' values
    and, for each other ref, what its object peels to (``git_pack.peel``: a pack entry's header
    says it is no tag, a tag is read), as an advertisement peels it; ``packed.tags`` itself when
    the file records them all (an old git's ``peeled`` file of consistent lines)."""
    found: dict[bytes, ObjectId] = {}
    unknown: list[tuple[bytes, ObjectId]] = []
    for count, (name, sha) in enumerate(packed.refs.items(), 1):
        if not count % CHECK_EVERY:
            check("the ref advertisement")
        if name in packed.tags:
            continue
        oid = ObjectId(sha)
        target = packed.peeled.get(oid)
        if target is None:
            unknown.append((name, oid))
        elif target != oid:
            found[name] = target
    if unknown:  # (``git_pack.peel_many``: each index read in a pass, each tag's first line alone)
        types = git_pack._stored_types(store)
        try:
            targets = git_pack.peel_many(store, [oid for _, oid in unknown], types)
        finally:
            if types is not None:
                types.close()
        found.update((name, targets[oid]) for name, oid in unknown if targets[oid] != oid)
    return {**packed.tags, **found} if found else packed.tags


HeldPacked = dict[bytes, tuple[tuple[int, int, int, int], PackedRefs]]
"""The last ``packed-refs`` a repository object parsed, by path, held for its request alone (the
object is opened for one and let go after it; a git session's, kept between the commands of a
connection, lets go after each command's read of the refs: ``forget_refs_read``): a file too big for ``_PACKED_REFS`` is parsed
once a request, not once for the refs and again for their peeled values (0.35 s each for a
mirror's 100,000 tags)."""


def _packed_refs(container: DiskRefsContainer, held: HeldPacked | None = None) -> Mapping[Ref, ObjectID]:
    """The repository's packed refs (``_packed_file``)."""
    return _packed_file(container, held).refs


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _packed_file(container: DiskRefsContainer, held: HeldPacked | None = None) -> PackedRefs:
    """The repository's ``packed-refs``, parsed once per version of the file (size, mtime, inode,
    ctime; git replaces it by a rename whenever it changes) and shared by every request.  The file
    is read through one descriptor, so that its stamp, first line and refs are of one version.
    ``held`` (a request's ``HeldPacked``) keeps the last parse for the rest of the request too,
    for a file too big to keep for all of them."""
    path = os.path.join(container.path, b"packed-refs")
    try:
        stamp = _stamp(os.stat(path))
    except FileNotFoundError:
        return _NO_PACKED_REFS
    kept = _PACKED_REFS.get(path)
    if kept is None and held is not None:
        kept = held.get(path)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    try:
        with open(path, "rb") as f:
            stamp = _stamp(os.fstat(f.fileno()))
            data = f.read()
    except FileNotFoundError:
        return _NO_PACKED_REFS
    parsed = _parse_packed_refs(data)
    _PACKED_REFS.put(path, (stamp, parsed))
    if held is not None:
        held.clear()  # one version of one file: the request's repository
        held[path] = (stamp, parsed)
    return parsed


def _parse_packed_refs(data: bytes) -> PackedRefs:
    """A ``packed-refs`` file's refs and peeled values (``PackedRefs``): ``_plain_packed``'s for a
    file as git writes it, else dulwich's parser and checks (whose refusal names what is wrong)."""
    check("the ref advertisement")
    parsed = _plain_packed(data)
    if parsed is None:
        parsed = _dulwich_packed(data)
    names = len(parsed.refs) + len(parsed.tags)
    held = sum(map(len, parsed.refs)) + sum(map(len, parsed.tags))  # (C-level: 3 ms for 100,000 tags)
    if held > NAME_BYTES_IN_A_UNIT * names:
        parsed = replace(parsed, long_names=held - NAME_BYTES_IN_A_UNIT * names)
    return parsed


def _dulwich_packed(data: bytes) -> PackedRefs:
    """``data`` parsed line by line (``_read_packed``), refusing what git's upload-pack refuses (a
    line that is no ``<id> <name>``, an id that is no hex, a ``^`` line after no ref's), naming what
    is wrong.  A ref whose name is no valid ref name (``refs/heads/a..b``, ``refs/heads/a b``, a
    name without a ``/``) is left out with its ``^`` line, and named in ``damaged`` for the operator,
    where git's upload-pack lists it with the zero id (a clone says "Ignoring funny ref"); hgwire
    refused the whole advertisement.  ``^`` lines count in a file whose first line does not say
    ``peeled`` (git writes none such, but reads it)."""
    traits, entries = _read_packed(_watched_lines(data))
    refs: dict[Ref, ObjectID] = {}
    peeled: dict[bytes, ObjectId] = {}
    tags: dict[bytes, ObjectId] = {}
    damaged: dict[bytes, None] = {}
    fully = b"fully-peeled" in traits
    for sha, name, target in entries:
        if not ref_format_ok(name):
            damaged[name] = None
            continue
        refs[Ref(name)] = ObjectID(sha)
        if target is not None:
            peeled[sha] = tags[name] = ObjectId(target)
        else:
            tags.pop(name, None)
            if fully:
                peeled.setdefault(sha, ObjectId(sha))
    return PackedRefs(refs, peeled, tags, fully, damaged=tuple(damaged))


def _read_packed(lines: Iterable[bytes]) -> tuple[list[bytes], list[tuple[bytes, bytes, bytes | None]]]:
    """The traits of a ``packed-refs`` file's first line and its refs, in file order: (id, name,
    what its ``^`` line says or None), whatever the name (``ref_format_ok`` is the caller's).  A line
    ends at its newline, a CR before it dropped; comment lines are passed over.  Raises dulwich's
    ``PackedRefsException`` for a line that is no ``<id> <name>``, an id that is no hex, or a ``^``
    line that follows no ref's line."""
    traits: list[bytes] = []
    entries: list[tuple[bytes, bytes, bytes | None]] = []
    last: tuple[bytes, bytes] | None = None
    for number, raw in enumerate(lines):
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"#"):
            if not number:
                traits = _packed_traits(line)
            continue
        if line.startswith(b"^"):
            if last is None:
                raise PackedRefsException("unexpected peeled ref line")
            if not valid_hexsha(line[1:]):
                raise PackedRefsException(f"Invalid hex sha {line[1:]!r}")
            entries[-1] = (*last, line[1:])
            last = None
            continue
        sha, space, name = line.partition(b" ")
        if not space or not name:
            raise PackedRefsException(f"invalid ref line {line!r}")
        if not valid_hexsha(sha):
            raise PackedRefsException(f"Invalid hex sha {sha!r}")
        last = (sha, name)
        entries.append((sha, name, None))
    return traits, entries


_NAME_TRAPS = (b"..", b"@{", b"/.", b"\n.", b".lock/", b".lock\n", b".\n", b"/\n", b"//")
"""What no valid ref name holds, in ``_plain_packed``'s names between newlines (``ref_format_ok``'s
rules but its bytes and its ``/``: two dots, ``@{``, a part beginning with a dot or ending with
``.lock``, a name ending with a dot or a slash, an empty part)."""


def _plain_packed(data: bytes) -> PackedRefs | None:
    """``data`` parsed as dulwich parses a ``packed-refs`` file, with its checks (hex ids, names
    ``ref_format_ok`` takes, a ``^`` line only after a ref's), made over the whole file by a few
    C-level passes instead of a Python loop a line (dulwich's parse of a mirror's 100,000 annotated
    tags took 0.37 s, this about 0.06); None for a file of any other shape (comments but its first
    line, CRs, a last line without its newline, ids of two lengths, a name outside ``refs/``, or
    anything dulwich refuses), which dulwich parses, refusing it in its words."""
    if data.startswith(b"#"):
        first, _, body = data.partition(b"\n")
        traits = _packed_traits(first)
    else:
        body, traits = data, []
    if not body:
        return PackedRefs({}, {}, {}, b"fully-peeled" in traits)
    if body[-1:] != b"\n" or body[:1] in (b"^", b"#") or b"\r" in body or b"\n#" in body:
        return None
    lines = body.split(b"\n")
    del lines[-1]
    hex_len = lines[0].find(b" ")
    if hex_len not in (40, 64):
        return None
    refs_at = [line for line in lines if line[:1] != b"^"]
    carets = [i for i, line in enumerate(lines) if line[:1] == b"^"]
    # (``^`` lines count in a file whose first line does not say ``peeled``, as ``_dulwich_packed``
    # and git read them: such a mirror's 100,000 tags went through the loop a line, 0.35 s)
    peeled_file = bool(carets) or b"peeled" in traits or b"fully-peeled" in traits
    shas = [line[:hex_len] for line in refs_at]
    names = [line[hex_len + 1:] for line in refs_at]
    targets = [lines[i][1:] for i in carets]
    joined, blob = b"".join(shas), b"\n".join(names)
    if (len(joined) != hex_len * len(shas) or not {*map(len, targets)} <= {hex_len}
            or body.count(b" ") != len(shas) or any(lines[i - 1][:1] == b"^" for i in carets)):
        return None  # an id of another length, a line of no or two spaces, two peeled lines in a row
    try:
        binascii.unhexlify(joined)
        binascii.unhexlify(b"".join(targets))
    except (binascii.Error, ValueError):
        return None
    named = b"\n" + blob + b"\n"
    if (len(blob) - len(blob.translate(None, _BAD_REF_BYTES)) != len(names) - 1
            or named.count(b"\nrefs/") != len(names) or any(trap in named for trap in _NAME_TRAPS)):
        return None
    refs = cast(dict[Ref, ObjectID], dict(zip(names, shas)))
    if len(refs) != len(names):
        return None  # a name twice (dulwich's parse: its last line counts)
    if not peeled_file:
        return PackedRefs(refs, {})
    tagged = [lines[i - 1][:hex_len] for i in carets]
    fully = b"fully-peeled" in traits
    peeled: dict[bytes, ObjectId] = cast(dict[bytes, ObjectId], dict(zip(shas, shas))) if fully else {}
    peeled.update(cast(dict[bytes, ObjectId], dict(zip(tagged, targets))))  # (a tag's id: its object, in any order)
    tags = dict(zip([lines[i - 1][hex_len + 1:] for i in carets], targets))
    return PackedRefs(refs, peeled, cast(dict[bytes, ObjectId], tags), fully)


def _watched_lines(data: bytes) -> Iterator[bytes]:
    """The lines of ``data``, read in a worker watched for its client (``protocols.client_gone``):
    one look every ``CHECK_EVERY`` lines, which stops the parse once it has gone (a mirror's
    100,000 tags take 0.35 s).  The look is the only Python call of a run of lines."""
    stream = io.BytesIO(data)
    looks = 0

    def run() -> list[bytes]:
        nonlocal looks
        if looks:
            check("the ref advertisement")
        looks += 1
        return list(itertools.islice(stream, CHECK_EVERY))

    return itertools.chain.from_iterable(iter(run, []))


@dataclass
class _CheckMemo:
    """What one ``update_refs``'s checks found, shared by its refs (a migration's thousands of tags
    and branches mostly name objects another ref names too, and look them up in the same packs)."""

    connected: set[bytes] = field(default_factory=set)
    """Tips everything below which is there."""
    commits: dict[bytes, bool] = field(default_factory=dict)
    """Whether an object is a commit."""
    presence: git_ingest.StorePresence | None = None


PACKED_CREATIONS_MIN = 64
"""Refs one push creates from which they are written into ``packed-refs`` together
(``DulwichGitRepository._create_packed``), not each into a file of its own."""
PACKED_DELETIONS_MIN = 2
"""Packed refs one push deletes from which they leave ``packed-refs`` together
(``DulwichGitRepository._delete_packed``), not each in a rewrite of the whole file."""
PACKED_HEADER = b"# pack-refs with:"
PACKED_TRAITS = (b"peeled", b"fully-peeled")


def _packed_traits(first_line: bytes) -> list[bytes]:
    """The traits a ``packed-refs`` file's first line names (``# pack-refs with: peeled …``)."""
    first = first_line.rstrip()
    return first[len(PACKED_HEADER):].split() if first.startswith(PACKED_HEADER) else []


PackedLines = dict[bytes, tuple[bytes, bytes | None]]
"""A ``packed-refs`` file's refs as it writes them: name -> id and what it peels to (None: no line)."""


def _packed_lines(data: bytes | None) -> tuple[list[bytes], PackedLines]:
    """The peel traits of the ``packed-refs`` file ``data`` (None: there is none; a new file has
    ``peeled fully-peeled``, as git's pack-refs writes) and its refs, for ``_packed_text``.  Raises
    dulwich's ``PackedRefsException`` for a file it cannot read."""
    if data is None:
        return list(PACKED_TRAITS), {}
    had, entries = _read_packed(io.BytesIO(data))
    # (every line kept, a name git calls broken too: git's receive-pack rewrote such a ref with the zero id)
    lines: PackedLines = {name: (sha, target) for sha, name, target in entries}
    return [trait for trait in PACKED_TRAITS if trait in had], lines


def _packed_text(traits: list[bytes], lines: PackedLines) -> bytes:
    """A ``packed-refs`` file of these refs, sorted as git sorts them (so it says ``sorted`` too);
    the traits stay true when every ref added to a file's own lines has its peeled value."""
    out = [PACKED_HEADER + b" " + b" ".join([*traits, b"sorted"]) + b" \n"]
    for name in sorted(lines):
        oid, peeled = lines[name]
        out.append(oid + b" " + name + b"\n")
        if peeled is not None:
            out.append(b"^" + peeled + b"\n")
    return b"".join(out)


def _fully_peeled(store: BaseObjectStore, traits: list[bytes], lines: PackedLines) -> tuple[list[bytes], PackedLines]:
    """``traits`` and ``lines`` of a ``packed-refs`` file hgwire rewrites, made ``peeled
    fully-peeled`` when they are not: what each ref peels to is read from its object and written as
    its ``^`` line (none for an object that is no tag, is missing or cannot be read), as git's
    pack-refs and receive-pack write every ref of a file they rewrite.  A file without those traits
    had every later read of it take the slow path (each packed ref's object peeled again: 0.9 s of
    server CPU for a mirror of 100,000 refs) where it had been written whole by hgwire."""
    if all(trait in traits for trait in PACKED_TRAITS):
        return traits, lines
    oids = [ObjectId(oid) for oid, _peeled in lines.values()]
    types = git_pack._stored_types(store)
    try:
        targets = git_pack.peel_many(store, oids, types) if oids else {}
    except (ProtocolError, ValueError):  # (a tag chain past git's bound, an id that is not hex: as it was)
        return traits, lines
    finally:
        if types is not None:
            types.close()
    peeled: PackedLines = {}
    for name, (oid, _old) in lines.items():
        target = targets[ObjectId(oid)]
        peeled[name] = (oid, None if target == oid else bytes(target))
    return list(PACKED_TRAITS), peeled


def _loose_files(directory: bytes, prefix: bytes, found: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Add (ref name, file name) of the files below ``directory`` to ``found``, as git lists loose
    refs: a symbolic link is not listed, to a file or a directory (git reads a linked ref by name
    only: ``symlink_ref``), without ``os.walk``'s costs (nor a generator's per level: a third of
    the time for 5,000 refs in 5,000 directories)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return found
    for entry in entries:
        try:
            if entry.is_symlink():
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        name = prefix + b"/" + entry.name
        if is_dir:
            _loose_files(entry.path, name, found)
        else:
            found.append((name, entry.path))
    return found


_BAD_REF_BYTES = bytes(range(0x20)) + b"\177 ~^:?*[\\"


def ref_format_ok(name: bytes) -> bool:
    """dulwich's ``check_ref_format`` (git-check-ref-format's rules), with C-level byte tests instead
    of its loop over each character: 1 µs instead of 12 for a name of 20 bytes."""
    if name == b"@" or b"/" not in name or b".." in name or b"@{" in name or name[-1:] in (b"/", b"."):
        return False
    if len(name.translate(None, _BAD_REF_BYTES)) != len(name):
        return False
    return all(part and not part.startswith(b".") and not part.endswith(b".lock") for part in name.split(b"/"))


def _one_level_name(name: bytes) -> bool:
    """A name without a ``/`` (``stash``, ``onelevel``) that git's ``packed-refs`` reader takes as a
    valid name all the same: its pack-refs writes it back with its id, where it writes a name no rule
    allows (``refs/heads/a..b``) with the zero id.  (No client is shown it: it is not under ``refs/``.)"""
    return b"/" not in name and name != b"@" and ref_format_ok(b"refs/" + name)


MAX_LOOSE_REF_LINE = 1 << 16
"""Longest first line of a loose ref file read (git's pkt-lines could not carry a longer one)."""

_OPEN_REF = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
"""Not blocking: a FIFO among the refs reads as nothing instead of stopping the thread forever."""


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def symlink_ref(filename: bytes) -> bytes | None:
    """A ref file that is a symbolic link, as git's files backend reads one: a link to ``refs/…``
    (a valid name) is a symbolic ref to that name (``core.preferSymlinkRefs``: git before 1.4.4
    made ``HEAD`` so); None for any other link, or a file that is none."""
    try:
        target = os.readlink(filename)
    except OSError:
        return None
    return _SYMREF + target if target.startswith(b"refs/") and ref_format_ok(target) else None


def remove_empty_parents(root: bytes, filename: bytes) -> None:
    """Remove the directories under ``root``'s ``refs/`` that a deleted ref's ``filename`` leaves
    empty, as git's refs code does once the ref is gone (a ref of that name can be made again),
    sparing ``refs/``'s own directories (``refs/heads``, ``refs/tags``) as git spares them."""
    parent = os.path.dirname(filename)
    top = os.path.join(root, b"refs")
    while parent.startswith(top + b"/") and os.path.dirname(parent) != top:
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)


class LinkedRefsContainer(DiskRefsContainer):
    """dulwich's refs on disk, reading a ref that is a symbolic link to ``refs/…`` as git does (a
    symbolic ref; dulwich read the file it leads to, so a linked ``HEAD`` named a commit, not its
    branch, or nothing when the branch is packed).  Writing one replaces the link with a file, as
    git does without ``core.preferSymlinkRefs``."""

    on_write: Callable[[], None] | None = None
    """Called where dulwich writes a ref's reflog (``_log``): under the ref's lock, its new value
    written into the lock file and not yet renamed into place, as git appends a reflog; set for one
    update by the repository (``DulwichGitRepository._swap``), whose reflog rules it follows."""

    def _log(self, ref: bytes, old_sha: bytes | None, new_sha: bytes | None, committer: bytes | None = None,
             timestamp: int | None = None, timezone: int | None = None, message: bytes | None = None) -> None:
        if self.on_write is not None:
            self.on_write()

    def _read_loose_ref_file(self, name: Ref) -> bytes | None:
        linked = symlink_ref(self.refpath(name))  # (no link, or one to no ref: None)
        return linked if linked is not None else super()._read_loose_ref_file(name)

    def get_packed_refs(self) -> dict[Ref, ObjectID]:
        """dulwich's, but for a ``packed-refs`` file it refuses that git reads (a line whose name is
        no valid ref name, ``^`` lines in a file whose first line does not say ``peeled``): the
        refs ``_packed_file`` reads in it, its valid names (not kept by dulwich: read again from
        the shared parse, kept as dulwich keeps its own until the file changes: its parse, failing,
        ran again at every look-up of a ref, 3-4 s a ref pushed into a mirror of 100,000 refs).  A
        push into such a repository works, and a rewrite of the file (``_remove_packed_ref``,
        ``_packed_lines``) keeps every line it has."""
        try:
            return super().get_packed_refs()
        except PackedRefsException:
            self._invalidate_packed_refs_cache()  # (dulwich's partial read)
            key = self._current_packed_refs_key()  # (taken first: a file replaced meanwhile is read again)
            parsed = _packed_file(self)
            self._packed_refs = dict(parsed.refs)
            self._peeled_refs = {Ref(name): ObjectID(target) for name, target in parsed.tags.items()}
            self._packed_refs_key = key
            return self._packed_refs

    def remove_if_equals(self, name: Ref, old_ref: ObjectID | None, committer: bytes | None = None,
                         timestamp: int | None = None, timezone: int | None = None,
                         message: bytes | None = None) -> bool:
        """Delete ``name`` if it names ``old_ref`` (None: whatever it names), as git's refs code
        deletes a ref: its own lock and ``packed-refs.lock`` both taken before anything changes (a
        lock held elsewhere raises ``FileLocked`` with nothing done), the value checked under them,
        its packed line removed before its loose file.  dulwich removed the loose file first and
        took ``packed-refs.lock`` only after, and only if its read of the file, unlocked, named the
        ref: with that lock held elsewhere (a ``git gc``, a ``git pack-refs``, another push deleting
        a packed ref) the deletion was refused after its loose file had gone, the ref left at its
        older packed value; and a ``git pack-refs`` that had read the loose file before it went
        wrote the deleted ref back into ``packed-refs`` (git keeps the lock held for this)."""
        self._check_refname(name)
        filename = self.refpath(name)
        os.makedirs(os.path.dirname(filename), exist_ok=True)
        ref_lock = GitFile(filename, "wb")
        try:
            packed_path = os.path.join(self.path, b"packed-refs")
            packed_lock = GitFile(packed_path, "wb")
            try:
                if old_ref is not None:
                    found = self.read_loose_ref(name)
                    if found is None:
                        found = self.get_packed_refs().get(name, ZERO_SHA)
                    if found != old_ref:
                        return False
                try:
                    with open(packed_path, "rb") as current:
                        traits, lines = _packed_lines(current.read())
                except FileNotFoundError:
                    lines = {}
                if lines.pop(name, None) is not None:
                    packed_lock.write(_packed_text(traits, lines))
                    packed_lock.close()  # (renamed over packed-refs, the ref's lock still held)
                with suppress(FileNotFoundError):
                    os.remove(filename)
                self._log(name, old_ref, None, committer=committer, timestamp=timestamp, timezone=timezone,
                          message=message)
            finally:
                packed_lock.abort()  # (nothing once closed)
                self._invalidate_packed_refs_cache()
        finally:
            ref_lock.abort()  # (the lock alone was wanted)
        remove_empty_parents(self.path, filename)
        return True

    def _remove_packed_ref(self, name: Ref) -> None:
        """Take ``name`` out of ``packed-refs`` as git's receive-pack does: the file rewritten under
        ``packed-refs.lock`` with git's first line (``_packed_text``: the peel traits the file had,
        and ``sorted``).  dulwich's, which a deletion runs, wrote ``# pack-refs with: peeled``:
        without ``fully-peeled`` every reader (git's upload-pack, hgwire's advertisement) peels each
        packed ref again, and without ``sorted`` git reads the whole file to find one."""
        if name not in self.get_packed_refs():
            return
        path = os.path.join(self.path, b"packed-refs")
        try:
            with GitFile(path, "wb") as f:  # (under the lock: read again, what another writer left)
                with open(path, "rb") as current:
                    traits, lines = _packed_lines(current.read())
                if lines.pop(name, None) is None:
                    f.abort()
                else:
                    f.write(_packed_text(traits, lines))
        finally:
            self._invalidate_packed_refs_cache()


def adopt_refs(refs: object) -> None:
    """Make a repository's plain ``DiskRefsContainer`` a ``LinkedRefsContainer`` (behaviour only)."""
    if type(refs) is DiskRefsContainer:
        refs.__class__ = LinkedRefsContainer


def loose_ref_damage(line: bytes) -> str | None:
    """What is wrong with a loose ref file's first line (git would read the ref as broken), or None."""
    if line.startswith(_SYMREF):
        return None if line[len(_SYMREF):].strip() else "a symbolic ref naming nothing"
    if not line.strip():
        return "an empty file"
    return None if _HEX_ID.fullmatch(line) else "not an object id"


_HEX_ID = re.compile(rb"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")
"""An object id of either format (40 or 64 hex digits): read at every loose ref of every advertisement."""


def _loose_ref(filename: bytes) -> bytes | None:
    """A loose ref file's first line without its end (dulwich reads a symbolic ref's and an id's
    alike); None when it cannot be read or is longer than ``MAX_LOOSE_REF_LINE``.

    ``os.open``/``os.read``: a buffered file object costs twice as much to open and close, and
    there are as many of these as loose refs."""
    try:
        fd = os.open(filename, _OPEN_REF | _NOFOLLOW)
    except OSError as exc:
        if exc.errno != errno.ELOOP or not _NOFOLLOW:
            return None
        linked = symlink_ref(filename)  # (a link: rare, so the common open costs no lstat)
        if linked is not None:
            return linked
        try:  # a link that names no ref is read through, as by git
            fd = os.open(filename, _OPEN_REF)
        except OSError:
            return None
    try:
        data = os.read(fd, 256)
        while b"\n" not in data and len(data) <= MAX_LOOSE_REF_LINE:
            more = os.read(fd, 1 << 14)
            if not more:
                break
            data += more
    except OSError:  # a directory after all, a FIFO with no writer, an I/O error
        return None
    finally:
        os.close(fd)
    end = data.find(b"\n")
    line = data if end < 0 else data[:end + 1]
    return line.rstrip(b"\r\n") if len(line) <= MAX_LOOSE_REF_LINE else None


def _ids(found: Mapping[bytes, bytes | None] | Mapping[Ref, ObjectID]) -> dict[bytes, ObjectId]:
    """The refs that resolve to an object id (a dangling or broken one is left out)."""
    return cast(dict[bytes, ObjectId], {ref: sha for ref, sha in found.items()
                                        if sha is not None and len(sha) in HEX_ID_LENGTHS})


class DulwichGitRepository:
    """A git repository as upload-pack and receive-pack see it."""

    kind: Literal[Kind.GIT] = Kind.GIT

    def __init__(self, name: str, repo: BaseRepo, lock: RefLock | None = None,
                 spool_dir: str | None = None, bare: bool = True, work_tree: str | None = None,
                 owns_repo: bool = False) -> None:
        """``owns_repo``: ``repo`` was opened for this object alone: ``close()`` closes it."""
        self.name = name
        self.dulwich_repo = repo
        self._owns_repo = owns_repo
        self.bare = bare
        """False for a repository with a working tree: its checked-out branch is not pushed to
        (``receive.denyCurrentBranch``), or updates the tree (``updateInstead``)."""
        self.work_tree = work_tree
        """The working tree of a repository that is not bare, where the backend knows it."""
        self._spool_dir = spool_dir
        self._lock = lock or _thread_lock_for(repo)
        self._added = git_ingest.PushedObjects()
        self._links = git_ingest.PushLinks()
        self._write_errors: list[OSError] = []
        self._added_packs: list[Pack] = []
        """Packs a push put straight into a store that is not on disk (a custom backend's)."""
        self._quarantines: list[git_ingest.Quarantine] = []
        """Where this push's objects wait (disk stores) until its checks and pre-receive accept it."""
        self._quarantined_packs: list[Pack] = []
        self._keeps: list[str] = []
        """The ``.keep`` files of this push's packs, migrated from their quarantine, until its refs are written."""
        self._config_read: ConfigFile | None | Literal[False] = False
        """``_config()``'s answer; False until asked."""
        self._config_layers: tuple[ConfigFile, ...] = ()
        """The config files ``_config()`` read, in git's order (``base_config``'s, the repository's)."""
        self._base_refusals: dict[str, str] = {}
        """What git would refuse, by service, for a value ``base_config`` gives (``_base_refusals``)."""
        self._reflog: tuple[str, bytes] | None = None
        self.reflog_failures: list[str] = []
        """Reflogs a push's ref updates could not append to (a full disk, permissions), and the
        ``receive.updateServerInfo`` files it could not write, for the log."""
        self._whole: bool | None = None
        """Whether every object of this push links only to pushed or stored ones (once computed)."""
        self._memo: _CheckMemo | None = None
        """During ``update_refs``: what the checks of its refs found, for the next ones."""
        self._lookups: git_ingest.StoreLookups | None = None
        """What this push looks a disk store's objects up with, its ingest and its checks alike."""
        self._held_packed: HeldPacked = {}
        """``packed-refs`` as this object last parsed it (``HeldPacked``), until ``close()``."""
        self._last_read: tuple[PackedRefs, frozenset[bytes], int, bytes] | None = None
        """The last read of the refs on disk: its ``packed-refs``, its loose names, how many refs."""

    @property
    def object_store(self) -> BaseObjectStore:
        return self.dulwich_repo.object_store

    def close(self) -> None:
        """Let go of the packs the dulwich repository opened (maps, descriptors, caches), if it was
        opened for this object alone; a later read opens them again.  A dulwich repository is kept
        alive by reference cycles of its own: left to the cyclic collector, the packs of finished
        requests piled up (60 maps of a pack, 250 descriptors and 190 MiB more after 60 shallow fetches)."""
        self._close_lookups()
        self.forget_refs_read()
        close = getattr(self.dulwich_repo, "close", None)
        if self._owns_repo and close is not None:
            with suppress(Exception):  # a pack in use elsewhere stays open: the collector's, then
                close()

    def forget_refs_read(self) -> None:
        """Let go of what the last read of the refs holds: ``packed-refs`` as it parsed a file too big
        for ``_PACKED_REFS`` (``HeldPacked``; tens of MB for a mirror's 100,000 tags) and the read
        ``peeled_by_name`` and ``ref_run`` look at.  A git session calls it once a command's refs are
        read, so that a connection idle between commands holds none of it (the next read parses
        again); ``close()`` does the same."""
        self._held_packed = {}
        self._last_read = None

    @property
    def object_format(self) -> ObjectFormat:
        """SHA-1 or SHA-256 (``extensions.objectformat``), as the repository says."""
        return object_format_of(self.dulwich_repo)

    def refs(self) -> Mapping[bytes, ObjectId]:
        container = self.dulwich_repo.refs
        on_disk = disk_refs(container, self._held_packed)
        if on_disk is None:
            self._last_read = None
            return _ids(container.as_dict())
        self.broken_refs = sorted(on_disk.broken.union(on_disk.packed_file.damaged))
        return self._read(on_disk)

    def refs_and_symrefs(self) -> tuple[Mapping[bytes, ObjectId], Mapping[bytes, bytes]]:
        """``refs()`` and ``symrefs()`` from one read of the refs (an advertisement needs both: a
        repository of 5,000 loose refs takes about 0.3 s to read)."""
        on_disk = disk_refs(self.dulwich_repo.refs, self._held_packed)
        if on_disk is None:
            return self.refs(), self.symrefs()
        self.broken_refs = sorted(on_disk.broken.union(on_disk.packed_file.damaged))
        return self._read(on_disk), on_disk.symbolic()

    def _read(self, on_disk: DiskRefs) -> dict[bytes, ObjectId]:
        refs = on_disk.ids()
        self._last_read = (on_disk.packed_file, frozenset(on_disk.loose), len(refs), on_disk.packed_path)
        return refs

    def peeled_by_name(self, refs: Mapping[bytes, ObjectId]) -> tuple[dict[bytes, ObjectId], list[bytes]] | None:
        """For ``refs``, all or some of what the last ``refs()`` read (``refs_and_symrefs()``): what
        their annotated tags peel to as ``packed-refs`` says it, by name, and the refs it says
        nothing of (loose ones), to be peeled one by one; None when the file does not say it of
        every packed ref (no ``fully-peeled``).  A mirror's 100,000 tags were each looked up by id
        at every advertisement (40 ms); the file's record is now taken whole."""
        read = self._last_read
        if read is None:
            return None
        packed, loose, count, path = read
        tags = self._whole_tags(packed, path)
        if tags is None:
            return None
        if len(refs) == count:  # nothing hidden
            peeled = dict(tags)
        else:
            peeled = {name: target for name, target in tags.items() if name in refs}
        rest = [name for name in loose if name in refs]
        for name in rest:
            peeled.pop(name, None)
        return peeled, rest

    def ref_run(self, refs: Mapping[bytes, ObjectId]) -> RefRun | None:
        """``refs`` (as for ``peeled_by_name``) as a run of ``packed-refs``' encoded lines and what
        differs from it (``RefRun``), for a file kept parsed of ``RUN_MIN_REFS`` or more refs that
        says it is ``fully-peeled`` (so the run's peeled values are the advertisement's); None
        otherwise.  Its hidden refs are cut out as ranges (more than ``RUN_MIN_REFS`` of them took
        the answer written line by line: 0.11-0.15 s of server CPU for a mirror of 100,000 tags
        hiding 20,000 ``refs/pull/*``, git's upload-pack 0.03-0.06)."""
        read = self._last_read
        if read is None:
            return None
        packed, loose, count, path = read
        kept = _PACKED_REFS.get(path)
        tags = self._whole_tags(packed, path)
        if tags is None or len(packed.refs) < RUN_MIN_REFS or kept is None or kept[1] is not packed:
            return None
        lines = _ref_lines(path, packed, tags)
        if not lines.encodable:
            return None
        left_out = [name for name in loose if name in packed.refs]  # overridden by a loose file
        hidden: list[int] = []
        if len(refs) != count:  # (hidden, or whose loose file is broken: one pass, the names sorted)
            hidden = [i for i, name in enumerate(lines.names) if name not in refs]
        return RefRun(lines, frozenset(left_out), tuple(name for name in loose if name in refs), hidden)

    def _whole_tags(self, packed: PackedRefs, path: bytes) -> Mapping[bytes, ObjectId] | None:
        """What every annotated tag of ``packed`` (the file ``path``) peels to, by name: its ``^``
        lines for a ``fully-peeled`` file; for another kept one of ``RUN_MIN_REFS`` refs or more,
        ``PackedRefs.completed``, made now if it is not yet; None otherwise (each ref is peeled by
        the advertisement, as before)."""
        if packed.fully:
            return packed.tags
        if packed.completed:
            return packed.completed[0]
        kept = _PACKED_REFS.get(path)
        if kept is None or kept[1] is not packed or len(packed.refs) < RUN_MIN_REFS:
            return None
        with _COMPLETING_LOCK:
            if not packed.completed:
                packed.completed.append(_completed_tags(packed, self.object_store))
                if _PACKED_REFS.get(path) is kept:
                    _PACKED_REFS.put(path, kept)  # (weighed again: ``_packed_cost`` counts it)
        return packed.completed[0]

    broken_refs: list[bytes] = []  # noqa: RUF012 - replaced, never changed in place
    """The loose refs the last read of the refs found damaged (``DiskRefs.broken``), and the names in
    ``packed-refs`` that are no valid ref name (``PackedRefs.damaged``): left out, for the gateway to
    tell the operator."""

    def ref_damage(self, ref: bytes) -> str | None:
        """What is wrong with ``ref``'s loose file on disk (``loose_ref_damage``), or None."""
        path = getattr(self.dulwich_repo.refs, "refpath", None)
        if path is None or not _plain_disk_refs(self.dulwich_repo.refs):
            return None
        line = _loose_ref(path(Ref(ref)))
        return loose_ref_damage(line) if line is not None else None

    def known_peeled(self) -> Mapping[bytes, ObjectId]:
        """What the objects of the packed refs peel to, as ``packed-refs`` records it
        (``PackedRefs.peeled``): an advertisement peels those without reading a tag (git's
        upload-pack does the same).  A repository of 5,000 annotated tags took 0.3 s to advertise
        the first time its tags were read, against ``git daemon``'s 0.06."""
        container = self.dulwich_repo.refs
        if not _plain_disk_refs(container):
            return {}
        return _packed_file(container, self._held_packed).peeled  # type: ignore[arg-type]

    def hidden_refs(self, service: str) -> Callable[[bytes], bool]:
        """Which refs the repository's config hides from ``upload-pack`` or ``receive-pack``.

        git's ``transfer.hideRefs`` and ``uploadpack.hideRefs``/``receive.hideRefs``: each
        value hides a ref and the refs below it (``refs/pull`` hides ``refs/pull/1/head``),
        ``!`` before it shows them again, the last matching value wins; ``^`` (namespaces)
        changes nothing here.  Hidden refs are not advertised, and a push may not change them.
        Their values are taken in the order the config files give them, whichever of the two
        sections each is in, as git reads them: ``uploadpack.hideRefs = !refs/pull/7`` above a
        later ``transfer.hideRefs = refs/pull`` showed ``refs/pull/7``, which git hides (all of
        ``transfer``'s values were taken first).  (dulwich gathers the values of a section named
        twice in one file under its first header: each header's values are taken at that header,
        as git takes them, ``_in_file_order``, and an included file's where the include is; a
        file whose order cannot be read so, one included twice say, is taken as dulwich gathers it.)
        """
        wanted = (b"transfer", b"uploadpack" if service == "upload-pack" else b"receive")
        self._config()
        matchers = getattr(self.dulwich_repo, "_get_config_condition_matchers", None)  # (includeIf's, as its open)
        whole = self._config_read if isinstance(self._config_read, ConfigFile) else None
        rules = [value for config in self._config_layers for value in _hide_rules(config, wanted, matchers, whole)]
        return _hiding(rules) if rules else git_pack.nothing_hidden  # (an unreadable config hides nothing)

    def service_refusal(self, service: str) -> str | None:
        """Why git would refuse ``service`` of this repository for what its open found on disk
        (``receive-pack``: a push; ``pack``: a fetch that gets a pack; ``upload-pack``: git's
        upload-pack as it starts in protocol v0, and a v2 ``fetch`` command, which read
        ``UPLOAD_START_NUMBERS`` and ``UPLOAD_START_BOOLEANS``, each value, where v2's
        advertisement and ``ls-refs`` read none of them), in git's words; None when
        it would not (a setting git would not read, ``backends.filesystem._open_values_for_dulwich``)."""
        refusals = getattr(self.dulwich_repo, "refusals", None) or {}
        found = refusals.get(service)
        if found:
            return str(found[1])
        self._config()  # (``base_config``'s are judged as it is read)
        base = self._base_refusals.get(service)
        if base:
            return base
        try:
            self._check_booleans(SERVICE_BOOLEANS.get(service, ()))
            if service == "upload-pack":
                self._check_numbers(UPLOAD_START_NUMBERS)
                self._check_booleans(UPLOAD_START_BOOLEANS)
        except StorageError as exc:
            return str(exc)
        return None

    def graft_refusal(self, wants: Sequence[ObjectId], plan: git_pack.ShallowPlan | None) -> str | None:
        """Why a fetch's pack is refused when ``info/grafts`` takes a commit's own parent from it
        and the pack would go through that commit to its own parents: git's upload-pack sends the
        history the grafts give (deprecated, "use git replace --convert-graft-file"), without what
        a graft cuts off, and the client, which checks the commits' own parents, refuses that pack
        ("did not receive expected object"); serving the commits' own history instead would hand
        out what the operator's grafts cut off.  A pack that stops at or above the cut commits is
        git's too and is served: a deepened request's (``plan``: its shallow boundary, as
        ``git_pack.plan_shallow`` made it) whose walk from ``wants`` and the unshallowed commits'
        parents, by the commits' own parents, stops at the boundary before any cut commit's
        parents (a ``--depth 1`` clone of the grafted commit, which git sends as a shallow one).
        Any other pack (``plan`` None) is refused whenever a graft cuts: how far it goes depends on
        the haves not read yet, and finding out would walk the history before the pack walks it.
        A graft that only adds parents changes nothing a client sees (git's pack has more objects,
        no ref reaches them) and is served as the commits say."""
        cuts = self._graft_cuts()
        if not cuts:
            return None
        if plan is None:
            return _graft_cut_message(cuts[0])
        cut = set(cuts)
        opened = [oid for oid in plan.unshallow if oid in cut]  # (its own parents are the pack's)
        if opened:
            return _graft_cut_message(opened[0])
        store = self.object_store
        seen: set[bytes] = set()
        pending: list[bytes] = [git_pack.peel(store, oid) for oid in (*wants, *plan.extra_wants)]
        while pending:
            oid = pending.pop()
            if oid in seen or oid in plan.boundary:
                continue
            seen.add(oid)
            if oid in cut:
                return _graft_cut_message(oid)
            try:
                obj = store[ObjectID(oid)]
            except KeyError:
                continue
            if isinstance(obj, Commit):
                pending.extend(obj.parents)
        return None

    def _graft_cuts(self) -> tuple[bytes, ...]:
        """The commits ``info/grafts`` cuts off from some of their own parents, in the file's
        order; kept by the file's identity on disk."""
        path = self._disk_git_dir()
        if path is None:
            return ()
        try:
            st = os.stat(os.path.join(path, "info", "grafts"))
        except OSError:
            return ()
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _graft_verdicts:
            cuts = self._judge_grafts()
            with _graft_verdicts_guard:
                _graft_verdicts[key] = cuts
                while len(_graft_verdicts) > MAX_GRAFT_VERDICTS:
                    del _graft_verdicts[next(iter(_graft_verdicts))]
        return _graft_verdicts[key]

    def _judge_grafts(self) -> tuple[bytes, ...]:
        cuts = []
        for commit, parents in self.grafts().items():
            try:
                obj = self.object_store[ObjectID(commit)]
            except KeyError:  # (a graft of a commit not here changes nothing)
                continue
            if isinstance(obj, Commit) and set(obj.parents) - set(parents):
                cuts.append(commit)
        return tuple(cuts)

    base_config: str | None = None
    """A git config file read before the repository's own (the ``--config`` file's ``[git] config``,
    set by the gateway), as git reads the system's and the user's; its values come first, so the
    repository's own win.  A missing file is none, as for git."""

    def _config(self) -> ConfigFile | None:
        """The repository's config, read once per open (a session), after ``base_config``; None when
        it cannot be read (opening the repository read it already, so that is a race with a writer).
        A ``base_config`` git could not read raises ``StorageError``: guessing could let through what
        the operator meant to deny."""
        if self._config_read is False:
            try:  # (the one the open read, if the open was the fs backend's)
                take = getattr(self.dulwich_repo, "take_opened_config", None)
                own = take() if take is not None else None
                if own is None:
                    own = self.dulwich_repo.get_config()
            except Exception:
                own = None
            self._config_layers = (own,) if own is not None else ()
            if own is not None and self.base_config is not None:
                base = read_base_config(self.base_config)
                refused = _base_refusals(base, own)
                if {"upload-pack", "receive-pack"} <= refused.keys():
                    raise StorageError(refused["upload-pack"])
                self._base_refusals = refused
                self._config_layers = (base, own)
                own = with_base_config(base, own)
            self._config_read = own
        return self._config_read

    def _config_values(self, section: bytes | tuple[bytes, ...], name: bytes) -> list[bytes]:
        """Every value the repository's config gives ``section.name`` (``section`` a tuple for a
        subsection: ``(b"gpg", b"ssh")``), in order; none when unset or when the config cannot be read."""
        config = self._config()
        key = section if isinstance(section, tuple) else (section,)
        try:
            return [v if isinstance(v, ServerConfigValue) else bytes(v)  # (its file named in messages)
                    for v in config.get_multivar(key, name)] if config is not None else []
        except KeyError:
            return []

    def _config_last(self, section: bytes | tuple[bytes, ...], name: bytes) -> bytes | None:
        """The last value the repository's config gives ``section.name`` (git's rule), None when unset
        or when the config cannot be read."""
        values = self._config_values(section, name)
        return values[-1] if values else None

    def symrefs(self) -> Mapping[bytes, bytes]:
        """Every symbolic ref and its target: protocol v2's ``ls-refs`` names them all, as git does."""
        refs = self.dulwich_repo.refs
        on_disk = disk_refs(refs, self._held_packed)
        if on_disk is not None:
            return on_disk.symbolic()
        packed = refs.get_packed_refs()  # git never packs a symbolic ref: only loose ones are read
        found = {}
        for name in refs.allkeys():
            if name in packed:
                continue
            target = _symref_target(refs.read_ref(name))
            if target is not None:
                found[bytes(name)] = target
        return found

    def symref_targets(self, names: Iterable[bytes]) -> dict[bytes, bytes]:
        """``symrefs()`` of the symbolic refs among ``names`` and of the chains they start, each ref
        read on its own: a push asks for its commands' refs, where ``symrefs()`` reads every ref."""
        refs = self.dulwich_repo.refs
        # git never packs a symbolic ref: a packed name is none, whatever a loose file over it says
        packed = (_packed_refs(refs, self._held_packed)  # type: ignore[arg-type]
                  if _plain_disk_refs(refs) else refs.get_packed_refs())
        found: dict[bytes, bytes] = {}
        plain: set[bytes] = set()
        for name in names:
            for _ in range(MAX_SYMREF_DEPTH + 1):
                if name in found or name in plain:
                    break
                if Ref(name) in packed:
                    plain.add(name)
                    break
                try:
                    target = _symref_target(refs.read_ref(Ref(name)))
                except (KeyError, RefFormatError, OSError):  # a name dulwich does not read as a ref
                    target = None
                if target is None:
                    plain.add(name)
                    break
                found[name] = target
                name = target
        return found

    def repack_candidate(self, pack_limit: int, bitmap_objects: int = 0) -> str | None:
        """The repository's directory if it is on disk and has gathered ``pack_limit`` packs or more
        (or as many loose objects as make git's ``gc --auto`` run), or, with ``bitmap_objects``, if
        its packs hold that many objects and none has a bitmap (``bitmap_candidate``).

        The repository's own config may say otherwise, as for git's receive-pack: ``receive.autogc
        = false`` or ``gc.auto = 0`` (no repack after pushes), ``gc.autoPackLimit`` (its own pack
        limit; 0: packs are not counted) and ``gc.auto`` (its loose object limit).  A value git
        would not read raises ``ConfigValueError``.
        """
        auto = self._auto_repacked()
        if auto is None:
            return None
        path, loose_limit = auto
        if self._counts_from_bitmaps() and git_maintenance.needs_bitmap(path, bitmap_objects):
            return path
        own_limit = _git_int(self._config_last(b"gc", b"autopacklimit"), "gc.autopacklimit", pack_limit)
        if own_limit <= 0:  # packs are not counted, loose objects still are
            return path if git_maintenance.estimate_loose(path) > loose_limit else None
        return path if git_maintenance.needs_repack(path, own_limit, loose_limit) else None

    def bitmap_candidate(self, min_objects: int) -> str | None:
        """The repository's directory if it is on disk, its packs hold ``min_objects`` objects or more
        and none of them has a bitmap, so that every clone walks its history (after a migration's
        push, or a copy an operator put in place); None otherwise, or when its config turns automatic
        repacks off (``receive.autogc = false``, ``gc.auto = 0``) or its fetches walk whatever the
        bitmaps (``pack.useBitmaps = false``).  ``ConfigValueError`` as above."""
        auto = self._auto_repacked()
        if auto is None or not self._counts_from_bitmaps():
            return None
        return auto[0] if git_maintenance.needs_bitmap(auto[0], min_objects) else None

    def _counts_from_bitmaps(self) -> bool:
        """``pack.useBitmaps``: unless it is false, a bitmap counts what a fetch sends (git's
        pack-objects then walks, bitmaps or not, and a repack for one would be of no use)."""
        return self._config_bool(b"pack", b"usebitmaps") is not False

    def commit_graph_wanted(self) -> bool:
        """Whether git's ``gc`` would write the repository's commit-graph after its repack
        (``git_maintenance.COMMIT_GRAPH_ARGS``): ``gc.writeCommitGraph`` and ``core.commitGraph``,
        both true unless set false; ``ConfigValueError`` for a value git would not read."""
        settings = ((b"gc", b"writecommitgraph", "gc.writecommitgraph"), (b"core", b"commitgraph", "core.commitgraph"))
        for section, key, name in settings:
            value = self._config_last(section, key)
            if value is not None and not _git_bool(value, name):
                return False
        return True

    def _use_commit_graph(self) -> None:
        """``core.commitGraph``: false (in the repository's config or the ``[git] config`` file read
        before it) and git never reads ``objects/info/commit-graph``; the store is told, whose reads
        (dulwich's and ``git_commitgraph.store_commit_graph``) honour its ``_use_commit_graph`` --
        which dulwich sets from the repository's own config alone.  ``StorageError`` for a value git
        would not read (git's commands die on it)."""
        store = self.object_store
        if hasattr(store, "_use_commit_graph"):
            store._use_commit_graph = self._config_bool(b"core", b"commitgraph") is not False

    def reverse_index_wanted(self) -> bool:
        """Whether hgwire's repack writes the new pack's reverse index (``pack.writeReverseIndex``,
        true unless the repository's config sets it false, git's default from 2.41);
        ``ConfigValueError`` for a value git would not read."""
        value = self._config_last(b"pack", b"writereverseindex")
        return value is None or _git_bool(value, "pack.writereverseindex")

    def auto_gc_refusal(self) -> str | None:
        """What git's ``gc --auto``, which its receive-pack runs after each push whatever the push's
        outcome (unless ``receive.autogc`` is false), dies of here: a ``gc.auto`` or
        ``gc.autoPackLimit`` whose last value (``git_config_get_int``) git would not read.  git's
        receive-pack passes that on to the pusher ("remote: fatal: bad numeric config value …")
        and the push stands; None where it would run clean, or for a repository not on disk.
        Reads the config the push has read already."""
        if self._disk_git_dir() is None:
            return None
        try:
            autogc = self._config_last(b"receive", b"autogc")
            if autogc is not None and not _git_bool(autogc, "receive.autogc"):
                return None
            for name in (b"auto", b"autopacklimit"):
                _git_int(self._config_last(b"gc", name), f"gc.{name.decode()}", 0)
        except ConfigValueError as exc:
            return str(exc)
        return None

    def _auto_repacked(self) -> tuple[str, int] | None:
        """The git directory of a repository on disk whose config lets it be repacked on its own
        (git's ``receive.autogc`` and ``gc.auto = 0``; not where ``extensions.preciousObjects`` is
        set: a repack deletes the packs it replaced), and its loose object limit (``gc.auto``);
        ``ConfigValueError`` for a value git would not read."""
        path = self._disk_git_dir()
        if path is None or getattr(self.dulwich_repo, "precious_objects", False):
            return None  # git's gc neither repacks nor prunes where objects are precious
        autogc = self._config_last(b"receive", b"autogc")
        if autogc is not None and not _git_bool(autogc, "receive.autogc"):
            return None
        loose_limit = _git_int(self._config_last(b"gc", b"auto"), "gc.auto", git_maintenance.AUTO_LOOSE_LIMIT)
        return (path, loose_limit) if loose_limit > 0 else None

    def description(self) -> bytes | None:
        """The git directory's ``description`` file (what gitweb shows), its first 4 KiB; None without one."""
        git_dir = self._disk_git_dir()
        if git_dir is None:
            return None
        try:
            fd = os.open(os.path.join(git_dir, "description"), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            return os.read(fd, 4096) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        finally:
            os.close(fd)

    def daemon_service_enabled(self, key: str) -> bool | None:
        """git daemon's per-repository service switch ``daemon.<key>`` (``uploadarch``,
        ``uploadpack``, ``receivepack``); None when the config does not set it.

        A value git would not read refuses the request (``StorageError``, whose sentence the client sees).
        """
        return self._config_bool(b"daemon", key.lower().encode())

    def _config_bool(self, section: bytes, key: bytes) -> bool | None:
        """A boolean setting of the repository's config; None when unset; ``StorageError`` (its
        sentence for the client) for a value git would not read."""
        value = self._config_last(section, key)
        if value is None:
            return None
        try:
            return _git_bool(value, f"{section.decode()}.{key.decode()}")
        except ConfigValueError as exc:
            raise StorageError(str(exc)) from None

    def archive_allows_unreachable(self) -> bool:
        """``uploadArchive.allowUnreachable``: whether ``git archive --remote`` may name any object
        by its id, not only a ref (``StorageError`` for a value git would not read)."""
        return self._config_bool(b"uploadarchive", b"allowunreachable") is True

    def atomic_offered(self) -> bool:
        """``receive.advertiseAtomic``: ``atomic`` pushes are offered unless it is false, as in git
        (``StorageError`` for a value git would not read)."""
        return self._config_bool(b"receive", b"advertiseatomic") is not False

    def push_options_offered(self) -> bool:
        """``receive.advertisePushOptions``: offered unless it is false (``StorageError`` for a value
        git would not read)."""
        return self._config_bool(b"receive", b"advertisepushoptions") is not False

    def upload_settings(self) -> UploadSettings:
        """``uploadpack.allowFilter``, ``lsrefs.unborn``, ``uploadpack.allowRefInWant``,
        ``transfer.advertiseSID`` and ``pack.useBitmaps`` (``UploadSettings``); ``StorageError`` for
        a value git would not read, but for ``lsrefs.unborn``'s, which only protocol v2 reads
        (``UploadSettings.unborn_refusal``): git's v0 upload-pack never looks at it, and its v2
        takes the three words as written (``Advertise`` is refused) and no valueless line."""
        allow = self._config_bool(b"uploadpack", b"allowfilter")
        ref_in_want = self._config_bool(b"uploadpack", b"allowrefinwant") is True
        unborn, unborn_refusal = self._unborn_setting()
        tips = any(self._config_bool(b"uploadpack", name) is True
                   for name in (b"allowtipsha1inwant", b"allowreachablesha1inwant", b"allowanysha1inwant"))
        self._use_commit_graph()
        return UploadSettings(allow_filter=allow is not False, unborn=unborn, unborn_refusal=unborn_refusal,
                              allow_ref_in_want=ref_in_want,
                              advertise_session_id=self.advertises_session_id(), hidden_tips_reach_shallows=tips,
                              filter_rules=self._filter_rules(), use_bitmaps=self._counts_from_bitmaps())

    def _unborn_setting(self) -> tuple[str, str | None]:
        """``lsrefs.unborn``'s word (``advertise`` unset) and, for a value git's v2 dies on ("invalid
        value for 'lsrefs.unborn': 'true'"; "missing value" for a line without ``=``), why."""
        value = self._config_last(b"lsrefs", b"unborn")
        if value is None:
            return "advertise", None
        written = [found for layer in self._config_layers for found in written_values(layer, b"lsrefs", b"unborn")]
        if written and written[-1][1]:
            return "advertise", (f"missing value for lsrefs.unborn; {_fix_it(value)} "
                                 "(advertise, allow or ignore)")
        word = value.decode("utf-8", "replace")
        if word not in ("advertise", "allow", "ignore"):
            return "advertise", (f"invalid value for lsrefs.unborn: '{word[:40]}'; {_fix_it(value)} "
                                 "(advertise, allow or ignore, as written)")
        return word, None

    def _filter_rules(self) -> FilterRules:
        """``uploadpackfilter.allow``, ``uploadpackfilter.<filter>.allow`` and
        ``uploadpackfilter.tree.maxDepth`` (a max depth allows ``tree``, as in git); ``StorageError``
        for a value git would not read."""
        allow_others = self._config_bool(b"uploadpackfilter", b"allow")
        allowed = []
        for name in FILTER_NAMES:
            value = self._config_last((b"uploadpackfilter", name.encode()), b"allow")
            if value is not None:
                try:
                    allowed.append((name, _git_bool(value, f"uploadpackfilter.{name}.allow")))
                except ConfigValueError as exc:
                    raise StorageError(str(exc)) from None
        depth_value = self._config_last((b"uploadpackfilter", b"tree"), b"maxdepth")
        depth = None
        if depth_value is not None:
            try:
                depth = max(0, _git_int(depth_value, "uploadpackfilter.tree.maxdepth", 0))
            except ConfigValueError as exc:
                raise StorageError(str(exc)) from None
            if self._tree_depth_set_last():  # git: a maxDepth allows tree, unless an allow comes after it
                allowed = [(name, value) for name, value in allowed if name != "tree"] + [("tree", True)]
        return FilterRules(allow_others is not False, tuple(allowed), depth)

    def _tree_depth_set_last(self) -> bool:
        """Whether ``uploadpackfilter.tree.maxDepth`` comes after every ``uploadpackfilter.tree.allow``
        in the config: git reads them in order, a max depth setting ``tree`` allowed, an ``allow``
        setting it as it says."""
        config = self._config()
        if config is None:
            return True
        last = None
        for name, _value in config.items((b"uploadpackfilter", b"tree")):
            if name.lower() in (b"allow", b"maxdepth"):
                last = name.lower()
        return last != b"allow"

    def advertises_session_id(self) -> bool:
        """``transfer.advertiseSID``: whether fetches and pushes are offered a ``session-id``
        (``StorageError`` for a value git would not read)."""
        return self._config_bool(b"transfer", b"advertisesid") is True

    def daemon_export_ok(self) -> bool:
        """Whether git daemon would serve it without ``--export-all``: its git directory holds
        ``git-daemon-export-ok`` (a repository in memory has none)."""
        git_dir = self._disk_git_dir()
        return git_dir is not None and os.path.exists(os.path.join(git_dir, "git-daemon-export-ok"))

    def pack_refs(self, git: str | None = None) -> bool:
        """Pack the loose refs (``git pack-refs --all --prune``) under the ref-update lock; False for a
        repository that is not on disk, or without a git binary."""
        path = self._disk_git_dir()
        if path is None:
            return False
        refs = self.dulwich_repo.refs
        damaged = _packed_file(cast(DiskRefsContainer, refs)).damaged if _plain_disk_refs(refs) else ()
        damaged = tuple(name for name in damaged if not _one_level_name(name))  # (git's pack-refs keeps those)
        if damaged:  # git's pack-refs writes each such line back with the zero id: its ref lost
            names = ", ".join(name.decode("utf-8", "replace") for name in damaged[:5])
            raise ValueError(f"packed-refs holds {len(damaged)} names that are no valid ref name ({names}), "
                             "which git pack-refs would rewrite with the zero id; rename or delete those "
                             "lines ('git fsck' in the repository names them)")
        return git_maintenance.pack_refs(path, self._lock, git)

    def _disk_git_dir(self) -> str | None:
        """The git directory of a repository on disk; None for one in memory."""
        controldir = getattr(self.dulwich_repo, "controldir", None)
        if controldir is None or not isinstance(self.object_store, DiskObjectStore):
            return None
        return str(controldir())

    def begin_pack(self) -> SpooledPackSink | DiskPackSink:
        store = self.object_store
        if isinstance(store, DiskObjectStore):
            return DiskPackSink(self, store)
        return SpooledPackSink(self, self._spool_dir)

    def _waiting(self, quarantine: git_ingest.Quarantine) -> None:
        """An empty pack's quarantine: nothing to read in it, but the push's hooks are told it
        (``GIT_QUARANTINE_PATH``...), as git tells them, until the refs are settled."""
        self._quarantines.append(quarantine)

    def _landed(self, pack: Pack, quarantine: git_ingest.Quarantine | None = None) -> None:
        """A pushed pack is in the store, or in ``quarantine`` (which this push's reads see from now
        on): its objects count as added until a ref names them."""
        if quarantine is not None:
            self._quarantines.append(quarantine)
            self._quarantined_packs.append(pack)
            quarantine.expose()
        else:
            self._added_packs.append(pack)
        self._added.add_pack(pack)

    def _ingest(self, f: BinaryIO) -> list[str]:
        """The pushed pack of a store not on disk (``SpooledPackSink``): a memory store's, or a custom
        backend's dulwich store (its own ``add_thin_pack``); the checks' warnings."""
        store = self.object_store
        if isinstance(store, MemoryObjectStore):
            return self._ingest_memory(store, f)
        with self._lock():  # another push landing meanwhile would count as this one's (and be removed with it)
            before = set(iter(store))
            try:
                with _invalid_pack():
                    pack = store.add_thin_pack(f.read, None)  # type: ignore[attr-defined]
            except BaseException:
                _forget(store, set(iter(store)) - before)  # what a failed ingest left behind
                raise
            added = set() if isinstance(pack, Pack) else set(iter(store)) - before
        if isinstance(pack, Pack):
            self._landed(pack)
            return []
        self._added.update(added)
        return self._check_landed((sha, *store.get_raw(sha)) for sha in added)

    def _ingest_memory(self, store: MemoryObjectStore, f: BinaryIO) -> list[str]:
        """Every object of the pack into the memory store, each claimed by this push
        (``git_ingest.PackClaims``, keyed per object): a concurrent push of the same objects
        holds them too, so this push being refused does not take them from under it.  SHA-1 only:
        dulwich's memory store files every object under its SHA-1 id."""
        if object_format_of(store).name != "sha1":
            raise ProtocolError("pushing to a SHA-256 repository held in memory is not supported")
        claims = git_ingest.PACK_CLAIMS
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        with self._lock():  # pushes to this store land (and are removed) one at a time
            data = PackData.from_file(f, store.object_format, size)
            try:
                with _invalid_pack():
                    data.check()
                    objects = list(_NamingInflater.for_pack_data(data, store.get_raw))
            finally:
                data.close()
            with claims.lock:
                for obj in objects:
                    sha = obj.id
                    created = ObjectID(sha) not in store
                    if created:
                        store.add_object(obj)
                    if sha not in self._added:
                        claims.claim(_object_key(store, sha), created)
                        self._added.add(sha)
        return self._check_landed((obj.id, obj.type_num, obj.as_raw_string()) for obj in objects)

    def _check_landed(self, objects: Iterable[tuple[bytes, int, bytes]]) -> list[str]:
        """Check the objects a push put straight into a memory store (``ingest_pack`` checks a disk
        store's before they land): these are in already, unreferenced, so a broken one refuses the
        push and its objects go, keeping every ref from them and no later push naming one."""
        rules = self.fsck_rules()
        dotfiles = DotFiles()
        warnings = git_ingest.FsckWarnings()
        store = self.object_store
        object_format = object_format_of(store)
        links = git_ingest.PushLinks()

        def get_raw(sha: bytes) -> tuple[int, bytes]:
            return store.get_raw(ObjectID(sha))

        try:
            for sha, type_num, raw in objects:
                links.link(git_ingest.check_object(type_num, raw, rules, bytes(sha), dotfiles, warnings,
                                                   object_format=object_format))
            git_ingest.check_dotfiles(dotfiles, get_raw, rules, warnings)
            wrong = links.mismatch(lambda sha: get_raw(sha)[0])
            if wrong is not None:
                raise ObjectFormatException(wrong)
        except ObjectFormatException as exc:
            with self._lock():
                self._discard_added()
            raise ProtocolError(f"the pushed pack is invalid: {exc}") from exc
        return warnings.shown()

    def fsck_rules(self) -> git_ingest.FsckRules:
        """How pushed objects are checked: ``receive.fsck.<msg-id>`` (``error``, ``warn`` or ``ignore``
        for each of git fsck's findings that hgwire looks for) and ``receive.fsck.skipList`` (a file
        of object ids not to check: ``#`` comments, one full id per line), as git's receive-pack reads
        them; relative to the git directory, ``~`` expanded.  An unknown id or value is skipped, as by
        git; a skip list that cannot be read, or names something not an object id, refuses the push
        (``StorageError``)."""
        config = self._config()
        if config is None:
            return git_ingest.DEFAULT_FSCK
        try:
            settings = [(bytes(k), bytes(v)) for k, v in config.items((b"receive", b"fsck"))]
        except KeyError:
            return git_ingest.DEFAULT_FSCK
        skip: list[bytes] = []
        listed = [v for k, v in settings if k.lower() == b"skiplist"]
        if listed:
            skip = self._skip_list(listed[-1])
        return git_ingest.fsck_rules([(k, v) for k, v in settings if k.lower() != b"skiplist"], skip)

    def thin_base_level(self) -> int:
        """The zlib level of the bases a pushed thin pack left out, as git's ``index-pack`` appends
        them: ``core.looseCompression``, else ``core.compression`` (-1 to 9), else
        ``git_ingest.THIN_BASE_LEVEL``; a value git would not read counts as none."""
        config = self._config()
        if config is None:
            return git_ingest.THIN_BASE_LEVEL
        for key in (b"looseCompression", b"compression"):
            try:
                level = int(config.get((b"core",), key))
            except (KeyError, ValueError):
                continue
            if -1 <= level <= 9:
                return level
        return git_ingest.THIN_BASE_LEVEL

    def _config_path(self, value: bytes) -> str:
        """A file a config value names, as git's ``git_config_pathname`` reads it: ``~`` expanded,
        and a relative name taken from the git directory (where receive-pack runs)."""
        name = os.path.expanduser(value.decode("utf-8", "surrogateescape"))
        git_dir = self._disk_git_dir()
        return os.path.join(git_dir, name) if git_dir is not None else name

    def _skip_list(self, value: bytes) -> list[bytes]:
        name = value.decode("utf-8", "surrogateescape")
        try:
            with open(self._config_path(value), "rb") as f:
                text = f.read(MAX_SKIP_LIST + 1)
        except OSError as exc:
            raise StorageError(f"could not open receive.fsck.skipList '{name}' ({exc.strerror or exc}); "
                               f"{_fix_it(value)}") from None
        if len(text) > MAX_SKIP_LIST:
            raise StorageError(f"receive.fsck.skipList '{name}' is larger than {MAX_SKIP_LIST >> 20} MiB")
        ids: list[bytes] = []
        hex_len = object_format_of(self.object_store).hex_len  # full ids of the repository's format
        for line in text.split(b"\n"):
            entry = line.split(b"#", 1)[0].strip()
            if not entry:
                continue
            try:
                ids.append(parse_oid(entry, hex_len))
            except ProtocolError:
                raise StorageError(f"invalid object name {entry[:80].decode('utf-8', 'replace')!r} in "
                                   f"receive.fsck.skipList '{name}'; fix it on the server") from None
        return ids

    def receive_rules(self) -> ReceiveRules:
        """The repository's own ``receive.deny*`` settings, read as git's receive-pack reads them.

        ``denyDeletes`` and ``denyNonFastForwards`` guard branches (``refs/heads/``)
        only, as in git; ``denyDeleteCurrent`` and (with a working tree)
        ``denyCurrentBranch`` take ``refuse``, ``warn``, ``ignore`` or a boolean.
        A value git would reject refuses the whole push (``ConfigValueError``):
        guessing could let through what the operator meant to deny.
        """
        if self._config() is None:  # an unreadable config: git's defaults
            return ReceiveRules()

        def last(name: bytes) -> bytes | None:
            return self._config_last(b"receive", name)

        return ReceiveRules(
            proc_refs=git_proc_receive.parse_rules(self._config_values(b"receive", b"procreceiverefs")),
            deny_deletes=_git_bool(last(b"denydeletes"), "receive.denydeletes"),
            deny_non_fast_forwards=_git_bool(last(b"denynonfastforwards"), "receive.denynonfastforwards"),
            deny_delete_current=_deny_action(last(b"denydeletecurrent"), "receive.denydeletecurrent"),
            deny_current_branch=_deny_action(last(b"denycurrentbranch"), "receive.denycurrentbranch"),
            delete_current_set=last(b"denydeletecurrent") is not None,
            current_branch_set=last(b"denycurrentbranch") is not None,
        )

    def http_service_enabled(self, service: str) -> bool | None:
        """git http-backend's ``http.uploadpack`` / ``http.receivepack`` for ``git-upload-pack`` /
        ``git-receive-pack``; None when the config does not set it.

        A value git would not read refuses the request (``StorageError``, whose sentence the client sees).
        """
        key = {"git-upload-pack": b"uploadpack", "git-receive-pack": b"receivepack"}.get(service)
        return self._config_bool(b"http", key) if key is not None else None

    def use_replace_refs(self) -> bool:
        """``core.useReplaceRefs`` (true unless set false): whether the repository's pages show a
        replaced commit's replacement, as ``git log`` in it does (``backends.git_web``).  A value
        git would not read refuses the page (``StorageError``)."""
        return self._config_bool(b"core", b"usereplacerefs") is not False

    def grafts(self) -> dict[bytes, list[bytes]]:
        """The repository's ``info/grafts`` (what older tools wrote to join or cut a history; git
        deprecates it but ``git log`` and gitweb still read it): each grafted commit's id and the
        parents its pages show instead of its own, in hex; empty without the file or off disk.  As
        git reads it: blank lines and ``#`` comments are skipped, so is a line that is not ids
        parted by single blanks (git says "bad graft data"), and a commit grafted twice keeps its
        first line."""
        path = self._disk_git_dir()
        if path is None:
            return {}
        try:
            with open(os.path.join(path, "info", "grafts"), "rb") as file:
                text = file.read(MAX_GRAFTS_FILE)
        except OSError:  # none (nearly every repository), or unreadable: no grafts, as git
            return {}
        width = object_format_of(self.object_store).hex_len
        found: dict[bytes, list[bytes]] = {}
        for line in text.split(b"\n"):
            line = line.rstrip()
            if not line or line.startswith(b"#"):
                continue
            ids = _GRAFT_BLANK.split(line)
            if not all(len(oid) == width and _HEX_ID.fullmatch(oid) for oid in ids):
                continue
            found.setdefault(ids[0].lower(), [oid.lower() for oid in ids[1:]])
        return found

    def receive_max_input_size(self) -> int:
        """``receive.maxInputSize``: the largest pack a push may send, in bytes (0: no bound of its own;
        -1 for a negative value, which git's unpack-objects and index-pack read as a bound below any
        pack: "pack exceeds maximum allowed size", a push of deletions alone excepted).

        A value git would not read refuses the push (``StorageError``, whose sentence the client
        sees), as does one of ``RECEIVE_START_NUMBERS``: this is read as the push starts.
        """
        self._check_numbers(RECEIVE_START_NUMBERS)
        self._check_booleans(RECEIVE_START_BOOLEANS)
        try:
            size = _git_int(self._config_last(b"receive", b"maxinputsize"), "receive.maxinputsize", 0)
        except ConfigValueError as exc:
            raise StorageError(str(exc)) from None
        return -1 if size < 0 else size

    def _check_numbers(self, keys: Iterable[tuple[bytes | tuple[bytes, ...], bytes]]) -> None:
        """``StorageError`` where a value of one of ``keys`` is a number git would not read: each value
        in the config files' order, as git's config callbacks meet them (a bad one dies even when a
        later one is good), but the last alone of ``LAST_ONLY_NUMBERS`` (``git_config_get_int``)."""
        for section, name in keys:
            values = self._config_values(section, name)
            key = ".".join(part.decode() for part in (*(section if isinstance(section, tuple) else (section,)), name))
            try:
                for value in values[-1:] if (section, name) in LAST_ONLY_NUMBERS else values:
                    _git_int(value, key, 0)
            except ConfigValueError as exc:
                raise StorageError(str(exc)) from None

    def _check_booleans(self, keys: Iterable[tuple[bytes, bytes]]) -> None:
        """``StorageError`` where a value of one of ``keys`` is a boolean git would not read (but for
        the words some of them take too, ``BOOLEAN_WORDS``), each value as git's config callback
        meets it: ``receive.denyDeletes = maybe`` then ``= true`` refuses every push."""
        for section, name in keys:
            key = f"{section.decode()}.{name.decode()}"
            words = BOOLEAN_WORDS.get(key, frozenset())
            try:
                for value in self._config_values(section, name):
                    if value.lower() not in words:
                        _git_bool(value, key)
            except ConfigValueError as exc:
                raise StorageError(str(exc)) from None

    def receive_keepalive(self) -> float:
        """``receive.keepAlive``: seconds of silence after which a push's client gets a keepalive
        while its pack is checked and committed (5 by default, 0 or less: never).  A value git would
        not read refused the push as it started (``receive_max_input_size``); read here mid-push, it
        would give the default."""
        return self._keepalive_setting(b"receive")

    def upload_keepalive(self) -> float:
        """``uploadpack.keepAlive``: the same while a fetch's pack is counted (5; 0 or less: never)."""
        return self._keepalive_setting(b"uploadpack")

    def _keepalive_setting(self, section: bytes) -> float:
        try:
            return float(_git_int(self._config_last(section, b"keepalive"), section.decode() + ".keepalive",
                                  KEEPALIVE_SECONDS))
        except ConfigValueError:
            return float(KEEPALIVE_SECONDS)

    def push_cert_settings(self) -> PushCertSettings | None:
        """What signed pushes need of the repository's config: None unless ``receive.certNonceSeed``
        is set (then git's receive-pack offers ``push-cert``).

        ``gpg.openpgp.program`` (else ``gpg.program``), ``gpg.x509.program`` and ``gpg.ssh.program``
        name the programs that check each kind of signature (``gpg``, ``gpgsm``, ``ssh-keygen``
        by default), ``gpg.ssh.allowedSignersFile`` and ``gpg.ssh.revocationFile`` what
        ``ssh-keygen`` checks against; ``~`` is expanded and a relative name is the git
        directory's.  A value git would not read refuses the push (``StorageError``).
        """
        seed = self._config_last(b"receive", b"certnonceseed")
        if seed is None:
            return None
        try:
            slop = max(0, _git_int(self._config_last(b"receive", b"certnonceslop"), "receive.certnonceslop", 0))
        except ConfigValueError as exc:
            raise StorageError(str(exc)) from None

        def text(value: bytes | None) -> str | None:
            return value.decode("utf-8", "surrogateescape") if value else None

        def path(value: bytes | None) -> str | None:
            return self._config_path(value) if value else None

        openpgp = self._config_last((b"gpg", b"openpgp"), b"program") or self._config_last(b"gpg", b"program")
        programs = {"openpgp": text(openpgp) or "gpg",
                    "x509": text(self._config_last((b"gpg", b"x509"), b"program")) or "gpgsm",
                    "ssh": text(self._config_last((b"gpg", b"ssh"), b"program")) or "ssh-keygen"}
        return PushCertSettings(
            seed=seed, slop=slop, programs=programs,
            allowed_signers=path(self._config_last((b"gpg", b"ssh"), b"allowedsignersfile")),
            revocation_file=path(self._config_last((b"gpg", b"ssh"), b"revocationfile")),
            cwd=self._disk_git_dir())

    def _store_blob(self, data: bytes) -> ObjectId:
        """Write ``data`` as a blob into the object store (not the quarantine, as git's receive-pack
        writes a push certificate) and return its id."""
        blob = Blob.from_string(data)
        self.object_store.add_object(blob)
        store_format = getattr(self.object_store, "object_format", None)
        return ObjectId(bytes(blob.get_id(store_format) if store_format is not None else blob.id))

    def lfs(self) -> LfsStore | None:
        """The repository's Git LFS objects (``<git dir>/lfs/objects``); None for one not on disk."""
        git_dir = self._disk_git_dir()
        return LfsStore(git_dir, perm=self.shared_perm()) if git_dir is not None else None

    def hook_location(self) -> HookLocation | None:
        """Where this repository's receive hooks are: on disk only (``core.hooksPath`` or ``hooks/``).

        They run in the git directory, also of a repository with a working tree, as git's
        receive-pack runs them (a relative ``core.hooksPath`` is taken from there too).
        """
        git_dir = self._disk_git_dir()
        if git_dir is None:
            return None
        config = self._config()
        try:
            configured = config.get((b"core",), b"hookspath") if config is not None else b""
        except KeyError:
            configured = b""
        if configured:
            hooks_dir = os.path.join(git_dir, os.path.expanduser(configured.decode("utf-8", "surrogateescape")))
        else:
            hooks_dir = os.path.join(git_dir, "hooks")
        return HookLocation(hooks_dir, git_dir, git_dir, object_env=self._quarantine_environment,
                            store_blob=self._store_blob)

    def _quarantine_environment(self) -> dict[str, str]:
        """What a hook's git commands need to read this push's objects while they wait (none after)."""
        return git_ingest.quarantine_environment(self._quarantines)

    def update_refs(self, updates: Sequence[RefUpdate], atomic: bool,
                    hooks: ReceiveHooks | None = None) -> Sequence[RefResult]:
        """Check names and connectivity, then compare-and-swap each ref under the repo lock.

        With ``hooks``, pre-receive sees every update (as git's, those its early checks refused too),
        then the update hook each one still standing; post-receive gets those that were made.
        """
        self._memo = _CheckMemo()  # what the checks of many refs share (objects only come and stay meanwhile)
        self._write_errors.clear()  # (this push's alone: one refused before they were taken is gone)
        try:
            return self._update_refs(updates, atomic, hooks)
        finally:
            self._memo = None

    def _update_refs(self, updates: Sequence[RefUpdate], atomic: bool,
                     hooks: ReceiveHooks | None) -> Sequence[RefResult]:
        try:
            rules = self.receive_rules()
        except ConfigValueError as exc:
            with self._lock():
                self._discard_added()
            return [RefResult(u.ref, str(exc)) for u in updates]
        head = self._head_target()
        current = self._checked_out(head)
        linked = self._linked_checkouts()
        hidden = self.hidden_refs("receive-pack")
        # as git's receive-pack: the commands a proc-receive hook takes are checked for hidden refs
        # and missing objects only, then handed to it instead of being made (unless it lets them fall through)
        proc = {u.ref for u in updates if git_proc_receive.matches(rules.proc_refs, u.ref, u.old, u.new)}
        # as git's receive-pack: a name it refuses (funny, too deep) is refused once pre-receive has
        # seen it, as each ref is updated; meanwhile nothing reads the storage by that name
        names = {u.ref: named for u in updates if u.ref not in proc and (named := _name_refusal(u.ref)) is not None}
        checked = [(u, NAME_PENDING if u.ref in names else self._proc_refusal(u, hidden) if u.ref in proc
                    else self._refusal(u, head, hidden, rules)) for u in updates]
        # as git's receive-pack: a deletion of a ref that was not there is not told to post-receive
        # and post-update (its ``did_not_exist``), though pre-receive and update hear of it
        absent = frozenset(u.ref for u, reason in checked
                           if reason is None and u.ref not in proc and self._deletes_nothing(u))
        if hooks is not None:
            checked = _pre_receive_verdicts(checked, hooks)
        # as git's receive-pack: the receive.* settings refuse what pre-receive let through
        checked = [(u, names[u.ref] if reason is NAME_PENDING
                    else self._late_refusal(u, current, rules, linked) if reason is None and u.ref not in proc
                    else reason)
                   for u, reason in checked]
        self._told = b"".join(self._told_of(u, reason, current, rules, linked)
                              for u, reason in checked if u.ref not in proc)
        try:
            return self._make_updates(updates, checked, atomic, hooks, head, hidden, rules, proc, absent, current)
        finally:
            git_ingest.release_keeps(self._keeps)  # the refs name the packs' objects now (or never will)
            self._keeps.clear()

    def _make_updates(self, updates: Sequence[RefUpdate], checked: list[tuple[RefUpdate, str | None]],
                      atomic: bool, hooks: ReceiveHooks | None, head: bytes | None,
                      hidden: Callable[[bytes], bool], rules: ReceiveRules, proc: set[bytes],
                      absent: frozenset[bytes], current: bytes | None) -> Sequence[RefResult]:
        """The checked updates made (after the push's objects leave their quarantine); post-receive
        is told those made, but for deletions of the ``absent`` refs.  ``head``: HEAD's own target;
        ``current``: the branch it leads to (``_checked_out``)."""
        deploy = None  # as git's receive-pack: after the update hook, before the ref moves
        if not self.bare and current is not None and rules.deny_current_branch == UPDATE_INSTEAD:
            deploy = Deploy(current, lambda update: self._update_worktree(update, hooks))
        transaction_hook = _transaction_hook(hooks)
        # as git's receive-pack: without atomic, each ref's update hook runs just before its transaction
        update_each = hooks.update if hooks is not None and transaction_hook is not None and not atomic else None
        checked = self._settle_quarantines(checked, atomic)
        handled: dict[bytes, RefResult] = {}
        if proc:
            handled, checked = self._run_proc_receive(checked, proc, atomic, hooks, head, hidden, rules)
        own = [(u, reason) for u, reason in checked if u.ref not in handled]
        standing = [u.ref for u, reason in own if reason is None]  # an update hook's refusal fails an atomic push
        if hooks is not None and update_each is None:
            own = _update_verdicts(own, hooks, atomic)
        with self._lock():
            made_here = dict(zip([u.ref for u, _ in own],
                                 self._apply(own, atomic, transaction_hook, head, update_each, deploy), strict=True))
            if atomic and any(made_here[ref].reason is not None for ref in standing):  # git fails the hook's too
                handled = {ref: r if r.reason is not None else RefResult(ref, ATOMIC_FAILURE)
                           for ref, r in handled.items()}
            results = [handled.get(u.ref) or made_here[u.ref] for u in updates]
            moved = any(r.reason is None and not is_zero_id(u.new) for u, r in zip(updates, results, strict=True))
            declined = any(r.reason in HOOK_REFUSALS for r in results)
            # incomplete objects never stay; declined or unchecked ones go, as from git's quarantine
            if self._whole is False or (not moved and (declined or self._whole is None)):
                self._discard_added()
            else:
                self._adopted()
        git_ingest.release_keeps(self._keeps)  # as git's receive-pack: before post-receive
        self._keeps.clear()
        if hooks is not None:
            told = []
            for u, r in zip(updates, results, strict=True):
                if r.reason is None and u.ref not in absent:  # where a proc-receive hook put it, as git tells it
                    told += [RefUpdate(p.refname or u.ref, ObjectId(p.old or u.old), ObjectId(p.new or u.new))
                             for p in r.reports] or [u]
            hooks.post_receive(told)
        if any(r.reason is None for r in results):
            self._update_server_info()
        return results

    def _update_server_info(self) -> None:
        """After a push that changed refs, ``info/refs`` and ``objects/info/packs`` for the dumb HTTP
        protocol, where ``receive.updateServerInfo`` asks for them (as git's receive-pack runs
        ``update-server-info``); a failure is told through ``reflog_failures``."""
        git_dir = self._disk_git_dir()
        if git_dir is None:
            return
        try:
            if not _git_bool(self._config_last(b"receive", b"updateserverinfo"), "receive.updateserverinfo"):
                return
            store = self.object_store
            refs = sorted((name, oid) for name, oid in self.refs().items() if name.startswith(b"refs/"))
            ends = git_pack.peel_many(store, [oid for _name, oid in refs])  # (a too long chain: unpeeled)
            git_maintenance.write_server_info(
                git_dir, [(name, oid, ends[oid]) for name, oid in refs], self.shared_perm())
        except (OSError, ConfigValueError, KeyError, ObjectFormatException) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.reflog_failures.append(f"info/refs for dumb HTTP clients could not be written ({why})")

    def _proc_refusal(self, update: RefUpdate, hidden: Callable[[bytes], bool]) -> str | None:
        """What git's receive-pack checks of a command before a proc-receive hook gets it."""
        if hidden(update.ref):
            return "deny deleting a hidden ref" if is_zero_id(update.new) else "deny updating a hidden ref"
        if not is_zero_id(update.new) and not self._connected(update.new):
            return MISSING_OBJECTS
        return None

    def _run_proc_receive(self, checked: list[tuple[RefUpdate, str | None]], proc: set[bytes], atomic: bool,
                          hooks: ReceiveHooks | None, head: bytes | None, hidden: Callable[[bytes], bool],
                          rules: ReceiveRules) -> tuple[dict[bytes, RefResult], list[tuple[RefUpdate, str | None]]]:
        """Hand the standing commands of ``proc`` to the ``proc-receive`` hook, as git's receive-pack
        does: the results of those it took, and ``checked`` with those it let fall through checked
        as the server's own and, when it failed in an atomic push, every other one refused."""
        mine = [u for u, reason in checked if u.ref in proc and reason is None]
        if not mine:
            return {}, checked
        run = getattr(hooks, "proc_receive", None)
        reports, ok = run(mine, atomic) if run is not None else (None, False)
        said: dict[bytes, list[git_proc_receive.Report]] = {}
        for report in reports or ():
            said.setdefault(report.ref, []).append(report)
        handled: dict[bytes, RefResult] = {}
        falling: set[bytes] = set()
        for u in mine:
            told = said.get(u.ref, [])
            refused = next((r.reason for r in told if r.reason is not None), None)
            if refused is not None:
                handled[u.ref] = RefResult(u.ref, refused)
            elif any(r.fall_through for r in told):
                falling.add(u.ref)
            elif told:
                handled[u.ref] = RefResult(u.ref, None, tuple(RefReport(r.refname, r.old, r.new, r.forced)
                                                                for r in told if r.has_options))
            else:  # git's words: it answered, but not of this one; or it never got to answering
                handled[u.ref] = RefResult(u.ref, "proc-receive failed to report status" if reports is not None
                                           else PROC_FAILED)
        out = []
        for u, reason in checked:
            if u.ref in falling:
                reason = PROC_FAILED if atomic and not ok else (self._refusal(u, head, hidden, rules)
                                                                 or self._late_refusal(u, head, rules))
            elif u.ref not in proc and reason is None and atomic and not ok:
                reason = PROC_FAILED
            out.append((u, reason))
        return handled, out

    def _settle_quarantines(self, checked: list[tuple[RefUpdate, str | None]], atomic: bool
                            ) -> list[tuple[RefUpdate, str | None]]:
        """As git's receive-pack after pre-receive: move the push's objects into the store when an
        update that needs them still stands (its checks passed, so they are whole) and may still
        be made (an atomic push with a refused ref makes none), else drop them."""
        quarantines = self._take_quarantines()
        if not quarantines:
            return checked
        doomed = atomic and any(reason is not None for _, reason in checked)
        if doomed or not any(reason is None and not is_zero_id(u.new) for u, reason in checked):
            for quarantine in quarantines:
                quarantine.drop()
            return checked
        try:
            for quarantine in quarantines:
                self._keeps += quarantine.migrate()
        except OSError as exc:
            gone = _quarantine_removed(exc, quarantines)
            for quarantine in quarantines:
                quarantine.drop()
            why = QUARANTINE_REMOVED if gone else exc.strerror or str(exc)
            reason = f"unable to migrate objects to permanent storage: {why}"  # git's words, then why
            return [(u, reason if r is None else r) for u, r in checked]
        return checked

    def _take_quarantines(self) -> list[git_ingest.Quarantine]:
        """This push's quarantines, now the caller's to migrate or drop (their packs closed)."""
        for pack in self._quarantined_packs:
            pack.close()
        self._quarantined_packs.clear()
        quarantines, self._quarantines = self._quarantines, []
        return quarantines

    def _head_target(self) -> bytes | None:
        """The branch HEAD names (read alone: ``symrefs()`` reads every ref)."""
        return _symref_target(self.dulwich_repo.refs.read_ref(HEAD))

    def _checked_out(self, head: bytes | None) -> bytes | None:
        """The branch HEAD leads to, HEAD's own target ``head`` followed through the symbolic refs
        it is (HEAD -> ``refs/heads/sym`` -> ``refs/heads/a``: ``a``, born or not), as git's
        receive-pack resolves HEAD for ``receive.denyCurrentBranch``, ``denyDeleteCurrent`` and
        ``updateInstead``; None where git reads ``MAX_SYMREF_DEPTH`` refs, HEAD's included, and
        finds no end (a loop, a longer chain), as git then has no current branch."""
        name, seen = head, list[bytes]()
        refs = self.dulwich_repo.refs
        while name is not None and len(seen) < MAX_SYMREF_DEPTH - 1:
            seen.append(name)
            try:
                target = _symref_target(refs.read_ref(Ref(name)))
            except (OSError, ValueError):
                return name
            if target is None:
                return name
            if target in seen:
                return None
            name = target
        return None

    def _own_busy_branches(self) -> list[bytes]:
        """The branches the repository's own working tree, detached, is rebasing or bisecting (``_busy_branches``)."""
        controldir = getattr(self.dulwich_repo, "controldir", None)
        if controldir is None:
            return []
        own = os.fsdecode(controldir())
        return _busy_branches(own) if _detached(_small_file(os.path.join(own, "HEAD"))) else []

    def _linked_checkouts(self) -> frozenset[bytes]:
        """The branches the repository's linked working trees have checked out (``git worktree add``:
        ``worktrees/ID/HEAD`` each, followed through symbolic refs as ``_checked_out``), which git's
        receive-pack refuses to move (``receive.denyCurrentBranch``) or delete as it refuses HEAD's.
        A detached tree, its own too when the repository is not bare, has the branch it is in the
        middle of rebasing or bisecting checked out, as git's ``find_shared_symref`` finds it
        (``_busy_branches``).  At most ``MAX_LINKED_WORKTREES`` are read, each HEAD's first
        ``MAX_LOOSE_HEAD`` bytes; none off disk."""
        controldir = getattr(self.dulwich_repo, "controldir", None)
        if controldir is None:
            return frozenset()
        found: set[bytes] = set()
        own = os.fsdecode(controldir())
        if not self.bare:
            found.update(self._own_busy_branches())
        try:
            with os.scandir(os.path.join(own, "worktrees")) as entries:
                for entry in itertools.islice(entries, MAX_LINKED_WORKTREES):
                    head = _small_file(os.path.join(entry.path, "HEAD"))
                    target = _symref_target(head)
                    if target is not None and (branch := self._checked_out(target)) is not None:
                        found.add(branch)
                    elif _detached(head):
                        found.update(_busy_branches(entry.path))
        except OSError:  # (no worktrees/: the usual repository)
            pass
        return frozenset(found)

    def _refusal(self, update: RefUpdate, head: bytes | None, hidden: Callable[[bytes], bool],
                 rules: ReceiveRules) -> str | None:
        damage = self.ref_damage(update.ref)
        if damage is not None:  # git: "bad object"; it hid the packed value it would overwrite
            return (f"the server's file of this ref is damaged ({damage}); tell the server's operator "
                    "('git fsck' in the repository names it)")
        deletion = is_zero_id(update.new)
        if hidden(update.ref):
            return "deny updating a hidden ref"  # git's words
        if not deletion and not self._connected(update.new):
            return MISSING_OBJECTS
        return None

    def _late_refusal(self, update: RefUpdate, head: bytes | None, rules: ReceiveRules,
                      linked: frozenset[bytes] = frozenset()) -> str | None:
        """What git's receive-pack refuses once pre-receive ran, before the update hook: the
        repository's ``receive.*`` settings (a checked-out branch, a deletion, a non-fast-forward).
        ``head``: the branch HEAD leads to; ``linked``: those of its linked working trees, each
        checked out as git's ``find_shared_symref`` finds them."""
        branch = update.ref.startswith(HEADS_PREFIX)
        deletion = is_zero_id(update.new)
        in_linked = update.ref in linked
        if (in_linked or not self.bare and update.ref == head) and rules.deny_current_branch == REFUSE:
            return CHECKED_OUT
        if (in_linked and not deletion and rules.deny_current_branch == UPDATE_INSTEAD
                and (self.bare or update.ref != head)):
            if not self.bare and update.ref in self._own_busy_branches():
                return BUSY_CHECKOUT  # (git would update the tree under the rebase or bisect)
            return LINKED_CHECKOUT  # (git would update that tree; hgwire updates only its own)
        if deletion and branch and rules.deny_deletes:
            return DELETION_PROHIBITED
        if deletion and (in_linked or update.ref == head) and rules.deny_delete_current not in (IGNORE, WARN):
            return CURRENT_DELETION_PROHIBITED
        # (a branch naming a tree, blob or tag fails later, where git's refs code fails it; with
        # denyNonFastForwards, here, where git compares the two)
        if self._compares_non_commits(update, rules):
            return BAD_REF  # git's words (its "error: bad sha1 objects for …" goes to its own stderr)
        if (branch and rules.deny_non_fast_forwards and not deletion and not is_zero_id(update.old)
                and not git_pack.is_ancestor(self.object_store, update.old, update.new)):
            return NON_FAST_FORWARD
        return None

    def _compares_non_commits(self, update: RefUpdate, rules: ReceiveRules) -> bool:
        """``receive.denyNonFastForwards`` would compare a branch's old and new ids, one of which is
        no commit (a tree or blob pushed to it, or one it named)."""
        return (update.ref.startswith(HEADS_PREFIX) and rules.deny_non_fast_forwards and not is_zero_id(update.new)
                and not is_zero_id(update.old) and not (self._is_commit(update.old) and self._is_commit(update.new)))

    _told = b""

    def take_write_errors(self) -> list[OSError]:
        """The errors of the last push's refs that could not be written (each ref's result says
        ``failed to update ref: No space left on device``), each naming its file, once: the
        service warns its operator of one the disk made."""
        taken, self._write_errors[:] = list(self._write_errors), []
        return taken

    def take_told(self) -> bytes:
        """What git's receive-pack would have told the pusher about the last push's refs (its
        ``error:``/``warning:`` lines on band 2: which setting refused a ref, how to change it),
        once; the session shows it as ``remote:`` lines."""
        told, self._told = self._told, b""
        return told

    def _told_of(self, update: RefUpdate, reason: str | None, head: bytes | None, rules: ReceiveRules,
                 linked: frozenset[bytes] = frozenset()) -> bytes:
        name = update.ref.decode("utf-8", "replace")
        deletion = is_zero_id(update.new)
        checked_out = update.ref in linked or not self.bare and update.ref == head
        lines: list[str] = []
        if reason == FUNNY_REFNAME:
            lines.append(f"error: refusing to create funny ref {quoted(update.ref, MAX_TOLD_NAME)} remotely")
        elif reason == CHECKED_OUT:
            lines.append(f"error: refusing to update checked out branch: {name}")
            if not rules.current_branch_set:
                lines.append("error: " + UNCONFIGURED_CURRENT_BRANCH)
        elif reason == DELETION_PROHIBITED:
            lines.append(f"error: denying ref deletion for {name}")
        elif reason == CURRENT_DELETION_PROHIBITED:
            if not rules.delete_current_set:
                lines.append("error: " + UNCONFIGURED_DELETE_CURRENT)
            lines.append(f"error: refusing to delete the current branch: {name}")
        elif reason == NON_FAST_FORWARD:
            lines.append(f"error: denying non-fast-forward {name} (you should pull first)")
        elif reason is None and checked_out and not deletion and rules.deny_current_branch == WARN:
            lines.append("warning: updating the current branch")
        elif reason is None and deletion:
            if (update.ref == head or update.ref in linked) and rules.deny_delete_current == WARN:
                lines.append("warning: deleting the current branch")
            if self._deletes_nothing(update):
                lines.append("warning: deleting a non-existent ref")
        return "".join(line + "\n" for line in lines).encode("utf-8")

    def _deletes_nothing(self, update: RefUpdate) -> bool:
        """Whether ``update`` deletes a ref that is not there, as git's receive-pack finds it: only
        when the old id names no object either (a ref another push deleted meanwhile names one, and
        its deletion then fails to lock it)."""
        return (is_zero_id(update.new) and self._current(update.ref) == self.object_format.zero
                and not self._has_object(update.old))

    def _has_object(self, oid: ObjectId) -> bool:
        return not is_zero_id(oid) and ObjectID(oid) in self.object_store

    def _is_commit(self, oid: ObjectId) -> bool:
        memo = self._memo
        if memo is not None and oid in memo.commits:
            return memo.commits[oid]
        try:
            type_num, _ = self.object_store.get_raw(ObjectID(oid))
        except KeyError:
            return False
        if memo is not None:
            memo.commits[oid] = type_num == COMMIT_TYPE
        return type_num == COMMIT_TYPE

    def _apply(self, checked: list[tuple[RefUpdate, str | None]], atomic: bool,
               transaction_hook: TransactionHook | None = None, head: bytes | None = None,
               update_hook: Callable[[RefUpdate], bool] | None = None,
               deploy: Deploy | None = None) -> list[RefResult]:
        """Make the updates that passed the checks: all or none when ``atomic``.

        With a ``reference-transaction`` hook, each update is a transaction of its own (all of
        them one transaction when ``atomic``), as in git's receive-pack: once its refs are checked
        against their old values under the lock, the hook is told "prepared" (a refusal declines
        it, then "aborted"), and "committed" once they are written.  ``update_hook``, when given,
        runs for each update just before its transaction (a refusal declines it).  ``deploy``
        updates the working tree for the checked-out branch's update just before its ref moves (a
        failure refuses it).
        """
        if atomic and any(reason for _, reason in checked):  # git's words: one ref refused, the others are not made
            return [RefResult(u.ref, reason or ATOMIC_FAILURE) for u, reason in checked]
        checked = self._non_commit_branches(_name_conflicts(checked, self.dulwich_repo.refs.allkeys()), atomic)
        if atomic and any(reason for _, reason in checked):  # their transaction cannot be made
            return [RefResult(u.ref, reason if reason and reason != NON_COMMIT_BRANCH else ATOMIC_TRANSACTION_FAILED)
                    for u, reason in checked]
        if atomic and deploy is None:
            held_results = self._atomic_held([u for u, _ in checked], transaction_hook, head)
            if held_results is not None:
                self._repair_head()
                return held_results
        if atomic:
            current = self.refs()
            stale = next((u for u, _ in checked if current.get(u.ref, self.object_format.zero) != u.old), None)
            if stale is not None:  # git's commit fails at its first such ref, and says why
                _, said = self._lost_race(stale)
                return [RefResult(u.ref, ATOMIC_TRANSACTION_FAILED, cause=said if u is stale else None)
                        for u, _ in checked]
            if deploy is not None:
                refused = {u.ref: reason for u, _ in checked if (reason := deploy.before(u))}
                if refused:
                    return [RefResult(u.ref, refused.get(u.ref, ATOMIC_FAILURE)) for u, _ in checked]
                deploy = None  # (git's receive-pack deploys each before its ref transaction takes the locks)
                held_results = self._atomic_held([u for u, _ in checked], transaction_hook, head)
                if held_results is not None:
                    self._repair_head()
                    return held_results
        if transaction_hook is None:
            ready = [u for u, reason in checked if reason is None]
            packed = {**self._delete_packed(ready), **self._create_packed(ready)} if deploy is None else {}
            results = [RefResult(u.ref, packed[u.ref] if u.ref in packed
                                 else reason or (deploy and deploy.before(u)) or self._swap(u))
                       for u, reason in checked]
        elif atomic:
            results = self._transaction(transaction_hook, [u for u, _ in checked], head)
        else:
            results = []
            for u, reason in checked:
                if reason is None and update_hook is not None and not update_hook(u):
                    reason = UPDATE_DECLINED
                if reason is None and deploy is not None:
                    reason = deploy.before(u)
                results.append(RefResult(u.ref, reason) if reason is not None
                               else self._transaction(transaction_hook, [u], head)[0])
        self._repair_head()
        return results

    def _atomic_held(self, updates: list[RefUpdate], hook: TransactionHook | None = None,
                     head: bytes | None = None, alone: bool = False) -> list[RefResult] | None:
        """An atomic push's updates made as git's ref transaction makes them: every ref's own lock
        taken first (waiting ``core.filesRefLockTimeout`` for one another process holds), every
        value checked under them, then the packed refs deleted (under ``packed-refs.lock``), the
        loose files removed and written, each reflog appended, and only then the locks let go.
        One lock that cannot be taken, one ref that moved, or ``packed-refs`` that cannot be
        rewritten fails them all with nothing changed.  ``hook`` (``reference-transaction``) is told
        "prepared" once every lock is held and every value checked (a refusal: "aborted", nothing
        changed), then "committed" once the locks are let go, as git's transaction tells it; an
        ``updateInstead`` deploy has updated the working tree before (git's ``update()`` does, before
        its transaction).  ``alone``: one ref's transaction of a push without ``--atomic`` (its
        refusal in the words ``_swap`` gives, no ``error:`` line but ``_lost_race``'s).  None, for the usual way, off disk or where
        a symbolic ref is among them (its target is what moves).  The refs were checked under
        hgwire's own lock alone, then written one by one: a ``git update-ref`` or git's
        receive-pack moving the second after the first was written left the push half made."""
        refs = self.dulwich_repo.refs
        if not isinstance(refs, DiskRefsContainer) or not isinstance(refs.path, bytes) or any(
                u.ref == HEAD or _symref_target(refs.read_loose_ref(Ref(u.ref))) is not None for u in updates):
            return None
        with _LooseLocks(refs.path) as held:
            for update in updates:
                if not is_zero_id(update.new) and (blocked := _clear_way(refs, Ref(update.ref))) is not None:
                    return self._all_failed(updates, update, f"failed to update ref: {blocked}", alone=alone)
                try:
                    refused = self._take_waiting(held, refs.refpath(Ref(update.ref)))
                except OSError as exc:  # a name too long for the file system, a read-only or full disk
                    name = update.ref.decode("utf-8", "replace")
                    if alone:
                        self._write_errors.append(_naming(exc, refs.refpath(Ref(update.ref))))
                        return self._all_failed(updates, update, f"failed to update ref: {exc.strerror or exc}",
                                                alone=True)
                    return self._all_failed(updates, update, f"cannot lock ref '{name}': {exc.strerror or exc}")
                if refused == "":  # (a file where its directory goes: one the push deletes makes room
                    return None  # the usual way, a ref at a time)
                if refused is not None:
                    return self._all_failed(updates, update, refused, alone=alone)
            for update in updates:  # (a symbolic ref the client named, HEAD naming one: theirs too, as git's)
                for loose in self._also_locked(update):
                    try:
                        refused = self._take_waiting(held, loose)
                    except OSError as exc:
                        name = os.fsdecode(os.path.relpath(loose, refs.path))
                        refused = f"cannot lock ref '{name}': {exc.strerror or exc}"
                    if refused:
                        return self._all_failed(updates, update, refused, alone=alone)
            stale = next((u for u in updates if self._current(u.ref) != u.old), None)
            if stale is not None:
                reason, said = self._lost_race(stale)
                return self._all_failed(updates, stale, reason if alone else said, told=True, alone=alone)
            packed_lock = self._packed_lock(refs, updates)  # (before the hook is told, as git's prepare takes it)
            if isinstance(packed_lock, str):
                return self._all_failed(updates, next(u for u in updates if is_zero_id(u.new)), packed_lock,
                                        alone=alone)
            try:
                packing = self._packing(updates)
                failed = self._prepare_all(refs, updates, packing, alone)  # (before the hook, as git's prepare)
                if failed is not None:
                    return failed
                if hook is not None and updates and not hook("prepared", updates, head):  # (every lock held)
                    hook("aborted", updates, head)
                    return [RefResult(u.ref, REFERENCE_TRANSACTION_DECLINED) for u in updates]
                made, removed = self._commit_held(refs, updates, held, packing, alone, packed_lock)
            finally:
                if packed_lock is not None:
                    packed_lock.abort()  # (unless written: then a no-op)
        for loose in removed:
            remove_empty_parents(refs.path, loose)
        if hook is not None and updates:  # (told once the locks are let go, as git tells it)
            done = {r.ref for r in made if r.reason is None}
            if done:
                hook("committed", [u for u in updates if u.ref in done], head)
            if len(done) < len(updates):
                hook("aborted", [u for u in updates if u.ref not in done], head)
        return made

    def _take_waiting(self, held: _LooseLocks, loose: bytes) -> str | None:
        """Take ``loose``'s lock, waiting while another process holds it as ``_retrying_locked``
        waits (``core.filesRefLockTimeout``); None once held, else why it is not, in git's words
        ("" when there is no place for it: a file where a directory goes)."""
        lock = loose + b".lock"

        def taken() -> bool:
            if held.take(loose, strict=True):
                return True
            if os.path.lexists(lock):
                raise FileLocked(loose, lock)
            return False  # (no place for it: a file where a directory goes)

        try:
            if self._retrying_locked(taken):
                return None
        except FileLocked as exc:
            return self._locked_reason(exc)
        return ""

    def _all_failed(self, updates: list[RefUpdate], failed: RefUpdate, reason: str,
                    told: bool = False, alone: bool = False) -> list[RefResult]:
        """An atomic transaction failed at ``failed`` (why: ``reason``, told to the pusher in an
        ``error:`` line as git's receive-pack tells it, unless ``told`` already), nothing changed;
        ``alone`` (one ref's transaction, not atomic): ``reason`` is its result, told nothing."""
        if alone:
            return [RefResult(u.ref, reason) for u in updates]
        if not told:
            self._told += f"error: {reason}\n".encode()
        return [RefResult(u.ref, ATOMIC_TRANSACTION_FAILED, cause=reason if u is failed else None) for u in updates]

    def _packed_lock(self, refs: DiskRefsContainer, updates: list[RefUpdate]) -> _GitFile | str | None:
        """``packed-refs.lock``, taken (waiting ``core.packedRefsTimeout``) when ``updates`` delete a
        packed ref, as git's transaction takes it before its ``reference-transaction`` hook is told
        "prepared" (a ``git pack-refs`` the hook runs then is refused, as under git); None when
        none is packed, else why it cannot be taken."""
        packed = refs.get_packed_refs()
        if not any(is_zero_id(u.new) and Ref(u.ref) in packed for u in updates):
            return None
        path = os.path.join(refs.path, b"packed-refs")
        try:
            return self._retrying_locked(lambda: GitFile(path, "wb"))
        except FileLocked as exc:
            return self._locked_reason(exc)
        except OSError as exc:
            return f"failed to update ref: {exc.strerror or exc}"

    @staticmethod
    def _packing(updates: list[RefUpdate]) -> set[bytes]:
        """The creations ``_commit_held`` writes into ``packed-refs`` (many at once), not loose."""
        creations = [u.ref for u in updates if is_zero_id(u.old) and not is_zero_id(u.new)]
        return set(creations) if len(creations) >= PACKED_CREATIONS_MIN else set()

    def _prepare_all(self, refs: DiskRefsContainer, updates: list[RefUpdate], packing: set[bytes],
                     alone: bool) -> list[RefResult] | None:
        """Every value written loose put into its lock file (held), as git's ref transaction
        prepares them before its ``reference-transaction`` hook is told "prepared" (a hook reading
        ``refs/heads/main.lock`` then finds the new value, as under git: it was written after the
        hook); None, else the results of a transaction that fails whole (a full disk), nothing
        changed."""
        for update in updates:
            if not is_zero_id(update.new) and update.ref not in packing:
                reason = self._prepare_held(refs.refpath(Ref(update.ref)), update.new)
                if reason is not None:
                    return self._all_failed(updates, update, reason, alone=alone)
        return None

    def _commit_held(self, refs: DiskRefsContainer, updates: list[RefUpdate], held: _LooseLocks,
                     packing: set[bytes], alone: bool = False,
                     packed_lock: _GitFile | None = None) -> tuple[list[RefResult], list[bytes]]:
        """Write ``updates`` whose locks are held, values checked and put into their lock files
        (``_prepare_all``): the results, and the loose files removed (their empty directories go
        once the locks are let go).  As git's ref transaction, every value written loose is in its
        lock file before anything changes: one that cannot be written (a full disk) failed them
        all; they were written and renamed a ref at a time, the refs before it moved.
        ``packing``: the creations written into ``packed-refs`` (``_packing``); ``packed_lock``:
        ``packed-refs.lock``, held already (``_packed_lock``)."""
        deletions = [u for u in updates if is_zero_id(u.new)]
        creations = [u for u in updates if is_zero_id(u.old) and not is_zero_id(u.new)]
        packed = refs.get_packed_refs()
        if any(Ref(u.ref) in packed for u in deletions) and \
                self._packed_deletions(refs, deletions, wait=True, lock=packed_lock) is None:
            lock = os.path.join(refs.path, b"packed-refs.lock")
            return self._all_failed(updates, deletions[0], self._locked_reason(FileLocked(lock[:-5], lock)),
                                    alone=alone), []
        added = (self._packed_creations(refs, creations) or {}) if packing else {}
        invalidate = getattr(refs, "_invalidate_packed_refs_cache", None)
        if invalidate is not None:
            invalidate()
        results: list[RefResult] = []
        removed: list[bytes] = []
        for update in updates:
            loose = refs.refpath(Ref(update.ref))
            if is_zero_id(update.new):
                reason = self._remove_loose(loose, removed)
            elif update.ref in added:
                reason = None
            else:  # (packed-refs could not take a creation: it is written loose, as the others)
                reason = self._prepare_held(loose, update.new) if update.ref in packing else None
                reason = reason or self._rename_held(loose)
                if reason is None:
                    held.committed(loose)
            if reason is None:
                self._share_written(update.ref)
                self._log_update(update)  # (under the ref's lock, as git writes its reflog)
            results.append(RefResult(update.ref, reason))
        return results, removed

    def _prepare_held(self, loose: bytes, new: bytes) -> str | None:
        """Write ``new`` into ``loose``'s lock file (held), as git's ref transaction prepares a
        ref; None, else why not."""
        try:
            fd = os.open(loose + b".lock", os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
            try:
                os.write(fd, new + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._write_errors.append(_naming(exc, loose))
            return f"failed to update ref: {exc.strerror or exc}"
        return None

    def _rename_held(self, loose: bytes) -> str | None:
        """Rename ``loose``'s lock file (its value written) into place, as git commits a ref's
        lock; None, else why not."""
        try:
            os.rename(loose + b".lock", loose)
        except OSError as exc:
            self._write_errors.append(_naming(exc, loose))
            return f"failed to update ref: {exc.strerror or exc}"
        return None

    def _non_commit_branches(self, checked: list[tuple[RefUpdate, str | None]], atomic: bool
                             ) -> list[tuple[RefUpdate, str | None]]:
        """Refuse a branch that would name a tree, blob or tag, as git's refs code refuses to write
        it (after the hooks): ``failed to update ref``, and its words in an ``error:`` line the
        pusher is told (``take_told``); an atomic transaction stops at the first."""
        out: list[tuple[RefUpdate, str | None]] = []
        for update, reason in checked:
            if (reason is None and update.ref.startswith(HEADS_PREFIX) and not is_zero_id(update.new)
                    and not self._is_commit(update.new)):
                if not (atomic and any(r == NON_COMMIT_BRANCH for _, r in out)):
                    name, oid = update.ref.decode("utf-8", "replace"), update.new.decode("ascii")
                    self._told += (f"error: cannot update ref '{name}': trying to write non-commit object "
                                   f"{oid} to branch '{name}'\n").encode()
                reason = NON_COMMIT_BRANCH
            out.append((update, reason))
        return out

    def _transaction(self, hook: TransactionHook, updates: list[RefUpdate], head: bytes | None
                     ) -> list[RefResult]:
        """One ref transaction told to the ``reference-transaction`` hook (under the repo lock); one
        of no ref (an atomic push whose every command was refused first) is not told of."""
        if not updates:  # (it was told "prepared" of nothing, then neither "committed" nor "aborted")
            return []
        if len(updates) == 1 and (held := self._atomic_held(updates, hook, head, alone=True)) is not None:
            return held  # (told "prepared" under the ref's lock, as git's)
        if len(updates) == 1 and self._current(updates[0].ref) != updates[0].old:
            return [RefResult(updates[0].ref, self._lost_race(updates[0])[0])]  # git's prepare fails before the hook
        if not hook("prepared", updates, head):
            hook("aborted", updates, head)
            return [RefResult(u.ref, REFERENCE_TRANSACTION_DECLINED) for u in updates]
        packed = self._delete_packed(updates)  # (an atomic push's: one rewrite of packed-refs)
        results = [RefResult(u.ref, packed[u.ref] if u.ref in packed else self._swap(u)) for u in updates]
        made = [u for u, r in zip(updates, results, strict=True) if r.reason is None]
        failed = [u for u, r in zip(updates, results, strict=True) if r.reason is not None]
        if made:
            hook("committed", made, head)
        if failed:
            hook("aborted", failed, head)
        return results

    def _update_worktree(self, update: RefUpdate, hooks: ReceiveHooks | None) -> str | None:
        """Bring the working tree to ``update.new`` (the ``push-to-checkout`` hook, else a clean
        tree's own update); None when done, else why the update is refused, in git's words."""
        controldir = getattr(self.dulwich_repo, "controldir", None)  # a repository on disk
        if self.work_tree is None or controldir is None:
            return git_worktree.NO_WORKTREE
        if self._current(update.ref) != update.old:
            return REF_MOVED  # the ref moved meanwhile: the tree must not
        hook = getattr(hooks, "push_to_checkout", None)
        verdict = hook(update.new, self.work_tree) if hook is not None else None
        if verdict is not None:
            return None if verdict else "push-to-checkout hook declined"
        return git_worktree.push_to_deploy(controldir(), self.work_tree, update.new.decode("ascii"),
                                           head_is_born=not is_zero_id(update.old))

    def _current(self, ref: bytes) -> ObjectId:
        """The id ``ref`` names now (symbolic refs followed), the zero id when there is none."""
        try:
            return ObjectId(self.dulwich_repo.refs[Ref(ref)])
        except (KeyError, RefFormatError):
            return self.object_format.zero

    def _swap(self, update: RefUpdate) -> str | None:
        """Make one update (compare-and-swap under the ref's lock): None, else why not.  The branch
        HEAD names has ``HEAD.lock`` taken too for the while (waiting as for a ref's), as git's
        refs code locks HEAD to log it (its ``HEAD`` line): a ``git symbolic-ref`` or ``git
        checkout`` holding it refuses the update, as it refuses git's receive-pack's.  So has the
        symbolic ref the client named (``update.via``): git locks and logs it too."""
        root = getattr(self.dulwich_repo.refs, "path", None)
        also = self._also_locked(update)
        if not also or not isinstance(root, bytes):
            return self._swap_unheld(update)
        with _LooseLocks(root) as held:
            for loose in also:
                try:
                    refused = self._take_waiting(held, loose)
                except OSError as exc:  # (HEAD's directory not writable, a full disk)
                    return f"failed to update ref: {exc.strerror or exc}"
                if refused:
                    return refused
            return self._swap_unheld(update)

    def _also_locked(self, update: RefUpdate) -> list[bytes]:
        """The loose files whose locks an update of ``update.ref`` takes besides its own, as git's
        refs code takes them to log it: the symbolic ref the client named (``via``), then HEAD
        when HEAD names the ref; none off disk."""
        refs = self.dulwich_repo.refs
        if not isinstance(refs, DiskRefsContainer) or not isinstance(refs.path, bytes):
            return []
        links = self._via_links(update)
        also = [refs.refpath(Ref(name)) for name in links if name != HEAD]
        if self._through_head(update, links):
            also.append(os.path.join(refs.path, HEAD))
        return also

    def _through_head(self, update: RefUpdate, links: list[bytes]) -> bool:
        """Whether git's refs code logs (and locks) HEAD for ``update``: HEAD is among the symbolic
        refs it goes through (``links``), or the ref HEAD names is the one it moves or one of those
        (HEAD -> ``refs/heads/sym`` -> ``refs/heads/a``, a push to ``sym``: git's
        ``split_head_update`` matches HEAD's own target against each name of the update)."""
        if HEAD in links:
            return True
        target = self._head_target()
        return target is not None and (target == update.ref or target in links)

    def _via_links(self, update: RefUpdate) -> list[bytes]:
        """The symbolic refs an update through ``update.via`` goes through to ``update.ref``: that
        one, and each it leads through (``refs/heads/s1`` -> ``refs/heads/s2`` -> the target), as
        read on disk now; git's refs code locks and logs each of them."""
        links: list[bytes] = []
        name = update.via
        refs = self.dulwich_repo.refs
        while name is not None and name != update.ref and name not in links and len(links) <= MAX_SYMREF_DEPTH:
            links.append(name)
            try:
                name = _symref_target(refs.read_loose_ref(Ref(name)))
            except OSError:
                break
        return links

    def _head_lock_root(self, ref: bytes) -> bytes | None:
        """The repository's directory when ``ref`` is the branch HEAD names (its update takes
        ``HEAD.lock`` too, as git's); None otherwise, or off disk."""
        root = getattr(self.dulwich_repo.refs, "path", None)
        if not isinstance(root, bytes) or ref == HEAD or self._head_target() != ref:
            return None
        return root

    def _swap_unheld(self, update: RefUpdate) -> str | None:
        refs = self.dulwich_repo.refs
        ref, new = Ref(update.ref), ObjectID(update.new)
        old = None if is_zero_id(update.old) else ObjectID(update.old)
        locks = _lock_files(refs, ref)
        there = [os.path.lexists(lock) for lock in locks]
        logged: list[bool] = []

        def log_held() -> None:  # (under the ref's lock, as git appends its reflog)
            if not logged:
                logged.append(True)
                self._log_update(update)

        linked = refs if isinstance(refs, LinkedRefsContainer) else None
        if linked is not None:
            linked.on_write = log_held
        try:
            if not is_zero_id(update.new) and (blocked := _clear_way(refs, ref)) is not None:
                return f"failed to update ref: {blocked}"
            done = self._retrying_locked(lambda: (
                (old is None or refs.remove_if_equals(ref, old)) if is_zero_id(update.new)
                else refs.add_if_new(ref, new) if old is None  # dulwich reads old=None as "unconditional"
                else refs.set_if_equals(ref, old, new)))
        except RefFormatError:  # a name dulwich refuses that the checks above let through
            return "funny refname"
        except FileLocked as exc:
            return self._locked_reason(exc)
        except OSError as exc:  # a name too long for the file system, a directory in the way, a full disk …
            for lock, was_there in zip(locks, there, strict=True):
                if not was_there:  # dulwich's own, left when its write failed (a full disk)
                    with suppress(OSError):
                        os.unlink(lock)
            self._write_errors.append(_naming(exc, locks[0].removesuffix(b".lock") if locks else None))
            return f"failed to update ref: {exc.strerror or exc}"
        finally:
            if linked is not None:
                linked.on_write = None
        if done:
            self._share_written(ref)
            if not logged:  # (a container that does not call ``_log``; a ref already at its new value)
                self._log_update(update)
        return None if done else self._lost_race(update)[0]

    def _lost_race(self, update: RefUpdate) -> tuple[str, str]:
        """Why ``update`` cannot be made now that its ref is no longer what the push saw (another
        push created, moved or deleted it meanwhile): hgwire's reason, and git's refs code's own
        words, also added to the ``error:`` lines the pusher is told (``take_told``), as git's
        receive-pack tells them (``cannot lock ref '…': reference already exists``, ``is at … but
        expected …``, ``unable to resolve reference '…'``)."""
        now = self._current(update.ref)
        name = update.ref.decode("utf-8", "replace")
        if is_zero_id(update.old):
            why, reason = "reference already exists", REF_CREATED
        elif now == self.object_format.zero:
            why, reason = f"unable to resolve reference '{name}'", REF_DELETED if is_zero_id(update.new) \
                else REF_DELETED + "; fetch and push again"
        else:
            why, reason = f"is at {now.decode('ascii')} but expected {update.old.decode('ascii')}", REF_MOVED
        said = f"cannot lock ref '{name}': {why}"
        self._told += f"error: {said}\n".encode()
        return reason, said

    def _retrying_locked(self, change: Callable[[], _T]) -> _T:
        """``change`` of a ref, tried again while another process holds its lock, as git's refs code
        does: for ``core.filesRefLockTimeout`` ms (100 by default) for a ref's own lock, and
        ``core.packedRefsTimeout`` (1,000) for ``packed-refs.lock`` (a ``git gc`` or ``git
        pack-refs`` holds it for a moment), then ``FileLocked``."""
        deadline: float | None = None
        pause = 0.001
        while True:
            try:
                return change()
            except FileLocked as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._lock_timeout(exc)
                if now >= deadline:
                    raise
                time.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.05)

    def _lock_timeout(self, exc: FileLocked) -> float:
        packed = os.fsdecode(exc.lockfilename).endswith("packed-refs.lock")
        key, default = (b"packedrefstimeout", 1000) if packed else (b"filesreflocktimeout", 100)
        try:
            ms = _git_int(self._config_last(b"core", key), f"core.{key.decode()}", default)
        except ConfigValueError:
            ms = default
        return MAX_LOCK_WAIT if ms < 0 else min(ms / 1000, MAX_LOCK_WAIT)  # git: negative waits for ever

    def _locked_reason(self, exc: FileLocked) -> str:
        """Why a ref could not be changed: the lock file another process holds, by its path in the
        repository (``refs/heads/main.lock``, ``packed-refs.lock``)."""
        lock = os.fsdecode(exc.lockfilename)
        git_dir = self._disk_git_dir()
        if git_dir is not None and lock.startswith(git_dir.rstrip(os.sep) + os.sep):
            lock = lock[len(git_dir.rstrip(os.sep)) + 1:]
        return (f"failed to update ref: {lock} exists: another git process is changing refs; push again, "
                "or remove that file if no process is")

    def _create_packed(self, updates: list[RefUpdate]) -> dict[bytes, str | None]:
        """Create the refs ``updates`` makes anew in ``packed-refs`` at once, when they are
        ``PACKED_CREATIONS_MIN`` or more (a migration's push of its branches and tags): one file
        written and fsynced, where each loose ref is a file of its own, fsynced (16,000 refs took
        8-12 s, 40,000 100 s).  Only refs that exist neither loose nor packed, and that no one is writing
        (no ``.lock``), checked under ``packed-refs.lock``; the others, and all of them when the
        lock is held or the file cannot be written, are left to ``_swap``.  What the new refs
        peel to is written with them (``^`` lines), so the file's traits stay true.  The result
        of each ref created: None.

        Each ref's own lock (``refs/heads/NAME.lock``) is taken first and kept until the new
        ``packed-refs`` is in place, as git's refs code locks every ref a transaction changes: a
        ``git update-ref`` or git's receive-pack creating one of them meanwhile waits for it and is
        refused ("cannot lock ref"), where it created the ref too, its loose file hiding the
        packed one this push reported made."""
        refs = self.dulwich_repo.refs
        unpacked = (HEAD, self._head_target())  # (HEAD's branch, a symbolic ref's target: ``_swap``, which
        # takes ``HEAD.lock`` or the symbolic ref's lock too)
        creations = [u for u in updates if is_zero_id(u.old) and not is_zero_id(u.new) and u.ref not in unpacked
                     and u.via is None]
        if len(creations) < PACKED_CREATIONS_MIN or not isinstance(refs, DiskRefsContainer) \
                or not isinstance(refs.path, bytes):
            return {}
        created: dict[bytes, str | None] = {}
        with _LooseLocks(refs.path) as held:
            added = self._packed_creations(refs, [u for u in creations if held.take(refs.refpath(Ref(u.ref)))])
            for update in creations:
                if added is not None and update.ref in added:
                    created[update.ref] = None
                    self._log_update(update)  # (under the ref's lock, as git appends its reflog)
        if added is None:
            return {}  # each goes the usual way, which says what is wrong (a file it cannot read: kept as it is)
        invalidate = getattr(refs, "_invalidate_packed_refs_cache", None)
        if invalidate is not None:
            invalidate()
        if created:
            self._share_written(next(iter(created)))  # (the packed-refs file)
        return created

    def _packed_creations(self, refs: DiskRefsContainer, creations: list[RefUpdate]) -> PackedLines | None:
        """Write into ``packed-refs`` (under its lock) those of ``creations``, whose own locks are
        held, that exist neither loose nor packed: the lines added; None when none could be."""
        path = os.path.join(refs.path, b"packed-refs")
        try:
            with GitFile(path, "wb") as f:
                try:
                    with open(path, "rb") as current:
                        data: bytes | None = current.read()
                except FileNotFoundError:
                    data = None
                traits, lines = _fully_peeled(self.object_store, *_packed_lines(data))
                added: PackedLines = {}
                for update in creations:
                    if update.ref in lines or update.ref in added or os.path.lexists(refs.refpath(Ref(update.ref))):
                        continue  # (``_swap`` says what stands in its way)
                    target = git_pack.peel(self.object_store, update.new)
                    added[update.ref] = (update.new, None if target == update.new else target)
                lines.update(added)
                f.write(_packed_text(traits, lines))
        except (FileLocked, OSError, KeyError, PackedRefsException, ProtocolError):
            return None
        return added

    def _delete_packed(self, updates: list[RefUpdate]) -> dict[bytes, str | None]:
        """Delete the packed refs ``updates`` deletes from ``packed-refs`` at once, when they are
        ``PACKED_DELETIONS_MIN`` or more (a rewritten history's mirror push, ``git push --prune``):
        one file written, where each deletion rewrote the whole file (6,000 deletions from a file
        of 6,750 refs took 550 s).  Only refs that are packed and still name the id the push saw,
        checked under ``packed-refs.lock``, are deleted here; a packed value hidden by a loose file
        that names that id leaves the file too, then its loose file (as git's receive-pack deletes:
        the packed values first).  The others, and all of them when the lock is held or the file
        cannot be read or written, are left to ``_swap``, which says what stands in the way.  The
        file is written fully peeled (``_fully_peeled``), as git's receive-pack writes it.  The
        result of each ref deleted: None.

        Each ref's own lock (``refs/heads/NAME.lock``) is taken first and kept until its packed line
        and loose file are gone, as git's refs code locks every ref a transaction changes before
        ``packed-refs.lock``: a ``git update-ref`` or git's receive-pack moving one of them
        meanwhile is refused ("cannot lock ref"), where it read the old ``packed-refs``, wrote the
        ref loose and both said so, the push reporting deleted a ref that named the other's value.
        A ref whose lock another process holds is left to ``_swap``."""
        refs = self.dulwich_repo.refs
        unpacked = (HEAD, self._head_target())  # (HEAD's branch, a symbolic ref's target: ``_swap``, which
        # takes ``HEAD.lock`` or the symbolic ref's lock too)
        deletions = [u for u in updates if is_zero_id(u.new) and not is_zero_id(u.old) and u.ref not in unpacked
                     and u.via is None]
        if len(deletions) < PACKED_DELETIONS_MIN or not isinstance(refs, DiskRefsContainer) \
                or not isinstance(refs.path, bytes) or not os.path.exists(os.path.join(refs.path, b"packed-refs")):
            return {}
        results: dict[bytes, str | None] = {}
        removed: list[bytes] = []
        with _LooseLocks(refs.path) as held:
            gone = self._packed_deletions(refs, [u for u in deletions if held.take(refs.refpath(Ref(u.ref)))])
            for update in gone or ():  # (under their locks, as git: the packed lines first, then the loose files,
                results[update.ref] = self._remove_loose(refs.refpath(Ref(update.ref)), removed)
                if results[update.ref] is None:  # then the reflog)
                    self._log_update(update)
        if gone is None:
            return {}  # each goes the usual way (a file it cannot read: kept as it is)
        invalidate = getattr(refs, "_invalidate_packed_refs_cache", None)
        if invalidate is not None:
            invalidate()
        for loose in removed:
            remove_empty_parents(refs.path, loose)
        if gone:
            self._share_written(gone[0].ref)  # (the packed-refs file)
        return results

    def _remove_loose(self, loose: bytes, removed: list[bytes]) -> str | None:
        """Remove a deleted ref's loose file, if it has one (added to ``removed``): None, else why
        it could not be, in a ref's result's words (the error kept for the gateway's log, as
        ``_swap`` keeps it)."""
        try:
            os.remove(loose)
        except FileNotFoundError:
            return None  # (packed alone)
        except OSError as exc:
            self._write_errors.append(_naming(exc, loose))
            return f"failed to update ref: {exc.strerror or exc}"
        removed.append(loose)
        return None

    def _packed_deletions(self, refs: DiskRefsContainer, deletions: list[RefUpdate], wait: bool = False,
                          lock: _GitFile | None = None) -> list[RefUpdate] | None:
        """Take out of ``packed-refs`` (under its lock) those of ``deletions``, whose own locks are
        held, that are packed and name the id the push saw (their loose file, when there is one):
        the updates deleted, whose loose files are to go next; None when none could be.  ``wait``:
        ``packed-refs.lock`` held by another process is waited for ``core.packedRefsTimeout`` (1 s),
        as git's transaction waits for it (an atomic push's: nothing else would write them); ``lock``:
        that lock, held already."""
        path = os.path.join(refs.path, b"packed-refs")
        gone: list[RefUpdate] = []

        def locked() -> _GitFile:
            return GitFile(path, "wb")

        try:
            with lock if lock is not None else self._retrying_locked(locked) if wait else locked() as f:
                with open(path, "rb") as current:
                    traits, lines = _packed_lines(current.read())
                for update in deletions:
                    entry = lines.get(update.ref)
                    loose = refs.refpath(Ref(update.ref))
                    if entry is None:
                        continue  # (loose alone: ``_swap``'s)
                    if (_loose_ref(loose) if os.path.lexists(loose) else entry[0]) == update.old:
                        del lines[update.ref]
                        gone.append(update)
                if gone:
                    f.write(_packed_text(*_fully_peeled(self.object_store, traits, lines)))
                else:
                    f.abort()
        except (FileLocked, OSError, PackedRefsException):
            return None
        return gone

    def _reflog_rule(self) -> tuple[str, bytes]:
        """``core.logAllRefUpdates`` (``always``, ``true`` or ``false``; unset: false in a bare
        repository, true in one with a working tree, as git's default) and the identity a reflog
        line names, as git's receive-pack writes it: the server's committer identity (the
        environment's ``GIT_COMMITTER_*``, ``user.name``/``user.email``, else the service's user
        at this host).  Read once per open."""
        if self._reflog is None:
            value = self._config_last(b"core", b"logallrefupdates")
            word = value.lower() if value is not None else None
            if word == b"always":
                setting = "always"
            elif word is None:
                setting = "false" if self.bare else "true"
            else:  # (a value git would not read refused the push first: ``service_refusal``)
                try:
                    setting = "true" if _git_bool(value, "core.logallrefupdates") else "false"
                except ConfigValueError:
                    setting = "false"
            try:
                ident = get_user_identity(self.dulwich_repo.get_config_stack(), "COMMITTER")
            except (OSError, ValueError, KeyError):  # an unreadable config, no passwd entry: as git falls back
                user = os.environ.get("USER") or "hgwire"
                ident = f"{user} <{user}@{socket.gethostname()}>".encode("utf-8", "replace")
            self._reflog = (setting, ident.replace(b"\n", b" "))
        return self._reflog

    def _log_update(self, update: RefUpdate) -> None:
        """Append the update to the ref's reflog (and HEAD's, when HEAD names the ref) as git's
        receive-pack does (``<old> <new> <ident> <time> <zone>\tpush``): where the log exists
        already, or ``core.logAllRefUpdates`` creates it (``true``: branches, remote-tracking refs,
        notes and HEAD; ``always``: every ref).  A deleted ref's log goes with it.  A log that cannot
        be written is noted in ``reflog_failures`` (the gateway logs it); the ref stays updated."""
        refs = self.dulwich_repo.refs
        root = getattr(refs, "path", None)
        if not isinstance(root, bytes):
            return
        setting, ident = self._reflog_rule()
        if setting == "false" and not os.path.isdir(os.path.join(root, b"logs")):
            return  # (no log at all: the usual bare repository, without a stat per ref)
        names = [update.ref]
        if not is_zero_id(update.new):  # (the symbolic refs the client's name went through: theirs, as git's)
            links = self._via_links(update)
            names += [name for name in links if name != HEAD]
            if self._through_head(update, links):
                names.append(HEAD)
        now = int(time.time())
        offset = time.localtime(now).tm_gmtoff // 60
        zone = b"%s%02d%02d" % (b"-" if offset < 0 else b"+", abs(offset) // 60, abs(offset) % 60)
        line = b"%s %s %s %d %s\tpush\n" % (update.old, update.new, ident, now, zone)
        for name in names:
            path = os.path.join(root, b"logs", name)
            try:
                if is_zero_id(update.new):
                    with suppress(FileNotFoundError):
                        os.unlink(path)
                    continue
                automatic = setting == "always" or (setting == "true" and (
                    name == HEAD or name.startswith((b"refs/heads/", b"refs/remotes/", b"refs/notes/"))))
                if not automatic and not os.path.isfile(path):
                    continue
                self._append_log(root, path, line)
            except OSError as exc:  # (the gateway logs these: ``reflog_failures``)
                self.reflog_failures.append(f"the reflog of {name.decode('utf-8', 'replace')} could not be "
                                            f"written ({exc.strerror or exc})")

    def _append_log(self, root: bytes, path: bytes, line: bytes) -> None:
        """One line appended (``O_APPEND``: whole lines however many writers), the directories made
        for it and the file given ``core.sharedRepository``'s modes."""
        perm = self.shared_perm()
        git_maintenance.make_shared_dirs(root, os.path.dirname(path), perm)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        adjust_shared_perm(path, perm)

    def shared_perm(self) -> SharedPerm | None:
        """What ``core.sharedRepository`` asks of the files hgwire writes (None: the umask's modes)."""
        value = self._config_last(b"core", b"sharedrepository")
        try:
            return parse_shared_repository(value) if value is not None else None
        except ValueError:  # a value git would refuse too: the umask's modes
            return None

    def _share_written(self, ref: bytes) -> None:
        """Give a ref file just written, the directories above it under ``refs/`` and ``packed-refs``
        the permissions ``core.sharedRepository`` asks (git's ``adjust_shared_perm``): other
        members of the group can then update the refs hgwire wrote, as they could git's.  dulwich
        writes them with the umask's modes."""
        perm = self.shared_perm()
        refs = self.dulwich_repo.refs
        refpath = getattr(refs, "refpath", None)
        root = getattr(refs, "path", None)
        if perm is None or refpath is None or not isinstance(root, bytes):
            return
        path = refpath(Ref(ref))
        targets = [os.path.join(root, b"packed-refs")]
        while path.startswith(root + b"/refs") and len(path) > len(root) + len(b"/refs"):
            targets.append(path)
            path = os.path.dirname(path)
        if ref == HEAD:
            targets.append(os.path.join(root, b"HEAD"))
        for target in targets:
            with suppress(OSError):  # gone meanwhile (a delete, pack-refs): nothing to share
                adjust_shared_perm(target, perm)

    def _repair_head(self) -> None:
        """Point HEAD at a pushed branch when its target does not exist (first push).  On disk HEAD
        is read again and written under ``HEAD.lock``, the lock git's ``symbolic-ref`` and
        ``checkout`` take: one changing HEAD between the first look and the write kept its HEAD
        (it was replaced), and one holding the lock now has HEAD left to it (the push failed,
        "internal error", after its refs were written)."""
        target = self._head_target()
        refs = self.dulwich_repo.refs
        if target is None or refs.read_ref(Ref(target)) is not None:
            return  # the usual case, told without listing every ref
        root = getattr(refs, "path", None)
        if not isinstance(refs, DiskRefsContainer) or not isinstance(root, bytes):
            branch = self._head_choice()
            if branch is not None:
                refs.set_symbolic_ref(HEAD, branch)
            return
        try:
            lock = GitFile(os.path.join(root, HEAD), "wb")
        except (FileLocked, OSError):  # another process is changing HEAD (or cannot be written): its own
            return
        try:
            target = self._head_target()  # (under the lock: what another process left)
            branch = self._head_choice() if target is not None and refs.read_ref(Ref(target)) is None else None
            if branch is None:
                lock.abort()
                return
            lock.write(_SYMREF + branch + b"\n")
            lock.close()
        except BaseException:
            lock.abort()
            raise
        self._share_written(HEAD)

    def _head_choice(self) -> Ref | None:
        """The branch HEAD is to name when the one it names does not exist: a preferred name
        (``PREFERRED_BRANCHES``), else the first branch; None when there is no branch.  A symbolic
        ref under ``refs/heads/`` is no branch here: a first push through one (``alias`` naming
        ``zzz``, or a tag) made HEAD name it, a symbolic ref to a symbolic ref, where git's
        receive-pack leaves HEAD as it was; its target, when a branch, is listed itself."""
        linked = self.symrefs()
        refs = {name: oid for name, oid in self.refs().items() if name not in linked}
        branches = sorted(Ref(r) for r in refs if r.startswith(HEADS_PREFIX))
        preferred = [b for b in PREFERRED_BRANCHES if b in refs]
        chosen = preferred or branches
        return chosen[0] if chosen else None

    def _connected(self, tip: ObjectId) -> bool:
        """Is every object reachable from ``tip`` present, and is the push's pack whole?

        Objects that were in the store before this push are complete by the
        store's invariant, so the walk only descends into objects this push added.
        The invariant holds because a push whose objects are not all complete
        lands no ref, and its packs are removed: a pack with a broken object
        that no pushed ref reaches would otherwise stay, and a later push naming
        that object would pass this check.
        """
        memo = self._memo
        if memo is not None and tip in memo.connected:
            return True
        whole = self._pack_whole() and self._reaches_all([tip])
        if whole and memo is not None:
            memo.connected.add(tip)
        return whole

    def _pack_whole(self) -> bool:
        if self._whole is None:
            self._whole = not self._added or self._reaches_all(self._added)
        return self._whole

    def _reaches_all(self, tips: Iterable[bytes]) -> bool:
        store = self.object_store
        if isinstance(store, DiskObjectStore):
            memo = self._memo
            lookups = self._store_lookups(store)
            presence = None
            if memo is not None:
                if memo.presence is None:
                    memo.presence = git_ingest.store_presence(store, lookups)
                presence = memo.presence
            return git_ingest.connected(store, tips, self._added, self._links, presence, lookups)
        return git_ingest.walk_connected(tips, self._added, lambda sha: store.get_raw(ObjectID(sha)),
                                         lambda sha: ObjectID(sha) in store, object_format=self.object_format)

    def _adopted(self) -> None:
        """Refs name this push's objects now: they are part of the store, which is whole."""
        store = self.object_store
        if isinstance(store, MemoryObjectStore):
            claims = git_ingest.PACK_CLAIMS
            with claims.lock:
                for sha in self._added:
                    claims.release(_object_key(store, sha), accepted=True)
        self._forget_push()

    def _store_lookups(self, store: DiskObjectStore) -> git_ingest.StoreLookups:
        """This push's lookups in ``store`` (made at the first need, closed when the push is over)."""
        if self._lookups is None:
            self._lookups = git_ingest.StoreLookups(store)
        return self._lookups

    def _close_lookups(self) -> None:
        lookups, self._lookups = self._lookups, None
        if lookups is not None:
            lookups.close()

    def _forget_push(self) -> None:
        self._added_packs.clear()
        self._added.clear()
        self._links = git_ingest.PushLinks()
        self._whole = None
        self._close_lookups()

    def _discard_added(self) -> None:
        """Remove what this push added that refs will never point to: its quarantine, the packs it
        put in a custom store, a memory store's objects (unless another push holds them:
        ``git_ingest.PackClaims``).  Objects that left a quarantine stay, as in git."""
        for quarantine in self._take_quarantines():
            quarantine.drop()
        for pack in self._added_packs:
            pack.close()
            for path in (pack._data_path, pack._idx_path):
                try:
                    os.unlink(path)
                except OSError:
                    pass
        store = self.object_store
        if isinstance(store, MemoryObjectStore):  # objects a memory push added went straight in
            claims = git_ingest.PACK_CLAIMS
            with claims.lock:
                _forget(store, [sha for sha in self._added if claims.release(_object_key(store, sha), accepted=False)])
        self._forget_push()


def _object_key(store: BaseObjectStore, sha: bytes) -> str:
    """An object of a memory store: its key in ``git_ingest.PACK_CLAIMS``."""
    return f"memory:{id(store)}:{sha.decode('ascii')}"



def _forget(store: BaseObjectStore, shas: Iterable[bytes]) -> None:
    """Drop objects from a memory store (dulwich's has no removal of its own)."""
    data = store._data  # type: ignore[attr-defined]
    for sha in shas:
        data.pop(ObjectID(sha), None)


PRE_RECEIVE_DECLINED = "pre-receive hook declined"
UPDATE_DECLINED = "hook declined"
REFERENCE_TRANSACTION_DECLINED = "reference-transaction hook declined"
HOOK_REFUSALS = (PRE_RECEIVE_DECLINED, UPDATE_DECLINED, REFERENCE_TRANSACTION_DECLINED)

TransactionHook = Callable[[str, Sequence[RefUpdate], bytes | None], bool]
"""``reference_transaction(state, updates, head)`` of the push's hooks: for "prepared", whether
the hook lets the transaction through (for "committed" and "aborted" the answer does not count)."""


def _transaction_hook(hooks: ReceiveHooks | None) -> TransactionHook | None:
    """The hooks' ``reference-transaction`` hook when the repository has one (``transaction_hook``
    is optional for custom hooks)."""
    find = getattr(hooks, "transaction_hook", None)
    return find() if find is not None else None


def _pre_receive_verdicts(checked: list[tuple[RefUpdate, str | None]], hooks: ReceiveHooks
                          ) -> list[tuple[RefUpdate, str | None]]:
    """pre-receive over every update, as git's receive-pack tells it those its checks refused
    already (a hidden ref, missing objects) too: a refusal declines those still standing (a name
    to be refused after it among them)."""
    if not checked or hooks.pre_receive([u for u, _ in checked]):
        return checked
    return [(u, PRE_RECEIVE_DECLINED if reason is None or reason is NAME_PENDING else reason) for u, reason in checked]


FUNNY_REFNAME = "funny refname"
MAX_TOLD_NAME = 4096
"""Bytes of a ref name an ``error:`` line about it shows."""
NAME_PENDING = "(a name refused once pre-receive has run)"
"""The verdict of a command whose ref name is refused (``_name_refusal``) until pre-receive has run."""


def _name_refusal(ref: bytes) -> str | None:
    """Why git's receive-pack refuses a pushed ref's name as it updates the ref: ``refs/`` and then
    a name of two levels at least (``refs/foo`` is "funny"), and, hgwire's own bound, at most
    ``MAX_REF_LEVELS`` levels; None for a name it takes."""
    if not ref.startswith(b"refs/") or not check_ref_format(Ref(ref[len(b"refs/"):])):
        return FUNNY_REFNAME
    if ref.count(b"/") > MAX_REF_LEVELS:
        return f"refname has more than {MAX_REF_LEVELS} levels"
    return None


def _update_verdicts(checked: list[tuple[RefUpdate, str | None]], hooks: ReceiveHooks, atomic: bool = False
                     ) -> list[tuple[RefUpdate, str | None]]:
    """The update hook for each update still standing (when they do not run with each ref's transaction).

    In an ``atomic`` push, as git's receive-pack, none past the first update refused (by a check or
    by the hook): git adds the commands to its one transaction in order and stops there, so the
    hook never hears of the later ones, which the push does not make (their verdict stays None)."""
    verdicts: list[tuple[RefUpdate, str | None]] = []
    failed = False
    for u, reason in checked:
        if reason is None and not failed and not hooks.update(u):
            reason = UPDATE_DECLINED
        failed = failed or (atomic and reason is not None)
        verdicts.append((u, reason))
    return verdicts


def _hiding(rules: list[bytes]) -> Callable[[bytes], bool]:
    """git's ``ref_is_hidden`` over ``hideRefs`` values (the last one that matches decides)."""
    parsed = []
    for rule in rules:
        shown = rule.startswith(b"!")
        prefix = rule[1:] if shown else rule
        prefix = prefix.removeprefix(b"^").rstrip(b"/")
        if prefix:
            parsed.append((prefix, not shown))
    if len(parsed) > _FEW_HIDE_RULES:
        return _hiding_by_name(parsed)
    parsed.reverse()

    def hidden(ref: bytes) -> bool:
        for prefix, hide in parsed:
            if ref.startswith(prefix) and (len(ref) == len(prefix) or ref[len(prefix)] == ord("/")):
                return hide
        return False

    return hidden


_FEW_HIDE_RULES = 8
"""Past this many ``hideRefs`` values a ref is judged by ``_hiding_by_name``, not value by value."""


def _hiding_by_name(rules: list[tuple[bytes, bool]]) -> Callable[[bytes], bool]:
    """``_hiding``'s answer for many values (``rules``: prefix and whether it hides, in the config's
    order): a value matches a ref that is the value or begins with it and a ``/``, so the ref and
    each part of it before a ``/`` are looked up, the last value among those found deciding.  Each
    ref was tested against every value: a mirror of 100,000 tags hiding 100 of them by name took
    0.45 s of server CPU a ``git ls-remote`` for it."""
    last: dict[bytes, tuple[int, bool]] = {prefix: (i, hide) for i, (prefix, hide) in enumerate(rules)}
    get = last.get

    def hidden(ref: bytes) -> bool:
        found = get(ref)
        at = ref.find(b"/")
        while at >= 0:
            shorter = get(ref[:at])
            if shorter is not None and (found is None or shorter[0] > found[0]):
                found = shorter
            at = ref.find(b"/", at + 1)
        return found is not None and found[1]

    return hidden


COMMIT_TYPE = 1
PROC_FAILED = "fail to run proc-receive hook"
"""git's reason for a command of a proc-receive hook that could not be run (and, in an atomic
push, for the others when it failed)."""
ATOMIC_TRANSACTION_FAILED = "atomic transaction failed"
"""git's reason for the refs of an atomic push whose ref transaction could not be made (names in
each other's way, a ref that moved meanwhile)."""
REF_MOVED = "failed to update ref: another push moved it meanwhile; fetch and push again"
"""git's receive-pack's reason when a ref is no longer what the push saw (another push moved it), with
what happened and what to do (git says only "failed to update ref"); in an atomic push every ref then
gets ``ATOMIC_TRANSACTION_FAILED``."""
QUARANTINE_REMOVED = ("the push's quarantine directory was removed while the push was stored (a `git prune "
                      "--expire=now` on the server?); push again")
"""Why a push fails whose ``objects/tmp_objdir-incoming-*`` went while its pack was written: git's
``prune`` removes ``tmp_*`` entries of the object directory older than its expiry, so ``git gc
--prune=now`` or ``git prune --expire=now`` on the server removes a push's quarantine (git's own
receive-pack's too, which then fails "unpack-objects abnormal exit")."""
REF_CREATED = "failed to update ref: another push created it meanwhile; fetch and push again"
"""The same when the push would create a ref another push created meanwhile."""
REF_DELETED = "failed to update ref: another push deleted it meanwhile"
"""The same when the ref is gone (another push deleted it): all a deletion wanted, so no advice for it."""


@dataclass(frozen=True, slots=True)
class Deploy:
    """``receive.denyCurrentBranch = updateInstead``: the checked-out branch, and what updates the tree."""

    ref: bytes
    update: Callable[[RefUpdate], str | None]

    def before(self, update: RefUpdate) -> str | None:
        """Update the tree if ``update`` moves the checked-out branch; why not, else None."""
        return self.update(update) if update.ref == self.ref else None

IGNORE, WARN, REFUSE, UPDATE_INSTEAD = "ignore", "warn", "refuse", "updateInstead"
"""``receive.denyCurrentBranch``/``denyDeleteCurrent`` actions (``warn`` lets the update through, as
``ignore``, with git's warning)."""

CHECKED_OUT = "branch is currently checked out"
BUSY_CHECKOUT = ("branch is being rebased or bisected in the repository's working tree, which hgwire does not "
                 "update then: finish that on the server, or push another branch")
"""Under ``receive.denyCurrentBranch = updateInstead``, a push to the branch the repository's own tree,
detached, is rebasing or bisecting: git checks that tree's files out over the rebase's (or the
bisect's) state, hgwire refuses."""
LINKED_CHECKOUT = ("branch is checked out in a linked working tree (git worktree add), which hgwire does not "
                   "update: update that tree on the server, or push another branch")
"""Under ``receive.denyCurrentBranch = updateInstead``, a push to a branch a linked working tree has
checked out: git moves that tree with it, hgwire deploys to the repository's own tree only."""
MAX_LINKED_WORKTREES = 1024
"""Linked working trees (``worktrees/*``) whose checked-out branches a push reads at most."""
MAX_LOOSE_HEAD = 4096
"""Bytes of a linked working tree's ``HEAD`` read (``ref: refs/heads/NAME``)."""
DELETION_PROHIBITED = "deletion prohibited"
CURRENT_DELETION_PROHIBITED = "deletion of the current branch prohibited"
NON_FAST_FORWARD = "non-fast-forward"
"""git's receive-pack's reasons for a ref its ``receive.deny*`` settings refuse (``_refusal``), each
told with git's ``error:`` lines too (``_told_of``)."""

UNCONFIGURED_CURRENT_BRANCH = (
    "By default, updating the current branch in a non-bare repository\n"
    "is denied, because it will make the index and work tree inconsistent\n"
    "with what you pushed, and will require 'git reset --hard' to match\n"
    "the work tree to HEAD.\n\n"
    "You can set the 'receive.denyCurrentBranch' configuration variable\n"
    "to 'ignore' or 'warn' in the remote repository to allow pushing into\n"
    "its current branch; however, this is not recommended unless you\n"
    "arranged to update its work tree to match what you pushed in some\n"
    "other way.\n\n"
    "To squelch this message and still keep the default behaviour, set\n"
    "'receive.denyCurrentBranch' configuration variable to 'refuse'.")
UNCONFIGURED_DELETE_CURRENT = (
    "By default, deleting the current branch is denied, because the next\n"
    "'git clone' won't result in any file checked out, causing confusion.\n\n"
    "You can set 'receive.denyDeleteCurrent' configuration variable to\n"
    "'warn' or 'ignore' in the remote repository to allow deleting the\n"
    "current branch, with or without a warning message.\n\n"
    "To squelch this message, you can set it to 'refuse'.")
"""What git's receive-pack tells the pusher when the repository's config does not set the
setting that refused the push (its ``refuse_unconfigured_deny*`` messages)."""


MAX_SKIP_LIST = 64 << 20
"""Bytes of a ``receive.fsck.skipList`` file read (about 1.5 million ids)."""


def _hide_rules(config: ConfigFile, wanted: tuple[bytes, ...],
                matchers: Callable[[], Mapping[str, ConditionMatcher]] | None = None,
                whole: ConfigFile | None = None) -> list[bytes]:
    """The ``hideRefs`` values of ``wanted``'s sections in ``config``, in its file's order when that
    can be read (``_in_file_order``, ``matchers`` its ``[includeIf]``'s, ``whole`` the config whose
    remote URLs a ``hasconfig:`` condition asks about), else section by section as dulwich gathered
    them.  ``StorageError`` for a file git refuses to read: includes nested deeper than git follows
    them (a file that includes itself), an include git cannot read (a directory)."""
    gathered = _section_rules(config, wanted)
    path = getattr(config, "path", None)
    if not path:
        return gathered
    conditions = matchers() if matchers is not None else None
    reads = GitConfigReads(config.whose if isinstance(config, GitConfigFile) else REPOSITORY_CONFIG, conditions)
    files = _files_read(config)  # (the bytes the config was read from, as they were then)
    data = files.get(os.fspath(path))
    if data is None:
        try:
            data = reads.read(path)
        except OSError:
            return gathered
    data = data.removeprefix(_BOM)  # (git skips it, and so its header counts)
    headers = [m.group(1).lower() for m in _SECTION_START.finditer(data)]
    if all(headers.count(name) < 2 for name in wanted) and not _INCLUDES.intersection(headers) \
            and b"true" not in gathered:  # (dulwich reads a valueless line as true: git refuses it)
        return gathered  # (dulwich's order is the file's)
    try:
        return _in_file_order(data, os.fsdecode(path), wanted, conditions, whole if whole is not None else config,
                              reads=reads, files=files)
    except ValueError:  # (a part that cannot be read on its own)
        return gathered


def _section_rules(config: ConfigFile, wanted: tuple[bytes, ...]) -> list[bytes]:
    return [value for section in config.sections() if len(section) == 1 and section[0].lower() in wanted
            for name, value in config.items(section) if name.lower() == b"hiderefs"]


_SECTION_START = re.compile(rb"^[ \t]*\[[ \t]*([A-Za-z0-9.-]*)", re.MULTILINE)
_INCLUDES = frozenset((b"include", b"includeif"))
MAX_CONFIG_INCLUDE_DEPTH = 10
"""Includes git follows one inside another; past them it refuses the config ("exceeded maximum
include depth", a file that includes itself)."""
_HASCONFIG_URL = "hasconfig:remote.*.url:"
_BOM = b"\xef\xbb\xbf"


def _in_file_order(data: bytes, path: str, wanted: tuple[bytes, ...],
                   conditions: Mapping[str, ConditionMatcher] | None, whole: ConfigFile,
                   depth: int = 0, reads: GitConfigReads | None = None,
                   files: Mapping[str, bytes] | None = None, remote_pass: bool = False,
                   forbid_urls: bool = False) -> list[bytes]:
    """The ``hideRefs`` values of ``wanted``'s sections in the config file ``path`` (``data``) in the
    order git reads them: read again a section header at a time, each part on its own (dulwich
    gathers the values of a section written twice, ``[transfer]``, ``[uploadpack]``, ``[transfer]``
    again, under its first header), and an included file's values where its ``[include]`` (or an
    ``[includeIf]`` that holds) is, each time it is included, as git reads them (dulwich puts them
    under the including file's header of the same name, reads a file included twice once, and stops
    quietly at a file that includes itself, which git refuses).  A ``hasconfig:remote.*.url:``
    condition asks every remote URL of ``whole``, as git's does, wherever in the files it is.
    ``ValueError`` when a part cannot be read on its own; ``StorageError`` where git refuses, and
    for what ``reads`` (one for the whole walk) refuses.  ``files``: the bytes the config's read took
    of the files it opened (``_files_read``), read again only where that read did not open them.

    To judge such a condition git first gathers the remote URLs in a walk of its own in which every
    ``hasconfig:`` include is followed, held or not, and a file an ``[includeIf]`` includes may not
    set one ("remote URLs cannot be configured in file directly or indirectly included by
    includeIf.hasconfig:remote.*.url"): so a file that includes itself under a condition that does
    not hold is refused too.  ``remote_pass`` is that walk (no values taken) from such an include,
    ``forbid_urls`` where it is under an ``[includeIf]``."""
    reads = reads if reads is not None else GitConfigReads()
    found: list[bytes] = []
    data = data.removeprefix(_BOM)
    for _, _, part in _config_parts(data):
        for section in part.sections():
            kind = section[0].lower()
            if forbid_urls and kind == b"remote" and len(section) == 2 and \
                    any(name.lower() == b"url" for name, _ in part.items(section)):
                raise StorageError(f"{reads.whose} sets a remote URL in {_shown_file(path, reads.whose)}, which an "
                                   "[includeIf \"hasconfig:remote.*.url:...\"] includes: git refuses that config; "
                                   "tell the server's operator")
            if len(section) == 1 and kind in wanted and not remote_pass:
                values = [value for name, value in part.items(section) if name.lower() == b"hiderefs"]
                if b"true" in values:
                    _refuse_valueless(data, kind, path, reads.whose)
                found += values
            elif (kind == b"include" and len(section) == 1) or (kind == b"includeif" and len(section) == 2):
                found += _include_rules(part, section, path, wanted, conditions, whole, depth, reads, files,
                                        remote_pass, forbid_urls)
    return found


def _include_rules(part: ConfigFile, section: tuple[bytes, ...], path: str, wanted: tuple[bytes, ...],
                   conditions: Mapping[str, ConditionMatcher] | None, whole: ConfigFile, depth: int,
                   reads: GitConfigReads, files: Mapping[str, bytes] | None, remote_pass: bool,
                   forbid_urls: bool) -> list[bytes]:
    """``_in_file_order`` of what the ``[include]`` or ``[includeIf]`` ``section`` of ``part``
    includes, where it holds; a ``hasconfig:remote.*.url:`` one's files are walked as git's remote
    URL walk walks them first (``remote_pass``), whether it holds or not."""
    condition = section[-1] if section[0].lower() == b"includeif" else None
    targets = [os.fsdecode(value) for name, value in part.items(section) if name.lower() == b"path" and value]
    asks_urls = condition is not None and condition.startswith(_HASCONFIG_URL.encode())
    if asks_urls and not remote_pass:
        for target in targets:
            _included_rules(target, path, wanted, conditions, whole, depth + 1, reads, files, True, True)
    holds = condition is None or (remote_pass and asks_urls) or \
        _include_holds(part, condition, os.path.dirname(path), conditions, whole)
    if not holds:
        return []
    forbid = forbid_urls or (remote_pass and condition is not None)
    return [value for target in targets
            for value in _included_rules(target, path, wanted, conditions, whole, depth + 1, reads, files,
                                         remote_pass, forbid)]


MAX_PARTS_KEPT = 64
"""Config files whose parts ``_config_parts`` keeps (by their bytes), each at most
``MAX_PARTS_KEPT_BYTES``: a larger file (up to ``MAX_CONFIG_BYTES``) is parsed at each request
rather than kept, so the kept parts stay within about 4 MiB of text."""

MAX_PARTS_KEPT_BYTES = 64 << 10


def _config_parts(data: bytes) -> tuple[tuple[int, int, ConfigFile], ...]:
    """The config file ``data`` read a section header at a time, each part on its own (read, never
    changed, by ``_in_file_order``) with where it starts and ends in ``data``; kept by its bytes
    when small: parsed again at every request, they were most of its cost (some 150 µs for a file of
    a few sections and an include).  ``ValueError`` when a part cannot be read on its own."""
    if len(data) <= MAX_PARTS_KEPT_BYTES:
        return _kept_config_parts(data)
    return _parse_config_parts(data)


def _parse_config_parts(data: bytes) -> tuple[tuple[int, int, ConfigFile], ...]:
    starts = sorted({0, *(m.start() for m in _SECTION_START.finditer(data))})  # (nothing before a header lost)
    return tuple((start, end, ConfigFile.from_file(io.BytesIO(data[start:end]), expand_includes=False))
                 for start, end in zip(starts, [*starts[1:], len(data)]))


_kept_config_parts = functools.lru_cache(maxsize=MAX_PARTS_KEPT)(_parse_config_parts)


def _refuse_valueless(data: bytes, section: bytes, path: str, whose: str) -> None:
    """``StorageError`` when the config file ``path`` (``data``) writes ``section``'s ``hideRefs``
    without ``=`` (dulwich reads it as ``true``; git's upload-pack and receive-pack refuse the
    config: "missing value for 'transfer.hiderefs'"), naming the line it is first so written on.
    Which settings have no value is what git's own parse of the file found (``_canonical``): a
    pattern over the file's lines took a continuation line ``hiderefs`` (a part of the value above
    it) for one and refused a config git serves."""
    made = _canonical(data)
    line = made.valueless_lines.get(section + b".hiderefs") if made is not None else None
    if line is None:
        return
    key = f"{section.decode('ascii', 'replace')}.hiderefs"
    raise StorageError(f"{whose} sets '{key}' without a value (line {line} of {_shown_file(path, whose)}), "
                       "which git refuses as a bad config variable; tell the server's operator")


def valueless_number(value: bytes, valueless: bool) -> bytes:
    """``value`` of a size setting, but empty where its file wrote it without ``=`` (``valueless``,
    from ``written_values``: dulwich reads such a line as ``true``; git reads no value, and its
    message about it names the value ``''``: "bad numeric config value '' for
    'core.bigfilethreshold'")."""
    if not valueless:
        return value
    if isinstance(value, ServerConfigValue):
        return _server_value(b"", value.path)
    return b""


def written_values(config: ConfigFile, section: bytes, name: bytes) -> list[tuple[bytes, bool]]:
    """Every value ``config`` gives ``section.name``, in order, each with whether its file wrote it
    without ``=``.  Which settings have no value is what git's parser found as the files were read
    (``read_config``): a pattern over the files' lines took ``bigFileThreshold`` alone in another
    section for this one (naming ``''`` where git names ``'true'``) and missed it on its header's
    line (``[core] bigFileThreshold``).  Which of a key's values has none is told by its key as
    dulwich kept it (``CanonicalConfig.text``: a valueless key upper-cased), where each ``true`` of
    a key written both ways (``= true`` and alone) was taken as valueless; where a file was given
    to dulwich as written (``kept_as_written``), still so."""
    lowered = name.lower()
    try:
        written = [(key, value if isinstance(value, bytes) else b"true") for key, value in config.items((section,))
                   if key.lower() == lowered]
    except KeyError:
        return []
    if b"%s.%s" % (section.lower(), lowered) not in _valueless(config):
        return [(value, False) for _, value in written]
    as_written = not isinstance(config, GitConfigFile) or config.kept_as_written
    return [(value, value == b"true" and (as_written or key != key.lower())) for key, value in written]


def _include_holds(part: ConfigFile, condition: bytes, config_dir: str,
                   conditions: Mapping[str, ConditionMatcher] | None, whole: ConfigFile) -> bool:
    text = condition.decode("utf-8", "replace")
    if text.startswith("hasconfig:"):  # (git knows remote URLs alone there)
        return text.startswith(_HASCONFIG_URL) and any(
            match_glob_pattern(url.decode("utf-8", "replace"), text[len(_HASCONFIG_URL):])
            for section in whole.sections() if len(section) == 2 and section[0].lower() == b"remote"
            for name, url in whole.items(section) if name.lower() == b"url")
    return part._evaluate_includeif_condition(text, config_dir, conditions)


def _included_rules(target: str, including: str, wanted: tuple[bytes, ...],
                    conditions: Mapping[str, ConditionMatcher] | None, whole: ConfigFile, depth: int,
                    reads: GitConfigReads, files: Mapping[str, bytes] | None = None, remote_pass: bool = False,
                    forbid_urls: bool = False) -> list[bytes]:
    """``_in_file_order`` of the file ``including`` includes as ``target`` (``~/`` its user's home,
    a relative path from ``including``'s directory); none for a file that does not exist, as git
    takes it.  ``files``: the bytes the config's read took of the files it opened (read again only
    when it did not open it: an ``[includeIf]`` dulwich judged otherwise)."""
    if depth > MAX_CONFIG_INCLUDE_DEPTH:
        raise StorageError(f"{reads.whose} includes files more than {MAX_CONFIG_INCLUDE_DEPTH} "
                           "deep (does one include itself?), which git refuses; tell the server's operator")
    path = os.path.join(os.path.dirname(including), os.path.expanduser(target))
    data = files.get(path) if files else None
    try:
        data = data if data is not None else reads.read(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StorageError(f"{reads.whose} includes a file that cannot be read ({exc.strerror}), "
                           "which git refuses; tell the server's operator") from None
    return _in_file_order(data, path, wanted, conditions, whole, depth, reads, files, remote_pass, forbid_urls)


MAX_CONFIG_BYTES = 8 << 20
"""Bytes of a git config file and the files it includes read in all (a config of about 200,000
lines): git reads any size, a byte at a time; dulwich reads a file whole, so an include of
``/dev/zero`` grew the process for ever."""


REPOSITORY_CONFIG = "the repository's git config"
SERVER_CONFIG = "the server's git config"
"""What the messages call a repository's own config and the ``[git] config`` file read before it."""


def _shown_file(path: str, whose: str) -> str:
    """A config file as a message names it: a repository's by its base name (not its place on the
    server), one of the server's ``[git] config`` by its path (the operator's own)."""
    return path if whose == SERVER_CONFIG else os.path.basename(path)


class ServerConfigValue(bytes):
    """A value the server's ``[git] config`` file gave (``with_base_config``), so that a message
    about it names that file, not the repository's config (``_fix_it``)."""

    path = ""


def _fix_it(value: bytes) -> str:
    """Where the message about ``value`` tells the operator to fix it."""
    if isinstance(value, ServerConfigValue):
        return f"fix it in the server's git config {value.path}"
    return "fix it in the repository's config on the server"


class GitConfigReads(ConfigReads):
    """``ConfigReads`` of a git config: ``MAX_CONFIG_BYTES`` in all (git waits for ever on a FIFO,
    reads a device until it fails: ``/dev/zero`` is "bad config line 1"; dulwich's whole read of
    either never ended)."""

    def __init__(self, whose: str = REPOSITORY_CONFIG,
                 conditions: Mapping[str, ConditionMatcher] | None = None) -> None:
        super().__init__(whose, MAX_CONFIG_BYTES)
        self.conditions = conditions
        """The repository's ``[includeIf]`` matchers (``gitdir:``, ``onbranch:``), as its config is read."""
        self.files: dict[str, bytes] = {}
        """The bytes read of each file, by the path it was opened by (``_files_read``)."""
        self.valueless: set[bytes] = set()
        """The settings the files write without ``=`` (``CanonicalConfig.valueless``)."""
        self.kept_as_written = False
        """Whether a file was read as it is written (``GitConfigFile.kept_as_written``)."""

    def read(self, path: str | os.PathLike[str] | bytes) -> bytes:
        """The file's bytes; ``StorageError`` for one git's parser stops in ("bad config line N in
        file F"): git refuses the whole config then, whatever the line sets and whichever command
        reads it (dulwich read some such lines, ``[transfer] hideRefs ; note`` as ``true``, and
        dropped others, so the config was served in part), the file named by its base name for
        the repository's (not its place on the server), by its path for the server's.  So is a file
        that sets ``include.path`` without ``=`` (git: "missing value for 'include.path'", then "bad
        config line"; dulwich included nothing and served the rest), and one an ``[includeIf]``
        sets where its condition holds (``_valueless_include``)."""
        name = os.fsdecode(path)
        data = super().read(path)
        self.files[name] = data
        line = _bad_config_line(data)
        if line:
            whose = f"{self.whose} {next(iter(self.files))}" if self.whose == SERVER_CONFIG else self.whose
            raise StorageError(f"{whose} cannot be read (bad config line {line} in file "
                               f"{_shown_file(name, self.whose)}), and git cannot read it either; "
                               "tell the server's operator")
        canonical = _canonical(data)  # (what dulwich reads: git's settings, in one form; ``files`` keeps the
        bare = self._valueless_include(canonical) if canonical is not None else None  # file's own bytes, whose
        if bare:  # lines messages name)
            whose = f"{self.whose} {next(iter(self.files))}" if self.whose == SERVER_CONFIG else self.whose
            raise StorageError(f"{whose} cannot be read (it sets 'include.path' without a value, line {bare} "
                               f"of {_shown_file(name, self.whose)}), and git cannot read it either; "
                               "tell the server's operator")
        if canonical is None or canonical.text is None:
            self.kept_as_written = True
            return data
        self.valueless |= canonical.valueless
        return canonical.text

    def _valueless_include(self, canonical: CanonicalConfig) -> int | None:
        """The first line of the file that sets an include's ``path`` without ``=`` where git 2.39
        reads it so ("missing value for 'include.path'", then "bad config line"): ``[include]``'s,
        and an ``[includeIf]``'s whose condition holds (``gitdir:``, ``gitdir/i:``, ``onbranch:``,
        as the repository's matchers judge them; git never takes it where one does not hold, as
        dulwich does not), or ``hasconfig:remote.*.url:``, which git's walk for remote URLs
        follows whatever the URLs (dulwich included nothing and served the rest)."""
        lines = [line for name, line in canonical.valueless_lines.items()
                 if name == b"include.path" or (name.startswith(b"includeif.") and name.endswith(b".path")
                                                and self._include_holds(name[len(b"includeif."):-len(b".path")]))]
        return min(lines, default=None)

    def _include_holds(self, condition: bytes) -> bool:
        if not condition:  # (``[includeIf] path``: no condition, which git passes over)
            return False
        text = condition.decode("utf-8", "replace")
        if text.startswith(_HASCONFIG_URL):
            return True
        return bool(self.conditions) and ConfigFile()._evaluate_includeif_condition(text, None, self.conditions)


def _canonical(data: bytes) -> CanonicalConfig | None:
    """``git_dotfiles.canonical_config``, kept by the file's digest within ``CANONICAL_KEPT_BYTES``
    (each request reads its config again: a pass of git's parser, 36 ms for 3,000 lines)."""
    digest = hashlib.sha256(data).digest()
    with suppress(KeyError):
        return _canonicals[digest]
    made = canonical_config(data)
    size = _canonical_size(made)
    if size <= CANONICAL_KEPT_BYTES // 4:
        with _canonicals_guard:
            global _canonicals_bytes
            _canonicals[digest] = made
            _canonicals_bytes += size
            while _canonicals_bytes > CANONICAL_KEPT_BYTES or len(_canonicals) > MAX_CHECKED_CONFIGS:
                _canonicals_bytes -= _canonical_size(_canonicals.pop(next(iter(_canonicals))))
    return made


def _canonical_size(made: CanonicalConfig | None) -> int:
    if made is None:
        return 0
    return (len(made.text) if made.text is not None else 0) + sum(map(len, made.valueless))


CANONICAL_KEPT_BYTES = 8 << 20
"""Bytes of config files ``_canonical`` keeps (a file over a quarter of it is made again each read)."""
_canonicals: dict[bytes, CanonicalConfig | None] = {}
_canonicals_bytes = 0
_canonicals_guard = threading.Lock()


def _parse_bad_config_line(data: bytes) -> int:
    """The line git's config parser stops in (``git_dotfiles.config_entries``), 0 when it reads ``data`` whole."""
    try:
        for _ in config_entries(data):
            pass
    except ConfigSyntaxError as exc:
        return max(exc.line, 1)
    return 0


def _bad_config_line(data: bytes) -> int:
    """``_parse_bad_config_line``, kept by the file's digest (each request reads its config again:
    60 µs for a config of a few sections, 36 ms for one of 3,000 ``hideRefs`` lines; 0.7 µs and
    0.2 ms kept)."""
    digest = hashlib.sha256(data).digest()
    line = _checked_configs.get(digest)
    if line is None:
        line = _parse_bad_config_line(data)
        with _checked_configs_guard:
            _checked_configs[digest] = line
            while len(_checked_configs) > MAX_CHECKED_CONFIGS:
                del _checked_configs[next(iter(_checked_configs))]
    return line


MAX_CHECKED_CONFIGS = 4096
"""Config files whose ``_bad_config_line`` is kept (by digest: some 100 bytes each)."""
_checked_configs: dict[bytes, int] = {}
_checked_configs_guard = threading.Lock()


class GitConfigFile(ConfigFile):
    """dulwich's ``ConfigFile`` as ``read_config`` read it, with what that read learnt of its files."""

    files_read: Mapping[str, bytes] = MappingProxyType({})
    """The bytes of each file read, by the path it was opened by (for ``_hide_rules``: git reads
    them once a request)."""
    whose: str = REPOSITORY_CONFIG
    """Whose config it is, for messages (``REPOSITORY_CONFIG``, ``SERVER_CONFIG``)."""
    valueless: frozenset[bytes] = frozenset()
    """The settings its files write without ``=`` (for ``written_values``)."""
    kept_as_written: bool = False
    """Whether a file was given to dulwich as written (``CanonicalConfig.text`` None), where a
    valueless key is not known by its case."""


def read_config(path: str, condition_matchers: Mapping[str, ConditionMatcher] | None = None,
                whose: str = REPOSITORY_CONFIG) -> GitConfigFile:
    """dulwich's ``ConfigFile.from_path`` of the git config ``path`` and its includes, each read
    through one ``ConfigReads`` (``FileNotFoundError`` for a missing ``path``)."""
    reads = GitConfigReads(whose, condition_matchers)
    config = cast(GitConfigFile, GitConfigFile.from_path(path, condition_matchers=condition_matchers,
                                                         file_opener=reads.open))  # (from_path makes its cls)
    config.files_read = reads.files
    config.whose = whose
    config.valueless = frozenset(reads.valueless)
    config.kept_as_written = reads.kept_as_written
    return config


def _files_read(config: ConfigFile) -> Mapping[str, bytes]:
    """The bytes ``read_config`` kept of the files ``config`` was read from (none otherwise)."""
    return config.files_read if isinstance(config, GitConfigFile) else {}


def _valueless(config: ConfigFile) -> frozenset[bytes]:
    """The settings ``read_config`` found written without ``=`` in ``config``'s files (none otherwise)."""
    return config.valueless if isinstance(config, GitConfigFile) else frozenset()


def read_base_config(path: str) -> ConfigFile:
    """The git config file ``path`` with its includes, read at each open (a few hundred bytes: a
    changed file, or a changed included one, counts at the next request); empty when it does not
    exist, as git takes a missing ``/etc/gitconfig``; ``StorageError`` when git could not read it."""
    try:
        return read_config(path, whose=SERVER_CONFIG)
    except FileNotFoundError:
        return ConfigFile()
    except (OSError, ValueError) as exc:  # dulwich's parse errors are ValueErrors
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StorageError(f"the server's git config {path} cannot be read ({why}); "
                           "tell the server's operator") from None


def with_base_config(base: ConfigFile, own: ConfigFile) -> ConfigFile:
    """One config: every value of ``base``, then every value of ``own`` (git's order of files: a
    multi-valued key such as ``transfer.hideRefs`` gathers both, the last value of a key wins)."""
    merged = ConfigFile()
    merged.path = own.path
    for config in (base, own):
        for section in config.sections():
            try:
                values = merged._values[section]
            except KeyError:
                values = merged._values[section] = CaseInsensitiveOrderedMultiDict.make()
            for name, value in config.items(section):
                values[name] = _server_value(value, base.path) if config is base else value
    return merged


def _server_value(value: bytes, path: str | bytes | os.PathLike[str] | None) -> ServerConfigValue:
    tagged = ServerConfigValue(value)
    tagged.path = os.fsdecode(path) if path is not None else ""
    return tagged


@dataclass(frozen=True, slots=True)
class OpenSetting:
    """How git reads a setting it reads as a repository opens or a pack is made, and whom it refuses
    for a value it would not read: ``upload-pack`` and ``receive-pack`` (its process dies as it
    starts: every request), ``pack`` (a fetch that gets a pack: its pack-objects dies)."""

    number: bool
    """A size (``512m``), else a boolean."""
    last_only: bool
    """git reads the last value the config files give (``repo_config_get_bool``), else each value
    as its config callback meets it (a bad one dies even when a later file sets a good one)."""
    refused_by: tuple[str, ...]


OPEN_SETTINGS: Mapping[tuple[bytes, bytes], OpenSetting] = {
    (b"core", b"commitgraph"): OpenSetting(False, True, ("upload-pack", "receive-pack")),
    (b"core", b"multipackindex"): OpenSetting(False, True, ("upload-pack", "receive-pack")),
    (b"core", b"fsyncobjectfiles"): OpenSetting(False, False, ("pack", "receive-pack")),
    (b"pack", b"writebitmaphashcache"): OpenSetting(False, False, ("pack",)),
    (b"pack", b"writebitmaplookuptable"): OpenSetting(False, False, ("pack",)),
    (b"core", b"bigfilethreshold"): OpenSetting(True, False, ("pack", "receive-pack")),
    (b"core", b"deltabasecachelimit"): OpenSetting(True, False, ("pack", "receive-pack")),
    (b"pack", b"usebitmaps"): OpenSetting(False, False, ("pack",)),  # (git's pack-objects reads them too,
    (b"pack", b"writereverseindex"): OpenSetting(False, False, ("pack",)),  # each value: hgwire the last)
    (b"pack", b"writebitmaps"): OpenSetting(False, False, ()),
    (b"repack", b"writebitmaps"): OpenSetting(False, False, ()),
    # the other numbers dulwich's open reads with int(): pack.windowMemory = 256m, core.packedGitLimit =
    # 512m had the repository served to nobody ("internal error"), ls-remote too
    (b"core", b"compression"): OpenSetting(True, False, ("pack", "receive-pack")),
    (b"core", b"loosecompression"): OpenSetting(True, False, ("pack", "receive-pack")),
    (b"pack", b"compression"): OpenSetting(True, False, ("pack", "receive-pack")),
    (b"core", b"packedgitlimit"): OpenSetting(True, False, ("pack", "receive-pack")),
    (b"core", b"packedgitwindowsize"): OpenSetting(True, False, ("pack", "receive-pack")),
    (b"pack", b"windowmemory"): OpenSetting(True, False, ("pack",)),
    (b"pack", b"deltacachesize"): OpenSetting(True, False, ("pack",)),
    (b"pack", b"depth"): OpenSetting(True, False, ("pack",)),
    (b"pack", b"threads"): OpenSetting(True, False, ("pack",)),
    (b"pack", b"indexversion"): OpenSetting(True, False, ("pack",)),
    (b"core", b"packcompression"): OpenSetting(True, False, ()),  # (dulwich's own names: git reads none of
    (b"pack", b"deltawindowsize"): OpenSetting(True, False, ()),  # them, so no value refuses anything)
    (b"pack", b"bigfilethreshold"): OpenSetting(True, False, ()),
    (b"core", b"maxtreedepth"): OpenSetting(True, False, ()),
}
"""The settings dulwich's open of a repository reads (its object store's), taking only ``true`` and
``false`` or plain integers (``core.packedGitLimit = 512m``, ``pack.windowMemory = 100m`` or
``core.compression = x`` failed the open: every request "internal error"), and what git 2.39
refuses where one cannot be read (checked with the
server's ``[git] config`` file as git's system config, ``GIT_CONFIG_SYSTEM``, and in the
repository's own; ``pack.writeBitmaps`` and ``repack.writeBitmaps`` only ``git repack`` reads).
The repository's own are judged as dulwich's open reads them (``backends.filesystem``)."""


def _base_refusals(base: ConfigFile, own: ConfigFile) -> dict[str, str]:
    """What git would refuse, by service, for a value of ``OPEN_SETTINGS`` the server's git config
    ``base`` gives that git would not read, in git's words and naming that file: git reads it as
    its ``/etc/gitconfig`` and refuses such a value there as in the repository's own (a
    ``core.commitGraph`` or ``core.multiPackIndex`` only when the repository's own sets none)."""
    refusals: dict[str, str] = {}
    for (section, name), setting in OPEN_SETTINGS.items():
        values = written_values(base, section, name)
        if not values:
            continue
        if setting.last_only:
            try:
                own.get((section,), name)
                continue  # (the repository's own value is the last)
            except KeyError:
                values = values[-1:]
        key = f"{section.decode()}.{name.decode()}"
        try:
            for value, valueless in values:
                tagged = _server_value(value, base.path)
                _git_int(valueless_number(tagged, valueless), key, 0) if setting.number else _git_bool(tagged, key)
        except ConfigValueError as exc:
            for service in setting.refused_by:
                refusals.setdefault(service, str(exc))
    return refusals


def _graft_cut_message(commit: bytes) -> str:
    return (f"the repository's info/grafts cuts commit {commit.decode('ascii')} off from its own parents, so "
            "git would send its history cut and a clone would fail; tell the server's operator to run "
            "'git replace --convert-graft-file' in the repository")


class ConfigValueError(ValueError):
    """A repository config value git would refuse; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class ReceiveRules:
    """What a repository's ``receive.deny*`` settings refuse (git's defaults when unset)."""

    deny_deletes: bool = False
    deny_non_fast_forwards: bool = False
    deny_delete_current: str = REFUSE
    deny_current_branch: str = REFUSE
    delete_current_set: bool = False
    current_branch_set: bool = False
    """Whether the config sets those two (unset, git tells the pusher how to set them)."""
    proc_refs: tuple[git_proc_receive.ProcRule, ...] = ()
    """``receive.procReceiveRefs``: the commands a ``proc-receive`` hook makes instead of the server."""


def _git_bool(value: bytes | None, key: str) -> bool:
    """A boolean as git's config reads it: true/yes/on, false/no/off/empty, or an integer (unset: false)."""
    if value is None:
        return False
    text = value.lower()  # (as written: git compares the words whole, "true " is none of them)
    if text in (b"true", b"yes", b"on"):
        return True
    if text in (b"", b"false", b"no", b"off"):
        return False
    number = _git_number(text, INT_BITS)
    if number is None:
        raise ConfigValueError(f"bad boolean config value '{value.decode('utf-8', 'replace')}' for '{key}'; "
                               f"{_fix_it(value)}")
    return number != 0


def _git_int(value: bytes | None, key: str, default: int) -> int:
    """An integer as git's config reads it, with an optional ``k``, ``m`` or ``g`` (unset: ``default``),
    within the range of the type git reads ``key`` in (``NUMBER_RANGES``)."""
    if value is None:
        return default
    text = value.lstrip(_C_SPACE)  # (strtoimax skips the spaces before a number; one after is no unit)
    number = _git_number(text, None)
    bounds = NUMBER_RANGES.get(key.lower())
    if bounds is not None and number is not None:
        low, high = bounds
        if not low <= number <= high or (low == 0 and b"-" in text):  # (unsigned: git refuses "-0" too)
            raise ConfigValueError(f"bad numeric config value '{value.decode('utf-8', 'replace')}' for '{key}' "
                                   f"(git reads it from {low} to {high}); {_fix_it(value)}")
    if number is None:
        raise ConfigValueError(f"bad numeric config value '{value.decode('utf-8', 'replace')}' for '{key}'; "
                               f"{_fix_it(value)}")
    floor = NUMBER_FLOORS.get(key.lower())
    if floor is not None and number < floor[0]:
        raise ConfigValueError(f"bad config value '{value.decode('utf-8', 'replace')}' for '{key}' ({floor[1]}); "
                               f"{_fix_it(value)}")
    return number


_INT = (-((1 << 31) - 1), (1 << 31) - 1)
"""``git_config_int``: a C ``int``, git's ``git_parse_signed`` taking as much below 0 as above."""
_INT64 = (-((1 << 63) - 1), (1 << 63) - 1)
"""``git_config_int64``."""
_ULONG = (0, (1 << 64) - 1)
"""``git_config_ulong`` (an ``unsigned long`` of a 64-bit Linux): no ``-`` anywhere ("invalid unit")."""

NUMBER_RANGES: Mapping[str, tuple[int, int]] = {
    "core.bigfilethreshold": _ULONG,
    "core.deltabasecachelimit": _ULONG,
    "receive.certnonceslop": _ULONG,
    "uploadpackfilter.tree.maxdepth": _ULONG,
    "receive.maxinputsize": _INT64,
    "receive.unpacklimit": _INT,
    "transfer.unpacklimit": _INT,
    "receive.keepalive": _INT,
    "uploadpack.keepalive": _INT,
    "gc.auto": _INT,
    "gc.autopacklimit": _INT,
    "core.filesreflocktimeout": _INT,
    "core.packedrefstimeout": _INT,
    "core.compression": (-1, 9),  # (git: "bad zlib compression level 10")
    "core.loosecompression": (-1, 9),
    "pack.compression": (-1, 9),  # ("bad pack compression level 10")
    "core.packedgitlimit": _ULONG,
    "core.packedgitwindowsize": _ULONG,
    "pack.windowmemory": _ULONG,
    "pack.deltacachesize": _ULONG,
    "pack.depth": _INT,
    "pack.threads": _INT,
    "pack.indexversion": _INT,
}
"""The type git 2.39 reads each number setting hgwire reads in, by key: a value outside it is one
git dies on ("bad numeric config value '-5' for 'core.bigfilethreshold': invalid unit", "…: out of
range"), so it is refused where git refuses it (checked with git's receive-pack, upload-pack and
pack-objects on each setting)."""

RECEIVE_START_NUMBERS: tuple[tuple[bytes | tuple[bytes, ...], bytes], ...] = (
    (b"receive", b"keepalive"), (b"receive", b"certnonceslop"), (b"receive", b"maxinputsize"),
    (b"receive", b"unpacklimit"), (b"transfer", b"unpacklimit"), (b"core", b"filesreflocktimeout"))
"""Numbers git's receive-pack reads as it starts, whatever the push (its config callback, and its
ref transaction's lock timeout): one git would not read refuses every push."""
UPLOAD_START_NUMBERS: tuple[tuple[bytes | tuple[bytes, ...], bytes], ...] = (
    (b"uploadpack", b"keepalive"), ((b"uploadpackfilter", b"tree"), b"maxdepth"))
"""The same for git's upload-pack: every fetch, and ``ls-remote`` in protocol v0 (``service_refusal``)."""
RECEIVE_START_BOOLEANS = tuple((section, name) for section, names in (
    (b"receive", (b"advertiseatomic", b"advertisepushoptions", b"denydeletes", b"denynonfastforwards",
                  b"denycurrentbranch", b"denydeletecurrent", b"fsckobjects", b"autogc", b"updateserverinfo",
                  b"shallowupdate")),
    (b"transfer", (b"fsckobjects", b"advertisesid"))) for name in names)
"""Booleans git's receive-pack reads through its config callback as it starts, each value as it
is met: one git would not read, anywhere among them, refuses every push (hgwire judged the last
value of those it reads, and none of the others)."""
UPLOAD_START_BOOLEANS = ((b"uploadpack", b"allowfilter"), (b"uploadpack", b"allowrefinwant"),
                         (b"uploadpack", b"allowtipsha1inwant"), (b"uploadpack", b"allowreachablesha1inwant"),
                         (b"uploadpack", b"allowanysha1inwant"), (b"uploadpackfilter", b"allow"),
                         (b"transfer", b"advertisesid"))
"""The same for git's upload-pack: every fetch, and ``ls-remote`` in protocol v0 (git 2.39 checked
for each, over ``file://``; in v2 its ``ls-refs`` reads none of them: ``service_refusal``)."""
SERVICE_BOOLEANS: Mapping[str, tuple[tuple[bytes, bytes], ...]] = {
    "receive-pack": ((b"core", b"logallrefupdates"),),
    "pack": ((b"core", b"logallrefupdates"),),
}
"""Booleans git's receive-pack, and its pack-objects (a fetch that gets a pack), read through
``git_default_config``, each value as it is met (``service_refusal``): ``core.logAllRefUpdates =
maybe`` then ``= true`` refuses both; ``always`` is a word it takes."""
_DENY_WORDS = frozenset((b"ignore", b"warn", b"refuse", b"updateinstead"))
BOOLEAN_WORDS: Mapping[str, frozenset[bytes]] = {
    "receive.denycurrentbranch": _DENY_WORDS,
    "receive.denydeletecurrent": _DENY_WORDS,
    "core.logallrefupdates": frozenset((b"always",)),
}
"""The words a boolean setting takes beside a boolean (``_deny_action``)."""
LAST_ONLY_NUMBERS = frozenset({(b"core", b"filesreflocktimeout")})
"""Those of them git reads by ``git_config_get_int`` (the last value the files give): git's
receive-pack and upload-pack read the others through their config callbacks, each value as it is
met, so that ``receive.keepAlive = 12q`` then ``= 5`` refuses every push (checked with git 2.39's
over ``file://``: ``core.filesRefLockTimeout`` so set is served)."""


NUMBER_FLOORS: Mapping[str, tuple[int, str]] = {
    "pack.threads": (0, "git's pack-objects refuses a number of threads below 0"),
}
"""Numbers git reads in their type's range and then refuses below a floor of its own, and why (git
2.39's pack-objects dies on ``pack.threads = -1``, "invalid number of threads specified (-1)", and a
clone is told only that the pack ended early)."""


_GIT_NUMBER = re.compile(rb"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgG]?)")
"""A number as git's config reads it: C's ``strtoimax`` of base 0 (``0x1f`` hexadecimal, ``010``
octal, no ``_`` between digits), then a unit (``k``, ``m``, ``g``, either case)."""
_UNITS = {b"": 1, b"k": 1 << 10, b"m": 1 << 20, b"g": 1 << 30}
INT_BITS = 32
"""The width git reads a boolean's number in (``git_parse_int``)."""


def _git_number(text: bytes, bits: int | None) -> int | None:
    """``text`` (spaces before it skipped, as ``strtoimax`` skips them) as git's ``git_parse_signed``
    reads it into a signed number of ``bits`` (None: any); None where git refuses it (not a number,
    out of range)."""
    found = _GIT_NUMBER.fullmatch(text.lstrip(_C_SPACE))
    if found is None:
        return None
    sign, digits, unit = found.groups()
    base = 16 if digits[1:2] in (b"x", b"X") else 8 if digits.startswith(b"0") and len(digits) > 1 else 10
    number = int(digits, base) * _UNITS[unit.lower()] * (-1 if sign == b"-" else 1)
    if bits is None:
        return number
    most = (1 << (bits - 1)) - 1  # (as much below 0 as above: -2147483648 and -2g are out of an int's range)
    return number if -most <= number <= most else None


_C_SPACE = b" \t\n\v\f\r"
"""What C's ``isspace`` (so ``strtoimax``) skips before a number."""


def _deny_action(value: bytes | None, key: str) -> str:
    """``ignore``, ``warn``, ``refuse``, ``updateInstead`` or a boolean (true refuses), as git reads them."""
    if value is None:
        return REFUSE
    text = value.lower()
    if text == b"ignore":
        return IGNORE
    if text == b"warn":
        return WARN
    if text == b"refuse":
        return REFUSE
    if text == b"updateinstead":
        return UPDATE_INSTEAD
    return REFUSE if _git_bool(value, key) else IGNORE
NON_COMMIT_BRANCH = "failed to update ref"
"""git's receive-pack's reason for a branch that would name a tree, blob or tag (its ``error:`` line
says which)."""
BAD_REF = "bad ref"
"""git's receive-pack's reason when ``receive.denyNonFastForwards`` compares a branch's old and new
ids and one is not a commit."""


def _name_conflicts(checked: list[tuple[RefUpdate, str | None]], existing: Iterable[bytes]
                    ) -> list[tuple[RefUpdate, str | None]]:
    """Refuse creating a ref whose name is a directory of another's, or inside another's.

    ``refs/heads/dev`` and ``refs/heads/dev/x`` cannot both exist (git's files
    backend keeps a ref as a file named after it, and packs them with the same
    rule); a clone of a repository holding both fails.  The refs this push
    deletes make room, and the ones it creates count, in push order, as in git.
    """
    names = set(existing)
    for update, reason in checked:
        if reason is None and is_zero_id(update.new):
            names.discard(update.ref)
    ordered = sorted(names)
    out: list[tuple[RefUpdate, str | None]] = []
    for update, reason in checked:
        if reason is None and not is_zero_id(update.new) and update.ref not in names:
            clash = _clash(update.ref, names, ordered)
            if clash is not None:
                reason = f"failed to update ref: '{clash.decode('utf-8', 'replace')}' exists; " \
                         f"cannot create '{update.ref.decode('utf-8', 'replace')}'"
            else:
                names.add(update.ref)
                bisect.insort(ordered, update.ref)
        out.append((update, reason))
    return out


def _clash(ref: bytes, names: set[bytes], ordered: list[bytes]) -> bytes | None:
    """A name in ``names`` that is a directory of ``ref`` (``a`` for ``a/b``) or below it."""
    cut = ref.find(b"/")
    while cut >= 0:
        if ref[:cut] in names:
            return ref[:cut]
        cut = ref.find(b"/", cut + 1)
    below = ref + b"/"
    at = bisect.bisect_left(ordered, below)  # ``ordered`` is ``names`` sorted: the first one after is it
    return ordered[at] if at < len(ordered) and ordered[at].startswith(below) else None


_thread_locks: dict[int, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock_for(repo: BaseRepo) -> RefLock:
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(id(repo), threading.Lock())

    @contextmanager
    def held() -> Iterator[None]:
        with lock:
            yield

    return held


_SYMREF = b"ref: "


def _small_file(path: str) -> bytes | None:
    """The first ``MAX_LOOSE_HEAD`` bytes of the regular file ``path``; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, MAX_LOOSE_HEAD) if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _detached(head: bytes | None) -> bool:
    """Whether a working tree's ``HEAD`` holds an object id (git's ``is_detached``), not a symbolic ref."""
    return head is not None and _OBJECT_ID.fullmatch(head.rstrip(b"\n")) is not None


_OBJECT_ID = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")


def _busy_branches(admin: str) -> list[bytes]:
    """The branches the detached working tree whose administrative directory is ``admin`` is in the
    middle of rebasing or bisecting, as git 2.39's ``wt_status_check_rebase`` and ``_bisect`` find
    them: ``rebase-apply/head-name`` (unless ``rebase-apply/applying`` says it is ``git am``'s), else
    ``rebase-merge/head-name``; and ``BISECT_START`` once ``BISECT_LOG`` is there."""
    found: list[bytes] = []
    if os.path.exists(os.path.join(admin, "rebase-apply")):
        if not os.path.exists(os.path.join(admin, "rebase-apply", "applying")):
            found += _branch_file(os.path.join(admin, "rebase-apply", "head-name"))
    elif os.path.exists(os.path.join(admin, "rebase-merge")):
        found += _branch_file(os.path.join(admin, "rebase-merge", "head-name"))
    if os.path.exists(os.path.join(admin, "BISECT_LOG")):
        found += _branch_file(os.path.join(admin, "BISECT_START"))
    return found


def _branch_file(path: str) -> list[bytes]:
    """The branch a ``head-name`` or ``BISECT_START`` file names, as git's ``get_branch`` reads it
    (``refs/heads/NAME`` or ``NAME``; none for an object id or ``detached HEAD``), as a full ref."""
    value = (_small_file(path) or b"").rstrip(b"\n")
    if not value or value == b"detached HEAD" or _OBJECT_ID.fullmatch(value):
        return []
    return [value if value.startswith(HEADS_PREFIX) else HEADS_PREFIX + value]


def _symref_target(value: bytes | None) -> bytes | None:
    """The target named by a ref's content ``ref: <target>``; None for an object id or no ref."""
    if value is None or not value.startswith(_SYMREF):
        return None
    return bytes(value[len(_SYMREF):].strip())
