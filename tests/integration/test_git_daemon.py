"""git:// end to end: the real git client against the real service, both backends, v0 and v2 requests.

A v2 request gets a v0 answer until protocol v2 exists, so "the client default"
exercises that fallback.  After every push the server repository is checked:
``git fsck --full`` on disk for the fs backend, and for both backends a mirror
clone over the wire that must itself pass ``git fsck --full``.
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer

PROTOCOLS = {"v0": ["-c", "protocol.version=0"], "default": []}

BINARY = bytes(range(256)) * 4
NON_ASCII = "ünïcødé-файл.txt"


def git(client: Client, proto: str, *args: str | Path, cwd: Path | None = None, check: bool = True) -> str:
    return client.git(*PROTOCOLS[proto], *args, cwd=cwd, check=check).stdout


def commit(client: Client, work: Path, name: str, content: bytes | str, message: str) -> str:
    path = work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    client.git("add", "--", name, cwd=work)
    client.git("commit", "-q", "-m", message, cwd=work)
    return client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def assert_consistent(server: RunningServer, client: Client, name: str) -> None:
    """The server repo is whole: fsck on disk (fs) and a mirror clone that fscks (both backends)."""
    if server.backend_name == "fs":
        client.git("--git-dir", str(server.root / f"{name}.git"), "fsck", "--full", "--strict")
    mirror = client.cwd / f"mirror-{name}"
    client.run("rm", "-rf", str(mirror))
    client.git("clone", "-q", "--mirror", server.git_url(name), str(mirror))
    client.git("--git-dir", str(mirror), "fsck", "--full", "--strict")


def started_repo(server: RunningServer, client: Client, name: str, push: bool = False) -> tuple[str, Path]:
    """A new repository ``name`` on the server, cloned to ``client.cwd / name`` with one commit
    (``a.txt``), pushed as ``main`` with ``push``; its URL and the clone."""
    server.backend.create(name, Kind.GIT)
    url = server.git_url(name)
    work = client.cwd / name
    client.git("clone", "-q", url, str(work))
    commit(client, work, "a.txt", "a\n", "a")
    if push:
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    return url, work


def remote_refs(client: Client, proto: str, url: str) -> dict[str, str]:
    out = git(client, proto, "ls-remote", url)
    return {line.split("\t")[1]: line.split("\t")[0] for line in out.splitlines()}


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_clone_push_fetch_cycle(server: RunningServer, client: Client, proto: str) -> None:
    server.backend.create("proj", Kind.GIT)
    url = server.git_url("proj")
    work = client.cwd / "work"

    # clone an empty repo, push the first commit
    git(client, proto, "clone", "-q", url, str(work))
    first = commit(client, work, "README", "hello\n", "first")
    git(client, proto, "push", "-q", "origin", "main", cwd=work)
    assert_consistent(server, client, "proj")

    # history: branches, a merge, annotated and lightweight tags, binary and non-ASCII files
    client.git("checkout", "-q", "-b", "topic", cwd=work)
    commit(client, work, "data.bin", BINARY, "binary")
    commit(client, work, NON_ASCII, "ünï\n", "non-ascii")
    client.git("checkout", "-q", "main", cwd=work)
    commit(client, work, "README", "hello again\n", "second")
    client.git("merge", "-q", "--no-edit", "topic", cwd=work)
    client.git("tag", "-a", "v1.0", "-m", "release", cwd=work)
    client.git("tag", "light", first, cwd=work)
    git(client, proto, "push", "-q", "origin", "main", "topic", "--tags", cwd=work)
    assert_consistent(server, client, "proj")

    # clone with history
    other = client.cwd / "other"
    git(client, proto, "clone", "-q", url, str(other))
    assert (other / "data.bin").read_bytes() == BINARY
    assert (other / NON_ASCII).read_text() == "ünï\n"
    local = client.git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags", cwd=work)
    refs = remote_refs(client, proto, url)
    for line in local.stdout.splitlines():
        oid, ref = line.split(" ")
        assert refs[ref] == oid
    assert refs["HEAD"] == refs["refs/heads/main"]
    assert refs["refs/tags/v1.0^{}"] == refs["refs/heads/main"]

    # incremental fetch and fast-forward push from the other side
    newer = commit(client, work, "more.txt", "more\n", "third")
    git(client, proto, "push", "-q", "origin", "main", cwd=work)
    git(client, proto, "fetch", "-q", "origin", cwd=other)
    assert client.git("rev-parse", "origin/main", cwd=other).stdout.strip() == newer
    client.git("merge", "-q", "--ff-only", "origin/main", cwd=other)
    ff = commit(client, other, "ff.txt", "ff\n", "fast-forward")
    git(client, proto, "push", "-q", "origin", "main", cwd=other)
    assert remote_refs(client, proto, url)["refs/heads/main"] == ff
    assert_consistent(server, client, "proj")

    # non-fast-forward refused, forced accepted
    diverged = commit(client, work, "diverge.txt", "x\n", "diverge")
    refused = client.git(*PROTOCOLS[proto], "push", "origin", "main", cwd=work, check=False)
    assert refused.returncode != 0 and "rejected" in refused.stderr
    assert remote_refs(client, proto, url)["refs/heads/main"] == ff
    git(client, proto, "push", "-q", "--force", "origin", "main", cwd=work)
    assert remote_refs(client, proto, url)["refs/heads/main"] == diverged
    assert_consistent(server, client, "proj")

    # branch deletion
    git(client, proto, "push", "-q", "origin", ":topic", cwd=work)
    assert "refs/heads/topic" not in remote_refs(client, proto, url)
    assert_consistent(server, client, "proj")


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_shallow_clone_then_deepen(server: RunningServer, client: Client, proto: str) -> None:
    server.backend.create("deep", Kind.GIT)
    url = server.git_url("deep")
    work = client.cwd / "src"
    git(client, proto, "clone", "-q", url, str(work))
    for i in range(12):
        commit(client, work, "n.txt", f"{i}\n", f"commit {i}")
    client.git("checkout", "-q", "-b", "side", "HEAD~6", cwd=work)
    commit(client, work, "side.txt", "s\n", "side")
    client.git("checkout", "-q", "main", cwd=work)
    client.git("merge", "-q", "--no-edit", "side", cwd=work)
    git(client, proto, "push", "-q", "origin", "main", cwd=work)

    shallow, reference = client.cwd / "shallow", client.cwd / "reference"
    git(client, proto, "clone", "-q", "--depth", "1", url, str(shallow))
    client.git("clone", "-q", "--depth", "1", f"file://{work}", str(reference))
    assert client.git("rev-list", "--count", "HEAD", cwd=shallow).stdout.strip() == "1"
    git(client, proto, "fetch", "-q", "--deepen", "5", cwd=shallow)
    client.git("fetch", "-q", "--deepen", "5", cwd=reference)
    count = client.git("rev-list", "--count", "HEAD", cwd=shallow).stdout.strip()
    assert count == client.git("rev-list", "--count", "HEAD", cwd=reference).stdout.strip()
    assert (shallow / ".git" / "shallow").read_text() == (reference / ".git" / "shallow").read_text()
    client.git("fsck", "--full", cwd=shallow)
    git(client, proto, "fetch", "-q", "--unshallow", cwd=shallow)
    assert client.git("rev-list", "--count", "HEAD", cwd=shallow).stdout.strip() == "14"


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_unshallow_sends_nothing_the_client_has(server: RunningServer, client: Client, proto: str) -> None:
    """``git fetch --unshallow`` after a shallow fetch of another branch unshallows that branch's
    commit too: the client has it and its files, and git's upload-pack counts them among what
    the client has (its "extra edges"); hgwire sent those files again."""
    server.backend.create("edges", Kind.GIT)
    url = server.git_url("edges")
    work = client.cwd / "src"
    git(client, proto, "clone", "-q", url, str(work))
    for i in range(10):
        commit(client, work, "f.txt", "".join(f"line {n}\n" for n in range(i + 1)), f"commit {i}")
        commit(client, work, f"d{i % 3}/g.txt", f"{i}\n", f"commit {i}b")
    client.git("checkout", "-q", "-b", "side", "HEAD~8", cwd=work)
    commit(client, work, "side.txt", "s\n", "side")
    client.git("checkout", "-q", "main", cwd=work)
    git(client, proto, "push", "-q", "origin", "main", "side", cwd=work)

    shallow = client.cwd / "shallow"
    git(client, proto, "clone", "-q", "--depth", "1", url, str(shallow))
    git(client, proto, "fetch", "-q", "--depth", "1", "origin", "side", cwd=shallow)  # FETCH_HEAD only: no have

    def objects() -> set[str]:
        return set(client.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=shallow
                              ).stdout.split())

    had = objects()
    fetched = client.git(*PROTOCOLS[proto], "-c", "fetch.unpackLimit=1", "fetch", "--progress", "--unshallow",
                         cwd=shallow).stderr  # (index-pack counts what it receives)
    found = re.search(r"(?:Receiving|Unpacking) objects: 100% \((\d+)/", fetched)
    assert found is not None, fetched
    assert int(found.group(1)) == len(objects() - had)
    assert client.git("rev-list", "--count", "main", cwd=shallow).stdout.strip() == "20"
    client.git("fsck", "--full", cwd=shallow)


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_deepen_since_and_not(server: RunningServer, client: Client, proto: str) -> None:
    server.backend.create("dates", Kind.GIT)
    url = server.git_url("dates")
    work = client.cwd / "src"
    git(client, "default", "clone", "-q", url, str(work))
    for day in range(1, 6):
        client.env["GIT_COMMITTER_DATE"] = f"2026-01-0{day}T00:00:00Z"
        commit(client, work, "d.txt", f"{day}\n", f"day {day}")
        if day == 2:
            client.git("tag", "base", cwd=work)
    git(client, "default", "push", "-q", "origin", "main", "--tags", cwd=work)
    since = client.cwd / "since"
    git(client, proto, "clone", "-q", "--shallow-since", "2026-01-03T12:00:00Z", url, str(since))
    assert client.git("rev-list", "--count", "HEAD", cwd=since).stdout.strip() == "2"
    exclude = client.cwd / "exclude"
    git(client, proto, "clone", "-q", "--shallow-exclude", "base", url, str(exclude))
    assert client.git("rev-list", "--count", "HEAD", cwd=exclude).stdout.strip() == "3"


def test_bigger_history_streams_both_ways(server: RunningServer, client: Client) -> None:
    """Hundreds of deltified objects and a few MB of binary cross many TCP reads in both directions."""
    import os

    server.backend.create("big", Kind.GIT)
    url = server.git_url("big")
    work = client.cwd / "big"
    client.git("clone", "-q", url, str(work))
    (work / "random.bin").write_bytes(os.urandom(3 << 20))
    lines = [f"line {i}\n" for i in range(2000)]
    for i in range(30):
        lines[i * 7] = f"changed in {i}\n"
        (work / "text.txt").write_text("".join(lines))
        client.git("add", ".", cwd=work)
        client.git("commit", "-q", "-m", f"step {i}", cwd=work)
    client.git("gc", "-q", cwd=work)  # deltified objects in the pushed pack
    client.git("push", "-q", "origin", "main", cwd=work)
    assert_consistent(server, client, "big")
    copy = client.cwd / "copy"
    client.git("clone", "-q", url, str(copy))
    assert (copy / "random.bin").read_bytes() == (work / "random.bin").read_bytes()
    assert client.git("rev-parse", "HEAD", cwd=copy).stdout == client.git("rev-parse", "HEAD", cwd=work).stdout


def test_racing_pushes_leave_one_winner(server: RunningServer, client: Client) -> None:
    """Two pushes to one branch at the same moment: one wins, the other gets a normal git refusal."""
    import subprocess

    server.backend.create("race", Kind.GIT)
    url = server.git_url("race")
    sides = [client.cwd / "left", client.cwd / "right"]
    seed = client.cwd / "seed"
    client.git("clone", "-q", url, str(seed))
    commit(client, seed, "base.txt", "base\n", "base")
    client.git("push", "-q", "origin", "main", cwd=seed)
    for side in sides:
        client.git("clone", "-q", url, str(side))
    for round_ in range(2):
        tips = []
        for side in sides:
            client.git("fetch", "-q", "origin", cwd=side)
            client.git("reset", "-q", "--hard", "origin/main", cwd=side)
            tips.append(commit(client, side, f"{side.name}.txt", f"{round_}\n", f"{side.name} {round_}"))
        pushes = [subprocess.Popen(["git", "push", "origin", "main"], cwd=side, env=client.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for side in sides]
        results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in pushes]
        winners = [tip for tip, (code, _) in zip(tips, results) if code == 0]
        assert len(winners) == 1, results
        assert remote_refs(client, "default", url)["refs/heads/main"] == winners[0]
        loser = next(err for code, err in results if code != 0)
        assert "rejected" in loser or "stale info" in loser or "failed to push" in loser
    assert_consistent(server, client, "race")


def test_client_vanishing_mid_pack_leaves_the_service_serving(server: RunningServer, client: Client) -> None:
    import os

    server.backend.create("gone", Kind.GIT)
    work = client.cwd / "gone"
    client.git("clone", "-q", server.git_url("gone"), str(work))
    commit(client, work, "noise.bin", os.urandom(4 << 20), "noise")
    client.git("push", "-q", "origin", "main", cwd=work)
    tip = client.git("rev-parse", "HEAD", cwd=work).stdout.strip().encode()
    failures: list[dict[str, object]] = []

    def observe(event: dict[str, object]) -> None:
        if event.get("log_failure") is not None:
            failures.append(event)

    globalLogPublisher.addObserver(observe)  # type: ignore[arg-type]  # a callable is an ILogObserver
    try:
        vanish(server, tip)
    finally:
        globalLogPublisher.removeObserver(observe)  # type: ignore[arg-type]
    assert failures == []
    copy = client.cwd / "copy"
    client.git("clone", "-q", server.git_url("gone"), str(copy))
    assert (copy / "noise.bin").read_bytes() == (work / "noise.bin").read_bytes()


def vanish(server: RunningServer, tip: bytes) -> None:
    """Ask for a big pack three times and hang up after the first bytes of it."""
    import socket

    from protocols import pktline

    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
            sock.sendall(pktline.encode(b"git-upload-pack /gone.git\0host=x\0"))
            sock.recv(65536)
            sock.sendall(pktline.encode(b"want " + tip + b" side-band-64k ofs-delta\n") + pktline.FLUSH
                         + pktline.encode(b"done\n"))
            sock.recv(1000)
    time.sleep(0.5)  # let the server notice and close its streams


def test_push_options_and_atomic_pushes(server: RunningServer, client: Client) -> None:
    server.backend.create("opts", Kind.GIT)
    url = server.git_url("opts")
    work = client.cwd / "opts"
    client.git("clone", "-q", url, str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "-o", "ci.skip", "-o", "note=ünï", "origin", "main", cwd=work)
    client.git("branch", "other", cwd=work)
    stale = commit(client, work, "b.txt", "b\n", "b")
    client.git("push", "-q", "--atomic", "origin", "main", "other", cwd=work)
    refs = remote_refs(client, "default", url)
    assert refs["refs/heads/main"] == stale and "refs/heads/other" in refs
    assert_consistent(server, client, "opts")


def test_funny_ref_names_and_deleting_the_default_branch_are_rejected_as_by_git(
        server: RunningServer, client: Client) -> None:
    """As git's receive-pack: ``refs/foo`` is a funny refname and HEAD's branch cannot be deleted."""
    server.backend.create("funny", Kind.GIT)
    url = server.git_url("funny")
    work = client.cwd / "funny"
    client.git("clone", "-q", url, str(work))
    tip = commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "origin", "main", "main:side", cwd=work)
    funny = client.git("push", "origin", "HEAD:refs/foo", cwd=work, check=False)
    assert funny.returncode == 1 and "! [remote rejected] HEAD -> refs/foo (funny refname)" in funny.stderr
    current = client.git("push", "origin", ":main", cwd=work, check=False)
    assert current.returncode == 1
    assert "! [remote rejected] main (deletion of the current branch prohibited)" in current.stderr
    client.git("push", "-q", "origin", ":side", cwd=work)  # another branch goes
    assert remote_refs(client, "default", url) == {"HEAD": tip, "refs/heads/main": tip}
    assert_consistent(server, client, "funny")


def test_ref_name_clashes_and_non_commit_branches_are_rejected_as_by_git(make_server: Any, client: Client) -> None:
    """``dev/x`` beside ``dev`` (loose or packed) is refused, atomically too, and so is a tree as a branch."""
    server: RunningServer = make_server("fs")
    server.backend.create("clash", Kind.GIT)
    url = server.git_url("clash")
    work = client.cwd / "clash"
    client.git("clone", "-q", url, str(work))
    tip = commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "origin", "main", "main:dev", "main:packed", cwd=work)
    client.git("--git-dir", str(server.root / "clash.git"), "pack-refs", "--all")  # 'packed' is packed now
    for spec in ("HEAD:refs/heads/dev/x", "HEAD:refs/heads/packed/x", "HEAD:refs/heads/main/sub"):
        result = client.git("push", "origin", spec, cwd=work, check=False)
        assert result.returncode == 1 and "(failed to update ref: '" in result.stderr, result.stderr
    atomic = client.git("push", "--atomic", "origin", "HEAD:refs/heads/m", "HEAD:refs/heads/m/n", cwd=work,
                        check=False)
    assert atomic.returncode == 1 and "(atomic transaction failed)" in atomic.stderr  # git's words
    tree = client.git("push", "-f", "origin", "HEAD^{tree}:refs/heads/main", cwd=work, check=False)
    assert tree.returncode == 1 and "(failed to update ref)" in tree.stderr and \
        "trying to write non-commit object" in tree.stderr  # git's words
    assert remote_refs(client, "default", url) == {
        "HEAD": tip, "refs/heads/main": tip, "refs/heads/dev": tip, "refs/heads/packed": tip}
    client.git("clone", "-q", url, str(client.cwd / "again"))
    assert_consistent(server, client, "clash")


def test_a_repository_with_a_working_tree_is_served_and_its_checked_out_branch_kept(
        make_server: Any, client: Client) -> None:
    """As git daemon and receive-pack (``denyCurrentBranch``): clone it, push other branches only."""
    server: RunningServer = make_server("fs")
    work = server.root / "work"
    client.git("init", "-q", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    url = server.git_url("work")
    clone = client.cwd / "work-clone"
    client.git("clone", "-q", url, str(clone))
    tip = commit(client, clone, "b.txt", "b\n", "b")
    checked_out = client.git("push", "origin", "HEAD:main", cwd=clone, check=False)
    assert checked_out.returncode == 1 and "(branch is currently checked out)" in checked_out.stderr
    client.git("push", "-q", "origin", "HEAD:side", cwd=clone)
    assert remote_refs(client, "default", url)["refs/heads/side"] == tip
    assert client.git("status", "--porcelain", cwd=work).stdout == ""  # the working tree is untouched
    client.git("--git-dir", str(work / ".git"), "fsck", "--full")


def test_a_clone_after_many_small_pushes_keeps_their_deltas(make_server: Any, client: Client) -> None:
    """Each push's pack also holds its delta base whole (thin-pack completion); a clone must send the
    deltas, not those copies: about the size of git's own clone of the same repository."""
    server: RunningServer = make_server("fs")
    server.backend.create("grow", Kind.GIT)
    url = server.git_url("grow")
    work = client.cwd / "grow"
    client.git("clone", "-q", url, str(work))
    lines = [f"line {i} {i * 7919 % 10007}\n" for i in range(3000)]
    for step in range(12):
        lines[step * 200] = f"changed {step}\n"
        (work / "big.txt").write_text("".join(lines))
        client.git("add", "big.txt", cwd=work)
        client.git("commit", "-qm", f"step {step}", cwd=work)
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    sizes = {}
    for name, source in (("ours", url), ("git", f"file://{server.root / 'grow.git'}")):
        target = client.cwd / f"clone-{name}"
        client.git("clone", "-q", "--bare", "--no-local", source, str(target))
        sizes[name] = sum(p.stat().st_size for p in (target / "objects" / "pack").glob("*.pack"))
    assert sizes["ours"] < 2 * sizes["git"], sizes
    assert_consistent(server, client, "grow")


