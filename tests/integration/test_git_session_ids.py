"""``transfer.advertiseSID`` in a repository's config: fetches and pushes over git://, SSH and HTTP,
protocol v0 and v2, are offered a ``session-id`` as git's upload-pack and receive-pack offer it,
so the real client's trace2 log records the server's (``server-sid``), and hgwire logs both
sides' ids (over HTTP each POST offers one of its own, as each of git http-backend's processes
does). It was not read: no id was offered, and a client's trace2 log met nothing in the
server's. Off by default, as in git."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_git_damaged_repository import bare_with_a_commit


def _server_sids(trace: Path) -> list[str]:
    """The ``server-sid`` values a client's ``GIT_TRACE2_EVENT`` file recorded."""
    sids = []
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "data" and event.get("key") == "server-sid":
            sids.append(event["value"])
    return sids


def _client_sids(trace: Path) -> set[str]:
    """Every session id of the client's processes (a child's is ``parent/child``), each part too."""
    sids = set()
    for line in trace.read_text().splitlines():
        sid = json.loads(line).get("sid", "")
        sids.add(sid)
        sids.update(sid.split("/"))
    return sids


@pytest.mark.parametrize("transport", ["git", "ssh", "http"])
@pytest.mark.parametrize("version", ["0", "2"])
def test_advertise_sid_offers_a_session_id_and_logs_both(make_server: Callable[..., RunningServer], client: Client,
                                                         ssh_keys: SshKeys, tmp_path: Path, transport: str,
                                                         version: str) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd),
                         **ssh_server_settings(ssh_keys))
    bare, _ = bare_with_a_commit(client, server.root, "sid.git")
    url = {"git": server.git_url("sid"), "ssh": f"ssh://git@127.0.0.1:{server.port('ssh')}/sid.git",
           "http": f"http://alice:s3cret@127.0.0.1:{server.port('http')}/sid.git"}[transport]
    env = {"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))}
    config = ["-c", f"protocol.version={version}", "-c", "transfer.advertiseSID=true"]

    trace = tmp_path / "unset.json"
    client.git(*config, "clone", "-q", url, str(tmp_path / "unset"), env={**env, "GIT_TRACE2_EVENT": str(trace)})
    assert _server_sids(trace) == []  # off by default, as in git

    subprocess.run(["git", "--git-dir", str(bare), "config", "transfer.advertiseSID", "true"], check=True)
    clone = tmp_path / "clone"
    trace = tmp_path / "clone.json"
    with log_events() as events:
        client.git(*config, "clone", "-q", url, str(clone), env={**env, "GIT_TRACE2_EVENT": str(trace)})
        (clone / "b.txt").write_text("b\n")
        client.git("add", ".", cwd=clone)
        client.git("commit", "-qm", "b", cwd=clone)
        push_trace = tmp_path / "push.json"
        client.git(*config, "push", "-q", "origin", "main", cwd=clone, env={**env, "GIT_TRACE2_EVENT": str(push_trace)})
    logged = [e for e in events if "client_session_id" in e]
    logged_ids = {e["session_id"]: e["client_session_id"] for e in logged}
    offered = _server_sids(trace)  # the clone's fetch records the id it was offered (a push records none,
    assert offered or (transport, version) == ("http", "0"), trace.read_text()  # nor git 2.39 over HTTP v0)
    # over HTTP the id offered is the GET's (logged with it); each POST has one of its own, as with git
    assert set(offered) <= {e["session_id"] for e in events if "session_id" in e}, (offered, logged)
    for client_trace in (trace, push_trace):  # the client's own id is logged beside the server's
        assert _client_sids(client_trace) & set(logged_ids.values()), (logged, client_trace)
    assert all(" " not in e["session_id"] and e["session_id"].isprintable() for e in logged)
    assert subprocess.run(["git", "--git-dir", str(bare), "log", "-1", "--format=%s", "main"], check=True,
                          capture_output=True, text=True).stdout.strip() == "b"


def test_advertise_sid_takes_git_booleans_only(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, _ = bare_with_a_commit(client, server.root, "badsid.git")
    subprocess.run(["git", "--git-dir", str(bare), "config", "transfer.advertiseSID", "maybe"], check=True)
    refused = client.git("clone", "-q", server.git_url("badsid"), str(client.cwd / "bad"), check=False)
    assert refused.returncode != 0 and "transfer.advertisesid" in refused.stderr.lower(), refused.stderr
