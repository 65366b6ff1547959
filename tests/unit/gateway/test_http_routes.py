"""The one HTTP routing function, Basic credentials, and the listener's own answers."""

from __future__ import annotations

import base64
import http.client
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.web.test.requesthelper import DummyRequest

from gateway.auth import Access, Authorizer, Htpasswd
from gateway.config import ServiceConfig
from gateway.http import (
    HttpFront,
    Route,
    RouteKind,
    Unauthorized,
    parse_basic,
    route,
    send_unauthorized,
)
from protocols.errors import NO_REPOSITORY_NAMED, ProtocolError, ReadOnly
from tests.conftest import LOOPBACK, RunningServer

Q = dict[str, list[str]]


def _segments(path: str) -> list[str]:
    return path.split("/")[1:]


ROUTES: list[tuple[str, str, Q, Route]] = [
    # git smart HTTP, NAME with and without .git, nested names
    ("GET", "/r.git/info/refs", {"service": ["git-upload-pack"]},
     Route(RouteKind.GIT_INFO_REFS, "r.git", "git-upload-pack")),
    ("GET", "/r/info/refs", {"service": ["git-receive-pack"]},
     Route(RouteKind.GIT_INFO_REFS, "r", "git-receive-pack")),
    ("GET", "/team/app.git/info/refs", {"service": ["git-upload-pack"]},
     Route(RouteKind.GIT_INFO_REFS, "team/app.git", "git-upload-pack")),
    # service= repeated: the last one, as git http-backend reads it (not a refusal naming a service it speaks)
    ("GET", "/r.git/info/refs", {"service": ["git-upload-pack", "git-receive-pack"]},
     Route(RouteKind.GIT_INFO_REFS, "r.git", "git-receive-pack")),
    ("GET", "/r.git/info/refs", {"service": ["bogus", "git-upload-pack"]},
     Route(RouteKind.GIT_INFO_REFS, "r.git", "git-upload-pack")),
    ("POST", "/r.git/git-upload-pack", {}, Route(RouteKind.GIT_UPLOAD_PACK, "r.git", "git-upload-pack")),
    ("POST", "/team/app/git-upload-pack", {}, Route(RouteKind.GIT_UPLOAD_PACK, "team/app", "git-upload-pack")),
    ("POST", "/r.git/git-receive-pack", {}, Route(RouteKind.GIT_RECEIVE_PACK, "r.git", "git-receive-pack")),
    ("POST", "/r.git/git-receive-pack/", {}, Route(RouteKind.GIT_RECEIVE_PACK, "r.git", "git-receive-pack")),
    # Mercurial: ?cmd= at the repository root
    ("GET", "/repo", {"cmd": ["capabilities"]}, Route(RouteKind.HG_COMMAND, "repo", "capabilities")),
    ("GET", "/team/repo/", {"cmd": ["heads"]}, Route(RouteKind.HG_COMMAND, "team/repo", "heads")),
    ("POST", "/repo", {"cmd": ["unbundle"], "heads": ["666f726365"]},
     Route(RouteKind.HG_COMMAND, "repo", "unbundle")),
    # a repository's own URL, as a browser asks it: its page (gateway.repo_page)
    ("GET", "/r.git", {}, Route(RouteKind.REPO_PAGE, "r.git")),
    ("HEAD", "/team/repo/", {}, Route(RouteKind.REPO_PAGE, "team/repo")),
    # the go command's look-up of an import path (gateway.go_get): the whole path, whatever pages it names
    ("GET", "/team/app/sub/pkg", {"go-get": ["1"]}, Route(RouteKind.GO_GET, "team/app/sub/pkg")),
    ("HEAD", "/team/app/log/", {"go-get": ["1"]}, Route(RouteKind.GO_GET, "team/app/log")),
    ("GET", "/team/app", {"go-get": ["0"]}, Route(RouteKind.REPO_PAGE, "team/app")),
]

