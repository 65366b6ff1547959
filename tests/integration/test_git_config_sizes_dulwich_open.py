"""A repository's config giving ``core.bigFileThreshold`` or ``core.deltaBaseCacheLimit`` with a
``k``, ``m`` or ``g`` (as git reads them, and as operators write them): the repository is served
(dulwich's open read them as plain integers, and every client was told "internal error"); one git
would not read refuses in git's words."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.mark.parametrize("setting", ["core.bigFileThreshold=512m", "core.deltaBaseCacheLimit=96m",
                                     "core.bigFileThreshold=lots"])
def test_sizes_with_a_unit_are_read_as_git_reads_them(make_server: Callable[..., RunningServer], client: Client,
                                                      setting: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "s.git"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "f").write_text("f\n")
    client.git("add", "f", cwd=work)
    client.git("commit", "-qm", "f", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    key, value = setting.split("=")
    client.git("config", key, value, cwd=bare)
    cloned = client.git("clone", "-q", server.git_url("s"), str(client.cwd / "s"), check=False)
    if value == "lots":  # (git's commands die on it)
        assert cloned.returncode != 0, cloned.stderr
        assert f"bad numeric config value 'lots' for '{key.lower()}'" in cloned.stderr, cloned.stderr
        return
    assert cloned.returncode == 0, cloned.stderr
    client.git("-C", str(client.cwd / "s"), "fsck")
