"""HTTP behind a reverse proxy: ``[http] trusted_proxies`` and ``X-Forwarded-For``/``-Proto``.

Real git and hg clients go through a small reverse proxy that does what nginx
does with ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`` and
``X-Forwarded-Proto $scheme`` behind TLS: it appends the client's address (here
claimed to be 203.0.113.9) and says https.  hgwire must then know the client by
that address (hooks' ``REMOTE_ADDR`` and ``HG_URL``), take the request as
secure (an hg push over the proxy's https), and believe none of it from a peer
it does not trust.
"""

from __future__ import annotations

import stat
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from twisted.logger import LogEvent, globalLogPublisher
from twisted.web import proxy, server

from backends.interfaces import Kind
from gateway.audit import AUDIT_NAMESPACE
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

CLIENT = "203.0.113.9"
"""The address the proxy gives for every client (TEST-NET-3: nobody's)."""
SPOOFED = "10.6.6.6"
PASSWORD = "s3cret pass"


class ForwardingProxy(proxy.ReverseProxyResource):
    """A reverse proxy to hgwire on ``port`` that appends ``CLIENT`` to X-Forwarded-For and says https
    (with ``rfc7239``: appends ``for=CLIENT;proto=https`` to ``Forwarded``, as HAProxy's ``option
    forwarded`` does, and passes X-Forwarded-* on untouched)."""

    def __init__(self, port: int, path: bytes = b"", rfc7239: bool = False) -> None:
        super().__init__("127.0.0.1", port, path)
        self.rfc7239 = rfc7239

    def getChild(self, path: bytes, request: Any) -> ForwardingProxy:
        return ForwardingProxy(self.port, self.path + b"/" + urllib.parse.quote_from_bytes(path, safe="").encode(),
                               self.rfc7239)

    def render(self, request: Any) -> Any:
        name, entry = ((b"forwarded", b"for=%s;proto=https" % CLIENT.encode()) if self.rfc7239
                       else (b"x-forwarded-for", CLIENT.encode()))
        before = request.requestHeaders.getRawHeaders(name, [])
        request.requestHeaders.setRawHeaders(name, [b", ".join([*before, entry])])
        if not self.rfc7239:
            request.requestHeaders.setRawHeaders(b"x-forwarded-proto", [b"https"])
        return super().render(request)


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    return path


def _server(make_server: Callable[..., RunningServer], tmp_path: Path, htpasswd: Path,
            trusted: str, header: str = "x-forwarded-for") -> RunningServer:
    policy = tmp_path / f"policy-{len(list(tmp_path.glob('policy-*')))}.toml"
    policy.write_text(f'[http]\ntrusted_proxies = [{trusted}]\nforwarded_header = "{header}"\n\n'
                      '[[repo]]\npattern = "*"\nread = ["*", "anonymous"]\nwrite = ["alice"]\n')
    return make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), config_file=str(policy))


@pytest.fixture
def proxy_port(reactor: Any) -> Iterator[Callable[..., int]]:
    from twisted.internet.threads import blockingCallFromThread

    ports = []

    def start(backend_port: int, rfc7239: bool = False) -> int:
        site = server.Site(ForwardingProxy(backend_port, rfc7239=rfc7239))
        port = blockingCallFromThread(reactor, reactor.listenTCP, 0, site, interface="127.0.0.1")
        ports.append(port)
        return int(port.getHost().port)

    yield start
    for port in ports:
        blockingCallFromThread(reactor, port.stopListening)


@pytest.fixture
def audit() -> Iterator[list[LogEvent]]:
    """The audit events logged during the test."""
    events: list[LogEvent] = []

    def observe(event: LogEvent) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE:
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def _peers(events: list[LogEvent], proto: str) -> set[str]:
    return {str(e["peer"]) for e in events if e["proto"] == proto and e["action"] == "push"}


def _url(port: int, name: str) -> str:
    return f"http://alice:{urllib.parse.quote(PASSWORD, safe='')}@127.0.0.1:{port}/{name}"


