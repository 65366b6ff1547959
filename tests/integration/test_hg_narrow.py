"""Narrow clones (hg's ``narrow`` extension on the client) over HTTP and SSH, side by side with
``hg serve`` running the extension on the same repository: what a narrow clone, a pull, a widening
(``hg tracked --addinclude``) and a push from a narrow clone leave in each repository."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from backends.interfaces import Kind
from tests.conftest import (
    LOOPBACK,
    Client,
    RunningServer,
    SshKeys,
    client_environment,
    ssh_server_settings,
    start_server,
    stop_server,
)
from tests.integration.test_hg_archive import _hg_serve

PASSWORD = "narrow pw"
NARROW = "--config=extensions.narrow="


@pytest.fixture(scope="module")
def narrow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a client with the narrow extension on (every command in a narrow clone
    needs it: the clone's requirements name it); one for the module, so that its local commands
    (``debugindex``, ``commit``...) share one hg command server (``tests.hg_command_server``)."""
    rc = tmp_path_factory.mktemp("narrow") / "narrow.rc"
    rc.write_text("[extensions]\nnarrow =\n")
    return {"HGRCPATH": str(rc)}


def _narrow(client: Client, env: dict[str, str]) -> Client:
    """``client`` with ``env`` its own: its local hg commands run in a command server, as ``client``'s
    do (one given ``env=`` runs each as its own process: over forty of them a test, for ``_store``)."""
    return Client({**client.env, **env}, client.cwd)


@pytest.fixture
def served(make_server: Callable[..., RunningServer], tmp_path: Path, ssh_keys: SshKeys) -> RunningServer:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    return make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True,
                       **ssh_server_settings(ssh_keys))


def _write(repo: Path, files: dict[str, str]) -> None:
    for path, content in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def _history(client: Client, repo: Path) -> None:
    """Files at the root and in nested directories, edited over a few changesets, a branch and a
    merge, a file moved from one directory into another, and a directory named like a file's prefix."""
    client.hg("init", str(repo))
    _write(repo, {"top": "1\n", "a/x": "1\n", "a/b/y": "1\n", "a/b/c/w": "1\n", "c/z": "1\n", "ab/q": "1\n"})
    client.hg("commit", "-q", "-A", "-R", str(repo), "-m", "one")
    _write(repo, {"a/x": "1\n2\n", "c/z": "1\n2\n"})
    client.hg("commit", "-q", "-R", str(repo), "-m", "two")
    client.hg("branch", "-q", "-R", str(repo), "side")
    _write(repo, {"a/b/y": "1\nside\n", "top": "side\n"})
    client.hg("commit", "-q", "-R", str(repo), "-m", "side")
    client.hg("update", "-q", "-R", str(repo), "default")
    _write(repo, {"a/b/c/w": "1\n3\n"})
    client.hg("commit", "-q", "-R", str(repo), "-m", "three")
    client.hg("merge", "-q", "-R", str(repo), "side")
    client.hg("commit", "-q", "-R", str(repo), "-m", "merge")
    client.hg("move", "-q", "-R", str(repo), str(repo / "c/z"), str(repo / "a/moved"))
    client.hg("commit", "-q", "-R", str(repo), "-m", "move c/z into a")
    client.hg("bookmark", "-q", "-R", str(repo), "main")


def _store(client: Client, repo: Path, env: dict[str, str]) -> dict[str, str]:
    """What a clone holds, by revlog: the changelog's and manifest's index, each file's
    (``hg debugindex``: nodes, parents and the changesets they link to), and its narrow spec."""
    def hg(*args: str) -> str:
        return _narrow(client, env).hg("-R", str(repo), *args).stdout

    held = {"changelog": hg("debugindex", "-c"), "manifest": hg("debugindex", "-m"),
            "tracked": hg("tracked"), "bookmarks": hg("bookmarks", "-T", "{bookmark} {node}\n")}
    data = repo / ".hg" / "store" / "data"
    for index in sorted(data.rglob("*.i")) if data.exists() else []:
        path = index.relative_to(data).as_posix()[:-2]
        held[path] = hg("debugindex", path)
    return held


