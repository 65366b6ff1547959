"""An ``--htpasswd`` the operator got wrong, as git meets it over HTTP and as the log tells it.

A file the service cannot read (a directory given for it, a mode it may not read) was a traceback
and "internal error" (500) for every request that logged in, and nothing at the start; entries
with a hash hgwire refuses were told only at the first login, and that user's refused login only
said "wrong user name or password".
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import bcrypt
from twisted.logger import LogLevel, formatEvent

from tests.conftest import LOOPBACK, Client, RunningServer, log_events

TOLD = "the server cannot read its password file; tell the server's operator"


def _work(client: Client) -> Path:
    work = client.cwd / "src"
    client.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "a.txt", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    return work


def _url(server: RunningServer, auth: str) -> str:
    return f"http://{auth}@127.0.0.1:{server.port('http')}/app.git"


def _lines(events: list[dict[str, object]]) -> list[str]:
    return [formatEvent(e) for e in events]


def test_an_unreadable_htpasswd_is_told_at_the_start_and_refuses_logins_clearly(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    passwords = tmp_path / "htpasswd"
    passwords.mkdir()  # a directory given for the file: IsADirectoryError, as EACCES is another OSError
    with log_events() as started:
        server = make_server("fs", http=[LOOPBACK], htpasswd=str(passwords))
    assert any(f"--htpasswd {passwords} could not be read (Is a directory); nobody can log in over HTTP until "
               "it can" in line for line in _lines(started)), _lines(started)
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "app.git")], check=True)
    work = _work(client)
    with log_events() as seen:
        refused = client.git("push", _url(server, "alice:s3cret"), "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert TOLD in refused.stderr and "internal error" not in refused.stderr, refused.stderr
    assert "403" in refused.stderr, refused.stderr  # not 401: git's credential helper would forget the password
    lines = _lines(seen)
    assert not [e for e in seen if e.get("log_level") in (LogLevel.critical, LogLevel.error)], lines
    assert not any("Traceback" in line for line in lines), lines
    assert any(f"git-http app.git: refused 403: {TOLD}" in line for line in lines), lines
    assert any("could not be read (Is a directory)" in line for line in lines), lines

    passwords.rmdir()  # mended: the next login reads it
    passwords.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    client.git("push", "-q", _url(server, "alice:s3cret"), "main", cwd=work)
    subprocess.run(["git", "fsck", "--full"], cwd=server.root / "app.git", capture_output=True, check=True)


def test_refused_entries_are_told_at_the_start_and_in_their_user_s_refused_login(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    passwords = tmp_path / "htpasswd"
    passwords.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n"
                         "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    with log_events() as started:
        server = make_server("fs", http=[LOOPBACK], htpasswd=str(passwords))
    assert any(f"{passwords}:2: entry for bob refused: the hash is unsalted SHA-1" in line
               for line in _lines(started)), _lines(started)
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "app.git")], check=True)
    work = _work(client)
    with log_events() as seen:
        refused = client.git("push", _url(server, "bob:password"), "main", cwd=work, check=False)
        wrong = client.git("push", _url(server, "alice:nope"), "main", cwd=work, check=False)
    assert refused.returncode != 0 and wrong.returncode != 0
    assert "skipped" not in refused.stderr, refused.stderr  # the client is not told that bob exists
    lines = [line for line in _lines(seen) if "refused 401: wrong user name or password" in line]
    assert any("(its --htpasswd line 2 was skipped: the hash is unsalted SHA-1, which is not accepted; use "
               "bcrypt (htpasswd -B))" in line for line in lines), lines
    assert any(line.endswith("refused 401: wrong user name or password") for line in lines), lines  # alice's


def test_the_login_challenge_of_a_good_push_is_not_logged_as_a_refusal(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """git (and hg) send a push without credentials first and theirs only after the 401: that
    challenge, met by every HTTP push, was logged "refused 401", which an operator's alerts on
    refusals then met ~26 times a minute in a team's day; a wrong password still is a refusal."""
    passwords = tmp_path / "htpasswd"
    passwords.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(passwords))
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "app.git")], check=True)
    work = _work(client)
    with log_events() as seen:
        client.git("push", "-q", _url(server, "alice:s3cret"), "main", cwd=work)
    lines = [line for line in _lines(seen) if "git-http app.git: " in line]
    assert any(line.endswith("asked to log in (401): pushing to app.git needs an authenticated user; log in with "
                             "an SSH key or an HTTP password") for line in lines), lines
    assert not any("refused" in line for line in lines), lines
    with log_events() as seen:
        wrong = client.git("push", _url(server, "alice:nope"), "main", cwd=work, check=False)
    assert wrong.returncode != 0
    assert any(line.endswith("refused 401: wrong user name or password") for line in _lines(seen)), _lines(seen)
    subprocess.run(["git", "fsck", "--full"], cwd=server.root / "app.git", capture_output=True, check=True)


def test_a_wrong_password_is_logged_with_the_user_and_the_client_address(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """The refusal's line named the repository only ("git-http app.git: refused 401: wrong user name
    or password"), and the access line's 401 is also every push's first, credential-less request:
    nothing told fail2ban (or an operator) who failed from where.  The password is never logged."""
    passwords = tmp_path / "htpasswd"
    passwords.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(passwords))
    subprocess.run(["git", "init", "-q", "--bare", str(server.root / "app.git")], check=True)
    work = _work(client)
    with log_events() as seen:
        wrong = client.git("push", _url(server, "alice:n0pe-guess"), "main", cwd=work, check=False)
        client.git("push", "-q", _url(server, "alice:s3cret"), "main", cwd=work)
    assert wrong.returncode != 0
    lines = _lines(seen)
    failed = [line for line in lines if line.startswith("HTTP login refused for user alice from 127.0.0.1:")]
    assert len(failed) == 1 and failed[0].endswith(": wrong user name or password"), lines
    assert not any("n0pe-guess" in line or "s3cret" in line for line in lines), lines
    assert not any("n0pe-guess" in str(e) or "s3cret" in str(e) for e in seen)
