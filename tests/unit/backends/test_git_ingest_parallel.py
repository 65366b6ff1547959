"""A large pushed pack is named and checked by two processes (``git_ingest._ForkedHalf``: a fork
takes every other whole object and the deltas below it): the same index, the same warnings and the
same refusals as one process gives, and whatever becomes of the helper (it fails, dies, hangs) the
push still gets its answer from the parent."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import pytest
from dulwich.errors import ObjectFormatException
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.pack import OFS_DELTA, REF_DELTA, PackData
from dulwich.repo import Repo

from backends import git_ingest
from protocols.errors import ProtocolError
from tests.unit.backends.test_git_ingest import commit_files, git, reader_of, thin_pack


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """A work repository of 40 commits whose files delta well, ``(work, first commit, last)``."""
    work = tmp_path / "history"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    text = "".join(f"line {i} of a file that changes a little\n" for i in range(300))
    first = last = commit_files(work, {"a.txt": text, "d/b.txt": text[::-1], ".gitmodules": ""}, "c0")
    for step in range(1, 40):
        last = commit_files(work, {"a.txt": text + f"step {step}\n" * step, f"d/n{step % 5}.txt": f"{step}\n",
                                   "d/b.txt": text[::-1] + f"{step}\n"}, f"c{step}")
    subtree = bytes.fromhex(git(work, "rev-parse", "HEAD:d").strip().decode())
    for step in range(8):  # trees git's fsck warns of (a zero-padded mode), told wherever they are resolved
        tree = git(work, "hash-object", "-t", "tree", "-w", "--literally", "--stdin",
                   input=b"040000 d%d\0" % step + subtree).strip()
        last = git(work, "hash-object", "-t", "commit", "-w", "--stdin", input=b"tree %s\nparent %s\nauthor A "
                   b"<a@b> 1600000000 +0000\ncommitter C <c@d> 1600000000 +0000\n\nodd %d\n" % (tree, last, step)).strip()
    git(work, "update-ref", "refs/heads/main", last.decode())
    return work, first, last


@pytest.fixture(autouse=True)
def _the_helper_s_answer_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """However loaded the host: past ``HALF_WAIT_SECONDS`` the parent names the helper's half itself
    (the same index), and these tests are about the helper's answer."""
    monkeypatch.setattr(git_ingest, "HALF_WAIT_SECONDS", 600.0)


def whole_pack(work: Path, tip: bytes) -> bytes:
    """The history's pack, the same bytes every time: on several threads git's delta search picks
    other bases as the threads are scheduled, and the deltas each half of the wholes roots vary."""
    return git(work, "-c", "pack.threads=1", "pack-objects", "--stdout", "--revs", "--delta-base-offset",
               input=tip + b"\n")


def _ingest(tmp_path: Path, name: str, data: bytes, parallel: bool,
            monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, list[str], git_ingest.PackIngest]:
    server = tmp_path / name
    git(tmp_path, "init", "-q", "--bare", str(server))
    monkeypatch.setattr(git_ingest, "PARALLEL_MIN_OBJECTS", 2 if parallel else 10**9)
    store = Repo(str(server)).object_store
    ingest = git_ingest.PackIngest(store, git_ingest.PushLinks(), rules=git_ingest.fsck_rules(
        [(b"zeropaddedfilemode", b"warn"), (b"missingemail", b"warn")], []))
    try:
        read = reader_of(data)
        while chunk := read(1 << 14):
            ingest.write(chunk)
        pack = ingest.commit()
    finally:
        ingest.abort()
    assert pack is not None
    idx = (server / "objects" / "pack" / (os.path.basename(pack._basename) + ".idx")).read_bytes()
    return idx, sorted(ingest.warnings.shown()), ingest