def _git_repo_with_hook(server: RunningServer) -> Path:
    server.backend.create("app", Kind.GIT)
    git_dir = server.root / "app.git"
    hook = git_dir / "hooks" / "post-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text('#!/bin/sh\necho "$REMOTE_ADDR" > "$GIT_DIR/who.log"\n')
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    return git_dir


def _hg_push_through(server: RunningServer, client: Client, port: int) -> tuple[Path, Path]:
    """An hg push through the proxy on ``port`` (plain HTTP to it): the server's hook must name the
    proxy's client and https, and the repository verify; the repository and the working clone."""
    server.backend.create("hgapp", Kind.HG)
    repo = server.root / "hgapp"
    (repo / ".hg" / "hgrc").write_text('[hooks]\nincoming = echo "$HG_URL" > who.log\n')
    hgwork = client.cwd / "hgwork"
    client.hg("clone", "-q", _url(port, "hgapp"), str(hgwork))
    (hgwork / "f").write_text("f\n")
    client.hg("commit", "-q", "-A", "-m", "f", cwd=hgwork)
    client.hg("push", "-q", _url(port, "hgapp"), cwd=hgwork)
    assert (repo / "who.log").read_text().strip() == f"remote:https:{CLIENT}:alice"
    client.hg("verify", "-q", "-R", str(repo))
    return repo, hgwork


def test_through_a_trusted_proxy_git_and_hg_know_the_client_and_the_proxy_s_https(
        make_server: Callable[..., RunningServer], proxy_port: Callable[[int], int], client: Client,
        tmp_path: Path, htpasswd: Path, audit: list[LogEvent]) -> None:
    """The audit log names the client by its address alone (the proxy does not give its port: it
    said ``203.0.113.9:0``)."""
    server = _server(make_server, tmp_path, htpasswd, '"127.0.0.1"')
    port = proxy_port(server.port("http"))
    git_dir = _git_repo_with_hook(server)
    work = client.cwd / "app"
    client.git("clone", "-q", _url(port, "app.git"), str(work))
    tip = commit(client, work, "a.txt", "a\n", "a")
    # what the client itself says is left of the proxy's entry: not believed
    client.git("-c", f"http.extraHeader=X-Forwarded-For: {SPOOFED}", "push", "-q", "origin", "HEAD:main", cwd=work)
    assert (git_dir / "who.log").read_text().strip() == CLIENT
    client.git("--git-dir", str(git_dir), "fsck", "--full", "--strict")
    assert client.git("ls-remote", _url(port, "app.git")).stdout.startswith(tip)

    _repo, hgwork = _hg_push_through(server, client, port)  # plain HTTP to the proxy, which says https
    assert _peers(audit, "git-http") == {CLIENT} and _peers(audit, "hg-http") == {CLIENT}, audit
    # straight to hgwire, plain HTTP is what it is
    (hgwork / "g").write_text("g\n")
    client.hg("commit", "-q", "-A", "-m", "g", cwd=hgwork)
    direct = client.hg("push", _url(server.port("http"), "hgapp"), cwd=hgwork, check=False)
    assert direct.returncode != 0 and "pushing over plain HTTP is refused" in direct.stdout + direct.stderr


