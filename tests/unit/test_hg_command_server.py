"""The tests' hg command server gives what the ``hg`` process gives, and refuses what it must not run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import hg_command_server
from tests.conftest import VENV_BIN

HG = os.path.join(VENV_BIN, "hg")
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>",
       "HGENCODING": "utf-8", "LANG": "C.UTF-8"}


def _process(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([HG, *args], cwd=cwd, env=ENV, capture_output=True, check=False)


def _served(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    result = hg_command_server.run_bytes(HG, list(args), cwd, ENV, 60)
    assert result is not None, "the command should have run in the command server"
    return result


def test_a_local_command_gives_what_the_process_gives(tmp_path: Path) -> None:
    _served(tmp_path, "init", "repo")
    repo = tmp_path / "repo"
    (repo / "a.txt").write_text("a\n")
    _served(repo, "commit", "-q", "-A", "-m", "first", "-d", "0 0")
    (repo / "a.txt").write_text("b\n")
    _served(tmp_path, "commit", "-q", "-R", "repo", "-m", "second", "-d", "1 0")  # relative to its cwd
    for args in (("log", "-T", "{rev} {node} {desc}\n"), ("verify",), ("cat", "-r", "0", "a.txt"),
                 ("log", "-r", "nosuchrev")):
        served, process = _served(repo, *args), _process(repo, *args)
        assert (served.returncode, served.stdout, served.stderr) == (
            process.returncode, process.stdout, process.stderr), args
    assert _served(repo, "log", "-r", "nosuchrev").returncode == 255


def test_a_killed_server_is_replaced(tmp_path: Path) -> None:
    _served(tmp_path, "init", "repo")
    for server in list(hg_command_server._ALL):
        server._process.kill()
        server._process.wait()
    assert _served(tmp_path / "repo", "log").returncode == 0


@pytest.mark.parametrize("args", [
    ["clone", "repo", "other"],
    ["log", "-R", "http://127.0.0.1:1/repo"],
    ["--config", "ui.ssh=ssh", "init", "ssh://127.0.0.1/repo"],
    ["commit", "-m", "x", "--config", "hooks.pretxncommit=kill -9 $PPID"],
    ["--config", "extensions.strip=", "log"],
    ["log", "--cwd", "elsewhere"],
    ["serve"],
])
def test_what_acts_on_the_network_or_the_process_runs_as_a_process(tmp_path: Path, args: list[str]) -> None:
    with pytest.raises(hg_command_server.Unsuitable):
        hg_command_server.check(args, tmp_path)


@pytest.mark.parametrize(("hgrc", "command", "allowed"), [
    ("[extensions]\nstrip =\n", "log", False),
    ("[hooks]\npretxncommit = exit 1\n", "commit", False),
    ("[hooks]\npretxncommit = exit 1\n", "log", True),
    ("[hooks]\npre-log = exit 1\n", "log", False),
    ("[ui]\nusername = x\n", "commit", True),
])
def test_a_repository_that_loads_code_or_runs_hooks_keeps_its_commands_in_processes(
        tmp_path: Path, hgrc: str, command: str, allowed: bool) -> None:
    (tmp_path / "repo" / ".hg").mkdir(parents=True)
    (tmp_path / "repo" / ".hg" / "hgrc").write_text(hgrc)
    if allowed:
        hg_command_server.check([command, "-R", "repo"], tmp_path)
    else:
        with pytest.raises(hg_command_server.Unsuitable):
            hg_command_server.check([command, "-R", "repo"], tmp_path)


def test_an_environment_of_its_own_runs_as_a_process(tmp_path: Path) -> None:
    assert hg_command_server.run_bytes(HG, ["init", "x"], tmp_path, {**ENV, "HGEDITOR": "true"}, 60) is None
    assert not (tmp_path / "x").exists()
