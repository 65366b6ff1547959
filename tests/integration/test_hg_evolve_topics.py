"""hg-evolve's ``evolve`` and ``topic`` extensions on the real client against hgwire over SSH and HTTP,
where the repository's hgrc enables them as a team's server does (``[extensions] topic =``,
``[experimental] evolution = all``, ``[phases] publish = False``).  What the server answers is
compared with what ``hg serve`` with the extensions answers (Mercurial's own lookup, run on a copy).

The server's ``topic-mode.server`` settings are in test_hg_evolve_topic_modes (a module of their own:
with ``--dist loadfile`` two test processes share the two halves).

``test_a_topic_names_its_newest_changeset_for_pull_and_clone`` runs hgwire's hg client as a process of
its own (SSH and HTTP: the evolve area's client processes, as a user runs them); the other tests fork it
from hg's chg server (``ForkedClient``: the real client code, over the real ssh and HTTP, without its
start-up).

The tests need hg-evolve importable by the Python that runs ``hg`` (the ``test`` extra installs it);
without it they are skipped, saying so."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import atexit
import configparser
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import hg_chg, hg_command_server
from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture


def _hg_evolve_dir() -> str | None:
    """The directory holding ``hgext3rd/topic`` and ``hgext3rd/evolve``, or None without hg-evolve."""
    try:
        spec = importlib.util.find_spec("hgext3rd.topic")
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("hgext3rd.evolve") is None:
        return None
    return str(Path(next(iter(spec.submodule_search_locations))).parent.parent)


HG_EVOLVE = _hg_evolve_dir()
pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve or topic client to test with")

EXTENSIONS = ("--config", "extensions.evolve=", "--config", "extensions.topic=")
SERVER_HGRC = ("[extensions]\nevolve =\ntopic =\n[experimental]\nevolution = all\n"
               "[phases]\npublish = False\n")


EVOLVE_LOCAL_COMMANDS = hg_command_server.LOCAL_COMMANDS | {
    "amend", "evolve", "prune", "fold", "debugobsolete", "topic", "topics", "debug-topic-namespace",
    "debugobshashrange", "bundle", "unbundle", "strip",
}
"""Local commands an evolve-loaded command server runs (on paths: a URL anywhere sends it to a process)."""

_EVOLVE_SERVERS: dict[tuple[Any, ...], hg_command_server.CommandServer] = {}
_EVOLVE_LOCK = threading.Lock()


@atexit.register
def _stop_evolve_servers() -> None:
    for server in _EVOLVE_SERVERS.values():
        server.close()


def _loaded_here(args: tuple[str, ...], cwd: Path) -> tuple[tuple[str, ...], list[str]] | None:
    """The leading ``--config`` pairs (loading at least one extension) and the rest, when the command
    is a local one on a repository that loads no other code; ``None`` otherwise."""
    config: list[str] = []
    rest = list(args)
    while len(rest) > 1 and rest[0] == "--config":
        config += rest[:2]
        rest = rest[2:]
    if not any(value.startswith("extensions.") for value in config[1::2]) or any(
            value.startswith("hooks.") for value in config[1::2]):
        return None
    if not rest or rest[0] not in EVOLVE_LOCAL_COMMANDS or any(
            "://" in a or a.split("=")[0] in ("--config", "--cwd", "--debugger") for a in rest):
        return None
    repo = hg_command_server._repository_of(rest, cwd)
    hgrc = repo / ".hg" / "hgrc" if repo is not None else None
    if hgrc is not None and hgrc.exists():
        text = hgrc.read_text()
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parsed.read_string(text)
        except configparser.Error:
            return None
        extensions = {f"extensions.{name}=" for name in parsed.options("extensions")} if parsed.has_section(
            "extensions") else set()
        if parsed.has_section("hooks") or "%include" in text or not extensions <= set(config[1::2]):
            return None  # a hook or an extension the server's other commands would not load
    return tuple(config), rest


class EvolveClient(Client):
    """A ``Client`` whose local commands given with extensions (``hg --config extensions.evolve= ...
    amend``, ``log``, ``debugobsolete``...) run in Mercurial's command server, one per set of leading
    ``--config`` (so every command that server runs loads the same extensions), as ``Client.hg``
    runs those without extensions: starting hg with evolve loaded costs about half a second of CPU
    and these tests run hundreds of them.  Clones, pushes, pulls and anything naming a URL stay
    processes of their own, as does a command on a repository whose hgrc has hooks or loads an
    extension the command line does not."""

    def hg(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        cwd = Path(kw.get("cwd") or self.cwd)
        found = None if kw.keys() - {"cwd", "check", "timeout"} else _loaded_here(tuple(map(str, args)), cwd)
        if found is None:
            return super().hg(*args, **kw)
        config, rest = found
        env = {name: value for name, value in self.env.items() if name != "HOME"}  # (its own HOME, as Client's)
        key = (config, tuple(sorted(env.items())))
        with _EVOLVE_LOCK:
            server = _EVOLVE_SERVERS.pop(key, None)
        if server is not None and server._process.poll() is not None:
            server.close()  # (it stopped)
            server = None
        if server is None:
            server = hg_command_server.CommandServer(os.path.join(VENV_BIN, "hg"), env, key)
        done = server.run([*config, *rest], cwd, kw.get("timeout", 120))  # (a timeout closes it)
        with _EVOLVE_LOCK:
            if _EVOLVE_SERVERS.setdefault(key, server) is not server:
                server.close()
        result = subprocess.CompletedProcess(["hg", *config, *rest], done.returncode,
                                             done.stdout.decode("utf-8", "replace"),
                                             done.stderr.decode("utf-8", "replace"))
        if kw.get("check", True) and result.returncode != 0:
            raise AssertionError(f"hg {' '.join(result.args[1:])} failed with {result.returncode}:\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result


def _forkable(args: list[str], cwd: Path) -> tuple[str, ...] | None:
    """The extensions a command naming a URL loads by its leading ``--config`` (in that order; none
    is a set too), when hg's chg server may run it: no hook, no extension by path (nor any later
    ``--config`` setting one), on a repository (``-R``, or around ``cwd``) whose hgrc loads no
    code; ``None`` otherwise."""
    loaded: list[str] = []
    rest = list(args)
    while len(rest) > 1 and rest[0] == "--config":
        key, _, value = rest[1].partition("=")
        if key.startswith("hooks.") or (key.startswith("extensions.") and value):
            return None
        if key.startswith("extensions."):
            loaded.append(key.removeprefix("extensions."))
        rest = rest[2:]
    if not any("://" in arg for arg in rest) or any(
            arg.startswith(("--config=", "--cwd", "--debugger")) for arg in rest) or any(
            arg == "--config" and (i + 1 == len(rest) or rest[i + 1].startswith(("extensions.", "hooks.")))
            for i, arg in enumerate(rest)):
        return None
    repo = hg_command_server._repository_of(rest, cwd)
    hgrc = repo / ".hg" / "hgrc" if repo is not None else None
    if hgrc is not None and hgrc.exists():
        text = hgrc.read_text()
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parsed.read_string(text)
        except configparser.Error:
            return None
        if "%include" in text or parsed.has_section("extensions") or parsed.has_section("hooks"):
            return None
    return tuple(loaded)


class ForkedClient(EvolveClient):
    """An ``EvolveClient`` whose commands naming a URL (hgwire's clients: clone, push, pull, identify,
    debugcapabilities) run in processes forked from hg's chg server (``tests.hg_chg``) that loaded
    the extensions their leading ``--config`` load (a server with none for a command loading none):
    the real hg client code, dispatched as the command line dispatches it, over the real ssh and
    HTTP, without the third to half a second of CPU each hg with hg-evolve takes to start.  For the
    tests whose point is what the server serves or accepts; those checking that a plain client
    process gets the same use ``_setup(..., forked=False)``."""

    def hg(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        cwd = Path(kw.get("cwd") or self.cwd)
        words = [str(a) for a in args]
        loaded = None if kw.keys() - {"cwd", "check", "timeout"} else _forkable(words, cwd)
        if loaded is None:
            return super().hg(*args, **kw)
        return hg_chg.forked(os.path.join(VENV_BIN, "hg"), words, str(cwd), self.env, loaded,
                             kw.get("check", True), kw.get("timeout", 120))


@pytest.fixture
def client(client_env: dict[str, str], tmp_path: Path) -> Client:
    """conftest's ``client``, an ``EvolveClient`` (the modules that import this fixture)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return EvolveClient(client_env, work)


