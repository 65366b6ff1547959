"""Listeners behind a TCP proxy that sends the PROXY protocol header (``haproxy:tcp:...``).

Real git, hg and ssh clients go through a small relay that does what HAProxy's
``send-proxy`` does: it opens a connection to hgwire, writes the header (v1 for
git:// and HTTP, v2 for SSH) naming the client as 198.51.100.23, then relays
bytes both ways.  hgwire must serve them as usual and know the client by that
address (hooks' ``REMOTE_ADDR`` and ``HG_URL``); a client that skips the proxy
is refused in its own protocol.
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from twisted.internet.protocol import ClientFactory
from twisted.protocols import portforward

from backends.interfaces import Kind
from protocols.proxy_header import Endpoint, encode_v1, encode_v2
from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_git_daemon import commit

PROXIED = "haproxy:tcp:0:interface=127.0.0.1"
CLIENT_ADDRESS = "198.51.100.23"
"""The address the relay claims for every client (TEST-NET-2: nobody's)."""


class _HeaderFirst(portforward.ProxyClient):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.factory.header(self.peer.transport))  # type: ignore[attr-defined]
        super().connectionMade()


class _HeaderFirstFactory(portforward.ProxyClientFactory):
    protocol = _HeaderFirst

    def __init__(self, version: int) -> None:
        self.version = version

    def header(self, client_transport: Any) -> bytes:
        peer, host = client_transport.getPeer(), client_transport.getHost()
        source, destination = Endpoint(CLIENT_ADDRESS, peer.port), Endpoint(host.host, host.port)
        return encode_v2(source, destination) if self.version == 2 else encode_v1(source, destination)


class _Relay(portforward.ProxyServer):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.pauseProducing()
        client = self.factory.client_factory()  # type: ignore[attr-defined]
        client.setServer(self)
        from twisted.internet import reactor

        reactor.connectTCP(self.factory.host, self.factory.port, client)  # type: ignore[attr-defined]


class RelayFactory(portforward.ProxyFactory):
    """A proxy to ``port`` that sends the PROXY header (``version`` 1 or 2) first."""

    protocol = _Relay

    def __init__(self, port: int, version: int) -> None:
        super().__init__("127.0.0.1", port)
        self.version = version

    def client_factory(self) -> ClientFactory:
        return _HeaderFirstFactory(self.version)


@pytest.fixture
def proxied_server(reactor: Any, make_server: Callable[..., RunningServer], ssh_keys: SshKeys,
                   tmp_path: Path) -> tuple[RunningServer, dict[str, int]]:
    """hgwire with every listener behind the relay; the relay's port per listener kind."""
    from twisted.internet.threads import blockingCallFromThread

    server = make_server("fs", git=[PROXIED], ssh=[PROXIED], http=[PROXIED], host_key=str(ssh_keys.host_key),
                         authorized_keys=str(ssh_keys.authorized_keys))
    relays: dict[str, int] = {}
    ports = []
    for kind, version in (("git", 1), ("http", 1), ("ssh", 2)):
        port = blockingCallFromThread(reactor, reactor.listenTCP, 0, RelayFactory(server.port(kind), version),
                                      interface="127.0.0.1")
        ports.append(port)
        relays[kind] = port.getHost().port
    yield server, relays
    for port in ports:
        blockingCallFromThread(reactor, port.stopListening)


def _hook(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_git_through_the_proxy_is_served_and_knows_the_client(
        proxied_server: tuple[RunningServer, dict[str, int]], client: Client, ssh_keys: SshKeys) -> None:
    server, relays = proxied_server
    server.backend.create("app", Kind.GIT)
    git_dir = server.root / "app.git"
    _hook(git_dir / "hooks" / "post-receive", '#!/bin/sh\necho "$REMOTE_ADDR" > "$GIT_DIR/who.log"\n')
    ssh = {"GIT_SSH_COMMAND": ssh_keys.command(relays["ssh"])}
    work = client.cwd / "app"
    client.git("clone", "-q", "ssh://alice@127.0.0.1/app.git", str(work), env=ssh)
    tip = commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work, env=ssh)
    assert (git_dir / "who.log").read_text().strip() == CLIENT_ADDRESS
    client.git("--git-dir", str(git_dir), "fsck", "--full", "--strict")
    for url in (f"git://127.0.0.1:{relays['git']}/app.git", f"http://127.0.0.1:{relays['http']}/app.git"):
        listed = client.git("ls-remote", url).stdout
        assert f"{tip}\trefs/heads/main" in listed
        dest = client.cwd / f"clone-{url.split(':')[0]}"
        client.git("clone", "-q", url, str(dest))
        assert client.git("rev-parse", "HEAD", cwd=dest).stdout.strip() == tip


