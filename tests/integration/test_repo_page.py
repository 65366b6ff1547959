"""A repository's own URL opened as a browser opens it: what it is and the command that clones it.

The command on the page is run as printed, with the real ``git`` and ``hg``; the page is shown only
to those who may clone (hgwire's rules, the repository's ``[web]`` lists), and a hostile ``Host``
header is not echoed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit
from tests.integration.test_hg_http import raw


def _command(page: bytes) -> list[str]:
    line = next(line for line in page.decode().splitlines() if line.startswith("    "))
    return shlex.split(line)


def test_the_page_names_the_kind_and_its_clone_command_works(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK])
    port = server.port("http")
    server.backend.create("team/app", Kind.GIT)
    seed = tmp_path / "seed"
    client.git("clone", "-q", server.url("http", "team/app"), str(seed))
    commit(client, seed, "a.txt", "a\n", "a")
    client.git("push", "-q", str(server.root / "team" / "app.git"), "HEAD:main", cwd=seed)
    client.hg("init", str(server.root / "notes"))

    git_page = raw(port, "GET", "/team/app.git")
    assert git_page.status == 200 and git_page.headers["x-content-type-options"] == "nosniff"
    assert git_page.headers["server"] == "hgwire"  # not the web library's name and version
    assert git_page.body.startswith(b"team/app is a Git repository served by hgwire.\n")
    command = _command(git_page.body)
    assert command == ["git", "clone", f"http://127.0.0.1:{port}/team/app.git"]
    client.run(*command, str(tmp_path / "g"))
    assert (tmp_path / "g" / "a.txt").read_text() == "a\n"
    assert raw(port, "GET", "/team/app").body == git_page.body  # the name without .git too

    hg_page = raw(port, "GET", "/notes/")
    assert hg_page.status == 200 and hg_page.body.startswith(b"notes is a Mercurial repository")
    command = _command(hg_page.body)
    assert command == ["hg", "clone", f"http://127.0.0.1:{port}/notes"]
    client.hg(*command[1:], str(tmp_path / "h"))
    assert (tmp_path / "h" / ".hg").is_dir()

    head = raw(port, "HEAD", "/notes")
    assert head.status == 200 and head.body == b""
    missing = raw(port, "GET", "/nothing-here")
    assert missing.status == 404 and b"nothing-here" in missing.body
    hostile = raw(port, "GET", "/notes", {"Host": "evil.example/<script>"})
    assert b"evil" not in hostile.body and f"http://127.0.0.1:{port}/notes".encode() in hostile.body


def test_the_server_s_own_url_answers_200_with_what_it_serves_and_names_no_repository(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """What a browser at the bare host, and a load balancer's health check (GET or HEAD /), read."""
    server = make_server("fs", http=[LOOPBACK])
    port = server.port("http")
    client.hg("init", str(server.root / "secret-project"))
    page = raw(port, "GET", "/")
    assert page.status == 200 and page.headers["x-content-type-options"] == "nosniff"
    assert b"secret-project" not in page.body
    assert f"git clone http://127.0.0.1:{port}/NAME.git".encode() in page.body
    assert f"hg clone http://127.0.0.1:{port}/NAME".encode() in page.body
    head = raw(port, "HEAD", "/")
    assert head.status == 200 and head.body == b""
    hg = client.hg("clone", f"http://127.0.0.1:{port}/", str(tmp_path / "x"), check=False)
    assert hg.returncode != 0 and "no repository is named in the URL" in hg.stdout + hg.stderr


def test_the_page_is_for_those_who_may_clone(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('anonymous_read = true\n\n[[repo]]\npattern = "private/*"\nread = ["alice"]\n')
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), config_file=str(policy))
    port = server.port("http")
    server.backend.create("private/secret", Kind.GIT)
    client.hg("init", str(server.root / "closed"))
    (server.root / "closed" / ".hg" / "hgrc").write_text("[web]\ndeny_read = *\n")

    anonymous = raw(port, "GET", "/private/secret.git")
    assert anonymous.status == 401 and "www-authenticate" in anonymous.headers
    assert b"secret" not in raw(port, "GET", "/private/none.git").body.replace(b"private/none", b"")
    assert raw(port, "GET", "/private/none.git").status == 401  # no telling which names exist
    alice = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
    assert raw(port, "GET", "/private/secret.git", alice).status == 200
    closed = raw(port, "GET", "/closed", alice)
    assert closed.status == 403 and b"read not authorized by the repository's [web] settings" in closed.body


BROWSER = {"Accept": "text/html,application/xhtml+xml"}


