"""Git LFS over HTTP with the real ``git lfs`` client: a push uploads the tracked files' objects
(batch API, basic transfers), a clone downloads them into its working tree, the server keeps each
under its SHA-256 as git-lfs lays them out, and what may not be read or pushed is refused as for
git itself."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from backends.interfaces import Kind
from backends.lfs import LfsStore
from gateway.audit import AUDIT_NAMESPACE
from tests.conftest import LOOPBACK, Client, SshKeys
from tests.integration.test_git_daemon import assert_consistent
from tests.integration.test_git_transports import PASSWORD, TRANSPORTS, bcrypt

pytestmark = pytest.mark.skipif(shutil.which("git-lfs") is None,
                                reason="the git-lfs client is not installed (make test installs it)")


def _tracked_work(client: Client, url: str, data: bytes, notes: bool = False) -> Path:
    """A clone of ``url`` with git-lfs tracking ``*.bin``, and a commit of ``video.bin`` holding ``data``
    (and a plain ``notes.txt``)."""
    client.git("lfs", "install", "--skip-repo")
    work = client.cwd / "media"
    client.git("clone", "-q", url, str(work))
    client.git("lfs", "track", "*.bin", cwd=work)
    (work / "video.bin").write_bytes(data)
    if notes:
        (work / "notes.txt").write_text("notes\n")
    client.git("add", ".gitattributes", "video.bin", *(["notes.txt"] if notes else []), cwd=work)
    client.git("commit", "-q", "-m", "media", cwd=work)
    return work


def _alice(tmp_path: Path) -> str:
    """An htpasswd file where alice has ``PASSWORD``."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode() + "\n")
    return str(htpasswd)


