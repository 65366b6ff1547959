"""The branch of each changeset, and the rev-branch-cache files hgwire reads and writes as hg does.

The files hgwire writes are compared byte for byte with the ones the real ``hg``
writes for the same repository (``hg debugupdatecaches`` on a copy).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.hg import branchcache, open_repository, repository
from backends.hg.branchcache import NAMES_V2, RBC_RECORD, REVS_V2, _vouched, branch_of, read
from backends.hg.changelog import Changeset, format_changeset, parse_changeset
from backends.hg.lock import lock_prefix
from backends.hg.revlog import Index
from backends.hg.vfs import MemoryVfs
from backends.interfaces import DeltaMode
from backends.lru import LruCache
from protocols.errors import StorageError
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
BRANCHES = ["default", "stable", "stable", "default", "feature", "stable"]


def hg(path: Path, command: str, *args: str) -> None:
    # (the command before -R: hg_command_server takes a command line that starts with -R for no local
    # command, and would run each as its own process)
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), command, "-R", str(path), *args], cwd=path,
                                     env=ENV, check=True)


def commit_on(path: Path, branches: list[str], start: int = 0) -> None:
    for i, branch in enumerate(branches, start):
        hg(path, "branch", "-f", "-q", branch)
        (path / f"f{i}").write_text(f"{i}\n")
        hg(path, "commit", "-q", "-A", "-m", f"c{i}")


def clear_caches(path: Path) -> None:
    for entry in (path / ".hg" / "cache").iterdir():
        entry.unlink()


def hg_s_own(path: Path, tmp_path: Path) -> tuple[bytes, bytes]:
    """The rev-branch-cache the real hg writes from scratch for a copy of ``path``."""
    copy = tmp_path / "hg-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(path, copy, symlinks=True)
    clear_caches(copy)
    hg(copy, "debugupdatecaches")
    cache = copy / ".hg" / "cache"
    return (cache / "rbc-names-v2").read_bytes(), (cache / "rbc-revs-v2").read_bytes()


def files(path: Path) -> tuple[bytes, bytes]:
    cache = path / ".hg" / "cache"
    return (cache / "rbc-names-v2").read_bytes(), (cache / "rbc-revs-v2").read_bytes()


@pytest.fixture(scope="module")
def branchy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rbc") / "branchy"
    hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "init", str(path)], cwd=path.parent, env=ENV,
                                     check=True)
    commit_on(path, BRANCHES)
    hg(path, "commit", "-q", "-m", "closed", "--close-branch")
    clear_caches(path)
    return path


@pytest.fixture
def branchy(branchy_template: Path, tmp_path: Path) -> Path:
    """Six changesets on three branches, then one that closes ``stable``; no caches."""
    path = tmp_path / "branchy"
    shutil.copytree(branchy_template, path, symlinks=True)
    return path


# -- the branch of one changelog text ---------------------------------------------------------

EXTRA_TEXT = st.binary(max_size=12) | st.sampled_from([b"stable", b"a\\b", b"x\0y", b"l\nm", b"c\rd", b""])
EXTRA_KEYS = st.sampled_from([b"branch", b"close", b"source", b"convert_revision", b"branch:x", b"c"])


@st.composite
def changesets(draw: st.DrawFn) -> Changeset:
    extra = draw(st.dictionaries(EXTRA_KEYS | st.binary(min_size=1, max_size=6).filter(lambda k: b":" not in k),
                                 EXTRA_TEXT, max_size=4))
    return Changeset(
        manifest=draw(st.binary(min_size=20, max_size=20)),  # type: ignore[arg-type]
        user=draw(st.binary(min_size=1, max_size=10).filter(lambda u: b"\n" not in u)),
        time=draw(st.integers(min_value=-(2**31), max_value=2**40)),
        tz=draw(st.integers(min_value=-50400, max_value=50400)),
        extra=extra,
        files=tuple(draw(st.lists(st.sampled_from([b"a", b"b/c", b"d e"]), unique=True, max_size=3))),
        description=draw(st.binary(max_size=20)),
    )


def full_parse(text: bytes) -> tuple[bytes, bool] | type[StorageError]:
    try:
        cs = parse_changeset(text)
    except StorageError:
        return StorageError
    return cs.branch, cs.closes_branch


def fast(text: bytes) -> tuple[bytes, bool] | type[StorageError]:
    try:
        return branch_of(text)
    except StorageError:
        return StorageError


@given(changesets())
def test_the_branch_read_from_the_date_line_is_the_parser_s(cs: Changeset) -> None:
    text = format_changeset(cs)
    assert fast(text) == full_parse(text)
    if not any(b":" in key for key in cs.extra):  # hg splits a key at its first colon
        assert fast(text) == (cs.extra.get(b"branch", b"default"), b"close" in cs.extra)


@given(changesets(), st.integers(min_value=0, max_value=200), st.binary(min_size=1, max_size=4))
def test_a_damaged_changeset_gets_the_parser_s_answer_or_error(cs: Changeset, at: int, junk: bytes) -> None:
    text = format_changeset(cs)
    damaged = text[:at] + junk + text[at + len(junk):]
    assert fast(damaged) == full_parse(damaged)


# -- the files ------------------------------------------------------------------------------------

def test_hgwire_writes_the_files_hg_writes(branchy: Path, tmp_path: Path) -> None:
    repo = open_repository(str(branchy), "b")
    heads = repo.branchmap()
    assert sorted(heads) == [b"default", b"feature", b"stable"]
    assert files(branchy) == hg_s_own(branchy, tmp_path)
    cl = repo.changelog()
    assert read(repo.plain, cl)[-1] == (b"stable", True)
    # and hg, reading them, answers as before
    out = hg_command_server.subprocess_run([os.path.join(VENV_BIN, "hg"), "log", "-R", str(branchy), "-r",
                                            "branch(stable)", "-T", "{rev} "], cwd=branchy, env=ENV, check=True).stdout
    assert out == b"1 2 5 6 "


def test_new_revisions_are_appended_and_a_bad_record_makes_a_new_file(branchy: Path, tmp_path: Path) -> None:
    open_repository(str(branchy), "b").branchmap()
    revs = branchy / ".hg" / "cache" / REVS_V2.split(b"/")[1].decode()
    commit_on(branchy, ["default", "hotfix"], start=len(BRANCHES))
    hg(branchy, "debugupdatecaches")  # hg brings them up to date itself...
    whole = files(branchy)
    os.truncate(revs, 3 * RBC_RECORD.size)  # ...as if it had not, past the third revision
    names = branchy / ".hg" / "cache" / NAMES_V2.split(b"/")[1].decode()
    names.write_bytes(b"\0".join(whole[0].split(b"\0")[:3]))  # nor learnt the newest names
    inode = revs.stat().st_ino
    assert sorted(open_repository(str(branchy), "b2").branchmap()) == [b"default", b"feature", b"hotfix", b"stable"]
    assert files(branchy) == whole == hg_s_own(branchy, tmp_path)
    assert revs.stat().st_ino == inode  # appended to, not replaced
    # A record that no longer matches its node: the file is replaced whole (hg may map it).
    with open(revs, "r+b") as f:
        f.seek(RBC_RECORD.size)
        f.write(b"\xff\xff\xff\xff")
    (branchy / "more").write_text("more\n")
    hg(branchy, "commit", "-q", "-A", "-m", "one more")
    assert sorted(open_repository(str(branchy), "b3").branchmap()) == [b"default", b"feature", b"hotfix", b"stable"]
    assert files(branchy) == hg_s_own(branchy, tmp_path)
    assert revs.stat().st_ino != inode


def test_the_files_wait_for_a_free_wlock(branchy: Path, tmp_path: Path) -> None:
    wlock = branchy / ".hg" / "wlock"
    os.symlink(f"{lock_prefix()}:{os.getpid()}", wlock)  # a live holder: hg committing, say
    try:
        assert sorted(open_repository(str(branchy), "b").branchmap()) == [b"default", b"feature", b"stable"]
        assert list((branchy / ".hg" / "cache").iterdir()) == []
    finally:
        wlock.unlink()
    assert sorted(open_repository(str(branchy), "b").branchmap()) == [b"default", b"feature", b"stable"]
    assert files(branchy) == hg_s_own(branchy, tmp_path)
    assert not wlock.exists()


def test_files_that_vouch_for_every_revision_are_read_once(branchy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Branches known from the files are kept like computed ones: later queries and a push's
    commit read only what is new (they read both files again, each time, before)."""
    open_repository(str(branchy), "b").branchmap()  # the files, for every revision
    monkeypatch.setattr(repository, "SHARED_BRANCHES", LruCache(4))  # as after a restart
    repo = open_repository(str(branchy), "fresh")
    reads = []
    monkeypatch.setattr(branchcache, "read", lambda plain, cl: reads.append(len(cl)) or read(plain, cl))
    first = repo.branchmap()
    assert repo.branchmap() == first
    repo.lookup(b"stable")
    assert reads == [len(BRANCHES) + 1]


