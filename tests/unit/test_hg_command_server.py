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
    for args in ([command, "-R", "repo"], ["-R", "repo", command], ["--repository=repo", command], ["-Rrepo", command]):
        if allowed:
            hg_command_server.check(args, tmp_path)
        else:
            with pytest.raises(hg_command_server.Unsuitable):
                hg_command_server.check(args, tmp_path)


def test_a_command_after_its_repository_runs_in_the_server(tmp_path: Path) -> None:
    """``hg -R PATH log`` (hg takes its global options before the command too): the server ran none
    of those (the -R was taken for the command), each an hg process of half a second."""
    hg_command_server.check(["-R", "repo", "log"], tmp_path)
    hg_command_server.check(["--config", "ui.quiet=1", "--repository", "repo", "commit", "-m", "x"], tmp_path)
    for args in (["-R", "repo", "serve"], ["-R", "repo", "log", "--cwd", "x"], ["-R", "repo", "push", "ssh://h/r"],
                 ["-R", "repo", "--config", "extensions.strip=", "log"], ["--cwd", "x", "log"]):
        with pytest.raises(hg_command_server.Unsuitable):
            hg_command_server.check(args, tmp_path)


def test_an_environment_of_its_own_runs_as_a_process(tmp_path: Path) -> None:
    assert hg_command_server.run_bytes(HG, ["init", "x"], tmp_path, {**ENV, "HGEDITOR": "true"}, 60) is None
    assert not (tmp_path / "x").exists()


def test_a_push_pull_and_clone_between_local_repositories_give_what_the_process_gives(tmp_path: Path) -> None:
    """hg's own push into a local reference, a pull and a clone of a local history: the same output,
    exit status and repositories as the process's."""
    _served(tmp_path, "init", "source")
    source = tmp_path / "source"
    (source / "a.txt").write_text("a\n")
    _served(source, "commit", "-q", "-A", "-m", "first", "-d", "0 0")
    log = ("log", "-T", "{rev} {node} {phase} {desc}\n")
    for runner, name in ((_served, "served"), (_process, "process")):
        runner(tmp_path, "init", f"{name}-pushed")
        results = [runner(tmp_path, "push", "-R", "source", f"{name}-pushed"),
                   runner(tmp_path, "push", "-R", "source", f"{name}-pushed"),  # (nothing to push: 1)
                   runner(tmp_path, "clone", "-q", "-U", "source", f"{name}-cloned"),
                   runner(tmp_path / f"{name}-cloned", "incoming", str(source)),
                   runner(tmp_path, "id", "-r", "0", "source")]
        (source / "a.txt").write_text("b\n")
        _served(source, "commit", "-q", "-m", "second", "-d", "1 0")
        results.append(runner(tmp_path / f"{name}-cloned", "pull", "-q", str(source)))
        results.append(runner(tmp_path / f"{name}-cloned", "outgoing", "-q", str(tmp_path / f"{name}-pushed")))
        _served(source, "debugstrip", "-q", "--no-backup", "-r", "tip")
        if runner is _served:
            served_results = [(r.returncode, r.stdout.replace(b"served", b"NAME"), r.stderr) for r in results]
        else:
            assert served_results == [(r.returncode, r.stdout.replace(b"process", b"NAME"), r.stderr)
                                      for r in results]
    assert served_results[1][0] == 1
    for kind in ("pushed", "cloned"):
        assert _process(tmp_path / f"served-{kind}", *log).stdout == _process(tmp_path / f"process-{kind}", *log).stdout
        assert _process(tmp_path / f"served-{kind}", "verify", "-q").returncode == 0


@pytest.mark.parametrize("args", [
    ["push", "-R", "source"],  # (its default path, which may be a URL)
    ["pull", "-R", "source"],
    ["outgoing", "-R", "source", "--bundle", "source"],
    ["push", "-R", "source", "elsewhere"],  # (no repository there: a path alias)
    ["clone", "-r", "source", "copy"],  # (-r's value, not a source)
    ["push", "-R", "source", "hooked"],
    ["pull", "-R", "hooked", "source"],
    ["clone", "hooked", "copy"],
    ["push", "--config-file", "rc", "-R", "source", "hooked"],
])
def test_a_push_pull_or_clone_to_another_than_a_named_local_repository_runs_as_a_process(
        tmp_path: Path, args: list[str]) -> None:
    for name, hgrc in (("source", "[ui]\nusername = x\n"), ("hooked", "[hooks]\nincoming = true\n")):
        (tmp_path / name / ".hg").mkdir(parents=True)
        (tmp_path / name / ".hg" / "hgrc").write_text(hgrc)
    hg_command_server.check(["push", "-R", "source", "source"], tmp_path)
    with pytest.raises(hg_command_server.Unsuitable):
        hg_command_server.check(args, tmp_path)


def test_an_archive_and_a_bookmark_listing_beside_hooks_give_what_the_process_gives(tmp_path: Path) -> None:
    """``hg archive`` writes the same files; ``hg bookmarks`` only listing them runs here in a
    repository with hooks (a listing opens no transaction), and one that sets a bookmark does not."""
    _served(tmp_path, "init", "repo")
    repo = tmp_path / "repo"
    (repo / "a.txt").write_text("a\n")
    (repo / "d").mkdir()
    (repo / "d" / "b.txt").write_text("b\n")
    _served(repo, "commit", "-q", "-A", "-m", "first", "-d", "0 0")
    _served(repo, "bookmark", "-q", "mark")
    for runner, name in ((_served, "served"), (_process, "process")):
        runner(tmp_path, "archive", "-R", "repo", "-r", "0", "-t", "files", name)
    trees = [{str(p.relative_to(tmp_path / name)): p.read_bytes() for p in (tmp_path / name).rglob("*") if p.is_file()}
             for name in ("served", "process")]
    assert trees[0] == trees[1] and "d/b.txt" in trees[0]
    (repo / ".hg" / "hgrc").write_text("[hooks]\npretxnclose = true\n")
    listing = ("bookmarks", "-R", "repo", "-T", "{bookmark} {node}\n")
    assert _served(tmp_path, *listing).stdout == _process(tmp_path, *listing).stdout
    with pytest.raises(hg_command_server.Unsuitable):
        hg_command_server.check(["bookmarks", "-R", "repo", "other"], tmp_path)
    with pytest.raises(hg_command_server.Unsuitable):
        hg_command_server.check(["bookmarks", "-R", "repo", "-d", "mark"], tmp_path)


def test_a_pythonpath_is_the_servers_own(tmp_path: Path) -> None:
    """A ``PYTHONPATH`` (hg-evolve's directory, the checkout's) keys a server started with it: the
    command runs there, not as a process, and never in a server of another path."""
    with_path = {**ENV, "PYTHONPATH": str(tmp_path)}
    assert hg_command_server._key(HG, with_path) != hg_command_server._key(HG, ENV)
    assert ("PYTHONPATH", str(tmp_path)) in hg_command_server._key(HG, with_path)[1]  # type: ignore[index]
    result = hg_command_server.run_bytes(HG, ["init", "x"], tmp_path, with_path, 60)
    assert result is not None and result.returncode == 0 and (tmp_path / "x" / ".hg").is_dir()
    assert any(server.env.get("PYTHONPATH") == str(tmp_path) for server in hg_command_server._ALL)