@pytest.fixture(scope="module")
def shared(reactor: Any, tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshKeys) -> Iterator[tuple[RunningServer, int]]:
    """One server and one ``hg serve`` (with the narrow extension) of ``_history``'s ``proj`` for
    the tests that only read it (the clones of each narrow spec, the refused stream clone): the
    history made and the reference started once for the module, not once a test."""
    tmp_path = tmp_path_factory.mktemp("narrow-shared")
    server = start_server(reactor, "fs", tmp_path / "root", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    try:
        client = Client(client_environment(tmp_path), tmp_path)
        _history(client, server.root / "proj")
        with _hg_serve(client, server.root / "proj", NARROW) as port:
            yield server, port
    finally:
        stop_server(reactor, server)


def _clone(client: Client, env: dict[str, str], url: str, dest: Path, patterns: list[str], *extra: str) -> None:
    _narrow(client, env).hg("clone", "-q", "-U", "--narrow", *patterns, *extra, url, str(dest))


SPECS = [
    pytest.param(["--include", "a", "--exclude", "a/b"], id="directory-without-a-subdirectory"),
    pytest.param(["--include", "a", "--include", "a/b/c", "--exclude", "a/b"], id="nested-include"),
    pytest.param(["--include", "rootfilesin:", "--include", "a/b/c"], id="root-files-and-a-directory"),
    pytest.param(["--include", "ab"], id="prefix-of-another-directory"),
    pytest.param(["--include", "c"], id="directory-a-file-moved-out-of"),
]


@pytest.mark.parametrize("patterns", SPECS)
def test_a_narrow_clone_holds_what_hg_serve_sends(shared: tuple[RunningServer, int], client: Client,
                                                  narrow_env: dict[str, str], ssh_keys: SshKeys, tmp_path: Path,
                                                  patterns: list[str]) -> None:
    """The same changesets and manifests as a full clone, and only the files the patterns take,
    with the same revisions and links as from ``hg serve`` with the narrow extension; over HTTP
    and SSH; ``hg verify`` passes."""
    served, port = shared
    ssh = ("--ssh", ssh_keys.command(served.port("ssh")))
    _clone(client, narrow_env, served.url("http", "proj"), tmp_path / "http", patterns)
    _clone(client, narrow_env, f"ssh://alice@127.0.0.1:{served.port('ssh')}/proj", tmp_path / "ssh", patterns, *ssh)
    _clone(client, narrow_env, f"http://127.0.0.1:{port}/", tmp_path / "reference", patterns)
    reference = _store(client, tmp_path / "reference", narrow_env)
    assert any(path not in {"changelog", "manifest", "tracked", "bookmarks"} for path in reference)
    assert "a/b/y" not in reference
    for ours in ("http", "ssh"):
        assert _store(client, tmp_path / ours, narrow_env) == reference, ours
        _narrow(client, narrow_env).hg("verify", "-q", "-R", str(tmp_path / ours))


def test_pull_widen_and_push_from_a_narrow_clone(served: RunningServer, client: Client, narrow_env: dict[str, str],
                                                 ssh_keys: SshKeys, tmp_path: Path) -> None:
    """A pull brings new changesets with only the narrow files; ``hg tracked --addinclude`` fetches
    the history of the files it adds (as from ``hg serve``); a commit in the narrow clone pushes
    (HTTP and SSH), the server's repository verifies and a full clone has every file."""
    repo = served.root / "proj"
    _history(client, repo)
    http, ssh_url = served.url("http", "proj"), f"ssh://alice@127.0.0.1:{served.port('ssh')}/proj"
    ssh = ("--ssh", ssh_keys.command(served.port("ssh")))
    with _hg_serve(client, repo, NARROW) as port:
        reference_url = f"http://127.0.0.1:{port}/"
        for name, url in (("ours", http), ("reference", reference_url)):
            _clone(client, narrow_env, url, tmp_path / name, ["--include", "a", "--exclude", "a/b"])
        full = tmp_path / "full"
        client.hg("clone", "-q", str(repo), str(full))
        _write(full, {"a/x": "pulled\n", "a/b/y": "not for a narrow clone\n", "c/new": "new\n"})
        client.hg("commit", "-q", "-A", "-R", str(full), "-m", "on the server")
        client.hg("push", "-q", "-R", str(full), str(repo))
        for name, url in (("ours", http), ("reference", reference_url)):
            _narrow(client, narrow_env).hg("pull", "-q", "-R", str(tmp_path / name), url)
        assert _store(client, tmp_path / "ours", narrow_env) == _store(client, tmp_path / "reference", narrow_env)
        for name, url in (("ours", http), ("reference", reference_url)):
            _narrow(client, narrow_env).hg("tracked", "-q", "-R", str(tmp_path / name), "--addinclude", "c",
                                           "--removeexclude", "a/b", url)
        widened = _store(client, tmp_path / "ours", narrow_env)
        assert widened == _store(client, tmp_path / "reference", narrow_env)
        assert {"a/b/y", "c/new", "c/z"} <= widened.keys() and "top" not in widened
    _narrow(client, narrow_env).hg("verify", "-q", "-R", str(tmp_path / "ours"))

    narrow = tmp_path / "ours"
    _narrow(client, narrow_env).hg("update", "-q", "-R", str(narrow), "main")
    _write(narrow, {"a/x": "from a narrow clone\n"})
    _narrow(client, narrow_env).hg("commit", "-q", "-R", str(narrow), "-m", "narrow over http")
    push_url = http.replace("://", f"://alice:{PASSWORD.replace(' ', '%20')}@", 1)
    _narrow(client, narrow_env).hg("push", "-q", "-R", str(narrow), "-B", "main", push_url)
    _write(narrow, {"c/new": "from a narrow clone, over ssh\n"})
    _narrow(client, narrow_env).hg("commit", "-q", "-A", "-R", str(narrow), "-m", "narrow over ssh")
    _narrow(client, narrow_env).hg("push", "-q", "-R", str(narrow), "-B", "main", *ssh, ssh_url)
    client.hg("verify", "-q", "-R", str(repo))
    check = tmp_path / "check"
    client.hg("clone", "-q", http, str(check))
    assert (check / "a/x").read_text() == "from a narrow clone\n"
    assert (check / "c/new").read_text() == "from a narrow clone, over ssh\n"
    assert (check / "top").read_text() == "side\n" and (check / "a/b/c/w").read_text() == "1\n3\n"
    assert client.hg("log", "-R", str(check), "-r", "main", "-T", "{desc}").stdout == "narrow over ssh"


def test_a_narrow_clone_of_the_memory_backend(make_server: Callable[..., RunningServer], client: Client,
                                              narrow_env: dict[str, str], tmp_path: Path) -> None:
    """The memory backend serves narrow clones too (and takes their pushes)."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("memory", http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True)
    server.backend.create("proj", Kind.HG)
    source = tmp_path / "source"
    _history(client, source)
    url = server.url("http", "proj")
    push_url = url.replace("://", f"://alice:{PASSWORD.replace(' ', '%20')}@", 1)
    client.hg("push", "-q", "-R", str(source), "--new-branch", "-B", "main", push_url)
    narrow = tmp_path / "narrow"
    _clone(client, narrow_env, url, narrow, ["--include", "a/b"])
    held = _store(client, narrow, narrow_env)
    assert {path for path in held if "/" in path} == {"a/b/y", "a/b/c/w"}
    _narrow(client, narrow_env).hg("update", "-q", "-R", str(narrow), "main")
    _write(narrow, {"a/b/y": "narrow\n"})
    _narrow(client, narrow_env).hg("commit", "-q", "-R", str(narrow), "-m", "narrow")
    _narrow(client, narrow_env).hg("push", "-q", "-R", str(narrow), "-B", "main", push_url)
    check = tmp_path / "check"
    client.hg("clone", "-q", url, str(check))
    client.hg("verify", "-q", "-R", str(check))
    assert (check / "a/b/y").read_text() == "narrow\n" and (check / "ab/q").read_text() == "1\n"


def test_a_narrow_stream_clone_is_refused_as_hg_serve_refuses_it(
        shared: tuple[RunningServer, int], client: Client, narrow_env: dict[str, str], tmp_path: Path) -> None:
    """A stream clone would copy every file: ``--stream`` with a narrow clone gets hg serve's refusal."""
    served, port = shared
    answers = []
    for name, url in (("ours", served.url("http", "proj")), ("reference", f"http://127.0.0.1:{port}/")):
        result = client.hg("clone", "--narrow", "--include", "a", "--stream", url, str(tmp_path / name),
                           env=narrow_env, check=False)
        answers.append((result.returncode, [line for line in result.stderr.splitlines() if "abort" in line]))
        assert not (tmp_path / name).exists()
    assert answers[0] == answers[1] and answers[0][0] != 0
    assert "remote: abort: server does not support narrow stream clones" in answers[0][1]

