"""Settings of a served Mercurial repository's ``.hg`` that ``hg serve`` honours for pulls, with the real
hg client over SSH and HTTP: clone bundles (``.hg/clonebundles.manifest``), ``[server]
disablefullbundle`` and hgweb's ``[web] allow-pull``.  Where hg's own server answers the same request,
the client's words are compared with what it says against ``hg serve --stdio`` on the same repository."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VENV_BIN, Client, SshKeys, ssh_server_settings
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_hooks import _served  # SSH, or HTTP as alice (who may also push)
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd, raw  # noqa: F401 - a fixture
from tests.integration.test_hg_ssh import HgSsh

FAKE_SSH = """#!/bin/sh
# ssh HOST COMMAND: run COMMAND here, as hg serve --stdio behind a real ssh would
for last; do :; done
exec sh -c "$last"
"""


def _history(client: Client, repo: Path, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        (repo / f"f{i}.txt").write_text(f"{i}\n")
        client.hg("commit", "-q", "-A", "-R", str(repo), "-m", f"change {i}")


def _reference(client: Client, tmp_path: Path, repo: Path, *args: str, config: tuple[str, ...] = ()
               ) -> tuple[int, list[str]]:
    """``hg ARGS ssh://ref/REPO`` against hg's own ``hg serve --stdio``: exit status and what it said.

    ``config``: ``section.name=value`` settings of that server."""
    fake, remote, rc = tmp_path / "fake-ssh", tmp_path / "remote-hg", tmp_path / "remote-hgrc"
    fake.write_text(FAKE_SSH)
    rc.write_text("".join(f"[{c.split('.', 1)[0]}]\n{c.split('.', 1)[1]}\n" for c in config))
    remote.write_text(f'#!/bin/sh\nHGRCPATH={rc} exec {VENV_BIN}/hg "$@"\n')  # serve --stdio takes no --config
    for script in (fake, remote):
        script.chmod(0o755)
    done = client.hg("--config", f"ui.ssh={fake}", "--config", f"ui.remotecmd={remote}", *args,
                     f"ssh://ref/{repo}", *(_dest(tmp_path, "reference"),), check=False)
    return done.returncode, _said(done)


def _dest(tmp_path: Path, name: str) -> str:
    n = 0
    while (tmp_path / f"{name}{n}").exists():
        n += 1
    return str(tmp_path / f"{name}{n}")


def _said(done: Any) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


@pytest.fixture
def bundle_host(tmp_path: Path) -> Iterator[tuple[str, list[str], Path]]:
    """A plain HTTP file server (a CDN stand-in): its base URL, the paths it was asked for, its directory."""
    root = tmp_path / "cdn"
    root.mkdir()
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", asked, root
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_clone_seeds_from_the_clone_bundles_of_the_manifest(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str,
        bundle_host: tuple[str, list[str], Path]) -> None:
    """As hg serve with its clonebundles extension: the client fetches the listed bundle from where it
    lies, then pulls only what came after it from the server."""
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    base, asked, cdn = bundle_host
    repo = server.root / "big"
    client.hg("init", str(repo))
    _history(client, repo, 3)
    client.hg("bundle", "-q", "--all", "-t", "zstd-v2", "-R", str(repo), str(cdn / "full.hg"))
    _history(client, repo, 2, start=3)

    before = peer.hg("debugcapabilities", url("big")).stdout
    assert "clonebundles" not in before  # no manifest, nothing advertised

    (repo / ".hg" / "clonebundles.manifest").write_text(
        "peer-bundle-cache://full.hg BUNDLESPEC=zstd-v2\n"  # inline, but not in .hg/bundle-cache: not listed
        f"{base}/full.hg BUNDLESPEC=zstd-v2 REQUIRESNI=false\n")
    dest = tmp_path / "seeded"
    done = peer.hg("clone", "-U", url("big"), str(dest))
    said = _said(done)
    assert said[0] == f"applying clone bundle from {base}/full.hg", done
    assert "added 3 changesets with 3 changes to 3 files" in said and "finished applying clone bundle" in said
    assert said[said.index("finished applying clone bundle") + 1] == "searching for changes", done
    assert said.count("added 2 changesets with 2 changes to 2 files") == 1, done  # the rest, from hgwire
    assert asked == ["/full.hg"]
    assert client.hg("log", "-R", str(dest), "-T", "{node}\n").stdout == \
        client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout
    client.hg("verify", "-q", "-R", str(dest))

    if kind == "ssh":  # the same words against hg's own server with the extension, which would offer
        asked.clear()  # the inline entry it cannot serve unconfigured: the manifest without it
        (repo / ".hg" / "clonebundles.manifest").write_text(f"{base}/full.hg BUNDLESPEC=zstd-v2\n")
        status, reference = _reference(client, tmp_path, repo, "clone", "-U",
                                       config=("extensions.clonebundles=",))
        assert (status, reference, asked) == (0, said, ["/full.hg"]), reference


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_disablefullbundle_refuses_a_full_clone_and_nothing_else(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = server.root / "big"
    client.hg("init", str(repo))
    _history(client, repo, 3)
    first = client.hg("log", "-R", str(repo), "-r", "0", "-T", "{node}").stdout
    early = tmp_path / "early"
    peer.hg("clone", "-q", "-U", url("big"), str(early))  # a clone made before the setting
    _history(client, repo, 1, start=3)
    (repo / ".hg" / "hgrc").write_text("[server]\ndisablefullbundle = True\n")

    refused = peer.hg("clone", "-U", url("big"), str(tmp_path / "full"), check=False)
    said = _said(refused)
    assert refused.returncode != 0
    assert said[-3:] == ["remote: abort: server has pull-based clones disabled", "abort: pull failed on remote",
                         "(remove --pull if specified or upgrade Mercurial)"], refused
    if kind == "ssh":
        status, reference = _reference(client, tmp_path, repo, "clone", "-U")
        assert status == refused.returncode and reference[-3:] == said[-3:]

    pulled = peer.hg("pull", "-R", str(early), url("big"))  # common history: not a full clone
    assert "added 1 changesets with 1 changes to 1 files" in pulled.stdout, pulled
    peer.hg("clone", "-q", "-U", "-r", first, url("big"), str(tmp_path / "partial"))  # not every head
    streamed = peer.hg("clone", "-U", "--stream", url("big"), str(tmp_path / "streamed"))
    assert "files to transfer" in streamed.stdout, streamed
    for done in ("early", "partial", "streamed"):
        client.hg("verify", "-q", "-R", str(tmp_path / done))


def test_web_allow_pull_false_refuses_http_pulls_only(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    """hgweb's ``checkauthz``: every pull command is refused over HTTP (401 to an anonymous client,
    403 to a logged-in one, as hgwire's other ``[web]`` lists); SSH does not read ``[web]``."""
    server = make_server("fs", **_settings(htpasswd), **ssh_server_settings(ssh_keys))
    http_peer = HgHttp(server, client)
    ssh_peer = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    repo = server.root / "closed"
    client.hg("init", str(repo))
    _history(client, repo, 1)
    (repo / ".hg" / "hgrc").write_text("[web]\nallowpull = off\n")  # the old spelling

    anonymous = http_peer.hg("clone", "-U", http_peer.url("closed"), str(tmp_path / "a"), check=False)
    assert anonymous.returncode != 0
    assert "abort: http authorization required for" in anonymous.stderr, anonymous
    known = http_peer.hg("clone", "-U", http_peer.push_url("closed"), str(tmp_path / "b"), check=False)
    assert "HTTP Error 403: pull not authorized by the repository's [web] settings" in known.stderr, known
    ssh_peer.hg("clone", "-q", "-U", ssh_peer.url("closed"), str(tmp_path / "c"))

    (repo / ".hg" / "hgrc").write_text("[web]\nallowpull = off\nallow-pull = yes\n")  # the new one wins
    http_peer.hg("clone", "-q", "-U", http_peer.url("closed"), str(tmp_path / "d"))