def _with_evolve(client: Client) -> None:
    """Let the client's hg import hg-evolve (the directory is already on its path in the test venv)."""
    assert HG_EVOLVE is not None
    paths = [HG_EVOLVE, *filter(None, client.env.get("PYTHONPATH", "").split(os.pathsep))]
    client.env["PYTHONPATH"] = os.pathsep.join(paths)


def _setup(kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
           htpasswd: Path, hgrc: str, forked: bool = True) -> tuple[Any, Callable[[str], str], Path]:
    """hgwire serving ``team`` (this ``hgrc``) over ``kind``: its peer (hg's client, forked from a chg
    server unless ``forked`` is false: ``ForkedClient``), the URL maker and the repository."""
    _with_evolve(client)
    pusher = ForkedClient(client.env, client.cwd) if forked else client
    peer, url, server = _served(kind, make_server, pusher, ssh_keys, htpasswd)
    repo = server.root / "team"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text(hgrc)
    return peer, url, repo


def _with_reference(kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
                    htpasswd: Path, tmp_path: Path, hgrc: str, forked: bool = True,
                    ) -> tuple[Any, Callable[[str], str], Path, Path]:
    """``_setup``'s, and hg's own ``reference`` repository beside it with the same ``hgrc``."""
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, hgrc, forked)
    reference = tmp_path / "reference"
    client.hg("init", str(reference))
    (reference / ".hg" / "hgrc").write_text(hgrc)
    return peer, url, repo, reference


