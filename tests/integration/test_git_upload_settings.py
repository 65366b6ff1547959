"""A repository's own settings for fetches and pushes, as git reads them:
``uploadpack.allowFilter = false`` offers no partial clone (git's client then warns and fetches
everything), ``lsrefs.unborn = ignore`` names no unborn HEAD, ``receive.advertisePushOptions =
false`` offers no push options."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_damaged_repository import bare_with_a_commit


@pytest.mark.parametrize(("transport", "version"), [("git", "0"), ("git", "2"), ("http", "0"), ("http", "2")])
def test_allow_filter_false_serves_whole_clones(make_server: Callable[..., RunningServer], client: Client,
                                                 transport: str, version: str) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    bare = server.root / "whole.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    (work / "big.txt").write_text("blob\n" * 100)
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    client.git("push", "-q", str(bare), "main", cwd=work)
    url = server.git_url("whole") if transport == "git" else f"http://127.0.0.1:{server.port('http')}/whole.git"
    partial = client.cwd / f"partial-{transport}-{version}"
    client.git("-c", f"protocol.version={version}", "clone", "-q", "--no-checkout", "--filter=blob:none", url,
               str(partial))
    missing = client.git("rev-list", "--objects", "--missing=print", "--all", cwd=partial).stdout
    assert "?" in missing  # filtered: the blob was left out

    client.git("--git-dir", str(bare), "config", "uploadpack.allowFilter", "false")
    whole = client.cwd / f"whole-{transport}-{version}"
    cloned = client.git("-c", f"protocol.version={version}", "clone", "--no-checkout", "--filter=blob:none", url,
                        str(whole))
    assert "filtering not recognized by server, ignoring" in cloned.stderr, cloned.stderr
    missing = client.git("rev-list", "--objects", "--missing=print", "--all", cwd=whole).stdout
    assert "?" not in missing, missing


def test_lsrefs_unborn_ignore_names_no_unborn_head(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare = server.root / "empty.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "trunk", str(bare)], check=True)
    named = client.cwd / "named"
    client.git("-c", "protocol.version=2", "-c", "init.defaultBranch=other", "clone", "-q", server.git_url("empty"),
               str(named))
    assert client.git("symbolic-ref", "HEAD", cwd=named).stdout.strip() == "refs/heads/trunk"
    client.git("--git-dir", str(bare), "config", "lsrefs.unborn", "ignore")
    unnamed = client.cwd / "unnamed"
    client.git("-c", "protocol.version=2", "-c", "init.defaultBranch=other", "clone", "-q", server.git_url("empty"),
               str(unnamed))
    assert client.git("symbolic-ref", "HEAD", cwd=unnamed).stdout.strip() == "refs/heads/other"


@pytest.mark.parametrize("transport", ["git", "http"])
def test_advertise_push_options_false_offers_none(make_server: Callable[..., RunningServer], client: Client,
                                                  transport: str, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd))
    bare, work = bare_with_a_commit(client, server.root, "opts.git", push=False)
    url = server.git_url("opts") if transport == "git" else f"http://alice:s3cret@127.0.0.1:{server.port('http')}/opts.git"
    client.git("--git-dir", str(bare), "config", "receive.advertisePushOptions", "false")
    refused = client.git("push", "-o", "ci.skip", url, "main", cwd=work, check=False)
    assert refused.returncode != 0 and "the receiving end does not support push options" in refused.stderr
    client.git("push", "-q", url, "main", cwd=work)
    client.git("--git-dir", str(bare), "config", "--unset", "receive.advertisePushOptions")
    (work / "a.txt").write_text("b\n")
    client.git("commit", "-qam", "b", cwd=work)
    client.git("push", "-q", "-o", "ci.skip", url, "main", cwd=work)  # offered by default
