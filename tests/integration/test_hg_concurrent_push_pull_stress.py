"""Several real hg clients push to and pull from one repository at once, over HTTP and SSH, while
some pushes are refused by a ``pretxnchangegroup`` hook (their revisions written, then rolled
back): the engine's caches (the kept repositories, the shared views and indexes, the writer's
snapshot handed to the next open) must never serve a pull anything but a committed, consistent
repository, and ``hg verify`` passes on the server's copy and every clone after.  The same with a
small budget of kept repositories, and pushes interrupted mid-transaction, are in
test_hg_concurrent_push_pull_small_budget (two modules: two test processes share the stress)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import hg as hg_backend
from backends.hg import kept, revlog
from backends.lru import named_path
from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401
from tests.integration.test_hg_ssh import HgSsh

ROUNDS = 6
"""Pushes each pusher makes."""
WIDE = 1800
"""Files of the push that splits the manifest's inline revlog: their long names (95 random letters
and digits, short of the store's hashed names) make a manifest of over 128 KiB compressed from
fewer files than the 5,000 of 32 hex digits it took (every client then pulled 5,000 file revlogs)."""
NAME_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
REFUSED = "refused"
"""The file each push the hook refuses adds (and the pusher strips again)."""
STRIP = ("debugstrip", "-q", "--no-backup")
"""hg's core strip: a local command, run in the tests' command server (``tests.hg_command_server``)."""


class _Pushes(threading.Condition):
    """How many pushes began: a puller pulls once after each push begins (those begun during its
    last pull: once), so while that push runs.  Pulling as fast as they could, the two pullers' count
    grew with the host's speed (each pull and log some 0.5 s of CPU) and took CPU from the pushes they
    race; now it is bounded by the pushes' (18)."""

    started = 0
    finished = False

    def began(self) -> None:
        with self:
            self.started += 1
            self.notify_all()

    def finish(self) -> None:
        with self:
            self.finished = True
            self.notify_all()

    def next_after(self, seen: int) -> int | None:
        """The count of pushes begun once it passes ``seen``; None once every push is done."""
        with self:
            self.wait_for(lambda: self.started > seen or self.finished, timeout=120)
            return None if self.finished else self.started


def _check_pool() -> None:
    """``kept.KEPT``'s accounting adds up: each object counted once, as many times held as values
    hold it, each cache's total its values' costs, within the budget."""
    pool = kept.KEPT
    with pool.lock:
        assert pool.held == sum(found[1] for found in pool._objects.values())
        holders: dict[int, int] = {}
        for (_, key), cache in pool._order.items():
            for held in cache._held_ids[key]:
                holders[held] = holders.get(held, 0) + 1
        assert holders == {key: found[2] for key, found in pool._objects.items()}
        for cache in {id(cache): cache for cache in pool._order.values()}.values():
            assert cache.held == sum(cost for _, cost in cache._entries.values())
            assert set(cache._entries) == set(cache._held_ids)
        assert pool.held <= pool.budget or len(pool._order) <= 1, (pool.held, pool.budget)
        named = {entry for entry in pool._order if named_path(entry[1]) is not None}
        assert {entry for entries in pool._named.values() for entry in entries} == named


