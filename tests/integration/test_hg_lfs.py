"""Mercurial's lfs extension against the HTTP listener, with the real hg client: a push uploads the
blobs through the LFS batch API (``NAME/.git/info/lfs``, where hg's client looks) before its
changesets, whose file revisions hold pointers (flag ``EXTSTORED``); the repository gains the
``lfs`` requirement, ``hg verify`` on the server finds every blob in hg's own layout, and a clone
gets the files back.  A repository whose hgrc does not enable the extension takes no pointers."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

from twisted.logger import globalLogPublisher

from gateway.audit import AUDIT_NAMESPACE
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import PASSWORD, HgHttp, htpasswd  # noqa: F401 - a fixture

LFS = ("--config", "extensions.lfs=", "--config", 'lfs.track=size(">1KB")')


def test_lfs_blobs_go_up_with_a_push_and_come_down_with_a_clone(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    peer, url, server = _served("http", make_server, client, ssh_keys, htpasswd)
    repo = server.root / "blobs"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n")
    work = tmp_path / "work"
    peer.hg(*LFS, "clone", "-q", url("blobs"), str(work))
    data = os.urandom(1 << 20)
    (work / "big.bin").write_bytes(data)
    (work / "small.txt").write_text("small\n")
    client.hg(*LFS, "commit", "-q", "-A", "-m", "big and small", cwd=work)
    events: list[dict[str, object]] = []

    def observe(event: dict[str, object]) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE and event.get("action") == "lfs-upload":
            events.append(event)

    globalLogPublisher.addObserver(observe)  # type: ignore[arg-type]
    try:
        peer.hg(*LFS, "push", "-R", str(work), url("blobs"))
    finally:
        globalLogPublisher.removeObserver(observe)  # type: ignore[arg-type]

    oid = hashlib.sha256(data).hexdigest()
    assert (repo / ".hg" / "store" / "lfs" / "objects" / oid[:2] / oid[2:]).read_bytes() == data
    assert [(e["proto"], e["user"], e["outcome"]) for e in events] == [("hg-http", "alice", "ok")]
    assert "lfs" in (repo / ".hg" / "store" / "requires").read_text().split()
    client.hg("--config", "extensions.lfs=", "verify", "-q", "-R", str(repo))
    caps = peer.hg("debugcapabilities", url("blobs")).stdout
    assert "lfs-serve" in caps

    clone = tmp_path / "clone"
    peer.hg("clone", "-q", url("blobs"), str(clone))  # lfs-serve: hg loads its extension by itself
    assert (clone / "big.bin").read_bytes() == data
    assert (clone / "small.txt").read_text() == "small\n"


def test_a_repository_without_the_extension_takes_no_lfs_pointers(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path) -> None:
    peer, url, server = _served("http", make_server, client, ssh_keys, htpasswd)
    repo = server.root / "plain"
    client.hg("init", str(repo))
    work = tmp_path / "work"
    peer.hg(*LFS, "clone", "-q", url("plain"), str(work))
    (work / "big.bin").write_bytes(os.urandom(4096))
    client.hg(*LFS, "commit", "-q", "-A", "-m", "big", cwd=work)
    refused = peer.hg(*LFS, "push", "-R", str(work), url("plain"), check=False)
    assert refused.returncode != 0
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == ""
    assert not (repo / ".hg" / "store" / "lfs").exists()


def test_an_lfs_refusal_tells_hg_users_why(make_server: Callable[..., RunningServer], client: Client,
                                            htpasswd: Path, tmp_path: Path) -> None:
    """hg's LFS client prints only the status line (``HTTP Error 403: <phrase>``), never the JSON
    message git-lfs shows: the reason is the phrase too."""
    work = tmp_path / "work"
    client.hg("init", str(work))
    (work / "big.bin").write_bytes(os.urandom(4096))
    client.hg(*LFS, "commit", "-q", "-A", "-m", "big", cwd=work)
    refusals = [({}, "", ("pushing over plain HTTP is refused; use https:// (or start hgwire with "
                          "--allow-push-over-http)")),
                ({"allow_push_over_http": True}, "[web]\nallow_push = bob\n",
                 "push not authorized by the repository's [web] settings"),
                ({"read_only": True}, "", "this server is read-only; pushes and repository creation are refused")]
    for settings, web, reason in refusals:
        server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), **settings)
        repo = server.root / "blobs"
        client.hg("init", str(repo))
        (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n" + web)
        refused = client.hg(*LFS, "push", "-R", str(work), HgHttp(server, client).push_url("blobs"), check=False)
        assert refused.returncode != 0
        assert f"abort: LFS HTTP error: HTTP Error 403: {reason}\n" in refused.stderr, refused.stderr
        assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == ""
        assert not (repo / ".hg" / "store" / "lfs").exists()


def test_a_batch_of_a_whole_push_is_answered(make_server: Callable[..., RunningServer], client: Client,
                                             htpasswd: Path) -> None:
    """hg's client asks about every LFS object of a push in one batch request, as its urllib writes
    it: 20,000 objects (twice the bound there was) get their actions, the answer streamed in chunks."""
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True)
    repo = server.root / "many"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n")
    oids = [hashlib.sha256(b"%d" % index).hexdigest() for index in range(20_000)]
    body = json.dumps({"objects": [{"oid": oid, "size": 9} for oid in oids], "operation": "upload"}).encode()
    request = urllib.request.Request(HgHttp(server, client).url("many") + "/.git/info/lfs/objects/batch", data=body,
                                     headers={"Accept": "application/vnd.git-lfs+json",
                                              "Content-Type": "application/vnd.git-lfs+json",
                                              "Authorization": "Basic " + base64.b64encode(
                                                  f"alice:{PASSWORD}".encode()).decode()})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 200 and answer.headers["Transfer-Encoding"] == "chunked"
        objects = json.loads(answer.read())["objects"]
    assert [entry["oid"] for entry in objects] == oids
    assert {entry["actions"]["upload"]["href"] for entry in objects} == {
        HgHttp(server, client).url("many") + "/info/lfs/objects/" + oid for oid in oids}
