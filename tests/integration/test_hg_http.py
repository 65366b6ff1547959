"""The real ``hg`` client against hgwire's Mercurial HTTP(S) handler, plus raw requests.

The scenarios of the SSH tests (``test_hg_ssh.py``, whose helpers are reused)
over HTTP on both backends; authentication, read-only and plain-HTTP refusals;
compression negotiation; the three argument carriers; bad requests; the same
answers as SSH; and HTTPS with a test CA.
"""

# The history fixtures are imported from test_hg_ssh, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import datetime
import http.client
import ipaddress
import os
import random
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import provider

import gateway.hg_http
import gateway.policy
from backends.interfaces import Kind
from protocols.hg_http import WireSettings
from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh, _commit, built_history, history  # noqa: F401

PASSWORD = "s3cret pw"


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"alice:{hashed}\n")
    return path


@dataclass
class HgHttp:
    server: RunningServer
    client: Client
    kind: str = "http"

    def url(self, name: str, password: str | None = None) -> str:
        url = self.server.url(self.kind, name)
        if password is None:
            return url
        scheme, rest = url.split("://", 1)
        return f"{scheme}://alice:{urllib.parse.quote(password, safe='')}@{rest}"

    def push_url(self, name: str) -> str:
        return self.url(name, PASSWORD)

    def hg(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.client.hg(*args, **kw)

    def log(self, repo: Path) -> str:
        template = "{node} {p1node} {p2node} {branch} {phase} {tags} {desc|firstline}\n"
        return self.hg("log", "-R", str(repo), "--debug", "-T", template).stdout

    def verify_server(self, name: str, tmp: Path) -> None:
        """``hg verify`` the server's copy: on disk for fs, through a fresh clone for memory."""
        if self.server.backend_name == "fs":
            self.hg("verify", "-q", "-R", str(self.server.root / name))
            return
        check = tmp / f"verify-{name}"
        shutil.rmtree(check, ignore_errors=True)
        self.hg("clone", "-q", "-U", self.url(name), str(check))
        self.hg("verify", "-q", "-R", str(check))


def _settings(htpasswd: Path, **extra: Any) -> dict[str, Any]:
    return {"http": [LOOPBACK], "htpasswd": str(htpasswd), "allow_push_over_http": True, **extra}


@pytest.fixture(params=BACKENDS)
def hghttp(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer], client: Client,
           htpasswd: Path) -> HgHttp:
    return HgHttp(make_server(request.param, **_settings(htpasswd)), client)


@pytest.fixture
def fs_http(make_server: Callable[..., RunningServer], client: Client, htpasswd: Path) -> HgHttp:
    return HgHttp(make_server("fs", **_settings(htpasswd)), client)


# ------------------------------------------------------------------ real hg, both backends


def test_clone_push_pull_over_http(hghttp: HgHttp, history: Path, tmp_path: Path) -> None:
    hghttp.server.backend.create("r", Kind.HG)
    empty = hghttp.hg("clone", hghttp.url("r"), str(tmp_path / "empty"))
    assert "no changes found" in empty.stdout + empty.stderr
    hghttp.hg("push", "-q", "-R", str(history), "-r", "0", hghttp.push_url("r"))
    partial = tmp_path / "partial"
    hghttp.hg("clone", "-q", "-U", hghttp.url("r"), str(partial))
    pushed = hghttp.hg("push", "-R", str(history), "--new-branch", hghttp.push_url("r"))
    assert "remote: added 10 changesets" in pushed.stdout
    hghttp.hg("push", "-q", "-R", str(history), "-B", "feature", hghttp.push_url("r"), check=False)
    hghttp.verify_server("r", tmp_path)
    assert "on stable" in hghttp.hg("incoming", "-R", str(partial), "-T", "{desc}\n").stdout
    hghttp.hg("pull", "-q", "-R", str(partial), "-r", "stable")
    assert "merge stable" not in hghttp.hg("log", "-R", str(partial), "-T", "{desc}\n").stdout
    hghttp.hg("pull", "-q", "-R", str(partial))
    source = hghttp.log(history).replace(" draft ", " public ")  # a publishing server makes pushes public
    assert hghttp.log(partial) == source
    clone = tmp_path / "clone"
    hghttp.hg("clone", "-q", hghttp.url("r"), str(clone))
    assert hghttp.log(clone) == source
    assert (clone / "docs" / "ünïcode.txt").read_text() == "hello\n"
    assert hghttp.hg("bookmarks", "-R", str(clone), "-T", "{bookmark}\n").stdout == "feature\n"
    ident = hghttp.hg("identify", "-r", "stable", hghttp.url("r")).stdout.strip()
    assert ident == hghttp.hg("log", "-R", str(history), "-r", "stable", "-T", "{node|short}").stdout


def test_stream_clone_over_http(fs_http: HgHttp, history: Path, tmp_path: Path) -> None:
    fs_http.hg("clone", "-q", "-U", str(history), str(fs_http.server.root / "s"))
    fs_http.hg("branches", "-R", str(fs_http.server.root / "s"))  # hg writes its branch caches
    assert (fs_http.server.root / "s" / ".hg" / "cache" / "branch2-served").exists()
    streamed = tmp_path / "streamed"
    result = fs_http.hg("clone", "--stream", "-U", "--debug", fs_http.url("s"), str(streamed))
    assert "streaming all changes" in result.stdout
    # the caches come along, as from hg serve: the client need not read every changeset to rebuild them
    assert "adding [c] branch2-served" in result.stdout and "adding [c] rbc-revs-v2" in result.stdout
    fs_http.hg("verify", "-q", "-R", str(streamed))
    assert fs_http.log(streamed) == fs_http.log(history).replace(" draft ", " public ")
    branches = fs_http.hg("branches", "-R", str(streamed)).stdout
    assert branches == fs_http.hg("branches", "-R", str(history)).stdout and "stable" in branches


