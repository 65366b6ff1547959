"""A Mercurial repository's pages for browsers (``gateway.hg_web``): every page a link leads to
answers, history is escaped wherever it is shown, nothing secret is shown, the repository is the
longest name before a page's name, and ``/NAME`` is the summary for a browser only."""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _commit, _hg_serve
from tests.integration.test_hg_http import raw
from tests.integration.test_hg_web_json import served  # noqa: F401 (the shared history, served as "web")

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HOSTILE = '<script>alert("x")</script>'


def _get(server: RunningServer, path: str) -> tuple[int, str, dict[str, str]]:
    answer = raw(server.port("http"), "GET", path, BROWSER)
    return answer.status, answer.body.decode("utf-8", "replace"), answer.headers


def _crawl(server: RunningServer, start: str, limit: int = 400) -> dict[str, str]:
    """Every page reached from ``start`` by the links that stay in the repository (not raw files,
    patches or archives, which are not HTML)."""
    base = f"http://127.0.0.1:{server.port('http')}"
    prefix = base + start
    seen: dict[str, str] = {}
    todo = [prefix]
    while todo and len(seen) < limit:
        url = todo.pop()
        if url in seen:
            continue
        status, body, headers = _get(server, url[len(base):])
        assert status == 200, (url, status, body[:200])
        assert headers["content-type"] == "text/html; charset=UTF-8"
        assert "script-src" not in headers["content-security-policy"]
        assert headers["content-security-policy"].startswith("default-src 'none'")
        seen[url] = body
        for link in re.findall(r'href="([^"]+)"', body):
            link = link.replace("&amp;", "&").partition("#")[0]  # a browser keeps the fragment to itself
            if link.startswith(prefix) and not re.search(r"/(raw-rev|raw-file|archive)/", link):
                todo.append(link)
    return seen


def test_every_link_leads_to_a_page(served: tuple[RunningServer, Path], client: Client) -> None:  # noqa: F811
    server, repo = served
    pages = _crawl(server, "/web")
    kinds = {re.sub(r"^/web/?", "", url.split(str(server.port("http")), 1)[1]).split("/")[0] for url in pages}
    assert {"", "shortlog", "rev", "file", "log", "tags", "branches", "bookmarks", "annotate"} <= kinds, kinds
    assert len(pages) > 40
    summary = pages[f"http://127.0.0.1:{server.port('http')}/web"]
    assert f"hg clone http://127.0.0.1:{server.port('http')}/web" in summary
    assert "merge side" in summary and "v1" in summary and "book@elsewhere" in summary
    secret = client.hg("log", "-R", str(repo), "-r", "secret()", "-T", "{node}").stdout
    for url, body in pages.items():
        assert secret not in body and "hidden-work" not in body and "secret.txt" not in body, url
    changeset = next(body for url, body in pages.items() if "/rev/" in url and "copy" in body and "copied.txt" in body)
    assert 'class="add"' in changeset
    listing = pages[f"http://127.0.0.1:{server.port('http')}/web/file/tip"]
    assert "deep/" in listing and "only/one/" not in listing  # removed at the tip
    log = pages[f"http://127.0.0.1:{server.port('http')}/web/shortlog"]
    assert f'<form action="http://127.0.0.1:{server.port("http")}/web/log" method="get"><input name="rev"' in log
    assert "form-action 'self'" in _get(server, "/web/shortlog")[2]["content-security-policy"]
    status, found, _headers = _get(server, "/web/log?rev=merge")  # hgweb's search, for a browser
    assert status == 200 and "merge side" in found and "after" not in found
    status, hostile, _headers = _get(server, "/web/shortlog?rev=%3Cscript%3E")
    assert status == 200 and "<script>" not in hostile and "&lt;script&gt;" in hostile
    assert _get(server, "/web/rev/nosuch")[0] == 404

    assert _get(server, f"/web/rev/{secret}")[0] == 404


