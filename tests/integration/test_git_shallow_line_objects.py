"""A shallow clone whose ``.git/shallow`` names an object that is no commit (an annotated tag, a
tree, a blob) is refused as git's upload-pack refuses it, ``invalid shallow object <id>``, over
protocol v0 and v2, where hgwire deepened a tag's commit and ignored the others; a shallow line
naming an object the repository lacks is passed over, as by git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


def _served(client: Client, root: Path) -> dict[str, str]:
    bare = root / "s.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = client.cwd / "src"
    client.git("init", "-q", "-b", "main", str(work))
    for i in range(3):
        (work / "f.txt").write_text(f"{i}\n")
        client.git("add", ".", cwd=work)
        client.git("commit", "-qm", f"c{i}", cwd=work)
    client.git("tag", "-a", "v1", "-m", "t", "HEAD~1", cwd=work)
    client.git("push", "-q", str(bare), "main", "v1", cwd=work)
    ids = {what: client.git("rev-parse", spec, cwd=work).stdout.strip()
           for what, spec in (("tag", "v1"), ("tree", "HEAD^{tree}"), ("blob", "HEAD:f.txt"))}
    return {**ids, "missing": "1" * 40}


@pytest.mark.parametrize("version", ["0", "2"])
@pytest.mark.parametrize("kind", ["tag", "tree", "blob", "missing"])
def test_a_shallow_line_naming_no_commit(make_server: object, client: Client, kind: str, version: str) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK])  # type: ignore[operator]
    ids = _served(client, server.root)
    results: list[tuple[int, str]] = []
    for url in (server.git_url("s"), f"file://{server.root / 's.git'}"):
        clone = client.cwd / f"shallow-{len(results)}"
        client.git("clone", "-q", "--depth", "1", url, str(clone))
        with open(clone / ".git" / "shallow", "a") as f:
            f.write(ids[kind] + "\n")
        fetched = client.git("-c", f"protocol.version={version}", "fetch", "-q", "--deepen", "1", url,
                             cwd=clone, check=False)
        results.append((fetched.returncode, fetched.stderr))
    (ours, said), (gits, git_said) = results
    if kind == "missing":
        assert ours == gits == 0, results
        return
    assert ours == gits == 128, results
    assert f"fatal: invalid shallow object {ids[kind]}" in git_said
    assert f"fatal: remote error: invalid shallow object {ids[kind]}" in said, said