ERRORS: list[tuple[str, str, Q, int]] = [
    ("GET", "/", {"x": ["1"]}, 404),
    ("GET", "/.hg/requires", {}, 404),
    ("GET", "/info/refs", {"service": ["git-upload-pack"]}, 404),  # no repository name
    ("GET", "/r.git/objects/info/packs", {}, 404),  # dumb protocol: not served
    ("GET", "/r.git/HEAD", {}, 404),
    ("GET", "/r.git/info/refs", {}, 403),  # dumb-protocol discovery
    ("GET", "/r.git/info/refs", {"service": ["git-upload-archive"]}, 403),
    ("GET", "/r.git/info/refs", {"service": ["git-receive-pack", "git-upload-archive"]}, 403),  # the last one
    ("POST", "/r.git/info/refs", {"service": ["git-upload-pack"]}, 405),
    ("GET", "/r.git/git-upload-pack", {}, 405),
    ("PUT", "/r.git/git-receive-pack", {}, 405),
    ("GET", "/../etc/info/refs", {"service": ["git-upload-pack"]}, 404),
    ("GET", "/a/../../x/info/refs", {"service": ["git-upload-pack"]}, 404),
    ("GET", "/-x.git/info/refs", {"service": ["git-upload-pack"]}, 404),
    ("POST", "/.git/git-upload-pack", {}, 404),
    ("GET", "/", {"cmd": ["capabilities"]}, 404),  # no repository at the root
    ("GET", "/../x", {"cmd": ["capabilities"]}, 404),
    ("DELETE", "/repo", {"cmd": ["capabilities"]}, 405),
    ("GET", "/repo", {"cmd": ["a", "b"]}, 400),
    ("GET", "/repo", {"cmd": [""]}, 400),
    ("GET", "/" + "/".join(["a"] * 40) + "/info/refs", {"service": ["git-upload-pack"]}, 404),
]


@pytest.mark.parametrize(("method", "path", "query", "expected"), ROUTES,
                         ids=[f"{m} {p} {q}" for m, p, q, _ in ROUTES])
def test_route(method: str, path: str, query: Q, expected: Route) -> None:
    assert route(method, _segments(path), query) == expected


@pytest.mark.parametrize(("path", "query"), [("/", {"cmd": ["capabilities"]}),
                                           ("/info/refs", {"service": ["git-upload-pack"]}), ("/", {"a": ["b"]})])
def test_a_url_naming_no_repository_says_what_to_add(path: str, query: Q) -> None:
    result = route("GET", _segments(path), query)
    assert (result.status, result.message) == (404, NO_REPOSITORY_NAMED)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/repo", "/r.git", "/team/repo/", "/nothing/here"])
def test_a_page_s_url_with_another_method_is_405_with_allow(method: str, path: str) -> None:
    """As every page answers it: the server's and a repository's own URL (GET 200) are not "not found"."""
    result = route(method, _segments(path), {})
    assert (result.kind, result.status, result.allowed) == (RouteKind.ERROR, 405, ("GET", "HEAD"))
    assert "GET" in result.message


@pytest.mark.parametrize("path", ["/r.git/objects/info/packs", "/.hg/requires", "/-x"])
def test_what_is_no_page_stays_404_whatever_the_method(path: str) -> None:
    assert route("PUT", _segments(path), {}).status == 404


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("HEAD", "/"), ("GET", "//")])
def test_the_server_s_own_url_is_its_page(method: str, path: str) -> None:
    assert route(method, _segments(path), {}) == Route(RouteKind.ROOT_PAGE)


@pytest.mark.parametrize(("method", "path", "query", "status"), ERRORS,
                         ids=[f"{m} {p[:40]} {q}" for m, p, q, _ in ERRORS])
def test_route_errors(method: str, path: str, query: Q, status: int) -> None:
    result = route(method, _segments(path), query)
    assert (result.kind, result.status) == (RouteKind.ERROR, status)
    assert result.message
    assert bool(result.allowed) == (status == 405)


