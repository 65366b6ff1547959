"""Repacking after pushes, as git's receive-pack runs ``gc --auto``.

Every push lands as a pack of its own.  Left alone, a busy repository gathers
hundreds: each object lookup then probes every index, and a clone cannot send
the whole copies that completed thin packs as deltas.  After a push that moved
a ref, a repository with ``[maintenance] auto_pack_limit`` packs or more (50 by
default, git's ``gc.autoPackLimit``), or as many loose objects as git's ``gc.auto``
allows, first gets its loose refs packed (``git pack-refs --all --prune``, in the
pool, under hgwire's ref-update lock), as git's gc packs them beside its repack,
then ``git_maintenance.REPACK_ARGS`` in the background: one pack with a bitmap,
which the fast clone path counts from, and its reverse index (``.rev``, unless the
repository's ``pack.writeReverseIndex`` is false), and after it the commit-graph
(``git_maintenance.COMMIT_GRAPH_ARGS``) where git's gc would write it
(``gc.writeCommitGraph``, ``core.commitGraph``).  A repository's own ``receive.autogc``,
``gc.auto`` and ``gc.autoPackLimit`` apply to it, as git's receive-pack reads them.

A repository whose packs hold ``[maintenance] bitmap_min_objects`` objects (10,000
by default) and no bitmap gets the same repack after a push or after a fetch that
sent a pack: without a bitmap every clone walks the whole history (a migration's
push lands as one such pack; an operator's ``git clone --mirror`` copy is another).
After a repack that was started while the repository had no bitmap, it is not
repacked for lack of one again for an hour (``BITMAP_RECHECK_SECONDS``; pack limits
still apply after pushes), so a repository git cannot repack (read-only, say) or
cannot give a bitmap (kept packs) costs a repack an hour, not one a clone or a push.

The repack is git's own process, spawned by the reactor (no worker thread waits
on it), one at a time per repository, holding the repository's ``gc.pid`` as ``git gc``
holds it: a ``git gc`` started meanwhile (an operator's cron, a hook) stops at once, and
while one runs, hgwire does not repack.  Readers keep the packs they mapped until
they finish; a push during the repack adds a pack the repack does not remove.
Without a ``git`` binary nothing runs, and that is logged once.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import process, protocol, task
from twisted.python.failure import Failure

from backends import git_maintenance
from backends.interfaces import GitRepository
from gateway.logs import SafeLogger
from gateway.threads import run_blocking

log = SafeLogger()

_running: set[str] = set()
_no_git_logged = False
_bitmap_started: dict[str, float] = {}
"""Repositories repacked while they had no bitmap, by name: when (``time.monotonic()``)."""

BITMAP_RECHECK_SECONDS = 3600.0
"""How long after such a repack a repository is not repacked for lack of a bitmap again."""
BITMAP_STARTED_KEPT = 10_000
"""Repositories ``_bitmap_started`` remembers at most (then it starts again empty)."""


def after_push(repo: GitRepository, name: str, pack_limit: int, bitmap_objects: int = 0) -> None:
    """On the reactor, after a push moved refs: repack in the background if the repository needs it."""
    candidate = getattr(repo, "repack_candidate", None)
    if candidate is None or pack_limit <= 0:
        return
    pack_refs = getattr(repo, "pack_refs", None)
    if _bitmap_tried_lately(name):  # git could not write one (kept packs, say): pack limits only
        bitmap_objects = 0

    def counted(planned: tuple[str | None, bool, bool]) -> None:
        path, commit_graph, reverse_index = planned
        if path:
            if bitmap_objects > 0:
                _bitmap_tried(name)
            _pack_refs_then_repack(path, name, pack_refs, commit_graph, reverse_index)

    run_blocking(_planned, repo, candidate, pack_limit, bitmap_objects).addCallback(counted).addErrback(
        _not_counted, name)


def told_after_push(repo: GitRepository) -> bytes:
    """What git's receive-pack tells the pusher of its ``gc --auto`` after the push: the error it
    dies of for a ``gc.auto`` or ``gc.autoPackLimit`` git would not read (``auto_gc_refusal``),
    as ``fatal: …`` (the pusher's client shows "remote: fatal: …"; the push stands); nothing
    otherwise.  On the reactor: the config it reads is the one the push read in the pool."""
    refusal = getattr(repo, "auto_gc_refusal", None)  # optional: a backend may not have it
    why = refusal() if refusal is not None else None
    return b"" if why is None else f"fatal: {why}\n".encode("utf-8", "replace")


def after_fetch(repo: GitRepository, name: str, pack_limit: int, bitmap_objects: int) -> None:
    """On the reactor, after a fetch sent a pack: repack in the background if the repository is big
    and has no bitmap (every clone of it walks its history)."""
    candidate = getattr(repo, "bitmap_candidate", None)
    if candidate is None or pack_limit <= 0 or bitmap_objects <= 0 or _bitmap_tried_lately(name):
        return
    pack_refs = getattr(repo, "pack_refs", None)

    def counted(planned: tuple[str | None, bool, bool]) -> None:
        path, commit_graph, reverse_index = planned
        if path and path not in _running:
            _bitmap_tried(name)
            _pack_refs_then_repack(path, name, pack_refs, commit_graph, reverse_index)

    def not_counted(failure: Failure) -> None:
        _bitmap_tried(name)  # a config git would not read: logged once an hour
        _not_counted(failure, name)

    run_blocking(_planned, repo, candidate, bitmap_objects).addCallback(counted).addErrback(not_counted)


def _planned(repo: GitRepository, candidate: Callable[..., str | None],
             *limits: int) -> tuple[str | None, bool, bool]:
    """In the pool: the git directory to repack (``candidate(*limits)``), whether its
    commit-graph is written after the repack, as git's gc writes it (``commit_graph_wanted``), and
    whether the repack writes its pack's reverse index (``reverse_index_wanted``)."""
    path = candidate(*limits)
    wanted = getattr(repo, "commit_graph_wanted", None)
    reverse = getattr(repo, "reverse_index_wanted", None)
    return (path, bool(path and wanted is not None and wanted()),
            bool(path and (reverse is None or reverse())))


def _bitmap_tried_lately(name: str) -> bool:
    started = _bitmap_started.get(name)
    return started is not None and time.monotonic() - started < BITMAP_RECHECK_SECONDS


def _bitmap_tried(name: str) -> None:
    if len(_bitmap_started) >= BITMAP_STARTED_KEPT:
        _bitmap_started.clear()
    _bitmap_started[name] = time.monotonic()


def _pack_refs_then_repack(git_dir: str, name: str, pack_refs: Callable[[], object] | None,
                           commit_graph: bool, reverse_index: bool = True) -> None:
    """The repository's ``pack_refs`` in the pool (a short step: git's pack-refs holding the ref
    lock, which pushes wait for), then the repack (and the commit-graph after it with
    ``commit_graph``); a failure to pack the refs is logged and the repack runs all the same."""
    if pack_refs is None:
        start_repack(git_dir, name, commit_graph=commit_graph, reverse_index=reverse_index)
        return
    run_blocking(pack_refs).addErrback(_refs_not_packed, name).addBoth(
        lambda _: start_repack(git_dir, name, commit_graph=commit_graph, reverse_index=reverse_index))


def _refs_not_packed(failure: Failure, name: str) -> None:
    errors = getattr(failure.value, "stderr", None)
    log.error("packing the refs of {repo} failed: {why} {errors}; its loose refs stay as they were",
              repo=name, why=str(failure.value),
              errors=errors.decode("utf-8", "replace").strip() if isinstance(errors, bytes) else "")


def _not_counted(failure: Failure, name: str) -> None:
    if failure.check(ValueError):  # the repository's gc settings (ConfigValueError): the operator's to fix
        log.warn("{repo} is not repacked: {why}", repo=name, why=str(failure.value))
        return
    log.failure("counting the packs of {repo}", failure, repo=name)


def start_repack(git_dir: str, name: str, git: str | None = None, commit_graph: bool = False,
                 reverse_index: bool = True) -> bool:
    """Spawn ``git repack`` for ``git_dir`` unless one runs for it already, then with
    ``commit_graph`` ``git commit-graph write`` once it has succeeded; False if none started.
    With ``reverse_index`` the new pack gets its ``.rev`` (``git_maintenance.REVERSE_INDEX_ARGS``)."""
    global _no_git_logged
    if git_dir in _running:
        return False
    binary = git or shutil.which("git")
    if binary is None:
        if not _no_git_logged:
            _no_git_logged = True
            log.warn("no git binary on PATH: pushed packs of {repo} are not repacked; install git",
                     repo=name)
        return False
    try:
        holder = git_maintenance.take_gc_lock(git_dir)
    except OSError as exc:  # a read-only repository, say: git could not repack it either
        log.warn("{repo} is not repacked: its gc.pid cannot be written ({why})", repo=name,
                 why=exc.strerror or str(exc))
        return False
    if holder is not None:
        log.info("{repo} is not repacked now: git gc runs on it ({holder}, its gc.pid)", repo=name, holder=holder)
        return False
    _running.add(git_dir)
    try:
        _spawn(_RepackProtocol(git_dir, name, binary, commit_graph, reverse_index))
    except Exception:
        git_maintenance.release_gc_lock(git_dir)
        _running.discard(git_dir)
        raise
    bitmap = git_maintenance.has_bitmap(git_dir)
    log.info("repacking {repo}: {packs} pack(s), {bitmap_state}", repo=name, packs=git_maintenance.count_packs(git_dir),
             bitmap=bitmap, bitmap_state="one with a bitmap" if bitmap else "no bitmap")
    return True


REAP_SECONDS = 1.0
"""How often a running repack's process is looked for among the exited children."""


def _spawn(done: _GitProtocol) -> None:
    """Run ``done``'s git command in its repository, seen to its end."""
    from twisted.internet import reactor

    reactor.spawnProcess(done, done.binary, [done.binary, *done.args], env={**os.environ, "GIT_DIR": done.git_dir},
                         path=done.git_dir)
    # A child that closes its pipes before it has exited is reaped on SIGCHLD, whose handler a
    # reactor run without signal handlers (an embedding program's, a test's thread) does not
    # have: without this the repack never ended for hgwire, and the repository was never repacked
    # again.  Reaping what has exited is harmless where the handler exists.
    done.reaper = task.LoopingCall(process.reapAllProcesses)
    done.reaper.start(REAP_SECONDS, now=False)


class _GitProtocol(protocol.ProcessProtocol):
    """One git command of a repository's maintenance: collects git's error output, logs the
    outcome (``succeeded``, ``failed``) and lets the repository go (``_running``, its ``gc.pid``)
    unless a next step (``next_step``) goes on holding it."""

    args: tuple[str, ...] = ()

    def __init__(self, git_dir: str, name: str, binary: str) -> None:
        self.git_dir = git_dir
        self.name = name
        self.binary = binary
        self.reaper: task.LoopingCall | None = None
        self.started = time.monotonic()
        self.errors = b""

    def errReceived(self, data: bytes) -> None:
        self.errors = (self.errors + data)[-4096:]

    def processEnded(self, reason: Any) -> None:
        if self.reaper is not None and self.reaper.running:
            self.reaper.stop()
        seconds = round(time.monotonic() - self.started, 2)
        code = getattr(reason.value, "exitCode", None)
        following = None
        try:
            if code == 0:
                self.succeeded(seconds)
                following = self.next_step()
            else:
                self.failed(code, self.errors.decode("utf-8", "replace").strip())
            if following is not None:
                _spawn(following)
        finally:
            if following is None or following.reaper is None:  # (not started: let the repository go)
                # gc.pid first: whoever sees the repository no longer running finds it let go
                git_maintenance.release_gc_lock(self.git_dir)
                _running.discard(self.git_dir)

    def succeeded(self, seconds: float) -> None:
        raise NotImplementedError

    def failed(self, code: int | None, errors: str) -> None:
        raise NotImplementedError

    def next_step(self) -> _GitProtocol | None:
        return None


class _RepackProtocol(_GitProtocol):
    """``git repack``, then with ``commit_graph`` the commit-graph (``_CommitGraphProtocol``)."""

    args: tuple[str, ...] = git_maintenance.REPACK_ARGS

    def __init__(self, git_dir: str, name: str, binary: str, commit_graph: bool,
                 reverse_index: bool = True) -> None:
        super().__init__(git_dir, name, binary)
        self.commit_graph = commit_graph
        # (a cruft pack's repository: --cruft; its pack's .rev unless its config says otherwise)
        self.args = git_maintenance.repack_args(git_dir, reverse_index)

    def succeeded(self, seconds: float) -> None:
        log.info("repacked {repo} in {seconds} s: {packs} pack(s)", repo=self.name, seconds=seconds,
                 packs=git_maintenance.count_packs(self.git_dir))

    def failed(self, code: int | None, errors: str) -> None:
        log.error("repacking {repo} failed (exit {code}): {errors}; the repository stays as it was",
                  repo=self.name, code=code, errors=errors)

    def next_step(self) -> _GitProtocol | None:
        return _CommitGraphProtocol(self.git_dir, self.name, self.binary) if self.commit_graph else None


class _CommitGraphProtocol(_GitProtocol):
    """``git commit-graph write --reachable`` after a repack, as git's gc writes it."""

    args = git_maintenance.COMMIT_GRAPH_ARGS

    def succeeded(self, seconds: float) -> None:
        log.info("wrote the commit-graph of {repo} in {seconds} s", repo=self.name, seconds=seconds)

    def failed(self, code: int | None, errors: str) -> None:
        log.error("writing the commit-graph of {repo} failed (exit {code}): {errors}; its packs are "
                  "repacked, its commit-graph stays as it was", repo=self.name, code=code, errors=errors)


def running() -> frozenset[str]:
    """The repositories being repacked now (for tests and status)."""
    return frozenset(_running)