def test_history_is_escaped_wherever_it_is_shown(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "odd"
    client.hg("init", str(repo))
    name = 'x"><img src=y onerror=alert(1)>&.txt'
    _commit(client, repo, "start", {"a.txt": b"<b>bold</b> & more\n"}, 1_700_000_000)
    (repo / name).write_bytes(HOSTILE.encode() + b"\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", f"{HOSTILE} <e@x>", "-d", "1700000100 0", "-m",
              f"{HOSTILE}\n\n<i>body</i>")
    client.hg("bookmark", "-q", "-R", str(repo), '"><script>')
    client.hg("branch", "-q", "-R", str(repo), "<br>")
    _commit(client, repo, "on <br>", {"b.txt": b"b\n"}, 1_700_000_200)
    client.hg("tag", "-q", "-R", str(repo), "-u", "t", "-d", "1700000300 0", "-r", "1", "<t>")
    pages = _crawl(server, "/odd")
    assert len(pages) > 10
    for url, body in pages.items():
        assert "<script" not in body and "<img" not in body and "<i>" not in body and "<br>\"" not in body, url
        assert "<b>" not in body and '<t>' not in body, url
    everything = "".join(pages.values())
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in everything
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in everything
    assert "x%22%3E%3Cimg%20src%3Dy%20onerror%3Dalert%281%29%3E%26.txt" in everything  # in a link, encoded


def test_the_longest_repository_before_a_page_name_is_the_one(make_server: Callable[..., RunningServer],
                                                              client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    outer = server.root / "tools"
    client.hg("init", str(outer))
    _commit(client, outer, "the outer repository", {"o.txt": b"o\n"}, 1_700_000_000)
    repo = outer / "log"
    client.hg("init", str(repo))
    _commit(client, repo, "logging library", {"log.py": b"print()\n"}, 1_700_000_000)
    status, body, _ = _get(server, "/tools/log")
    assert status == 200 and "logging library" in body and "hg clone" in body
    status, body, _ = _get(server, "/tools/log/rev/0")
    assert status == 200 and "logging library" in body and "outer" not in body
    status, body, _ = _get(server, "/tools/log/log/0/log.py")
    assert status == 200 and "logging library" in body
    plain = raw(server.port("http"), "GET", "/tools/log")  # no browser: the short text page
    assert plain.status == 200 and plain.headers["content-type"].startswith("text/plain")
    assert b"tools/log is a Mercurial repository" in plain.body
    status, body, _ = _get(server, "/tools/rev/0")
    assert status == 200 and "the outer repository" in body
    assert _get(server, "/nothing/rev/0")[0] == 404


def test_the_summary_says_what_the_repository_is(served: tuple[RunningServer, Path],  # noqa: F811
                                                 client: Client) -> None:
    server, repo = served
    (repo / ".hg" / "hgrc").write_text("[web]\ndescription = The <web> repository & co\ncontact = Ann <a@x>\n")
    summary = _get(server, "/web")[1]
    assert "<p>The &lt;web&gt; repository &amp; co</p><p>Ann &lt;a@x&gt;</p>" in summary
    _work, bare = _git_history(client, server)
    assert "Unnamed repository" not in _get(server, "/proj.git")[1]  # git's template text is not shown
    (bare / "description").write_text("Our <git> project\n")
    assert "<p>Our &lt;git&gt; project</p>" in _get(server, "/proj.git")[1]


def test_a_reader_the_hgrc_refuses_gets_no_page(served: tuple[RunningServer, Path]) -> None:  # noqa: F811
    server, repo = served
    (repo / ".hg" / "hgrc").write_text("[web]\ndeny_read = *\n")
    for page in ("/web", "/web/shortlog", "/web/rev/0", "/web/file/tip/a.txt", "/web/tags"):
        status, body, _ = _get(server, page)
        assert status in (401, 403) and "merge side" not in body, page


def _git(client: Client, work: Path, *args: str) -> str:
    return client.git(*args, cwd=work).stdout


def _git_history(client: Client, server: RunningServer) -> tuple[Path, Path]:
    """A bare repository with branches, a merge, tags (annotated and not), a binary file, a link,
    an executable, nested directories, a submodule entry, hostile names, and a hidden branch."""
    work = client.cwd / "gitwork"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "deep" / "er").mkdir(parents=True)
    (work / "deep" / "er" / "f.txt").write_text("f\n")
    (work / "a.txt").write_text("<b>bold</b> & more\n")
    (work / "run.sh").write_text("#!/bin/sh\n")
    (work / "run.sh").chmod(0o755)
    (work / "link").symlink_to("a.txt")
    _git(client, work, "add", "-A")
    _git(client, work, "commit", "-q", "-m", "start")
    _git(client, work, "tag", "light")
    _git(client, work, "checkout", "-q", "-b", "<side>")
    (work / '<img src=x onerror="y">&.bin').write_bytes(b"\0binary")
    _git(client, work, "add", "-A")
    _git(client, work, "-c", f"user.name={HOSTILE}", "commit", "-q", "-m", f"{HOSTILE}\n\n<i>body</i>")
    _git(client, work, "checkout", "-q", "main")
    (work / "a.txt").write_text("<b>bold</b> & more\nsecond\n")
    _git(client, work, "commit", "-q", "-am", "second line")
    _git(client, work, "merge", "-q", "--no-edit", "<side>")
    _git(client, work, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},sub")
    _git(client, work, "commit", "-q", "-m", "a submodule")
    _git(client, work, "tag", "-a", "-m", "annotated <tag>", "v1.0")
    _git(client, work, "checkout", "-q", "-b", "secret")
    (work / "hidden.txt").write_text("hidden\n")
    _git(client, work, "add", "-A")
    _git(client, work, "commit", "-q", "-m", "hidden work")
    _git(client, work, "checkout", "-q", "main")
    bare = server.root / "proj.git"
    client.git("clone", "-q", "--bare", "--no-local", str(work), str(bare))
    client.git("--git-dir", str(bare), "fetch", "-q", str(work), "secret:refs/heads/secret")
    client.git("--git-dir", str(bare), "config", "transfer.hideRefs", "refs/heads/secret")
    return work, bare


def test_a_git_repository_has_the_same_pages(make_server: Callable[..., RunningServer], client: Client) -> None:
    """Every link from a git repository's summary answers; the log is ``git log``'s order; a commit
    page lists what ``git show`` lists; nothing of the hidden branch shows; history is escaped."""
    server = make_server("fs", http=[LOOPBACK])
    _work, bare = _git_history(client, server)
    pages = _crawl(server, "/proj.git")
    kinds = {re.sub(r"^/proj\.git/?", "", url.split(str(server.port("http")), 1)[1]).split("/")[0] for url in pages}
    assert {"", "shortlog", "rev", "file", "log", "tags", "branches"} <= kinds and "bookmarks" not in kinds, kinds
    everything = "".join(pages.values())
    hidden = client.git("--git-dir", str(bare), "rev-parse", "secret").stdout.strip()
    assert hidden not in everything and "hidden work" not in everything
    assert "<script" not in everything and "<i>" not in everything and "<side>" not in everything
    assert "<img" not in everything and "&lt;img src=x onerror=&quot;y&quot;&gt;&amp;.bin" in everything
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in everything and "&lt;side&gt;" in everything
    summary = pages[f"http://127.0.0.1:{server.port('http')}/proj.git"]
    assert f"git clone http://127.0.0.1:{server.port('http')}/proj.git" in summary
    shortlog = _get(server, "/proj.git/shortlog")[1]
    expected = client.git("--git-dir", str(bare), "log", "--format=%H", "main").stdout.split()
    assert re.findall(r"/rev/([0-9a-f]{40})\"", shortlog) == expected
    for path in ("a.txt", "deep", "deep/er/f.txt", '<img src=x onerror="y">&.bin', "sub", "link", "nothing"):
        history = _get(server, "/proj.git/log/main/" + urllib.parse.quote(path))[1]
        expected = client.git("--git-dir", str(bare), "log", "--format=%H", "main", "--", path).stdout.split()
        assert re.findall(r"/rev/([0-9a-f]{40})\"", history) == expected, path  # git's history simplification
    merge = client.git("--git-dir", str(bare), "rev-parse", "main~1").stdout.strip()
    page = _get(server, f"/proj.git/rev/{merge}")[1]
    for parent in client.git("--git-dir", str(bare), "rev-parse", f"{merge}^1", f"{merge}^2").stdout.split():
        assert f"/rev/{parent}" in page
    changed = client.git("--git-dir", str(bare), "diff", "-z", "--name-only", f"{merge}^1", merge).stdout.split("\0")
    assert all(_escaped(name) in page for name in filter(None, changed))
    listing = _get(server, "/proj.git/file/v1.0")[1]
    assert "deep/" in listing and "run.sh" in listing and "sub" in listing
    assert _get(server, f"/proj.git/rev/{hidden}")[0] == 200  # by id, as a fetch by id gets it
    assert _get(server, "/proj.git/rev/secret")[0] == 404  # not by its hidden name
    plain = raw(server.port("http"), "GET", "/proj.git")
    assert plain.headers["content-type"].startswith("text/plain")
    for path in ("a.txt", "run.sh", "deep/er/f.txt", "link", '<img src=x onerror="y">&.bin'):
        got = raw(server.port("http"), "GET", "/proj.git/raw-file/v1.0/" + urllib.parse.quote(path))
        shown = subprocess.run(["git", "--git-dir", str(bare), "show", f"v1.0:{path}"], capture_output=True,
                               env=client.env, check=True).stdout
        assert (got.status, got.body, got.headers["content-type"]) == (200, shown, "application/binary"), path
    listing = raw(server.port("http"), "GET", "/proj.git/raw-file/main/").body.decode()
    assert "drwxr-xr-x deep\n" in listing and "-rwxr-xr-x 10 run.sh\n" in listing and "lrwxrwxrwx 5 link\n" in listing
    assert raw(server.port("http"), "GET", "/proj.git/raw-file/main/sub").status == 404
    assert _get(server, "/proj.git/file/main/sub/inside")[0] == 404
    assert raw(server.port("http"), "GET", "/proj.git/raw-file/secret/hidden.txt").status == 404
    client.git("--git-dir", str(bare), "config", "http.uploadpack", "false")  # what a clone may not, a page may not
    for page in ("/proj.git", "/proj.git/shortlog", f"/proj.git/rev/{merge}", "/proj.git/file/tip"):
        assert _get(server, page)[0] == 403, page


def test_a_git_repository_git_daemon_would_not_export_has_no_page(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[git]\nexport_all = false\n")
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    _work, bare = _git_history(client, server)
    for page in ("/proj.git", "/proj.git/shortlog", "/proj.git/file/tip", "/proj.git/tags"):
        assert _get(server, page)[0] == 404, page
    (bare / "git-daemon-export-ok").touch()
    for page in ("/proj.git", "/proj.git/shortlog", "/proj.git/file/tip", "/proj.git/tags"):
        assert _get(server, page)[0] == 200, page


def _escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_git_archives_are_what_git_archive_makes(make_server: Callable[..., RunningServer], client: Client,
                                                 tmp_path: Path) -> None:
    """``/NAME.git/archive/REF.tar.gz`` (``.zip``, ``.tar.bz2``, maybe ``/PATH``) once ``[git]
    archives`` allows the type: the files ``git archive`` writes under ``NAME-REF/``, the commit's
    id where ``git get-tar-commit-id`` reads it; a type not allowed is 403, an unknown ref or path
    404, a hidden branch's name unknown."""
    import gzip
    import io
    import tarfile
    import zipfile

    policy = tmp_path / "policy.toml"
    policy.write_text('[git]\narchives = ["gz", "zip"]\n')
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    _work, bare = _git_history(client, server)
    port = server.port("http")

    def members(data: bytes, kind: str) -> dict[str, bytes]:
        if kind == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
            return {m.name: (t.extractfile(m).read() if m.isfile() else m.linkname.encode())  # type: ignore[union-attr]
                    for m in t.getmembers() if not m.isdir()}

    reference = subprocess.run(["git", "--git-dir", str(bare), "archive", "--prefix=proj-v1.0/", "v1.0"],
                               capture_output=True, env=client.env, check=True).stdout
    expected = members(reference, "tar")
    assert len(expected) == 5  # a.txt, run.sh, link, deep/er/f.txt, the binary file (a submodule has no files)
    for extension, kind in ((".tar.gz", "tar"), (".zip", "zip")):
        got = raw(port, "GET", f"/proj.git/archive/v1.0{extension}")
        assert got.status == 200 and f'filename="proj-v1.0{extension}"' in got.headers["content-disposition"]
        assert members(got.body, kind) == expected, extension
    tgz = subprocess.run(["git", "--git-dir", str(bare), "archive", "--format=tgz", "--prefix=proj-v1.0/", "v1.0"],
                         capture_output=True, env=client.env, check=True).stdout
    assert raw(port, "GET", "/proj.git/archive/v1.0.tar.gz").body == tgz  # byte for byte: the same checksum
    zipped = subprocess.run(["git", "--git-dir", str(bare), "archive", "--format=zip", "--prefix=proj-v1.0/", "v1.0"],
                            capture_output=True, env=client.env, check=True).stdout
    assert raw(port, "GET", "/proj.git/archive/v1.0.zip").body == zipped
    commit = client.git("--git-dir", str(bare), "rev-parse", "v1.0^{commit}").stdout.strip()
    tar = raw(port, "GET", "/proj.git/archive/v1.0.tar.gz").body
    assert subprocess.run(["git", "get-tar-commit-id"], input=gzip.decompress(tar), capture_output=True,
                          check=True).stdout.decode().strip() == commit
    part = members(raw(port, "GET", "/proj.git/archive/v1.0.zip/deep").body, "zip")
    assert part == {k: v for k, v in expected.items() if k.startswith("proj-v1.0/deep/")}
    full = raw(port, "GET", "/proj.git/archive/refs/tags/v1.0.zip/deep")  # a full ref: slashes in the name
    assert full.status == 200 and 'filename="proj-refs-tags-v1.0.zip"' in full.headers["content-disposition"]
    assert members(full.body, "zip") == {k.replace("proj-v1.0/", "proj-refs-tags-v1.0/"): v for k, v in part.items()}
    client.git("--git-dir", str(bare), "branch", "feature/x", "v1.0^{commit}")
    branch = raw(port, "GET", "/proj.git/archive/feature/x.tar.gz")
    assert branch.status == 200 and len(members(branch.body, "tar")) == len(expected)
    assert raw(port, "GET", "/proj.git/archive/v1.0.tar.bz2").status == 403  # not in [git] archives
    assert raw(port, "GET", "/proj.git/archive/v1.0.zip/no/such").status == 404
    assert raw(port, "GET", "/proj.git/archive/nosuch.zip").status == 404
    assert raw(port, "GET", "/proj.git/archive/secret.zip").status == 404  # a hidden branch
    summary = _get(server, "/proj.git")[1]
    assert f'href="http://127.0.0.1:{port}/proj.git/archive/tip.tar.gz"' in summary and "tip.tar.bz2" not in summary


def test_a_browser_at_the_repository_url_is_one_request(make_server: Callable[..., RunningServer], client: Client,
                                                        tmp_path: Path) -> None:
    """The summary a browser gets at ``/NAME`` counts once against ``requests_per_minute``, as the
    plain page does (it was let in once, not twice)."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[limits]\nrequests_per_minute = 2\n")
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    repo = server.root / "counted"
    client.hg("init", str(repo))
    _commit(client, repo, "one", {"a.txt": b"a\n"}, 1_700_000_000)
    assert [_get(server, "/counted")[0] for _ in range(3)] == [200, 200, 429]


def test_an_empty_git_repository_has_its_pages(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    client.git("init", "-q", "--bare", str(server.root / "new.git"))
    for page in ("/new.git", "/new.git/shortlog", "/new.git/tags", "/new.git/branches"):
        assert _get(server, page)[0] == 200, page
    assert f"git clone http://127.0.0.1:{server.port('http')}/new.git" in _get(server, "/new.git")[1]
    for page in ("/new.git/rev/tip", "/new.git/raw-file/tip/a", "/new.git/json-shortlog"):
        status, body, _ = _get(server, page)  # (it was "unknown revision 'tip'")
        assert status == 404 and "This repository has no commits yet: push some to see them here." in body, page
    pages = _crawl(server, "/new.git")  # every link of the header answers, saying why there is nothing
    assert f"http://127.0.0.1:{server.port('http')}/new.git/file/tip" in pages
    for url, body in pages.items():
        if not url.endswith(("/tags", "/branches")):
            assert "This repository has no commits yet: push some to see them here." in body, url


def test_a_git_repository_whose_head_names_a_missing_branch_says_so(make_server: Callable[..., RunningServer],
                                                                    client: Client) -> None:
    """A repository copied in whose HEAD names a branch it lacks (git log fails there): the pages
    of HEAD say so, and every link answers; its branches' pages show their commits."""
    server = make_server("fs", http=[LOOPBACK])
    _work, bare = _git_history(client, server)
    client.git("--git-dir", str(bare), "symbolic-ref", "HEAD", "refs/heads/master")
    assert client.git("--git-dir", str(bare), "log", check=False).returncode != 0
    pages = _crawl(server, "/proj.git")
    base = f"http://127.0.0.1:{server.port('http')}/proj.git"
    note = "HEAD names branch &#x27;master&#x27;, which does not exist"
    for page in ("", "/shortlog", "/graph", "/file/tip"):
        assert note in pages[base + page], page
    status, body, _ = _get(server, "/proj.git/rev/tip")  # (it was "unknown revision 'tip'")
    assert status == 404 and "HEAD names branch 'master', which does not exist" in body, body
    assert "/proj.git/rev/" in pages[base + "/branches"]
    main = client.git("--git-dir", str(bare), "rev-parse", "main").stdout.strip()
    assert f"/rev/{main}" in _get(server, "/proj.git/shortlog/main")[1]
    assert f"/rev/{main}" in _get(server, "/proj.git/log?rev=main")[1]  # the search finds a branch by its name


def test_file_names_that_are_not_utf8_are_shown_and_linked(make_server: Callable[..., RunningServer],
                                                            client: Client) -> None:
    """A name hg stored as bytes that are not UTF-8 is shown (with a replacement character) on every
    page, never breaks one, and is linked by its own bytes (``caf%E9.txt``, as hgweb links it): its
    pages, reached by those links, answer, and its raw file is its bytes."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "latin"
    client.hg("init", str(repo))
    (repo / "plain.txt").write_text("p\n")
    with open(bytes(repo) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"x\n")
    (Path(bytes(repo / "x").decode()).parent / "d\udce9").mkdir()
    with open(bytes(repo) + b"/d\xe9/\xe0.txt", "wb") as f:
        f.write(b"y\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "1700000000 0", "-m", "latin")
    pages = _crawl(server, "/latin")
    assert len(pages) > 5
    everything = "".join(pages.values())
    assert "caf\ufffd.txt" in everything and "\ufffd.txt" in everything
    assert any(url.endswith("/caf%E9.txt") for url in pages), sorted(pages)
    assert any(url.endswith("/d%E9/%E0.txt") for url in pages), sorted(pages)
    assert any("/annotate/" in url and url.endswith("/caf%E9.txt") for url in pages), sorted(pages)
    assert _get(server, "/latin/file/tip/plain.txt")[0] == 200
    assert raw(server.port("http"), "GET", "/latin/raw-file/tip/caf%E9.txt").body == b"x\n"
    assert raw(server.port("http"), "GET", "/latin/raw-file/tip/d%E9/%E0.txt").body == b"y\n"
    assert raw(server.port("http"), "GET", "/latin/raw-file/tip/caf%E8.txt").status == 404
    assert raw(server.port("http"), "GET", "/latin/json-file/tip/caf%E8.txt").status == 404
    with _hg_serve(client, repo) as port:  # the JSON pages of such a file, byte for byte
        for page in ("json-file/tip/caf%E9.txt", "json-filelog/tip/caf%E9.txt", "json-annotate/tip/d%E9/%E0.txt",
                     "json-manifest/tip/d%E9", "json-diff/tip/caf%E9.txt"):  # (an unknown one: hg serve 500)
            ours, theirs = raw(server.port("http"), "GET", f"/latin/{page}"), raw(port, "GET", f"/{page}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), page


def test_a_git_file_name_that_is_not_utf8_is_linked_by_its_bytes(make_server: Callable[..., RunningServer],
                                                                  client: Client) -> None:
    """The same for a git repository: the listing links ``caf%E9.txt``, and that file's page,
    history, annotation and raw bytes answer."""
    server = make_server("fs", http=[LOOPBACK])
    work = client.cwd / "latin-work"
    client.git("init", "-q", "-b", "main", str(work))
    with open(bytes(work) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"x\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-qm", "latin", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(server.root / "latin.git"))
    pages = _crawl(server, "/latin.git")
    assert "caf\ufffd.txt" in "".join(pages.values())
    linked = [url for url in pages if url.endswith("/caf%E9.txt")]
    assert any("/file/" in url for url in linked) and any("/annotate/" in url for url in linked), sorted(pages)
    assert raw(server.port("http"), "GET", "/latin.git/raw-file/main/caf%E9.txt").body == b"x\n"
    assert raw(server.port("http"), "GET", "/latin.git/raw-file/main/caf%E8.txt").status == 404