def test_pushed_packs_are_repacked_in_the_background(make_server: Any, client: Client,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``[maintenance] auto_pack_limit`` packs a push starts git repack: one pack with a bitmap;
    then the loose refs are packed (``git pack-refs --all --prune``), the refs served unchanged."""
    from gateway import git_session
    from gateway.policy import Maintenance

    monkeypatch.setattr(git_session, "policy_maintenance", lambda _authorizer: Maintenance(auto_pack_limit=3))
    server: RunningServer = make_server("fs")
    server.backend.create("busy", Kind.GIT)
    url = server.git_url("busy")
    work = client.cwd / "busy"
    client.git("clone", "-q", url, str(work))
    packs = server.root / "busy.git" / "objects" / "pack"
    for step in range(3):
        commit(client, work, f"f{step}.txt", f"{step}\n", f"step {step}")
        client.git("tag", "-a", "-m", f"tag {step}", f"v{step}", cwd=work)
        client.git("push", "-q", "origin", "HEAD:main", f"HEAD:refs/heads/topic/{step}", f"v{step}", cwd=work)
        if step == 1:
            assert len(list(packs.glob("*.pack"))) == 2  # below the limit: left alone
    deadline = time.monotonic() + 60  # (the refs are packed before the repack starts)
    while not (len(list(packs.glob("*.pack"))) == 1 and list(packs.glob("*.bitmap"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(list(packs.glob("*.pack"))) == 1 and list(packs.glob("*.bitmap"))
    git_dir = server.root / "busy.git"
    from gateway import maintenance

    assert _waited(lambda: not maintenance.running(), 60)
    assert not (git_dir / "gc.pid").exists()  # held while the repack ran (as git gc holds it), then let go
    loose = sorted(str(p.relative_to(git_dir)) for p in (git_dir / "refs").rglob("*") if p.is_file())
    assert loose == [], loose  # every branch and tag moved into packed-refs
    packed = (git_dir / "packed-refs").read_text()
    assert all(f"refs/heads/topic/{step}" in packed and f"refs/tags/v{step}" in packed for step in range(3))
    pushed = {"refs/heads/main": "HEAD", **{f"refs/heads/topic/{step}": f"HEAD~{2 - step}" for step in range(3)},
              **{f"refs/tags/v{step}": f"v{step}" for step in range(3)}}
    expected = {ref: client.git("rev-parse", rev, cwd=work).stdout.strip() for ref, rev in pushed.items()}
    served = dict(reversed(line.split("\t")) for line in client.git("ls-remote", url).stdout.splitlines())
    assert {ref: sha for ref, sha in served.items() if ref in pushed} == expected
    commit(client, work, "after.txt", "after\n", "after the repack")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    client.git("clone", "-q", url, str(client.cwd / "after"))
    assert (client.cwd / "after" / "after.txt").exists()
    assert_consistent(server, client, "busy")


def test_a_repository_whose_objects_are_precious_is_served_and_never_repacked(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """``extensions.preciousObjects`` (a host sets it on the repository its forks borrow from: a
    repack there deletes packs the forks may need) is served, pushed to, and left unrepacked past
    the pack limit, as git's gc leaves it; a fork borrowing from it is cloned whole."""
    from gateway import git_session, maintenance
    from gateway.policy import Maintenance

    monkeypatch.setattr(git_session, "policy_maintenance", lambda _authorizer: Maintenance(auto_pack_limit=2))
    plans = _RepackPlans(monkeypatch)
    server: RunningServer = make_server("fs")
    server.backend.create("base", Kind.GIT)
    base = server.root / "base.git"
    client.git("config", "--file", str(base / "config"), "core.repositoryformatversion", "1")
    client.git("config", "--file", str(base / "config"), "extensions.preciousObjects", "true")
    work = client.cwd / "base"
    client.git("clone", "-q", server.git_url("base"), str(work))
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]  # a callable is an ILogObserver
    try:
        for step in range(3):
            commit(client, work, f"f{step}.txt", f"{step}\n", f"step {step}")
            client.git("push", "-q", "origin", "HEAD:main", cwd=work)
        # each push's planning has answered (without the extension, the third names base.git)
        assert plans.all_answered(3) == [None, None, None]
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    client.git("clone", "-q", "--bare", "--shared", str(base), str(server.root / "fork.git"))
    assert not maintenance.running()
    assert not any("repack" in str(event.get("log_format", "")) for event in events), events
    assert len(list((base / "objects" / "pack").glob("*.pack"))) == 3
    for name in ("base", "fork"):
        client.git("clone", "-q", server.git_url(name), str(client.cwd / f"{name}-copy"))
        assert (client.cwd / f"{name}-copy" / "f2.txt").read_text() == "2\n"
    assert_consistent(server, client, "base")


