"""Protected hg named branches with the real ``hg`` client over SSH and HTTP, on both backends.

The policy protects ``default`` and ``release/*`` (no new head, no closing) and
``stable`` with ``no_direct_push``.  One server per backend serves the module; each test's
repository starts with one changeset on each of default, stable and release/1, written through
the backend (the policy is the gateway's, so the seed bypasses it).  hg's client runs forked from
hg's chg server (``tests.hg_chg``; what the server accepts or refuses is the point here).  Every refused push must
leave the repository's files byte for byte as they were and pass ``hg verify``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest

import backends.hg as hgstore
from backends.hg.repository import HgRepo
from backends.interfaces import DeltaMode, Kind
from tests import hg_chg
from tests.conftest import (
    BACKENDS,
    LOOPBACK,
    VENV_BIN,
    Client,
    RunningServer,
    SshKeys,
    client_environment,
    ssh_server_settings,
    start_server,
    stop_server,
)

PASSWORD = "branch-pw"
POLICY = """
[[repo]]
pattern = "*"
write = ["alice"]
protected_branches = ["default", "release/*", { pattern = "stable", no_direct_push = true }]
"""


@dataclass
class Branches:
    """The running server with its seeded repository, and the client that pushes to it."""

    server: RunningServer
    client: Client
    ssh: str
    work: Path
    repo: str = ""
    """The test's own repository on the module's server (``_seed``)."""

    def url(self, transport: str) -> str:
        if transport == "ssh":
            return f"ssh://alice@127.0.0.1:{self.server.port('ssh')}/{self.repo}"
        return f"http://alice:{PASSWORD}@127.0.0.1:{self.server.port('http')}/{self.repo}"

    def hg(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """hg's client against the server (a clone, a push), in a process forked from hg's chg server
        (``tests.hg_chg``): hg's own client code over the real ssh and HTTP, without its start-up."""
        words = ["--config", f"ui.ssh={self.ssh}", *map(str, args)]
        return hg_chg.forked(os.path.join(VENV_BIN, "hg"), words, str(self.client.cwd), self.client.env,
                             check=check)

    def clone(self, transport: str, label: str, branch: str = "default") -> Path:
        path = self.work / label
        self.hg("clone", "-q", "-u", branch, self.url(transport), str(path))
        return path

    def commit(self, repo: Path, message: str, *extra: str) -> None:
        (repo / "file.txt").write_text(message + "\n")
        self.client.hg("commit", "-q", "-A", "-R", str(repo), "-m", message, *extra)

    def push(self, repo: Path, transport: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.hg("push", "-R", str(repo), *args, self.url(transport), check=False)

    def files(self) -> dict[tuple[str, bytes], bytes]:
        """Every file of the server's repository (store and ``.hg``), whichever the backend."""
        repo = self.server.backend.open(self.repo)
        assert isinstance(repo, HgRepo)
        return {(where, path): vfs.read(path) for where, vfs in (("store", repo.store), ("plain", repo.plain))
                for path in vfs.walk()}

    def remote_heads(self, verify: bool = False) -> list[str]:
        """``branch:description`` of every head of the server's repository, closed ones too (and
        ``verify`` it): read with hg on disk for fs, from a fresh clone over HTTP for memory."""
        if self.server.backend_name == "fs":
            check = self.server.root / self.repo
        else:
            check = self.work / "check"
            shutil.rmtree(check, ignore_errors=True)
            self.hg("clone", "-q", "-U", self.url("http"), str(check))
        if verify:
            self.client.hg("verify", "-q", "-R", str(check))
        listed = self.client.hg("heads", "-c", "-R", str(check), "-T", "{branch}:{desc}\n").stdout
        return sorted(listed.splitlines())

    def verify(self) -> None:
        """``hg verify`` the server's copy: on disk for fs, through a fresh clone for memory."""
        self.remote_heads(verify=True)

    def assert_refused(self, result: subprocess.CompletedProcess[str], message: str,
                       before: dict[tuple[str, bytes], bytes]) -> None:
        assert result.returncode != 0, (result.stdout, result.stderr)
        assert message in result.stdout + result.stderr, (result.stdout, result.stderr)
        assert self.files() == before
        self.verify()


_SEEDS: list[Path] = []
"""The seed repository, made by the first test of the module and only read by the others."""


_NAMES = itertools.count()

EITHER = [("fs", "ssh"), ("memory", "http")]
OTHER = [("fs", "http"), ("memory", "ssh")]
"""Each refusal over both transports and on both backends, every pairing of the two somewhere in the
module: the rule is checked on the push's changesets whichever transport brought them, and a
refused push's rollback is the backend's whichever transport it came over."""


def _seed(b: Branches) -> None:
    """default, stable and release/1, one changeset each, written straight into the backend as the
    test's own repository."""
    if not _SEEDS:
        seed = b.work.parent / "seed"
        b.client.hg("init", str(seed))
        b.commit(seed, "base")
        b.client.hg("branch", "-q", "-R", str(seed), "stable")
        b.commit(seed, "stable base")
        b.client.hg("update", "-q", "-R", str(seed), "default")
        b.client.hg("branch", "-q", "-R", str(seed), "release/1")
        b.commit(seed, "release base")
        _SEEDS.append(seed)
    source = hgstore.open_repository(str(_SEEDS[0]), "seed")
    target = b.server.backend.create(b.repo, Kind.HG)
    assert target.kind is Kind.HG
    tx = target.transaction()
    tx.add_changegroup(source.emit_groups(source.missing([], source.heads()), DeltaMode.ANY))
    tx.commit()


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, reactor: Any, ssh_keys: SshKeys,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Branches]:
    """One server per backend for the module; each test pushes to a repository of its own."""
    base = tmp_path_factory.mktemp(f"branches-{request.param}")
    policy = base / "hgwire.toml"
    policy.write_text(POLICY)
    htpasswd = base / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    server = start_server(reactor, request.param, base / "root", **ssh_server_settings(ssh_keys),
                          http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True,
                          config_file=str(policy))
    client = Client(client_environment(base), base)
    yield Branches(server, client, ssh_keys.command(server.port("ssh")), base)
    stop_server(reactor, server)