def test_a_write_brings_the_files_up_to_date_as_it_commits(branchy: Path, tmp_path: Path) -> None:
    """The changesets a transaction adds get their records under its locks, as hg's commit does."""
    source = tmp_path / "source"
    shutil.copytree(branchy, source, symlinks=True)
    commit_on(source, ["hotfix", "stable"], start=len(BRANCHES))
    open_repository(str(branchy), "b").branchmap()  # files for the first seven
    target = open_repository(str(branchy), "b")
    origin = open_repository(str(source), "s")
    tx = target.transaction()
    tx.add_changegroup(origin.emit_groups(origin.missing(target.heads(), origin.heads()), DeltaMode.ANY))
    checked = []
    real = branchcache._vouched_count
    branchcache._vouched_count = lambda *a: checked.append(1) or real(*a)  # type: ignore[assignment]
    try:
        tx.commit()
    finally:
        branchcache._vouched_count = real  # type: ignore[assignment]
    assert checked == []  # the files were as the last write left them: appended to, not read again
    assert len(read(target.plain, target.changelog())) == len(BRANCHES) + 3
    assert files(branchy) == hg_s_own(branchy, tmp_path)
    hg(branchy, "verify", "-q")


# -- what the files vouch for ---------------------------------------------------------------------


class _Changelog:
    def __init__(self, nodes: list[bytes]) -> None:
        self.index = Index([(0, 0, 0, 0, 0, -1, -1, node + b"\0" * 12) for node in nodes], 1, None, None)

    def __len__(self) -> int:
        return len(self.index)