PAGE_WORDS = ["rev", "log", "file", "tags", "json-rev", "json-log", "json-file", "raw-rev", "raw-file", "archive",
              "tip.zip", "info", "lfs", "objects", "batch", ".git", "x.git", "..", ".hg", "team", "-x", ""]


@given(
    st.sampled_from(["GET", "POST", "PUT", "HEAD", ""]),
    st.lists(st.one_of(st.text(max_size=20), st.sampled_from(PAGE_WORDS)), max_size=40),
    st.dictionaries(st.sampled_from(["cmd", "service", "x"]), st.lists(st.text(max_size=20), max_size=3)),
)
def test_any_request_gets_a_route(method: str, segments: list[str], query: Q) -> None:
    result = route(method, segments, query)
    assert isinstance(result, Route)
    if result.kind is RouteKind.ERROR:
        assert result.status in (400, 403, 404, 405)
    elif result.kind is RouteKind.ROOT_PAGE:
        assert not [s for s in segments if s] and method in ("GET", "HEAD") and not query
    else:
        assert result.repo and not result.repo.startswith(("/", "-", "."))
        assert ".." not in result.repo.split("/")


# --- Basic credentials ------------------------------------------------------------------------

def _basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        (_basic("alice:s3cret"), ("alice", "s3cret")),
        (_basic("alice:with:colons"), ("alice", "with:colons")),
        (_basic("alice:"), ("alice", "")),
        (b"basic " + base64.b64encode(b"bob:pw"), ("bob", "pw")),
        (_basic("bøb:pw"), ("bøb", "pw")),
        (_basic("jose\u0301:pw\u0301"), ("josé", "pw\u0301")),  # the name composed, the password as sent
    ],
)
def test_parse_basic(header: bytes | None, expected: tuple[str, str] | None) -> None:
    assert parse_basic(header) == expected


@pytest.mark.parametrize(
    "header",
    [b"Bearer abc", b"Basic !!!", _basic("nocolon"), _basic(":pw"), b"Basic " + b"A" * 5000, b"Basic",
     b"Basic " + base64.b64encode(b"\xff:\xfe")],
)
def test_parse_basic_refuses(header: bytes) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_basic(header)
    assert raised.value.http_status == 401


def test_parse_basic_refuses_latin_1_credentials_saying_so() -> None:
    with pytest.raises(ProtocolError, match="not UTF-8") as raised:
        parse_basic(b"Basic " + base64.b64encode("bøb:pw".encode("latin-1")))
    assert raised.value.http_status == 401


def test_unauthorized_has_challenge() -> None:
    request = DummyRequest([b""])  # type: ignore[no-untyped-call]
    send_unauthorized(request, "pushing needs an authenticated user")
    assert request.responseCode == 401
    assert request.responseHeaders.getRawHeaders(b"WWW-Authenticate") == [b'Basic realm="hgwire"']
    assert b"".join(request.written) == b"pushing needs an authenticated user\n"
    assert request.finished


def _front(tmp_path: Path, read_only: bool = False) -> HttpFront:
    path = tmp_path / "htpasswd"
    path.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    config = ServiceConfig(backend=None, root=str(tmp_path), read_only=read_only)  # type: ignore[arg-type]
    return HttpFront(config, Authorizer(read_only=read_only), Htpasswd(path))


def _authorize(front: HttpFront, header: bytes | None, access: Access) -> str | None | Exception:
    request = DummyRequest([b""])  # type: ignore[no-untyped-call]
    if header is not None:
        request.requestHeaders.setRawHeaders(b"authorization", [header])
    outcome: list[object] = []
    d = front.authenticate(request)
    d.addCallback(front._check, "r", "git-http", access)
    d.addBoth(outcome.append)
    return _settle(d, outcome)


def _settle(d: defer.Deferred[object], outcome: list[object]) -> str | None | Exception:
    assert outcome, "authorize() should not wait here"
    value = outcome[0]
    if hasattr(value, "value"):
        return value.value  # type: ignore[no-any-return,union-attr]
    return value  # type: ignore[return-value]


