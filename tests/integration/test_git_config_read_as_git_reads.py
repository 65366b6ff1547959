"""Config values hgwire refused where git never reads them, or read where git refuses them:
``lsrefs.unborn`` is read by git's protocol v2 alone (its capability advertisement and ``ls-refs``),
as written (``Advertise`` is not a word it takes), so a bad value refuses v2 and serves v0 (hgwire
refused both); ``include.path`` written without ``=`` has git refuse the whole config ("missing
value for 'include.path'"), the repository's or the server's (hgwire included nothing and served
the rest), and so has an ``[includeIf]`` one where its condition holds (hgwire served it anywhere).
Each checked beside git 2.39 over ``file://``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_config_twins import listed_under_base_config, refused_everywhere
from tests.integration.test_git_daemon import commit
from tests.integration.test_git_hiderefs_repeated_sections import pull_refs_repository


@pytest.mark.parametrize("setting", ["= true", "= Advertise", ""])
def test_a_bad_lsrefs_unborn_refuses_protocol_v2_alone(make_server: Callable[..., RunningServer], client: Client,
                                                       setting: str) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    bare = server.root / "unborn.git"
    client.git("clone", "-q", "--bare", str(work), str(bare))
    with open(bare / "config", "a") as f:
        f.write(f"[lsrefs]\n\tunborn {setting}\n")
    for url in (f"file://{bare}", server.git_url("unborn"), server.url("http", "unborn.git")):
        listed = client.git("-c", "protocol.version=0", "ls-remote", url)
        assert "refs/heads/main" in listed.stdout
        cloned = client.cwd / f"v0-{len(setting)}-{url.split(':')[0]}"
        client.git("-c", "protocol.version=0", "clone", "-q", url, str(cloned))
        assert (cloned / "a.txt").read_text() == "a\n"
        refused = client.git("-c", "protocol.version=2", "ls-remote", url, check=False)
        assert refused.returncode != 0, (url, refused.stdout)
        assert "lsrefs.unborn" in refused.stderr, refused.stderr


@pytest.mark.parametrize("where", ["own", "included"])
def test_include_path_without_a_value_refuses_the_config(make_server: Callable[..., RunningServer], client: Client,
                                                         where: str) -> None:
    server, bare, work = pull_refs_repository(make_server, client, "inc")
    with open(bare / "config", "a") as f:
        if where == "own":
            f.write("[include]\n\tpath\n")
        else:
            f.write("[include]\n\tpath = more\n")
            (bare / "more").write_text("[core]\n\tx = 1\n[include]\n\tpath\n")
    line = (bare / "config").read_text().count("\n") if where == "own" else 4
    says = (f"the repository's git config cannot be read (it sets 'include.path' without a value, line {line} of "
            f"{'config' if where == 'own' else 'more'}), and git cannot read it either; tell the server's operator")
    commit(client, work, "b.txt", "b\n", "second")
    refused_everywhere(client, bare, server.git_url("inc"), work, "missing value for 'include.path'", says)


def test_include_path_without_a_value_in_the_server_config_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    base, fetched = listed_under_base_config(make_server, client, tmp_path, "[core]\n\tx = 1\n[include]\n\tpath\n")
    assert fetched.returncode != 0
    assert (f"the server's git config {base} cannot be read (it sets 'include.path' without a value, line 4 of "
            f"{base}), and git cannot read it either; tell the server's operator") in fetched.stderr, fetched.stderr


def test_include_if_path_without_a_value_refuses_the_config_where_its_condition_holds(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    conditions = {"gitdir:**/{name}.git": True, "gitdir:{abs}/": True, "gitdir/i:**/{upper}.GIT": True,
                  "onbranch:ma*": True, "hasconfig:remote.*.url:https://nowhere/**": True,
                  "gitdir:/nowhere/": False, "onbranch:other": False, "nothing:x": False}
    for number, (condition, holds) in enumerate(conditions.items()):
        name = f"if{number}"
        bare = server.root / f"{name}.git"
        client.git("init", "-q", "--bare", "-b", "main", str(bare))
        client.git("push", "-q", str(bare), "main", cwd=work)
        written = condition.format(name=name, abs=bare.resolve(), upper=name.upper())
        with open(bare / "config", "a") as f:
            f.write(f'[includeIf "{written}"]\n\tpath\n')
        line = (bare / "config").read_text().count("\n")
        says = (f"the repository's git config cannot be read (it sets 'include.path' without a value, line {line} "
                "of config), and git cannot read it either; tell the server's operator")
        for url in (f"file://{bare}", server.git_url(name)):
            listed = client.git("ls-remote", url, check=False)
            if holds:
                assert listed.returncode != 0, (written, url, listed.stdout)
                assert ("missing value for 'include.path'" if url.startswith("file:") else says) in listed.stderr, \
                    (written, listed.stderr)
            else:
                assert listed.returncode == 0 and "refs/heads/main" in listed.stdout, (written, url, listed.stderr)
