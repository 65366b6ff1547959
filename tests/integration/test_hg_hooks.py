"""A served Mercurial repository's ``[hooks]`` for a push, over SSH and HTTP, with the real hg client:
what each hook is given, what the client sees, and that a refusal leaves the repository as it was."""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from gateway.shared_streams import SHARED
from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401 - a fixture
from tests.integration.test_hg_shared_clones import hold_generation_until
from tests.integration.test_hg_ssh import HgSsh


def _served(kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
            htpasswd: Path) -> tuple[Any, Callable[[str], str], RunningServer]:
    if kind == "ssh":
        server = make_server("fs", **ssh_server_settings(ssh_keys))
        ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
        return ssh, ssh.url, server
    server = make_server("fs", **_settings(htpasswd))
    http = HgHttp(server, client)
    return http, http.push_url, server


def _repo_with_hooks(client: Client, server: RunningServer, hooks: str) -> Path:
    repo = server.root / "hooked"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[hooks]\n" + hooks)
    return repo


_WORK_TEMPLATES: dict[int, tuple[Path, list[str]]] = {}
"""New repositories of ``count`` changesets, made once per module (tests only copy them) and kept in
the tmp_path of the test that first asked (pytest keeps it for the session)."""


def _work(client: Client, tmp_path: Path, count: int, base: Path | None = None) -> tuple[Path, list[str]]:
    """A working repository at ``tmp_path/work-hg``: ``count`` changesets, on a clone of ``base`` if given,
    and their nodes."""
    work = tmp_path / "work-hg"
    if base is None and count in _WORK_TEMPLATES:
        template, nodes = _WORK_TEMPLATES[count]
        shutil.copytree(template, work, symlinks=True)
        return work, list(nodes)
    if base is None:
        client.hg("init", str(work))
    else:
        client.hg("clone", "-q", str(base), str(work))
    first = 0 if base is None else len(client.hg("log", "-R", str(work), "-T", "x").stdout)
    for i in range(count):
        (work / f"f{i}.txt").write_text(f"{i}\n")
        client.hg("commit", "-q", "-A", "-R", str(work), "-m", f"change {i}")
    nodes = client.hg("log", "-R", str(work), "-r", f"{first}:", "-T", "{node}\n").stdout.split()
    if base is None:
        template = tmp_path / f"template-hg-{count}"
        shutil.copytree(work, template, symlinks=True)
        _WORK_TEMPLATES[count] = (template, nodes)
    return work, list(nodes)


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_push_hooks_run_as_hg_serve_runs_them(make_server: Any, client: Client, ssh_keys: SshKeys,
                                              htpasswd: Path, tmp_path: Path, kind: str) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = _repo_with_hooks(client, server, """\
prechangegroup.announce = echo "taking a push from $HG_URL ($HG_SOURCE)"
changegroup.log = echo "$HG_HOOKTYPE $HG_HOOKNAME $HG_NODE $HG_NODE_LAST $HGPLAIN" >> changegroup.log; echo done
changegroup.log:run-with-plain = 1
incoming.each = echo "$HG_NODE" >> incoming.log
changegroup.zfails = exit 3
priority.changegroup.zfails = 10
outgoing.ignored = echo "never run for a push" >> outgoing.log
""")
    work, nodes = _work(client, tmp_path, 3)
    pushed = peer.hg("push", "-R", str(work), url("hooked"))
    said = [line.removeprefix("remote: ") for line in pushed.stdout.splitlines() + pushed.stderr.splitlines()
            if line.startswith("remote: ")]
    origin = "remote:ssh:127.0.0.1" if kind == "ssh" else "remote:http:127.0.0.1:alice"
    assert said == [f"taking a push from {origin} (serve)", "adding changesets", "adding manifests",
                    "adding file changes", "added 3 changesets with 3 changes to 3 files",
                    "warning: changegroup.zfails hook exited with status 3", "done"], pushed  # priority first
    assert (repo / "changegroup.log").read_text() == f"changegroup changegroup.log {nodes[0]} {nodes[-1]} 1\n"
    assert (repo / "incoming.log").read_text().split() == nodes
    assert not (repo / "outgoing.log").exists()
    client.hg("verify", "-q", "-R", str(repo))


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_refusing_prechangegroup_hook_refuses_the_push(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                         htpasswd: Path, tmp_path: Path, kind: str) -> None:
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = _repo_with_hooks(client, server, 'prechangegroup.friday = echo "no pushes on Fridays"; exit 1\n')
    work, _ = _work(client, tmp_path, 1)
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        refused = peer.hg("push", "-R", str(work), url("hooked"), check=False)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert refused.returncode != 0
    if kind == "http":  # (over SSH the session's line comes when the connection ends, after the client)
        answers = [str(e["outcome"]) for e in logged if e.get("repo") == "hooked"
                   and e.get("log_namespace") == "gateway.hg_http" and e.get("command") == "unbundle"]
        assert answers and answers[-1].startswith("refused: ") and "prechangegroup.friday" in answers[-1], answers
    assert "remote: no pushes on Fridays" in refused.stdout + refused.stderr, refused
    # hg shows a remote abort as "remote: <why>" and "abort: push failed on remote", whatever the server
    assert "remote: prechangegroup.friday hook exited with status 1" in refused.stderr, refused
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == ""
    client.hg("verify", "-q", "-R", str(repo))