@pytest.fixture
def branches(served: Branches) -> Branches:
    n = next(_NAMES)
    work = served.client.cwd / f"work-{n}"
    work.mkdir()
    b = Branches(served.server, served.client, served.ssh, work, f"team/branches-{n}")
    _seed(b)
    return b


@pytest.mark.parametrize(("served", "transport"), EITHER, indirect=["served"])
def test_fast_forward_lands_and_a_forced_new_head_is_refused(branches: Branches, transport: str) -> None:
    b = branches
    work = b.clone(transport, "work")
    b.commit(work, "forward")
    accepted = b.push(work, transport, "-r", ".")
    assert accepted.returncode == 0, (accepted.stdout, accepted.stderr)

    b.client.hg("update", "-q", "-R", str(work), "-r", "desc(forward)^")
    b.commit(work, "second head")
    before = b.files()
    plain = b.push(work, transport, "-r", ".")  # the client itself refuses without --force
    assert plain.returncode != 0 and "new remote head" in plain.stdout + plain.stderr
    forced = b.push(work, transport, "--force", "-r", ".")
    b.assert_refused(forced, "protected branch default: pushing a new head is not allowed", before)
    assert b.remote_heads() == ["default:forward", "release/1:release base", "stable:stable base"]


def test_new_head_on_a_glob_protected_branch_is_refused(branches: Branches) -> None:
    b = branches
    work = b.clone("ssh", "work", "release/1")
    b.commit(work, "release fix")
    assert b.push(work, "ssh", "-r", ".").returncode == 0
    b.client.hg("update", "-q", "-R", str(work), "-r", "desc('release fix')^")
    b.commit(work, "release fork")
    before = b.files()
    forced = b.push(work, "ssh", "--force", "-r", ".")
    b.assert_refused(forced, "protected branch release/1: pushing a new head is not allowed", before)


@pytest.mark.parametrize(("served", "transport"), OTHER, indirect=["served"])
def test_closing_a_protected_branch_is_refused(branches: Branches, transport: str) -> None:
    b = branches
    work = b.clone(transport, "work", "release/1")
    b.commit(work, "closing release/1", "--close-branch")
    before = b.files()
    closed = b.push(work, transport, "-r", ".")
    b.assert_refused(closed, "protected branch release/1: closing a head is not allowed", before)

    b.client.hg("update", "-q", "-R", str(work), "default")
    b.commit(work, "closing default", "--close-branch")
    forced = b.push(work, transport, "--force", "-r", ".")
    b.assert_refused(forced, "protected branch default: closing a head is not allowed", before)


