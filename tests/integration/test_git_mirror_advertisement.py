"""A repository of many packed annotated tags (a mirror) is advertised from its ``packed-refs``
kept parsed and its lines encoded once (``backends.git.ref_run``): what ``git ls-remote`` lists
over git:// and HTTP, v0 and v2, with ``ref-prefix`` or not, is what git's own upload-pack lists,
and a push (a new tag, a branch moved loose over its packed value, a packed tag deleted) is
listed by the next request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.git import RUN_MIN_REFS
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit


def _listed(client: Client, url: str, options: tuple[str, ...], patterns: tuple[str, ...]) -> dict[str, str]:
    listed = {}
    for version in ("0", "2"):
        listed[version] = client.git("-c", f"protocol.version={version}", "ls-remote", *options, url,
                                     *patterns).stdout
    assert listed["0"] == listed["2"]
    return listed


def test_a_mirror_is_listed_as_git_lists_it_and_a_push_at_once(make_server: Any, client: Client,
                                                               tmp_path: Path) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(3):
        commit(client, work, f"f{n}.txt", f"{n}\n", f"commit {n}")
    lines = "".join(f"create refs/tags/light{i:04d} HEAD~{i % 3}\n" for i in range(RUN_MIN_REFS))
    client.git("update-ref", "--stdin", cwd=work, input=lines.encode())
    for i in range(40):
        client.git("tag", "-a", "-m", f"release {i}", f"v{i:04d}", f"HEAD~{i % 3}", cwd=work)
    git_dir = server.root / "mirror.git"
    client.git("clone", "-q", "--mirror", str(work), str(git_dir))
    client.git("--git-dir", str(git_dir), "pack-refs", "--all", "--prune")
    client.git("--git-dir", str(git_dir), "config", "receive.denyDeletes", "false")
    urls = [server.git_url("mirror"), server.url("http", "mirror.git")]

    def same_as_git(*options: str, patterns: tuple[str, ...] = ()) -> None:
        theirs = client.git("ls-remote", *options, str(git_dir), *patterns).stdout
        for url in urls:
            assert _listed(client, url, options, patterns) == {"0": theirs, "2": theirs}, (url, options)

    for _ in range(2):  # parsed, then kept
        same_as_git()
    same_as_git("--tags")
    same_as_git("--heads")
    same_as_git("--refs", patterns=("refs/tags/v001*",))
    commit(client, work, "f3.txt", "3\n", "commit 3")
    client.git("tag", "-a", "-m", "new", "v9999", cwd=work)
    client.git("push", "-q", urls[0], "main", "v9999", ":refs/tags/v0001", "HEAD~1:refs/tags/light0002", "-f",
               cwd=work)
    assert (git_dir / "refs" / "heads" / "main").is_file()  # moved loose over its packed value
    listed = client.git("ls-remote", urls[0]).stdout
    assert "refs/tags/v9999^{}" in listed and "refs/tags/v0001" not in listed
    same_as_git()
    same_as_git("--tags")
