"""A push over SSH that meets an unexpected error inside its transaction (a backend's or the engine's
bug, not a refusal) is answered as hg serve answers an abort raised while applying a bundle: the
reply bundle with an ``error:abort`` part (a bundle1 push: its result 0 and the abort line), so the
client prints why on a ``remote:`` line and one ``abort:`` line, and exits 255 (1 for bundle1, as
after any refusal).  The repository is as before (``hg verify``), no lock
is left and the next push lands.  The session used to end with stderr's ``abort: internal error``
and no reply, and the client said "abort: stream ended unexpectedly (got 0 bytes, expected 4)"
(bundle1: "abort: unexpected response: empty string"), as hg serve's client does when an exception
that is no abort kills it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from backends.hg import writer
from backends.interfaces import Kind
from gateway import protected
from protocols import hg_exchange
from protocols.hg_responses import BROKEN_PUSH, PUSH_FAILED_EARLY, PUSH_FAILED_UNSURE
from tests.conftest import BACKENDS, Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_hg_evolve_topics import ForkedClient
from tests.integration.test_hg_ssh import HgSsh, _commit


class EngineBug(RuntimeError):
    pass


def _pushed_once_then_committed(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
                                tmp_path: Path, backend: str, exchange: str
                                ) -> tuple[RunningServer, HgSsh, Path, tuple[str, ...]]:
    """A server with hg repository r, a repository that pushed one changeset to it and holds a second
    not pushed yet; a push's arguments: the hg options of ``exchange`` and the URL.  hgwire's client runs
    in processes forked from hg's chg server (``ForkedClient``): what this module checks is what the
    server answers."""
    server = make_server(backend, **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, ForkedClient(client.env, client.cwd), ssh_keys.command(server.port("ssh")))
    pushing: tuple[str, ...] = ("--config", "devel.legacy.exchange=bundle1") if exchange == "bundle1" else ()
    server.backend.create("r", Kind.HG)
    work = tmp_path / "work"
    client.hg("init", str(work))
    _commit(client, work, "a", "a\n", "first")
    pushing = (*pushing, hgssh.url("r"))
    hgssh.hg("push", "-q", "-R", str(work), *pushing)
    _commit(client, work, "a", "b\n", "second")
    return server, hgssh, work, pushing


def _outgoing_and_verified(hgssh: HgSsh, work: Path, tmp_path: Path) -> list[str]:
    """The descriptions of ``work``'s changesets the server lacks (``hg outgoing``'s), read from the
    server's copy ``verify_server`` checked (on disk, or its fresh clone): no session of its own."""
    hgssh.verify_server("r", tmp_path)
    served = hgssh.server.root / "r" if hgssh.server.backend_name == "fs" else tmp_path / "verify-r"
    there = set(hgssh.client.hg("log", "-R", str(served), "-T", "{node}\n").stdout.split())
    mine = hgssh.client.hg("log", "-R", str(work), "-r", "sort(all(), rev)", "-T", "{node} {desc}\n").stdout
    return [line.split(" ", 1)[1] for line in mine.splitlines() if line.split(" ", 1)[0] not in there]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("exchange", ["bundle2", "bundle1"])
