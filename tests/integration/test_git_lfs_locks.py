"""Git LFS file locking with the real ``git lfs`` client, two users over HTTP: a lock taken by one
stops the other's push of that file (git-lfs asks ``locks/verify`` before each push), ``git lfs
locks`` lists it, only its owner unlocks it unless forced, and the server keeps the locks in the
repository's ``lfs/locks.json`` and says who did what in its audit log."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from backends.interfaces import Kind
from backends.lfs import LfsLocks
from gateway.audit import AUDIT_NAMESPACE
from tests.conftest import LOOPBACK, Client, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import remote_refs
from tests.integration.test_git_lfs import lfs_api
from tests.integration.test_git_transports import PASSWORD, bcrypt

pytestmark = pytest.mark.skipif(shutil.which("git-lfs") is None,
                                reason="the git-lfs client is not installed (make test installs it)")


def _server(make_server: Any, tmp_path: Path) -> Any:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("".join(f"{user}:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode() + "\n"
                                for user in ("alice", "bob")))
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd))
    server.backend.create("art", Kind.GIT)
    return server


def _url(server: Any, user: str) -> str:
    return f"http://{user}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{server.port('http')}/art.git"


def _clone(client: Client, url: str, name: str) -> Path:
    work = client.cwd / name
    client.git("clone", "-q", url, str(work))
    client.git("config", "user.name", name, cwd=work)
    return work


def test_a_lock_stops_anothers_push_until_its_owner_unlocks(make_server: Any, client: Client,
                                                            tmp_path: Path) -> None:
    server = _server(make_server, tmp_path)
    client.git("lfs", "install", "--skip-repo")
    alice = _clone(client, _url(server, "alice"), "alice")
    client.git("lfs", "track", "*.psd", cwd=alice)
    (alice / "cover.psd").write_bytes(b"layers v1\n" * 1000)
    client.git("add", ".gitattributes", "cover.psd", cwd=alice)
    client.git("commit", "-q", "-m", "cover", cwd=alice)
    first = client.git("push", "origin", "HEAD:main", cwd=alice)
    assert "locking API" not in first.stderr, first.stderr  # locks/verify answered: no "not supported" advice
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE and str(event.get("action", "")).startswith("lfs-"):
            events.append(event)

    globalLogPublisher.addObserver(observe)  # type: ignore[arg-type]
    try:
        locked = client.git("lfs", "lock", "cover.psd", cwd=alice)
        assert "Locked cover.psd" in locked.stdout + locked.stderr
        again = client.git("lfs", "lock", "cover.psd", cwd=alice, check=False)
        assert again.returncode != 0 and "already created lock" in again.stderr + again.stdout

        bob = _clone(client, _url(server, "bob"), "bob")
        client.git("config", "lfs.locksverify", "true", cwd=bob)  # git-lfs then halts, not only warns
        listed = client.git("lfs", "locks", cwd=bob).stdout
        assert "cover.psd" in listed and "alice" in listed, listed
        (bob / "cover.psd").write_bytes(b"layers v2\n" * 1000)
        client.git("commit", "-q", "-am", "bob's cover", cwd=bob)
        before = remote_refs(client, "default", _url(server, "bob"))
        refused = client.git("push", "origin", "HEAD:main", cwd=bob, check=False)
        assert refused.returncode != 0, refused.stderr
        said = refused.stdout + refused.stderr
        assert "Unable to push locked files" in said and "* cover.psd - alice" in said, said
        assert remote_refs(client, "default", _url(server, "bob")) == before

        not_his = client.git("lfs", "unlock", "cover.psd", cwd=bob, check=False)
        assert not_his.returncode != 0 and "alice" in not_his.stderr + not_his.stdout

        client.git("lfs", "unlock", "cover.psd", cwd=alice)
        assert "cover.psd" not in client.git("lfs", "locks", cwd=bob).stdout
        client.git("push", "-q", "origin", "HEAD:main", cwd=bob)

        client.git("lfs", "lock", "cover.psd", cwd=bob)
        client.git("lfs", "unlock", "--force", "cover.psd", cwd=alice)
    finally:
        globalLogPublisher.removeObserver(observe)  # type: ignore[arg-type]

    stored = json.loads((server.root / "art.git" / "lfs" / "locks.json").read_text())
    assert stored["locks"] == []
    assert [(e["action"], e["user"], e["outcome"]) for e in events if e["action"] != "lfs-upload"] == [
        ("lfs-lock", "alice", "ok"), ("lfs-unlock", "alice", "ok"), ("lfs-lock", "bob", "ok"),
        ("lfs-unlock", "alice", "ok (forced: the lock was bob's)")]
    client.git("--git-dir", str(server.root / "art.git"), "fsck", "--full")


def _api(server: Any, method: str, path: str, body: object = None, user: str | None = "alice"
         ) -> tuple[int, dict[str, Any]]:
    return lfs_api(f"http://127.0.0.1:{server.port('http')}/art.git/info/lfs/{path}", body, user, method)


def test_the_locking_api_refuses_what_it_should(make_server: Any, tmp_path: Path) -> None:
    server = _server(make_server, tmp_path)
    assert _api(server, "POST", "locks", {"path": "a.psd"}, user=None)[0] == 401  # locking needs a user
    for bad in ({"path": "../x"}, {"path": "/abs"}, {"path": ""}, {}, b"not json", {"path": "a//b"}):
        assert _api(server, "POST", "locks", bad)[0] == 422, bad
    status, made = _api(server, "POST", "locks", {"path": "dir/a.psd", "ref": {"name": "refs/heads/main"}})
    assert status == 201 and made["lock"]["path"] == "dir/a.psd" and made["lock"]["owner"] == {"name": "alice"}
    lock_id = made["lock"]["id"]
    status, conflict = _api(server, "POST", "locks", {"path": "dir/a.psd"}, user="bob")
    assert status == 409 and conflict["lock"]["id"] == lock_id
    for index in range(3):
        assert _api(server, "POST", "locks", {"path": f"more/{index}.psd"}, user="bob")[0] == 201
    status, page = _api(server, "GET", "locks?limit=2", user=None)  # reading is open, as reading the repository is
    assert status == 200 and len(page["locks"]) == 2 and page["next_cursor"]
    status, rest = _api(server, "GET", f"locks?limit=2&cursor={page['next_cursor']}")
    assert [lock["path"] for lock in page["locks"] + rest["locks"]] == [
        "dir/a.psd", "more/0.psd", "more/1.psd", "more/2.psd"] and "next_cursor" not in rest
    assert [lock["id"] for lock in _api(server, "GET", "locks?path=dir/a.psd")[1]["locks"]] == [lock_id]
    status, verified = _api(server, "POST", "locks/verify", {"ref": {"name": "refs/heads/main"}}, user="bob")
    assert status == 200 and len(verified["ours"]) == 3 and [lock["id"] for lock in verified["theirs"]] == [lock_id]
    assert _api(server, "POST", "locks/verify", {}, user=None)[0] == 401
    assert _api(server, "POST", f"locks/{lock_id}/unlock", {"force": False}, user="bob")[0] == 403
    assert _api(server, "POST", f"locks/{lock_id}/unlock", {"force": "yes"})[0] == 422
    assert _api(server, "POST", "locks/nosuch/unlock", {})[0] == 404
    assert _api(server, "POST", "locks/verify/other", {})[0] == 404
    assert _api(server, "GET", "locks/verify")[0] == 405
    status, gone = _api(server, "POST", f"locks/{lock_id}/unlock", {})
    assert status == 200 and gone["lock"]["id"] == lock_id
    assert _api(server, "GET", f"locks?id={lock_id}")[1]["locks"] == []


def test_a_readers_lock_over_ssh_is_refused_with_the_reason(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                            tmp_path: Path) -> None:
    """git-lfs shows the message of a refused git-lfs-transfer request but of a refused session only
    ``exit status 1``: a reader's upload connection opens, and its lock is refused inside it."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["carol"]\n')  # alice (the SSH key's user) reads only
    server = make_server("fs", config_file=str(policy), **ssh_server_settings(ssh_keys))
    seed = tmp_path / "seed"
    client.git("init", "-q", str(seed))
    (seed / "other.bin").write_text("data\n")
    client.git("add", "other.bin", cwd=seed)
    client.git("commit", "-q", "-m", "one", cwd=seed)
    client.git("clone", "-q", "--bare", str(seed), str(server.root / "art.git"))
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    client.git("lfs", "install", "--skip-repo")
    work = _clone(client, f"ssh://git@127.0.0.1:{server.port('ssh')}/art.git", "reader")
    refusal = "alice may not push to art.git; ask the server's operator for write access"

    locked = client.git("lfs", "lock", "other.bin", cwd=work, check=False)
    assert locked.returncode != 0
    assert f"Locking other.bin failed: server unable to create lock: {refusal}" in locked.stderr, locked.stderr
    # listing needs only the right to read, on the upload connection locks --verify opens too
    assert client.git("lfs", "locks", "--verify", cwd=work).returncode == 0
    assert client.git("lfs", "locks", cwd=work).returncode == 0
    assert not (server.root / "art.git" / "lfs").exists()
    client.git("--git-dir", str(server.root / "art.git"), "fsck", "--full")