def _one_by_one(names: list[bytes], records: bytes, nodes: list[bytes]) -> list[tuple[bytes, bool]]:
    """What the files vouch for, record by record: the definition the bulk comparison must keep."""
    known = []
    for rev in range(min(len(records) // RBC_RECORD.size, len(nodes))):
        prefix, value = RBC_RECORD.unpack_from(records, rev * RBC_RECORD.size)
        index = value & 0x7FFFFFFF
        if prefix != nodes[rev][:4] or index >= len(names):
            break
        known.append((names[index], bool(value & 0x80000000)))
    return known


@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.integers(0, 4), st.booleans()), max_size=40),
       st.integers(0, 45), st.sampled_from([None, "prefix", "index"]), st.integers(0, 3))
def test_the_records_vouched_for_are_those_matching_one_by_one(
        revs: list[tuple[bytes, int, bool]], cut: int, damage: str | None, trailing: int) -> None:
    names = [b"default", b"stable", b"feature"]
    nodes = [node for node, _, _ in revs]
    records = bytearray(b"".join(RBC_RECORD.pack(node[:4], index | (0x80000000 if closed else 0))
                                 for node, index, closed in revs))
    if damage == "prefix" and cut < len(revs):
        records[cut * RBC_RECORD.size] ^= 0xFF
    elif damage == "index" and cut < len(revs):
        records[cut * RBC_RECORD.size + 7] = 7
    data = bytes(records) + b"\1" * trailing  # a torn last record
    assert _vouched(names, data, _Changelog(nodes)) == _one_by_one(names, data, nodes)  # type: ignore[arg-type]


