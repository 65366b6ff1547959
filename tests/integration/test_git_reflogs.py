"""A push to hgwire writes the reflogs git's own receive-pack writes for the same push
(``core.logAllRefUpdates``): the same files, and in each the same updates, each named ``push``;
a deleted ref's log goes with it; HEAD's log follows the branch it names."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

LINE = re.compile(r"([0-9a-f]{40}) ([0-9a-f]{40}) (.+) <([^>]*)> (\d+) ([+-]\d{4})\t(.*)")


def _logs(repo: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Each reflog's lines as (old, new, message), checked for git's layout."""
    found = {}
    for path in sorted((repo / "logs").rglob("*")) if (repo / "logs").exists() else []:
        if path.is_file():
            lines = path.read_text().splitlines()
            parsed = [LINE.fullmatch(line) for line in lines]
            assert all(parsed), lines
            found[path.relative_to(repo / "logs").as_posix()] = [(m[1], m[2], m[7]) for m in parsed if m]
    return found


@pytest.mark.parametrize("setting", ["true", "always", "false", None])
def test_a_push_logs_what_git_s_receive_pack_logs(make_server: Callable[..., RunningServer], client: Client,
                                                  setting: str | None) -> None:
    server = make_server("fs", git=[LOOPBACK])
    served, twin = server.root / "logged.git", client.cwd / "twin.git"
    for repo in (served, twin):
        client.git("init", "-q", "--bare", "-b", "main", str(repo))
        if setting is not None:
            client.git("--git-dir", str(repo), "config", "core.logAllRefUpdates", setting)
        if setting == "false":  # a log that exists is appended to whatever the setting
            (repo / "logs" / "refs" / "heads").mkdir(parents=True)
            (repo / "logs" / "refs" / "heads" / "kept").write_text("")
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    first = commit(client, work, "f", "1\n", "first")
    second = commit(client, work, "f", "2\n", "second")
    pushes = [["HEAD:main", "HEAD~1:refs/heads/side", "HEAD:refs/heads/kept", "HEAD:refs/tags/v1",
               "HEAD~1:refs/notes/commits"],
              ["+HEAD~1:main", ":side", "HEAD~1:refs/heads/topic/x"]]
    for specs in pushes:
        client.git("push", "-q", server.git_url("logged"), *specs, cwd=work)
        client.git("push", "-q", str(twin), *specs, cwd=work)  # git's own receive-pack
    client.git("--git-dir", str(served), "fsck", "--full")
    ours, gits = _logs(served), _logs(twin)
    assert ours == gits
    if setting == "true":
        assert set(ours) == {"HEAD", "refs/heads/main", "refs/heads/kept", "refs/heads/topic/x", "refs/notes/commits"}
        assert ours["refs/heads/main"] == [("0" * 40, second, "push"), (second, first, "push")] == ours["HEAD"]
    if setting == "always":
        assert "refs/tags/v1" in ours
    if setting in ("false", None):
        assert set(ours) == ({"refs/heads/kept"} if setting == "false" else set())


def test_a_log_that_cannot_be_written_leaves_the_ref_updated_and_is_logged(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """As the ref moved already, the push is told ok; the operator's log says which reflog failed."""
    from twisted.logger import LogEvent, globalLogPublisher

    server = make_server("fs", git=[LOOPBACK])
    served = server.root / "stuck.git"
    client.git("init", "-q", "--bare", "-b", "main", str(served))
    client.git("--git-dir", str(served), "config", "core.logAllRefUpdates", "true")
    (served / "logs").mkdir()
    (served / "logs" / "refs").write_text("a file where the directory of the logs should be\n")
    work = client.cwd / "work"
    client.git("init", "-q", "-b", "main", str(work))
    pushed = commit(client, work, "f", "1\n", "first")
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        client.git("push", "-q", server.git_url("stuck"), "HEAD:main", cwd=work)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert client.git("--git-dir", str(served), "rev-parse", "main").stdout.strip() == pushed
    client.git("--git-dir", str(served), "fsck", "--full")
    failures = [e for e in events if "reflog" in str(e.get("failure", ""))]
    assert failures and "the reflog of refs/heads/main could not be written" in failures[0]["failure"]
