"""A git push over HTTP whose refs are refused (a pre-receive hook, a full disk) answers status 0
with its report: its request line said ``ok``, where git:// and SSH log ``refused: 1 refs`` or
``error: bad pack: …``; the line now says the same on every transport.  Its event says the size of
the pack it was sent (``bytes_in``, as SSH's), where only what it answered was there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bcrypt
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from zope.interface import provider

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client
from tests.integration.test_git_daemon import commit


@contextmanager
def _request_lines(events: list[LogEvent] | None = None) -> Iterator[list[str]]:
    """The git request lines (git:// and HTTP) the service logs meanwhile (their events to ``events``)."""
    seen: list[str] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if event.get("log_namespace") in ("gateway.git_http", "gateway.git_daemon"):
            seen.append(formatEvent(event))
            if events is not None:
                events.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observe)


def test_a_refused_git_push_over_http_is_logged_refused(make_server: Any, client: Client, tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(passwords), allow_push_over_http=True)
    server.backend.create("hooked", Kind.GIT)
    hook = server.root / "hooked.git" / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho 'no pushes today' >&2\nexit 1\n")
    hook.chmod(0o755)
    work = tmp_path / "work"
    client.git("init", "-q", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    http_url = f"http://alice:pw@127.0.0.1:{server.port('http')}/hooked.git"
    with _request_lines() as lines:
        over_http = client.git("push", http_url, "HEAD:main", cwd=work, check=False)
        over_git = client.git("push", server.git_url("hooked"), "HEAD:main", cwd=work, check=False)
        server.settled()
    assert over_http.returncode != 0 and "pre-receive hook declined" in over_http.stderr, over_http.stderr
    assert over_git.returncode != 0
    pushes = [line for line in lines if "git-receive-pack hooked.git" in line and " in " in line]
    assert len(pushes) == 2, lines
    http_line, git_line = sorted(pushes, key=lambda line: not line.startswith("git-http"))
    assert "git-daemon git-receive-pack hooked.git from" in git_line and ": refused: 1 refs in " in git_line, git_line
    assert http_line.startswith("git-http git-receive-pack hooked.git: refused: 1 refs in "), http_line


def test_a_git_push_over_http_logs_the_size_of_its_pack(make_server: Any, client: Client, tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    passwords.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(passwords), allow_push_over_http=True)
    server.backend.create("sized", Kind.GIT)
    work = tmp_path / "work"
    client.git("init", "-q", str(work))
    commit(client, work, "big.bin", os.urandom(300_000), "big")
    events: list[LogEvent] = []
    with _request_lines(events):
        client.git("push", "-q", f"http://alice:pw@127.0.0.1:{server.port('http')}/sized.git", "HEAD:main", cwd=work)
    push = [e for e in events if e.get("service") == "git-receive-pack" and "elapsed_ms" in e]
    assert len(push) == 1 and push[0]["outcome"] == "ok", events
    assert push[0]["bytes_in"] > 300_000 and push[0]["bytes_out"] > 0, push


def test_refused_pushes_over_http_count_as_errors_as_over_ssh_and_git(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    """``hgwire_errors_total{kind="refused"}`` counted a push a hook refused over git:// and SSH, but
    not over HTTP, whose answer is a 200 with the refusal inside (git's report, hg's error part): a
    dashboard of refusals by transport showed none over HTTP."""
    from tests.integration.test_status_metrics import _metrics

    passwords = tmp_path / "passwords"
    passwords.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(passwords), allow_push_over_http=True)
    server.backend.create("hooked", Kind.GIT)
    hook = server.root / "hooked.git" / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    server.backend.create("hghooked", Kind.HG)
    (server.root / "hghooked" / ".hg" / "hgrc").write_text("[hooks]\npretxnchangegroup = false\n")
    work, hg_work = tmp_path / "work", tmp_path / "hg-work"
    client.git("init", "-q", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.hg("init", str(hg_work))
    (hg_work / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", "-u", "u", cwd=hg_work)
    base = f"http://alice:pw@127.0.0.1:{server.port('http')}"
    http_refused, git_refused = 'hgwire_errors_total{transport="http",kind="refused"}', \
        'hgwire_errors_total{transport="git",kind="refused"}'
    before = _metrics(server)
    assert client.git("push", f"{base}/hooked.git", "HEAD:main", cwd=work, check=False).returncode != 0
    assert client.git("push", server.git_url("hooked"), "HEAD:main", cwd=work, check=False).returncode != 0
    assert client.hg("push", f"{base}/hghooked", cwd=hg_work, check=False).returncode != 0
    server.settled()
    after = _metrics(server)
    assert after[git_refused] - before.get(git_refused, 0) == 1
    assert after[http_refused] - before.get(http_refused, 0) == 2, (before, after)