def test_web_allow_pull_false_leaves_the_web_pages_as_hg_serve(make_server: Any, client: Client,
                                                                htpasswd: Path) -> None:
    """hgweb checks ``allow-pull`` for the wire protocol's commands only: its pages, raw files and
    archives (interface requests) answer as ``hg serve`` answers them, while ``?cmd=`` is refused."""
    server = make_server("fs", **_settings(htpasswd))
    repo = server.root / "closed"
    client.hg("init", str(repo))
    _history(client, repo, 2)
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-pull = false\nallow-archive = gz\n")
    port = server.port("http")
    html = {"Accept": "text/html"}
    with _hg_serve(client, repo) as reference:
        for page in ("json-tags", "json-rev/tip", "raw-rev/tip", "raw-file/tip", "json-shortlog", "shortlog", "tags",
                     "rev/tip", "file/tip", "graph", "archive/tip.tar.gz"):
            theirs, ours = raw(reference, "GET", "/" + page, html), raw(port, "GET", "/closed/" + page, html)
            assert (ours.status, theirs.status) == (200, 200), (page, ours.body[:200])
            if page.startswith(("json-", "raw-")):
                assert ours.body == theirs.body, page
        for listener in (reference, port):
            refused = raw(listener, "GET", ("/" if listener == reference else "/closed") + "?cmd=capabilities")
            assert refused.status == 401 and b"pull not authorized" in refused.body, listener
    assert raw(port, "GET", "/closed", html).status == 200 == raw(port, "GET", "/closed/summary", html).status
    assert raw(port, "GET", "/closed").status == 200  # the plain page that says what it is
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-pull = false\ndeny_read = *\n")  # the read lists still hold
    assert raw(port, "GET", "/closed/shortlog", html).status == 401


