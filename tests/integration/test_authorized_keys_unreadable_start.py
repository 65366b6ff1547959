"""An ``--authorized-keys`` path that exists but cannot be read (a directory given by mistake, a
file without read rights) is warned of at the start, as ``--htpasswd``'s is: the start said
nothing, and each SSH login was refused with a line of its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, RunningServer, SshKeys, log_events


def test_an_authorized_keys_directory_is_warned_of_at_the_start(
        make_server: Callable[..., RunningServer], ssh_keys: SshKeys, tmp_path: Path) -> None:
    keys = tmp_path / "authorized_keys"
    keys.mkdir()
    with log_events() as events:
        make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key), authorized_keys=str(keys))
    said = [e for e in events if "--authorized-keys" in str(e.get("log_format"))]
    assert len(said) == 1, [e.get("log_format") for e in events]
    assert said[0]["log_level"].name == "warn" and said[0]["path"] == str(keys), said
    assert said[0]["reason"] == "Is a directory", said
