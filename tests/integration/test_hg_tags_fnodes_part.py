"""The bundle2 ``hgtagsfnodes`` part of a clone or pull (the ``.hgtags`` file node of each head),
side by side with ``hg serve`` whose tags cache is warm (it sends only the entries it has cached):
what the client's ``.hg/cache/hgtagsfnodes1`` holds afterwards (``hg debugtagscache``), over HTTP
and SSH; a repository without tags gets no part."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    LOOPBACK,
    Client,
    RunningServer,
    SshKeys,
    client_environment,
    ssh_server_settings,
    start_server,
    stop_server,
)
from tests.integration.test_hg_archive import _hg_serve


def _commit(client: Client, repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", name)


def _history(client: Client, repo: Path) -> None:
    """Two heads: one whose ``.hgtags`` names a tag (rev 3), one without the file (rev 2, on rev 0)."""
    client.hg("init", str(repo))
    _commit(client, repo, "a", "a\n")
    client.hg("tag", "-q", "-R", str(repo), "v1")
    client.hg("update", "-q", "-R", str(repo), "0")
    _commit(client, repo, "c", "c\n")
    client.hg("update", "-q", "-R", str(repo), "1")
    _commit(client, repo, "b", "b\n")
    client.hg("tags", "-q", "-R", str(repo))  # hg serve sends only what its cache holds


@pytest.fixture(scope="module")
def shared(reactor: Any, tmp_path_factory: pytest.TempPathFactory,
           ssh_keys: SshKeys) -> Iterator[tuple[RunningServer, int, int]]:
    tmp_path = tmp_path_factory.mktemp("tags-fnodes")
    server = start_server(reactor, "fs", tmp_path / "root", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    try:
        client = Client(client_environment(tmp_path), tmp_path)
        _history(client, server.root / "proj")
        plain = server.root / "plain"
        client.hg("init", str(plain))
        _commit(client, plain, "a", "a\n")
        client.hg("tags", "-q", "-R", str(plain))
        with _hg_serve(client, server.root / "proj") as port, _hg_serve(client, plain) as plain_port:
            yield server, port, plain_port
    finally:
        stop_server(reactor, server)


def _urls(served: RunningServer, ssh_keys: SshKeys, name: str) -> dict[str, tuple[str, ...]]:
    ssh = f"ssh://alice@127.0.0.1:{served.port('ssh')}/{name}"
    return {"http": (served.url("http", name),), "ssh": (ssh, "--ssh", ssh_keys.command(served.port("ssh")))}


def _applied(output: str) -> list[str]:
    return [line for line in output.splitlines() if "hgtags fnodes cache entries" in line]


def test_a_pull_and_a_clone_leave_the_tags_cache_hg_serve_leaves(shared: tuple[RunningServer, int, int],
                                                                   client: Client, ssh_keys: SshKeys,
                                                                   tmp_path: Path) -> None:
    """A pull after a clone of rev 1 (the tag's commit) fills the client's cache entries of both heads, the one
    without ``.hgtags`` with the null node, as from ``hg serve`` (without the part they stayed
    "missing"); a full clone applies as many entries as from ``hg serve``; ``hg verify`` passes."""
    served, port, _plain = shared
    sources = {**_urls(served, ssh_keys, "proj"), "reference": (f"http://127.0.0.1:{port}/",)}
    caches, clones = {}, {}
    for name, (url, *extra) in sources.items():
        dest = tmp_path / name
        client.hg("clone", "-q", "-U", "-r", "1", *extra, url, str(dest))
        pulled = client.hg("pull", "--debug", "-R", str(dest), *extra, url).stdout
        assert _applied(pulled) == ["applied 2 hgtags fnodes cache entries"], name
        caches[name] = client.hg("debugtagscache", "-R", str(dest)).stdout
        cloned = client.hg("clone", "-U", "--debug", *extra, url, str(tmp_path / f"{name}-full")).stdout
        clones[name] = _applied(cloned)
    assert caches["reference"].count("missing") == 1  # rev 0: never a head of the client
    for name in ("http", "ssh"):
        assert caches[name] == caches["reference"], name
        assert clones[name] == clones["reference"] == ["applied 2 hgtags fnodes cache entries"], name
        client.hg("verify", "-q", "-R", str(tmp_path / name))


def test_a_repository_without_tags_gets_no_part(shared: tuple[RunningServer, int, int], client: Client,
                                                ssh_keys: SshKeys, tmp_path: Path) -> None:
    """No ``.hgtags`` anywhere: no part (the client computes the null node itself, as it did);
    its cache then holds what a clone from ``hg serve`` holds once tags are read."""
    served, _port, plain_port = shared
    sources = {**_urls(served, ssh_keys, "plain"), "reference": (f"http://127.0.0.1:{plain_port}/",)}
    caches = {}
    for name, (url, *extra) in sources.items():
        dest = tmp_path / name
        output = client.hg("clone", "-U", "--debug", *extra, url, str(dest)).stdout
        if name != "reference":
            assert 'bundle2-input-part: "hgtagsfnodes"' not in output, name
        client.hg("tags", "-q", "-R", str(dest))
        caches[name] = client.hg("debugtagscache", "-R", str(dest)).stdout
    assert caches["http"] == caches["ssh"] == caches["reference"]
