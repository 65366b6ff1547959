"""A mirror's advertisement spliced from its kept ``packed-refs`` lines (``backends.git.ref_run``) is,
byte for byte, what git's upload-pack sends for the same repository: v0's ref lines and v2's
``ls-refs`` answers (with ``peel``, ``symrefs``, ``ref-prefix``), SHA-1 and SHA-256, with loose refs
over packed ones and between them, a loose symbolic ref, a packed ref deleted, names whose bytes sort
otherwise than their characters, and ``transfer.hideRefs`` / ``uploadpack.hideRefs`` with ``!`` and
``^``.  (Only the capability lines differ: hgwire offers more.)"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backends.git import RUN_MIN_REFS
from protocols import pktline
from protocols.git_reflines import RefRun
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

ODD_NAMES = ("a-b", "a/b", "a.b", "a0", "\u00e9", "zz/\u00e9", "x%y")


def _pkt(line: bytes) -> bytes:
    return pktline.encode(line)


def _read_to_flush(sock: socket.socket, buffered: bytearray) -> bytes:
    """The packets up to and with the next flush."""
    at = 0
    while True:
        while len(buffered) - at >= 4:
            size = int(buffered[at:at + 4], 16)
            if size == 0:
                out = bytes(buffered[:at + 4])
                del buffered[:at + 4]
                return out
            if size < 4 or len(buffered) - at < size:
                break
            at += size
        data = sock.recv(65536)
        assert data, bytes(buffered[:200])
        buffered += data


def _without_first_line(data: bytes) -> bytes:
    return data[int(data[:4], 16):]


def _hgwire(port: int, version: int, requests: list[bytes]) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        extra = b"\0version=2\0" if version == 2 else b""
        sock.sendall(_pkt(b"git-upload-pack /mirror.git\0host=127.0.0.1\0" + extra))
        buffered = bytearray()
        first = _read_to_flush(sock, buffered)
        if version == 0:
            return [_without_first_line(first)]
        answers = []
        for request in requests:
            sock.sendall(request)
            answers.append(_read_to_flush(sock, buffered))
        return answers


def _git(client: Client, git_dir: Path, version: int, requests: list[bytes]) -> list[bytes]:
    env = {**client.env, "GIT_PROTOCOL": "version=2"} if version == 2 else client.env
    if version == 0:
        out = subprocess.run(["git", "upload-pack", "--advertise-refs", str(git_dir)], env=env,
                             capture_output=True, check=True).stdout
        return [_without_first_line(out)]
    return [subprocess.run(["git", "upload-pack", "--stateless-rpc", str(git_dir)], env=env, input=request,
                           capture_output=True, check=True).stdout for request in requests]


def _ls_refs(object_format: str, *args: bytes) -> bytes:
    return (_pkt(b"command=ls-refs\n") + _pkt(b"object-format=" + object_format.encode() + b"\n") + pktline.DELIM
            + b"".join(_pkt(arg + b"\n") for arg in args) + pktline.FLUSH)


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_the_spliced_advertisement_is_git_upload_packs_byte_for_byte(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        object_format: str) -> None:
    spliced = []
    splice = RefRun.spliced

    def counted(self: RefRun, *args: Any, **kwargs: Any) -> bytes:
        spliced.append(self)
        return splice(self, *args, **kwargs)

    monkeypatch.setattr(RefRun, "spliced", counted)
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", f"--object-format={object_format}", str(work))
    for n in range(3):
        commit(client, work, f"f{n}.txt", f"{n}\n", f"commit {n}")
    lines = "".join(f"create refs/tags/light{i:04d} HEAD~{i % 3}\n" for i in range(RUN_MIN_REFS + 20))
    lines += "".join(f"create refs/tags/{name} HEAD~1\n" for name in ODD_NAMES)
    client.git("update-ref", "--stdin", cwd=work, input=lines.encode())
    for i in range(30):
        client.git("tag", "-a", "-m", f"release {i}", f"v{i:04d}", f"HEAD~{i % 3}", cwd=work)
    client.git("branch", "loose", "HEAD~2", cwd=work)
    git_dir = server.root / "mirror.git"
    client.git("clone", "-q", "--mirror", str(work), str(git_dir))
    client.git("--git-dir", str(git_dir), "pack-refs", "--all", "--prune")

    def git_in(*args: str) -> None:
        client.git("--git-dir", str(git_dir), *args)

    git_in("update-ref", "refs/heads/loose", "main")  # loose over its packed value
    git_in("update-ref", "refs/tags/a-c", "main")  # loose, between packed ones
    git_in("update-ref", "refs/tags/\u00e4", "main")
    git_in("update-ref", "refs/tags/v0007", "main~1")  # an annotated tag's name, now a commit
    git_in("update-ref", "-d", "refs/tags/light0008")  # a packed ref deleted
    git_in("symbolic-ref", "refs/heads/alias", "refs/heads/main")
    port = server.port("git")
    requests = [_ls_refs(object_format, b"peel", b"symrefs", b"unborn"), _ls_refs(object_format),
                _ls_refs(object_format, b"peel", b"ref-prefix refs/tags/v000", b"ref-prefix HEAD",
                         b"ref-prefix refs/tags/a", b"ref-prefix refs/heads/"),
                _ls_refs(object_format, b"ref-prefix refs/tags/\xc3", b"ref-prefix refs/tags/light00")]

    def same_as_git() -> None:
        for version in (0, 2):
            for _ in range(2):  # parsed, then kept
                assert _hgwire(port, version, requests) == _git(client, git_dir, version, requests), version

    same_as_git()
    assert spliced  # (answers made from the kept lines)
    git_in("config", "--add", "transfer.hideRefs", "refs/tags/light01")
    git_in("config", "--add", "transfer.hideRefs", "!refs/tags/light0105")
    git_in("config", "--add", "uploadpack.hideRefs", "^refs/heads/loose")
    git_in("config", "--add", "uploadpack.hideRefs", "refs/tags/v0002")
    same_as_git()
    assert len(spliced) > 12  # hidden refs cut out of the run, not answers written line by line
