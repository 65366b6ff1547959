"""git:// bad input: a clear error, nothing changed, and the service keeps serving others.

Raw sockets send what a real client cannot be made to send (bad pkt-line
lengths, oversized lines, truncated or incomplete packs); the real git client
covers hostile repository names.
"""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.pack import write_pack_objects

from backends.interfaces import Kind
from protocols import pktline
from tests.conftest import LOOPBACK, Client, RunningServer


def exchange(server: RunningServer, *chunks: bytes, read_between: bool = False, timeout: float = 10) -> bytes:
    """Send the chunks (reading the reply after the first one if asked), half-close, read to EOF."""
    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=timeout) as sock:
        received = b""
        for i, chunk in enumerate(chunks):
            sock.sendall(chunk)
            if read_between and i == 0:
                received += _read_until_flush(sock)
        sock.shutdown(socket.SHUT_WR)
        while data := sock.recv(65536):
            received += data
        return received


def _read_until_flush(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"0000"):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return data


def request(service: str, path: str, extra: bytes = b"") -> bytes:
    return pktline.encode(f"{service} {path}".encode() + b"\0host=127.0.0.1\0" + extra)


def seed(server: RunningServer, client: Client, name: str = "good") -> str:
    """A repo with one commit on main; returns the commit id."""
    server.backend.create(name, Kind.GIT)
    work = client.cwd / f"seed-{name}"
    client.git("clone", "-q", server.git_url(name), str(work))
    (work / "f.txt").write_text("content\n")
    client.git("add", "f.txt", cwd=work)
    client.git("commit", "-q", "-m", "seed", cwd=work)
    client.git("push", "-q", "origin", "main", cwd=work)
    return client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def still_serving(server: RunningServer, client: Client, name: str = "good") -> None:
    target = client.cwd / f"check-{len(list(client.cwd.iterdir()))}"
    client.git("clone", "-q", server.git_url(name), str(target))
    client.git("fsck", "--full", cwd=target)


def main_of(server: RunningServer, client: Client, name: str = "good") -> str:
    out = client.git("ls-remote", server.git_url(name), "refs/heads/main").stdout
    return out.split("\t")[0]


@pytest.mark.parametrize("path, message", [
    ("/nope.git", "not found"),
    ("/", "no repository is named in the URL: add its name after the host"),
    ("/../x", ""),
    ("/--upload-pack=touch pwned", ""),
    ("/good.git/../../etc", ""),
])
def test_bad_repository_names(server: RunningServer, client: Client, path: str, message: str) -> None:
    seed(server, client)
    reply = exchange(server, request("git-upload-pack", path))
    assert reply.startswith(reply[:4]) and reply[4:8] == b"ERR ", reply
    assert message.encode() in reply
    still_serving(server, client)


def test_a_name_with_control_characters_is_logged_escaped(server: RunningServer, client: Client) -> None:
    """An escape sequence or a newline in a refused name must not reach the log as it is (a colour
    on the operator's terminal, a forged log line)."""
    from twisted.logger import globalLogPublisher

    seed(server, client)
    server.settled()  # (the seed's clone and push are logged as the server sees them close: not in events)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    def logged() -> list[str]:
        return [str(e["repo"]) for e in list(events) if e.get("proto") == "git-daemon" and e.get("repo")]

    try:
        reply = exchange(server, request("git-upload-pack", "/g\x1b[31m.git\n\tforged from 10.0.0.1"))
        deadline = time.monotonic() + 10
        while not logged() and time.monotonic() < deadline:  # (logged as the server sees the close)
            time.sleep(0.05)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert reply[4:8] == b"ERR " and b"control character" in reply, reply
    logged_names = logged()
    assert logged_names and all(name.isprintable() for name in logged_names), logged_names
    assert "\\x1b[31m" in logged_names[-1] and "\\n" in logged_names[-1]
    still_serving(server, client)