def test_lfs_objects_go_up_with_a_push_and_come_down_with_a_clone(make_server: Any, client: Client,
                                                                  ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = TRANSPORTS["http"](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    url = server.git_url("media")
    data = os.urandom(2 << 20)
    work = _tracked_work(client, url, data, notes=True)
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE and event.get("action") == "lfs-upload":
            events.append(event)

    globalLogPublisher.addObserver(observe)  # type: ignore[arg-type]
    try:
        client.git("push", "origin", "HEAD:main", cwd=work)  # (git-lfs's progress lines come only now and then)
    finally:
        globalLogPublisher.removeObserver(observe)  # type: ignore[arg-type]

    oid = hashlib.sha256(data).hexdigest()
    stored = server.running.root / "media.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert stored.read_bytes() == data
    assert [(e["user"], e["repo"], e["outcome"], e["changes"][0]["name"]) for e in events] == [
        ("alice", "media.git", "ok", f"lfs:{oid}")]
    pointer = client.git("--git-dir", str(server.running.root / "media.git"), "show", "main:video.bin").stdout
    assert f"oid sha256:{oid}" in pointer, "history holds the pointer, not the file"

    clone = client.cwd / "clone"
    client.git("clone", "-q", url, str(clone))
    assert (clone / "video.bin").read_bytes() == data, "the smudge filter downloaded it"
    assert client.git("lfs", "fsck", cwd=clone).returncode == 0
    assert_consistent(server, client, "media")  # type: ignore[arg-type]


def lfs_api(url: str, body: object = None, user: str | None = "alice", method: str = "POST"
            ) -> tuple[int, dict[str, Any]]:
    """One request to the LFS API (``body``: JSON, or bytes as they are), as ``user`` with
    ``PASSWORD``: its status and JSON answer."""
    import base64

    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"})
    if user is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def _batch(url: str, body: dict[str, object], auth: bool = True) -> tuple[int, dict[str, Any]]:
    return lfs_api(url, body, "alice" if auth else None)


def test_the_batch_api_refuses_what_git_would(make_server: Any, client: Client, ssh_keys: SshKeys,
                                              tmp_path: Path) -> None:
    server = TRANSPORTS["http"](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    port = server.running.port("http")
    batch = f"http://127.0.0.1:{port}/media.git/info/lfs/objects/batch"
    oid = "a" * 64
    upload = {"operation": "upload", "objects": [{"oid": oid, "size": 3}]}
    assert _batch(batch, upload, auth=False)[0] == 401  # pushing needs a user
    status, answer = _batch(batch, upload)
    assert status == 200 and answer["objects"][0]["actions"]["upload"]["href"].endswith(f"/objects/{oid}")
    status, answer = _batch(batch, {"operation": "download", "objects": [{"oid": oid, "size": 3}]})
    assert answer["objects"][0]["error"]["code"] == 404
    status, answer = _batch(batch, {"operation": "upload", "objects": [{"oid": "../../config", "size": 3}]})
    assert answer["objects"][0]["error"]["code"] == 422
    assert _batch(batch, {"operation": "delete", "objects": []})[0] == 422
    assert _batch(batch, {"operation": "upload", "hash_algo": "sha512", "objects": []})[0] == 409
    status, answer = _batch(f"http://127.0.0.1:{port}/nosuch.git/info/lfs/objects/batch", upload)
    assert status == 404 and "not found" in answer["message"]

    import base64
    put = urllib.request.Request(f"http://127.0.0.1:{port}/media.git/info/lfs/objects/{oid}", data=b"abc",
                                 method="PUT", headers={"Authorization": "Basic " + base64.b64encode(
                                     f"alice:{PASSWORD}".encode()).decode()})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(put, timeout=30)
    assert refused.value.code == 400  # "abc" does not hash to aaaa… (400: git-lfs goes on past a 422)
    assert not (server.running.root / "media.git" / "lfs" / "objects" / "aa" / "aa" / oid).exists()


def test_lfs_over_an_ssh_remote_needs_no_http_listener(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                       tmp_path: Path) -> None:
    """git-lfs 3 speaks its pure SSH protocol (``git-lfs-transfer``) first: objects go up and come
    down, and locks are taken and listed, over the SSH channel itself, with the SSH user's rights."""
    from tests.conftest import ssh_server_settings

    server = make_server("fs", **ssh_server_settings(ssh_keys))  # no --http at all
    server.backend.create("media", Kind.GIT)
    port = server.port("ssh")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(port)
    url = f"ssh://git@127.0.0.1:{port}/media.git"
    data = os.urandom(24 << 20)  # (larger than the channel's window: written while it comes, paused and resumed)
    work = _tracked_work(client, url, data)
    client.git("push", "origin", "HEAD:main", cwd=work)
    oid = hashlib.sha256(data).hexdigest()
    assert (server.root / "media.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes() == data
    clone = client.cwd / "clone"
    client.git("clone", "-q", url, str(clone))
    assert (clone / "video.bin").read_bytes() == data
    assert client.git("lfs", "fsck", cwd=clone).returncode == 0
    client.git("lfs", "lock", "video.bin", cwd=work)
    listed = client.git("lfs", "locks", cwd=clone).stdout
    assert "video.bin" in listed and "alice" in listed, listed
    (work / "video.bin").write_bytes(data[::-1])
    client.git("commit", "-q", "-am", "reversed", cwd=work)
    client.git("config", "lfs.locksverify", "true", cwd=work)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)  # its own lock: the push goes on
    client.git("lfs", "unlock", "video.bin", cwd=work)
    assert "video.bin" not in client.git("lfs", "locks", cwd=clone).stdout
    client.git("pull", "-q", "origin", "main", cwd=clone)
    assert (clone / "video.bin").read_bytes() == data[::-1]
    client.git("--git-dir", str(server.root / "media.git"), "fsck", "--full", "--strict")


def test_git_lfs_authenticate_hands_out_a_token_for_the_http_api(make_server: Any, client: Client,
                                                                 ssh_keys: SshKeys, tmp_path: Path) -> None:
    """An older git-lfs (or one told not to use the pure SSH protocol) asks the SSH server where
    the HTTP API is (``git-lfs-authenticate``): a token for that user, repository and operation."""
    from tests.conftest import LOOPBACK, ssh_server_settings

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    ssh = ssh_keys.command(server.port("ssh")).split()

    def authenticate(operation: str) -> dict[str, Any]:
        done = client.run(*ssh, "git@127.0.0.1", f"git-lfs-authenticate media.git {operation}")
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    upload = authenticate("upload")
    assert upload["href"] == f"http://127.0.0.1:{server.port('http')}/media.git/info/lfs"
    batch = upload["href"] + "/objects/batch"
    body = json.dumps({"operation": "upload", "objects": [{"oid": "a" * 64, "size": 3}]}).encode()
    for token, expected in ((upload, 200), (authenticate("download"), 401)):
        request = urllib.request.Request(batch, data=body, method="POST", headers={
            "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json",
            **token["header"]})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status = answer.status
        except urllib.error.HTTPError as refused:
            status = refused.code
        assert status == expected, token


def _batch_status(href: str, header: dict[str, str]) -> int:
    body = json.dumps({"operation": "upload", "objects": [{"oid": "a" * 64, "size": 3}]}).encode()
    request = urllib.request.Request(href + "/objects/batch", data=body, method="POST", headers={
        "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json", **header})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_an_lfs_token_is_taken_by_every_service_on_the_same_root(reactor: Any, make_server: Any, client: Client,
                                                                 ssh_keys: SshKeys, tmp_path: Path) -> None:
    """Several hgwire processes serving one root (behind one address, or one restarted): a token
    one handed out over SSH opens the HTTP API of another, signed by ``ROOT/.lfs_token_key``; a
    service on another root does not take it."""
    from tests.conftest import LOOPBACK, ssh_server_settings, start_server, stop_server

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("")
    server = make_server("fs", **ssh_server_settings(ssh_keys), http=[LOOPBACK], htpasswd=str(htpasswd))
    server.backend.create("media", Kind.GIT)
    done = client.run(*ssh_keys.command(server.port("ssh")).split(), "git@127.0.0.1",
                      "git-lfs-authenticate media.git upload")
    header = json.loads(done.stdout)["header"]
    assert (server.root / ".lfs_token_key").stat().st_mode & 0o777 == 0o600
    for root, expected in ((server.root, 200), (tmp_path / "another-root", 401)):
        other = start_server(reactor, "fs", root, http=[LOOPBACK], htpasswd=str(htpasswd))
        try:
            if root != server.root:
                other.backend.create("media", Kind.GIT)
            href = f"http://127.0.0.1:{other.port('http')}/media.git/info/lfs"
            assert _batch_status(href, header) == expected
        finally:
            stop_server(reactor, other)


def test_a_read_only_server_takes_no_lfs_upload(make_server: Any, client: Client, tmp_path: Path) -> None:
    import base64

    from tests.conftest import LOOPBACK

    server = make_server("fs", http=[LOOPBACK], htpasswd=_alice(tmp_path), read_only=True)
    server.backend.create("media", Kind.GIT)
    batch = f"http://127.0.0.1:{server.port('http')}/media.git/info/lfs/objects/batch"
    status, answer = _batch(batch, {"operation": "upload", "objects": [{"oid": "a" * 64, "size": 3}]})
    assert status == 403 and "read-only" in answer["message"], answer
    status, _ = _batch(batch, {"operation": "download", "objects": [{"oid": "a" * 64, "size": 3}]})
    assert status == 200
    put = urllib.request.Request(f"http://127.0.0.1:{server.port('http')}/media.git/info/lfs/objects/{'a' * 64}",
                                 data=b"abc", method="PUT", headers={"Authorization": "Basic " + base64.b64encode(
                                     f"alice:{PASSWORD}".encode()).decode()})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(put, timeout=30)
    assert refused.value.code == 403


def test_actions_point_at_the_public_url_when_the_config_file_names_one(make_server: Any, tmp_path: Path) -> None:
    """Behind a reverse proxy that serves hgwire under a path, the hrefs (and the clone URLs of the
    server's pages) follow ``[http] public_url``."""
    from tests.conftest import LOOPBACK

    policy = tmp_path / "hgwire.toml"
    policy.write_text('[http]\npublic_url = "https://proxy.example/scm/"\n\n[[repo]]\npattern = "*"\nwrite = ["alice"]\n')
    server = make_server("fs", http=[LOOPBACK], htpasswd=_alice(tmp_path), config_file=str(policy))
    server.backend.create("media", Kind.GIT)
    batch = f"http://127.0.0.1:{server.port('http')}/media.git/info/lfs/objects/batch"
    status, answer = _batch(batch, {"operation": "upload", "objects": [{"oid": "a" * 64, "size": 3}]})
    assert status == 200, answer
    href = answer["objects"][0]["actions"]["upload"]["href"]
    assert href == "https://proxy.example/scm/media.git/info/lfs/objects/" + "a" * 64
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port('http')}/", timeout=30) as page:
        assert "git clone https://proxy.example/scm/NAME.git" in page.read().decode()  # the clone URLs too


def test_git_lfs_transfer_answers_hostile_input_in_its_own_protocol(make_server: Any, client: Client,
                                                                   ssh_keys: SshKeys) -> None:
    """Raw bytes at ``git-lfs-transfer``: what the protocol does not allow ends the session with a
    ``status 400`` the client can show; a download connection may not put objects or lock (403);
    an object that is not there is a 404; the repository keeps nothing and the server serves on."""
    from protocols import pktline
    from tests.conftest import ssh_server_settings

    server = make_server("fs", **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    ssh = ssh_keys.command(server.port("ssh")).split()

    def pkt(text: str) -> bytes:
        return pktline.encode(text.encode() + b"\n")

    def session(operation: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*ssh, "git@127.0.0.1", f"git-lfs-transfer media.git {operation}"], input=stdin,
                              capture_output=True, timeout=60, env=client.env, check=False)

    version = pkt("version 1") + pktline.FLUSH
    garbage = session("download", version + b"zzzz")
    assert garbage.returncode == 1 and pkt("status 400") in garbage.stdout, garbage
    assert garbage.stdout.startswith(pkt("version=1") + pkt("locking") + pktline.FLUSH + pkt("status 200"))
    oid = "a" * 64
    answered = session("download", version + pkt(f"put-object {oid}") + pkt("size=3") + pktline.DELIM
                       + pktline.encode(b"abc") + pktline.FLUSH + pkt("lock") + pkt("path=a.bin") + pktline.FLUSH
                       + pkt(f"get-object {oid}") + pktline.FLUSH + pkt("quit") + pktline.FLUSH)
    assert answered.returncode == 0, answered
    out = answered.stdout
    assert out.count(pkt("status 403")) == 2 and pkt("status 404") + pktline.DELIM + pkt(
        "Object does not exist") in out and out.endswith(pkt("status 200") + pktline.FLUSH), out
    assert not (server.root / "media.git" / "lfs").exists()
    wrong = session("upload", version + pkt(f"put-object {oid}") + pkt("size=3") + pktline.DELIM
                    + pktline.encode(b"abc") + pktline.FLUSH + pkt("quit") + pktline.FLUSH)
    assert pkt("status 422") in wrong.stdout and wrong.returncode == 0, wrong  # "abc" is not a's
    assert not any(p.is_file() for p in (server.root / "media.git" / "lfs").rglob("*"))  # the wrong upload left nothing
    data = b"hello"
    good = hashlib.sha256(data).hexdigest()
    stored = session("upload", version + pkt(f"put-object {good}") + pkt(f"size={len(data)}") + pktline.DELIM
                     + pktline.encode(data) + pktline.FLUSH + pkt(f"verify-object {good}") + pkt("size=5")
                     + pktline.FLUSH + pkt("quit") + pktline.FLUSH)
    assert stored.returncode == 0 and stored.stdout.count(pkt("status 200")) == 4, stored  # version, put, verify, quit
    fetched = session("download", version + pkt(f"get-object {good}") + pktline.FLUSH + pkt("quit") + pktline.FLUSH)
    assert pkt("size=5") + pktline.DELIM + pktline.encode(data) + pktline.FLUSH in fetched.stdout, fetched


def test_a_transfer_upload_needs_no_temporary_space_and_one_the_disk_cannot_hold_is_answered_507(
        make_server: Any, client: Client, ssh_keys: SshKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    """``git-lfs-transfer`` writes an upload beside its place as it arrives: a full ``TMPDIR``
    (injected: every temporary file fails) does not matter; a full disk (injected: ``fsync``
    fails) answers that ``put-object`` with ``status 507`` and the reason, keeps nothing, and the
    session goes on; once there is room the same upload goes through."""
    import errno
    import tempfile

    from protocols import pktline
    from tests.conftest import ssh_server_settings

    server = make_server("fs", **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    ssh = ssh_keys.command(server.port("ssh")).split()

    def pkt(text: str) -> bytes:
        return pktline.encode(text.encode() + b"\n")

    data = os.urandom(300_000)
    oid = hashlib.sha256(data).hexdigest()
    upload = (pkt("version 1") + pktline.FLUSH + pkt(f"put-object {oid}") + pkt(f"size={len(data)}")
              + pktline.DELIM + b"".join(pktline.encode(data[at:at + 65516]) for at in range(0, len(data), 65516))
              + pktline.FLUSH + pkt("quit") + pktline.FLUSH)

    def session() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*ssh, "git@127.0.0.1", "git-lfs-transfer media.git upload"], input=upload,
                              capture_output=True, timeout=60, env=client.env, check=False)

    def full(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", full)
        refused = session()
    assert refused.returncode == 0 and pkt("status 507") in refused.stdout, refused
    assert b"the server could not store the upload (No space left on device)" in refused.stdout, refused
    assert refused.stdout.endswith(pkt("status 200") + pktline.FLUSH), refused  # quit: the session went on
    assert not any(p.is_file() for p in (server.root / "media.git" / "lfs").rglob("*"))
    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "TemporaryFile", full)
        patched.setattr(tempfile, "NamedTemporaryFile", full)
        stored = session()
    assert stored.returncode == 0 and stored.stdout.count(pkt("status 200")) == 3, stored  # version, put, quit
    kept = server.root / "media.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert kept.read_bytes() == data
    assert [p for p in (server.root / "media.git" / "lfs").rglob("*") if p.is_file()] == [kept]


def test_a_transfer_upload_is_written_as_it_arrives_and_one_cut_short_leaves_nothing(
        make_server: Any, client: Client, ssh_keys: SshKeys) -> None:
    import time

    from protocols import pktline
    from tests.conftest import ssh_server_settings

    server = make_server("fs", **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    ssh = ssh_keys.command(server.port("ssh")).split()
    objects = server.root / "media.git" / "lfs" / "objects"

    def written() -> int:
        return sum(p.stat().st_size for p in objects.rglob(".tmp-*")) if objects.exists() else 0

    def pkt(text: str) -> bytes:
        return pktline.encode(text.encode() + b"\n")

    data = os.urandom(2 << 20)
    oid = hashlib.sha256(data).hexdigest()
    frames = [pktline.encode(data[at:at + 65516]) for at in range(0, len(data), 65516)]
    head = pkt("version 1") + pktline.FLUSH + pkt(f"put-object {oid}") + pkt(f"size={len(data)}") + pktline.DELIM
    for cut in (False, True):
        proc = subprocess.Popen([*ssh, "git@127.0.0.1", "git-lfs-transfer media.git upload"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client.env)
        assert proc.stdin is not None
        proc.stdin.write(head + b"".join(frames[:len(frames) // 2]))
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while written() < len(data) // 4:
            assert time.monotonic() < deadline, "half the upload is written before the rest is sent"
            time.sleep(0.02)
        assert not (objects / oid[:2] / oid[2:4] / oid).exists()
        if cut:
            proc.kill()  # the client gone in the middle
            proc.communicate(timeout=30)
            break
        out, err = proc.communicate(b"".join(frames[len(frames) // 2:]) + pktline.FLUSH + pkt("quit")
                                    + pktline.FLUSH, timeout=60)
        assert proc.returncode == 0 and out.count(pkt("status 200")) == 3, (out, err)
        assert (objects / oid[:2] / oid[2:4] / oid).read_bytes() == data
        (objects / oid[:2] / oid[2:4] / oid).unlink()
    deadline = time.monotonic() + 20
    while any(p.is_file() for p in objects.rglob("*")):
        assert time.monotonic() < deadline, "what was written of the cut upload is removed"
        time.sleep(0.05)


def test_a_session_that_fails_on_its_input_ends_with_an_internal_error_not_a_hang(
        make_server: Any, client: Client, ssh_keys: SshKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a session raises on its input (here: an injected bug in git-lfs-transfer's reader)
    ends that channel at once, ``hgwire: internal error`` on stderr and exit status 1, instead of
    leaving the client waiting; the next session is served."""
    from protocols import git_lfs_transfer as lfs_transfer
    from protocols import pktline
    from tests.conftest import ssh_server_settings

    server = make_server("fs", **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    ssh = ssh_keys.command(server.port("ssh")).split()
    hello = pktline.encode(b"version 1\n") + pktline.FLUSH + pktline.encode(b"quit\n") + pktline.FLUSH

    def session() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*ssh, "git@127.0.0.1", "git-lfs-transfer media.git download"], input=hello,
                              capture_output=True, timeout=60, env=client.env, check=False)

    def broken(self: Any, data: bytes) -> Any:
        raise RuntimeError("an injected bug")

    with monkeypatch.context() as patched:
        patched.setattr(lfs_transfer.TransferReader, "feed", broken)
        failed = session()
    assert failed.returncode == 1 and b"hgwire: internal error" in failed.stderr, failed
    served = session()
    assert served.returncode == 0 and served.stdout.endswith(pktline.encode(b"status 200\n") + pktline.FLUSH), served


def test_the_first_push_of_a_new_repository_with_lfs_objects_makes_it(make_server: Any, client: Client,
                                                                      tmp_path: Path) -> None:
    """``--create-on-push``: git-lfs's pre-push hook uploads the objects before the push names the
    repository; the upload is the push under way, and makes it (it failed "repository not found")."""
    server = make_server("fs", http=[LOOPBACK], htpasswd=_alice(tmp_path), create_on_push=True)
    url = f"http://alice:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{server.port('http')}/fresh.git"
    data = os.urandom(1 << 20)
    client.git("lfs", "install", "--skip-repo")
    work = client.cwd / "fresh"
    client.git("init", "-q", "-b", "main", str(work))
    client.git("lfs", "track", "*.bin", cwd=work)
    (work / "video.bin").write_bytes(data)
    client.git("add", ".gitattributes", "video.bin", cwd=work)
    client.git("commit", "-q", "-m", "media", cwd=work)
    client.git("push", "-q", url, "main", cwd=work)
    oid = hashlib.sha256(data).hexdigest()
    assert (server.root / "fresh.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes() == data
    clone = client.cwd / "fresh-clone"
    client.git("clone", "-q", url, str(clone))
    assert (clone / "video.bin").read_bytes() == data


def test_a_new_repository_s_lfs_upload_to_a_backend_without_lfs_makes_nothing(make_server: Any, client: Client,
                                                                              tmp_path: Path) -> None:
    """``--create-on-push`` on a backend that keeps no LFS objects (memory): the push is refused for
    the reason it always was, and the upload that git-lfs's pre-push hook made first leaves no
    empty repository behind (it made one before it was refused)."""
    server = make_server("memory", http=[LOOPBACK], htpasswd=_alice(tmp_path), create_on_push=True)
    url = f"http://alice:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{server.port('http')}/fresh.git"
    client.git("lfs", "install", "--skip-repo")
    work = client.cwd / "fresh"
    client.git("init", "-q", "-b", "main", str(work))
    client.git("lfs", "track", "*.bin", cwd=work)
    (work / "video.bin").write_bytes(os.urandom(1024))
    client.git("add", ".gitattributes", "video.bin", cwd=work)
    client.git("commit", "-q", "-m", "media", cwd=work)
    refused = client.git("push", url, "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "this repository cannot keep Git LFS objects" in refused.stderr, refused.stderr
    assert not server.backend.exists("fresh") and list(server.backend.list()) == []


def test_another_user_s_lock_over_ssh_says_how_to_force_it(make_server: Any, client: Client,
                                                           ssh_keys: SshKeys) -> None:
    """git-lfs 3 sends no ``force`` over ``git-lfs-transfer``: the refusal says where a forced unlock
    works (it said "unlock it with --force", which the user had just done)."""
    from backends.lfs import LfsLocks
    from protocols import pktline
    from tests.conftest import ssh_server_settings

    server = make_server("fs", **ssh_server_settings(ssh_keys))
    server.backend.create("media", Kind.GIT)
    lock = LfsLocks(str(server.root / "media.git")).create("cover.psd", "bob")
    ssh = ssh_keys.command(server.port("ssh")).split()

    def pkt(text: str) -> bytes:
        return pktline.encode(text.encode() + b"\n")

    stdin = (pkt("version 1") + pktline.FLUSH + pkt(f"unlock {lock.id}") + pkt("refname=refs/heads/main")
             + pktline.FLUSH + pkt("quit") + pktline.FLUSH)
    answered = subprocess.run([*ssh, "git@127.0.0.1", "git-lfs-transfer media.git upload"], input=stdin,
                              capture_output=True, timeout=60, env=client.env, check=False)
    assert pkt("status 403") in answered.stdout, answered
    assert b"'cover.psd' is locked by bob; git-lfs forces an unlock over HTTP only" in answered.stdout, answered
    assert [held.owner for held in LfsLocks(str(server.root / "media.git")).all()] == ["bob"]


def test_an_upload_larger_than_a_request_may_be_is_refused_in_the_batch_answer(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """The batch answer refuses an object over ``max_request_body`` (422, which git-lfs shows) rather
    than handing out an upload the server then answers 413 (git-lfs tried it again and again); a
    413 is logged."""
    server = TRANSPORTS["http"](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    batch = f"http://127.0.0.1:{server.running.port('http')}/media.git/info/lfs/objects/batch"
    big, small = "b" * 64, "c" * 64
    status, answer = _batch(batch, {"operation": "upload", "objects": [{"oid": big, "size": 3 << 30},
                                                                       {"oid": small, "size": 3}]})
    assert status == 200
    refused, taken = answer["objects"]
    assert refused["error"]["code"] == 422 and "larger than this server takes" in refused["error"]["message"]
    assert "actions" not in refused and taken["actions"]["upload"]["href"].endswith(small)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.running.port("http"), timeout=20)
        conn.putrequest("PUT", f"/media.git/info/lfs/objects/{big}")
        conn.putheader("Content-Length", str(3 << 30))
        conn.endheaders()
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    assert any("refused 413" in str(e.get("log_format", "")) for e in events)


def test_a_download_cut_short_is_resumed_where_it_stopped(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                          tmp_path: Path) -> None:
    """git-lfs keeps what it got of an object in ``lfs/incomplete/OID.part`` and asks the rest with
    ``Range: bytes=N-SIZE-1``; a server that answers 200 makes it start over."""
    server = TRANSPORTS["http"](make_server, "fs", client, ssh_keys, tmp_path)
    server.running.backend.create("media", Kind.GIT)
    url = server.git_url("media")
    data = os.urandom(3 << 20)
    work = _tracked_work(client, url, data)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    oid = hashlib.sha256(data).hexdigest()

    clone = client.cwd / "clone"
    client.git("clone", "-q", url, str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
    incomplete = clone / ".git" / "lfs" / "incomplete"
    incomplete.mkdir(parents=True, exist_ok=True)
    (incomplete / f"{oid}.part").write_bytes(data[:1 << 20])  # what an interrupted download left
    pulled = client.git("lfs", "pull", cwd=clone, env={"GIT_TRACE": "1"})
    assert f'server accepted resume download request: "{oid}" from byte {1 << 20}' in pulled.stderr
    assert (clone / "video.bin").read_bytes() == data
    assert client.git("lfs", "fsck", cwd=clone).returncode == 0


def test_an_object_answers_head_and_ranges_as_http_says(make_server: Any, client: Client, tmp_path: Path) -> None:
    running = make_server("fs", http=[LOOPBACK])
    running.backend.create("media", Kind.GIT)
    data = bytes(range(256)) * 40
    oid = hashlib.sha256(data).hexdigest()
    LfsStore(str(running.root / "media.git")).put(oid, len(data), [data])

    def get(method: str, range_header: str | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", running.port("http"), timeout=30)
        try:
            connection.request(method, f"/media.git/info/lfs/objects/{oid}",
                               headers={} if range_header is None else {"Range": range_header})
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    status, headers, body = get("GET")
    assert (status, body, headers["accept-ranges"]) == (200, data, "bytes")
    status, headers, body = get("HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(data)))
    status, headers, body = get("GET", "bytes=100-199")
    assert (status, body, headers["content-range"]) == (206, data[100:200], f"bytes 100-199/{len(data)}")
    status, headers, body = get("GET", "bytes=-5")
    size = len(data)
    assert (status, body, headers["content-range"]) == (206, data[-5:], f"bytes {size - 5}-{size - 1}/{size}")
    status, headers, body = get("HEAD", "bytes=100-")
    assert (status, body, headers["content-length"]) == (206, b"", str(len(data) - 100))
    status, headers, body = get("GET", "bytes=0-1,5-6")  # several ranges: the whole object, as RFC 9110 allows
    assert (status, body) == (200, data)
    status, headers, body = get("GET", f"bytes={len(data)}-")
    assert (status, headers["content-range"]) == (416, f"bytes */{len(data)}")
    assert "starts after the object's" in json.loads(body)["message"]
    missing = "0" * 64
    connection = http.client.HTTPConnection("127.0.0.1", running.port("http"), timeout=30)
    connection.request("HEAD", f"/media.git/info/lfs/objects/{missing}")
    assert connection.getresponse().status == 404
    connection.close()


def test_an_object_missing_on_the_server_is_named_over_ssh_as_over_http(make_server: Any, client: Client,
                                                                         ssh_keys: SshKeys, tmp_path: Path) -> None:
    """A pointer whose object the server lost: over SSH the batch offers it for download all the
    same and its get-object is answered 404, so ``git lfs fetch`` fails naming that object, as over
    HTTP (where the batch answer carries the 404), and still fetches the others.  A ``noop`` for it,
    as the reference git-lfs-transfer answers, made git-lfs skip it and exit 0."""
    client.git("config", "--global", "lfs.transfer.maxretries", "1")  # (git-lfs retries a 404 8 times, ~36 s)
    for transport in ("ssh", "http"):
        server = TRANSPORTS[transport](make_server, "fs", client, ssh_keys, tmp_path)
        name = f"lost-{transport}"
        server.running.backend.create(name, Kind.GIT)
        url = server.git_url(name)
        data = os.urandom(1000)
        work = _tracked_work(client, url, data)
        (work / "kept.bin").write_bytes(b"kept")
        client.git("add", "kept.bin", cwd=work)
        client.git("commit", "-q", "-m", "kept", cwd=work)
        client.git("push", "-q", "origin", "HEAD:main", cwd=work)
        oid = hashlib.sha256(data).hexdigest()
        (server.running.root / f"{name}.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).unlink()
        clone = client.cwd / f"clone-{transport}"
        client.git("clone", "-q", url, str(clone), env={"GIT_LFS_SKIP_SMUDGE": "1"})
        fetched = client.git("lfs", "fetch", cwd=clone, check=False)
        assert fetched.returncode != 0, (transport, fetched.stdout, fetched.stderr)
        assert oid in fetched.stderr and "Object does not exist" in fetched.stderr, (transport, fetched.stderr)
        kept = hashlib.sha256(b"kept").hexdigest()
        assert (clone / ".git" / "lfs" / "objects" / kept[:2] / kept[2:4] / kept).read_bytes() == b"kept"
        shutil.rmtree(work)