def test_anonymous_write_is_unauthorized(tmp_path: Path) -> None:
    result = _authorize(_front(tmp_path), None, Access.WRITE)
    assert isinstance(result, Unauthorized)


def test_anonymous_read_is_allowed(tmp_path: Path) -> None:
    assert _authorize(_front(tmp_path), None, Access.READ) is None


def test_malformed_credentials_are_unauthorized(tmp_path: Path) -> None:
    assert isinstance(_authorize(_front(tmp_path), b"Bearer x", Access.READ), Unauthorized)


def test_check_read_only_is_forbidden_for_users(tmp_path: Path) -> None:
    front = _front(tmp_path, read_only=True)
    with pytest.raises(ReadOnly):
        front._check("alice", "r", "git-http", Access.WRITE)
    with pytest.raises(ReadOnly):  # nobody may write: an anonymous client is not asked for a password first
        front._check(None, "r", "git-http", Access.WRITE)
    with pytest.raises(Unauthorized):
        _front(tmp_path)._check(None, "r", "git-http", Access.CREATE)


@pytest.mark.parametrize(("password", "expected"), [("s3cret", "alice"), ("wrong", Unauthorized)])
def test_password_is_checked_in_the_pool(reactor: object, tmp_path: Path, password: str,
                                         expected: str | type[Exception]) -> None:
    from twisted.internet.threads import blockingCallFromThread

    front = _front(tmp_path)
    request = DummyRequest([b""])  # type: ignore[no-untyped-call]
    request.requestHeaders.setRawHeaders(b"authorization", [_basic(f"alice:{password}")])
    if isinstance(expected, str):
        assert blockingCallFromThread(reactor, front.authorize, request, "r", "git-http", Access.WRITE) == expected
    else:
        with pytest.raises(expected):
            blockingCallFromThread(reactor, front.authorize, request, "r", "git-http", Access.WRITE)


# --- the listener, over a real socket ---------------------------------------------------------

@pytest.fixture
def http_server(make_server: Callable[..., RunningServer], tmp_path: Path) -> RunningServer:
    path = tmp_path / "htpasswd"
    path.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    return make_server("memory", http=[LOOPBACK], htpasswd=str(path))


