"""The real ``hg`` client against hgwire's SSH server (``hg -R PATH serve --stdio``), both backends.

With the fs backend (and in the tests of one backend) hgwire's client is an ``hg`` process of its own;
with the memory backend, whose runs check what that backend stores and serves, the commands naming a
URL run in processes forked from hg's chg server (``ForkedClient`` of test_hg_evolve_topics: the same
client code over the real ssh, without hg's start-up), so the tests name the URL of each push and pull."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.interfaces import Kind
from protocols.errors import PermissionDenied, RepositoryNotFound
from tests import conftest
from tests.conftest import BACKENDS, LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings


@dataclass
class HgSsh:
    server: RunningServer
    client: Client
    ssh: str

    def url(self, name: str) -> str:
        return f"ssh://alice@127.0.0.1:{self.server.port('ssh')}/{name}"

    def hg(self, *args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.client.hg("--config", f"ui.ssh={self.ssh}", *args, **kw)  # type: ignore[arg-type]

    def log(self, repo: Path | str, *extra: str) -> str:
        """Everything hg knows of each changeset, for comparing two repositories."""
        template = "{node} {p1node} {p2node} {branch} {phase} {tags} {desc|firstline}\n"
        return self.client.hg("log", "-R", str(repo), "--debug", "-T", template, *extra).stdout

    def verify_server(self, name: str, tmp: Path) -> None:
        """``hg verify`` the server's copy: on disk for fs, through a fresh clone for memory."""
        if self.server.backend_name == "fs":
            self.client.hg("verify", "-R", str(self.server.root / name))
        else:
            check = tmp / f"verify-{name}"
            shutil.rmtree(check, ignore_errors=True)
            self.hg("clone", "-q", "-U", self.url(name), str(check))
            self.client.hg("verify", "-R", str(check))


def _client_of(backend: str, client: Client) -> Client:
    """The client of a test on ``backend``: a real hg process for fs, forked from chg for memory."""
    from tests.integration.test_hg_evolve_topics import ForkedClient  # (which imports this module)

    return ForkedClient(client.env, client.cwd) if backend == "memory" else client


@pytest.fixture(params=BACKENDS)
def hgssh(request: pytest.FixtureRequest, make_server: Callable[..., RunningServer], client: Client,
          ssh_keys: SshKeys) -> HgSsh:
    server = make_server(request.param, **ssh_server_settings(ssh_keys))
    return HgSsh(server, _client_of(request.param, client), ssh_keys.command(server.port("ssh")))


