"""A push connection (git-receive-pack over git:// or SSH) may stay quiet for minutes between the
advertisement and its commands (the pusher's pre-push hook).  With a ``packed-refs`` too big for the
kept parses (over a quarter of ``[limits] git_kept_refs_bytes``), each such connection held its own
parse of the file until it closed (45 MB for a mirror of 100,000 annotated tags: 10 of them took
the server from 73 to 600 MB of RSS); it now lets go of it once the advertisement is made, and the
update reads the refs it changes again, each checked against the command's old value."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends import git as git_backend
from backends.interfaces import ZERO_ID
from protocols import pktline
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_kept_refs_budget_reload import TAGS, packed_tags_repository
from tests.integration.test_git_v2_idle_packed_refs import _parses_alive, _Reader


@pytest.fixture(autouse=True)
def _budget_restored() -> Iterator[None]:
    budget = git_backend._PACKED_REFS.budget
    yield
    git_backend._PACKED_REFS.resize(budget)


def test_an_idle_push_connection_holds_no_parse_and_its_update_checks_the_refs_now(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", git=[LOOPBACK])
    git_backend.keep_packed_refs_within(2_000_000)  # a quarter: 2,000 refs (the server's start set the default)
    repo = server.root / "m.git"
    head = packed_tags_repository(client, repo, "idle-").encode()

    with socket.create_connection(("127.0.0.1", server.port("git")), timeout=30) as sock:
        reader = _Reader(sock)
        sock.sendall(pktline.encode(b"git-receive-pack /m.git\0host=x\0"))
        advertised = reader.packets()
        assert len(advertised) == TAGS + 1 and advertised[0].startswith(head + b" refs/heads/main\0")
        assert git_backend._PACKED_REFS.get(os.path.join(os.fsencode(repo), b"packed-refs")) is None, "too big to keep"
        assert _parses_alive() == 0, "a push connection idle after its advertisement holds no parse"

        # meanwhile another push deletes a tag the idle one advertised: its command's old value is stale
        client.git("update-ref", "-d", "refs/tags/idle-00002", cwd=repo)
        sock.sendall(pktline.encode(head + b" " + ZERO_ID + b" refs/tags/idle-00001\0report-status\n")
                     + pktline.encode(head + b" " + ZERO_ID + b" refs/tags/idle-00002\n")
                     + pktline.encode(head + b" " + ZERO_ID + b" refs/tags/nothing-here\n") + pktline.FLUSH)
        report = reader.packets()
    assert report[0] == b"unpack ok\n"
    assert report[1] == b"ok refs/tags/idle-00001\n"
    assert report[2].startswith(b"ng refs/tags/idle-00002 ") and report[3].startswith(b"ng refs/tags/nothing-here ")
    listed = client.git("for-each-ref", "--format=%(refname)", "refs/tags/idle-0000*", cwd=repo).stdout.split()
    assert "refs/tags/idle-00001" not in listed and "refs/tags/idle-00003" in listed