def _bitmaps(git_dir: Path) -> list[Path]:
    return list((git_dir / "objects" / "pack").glob("*.bitmap"))


def _waited(done: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(done())


class _RepackPlans:
    """Every repack planning the server schedules (``gateway.maintenance._planned``, put in the pool
    on the reactor as a push reports or a fetch's pack ends, before the client can read the end) and
    what each answered once made: the git directory to repack, or None.  A repack starts only from
    an answer that names one, so a test that waits for the answers knows that none will start,
    however slow the host, where watching the log for a while proved nothing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from gateway import maintenance
        from gateway.threads import run_blocking as real

        self.scheduled = 0
        self.answers: list[str | None] = []
        planned = maintenance._planned

        def recorded(work: Any, *args: Any, **kwargs: Any) -> Any:
            deferred = real(work, *args, **kwargs)
            if work is planned:
                self.scheduled += 1
                deferred.addCallback(self._answered)  # before the maintenance's own: it then acts on it
            return deferred

        monkeypatch.setattr(maintenance, "run_blocking", recorded)

    def _answered(self, plan: tuple[str | None, bool, bool]) -> tuple[str | None, bool, bool]:
        self.answers.append(plan[0])
        return plan

    def all_answered(self, count: int) -> list[str | None]:
        """The answers, once ``count`` plannings were scheduled and all answered (60 s at most)."""
        assert _waited(lambda: self.scheduled == count and len(self.answers) == count, 60), \
            (self.scheduled, self.answers)
        return self.answers


def test_a_big_repository_without_a_bitmap_gets_one_after_a_push_or_a_fetch(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration's push lands as one pack without a bitmap, and so does a repository copied in
    with ``git clone --mirror``: every clone of them would walk the whole history.  Past
    ``[maintenance] bitmap_min_objects`` objects, a push or a fetch that sent a pack starts the
    repack that writes one; with 0 neither does."""
    from gateway import git_session, maintenance
    from gateway.policy import Maintenance

    settings = Maintenance(auto_pack_limit=50, bitmap_min_objects=40)
    monkeypatch.setattr(git_session, "policy_maintenance", lambda _authorizer: settings)
    monkeypatch.setattr(maintenance, "_bitmap_started", {})
    plans = _RepackPlans(monkeypatch)
    server: RunningServer = make_server("fs")
    _url, work = started_repo(server, client, "migrated")
    for step in range(15):  # 45 objects: a commit, a tree and a blob each
        commit(client, work, f"f{step}.txt", f"{step}\n", f"step {step}")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    migrated = server.root / "migrated.git"
    assert _waited(lambda: _bitmaps(migrated) and not maintenance.running(), 60)
    assert len(list((migrated / "objects" / "pack").glob("*.pack"))) == 1
    assert_consistent(server, client, "migrated")

    copied = server.root / "copied.git"  # an operator's copy: one pack, no bitmap
    client.git("clone", "-q", "--mirror", "--no-local", str(migrated), str(copied))
    assert not _bitmaps(copied) and len(list((copied / "objects" / "pack").glob("*.pack"))) == 1
    settings = Maintenance(auto_pack_limit=50, bitmap_min_objects=0)
    planned = plans.scheduled
    client.git("clone", "-q", server.git_url("copied"), str(client.cwd / "first"))
    server.settled()  # the pack's end was handled (a planning, had there been one, scheduled then)
    assert plans.scheduled == planned and not maintenance.running() and not _bitmaps(copied)  # turned off
    settings = Maintenance(auto_pack_limit=50, bitmap_min_objects=40)
    client.git("ls-remote", server.git_url("copied"))  # no pack sent: not looked at
    server.settled()
    assert plans.scheduled == planned and not maintenance.running() and not _bitmaps(copied)
    client.git("clone", "-q", server.git_url("copied"), str(client.cwd / "second"))
    assert _waited(lambda: _bitmaps(copied) and not maintenance.running(), 60)
    assert client.git("rev-parse", "HEAD", cwd=client.cwd / "second").stdout.strip() == \
        client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert_consistent(server, client, "copied")


def test_a_repository_repacked_geometrically_is_served_from_its_multi_pack_bitmap(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host's own maintenance (``git repack --geometric=2 --write-midx -b``) leaves several packs
    under a multi-pack index with a bitmap: clones and fetches are served from them (and from a
    pack pushed after), and hgwire starts no repack of its own for want of a bitmap."""
    from gateway import git_session, maintenance
    from gateway.policy import Maintenance

    settings = Maintenance(auto_pack_limit=50, bitmap_min_objects=0)  # the host's history comes in
    monkeypatch.setattr(git_session, "policy_maintenance", lambda _authorizer: settings)
    monkeypatch.setattr(maintenance, "_bitmap_started", {})
    plans = _RepackPlans(monkeypatch)
    server: RunningServer = make_server("fs")
    _url, work = started_repo(server, client, "geo")
    for batch, count in enumerate((30, 5, 1)):  # packs of 90, 15 and 3 objects: a geometric progression
        for step in range(count):
            commit(client, work, f"b{batch}-{step}.txt", f"{batch} {step}\n", f"batch {batch} step {step}")
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    git_dir = server.root / "geo.git"
    pack_dir = git_dir / "objects" / "pack"
    client.git("--git-dir", str(git_dir), "repack", "-q", "-d", "--geometric=2", "--write-midx",
               "--write-bitmap-index")
    assert len(list(pack_dir.glob("*.pack"))) >= 2 and list(pack_dir.glob("multi-pack-index-*.bitmap"))
    assert not list(pack_dir.glob("pack-*.bitmap"))
    layout = sorted(p.name for p in pack_dir.iterdir())
    settings = Maintenance(auto_pack_limit=50, bitmap_min_objects=10)  # (without the index's bitmap: a repack)
    planned = plans.scheduled
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]  # a callable is an ILogObserver
    try:
        client.git("clone", "-q", server.git_url("geo"), str(client.cwd / "copy"))
        commit(client, work, "after.txt", "after\n", "after the repack")
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)  # a pack outside the index
        client.git("fetch", "-q", "origin", cwd=client.cwd / "copy")
        client.git("clone", "-q", "--no-local", server.git_url("geo"), str(client.cwd / "again"))
        server.settled()  # every pack's end and the push's report handled: their plannings scheduled
        # a clone, the push, a fetch and a clone: each planning has answered, none naming geo.git
        assert plans.all_answered(planned + 4)[planned:] == [None] * 4
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    assert not maintenance.running()
    assert not any("repack" in str(event.get("log_format", "")) for event in events), events
    assert set(layout) <= {p.name for p in pack_dir.iterdir()}, "the host's packs and index stay as they were"
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert client.git("rev-parse", "origin/main", cwd=client.cwd / "copy").stdout.strip() == head
    assert client.git("rev-parse", "HEAD", cwd=client.cwd / "again").stdout.strip() == head
    assert_consistent(server, client, "geo")


def _maps_of(pack_dir: Path) -> int:
    """Maps of ``pack_dir``'s files in this process (the server runs in it)."""
    prefix = str(pack_dir) + "/"
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if line.rstrip("\n").split(" ")[-1].startswith(prefix))


def test_finished_requests_leave_no_pack_open(make_server: Any, client: Client) -> None:
    """A dulwich repository is kept alive by reference cycles of its own: a session closes the one
    it opened when it, its steps and its pack stream are done, instead of leaving its packs' maps
    and descriptors to the cyclic collector (turned off here, so that only the closing frees them)."""
    import gc

    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    _url, work = started_repo(server, client, "closed", push=True)
    for step in range(5):
        commit(client, work, f"f{step}.txt", f"{step}\n" * 50, f"step {step}")
    client.git("tag", "-a", "-m", "v1", "v1", cwd=work)
    client.git("push", "-q", "origin", "HEAD:main", "v1", cwd=work)
    pack_dir = server.root / "closed.git" / "objects" / "pack"
    # the pushes' sessions (whose repositories the collector frees) may still be ending
    assert _waited(lambda: gc.collect() is not None and _maps_of(pack_dir) == 0, 10)
    gc.disable()
    try:
        for url in (server.git_url("closed"), server.url("http", "closed.git")):
            for proto in ("v0", "default"):
                for n, args in enumerate((["clone", "-q", "--depth=2"], ["clone", "-q", "--no-checkout"],
                                          ["clone", "-q", "--filter=blob:none"], ["ls-remote"])):
                    target = client.cwd / f"read-{proto}-{n}-{url.split(':')[0]}"
                    client.run("rm", "-rf", str(target))
                    client.git(*PROTOCOLS[proto], *args, url, *([str(target)] if args[0] == "clone" else []))
            client.git("fetch", "-q", "--depth=3", "origin", cwd=client.cwd / "read-v0-0-git")
        base = server.url("http", "")
        for page in ("", "closed.git", "closed.git/raw-file/main/f1.txt", "closed.git/json-log"):
            with urllib.request.urlopen(base + page, timeout=30) as answer:
                assert answer.status == 200 and answer.read(), page
        for step in range(3):  # pushes (over git://: plain HTTP takes none without a config)
            commit(client, work, f"pushed{step}.txt", f"{step}\n", f"pushed {step}")
            client.git("push", "-q", server.git_url("closed"), "HEAD:main", cwd=work)
        client.git("--git-dir", str(server.root / "closed.git"), "config", "daemon.uploadarch", "true")
        client.git("archive", f"--remote={server.git_url('closed')}", "-o", str(client.cwd / "a.tar"), "main")
        assert _waited(lambda: _maps_of(pack_dir) == 0, 10), _maps_of(pack_dir)
    finally:
        gc.enable()


def test_a_repack_ends_for_the_service_under_a_reactor_without_signal_handlers(
        make_server: Any, client: Client) -> None:
    """The tests' reactor runs in a thread, without a SIGCHLD handler: a repack whose process
    closed its pipes before it exited used to stay "running" for good (and its repository was
    never repacked again); the repack's own reaper sees it end."""
    from twisted.internet import reactor

    from gateway import maintenance

    server: RunningServer = make_server("fs")
    _url, work = started_repo(server, client, "reaped", push=True)
    git_dir = str(server.root / "reaped.git")
    for step in range(6):
        commit(client, work, "a.txt", f"{step}\n", f"step {step}")
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)
        reactor.callFromThread(maintenance.start_repack, git_dir, "reaped")  # type: ignore[attr-defined]
        deadline = time.monotonic() + 1
        while git_dir not in maintenance.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        deadline = time.monotonic() + 15
        while git_dir in maintenance.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert git_dir not in maintenance.running(), step
    assert_consistent(server, client, "reaped")