def test_a_refused_request_logs_the_reason_its_client_was_given(server: RunningServer, client: Client) -> None:
    """The log line of a refused git:// request says why, as its client was told, not only the
    exception's class (``error: UnsafeName``): refused reading the request line, and refused by
    the session."""
    from twisted.logger import globalLogPublisher

    seed(server, client)
    server.settled()  # (the seed's clone and push are logged as the server sees them close: not in events)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)

    def outcomes() -> list[str]:
        return [str(e["outcome"]) for e in list(events) if e.get("proto") == "git-daemon" and "outcome" in e]

    try:
        replies = [exchange(server, request("git-upload-pack", path)) for path in ("/wt/.git", "~alice/proj.git")]
        deadline = time.monotonic() + 10
        while len(outcomes()) < 2 and time.monotonic() < deadline:  # (logged as the server sees the close)
            time.sleep(0.05)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert all(reply[4:8] == b"ERR " for reply in replies), replies
    assert sorted(outcomes()) == ["error: repository name 'wt/.git' contains a hidden segment '.git'",
                                  ("error: ~alice names a home directory (git daemon's --user-path), and this server "
                                   "serves none: name the repository by its path under the server's root, as in "
                                   "git://HOST/team/project.git")]
    still_serving(server, client)


def test_hostile_names_through_the_real_client(server: RunningServer, client: Client) -> None:
    seed(server, client)
    port = server.port("git")
    for path in ("nope.git", "../x", "--upload-pack=touch pwned"):
        result = client.git("ls-remote", f"git://127.0.0.1:{port}/{path}", check=False)
        assert result.returncode != 0 and "remote error" in result.stderr, result.stderr
    assert not (client.cwd / "pwned").exists() and not (server.root / "pwned").exists()
    assert not Path("pwned").exists()
    still_serving(server, client)


def test_a_user_path_is_refused_as_one_not_as_a_relative_path(server: RunningServer, client: Client) -> None:
    """``git://host/~alice/proj.git`` (git daemon's ``--user-path``) reaches the server as
    ``~alice/proj.git``: the client is told that such paths are not served, not that its path is
    relative."""
    seed(server, client)
    result = client.git("ls-remote", f"git://127.0.0.1:{server.port('git')}/~alice/proj.git", check=False)
    assert result.returncode != 0, result.stderr
    assert ("remote error: ~alice names a home directory (git daemon's --user-path), and this server serves none: "
            "name the repository by its path under the server's root, as in git://HOST/team/project.git"
            ) in result.stderr, result.stderr
    reply = exchange(server, request("git-upload-pack", "/" + "a" * 4100))
    assert reply[4:8] == b"ERR " and b"at most 4096 bytes" in reply, reply
    still_serving(server, client)


@pytest.mark.parametrize("first", [
    b"zzzzgit-upload-pack /good.git\0",      # malformed length
    b"-001git-upload-pack /good.git\0",      # negative length
    b"fff1" + b"x" * 65520,                  # over 65520 bytes
    b"0000",                                 # a flush instead of a request
    pktline.encode(b"git-frobnicate /good.git\0host=x\0"),
])
def test_bad_request_line(server: RunningServer, client: Client, first: bytes) -> None:
    seed(server, client)
    reply = exchange(server, first)
    assert reply[4:8] == b"ERR ", reply
    still_serving(server, client)


