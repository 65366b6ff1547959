"""git smart HTTP with the real git client: clone/fetch/push, Basic auth, bad requests."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest
from twisted.logger import formatEvent

from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer, log_events


@pytest.fixture(params=BACKENDS)
def web(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer], tmp_path: Path) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    return make_server(request.param, http=[LOOPBACK], htpasswd=str(htpasswd), create_on_push=True)


def _url(server: RunningServer, name: str, auth: str = "") -> str:
    return f"http://{auth + '@' if auth else ''}127.0.0.1:{server.port('http')}/{name}"


def _commit(client: Client, work: Path, name: str, text: str) -> str:
    (work / name).write_text(text)
    client.git("add", name, cwd=work)
    client.git("commit", "-qm", f"add {name}", cwd=work)
    return client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _raw(server: RunningServer, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_push_needs_credentials_then_clone_and_fetch(web: RunningServer, client: Client) -> None:
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    head = _commit(client, work, "a.txt", "one\n" * 1000)

    anonymous = client.git("push", _url(web, "app.git"), "main", cwd=work, check=False)
    assert anonymous.returncode != 0
    assert "could not read Username" in anonymous.stderr  # git reached its credential prompt path

    wrong = client.git("push", _url(web, "app.git", "alice:nope"), "main", cwd=work, check=False)
    assert wrong.returncode != 0
    assert "Authentication failed" in wrong.stderr

    client.git("push", _url(web, "app.git", "alice:s3cret"), "main", cwd=work)

    for version in ("0", "2"):
        clone = client.cwd / f"clone-v{version}"
        client.git("-c", f"protocol.version={version}", "clone", "-q", _url(web, "app"), str(clone))
        assert client.git("rev-parse", "HEAD", cwd=clone).stdout.strip() == head

    newer = _commit(client, work, "b.txt", "two\n")
    client.git("push", _url(web, "app.git", "alice:s3cret"), "main", cwd=work)
    client.git("pull", "-q", "--ff-only", cwd=client.cwd / "clone-v0")
    assert client.git("rev-parse", "HEAD", cwd=client.cwd / "clone-v0").stdout.strip() == newer


def test_missing_repository_is_404(web: RunningServer, client: Client) -> None:
    result = client.git("ls-remote", _url(web, "missing.git"), check=False)
    assert result.returncode != 0
    assert "not found" in result.stderr


def test_read_only_refuses_push(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd-ro"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("memory", http=[LOOPBACK], htpasswd=str(htpasswd), read_only=True, create_on_push=True)
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    _commit(client, work, "a.txt", "x\n")
    result = client.git("push", _url(server, "app.git", "alice:s3cret"), "main", cwd=work, check=False)
    assert result.returncode != 0
    assert "read-only" in result.stderr
    # no user may push: an anonymous push is told so at once, not asked for a password first
    status, headers, body = _raw(server, "GET", "/app.git/info/refs?service=git-receive-pack")
    assert status == 403 and "www-authenticate" not in headers and b"read-only" in body, (status, headers, body)


def test_smart_headers(web: RunningServer) -> None:
    status, headers, body = _raw(web, "GET", "/x.git/info/refs?service=git-upload-pack")
    assert status == 404
    status, headers, body = _raw(web, "GET", "/x.git/info/refs?service=git-receive-pack")
    assert status == 401
    assert headers["www-authenticate"] == 'Basic realm="hgwire"'


def test_bad_requests_then_still_serving(web: RunningServer, client: Client) -> None:
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    _commit(client, work, "a.txt", "x\n")
    client.git("push", _url(web, "r.git", "alice:s3cret"), "main", cwd=work)

    status, headers, body = _raw(web, "GET", "/r.git/info/refs?service=git-upload-pack")
    assert status == 200
    assert headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert headers["cache-control"] == "no-cache, max-age=0, must-revalidate"
    assert headers["pragma"] == "no-cache"
    assert body.startswith(b"001e# service=git-upload-pack\n0000")

    request_type = {"Content-Type": "application/x-git-upload-pack-request"}
    assert _raw(web, "POST", "/r.git/git-upload-pack", b"0000", {"Content-Type": "text/plain"})[0] == 415
    bad_gzip = {**request_type, "Content-Encoding": "gzip"}
    status, _, body = _raw(web, "POST", "/r.git/git-upload-pack", b"not gzip at all", bad_gzip)
    assert (status, body) == (400, b"malformed gzip request body\n")
    truncated = gzip.compress(b"0000" * 100)[:-12]
    assert _raw(web, "POST", "/r.git/git-upload-pack", truncated, bad_gzip)[0] == 400
    assert _raw(web, "POST", "/r.git/git-upload-pack", b"x", {**request_type, "Content-Encoding": "br"})[0] == 415
    assert _raw(web, "GET", "/r.git/info/refs?service=git-bogus")[0] == 403

    status, _, body = _raw(web, "POST", "/r.git/git-upload-pack", gzip.compress(b"0000"), bad_gzip)
    assert status == 200

    client.git("clone", "-q", _url(web, "r.git"), str(client.cwd / "after"))


@pytest.mark.parametrize("version", ["0", "2"])
def test_protocol_version_is_negotiated(web: RunningServer, client: Client, version: str) -> None:
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    head = _commit(client, work, "a.txt", "x\n")
    client.git("push", _url(web, "v.git", "alice:s3cret"), "main", cwd=work)
    clone = client.cwd / "clone"
    result = client.git("-c", f"protocol.version={version}", "clone", _url(web, "v.git"), str(clone),
                        env={"GIT_TRACE_PACKET": "1"})
    assert client.git("rev-parse", "HEAD", cwd=clone).stdout.strip() == head
    v2_seen = "< version 2" in result.stderr and "> command=fetch" in result.stderr
    assert v2_seen == (version == "2"), result.stderr[-2000:]
    client.git("-c", f"protocol.version={version}", "fetch", "-q", "origin", cwd=clone)


def test_v2_info_refs_has_no_service_line(web: RunningServer, client: Client) -> None:
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    _commit(client, work, "a.txt", "x\n")
    client.git("push", _url(web, "v2.git", "alice:s3cret"), "main", cwd=work)
    status, headers, body = _raw(web, "GET", "/v2.git/info/refs?service=git-upload-pack",
                                 headers={"Git-Protocol": "version=2"})
    assert status == 200
    assert headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert body.startswith(b"000eversion 2\n")
    status, _, body = _raw(web, "GET", "/v2.git/info/refs?service=git-receive-pack",
                           headers={"Git-Protocol": "version=2", "Authorization": "Basic YWxpY2U6czNjcmV0"})
    assert status == 200
    assert body.startswith(b"001f# service=git-receive-pack\n0000")  # receive-pack has no v2
    assert _raw(web, "GET", "/nope.git/info/refs?service=git-upload-pack",
                headers={"Git-Protocol": "version=2"})[0] == 404


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_pushes_one_wins(web: RunningServer, client: Client, round_: int) -> None:
    import subprocess

    base = client.cwd / "base"
    client.git("init", "-q", str(base))
    _commit(client, base, "a.txt", "base\n")
    client.git("push", "-q", _url(web, "race.git", "alice:s3cret"), "main", cwd=base)
    workers = []
    for name in ("left", "right"):
        work = client.cwd / name
        client.git("clone", "-q", _url(web, "race.git"), str(work))
        _commit(client, work, f"{name}.txt", name * 10000)
        workers.append(work)
    pushes = [subprocess.Popen(["git", "push", _url(web, "race.git", "alice:s3cret"), "main"], cwd=work,
                               env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for work in workers]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in pushes]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code != 0)
    assert "rejected" in loser or "failed to push" in loser
    check = client.cwd / "check"
    client.git("clone", "-q", _url(web, "race.git"), str(check))
    client.git("fsck", "--full", cwd=check)
    if web.backend_name == "fs":
        client.git("--git-dir", str(web.repo_path("race.git")), "fsck", "--full")


def test_http_uploadpack_and_receivepack_of_the_config_turn_services_off(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """git http-backend's ``http.uploadpack`` / ``http.receivepack`` of the repository's config:
    ``false`` answers the advertisement with 403 "Service not enabled" over HTTP, where git asks
    first, and a POST with it in git's ``ERR`` (git:// is not concerned); ``true`` never turns on
    what hgwire's own rules refuse."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], git=[LOOPBACK], htpasswd=str(htpasswd), create_on_push=True)
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    _commit(client, work, "a.txt", "a\n")
    client.git("push", "-q", _url(server, "svc.git", "alice:s3cret"), "main", cwd=work)
    bare = server.root / "svc.git"

    client.git("--git-dir", str(bare), "config", "http.receivepack", "false")
    _commit(client, work, "b.txt", "b\n")
    refused = client.git("push", _url(server, "svc.git", "alice:s3cret"), "main", cwd=work, check=False)
    assert refused.returncode != 0 and "returned error: 403" in refused.stderr, refused.stderr
    status, _, body = _raw(server, "GET", "/svc.git/info/refs?service=git-receive-pack",
                           headers={"Authorization": "Basic YWxpY2U6czNjcmV0"})
    assert status == 403 and b"Service not enabled: 'receive-pack'" in body
    client.git("clone", "-q", _url(server, "svc"), str(client.cwd / "still-readable"))
    client.git("push", "-q", server.git_url("svc"), "main", cwd=work)  # git:// reads no http.* setting

    client.git("--git-dir", str(bare), "config", "http.uploadpack", "no")
    closed = client.git("clone", _url(server, "svc"), str(client.cwd / "closed"), check=False)
    assert closed.returncode != 0 and "returned error: 403" in closed.stderr, closed.stderr
    status, _, body = _raw(server, "POST", "/svc.git/git-upload-pack", b"0000",
                           headers={"Content-Type": "application/x-git-upload-pack-request"})
    assert b"Service not enabled: 'upload-pack'" in body, (status, body)  # in git's ERR: headers were sent

    client.git("--git-dir", str(bare), "config", "http.uploadpack", "true")
    client.git("--git-dir", str(bare), "config", "http.receivepack", "true")  # no anonymous pushes for it
    anonymous = client.git("push", _url(server, "svc.git"), "main", cwd=work, check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr
    client.git("clone", "-q", _url(server, "svc"), str(client.cwd / "open-again"))


def test_a_gzip_body_the_temporary_directory_cannot_hold_is_answered_507(
        web: RunningServer, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gzip body is inflated into a spool that is a file in TMPDIR past 1 MiB; a full one was an
    internal error (500).  Now 507 with the reason, and the server serves on."""
    import errno
    import os
    import tempfile

    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    _commit(client, work, "a.txt", "x\n")
    client.git("push", _url(web, "r.git", "alice:s3cret"), "main", cwd=work)

    class FullSpool(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    gzipped = {"Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip"}
    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "SpooledTemporaryFile", FullSpool)  # what the inflater opens
        status, _, body = _raw(web, "POST", "/r.git/git-upload-pack", gzip.compress(b"0000"), gzipped)
    assert status == 507, (status, body)
    assert b"could not hold the request's inflated body (No space left on device in its temporary directory)" in body
    assert _raw(web, "POST", "/r.git/git-upload-pack", gzip.compress(b"0000"), gzipped)[0] == 200


def test_head_of_the_read_only_urls_is_answered_as_get_without_a_body(web: RunningServer) -> None:
    """``HEAD info/refs?service=git-upload-pack`` and ``HEAD ?cmd=capabilities`` were 405 (``Allow:
    GET``); git http-backend and hg serve answer 200 without a body.  A POST-only service stays
    405, and the connection serves the next request."""
    from backends.interfaces import Kind

    web.backend.create("g.git", Kind.GIT)
    web.backend.create("h", Kind.HG)
    conn = http.client.HTTPConnection("127.0.0.1", web.port("http"), timeout=20)
    try:
        for path, content_type, body_start in (
                ("/g.git/info/refs?service=git-upload-pack", "application/x-git-upload-pack-advertisement",
                 b"001e# service=git-upload-pack\n"),
                ("/h?cmd=capabilities", "application/mercurial-0.1", b"batch ")):
            conn.request("HEAD", path)
            head = conn.getresponse()
            assert (head.status, head.read()) == (200, b""), (path, head.status)
            assert head.getheader("Content-Type") == content_type
            conn.request("GET", path)  # on the same connection: no body was left on it
            get = conn.getresponse()
            assert get.status == 200 and get.read().startswith(body_start), path
        for path, allowed in (("/g.git/git-upload-pack", "POST"), ("/g.git/git-receive-pack", "POST")):
            conn.request("HEAD", path)
            refused = conn.getresponse()
            refused.read()
            assert (refused.status, refused.getheader("Allow")) == (405, allowed), path
        conn.request("HEAD", "/h?cmd=unbundle&heads=" + "0" * 40)
        push = conn.getresponse()
        push.read()
        assert push.status == 405
    finally:
        conn.close()


def test_git_over_https_with_alpn(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """git (libcurl), curl and browsers offer ALPN in their TLS handshake; HTTP/1.1 is chosen and a
    push and a clone over ``https://`` work (the listener's guard once hid the protocols, and every
    such handshake failed with an "internal error" alert)."""
    import ssl

    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    from tests.integration.test_hg_http import _tls_files

    ca, key, cert = _tls_files(tmp_path)
    htpasswd = tmp_path / "htpasswd-tls"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"],
                         htpasswd=str(htpasswd), create_on_push=True)
    port = server.port("http")
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2", "http/1.1"])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=20)
    conn.request("GET", "/")
    assert conn.getresponse().status == 200
    assert conn.sock.selected_alpn_protocol() == "http/1.1"  # type: ignore[union-attr]
    conn.close()

    work = client.cwd / "tls-src"
    client.git("init", "-q", str(work))
    head = _commit(client, work, "a.txt", "over tls\n")
    trust = ("-c", f"http.sslCAInfo={ca}")
    client.git(*trust, "push", "-q", f"https://alice:s3cret@127.0.0.1:{port}/tls.git", "main", cwd=work)
    clone = client.cwd / "tls-clone"
    client.git(*trust, "clone", "-q", f"https://127.0.0.1:{port}/tls.git", str(clone))
    assert client.git("rev-parse", "HEAD", cwd=clone).stdout.strip() == head
    client.git("fsck", "--full", cwd=server.repo_path("tls.git"))


@pytest.mark.parametrize(("head", "status", "why"), [
    (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414", b"the request line is longer than"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", b"431", b"a header line is longer"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(600)) + b"\r\n", b"431",
     b"500 headers"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1000) for i in range(300)) + b"\r\n",
     b"431", b"256 KiB in all"),
])
def test_requests_over_the_http_parser_s_limits_are_told_why(web: RunningServer, head: bytes, status: bytes,
                                                           why: bytes) -> None:
    """twisted.web closed the connection without a word for a line too long, and gave a bare 400
    for too many headers."""
    import socket

    with socket.create_connection(("127.0.0.1", web.port("http")), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 " + status + b" ") and why in answer, answer[:300]
    assert _raw(web, "GET", "/")[0] == 200


def test_a_refused_name_says_why(make_server: Callable[..., RunningServer], client: Client) -> None:
    """A name ``validate_name`` refuses is a 404 that says why (git prints it), for every kind of
    URL: git's, hg's, LFS's, hgweb's pages and a repository's own page."""
    server = make_server("fs", http=[LOOPBACK])
    refused = client.git("ls-remote", _url(server, ".hidden.git"), check=False)
    assert refused.returncode != 0
    assert "repository name '.hidden.git' contains a hidden segment '.hidden.git'" in refused.stderr, refused.stderr
    for path, said in [("/-x.git/info/refs?service=git-upload-pack", b"starts with '-'"),
                       ("/~x.git/git-upload-pack", b"~x.git names a home directory (a web server's UserDir)"),
                       ("/a/~x.git/git-upload-pack", b"segment starting with '~'"),
                       ("/a/%2e%2e/b.git/info/refs?service=git-upload-pack", b"contains a '..' segment"),
                       ("/x%1b.git/info/refs?service=git-upload-pack", b"contains a control character"),
                       ("/.h?cmd=capabilities", b"hidden segment"),
                       ("/.h/info/lfs/objects/batch", b"hidden segment"),
                       ("/.h/json-tags", b"hidden segment"),
                       ("/" + "a" * 300, b"is longer than")]:
        status, headers, body = _raw(server, "POST" if "upload-pack" in path and "info" not in path
                                     or "batch" in path else "GET", path)
        assert status == 404 and said in body, (path, status, body)
        assert headers["x-content-type-options"] == "nosniff"


def test_a_post_to_a_repository_that_is_not_there_is_logged_with_why(web: RunningServer) -> None:
    """git reaches this POST only when the repository went after its info/refs; it is told
    ``ERR repository … not found`` (which git shows, where it shows nothing of a 404's body), and
    the log said only "exit 128": it now says why, as git over SSH's log line does."""
    with log_events() as seen:
        status, _, body = _raw(web, "POST", "/gone.git/git-upload-pack", b"0000",
                               {"Content-Type": "application/x-git-upload-pack-request"})
    assert status == 200 and b"ERR repository gone.git not found" in body, (status, body)
    lines = [formatEvent(e) for e in seen if e.get("proto") == "git-http"]
    assert any("git-upload-pack gone.git: error: repository gone.git not found in " in line for line in lines), lines
