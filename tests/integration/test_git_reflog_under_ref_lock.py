"""A push's reflog line is appended while the push still holds the ref's own lock
(``refs/heads/NAME.lock``), as git 2.39's refs code appends it (lock taken, the reflog appended,
the lock renamed into place).  hgwire appended it after the lock was let go, so a ``git update-ref``
or git's receive-pack changing the ref in between succeeded and its reflog line came before the
push's own, out of order.  The other process runs from inside the server's reflog write: it is now
refused "cannot lock ref", as it is by git's own receive-pack at that moment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import backends.git
from tests.conftest import Client, RunningServer
from tests.git_ref_races import race_once, race_repository, update_ref


@pytest.mark.parametrize(("case", "raced"), [
    ("moved", "refs/heads/main"),
    ("created", "refs/heads/new"),
    ("deleted", "refs/heads/a"),
    ("packed deletions", "refs/heads/a"),
    ("packed creations", "refs/heads/n00"),
])
def test_the_reflog_is_written_under_the_ref_s_lock(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch,
        case: str, raced: str) -> None:
    server, served, work, (first, second, third) = race_repository(make_server, client, 3)
    client.git("--git-dir", str(served), "config", "core.logAllRefUpdates", "true")
    client.git("push", "-q", str(served), f"{first}:refs/heads/main", f"{first}:refs/heads/a",
               f"{first}:refs/heads/b", f"{third}:refs/tags/keep", cwd=work)  # (third: for the update-ref)
    if case == "packed deletions":
        client.git("--git-dir", str(served), "pack-refs", "--all")
    specs = {"moved": [f"{second}:refs/heads/main"], "created": [f"{second}:refs/heads/new"],
             "deleted": [":refs/heads/a"], "packed deletions": [":refs/heads/a", ":refs/heads/b"],
             "packed creations": [f"{second}:refs/heads/n{i:02d}" for i in range(64)]}[case]
    expected = "" if case.endswith("deleted") or case == "packed deletions" else second

    def meanwhile(self: Any, update: Any) -> Any:  # the push's ref written, its reflog next
        return [update_ref(client, served, raced, third, expected)] if update.ref == raced.encode() else []

    theirs = race_once(monkeypatch, backends.git.DulwichGitRepository, "_log_update", meanwhile)
    pushed = client.git("push", "--porcelain", server.git_url("r"), *specs, cwd=work, check=False)

    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert len(theirs) == 1
    assert theirs[0].returncode != 0 and f"cannot lock ref '{raced}'" in theirs[0].stderr, theirs[0].stderr
    now = client.git("--git-dir", str(served), "for-each-ref", "--format=%(objectname)", raced).stdout.strip()
    assert now == ("" if not expected else second), now
    log = served / "logs" / raced
    if expected:
        assert log.read_text().splitlines()[-1].split()[:2] == ["0" * 40 if case != "moved" else first, second]
    assert not list(served.glob("refs/**/*.lock"))
    client.git("--git-dir", str(served), "fsck", "--full")
