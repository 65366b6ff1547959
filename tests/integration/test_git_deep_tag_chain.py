"""A ref naming a chain of tags of tags longer than hgwire's bound (32 before): ``git daemon`` lists a
chain of 40 peeled (``deep^{}``), clones it and follows it from a fetch of the commit it ends at,
where every clone, fetch and ``ls-remote`` of the repository failed ``fatal: remote error: tag chain
longer than 32``, every other ref unserved.  A chain of 40 is now served as git serves it; one
longer than ``MAX_PEEL`` (256) is listed without its peeled value, the operator told, and the
repository served: its clone is git's, a fetch of its commit does not follow it (a client does not
know where it ends), ``git fetch --tags`` fetches it."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from twisted.logger import formatEvent

from backends.git_objects import MAX_PEEL
from backends.interfaces import Kind
from backends.lru import LruCache
from gateway import git_session
from tests.conftest import LOOPBACK, Client, RunningServer, log_events
from tests.integration.test_git_daemon import commit


def write_tag_chain(repo: Path, target: str, count: int) -> list[str]:
    """``count`` tags, each of the one before, the first of the commit ``target``, written as loose
    objects of the bare repository ``repo`` (as ``git mktag`` writes them, without a process each):
    their ids in order."""
    tags: list[str] = []
    kind = "commit"
    for n in range(1, count + 1):
        body = f"object {target}\ntype {kind}\ntag d{n}\ntagger a <a@b> 1700000000 +0000\n\nd\n".encode()
        raw = b"tag %d\0" % len(body) + body
        target, kind = hashlib.sha1(raw).hexdigest(), "tag"
        path = repo / "objects" / target[:2] / target[2:]
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(zlib.compress(raw))
        tags.append(target)
    return tags


def _deep_repo(client: Client, repo: Path, count: int, stored: str) -> tuple[str, str]:
    """A bare repository with main, a tag ``light`` of it and ``refs/tags/deep`` naming a chain of
    ``count`` tags ending at main, loose or packed (objects and refs, the ``^`` lines dropped):
    (main, deep)."""
    client.git("init", "-q", "--bare", str(repo))
    client.git("fast-import", "--quiet", cwd=repo, input=(
        b"blob\nmark :1\ndata 2\nb\ncommit refs/heads/main\nmark :2\ncommitter a <a@b> 1700000000 +0000\n"
        b"data 2\nc\nM 644 :1 f\ntag light\nfrom :2\ntagger a <a@b> 1700000000 +0000\ndata 2\nt\n"))
    main = client.git("rev-parse", "main", cwd=repo).stdout.strip()
    deep = write_tag_chain(repo, main, count)[-1]
    client.git("update-ref", "refs/tags/deep", deep, cwd=repo)
    if stored == "packed":
        client.git("repack", "-adq", cwd=repo)
        client.git("pack-refs", "--all", cwd=repo)
        lines = [line for line in (repo / "packed-refs").read_text().splitlines() if not line.startswith(("#", "^"))]
        (repo / "packed-refs").write_text("".join(line + "\n" for line in lines))
    return main, deep


@pytest.mark.parametrize("stored", ["loose", "packed"])
@pytest.mark.parametrize("count", [40, MAX_PEEL + 1])
@pytest.mark.parametrize("version", ["0", "2"])
def test_a_deep_tag_chain_leaves_the_repository_served(make_server: Callable[..., RunningServer], client: Client,
                                                       monkeypatch: pytest.MonkeyPatch, version: str, count: int,
                                                       stored: str) -> None:
    monkeypatch.setattr(git_session, "UNPEELED_TOLD", LruCache(8))  # (told once in ten minutes: each test anew)
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "deep.git"
    main, deep = _deep_repo(client, repo, count, stored)
    url = server.url("git", "deep.git")
    proto = ("-c", f"protocol.version={version}")
    with log_events() as events:
        listed = client.git(*proto, "ls-remote", url).stdout.splitlines()
        reference = client.git(*proto, "ls-remote", f"file://{repo}").stdout.splitlines()
        server.settled()
    warned = [formatEvent(e) for e in events if "tags of tags" in formatEvent(e)]
    assert f"{main}\trefs/tags/deep^{{}}" in reference
    if count <= MAX_PEEL:
        assert listed == reference
        assert warned == []
    else:
        assert listed == [line for line in reference if line != f"{main}\trefs/tags/deep^{{}}"]
        assert len(warned) == 1 and "refs/tags/deep" in warned[0] and f"more than {MAX_PEEL}" in warned[0]

    ours, theirs = client.cwd / "ours", client.cwd / "theirs"
    client.git(*proto, "clone", "-q", "--mirror", url, str(ours))
    client.git(*proto, "clone", "-q", "--mirror", f"file://{repo}", str(theirs))
    assert client.git("show-ref", cwd=ours).stdout == client.git("show-ref", cwd=theirs).stdout
    client.git("fsck", "--full", cwd=ours)
    assert client.git("rev-parse", "deep^{}", cwd=ours).stdout.strip() == main

    fetched = client.cwd / "fetched"
    client.git("init", "-q", "--bare", str(fetched))
    client.git(*proto, "fetch", "-q", url, "refs/heads/main:refs/heads/main", cwd=fetched)
    tags = client.git("tag", cwd=fetched).stdout.split()
    assert tags == (["deep", "light"] if count <= MAX_PEEL else ["light"])  # (include-tag, or a fetch of it)
    client.git(*proto, "fetch", "-q", "--tags", url, cwd=fetched)
    assert client.git("rev-parse", "deep", "deep^{}", cwd=fetched).stdout.split() == [deep, main]
    client.git("fsck", "--full", cwd=fetched)


def test_a_push_writes_info_refs_beside_a_too_long_chain(make_server: Callable[..., RunningServer],
                                                        client: Client) -> None:
    # receive.updateServerInfo peeled each ref by itself: 'tag chain longer than ...' escaped the
    # push once its refs were updated
    server = make_server("fs", git=[LOOPBACK])
    server.backend.create("r", Kind.GIT)
    git_dir = server.root / "r.git"
    url = server.git_url("r")
    work = client.cwd / "work"
    client.git("clone", "-q", url, str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    main = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    deep = write_tag_chain(git_dir, main, MAX_PEEL + 1)[-1]
    client.git("update-ref", "refs/tags/deep", deep, cwd=git_dir)
    client.git("--git-dir", str(git_dir), "config", "receive.updateServerInfo", "true")
    commit(client, work, "b.txt", "b\n", "b")
    pushed = client.git("push", "origin", "HEAD:main", cwd=work)
    assert "error" not in pushed.stderr.lower() and "warning" not in pushed.stderr.lower(), pushed.stderr
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert (git_dir / "info" / "refs").read_text() == f"{head}\trefs/heads/main\n{deep}\trefs/tags/deep\n"


def test_a_filtered_clone_of_a_chain_too_deep_to_walk_says_what_to_do(make_server: Callable[..., RunningServer],
                                                                     client: Client) -> None:
    # dulwich's walk follows a wanted tag's chain by recursion: past some 900 tags it raised
    # RecursionError, which the client saw as 'early EOF' after an internal error; git daemon serves it
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "huge.git"
    main, _deep = _deep_repo(client, repo, 1500, "packed")
    client.git("config", "uploadpack.allowFilter", "true", cwd=repo)
    url = server.url("git", "huge.git")
    failed = client.git("clone", "-q", "--bare", "--filter=blob:none", url, str(client.cwd / "filtered"), check=False)
    assert failed.returncode != 0
    assert "remote: a wanted tag heads a chain of tags of tags too long for this server to walk here" in failed.stderr
    assert "fetch it without --filter" in failed.stderr
    client.git("clone", "-q", "--bare", "--filter=blob:none", "--no-tags", url, str(client.cwd / "branches"))
    client.git("clone", "-q", "--bare", url, str(client.cwd / "whole"))
    assert client.git("rev-parse", "deep^{}", cwd=client.cwd / "whole").stdout.strip() == main
