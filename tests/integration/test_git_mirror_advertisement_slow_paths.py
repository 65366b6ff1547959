"""Two kinds of mirror were advertised line by line, not spliced from their kept ``packed-refs``
lines: one hiding more than ``RUN_MIN_REFS`` refs (``uploadpack.hideRefs = refs/pull``: 20,000
hidden of 120,000 took 0.11-0.15 s of server CPU, git's upload-pack 0.03-0.06), and one whose
``packed-refs`` does not say ``fully-peeled`` (written by an old git or another tool).  Both are
spliced now, and what they send is, byte for byte, what git's upload-pack sends (v0's ref lines,
v2's ``ls-refs`` with ``peel``, ``symrefs``, ``ref-prefix``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends.git import RUN_MIN_REFS
from protocols.git_reflines import RefRun
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit
from tests.integration.test_git_mirror_advertisement_bytes import _git, _hgwire, _ls_refs


def _spliced(monkeypatch: pytest.MonkeyPatch) -> list[RefRun]:
    """The runs answers are spliced from, from now on."""
    spliced: list[RefRun] = []
    splice = RefRun.spliced

    def counted(self: RefRun, *args: Any, **kwargs: Any) -> bytes:
        spliced.append(self)
        return splice(self, *args, **kwargs)

    monkeypatch.setattr(RefRun, "spliced", counted)
    return spliced


def _mirror(client: Client, server: RunningServer, tmp_path: Path) -> Path:
    """``mirror.git``: light and annotated tags, ``RUN_MIN_REFS`` + 100 ``refs/pull/<n>/head`` and a
    few branches, all packed; a loose branch over its packed value and a loose tag among the pulls."""
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(3):
        commit(client, work, f"f{n}.txt", f"{n}\n", f"commit {n}")
    lines = "".join(f"create refs/tags/light{i:04d} HEAD~{i % 3}\n" for i in range(40))
    lines += "".join(f"create refs/pull/{i:04d}/head HEAD~{i % 3}\n" for i in range(RUN_MIN_REFS + 100))
    lines += "create refs/heads/loose HEAD~2\ncreate refs/heads/zz HEAD~1\n"
    client.git("update-ref", "--stdin", cwd=work, input=lines.encode())
    for i in range(30):
        client.git("tag", "-a", "-m", f"release {i}", f"v{i:04d}", f"HEAD~{i % 3}", cwd=work)
    git_dir = server.root / "mirror.git"
    client.git("clone", "-q", "--mirror", str(work), str(git_dir))
    client.git("--git-dir", str(git_dir), "pack-refs", "--all", "--prune")
    client.git("--git-dir", str(git_dir), "update-ref", "refs/heads/loose", "main")
    client.git("--git-dir", str(git_dir), "update-ref", "refs/pull/0300/x", "main~1")
    return git_dir


REQUESTS = [_ls_refs("sha1", b"peel", b"symrefs", b"unborn"), _ls_refs("sha1"),
            _ls_refs("sha1", b"peel", b"ref-prefix refs/tags/v000", b"ref-prefix HEAD", b"ref-prefix refs/pull/03",
                     b"ref-prefix refs/heads/"),
            _ls_refs("sha1", b"ref-prefix refs/pull/", b"ref-prefix refs/tags/light00")]


def _same_as_git(client: Client, port: int, git_dir: Path) -> None:
    for version in (0, 2):
        for _ in range(2):  # parsed, then kept
            assert _hgwire(port, version, REQUESTS) == _git(client, git_dir, version, REQUESTS), version


def test_more_than_run_min_refs_hidden_are_cut_out_of_the_run(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    git_dir = _mirror(client, server, tmp_path)
    client.git("--git-dir", str(git_dir), "config", "--add", "uploadpack.hideRefs", "refs/pull")
    client.git("--git-dir", str(git_dir), "config", "--add", "uploadpack.hideRefs", "!refs/pull/0007")
    client.git("--git-dir", str(git_dir), "config", "--add", "transfer.hideRefs", "refs/heads/zz")
    spliced = _spliced(monkeypatch)
    _same_as_git(client, server.port("git"), git_dir)
    assert len(spliced) == 2 * (1 + len(REQUESTS))  # each answer spliced, none written line by line
    assert all(len(run.hidden) > RUN_MIN_REFS for run in spliced)


@pytest.mark.parametrize("header", ["# pack-refs with: peeled sorted \n", ""])
def test_a_packed_refs_not_fully_peeled_is_peeled_once_and_spliced(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    git_dir = _mirror(client, server, tmp_path)
    tag = client.git("--git-dir", str(git_dir), "rev-parse", "refs/tags/v0001").stdout.strip()
    client.git("--git-dir", str(git_dir), "update-ref", "refs/x/tagged", tag)  # an annotated tag outside refs/tags
    client.git("--git-dir", str(git_dir), "pack-refs", "--all", "--prune")
    packed = git_dir / "packed-refs"
    lines = packed.read_text().splitlines(keepends=True)
    assert lines[0].startswith("# pack-refs with: peeled fully-peeled")
    kept = [line for line in lines[1:] if header or not line.startswith("^")]  # (an old git's, or no ^ at all)
    packed.write_text(header + "".join(kept))
    client.git("--git-dir", str(git_dir), "update-ref", "refs/heads/loose", "main~1")  # loose over packed
    spliced = _spliced(monkeypatch)
    _same_as_git(client, server.port("git"), git_dir)
    assert len(spliced) == 2 * (1 + len(REQUESTS))  # each answer spliced, none written line by line


def test_a_head_naming_no_branch_is_spliced_too(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (a HEAD naming master beside a main: v0 put its capabilities on the first ref's line, written line by line)
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    git_dir = _mirror(client, server, tmp_path)
    client.git("--git-dir", str(git_dir), "symbolic-ref", "HEAD", "refs/heads/master")
    spliced = _spliced(monkeypatch)
    _same_as_git(client, server.port("git"), git_dir)
    assert len(spliced) == 2 * (1 + len(REQUESTS))
    client.git("--git-dir", str(git_dir), "config", "uploadpack.hideRefs", "refs")  # nothing shown: a flush
    _same_as_git(client, server.port("git"), git_dir)