def _commit(client: Client, work: Path, name: str) -> str:
    (work / name).write_text(f"{name}\n")
    client.hg(*EXTENSIONS, "commit", "-q", "-A", "-R", str(work), "-m", name)
    return client.hg(*EXTENSIONS, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout


def _pushed_topic(peer: Any, client: Client, url: Callable[[str], str], tmp_path: Path) -> tuple[Path, str, str]:
    """A clone with a public base and two drafts on topic ``feat`` pushed; the base and feat's head."""
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    base = _commit(client, work, "base")
    peer.hg(*EXTENSIONS, "push", "-q", "--publish", "-R", str(work), url("team"))
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    _commit(client, work, "f1")
    head = _commit(client, work, "f2")
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "--clear")
    peer.hg(*EXTENSIONS, "push", "-q", "-R", str(work), url("team"))
    return work, base, head


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_topic_names_its_newest_changeset_for_pull_and_clone(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``hg pull -r TOPIC`` and ``hg clone -r TOPIC`` (hg's ``lookup``) were told "unknown revision"
    where ``hg serve`` with the topic extension gives the topic's newest draft.  (hgwire's client here
    is a process of its own, hg-evolve loaded at its start, as a user runs it.)"""
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, SERVER_HGRC, forked=False)
    work, base, head = _pushed_topic(peer, client, url, tmp_path)
    # hg serve with the extension (Mercurial's own lookup, on a copy: the same names)
    assert client.hg(*EXTENSIONS, "id", "--debug", "-i", "-R", str(repo), "-r", "feat").stdout.strip() == head

    assert peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team")).stdout.strip() == head[:12]
    clone = tmp_path / "clone"
    peer.hg(*EXTENSIONS, "clone", "-q", "-U", "-r", "feat", url("team"), str(clone))
    assert client.hg(*EXTENSIONS, "log", "-R", str(clone), "-T", "{phase} {topic} {desc}\n").stdout.splitlines() == [
        "draft feat f2", "draft feat f1", "public  base"]
    late = tmp_path / "late"
    peer.hg(*EXTENSIONS, "clone", "-q", "-U", "-r", base, url("team"), str(late))
    pulled = peer.hg(*EXTENSIONS, "pull", "-r", "feat", "-R", str(late), url("team"))
    assert "added 2 changesets" in pulled.stdout
    # a bookmark (and a tag, a branch) of that name comes first, as in hg's namespaces
    client.hg("bookmark", "-R", str(repo), "-r", base, "feat")
    assert peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team")).stdout.split()[0] == base[:12]
    client.hg("bookmark", "-R", str(repo), "-d", "feat")
    # published, the changesets have no topic any more: the name is unknown, as with hg serve
    peer.hg(*EXTENSIONS, "push", "-q", "--publish", "-R", str(work), url("team"), check=False)
    gone = peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team"), check=False)
    mine = client.hg(*EXTENSIONS, "id", "-R", str(repo), "-r", "feat", check=False)
    assert gone.returncode == mine.returncode == 255
    assert "unknown revision 'feat'" in gone.stderr and "unknown revision 'feat'" in mine.stderr


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_without_the_topic_extension_a_topic_is_no_name(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """As ``hg serve`` without the extension: a topic's changesets are plain drafts, its name unknown."""
    hgrc = "[experimental]\nevolution = all\n[phases]\npublish = False\n"
    peer, url, _ = _setup(kind, make_server, client, ssh_keys, htpasswd, hgrc)
    _pushed_topic(peer, client, url, tmp_path)
    done = peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team"), check=False)
    assert done.returncode == 255 and "unknown revision 'feat'" in done.stderr


FAKE_SSH = """#!/bin/sh
# ssh HOST COMMAND: run COMMAND here, as hg serve --stdio behind a real ssh would
for last; do :; done
exec sh -c "$last"
"""


FAKE_SSH_CHG = """#!/bin/sh
# ssh HOST COMMAND: run COMMAND (hg serve --stdio) in a process forked from hg's chg server
for last; do :; done
exec {python} -S {script} {address} "$last"
"""


def _loads_only(reference: Path, extensions: tuple[str, ...]) -> bool:
    """Whether the ``reference`` repository's hgrc loads ``extensions`` and nothing else: no other
    extension, no hook (what a chg server with those loaded may run for it)."""
    text = (reference / ".hg" / "hgrc").read_text()
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parsed.read_string(text)
    except configparser.Error:
        return False
    loaded = {name: value.strip() for name, value in parsed.items("extensions")} if parsed.has_section(
        "extensions") else {}
    return "%include" not in text and not parsed.has_section("hooks") and loaded == dict.fromkeys(extensions, "")


def _reference_hg(client: Client, tmp_path: Path, reference: Path, *args: str,
                  extensions: tuple[str, ...] = ("evolve", "topic"),
                  client_extensions: tuple[str, ...] | None = None) -> Any:
    """``hg ARGS`` of hg's own client (``client_extensions`` loaded, ``extensions`` when not given) whose
    ``ssh://ref/REFERENCE`` is hg's own ``hg serve --stdio`` on ``reference`` (behind a fake ssh).  Both
    run in processes forked from chg servers (``tests.hg_chg``: the same hg without its start-up,
    twice per push or clone) when the reference loads ``extensions`` alone, as processes of their
    own otherwise."""
    hg = os.path.join(VENV_BIN, "hg")
    mine = extensions if client_extensions is None else client_extensions
    if _loads_only(reference, extensions):
        served = hg_chg.server(hg, client.env, extensions)
        fake = tmp_path / "fake-ssh-chg"
        fake.write_text(FAKE_SSH_CHG.format(python=shlex.quote(sys.executable), script=shlex.quote(hg_chg.__file__),
                                             address=shlex.quote(served.address)))
        fake.chmod(0o755)
        chg = served if mine == extensions else hg_chg.server(hg, client.env, mine)
        return chg.run(["--config", f"ui.ssh={fake}", *args], str(client.cwd), client.env)
    fake = tmp_path / "fake-ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(0o755)
    loaded = [arg for name in mine for arg in ("--config", f"extensions.{name}=")]
    return client.hg(*loaded, "--config", f"ui.ssh={fake}", *args, check=False)


def _push_to_reference(client: Client, tmp_path: Path, work: Path, reference: Path, *args: str) -> Any:
    """``hg push ARGS`` of ``work`` to hg's own ``hg serve --stdio`` on ``reference`` (hg-evolve loaded
    by its hgrc, as on a team's server)."""
    return _reference_hg(client, tmp_path, reference, "push", *args, "-R", str(work), f"ssh://ref/{reference}")


def _phases(client: Client, repo: Path) -> list[str]:
    return client.hg(*EXTENSIONS, "log", "-R", str(repo), "-T", "{phase} {topic} {desc}\n").stdout.splitlines()


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_publish_bare_branch_publishes_the_pushed_drafts_without_a_topic(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``[experimental] topic.publish-bare-branch = yes`` (heptapod's way): a pushed draft without a
    topic became public on ``hg serve`` and stayed draft on hgwire, which did not say
    ``ext-topics-publish=auto`` either, so ``experimental.auto-publish=warn`` warned of nothing."""
    hgrc = SERVER_HGRC + "[experimental]\ntopic.publish-bare-branch = yes\n"
    peer, url, repo, reference = _with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                  hgrc)
    assert "ext-topics-publish=auto" in peer.hg(*EXTENSIONS, "debugcapabilities", url("team")).stdout.split()

    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    _commit(client, work, "base")  # no topic
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    _commit(client, work, "f1")
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "--clear")
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), "null")
    _commit(client, work, "other")  # a second root, no topic
    theirs = tmp_path / "theirs"
    shutil.copytree(work, theirs)  # a copy: a clone of a publishing local repository would be public

    warn = ("--config", "experimental.auto-publish=warn")
    pushed = peer.hg(*EXTENSIONS, *warn, "push", "-f", "-R", str(work), url("team"), check=False)
    expected = _push_to_reference(client, tmp_path, theirs, reference, *warn, "-f")
    assert pushed.returncode == expected.returncode == 0, pushed.stderr + expected.stderr
    assert "2 changesets about to be published" in expected.stdout + expected.stderr
    assert "2 changesets about to be published" in pushed.stdout + pushed.stderr
    assert _phases(client, repo) == _phases(client, reference) == [
        "public  other", "draft feat f1", "public  base"]
    assert _phases(client, work) == _phases(client, theirs)

    # a later push of a topic's draft leaves it draft; a bare child of it publishes it too
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), "desc(f1)")
    _commit(client, work, "on-top")  # the working directory's topic is feat again
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "--clear")
    _commit(client, work, "bare-child")
    peer.hg(*EXTENSIONS, "push", "-q", "-R", str(work), url("team"))
    assert _phases(client, repo) == [
        "public  bare-child", "public  on-top", "public  other", "public  f1", "public  base"]


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_without_publish_bare_branch_drafts_stay_drafts(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """A non-publishing repository serving topics without the setting publishes nothing (``none``)."""
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, SERVER_HGRC)
    assert "ext-topics-publish=none" in peer.hg(*EXTENSIONS, "debugcapabilities", url("team")).stdout.split()
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    _commit(client, work, "base")
    peer.hg(*EXTENSIONS, "push", "-q", "-R", str(work), url("team"))
    assert _phases(client, repo) == ["draft  base"]


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_second_topic_on_a_branch_is_no_new_head(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """Topics on a non-publishing repository: ``hg serve`` with the extension answers ``branchmap``
    per ``BRANCH:TOPIC`` and advertises ``topics``, so a push of a second topic (or of a bare draft
    beside them) on a branch is taken without ``-f``; hgwire answered "push creates new remote
    head" as for any second head, and, once told the topics' heads, had to check a push's
    ``check:updated-heads`` against the same map."""
    peer, url, repo, reference = _with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                  SERVER_HGRC)
    assert "topics" in peer.hg(*EXTENSIONS, "debugcapabilities", url("team")).stdout.split()
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    base = _commit(client, work, "base")
    peer.hg(*EXTENSIONS, "push", "-q", "--publish", "-R", str(work), url("team"))
    _push_to_reference(client, tmp_path, work, reference, "-q")
    for name in ("ta", "tb", ""):  # two topics, then a bare draft, each a head of its own on default
        client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
        client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), *([name] if name else ["--clear"]))
        _commit(client, work, f"on-{name or 'default'}")
        theirs = tmp_path / f"theirs-{name}"
        shutil.copytree(work, theirs)
        pushed = peer.hg(*EXTENSIONS, "push", "-R", str(work), url("team"), check=False)
        expected = _push_to_reference(client, tmp_path, theirs, reference)
        assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
        assert _remote_lines(pushed) == _remote_lines(expected)
    assert _phases(client, repo) == _phases(client, reference)
    branchmap = client.hg(*EXTENSIONS, "log", "-R", str(repo), "-r", "head()", "-T", "{topic}\n").stdout.split()
    assert sorted(branchmap) == ["ta", "tb"]


def _remote_lines(done: Any) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("remote:")]
