"""``hg push --pushvars KEY=VALUE`` (how a push asks a hook to let it through: ``BYPASS_REVIEW=``,
``DEBUG=1``) over SSH and HTTP with the real hg client: with the repository's ``[push]
pushvars.server = true`` every hook of the push is told ``HG_USERVAR_KEY``, as by ``hg serve``;
without it the variables are ignored and the push lands, as with ``hg serve``.  hgwire refused every
such push ("abort: missing support for pushvars"), whatever the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, SshKeys
from tests.integration.test_hg_hooks import _repo_with_hooks, _served, _work
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

HOOKS = """\
prechangegroup.vars = echo "pre $HG_USERVAR_DEBUG"
pretxnchangegroup.vars = env | grep '^HG_USERVAR_' | sort
changegroup.vars = echo "after $HG_USERVAR_DEBUG"
"""


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_push_variables_reach_the_hooks_where_the_repository_allows_them(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path,  # noqa: F811
        kind: str) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = _repo_with_hooks(client, server, HOOKS)
    hgrc = repo / ".hg" / "hgrc"
    hgrc.write_text("[push]\npushvars.server = true\n" + hgrc.read_text())
    work, _ = _work(client, tmp_path, 2)

    pushed = peer.hg("push", "-R", str(work), "-r", "0", "--pushvars", "DEBUG=1", "--pushvars", "BYPASS_REVIEW=",
                     "--pushvars", "low=a=b", url("hooked"))
    said = [line.removeprefix("remote: ") for line in pushed.stdout.splitlines() + pushed.stderr.splitlines()
            if line.startswith("remote: ")]
    assert said == ["pre 1", "adding changesets", "adding manifests", "adding file changes",
                    "HG_USERVAR_BYPASS_REVIEW=", "HG_USERVAR_DEBUG=1", "HG_USERVAR_LOW=a=b",
                    "added 1 changesets with 1 changes to 1 files", "after 1"], pushed

    hgrc.write_text("[hooks]\n" + HOOKS)  # pushvars.server unset: told nothing, the push lands
    pushed = peer.hg("push", "-R", str(work), "--pushvars", "DEBUG=2", url("hooked"))
    said = [line.removeprefix("remote: ") for line in pushed.stdout.splitlines() + pushed.stderr.splitlines()
            if line.startswith("remote: ")]
    assert said == ["pre ", "adding changesets", "adding manifests", "adding file changes",
                    "added 1 changesets with 1 changes to 1 files", "after "], pushed
    assert len(client.hg("log", "-R", str(repo), "-T", "x").stdout) == 2
    client.hg("verify", "-q", "-R", str(repo))
