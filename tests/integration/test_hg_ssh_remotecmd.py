"""hg's ``[ui] remotecmd`` as users set it for a server they ran ``hg serve --stdio`` on: a path to
hg (``/usr/local/bin/hg``) or hg's command-server client ``chg`` (``remotecmd = chg``, which starts
faster than hg).  hgwire runs no program, so each is served as ``hg``; ``chg`` was refused
("unknown command 'chg'"), so such a user's every clone, pull and push failed."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_hg_ssh import HgSsh, hgssh  # noqa: F401 - a fixture


def test_chg_and_a_path_to_hg_as_remotecmd_are_hg(hgssh: HgSsh, tmp_path: Path) -> None:  # noqa: F811
    for n, remotecmd in enumerate(("chg", "/usr/local/bin/chg", "/usr/local/bin/hg")):
        hgssh.hg("--config", f"ui.remotecmd={remotecmd}", "init", hgssh.url(f"team/r{n}"))
    work = tmp_path / "work"
    hgssh.client.hg("init", str(work))
    (work / "f").write_text("one\n")
    hgssh.client.hg("commit", "-q", "-A", "-R", str(work), "-m", "one")
    pushed = hgssh.hg("--config", "ui.remotecmd=chg", "push", "-R", str(work), hgssh.url("team/r0"))
    assert "remote: added 1 changesets with 1 changes to 1 files" in pushed.stdout, pushed
    clone = tmp_path / "clone"
    hgssh.hg("--config", "ui.remotecmd=/usr/local/bin/chg", "clone", "-q", hgssh.url("team/r0"), str(clone))
    assert (clone / "f").read_text() == "one\n"
    node = hgssh.client.hg("log", "-R", str(work), "-r", "tip", "-T", "{node|short}").stdout
    assert hgssh.hg("identify", "--remotecmd", "chg", hgssh.url("team/r0")).stdout.strip() == node