def test_refs_that_cannot_be_packed_stay_loose_and_the_next_repack_packs_them(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """git's pack-refs refuses to run past a ``packed-refs.lock`` another git left: that is logged,
    the loose refs stay, pushes go on, and the next repack packs them."""
    from gateway import git_session, maintenance
    from gateway.policy import Maintenance

    monkeypatch.setattr(git_session, "policy_maintenance", lambda _authorizer: Maintenance(auto_pack_limit=2))
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)

    def settled(done: Any) -> bool:
        deadline = time.monotonic() + 60
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(done())

    def repacked() -> list[dict[str, Any]]:
        return [e for e in events if str(e.get("log_format", "")).startswith("repacked {repo}")
                and e.get("repo") == "stuck.git"]

    try:
        server: RunningServer = make_server("fs")
        _url, work = started_repo(server, client, "stuck", push=True)
        git_dir = server.root / "stuck.git"
        (git_dir / "packed-refs.lock").write_text("")
        commit(client, work, "a.txt", "1\n", "step 1")
        client.git("push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/b1", cwd=work)  # the second pack
        assert settled(lambda: [e for e in events if "packing the refs of" in str(e.get("log_format", ""))])
        failed = next(e for e in events if "packing the refs of" in str(e.get("log_format", "")))
        assert failed["repo"] == "stuck.git" and "packed-refs.lock" in failed["errors"]
        assert (git_dir / "refs" / "heads" / "b1").is_file()
        # the repack that follows the refused pack-refs ends, and the commit-graph step after it,
        # before the next push: one running then makes that push start none (on a loaded machine it
        # did, and b1 stayed loose; once the commit-graph step was still running, and that push
        # packed its refs but started no repack)
        assert settled(lambda: len(repacked()) == 1 and not maintenance.running())
        (git_dir / "packed-refs.lock").unlink()
        commit(client, work, "a.txt", "2\n", "step 2")
        client.git("push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/b2", cwd=work)  # two packs again
        assert settled(lambda: not (git_dir / "refs" / "heads" / "b1").exists())
        assert "refs/heads/b1" in (git_dir / "packed-refs").read_text()
        # the repack after them ends before fsck reads the packs (it removes the ones it replaced)
        assert settled(lambda: len(repacked()) == 2)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert_consistent(server, client, "stuck")


