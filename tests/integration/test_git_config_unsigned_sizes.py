"""``core.bigFileThreshold`` and ``core.deltaBaseCacheLimit`` are read by git as unsigned longs
(``git_config_ulong``): a ``-`` anywhere is "invalid unit", more than 2**64 - 1 "out of range", and
git refuses a push and a fetch that gets a pack.  hgwire read ``-1`` as a number and served them
(before the loose objects' bound was kept, ``-1`` made every request "internal error")."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


@pytest.mark.parametrize(("key", "value"), [("core.bigFileThreshold", "-1"), ("core.deltaBaseCacheLimit", "-1"),
                                            ("core.bigFileThreshold", "-0"),
                                            ("core.bigFileThreshold", "99999999999999999999"),
                                            ("core.deltaBaseCacheLimit", "16777216k")])
def test_an_unsigned_size_git_refuses_is_refused_where_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, key: str, value: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, bare, twin = client.cwd / "work", server.root / "v.git", client.cwd / "twin.git"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f", "f\n", "first")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "pack.threads", "1", cwd=bare)
    client.git("config", key, value, cwd=bare)
    shutil.copytree(bare, twin, symlinks=True)
    refused = value != "16777216k"  # (16 GiB: in range)
    says = f"bad numeric config value '{value}' for '{key.lower()}'"
    for url in (f"file://{twin}", server.git_url("v")):
        tag = "git" if url.startswith("file:") else "ours"
        done = (client.git("ls-remote", url, check=False),
                client.git("clone", "-q", url, str(client.cwd / f"c-{tag}"), check=False),
                client.git("push", url, "main:refs/heads/new", cwd=work, check=False))
        for what, refusing, run in zip(("ls-remote", "clone", "push"), (False, refused, refused), done, strict=True):
            assert (run.returncode != 0) == refusing, (tag, what, run.stderr)
            if tag == "ours":
                assert (says in run.stderr) == refusing, (tag, what, run.stderr)