def test_http_sent_to_the_git_port_is_told_where_http_is(server: RunningServer, client: Client) -> None:
    """A browser, curl or an http:// URL sent to the git:// port: told that this port speaks git://
    (it was told "bad pkt-line length b'GET '", a Python bytes literal); other bytes that are no
    pkt-line length are shown as text."""
    seed(server, client)
    for first in (b"GET /good.git/info/refs HTTP/1.1\r\nHost: x\r\n\r\n", b"POST /good.git/git-upload-pack HTTP/1.1\r\n"):
        reply = exchange(server, first)  # (in HTTP: test_git_url_at_the_wrong_port.py)
        assert reply.endswith(b"\r\n\r\nthis port speaks the git:// protocol, not HTTP; use a git:// URL here, or the "
                              b"server's HTTP listener for an http:// URL\n"), reply
    assert exchange(server, b"GE", b"T / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    said = exchange(server, b"zzzzgit-upload-pack /good.git\0")
    assert said[4:] == b"ERR bad pkt-line length 'zzzz': expected four hex digits", said
    still_serving(server, client)


@pytest.mark.parametrize("after", [b"00zzwant", b"fff1" + b"w" * 200, b"0032want " + b"f" * 40 + b"\n0000"])
def test_bad_pkt_lines_after_the_advertisement(server: RunningServer, client: Client, after: bytes) -> None:
    seed(server, client)
    reply = exchange(server, request("git-upload-pack", "/good.git"), after, read_between=True)
    assert b"ERR " in reply.split(b"0000", 1)[1], reply
    still_serving(server, client)


def push_commands(old: str, new: str, ref: bytes = b"refs/heads/main") -> bytes:
    line = old.encode() + b" " + new.encode() + b" " + ref + b"\0report-status side-band-64k"
    return pktline.encode(line) + pktline.FLUSH


def test_truncated_pack_changes_nothing(server: RunningServer, client: Client) -> None:
    tip = seed(server, client)
    blob = Blob.from_string(b"new content\n" * 100)
    tree = Tree()
    tree.add(b"f.txt", 0o100644, blob.id)
    pack = _pack([blob, tree, _commit(tree.id, tip)])
    new = _commit(tree.id, tip).id.decode()
    reply = exchange(server, request("git-receive-pack", "/good.git"),
                     push_commands(tip, new) + pack[: len(pack) // 2], read_between=True)
    assert b"unpack " in reply and b"truncated" in reply and b"ng refs/heads/main" in reply, reply
    assert main_of(server, client) == tip
    still_serving(server, client)


def test_garbage_instead_of_a_pack_reports_unpack_error(server: RunningServer, client: Client) -> None:
    tip = seed(server, client)
    reply = exchange(server, request("git-receive-pack", "/good.git"),
                     push_commands(tip, "1" * 40) + b"NOTAPACK" + b"\0" * 64, read_between=True)
    assert b"unpack " in reply and b"ng refs/heads/main" in reply, reply
    assert main_of(server, client) == tip
    still_serving(server, client)


def test_pack_lacking_objects_is_refused(server: RunningServer, client: Client) -> None:
    tip = seed(server, client)
    blob = Blob.from_string(b"never sent\n")
    tree = Tree()
    tree.add(b"f.txt", 0o100644, blob.id)
    orphan = _commit(tree.id, tip)
    reply = exchange(server, request("git-receive-pack", "/good.git"),
                     push_commands(tip, orphan.id.decode()) + _pack([orphan]), read_between=True)
    assert b"ng refs/heads/main" in reply, reply
    assert main_of(server, client) == tip
    still_serving(server, client)


def test_read_only_refuses_pushes_and_serves_clones(make_server: object, client: Client) -> None:
    server: RunningServer = make_server("memory", git=[LOOPBACK], read_only=True)  # type: ignore[operator]
    server.backend.create("ro", Kind.GIT)
    reply = exchange(server, request("git-receive-pack", "/ro.git"))
    assert reply[4:8] == b"ERR " and b"read-only" in reply
    work = client.cwd / "ro"
    client.git("clone", "-q", server.git_url("ro"), str(work))
    (work / "x").write_text("x")
    client.git("add", "x", cwd=work)
    client.git("commit", "-q", "-m", "x", cwd=work)
    pushed = client.git("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0 and "read-only" in pushed.stderr


def test_v2_upload_request_gets_v2_and_receive_gets_v0(server: RunningServer, client: Client) -> None:
    tip = seed(server, client)
    v2 = exchange(server, request("git-upload-pack", "/good.git", b"\0version=2\0"), pktline.FLUSH)
    assert v2.startswith(b"000eversion 2\n") and v2.endswith(b"0000")
    push = exchange(server, request("git-receive-pack", "/good.git", b"\0version=2\0"), pktline.FLUSH)
    assert push[4:44] == tip.encode() and b"report-status" in push


@pytest.mark.parametrize("body", [
    b"0012command=frob\n0000",                                   # unknown command
    b"0014command=ls-refs\n000cbogus=1\n0000",                   # unknown capability
    b"0014command=ls-refs\n0001000ebad-arg x\n0000",             # unknown argument
    b"0012command=fetch\n0001000ffilter x:y\n0000",             # unsupported filter
    b"0019object-format=sha256\n0000",                          # no command first
])
def test_bad_v2_requests(server: RunningServer, client: Client, body: bytes) -> None:
    seed(server, client)
    reply = exchange(server, request("git-upload-pack", "/good.git", b"\0version=2\0"), body, read_between=True)
    assert b"ERR " in reply.split(b"object-info\n0000", 1)[1], reply
    still_serving(server, client)


def _partial_packs(objects: Path) -> list[Path]:
    """Pack files being written: in a push's quarantine (``tmp_objdir-incoming-*``)."""
    return [p for p in objects.glob("tmp_objdir-incoming-*/tmp_pack_*") if p.stat().st_size > 0]


def _leftovers(objects: Path) -> list[Path]:
    return [*objects.glob("tmp_objdir-incoming-*"), *objects.glob("tmp_pack_*")]


def test_a_client_gone_in_the_middle_of_its_pack_leaves_nothing_behind(
        server: RunningServer, client: Client) -> None:
    import time

    if server.backend_name != "fs":
        pytest.skip("the memory backend spools a push to an unnamed temporary file")
    tip = seed(server, client)
    objects = server.repo_path("good.git") / "objects"
    blobs = [Blob.from_string(b"%d: " % i + bytes(range(256)) * 64) for i in range(40)]  # incompressible
    tree = Tree()
    for i, blob in enumerate(blobs):
        tree.add(b"f%d.bin" % i, 0o100644, blob.id)
    pack = _pack([*blobs, tree, _commit(tree.id, tip)])
    new = _commit(tree.id, tip).id.decode()
    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
        sock.sendall(request("git-receive-pack", "/good.git"))
        _read_until_flush(sock)
        sock.sendall(push_commands(tip, new) + pack[: len(pack) // 2])
        deadline = time.monotonic() + 10
        while not _partial_packs(objects) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _partial_packs(objects), "the pack is written as it arrives, in the push's quarantine"
    # the client is gone (no half-close, no more bytes): its partial pack and its quarantine go
    deadline = time.monotonic() + 10
    while _leftovers(objects) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _leftovers(objects)
    assert main_of(server, client) == tip
    still_serving(server, client)


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_delta_that_goes_on_past_its_result_is_refused(server: RunningServer, client: Client, size: str) -> None:
    """git's ``patch_delta`` refuses a delta with an operation after its result is complete ("delta
    replay has gone wild"), so every git client would fail to read such an entry once stored (a clone,
    ``git fsck``); a push of one is refused, small (applied) or large (hashed as it is read)."""
    from dulwich.pack import create_delta

    from tests.unit.backends.test_git_hashed_results import pack_of

    if server.backend_name != "fs":
        pytest.skip("the memory backend keeps a pushed delta's object, not the delta")
    tip = seed(server, client)
    base = b"".join(b"line %d of the file\n" % i for i in range(100 if size == "small" else 80_000))
    edited = base + b"one more line\n"
    blob = Blob.from_string(edited)
    tree = Tree()
    tree.add(b"f.txt", 0o100644, blob.id)
    commit = _commit(tree.id, tip)
    delta = b"".join(create_delta(base, edited)) + b"\x91\x00\x01"  # then a copy of one byte more
    pack, _texts = pack_of([("whole", 3, base), ("raw-ofs", 0, delta), ("whole", 2, tree.as_raw_string()),
                            ("whole", 1, commit.as_raw_string())])
    packs = server.repo_path("good.git") / "objects" / "pack"
    before = sorted(packs.iterdir())
    reply = exchange(server, request("git-receive-pack", "/good.git"),
                     push_commands(tip, commit.id.decode()) + pack, read_between=True)
    assert b"unpack " in reply and b"delta replay has gone wild" in reply, reply
    assert b"ng refs/heads/main" in reply, reply
    assert main_of(server, client) == tip
    assert sorted(packs.iterdir()) == before
    still_serving(server, client)


def _snapshot(server: RunningServer, client: Client) -> tuple[str, dict[str, bytes]]:
    """The repository's main, and (fs) every file of its refs and its packs, byte for byte."""
    files: dict[str, bytes] = {}
    if server.backend_name == "fs":
        git_dir = server.repo_path("good.git")
        for path in [*(git_dir / "refs").rglob("*"), *(git_dir / "objects" / "pack").rglob("*"),
                     git_dir / "packed-refs", git_dir / "HEAD"]:
            if path.is_file():
                files[str(path.relative_to(git_dir))] = path.read_bytes()
    return main_of(server, client), files


@pytest.mark.parametrize("raw", [
    b"100644 f.txt\0" + b"\x01" * 10,  # an id cut short
    b"100644",  # a mode without its end
    b"100644 f.txt",  # a name without its NUL
    b"1x0644 f.txt\0" + b"\x01" * 20,  # a mode not in octal
], ids=["short-id", "mode-unended", "name-unended", "mode-not-octal"])
def test_a_tree_that_cannot_be_parsed_is_refused_naming_it_as_git_fsck_does(server: RunningServer, client: Client,
                                                                              raw: bytes) -> None:
    """git's receive-pack with fsck says ``error: object <id>: badTree: cannot be parsed as a
    tree``; hgwire says the same of the tree in its ``unpack`` line (not its pack parser's words),
    and the repository is as it was: its refs and pack files byte for byte."""
    from tests.unit.backends.test_git_hashed_results import pack_of

    tip = seed(server, client)
    before = _snapshot(server, client)
    tree_id = hashlib.sha1(b"tree %d\0" % len(raw) + raw).hexdigest()
    commit = _commit(tree_id.encode(), tip)
    pack, _texts = pack_of([("whole", 2, raw), ("whole", 1, commit.as_raw_string())])
    reply = exchange(server, request("git-receive-pack", "/good.git"),
                     push_commands(tip, commit.id.decode()) + pack, read_between=True)
    assert f"unpack the pushed pack is invalid: object {tree_id}: badTree: cannot be parsed as a tree\n".encode() \
        in reply, reply
    assert b"ng refs/heads/main" in reply, reply
    assert _snapshot(server, client) == before
    still_serving(server, client)


def _commit(tree: bytes, parent: str) -> Commit:
    commit = Commit()
    commit.tree = tree
    commit.parents = [ObjectID(parent.encode())]
    commit.author = commit.committer = b"T <t@example.com>"
    commit.author_time = commit.commit_time = 1767225600
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"pushed\n"
    return commit


def _pack(objects: list[Blob | Tree | Commit | Tag]) -> bytes:
    out = io.BytesIO()
    write_pack_objects(out, [(o, None) for o in objects], object_format=DEFAULT_OBJECT_FORMAT)
    return out.getvalue()


def test_silent_client_is_dropped_after_the_request_timeout(
        server: RunningServer, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from gateway import limits

    seed(server, client)
    monkeypatch.setattr(limits, "DEFAULT_LIMITS", limits.ConnectionLimits(request_timeout=0.5))
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=10) as sock:
        sock.sendall(b"00")  # half a length, then nothing
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass  # aborted: the server does not wait for a polite close
    assert time.monotonic() - started < 5
    still_serving(server, client)


def test_a_tree_with_a_duplicate_entry_is_refused_by_a_real_push(
        server: RunningServer, client: Client) -> None:
    """``git fsck`` calls duplicate tree entries an error; a real ``git push`` of one is refused."""
    tip = seed(server, client)
    work = client.cwd / "seed-good"
    blob = client.run("git", "hash-object", "-w", "--stdin", cwd=work, input=b"x\n").stdout.strip()
    entry = b"100644 same\0" + bytes.fromhex(blob)
    tree = subprocess.run(["git", "hash-object", "-t", "tree", "-w", "--literally", "--stdin"], cwd=work,
                          input=entry + entry, capture_output=True, check=True, env=client.env).stdout.strip()
    commit = client.git("commit-tree", tree.decode(), "-p", tip, "-m", "bad tree", cwd=work).stdout.strip()
    pushed = client.git("push", "origin", f"{commit}:refs/heads/main", cwd=work, check=False)
    assert pushed.returncode != 0
    assert "tree has the entry 'same' twice" in pushed.stderr and "unpack" in pushed.stderr, pushed.stderr
    assert main_of(server, client) == tip
    still_serving(server, client)


def _tree(*entries: tuple[bytes, int, bytes]) -> Tree:
    tree = Tree()
    for name, mode, sha in entries:
        tree.add(name, mode, sha)
    return tree


def _tag(target: bytes, declared: bytes) -> Tag:
    tag = Tag()
    tag.object = (Commit if declared == b"commit" else Blob, ObjectID(target))  # the type line, not the object's
    tag.name = b"v1"
    tag.tagger = b"T <t@example.com>"
    tag.tag_time, tag.tag_timezone = 1767225600, 0
    tag.message = b"tag\n"
    return tag


def _stored(client: Client, tip: str) -> tuple[bytes, bytes]:
    """The seed commit's tree and its file's blob, as the server holds them."""
    work = client.cwd / "seed-good"
    tree = client.git("rev-parse", f"{tip}^{{tree}}", cwd=work).stdout.strip().encode()
    blob = client.git("rev-parse", f"{tip}:f.txt", cwd=work).stdout.strip().encode()
    return tree, blob


@pytest.mark.parametrize("case", ["file-mode-names-pushed-tree", "file-mode-names-stored-tree",
                                  "dir-mode-names-pushed-blob", "parent-is-stored-tree", "tree-line-is-stored-blob",
                                  "tag-of-commit-is-a-blob"])
def test_an_object_linked_to_as_another_type_is_refused(server: RunningServer, client: Client, case: str) -> None:
    """``git fsck`` fails a repository where a tree entry with a file's mode names a tree (or the
    other way), a parent is not a commit, a commit's tree is a blob or a tag's ``type`` line is not
    its object's type, and no checkout survives one; git's strict index-pack refuses such a pack
    (``Error on reachable objects``) where it can tell.  Refused whole, whether the object it names
    comes in the push or is stored already; nothing changes."""
    tip = seed(server, client)
    stored_tree, stored_blob = _stored(client, tip)
    blob = Blob.from_string(b"a file\n")
    sub = _tree((b"f", 0o100644, blob.id))
    ref = b"refs/heads/main"
    sent: list[Blob | Tree | Commit | Tag]
    if case == "file-mode-names-pushed-tree":
        top = _tree((b"x", 0o100644, sub.id))
        sent = [blob, sub, top, _commit(top.id, tip)]
    elif case == "file-mode-names-stored-tree":
        top = _tree((b"x", 0o100644, stored_tree))
        sent = [top, _commit(top.id, tip)]
    elif case == "dir-mode-names-pushed-blob":
        top = _tree((b"x", 0o040000, blob.id))
        sent = [blob, top, _commit(top.id, tip)]
    elif case == "parent-is-stored-tree":
        sent = [blob, sub, _commit(sub.id, stored_tree.decode())]
    elif case == "tree-line-is-stored-blob":
        sent = [_commit(stored_blob, tip)]
    else:
        sent, ref = [blob, _tag(blob.id, b"commit")], b"refs/tags/v1"
    new = sent[-1].id.decode()
    reply = exchange(server, request("git-receive-pack", "/good.git"),
                     push_commands("0" * 40 if ref.startswith(b"refs/tags/") else tip, new, ref) + _pack(sent),
                     read_between=True)
    assert b"ng " + ref in reply, reply
    assert b"unpack ok" not in reply and b" not the " in reply, reply  # "object X is a tree, not the blob …"
    assert main_of(server, client) == tip
    assert "refs/tags/v1" not in client.git("ls-remote", server.git_url("good")).stdout
    if server.backend_name == "fs":
        subprocess.run(["git", "fsck", "--full"], cwd=server.root / "good.git", check=True, capture_output=True,
                       env=client.env)
    still_serving(server, client)


def test_a_real_push_of_a_tree_naming_a_tree_as_a_file_is_refused(make_server: Any, client: Client) -> None:
    """What a real ``git push`` sends of such a tree (git's own client sends it) is refused, and the
    server's repository still passes ``git fsck --full``."""
    server = make_server("fs", git=[LOOPBACK])
    tip = seed(server, client)
    work = client.cwd / "seed-good"
    blob = client.run("git", "hash-object", "-w", "--stdin", cwd=work, input=b"y\n").stdout.strip()
    sub = client.run("git", "mktree", cwd=work, input=f"100644 blob {blob}\tf\n".encode()).stdout.strip()
    top = subprocess.run(["git", "hash-object", "-t", "tree", "-w", "--literally", "--stdin"], cwd=work,
                         input=b"100644 x\0" + bytes.fromhex(sub), capture_output=True, check=True,
                         env=client.env).stdout.strip()
    commit = client.git("commit-tree", top.decode(), "-p", tip, "-m", "a tree as a file", cwd=work).stdout.strip()
    pushed = client.git("push", "origin", f"{commit}:refs/heads/main", cwd=work, check=False)
    assert pushed.returncode != 0
    assert f"object {sub} is a tree, not the blob" in pushed.stderr, pushed.stderr
    assert main_of(server, client) == tip
    subprocess.run(["git", "fsck", "--full"], cwd=server.root / "good.git", check=True, capture_output=True,
                   env=client.env)


def test_a_ref_name_of_hundreds_of_levels_is_refused_by_name(server: RunningServer, client: Client) -> None:
    """Each level is a directory of the loose ref: 2,000 of them were a ``RecursionError`` and
    "internal error"; such a ref is refused with why, the others of the push land.  (300 levels
    here: git makes the client's tracking ref's directories too, and pytest's cleanup removes
    directories recursively.)"""
    tip = seed(server, client)
    work = client.cwd / "seed-good"
    deep = "refs/heads/" + "d/" * 300 + "x"
    pushed = client.git("push", "origin", f"HEAD:{deep}", "HEAD:refs/heads/fine/" + "e/" * 100 + "x", cwd=work,
                        check=False)
    assert pushed.returncode != 0 and "refname has more than 256 levels" in pushed.stderr, pushed.stderr
    refs = client.git("ls-remote", server.git_url("good")).stdout
    assert "refs/heads/fine/" in refs and deep not in refs and main_of(server, client) == tip
    still_serving(server, client)