def test_refs_packed_while_pushes_create_and_delete_branches_lose_nothing(make_server: Any, client: Client) -> None:
    """``git pack-refs`` runs under hgwire's ref-update lock: pushes that create a branch and delete
    the one before (a packed ref's deletion rewrites ``packed-refs``) land whole while it runs
    again and again beside them."""
    import threading

    server: RunningServer = make_server("fs")
    url, work = started_repo(server, client, "race", push=True)
    stop = threading.Event()
    packed: list[bool] = []

    def pack_again_and_again() -> None:
        while not stop.is_set():
            packed.append(server.backend.open("race").pack_refs())

    packer = threading.Thread(target=pack_again_and_again)
    packer.start()
    try:
        for step in range(12):
            commit(client, work, "a.txt", f"{step}\n", f"step {step}")
            refspecs = ["HEAD:main", f"HEAD:refs/heads/b{step}"] + ([f":refs/heads/b{step - 1}"] if step else [])
            client.git("push", "-q", "origin", *refspecs, cwd=work)
    finally:
        stop.set()
        packer.join()
    assert packed and all(packed)
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    served = dict(reversed(line.split("\t")) for line in client.git("ls-remote", url).stdout.splitlines())
    assert {ref: sha for ref, sha in served.items() if ref != "HEAD"} == {"refs/heads/main": head,
                                                                          "refs/heads/b11": head}
    assert_consistent(server, client, "race")