def _request(server: RunningServer, method: str, path: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_listener_answers_404_and_405(http_server: RunningServer) -> None:
    assert _request(http_server, "GET", "/nothing/here")[0] == 404
    status, headers, _ = _request(http_server, "GET", "/r.git/git-upload-pack")
    assert (status, headers["allow"]) == (405, "POST")
    status, _, body = _request(http_server, "GET", "/r.git/info/refs?service=bogus")
    assert status == 403 and b"Unsupported service" in body
    status, _, body = _request(http_server, "GET", "/team/r.git/info/refs")  # a dumb probe, or a browser
    told = (b"team/r.git is served over git's smart HTTP protocol only: clone it with `git clone` and this URL "
            b"without its /info/refs, using git 1.6.6 or later")
    assert (status, body.strip()) == (403, told), body  # 403: git http-backend's, its http.getanyfile off
    assert _request(http_server, "GET", "/%ff/info/refs?service=git-upload-pack")[0] == 404
    for method, path in (("OPTIONS", "/"), ("POST", "/r.git"), ("DELETE", "/hgr"), ("PUT", "/")):
        status, headers, body = _request(http_server, method, path)
        assert (status, headers["allow"]) == (405, "GET, HEAD"), (method, path, body)


def test_listener_refuses_huge_body_unread(http_server: RunningServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", http_server.port("http"), timeout=10)
    conn.putrequest("POST", "/r.git/git-receive-pack")
    conn.putheader("Content-Length", str(10**15))
    conn.putheader("Content-Type", "application/x-git-receive-pack-request")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert b"larger than" in response.read()
    conn.close()
    assert _request(http_server, "GET", "/nothing")[0] == 404  # still serving


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/proj/archive/tip.zip", Route(RouteKind.HG_ARCHIVE, "proj", "tip.zip")),
    ("HEAD", "/team/proj/archive/v1.0.tar.gz", Route(RouteKind.HG_ARCHIVE, "team/proj", "v1.0.tar.gz")),
    ("GET", "/proj/archive/0.tar.bz2/src/lib", Route(RouteKind.HG_ARCHIVE, "proj", "0.tar.bz2/src/lib")),
    # the first archive segment followed by an archive's name ends the repository's name
    ("GET", "/proj/archive/tip.zip/docs/archive/old.zip", Route(RouteKind.HG_ARCHIVE, "proj",
                                                                 "tip.zip/docs/archive/old.zip")),
    ("GET", "/team/archive/app", Route(RouteKind.REPO_PAGE, "team/archive/app")),  # no archive type: a page
    # a git repository's ref may hold slashes, "tags" and "heads" among them (not hgweb's pages there)
    ("GET", "/proj.git/archive/refs/tags/v1.tar.gz", Route(RouteKind.HG_ARCHIVE, "proj.git", "refs/tags/v1.tar.gz")),
    ("GET", "/proj.git/archive/feature/x.zip/docs", Route(RouteKind.HG_ARCHIVE, "proj.git", "feature/x.zip/docs")),
    ("GET", "/proj/file/tip/archive/x.zip", Route(RouteKind.HG_WEB_HTML, "proj", "file/tip/archive/x.zip")),
    ("GET", "/archive/tip.zip", Route(RouteKind.REPO_PAGE, "archive/tip.zip")),  # no repository before it
    ("GET", "/team/proj/raw-file/tip/src/main.c", Route(RouteKind.HG_RAW_FILE, "team/proj", "tip/src/main.c")),
    ("GET", "/proj/raw-file/v1.0/", Route(RouteKind.HG_RAW_FILE, "proj", "v1.0")),  # a listing of the root
    # no revision: hgweb's raw manifest of the tip's root (a repository named proj/raw-file wins: gateway.hg_web)
    ("GET", "/proj/raw-file", Route(RouteKind.HG_RAW_FILE, "proj", "")),
    ("GET", "/raw-file", Route(RouteKind.REPO_PAGE, "raw-file")),  # no repository before it
    ("GET", "/team/proj/json-tags", Route(RouteKind.HG_WEB_PAGE, "team/proj", "json-tags")),
    ("HEAD", "/proj/json-branches", Route(RouteKind.HG_WEB_PAGE, "proj", "json-branches")),
    ("GET", "/json-tags", Route(RouteKind.REPO_PAGE, "json-tags")),  # no repository before it
    ("GET", "/team/proj/raw-rev/tip", Route(RouteKind.HG_WEB_PAGE, "team/proj", "raw-rev/tip")),
    ("GET", "/raw-rev/tip", Route(RouteKind.REPO_PAGE, "raw-rev/tip")),
    ("GET", "/team/proj/json-rev/v1.0", Route(RouteKind.HG_WEB_PAGE, "team/proj", "json-rev/v1.0")),
    ("GET", "/proj/json-rev", Route(RouteKind.HG_WEB_PAGE, "proj", "json-rev")),  # the tip
    ("GET", "/proj/json-shortlog/5", Route(RouteKind.HG_WEB_PAGE, "proj", "json-shortlog/5")),
    ("GET", "/proj/json-log", Route(RouteKind.HG_WEB_PAGE, "proj", "json-log")),
    ("GET", "/team/proj/json-summary", Route(RouteKind.HG_WEB_PAGE, "team/proj", "json-summary")),
    ("GET", "/proj/json-manifest", Route(RouteKind.HG_WEB_PAGE, "proj", "json-manifest")),
    ("GET", "/proj/json-manifest/tip/src/lib", Route(RouteKind.HG_WEB_PAGE, "proj", "json-manifest/tip/src/lib")),
    ("GET", "/team/proj/json-file/0/json-file/a", Route(RouteKind.HG_WEB_PAGE, "team/proj", "json-file/0/json-file/a")),
    ("GET", "/json-file/tip/a", Route(RouteKind.REPO_PAGE, "json-file/tip/a")),  # no repository before it
    # pages for browsers: the handler takes the longest repository before a page's name
    ("GET", "/team/proj/rev/5", Route(RouteKind.HG_WEB_HTML, "team/proj", "rev/5")),
    ("GET", "/proj/tags", Route(RouteKind.HG_WEB_HTML, "proj", "tags")),
    ("GET", "/tools/log/log/0/a", Route(RouteKind.HG_WEB_HTML, "tools", "log/log/0/a")),
    ("GET", "/proj/file/tip/src/", Route(RouteKind.HG_WEB_HTML, "proj", "file/tip/src")),
    ("GET", "/rev/5", Route(RouteKind.REPO_PAGE, "rev/5")),  # no repository before it
    ("GET", "/team/proj/atom-log/tip/src/a.c", Route(RouteKind.HG_WEB_PAGE, "team/proj", "atom-log/tip/src/a.c")),
    ("GET", "/proj/rss-log", Route(RouteKind.HG_WEB_PAGE, "proj", "rss-log")),
])
def test_hgweb_archive_urls(method: str, path: str, expected: Route) -> None:
    assert route(method, _segments(path), {}) == expected


