"""Maintenance for fast serving: one pack with a reachability bitmap.

``backends.git_fastpack`` counts a clone from a pack bitmap in milliseconds;
without one it walks every commit and tree (about a second for 5,000 commits).
Writing the bitmap is ordinary git maintenance (``git repack -a -d -b``, what
``git gc`` does for bare repositories), so hgwire delegates it to a ``git``
binary when one is installed.  The fast path is correct either way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import AnyStr

from dulwich.file import SharedPerm, adjust_shared_perm

from backends.blobs import process_umask
from backends.git_midx import midx_bitmap_present
from backends.git_packindex import pack_basenames
from backends.hg.lock import pid_alive

REPACK_ARGS = ("repack", "-a", "-d", "-l", "-q", "--write-bitmap-index", "--keep-unreachable")
"""One pack with a bitmap, the packs it replaces removed (what ``git gc`` does to a bare repository's
objects).  ``--keep-unreachable``: the objects of a push whose pack has landed but whose refs are not
written yet are not reachable during the repack; they must not go with the packs it removes.
``-l``: only the repository's own objects, as ``git gc`` packs them: a fork that borrows its
history from another repository's objects (``objects/info/alternates``) keeps borrowing it (without
it the fork's repack copied the whole history in: 16 KiB became 33 MB for the bench corpus); git
writes no bitmap for such a pack then (it says so and packs anyway)."""

CRUFT_REPACK_ARGS = ("repack", "-a", "-d", "-l", "-q", "--write-bitmap-index", "--cruft")
"""``REPACK_ARGS`` for a repository that keeps its unreachable objects in a cruft pack (``git gc
--cruft``, ``gc.cruftPacks``: a ``.mtimes`` file beside the pack): they are kept all the same, in
a cruft pack again with the times they were last written, which the operator's ``git gc
--prune=…`` expires them by.  ``--keep-unreachable`` moved them into the new pack, whose time
every later repack renewed: they were never pruned."""


REVERSE_INDEX_ARGS = ("-c", "pack.writeReverseIndex=true")
"""Put before ``REPACK_ARGS``: the new pack gets its reverse index (``pack-<hash>.rev``, git's default
from 2.41, not in the 2.39 a host may have), which ``git_packindex`` reads its pack order from
instead of sorting it (a cold clone of a million objects: 0.34 s of server CPU, not 0.94)."""


def repack_args(git_dir: str | os.PathLike[str], reverse_index: bool = True) -> tuple[str, ...]:
    """The ``git repack`` arguments for the repository at ``git_dir``: ``CRUFT_REPACK_ARGS`` when
    it holds a cruft pack, else ``REPACK_ARGS``; after ``REVERSE_INDEX_ARGS`` with ``reverse_index``
    (false where the repository's config sets ``pack.writeReverseIndex = false``: the caller reads it)."""
    pack_dir = Path(git_dir) / "objects" / "pack"
    args = CRUFT_REPACK_ARGS if any(pack_dir.glob("pack-*.mtimes")) else REPACK_ARGS
    return REVERSE_INDEX_ARGS + args if reverse_index else args


COMMIT_GRAPH_ARGS = ("commit-graph", "write", "--reachable", "--no-progress")
"""The commit-graph of every commit the refs reach, what ``git gc`` writes after its repack
(``gc.writeCommitGraph``, true by default): git's own commands on the server (``rev-list``, an
upload-pack's negotiation, ``git log`` of an operator) read commits from it, and one written by an
earlier ``git gc`` would otherwise go on covering only the commits of its day."""


PACK_REFS_ARGS = ("pack-refs", "--all", "--prune")
"""Every loose ref into ``packed-refs``, the loose files removed (what ``git gc`` does beside its repack):
each push to a new branch or tag leaves a loose ref file, which every advertisement reads."""

PACK_REFS_TIMEOUT = 600.0


AUTO_PACK_LIMIT = 50
"""Packs a repository may gather from pushes before it is repacked (git's ``gc.autoPackLimit``)."""


def count_packs(git_dir: str | os.PathLike[str]) -> int:
    """Complete packs (a ``.pack`` with its ``.idx``) of the repository at ``git_dir``."""
    return len(pack_basenames(os.path.join(git_dir, "objects", "pack")))


AUTO_LOOSE_LIMIT = 6700
"""Loose objects (estimated) past which a repository is repacked after a push (git's ``gc.auto``)."""


def estimate_loose(git_dir: str | os.PathLike[str]) -> int:
    """Loose objects, estimated as git's ``gc --auto`` does: the ``objects/17`` directory, times 256."""
    try:
        return 256 * sum(1 for name in os.listdir(Path(git_dir) / "objects" / "17") if len(name) == 38)
    except OSError:
        return 0


def needs_repack(git_dir: str | os.PathLike[str], pack_limit: int, loose_limit: int = AUTO_LOOSE_LIMIT) -> bool:
    """``pack_limit`` packs or more, or more than ``loose_limit`` loose objects (git's ``gc.auto``).

    A ``pack_limit`` of 0 (or less) turns both off, as hgwire's ``auto_pack_limit`` and git's
    ``gc.auto = 0`` do; a ``loose_limit`` of 0 only the loose count.
    """
    if pack_limit <= 0:
        return False
    if count_packs(git_dir) >= pack_limit:
        return True
    return loose_limit > 0 and estimate_loose(git_dir) > loose_limit


BITMAP_MIN_OBJECTS = 10_000
"""Objects in packs without a bitmap from which a repository is repacked to get one: every clone of
it walks all its commits and trees (half a second for the 54,000 objects of the bench corpus, where
git walks in a fifth of that and counts from a bitmap in milliseconds).  A migration's push lands
as one such pack; so does a repository an operator copied in with ``git clone --mirror``."""

_IDX_FIXED = 8 + 256 * 4 + 2 * 20
"""Bytes of a version 2 pack index besides its per-object tables (header, fan-out, two checksums)."""
_IDX_PER_OBJECT = 20 + 4 + 4
"""Bytes a SHA-1 object takes in a version 2 index (name, CRC-32, offset; a SHA-256 object's 40
make the estimate higher)."""


def packed_objects(git_dir: str | os.PathLike[str]) -> int:
    """The objects of the repository's packs, estimated from their index sizes (nothing read but
    the pack directory's listing and sizes)."""
    total = 0
    for base in pack_basenames(os.path.join(git_dir, "objects", "pack")):
        try:
            size = os.path.getsize(base + ".idx")
        except OSError:  # removed by a repack meanwhile
            continue
        total += max(0, size - _IDX_FIXED) // _IDX_PER_OBJECT
    return total


def needs_bitmap(git_dir: str | os.PathLike[str], min_objects: int = BITMAP_MIN_OBJECTS) -> bool:
    """Whether the repository holds ``min_objects`` objects or more, packed or loose (estimated as
    ``gc --auto`` estimates them), and no pack bitmap (a ``min_objects`` of 0 or less: never).  Loose
    objects count: a repository an operator brought with every object loose was never repacked
    when only fetched from, and every clone of it read and compressed each object again."""
    if min_objects <= 0 or has_bitmap(git_dir):
        return False
    return packed_objects(git_dir) + estimate_loose(git_dir) >= min_objects


def has_bitmap(git_dir: str | os.PathLike[str]) -> bool:
    """Whether the repository at ``git_dir`` (the bare repo or ``.git``) has a bitmap to count from:
    a pack's own (``pack-<hash>.bitmap``), or its multi-pack index's (``multi-pack-index-<hash>.bitmap``
    named by the index it was written for: what ``git repack --write-midx -b`` and hosts that repack
    geometrically leave, which ``backends.git_fastpack`` counts from as git does)."""
    pack_dir = Path(git_dir) / "objects" / "pack"
    return any(pack_dir.glob("pack-*.bitmap")) or midx_bitmap_present(os.fspath(pack_dir))


def write_bitmap(git_dir: str | os.PathLike[str], git: str | None = None,
                 timeout: float | None = None, reverse_index: bool = True) -> bool:
    """Repack into one pack with a bitmap (and its reverse index, with ``reverse_index``:
    ``repack_args``); False (nothing done) when no git binary is found.

    Raises ``subprocess.CalledProcessError`` / ``TimeoutExpired`` when git fails.
    Readers that mapped the old packs keep reading them until they finish.
    """
    return _run_git(git_dir, repack_args(git_dir, reverse_index), git, timeout)


GC_PID = "gc.pid"
GC_LOCK_SECONDS = 12 * 3600
"""How long a ``gc.pid`` counts, as git's gc counts it (a gc never takes that long)."""


def gc_holder(git_dir: str | os.PathLike[str]) -> str | None:
    """Who runs ``git gc`` on the repository now, as git's gc reads ``gc.pid`` (``<pid> <host>``,
    younger than 12 hours; on this host, a live process): ``"<pid> on <host>"``, or None."""
    path = os.path.join(git_dir, GC_PID)
    try:
        with open(path, "rb") as file:
            age = time.time() - os.fstat(file.fileno()).st_mtime
            text = file.read(512)
    except OSError:
        return None
    fields = text.split()
    if age > GC_LOCK_SECONDS or len(fields) < 2 or not fields[0].isdigit() or len(fields[0]) > 10:
        return None
    pid, host = int(fields[0]), fields[1].decode("utf-8", "replace")
    if host == socket.gethostname() and not pid_alive(pid):
        return None  # a gc that died: git takes its lock over too
    return f"{pid} on {host}"


def take_gc_lock(git_dir: str | os.PathLike[str]) -> str | None:
    """Hold the repository as ``git gc`` holds it while it runs (``gc.pid``, written through
    ``gc.pid.lock`` as git writes it), so that neither a ``git gc`` an operator or a hook starts nor
    another repack of hgwire's runs beside this one; None when taken, else who holds it."""
    holder = gc_holder(git_dir)
    if holder is not None:
        return holder
    lock = os.path.join(git_dir, GC_PID + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except FileExistsError:
        return "a gc taking its lock"
    try:
        try:
            holder = gc_holder(git_dir)  # (again, under the lock)
            if holder is None:
                os.write(fd, f"{os.getpid()} {socket.gethostname()}".encode())
        finally:
            os.close(fd)
        if holder is None:
            os.replace(lock, os.path.join(git_dir, GC_PID))
            return None
    except OSError:  # a full disk: the lock file must not stay (every later gc would stop at it)
        with contextlib.suppress(OSError):
            os.unlink(lock)
        raise
    os.unlink(lock)
    return holder


def release_gc_lock(git_dir: str | os.PathLike[str]) -> None:
    """Remove ``gc.pid`` if this process wrote it."""
    path = os.path.join(git_dir, GC_PID)
    try:
        with open(path, "rb") as file:
            mine = file.read(512).split()[:1] == [str(os.getpid()).encode()]
        if mine:
            os.unlink(path)
    except OSError:
        pass


def _run_git(git_dir: str | os.PathLike[str], args: tuple[str, ...], git: str | None,
             timeout: float | None) -> bool:
    """``git ARGS`` on the repository at ``git_dir``; False (nothing run) when no git binary is found."""
    binary = git or shutil.which("git")
    if binary is None:
        return False
    env = {**os.environ, "GIT_DIR": os.fspath(git_dir)}
    subprocess.run([binary, *args], env=env, check=True, capture_output=True, timeout=timeout)
    return True


def pack_refs(git_dir: str | os.PathLike[str], lock: Callable[[], AbstractContextManager[None]],
              git: str | None = None, timeout: float | None = PACK_REFS_TIMEOUT) -> bool:
    """``git pack-refs --all --prune`` holding ``lock``, hgwire's ref-update lock of the repository;
    False (nothing done) when no git binary is found.

    git writes the new ``packed-refs`` before it removes a loose file, so a reader that lists the
    loose refs and then reads ``packed-refs`` (hgwire's, git's) sees every ref; the lock keeps
    hgwire's own ref updates, which take ``packed-refs.lock`` without waiting to delete a packed
    ref, out of its way.  Raises ``subprocess.CalledProcessError`` / ``TimeoutExpired`` when git fails.
    """
    binary = git or shutil.which("git")
    if binary is None:
        return False
    with lock():
        return _run_git(git_dir, PACK_REFS_ARGS, binary, timeout)


def write_server_info(git_dir: str | os.PathLike[str], refs: Iterable[tuple[bytes, bytes, bytes | None]],
                      perm: SharedPerm | None = None) -> None:
    """``info/refs`` and ``objects/info/packs`` as git's ``update-server-info`` writes them, for
    clients of the dumb HTTP protocol served by another web server (``receive.updateServerInfo``).

    ``refs``: each ref under ``refs/`` (name, id, the object a tag finally names or None), in
    order; a line ``<id>\\t<name>`` each, and ``<peeled>\\t<name>^{}`` after a tag's.  The packs:
    ``P pack-<hash>.pack`` for each of the repository's own packs that has its index, newest
    first, then an empty line.  A file is rewritten only when it changed (a web server's caches
    keep it), through a temporary file renamed over it (a reader sees the old or the new one),
    with the mode a file git makes there gets (``core.sharedRepository``'s: ``perm``).
    """
    root = os.fspath(git_dir)
    lines = []
    for name, oid, peeled in refs:
        lines.append(oid + b"\t" + name + b"\n")
        if peeled is not None and peeled != oid:
            lines.append(peeled + b"\t" + name + b"^{}\n")
    _replace_if_changed(root, os.path.join(root, "info", "refs"), b"".join(lines), perm)
    pack_dir = os.path.join(root, "objects", "pack")
    packs = []
    for base in pack_basenames(pack_dir):
        try:
            packs.append((os.stat(base + ".pack").st_mtime_ns, os.path.basename(base)))
        except FileNotFoundError:  # removed by a repack meanwhile
            continue
    packs.sort(key=lambda p: (-p[0], p[1]))
    listed = b"".join(b"P " + os.fsencode(base) + b".pack\n" for _, base in packs) + b"\n"
    _replace_if_changed(root, os.path.join(root, "objects", "info", "packs"), listed, perm)


def _replace_if_changed(root: str, path: str, data: bytes, perm: SharedPerm | None) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as old:
        if old.read(len(data) + 1) == data:
            return
    directory = os.path.dirname(path)
    make_shared_dirs(root, directory, perm)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + "_")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o666 & ~process_umask())  # as git's mks_tempfile_m(…, 0666)
        adjust_shared_perm(tmp, perm)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_shared_dirs(root: AnyStr, directory: AnyStr, perm: SharedPerm | None) -> None:
    """Make ``directory`` and those above it, up to ``root``, that are missing, each given
    ``core.sharedRepository``'s modes as git gives a directory it makes there (``perm``; None:
    the umask's)."""
    missing = []
    while directory != root and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(made)
        adjust_shared_perm(made, perm)