@pytest.mark.parametrize("version", ["0", "2"])
def test_hidden_refs_are_hidden_as_by_git(make_server: Any, client: Client, version: str) -> None:
    """``transfer.hideRefs``/``uploadpack.hideRefs``/``receive.hideRefs`` of the repository's config."""
    server: RunningServer = make_server("fs")
    url, work = started_repo(server, client, "hide")
    refs = ("main", "HEAD:refs/pull/1/head", "HEAD:refs/pull/2/head", "HEAD:refs/keep/x", "HEAD:refs/tags/t")
    client.git("push", "-q", "origin", *refs, cwd=work)
    bare = server.root / "hide.git"
    for key, value in (("transfer.hideRefs", "refs/pull"), ("transfer.hideRefs", "!refs/pull/2"),
                       ("uploadpack.hideRefs", "refs/keep/"), ("receive.hideRefs", "refs/tags")):
        client.git("--git-dir", str(bare), "config", "--add", key, value)
    ours = client.git("-c", f"protocol.version={version}", "ls-remote", url).stdout
    theirs = client.git("-c", f"protocol.version={version}", "ls-remote", f"file://{bare}").stdout
    assert ours == theirs
    assert "refs/pull/2/head" in ours and "refs/pull/1/head" not in ours and "refs/keep/x" not in ours
    denied = client.git("push", "origin", "HEAD:refs/pull/1/head", "HEAD:refs/tags/u", cwd=work, check=False)
    assert denied.stderr.count("(deny updating a hidden ref)") == 2, denied.stderr
    assert "refs/tags/u" not in client.git("--git-dir", str(bare), "show-ref").stdout


