"""A mirror's ``packed-refs`` (100,000 annotated tags): parsed by a few C-level passes with
dulwich's checks (``_plain_packed``; dulwich's own parse, a Python loop a line, took 0.37 s), kept
between requests (``MAX_PACKED_REFS_KEPT``), its tags' peeled values taken whole by name and its
advertisement lines encoded once (``ref_run``), every answer the same as line by line."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from dulwich.errors import PackedRefsException
from dulwich.repo import Repo

from backends import git as git_backend
from backends import git_pack
from backends.lru import LruCache
from protocols.git_upload import advertisement
from protocols.git_v2 import LsRefs, UploadPackV2

A = b"a" * 40
B = b"b" * 40
C = b"C" * 40
S = b"c" * 64
HEADER = b"# pack-refs with: peeled fully-peeled sorted \n"


def _dulwich(data: bytes) -> tuple[object, ...]:
    """What the parse of ``data`` by dulwich alone gives, or the error it raises."""
    plain = git_backend._plain_packed
    git_backend._plain_packed = lambda data: None
    try:
        return _outcome(data)
    finally:
        git_backend._plain_packed = plain


def _outcome(data: bytes) -> tuple[object, ...]:
    try:
        parsed = git_backend._parse_packed_refs(data)
    except PackedRefsException as exc:
        return ("refused", str(exc))
    return ("parsed", dict(parsed.refs), dict(parsed.peeled), dict(parsed.tags), parsed.fully)


SHAPES = [
    b"", HEADER, A + b" refs/heads/x\n", HEADER + A + b" refs/heads/x\n^" + B + b"\n",
    HEADER + A + b" refs/tags/x\n^" + B + b"\n" + A + b" refs/heads/a\n" + A + b" refs/tags/y\n^" + C + b"\n",
    b"# pack-refs with: peeled \n" + A + b" refs/tags/x\n^" + B + b"\n" + B + b" refs/heads/m\n",
    HEADER + S + b" refs/heads/x\n", HEADER + C + b" refs/heads/x\n^" + C + b"\n",
    b"# something else\n" + A + b" refs/heads/x\n",
    # what dulwich refuses, or reads its own way: the same refusal, the same refs
    HEADER + A + b" refs/heads/x\n^" + B + b"\n^" + B + b"\n", HEADER + b"^" + B + b"\n",
    A + b" refs/heads/x\n^" + B + b"\n", HEADER + A + b" refs/heads/x", HEADER + A + b" refs/heads/x\r\n",
    HEADER + A + b" refs/heads/..x\n", HEADER + A + b" refs/heads/x.lock\n", HEADER + A + b" refs/heads/x.lock/y\n",
    HEADER + A + b" refs/heads/.x\n", HEADER + A + b" refs/heads/x.\n", HEADER + A + b" refs/heads/x/\n",
    HEADER + A + b" refs//x\n", HEADER + A + b" x\n", HEADER + A + b" @\n", HEADER + A + b" foo/bar\n",
    HEADER + A[:39] + b" refs/heads/x\n", HEADER + A + b"a refs/heads/x\n", HEADER + A + b"  refs/heads/x\n",
    HEADER + A + b" refs/heads/x y\n", HEADER + A + b"refs/heads/x\n", HEADER + A + b" refs/heads/a@{b\n",
    HEADER + A + b" refs/heads/a~b\n", HEADER + A + b" refs/heads/a\x01b\n", HEADER + A + b" refs/heads/a\\b\n",
    HEADER + A + b" refs/heads/x\n^" + B[:39] + b"\n", HEADER + A + b" refs/heads/x\n^" + B + b"b\n",
    HEADER + A + b" refs/heads/x\n^" + b"g" * 40 + b"\n", HEADER + b"g" * 40 + b" refs/heads/x\n",
    HEADER + S + b" refs/heads/x\n" + A + b" refs/heads/y\n", HEADER + A + b" refs/heads/x\n\n" + B + b" refs/heads/y\n",
    HEADER + A + b" refs/heads/x\n# c\n", HEADER + A + b" refs/heads/x\n" + B + b" refs/heads/x\n^" + C + b"\n",
]


NO_HEADER = [A + b" refs/tags/x\n^" + B + b"\n" + B + b" refs/heads/m\n",
             b"# something else\n" + A + b" refs/tags/x\n^" + B + b"\n" + A + b" refs/tags/y\n^" + C.lower() + b"\n"]


@pytest.mark.parametrize("data", NO_HEADER)
def test_peeled_lines_of_a_file_without_the_peeled_trait_are_read_by_the_passes(data: bytes) -> None:
    # a mirror's packed-refs of 100,000 tags with ``^`` lines and no header (an old git's, another
    # tool's; git reads its ``^`` lines all the same) went through the loop a line: 0.35 s a request
    assert git_backend._plain_packed(data) is not None
    assert _outcome(data) == _dulwich(data)


@pytest.mark.parametrize("data", SHAPES)
def test_every_file_parses_as_dulwich_parses_it(data: bytes) -> None:
    assert _outcome(data) == _dulwich(data)


def test_a_mangled_file_parses_or_is_refused_as_by_dulwich() -> None:
    rnd = random.Random(7)
    base = HEADER + A + b" refs/heads/main\n" + B + b" refs/tags/v1\n^" + A + b"\n" + C + b" refs/tags/v2\n^" + B + b"\n"
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(data))
            byte = rnd.choice(b"ab\n ^/.#@{}~\\\x00rfsl")
            how = rnd.randrange(3)
            if how == 0:
                data[at] = byte
            elif how == 1:
                del data[at]
            else:
                data.insert(at, byte)
        assert _outcome(bytes(data)) == _dulwich(bytes(data)), bytes(data)


def _mirror(count: int) -> bytes:
    lines = [HEADER, A, b" refs/heads/main\n"]
    for i in range(count):
        lines += [b"%040x refs/tags/v%06d\n^" % (i + 1, i), A, b"\n"]
    return b"".join(lines)


def test_a_file_git_wrote_is_parsed_without_a_python_step_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object) -> object:
        raise AssertionError("parsed a line at a time")

    monkeypatch.setattr(git_backend, "_read_packed", refused)
    parsed = git_backend._parse_packed_refs(_mirror(1000))
    assert len(parsed.refs) == 1001 and len(parsed.tags) == 1000 and parsed.fully
    assert parsed.peeled[b"%040x" % 5] == A and parsed.peeled[A] == A


def _repo(tmp_path: Path, packed: bytes, name: str = "m.git") -> Path:
    Repo.init_bare(str(tmp_path / name), mkdir=True).close()
    git_dir = tmp_path / name
    (git_dir / "packed-refs").write_bytes(packed)
    (git_dir / "HEAD").write_bytes(b"ref: refs/heads/main\n")
    return git_dir


def _open(git_dir: Path) -> git_backend.DulwichGitRepository:
    return git_backend.DulwichGitRepository(git_dir.name, Repo(str(git_dir)), owns_repo=True)


def test_a_mirror_of_100000_annotated_tags_stays_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_backend, "_PACKED_REFS", LruCache(git_backend.MAX_PACKED_REFS_KEPT, git_backend._packed_cost))
    git_dir = _repo(tmp_path, _mirror(100_000))
    parses = []
    parse = git_backend._parse_packed_refs

    def counted(data: bytes) -> git_backend.PackedRefs:
        parses.append(data)
        return parse(data)

    monkeypatch.setattr(git_backend, "_parse_packed_refs", counted)
    for _ in range(3):
        repo = _open(git_dir)
        snapshot = git_pack.snapshot_refs(repo)
        assert len(snapshot.refs) == 100_002 and len(snapshot.peeled) == 100_000
        advertisement(snapshot.refs, snapshot.peeled, snapshot.symrefs, b"git/x", run=snapshot.run)
        repo.close()
    assert len(parses) == 1
    # with the lines of both protocols encoded, it still counts under a quarter of the budget
    _ls_refs_core().ls_refs(LsRefs(peel=True), snapshot.refs, snapshot.peeled, snapshot.symrefs, snapshot.run)
    kept = git_backend._PACKED_REFS.get(os.path.join(bytes(git_dir), b"packed-refs"))
    assert kept is not None and len(kept[1].lines[0]._forms) == 2
    assert git_backend._packed_cost(kept) <= git_backend.MAX_PACKED_REFS_KEPT // 4


def _ls_refs_core() -> UploadPackV2:
    core = UploadPackV2()
    core.receive_data(b"0014command=ls-refs\n0000")
    core.next_event()
    return core


def _write(git_dir: Path, name: str, content: bytes) -> None:
    path = git_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _answers(snapshot: git_pack.RefSnapshot, run: object) -> list[bytes]:
    """The v0 advertisement and v2 ls-refs answers (with and without peel, symrefs, prefixes)."""
    answers = [advertisement(snapshot.refs, snapshot.peeled, snapshot.symrefs, b"git/x", run=run)]  # type: ignore[arg-type]
    for prefixes in [(), (b"refs/heads/",), (b"refs/tags/", b"refs/heads/"), (b"refs/tags/v0001",),
                     (b"refs/", b"refs/tags/v00"), (b"HEAD",), (b"zzz",), (b"refs/tags/v000599",), (b"refs/tags/v0005\xff",)]:
        for peel in (True, False):
            for symrefs in (True, False):
                core = _ls_refs_core()
                answers.append(core.ls_refs(LsRefs(symrefs=symrefs, peel=peel, prefixes=prefixes, unborn=True),
                                            snapshot.refs, snapshot.peeled, snapshot.symrefs, run))  # type: ignore[arg-type]
    return answers


@pytest.mark.parametrize("hidden", [None, "refs/tags/v000123", "refs/heads/zz", "refs/tags/v000500", "refs/tags"])
def test_answers_from_the_encoded_lines_are_the_answers_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      hidden: str | None) -> None:
    monkeypatch.setattr(git_pack, "peel", lambda store, oid, types=None, rests=None: oid)  # the ids name no objects here
    git_dir = _repo(tmp_path, _mirror(600))
    _write(git_dir, "refs/tags/v000500", B + b"\n")  # a loose ref over a packed one
    _write(git_dir, "refs/heads/zz", C + b"\n")
    _write(git_dir, "refs/heads/aa", A + b"\n")
    _write(git_dir, "refs/tags/v000501", b"")  # broken: the packed value it hides is not served
    _write(git_dir, "refs/heads/alias", b"ref: refs/heads/zz\n")
    _write(git_dir, "refs/tags/0first", B + b"\n")
    if hidden is not None:
        (git_dir / "config").write_text(f"[uploadpack]\n\thideRefs = {hidden}\n")
    repo = _open(git_dir)
    snapshot = git_pack.snapshot_refs(repo)
    repo.close()
    assert snapshot.run is not None  # (600 hidden too: cut out of the run as ranges)
    assert b"refs/tags/v000501" not in snapshot.refs and b"refs/tags/v000500" not in snapshot.peeled
    if hidden is None:
        assert snapshot.refs[b"refs/tags/v000500"] == B and snapshot.peeled[b"refs/tags/v000499"] == A
    assert _answers(snapshot, snapshot.run) == _answers(snapshot, None)


def test_a_new_version_of_the_file_is_read_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "peel", lambda store, oid, types=None, rests=None: oid)
    git_dir = _repo(tmp_path, _mirror(600))
    repo = _open(git_dir)
    before = git_pack.snapshot_refs(repo)
    repo.close()
    replacement = git_dir / "packed-refs.new"
    replacement.write_bytes(_mirror(601))
    os.replace(replacement, git_dir / "packed-refs")  # as git and a push write it
    repo = _open(git_dir)
    after = git_pack.snapshot_refs(repo)
    repo.close()
    assert len(after.refs) == len(before.refs) + 1
    assert b"0000000000000000000000000000000000000259 refs/tags/v000600\n" in advertisement(
        after.refs, after.peeled, after.symrefs, b"git/x", run=after.run)


def test_lines_that_would_not_fit_are_made_for_the_request_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "peel", lambda store, oid, types=None, rests=None: oid)
    git_dir = _repo(tmp_path, _mirror(600))
    path = os.path.join(bytes(git_dir), b"packed-refs")
    parsed_cost = 601 + 601 // 2 + 600 // 4 + 1
    lines_cost = len(_mirror(600)) // git_backend.PACKED_REF_BYTES  # (about: the v0 form is larger)
    for budget, kept_forms in ((4 * parsed_cost, 0), (4 * (parsed_cost + 2 * lines_cost), 1)):
        monkeypatch.setattr(git_backend, "_PACKED_REFS", LruCache(budget, git_backend._packed_cost))
        for _ in range(2):
            repo = _open(git_dir)
            snapshot = git_pack.snapshot_refs(repo)
            repo.close()
            assert snapshot.run is not None
            advertised = advertisement(snapshot.refs, snapshot.peeled, snapshot.symrefs, b"git/x", run=snapshot.run)
            assert advertised == advertisement(snapshot.refs, snapshot.peeled, snapshot.symrefs, b"git/x")
            kept = git_backend._PACKED_REFS.get(path)
            assert kept is not None, "the parse stays kept"
            assert len(kept[1].lines[0]._forms) == kept_forms
            assert git_backend._PACKED_REFS.held <= budget // 4