def test_an_unexpected_error_in_a_push_is_a_clean_abort(make_server: Callable[..., RunningServer], client: Client,
                                                         ssh_keys: SshKeys, tmp_path: Path, backend: str,
                                                         exchange: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server, hgssh, work, pushing = _pushed_once_then_committed(make_server, client, ssh_keys, tmp_path, backend, exchange)

    write_all = writer.Transaction._write_all

    def broken(self: writer.Transaction) -> None:
        raise EngineBug("the engine broke while committing")

    monkeypatch.setattr(writer.Transaction, "_write_all", broken)
    with log_events() as events:
        failed = hgssh.hg("push", "-R", str(work), *pushing, check=False)
    said = failed.stdout + failed.stderr
    assert "stream ended unexpectedly" not in said and "unexpected response" not in said, said
    assert "remote: transaction abort!\nremote: rollback completed\n" in said
    if exchange == "bundle2":  # hg serve's answer to an abort while applying a bundle2: error:abort
        assert failed.returncode == 255, said
        assert failed.stderr == f"remote: {BROKEN_PUSH}\nabort: push failed on remote\n"
    else:  # to an abort while applying a bundle1: result 0, the abort on stderr; hg push exits 1
        assert failed.returncode == 1, said
        assert f"remote: abort: {BROKEN_PUSH}\n" in failed.stdout and not failed.stderr
    logged = [e for e in events if e.get("log_failure") is not None]
    assert len(logged) == 1 and logged[0]["log_failure"].check(EngineBug), events

    monkeypatch.setattr(writer.Transaction, "_write_all", write_all)
    assert _outgoing_and_verified(hgssh, work, tmp_path) == ["second"]
    if backend == "fs":
        store = server.repo_path("r") / ".hg" / "store"
        assert not (store / "lock").exists() and not (store / "journal").exists()
    hgssh.hg("push", "-q", "-R", str(work), *pushing)
    assert _outgoing_and_verified(hgssh, work, tmp_path) == []


# the step of a push that fails, outside its transaction: what the client is told, and whether it landed
OUTSIDE_STEPS = {
    "spool": (PUSH_FAILED_EARLY, False),  # keeping the whole bundle before the transaction
    "transaction": (PUSH_FAILED_EARLY, False),  # opening it, the lock taken
    "guard": (PUSH_FAILED_EARLY, False),  # the gateway's transaction around the backend's, the lock taken
    "changegroup": (PUSH_FAILED_EARLY, False),  # starting to read a bundle1's changegroup
    "answer": (PUSH_FAILED_UNSURE, True),  # building the answer, once the transaction closed
}


def _break(step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kw: object) -> NoReturn:
        raise EngineBug(f"the engine broke at {step}")

    if step == "spool":
        monkeypatch.setattr(hg_exchange, "received", broken)
    elif step == "transaction":
        monkeypatch.setattr(writer, "Compressor", broken)
    elif step == "guard":
        monkeypatch.setattr(protected.GuardedTransaction, "__init__", broken)
    elif step == "changegroup":  # hg sends a bare changegroup, HG10 bundles have a header
        monkeypatch.setattr(hg_exchange, "read_bundle1", broken)
        monkeypatch.setattr(hg_exchange, "ChangegroupDecoder", broken)
    else:
        monkeypatch.setattr(hg_exchange, "hook_output", broken)


BEFORE_THE_BACKEND = frozenset({"spool", "changegroup"})
"""Steps of protocols.hg_exchange that fail before the repository's transaction is asked for: the same
code for every backend, run on fs only (whose run also checks that no lock or journal is left)."""


def _outside_cases() -> list[object]:
    """(backend, exchange, step) of the test below: not a bundle2's changegroup (a bundle2's parts are
    read inside its transaction: the test above), each step of ``BEFORE_THE_BACKEND`` on fs only."""
    return [pytest.param(backend, exchange, step, id=f"{step}-{exchange}-{backend}")
            for step in sorted(OUTSIDE_STEPS) for exchange in ("bundle2", "bundle1") for backend in BACKENDS
            if not (step == "changegroup" and exchange == "bundle2")
            and not (step in BEFORE_THE_BACKEND and backend != "fs")]


@pytest.mark.parametrize("backend, exchange, step", _outside_cases())
def test_an_unexpected_error_outside_a_push_transaction_is_a_clean_abort(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path, backend: str,
        exchange: str, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keeping the bundle, opening the transaction (the lock taken), a bundle1's changegroup, the answer
    once the transaction closed: an unexpected error there used to end the session with no reply
    ("stream ended unexpectedly"); it is answered, saying nothing changed where no transaction
    opened, and that the push may have landed once one had, the traceback logged once, no lock left."""
    message, lands = OUTSIDE_STEPS[step]
    server, hgssh, work, pushing = _pushed_once_then_committed(make_server, client, ssh_keys, tmp_path, backend, exchange)

    _break(step, monkeypatch)
    with log_events() as events:
        failed = hgssh.hg("push", "-R", str(work), *pushing, check=False)
        server.settled()  # (the session's line comes when the server sees it close, maybe after the client)
    monkeypatch.undo()
    said = failed.stdout + failed.stderr
    assert "stream ended unexpectedly" not in said and "unexpected response" not in said, said
    assert ("transaction abort!" in said) is False, said
    if exchange == "bundle2":
        assert failed.returncode == 255, said
        assert failed.stderr == f"remote: {message}\nabort: push failed on remote\n", said
    else:
        assert failed.returncode == 1, said
        assert f"remote: abort: {message}\n" in failed.stdout and not failed.stderr, said
    logged = [e for e in events if e.get("log_failure") is not None]
    assert len(logged) == 1 and logged[0]["log_failure"].check(EngineBug), events
    outcomes = [e["outcome"] for e in events if "outcome" in e]
    assert "error: internal error" in outcomes, outcomes

    assert _outgoing_and_verified(hgssh, work, tmp_path) == ([] if lands else ["second"])
    if backend == "fs":
        store = server.repo_path("r") / ".hg" / "store"
        assert not (store / "lock").exists() and not (store / "journal").exists()
    _commit(client, work, "a", "c\n", "third")
    hgssh.hg("push", "-q", "-R", str(work), *pushing)
    assert _outgoing_and_verified(hgssh, work, tmp_path) == []