CHECK_SCRIPT = """\
out=$(HGRCPATH= "$HGBIN" log -r "$HG_NODE:$HG_NODE_LAST" -T '{desc}\\n') || { echo "cannot read them"; exit 2; }
echo "$out" | sed 's/^/checking /'
case "$out" in *WIP*) echo "WIP changesets are refused"; exit 1;; esac
"""


@pytest.mark.parametrize(("kind", "split"), [("ssh", False), ("http", False), ("ssh", True)])
def test_pretxnchangegroup_reads_the_pending_changesets_and_may_refuse_them(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str,
        split: bool) -> None:
    """As with hg serve: the hook's own ``hg log`` sees the pushed changesets (``HG_PENDING``), also
    when the changelog keeps its data in a separate ``.d`` file (``split``)."""
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = _repo_with_hooks(client, server, f"pretxnchangegroup.nowip = HGBIN={VENV_BIN}/hg sh .hg/check.sh\n")
    (repo / ".hg" / "check.sh").write_text(CHECK_SCRIPT)
    if split:  # a changeset description past the inline limit: the server's changelog gets a .d
        big = tmp_path / "big"
        client.hg("init", str(big))
        (big / "x").write_text("x\n")
        client.hg("commit", "-q", "-A", "-R", str(big), "-l", "/dev/stdin", input=b"change big\n" + os.urandom(150_000).hex().encode())
        peer.hg("push", "-q", "-R", str(big), url("hooked"))
        assert (repo / ".hg" / "store" / "00changelog.d").exists()
    work, nodes = _work(client, tmp_path, 2, base=big if split else None)
    before = client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout.split()
    pushed = peer.hg("push", "-R", str(work), url("hooked"))
    said = pushed.stdout + pushed.stderr
    assert "remote: checking change 0" in said and "remote: checking change 1" in said, pushed
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout.split() == nodes[::-1] + before
    (work / "wip.txt").write_text("wip\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "WIP stuff")
    refused = peer.hg("push", "-R", str(work), url("hooked"), check=False)
    assert refused.returncode != 0, refused
    assert "remote: WIP changesets are refused" in refused.stdout + refused.stderr, refused
    assert "pretxnchangegroup.nowip hook exited with status 1" in refused.stderr, refused
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout.split() == nodes[::-1] + before
    assert not (repo / ".hg" / "store" / "00changelog.i.a").exists()
    client.hg("verify", "-q", "-R", str(repo))


CLOSE_SCRIPT = """\
phase=$(HGRCPATH= "$HGBIN" log -r tip -T '{phase}') || exit 2
marks=$(HGRCPATH= "$HGBIN" bookmarks -T '{bookmark} ') || exit 2
echo "pending: $phase, bookmarks: $marks"
case " $marks" in *" forbidden "*) echo "the bookmark forbidden is refused"; exit 1;; esac
"""


def test_pretxnclose_sees_the_pushed_phases_and_bookmarks(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                          htpasswd: Path, tmp_path: Path) -> None:
    """``pretxnclose`` reads the whole push as it would commit: changesets, draft phases, bookmarks."""
    peer, url, server = _served("ssh", make_server, client, ssh_keys, htpasswd)
    repo = _repo_with_hooks(client, server, f"""\
pretxnclose.check = HGBIN={VENV_BIN}/hg sh .hg/close.sh
txnclose.log = echo "closed $HG_TXNNAME $HG_SOURCE" >> txnclose.log
pretxnclose-bookmark.log = echo "$HG_BOOKMARK ${{HG_OLDNODE:-none}} -> $HG_NODE" >> marks.log
""")
    with (repo / ".hg" / "hgrc").open("a") as hgrc:
        hgrc.write("[phases]\npublish = False\n")
    (repo / ".hg" / "close.sh").write_text(CLOSE_SCRIPT)
    work, _ = _work(client, tmp_path, 1)
    client.hg("bookmark", "-R", str(work), "feature")
    pushed = peer.hg("push", "-B", "feature", "-R", str(work), url("hooked"))
    assert "remote: pending: draft, bookmarks: feature" in pushed.stdout + pushed.stderr, pushed
    assert (repo / "txnclose.log").read_text() == "closed serve serve\n"
    tip = client.hg("log", "-R", str(work), "-r", "tip", "-T", "{node}").stdout
    assert (repo / "marks.log").read_text() == f"feature none -> {tip}\n"
    client.hg("bookmark", "-R", str(work), "forbidden")
    refused = peer.hg("push", "-B", "forbidden", "-R", str(work), url("hooked"), check=False)
    assert refused.returncode != 0 and "the bookmark forbidden is refused" in refused.stdout + refused.stderr
    assert "pretxnclose.check hook exited with status 1" in refused.stderr, refused
    assert client.hg("bookmarks", "-R", str(repo), "-T", "{bookmark}\n").stdout == "feature\n"
    assert client.hg("log", "-R", str(repo), "-r", "tip", "-T", "{phase}").stdout == "draft"
    for pending in ("store/00changelog.i.a", "store/phaseroots.pending", "bookmarks.pending"):
        assert not (repo / ".hg" / pending).exists()
    assert (repo / "txnclose.log").read_text() == "closed serve serve\n"  # not for the refused push
    client.hg("verify", "-q", "-R", str(repo))


@pytest.mark.parametrize("hook", ["pretxnopen.py = python:some.module.hook", "prechangegroup.py = python:some.module.hook",
                                  "pretxnchangegroup.py = python:some.module.hook"])
def test_a_gate_hgwire_cannot_run_refuses_pushes(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                 htpasswd: Path, tmp_path: Path, hook: str) -> None:
    """Skipping a check the operator set up would let through what it refuses: the push is refused."""
    peer, url, server = _served("ssh", make_server, client, ssh_keys, htpasswd)
    repo = _repo_with_hooks(client, server, hook + "\n")
    work, _ = _work(client, tmp_path, 1)
    refused = peer.hg("push", "-R", str(work), url("hooked"), check=False)
    name = hook.split(" ", 1)[0]
    assert f"remote: the repository's {name} hook cannot be run by this server" in refused.stderr, refused
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == ""
    peer.hg("clone", "-q", "-U", url("hooked"), str(tmp_path / "still-readable"))


def test_web_access_lists_of_the_hgrc_narrow_http_access(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                         htpasswd: Path, tmp_path: Path) -> None:
    """hgweb's ``[web] allow-push``/``deny_push``/``allow_read``/``deny_read``, where a repository sets them."""
    peer, push_url, server = _served("http", make_server, client, ssh_keys, htpasswd)
    repo = server.root / "acl"
    client.hg("init", str(repo))
    hgrc = repo / ".hg" / "hgrc"
    work, _ = _work(client, tmp_path, 1)
    anonymous = peer.url("acl")

    hgrc.write_text("[web]\nallow-push = bob, carol\n")
    refused = peer.hg("push", "-R", str(work), push_url("acl"), check=False)
    assert refused.returncode != 0 and "push not authorized" in refused.stderr, refused
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == ""

    hgrc.write_text('[web]\nallow_push = "alice" bob\ndeny_read = mallory\n')  # hg's list: quotes are not names
    peer.hg("push", "-R", str(work), push_url("acl"))
    denied = peer.hg("clone", "-U", anonymous, str(tmp_path / "anonymous"), check=False)
    assert denied.returncode != 0 and "authorization" in denied.stderr, denied  # 401: who are you?
    peer.hg("clone", "-q", "-U", push_url("acl"), str(tmp_path / "alice"))

    hgrc.write_text("[web]\nallow_read = bob\n")
    refused_read = peer.hg("clone", "-U", push_url("acl"), str(tmp_path / "not-alice"), check=False)
    assert refused_read.returncode != 0 and "read not authorized" in refused_read.stderr, refused_read
    hgrc.write_text("[web]\nallow_read = *\ndeny_push = *\n")
    peer.hg("clone", "-q", "-U", anonymous, str(tmp_path / "anyone"))
    (work / "more.txt").write_text("more\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "more")
    no_push = peer.hg("push", "-R", str(work), push_url("acl"), check=False)
    assert no_push.returncode != 0 and "push not authorized" in no_push.stderr, no_push
    client.hg("verify", "-q", "-R", str(repo))


def test_pushes_waiting_on_hooks_do_not_hold_the_workers(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                         htpasswd: Path, tmp_path: Path) -> None:
    """More hg pushes wait in a slow changegroup hook than the server has workers; a clone still works."""
    from gateway import threads

    peer, url, server = _served("ssh", make_server, client, ssh_keys, htpasswd)
    flag, waiting = tmp_path / "go", tmp_path / "waiting"
    waiting.mkdir()
    count = threads.DEFAULT_POOL_SIZE + 2
    hook = (f'changegroup.wait = touch "{waiting}/$(basename "$PWD")"; i=0; '
            f'while [ ! -e "{flag}" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n')
    for i in range(count):
        client.hg("init", str(server.root / f"r{i}"))
        (server.root / f"r{i}" / ".hg" / "hgrc").write_text("[hooks]\n" + hook)
    client.hg("init", str(server.root / "other"))
    work, _ = _work(client, tmp_path, 1)
    copies = []  # hg locks the repository it pushes from: one source each (copies: no clone process each)
    for i in range(count):
        copies.append(tmp_path / f"source-{i}")
        shutil.copytree(work, copies[-1], symlinks=True)
    hg = os.path.join(VENV_BIN, "hg")
    pushes = [subprocess.Popen([hg, "--config", f"ui.ssh={peer.ssh}", "push", "-q", "-R", str(copies[i]),
                                url(f"r{i}")], env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for i in range(count)]
    try:
        deadline = time.monotonic() + 30
        while len(list(waiting.iterdir())) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(waiting.iterdir())) == count  # every push is in its hook
        peer.hg("clone", "-q", "-U", url("other"), str(tmp_path / "meanwhile"), timeout=20)
    finally:
        flag.touch()
        for push in pushes:
            push.communicate(timeout=30)
    assert all(push.returncode == 0 for push in pushes)


# --- pulls and clones: preoutgoing and outgoing ------------------------------------------------

FAKE_SSH = """\
for arg; do last=$arg; done
cd "$REAL_ROOT" && exec sh -c "$last"
"""
"""An ``ssh`` for the reference server: runs the remote command (``hg -R NAME serve --stdio``) here."""


@contextlib.contextmanager
def _real_hg_serve(client: Client, kind: str, repo: Path, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A peer and URL of Mercurial's own server (``hg serve --stdio`` or ``hg serve``) for ``repo``."""
    if kind == "ssh":
        script = tmp_path / "fake-ssh"
        script.write_text(FAKE_SSH)
        peer = HgSsh(None, Client({**client.env, "REAL_ROOT": str(repo.parent)}, client.cwd),  # type: ignore[arg-type]
                     f"sh {script}")
        yield peer, f"ssh://reference/{repo.name}"
        return
    served = subprocess.Popen([os.path.join(VENV_BIN, "hg"), "serve", "-R", str(repo), "-a", "127.0.0.1", "-p", "0"],
                              env=client.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert served.stdout is not None
        port = served.stdout.readline().rsplit(":", 1)[1].rstrip(")\n")  # "listening at ... (bound to H:P)"
        yield HgHttp(None, client), f"http://127.0.0.1:{port}/"  # type: ignore[arg-type]
    finally:
        served.terminate()
        served.wait(timeout=10)


_SERVED_TEMPLATE: list[Path] = []
"""``hg clone -U`` of the two-changeset work repository, kept as ``_WORK_TEMPLATES`` keeps it."""


def _served_with_reference(kind: str, make_server: Callable[..., RunningServer], client: Client,
                           ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, hooks: str, **settings: Any
                           ) -> tuple[Any, str, Path, Path]:
    """hgwire serving ``hooked`` (two changesets, these ``hooks``), its peer and URL, the repository,
    and a copy of it for Mercurial's own server."""
    if kind == "ssh":
        server = make_server("fs", **ssh_server_settings(ssh_keys), **settings)
        peer: Any = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    else:
        server = make_server("fs", **_settings(htpasswd), **settings)
        peer = HgHttp(server, client)
    work, _ = _work(client, tmp_path, 2)  # (the tests pull into it)
    repo = server.root / "hooked"
    if not _SERVED_TEMPLATE:  # a clone of it, made once per module (an hg process): the tests copy it
        template = tmp_path / "template-served"
        client.hg("clone", "-q", "-U", str(work), str(template))
        _SERVED_TEMPLATE.append(template)
    shutil.copytree(_SERVED_TEMPLATE[0], repo, symlinks=True)
    (repo / ".hg" / "hgrc").write_text("[hooks]\n" + hooks)
    reference = tmp_path / "reference" / "hooked"
    shutil.copytree(repo, reference)
    return peer, peer.url("hooked"), repo, reference


def _pushable_with_reference(kind: str, make_server: Callable[..., RunningServer], client: Client,
                             ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, hooks: str, settings: str = ""
                             ) -> tuple[Any, str, Path, Path]:
    """As ``_served_with_reference``, each hgrc ``settings`` and ``hooks``, and hg serve taking pushes
    over plain HTTP from anyone (``[web]``); the peer, its push URL, the repository and its copy."""
    peer, url, repo, reference = _served_with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                        hooks)
    for target in (repo, reference):
        (target / ".hg" / "hgrc").write_text(f"{settings}[web]\npush_ssl = False\nallow-push = *\n[hooks]\n{hooks}")
    return peer, peer.push_url("hooked") if kind == "http" else url, repo, reference


def _seen(result: subprocess.CompletedProcess[str]) -> tuple[int, list[str], list[str], list[str]]:
    """What the client printed: its status, the server's ``remote:`` lines, its own lines on standard
    output (those naming the URL left out) and its standard error."""
    out = result.stdout.splitlines()
    return (result.returncode, [line for line in out if line.startswith("remote: ")],
            [line for line in out if not line.startswith("remote: ") and "://" not in line],
            result.stderr.splitlines())


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_failing_preoutgoing_hook_refuses_clones_and_pulls_as_hg_serve_does(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    peer, url, repo, reference = _served_with_reference(
        kind, make_server, client, ssh_keys, htpasswd, tmp_path,
        'preoutgoing.gate = echo "no pulls on Fridays ($HG_SOURCE)"; exit 1\n')
    empty = tmp_path / "empty"
    client.hg("init", str(empty))
    clone = peer.hg("clone", "-U", url, str(tmp_path / "refused"), check=False)
    pull = peer.hg("pull", "-R", str(empty), url, check=False)
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        assert _seen(clone) == _seen(real.hg("clone", "-U", real_url, str(tmp_path / "hg-refused"), check=False))
        assert _seen(pull) == _seen(real.hg("pull", "-R", str(empty), real_url, check=False))
    for refused in (clone, pull):
        assert refused.returncode == 255, refused
        assert refused.stderr == ("remote: abort: preoutgoing.gate hook exited with status 1\n"
                                  "abort: pull failed on remote\n"), refused
        # over HTTP hg serve has no channel for it (hgwire logs it)
        assert ("remote: no pulls on Fridays (serve)" in refused.stdout) == (kind == "ssh"), refused
    assert not (tmp_path / "refused").exists()
    assert client.hg("log", "-R", str(empty), "-T", "{node}\n").stdout == ""

    (repo / ".hg" / "hgrc").write_text("[hooks]\npreoutgoing.gate = exit 0\n")
    peer.hg("clone", "-q", "-U", url, str(tmp_path / "let-through"))
    peer.hg("pull", "-q", "-R", str(empty), url)
    assert len(client.hg("log", "-R", str(empty), "-T", "{node}\n").stdout.split()) == 2


HOOK_ENV = "env | grep -E '^HG_|^HGPLAIN=' | sort"
"""What a hook is told (hg serve also sets ``HG``, the path of its own ``hg``: hgwire has none)."""


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_outgoing_hooks_are_told_what_hg_serve_tells_them(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    """``preoutgoing`` and ``outgoing`` get hg's variables (``HG_NODE`` the first changeset sent,
    ``HG_SOURCE=serve``; no ``HG_URL``, no transaction), and a failing ``outgoing`` is a warning."""
    peer, url, repo, reference = _served_with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path, f"""\
preoutgoing.env = {HOOK_ENV} >> pre.env; echo "preoutgoing says hi"
outgoing.env = {HOOK_ENV} >> out.env
outgoing.fails = echo "outgoing says hi"; exit 4
""")
    logged: list[str] = []
    observer = lambda event: logged.append(formatEvent(event))
    globalLogPublisher.addObserver(observer)
    try:
        clone = peer.hg("clone", "-U", url, str(tmp_path / "ours"))
    finally:
        globalLogPublisher.removeObserver(observer)
    if kind == "http":  # hg has no channel for it over HTTP: hgwire logs it
        said = "\n".join(logged)
        assert "preoutgoing says hi" in said and "warning: outgoing.fails hook exited with status 4" in said
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        theirs = real.hg("clone", "-U", real_url, str(tmp_path / "theirs"))
    for name in ("pre.env", "out.env"):
        assert (repo / name).read_text() == (reference / name).read_text(), name
    first = client.hg("log", "-R", str(repo), "-r", "0", "-T", "{node}").stdout
    assert (repo / "out.env").read_text().splitlines() == [
        "HGPLAIN=1", "HG_HOOKNAME=outgoing.env", "HG_HOOKTYPE=outgoing", f"HG_NODE={first}", "HG_SOURCE=serve"]
    assert _seen(clone) == _seen(theirs)  # where the remote lines fall among the others may differ
    if kind == "ssh":
        assert _seen(clone)[1] == ["remote: preoutgoing says hi", "remote: outgoing says hi",
                                   "remote: warning: outgoing.fails hook exited with status 4"], clone

    work = tmp_path / "work-hg"
    (work / "more.txt").write_text("more\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "more")
    client.hg("push", "-q", "-R", str(work), str(repo))
    peer.hg("pull", "-q", "-R", str(tmp_path / "ours"), url)
    tip = client.hg("log", "-R", str(repo), "-r", "tip", "-T", "{node}").stdout
    assert (repo / "out.env").read_text().splitlines()[-2] == f"HG_NODE={tip}"


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_no_op_pulls_and_stream_clones_run_no_pull_hook(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    """hg runs them only around a changegroup: nothing to send, or a copy of the store, runs neither."""
    hooks = 'preoutgoing.log = echo "pre" >> hooks.log\noutgoing.log = echo "out $HG_NODE" >> hooks.log\n'
    peer, url, repo, reference = _served_with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                        hooks)
    peer.hg("clone", "-q", "-U", "--stream", url, str(tmp_path / "streamed"))
    peer.hg("pull", "-q", "-R", str(tmp_path / "streamed"), url)
    peer.hg("pull", "-q", "-R", str(tmp_path / "work-hg"), url)
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        real.hg("clone", "-q", "-U", "--stream", real_url, str(tmp_path / "hg-streamed"))
        real.hg("pull", "-q", "-R", str(tmp_path / "hg-streamed"), real_url)
    assert not (reference / "hooks.log").exists()
    assert not (repo / "hooks.log").exists()
    assert client.hg("log", "-R", str(tmp_path / "streamed"), "-T", "{node}\n").stdout.count("\n") == 2
    work = tmp_path / "work-hg"  # and a pull that gets something runs both
    (work / "more.txt").write_text("more\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "more")
    client.hg("push", "-q", "-R", str(work), str(repo))
    peer.hg("pull", "-q", "-R", str(tmp_path / "streamed"), url)
    tip = client.hg("log", "-R", str(repo), "-r", "tip", "-T", "{node}").stdout
    assert (repo / "hooks.log").read_text() == f"pre\nout {tip}\n"


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_pull_hooks_run_for_each_clone_of_a_shared_or_kept_answer(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical concurrent clones share one generation and ``[clone_cache]`` keeps it for the next:
    the hooks still run once per clone."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[clone_cache]\nmax_bytes = 67108864\nmax_age = 600\n")
    hooks = 'preoutgoing.log = echo "pre" >> hooks.log\noutgoing.log = echo "out $HG_NODE" >> hooks.log\n'
    try:
        peer, url, repo, _ = _served_with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                    hooks, config_file=str(policy))
        before = (SHARED.started, SHARED.joined, SHARED.reused)
        dests = [tmp_path / f"clone-{i}" for i in range(3)]
        with monkeypatch.context() as patch, ThreadPoolExecutor(len(dests)) as clients:
            hold_generation_until(patch, len(dests) - 1)
            list(clients.map(lambda dest: peer.hg("clone", "-q", "-U", url, str(dest), timeout=90), dests))
        peer.hg("clone", "-q", "-U", url, str(tmp_path / "later"))
        assert (SHARED.started - before[0], SHARED.joined - before[1], SHARED.reused - before[2]) == (1, 2, 1)
    finally:
        SHARED.forget_kept()
    first = client.hg("log", "-R", str(repo), "-r", "0", "-T", "{node}").stdout
    assert sorted((repo / "hooks.log").read_text().splitlines()) == ["out " + first] * 4 + ["pre"] * 4


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_python_preoutgoing_hook_refuses_pulls(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                 htpasswd: Path, tmp_path: Path, kind: str) -> None:
    """hgwire cannot run it, and skipping the check would let through what it refuses."""
    peer, url, repo, _ = _served_with_reference(kind, make_server, client, ssh_keys, htpasswd, tmp_path,
                                                "preoutgoing.py = python:some.module.hook\n")
    refused = peer.hg("clone", "-U", url, str(tmp_path / "refused"), check=False)
    assert refused.returncode == 255, refused
    assert refused.stderr == ("remote: abort: the repository's preoutgoing.py hook cannot be run by this server, "
                              "so pulls are refused; ask the server's operator\n"
                              "abort: pull failed on remote\n"), refused
    (repo / ".hg" / "hgrc").write_text("[hooks]\nprelistkeys.py = python:some.module.hook\n")
    refused = peer.hg("clone", "-U", url, str(tmp_path / "refused"), check=False)
    assert refused.stderr == ("remote: abort: the repository's prelistkeys.py hook cannot be run by this server, "
                              "so clones, pulls and pushes are refused; ask the server's operator\n"
                              "abort: pull failed on remote\n"), refused
    (repo / ".hg" / "hgrc").write_text("[hooks]\noutgoing.py = python:some.module.hook\n"
                                       "listkeys.py = python:some.module.hook\n")
    peer.hg("clone", "-q", "-U", url, str(tmp_path / "not-a-gate"))  # not run, and not a check


PUSH_HOOKS = ("pretxnopen", "prechangegroup", "pretxnchangegroup", "prepushkey", "pretxnclose-bookmark", "pretxnclose-phase",
              "pretxnclose", "changegroup", "incoming", "txnclose", "txnclose-bookmark", "txnclose-phase", "pushkey")
VARYING = ("HG_TXNID", "HG_PENDING", "HG_URL")
"""Told differently by each server run: a random transaction id, the pending root, the client's address."""


@pytest.mark.parametrize(("kind", "publish"), [("ssh", False), ("http", False), ("ssh", True)])
def test_push_hooks_are_told_what_hg_serve_tells_them(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str,
        publish: bool) -> None:
    """The same push (changesets, a bookmark, phases) to hgwire and to Mercurial's own server on a
    copy: every push hook gets the same variables, but for those ``VARYING`` ones, which only must be set."""
    hooks = "".join(f"{name}.env = (echo '-- {name}'; {HOOK_ENV}) >> hooks.env\n" for name in PUSH_HOOKS)
    hooks += "txnclose.env:run-with-plain = false\n"  # HGPLAIN set, but empty
    peer, push_url, repo, reference = _pushable_with_reference(kind, make_server, client, ssh_keys, htpasswd,
                                                               tmp_path, hooks, f"[phases]\npublish = {publish}\n")
    work = tmp_path / "work-hg"
    for i in range(2):
        (work / f"push{i}.txt").write_text(f"{i}\n")
        client.hg("commit", "-q", "-A", "-R", str(work), "-m", f"push {i}")
    client.hg("bookmark", "-R", str(work), "-r", "tip", "feature")
    peer.hg("push", "-q", "-B", "feature", "-R", str(work), push_url)
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        real.hg("push", "-q", "-B", "feature", "-R", str(work), real_url)

    def told(path: Path) -> list[str]:
        lines = (path / "hooks.env").read_text().splitlines()
        return [line.split("=", 1)[0] + "=*" if line.split("=", 1)[0] in VARYING else line for line in lines]

    assert told(repo) == told(reference), "\n".join(difflib.unified_diff(told(repo), told(reference), lineterm=""))


REFUSING_GATES = {
    "pretxnopen": ('pretxnopen.closed = echo "pushes are closed for $HG_TXNNAME"; exit 1\n', [],
                   "remote: pushes are closed for serve"),
    "prepushkey": ('prepushkey.lock = if [ "$HG_NAMESPACE/$HG_KEY" = bookmarks/locked ]; then '
                   'echo "bookmark $HG_KEY is locked"; exit 1; fi\n', ["-B", "locked"],
                   "remote: bookmark locked is locked"),
    "pretxnclose-phase": ('pretxnclose-phase.nopublish = if [ "$HG_PHASE" = public ]; then '
                          'echo "no publishing of $HG_NODE"; exit 1; fi\n', [], "remote: no publishing of"),
}
"""A gate of each kind hgwire runs mid-push: its hgrc line, the push's arguments, what it says."""


@pytest.mark.parametrize("kind", ["ssh", "http"])
@pytest.mark.parametrize("gate", sorted(REFUSING_GATES))
def test_a_refusing_gate_refuses_the_push_as_hg_serve_does(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str,
        gate: str) -> None:
    """``pretxnopen`` on every push, ``prepushkey`` on a pushed bookmark, ``pretxnclose-phase`` on each
    changeset a publishing repository would publish: the same error as from hg serve, and nothing lands."""
    hooks, push_args, said = REFUSING_GATES[gate]
    peer, push_url, repo, reference = _pushable_with_reference(kind, make_server, client, ssh_keys, htpasswd,
                                                               tmp_path, hooks)
    work = tmp_path / "work-hg"
    (work / "new.txt").write_text("x\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "refused")
    client.hg("bookmark", "-R", str(work), "-r", "tip", "locked")
    before = client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout
    ours = peer.hg("push", *push_args, "-R", str(work), push_url, check=False)
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        theirs = real.hg("push", *push_args, "-R", str(work), real_url, check=False)
    assert ours.returncode == theirs.returncode != 0, (ours, theirs)
    assert said in ours.stdout + ours.stderr, ours
    assert ours.stderr == theirs.stderr, (ours, theirs)  # hg's refusal
    # and before it, what the server said: "adding ...", the hook's words, "transaction abort!"...
    told, their_told = ours.stdout.splitlines()[1:], theirs.stdout.splitlines()[1:]  # past "pushing to"
    if gate == "pretxnopen" and kind == "http":  # hg serve loses a pretxnopen hook's words over HTTP
        their_told.append(said)
    assert told == their_told, (ours, theirs)
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == before  # nothing landed
    assert "locked" not in client.hg("bookmarks", "-R", str(repo)).stdout
    if gate == "prepushkey":  # another bookmark goes through
        client.hg("bookmark", "-R", str(work), "-r", "tip", "free")
        peer.hg("push", "-q", "-B", "free", "-R", str(work), push_url)
        assert "free" in client.hg("bookmarks", "-R", str(repo)).stdout
    client.hg("verify", "-q", "-R", str(repo))


# --- listing keys: prelistkeys and listkeys ---------------------------------------------------

LISTKEYS_HOOKS = (f"prelistkeys.env = ({HOOK_ENV}; echo) >> listed.env\n"
                  f"listkeys.env = ({HOOK_ENV}; echo) >> listed.env\n")


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_listkeys_hooks_are_told_what_hg_serve_tells_them(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    """A clone, a pull with nothing new, a push with a bookmark and a pull of it list namespaces
    (``localrepo.listkeys``):
    the same hooks run, in the same order, told the same (``HG_NAMESPACE``, and ``HG_VALUES`` after)."""
    peer, push_url, repo, reference = _pushable_with_reference(kind, make_server, client, ssh_keys, htpasswd,
                                                               tmp_path, LISTKEYS_HOOKS)
    url = peer.url("hooked")
    work = tmp_path / "work-hg"
    (work / "new.txt").write_text("new\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "new")
    client.hg("bookmark", "-R", str(work), "-r", "tip", "feature")
    steps: list[tuple[str, Callable[[Any, str, str], Any]]] = [
        ("clone", lambda p, u, label: p.hg("clone", "-q", "-U", u, str(tmp_path / f"clone-{label}"))),
        ("pull", lambda p, u, label: p.hg("pull", "-q", "-R", str(tmp_path / f"clone-{label}"), u)),
        ("push", lambda p, u, label: p.hg("push", "-q", "-B", "feature", "-R", str(work), u)),
        ("pull", lambda p, u, label: p.hg("pull", "-q", "-R", str(tmp_path / f"clone-{label}"), u)),
    ]
    for name, step in steps:
        step(peer, push_url if name == "push" else url, "ours")
    ours = (repo / "listed.env").read_text().split("\n\n")
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        for _, step in steps:
            step(real, real_url, "theirs")
    theirs = (reference / "listed.env").read_text().split("\n\n")
    assert ours == theirs, "\n".join(difflib.unified_diff(ours, theirs, lineterm=""))
    namespaces = [line for told in ours for line in told.splitlines() if line.startswith("HG_NAMESPACE=")]
    assert {"HG_NAMESPACE=bookmarks", "HG_NAMESPACE=phases"} <= set(namespaces), ours
    assert any("HG_VALUES={'feature': '" in told for told in ours), ours  # the pushed bookmark, pulled


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_failing_prelistkeys_hook_refuses_as_hg_serve_does(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    """Refusing ``bookmarks`` refuses clones (bundle2's ``error:abort``, as from hg serve); refusing
    ``phases`` refuses a push at its discovery: hg serve over SSH ends the session with hg's abort (as
    hgwire does); over HTTP it fails with a 500, where hgwire gives hg's sentence."""
    gate = ('prelistkeys.gate = if [ "$HG_NAMESPACE" = "$REFUSED" ]; then '
            'echo "no $HG_NAMESPACE for you"; exit 1; fi\n')
    peer, push_url, repo, reference = _pushable_with_reference(kind, make_server, client, ssh_keys, htpasswd,
                                                               tmp_path, gate.replace("$REFUSED", "bookmarks"))
    url = peer.url("hooked")
    clone = peer.hg("clone", "-U", url, str(tmp_path / "refused"), check=False)
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        assert _seen(clone) == _seen(real.hg("clone", "-U", real_url, str(tmp_path / "hg-refused"), check=False))
    assert clone.returncode == 255, clone
    assert clone.stderr == ("remote: abort: prelistkeys.gate hook exited with status 1\n"
                            "abort: pull failed on remote\n"), clone
    assert ("remote: no bookmarks for you" in clone.stdout) == (kind == "ssh"), clone
    assert not (tmp_path / "refused").exists()

    for target in (repo, reference):
        hgrc = target / ".hg" / "hgrc"
        hgrc.write_text(hgrc.read_text().replace('"bookmarks"; then', '"phases"; then'))
    work = tmp_path / "work-hg"
    (work / "new.txt").write_text("new\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "new")
    before = client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout
    pushed = peer.hg("push", "-R", str(work), push_url, check=False)
    assert pushed.returncode == 255, pushed
    assert "prelistkeys.gate hook exited with status 1" in pushed.stdout + pushed.stderr, pushed
    assert client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout == before  # nothing landed
    if kind == "ssh":
        with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
            theirs = real.hg("push", "-R", str(work), real_url, check=False)
        assert _seen(pushed) == _seen(theirs), (pushed, theirs)
    else:
        assert pushed.stderr == "abort: remote error:\nprelistkeys.gate hook exited with status 1\n", pushed


def test_push_hooks_of_an_amend_are_told_what_hg_serve_tells_them(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    """An amended changeset pushed with its obsolescence marker: the hooks after the marker are told
    ``HG_NEW_OBSMARKERS``, as by hg's server, and everything else as for any push."""
    evolve = ("--config", "experimental.evolution=all")
    hooks = "".join(f"{name}.env = (echo '-- {name}'; {HOOK_ENV}) >> hooks.env\n" for name in PUSH_HOOKS)
    peer, url, server = _served("ssh", make_server, client, ssh_keys, htpasswd)
    repo = server.root / "evo"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[phases]\npublish = False\n[experimental]\nevolution = all\n")
    reference = tmp_path / "reference" / "evo"
    shutil.copytree(repo, reference)
    work = tmp_path / "work-evo"
    peer.hg(*evolve, "clone", "-q", url("evo"), str(work))
    for name in ("base", "a"):
        (work / name).write_text(f"{name}\n")
        client.hg(*evolve, "commit", "-q", "-A", "-R", str(work), "-m", name)
    with _real_hg_serve(client, "ssh", reference, tmp_path) as (real, real_url):
        for peer_of, target in ((peer, url("evo")), (real, real_url)):
            peer_of.hg(*evolve, "push", "-q", "-R", str(work), target)
        (work / "a").write_text("a again\n")
        client.hg(*evolve, "commit", "-q", "--amend", "-R", str(work), "-m", "a amended")
        for served in (repo, reference):
            with (served / ".hg" / "hgrc").open("a") as f:
                f.write("[hooks]\n" + hooks)
        for peer_of, target in ((peer, url("evo")), (real, real_url)):
            peer_of.hg(*evolve, "push", "-q", "-R", str(work), target)

    def told(path: Path) -> list[str]:
        lines = (path / "hooks.env").read_text().splitlines()
        return [line.split("=", 1)[0] + "=*" if line.split("=", 1)[0] in VARYING else line for line in lines]

    assert "HG_NEW_OBSMARKERS=1" in told(reference)
    assert told(repo) == told(reference), "\n".join(difflib.unified_diff(told(repo), told(reference), lineterm=""))


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_what_a_push_s_hooks_say_comes_where_hg_serve_puts_it(
        make_server: Any, client: Client, ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path, kind: str) -> None:
    """A push that lands, with a hook of each stage writing a line (one beyond ASCII): hg serve says
    ``added N changesets`` once its transaction has closed, after what ``pretxnchangegroup`` and
    ``pretxnclose`` wrote and before ``txnclose``, ``changegroup`` and ``incoming``; hgwire said it
    before them all."""
    hooks = "".join(f"{name}.say = echo '{name} dit: été ✓'\n" for name in
                    ("prechangegroup", "pretxnchangegroup", "pretxnclose", "txnclose", "changegroup", "incoming"))
    peer, push_url, _repo, reference = _pushable_with_reference(kind, make_server, client, ssh_keys, htpasswd,
                                                                tmp_path, hooks)
    work = tmp_path / "work-hg"
    (work / "said.txt").write_text("x\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "said")
    ours = peer.hg("push", "-R", str(work), push_url)
    with _real_hg_serve(client, kind, reference, tmp_path) as (real, real_url):
        theirs = real.hg("push", "-R", str(work), real_url)
    assert _seen(ours)[1] == _seen(theirs)[1], (ours.stdout, theirs.stdout)
    assert "remote: txnclose dit: été ✓" in ours.stdout
