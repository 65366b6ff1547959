"""A setting the server's ``[git] config`` file gives that git would refuse (a ``hideRefs`` line
without a value, a boolean git would not read): the client was told to fix "the repository's git
config" (``… without a value (line 2 of gitconfig)``, ``fix it in the repository's config on the
server``), which does not hold it; it is now told the file that does, the server's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

HIDE = "[uploadpack]\n\thideRefs\n"
FILTER = '[uploadpack]\n\tallowFilter = true\n[uploadpackfilter "blob:none"]\n\tallow = maybe\n'


@pytest.mark.parametrize("own", [False, True])
def test_a_refused_setting_of_the_server_config_names_that_file(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, own: bool) -> None:
    base = tmp_path / "gitconfig"
    base.write_text("")
    (tmp_path / "policy.toml").write_text(f'[git]\nconfig = "{base}"\n')
    server = make_server("fs", git=[LOOPBACK], config_file=str(tmp_path / "policy.toml"))
    work, bare = client.cwd / "work", server.root / "b.git"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    config = bare / "config" if own else base  # (the same lines in the repository's own: named so, as before)
    kept = config.read_text()
    whose, where = ("the repository's git config", "config") if own else ("the server's git config", str(base))
    fix = "fix it in the repository's config on the server" if own else f"fix it in the server's git config {base}"
    valueless = (f"{whose} sets 'uploadpack.hiderefs' without a value (line {kept.count(chr(10)) + 2} of {where}), "
                 "which git refuses as a bad config variable; tell the server's operator")
    bad_bool = f"bad boolean config value 'maybe' for 'uploadpackfilter.blob:none.allow'; {fix}"
    for text, says in ((HIDE, valueless), (FILTER, bad_bool)):
        config.write_text(kept + text)
        listed = client.git("ls-remote", server.git_url("b"), check=False)
        assert listed.returncode != 0 and says in listed.stderr, listed.stderr