def test_an_archive_is_read_with_get_and_its_name_is_checked() -> None:
    refused = route("POST", _segments("/proj/archive/tip.zip"), {})
    assert (refused.kind, refused.status, refused.allowed) == (RouteKind.ERROR, 405, ("GET", "HEAD"))
    assert route("GET", _segments("/.hg/archive/tip.zip"), {}).status == 404
    assert route("GET", _segments("/-x/archive/tip.zip"), {}).status == 404


OLD_STYLE: list[tuple[str, Q, str]] = [
    ("/r", {"cmd": ["changelog"]}, "./r/changelog"),
    ("/team/r/", {"cmd": ["changeset"], "node": ["abc"]}, "./changeset/abc"),
    ("/r", {"cmd": ["changeset;node=abc;style=raw"]}, "./r/changeset/abc?style=raw"),  # hgweb's oldest links
    ("/r", {"cmd": ["file"], "file": ["/d/f 1.txt"], "node": ["release/1.0"]},
     "./r/file/release%252F1.0/d/f%201.txt"),
    ("/r", {"cmd": ["filelog"], "file": ["d/f.txt"]}, "./r/filelog/tip/d/f.txt"),
    ("/r", {"cmd": ["shortlog"], "revcount": ["5"]}, "./r/shortlog?revcount=5"),
    ("/r", {"cmd": ["rawfile"], "file": ["f"], "node": ["tip"]}, "./r/raw-file/tip/f"),
    ("/r", {"cmd": ["archive"], "node": ["tip"], "type": ["gz"]}, "./r/archive/tip.tar.gz"),
    ("/r", {"cmd": ["summary"]}, "./r/summary"),
]


@pytest.mark.parametrize(("path", "query", "location"), OLD_STYLE)
def test_hgweb_pages_named_by_cmd_are_redirected_to_their_own_urls(path: str, query: Q, location: str) -> None:
    for method in ("GET", "HEAD"):
        found = route(method, _segments(path), query)
        assert (found.kind, found.service, found.status) == (RouteKind.REDIRECT, location, 301)


@pytest.mark.parametrize(("method", "query"), [("GET", {"cmd": ["branches"], "nodes": [""]}),  # hg's command first
                                               ("POST", {"cmd": ["changelog"]}),
                                               ("GET", {"cmd": ["archive"], "node": ["tip"], "type": ["rar"]})])
def test_what_is_not_an_hgweb_page_stays_a_mercurial_command(method: str, query: Q) -> None:
    assert route(method, ["r"], query).kind is RouteKind.HG_COMMAND
