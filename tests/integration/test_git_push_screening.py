"""A push's commands taken as a whole, as git's receive-pack takes them: a symbolic ref updates its
target (and is checked as its target), a symbolic ref and its target in one push must agree, a ref
named twice is made once, and a name git refuses is refused alone while the others go on.

The real client covers what it sends (``main:alias``, ``--atomic``, a very long name); raw
git:// requests what only another client would send (a ref twice, names git's client refuses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from backends.interfaces import Kind
from gateway.audit import AUDIT_NAMESPACE
from protocols import pktline
from tests.conftest import Client, RunningServer
from tests.integration.test_git_bad_input import exchange, main_of, request, seed, still_serving


def _alias(server: RunningServer, target: bytes = b"refs/heads/main", name: str = "good") -> None:
    """``refs/heads/alias`` made a symbolic ref to ``target`` on the server (as ``git symbolic-ref``)."""
    server.backend.open(name).dulwich_repo.refs.set_symbolic_ref(b"refs/heads/alias", target)


def _work(server: RunningServer, client: Client, label: str) -> Any:
    work = client.cwd / label
    client.git("clone", "-q", server.git_url("good"), str(work))
    return work


def _commit(client: Client, work: Any, text: str) -> str:
    (work / "f.txt").write_text(text + "\n")
    client.git("commit", "-qam", text, cwd=work)
    return client.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _symref_of(server: RunningServer, name: bytes) -> bytes | None:
    return server.backend.open("good").symrefs().get(name)


@pytest.fixture
def audit() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == AUDIT_NAMESPACE and event.get("action") == "push":
            events.append(event)

    globalLogPublisher.addObserver(observe)  # type: ignore[arg-type]
    yield events
    globalLogPublisher.removeObserver(observe)  # type: ignore[arg-type]


def test_a_push_through_a_symbolic_ref_moves_its_target_and_the_log_names_both(
        server: RunningServer, client: Client, audit: list[dict[str, Any]]) -> None:
    seed(server, client)
    _alias(server)
    work = _work(server, client, "through")
    new = _commit(client, work, "second")
    client.git("push", "-q", "origin", "HEAD:refs/heads/alias", cwd=work)
    assert main_of(server, client) == new
    assert _symref_of(server, b"refs/heads/alias") == b"refs/heads/main"
    assert audit[-1]["changes"][0]["name"] == "refs/heads/alias -> refs/heads/main"
    still_serving(server, client)


def test_a_symbolic_ref_and_its_target_updated_differently_are_both_refused(
        server: RunningServer, client: Client) -> None:
    """git's "inconsistent aliased update": nothing moves, with or without ``--atomic``."""
    tip = seed(server, client)
    _alias(server)
    work = _work(server, client, "inconsistent")
    second = _commit(client, work, "second")
    _commit(client, work, "third")
    for atomic in (["--atomic"], []):
        pushed = client.git("push", *atomic, "origin", "HEAD:refs/heads/alias", f"{second}:refs/heads/main",
                            cwd=work, check=False)
        assert pushed.returncode == 1, pushed.stderr
        assert "alias (inconsistent aliased update)" in pushed.stderr, pushed.stderr
        assert "main (inconsistent aliased update)" in pushed.stderr, pushed.stderr
        assert main_of(server, client) == tip
    still_serving(server, client)


def test_a_symbolic_ref_and_its_target_updated_alike_both_succeed(server: RunningServer, client: Client) -> None:
    seed(server, client)
    _alias(server)
    work = _work(server, client, "alike")
    new = _commit(client, work, "second")
    pushed = client.git("push", "--atomic", "--porcelain", "origin", "HEAD:refs/heads/alias", "HEAD:refs/heads/main",
                        cwd=work)
    assert [line[:1] for line in pushed.stdout.splitlines() if "\t" in line] == [" ", " "], pushed.stdout
    assert main_of(server, client) == new
    assert _symref_of(server, b"refs/heads/alias") == b"refs/heads/main"


