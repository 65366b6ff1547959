"""A served repository whose git config includes ``/dev/zero``: every request for it grew the
process for ever (2.5 GB of RSS in 20 s, the client waiting); git refuses such a config ("bad config
line 1 in file /dev/zero").  hgwire refuses it at once with a sentence for the client and the
operator, and serves the others."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from twisted.logger import formatEvent

from tests.conftest import LOOPBACK, Client, RunningServer, log_events

SAYS = ("the repository's git config includes /dev/zero, a character device, where hgwire reads only "
        "regular files, so it does not serve the repository; tell the server's operator")


@pytest.mark.parametrize("version", ["0", "2"])
def test_a_config_including_dev_zero_is_refused_and_the_others_served(
        make_server: Callable[..., RunningServer], client: Client, version: str) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    for name in ("zero", "fine"):
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(server.root / f"{name}.git")], check=True)
    with open(server.root / "zero.git" / "config", "a") as f:
        f.write("[include]\n\tpath = /dev/zero\n")
    with open(server.root / "fine.git" / "config", "a") as f:
        f.write("[include]\n\tpath = /dev/null\n")  # (empty, as git reads it)

    gits = client.git("ls-remote", f"file://{server.root / 'zero.git'}", check=False)
    assert gits.returncode != 0 and "bad config line 1 in file /dev/zero" in gits.stderr, gits.stderr
    with log_events() as events:
        ours = client.git("-c", f"protocol.version={version}", "ls-remote", server.git_url("zero"),
                          check=False, timeout=60)
        server.settled()
    assert any(SAYS in formatEvent(event) for event in events), "the operator's log names the refusal"
    assert ours.returncode != 0 and SAYS in ours.stderr, ours.stderr
    over_http = client.git("-c", f"protocol.version={version}", "ls-remote", server.url("http", "zero"),
                           check=False, timeout=60)
    assert over_http.returncode != 0 and "refs/" not in over_http.stdout, over_http.stdout
    for url in (server.git_url("fine"), server.url("http", "fine")):
        assert client.git("-c", f"protocol.version={version}", "ls-remote", url).returncode == 0
