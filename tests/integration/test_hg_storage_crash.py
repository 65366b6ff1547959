"""A writer that fails or is killed leaves the repository exactly as it was, and hg agrees.

Failures are injected at several points of a transaction (while reading the
changegroup, while flushing a revlog, while splitting an inline revlog, while
writing phaseroots, at the commit point); a real writer subprocess is also
killed with SIGKILL mid-transaction and the next open (or ``hg recover``)
rolls it back.  Locks are shared with a real ``hg``.
"""

# The session fixtures are imported from test_hg_storage_repos, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_hg_storage_repos import HG, Hg, hg_cli, zstd_repo  # noqa: F401

import backends.hg as hgstore
from backends.hg import revlog as revlog_mod
from backends.hg import transaction as journal_mod
from backends.hg import writer as writer_mod
from backends.hg.repository import HgRepo
from backends.interfaces import DeltaMode, Node, RevisionGroup, Section
from protocols.errors import ProtocolError, StorageError
from tests.integration.test_hg_changelog_format import inline_changelog

ROOT = Path(__file__).resolve().parents[2]


def snapshot(repo_path: Path) -> dict[str, bytes]:
    """Every file under .hg (caches included), by relative path."""
    out = {}
    for dirpath, _, files in os.walk(repo_path / ".hg"):
        for name in files:
            full = Path(dirpath) / name
            if full.is_symlink():  # a lock left by a killed writer: broken on next use
                continue
            out[str(full.relative_to(repo_path))] = full.read_bytes()
    return out


class Boom(Exception):
    """The injected failure."""


@pytest.fixture
def half_copied(hg_cli: Hg, zstd_repo: Path, tmp_path: Path) -> tuple[HgRepo, HgRepo, Path]:
    """A target holding the first half of the source (a partial copy), ready for the rest."""
    source = hgstore.open_repository(str(zstd_repo), "src")
    target_path = tmp_path / "t"
    target = hgstore.create_repository(str(target_path), "t")
    nodes = source.missing([], source.heads())
    tx = target.transaction()
    tx.add_changegroup(source.emit_groups(nodes[:5], DeltaMode.ANY))
    tx.set_bookmark(b"mark", None, nodes[0])
    tx.commit()
    (target_path / ".hg" / "cache").mkdir(exist_ok=True)
    (target_path / ".hg" / "cache" / "branch2-served").write_bytes(b"stale if not removed\n")
    return source, target, target_path


def _rest(source: HgRepo, target: HgRepo) -> list[Node]:
    return source.missing(target.heads(), source.heads())


def _failing_groups(groups: Iterator[RevisionGroup], after: int) -> Iterator[RevisionGroup]:
    for i, group in enumerate(groups):
        if i == after:
            raise Boom("peer went away")
        yield group


INJECTIONS = ["stream", "flush", "split", "split-changelog", "phaseroots", "journal-close"]
"""Where a transaction fails; ``split-changelog``: splitting the changelog, inline before (as older
writers left it), which the commit splits."""


