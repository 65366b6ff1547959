"""A repository whose packed-refs has no ``^`` lines (another tool's) names a tag object whose first
line is not ``object <id>`` (written with ``git hash-object --literally``).  git's upload-pack lists
it with no peeled value and serves the other refs; hgwire refused every advertisement of the
repository ("the repository holds an object the server cannot read"), so that no fetch of it
worked.  It is now advertised as git advertises it, v0 and v2."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.mark.parametrize("version", ["0", "2"])
def test_a_tag_git_cannot_read_is_listed_unpeeled_and_the_rest_fetched(
        make_server: Callable[..., RunningServer], client: Client, version: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "odd.git"
    client.git("init", "-q", "--bare", str(repo))
    client.git("fast-import", "--quiet", cwd=repo, input=(
        b"blob\nmark :1\ndata 2\nb\ncommit refs/heads/main\nmark :2\ncommitter a <a@b> 1700000000 +0000\n"
        b"data 2\nc\nM 644 :1 f\ntag v1\nfrom :2\ntagger a <a@b> 1700000000 +0000\ndata 2\nt\n"))
    main = client.git("rev-parse", "main", cwd=repo).stdout.strip()
    odd = client.git("hash-object", "-w", "-t", "tag", "--literally", "--stdin", cwd=repo, input=(
        f"type commit\nobject {main}\ntag odd\ntagger a <a@b> 1700000000 +0000\n\nodd\n").encode()).stdout.strip()
    client.git("pack-refs", "--all", cwd=repo)
    lines = [line for line in (repo / "packed-refs").read_text().splitlines() if not line.startswith(("#", "^"))]
    lines.append(f"{odd} refs/tags/odd")
    (repo / "packed-refs").write_text("".join(line + "\n" for line in sorted(lines, key=lambda x: x.split()[1])))
    expected = client.git("show-ref", "-d", cwd=repo).stdout.replace(" ", "\t")

    listed = client.git("-c", f"protocol.version={version}", "ls-remote", server.git_url("odd.git"))
    assert sorted(line for line in listed.stdout.splitlines() if not line.endswith("\tHEAD")) == sorted(
        expected.splitlines())
    assert f"{odd}\trefs/tags/odd\n" in listed.stdout and "refs/tags/odd^{}" not in listed.stdout

    fetched = client.cwd / "fetched"
    client.git("init", "-q", str(fetched))
    client.git("-c", f"protocol.version={version}", "fetch", "-q", server.git_url("odd.git"),
               "refs/heads/main:refs/remotes/o/main", cwd=fetched)
    assert client.git("rev-parse", "o/main", cwd=fetched).stdout.strip() == main
