"""A push of the branch HEAD names while another process holds ``HEAD.lock`` (a ``git symbolic-ref``
or ``git checkout`` under way): git 2.39's refs code locks HEAD too for such an update (to log it as
HEAD's), so git's receive-pack refuses it, "cannot lock ref 'HEAD'" (an ``--atomic`` push whole),
and takes the other branches.  hgwire took it.  Each push is made beside git's own (``file://``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_repository


def _statuses(porcelain: str) -> list[tuple[str, str]]:
    """(ref, flag and git's reason's first words) of each line of a push's ``--porcelain`` output."""
    lines = [line.split("\t") for line in porcelain.splitlines() if line[:1] in "!*- =+" and "\t" in line]
    return [(parts[1].split(":")[-1], parts[0] + " " + parts[2].split(":")[0].rstrip(")")) for parts in lines]


def test_head_s_branch_is_refused_while_head_is_locked_as_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server, served, work, (first, second) = race_repository(make_server, client, init=("-b", "main"))
    twin = client.cwd / "twin.git"
    client.git("--git-dir", str(served), "config", "receive.denyDeleteCurrent", "ignore")
    client.git("push", "-q", str(served), f"{first}:refs/heads/main", f"{first}:refs/heads/x", cwd=work)
    shutil.copytree(served, twin, symlinks=True)
    for repo in (served, twin):
        (repo / "HEAD.lock").write_text("ref: refs/heads/x\n")
    pushes = [[f"{second}:refs/heads/main"], [f"{second}:refs/heads/x"],
              ["--atomic", f"{second}:refs/heads/main", f"{second}:refs/heads/y"], [":refs/heads/main"]]
    for push in pushes:
        said = []
        for url in (f"file://{twin}", server.git_url("r")):
            pushed = client.git("push", "--porcelain", url, *push, cwd=work, check=False)
            said.append(_statuses(pushed.stdout))
            if "refs/heads/main" in " ".join(push):
                assert "HEAD.lock" in pushed.stdout + pushed.stderr, (url, pushed.stdout + pushed.stderr)
        assert said[0] == said[1], (push, said)
    for repo in (served, twin):
        assert (repo / "HEAD.lock").read_text() == "ref: refs/heads/x\n"
        (repo / "HEAD.lock").unlink()
    listed = [client.git("--git-dir", str(repo), "for-each-ref", "--format=%(refname) %(objectname)").stdout
              for repo in (served, twin)]
    assert listed[0] == listed[1] == f"refs/heads/main {first}\nrefs/heads/x {second}\n", listed
    client.git("--git-dir", str(served), "fsck", "--full")