INLINE_HOOK = """[hooks]
pretransmit-inline-clone-bundle.seen = echo "$HG_HOOKTYPE $HG_CLONEBUNDLEPATH" >> {log}; test ! -e {refuse}
"""


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_clone_seeds_from_an_inline_clone_bundle_the_server_sends(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    """``peer-bundle-cache://`` entries name bundles under ``.hg/bundle-cache``, which the server sends
    itself (``get_cached_bundle_inline``), as hg serve with its clonebundles extension: the client
    applies the bundle, then pulls the rest.  Entries whose bundle is not there are not listed (hg
    serve lists them and the clone fails).  The ``pretransmit-inline-clone-bundle`` hook is told the
    path and can refuse; the client's words are hg serve's, over SSH compared with it."""
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = server.root / "big"
    client.hg("init", str(repo))
    _history(client, repo, 3)
    (repo / ".hg" / "bundle-cache").mkdir()
    client.hg("bundle", "-q", "--all", "-t", "zstd-v2", "-R", str(repo), str(repo / ".hg" / "bundle-cache" / "full.hg"))
    _history(client, repo, 2, start=3)
    log, refuse = tmp_path / "hook.log", tmp_path / "refuse"
    (repo / ".hg" / "hgrc").write_text(INLINE_HOOK.format(log=log, refuse=refuse))
    (repo / ".hg" / "clonebundles.manifest").write_text(
        "peer-bundle-cache://gone.hg BUNDLESPEC=zstd-v2\n"  # no such bundle: not listed
        "peer-bundle-cache://full.hg BUNDLESPEC=zstd-v2\n")

    listed = peer.hg("debugcapabilities", url("big")).stdout
    assert "clonebundles" in listed
    done = peer.hg("clone", "-U", url("big"), str(tmp_path / "seeded"))
    said = _said(done)
    assert said[:2] == ["applying clone bundle from peer-bundle-cache://full.hg",
                        "adding changesets"], done
    assert "added 3 changesets with 3 changes to 3 files" in said and "finished applying clone bundle" in said
    assert said.count("added 2 changesets with 2 changes to 2 files") == 1, done  # the rest, from the server
    assert log.read_text() == "pretransmit-inline-clone-bundle full.hg\n"
    assert client.hg("log", "-R", str(tmp_path / "seeded"), "-T", "{node}\n").stdout == \
        client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout
    client.hg("verify", "-q", "-R", str(tmp_path / "seeded"))

    refuse.touch()
    refused = peer.hg("clone", "-U", url("big"), str(tmp_path / "refused"), check=False)
    assert refused.returncode != 0 and not (tmp_path / "refused").exists()
    assert "pretransmit-inline-clone-bundle.seen hook exited with status 1" in refused.stdout + refused.stderr
    if kind == "ssh":  # the same words from hg serve --stdio with the extension, refusing and not
        (repo / ".hg" / "clonebundles.manifest").write_text("peer-bundle-cache://full.hg BUNDLESPEC=zstd-v2\n")
        config = ("extensions.clonebundles=",)
        assert _reference(client, tmp_path, repo, "clone", "-U", config=config) == (255, _said(refused))
        refuse.unlink()
        assert _reference(client, tmp_path, repo, "clone", "-U", config=config) == (0, said)


def test_an_inline_clone_bundle_outside_the_bundle_cache_is_never_sent(
        make_server: Any, client: Client, htpasswd: Path) -> None:
    """A client may ask ``get_cached_bundle_inline`` for any path: one that is not a bundle under
    ``.hg/bundle-cache`` (``..``, absolute, a link out of it, a directory) gets hg's sentence, and
    the server goes on serving."""
    import os
    import urllib.error
    import urllib.request

    server = make_server("fs", **_settings(htpasswd))
    repo = server.root / "big"
    client.hg("init", str(repo))
    _history(client, repo, 1)
    cache = repo / ".hg" / "bundle-cache"
    cache.mkdir()
    (cache / "inner").mkdir()
    os.symlink(repo / ".hg" / "hgrc", cache / "out.hg")
    (repo / ".hg" / "hgrc").write_text("[web]\nsecret = yes\n")
    for path in ("../hgrc", "/etc/passwd", "out.hg", "inner", "inner/../../hgrc", "", "missing.hg"):
        request = urllib.request.Request(f"http://127.0.0.1:{server.port('http')}/big?cmd=get_cached_bundle_inline",
                                         headers={"X-HgArg-1": "path=" + urllib.parse.quote(path)})
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
            assert reply.headers["Content-Type"] == "application/hg-error", (path, body)
        assert body == f"clonebundle {path} does not exist\n".encode(), (path, body)
        assert b"secret" not in body
    HgHttp(server, client).hg("id", "-r", "0", HgHttp(server, client).url("big"))  # still serving
