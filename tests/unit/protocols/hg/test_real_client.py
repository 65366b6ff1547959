"""The real hg 7.2.4 client against ``SshV1Server`` + the fake repository over a pipe.

No Twisted and no sockets: ``hg --ssh`` starts ``stdio_server.py``, which runs
the sans-IO core in a blocking loop.  This checks the protocol layer end to end
with the real client (clone, pull, push, bookmarks, phases, new-head refusal,
bundle1) and that what it cloned passes ``hg verify``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests import hg_command_server

from .fake_repo import FakeRepo
from .helpers import reference_repo

pytestmark = pytest.mark.slow  # ~20 s of real hg processes; -m "not slow" for the quick loop

HERE = Path(__file__).resolve().parent
HG = str(Path(sys.executable).parent / "hg")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HGRCPATH": "", "HOME": str(tmp_path), "HGUSER": "test", "HGPLAIN": "1"}


@pytest.fixture
def served(tmp_path: Path) -> Path:
    state = tmp_path / "state.pickle"
    state.write_bytes(pickle.dumps(reference_repo().to_plain()))
    return state


def hg(env: dict[str, str], cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = hg_command_server.subprocess_run([HG, *args], cwd=cwd, env=env, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def ssh(state: Path) -> list[str]:
    return ["--ssh", f"{sys.executable} {HERE / 'stdio_server.py'} {state}"]


def log(env: dict[str, str], repo: Path) -> list[str]:
    template = "{node} {branch} {phase} {bookmarks}\n"
    return hg(env, repo, "log", "-T", template).stdout.splitlines()


def test_clone_push_pull_round_trip(tmp_path: Path, env: dict[str, str], served: Path) -> None:
    hg(env, tmp_path, "clone", "-q", *ssh(served), "ssh://h/repo", "one")
    one = tmp_path / "one"
    hg(env, one, "verify", "-q")
    lines = log(env, one)
    assert len(lines) == 5
    assert "9208083d387257c95aee3971473b53c399035b46 default draft main" in lines
    assert "2e98c005657ff71e9fc9917a697d5a0b1ce591bd stable draft " in lines
    assert "5f4b89c47f3c1609e8ba11bf036ba9dec7a16db4 default public old-bm" in lines

    (one / "new.txt").write_text("new\n")
    hg(env, one, "commit", "-q", "-A", "-m", "new", "-d", "10 0")
    hg(env, one, "bookmark", "-q", "feature")
    hg(env, one, "push", "-q", "-B", "feature", *ssh(served), "ssh://h/repo")

    hg(env, tmp_path, "clone", "-q", *ssh(served), "ssh://h/repo", "two")
    two = tmp_path / "two"
    hg(env, two, "verify", "-q")
    assert log(env, two) == log(env, one)

    hg(env, one, "bookmark", "-q", "-d", "feature")
    deleted = hg(env, one, "push", "-q", "-B", "feature", *ssh(served), "ssh://h/repo", ok=False)
    assert deleted.returncode == 1, deleted.stderr  # 1: no changesets pushed, the bookmark was
    hg(env, tmp_path, "clone", "-q", "-U", *ssh(served), "ssh://h/repo", "three")
    assert "feature" not in hg(env, tmp_path / "three", "bookmarks").stdout


def test_new_head_refused_without_force(tmp_path: Path, env: dict[str, str], served: Path) -> None:
    hg(env, tmp_path, "clone", "-q", *ssh(served), "ssh://h/repo", "one")
    one = tmp_path / "one"
    hg(env, one, "update", "-q", "-r", "1")
    (one / "head.txt").write_text("head\n")
    hg(env, one, "commit", "-q", "-A", "-m", "second head", "-d", "11 0")
    refused = hg(env, one, "push", *ssh(served), "ssh://h/repo", ok=False)
    assert "push creates new remote head" in refused.stderr
    forced = hg(env, one, "push", "-f", *ssh(served), "ssh://h/repo")
    assert "(+1 heads)" in forced.stdout


def test_partial_pull_and_incoming(tmp_path: Path, env: dict[str, str], served: Path) -> None:
    hg(env, tmp_path, "clone", "-q", "-r", "stable", *ssh(served), "ssh://h/repo", "part")
    part = tmp_path / "part"
    assert len(log(env, part)) == 3
    incoming = hg(env, part, "incoming", "-q", "-T", "{node}\n", *ssh(served), "ssh://h/repo")
    assert len(incoming.stdout.split()) == 2
    hg(env, part, "pull", "-q", *ssh(served), "ssh://h/repo")
    hg(env, part, "verify", "-q")
    assert len(log(env, part)) == 5


def test_bundle1_clone_and_push(tmp_path: Path, env: dict[str, str], served: Path) -> None:
    legacy = ["--config", "devel.legacy.exchange=bundle1"]
    hg(env, tmp_path, "clone", "-q", *legacy, *ssh(served), "ssh://h/repo", "old")
    old = tmp_path / "old"
    hg(env, old, "verify", "-q")
    (old / "x.txt").write_text("x\n")
    hg(env, old, "commit", "-q", "-A", "-m", "x", "-d", "12 0")
    hg(env, old, "push", "-q", *legacy, *ssh(served), "ssh://h/repo")
    hg(env, tmp_path, "clone", "-q", *ssh(served), "ssh://h/repo", "new")
    assert [line.split()[0] for line in log(env, tmp_path / "new")] == [
        line.split()[0] for line in log(env, old)
    ]


def test_push_to_a_publishing_repository_makes_changesets_public(
    tmp_path: Path, env: dict[str, str], served: Path
) -> None:
    repo = reference_repo()
    repo._publishing = True
    served.write_bytes(pickle.dumps(repo.to_plain()))
    hg(env, tmp_path, "clone", "-q", *ssh(served), "ssh://h/repo", "one")
    one = tmp_path / "one"
    assert {line.split()[2] for line in log(env, one)} == {"public"}
    (one / "p.txt").write_text("p\n")
    hg(env, one, "commit", "-q", "-A", "-m", "p", "-d", "13 0")
    assert hg(env, one, "phase", "-r", ".").stdout.split()[1] == "draft"
    hg(env, one, "push", "-q", *ssh(served), "ssh://h/repo")
    assert hg(env, one, "phase", "-r", ".").stdout.split()[1] == "public"


def test_clone_an_empty_repository_then_push_into_it(
    tmp_path: Path, env: dict[str, str], served: Path
) -> None:
    served.write_bytes(pickle.dumps(FakeRepo("empty", publishing=True).to_plain()))
    cloned = hg(env, tmp_path, "clone", *ssh(served), "ssh://h/repo", "one")
    assert "no changes found" in cloned.stdout
    one = tmp_path / "one"
    (one / "first.txt").write_text("first\n")
    hg(env, one, "commit", "-q", "-A", "-m", "first", "-d", "14 0")
    pushed = hg(env, one, "push", *ssh(served), "ssh://h/repo")
    assert "remote: added 1 changesets with 1 changes to 1 files\n" in pushed.stdout  # no "(+1 heads)", as hg
    assert hg(env, one, "phase", "-r", ".").stdout.split()[1] == "public"
