"""What a push's session reads of its repository's refs before the commands come: the refs it
advertises (over git:// and SSH), none over smart HTTP (the GET advertised them: the POST read
all of them for nothing, a parse of 100,000 tags' ``packed-refs``), and it lets go of what the
read held at once (``refs_read_done``), whatever comes next."""

from __future__ import annotations

import pytest

from backends.interfaces import ObjectId
from gateway import git_session
from gateway.channel import SessionContext


class Repo:
    name = "r"

    def __init__(self) -> None:
        self.reads = 0
        self.forgotten = 0

    def refs(self) -> dict[bytes, ObjectId]:
        self.reads += 1
        return {b"refs/heads/main": ObjectId(b"1" * 40)}

    def forget_refs_read(self) -> None:
        self.forgotten += 1


@pytest.mark.parametrize("stateless", [False, True])
def test_a_push_reads_the_refs_only_to_advertise_them_and_lets_go_of_the_read(
        monkeypatch: pytest.MonkeyPatch, stateless: bool) -> None:
    repo = Repo()
    monkeypatch.setattr(git_session, "open_for_push", lambda ctx, **_: repo)
    ctx = SessionContext(backend=None, repo_name="r", transport="git-daemon", peer="test")  # type: ignore[arg-type]
    opened = git_session._open_for_receive(ctx, stateless)
    assert repo.reads == (0 if stateless else 1)
    assert opened.refs == ({} if stateless else {b"refs/heads/main": b"1" * 40})
    assert repo.forgotten == 1
