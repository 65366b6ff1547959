"""What an hg push refused over SSH prints: hg's out-of-band error ended its message with a ``-``
line, which the client shows as it shows every line of the server's stderr (``remote: -``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings


def test_a_push_refused_for_want_of_permission_prints_no_dash_line(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", read_only=True, **ssh_server_settings(ssh_keys))
    client.hg("init", server.root / "app")
    work = tmp_path / "work"
    client.hg("init", work)
    (work / "f").write_text("one\n")
    client.hg("commit", "-q", "-A", "-R", work, "-m", "one")
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/app"
    pushed = client.hg("--config", f"ui.ssh={ssh_keys.command(server.port('ssh'))}", "push", "-R", work, url,
                       check=False)
    assert pushed.returncode == 255
    assert pushed.stdout.splitlines() == [
        f"pushing to {url}", "searching for changes",
        "remote: this server is read-only; pushes and repository creation are refused"], pushed.stdout
    assert pushed.stderr == "abort: remote error\n(check previous remote output)\n", pushed.stderr