@pytest.mark.parametrize("where", INJECTIONS)
def test_injected_failure_rolls_back_byte_for_byte(
    hg_cli: Hg, half_copied: tuple[HgRepo, HgRepo, Path], where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target, path = half_copied
    if where == "split-changelog":
        inline_changelog(path)
    before = snapshot(path)
    nodes = _rest(source, target)
    groups: Iterator[RevisionGroup] = source.emit_groups(nodes, DeltaMode.ANY)
    if where == "stream":
        groups = _failing_groups(groups, after=4)
    elif where == "flush":
        calls = iter(range(100))
        original = revlog_mod.RevlogWriter.flush

        def flaky_flush(self: revlog_mod.RevlogWriter) -> None:
            if next(calls) == 3:
                raise Boom("disk full")
            original(self)

        monkeypatch.setattr(revlog_mod.RevlogWriter, "flush", flaky_flush)
    elif where == "split":
        monkeypatch.setattr(revlog_mod.RevlogWriter, "_split", lambda self: (_ for _ in ()).throw(Boom("split")))
        monkeypatch.setattr(revlog_mod, "MAX_INLINE", 1)
    elif where == "split-changelog":
        original_split = revlog_mod.RevlogWriter._split

        def split_failing_at_the_changelog(self: revlog_mod.RevlogWriter) -> None:
            if self.changelog:
                self._write_split_data()  # its .d written, then the replacement of its index fails
                raise Boom("split")
            original_split(self)

        monkeypatch.setattr(revlog_mod.RevlogWriter, "_split", split_failing_at_the_changelog)
    elif where == "phaseroots":
        monkeypatch.setattr(writer_mod.Transaction, "_write_phaseroots", lambda self: (_ for _ in ()).throw(Boom()))
    else:
        monkeypatch.setattr(journal_mod.Journal, "close", lambda self: (_ for _ in ()).throw(Boom()))
    with pytest.raises(Boom):
        tx = target.transaction()
        tx.add_changegroup(groups)
        tx.set_phase(1, nodes[-1:])
        tx.commit()
    assert snapshot(path) == before  # byte for byte, so hg sees exactly the old repository
    monkeypatch.undo()
    tx = target.transaction()  # the lock was released
    tx.add_changegroup(source.emit_groups(nodes, DeltaMode.ANY))
    tx.commit()
    assert target.heads() == source.heads()
    assert (path / ".hg" / "cache" / "branch2-served").read_bytes() != b"stale if not removed\n"  # rewritten
    assert hg_cli(path, "verify", "-q", check=False) == b""


def _renamed_first_file_group(groups: Iterator[RevisionGroup], seen: list[bytes]) -> Iterator[RevisionGroup]:
    """The stream as a push damaged in transit would carry it: the first file group under another name."""
    for group in groups:
        if group.section is Section.FILE and not seen:
            seen.append(group.path)
            group = RevisionGroup(group.section, group.path[:-1] + bytes([group.path[-1] ^ 1]), group.revisions)
        yield group


def test_a_file_group_under_a_damaged_name_is_refused_byte_for_byte(
    hg_cli: Hg, zstd_repo: Path, tmp_path: Path
) -> None:
    """Every delta and hash of such a push checks out; only its changesets' file lists give it away.

    The target is empty, so the damaged group's deltas need no base under its true name.
    """
    source = hgstore.open_repository(str(zstd_repo), "src")
    path = tmp_path / "t"
    target = hgstore.create_repository(str(path), "t")
    before = snapshot(path)
    nodes = source.missing([], source.heads())
    seen: list[bytes] = []
    tx = target.transaction()
    with pytest.raises(ProtocolError, match="refers to a missing revision of"):
        tx.add_changegroup(_renamed_first_file_group(source.emit_groups(nodes, DeltaMode.ANY), seen))
    assert seen, "the push carried no file group to damage"
    assert snapshot(path) == before
    assert hg_cli(path, "verify", "-q", check=False) == b""
    tx = target.transaction()  # the lock was released, and the undamaged push lands
    tx.add_changegroup(source.emit_groups(nodes, DeltaMode.ANY))
    tx.commit()
    assert target.heads() == source.heads()


KILLED_WRITER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[3])
import backends.hg as hgstore
from backends.hg import revlog
from backends.interfaces import DeltaMode
source = hgstore.open_repository(sys.argv[1], "src")
target = hgstore.open_repository(sys.argv[2], "t")
revlog.MAX_INLINE = 1024  # force inline->split conversions inside the transaction too
tx = target.transaction()
tx.add_changegroup(source.emit_groups(source.missing(target.heads(), source.heads()), DeltaMode.ANY))
if sys.argv[4] == "pending":  # as hooks run: the split indexes beside their inline .i
    tx.write_pending()
else:
    tx._write_all()  # everything on disk, journal still present: the commit point is not reached