def test_deleting_through_a_symbolic_ref_is_refused_saying_so(server: RunningServer, client: Client) -> None:
    """git would delete the target and leave the symbolic ref dangling."""
    tip = seed(server, client)
    _alias(server)
    work = _work(server, client, "delete")
    deleted = client.git("push", "origin", ":refs/heads/alias", cwd=work, check=False)
    assert deleted.returncode == 1
    assert "cannot delete a symbolic ref by a push (it points to refs/heads/main)" in deleted.stderr, deleted.stderr
    assert main_of(server, client) == tip
    assert _symref_of(server, b"refs/heads/alias") == b"refs/heads/main"


def _raw_push(server: RunningServer, tip: str, new: str, refs: list[bytes]) -> bytes:
    """One push of ``tip..new`` (nothing new to send: ``new`` is stored) to each of ``refs``."""
    lines = [pktline.encode(tip.encode() + b" " + new.encode() + b" " + ref
                            + (b"\0report-status" if i == 0 else b"") + b"\n") for i, ref in enumerate(refs)]
    empty_pack = b"PACK\0\0\0\x02\0\0\0\0"
    return exchange(server, request("git-receive-pack", "/good.git"),
                    b"".join(lines) + pktline.FLUSH + empty_pack + hashlib.sha1(empty_pack).digest(), read_between=True)


def _stored_second_commit(server: RunningServer, client: Client, tip: str) -> str:
    """A commit after ``tip``, stored on the server under ``refs/heads/side`` (so a raw push needs no pack)."""
    work = _work(server, client, "side")
    new = _commit(client, work, "side")
    client.git("push", "-q", "origin", "HEAD:refs/heads/side", cwd=work)
    return new


def test_a_ref_named_twice_is_made_once_and_told_so(
        server: RunningServer, client: Client, audit: list[dict[str, Any]]) -> None:
    tip = seed(server, client)
    new = _stored_second_commit(server, client, tip)
    reply = _raw_push(server, tip, new, [b"refs/heads/main", b"refs/heads/main"])
    assert b"ok refs/heads/main\n" in reply, reply
    assert b"ng refs/heads/main failed to update ref: the push names this ref more than once" in reply, reply
    assert main_of(server, client) == new
    assert [c["result"] for c in audit[-1]["changes"]] == [
        "ok", "failed to update ref: the push names this ref more than once"]
    still_serving(server, client)


@pytest.mark.parametrize("bad", [b"refs/heads/a..b", b"refs/heads/x.lock", b"refs/heads/sp ace", b"HEAD",
                                 b"refs/heads/a@{1}", b"refs/heads/.hid", b"refs/heads/a/", b"refs/foo/../../x"])
def test_a_name_git_refuses_is_refused_alone(server: RunningServer, client: Client, bad: bytes) -> None:
    tip = seed(server, client)
    new = _stored_second_commit(server, client, tip)
    reply = _raw_push(server, tip, new, [b"refs/heads/main", bad])
    assert b"ok refs/heads/main\n" in reply, reply
    assert b"ng " + bad + b" funny refname" in reply, reply
    assert main_of(server, client) == new
    refs = client.git("ls-remote", server.git_url("good")).stdout
    assert {line.split("\t")[1] for line in refs.splitlines()} == {"HEAD", "refs/heads/main", "refs/heads/side"}
    still_serving(server, client)


def test_a_name_too_long_from_the_real_client_is_refused_alone(server: RunningServer, client: Client) -> None:
    seed(server, client)
    work = _work(server, client, "long")
    new = _commit(client, work, "second")
    long = "refs/heads/" + "y" * 5000
    pushed = client.git("push", "origin", "HEAD:refs/heads/main", f"HEAD:{long}", cwd=work, check=False)
    assert pushed.returncode == 1, pushed.stderr
    assert "(refname too long (more than 4096 bytes))" in pushed.stderr, pushed.stderr
    assert "b'" not in pushed.stderr and "hung up" not in pushed.stderr, pushed.stderr
    assert main_of(server, client) == new
    still_serving(server, client)


def test_a_control_character_in_a_name_is_a_clear_error(server: RunningServer, client: Client) -> None:
    tip = seed(server, client)
    new = _stored_second_commit(server, client, tip)
    reply = _raw_push(server, tip, new, [b"refs/heads/main", b"refs/heads/\x1b[31mred"])
    assert b"invalid ref name 'refs/heads/\\x1b[31mred': control characters" in reply, reply
    assert main_of(server, client) == tip
    server.backend.create("other", Kind.GIT)
    still_serving(server, client)