@pytest.mark.parametrize("version", ["0", "2"])
def test_hidden_refs_take_the_config_files_order_across_sections(make_server: Any, client: Client,
                                                                 version: str) -> None:
    """A ``transfer.hideRefs`` below an ``uploadpack.hideRefs``/``receive.hideRefs`` in the config
    file wins where both match, as in git (hgwire took all of ``transfer``'s values first: it showed,
    and let a push change, the refs the later value hides)."""
    server: RunningServer = make_server("fs")
    url, work = started_repo(server, client, "order")
    client.git("push", "-q", "origin", "main", "HEAD:refs/pull/1/head", "HEAD:refs/pull/2/head", cwd=work)
    bare = server.root / "order.git"
    for key, value in (("uploadpack.hideRefs", "!refs/pull/1"), ("receive.hideRefs", "!refs/pull/2"),
                       ("transfer.hideRefs", "refs/pull")):
        client.git("--git-dir", str(bare), "config", "--add", key, value)
    ours = client.git("-c", f"protocol.version={version}", "ls-remote", url).stdout
    theirs = client.git("-c", f"protocol.version={version}", "ls-remote", f"file://{bare}").stdout
    assert ours == theirs
    assert "refs/pull/" not in ours and "refs/heads/main" in ours
    commit(client, work, "o.txt", "o\n", "o")
    denied = client.git("push", "origin", "HEAD:refs/pull/2/head", cwd=work, check=False)
    assert "(deny updating a hidden ref)" in denied.stderr, denied.stderr
    assert client.git("--git-dir", str(bare), "rev-parse", "refs/pull/2/head").stdout.strip() != \
        client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _rejections(stderr: str) -> list[str]:
    return sorted(line.strip() for line in stderr.splitlines() if "[remote rejected]" in line)


@pytest.mark.parametrize(("settings", "pushes"), [
    ({"receive.denyNonFastForwards": "true", "receive.denyDeletes": "yes"},
     ["+HEAD~1:main", ":side", ":refs/tags/lt", "+HEAD~1:refs/notes/x", "HEAD:fresh"]),
    ({"receive.denyNonFastForwards": "1", "receive.denyDeleteCurrent": "warn"}, [":main", "+HEAD:side"]),
    ({"receive.denyDeleteCurrent": "false", "receive.denyDeletes": "off"}, [":main"]),
    ({"receive.denyDeletes": "nope"}, [":side", "HEAD:fresh"]),
])
def test_receive_deny_settings_refuse_what_git_refuses(
        make_server: Any, client: Client, settings: dict[str, str], pushes: list[str]) -> None:
    """The repository's ``receive.deny*`` settings: the same pushes to hgwire and to git's own
    receive-pack (``file://``) of a copy are refused for the same refs with the same reasons."""
    server: RunningServer = make_server("fs")
    url, work = started_repo(server, client, "deny")
    commit(client, work, "b.txt", "b\n", "b")
    client.git("tag", "lt", cwd=work)
    client.git("push", "-q", "origin", "HEAD:main", "HEAD:side", "HEAD:refs/notes/x", "lt", cwd=work)
    bare = server.root / "deny.git"
    for key, value in settings.items():
        client.git("--git-dir", str(bare), "config", key, value)
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    ours = client.git("push", url, *pushes, cwd=work, check=False)
    theirs = client.git("push", f"file://{copy}", *pushes, cwd=work, check=False)
    if "nope" in settings.values():  # git's receive-pack dies as it starts; so is hgwire's push refused, saying why
        assert theirs.returncode == 128 and "bad boolean config value 'nope'" in theirs.stderr, theirs.stderr
        assert ours.returncode == 128 and "bad boolean config value 'nope' for 'receive.denydeletes'" in ours.stderr, \
            ours.stderr
    else:
        assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
        assert _rejections(ours.stderr) == _rejections(theirs.stderr), (ours.stderr, theirs.stderr)
        refs = remote_refs(client, "default", url)
        head = refs.pop("HEAD", None)  # git leaves HEAD naming a deleted branch; hgwire points it at one left
        assert head is None or head in refs.values()
        assert refs == {name: oid for name, oid in remote_refs(client, "default", f"file://{copy}").items()
                        if name != "HEAD"}
    assert_consistent(server, client, "deny")


def test_receive_max_input_size_refuses_a_larger_pack_as_git_does(make_server: Any, client: Client) -> None:
    """The repository's ``receive.maxInputSize``: a pack over it is refused (``unpacker error``, as by
    git's own receive-pack of a copy), nothing lands; one under it goes through; a value git cannot
    read refuses the push naming it."""
    server: RunningServer = make_server("fs")
    url, work = started_repo(server, client, "bounded", push=True)
    (work / "big.bin").write_bytes(os.urandom(20_000))
    client.git("add", "big.bin", cwd=work)
    client.git("commit", "-qm", "big", cwd=work)
    bare = server.root / "bounded.git"
    client.git("--git-dir", str(bare), "config", "receive.maxInputSize", "10k")
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    packs = sorted(p.name for p in (bare / "objects" / "pack").iterdir())
    ours = client.git("push", url, "HEAD:main", cwd=work, check=False)
    theirs = client.git("push", f"file://{copy}", "HEAD:main", cwd=work, check=False)
    assert ours.returncode == theirs.returncode == 1
    assert _rejections(ours.stderr) == _rejections(theirs.stderr) == ["! [remote rejected] HEAD -> main (unpacker error)"]
    assert "pack exceeds maximum allowed size (receive.maxInputSize = 10240 bytes)" in ours.stderr, ours.stderr
    assert sorted(p.name for p in (bare / "objects" / "pack").iterdir()) == packs  # nothing kept
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")

    client.git("--git-dir", str(bare), "config", "receive.maxInputSize", "lots")
    refused = client.git("push", url, "HEAD:main", cwd=work, check=False)
    assert "bad numeric config value 'lots' for 'receive.maxinputsize'" in refused.stderr, refused.stderr
    client.git("--git-dir", str(bare), "config", "receive.maxInputSize", "1m")
    client.git("push", "-q", url, "HEAD:main", cwd=work)
    assert_consistent(server, client, "bounded")