def test_hg_through_the_proxy_is_served_and_knows_the_client(
        proxied_server: tuple[RunningServer, dict[str, int]], client: Client, ssh_keys: SshKeys) -> None:
    server, relays = proxied_server
    server.backend.create("hgapp", Kind.HG)
    repo = server.root / "hgapp"
    (repo / ".hg" / "hgrc").write_text('[hooks]\nincoming = echo "$HG_URL" > who.log\n')  # run in the repository
    ssh = ["--ssh", ssh_keys.command(relays["ssh"])]
    work = client.cwd / "hgwork"
    client.hg("clone", "-q", *ssh, "ssh://alice@127.0.0.1/hgapp", str(work))
    (work / "f").write_text("f\n")
    client.hg("commit", "-q", "-A", "-m", "f", cwd=work)
    client.hg("push", "-q", *ssh, cwd=work)
    assert (repo / "who.log").read_text().strip() == f"remote:ssh:{CLIENT_ADDRESS}"
    client.hg("verify", "-q", "-R", str(repo))
    clone = client.cwd / "hgclone"
    client.hg("clone", "-q", "-U", f"http://127.0.0.1:{relays['http']}/hgapp", str(clone))
    assert client.hg("log", "-R", str(clone), "-T", "{desc}").stdout == "f"


def test_a_client_that_skips_the_proxy_is_told_so(
        proxied_server: tuple[RunningServer, dict[str, int]], client: Client, ssh_keys: SshKeys) -> None:
    server, _ = proxied_server
    server.backend.create("app", Kind.GIT)
    direct = client.git("ls-remote", f"git://127.0.0.1:{server.port('git')}/app.git", check=False)
    assert direct.returncode != 0
    assert "through a proxy that sends the PROXY protocol" in direct.stderr
    over_http = client.git("ls-remote", f"http://127.0.0.1:{server.port('http')}/app.git", check=False)
    assert over_http.returncode != 0 and "503" in over_http.stderr
    over_ssh = client.git("ls-remote", "ssh://alice@127.0.0.1/app.git", check=False,
                          env={"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))})
    assert over_ssh.returncode != 0
    assert os.path.isdir(server.root / "app.git"), "nothing happened to the repository"


def test_https_behind_a_proxy_that_passes_tls_through(
        reactor: Any, make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``haproxy:ssl:``: the proxy sends the PROXY header, then the client's TLS as it came (HAProxy in
    TCP mode with ``send-proxy``); hgwire reads the header, then speaks TLS."""
    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    from twisted.internet.threads import blockingCallFromThread

    from tests.integration.test_hg_http import PASSWORD, _tls_files

    ca, key, cert = _tls_files(tmp_path)
    password_file = tmp_path / "htpasswd"
    password_file.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", http=[f"haproxy:ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"],
                         htpasswd=str(password_file))
    assert server.url("http", "x").startswith("https://")
    port = blockingCallFromThread(reactor, reactor.listenTCP, 0, RelayFactory(server.port("http"), 2),
                                  interface="127.0.0.1")
    try:
        relay = port.getHost().port
        server.backend.create("app", Kind.GIT)
        git_dir = server.root / "app.git"
        _hook(git_dir / "hooks" / "post-receive", '#!/bin/sh\necho "$REMOTE_ADDR" > "$GIT_DIR/who.log"\n')
        tls = ("-c", f"http.sslCAInfo={ca}")
        secret = urllib.parse.quote(PASSWORD, safe="")
        url = f"https://alice:{secret}@127.0.0.1:{relay}/app.git"
        work = client.cwd / "app"
        client.git(*tls, "clone", "-q", url, str(work))
        tip = commit(client, work, "a.txt", "a\n", "a")
        client.git(*tls, "push", "-q", url, "HEAD:main", cwd=work)
        assert (git_dir / "who.log").read_text().strip() == CLIENT_ADDRESS
        client.git("--git-dir", str(git_dir), "fsck", "--full", "--strict")

        server.backend.create("hgapp", Kind.HG)
        hgwork = client.cwd / "hgwork"
        trust = ("--config", f"web.cacerts={ca}")
        hgurl = f"https://alice:{secret}@127.0.0.1:{relay}/hgapp"
        client.hg("clone", "-q", *trust, hgurl, str(hgwork))
        (hgwork / "f").write_text("f\n")
        client.hg("commit", "-q", "-A", "-m", "f", cwd=hgwork)
        client.hg("push", "-q", *trust, hgurl, cwd=hgwork)  # secure: no --allow-push-over-http needed
        client.hg("verify", "-q", "-R", str(server.root / "hgapp"))
        assert client.git(*tls, "ls-remote", url).stdout.startswith(tip)
    finally:
        blockingCallFromThread(reactor, port.stopListening)
