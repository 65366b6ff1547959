"""Set-ups of the tests that check a git config hgwire refuses beside git's own refusal of it: a
served repository and its twin for git over ``file://`` (the same bytes, config included), and a
server whose ``[git] config`` file (git's system config to git's own services) holds a given text."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import commit


def served_and_twin(client: Client, server: RunningServer,
                    configure: Callable[[Path], object] | None = None) -> tuple[Path, Path, Path]:
    """A work tree (``work``, branch ``main``) of one commit, its bare clone served as ``v.git``
    (``pack.threads`` 1), ``configure``-d, and a copy of that for git over ``file://``
    (``twin.git``): the work tree, the served repository, the twin."""
    work, bare, twin = client.cwd / "work", server.root / "v.git", client.cwd / "twin.git"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f", "f\n", "first")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "pack.threads", "1", cwd=bare)
    if configure is not None:
        configure(bare)
    shutil.copytree(bare, twin, symlinks=True)
    return work, bare, twin


def refused_as_git(client: Client, server: RunningServer, work: Path, twin: Path, says: str,
                   refusing: bool) -> None:
    """``ls-remote``, a clone and a push of ``main`` over ``file://`` to ``twin`` (git's answer) and to
    the served ``v.git``: the first answered by both, the other two refused by both when
    ``refusing``, hgwire's refusals saying ``says``."""
    for url in (f"file://{twin}", server.git_url("v")):
        tag = "git" if url.startswith("file:") else "ours"
        done = (client.git("ls-remote", url, check=False),
                client.git("clone", "-q", url, str(client.cwd / f"c-{tag}"), check=False),
                client.git("push", url, "main:refs/heads/new", cwd=work, check=False))
        for what, refused, run in zip(("ls-remote", "clone", "push"), (False, refusing, refusing), done, strict=True):
            assert (run.returncode != 0) == refused, (tag, what, run.stderr)
            if tag == "ours":
                assert (says in run.stderr) == refused, (tag, what, run.stderr)


def base_config_server(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
                       tmp_path: Path, text: str) -> tuple[RunningServer, Path]:
    """A server over SSH whose ``--config`` file names ``tmp_path/gitconfig``, holding ``text``, as
    its ``[git] config``, where ``alice`` may push, and ``client`` set to reach it: the server and
    that file."""
    base = tmp_path / "gitconfig"
    base.write_text(text)
    (tmp_path / "policy.toml").write_text(f'[git]\nconfig = "{base}"\n[[repo]]\npattern = "*"\nwrite = ["alice"]\n')
    server = make_server("fs", config_file=str(tmp_path / "policy.toml"), **ssh_server_settings(ssh_keys))
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    return server, base


def refused_everywhere(client: Client, twin: Path, served: str, work: Path, git_says: str, says: str) -> None:
    """``ls-remote`` and a push of ``main`` from ``work``, in protocol v0 and v2, over ``file://`` to
    ``twin`` (git's own answer, saying ``git_says``) and to hgwire's ``served`` URL (saying ``says``):
    each refused."""
    for url in (f"file://{twin}", served):
        for version in ("0", "2"):
            v = ("-c", f"protocol.version={version}")
            fetched = client.git(*v, "ls-remote", url, check=False)
            pushed = client.git(*v, "push", url, "main:refs/heads/new", cwd=work, check=False)
            for done in (fetched, pushed):
                assert done.returncode != 0, (url, done.stderr)
                assert (git_says if url.startswith("file:") else says) in done.stderr, done.stderr


def listed_under_base_config(make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
                             text: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A server over git:// whose ``[git] config`` is ``tmp_path/gitconfig`` holding ``text``, serving
    ``b.git`` of one commit: that file, and an ``ls-remote`` of ``b.git``."""
    base = tmp_path / "gitconfig"
    base.write_text(text)
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[git]\nconfig = "{base}"\n')
    server = make_server("fs", git=[LOOPBACK], config_file=str(policy))
    work, bare = client.cwd / "work", server.root / "b.git"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    return base, client.git("ls-remote", server.git_url("b"), check=False)
