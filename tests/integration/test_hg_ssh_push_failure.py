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

import pytest

from backends.hg import writer
from backends.interfaces import Kind
from protocols.hg_responses import BROKEN_PUSH
from tests.conftest import BACKENDS, Client, RunningServer, SshKeys, log_events, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh, _commit


class EngineBug(RuntimeError):
    pass


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("exchange", ["bundle2", "bundle1"])
def test_an_unexpected_error_in_a_push_is_a_clean_abort(make_server: Callable[..., RunningServer], client: Client,
                                                         ssh_keys: SshKeys, tmp_path: Path, backend: str,
                                                         exchange: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(backend, **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    legacy = ("--config", "devel.legacy.exchange=bundle1") if exchange == "bundle1" else ()
    server.backend.create("r", Kind.HG)
    work = tmp_path / "work"
    hgssh.hg("clone", "-q", hgssh.url("r"), str(work))
    _commit(client, work, "a", "a\n", "first")
    hgssh.hg("push", "-q", "-R", str(work), *legacy)
    _commit(client, work, "a", "b\n", "second")

    write_all = writer.Transaction._write_all

    def broken(self: writer.Transaction) -> None:
        raise EngineBug("the engine broke while committing")

    monkeypatch.setattr(writer.Transaction, "_write_all", broken)
    with log_events() as events:
        failed = hgssh.hg("push", "-R", str(work), *legacy, check=False)
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
    assert hgssh.hg("outgoing", "-q", "-R", str(work), "-T", "{desc}\n").stdout.split() == ["second"]
    hgssh.verify_server("r", tmp_path)
    if backend == "fs":
        store = server.repo_path("r") / ".hg" / "store"
        assert not (store / "lock").exists() and not (store / "journal").exists()
    hgssh.hg("push", "-q", "-R", str(work), *legacy)
    assert hgssh.hg("outgoing", "-q", "-R", str(work), hgssh.url("r"), check=False).returncode == 1
    hgssh.verify_server("r", tmp_path)
