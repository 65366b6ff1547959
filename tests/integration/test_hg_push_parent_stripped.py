"""``hg push -f`` whose parent changeset is stripped from the server between the client's discovery
and its bundle's arrival (a forced push sends no heads to check) is refused with what to do, over
SSH and HTTP: it said ``parent <40 hex digits> is unknown`` and nothing more (``hg serve`` says
``abort: 00changelog@…: unknown parent``, or over HTTP an HTTP 500).  Pulling and pushing again
sends the parent too."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is a test's parameter)
from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_http import PASSWORD, _settings, htpasswd  # noqa: F401 - a fixture

STRIPPER = '''"""Run [stripper] cmd once the push's discovery is done, before its bundle is sent."""
import subprocess

from mercurial import exchange, extensions


def _discovery(orig, pushop):
    result = orig(pushop)
    subprocess.run(pushop.ui.config(b"stripper", b"cmd").decode(), shell=True, check=True)
    return result


def uisetup(ui):
    extensions.wrapfunction(exchange, "_pushdiscovery", _discovery)
'''


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_a_forced_push_whose_parent_was_stripped_meanwhile_says_pull_and_push_again(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, htpasswd: Path,
        tmp_path: Path, transport: str) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys), **_settings(htpasswd))
    served = server.root / "r"
    client.hg("init", str(served))
    work = tmp_path / "w"
    client.hg("clone", "-q", str(served), str(work))
    for name in ("a", "b", "c"):
        (work / name).write_text(name)
        client.hg("commit", "-q", "-A", "-m", name, cwd=work)
        if name == "b":
            client.hg("push", "-q", str(served), cwd=work)
    extension = tmp_path / "stripper.py"
    extension.write_text(STRIPPER)
    strip = f"{os.path.join(VENV_BIN, 'hg')} --config extensions.strip= -R {served} strip -q -r 1 --no-backup"
    url = (f"ssh://alice@127.0.0.1:{server.port('ssh')}/r" if transport == "ssh"
           else f"http://alice:{quote(PASSWORD, safe='')}@127.0.0.1:{server.port('http')}/r")
    ssh = ["--config", f"ui.ssh={ssh_keys.command(server.port('ssh'))}"]
    pushed = client.hg(*ssh, "--config", f"extensions.stripper={extension}", "--config", f"stripper.cmd={strip}",
                       "push", "-f", url, cwd=work, check=False, env={})  # (a process of its own: the extension)
    said = pushed.stdout + pushed.stderr
    assert pushed.returncode == 255, said
    found = re.search(r"changeset ([0-9a-f]{12})'s parent ([0-9a-f]{12}) is no longer in the repository "
                      r"\(it changed after your push began\); pull and push again", said)
    assert found, said
    assert [found[1], found[2]] == client.hg("log", "-r", "2+1", "-T", "{node|short}\n", cwd=work).stdout.split()
    client.hg("verify", "-q", "-R", str(served))
    client.hg(*ssh, "pull", "-q", url, cwd=work)
    client.hg(*ssh, "push", "-q", url, cwd=work)
    client.hg("verify", "-q", "-R", str(served))
    assert client.hg("log", "-R", str(served), "-T", "{desc}").stdout == "cba"