print("written", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(("inline_cl", "killed"), [(False, "written"), (True, "written"), (False, "pending")])
@pytest.mark.parametrize("recover_with", ["hgwire", "hg"])
def test_sigkilled_writer_is_rolled_back(
    hg_cli: Hg, half_copied: tuple[HgRepo, HgRepo, Path], tmp_path: Path, recover_with: str, inline_cl: bool,
    killed: str
) -> None:
    """``inline_cl``: the changelog was inline (as older writers left it); the killed writer had split it.
    ``killed``: after every write before the commit point, or while hooks would run, the inline
    filelogs and manifest it split waiting beside their ``.i`` (``data-s/``, ``00manifest.i.s``)."""
    source, _, path = half_copied
    if inline_cl:
        inline_changelog(path)
    before = snapshot(path)
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(source_path(source)), str(path), str(ROOT), killed],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"written\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (path / ".hg" / "store" / "journal").exists()
    assert snapshot(path) != before
    if killed == "pending":
        assert (path / ".hg/store/00manifest.i.s").exists() and list((path / ".hg/store/data-s").iterdir())
    else:
        assert (path / ".hg/store/00changelog.d").exists()  # split by the killed writer, when it was inline
    if recover_with == "hg":
        assert hg_cli(path, "recover") == b"rolling back interrupted transaction\n"
    else:
        hgstore.open_repository(str(path), "t")
    after = snapshot(path)
    for name in list(after):
        # caches may be rebuilt; hg recover leaves the cache backups it restored
        if name.startswith(".hg/cache") or "journal.backup." in name:
            after.pop(name)
    expected = {k: v for k, v in before.items() if not k.startswith(".hg/cache")}
    assert after == expected
    assert b"error" not in hg_cli(path, "verify", "-q", check=False)


def source_path(repo: HgRepo) -> str:
    return os.fsdecode(os.path.dirname(os.path.dirname(repo.store.root)))  # type: ignore[attr-defined]


def test_real_hg_lock_is_respected_both_ways(hg_cli: Hg, half_copied: tuple[HgRepo, HgRepo, Path]) -> None:
    _, target, path = half_copied
    target.locks.lock.timeout = 0.5  # type: ignore[attr-defined]
    target.locks.wlock.timeout = 0.5  # type: ignore[attr-defined]
    hg_cli(path, "update", "-q", "tip")
    (path / "x").write_text("x\n")
    slow = subprocess.Popen(
        [hg_path(), "commit", "-A", "-q", "-m", "slow", "--config", "hooks.pretxncommit=sleep 3"],
        cwd=path,
        env=hg_cli.env,
    )
    deadline = time.monotonic() + 10
    while not (path / ".hg" / "store" / "lock").is_symlink() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(StorageError, match="locked"):
        target.transaction()
    assert slow.wait() == 0
    tx = target.transaction()
    try:
        (path / "y").write_text("y\n")
        out = subprocess.run(
            [hg_path(), "commit", "-A", "-q", "-m", "blocked", "--config", "ui.timeout=1"],
            cwd=path, env=hg_cli.env, capture_output=True, check=False,
        )
        assert out.returncode != 0 and b"lock" in out.stderr
    finally:
        tx.abort()
    assert hg_cli(path, "verify", "-q", check=False) == b""


def hg_path() -> str:
    return str(HG)


def test_transaction_of_a_killed_hg_is_rolled_back_on_open(hg_cli: Hg, tmp_path: Path) -> None:
    """Mercurial's own journal format: a real ``hg`` killed inside its transaction."""
    path = tmp_path / "r"
    hg_cli(tmp_path, "init", str(path))
    (path / "Big File.txt").write_bytes(b"".join(b"%d\n" % i for i in range(40000)))
    hg_cli(path, "commit", "-A", "-q", "-m", "first")
    before = snapshot(path)
    (path / "Big File.txt").write_bytes(b"".join(b"%d changed\n" % i for i in range(40000)))
    (path / "New_Name").write_bytes(b"new\n")
    hg_cli(path, "commit", "-A", "-q", "-m", "killed", "--config", "hooks.pretxncommit=kill -9 $PPID", check=False)
    assert (path / ".hg" / "store" / "journal").exists()
    hgstore.open_repository(str(path), "r")
    def store(snap: dict[str, bytes]) -> dict[str, bytes]:  # the working copy's files are hg's business
        return {k: v for k, v in snap.items() if k.startswith(".hg/store/") and "undo" not in k}

    assert store(snapshot(path)) == store(before)
    assert hg_cli(path, "verify", "-q", check=False) == b""
