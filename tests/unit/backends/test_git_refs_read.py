"""Reading every ref of a repository on disk in one pass (``backends.git.DiskRefs``): the same
answers as dulwich's ``as_dict``, which looks each name up on its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dulwich.refs import check_ref_format
from dulwich.repo import Repo
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import git as git_backend

A = b"a" * 40
B = b"b" * 40
C = b"c" * 40

NAME_BYTES = st.sampled_from([b"a", b"b", b"/", b".", b"@", b"{", b"~", b"^", b":", b"?", b"*", b"[", b"\\", b" ",
                              b"\x7f", b"\x01", b"lock", b"..", b"-"])


@settings(max_examples=2000)
@given(st.lists(NAME_BYTES, max_size=12).map(b"".join))
def test_the_quick_name_check_is_dulwich_s(name: bytes) -> None:
    assert git_backend.ref_format_ok(name) == check_ref_format(name)  # type: ignore[arg-type]


def _write(git_dir: Path, name: str, content: bytes) -> None:
    path = git_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def test_every_ref_reads_as_dulwich_reads_it(tmp_path: Path) -> None:
    repo = Repo.init_bare(str(tmp_path / "r.git"), mkdir=True)
    git_dir = tmp_path / "r.git"
    (git_dir / "packed-refs").write_bytes(
        b"# pack-refs with: peeled fully-peeled sorted \n"
        + A + b" refs/heads/packed-only\n"
        + A + b" refs/heads/both\n"
        + A + b" refs/tags/v1\n^" + C + b"\n"
        + A + b" refs/heads/empty-loose\n"
        + B + b" refs/single\n"
        + A + b" refs/heads/shadowed\n")
    loose = {
        "HEAD": b"ref: refs/heads/main\n",
        "refs/heads/main": A + b"\n",
        "refs/heads/both": B + b"\n",  # the loose one wins
        "refs/heads/empty-loose": b"",  # empty: broken, as git reads it (dulwich: packed-refs answers)
        "refs/heads/crlf": B + b"\r\n",
        "refs/remotes/origin/HEAD": b"ref: refs/remotes/origin/main\n",
        "refs/remotes/origin/main": C + b"\n",
        "refs/heads/dangling": b"ref: refs/heads/nowhere\n",
        "refs/heads/shadowed": b"ref: refs/heads/nowhere\n",  # over a packed one: dangles all the same
        "refs/heads/loop1": b"ref: refs/heads/loop2\n",
        "refs/heads/loop2": b"ref: refs/heads/loop1\n",
        "refs/heads/chain0": b"ref: refs/heads/chain1\n",
        "refs/heads/chain1": b"ref: refs/heads/chain2\n",
        "refs/heads/chain2": b"ref: refs/heads/chain3\n",
        "refs/heads/chain3": b"ref: refs/heads/chain4\n",
        "refs/heads/chain4": b"ref: refs/heads/main\n",
        "refs/heads/chain-long": b"ref: refs/heads/chain0\n",
        "refs/heads/to-single": b"ref: refs/single\n",
        "refs/single": C + b"\n",  # listed, but not read as a loose file: packed-refs' B
        "refs/stash": B + b"\n",
        "refs/heads/x.lock": A + b"\n",  # not a ref name
        "refs/heads/.hidden": A + b"\n",
        "refs/heads/short": b"abc\n",
        "refs/heads/deep/er/still": A + b"\n",
        "refs/heads/to-outside": b"ref: config\n",
    }
    for name, content in loose.items():
        _write(git_dir, name, content)
    container = Repo(str(git_dir)).refs
    expected = container.as_dict()
    on_disk = git_backend.disk_refs(container)
    assert on_disk is not None
    found = on_disk.resolved()
    broken = {b"refs/heads/empty-loose", b"refs/heads/short"}  # git's broken refs: left out, not stale
    assert on_disk.broken == broken
    assert found == {name: value for name, value in expected.items() if name not in broken}
    assert found[b"HEAD"] == A and found[b"refs/heads/both"] == B and found[b"refs/single"] == B
    assert b"refs/heads/loop1" not in found and b"refs/heads/dangling" not in found
    assert b"refs/heads/shadowed" not in found
    assert found[b"refs/heads/chain1"] == A and b"refs/heads/chain-long" not in found  # dulwich's depth
    symbolic = {}  # what the repository's own symrefs() read before: each loose name's content
    packed = container.get_packed_refs()
    for name in container.allkeys():
        value = container.read_ref(name)
        if name not in packed and value is not None and value.startswith(b"ref: "):
            symbolic[bytes(name)] = value[5:].strip()
    assert on_disk.symbolic() == symbolic
    assert symbolic[b"HEAD"] == b"refs/heads/main" and b"refs/single" not in symbolic
    # a push's commands' refs read on their own (symref_targets) say what symrefs() says of them
    served = git_backend.DulwichGitRepository("r", Repo(str(git_dir)))
    every = [bytes(n) for n in container.allkeys()]
    assert served.symref_targets(every) == served.symrefs()
    assert served.symref_targets([b"refs/heads/chain0"]) == {
        b"refs/heads/chain0": b"refs/heads/chain1", b"refs/heads/chain1": b"refs/heads/chain2",
        b"refs/heads/chain2": b"refs/heads/chain3", b"refs/heads/chain3": b"refs/heads/chain4",
        b"refs/heads/chain4": b"refs/heads/main"}
    assert served.symref_targets([b"refs/heads/main", b"refs/single"]) == {}
    repo.close()


def test_packed_refs_are_parsed_once_per_version_of_the_file(tmp_path: Path) -> None:
    Repo.init_bare(str(tmp_path / "p.git"), mkdir=True).close()
    git_dir = tmp_path / "p.git"
    (git_dir / "packed-refs").write_bytes(A + b" refs/heads/one\n")
    first = git_backend._packed_refs(Repo(str(git_dir)).refs)  # type: ignore[arg-type]
    assert git_backend._packed_refs(Repo(str(git_dir)).refs) is first  # type: ignore[arg-type]
    replacement = git_dir / "packed-refs.new"
    replacement.write_bytes(B + b" refs/heads/one\n" + A + b" refs/heads/two\n")
    os.replace(replacement, git_dir / "packed-refs")  # as git writes it: a new file
    again = git_backend._packed_refs(Repo(str(git_dir)).refs)  # type: ignore[arg-type]
    assert dict(again) == {b"refs/heads/one": B, b"refs/heads/two": A}


def test_kept_packed_refs_stay_within_their_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.lru import LruCache

    monkeypatch.setattr(git_backend, "_PACKED_REFS", LruCache(8, git_backend._packed_cost))
    for name, count in (("small.git", 1), ("large.git", 3)):
        Repo.init_bare(str(tmp_path / name), mkdir=True).close()
        (tmp_path / name / "packed-refs").write_bytes(b"".join(A + b" refs/heads/b%d\n" % i for i in range(count)))
    small = Repo(str(tmp_path / "small.git")).refs
    large = Repo(str(tmp_path / "large.git")).refs
    assert git_backend._packed_refs(small) is git_backend._packed_refs(small)  # type: ignore[arg-type]
    # over a quarter of the budget: parsed at each request, never pushing the others out
    assert git_backend._packed_refs(large) is not git_backend._packed_refs(large)  # type: ignore[arg-type]
    assert len(git_backend._packed_refs(large)) == 3  # type: ignore[arg-type]


def test_an_advertisement_reads_the_refs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import git_pack

    Repo.init_bare(str(tmp_path / "a.git"), mkdir=True).close()
    git_dir = tmp_path / "a.git"
    (git_dir / "packed-refs").write_bytes(A + b" refs/tags/v1\n")
    _write(git_dir, "HEAD", b"ref: refs/heads/main\n")
    _write(git_dir, "refs/heads/main", B + b"\n")
    _write(git_dir, "refs/remotes/origin/HEAD", b"ref: refs/remotes/origin/main\n")
    _write(git_dir, "refs/remotes/origin/main", C + b"\n")
    repo = git_backend.DulwichGitRepository("a.git", Repo(str(git_dir)))
    assert repo.refs_and_symrefs() == (repo.refs(), repo.symrefs())
    reads = []
    real = git_backend.DiskRefs.__init__

    def counted(self: git_backend.DiskRefs, container: object, *held: object) -> None:
        reads.append(container)
        real(self, container, *held)  # type: ignore[arg-type]

    monkeypatch.setattr(git_backend.DiskRefs, "__init__", counted)
    monkeypatch.setattr(git_pack, "peel", lambda store, oid, types=None, rests=None: oid)  # the ids name no objects here
    snapshot = git_pack.snapshot_refs(repo)
    assert len(reads) == 1
    assert snapshot.refs == {b"HEAD": B, b"refs/heads/main": B, b"refs/tags/v1": A,
                             b"refs/remotes/origin/HEAD": C, b"refs/remotes/origin/main": C}
    assert snapshot.symrefs == {b"HEAD": b"refs/heads/main", b"refs/remotes/origin/HEAD": b"refs/remotes/origin/main"}


def test_a_backend_without_the_joint_read_is_asked_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import git_pack

    class Plain:
        object_store = None

        def refs(self) -> dict[bytes, bytes]:
            return {b"HEAD": A, b"refs/heads/main": A}

        def symrefs(self) -> dict[bytes, bytes]:
            return {b"HEAD": b"refs/heads/main", b"refs/heads/gone": b"refs/heads/main"}

    monkeypatch.setattr(git_pack, "peel", lambda store, oid, types=None, rests=None: oid)
    snapshot = git_pack.snapshot_refs(Plain())  # type: ignore[arg-type]
    assert snapshot.refs == {b"HEAD": A, b"refs/heads/main": A}
    assert snapshot.symrefs == {b"HEAD": b"refs/heads/main"}  # a symref to an unlisted name is left out


def test_a_loose_ref_file_is_read_to_its_first_line_end_and_no_further(tmp_path: Path) -> None:
    long_target = b"refs/heads/" + b"x" * 1000
    (tmp_path / "long").write_bytes(b"ref: " + long_target + b"\r\nsecond line\n")
    assert git_backend._loose_ref(bytes(tmp_path / "long")) == b"ref: " + long_target
    (tmp_path / "unended").write_bytes(A)
    assert git_backend._loose_ref(bytes(tmp_path / "unended")) == A
    (tmp_path / "huge").write_bytes(b"y" * (git_backend.MAX_LOOSE_REF_LINE + 1) + b"\n")
    assert git_backend._loose_ref(bytes(tmp_path / "huge")) is None
    assert git_backend._loose_ref(bytes(tmp_path / "missing")) is None
    assert git_backend._loose_ref(bytes(tmp_path)) is None  # a directory


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_among_the_refs_does_not_stop_the_reader(tmp_path: Path) -> None:
    Repo.init_bare(str(tmp_path / "f.git"), mkdir=True).close()
    git_dir = tmp_path / "f.git"
    _write(git_dir, "refs/heads/main", A + b"\n")
    os.mkfifo(git_dir / "refs" / "heads" / "pipe")  # nobody writes to it: a blocking read would wait forever
    on_disk = git_backend.disk_refs(Repo(str(git_dir)).refs)
    assert on_disk is not None
    assert on_disk.resolved() == {b"refs/heads/main": A}
