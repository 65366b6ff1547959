"""A fetch's include-tag and a hidden annotated tag (``transfer.hideRefs = refs/tags/secret``): git's
pack-objects adds every tag under ``refs/tags/`` that names a sent object, hidden or not, so the
client gets the hidden tag's object (its name and message inside); hgwire keeps it out, as hiding
means.  The client's refs are the same from both."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _tags(repo: Path) -> set[str]:
    listed = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch-check"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return {line.split()[0] for line in listed if line.split()[1] == "tag"}


@pytest.mark.parametrize("version", ["0", "2"])
def test_a_hidden_tag_is_not_sent_by_include_tag(make_server: Callable[..., RunningServer], client: Client,
                                                 version: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    commit(client, work, "a.txt", "b\n", "second")
    client.git("tag", "-a", "-m", "a secret tag", "secret", "main", cwd=work)
    client.git("tag", "-a", "-m", "a public tag", "public", "main~1", cwd=work)
    bare = server.root / "t.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    client.git("push", "-q", str(bare), "main", "secret", "public", cwd=work)
    client.git("--git-dir", str(bare), "config", "transfer.hideRefs", "refs/tags/secret")
    secret, public = (client.git("rev-parse", tag, cwd=work).stdout.strip() for tag in ("secret", "public"))
    got = {}
    for at, url in enumerate((f"file://{bare}", server.git_url("t"))):
        into = client.cwd / f"fetched-{at}"
        client.git("init", "-q", str(into))
        client.git("-c", f"protocol.version={version}", "fetch", "-q", url, "main:refs/heads/got", cwd=into)
        refs = client.git("for-each-ref", "--format=%(refname)", cwd=into).stdout.split()
        got[at] = (refs, _tags(into))
    assert got[0][0] == got[1][0] == ["refs/heads/got", "refs/tags/public"]
    assert got[0][1] == {secret, public}  # git's pack-objects: the hidden tag's object sent
    assert got[1][1] == {public}


@pytest.mark.parametrize("version", ["0", "2"])
def test_a_shallow_exclude_naming_a_hidden_ref_is_as_one_naming_none(
        make_server: Callable[..., RunningServer], client: Client, version: str) -> None:
    """git's upload-pack resolves a hidden ref a ``--shallow-exclude`` names (and says the name of
    one that does not exist is ambiguous): a client could tell which hidden names exist."""
    server = make_server("fs", git=[LOOPBACK])
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "first")
    bare = server.root / "x.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    client.git("push", "-q", str(bare), "main", "main:refs/hidden/x", cwd=work)
    client.git("--git-dir", str(bare), "config", "transfer.hideRefs", "refs/hidden")
    said = []
    for at, name in enumerate(("refs/hidden/x", "refs/hidden/none")):
        cloned = client.git("-c", f"protocol.version={version}", "clone", "-q", f"--shallow-exclude={name}",
                            server.git_url("x"), str(client.cwd / f"c{at}"), check=False)
        assert cloned.returncode == 128
        said.append(cloned.stderr.replace(name, "NAME"))
    assert said[0] == said[1] and "ambiguous deepen-not: NAME" in said[0]
