"""A served hg repository whose ``.hg/hgrc`` includes ``/dev/zero``: each setting a request asked
for read a megabyte of zeros again (``hg`` itself reads it until memory runs out: 21 GB in 65 s),
and the repository was served as if it were a config.  hgwire refuses it at once, over HTTP, SSH and
on its hgweb pages, with a sentence for the client and the operator, and serves the others."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from twisted.logger import formatEvent

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events, ssh_server_settings

SAYS = ("the repository's hgrc includes /dev/zero, a character device, where hgwire reads only regular files, "
        "so it does not serve the repository; tell the server's operator")


def test_an_hgrc_including_dev_zero_is_refused_and_the_others_served(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys) -> None:
    server = make_server("fs", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    for name in ("zero", "fine"):
        client.hg("init", str(server.root / name))
    (server.root / "zero" / ".hg" / "hgrc").write_text("[web]\ndescription = zeros\n%include /dev/zero\n")
    (server.root / "fine" / ".hg" / "hgrc").write_text("%include /dev/null\n")  # (empty, as hg reads it)
    ssh = ("--config", f"ui.ssh={ssh_keys.command(server.port('ssh'))}")
    ssh_url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/"

    with log_events() as events:
        over_http = client.hg("id", "-r", "null", server.url("http", "zero"), check=False, timeout=60)
        over_ssh = client.hg(*ssh, "id", "-r", "null", ssh_url + "zero", check=False, timeout=60)
        server.settled()
    assert over_http.returncode != 0 and f"abort: HTTP Error 500: {SAYS}" in over_http.stderr, over_http.stderr
    assert over_ssh.returncode != 0 and f"remote: abort: {SAYS}" in over_ssh.stderr, over_ssh.stderr
    logged = [formatEvent(event) for event in events]
    assert sum(SAYS in line for line in logged) >= 2, "the operator's log names each refusal"
    try:
        urllib.request.urlopen(server.url("http", "zero") + "/shortlog", timeout=60)
        raise AssertionError("the page of a refused repository was served")
    except urllib.error.HTTPError as page:
        assert page.code == 500 and SAYS in page.read().decode(), page.code

    assert client.hg("id", "-r", "null", server.url("http", "fine")).stdout.strip() == "000000000000"
    assert client.hg(*ssh, "id", "-r", "null", ssh_url + "fine").stdout.strip() == "000000000000"
    with urllib.request.urlopen(server.url("http", "fine") + "/shortlog", timeout=60) as page:
        assert page.status == 200