def test_forwarding_headers_from_a_peer_not_trusted_are_ignored(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, htpasswd: Path) -> None:
    server = _server(make_server, tmp_path, htpasswd, '"192.0.2.0/24"')
    git_dir = _git_repo_with_hook(server)
    work = client.cwd / "app"
    url = _url(server.port("http"), "app.git")
    client.git("clone", "-q", url, str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("-c", f"http.extraHeader=X-Forwarded-For: {SPOOFED}", "push", "-q", "origin", "HEAD:main", cwd=work)
    assert (git_dir / "who.log").read_text().strip() == "127.0.0.1"


def test_a_proxy_that_writes_rfc_7239_forwarded_is_believed_when_configured(
        make_server: Callable[..., RunningServer], proxy_port: Callable[..., int], client: Client,
        tmp_path: Path, htpasswd: Path, audit: list[LogEvent]) -> None:
    """``forwarded_header = "forwarded"``: the client is the proxy's ``for=`` and https its ``proto=``;
    what the client writes itself, in ``Forwarded`` or in the X-Forwarded-* headers the proxy
    passes on, is not believed."""
    server = _server(make_server, tmp_path, htpasswd, '"127.0.0.1"', header="forwarded")
    port = proxy_port(server.port("http"), rfc7239=True)
    git_dir = _git_repo_with_hook(server)
    work = client.cwd / "app"
    client.git("clone", "-q", _url(port, "app.git"), str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("-c", f"http.extraHeader=Forwarded: for={SPOOFED}", "-c", f"http.extraHeader=X-Forwarded-For: {SPOOFED}",
               "push", "-q", "origin", "HEAD:main", cwd=work)
    assert (git_dir / "who.log").read_text().strip() == CLIENT
    client.git("--git-dir", str(git_dir), "fsck", "--full", "--strict")

    _repo, hgwork = _hg_push_through(server, client, port)  # the proxy says proto=https
    assert _peers(audit, "git-http") == {CLIENT} and _peers(audit, "hg-http") == {CLIENT}, audit

    # the X-Forwarded-* headers of a proxy are not read when the setting names Forwarded
    plain = proxy_port(server.port("http"))
    (hgwork / "g").write_text("g\n")
    client.hg("commit", "-q", "-A", "-m", "g", cwd=hgwork)
    refused = client.hg("push", _url(plain, "hgapp"), cwd=hgwork, check=False)
    assert refused.returncode != 0 and "pushing over plain HTTP is refused" in refused.stdout + refused.stderr


class _UnixDialer:
    """What ``ReverseProxyResource`` calls as its reactor: connects to a unix socket instead."""

    def __init__(self, path: str) -> None:
        self.path = path

    def connectTCP(self, _host: str, _port: int, factory: Any) -> Any:
        from twisted.internet import reactor

        return reactor.connectUNIX(self.path, factory)  # type: ignore[attr-defined]


class UnixForwardingProxy(ForwardingProxy):
    """``ForwardingProxy`` to hgwire's ``unix:`` listener at ``socket``, as nginx's
    ``proxy_pass http://unix:/path:`` reaches one."""

    def __init__(self, socket: str, path: bytes = b"") -> None:
        super().__init__(0, path)
        self.socket = socket
        self.reactor = _UnixDialer(socket)

    def getChild(self, path: bytes, request: Any) -> UnixForwardingProxy:
        return UnixForwardingProxy(self.socket, self.path + b"/" + urllib.parse.quote_from_bytes(path, safe="").encode())


def test_a_proxy_on_a_unix_socket_is_trusted_by_the_word_unix(
        make_server: Callable[..., RunningServer], reactor: Any, client: Client, tmp_path: Path, htpasswd: Path) -> None:
    """A unix: listener's peer has no address: ``trusted_proxies = ["unix"]`` believes what reaches
    it (the client's address, https); without the word its forwarding headers are not believed."""
    from twisted.internet.threads import blockingCallFromThread

    socket_path = str(tmp_path / "hgwire.sock")
    policy = tmp_path / "policy-unix.toml"
    policy.write_text('[http]\ntrusted_proxies = ["unix"]\n\n[[repo]]\npattern = "*"\nread = ["*", "anonymous"]\n'
                      'write = ["alice"]\n')
    running = make_server("fs", http=[f"unix:{socket_path}"], htpasswd=str(htpasswd), config_file=str(policy))
    port = blockingCallFromThread(reactor, reactor.listenTCP, 0, server.Site(UnixForwardingProxy(socket_path)),
                                  interface="127.0.0.1")
    try:
        git_dir = _git_repo_with_hook(running)
        work = client.cwd / "app"
        client.git("clone", "-q", _url(port.getHost().port, "app.git"), str(work))
        commit(client, work, "a.txt", "a\n", "a")
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)
        assert (git_dir / "who.log").read_text().strip() == CLIENT
        _hg_push_through(running, client, port.getHost().port)  # https as the proxy says: no --allow-push-over-http
    finally:
        blockingCallFromThread(reactor, port.stopListening)