def _phased_repo(hghttp: HgHttp, path: Path) -> None:
    """A served repository with a public, a draft and a secret changeset, made by hg on the server."""
    hghttp.hg("init", str(path))
    for name, phase in (("public", "--public"), ("draft", "--draft"), ("secret", "--secret")):
        (path / name).write_text(f"{name}\n")
        hghttp.hg("commit", "-q", "-A", "-R", str(path), "-m", f"{name} change")
        hghttp.hg("phase", "-q", "--force", phase, "-R", str(path), "-r", "tip")


def test_a_repository_hgwire_cannot_serve_is_named_as_such(fs_http: HgHttp, tmp_path: Path) -> None:
    """Not a bare 'HTTP Error 500': hg shows the feature, as over SSH, and how to upgrade it."""
    fs_http.hg("init", "--config", "format.usefncache=false", str(fs_http.server.root / "old"))
    result = fs_http.hg("clone", fs_http.url("old"), str(tmp_path / "c"), check=False)
    assert result.returncode != 0
    assert "unsupported repository feature: missing fncache" in result.stderr, result.stderr
    assert "hg debugupgraderepo --run" in result.stderr
    fs_http.hg("init", str(tmp_path / "source"))  # a share: its store is another repository's
    fs_http.hg("--config", "extensions.share=", "share", "-q", "-U", str(tmp_path / "source"),
               str(fs_http.server.root / "shared"))
    result = fs_http.hg("clone", fs_http.url("shared"), str(tmp_path / "s"), check=False)
    assert result.returncode != 0
    assert "unsupported repository feature: a share of another repository" in result.stderr, result.stderr


def test_a_repository_without_compression_is_served_and_written_uncompressed(fs_http: HgHttp, tmp_path: Path) -> None:
    """``format.revlog-compression=none`` (``exp-compression-none``): cloned, pushed to with chunks
    stored as they are (not zlib nor zstd), streamed, as from hg serve."""
    served = fs_http.server.root / "plain"
    fs_http.hg("init", "--config", "format.revlog-compression=none", str(served))
    (served / "a.txt").write_text("first\n" * 50)
    fs_http.hg("commit", "-q", "-A", "-R", str(served), "-m", "first")
    clone = tmp_path / "clone"
    fs_http.hg("clone", "-q", fs_http.url("plain"), str(clone))
    (clone / "b.txt").write_text("pushed text that zlib would shrink well\n" * 200)
    fs_http.hg("commit", "-q", "-A", "-R", str(clone), "-m", "pushed")
    fs_http.hg("push", "-q", "-R", str(clone), fs_http.push_url("plain"))
    fs_http.hg("verify", "-q", "-R", str(served))
    index = (served / ".hg" / "store" / "data" / "b.txt.i").read_bytes()
    assert b"pushed text that zlib would shrink well\n" * 200 in index  # stored whole, after its u marker
    streamed = tmp_path / "streamed"
    fs_http.hg("clone", "-q", "--stream", "-U", fs_http.url("plain"), str(streamed))
    fs_http.hg("verify", "-q", "-R", str(streamed))
    assert fs_http.log(streamed) == fs_http.log(served).replace(" draft ", " public ")


def test_a_repository_without_dotencode_is_served(fs_http: HgHttp, tmp_path: Path) -> None:
    """Mercurial 1.1 to 1.6 made repositories with fncache but without dotencode (a leading dot or
    space of a path's part is not escaped on disk): cloned, pushed to (new files named on disk
    as hg names them: hg verify reads them), and streamed, as from hg serve."""
    served = fs_http.server.root / "old"
    fs_http.hg("init", "--config", "format.dotencode=false", str(served))
    names = [".hgignore-like", " lead space/x", ".dir/.Inner", "a/ b/.c. ", "AUX.txt/.x", "d" * 130 + "/.long"]
    for name in names:
        (served / name).parent.mkdir(parents=True, exist_ok=True)
        (served / name).write_text(name + "\n")
    fs_http.hg("commit", "-q", "-A", "-R", str(served), "-m", "old layout")
    assert "dotencode" not in (served / ".hg" / "requires").read_text() + (
        (served / ".hg" / "store" / "requires").read_text() if (served / ".hg" / "store" / "requires").exists() else "")
    assert (served / ".hg" / "store" / "data" / ".dir" / "._inner.i").exists()  # as hg names it: not ~2edir
    clone = tmp_path / "clone"
    fs_http.hg("clone", "-q", fs_http.url("old"), str(clone))
    assert sorted((clone / n).read_text() for n in names) == sorted(n + "\n" for n in names)
    for name in (".new/ .File", "e" * 130 + "/.more"):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text("pushed\n")
    fs_http.hg("commit", "-q", "-A", "-R", str(clone), "-m", "pushed")
    fs_http.hg("push", "-q", "-R", str(clone), fs_http.push_url("old"))
    fs_http.hg("verify", "-q", "-R", str(served))
    assert (served / ".hg" / "store" / "data" / ".new" / " ._file.i").exists()
    fs_http.hg("update", "-q", "-R", str(served))
    assert (served / ".new" / " .File").read_text() == "pushed\n"
    streamed = tmp_path / "streamed"
    fs_http.hg("clone", "-q", "--stream", "-U", fs_http.url("old"), str(streamed))
    fs_http.hg("verify", "-q", "-R", str(streamed))