def _commit(client: Client, repo: Path, path: str, content: str | bytes, message: str, *extra: str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    client.hg("add", "-q", "-R", str(repo), str(target), check=False)
    client.hg("commit", "-q", "-R", str(repo), "-m", message, *extra)


def build_history(client: Client, base: Path) -> Path:
    """A repository made by real hg: named branches, a closed branch, a merge, tags, bookmarks, copies."""
    repo = base / "history"
    client.hg("init", str(repo))
    _commit(client, repo, "README", "hello\n", "initial")
    _commit(client, repo, "bin/data.bin", bytes(range(256)) * 64, "binary")
    client.hg("copy", "-q", "-R", str(repo), str(repo / "README"), str(repo / "docs/ünïcode.txt"))
    client.hg("commit", "-q", "-R", str(repo), "-m", "copy with a non-ASCII name")
    client.hg("branch", "-q", "-R", str(repo), "stable")
    _commit(client, repo, "stable.txt", "stable\n", "on stable")
    client.hg("update", "-q", "-R", str(repo), "default")
    _commit(client, repo, "README", "hello again\n", "default moves on")
    client.hg("merge", "-q", "-R", str(repo), "stable")
    client.hg("commit", "-q", "-R", str(repo), "-m", "merge stable")
    client.hg("tag", "-q", "-R", str(repo), "v1.0")
    client.hg("branch", "-q", "-R", str(repo), "old")
    _commit(client, repo, "old.txt", "old\n", "old branch")
    client.hg("commit", "-q", "-R", str(repo), "--close-branch", "-m", "close old")
    client.hg("update", "-q", "-R", str(repo), "default")
    _commit(client, repo, "tools/run.sh", "#!/bin/sh\necho run\n", "an executable")
    (repo / "tools" / "run.sh").chmod(0o755)
    (repo / "tools" / "latest").symlink_to("run.sh")
    long_dir = "/".join(["Very_Long_Directory_Name_" + str(i) for i in range(6)])
    _commit(client, repo, f"{long_dir}/AUX.Txt", "escaping\n", "exec bit, symlink, a long path needing escapes",
            "-A")
    client.hg("bookmark", "-q", "-R", str(repo), "feature")
    return repo


@pytest.fixture(scope="module")
def built_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``build_history`` once per module: it costs some twenty hg runs."""
    base = tmp_path_factory.mktemp("history")
    env = conftest.client_environment(base)
    return build_history(Client(env, base), base)


@pytest.fixture
def history(built_history: Path, tmp_path: Path) -> Path:
    """A private copy of the history: pushing to a publishing server turns the source's phases public."""
    copy = tmp_path / "history"
    shutil.copytree(built_history, copy, symlinks=True)
    return copy


def test_init_push_then_clone(hgssh: HgSsh, history: Path, tmp_path: Path) -> None:
    # (processes: hg runs a remote init through ui.system, whose stderr a fork of chg's would not capture)
    hgssh.hg("init", hgssh.url("team/new"), env={})
    again = hgssh.hg("init", hgssh.url("team/new"), check=False, env={})
    assert again.returncode != 0
    assert again.stderr.startswith("abort: repository team/new already exists\n"), again.stderr  # hg 7's words
    pushed = hgssh.hg("push", "-R", str(history), "--new-branch", hgssh.url("team/new"))
    assert "remote: added 11 changesets with 10 changes to 9 files" in pushed.stdout
    hgssh.hg("push", "-q", "-R", str(history), "-B", "feature", hgssh.url("team/new"), check=False)
    hgssh.verify_server("team/new", tmp_path)
    clone = tmp_path / "clone"
    hgssh.hg("clone", "-q", hgssh.url("team/new"), str(clone))
    source = hgssh.log(history).replace(" draft ", " public ")  # a publishing server makes pushes public
    assert hgssh.log(clone) == source
    assert (clone / "docs" / "ünïcode.txt").read_text() == "hello\n"
    assert (clone / "tools" / "run.sh").stat().st_mode & 0o111
    assert (clone / "tools" / "latest").is_symlink()
    manifest = hgssh.client.hg("manifest", "-R", str(clone), "--debug").stdout
    assert manifest == hgssh.client.hg("manifest", "-R", str(history), "--debug").stdout
    assert hgssh.client.hg("bookmarks", "-R", str(clone), "-T", "{bookmark}\n").stdout == "feature\n"


def test_clone_and_pull_get_a_compressed_bundle(hgssh: HgSsh, history: Path, tmp_path: Path) -> None:
    # hg's client names zstd in protocaps; hg's own server would send the bundle uncompressed
    hgssh.server.backend.create("z", Kind.HG)
    hgssh.hg("push", "-q", "-R", str(history), "-r", "2", hgssh.url("z"))
    clone = tmp_path / "z"
    cloned = hgssh.hg("clone", "--debug", "-U", hgssh.url("z"), str(clone))
    assert "bundle2-input-bundle: 1 params with-transaction" in cloned.stdout + cloned.stderr
    hgssh.hg("push", "-q", "-R", str(history), "--new-branch", hgssh.url("z"))
    pulled = hgssh.hg("pull", "--debug", "-R", str(clone), hgssh.url("z"))
    assert "bundle2-input-bundle: 1 params with-transaction" in pulled.stdout + pulled.stderr
    assert hgssh.log(clone) == hgssh.log(history).replace(" draft ", " public ")
    hgssh.client.hg("verify", "-q", "-R", str(clone))
    hgssh.verify_server("z", tmp_path)


def test_clients_of_an_uncompressed_network_get_the_bundle_as_it_is(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, history: Path,
        tmp_path: Path) -> None:
    """``[hg_http] uncompressed_networks`` (a LAN): the bundle without ``Compression``, as hg serve
    sends it to everyone."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["*"]\ncreate = ["*"]\n'
                      '[hg_http]\nuncompressed_networks = ["127.0.0.0/8"]\n')
    server = make_server("fs", **ssh_server_settings(ssh_keys), config_file=str(policy))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    hgssh.hg("init", hgssh.url("lan"))
    hgssh.hg("push", "-q", "-R", str(history), "--new-branch", hgssh.url("lan"))
    cloned = hgssh.hg("clone", "--debug", "-U", hgssh.url("lan"), str(tmp_path / "lan"))
    assert "bundle2-input-bundle: with-transaction" in cloned.stdout + cloned.stderr
    assert hgssh.log(tmp_path / "lan") == hgssh.log(history).replace(" draft ", " public ")
    client.hg("verify", "-q", "-R", str(tmp_path / "lan"))


def test_clone_empty_then_push_first_changeset(hgssh: HgSsh, tmp_path: Path) -> None:
    hgssh.server.backend.create("empty", Kind.HG)
    clone = tmp_path / "empty-clone"
    cloned = hgssh.hg("clone", hgssh.url("empty"), str(clone))
    assert "no changes found" in cloned.stdout + cloned.stderr
    _commit(hgssh.client, clone, "a.txt", "a\n", "first")
    hgssh.hg("push", "-R", str(clone), hgssh.url("empty"))
    assert hgssh.client.hg("phase", "-R", str(clone), "-r", ".").stdout.strip().endswith("public")
    hgssh.verify_server("empty", tmp_path)


def test_incremental_pull_new_branch_and_partial_pull(hgssh: HgSsh, history: Path, tmp_path: Path) -> None:
    hgssh.server.backend.create("r", Kind.HG)
    hgssh.hg("push", "-q", "-R", str(history), "-r", "0", hgssh.url("r"))
    clone = tmp_path / "c"
    hgssh.hg("clone", "-q", "-U", hgssh.url("r"), str(clone))
    hgssh.hg("push", "-q", "-R", str(history), "--new-branch", hgssh.url("r"))
    incoming = hgssh.hg("incoming", "-R", str(clone), hgssh.url("r"), "-T", "{desc}\n", check=False)
    assert "on stable" in incoming.stdout
    hgssh.hg("pull", "-q", "-R", str(clone), hgssh.url("r"), "-r", "stable")
    assert hgssh.client.hg("log", "-R", str(clone), "-r", "stable", "-T", "{desc}").stdout == "on stable"
    assert "merge stable" not in hgssh.client.hg("log", "-R", str(clone), "-T", "{desc}\n").stdout
    hgssh.hg("pull", "-q", "-R", str(clone), hgssh.url("r"))
    assert hgssh.log(clone) == hgssh.log(history).replace(" draft ", " public ")
    assert hgssh.hg("outgoing", "-R", str(clone), hgssh.url("r"), check=False).returncode == 1  # nothing to push
    ident = hgssh.hg("identify", "-r", "stable", hgssh.url("r")).stdout.strip()
    assert ident == hgssh.client.hg("log", "-R", str(history), "-r", "stable", "-T", "{node|short}").stdout


def test_new_head_refused_without_force(hgssh: HgSsh, tmp_path: Path) -> None:
    hgssh.server.backend.create("heads", Kind.HG)
    one, two = tmp_path / "one", tmp_path / "two"
    hgssh.hg("clone", "-q", hgssh.url("heads"), str(one))
    _commit(hgssh.client, one, "a", "a\n", "base")
    hgssh.hg("push", "-q", "-R", str(one), hgssh.url("heads"))
    hgssh.hg("clone", "-q", hgssh.url("heads"), str(two))
    _commit(hgssh.client, one, "a", "from one\n", "one")
    _commit(hgssh.client, two, "a", "from two\n", "two")
    hgssh.hg("push", "-q", "-R", str(one), hgssh.url("heads"))
    refused = hgssh.hg("push", "-R", str(two), hgssh.url("heads"), check=False)
    assert refused.returncode != 0
    assert "push creates new remote head" in refused.stderr
    hgssh.hg("push", "-q", "-f", "-R", str(two), hgssh.url("heads"))
    heads = hgssh.hg("identify", "-r", "default", hgssh.url("heads"))
    assert heads.returncode == 0
    assert len(hgssh.client.hg("heads", "-R", str(two), "-T", "x").stdout) == 1
    hgssh.hg("pull", "-q", "-R", str(two), hgssh.url("heads"))
    assert len(hgssh.client.hg("heads", "-R", str(two), "-T", "x").stdout) == 2
    hgssh.verify_server("heads", tmp_path)


def test_bookmarks_both_ways(hgssh: HgSsh, tmp_path: Path) -> None:
    hgssh.server.backend.create("bm", Kind.HG)
    a, b = tmp_path / "a", tmp_path / "b"
    hgssh.hg("clone", "-q", hgssh.url("bm"), str(a))
    _commit(hgssh.client, a, "f", "1\n", "one")
    hgssh.client.hg("bookmark", "-q", "-R", str(a), "topic")
    hgssh.hg("push", "-q", "-R", str(a), hgssh.url("bm"), "-B", "topic")
    hgssh.hg("clone", "-q", hgssh.url("bm"), str(b))
    assert "topic" in hgssh.client.hg("bookmarks", "-R", str(b)).stdout
    hgssh.client.hg("update", "-q", "-R", str(b), "topic")
    _commit(hgssh.client, b, "f", "2\n", "two")  # the active bookmark moves with the commit
    hgssh.hg("push", "-q", "-R", str(b), hgssh.url("bm"), "-B", "topic")
    hgssh.hg("pull", "-q", "-R", str(a), hgssh.url("bm"))
    moved = hgssh.client.hg("log", "-R", str(a), "-r", "topic", "-T", "{desc}").stdout
    assert moved == "two"
    hgssh.client.hg("bookmark", "-q", "-R", str(a), "-d", "topic")
    hgssh.hg("push", "-q", "-R", str(a), hgssh.url("bm"), "-B", "topic", check=False)
    assert "topic" not in hgssh.hg("bookmarks", "-R", str(b), "--remote", check=False).stdout
    listed = hgssh.client.hg("debugpushkey", hgssh.url("bm"), "bookmarks",
                             "--config", f"ui.ssh={hgssh.ssh}").stdout
    assert "topic" not in listed


BAD_NAMES = [
    ("nope", "repository nope not found"),
    ("--debugger", "starts with '-'"),
    ("--config=ui.x=1", "starts with '-'"),
    ("../outside", "'..' segment"),
    ("", "no repository is named in the URL: add its name after the host"),  # hg sends "-R ."
]


def test_bad_repository_names(hgssh: HgSsh, tmp_path: Path) -> None:
    """Each name refused with its reason, one server a backend (the names used to be parameters, a
    server and a good clone each), which then still serves a good one."""
    for name, message in BAD_NAMES:
        result = hgssh.hg("clone", f"ssh://alice@127.0.0.1:{hgssh.server.port('ssh')}/{name}",
                          str(tmp_path / "x"), check=False)
        assert result.returncode != 0, name
        assert message in result.stderr, (name, result.stderr)
        assert not (tmp_path / "x").exists(), name
    hgssh.server.backend.create("still", Kind.HG)
    assert hgssh.hg("clone", "-q", hgssh.url("still"), str(tmp_path / "still")).returncode == 0


class PrivateMemory:
    """A custom backend whose ``open`` says in its own words that a repository is not there."""

    def __init__(self, root: str) -> None:
        self.root = root

    def open(self, name: str) -> object:
        raise RepositoryNotFound(f"no project called {name} here; ask the admins for one")

    def create(self, name: str, kind: Kind) -> object:
        raise PermissionDenied("this server makes no repositories")

    def exists(self, name: str) -> bool:
        return False

    def list(self) -> list[str]:
        return []


def test_a_backend_tells_hg_why_a_repository_is_missing(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """The backend's ``RepositoryNotFound`` message reaches hg over SSH, as it reaches every other client."""
    server = make_server("tests.integration.test_hg_ssh:PrivateMemory", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    result = hgssh.hg("clone", hgssh.url("team/app"), str(tmp_path / "x"), check=False)
    assert result.returncode != 0
    assert "remote: abort: no project called team/app here; ask the admins for one" in result.stderr


def test_git_repository_is_not_served_to_hg(hgssh: HgSsh, tmp_path: Path) -> None:
    hgssh.server.backend.create("gitrepo", Kind.GIT)
    result = hgssh.hg("clone", hgssh.url("gitrepo"), str(tmp_path / "x"), check=False)
    assert result.returncode != 0
    assert "remote: abort: gitrepo is a Git repository, not a Mercurial one; use git for it" in result.stderr


def test_repository_written_by_hg_is_served_and_hg_keeps_working(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, history: Path,
        tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    served = server.root / "real"
    client.hg("clone", "-q", "-U", str(history), str(served))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    clone = tmp_path / "clone"
    hgssh.hg("clone", "-q", hgssh.url("real"), str(clone))
    assert hgssh.log(clone) == hgssh.log(served)
    _commit(client, clone, "new.txt", "new\n", "pushed through hgwire")
    hgssh.hg("push", "-q", "-R", str(clone))
    client.hg("verify", "-R", str(served))
    client.hg("update", "-q", "-R", str(served), "tip")  # real hg still works on it
    _commit(client, served, "local.txt", "x\n", "committed by hg on the server")
    client.hg("verify", "-R", str(served))
    hgssh.hg("pull", "-q", "-R", str(clone))
    assert "committed by hg on the server" in client.hg("log", "-R", str(clone), "-T", "{desc}\n").stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_clone(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
                      history: Path, tmp_path: Path, backend: str) -> None:
    server = make_server(backend, **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, _client_of(backend, client), ssh_keys.command(server.port("ssh")))
    server.backend.create("s", Kind.HG)
    hgssh.hg("push", "-q", "-R", str(history), "--new-branch", hgssh.url("s"))
    streamed = tmp_path / "streamed"
    result = hgssh.hg("clone", "--stream", "-U", "--debug", hgssh.url("s"), str(streamed))
    assert "streaming all changes" in result.stdout
    assert "adding [s] 00changelog.i" in result.stdout
    client.hg("verify", "-q", "-R", str(streamed))
    assert hgssh.log(streamed) == hgssh.log(history).replace(" draft ", " public ")


def test_a_stream_clone_over_ssh_never_copies_secret_changesets(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    served = server.root / "phased"
    client.hg("init", str(served))
    for name in ("public", "secret"):
        (served / name).write_text(f"{name}\n")
        client.hg("commit", "-q", "-A", "-R", str(served), "-m", f"{name} change")
    client.hg("phase", "-q", "--force", "--secret", "-R", str(served), "-r", "tip")
    clone = tmp_path / "clone"
    result = hgssh.hg("clone", "--stream", "-U", hgssh.url("phased"), str(clone))
    assert "stream clone requested but server has them disabled" in result.stderr
    assert client.hg("log", "-R", str(clone), "-T", "{desc}\n").stdout == "public change\n"
    client.hg("verify", "-q", "-R", str(clone))


def test_server_uncompressed_and_preferuncompressed_of_the_hgrc(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """As hg serve: ``[server] uncompressed = False`` turns stream clones off, ``preferuncompressed``
    makes a plain clone stream."""
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    served = server.root / "settings"
    client.hg("init", str(served))
    (served / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", str(served), "-m", "a")
    hgrc = served / ".hg" / "hgrc"
    hgrc.write_text("[server]\nuncompressed = False\n")
    off = hgssh.hg("clone", "--stream", "-U", hgssh.url("settings"), str(tmp_path / "off"))
    assert "stream clone requested but server has them disabled" in off.stderr
    assert "\n  stream\n" not in hgssh.hg("debugcapabilities", hgssh.url("settings")).stdout  # nor in bundle2=
    hgrc.write_text("[server]\npreferuncompressed = yes\n")
    preferred = hgssh.hg("clone", "--debug", "-U", hgssh.url("settings"), str(tmp_path / "preferred"))
    assert "streaming all changes" in preferred.stdout + preferred.stderr
    hgrc.write_text("[server]\npreferuncompressed = no\n")
    assert "\n  stream\n    v2\n" in hgssh.hg("debugcapabilities", hgssh.url("settings")).stdout
    plain = hgssh.hg("clone", "--debug", "-U", hgssh.url("settings"), str(tmp_path / "plain"))
    assert "streaming all changes" not in plain.stdout + plain.stderr
    for name in ("off", "preferred", "plain"):
        client.hg("verify", "-q", "-R", str(tmp_path / name))


def test_twenty_megabyte_file(make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
                              tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    server.backend.create("big", Kind.HG)
    src = tmp_path / "src"
    client.hg("init", str(src))
    blob = bytes(range(256)) * (20 * 1024 * 4)  # 20 MiB, compressible like real data
    _commit(client, src, "big.bin", blob, "a 20 MB file")
    hgssh.hg("push", "-q", "-R", str(src), hgssh.url("big"))
    hgssh.verify_server("big", tmp_path)
    clone = tmp_path / "clone"
    hgssh.hg("clone", "-q", hgssh.url("big"), str(clone))
    assert (clone / "big.bin").read_bytes() == blob


def test_racing_pushes_of_diverging_heads_lose_nothing(hgssh: HgSsh, tmp_path: Path) -> None:
    """Two clients push new heads at the same moment: the repo verifies and no acknowledged push is lost."""
    hgssh.server.backend.create("race", Kind.HG)
    seed = tmp_path / "seed"
    hgssh.hg("clone", "-q", hgssh.url("race"), str(seed))
    _commit(hgssh.client, seed, "a", "base\n", "base")
    hgssh.hg("push", "-q", "-R", str(seed), hgssh.url("race"))
    clones = []
    for who in ("left", "right"):
        repo = tmp_path / who
        hgssh.hg("clone", "-q", hgssh.url("race"), str(repo))
        _commit(hgssh.client, repo, "a", f"{who}\n", who)
        clones.append(repo)
    argv = [str(Path(hgssh.client.env["PATH"].split(":")[0]) / "hg"), "--config", f"ui.ssh={hgssh.ssh}", "push",
            "-f"]
    procs = [subprocess.Popen([*argv, "-R", str(repo)], env=hgssh.client.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for repo in clones]
    results = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in procs]
    for repo, (code, err) in zip(clones, results):
        if code != 0:  # the loser is told, and lands on a retry
            assert "push" in err
            hgssh.hg("push", "-q", "-f", "-R", str(repo), hgssh.url("race"))
    hgssh.verify_server("race", tmp_path)
    final = tmp_path / "final"
    hgssh.hg("clone", "-q", "-U", hgssh.url("race"), str(final))
    descriptions = hgssh.client.hg("log", "-R", str(final), "-T", "{desc}\n").stdout.split()
    assert sorted(descriptions) == ["base", "left", "right"]


def _raw_push(hgssh: HgSsh, name: str, bundle: bytes) -> subprocess.CompletedProcess[bytes]:
    """An ``unbundle`` over a raw ``hg serve --stdio`` session, as a hostile client would send it."""
    heads = b"666f726365"  # hex("force"), what bundle2 clients send
    request = (b"hello\n" b"unbundle\n" b"heads %d\n%s" % (len(heads), heads)
               + b"%d\n%s" % (len(bundle), bundle) + b"0\n")
    argv = [*hgssh.ssh.split(), "alice@127.0.0.1", f"hg -R {name} serve --stdio"]
    return subprocess.run(argv, input=request, capture_output=True, timeout=60)


def _store_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_hostile_pushes_change_nothing(make_server: Callable[..., RunningServer], client: Client,
                                       ssh_keys: SshKeys, history: Path, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    server.backend.create("target", Kind.HG)
    hgssh.hg("push", "-q", "-R", str(history), "-r", "0", hgssh.url("target"))
    bundle_file = tmp_path / "all.hg"
    client.hg("bundle", "-q", "-R", str(history), "--all", "-t", "v2", str(bundle_file))
    bundle = bundle_file.read_bytes()
    uncompressed = tmp_path / "none.hg"
    client.hg("bundle", "-q", "-R", str(history), "--all", "-t", "none-v2", str(uncompressed))
    raw = uncompressed.read_bytes()
    node = bytes.fromhex(client.hg("log", "-R", str(history), "-r", "1", "-T", "{node}").stdout)
    corrupted = raw.replace(node, bytes(20), 1) if node in raw else raw[:-40] + bytes(40)
    store = server.root / "target" / ".hg" / "store"
    before = _store_bytes(store)
    for hostile in (bundle[: len(bundle) // 2], raw[: len(raw) - 100], corrupted, b"HG20" + b"\xff" * 64):
        result = _raw_push(hgssh, "target", hostile)
        assert result.returncode in (0, 255)
        assert b"abort" in result.stdout + result.stderr or b"error" in result.stdout + result.stderr
        assert _store_bytes(store) == before
    client.hg("verify", "-R", str(server.root / "target"))
    hgssh.hg("push", "-q", "-R", str(history), "--new-branch", hgssh.url("target"))  # still serving
    client.hg("verify", "-R", str(server.root / "target"))


def test_a_key_of_an_hg_ssh_line_keeps_to_what_hg_ssh_allowed(make_server: Callable[..., RunningServer],
                                                              client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """An operator moving from Mercurial's ``hg-ssh`` keeps its ``authorized_keys``: the key clones and
    pushes the repository its line lists, is refused every other one, ``hg init`` and git, and with
    ``--read-only`` its push is refused with the repository as it was."""
    public = (ssh_keys.key.parent / "alice_key.pub").read_text().split()
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(f'command="hg-ssh team/app",no-port-forwarding,no-pty {public[0]} {public[1]} alice\n')
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key), authorized_keys=str(authorized))
    for name in ("team/app", "team/other"):
        client.hg("init", str(server.root / name))
    client.git("init", "-q", "--bare", str(server.root / "team" / "app.git"))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    work = tmp_path / "work"
    hgssh.hg("clone", "-q", hgssh.url("team/app"), str(work))
    _commit(client, work, "a.txt", "one\n", "first")
    hgssh.hg("push", "-q", "-R", str(work))
    hgssh.verify_server("team/app", tmp_path)
    assert client.hg("log", "-R", str(server.root / "team/app"), "-T", "{desc}\n").stdout == "first\n"

    other = hgssh.hg("clone", "-q", hgssh.url("team/other"), str(tmp_path / "other"), check=False)
    assert other.returncode != 0 and "this SSH key may not reach team/other" in other.stderr
    created = hgssh.hg("init", hgssh.url("team/new"), check=False)
    assert created.returncode != 0 and "this SSH key may not reach team/new" in created.stderr
    assert not (server.root / "team" / "new").exists()
    listed = hgssh.hg("init", hgssh.url("team/app"), check=False)
    assert listed.returncode != 0 and "this SSH key may not create repositories" in listed.stderr
    git = client.git("ls-remote", f"ssh://alice@127.0.0.1:{server.port('ssh')}/team/app.git", check=False,
                     env={"GIT_SSH_COMMAND": hgssh.ssh})
    assert git.returncode != 0 and "this SSH key may only run Mercurial" in git.stderr

    authorized.write_text(f'command="hg-ssh --read-only team/app" {public[0]} {public[1]} alice\n')
    os.utime(authorized, ns=(1, 10**18))  # a new stamp: the file is read again
    before = _store_bytes(server.root / "team" / "app")
    _commit(client, work, "a.txt", "two\n", "second")
    refused = hgssh.hg("push", "-R", str(work), check=False)
    assert refused.returncode != 0 and "remote: this SSH key may only read team/app" in refused.stdout, refused.stdout
    assert _store_bytes(server.root / "team" / "app") == before
    greeting = subprocess.run([*hgssh.ssh.split(), "alice@127.0.0.1"], capture_output=True, text=True, timeout=60, check=False)
    listed = [line.split()[-1] for line in greeting.stdout.splitlines() if line.startswith(" R")]
    assert listed == ["team/app"] and " R    team/app" in greeting.stdout, greeting.stdout  # read, no W
    pulled = hgssh.hg("pull", "-R", str(tmp_path / "work"), check=False)
    assert pulled.returncode == 0, pulled.stderr


def test_a_key_of_a_git_shell_line_runs_git_only(make_server: Callable[..., RunningServer], client: Client,
                                                 ssh_keys: SshKeys, tmp_path: Path) -> None:
    """An operator moving from a git-shell account keeps its ``authorized_keys``
    (``command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\""``, git's own advice): the key pushes and
    clones git repositories with its user's rights, and is refused Mercurial, as git-shell refuses it."""
    public = (ssh_keys.key.parent / "alice_key.pub").read_text().split()
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(f'command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"",restrict {public[0]} {public[1]} '
                          'alice\n')
    server = make_server("fs", ssh=[LOOPBACK], host_key=str(ssh_keys.host_key), authorized_keys=str(authorized))
    client.hg("init", str(server.root / "notes"))
    client.git("init", "-q", "--bare", str(server.root / "app.git"))
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    env = {"GIT_SSH_COMMAND": hgssh.ssh}
    work = tmp_path / "work"
    client.git("init", "-q", "-b", "main", str(work))
    client.git("commit", "-q", "--allow-empty", "-m", "first", cwd=work)
    url = f"ssh://alice@127.0.0.1:{server.port('ssh')}/app.git"
    client.git("push", "-q", url, "main", cwd=work, env=env)
    client.git("clone", "-q", url, str(tmp_path / "clone"), env=env)
    client.git("--git-dir", str(server.root / "app.git"), "fsck", "--full")
    refused = hgssh.hg("clone", "-q", hgssh.url("notes"), str(tmp_path / "notes"), check=False)
    assert refused.returncode != 0 and "this SSH key may only run git (git-shell in authorized_keys)" in refused.stderr, \
        refused.stderr


def test_an_ipv6_client_of_an_uncompressed_network_gets_the_bundle_as_it_is(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, history: Path,
        tmp_path: Path) -> None:
    """``uncompressed_networks = ["::1"]`` and a client at ``::1``: its session is named
    ``[::1]:PORT``, and the network is matched on the address inside the brackets."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[[repo]]\npattern = "*"\nwrite = ["*"]\ncreate = ["*"]\n'
                      '[hg_http]\nuncompressed_networks = ["::1"]\n')
    settings = {**ssh_server_settings(ssh_keys), "ssh": ["tcp:0:interface=\\:\\:1"]}
    server = make_server("fs", **settings, config_file=str(policy))
    # hg hands ssh an IPv6 URL's host with its brackets, which ssh cannot resolve: a name, and
    # ssh's HostName option to reach it at ::1
    hgssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")) + " -o HostName=::1")
    url = f"ssh://alice@v6host:{server.port('ssh')}/lan6"
    hgssh.hg("init", url)
    hgssh.hg("push", "-q", "-R", str(history), "--new-branch", url)
    cloned = hgssh.hg("clone", "--debug", "-U", url, str(tmp_path / "lan6"))
    assert "bundle2-input-bundle: with-transaction" in cloned.stdout + cloned.stderr
    assert hgssh.log(tmp_path / "lan6") == hgssh.log(history).replace(" draft ", " public ")