def test_receive_deny_current_branch_ignore_lets_the_checked_out_branch_move(
        make_server: Any, client: Client) -> None:
    """``receive.denyCurrentBranch = ignore`` in a repository with a working tree, as in git."""
    server: RunningServer = make_server("fs")
    work = server.root / "tree"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("config", "receive.denyCurrentBranch", "ignore", cwd=work)
    clone = client.cwd / "tree-clone"
    client.git("clone", "-q", server.git_url("tree"), str(clone))
    tip = commit(client, clone, "b.txt", "b\n", "b")
    client.git("push", "-q", "origin", "HEAD:main", cwd=clone)
    assert client.git("rev-parse", "main", cwd=work).stdout.strip() == tip
    client.git("--git-dir", str(work / ".git"), "fsck", "--full")


def test_update_instead_moves_a_clean_working_tree_and_refuses_a_dirty_one_as_git_does(
        make_server: Any, client: Client) -> None:
    """``receive.denyCurrentBranch = updateInstead`` (push-to-deploy): a push to the checked-out
    branch updates a clean tree's files and index; unstaged or staged changes refuse it with git's
    own words (the same push to a copy through git's receive-pack says the same), and nothing moves."""
    server: RunningServer = make_server("fs")
    work = server.root / "site"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("config", "receive.denyCurrentBranch", "updateInstead", cwd=work)
    clone = client.cwd / "site-clone"
    client.git("clone", "-q", server.git_url("site"), str(clone))
    client.git("rm", "-q", "a.txt", cwd=clone)
    tip = commit(client, clone, "b/b.txt", "b\n", "b")
    client.git("push", "-q", "origin", "HEAD:main", cwd=clone)
    assert client.git("rev-parse", "main", cwd=work).stdout.strip() == tip
    assert sorted(p.name for p in work.iterdir()) == [".git", "b"] and (work / "b" / "b.txt").read_text() == "b\n"
    assert client.git("status", "--porcelain", cwd=work).stdout == ""

    commit(client, clone, "c.txt", "c\n", "c")
    for dirty, words in ((lambda: (work / "b" / "b.txt").write_text("edited\n"), "unstaged"),
                         (lambda: client.git("add", "b/b.txt", cwd=work), "staged")):
        dirty()
        copy = client.cwd / f"copy-{words}"
        client.run("cp", "-a", str(work), str(copy))
        ours = client.git("push", "origin", "HEAD:main", cwd=clone, check=False)
        theirs = client.git("push", f"file://{copy}", "HEAD:main", cwd=clone, check=False)
        assert ours.returncode == theirs.returncode == 1
        assert _rejections(ours.stderr) == _rejections(theirs.stderr) == [
            f"! [remote rejected] HEAD -> main (Working directory has {words} changes)"], ours.stderr
        assert client.git("rev-parse", "main", cwd=work).stdout.strip() == tip
        assert (work / "b" / "b.txt").read_text() == "edited\n" and not (work / "c.txt").exists()
    ours = client.git("push", "--atomic", "origin", "HEAD:main", "HEAD:side", cwd=clone, check=False)
    theirs = client.git("push", "--atomic", f"file://{copy}", "HEAD:main", "HEAD:side", cwd=clone, check=False)
    assert _rejections(ours.stderr) == _rejections(theirs.stderr), (ours.stderr, theirs.stderr)
    assert "side" not in remote_refs(client, "default", server.git_url("site"))
    client.git("--git-dir", str(work / ".git"), "fsck", "--full")


@pytest.mark.parametrize("proto", list(PROTOCOLS))
def test_ls_remote_matches_git_upload_pack(make_server: Any, client: Client, proto: str) -> None:
    """The same fs repository listed by hgwire and by git's own upload-pack: identical output."""
    server: RunningServer = make_server("fs")
    server.backend.create("same", Kind.GIT)
    work = client.cwd / "same"
    git(client, proto, "clone", "-q", server.git_url("same"), str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("branch", "feature/x", cwd=work)
    client.git("tag", "-a", "v1", "-m", "v1", cwd=work)
    client.git("tag", "-a", "v1-of-v1", "-m", "nested", "v1", cwd=work)
    client.git("tag", "light", cwd=work)
    commit(client, work, "b.txt", "b\n", "b")
    git(client, proto, "push", "-q", "origin", "--all", cwd=work)
    git(client, proto, "push", "-q", "origin", "--tags", cwd=work)
    ours = git(client, proto, "ls-remote", server.git_url("same"))
    theirs = git(client, proto, "ls-remote", str(server.root / "same.git"))
    assert ours == theirs


def test_a_push_from_a_shallow_clone_is_refused_as_git_refuses_it(make_server: Any, client: Client) -> None:
    """History that stops at the clone's shallow boundary cannot land where that history is not:
    git's receive-pack says "shallow update not allowed"; where the repository holds it, it lands."""
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "full", push=True)
    commit(client, work, "b.txt", "b\n", "b")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    shallow = client.cwd / "shallow"
    client.git("clone", "-q", "--depth", "1", url, str(shallow))
    commit(client, shallow, "c.txt", "c\n", "c")
    server.backend.create("empty", Kind.GIT)
    copy = client.cwd / "copy.git"
    client.git("init", "-q", "--bare", str(copy))
    ours = client.git("push", server.git_url("empty"), "HEAD:main", cwd=shallow, check=False)
    theirs = client.git("push", f"file://{copy}", "HEAD:main", cwd=shallow, check=False)
    assert ours.returncode == theirs.returncode != 0
    assert "! [remote rejected] HEAD -> main (shallow update not allowed)" in ours.stderr, ours.stderr
    assert "(shallow update not allowed)" in theirs.stderr, theirs.stderr
    assert remote_refs(client, "default", server.git_url("empty")) == {}
    client.git("push", "-q", url, "HEAD:main", cwd=shallow)
    assert_consistent(server, client, "full")


def test_a_refused_request_is_read_to_its_end_before_the_connection_closes(make_server: Any) -> None:
    """A client that writes on before reading (``git archive`` sends its arguments straight after
    the request line) still reads the ``ERR``: the server ends its side and drops what comes until
    the client closes, instead of closing at once, which answers those bytes with a reset."""
    import socket

    server = make_server("fs", git=[LOOPBACK])

    def pkt(data: bytes) -> bytes:
        return b"%04x" % (len(data) + 4) + data

    for request in (pkt(b"git-upload-archive /nope.git\0host=127.0.0.1\0"),  # a session's refusal
                    pkt(b"git-upload-pack /-bad.git\0host=127.0.0.1\0")):  # the request's own
        with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
            sock.sendall(request)
            time.sleep(0.3)  # the refusal has been written (and, before, the socket closed)
            for _ in range(20):
                sock.sendall(pkt(b"argument --format=tar\n") * 50)
            sock.sendall(b"0000")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"00") and answer[4:8] == b"ERR ", answer
