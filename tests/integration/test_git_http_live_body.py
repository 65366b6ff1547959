"""A push over HTTP is read as it arrives (``gateway.live_body``): its pack is scanned into the
push's quarantine while the client still sends it, as over git:// and SSH, instead of after
twisted.web spooled the whole body.  What it must not change: an answer decided before the body
is in (401, 404, 415) still reaches a client sending a large body, a client gone in the middle
leaves nothing behind, and a body over the limit is refused with the repository as it was.

Raw sockets send the body in parts (chunked, as git sends a large push) so that the test can
look at the server between them.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest
from dulwich.objects import Blob, Tree

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_bad_input import (
    _commit,
    _leftovers,
    _pack,
    _partial_packs,
    main_of,
    push_commands,
    seed,
    still_serving,
)

AUTH = "Basic " + base64.b64encode(b"alice:s3cret").decode()
PUSH_TYPE = "application/x-git-receive-pack-request"


@pytest.fixture
def web(make_server: Callable[..., RunningServer], tmp_path: Path) -> RunningServer:
    return _server(make_server, tmp_path)


def _server(make_server: Callable[..., RunningServer], tmp_path: Path, **settings: object) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    return make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd), **settings)


def _new_history(tip: str, size: int = 400_000) -> tuple[str, bytes]:
    """A commit on ``tip`` with blobs of ``size`` bytes that do not compress, and its pack."""
    blobs = [Blob.from_string(os.urandom(size // 8)) for _ in range(8)]
    tree = Tree()
    for i, blob in enumerate(blobs):
        tree.add(b"f%d.bin" % i, 0o100644, blob.id)
    commit = _commit(tree.id, tip)
    return commit.id.decode(), _pack([*blobs, tree, commit])


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _post_head(server: RunningServer, path: str = "/good.git/git-receive-pack",
               content_type: str = PUSH_TYPE) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port('http')}\r\nAuthorization: {AUTH}\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()


def _wait_for(predicate: Callable[[], object], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _answer(sock: socket.socket) -> bytes:
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


def test_the_pack_of_a_push_over_http_is_scanned_while_it_arrives(web: RunningServer, client: Client) -> None:
    tip = seed(web, client)
    new, pack = _new_history(tip)
    objects = web.repo_path("good.git") / "objects"
    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=20) as sock:
        sock.sendall(_post_head(web) + _chunk(push_commands(tip, new) + pack[: len(pack) // 2]))
        # half the pack is in the quarantine before the client has sent the rest
        _wait_for(lambda: _partial_packs(objects), "the pack is written as it arrives, in the push's quarantine")
        assert main_of(web, client) == tip
        sock.sendall(_chunk(pack[len(pack) // 2:]) + b"0\r\n\r\n")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert b"unpack ok" in answer and b"ok refs/heads/main" in answer, answer[-300:]
    assert main_of(web, client) == new
    assert not _leftovers(objects)
    still_serving(web, client)


def test_a_client_gone_in_the_middle_of_its_body_leaves_nothing_behind(web: RunningServer, client: Client) -> None:
    tip = seed(web, client)
    new, pack = _new_history(tip)
    objects = web.repo_path("good.git") / "objects"
    before = sorted(p.relative_to(objects) for p in objects.rglob("*"))
    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=20) as sock:
        sock.sendall(_post_head(web) + _chunk(push_commands(tip, new) + pack[: len(pack) // 2]))
        _wait_for(lambda: _partial_packs(objects), "the pack is written as it arrives")
    _wait_for(lambda: not _leftovers(objects), "the partial pack and its quarantine are removed")
    assert sorted(p.relative_to(objects) for p in objects.rglob("*")) == before
    assert main_of(web, client) == tip
    still_serving(web, client)


@pytest.mark.parametrize("path, headers, status, said", [
    ("/good.git/git-receive-pack", {}, 401, b""),                                 # no credentials
    ("/nope.git/git-receive-pack", {"Authorization": AUTH}, 200, b"ng refs/heads/main repository nope.git not found"),
    ("/good.git/git-receive-pack", {"Authorization": AUTH, "Content-Type": "text/plain"}, 415, b"expected"),
])
def test_an_answer_decided_before_a_large_body_is_in_reaches_the_client(
        web: RunningServer, client: Client, path: str, headers: dict[str, str], status: int, said: bytes) -> None:
    """The body is read on and dropped past the answer: a body larger than what is held unread
    before the connection is paused (``gateway.live_body.HIGH_WATER``) must not wedge it."""
    tip = seed(web, client)
    new, pack = _new_history(tip, size=3_000_000)
    conn = http.client.HTTPConnection("127.0.0.1", web.port("http"), timeout=20)
    try:
        conn.request("POST", path, body=push_commands(tip, new) + pack,
                     headers={"Content-Type": PUSH_TYPE, **headers})
        response = conn.getresponse()
        body = response.read()
        assert response.status == status and said in body, (response.status, body[:300])
        # the same connection serves the next request
        conn.request("GET", "/good.git/info/refs?service=git-upload-pack")
        again = conn.getresponse()
        assert again.status == 200 and tip.encode() in again.read()
    finally:
        conn.close()
    assert main_of(web, client) == tip
    assert not _leftovers(web.repo_path("good.git") / "objects")


def test_a_body_over_the_limit_is_refused_while_it_arrives_and_changes_nothing(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["alice"]\n[limits]\nmax_request_body = 600000\n')
    server = _server(make_server, tmp_path, config_file=str(policy))
    server.backend.create("good", Kind.GIT)  # seeded through the file system: the policy wants a user to push
    work = tmp_path / "seed"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "f.txt").write_text("content\n")
    client.git("add", "f.txt", cwd=work)
    client.git("commit", "-qm", "seed", cwd=work)
    client.git("push", "-q", str(server.repo_path("good.git")), "main", cwd=work)
    tip = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    new, pack = _new_history(tip, size=1_000_000)
    objects = server.repo_path("good.git") / "objects"
    with socket.create_connection(("127.0.0.1", server.port("http")), timeout=20) as sock:
        sock.sendall(_post_head(server) + _chunk(push_commands(tip, new) + pack[:400_000]))
        _wait_for(lambda: _partial_packs(objects), "the pack is written as it arrives")
        try:
            sock.sendall(_chunk(pack[400_000:]) + b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed while it was sent
        try:
            answer = _answer(sock)
        except ConnectionResetError:
            answer = b""
    if answer:
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
        assert b"larger than 600000 bytes" in answer
    _wait_for(lambda: not _leftovers(objects), "the partial pack and its quarantine are removed")
    assert main_of(server, client) == tip
    still_serving(server, client)


def test_a_real_push_over_http_and_the_next_one_on_the_same_server(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """git sends a body over ``http.postBuffer`` chunked (after a probe); a small one whole."""
    server = _server(make_server, tmp_path)
    server.backend.create("r.git", Kind.GIT)
    url = f"http://alice:s3cret@127.0.0.1:{server.port('http')}/r.git"
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    for name, size in (("big.bin", 3_000_000), ("small.txt", 0)):
        path = work / name
        path.write_bytes(os.urandom(size) if size else b"small\n")
        client.git("add", name, cwd=work)
        client.git("commit", "-qm", name, cwd=work)
        client.git("push", "-q", url, "main", cwd=work)
        client.git("--git-dir", str(server.root / "r.git"), "fsck", "--full")
        assert client.git("ls-remote", url, "refs/heads/main").stdout.split("\t")[0] == \
            client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