def test_lfs_files_of_a_shared_repository_are_writable_by_its_group(make_server: Any, client: Client,
                                                                    tmp_path: Path) -> None:
    """In a ``git init --shared=group`` repository another member of the group (their own hgwire,
    git-lfs on the server) must be able to add objects and locks: hgwire gives the LFS directories
    and files the modes git gives its own (``objects/``: group-writable, setgid)."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd))
    git_dir = server.root / "art.git"
    client.git("init", "-q", "--bare", "--shared=group", str(git_dir))
    client.git("lfs", "install", "--skip-repo")
    alice = _clone(client, _url(server, "alice"), "alice")
    client.git("lfs", "track", "*.psd", cwd=alice)
    (alice / "cover.psd").write_bytes(b"layers\n" * 100)
    client.git("add", ".gitattributes", "cover.psd", cwd=alice)
    client.git("commit", "-q", "-m", "cover", cwd=alice)
    client.git("push", "-q", "origin", "HEAD:main", cwd=alice)
    client.git("lfs", "lock", "cover.psd", cwd=alice)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(git_dir / "objects") & 0o2070 == 0o2070  # (as git init made it)
    oid = next((git_dir / "lfs" / "objects").glob("*/*/*"))
    for directory in (git_dir / "lfs", git_dir / "lfs" / "objects", oid.parent.parent, oid.parent):
        assert mode(directory) & 0o2070 == 0o2070, (directory, oct(mode(directory)))
    for made in (oid, git_dir / "lfs" / "locks.json", git_dir / "lfs" / "locks.lock"):
        assert mode(made) & 0o060 == 0o060, (made, oct(mode(made)))
    client.git("--git-dir", str(git_dir), "fsck", "--full")


def test_a_refused_unlock_over_ssh_names_this_servers_lfs_url(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                             tmp_path: Path) -> None:
    """git-lfs 3 cannot force an unlock over SSH: the refusal says where the HTTP API is, this
    server's own URL for the repository when it runs an HTTP listener."""
    server = make_server("fs", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    seed = tmp_path / "seed"
    client.git("init", "-q", str(seed))
    (seed / "other.bin").write_text("data\n")
    client.git("add", "other.bin", cwd=seed)
    client.git("commit", "-q", "-m", "one", cwd=seed)
    client.git("clone", "-q", "--bare", str(seed), str(server.root / "art.git"))
    LfsLocks(str(server.root / "art.git")).create("other.bin", "bob")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    client.git("lfs", "install", "--skip-repo")
    work = _clone(client, f"ssh://git@127.0.0.1:{server.port('ssh')}/art.git", "alice")
    refused = client.git("lfs", "unlock", "--force", "other.bin", cwd=work, check=False)
    assert refused.returncode != 0
    assert (f"set to http://127.0.0.1:{server.port('http')}/art.git/info/lfs" in refused.stderr
            and "HOST/NAME" not in refused.stderr), refused.stderr
    assert [lock.owner for lock in LfsLocks(str(server.root / "art.git")).all()] == ["bob"]