def test_a_stream_clone_never_copies_secret_changesets(fs_http: HgHttp, tmp_path: Path) -> None:
    """As from hg serve: no ``streamreqs`` while a changeset is secret, so the client clones normally."""
    served = fs_http.server.root / "phased"
    _phased_repo(fs_http, served)
    assert b"streamreqs=" not in raw(fs_http.server.port("http"), "GET", "/phased?cmd=capabilities").body
    clone = tmp_path / "clone"
    result = fs_http.hg("clone", "--stream", "-U", fs_http.url("phased"), str(clone))
    assert "stream clone requested but server has them disabled" in result.stderr
    assert "streaming all changes" not in result.stdout
    assert fs_http.hg("log", "-R", str(clone), "-T", "{desc}/{phase}\n").stdout == (
        "draft change/public\npublic change/public\n")
    assert b"secret" not in b"".join(f.read_bytes() for f in clone.rglob("*") if f.is_file())
    fs_http.hg("verify", "-q", "-R", str(clone))


def test_bookmarks_on_secret_changesets_and_divergent_ones_stay_on_the_server(
        fs_http: HgHttp, tmp_path: Path) -> None:
    """As hg serve lists them; a push of another bookmark keeps them in the server's file."""
    served = fs_http.server.root / "phased"
    _phased_repo(fs_http, served)
    fs_http.hg("bookmark", "-q", "-R", str(served), "-r", "secret()", "on-secret")
    fs_http.hg("bookmark", "-q", "-R", str(served), "-r", "draft()", "feature@elsewhere", "shown")
    clone = tmp_path / "clone"
    fs_http.hg("clone", "-q", "-U", fs_http.url("phased"), str(clone))
    assert fs_http.hg("bookmarks", "-R", str(clone), "-T", "{bookmark} ").stdout == "shown "
    fs_http.hg("bookmark", "-q", "-R", str(clone), "-r", "0", "pushed")
    push = fs_http.hg("push", "-B", "pushed", "-R", str(clone), fs_http.url("phased", password=PASSWORD),
                      check=False)
    assert "exporting bookmark pushed" in push.stdout, push.stdout + push.stderr  # exit 1: no changesets
    on_server = fs_http.hg("bookmarks", "-R", str(served), "-T", "{bookmark} ").stdout.split()
    assert sorted(on_server) == ["feature@elsewhere", "on-secret", "pushed", "shown"]
    fs_http.hg("verify", "-q", "-R", str(served))


@pytest.mark.parametrize(("publish", "phases"), [(True, "public public public"), (False, "draft draft public")])
def test_a_stream_clone_carries_phases_only_from_a_server_that_does_not_publish(
        fs_http: HgHttp, tmp_path: Path, publish: bool, phases: str) -> None:
    served = fs_http.server.root / "phased"
    _phased_repo(fs_http, served)
    fs_http.hg("phase", "-q", "--force", "--draft", "-R", str(served), "-r", "tip")  # no secret left
    (served / ".hg" / "hgrc").write_text(f"[phases]\npublish = {publish}\n")
    clone = tmp_path / "clone"
    result = fs_http.hg("clone", "--stream", "-U", "--debug", fs_http.url("phased"), str(clone))
    assert "streaming all changes" in result.stdout
    assert ("adding [s] phaseroots" in result.stdout) is not publish
    shown = fs_http.hg("log", "-R", str(clone), "-T", "{phase} ").stdout.split()
    assert shown == phases.split()  # newest first
    fs_http.hg("verify", "-q", "-R", str(clone))


def _change(hghttp: HgHttp, repo: Path, text: str) -> None:
    """Write ``f`` and commit it (one hg run: ``commit -A``)."""
    (repo / "f").write_text(text + "\n")
    hghttp.hg("commit", "-q", "-A", "-R", str(repo), "-m", text)


def test_heads_bookmarks_and_phases_over_http(fs_http: HgHttp, tmp_path: Path) -> None:
    """Backend-independent past the transport (the SSH tests run these on both backends)."""
    hghttp, url = fs_http, fs_http.push_url("heads")
    hghttp.server.backend.create("heads", Kind.HG)
    one, two = tmp_path / "one", tmp_path / "two"
    hghttp.hg("clone", "-q", hghttp.url("heads"), str(one))
    _change(hghttp, one, "base")
    hghttp.hg("bookmark", "-q", "-R", str(one), "topic")
    hghttp.hg("push", "-q", "-R", str(one), "-B", "topic", url)
    hghttp.hg("clone", "-q", hghttp.url("heads"), str(two))
    _change(hghttp, one, "one")  # the active bookmark moves
    _change(hghttp, two, "two")
    bundle1 = hghttp.hg("push", "-R", str(one), "-B", "topic", "--config", "devel.legacy.exchange=bundle1", url)
    assert "remote: added 1 changesets" in bundle1.stdout  # the '<int>\n<output>' reply; the bookmark by pushkey
    refused = hghttp.hg("push", "-R", str(two), url, check=False)
    assert refused.returncode != 0 and "push creates new remote head" in refused.stderr
    hghttp.hg("push", "-q", "-f", "-R", str(two), url)
    hghttp.hg("pull", "-q", "-R", str(two))
    seen = hghttp.hg("log", "-R", str(two), "-r", "head()", "-T", "{desc}:{phase}:{bookmarks}\n").stdout
    assert sorted(seen.splitlines()) == ["one:public:topic", "two:public:"]  # pushed to a publishing server
    hghttp.hg("bookmark", "-q", "-R", str(two), "-d", "topic")
    hghttp.hg("push", "-q", "-R", str(two), "-B", "topic", url, check=False)
    assert "topic" not in hghttp.hg("debugpushkey", hghttp.url("heads"), "bookmarks").stdout
    hghttp.verify_server("heads", tmp_path)