def test_concurrent_pushes_and_pulls_over_http_and_ssh_stay_consistent(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """With the default budget of kept repositories (a small one: test_hg_concurrent_push_pull_small_budget)."""
    _pushes_and_pulls(make_server, client, ssh_keys, htpasswd, tmp_path, kept.KEPT_BYTES, monkeypatch)


def _pushes_and_pulls(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
                      htpasswd: Path, tmp_path: Path, budget: int, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Three pushers (two over HTTP, one over SSH, a third of their pushes refused) and two pullers
    at once, ``READ_REUSE_BUDGET`` being ``budget``; then every clone and the server's copy agree
    and verify, and the writer's snapshot was taken for the changelog and the manifest."""
    monkeypatch.setattr(kept.KEPT, "budget", kept.KEPT.budget)  # (restored after)
    monkeypatch.setattr(hg_backend, "READ_REUSE_BUDGET", budget)
    taken: list[bytes] = []  # (the indexes whose writer's snapshot was taken: ``RevlogCache.appended``)
    original = revlog.RevlogCache.appended

    def appended(self: revlog.RevlogCache, index_path: bytes, *args: Any) -> None:
        original(self, index_path, *args)
        now = self._indexes.get(index_path)
        if now is not None and now.entries is args[2].entries:
            taken.append(index_path)

    monkeypatch.setattr(revlog.RevlogCache, "appended", appended)
    server = make_server("fs", **_settings(htpasswd), **ssh_server_settings(ssh_keys))
    http = HgHttp(server, client)
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    served = server.root / "r"
    client.hg("init", str(served))
    client.hg("debugbuilddag", "-q", "-R", str(served), "+300")
    hg = Path(sys.executable).parent / "hg"
    hook = tmp_path / "refuse.sh"
    # hg log reads the pushed descriptions (HG_PENDING) only when the push brings a revision of the
    # file ``refused`` (its filelog written by then): a push it would let in anyway starts no hg.
    hook.write_text(f'#!/bin/sh\n[ -s .hg/store/data/{REFUSED}.i ] || exit 0\n'
                    f'"{hg}" log -r "$HG_NODE:" -T "{{desc}}\\n" | grep -q refuse && exit 1\nexit 0\n')
    hook.chmod(0o755)
    (served / ".hg" / "hgrc").write_text(f"[hooks]\npretxnchangegroup.refuse = {hook}\n")
    errors: list[str] = []
    refused = [0]
    pushes = _Pushes()

    def run(peer: Any, *args: str | Path, cwd: Path | None = None, check: bool = True) -> Any:
        result = peer.hg(*args, cwd=cwd, check=False) if cwd is not None else peer.hg(*args, check=False)
        if check and result.returncode:
            errors.append(f"{args}: {result.stdout} {result.stderr}")
        return result

    def pusher(n: int, peer: Any, url: str, pulls: bool) -> None:
        """``pulls``: pull ``url`` before each round (the SSH pusher's pulls, made without its key,
        were refused before they reached the repository: it makes none)."""
        try:
            work = tmp_path / f"push{n}"
            run(peer, "clone", "-q", url, str(work))
            run(client, "branch", "-q", f"b{n}", cwd=work)
            for round_ in range(ROUNDS):
                if pulls:
                    run(client, "pull", "-q", url, cwd=work, check=False)
                run(client, "update", "-q", "--clean", f"b{n}", cwd=work, check=False)
                (work / f"f{n}").write_text(f"{n} {round_}\n" * (round_ + 1))
                if n == 0 and round_ == 1:  # (the manifest's inline revlog splits in this push)
                    (work / "wide").mkdir()
                    for i in range(WIDE):
                        (work / "wide" / "".join(NAME_LETTERS[b % 36] for b in os.urandom(95))).write_text(f"{i}\n")
                refuse = round_ % 3 == 2
                if refuse:
                    (work / REFUSED).write_text(f"{n} {round_}\n")
                run(client, "commit", "-q", "-A", "-m", f"{'refuse' if refuse else 'ok'} {n} {round_}", cwd=work)
                pushes.began()  # (the pullers pull while this push runs)
                pushed = run(peer, "push", "-f", "--new-branch", url, cwd=work, check=False)
                if refuse:
                    if pushed.returncode == 0:
                        errors.append(f"a refused push went in: {pushed.stdout} {pushed.stderr}")
                    refused[0] += 1
                    run(client, *STRIP, "-r", ".", cwd=work)
                elif pushed.returncode != 0 and "creates new remote head" not in pushed.stderr:
                    errors.append(f"push {n} {round_}: {pushed.stdout} {pushed.stderr}")
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    def puller(n: int, peer: Any, url: str) -> None:
        work = tmp_path / f"pull{n}"
        run(peer, "clone", "-q", "-U", url, str(work))
        seen = 0
        while (now := pushes.next_after(seen)) is not None:
            seen = now
            run(peer, "pull", "-q", url, cwd=work)
            descs = run(client, "log", "-R", str(work), "-T", "{desc}\n").stdout
            if "refuse" in descs:
                errors.append(f"a pull saw a refused changeset: {descs}")
                return
        run(peer, "pull", "-q", url, cwd=work)
        run(client, "verify", "-q", "-R", str(work))

    pushers = [threading.Thread(target=pusher, args=(0, http, http.push_url("r"), True)),
               threading.Thread(target=pusher, args=(1, http, http.push_url("r"), True)),
               threading.Thread(target=pusher, args=(2, ssh, ssh.url("r"), False))]
    pullers = [threading.Thread(target=puller, args=(0, http, http.url("r"))),
               threading.Thread(target=puller, args=(1, ssh, ssh.url("r")))]
    for thread in pushers + pullers:
        thread.start()
    for thread in pushers:
        thread.join()
    pushes.finish()
    for thread in pullers:
        thread.join()
    assert not errors, "\n".join(errors)
    _check_pool()
    assert b"00changelog.i" in taken and b"00manifest.i" in taken, taken
    client.hg("verify", "-q", "-R", str(served))
    log = client.hg("log", "-R", str(served), "-T", "{desc}\n").stdout
    assert "refuse" not in log and refused[0] == 3 * (ROUNDS // 3)
    assert sum(line.startswith("ok ") for line in log.splitlines()) == 3 * (ROUNDS - ROUNDS // 3)
    for n in range(2):
        assert client.hg("log", "-R", str(tmp_path / f"pull{n}"), "-T", "{node}\n").stdout \
            == client.hg("log", "-R", str(served), "-T", "{node}\n").stdout
    assert os.path.exists(served / ".hg" / "store" / "00changelog.i")
    assert os.path.exists(served / ".hg" / "store" / "00manifest.d"), "the wide push did not split the manifest"


def test_the_writers_snapshot_gives_way_to_another_process_push_strip_and_rollback(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path, tmp_path: Path) -> None:  # noqa: F811
    """After a push through hgwire (its writer's snapshot kept for the next open), a push by hg
    itself into the directory, an ``hg strip`` there and an ``hg rollback`` are each seen by the next pull."""
    http = HgHttp(make_server("fs", **_settings(htpasswd)), client)
    served = http.server.root / "r"
    client.hg("init", str(served))
    client.hg("debugbuilddag", "-q", "-R", str(served), "+300")
    work, pulled = tmp_path / "work", tmp_path / "pulled"
    http.hg("clone", "-q", http.url("r"), str(work))
    http.hg("clone", "-q", "-U", http.url("r"), str(pulled))

    def served_matches_pull() -> None:
        fresh = tmp_path / "fresh"
        subprocess.run(["rm", "-rf", str(fresh)], check=True)
        http.hg("clone", "-q", "-U", http.url("r"), str(fresh))
        assert client.hg("log", "-R", str(fresh), "-T", "{node}\n").stdout \
            == client.hg("log", "-R", str(served), "-T", "{node}\n").stdout
        client.hg("verify", "-q", "-R", str(fresh))

    for step in ("strip", "local push", "rollback"):
        (work / "f").write_text(step + "\n")
        client.hg("commit", "-q", "-A", "-m", f"via hgwire before {step}", cwd=work)
        http.hg("push", "-q", "-f", http.push_url("r"), cwd=work)
        http.hg("id", http.url("r"))  # (the next open takes the writer's snapshot)
        if step == "strip":
            client.hg(*STRIP, "-R", str(served), "-r", "tip")
        elif step == "local push":
            (work / "f").write_text("local\n")
            client.hg("commit", "-q", "-m", "by hg", cwd=work)
            client.hg("push", "-q", "-f", str(served), cwd=work)
        else:
            (work / "g").write_text("r\n")
            client.hg("commit", "-q", "-A", "-m", "to roll back", cwd=work)
            client.hg("push", "-q", "-f", str(served), cwd=work)
            http.hg("id", http.url("r"))
            client.hg("--config", "ui.rollback=true", "rollback", "-q", "-R", str(served))
        served_matches_pull()
    client.hg("verify", "-q", "-R", str(served))
