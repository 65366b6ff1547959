"""A served repository's ``uploadpackfilter.*`` settings, which an operator sets to bound what
partial clones may ask for (``uploadpackfilter.tree.maxDepth``, a deep ``tree:`` filter being costly
to count; ``uploadpackfilter.<filter>.allow``; ``uploadpackfilter.allow`` for the filters not named),
are read as git's upload-pack reads them: a fetch naming a filter they do not allow is refused in
git's words.  hgwire did not read them: every filter was served."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.mark.parametrize(("transport", "version"), [("git", "0"), ("git", "2"), ("http", "0"), ("http", "2")])
def test_uploadpackfilter_settings_refuse_the_filters_they_do_not_allow(
        make_server: Callable[..., RunningServer], client: Client, transport: str, version: str) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    bare = server.root / "bounded.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    (work / "dir").mkdir()
    (work / "dir" / "big.txt").write_text("blob\n" * 1000)
    client.git("add", ".", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    client.git("push", "-q", str(bare), "main", cwd=work)
    for key, value in (("uploadpackfilter.blob:none.allow", "false"), ("uploadpackfilter.tree.maxDepth", "1")):
        client.git("--git-dir", str(bare), "config", key, value)
    url = server.git_url("bounded") if transport == "git" else f"http://127.0.0.1:{server.port('http')}/bounded.git"

    def clone(spec: str) -> subprocess.CompletedProcess[str]:
        target = client.cwd / f"c-{spec.replace(':', '-').replace('+', '-')}"
        return client.git("-c", f"protocol.version={version}", "clone", "-q", "--no-checkout", f"--filter={spec}",
                          url, str(target), check=False)

    refused = clone("blob:none")
    assert refused.returncode != 0 and "filter 'blob:none' not supported" in refused.stderr, refused.stderr
    too_deep = clone("combine:blob:limit=1k+tree:2")
    assert too_deep.returncode != 0, too_deep.stderr
    assert "tree filter allows max depth 1, but got 2" in too_deep.stderr, too_deep.stderr
    for spec in ("blob:limit=1k", "tree:1"):
        taken = clone(spec)
        assert taken.returncode == 0, taken.stderr

    client.git("--git-dir", str(bare), "config", "uploadpackfilter.allow", "false")
    client.git("--git-dir", str(bare), "config", "uploadpackfilter.blob:limit.allow", "true")
    unnamed = clone("object:type=commit")
    assert unnamed.returncode != 0 and "filter 'object:type' not supported" in unnamed.stderr, unnamed.stderr
    assert clone("blob:limit=2k").returncode == 0