# ------------------------------------------------------------------ refusals with real hg


def _pushable(hghttp: HgHttp, tmp_path: Path) -> Path:
    hghttp.server.backend.create("p", Kind.HG)
    work = tmp_path / "work-p"
    hghttp.hg("init", str(work))
    _change(hghttp, work, "change")
    return work


def _store(server: RunningServer, name: str) -> dict[str, bytes]:
    """Every file of the fs repository's store, to prove that a refusal wrote nothing."""
    store = server.root / name / ".hg" / "store"
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def test_push_needs_the_right_credentials(fs_http: HgHttp, tmp_path: Path) -> None:
    work = _pushable(fs_http, tmp_path)
    before = _store(fs_http.server, "p")
    anonymous = fs_http.hg("push", "-R", str(work), fs_http.url("p"), check=False)
    assert anonymous.returncode != 0 and "authorization required" in anonymous.stderr
    wrong = fs_http.hg("push", "-R", str(work), fs_http.url("p", "wrong"), check=False)
    assert wrong.returncode != 0 and "authorization failed" in wrong.stderr
    assert _store(fs_http.server, "p") == before
    fs_http.hg("push", "-q", "-R", str(work), fs_http.push_url("p"))
    assert _store(fs_http.server, "p") != before


def test_push_reports_count_as_hg_counts(fs_http: HgHttp, tmp_path: Path) -> None:
    """A file revision the server has is no change, and a head that closes its branch is no new head."""
    work = _pushable(fs_http, tmp_path)
    (fs_http.server.root / "p" / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    fs_http.hg("push", "-q", "-R", str(work), fs_http.push_url("p"))
    fs_http.hg("commit", "-q", "--amend", "-R", str(work), "-m", "same files, new message")
    amended = fs_http.hg("push", "-f", "-R", str(work), fs_http.push_url("p"))
    assert "added 1 changesets with 0 changes to 1 files (+1 heads)" in amended.stdout, amended.stdout
    fs_http.hg("branch", "-q", "-R", str(work), "side")
    _change(fs_http, work, "side")
    fs_http.hg("push", "-q", "--new-branch", "-R", str(work), fs_http.push_url("p"))
    fs_http.hg("commit", "-q", "--close-branch", "-R", str(work), "-m", "closed")
    closing = fs_http.hg("push", "-R", str(work), fs_http.push_url("p"))
    assert "added 1 changesets with 0 changes to 0 files (-1 heads)" in closing.stdout, closing.stdout
    fs_http.hg("verify", "-q", "-R", str(fs_http.server.root / "p"))


@pytest.mark.parametrize("settings, message", [
    ({"read_only": True}, "HTTP Error 403: this server is read-only"),
    ({"allow_push_over_http": False}, "HTTP Error 403: pushing over plain HTTP is refused; use https://"),
    ({"read_only": True, "allow_push_over_http": False}, "HTTP Error 403: this server is read-only"),
])
def test_push_refused_by_the_server(make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,
                                    tmp_path: Path, settings: dict[str, Any], message: str) -> None:
    hghttp = HgHttp(make_server("fs", **_settings(htpasswd, **settings)), client)
    work = _pushable(hghttp, tmp_path)
    before = _store(hghttp.server, "p")
    refused = hghttp.hg("push", "-R", str(work), hghttp.push_url("p"), check=False)
    assert refused.returncode != 0 and message in refused.stderr
    assert _store(hghttp.server, "p") == before
    assert raw(hghttp.server.port("http"), "GET", "/p?cmd=heads").status == 200


def test_a_page_url_given_to_hg_names_the_repository_it_belongs_to(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path, tmp_path: Path) -> None:
    """A browser's URL of a repository's page (``NAME/rev/tip``, ``NAME/log``) given to ``hg clone``
    was answered "repository NAME/rev/tip not found" (hg serve: "Not Found"); now the repository
    whose page it is, with its URL, to a user who may read it.  A page of a repository the user
    may not read, or of none, is still "not found"."""
    policy = tmp_path / "pages-policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "private/app"\nread = ["bob"]\n')
    hghttp = HgHttp(make_server("fs", **_settings(htpasswd, config_file=str(policy))), client)
    for name in ("team/app", "private/app"):
        client.hg("init", str(hghttp.server.root / name))
    base = hghttp.url("team/app")
    for page in ("log", "rev/tip", "file/tip/a.txt", "raw-file/tip/a.txt", "json-tags", "archive/tip.zip"):
        answer = hghttp.hg("clone", "-q", f"{base}/{page}", str(tmp_path / "copy"), check=False)
        assert answer.returncode != 0 and not (tmp_path / "copy").exists()
        assert (f"HTTP Error 404: team/app/{page} is a page of repository team/app, not a repository: use {base}\n"
                in answer.stderr), answer.stderr
    for name in ("team/app/nope", "team/nope/log", "private/app/log"):
        answer = hghttp.hg("identify", hghttp.url(name), check=False)
        assert answer.returncode != 0 and "is a page of" not in answer.stderr, answer.stderr
        assert f"repository {name} not found" in answer.stderr, answer.stderr


# ------------------------------------------------------------------ negotiation with real hg


@pytest.fixture
def served_events() -> Iterator[list[LogEvent]]:
    """The log events of the hg HTTP handler while the test runs."""
    events: list[LogEvent] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if event.get("log_namespace") == "gateway.hg_http":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def _getbundle_encoding(events: list[LogEvent]) -> tuple[str, str]:
    served = [(e["media_type"], e["engine"]) for e in events if e.get("command") == "getbundle"]
    assert len(served) == 1, served
    return served[0]


def test_zstd_by_default_zlib_by_server_choice_and_post_args_give_the_same_clone(
        fs_http: HgHttp, history: Path, tmp_path: Path, served_events: list[LogEvent],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """hg 7.2.4 always offers ``comp=zstd,zlib,none,bzip2`` over HTTP (its ``clientcompressionengines``
    only reaches the SSH protocaps), so zlib is chosen here by the server's preference order."""
    fs_http.hg("clone", "-q", "-U", str(history), str(fs_http.server.root / "h"))
    debug = ("--debug", "--config", "devel.debug.peer-request=yes")
    default = fs_http.hg("clone", "-q", "-U", *debug, fs_http.url("h"), str(tmp_path / "zstd"))
    assert "X-hgproto-1 0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull" in default.stdout
    assert "X-hgargs-post" not in default.stdout
    assert _getbundle_encoding(served_events) == ("application/mercurial-0.2", "zstd")
    monkeypatch.setattr(gateway.policy, "SETTINGS", WireSettings(engines=(b"zlib", b"zstd"), post_args=True))
    served_events.clear()
    posted = fs_http.hg("clone", "-q", "-U", *debug, fs_http.url("h"), str(tmp_path / "zlib-post"))
    assert "X-hgargs-post" in posted.stdout and "devel-peer-request: POST" in posted.stdout
    assert _getbundle_encoding(served_events) == ("application/mercurial-0.2", "zlib")
    logs = {fs_http.log(tmp_path / n) for n in ("zstd", "zlib-post")}
    assert logs == {fs_http.log(history).replace(" draft ", " public ")}


def test_compression_and_post_args_come_from_the_config_file(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path, history: Path,
        tmp_path: Path, served_events: list[LogEvent]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[hg_http]\ncompression = ["zlib", "none"]\nzlib_level = 1\nhttppostargs = true\n')
    hghttp = HgHttp(make_server("fs", **_settings(htpasswd), config_file=str(policy)), client)
    hghttp.hg("clone", "-q", "-U", str(history), str(hghttp.server.root / "h"))
    caps = raw(hghttp.server.port("http"), "GET", "/h?cmd=capabilities").body.split()
    assert b"compression=zlib,none" in caps and b"httppostargs" in caps
    debug = ("--debug", "--config", "devel.debug.peer-request=yes")
    cloned = hghttp.hg("clone", "-q", "-U", *debug, hghttp.url("h"), str(tmp_path / "c"))
    assert "X-hgargs-post" in cloned.stdout
    assert _getbundle_encoding(served_events) == ("application/mercurial-0.2", "zlib")
    assert hghttp.log(tmp_path / "c") == hghttp.log(history).replace(" draft ", " public ")


def test_clients_of_an_uncompressed_network_get_answers_as_they_are(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path, history: Path,
        tmp_path: Path, served_events: list[LogEvent]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[hg_http]\ncompression = ["zlib"]\nuncompressed_networks = ["127.0.0.0/8", "::1"]\n'
                      '[http]\ntrusted_proxies = ["127.0.0.1"]\n')
    hghttp = HgHttp(make_server("fs", **_settings(htpasswd), config_file=str(policy)), client)
    hghttp.hg("clone", "-q", "-U", str(history), str(hghttp.server.root / "h"))
    port = hghttp.server.port("http")
    assert b"compression=none,zlib" in raw(port, "GET", "/h?cmd=capabilities").body.split()
    # behind a trusted reverse proxy on the same host, the client it names decides, not the proxy
    proxied = raw(port, "GET", "/h?cmd=capabilities", {"X-Forwarded-For": "203.0.113.7"}).body.split()
    assert b"compression=zlib" in proxied
    hghttp.hg("clone", "-q", "-U", hghttp.url("h"), str(tmp_path / "c"))
    assert _getbundle_encoding(served_events) == ("application/mercurial-0.2", "none")
    assert hghttp.log(tmp_path / "c") == hghttp.log(history).replace(" draft ", " public ")
    client.hg("verify", "-q", "-R", str(tmp_path / "c"))


def test_bundle2_part_bound_comes_from_the_config_file(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["*"]\n[limits]\nmax_bundle2_part = 64\n')
    hghttp = HgHttp(make_server("fs", **_settings(htpasswd), config_file=str(policy)), client)
    work = _pushable(hghttp, tmp_path)
    before = _store(hghttp.server, "p")
    refused = hghttp.hg("push", "-R", str(work), hghttp.push_url("p"), check=False)
    assert refused.returncode != 0 and "part is over 64 bytes" in refused.stdout + refused.stderr
    assert _store(hghttp.server, "p") == before
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["*"]\n')
    os.utime(policy, (time.time() + 5, time.time() + 5))  # a new mtime: reloaded on the next check
    deadline = time.monotonic() + 15
    while hghttp.hg("push", "-q", "-R", str(work), hghttp.push_url("p"), check=False).returncode != 0:
        assert time.monotonic() < deadline, "the relaxed limit did not take effect"
        time.sleep(0.5)
    assert _store(hghttp.server, "p") != before


@pytest.mark.parametrize("table, message", [
    ('compression = ["brotli"]', "hg_http.compression: must list distinct engines"),
    ('compression = []', "hg_http.compression: must list distinct engines"),
    ("zstd_level = 99", "hg_http.zstd_level: must be an integer from 1 to 22"),
    ("httppostargs = 1", "hg_http.httppostargs: must be true or false"),
    ('uncompressed_networks = ["lan"]', r"hg_http.uncompressed_networks\[0\]: 'lan' is not an IP address or network"),
    ('uncompressed_networks = "10.0.0.0/8"', "hg_http.uncompressed_networks: must be a list"),
    ("level = 3", "hg_http.level: unknown key"),
])
def test_bad_hg_http_settings_name_the_key(table: str, message: str) -> None:
    from gateway.policy import PolicyError, parse_policy

    with pytest.raises(PolicyError, match=message):
        parse_policy("[hg_http]\n" + table + "\n", "policy.toml")


# ------------------------------------------------------------------ raw requests


@dataclass
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def raw(port: int, method: str, target: str, headers: dict[str, str] | None = None,
        body: bytes | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, response.reason, {k.lower(): v for k, v in response.getheaders()},
                      response.read())
    finally:
        conn.close()


V2_PROTO = {"X-HgProto-1": "0.1 0.2 comp=zstd,zlib,none,bzip2 partial-pull"}


@pytest.fixture
def raw_repo(fs_http: HgHttp, history: Path) -> HgHttp:
    fs_http.hg("clone", "-q", "-U", str(history), str(fs_http.server.root / "raw"))
    return fs_http


def _three_ways(port: int, command: str, args: dict[str, str]) -> list[Answer]:
    encoded = urllib.parse.urlencode(sorted(args.items()))
    pieces = [encoded[i:i + 100] for i in range(0, len(encoded), 100)]
    via_headers = {f"X-HgArg-{n}": piece for n, piece in enumerate(pieces, start=1)}
    return [
        raw(port, "GET", f"/raw?cmd={command}&{encoded}"),
        raw(port, "GET", f"/raw?cmd={command}", via_headers),
        raw(port, "POST", f"/raw?cmd={command}", {"X-HgArgs-Post": str(len(encoded))}, encoded.encode()),
    ]


def test_three_argument_carriers_give_identical_bytes(raw_repo: HgHttp, history: Path) -> None:
    port = raw_repo.server.port("http")
    heads = raw(port, "GET", "/raw?cmd=heads").body.split()
    nodes = " ".join([h.decode() for h in heads] + ["0" * 40, "1" * 40])
    cmds = f"heads ;known nodes={nodes};listkeys namespace=phases;lookup key=stable"
    for command, args in [("known", {"nodes": nodes}), ("listkeys", {"namespace": "bookmarks"}),
                          ("batch", {"cmds": cmds})]:
        answers = _three_ways(port, command, args)
        assert {(a.status, a.headers["content-type"], a.body) for a in answers} == {
            (200, "application/mercurial-0.1", answers[0].body)}
    assert _three_ways(port, "known", {"nodes": nodes})[0].body == b"1" * len(heads) + b"10"  # null is known


def test_getbundle_media_types_for_0_2_and_0_1_clients(raw_repo: HgHttp) -> None:
    port = raw_repo.server.port("http")
    heads = raw(port, "GET", "/raw?cmd=heads").body.decode().split()
    args = {"bundlecaps": "HG20", "cg": "1", "common": "0" * 40, "heads": " ".join(heads)}
    header = {"X-HgArg-1": urllib.parse.urlencode(args)}
    v2 = raw(port, "GET", "/raw?cmd=getbundle", {**header, **V2_PROTO})
    assert v2.headers["content-type"] == "application/mercurial-0.2"
    assert v2.body[:9] == b"\x04zstd\x28\xb5\x2f\xfd"
    assert "x-hgproto-1" in v2.headers["vary"].lower() and "x-hgarg-1" in v2.headers["vary"].lower()
    v1 = raw(port, "GET", "/raw?cmd=getbundle", {**header, "X-HgProto-1": "0.1"})
    assert v1.headers["content-type"] == "application/mercurial-0.1"
    assert zlib.decompress(v1.body).startswith(b"HG20")
    stream = raw(port, "GET", "/raw?cmd=stream_out", V2_PROTO)
    assert stream.headers["content-type"] == "application/mercurial-0.1" and stream.body.startswith(b"0\n")


def test_bad_requests_are_clear_errors_and_the_server_keeps_serving(raw_repo: HgHttp) -> None:
    port = raw_repo.server.port("http")
    before = _store(raw_repo.server, "raw")
    cases: list[tuple[str, str, dict[str, str], bytes | None, int, str]] = [
        ("GET", "/raw?cmd=frobnicate", {}, None, 400, "no such method: frobnicate"),
        ("GET", "/raw?cmd=heads", {f"X-HgArg-{n}": "a" * 500 for n in range(1, 202)}, None, 431, "more than 200"),
        # a clone naming 10,000 heads: more than 256 KiB of X-HgArg-N headers, refused before they
        # are read as hg's; hg prints the reason phrase alone, which said only "Request Header Fields Too Large"
        ("GET", "/raw?cmd=getbundle", {f"X-HgArg-{n}": "a" * 1000 for n in range(1, 300)}, None, 431,
         "httppostargs"),
        ("GET", "/raw?cmd=unbundle", {"X-HgArg-1": "heads=666f726365"}, None, 405, "push requires POST request"),
        ("GET", "/raw?cmd=heads", {"X-HgProto-1": "0.2 comp=zstd comp=zlib"}, None, 400, "comp= twice"),
        ("GET", "/raw?cmd=known&nodes=zz", {}, None, 400, ""),
        ("POST", "/raw?cmd=unbundle", {"X-HgArg-1": "heads=666f726365"}, b"HG20", 401, "authenticated user"),
        ("GET", "/nope?cmd=heads", {}, None, 404, "nope"),
        # a batched pushkey needs POST and a user like a plain one (CVE-2018-1000132)
        ("GET", "/raw?cmd=batch", {"X-HgArg-1": "cmds=pushkey+key%3Dx%2Cnamespace%3Dbookmarks%2Cnew%3D%2Cold%3D"},
         None, 405, "push requires POST request"),
        ("POST", "/raw?cmd=batch", {"X-HgArg-1": "cmds=pushkey+key%3Dx%2Cnamespace%3Dbookmarks%2Cnew%3D%2Cold%3D"},
         b"", 401, "authenticated user"),
    ]
    for method, target, headers, body, status, reason in cases:
        answer = raw(port, method, target, headers, body)
        assert (answer.status, reason in answer.reason) == (status, True), (target, answer)
    assert raw(port, "POST", "/raw?cmd=unbundle", {}, b"x").headers["www-authenticate"] == 'Basic realm="hgwire"'
    branches = raw(port, "GET", "/raw?cmd=branches&nodes=" + "0" * 40)
    assert branches.status == 200 and branches.headers["content-type"] == "application/hg-error"
    assert _store(raw_repo.server, "raw") == before
    assert raw(port, "GET", "/raw?cmd=capabilities").status == 200


def _basic() -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}


def test_a_client_that_goes_away_stops_the_stream(fs_http: HgHttp, tmp_path: Path,
                                                  served_events: list[LogEvent]) -> None:
    big = tmp_path / "big"
    fs_http.hg("init", str(big))
    (big / "noise.bin").write_bytes(random.randbytes(12 << 20))  # incompressible: the answer outgrows the buffers
    fs_http.hg("commit", "-q", "-A", "-R", str(big), "-m", "noise")
    fs_http.hg("clone", "-q", "-U", str(big), str(fs_http.server.root / "big"))
    port = fs_http.server.port("http")
    args = urllib.parse.urlencode({"bundlecaps": "HG20", "cg": "1", "common": "0" * 40,
                                   "heads": raw(port, "GET", "/big?cmd=heads").body.decode().strip()})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # the answer cannot all fit in buffers
    conn.request("GET", "/big?cmd=getbundle", headers={"X-HgArg-1": args, **V2_PROTO})
    response = conn.getresponse()
    assert response.status == 200 and len(response.read(4096)) == 4096
    conn.close()
    deadline = time.monotonic() + 20
    while not any(e.get("outcome") == "client gone" for e in served_events) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [e["command"] for e in served_events if e.get("outcome") == "client gone"] == ["getbundle"]
    assert raw(port, "GET", "/big?cmd=heads").status == 200


def test_truncated_push_bodies_change_nothing(raw_repo: HgHttp, history: Path, tmp_path: Path) -> None:
    port = raw_repo.server.port("http")
    work = tmp_path / "ahead"
    raw_repo.hg("clone", "-q", str(history), str(work))
    _commit(raw_repo.client, work, "new", "new\n", "ahead")
    bundle = tmp_path / "b.hg"
    raw_repo.hg("bundle", "-q", "-R", str(work), "-r", "tip", "--base", "tip~1", "-t", "zstd-v2", str(bundle))
    data = bundle.read_bytes()
    before = _store(raw_repo.server, "raw")
    push_headers = {**_basic(), "X-HgArg-1": "heads=666f726365", "Content-Type": "application/mercurial-0.1"}
    cut = raw(port, "POST", "/raw?cmd=unbundle", push_headers, data[: len(data) // 2])
    assert cut.status == 200 and cut.headers["content-type"] == "application/mercurial-0.1"
    assert b"error:abort" in cut.body.lower() or cut.body.startswith(b"0\n")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # the body never arrives whole
    conn.putrequest("POST", "/raw?cmd=unbundle")
    for name, value in {**push_headers, "Content-Length": str(len(data))}.items():
        conn.putheader(name, value)
    conn.endheaders(data[:100])
    conn.close()
    assert _store(raw_repo.server, "raw") == before
    assert raw(port, "GET", "/raw?cmd=heads").status == 200
    whole = raw(port, "POST", "/raw?cmd=unbundle", push_headers, data)
    assert whole.status == 200 and b"reply:changegroup" in whole.body.lower()
    assert _store(raw_repo.server, "raw") != before


# ------------------------------------------------------------------ SSH and HTTP agree


def _ssh_string_replies(command: str, script: bytes, count: int) -> list[bytes]:
    """Run ``hg serve --stdio`` over SSH with a raw request script; the ``count`` string replies."""
    done = subprocess.run(command.split() + ["alice@127.0.0.1", "hg -R raw serve --stdio"], input=script,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    replies = []
    for _ in range(count):
        length, _, out = out.partition(b"\n")
        replies.append(out[: int(length)])
        out = out[int(length):]
    return replies


def _ssh_request(command: bytes, star: bool = False, **args: bytes) -> bytes:
    """One SSH request: the declared arguments, sorted, then an empty ``*`` dict if the command has one."""
    named = b"".join(b"%s %d\n%s" % (k.encode(), len(v), v) for k, v in sorted(args.items()))
    return command + b"\n" + named + (b"* 0\n" if star else b"")


def test_http_and_ssh_answer_read_commands_byte_for_byte(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path, ssh_keys: SshKeys,
        history: Path) -> None:
    server = make_server("fs", **_settings(htpasswd, **ssh_server_settings(ssh_keys)))
    client.hg("clone", "-q", "-U", str(history), str(server.root / "raw"))
    port = server.port("http")
    heads = raw(port, "GET", "/raw?cmd=heads").body
    nodes = heads.strip() + b" " + b"2" * 40
    requests: list[tuple[bytes, dict[str, bytes]]] = [
        (b"heads", {}), (b"known", {"nodes": nodes}), (b"branchmap", {}),
        (b"listkeys", {"namespace": b"bookmarks"}), (b"listkeys", {"namespace": b"phases"}),
        (b"lookup", {"key": b"stable"}), (b"lookup", {"key": b"nosuchthing"}),
    ]
    over_http = [raw(port, "GET", f"/raw?cmd={cmd.decode()}&" + urllib.parse.urlencode(args)).body
                 for cmd, args in requests]
    script = b"".join(_ssh_request(cmd, cmd == b"known", **args) for cmd, args in requests)
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    assert _ssh_string_replies(ssh.ssh, script, len(requests)) == over_http
    assert over_http[0] == heads and over_http[1].endswith(b"0")


# ------------------------------------------------------------------ HTTPS


def _tls_files(base: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, key.pem, cert.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hgwire test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = base / "ca.pem", base / "key.pem", base / "cert.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths


def test_clone_and_push_over_https(make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,
                                   history: Path, tmp_path: Path) -> None:
    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    ca, key, cert = _tls_files(tmp_path)
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    hghttps = HgHttp(make_server("fs", http=[endpoint], htpasswd=str(htpasswd)), client)
    assert hghttps.url("r").startswith("https://127.0.0.1:")
    hghttps.server.backend.create("r", Kind.HG)
    trust = ("--config", f"web.cacerts={ca}")
    hghttps.hg("push", "-q", *trust, "-R", str(history), "--new-branch", hghttps.push_url("r"))
    clone = tmp_path / "clone"
    hghttps.hg("clone", "-q", *trust, hghttps.url("r"), str(clone))
    assert hghttps.log(clone) == hghttps.log(history).replace(" draft ", " public ")
    untrusted = hghttps.hg("clone", "-q", hghttps.url("r"), str(tmp_path / "untrusted"), check=False)
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr.lower()
    context = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", hghttps.server.port("http"), context=context, timeout=30)
    conn.request("GET", "/r?cmd=capabilities")
    assert b"httpmediatype=0.1rx,0.1tx,0.2tx" in conn.getresponse().read()
    conn.close()


def test_head_of_a_command_runs_nothing_and_answers_as_get_would(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``HEAD ?cmd=getbundle`` made the whole bundle (and ran the repository's ``preoutgoing``
    hook) to drop it; now it is checked as GET is and answered 200 with hg's media type and no
    body, running nothing; GET still runs the command, and HEAD's refusals are GET's."""
    server = make_server("fs", http=[LOOPBACK])
    port = server.port("http")
    repo = server.root / "heads"
    client.hg("init", str(repo))
    (repo / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "1700000000 0", "-m", "a")
    marker = tmp_path / "bundled"
    (repo / ".hg" / "hgrc").write_text(f"[hooks]\npreoutgoing.mark = touch {marker}\n")
    tip = client.hg("log", "-R", str(repo), "-r", "tip", "-T", "{node}").stdout
    target = f"/heads?cmd=getbundle&common={'0' * 40}&heads={tip}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("HEAD", target)
        head = conn.getresponse()
        assert (head.status, head.read(), head.getheader("Content-Type")) == (200, b"", "application/mercurial-0.1")
        assert not marker.exists()  # nothing was bundled
        conn.request("GET", target)  # the same connection: nothing was left on it
        get = conn.getresponse()
        assert get.status == 200 and get.getheader("Content-Type") == "application/mercurial-0.1" and get.read()
        assert marker.exists()
    finally:
        conn.close()
    assert raw(port, "HEAD", "/nothing?cmd=getbundle").status == 404
    (repo / ".hg" / "hgrc").write_text("[web]\ndeny_read = *\n")
    assert raw(port, "HEAD", target).status == 401
