"""A Mercurial repository with internal phases (``hg init --config format.use-internal-phase=yes``;
``hg shelve`` keeps a shelved change as an internal changeset) is served: clones and pulls never see
the internal changeset, pushes land beside it, and ``hg unshelve`` on the server still finds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Client, RunningServer
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401


def test_a_repository_with_internal_phases_is_served(make_server: Callable[..., RunningServer],
                                                     client: Client, htpasswd: Path) -> None:  # noqa: F811
    server = make_server("fs", **_settings(htpasswd))
    repo = server.root / "shelved"
    client.hg("init", "--config", "format.use-internal-phase=yes", str(repo))
    assert "internal-phase-2" in (repo / ".hg" / "store" / "requires").read_text() + \
        (repo / ".hg" / "requires").read_text()
    for n in range(2):
        (repo / "f.txt").write_text(f"{n}\n")
        client.hg("commit", "-q", "-A", "-m", f"c{n}", cwd=repo)
    (repo / "f.txt").write_text("shelved work\n")
    client.hg("shelve", "-q", "--config", "phases.publish=False", cwd=repo)
    internal = client.hg("log", "--hidden", "-r", "tip", "-T", "{node} {phase}", cwd=repo).stdout.split()
    assert internal[1] == "internal", internal

    url = HgHttp(server, client).push_url("shelved")
    clone = client.cwd / "clone"
    client.hg("clone", "-q", url, str(clone))
    assert client.hg("log", "-T", "{desc}\n", cwd=clone).stdout.split() == ["c1", "c0"]
    assert internal[0] not in client.hg("log", "--hidden", "-T", "{node}\n", cwd=clone).stdout
    client.hg("verify", "-q", cwd=clone)
    (clone / "g.txt").write_text("pushed\n")
    client.hg("commit", "-q", "-A", "-m", "pushed", cwd=clone)
    client.hg("push", "-q", url, cwd=clone)
    client.hg("verify", "-q", cwd=repo)
    assert client.hg("log", "--hidden", "-r", internal[0], "-T", "{phase}", cwd=repo).stdout == "internal"
    client.hg("update", "-q", "-r", "tip", cwd=repo)
    client.hg("unshelve", "-q", "--config", "phases.publish=False", cwd=repo)
    assert (repo / "f.txt").read_text() == "shelved work\n"
