"""A push of a few changesets into a large repository reads what the push added, not the history:
after each push hgwire read the changelog's whole index file again and hashed it (12.8 MB for
200,000 changesets) to check that the old entries were still the ones it had parsed, though it had
only appended to it itself, under the repository's lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backends.hg import vfs
from tests.conftest import Client, RunningServer
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401

SMALL, LARGE = 600, 2400


def _changelog_bytes_read_by_a_push(peer: HgHttp, client: Client, name: str, size: int,
                                    monkeypatch: pytest.MonkeyPatch) -> int:
    served = peer.server.root / name
    client.hg("init", str(served))
    client.hg("debugbuilddag", "-q", "-R", str(served), f"+{size}")
    client.hg("phase", "-q", "-R", str(served), "-p", "-r", "tip")
    work = client.cwd / name
    peer.hg("clone", "-q", peer.url(name), str(work))
    read: list[int] = []

    def counted(method: Callable[..., bytes]) -> Callable[..., bytes]:
        def reading(self: vfs.FsVfs, path: bytes, *args: int) -> bytes:
            data = method(self, path, *args)
            if path.endswith(b"00changelog.i"):
                read.append(len(data))
            return data
        return reading

    monkeypatch.setattr(vfs.FsVfs, "read", counted(vfs.FsVfs.read))
    monkeypatch.setattr(vfs.FsVfs, "read_range", counted(vfs.FsVfs.read_range))
    measured = []
    for round_ in range(3):  # the first push opens the repository: its index is parsed whole once
        for n in range(2):
            (work / "f").write_text(f"{round_} {n}\n")
            client.hg("commit", "-q", "-A", "-m", f"{round_} {n}", cwd=work)
        read.clear()
        peer.hg("push", "-q", peer.push_url(name), cwd=work)
        peer.hg("id", "-r", "tip", peer.url(name))  # (the next request sees the new snapshot)
        measured.append(sum(read))
        client.hg("verify", "-q", "-R", str(served))
    assert client.hg("log", "-R", str(served), "-r", "tip", "-T", "{rev}").stdout == str(size + 5)
    return max(measured[1:])


def test_successive_pushes_read_the_changelog_in_proportion_to_the_push(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    peer = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    small = _changelog_bytes_read_by_a_push(peer, client, "small", SMALL, monkeypatch)
    large = _changelog_bytes_read_by_a_push(peer, client, "large", LARGE, monkeypatch)
    # two changesets of 64 bytes each, read back at most a few times: nothing of the history
    assert large <= small + 64 * 8, (small, large)
    assert large < 64 * SMALL, (small, large)
