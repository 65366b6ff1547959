"""The generic pack path (a ``tree:<depth>`` or ``object:type=`` filter) hands dulwich's writer a
store whose search for reusable deltas looks a few objects up in each pack's index: dulwich's read
every entry of every pack (0.7 s of a fetch of 10 commits from a mirror of 200,000 objects, git's
upload-pack 0.05).  The pack it makes is the one dulwich's search made, byte for byte."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.pack import OFS_DELTA, REF_DELTA, Pack, PackData
from dulwich.repo import Repo

from backends import git_pack
from backends.interfaces import ObjectId


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "pack.threads=1", "-c", "user.name=T", "-c", "user.email=t@example.com",
                           *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_a_few_objects_of_a_large_pack_are_looked_up_not_read_all(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "w"
    _git(tmp_path, "init", "-q", "-b", "main", str(work))
    text = "".join(f"line {i}\n" for i in range(2000))
    for n in range(60):  # a file edited a line at a time: its blobs are deltas of each other once packed
        text = text.replace(f"line {n}\n", f"line {n} changed\n")
        (work / "f.txt").write_text(text)
        (work / f"g{n % 7}.txt").write_text(f"{n}\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"c{n}")
    _git(work, "repack", "-adq", "--depth=50", "--window=50")
    head, old = _git(work, "rev-parse", "HEAD", "HEAD~3").split()
    store = Repo(str(work)).object_store
    plan = git_pack.PackPlan((ObjectId(head.encode()),), (ObjectId(old.encode()),), git_pack.ShallowPlan(),
                             False, True, False)
    read_whole: list[object] = []
    iter_unpacked = Pack.iter_unpacked

    def counted(self: Pack, *args: object, **kwargs: object) -> object:
        read_whole.append(self)
        return iter_unpacked(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Pack, "iter_unpacked", counted)
    looked_up = b"".join(git_pack.generate_pack(store, plan, {}))
    assert not read_whole, "no pack is read whole for 12 of its 250 objects"
    monkeypatch.setattr(git_pack, "_LookedUp", lambda store: store)
    assert b"".join(git_pack.generate_pack(store, plan, {})) == looked_up  # (dulwich's own search)
    assert read_whole
    deltas = [u for u in PackData.from_file(io.BytesIO(looked_up), object_format=DEFAULT_OBJECT_FORMAT).iter_unpacked()
              if u.pack_type_num in (OFS_DELTA, REF_DELTA)]
    assert deltas, "stored deltas are reused"
    checked = subprocess.run(["git", "index-pack", "--stdin", "--fix-thin"], input=looked_up, cwd=work,
                             capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