def test_two_processes_index_what_one_indexes(history: tuple[Path, bytes, bytes], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    work, _first, last = history
    data = whole_pack(work, last)
    linked: list[dict[int, set[bytes]] | None] = []  # every link the checks found, before the pack's own are settled
    settle = git_ingest.PushLinks.settle
    monkeypatch.setattr(git_ingest.PushLinks, "settle", lambda self, own, *ordered: linked.append(
        None if self._sets is None else {kind: set(ids) for kind, ids in self._sets.items()}) or settle(self, own, *ordered))
    one, warned_one, alone = _ingest(tmp_path, "one.git", data, False, monkeypatch)
    forks: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    merged: list[int] = []  # the helper's answer taken, not the parent's own fallback (the same index)
    merge = git_ingest.PackIngest._merge
    monkeypatch.setattr(git_ingest.PackIngest, "_merge", lambda self, half: merged.append(len(half.named)) or
                        merge(self, half))
    two, warned_two, paired = _ingest(tmp_path, "two.git", data, True, monkeypatch)
    assert forks == [1] and len(merged) == 1 and merged[0] > 0
    assert one == two and warned_one == warned_two and len(warned_one) == 8
    assert alone._dotfiles.gitmodules == paired._dotfiles.gitmodules != set()
    assert len(linked) == 2 and linked[0] == linked[1] and linked[0] is not None
    assert sum(map(len, linked[0].values())) > 100
    git(tmp_path / "two.git", "index-pack", "--verify", str(next((tmp_path / "two.git" / "objects" / "pack")
                                                                  .glob("*.pack"))))


@pytest.mark.parametrize("ofs_delta", [True, False], ids=["ofs-delta", "ref-delta"])
def test_a_thin_pack_s_outside_bases_are_taken_by_the_parent(history: tuple[Path, bytes, bytes], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, ofs_delta: bool) -> None:
    work, first, last = history
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(work, "push", "-q", str(server), f"{first.decode()}:refs/heads/main")
    monkeypatch.setattr(git_ingest, "PARALLEL_MIN_OBJECTS", 2)
    monkeypatch.setattr(git_ingest, "_halves", lambda wholes: (wholes[:0], wholes))  # every base the helper's
    taken: list[int] = []
    merge = git_ingest.PackIngest._merge
    monkeypatch.setattr(git_ingest.PackIngest, "_merge",
                        lambda self, half: taken.append(len(half.taken)) or merge(self, half))
    pack = git_ingest.ingest_pack(Repo(str(server)).object_store, reader_of(thin_pack(work, first, last, ofs_delta)))
    assert pack is not None
    assert len(taken) == 1 and (taken[0] > 0) is not ofs_delta  # (the REF_DELTAs below its bases: the helper's)
    git(server, "update-ref", "refs/heads/main", last.decode())
    git(server, "fsck", "--full")


@pytest.mark.parametrize("failure", ["raises", "dies", "exits-silently", "hangs"])
def test_whatever_becomes_of_the_helper_the_parent_answers(history: tuple[Path, bytes, bytes], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    work, _first, last = history
    data = whole_pack(work, last)
    one, _, _ = _ingest(tmp_path, "one.git", data, False, monkeypatch)

    def broken(self: git_ingest.PackIngest, roots: object) -> object:
        if failure == "raises":
            raise MemoryError
        if failure == "dies":
            os.kill(os.getpid(), signal.SIGKILL)
        if failure == "hangs":
            time.sleep(60)
        os._exit(3)

    monkeypatch.setattr(git_ingest.PackIngest, "_resolved_half", broken)
    monkeypatch.setattr(git_ingest, "HALF_WAIT_SECONDS", 1.0)
    helpers: list[int] = []
    ends: list[int] = []  # how the helper ended, as the parent reaped it (no clock: a loaded host is slow)
    real_fork, real_waitpid = os.fork, os.waitpid

    def fork() -> int:
        pid = real_fork()
        if pid:
            helpers.append(pid)
        return pid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        got = real_waitpid(pid, options)
        if pid in helpers and got[0] == pid:
            ends.append(got[1])
        return got

    monkeypatch.setattr(os, "fork", fork)
    monkeypatch.setattr(os, "waitpid", waitpid)
    two, _, _ = _ingest(tmp_path, "two.git", data, True, monkeypatch)
    assert one == two and len(helpers) == 1 and len(ends) == 1
    if failure in ("dies", "hangs"):  # (a hung helper is stopped, not waited for: it would exit 3 in 60 s)
        assert os.WIFSIGNALED(ends[0]) and os.WTERMSIG(ends[0]) == signal.SIGKILL
    else:
        assert os.WIFEXITED(ends[0]) and os.WEXITSTATUS(ends[0]) == (3 if failure == "exits-silently" else 0)


@pytest.mark.parametrize(("error", "kind"), [(ProtocolError("the pushed pack is invalid: found in the helper", 400),
                                              ProtocolError),
                                             (ObjectFormatException("object x: badTimezone: invalid"),
                                              ObjectFormatException)])
def test_a_refusal_the_helper_finds_is_the_push_s(history: tuple[Path, bytes, bytes], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, error: Exception,
                                                  kind: type[Exception]) -> None:
    work, _first, last = history
    data = whole_pack(work, last)

    def refusing(self: git_ingest.PackIngest, roots: object) -> object:
        raise error

    monkeypatch.setattr(git_ingest.PackIngest, "_resolved_half", refusing)
    with pytest.raises(kind, match=str(error).split(":")[0]):
        _ingest(tmp_path, "two.git", data, True, monkeypatch)
    assert not list((tmp_path / "two.git" / "objects" / "pack").glob("*.pack"))


def test_one_core_is_resolved_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server its affinity keeps on one core forks no helper (two processes there only take longer)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert not git_ingest._can_fork()
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert git_ingest._can_fork()



def test_the_helper_s_answer_costs_the_parent_little_more_than_its_ids(
        history: tuple[Path, bytes, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper answers in flat pieces (indexes, ids and types one after another): unpickled as a
    tuple, an int and a bytes object for each delta it named, and a set entry and a bytes object
    for each link, the corpus's answer took 5.9 MB of the server at its peak."""
    import pickle
    import tracemalloc

    work, _first, last = history
    data = whole_pack(work, last)
    answers: list[tuple[int, object]] = []
    real_loads = pickle.loads

    def measured_loads(raw: bytes) -> object:
        tracing = tracemalloc.is_tracing()
        if not tracing:
            tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            answer = real_loads(raw)
            answers.append((tracemalloc.get_traced_memory()[0] - before, answer))
        finally:
            if not tracing:
                tracemalloc.stop()
        return answer

    monkeypatch.setattr(git_ingest.pickle, "loads", measured_loads)
    one, _, _ = _ingest(tmp_path, "one.git", data, False, monkeypatch)
    # The helper takes every whole object, so its answer names every delta of the pack: which half
    # names how many depends on where the long chains' bases sit, and git's threaded delta search
    # writes them elsewhere from one run to the next (on a loaded host the every other whole object
    # the helper takes could root 5 of the pack's 82 deltas).
    monkeypatch.setattr(git_ingest, "_halves", lambda wholes: (wholes[:0], wholes))
    two, _, _ = _ingest(tmp_path, "two.git", data, True, monkeypatch)
    assert one == two and len(answers) == 1
    held, answer = answers[0]
    deltas = sum(entry.pack_type_num in (OFS_DELTA, REF_DELTA) for entry in PackData.from_file(
        io.BytesIO(data), DEFAULT_OBJECT_FORMAT, len(data)).iter_unpacked())
    assert isinstance(answer, git_ingest._HalfResult) and len(answer.named) == deltas > 50
    objects = int.from_bytes(data[8:12], "big")
    assert held < 40 * objects + 4096, (held, objects, len(answer.named))