@pytest.mark.parametrize(("served", "transport"), EITHER, indirect=["served"])
def test_no_direct_push_refuses_the_branch_but_not_the_others(branches: Branches, transport: str) -> None:
    b = branches
    work = b.clone(transport, "work", "stable")
    b.commit(work, "on stable")
    b.client.hg("update", "-q", "-R", str(work), "default")
    b.commit(work, "on default")
    before = b.files()
    direct = b.push(work, transport, "-r", "stable")
    b.assert_refused(direct, "protected branch stable: direct pushes are not allowed", before)
    both = b.push(work, transport)  # one push, two branches: nothing of it lands
    b.assert_refused(both, "protected branch stable: direct pushes are not allowed", before)

    other = b.push(work, transport, "-r", "default")
    assert other.returncode == 0, (other.stdout, other.stderr)
    assert b.remote_heads(verify=True) == ["default:on default", "release/1:release base", "stable:stable base"]


def test_unprotected_branches_are_unaffected(branches: Branches) -> None:
    b = branches
    work = b.clone("ssh", "work")
    b.client.hg("branch", "-q", "-R", str(work), "feature")
    b.commit(work, "feature one")
    created = b.push(work, "ssh", "--new-branch", "-r", ".")
    assert created.returncode == 0, (created.stdout, created.stderr)
    b.commit(work, "feature two")
    b.client.hg("update", "-q", "-R", str(work), "-r", "desc('feature one')")
    b.commit(work, "feature fork")
    forced = b.push(work, "http", "--force")
    assert forced.returncode == 0, (forced.stdout, forced.stderr)
    b.commit(work, "feature closed", "--close-branch")
    closed = b.push(work, "ssh", "-r", ".")
    assert closed.returncode == 0, (closed.stdout, closed.stderr)
    assert b.remote_heads(verify=True) == ["default:base", "feature:feature closed", "feature:feature two",
                                           "release/1:release base", "stable:stable base"]


@pytest.mark.parametrize("served", ["fs"], indirect=True)  # only a repository on disk has an hgrc
def test_markers_may_not_rewrite_or_prune_a_protected_branch(branches: Branches) -> None:
    """With changeset evolution on, a marker that hides a protected branch's head moves the branch
    backwards: a prune pushed alone (no changeset at all) is refused as a whole, on a protected
    branch only."""
    b = branches
    (b.server.root / b.repo / ".hg" / "hgrc").write_text(
        "[phases]\npublish = False\n[experimental]\nevolution = all\n")
    evolve = ("--config", "experimental.evolution=all")
    work = b.clone("ssh", "work")
    b.commit(work, "draft work")
    assert b.push(work, "ssh", "-r", ".").returncode == 0
    b.client.hg("update", "-q", "-R", str(work), "-r", "desc(base)")
    b.client.hg("branch", "-q", "-f", "-R", str(work), "feature")
    b.commit(work, "feature work")
    assert b.push(work, "ssh", "--new-branch", "-r", ".").returncode == 0
    for message in ("draft work", "feature work"):
        node = b.client.hg("log", "-R", str(work), "-r", f"desc('{message}')", "-T", "{node}").stdout
        b.client.hg(*evolve, "debugobsolete", "-R", str(work), "--record-parents", node)
    before = b.files()
    pruned = b.hg(*evolve, "push", "-R", str(work), "-r", "desc(base)", b.url("ssh"), check=False)
    b.assert_refused(pruned, "protected branch default: rewriting or pruning its changesets is not allowed",
                     before)
    assert "default:draft work" in b.remote_heads()

    b.client.hg(*evolve, "debugobsolete", "-R", str(work), "--delete", "0")  # only the feature prune left
    accepted = b.hg(*evolve, "push", "-R", str(work), "-r", "desc(base)", b.url("ssh"), check=False)
    assert accepted.returncode == 1, (accepted.stdout, accepted.stderr)  # hg's status for "no changes found"
    assert "remote: 1 new obsolescence markers" in accepted.stdout
    assert "feature:feature work" not in b.remote_heads(verify=True)