def test_files_hg_wrote_are_appended_to_by_the_first_push_after_a_start(
        branchy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server started on a repository whose rev-branch-cache hg wrote: the push's discovery reads
    the files (each record checked against the changelog) and its commit appends to them without
    checking every record again (a second pass over 200,000 of them at the first push after a start)."""
    hg(branchy, "debugupdatecaches")
    source = tmp_path / "source"
    shutil.copytree(branchy, source, symlinks=True)
    commit_on(source, ["hotfix", "stable"], start=len(BRANCHES))
    monkeypatch.setattr(repository, "SHARED_BRANCHES", LruCache(4))  # as after a restart
    monkeypatch.setattr(branchcache, "_WRITTEN", LruCache(4))
    target = open_repository(str(branchy), "b")
    origin = open_repository(str(source), "s")
    target.branchmap()  # the push's discovery
    tx = target.transaction()
    tx.add_changegroup(origin.emit_groups(origin.missing(target.heads(), origin.heads()), DeltaMode.ANY))
    checked: list[tuple[object, ...]] = []
    real = branchcache._vouched_count

    def counted(*args: object) -> int:
        checked.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(branchcache, "_vouched_count", counted)
    tx.commit()
    assert checked == []
    assert files(branchy) == hg_s_own(branchy, tmp_path)
    hg(branchy, "verify", "-q")


def test_the_branch_tips_are_worked_out_once_a_snapshot(branchy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A poller's ``hg id -r stable`` looks the branch up at each poll: its tip comes from the
    branches' heads worked out for the changelog's snapshot, again only once it has changed."""
    repo = open_repository(str(branchy), "b")
    worked: list[int] = []
    real = repo._branchmap

    def counted(cl: object, views: object) -> object:
        worked.append(1)
        return real(cl, views)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "_branchmap", counted)
    stable = repo.lookup(b"stable")
    assert [repo.lookup(b"stable") for _ in range(3)] == [stable] * 3
    assert repo.lookup(b"feature") != stable
    assert worked == [1]
    commit_on(branchy, ["stable"], start=len(BRANCHES) + 1)
    assert repo.lookup(b"stable") not in (stable, repo.lookup(b"feature"))
    assert worked == [1, 1]


def test_a_read_decodes_each_record_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first push after a start into 200,000 changesets decoded every record's value twice (each
    time into a set) before making the list: 9 ms of CPU; once now, with the same answer."""
    names = [b"default", b"stable"]
    nodes = [bytes([rev % 256, rev // 256]) * 10 for rev in range(300)]
    records = b"".join(RBC_RECORD.pack(node[:4], (rev % 2) | (0x80000000 if rev == 299 else 0))
                       for rev, node in enumerate(nodes))
    plain = MemoryVfs()
    plain.replace(NAMES_V2, b"\0".join(names))
    plain.replace(REVS_V2, records)
    decoded: list[int] = []
    real = branchcache._values

    def counted(data: bytes) -> tuple[int, ...]:
        decoded.append(len(data))
        return real(data)

    monkeypatch.setattr(branchcache, "_values", counted)
    known = read(plain, _Changelog(nodes))  # type: ignore[arg-type]
    assert known == _one_by_one(names, records, nodes) and len(known) == 300 and known[-1] == (b"stable", True)
    assert decoded == [4 * 300]