def _listed(body: bytes) -> list[str]:
    return re.findall(r'<tr><td><a href="[^"]+">([^<]+)</a></td>', body.decode())


def test_a_browser_at_the_root_gets_the_repositories_it_may_read(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """The index lists, by name, what the visitor could clone: not a repository hgwire's rules,
    its hgrc's [web] lists or [git] export_all keep from them, nor one whose hgrc sets [web]
    hidden; with credentials, more; escaped; [http] index = false turns it off."""
    policy = tmp_path / "policy.toml"
    policy.write_text('anonymous_read = true\n\n[git]\nexport_all = false\n\n'
                      '[[repo]]\npattern = "private/*"\nread = ["alice"]\n')
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", http=[LOOPBACK], htpasswd=str(htpasswd), config_file=str(policy))
    port = server.port("http")
    for name in ("shown.git", "unexported.git", "private/code.git"):
        server.backend.create(name, Kind.GIT)
    for name in ("shown.git", "private/code.git"):
        (server.root / name / "git-daemon-export-ok").touch()
    (server.root / "shown.git" / "description").write_text("<b>the</b> shown one\n")
    for name, hgrc in (("open", "[web]\ndescription = an open <i>one</i>\n"), ("closed", "[web]\ndeny_read = *\n"),
                       ("quiet", "[web]\nhidden = true\n"), ("team/deep", "")):
        client.hg("init", str(server.root / name))
        (server.root / name / ".hg" / "hgrc").write_text(hgrc)
    client.hg("commit", "-q", "-A", "-R", str(server.root / "open"), "-u", "t", "-d", "1600000000 0", "-m", "x",
              "--config", "ui.allowemptycommit=1")
    # a git repository's last change is its newest branch tip's committer date (gitweb's), here
    # on a branch HEAD does not name (HEAD names a branch never pushed), not the author's date
    work = tmp_path / "work"
    client.git("init", "-q", "-b", "old", str(work))
    for branch, author, committed in (("old", "1500000000 +0000", "1600000000 +0000"),
                                      ("new", "1500000000 +0000", "1650000000 +0130")):
        client.git("checkout", "-q", "-B", branch, cwd=work)
        client.git("commit", "-q", "--allow-empty", "-m", branch, cwd=work,
                   env={"GIT_AUTHOR_DATE": author, "GIT_COMMITTER_DATE": committed})
    client.git("push", "-q", str(server.root / "shown.git"), "old", "new", cwd=work)
    client.git("--git-dir", str(server.root / "shown.git"), "symbolic-ref", "HEAD", "refs/heads/unborn")
    # an hg repository's is when the changelog was written (a push), as hgweb's, not the tip's date
    os.utime(server.root / "open" / ".hg" / "store" / "00changelog.i", (1_700_000_000, 1_700_000_000))

    page = raw(port, "GET", "/", BROWSER)
    assert page.status == 200 and page.headers["content-type"] == "text/html; charset=UTF-8"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert _listed(page.body) == ["open", "shown.git", "team/deep"]
    assert b"&lt;b&gt;the&lt;/b&gt; shown one" in page.body and b"an open &lt;i&gt;one&lt;/i&gt;" in page.body
    west = -time.localtime().tm_gmtoff  # the server's zone, as hg's offsets: seconds west of UTC
    shown = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_700_000_000 - west))
    zone = f"{'-' if west > 0 else '+'}{abs(west) // 3600:02d}{abs(west) % 3600 // 60:02d}"
    assert f"{shown} {zone}".encode() in page.body  # the last change of open
    alice = {**BROWSER, "Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
    assert _listed(raw(port, "GET", "/", alice).body) == ["open", "private/code.git", "shown.git", "team/deep"]
    assert raw(port, "GET", "/", {**BROWSER, "Authorization": "Basic " + base64.b64encode(b"alice:no").decode()}
               ).status == 401
    assert b"This is hgwire" in raw(port, "GET", "/").body  # curl, a health check: the plain page
    listed = json.loads(raw(port, "GET", "/?style=json").body)["entries"]  # hgweb's JSON index, for scripts
    assert [e["name"] for e in listed] == ["open", "shown.git", "team/deep"]
    assert listed[0] == {"name": "open", "description": "an open <i>one</i>", "contact": "unknown",
                         "lastchange": [1700000000, -time.localtime().tm_gmtoff], "labels": []}
    assert listed[1]["lastchange"] == [1650000000, -5400]  # seconds west of UTC, as hg's offsets
    store = (server.root / "team" / "deep" / ".hg" / "store").stat().st_mtime
    assert listed[2]["lastchange"] == [int(store), -time.localtime().tm_gmtoff]  # no commit yet: its store's, as hgweb's
    assert raw(port, "GET", "/?cmd=capabilities").status == 404  # hg asking the root: named nothing
    for style in ("gitweb", "paper", "no-such-style"):  # hgweb's other styles: the page, as paper's
        assert raw(port, "GET", f"/?style={style}", alice).body == raw(port, "GET", "/", alice).body
    policy.write_text(policy.read_text().replace("[git]", "[http]\nindex = false\n\n[git]"))
    os.utime(policy, (time.time() + 5, time.time() + 5))  # a new mtime: read again at the next look
    deadline = time.monotonic() + 15
    while b"This is hgwire" not in raw(port, "GET", "/", BROWSER).body:
        assert time.monotonic() < deadline, "[http] index = false did not take effect"
        time.sleep(0.5)
    assert raw(port, "GET", "/?style=json").status == 404


def test_a_browser_at_a_folder_gets_the_repositories_below_it(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """/team/ lists team's repositories, as hgweb's index of a folder under [paths] / = root/**
    (it was 404, "team is not a git or Mercurial repository"); a folder holding none the visitor
    may read, or a name nothing is at, is answered as before."""
    policy = tmp_path / "policy.toml"
    policy.write_text('anonymous_read = true\n\n[[repo]]\npattern = "private/*"\nread = ["alice"]\n')
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    port = server.port("http")
    for name in ("team/app.git", "private/plans.git", "team-other.git", "other/lib.git"):
        server.backend.create(name, Kind.GIT)
    client.hg("init", str(server.root / "team" / "tools" / "hgapp"))
    page = raw(port, "GET", "/team/", BROWSER)
    assert page.status == 200 and page.headers["content-type"] == "text/html; charset=UTF-8"
    assert _listed(page.body) == ["team/app.git", "team/tools/hgapp"]
    assert b'href="http://127.0.0.1:%d/team/app.git"' % port in page.body
    assert _listed(raw(port, "GET", "/team/tools", BROWSER).body) == ["team/tools/hgapp"]
    assert _listed(raw(port, "GET", "/team/?after=team/app.git", BROWSER).body) == ["team/tools/hgapp"]
    assert raw(port, "GET", "/private/", BROWSER).status == 401  # a read list keeps the folder too
    assert raw(port, "GET", "/nothing/", BROWSER).status == 404
    assert raw(port, "GET", "/team/app.git", BROWSER).status == 200  # a repository: its summary
    assert b"This is hgwire" not in raw(port, "GET", "/team/").body  # not a browser: no index


def test_html_or_text_follows_accept_s_weights_and_says_so_in_vary(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """A repository's URL (and the index at the root) answers HTML only to a client that names HTML
    with a weight above zero, and every such answer carries ``Vary: Accept`` so that a cache keeps
    a browser's page apart from curl's text."""
    server = make_server("fs", http=[LOOPBACK])
    port = server.port("http")
    client.hg("init", str(server.root / "notes"))
    for accept, html in (("text/html,application/xhtml+xml,*/*;q=0.8", True), ("text/plain, text/html;q=0.2", True),
                         ("text/html;q=0, text/plain", False), ("text/htmlx", False), ("*/*", False)):
        for path in ("/notes", "/"):
            page = raw(port, "GET", path, {"Accept": accept})
            assert page.status == 200 and page.headers.get("vary") == "Accept", (path, accept, page.headers)
            assert page.headers["content-type"].startswith("text/html" if html else "text/plain"), (path, accept)
    browser = raw(port, "GET", "/notes", BROWSER)
    again = raw(port, "GET", "/notes", {**BROWSER, "If-None-Match": browser.headers["etag"]})
    assert (again.status, again.headers.get("vary")) == (304, "Accept")
    assert raw(port, "GET", "/notes/summary", BROWSER).headers.get("vary") is None  # HTML whatever it accepts


def test_a_request_without_host_on_ipv6_gets_a_bracketed_clone_url(
        make_server: Callable[..., RunningServer]) -> None:
    """An HTTP/1.0 request names no ``Host``: the page's URL is the address the client reached,
    and an IPv6 one is bracketed (``http://::1:PORT`` was no URL git or hg could use)."""
    import socket

    server = make_server("fs", http=["tcp:0:interface=\\:\\:1"])
    port = server.port("http")
    with socket.create_connection(("::1", port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert f"git clone http://[::1]:{port}/NAME.git".encode() in answer, answer
    assert f"hg clone http://[::1]:{port}/NAME".encode() in answer, answer
