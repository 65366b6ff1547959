"""The HTTP listener: one routing function for git smart HTTP and Mercurial, plus Basic auth.

``make_http_site(config)`` builds the ``Site`` of one ``--http`` listener.
Every request goes through ``route(method, path_segments, query)``, a pure
function that names what the request is (a ``Route``); the resource then calls
the handler registered for that route kind in ``HTTP_HANDLERS``, filled from
the ``HANDLERS`` table of each module in ``HANDLER_MODULES``
(``gateway.git_http`` now, ``gateway.hg_http`` for issue 6); a kind without
a handler answers 501.

Request shapes (git-http-backend(1), PROTOCOL-NOTES §1.1 and §2.1):

=========================================================  =====================
``GET  /NAME(.git)/info/refs?service=git-upload-pack``     ``GIT_INFO_REFS``
``GET  /NAME(.git)/info/refs?service=git-receive-pack``    ``GIT_INFO_REFS``
``POST /NAME(.git)/git-upload-pack``                       ``GIT_UPLOAD_PACK``
``POST /NAME(.git)/git-receive-pack``                      ``GIT_RECEIVE_PACK``
``POST /NAME(.git)/info/lfs/objects/batch`` (hg: ``NAME/.git/…``) ``GIT_LFS_BATCH``
``GET|HEAD|PUT /NAME(.git)/info/lfs/objects/<sha256>``     ``GIT_LFS_OBJECT``
``GET|POST /NAME(.git)/info/lfs/locks[/...]``              ``GIT_LFS_LOCKS``
``GET|POST /NAME?cmd=COMMAND`` (the repo root only)        ``HG_COMMAND``
``GET  /NAME/archive/REV.{zip,tar.gz,tar.bz2}[/PATH]``     ``HG_ARCHIVE`` (hgweb's)
``GET  /NAME/raw-file[/REV[/PATH]]``                       ``HG_RAW_FILE`` (hgweb's)
``GET  /NAME/json-{tags,bookmarks,branches,summary}``     ``HG_WEB_PAGE`` (hgweb's)
``GET  /NAME/raw-{tags,bookmarks,branches}``              ``HG_WEB_PAGE`` (hgweb's)
``GET  /NAME/{atom,rss}-{log,tags,bookmarks,branches}``   ``HG_WEB_PAGE`` (hgweb's feeds)
``GET  /NAME/{atom,rss}-log/REV/PATH``                    ``HG_WEB_PAGE`` (hgweb's file feeds)
``GET  /NAME/raw-rev/REV``                                 ``HG_WEB_PAGE`` (hgweb's)
``GET  /NAME/json-{rev,shortlog,changelog,log}[/REV]``     ``HG_WEB_PAGE`` (hgweb's)
``GET  /NAME/json-{manifest,file,filelog,diff}[/REV[/PATH]]`` ``HG_WEB_PAGE`` (hgweb's)
``GET  /NAME/json-log/REV/PATH``                          ``HG_WEB_PAGE`` (hgweb's filelog)
``GET  /NAME/{shortlog,rev,file,tags,...}[/...]``         ``HG_WEB_HTML`` (hgweb's pages for browsers)
anything else                                              404 / 405 / 403
=========================================================  =====================

Request bodies are bounded (``MAX_REQUEST_BODY``): a larger ``Content-Length``
(or a chunked body that grows past it) is answered 413 and the connection
closed before the body is read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import importlib
import os
import tempfile
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, unquote_to_bytes, urlencode

from twisted.internet import defer, interfaces, protocol
from twisted.internet.interfaces import IAddress
from twisted.python.failure import Failure
from twisted.web import http, resource, server
from twisted.web.http_headers import Headers

from backends.names import validate_name
from gateway import metrics
from gateway.auth import Access, Authorizer, Htpasswd
from gateway.channel import peer_text, url_host
from gateway.config import ServiceConfig
from gateway.errors import TMPDIR_ADVICE, out_of_files, temp_space_refusal
from gateway.limits import (
    DEFAULT_LIMITS,
    NO_PROXIES,
    TLS_CLOSE_GRACE,
    RateLimited,
    address_key,
    close_sent,
    count_request,
    gone_outcome,
    limits_for,
    tcp_address,
    trusted_proxies,
    user_sessions,
)
from gateway.live_body import LiveBody
from gateway.logs import SafeLogger
from gateway.policy import authorizer_for, public_url
from gateway.threads import run_blocking
from gateway.tls import client_certificate_subject, no_client_certificate, tls_handshake
from protocols import pktline
from protocols.errors import (
    NO_REPOSITORY_NAMED,
    HgwireError,
    HomePathRefused,
    PermissionDenied,
    ProtocolError,
    ReadOnly,
    UnsafeName,
)
from protocols.forwarded import Trusted, forwarded_client, forwarded_https
from protocols.git_request import SPEAKS_HTTP, is_daemon_request, may_become_daemon_request
from protocols.http_head import (
    BARE_LF,
    HOST_HEADER,
    check_framing,
    check_host,
    connection_options,
    line_ends_in_bare_lf,
    origin_form,
    reason_phrase,
    request_line_target,
    request_line_version,
)

log = SafeLogger()

REALM = "hgwire"
MAX_REQUEST_BODY = 2 * 1024**3
"""Largest request body accepted (a push); a larger one gets 413 before it is read."""

MAX_PATH_SEGMENTS = 32
MAX_CREDENTIALS_BYTES = 4096

GIT_SERVICES = frozenset({"git-upload-pack", "git-receive-pack"})
HG_COMMAND_ARG = "cmd"
GIT_SERVICE_ARG = "service"
GO_GET_ARG = "go-get"


class RouteKind(enum.Enum):
    GIT_INFO_REFS = "git-info-refs"
    GIT_UPLOAD_PACK = "git-upload-pack"
    GIT_RECEIVE_PACK = "git-receive-pack"
    GIT_LFS_BATCH = "git-lfs-batch"
    GIT_LFS_OBJECT = "git-lfs-object"
    GIT_LFS_LOCKS = "git-lfs-locks"
    HG_COMMAND = "hg-command"
    HG_ARCHIVE = "hg-archive"
    HG_RAW_FILE = "hg-raw-file"
    HG_WEB_PAGE = "hg-web-page"
    HG_WEB_HTML = "hg-web-html"
    REPO_PAGE = "repository-page"
    ROOT_PAGE = "root-page"
    HEALTH = "health"
    METRICS = "metrics"
    REDIRECT = "redirect"
    GO_GET = "go-get"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Route:
    """What a request is: its kind, repository name and service/command, or the error to answer."""

    kind: RouteKind
    repo: str = ""
    service: str = ""  # git service (info/refs, POST) or hg command
    status: int = 200
    message: str = ""
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GitTail:
    """One git smart-HTTP URL tail: the path after the repository name."""

    segments: tuple[str, ...]
    method: str
    kind: RouteKind


GIT_TAILS: tuple[GitTail, ...] = (
    GitTail(("info", "refs"), "GET", RouteKind.GIT_INFO_REFS),
    GitTail(("git-upload-pack",), "POST", RouteKind.GIT_UPLOAD_PACK),
    GitTail(("git-receive-pack",), "POST", RouteKind.GIT_RECEIVE_PACK),
)
HG_METHODS = ("GET", "HEAD", "POST")
"""A Mercurial command's methods: HEAD is checked as GET is and answers its status without running
the command (``gateway.hg_http``); a push needs POST all the same."""
SERVER_HEADER = b"hgwire"
PAGE_METHODS = ("GET", "HEAD")
"""A repository's own URL, without a command (``gateway.repo_page``): what a browser asks."""


def _error(status: int, message: str, allowed: tuple[str, ...] = ()) -> Route:
    return Route(RouteKind.ERROR, status=status, message=message, allowed=allowed)


NOT_FOUND = _error(404, "Not Found")
NO_NAME = _error(404, NO_REPOSITORY_NAMED)
PAGE_METHOD_NOT_ALLOWED = _error(405, "this URL answers GET and HEAD only; git and hg clients add their own "
                                 "path or ?cmd= to a repository's URL", PAGE_METHODS)
"""The server's and a repository's own URL with another method: 405 with ``Allow``, as every other
page answers it (not 404, which said the URL named nothing while GET answers 200)."""


def route(method: str, path_segments: Sequence[str], query: Mapping[str, Sequence[str]]) -> Route:
    """Name what a request is.  Pure: no I/O, no repository lookup.

    ``path_segments`` are the decoded URL path segments (``/team/app.git/info/refs``
    → ``["team", "app.git", "info", "refs"]``).  A ``cmd`` query argument
    means Mercurial, and then the whole path is the repository; otherwise the
    path ends in a git tail, or it is a repository's own page (GET or HEAD).
    Names failing ``validate_name`` are 404, saying why.
    """
    segments = list(path_segments)
    slash = bool(segments) and segments[-1] == ""
    while segments and segments[-1] == "":  # a trailing slash
        segments.pop()
    if len(segments) > MAX_PATH_SEGMENTS:
        return NOT_FOUND
    if HG_COMMAND_ARG in query:
        old_style = _old_style_page(method, segments, query, slash) if segments else None
        if old_style is not None:
            return old_style
        return _hg_route(method, segments, query) if segments else NO_NAME
    if segments == [HEALTH_PATH] and not query:  # a hidden name: never a repository's
        return Route(RouteKind.HEALTH) if method in PAGE_METHODS else PAGE_METHOD_NOT_ALLOWED
    if segments == [METRICS_PATH] and not query:  # any method: who may not read it gets a name's 404
        return Route(RouteKind.METRICS)
    if segments and method in PAGE_METHODS and dict(query) == {GO_GET_ARG: ["1"]}:
        return Route(RouteKind.GO_GET, "/".join(segments))  # the go command's look-up (gateway.go_get)
    lfs = _lfs_route(method, segments)
    if lfs is not None:
        return lfs
    for tail in GIT_TAILS:
        if tuple(segments[-len(tail.segments):]) == tail.segments:
            if len(segments) == len(tail.segments):
                return NO_NAME
            return _git_route(method, segments[: -len(tail.segments)], tail, query)
    hgweb = _hgweb_route(method, segments)
    if hgweb is not None:
        return hgweb
    if not segments:  # the server's own URL: a page for browsers and load balancers' health checks
        # ?style=json: hgweb's index for scripts; any other style: the page, as hgweb falls back to paper;
        # hgweb's ?sort= (name, description, contact, lastchange): ignored, the index is in name order
        index = bool(query) and set(query) <= INDEX_ARGS and all(len(values) == 1 for values in query.values())
        if method not in PAGE_METHODS:
            return PAGE_METHOD_NOT_ALLOWED
        return Route(RouteKind.ROOT_PAGE) if not query or index else NO_NAME
    if any(segment.endswith(".git") for segment in segments[:-1]):  # dumb-protocol paths
        return NOT_FOUND
    name = _repo_name(segments)
    if name is None:
        return _refused_name(segments)
    return Route(RouteKind.REPO_PAGE, name) if method in PAGE_METHODS else PAGE_METHOD_NOT_ALLOWED


HEALTH_PATH = ".health"
"""``GET /.health``: the service's state for a load balancer or a monitor (``gateway.health``)."""
METRICS_PATH = ".metrics"
"""``GET /.metrics``: the counters and gauges in Prometheus' format (``gateway.health``, ``gateway.metrics``)."""

INDEX_ARGS = frozenset({"style", "sort", "after"})
"""The query arguments the server's index takes, each once."""


def _repo_name(segments: Sequence[str]) -> str | None:
    try:
        return validate_name("/".join(segments))
    except UnsafeName:
        return None


def _refused_name(segments: Sequence[str]) -> Route:
    """404 saying why a name is refused (``validate_name``'s sentence: a hidden or ``..`` segment,
    a control character, its length), as git daemon and the other transports say it."""
    try:
        validate_name("/".join(segments))
    except HomePathRefused as refused:
        return _error(404, refused.over("http", "http(s)://HOST/team/project"))
    except UnsafeName as refused:
        return _error(404, str(refused))
    return NOT_FOUND


def _git_route(method: str, repo_segments: Sequence[str], tail: GitTail,
               query: Mapping[str, Sequence[str]]) -> Route:
    name = _repo_name(repo_segments)
    if name is None:
        return _refused_name(repo_segments)
    allowed = PAGE_METHODS if tail.method == "GET" else (tail.method,)  # HEAD: GET's answer without its body
    if method not in allowed:
        return _error(405, f"{'/'.join(tail.segments)} needs {tail.method}", allowed)
    if tail.kind is not RouteKind.GIT_INFO_REFS:
        return Route(tail.kind, name, tail.kind.value)
    services = query.get(GIT_SERVICE_ARG, ())
    service = services[-1] if services else None  # repeated: the last, as git http-backend's get_parameters
    if service is None:  # a dumb-HTTP client, or a person with a browser: 403, as http-backend's without getanyfile
        path = "/".join(repo_segments)
        return _error(403, f"{path} is served over git's smart HTTP protocol only: clone it with `git clone` "
                      "and this URL without its /info/refs, using git 1.6.6 or later")
    if service not in GIT_SERVICES:
        return _error(403, f"Unsupported service: {service[:40]!r}; hgwire speaks only the smart HTTP protocol")
    return Route(RouteKind.GIT_INFO_REFS, name, service)


ARCHIVE_SEGMENT = "archive"
RAW_FILE_SEGMENT = "raw-file"
RAW_REV_SEGMENT = "raw-rev"
WEB_JSON_PAGES = frozenset({"json-tags", "json-bookmarks", "json-branches", "json-summary",
                            "raw-tags", "raw-bookmarks", "raw-branches",
                            *(f"{style}-{page}" for style in ("atom", "rss") for page in ("log", "tags", "bookmarks",
                                                                                           "branches"))})
"""hgweb's pages of names hgwire answers (``backends.hg.web.PAGES``: json, raw, feeds)."""
WEB_REV_PAGES = frozenset({"json-rev", "json-changeset", "json-shortlog", "json-changelog", "json-log",
                           "json-graph"})
"""hgweb's JSON pages of changesets, alone (at the tip) or followed by a revision
(``backends.hg.web.CHANGESET_PAGES``, ``LOG_PAGES``)."""
WEB_FILE_PAGES = frozenset({"json-manifest", "json-file", "json-filelog", "json-diff", "json-filediff", "json-annotate",
                            "json-comparison"})
FILE_FEEDS = frozenset({"atom-log", "rss-log"})
"""hgweb's feeds of a file's history, followed by a revision and the file's path."""
RAW_STYLED_PAGES = frozenset(f"raw-{page}" for page in ("summary", "shortlog", "log", "changelog", "filelog", "rev",
                                                         "changeset", "manifest", "diff", "filediff", "comparison",
                                                         "annotate", "graph", "help"))
"""hgweb's ``raw`` style named in the path, as hgweb takes ``STYLE-PAGE`` for any page
(``/NAME/raw-annotate/REV/PATH`` is ``/NAME/annotate/REV/PATH?style=raw``); ``raw-rev/REV``,
``raw-file`` and ``raw-tags``, ``raw-bookmarks``, ``raw-branches`` have routes of their own."""
HTML_PAGES = frozenset({"summary", "shortlog", "log", "changelog", "filelog", "rev", "changeset", "file", "manifest",
                        "tags", "branches", "bookmarks", "diff", "filediff", "comparison", "annotate",
                        "graph", "help", "static", *RAW_STYLED_PAGES})
"""hgweb's pages for browsers (``gateway.hg_web``); its handler takes the longest repository
before one of them, as hgweb does (``team/log/rev/5`` is repository ``team/log``'s changeset 5).
hgweb's ``help`` and ``static`` (which hgwire has not) are here so that a repository's are "no
such page", not a repository of that name not found."""
"""hgweb's JSON pages of a directory or file, alone (the tip's root) or followed by a revision and
maybe a path (``backends.hg.web.FILE_PAGES``)."""
ARCHIVE_EXTENSIONS = (".zip", ".tar.gz", ".tar.bz2")
"""hgweb's archive URLs (``backends.hg.archive.TYPES``)."""


def names_a_page(segment: str) -> bool:
    """Whether ``segment`` names one of hgweb's pages (``log``, ``rev``, ``raw-file``, ``json-tags``…),
    which hgwire serves for git and Mercurial repositories alike: a URL holding one that reaches
    no repository is a page's, copied from a browser (``hg clone``/``git clone …/app/rev/tip``)."""
    return (segment in HTML_PAGES or segment in (RAW_FILE_SEGMENT, RAW_REV_SEGMENT, ARCHIVE_SEGMENT)
            or segment.startswith(("json-", "atom-", "rss-", "raw-")))


def page_owner(name: str, exists: Callable[[str], bool], check_read: Callable[[str], object]) -> str | None:
    """The repository whose web page ``name`` is (``team/app/rev/tip``, a URL copied from a
    browser into ``hg clone`` or ``git clone``): the longest name before a page's (``names_a_page``)
    that ``exists`` and the user may read (``check_read`` raises ``HgwireError`` where not); None
    when there is none (blocking: asks the backend)."""
    segments = name.split("/")
    for at in range(len(segments) - 1, 0, -1):
        if not names_a_page(segments[at]):
            continue
        owner = "/".join(segments[:at])
        try:
            check_read(owner)
            if exists(validate_name(owner)):
                return owner
        except HgwireError:
            continue
    return None


def _hgweb_route(method: str, segments: Sequence[str]) -> Route | None:
    """hgweb's URLs that scripts use (``gateway.hg_archive``); None for any other path.  The segment
    that names the page ends the repository's name: a last ``json-*`` page, ``raw-rev/REV``, the
    first ``archive`` followed by an archive's name, the first ``raw-file`` (its handler then takes
    the longest repository before a page's name, as hgweb does: ``gateway.hg_web``)."""
    found = _hgweb_page(segments)
    if found is None:
        return None
    at, kind, service = found
    name = _repo_name(segments[:at])
    if name is None:
        return _refused_name(segments[:at])
    if method not in PAGE_METHODS:
        return _error(405, f"{segments[at]} is read with GET", PAGE_METHODS)
    return Route(kind, name, service)


def _hgweb_page(segments: Sequence[str]) -> tuple[int, RouteKind, str] | None:
    """Where an hgweb page's name sits in the path, its kind and its service (what follows it; the
    page itself for ``json-*`` and ``raw-rev``, with the revision that follows it)."""
    last = len(segments) - 1
    if last >= 1 and (segments[last] in WEB_JSON_PAGES or segments[last] in WEB_REV_PAGES
                      or segments[last] in WEB_FILE_PAGES):
        return last, RouteKind.HG_WEB_PAGE, segments[last]
    if last >= 2 and (segments[last - 1] == RAW_REV_SEGMENT or segments[last - 1] in WEB_REV_PAGES):
        return last - 1, RouteKind.HG_WEB_PAGE, "/".join(segments[last - 1:])
    at = next((i for i in range(1, last) if segments[i] in WEB_FILE_PAGES), None)
    if at is not None:
        return at, RouteKind.HG_WEB_PAGE, "/".join(segments[at:])
    at = next((i for i in range(1, last - 1) if segments[i] == "json-log"), None)
    if at is not None:  # a log with a file: hgweb's filelog
        return at, RouteKind.HG_WEB_PAGE, "/".join(["json-filelog", *segments[at + 1:]])
    at = next((i for i in range(1, last - 1) if segments[i] in FILE_FEEDS), None)
    if at is not None:  # a file's history as a feed
        return at, RouteKind.HG_WEB_PAGE, "/".join(segments[at:])
    at = next((i for i in range(1, last) if segments[i] == ARCHIVE_SEGMENT and segments[i - 1].endswith(".git")
               and any(s.endswith(ARCHIVE_EXTENSIONS) for s in segments[i + 1:])), None)
    if at is not None:  # a git repository's archive of a ref with slashes (refs/tags/v1, feature/x)
        return at, RouteKind.HG_ARCHIVE, "/".join(segments[at + 1:])
    at = next((i for i in range(1, last + 1) if segments[i] in HTML_PAGES), None)
    if at is not None:
        return at, RouteKind.HG_WEB_HTML, "/".join(segments[at:])
    at = next((i for i in range(1, last) if segments[i] == ARCHIVE_SEGMENT
               and segments[i + 1].endswith(ARCHIVE_EXTENSIONS)), None)
    kind = RouteKind.HG_ARCHIVE
    if at is None:  # raw-file, bare (the tip's root), with a revision, with a path; gateway.hg_web finds the name
        at = next((i for i in range(1, last + 1) if segments[i] == RAW_FILE_SEGMENT), None)
        kind = RouteKind.HG_RAW_FILE
    return None if at is None else (at, kind, "/".join(segments[at + 1:]))


LFS_TAIL = ("info", "lfs")


def _lfs_route(method: str, segments: Sequence[str]) -> Route | None:
    """A Git LFS request (``gateway.git_lfs``): under ``NAME/info/lfs``; None for any other path."""
    at = next((i for i in range(len(segments) - 2, 0, -1) if tuple(segments[i:i + 2]) == LFS_TAIL), None)
    if at is None:
        return None
    repo = segments[:at - 1] if segments[at - 1] == ".git" else segments[:at]  # hg's lfs: NAME/.git/info/lfs
    name, rest = (_repo_name(repo) if repo else None), list(segments[at + 2:])
    if name is None:
        return _refused_name(repo)
    if rest == ["objects", "batch"]:
        return Route(RouteKind.GIT_LFS_BATCH, name) if method == "POST" else _error(405, "the batch API needs POST",
                                                                                    ("POST",))
    if len(rest) == 2 and rest[0] == "objects":
        if method not in ("GET", "HEAD", "PUT"):
            return _error(405, "an LFS object is got with GET (or HEAD) or put with PUT", ("GET", "HEAD", "PUT"))
        return Route(RouteKind.GIT_LFS_OBJECT, name, rest[1])
    if rest and rest[0] == "locks" and len(rest) <= 3 and method in ("GET", "POST"):
        return Route(RouteKind.GIT_LFS_LOCKS, name, "/".join(rest))
    return NOT_FOUND


OLD_STYLE_PAGES = frozenset({"log", "changelog", "shortlog", "changeset", "rev", "manifest", "file", "filelog",
                             "summary", "tags", "bookmarks", "filediff", "diff", "comparison", "annotate",
                             "graph", "help", "static", "rawfile", "archive"})
"""hgweb's pages named by ``?cmd=`` (its ``webcommands``), as old hgweb linked them and hgweb still
serves them: ``NAME?cmd=changeset&node=X`` is ``NAME/changeset/X``.  ``branches`` is not among
them: it is a Mercurial command first, for hgweb too."""
OLD_STYLE_ARCHIVES = {"gz": ".tar.gz", "bz2": ".tar.bz2", "zip": ".zip"}
"""hgweb's archive ``type=`` argument and the extension of its path form."""


def _old_style_page(method: str, segments: Sequence[str], query: Mapping[str, Sequence[str]],
                    slash: bool) -> Route | None:
    """A redirect (301) from ``NAME?cmd=PAGE&node=REV&file=PATH&…`` (or with ``;`` between them, as
    hgweb's oldest links have them) to the page's own URL, ``NAME/PAGE/REV/PATH?…``; None when
    ``cmd`` is not one of hgweb's pages (a Mercurial command) or the method is not GET or HEAD.
    The location is relative to the request's, so that it holds behind a proxy's path."""
    commands = query[HG_COMMAND_ARG]
    if method not in PAGE_METHODS or len(commands) != 1:
        return None
    page, *pairs = commands[0].split(";")
    if page not in OLD_STYLE_PAGES or _repo_name(segments) is None:
        return None
    args: dict[str, list[str]] = {key: list(values) for key, values in query.items() if key != HG_COMMAND_ARG}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key:
            args.setdefault(key, []).append(value)
    node = (args.pop("node", None) or [""])[0]
    path = (args.pop("file", None) or [""])[0].strip("/")
    if page == "rawfile":
        page = "raw-file"
    if page == "archive":
        extension = OLD_STYLE_ARCHIVES.get((args.pop("type", None) or [""])[0])
        if extension is None or not node:
            return None
        node += extension
    elif path and not node:
        node = "tip"  # hgweb's changeset when none is named
    parts = [page]
    if node:
        parts.append(quote(node.replace("/", "%2F"), safe=""))  # a name with "/" as hgweb's links name it
        if path:
            parts.append(quote(path, safe="/"))
    here = "./" if slash else "./" + quote(segments[-1], safe="") + "/"
    extra = urlencode([(key, value) for key, values in args.items() for value in values])
    return Route(RouteKind.REDIRECT, "/".join(segments), here + "/".join(parts) + ("?" + extra if extra else ""),
                 status=301)


def _hg_route(method: str, segments: Sequence[str], query: Mapping[str, Sequence[str]]) -> Route:
    name = _repo_name(segments)
    if name is None:
        return _refused_name(segments)
    if method not in HG_METHODS:
        return _error(405, "Mercurial commands need GET or POST", HG_METHODS)
    commands = query[HG_COMMAND_ARG]
    if len(commands) != 1 or not commands[0]:
        return _error(400, "exactly one cmd argument is needed")
    return Route(RouteKind.HG_COMMAND, name, commands[0])


# --- HTTP Basic authentication ----------------------------------------------------------------

def parse_basic(header: bytes | None) -> tuple[str, str] | None:
    """``Authorization: Basic base64(user:password)`` → (user, password); None if absent.

    Raises ``ProtocolError(401)`` for any other scheme or a malformed value.
    """
    if header is None:
        return None
    scheme, _, value = header.strip().partition(b" ")
    if scheme.lower() != b"basic" or len(value) > MAX_CREDENTIALS_BYTES:
        raise ProtocolError("only HTTP Basic authentication is supported", http_status=401)
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("malformed Basic credentials", http_status=401) from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:  # an old client's Latin-1 (RFC 7617 leaves the charset open; git and hg send UTF-8)
        raise ProtocolError("Basic credentials that are not UTF-8 (a client sending Latin-1?): the user name and "
                            "password must be sent in UTF-8", http_status=401) from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise ProtocolError("malformed Basic credentials", http_status=401)
    return unicodedata.normalize("NFC", user), password


class Unauthorized(PermissionDenied):
    """Credentials are missing or wrong: answer 401 with a Basic challenge.  ``detail``: why, for
    the log only (a user whose entry was skipped: the client is not told that the user exists)."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class LoginNeeded(Unauthorized):
    """A client that sent no credentials asked for what needs a user: the challenge every HTTP push
    of git and hg meets before it sends its password (logged as that, not as a refusal)."""


PASSWORDS_UNREADABLE = "the server cannot read its password file; tell the server's operator"
"""What a client that logs in is told while the ``--htpasswd`` file cannot be read (403, not a
challenge: its credentials may be right, and a 401 makes git's credential helper forget them)."""


def refusal_outcome(status: int, message: str, exc: BaseException) -> str:
    """A refused request's outcome for its log line: what its client was told and, for a login
    refused because the user's entry was skipped, why (``Unauthorized.detail``).  A 401 to a client
    that sent no credentials is the challenge every HTTP push of git and hg meets before its
    password is sent: "asked to log in", not "refused", which an operator's alerts look for."""
    if isinstance(exc, LoginNeeded):
        return f"asked to log in ({status}): {message}"
    detail = exc.detail if isinstance(exc, Unauthorized) else None
    return f"refused {status}: {message}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class HttpFront:
    """What every handler of one listener needs."""

    config: ServiceConfig
    authorizer: Authorizer
    users: Htpasswd | None

    def authenticate(self, request: server.Request) -> defer.Deferred[str | None]:
        """The user named by valid Basic credentials, None if none were sent; ``Unauthorized`` if wrong."""
        try:
            credentials = parse_basic(request.getHeader(b"authorization"))
        except ProtocolError as bad:
            return defer.fail(Unauthorized(str(bad)))
        if credentials is None:
            return defer.succeed(None)
        if self.users is None:
            return defer.fail(Unauthorized("no --htpasswd file is configured; nobody can log in over HTTP"))
        user, password = credentials
        d = run_blocking(self.users.check, user, password)
        d.addErrback(_passwords_unreadable, self.users)
        return d.addCallback(_user_if_valid, user, self.users, request)

    def authorize(self, request: server.Request, repo: str, transport: str, access: Access) -> defer.Deferred[str | None]:
        """Authenticate, then ask the authorizer; fails with ``Unauthorized``/``PermissionDenied``.

        An anonymous request refused by the authorizer becomes ``Unauthorized``
        so the client (git, hg) prompts for credentials.
        """
        d = self.authenticate(request)
        d.addCallback(self._check, repo, transport, access)
        return d.addCallback(self.counted, request)

    def counted(self, user: str | None, request: server.Request) -> str | None:
        """Count the request among its user's operations until it finishes (``max_sessions_per_user``),
        and against ``requests_per_minute``."""
        if request.finished or getattr(request, "_disconnected", False):  # notifyFinish would never fire
            return user
        count_request(self.config, user, str(getattr(request.getClientAddress(), "host", "?")))
        leave = user_sessions(self.config).enter(user, limits_for(self.config).max_sessions_per_user)
        request.notifyFinish().addBoth(lambda _: leave())
        return user

    def _check(self, user: str | None, repo: str, transport: str, access: Access) -> str | None:
        try:
            self.authorizer.check(user, repo, transport, access)
        except ReadOnly:
            raise  # no user may write: a password would not help, so none is asked for
        except PermissionDenied as refusal:
            if user is None and not isinstance(refusal, Unauthorized):
                raise LoginNeeded(str(refusal)) from None
            raise
        return user




def site_url(front: HttpFront, request: server.Request) -> str:
    """Where clients reach this server, for the URLs it hands out (clone URLs, LFS actions):
    ``[http] public_url`` of the ``--config`` file (a reverse proxy's address, maybe with a path),
    else ``scheme://host[:port]`` as the client reached it (its ``Host`` when it looks like one)."""
    public = public_url(front.authorizer)
    if public:
        return public
    host = (request.getHeader(b"host") or b"").decode("ascii", "replace")
    if not HOST_HEADER.fullmatch(host):
        local = request.getHost()  # the address the client reached: an IPv6 one is bracketed in a URL
        address = getattr(local, "host", "localhost")
        host = f"{url_host(address)}:{getattr(local, 'port', 80)}"
    scheme = "https" if request.isSecure() else "http"
    return f"{scheme}://{host}"


LOGGED_USER = "_hgwire_user"
"""The request attribute that holds the user its credentials named, once checked: its access
line's user field (``HgwireSite.log``), ``-`` without one, as lighttpd's and Apache's ``%u``."""


def _user_if_valid(valid: bool, user: str, users: Htpasswd, request: server.Request) -> str:
    if not valid:
        # one line with who tried from where, as sshd's "Failed password for …": what fail2ban and
        # the like match (the refusal's own line names the repository, not the client)
        metrics.count_auth_failure("http")
        log.info("HTTP login refused for user {tried} from {peer}: wrong user name or password",
                 tried=user[:MAX_LOGGED_USER], peer=peer_text(request.getClientAddress()))
        raise Unauthorized("wrong user name or password", detail=users.skipped(user))
    setattr(request, LOGGED_USER, user)
    return user


MAX_LOGGED_USER = 200
"""Characters of a refused login's user name its log line shows."""


def _passwords_unreadable(failure: Failure, users: Htpasswd) -> NoReturn:
    """The ``--htpasswd`` file could not be read: the login is refused for that reason, with one
    line for the operator, instead of a traceback and a 500 for every request that logs in (out of
    open files: left to the request's own 503)."""
    failure.trap(OSError)
    exc = failure.value
    assert isinstance(exc, OSError)
    if out_of_files(exc):
        failure.raiseException()
    warn_passwords_unreadable(users.path, exc)
    raise PermissionDenied(PASSWORDS_UNREADABLE)


def warn_passwords_unreadable(path: Path, exc: OSError) -> None:
    log.warn("--htpasswd {path} could not be read ({error}); nobody can log in over HTTP until it can",  # noqa: G010
             path=str(path), error=exc.strerror or str(exc))


def send_unauthorized(request: server.Request, message: str) -> None:
    """401 with ``WWW-Authenticate: Basic realm="hgwire"``: git and hg then ask for credentials."""
    request.setHeader(b"WWW-Authenticate", f'Basic realm="{REALM}"'.encode())
    send_error(request, 401, message)


MISSING_PHRASES = {429: b"Too Many Requests"}
"""Reason phrases of statuses Twisted's table lacks (it would say "Unknown Status")."""


def retry_after(request: server.Request, exc: BaseException) -> None:
    """``Retry-After`` for a refusal that says when to come back (``requests_per_minute``)."""
    if isinstance(exc, RateLimited):
        request.setHeader(b"Retry-After", b"%d" % exc.retry_after)


def send_error(request: server.Request, status: int, message: str, content_type: bytes = b"text/plain; charset=utf-8",
               phrase: bool = False, body: bytes | None = None) -> None:
    """Finish a request with a short plain-text error (git prints it to the user); with ``phrase``,
    the message is the status line's reason too (what hg prints); ``body``: the message in another
    shape (hgweb's JSON or raw error), with its ``content_type``."""
    if body is None:
        body = (message.rstrip("\n") + "\n").encode("utf-8", "replace")
    request.setResponseCode(status, reason_phrase(message) if phrase else MISSING_PHRASES.get(status))
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", str(len(body)).encode())
    request.setHeader(b"Cache-Control", b"no-cache")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")  # (an error may quote the URL it was asked)
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


# --- the resource -----------------------------------------------------------------------------

Handler = Callable[[HttpFront, server.Request, Route], None]
"""Serve one routed request: write the response and finish it (it may do so later)."""

HTTP_HANDLERS: dict[RouteKind, Handler] = {}
"""Route kind → handler; ``gateway.git_http`` and the Mercurial HTTP work add rows."""


HANDLER_MODULES: tuple[str, ...] = ("gateway.git_http", "gateway.git_lfs", "gateway.hg_http", "gateway.hg_archive",
                                     "gateway.hg_web", "gateway.repo_page", "gateway.health", "gateway.go_get")
"""Modules whose ``HANDLERS: Mapping[RouteKind, Handler]`` fill ``HTTP_HANDLERS``; absent ones are skipped."""


def register_handlers() -> None:
    """Fill ``HTTP_HANDLERS`` from every available handler module (rows already present win)."""
    for name in HANDLER_MODULES:
        try:
            handlers: Mapping[RouteKind, Handler] = importlib.import_module(name).HANDLERS
        except (ImportError, AttributeError) as exc:
            log.info("{module} is not available: {error}", module=name, error=str(exc))
            continue
        for kind, handler in handlers.items():
            HTTP_HANDLERS.setdefault(kind, handler)


def decode_segments(raw: Sequence[bytes]) -> list[str]:
    """Twisted's already-unquoted ``postpath`` as text: bytes that are not UTF-8 as lone surrogates
    (``surrogateescape``), so that a file whose name is not UTF-8 (``caf%E9.txt``) has its pages,
    as in hgweb; a repository's name never holds one (``validate_name``)."""
    return [segment.decode("utf-8", "surrogateescape") for segment in raw]


def decode_query(args: Mapping[bytes, Sequence[bytes]]) -> dict[str, list[str]]:
    return {k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs] for k, vs in args.items()}


STREAMED_ROUTES = frozenset({(b"POST", RouteKind.GIT_RECEIVE_PACK), (b"PUT", RouteKind.GIT_LFS_OBJECT)})
"""Requests (method, route) whose handler reads the body as it arrives (``gateway.live_body``): a
push's pack is scanned while it comes, as over git:// and SSH, and an LFS upload is written beside
its place while it comes, not after twisted.web spooled either whole to ``TMPDIR``; so are an hg
push's bundle and largefile (``HG_STREAMED_COMMANDS``)."""


def streams_body(command: bytes, path: bytes, headers: Headers) -> bool:
    """Whether a request, its headers just in, is one of ``STREAMED_ROUTES`` with a body as sent
    (a ``Content-Encoding`` is decoded whole first, ``gateway.git_http.BODY_DECODERS``)."""
    if command not in (b"POST", b"PUT"):
        return False
    encodings = headers.getRawHeaders(b"content-encoding") or [b""]
    if len(encodings) > 1 or encodings[0].strip().lower() not in (b"", b"identity"):
        return False
    routed = route_of(command, path)
    kind = routed.kind
    if (command, kind) == (b"POST", RouteKind.HG_COMMAND):  # a push's bundle or a largefile: not other commands' bodies
        return routed.service in HG_STREAMED_COMMANDS
    return (command, kind) in STREAMED_ROUTES


def route_of(command: bytes, path: bytes) -> Route:
    """The route of a request line's method and target, before twisted.web has parsed them."""
    raw, _, query = path.partition(b"?")
    segments = decode_segments([unquote_to_bytes(segment) for segment in raw[1:].split(b"/")])
    return route(command.decode("ascii", "replace"), segments, decode_query(http.parse_qs(query, 1)))


HG_STREAMED_COMMANDS = frozenset({"unbundle", "putlfile"})
"""The hg commands whose body (after its POST arguments) is their payload, read as it arrives
(``gateway.hg_http``): a push's bundle, a largefile."""


class RootResource(resource.Resource):
    """Every request of the listener: route it, then hand it to the handler of its kind."""

    isLeaf = True

    def __init__(self, front: HttpFront) -> None:
        super().__init__()
        self._front = front

    def render(self, request: server.Request) -> Any:
        if getattr(request, "_refused", False):  # BoundedRequest already answered 413
            return server.NOT_DONE_YET
        request.setHeader(b"Server", SERVER_HEADER)  # not twisted.web's name and version
        segments = decode_segments(request.postpath or [])
        method = (request.method or b"").decode("ascii", "replace")
        query = decode_query(request.args or {})
        matched = route(method, segments, query)
        service = metrics.http_service(matched.kind.value, matched.service)
        setattr(request, METRICS_SERVICE, service)
        setattr(request, ACCESS_REPO, matched.repo or None)
        request.notifyFinish().addBoth(_ended, metrics.started("http", service), service, request)  # finished, or its client gone
        handler = HTTP_HANDLERS.get(matched.kind)
        if matched.kind is RouteKind.REDIRECT:
            request.setHeader(b"Location", matched.service.encode("ascii"))
            send_error(request, matched.status, f"this page is at {matched.service}")
        elif matched.kind is RouteKind.ERROR:
            if matched.allowed:
                request.setHeader(b"Allow", ", ".join(matched.allowed).encode())
            send_error(request, matched.status, matched.message, phrase=HG_COMMAND_ARG in query)
        elif handler is None:
            send_error(request, 501, f"{matched.kind.value} is not available on this server yet")
        else:
            handler(self._front, request, matched)
        return server.NOT_DONE_YET


def _ended(result: object, end: Callable[[], None], service: str, request: server.Request) -> None:
    end()
    if isinstance(result, Failure) and not getattr(request, ACCESS_LOGGED, False):
        # its connection went before its answer was whole (unless refused, ``log_refusal``): no access line counts it
        metrics.count_request("http", service)  # (its handler's line counts its error: client gone, cut)


class BoundedRequest(server.Request):
    """A request whose body may not exceed ``MAX_REQUEST_BODY`` (413 and close, unread).

    From a trusted reverse proxy (``[http] trusted_proxies``), the client is who
    ``X-Forwarded-For`` names (``getClientAddress()``: logs, the audit log, hooks)
    and the request is secure when ``X-Forwarded-Proto`` says https (``isSecure()``:
    hg pushes, clone URLs); with ``[http] forwarded_header = "forwarded"``, RFC 7239's
    ``Forwarded`` says both instead.
    """

    max_body = MAX_REQUEST_BODY
    _client: IAddress | None = None
    _announced: int | None = None
    _headers_in = False
    _body_in = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._begun = time.monotonic()

    def getClientAddress(self) -> IAddress:
        if self._client is None:
            peer: IAddress = super().getClientAddress()
            host = address_key(peer)
            trusted = self._trusted()
            if host not in trusted:  # no proxy's headers count: the peer is the client, whatever comes
                self._client = peer  # (asked five times a request: by the handler, its logs, the access line)
                return peer
            client = forwarded_client(host, self.requestHeaders.getRawHeaders(trusted.client_header, []), trusted)
            if client is None:
                return peer  # not cached: the headers may not be in yet
            self._client = tcp_address(client, 0)
        return self._client

    def isSecure(self) -> bool:
        if super().isSecure():
            return True
        peer = super().getClientAddress()
        trusted = self._trusted()
        host = address_key(peer)
        if host not in trusted:
            return False
        return forwarded_https(host, self.requestHeaders.getRawHeaders(trusted.proto_header, []), trusted)

    def _trusted(self) -> Trusted:
        trusted = getattr(getattr(self.channel, "site", None), "trusted_proxies", None)
        return trusted() if trusted is not None else NO_PROXIES

    def gotLength(self, length: int | None) -> None:
        self._body_bytes = 0
        self._headers_in, self._announced = True, length
        limits = getattr(getattr(self.channel, "site", None), "connection_limits", None)
        if limits is not None:  # [limits] max_request_body of the policy file in force now
            self.max_body = limits().max_request_body
        if length is not None and length > self.max_body:
            self._refuse_body()
            return
        # the request line, which twisted.web's channel keeps until it hands the request over whole
        command, path, version = (getattr(self.channel, name, None) for name in ("_command", "_path", "_version"))
        if (length != 0 and isinstance(command, bytes) and isinstance(path, bytes) and isinstance(version, bytes)
                and streams_body(command, path, self.requestHeaders)):
            self._start_early(command, path, version)
            return
        try:
            super().gotLength(length)  # a body over 100 kB goes to a temporary file in TMPDIR
        except OSError as exc:
            self._refuse_spool(exc)

    # -- a body its handler reads as it arrives (gateway.live_body) ----------------------------

    _held: list[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None
    _early = False

    def _start_early(self, command: bytes, path: bytes, version: bytes) -> None:
        """Process the request now, its headers in: its handler reads the body as it arrives and
        what it answers is held until the body is in (``requestReceived``)."""
        assert self.channel is not None
        self.content = LiveBody(interfaces.IPushProducer(self.channel.transport, None), self._body_wanted)
        self._early = True
        self._held = []
        super().requestReceived(command, path, version)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._body_in = True
        if getattr(self, "_refused", False):  # answered (413, 507); over TLS the body came in to its end
            return
        if not self._early:
            super().requestReceived(command, path, version)
            return
        body = self.content
        if isinstance(body, LiveBody):
            body.complete()
        held, self._held = self._held, None
        for call, args in held or ():
            call(*args)

    def write(self, data: bytes) -> None:
        if (held := self._holding()) is not None:
            held.append((super().write, (data,)))
        else:
            super().write(data)

    def finish(self) -> None:
        if (held := self._holding()) is not None:
            held.append((super().finish, ()))
            if isinstance(self.content, LiveBody):
                self.content.discard()  # answered before the body is in: the rest is read and dropped
        else:
            super().finish()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if (held := self._holding()) is not None:
            held.append((super().registerProducer, (producer, streaming)))
        else:
            super().registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        if (held := self._holding()) is not None:
            held.append((super().unregisterProducer, ()))
        else:
            super().unregisterProducer()

    # -- Expect: 100-continue on a body read as it arrives -------------------------------------
    # twisted.web sends ``100 Continue`` as soon as the headers are in: a push refused (401, 403)
    # then had its whole body sent for nothing.  Here the 100 waits until the handler first reads
    # the body (its checks passed); an answer given before goes out at once, with the connection
    # closing, and the body is never sent (RFC 9110 §10.1.1), as lighttpd with git-http-backend does.

    _continue_held = False
    _body_asked = False

    def holds_continue(self) -> bool:
        """Whether the channel's ``100 Continue`` must not go out now (``HgwireHTTPChannel``)."""
        if getattr(self, "_refused", False):  # answered (413, 507), closing: a 100 after it would garble it
            return True
        if not self._early or self._body_asked or self._held is None:
            return False
        if self._held:  # answered while its headers came in (an anonymous push): that answer goes now
            self._answer_now()
        else:
            self._continue_held = True
        return True

    def _holding(self) -> list[tuple[Callable[..., Any], tuple[Any, ...]]] | None:
        """Where what the handler answers waits for the body, if it does; answered while the 100
        waits: it goes now."""
        if self._continue_held:
            self._answer_now()
        return self._held

    def _body_wanted(self) -> None:
        """The handler reads the body: the client that waits for a 100 is told to send it."""
        self._body_asked = True
        if self._continue_held:
            self._continue_held = False
            channel = self.channel
            if isinstance(channel, HgwireHTTPChannel):
                channel.send_continue()

    def _answer_now(self) -> None:
        """Send the answer given while the client waits for its ``100 Continue`` (so has not sent
        its body): at once, the connection closing after it, whatever of the body comes dropped."""
        self._continue_held = False
        channel = self.channel
        assert channel is not None
        self.setHeader(b"Connection", b"close")
        channel.persistent = False
        if isinstance(channel, HgwireHTTPChannel):
            channel.drop_input()
        if isinstance(self.content, LiveBody):
            self.content.discard()
        held, self._held = self._held, None
        for call, args in held or ():
            call(*args)

    def connectionLost(self, reason: Failure) -> None:
        self._continue_held = False  # the client is gone: an answer its handler gives is held, never sent
        if self._headers_in and not (self._body_in or self._early or getattr(self, "_refused", False)):
            self._log_cut_body()
        super().connectionLost(reason)

    def _log_cut_body(self) -> None:
        """The connection went while twisted.web spooled the body, so nothing ran and nothing was
        logged: one line and its count, as a git:// or SSH request its client left has (the stop's
        cut said as such, ``gone_outcome``)."""
        channel = self.channel
        command, path = (bytes(getattr(channel, name, None) or b"?") for name in ("_command", "_path"))
        routed = route_of(command, path)
        service = metrics.http_service(routed.kind.value, routed.service)
        whole = f"of {self._announced} bytes" if self._announced is not None else "bytes of a chunked body"
        outcome = gone_outcome("client gone", getattr(channel, "transport", None))
        outcome += f": its body was cut after {self._body_bytes} {whole}"
        metrics.count_request("http", service, outcome)
        log.info("{method} {path} from {peer}: {outcome} in {elapsed_ms} ms",
                 method=command.decode("ascii", "replace"), path=path[:200].decode("ascii", "replace"),
                 peer=peer_text(self.getClientAddress()), repo=routed.repo or None, service=service,
                 outcome=outcome, bytes_in=self._body_bytes,
                 elapsed_ms=round((time.monotonic() - self._begun) * 1000))

    def handleContentChunk(self, data: bytes) -> None:
        if getattr(self, "_refused", False):  # (TLS closes once the client stops sending: dropped meanwhile)
            return
        self._continue_held = False  # the client sends its body without waiting for the 100: none goes
        self._body_bytes += len(data)
        if self._body_bytes > self.max_body:
            self._refuse_body()
            return
        try:
            super().handleContentChunk(data)
        except OSError as exc:  # TMPDIR full, over quota, gone: say so instead of dropping the connection
            self._refuse_spool(exc)

    def process(self) -> None:
        if getattr(self, "_refused", False):
            return  # answered already (413, 507) while the body came in: nothing runs
        super().process()

    def _refuse_body(self) -> None:
        """Answer before reading the body, as Twisted answers a bad header (http.py); one log line."""
        channel = self.channel
        log.info("{method} {path} from {client}: refused 413: its body is larger than {limit} bytes "
                 "([limits] max_request_body)",
                 method=bytes(getattr(channel, "_command", b"?")).decode("ascii", "replace"),
                 path=bytes(getattr(channel, "_path", b"?"))[:200].decode("ascii", "replace"),
                 client=getattr(self.getClientAddress(), "host", "?"), limit=self.max_body)
        self._refuse(b"413 " + http.RESPONSES[413], f"request body is larger than {self.max_body} bytes")

    def _refuse_spool(self, exc: OSError) -> None:
        """The body cannot be held where twisted.web spools it (``TMPDIR``): 507, nothing was run."""
        channel = self.channel
        log.error("{method} {path} from {client}: the request body could not be spooled to the temporary "
                  "directory {tmpdir} ({reason}); " + TMPDIR_ADVICE,
                  method=bytes(getattr(channel, "_command", b"?")).decode("ascii", "replace"),
                  path=bytes(getattr(channel, "_path", b"?"))[:200].decode("ascii", "replace"),
                  client=getattr(self.getClientAddress(), "host", "?"), tmpdir=tempfile.gettempdir(),
                  reason=exc.strerror or str(exc))
        # hg prints the reason phrase ("abort: HTTP Error 507: ..."), git only the status: both get one
        self._refuse(b"507 Insufficient Storage (the server's temporary space is full; try again later)",
                     temp_space_refusal("the request's body", exc))

    def refuse_head(self, bad: ProtocolError) -> None:
        """Answer a request whose head breaks HTTP/1.1 (``protocols.http_head``) with its status,
        the connection closing: it is not run, and what follows it on the connection is not read."""
        phrase = http.RESPONSES.get(bad.http_status, b"Bad Request")
        self._refuse(b"%d %s" % (bad.http_status, phrase), f"{bad}; nothing was done")

    def _refuse(self, status: bytes, message: str) -> None:
        """Answer now, with the connection closing, and drop the rest of the body."""
        if getattr(self, "_refused", False):
            return
        self._refused = True
        spooled = getattr(self, "content", None)
        self.content = _Discard()
        if spooled is not None:
            with contextlib.suppress(OSError):
                spooled.close()  # a temporary file: its space comes back now
        body = (message + "\n").encode()
        head = (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        assert self.channel is not None
        transport = self.channel.transport
        transport.write(head + body)  # type: ignore[union-attr]
        transport.loseConnection()  # type: ignore[union-attr]
        close_under_tls(transport)
        self.log_refusal(int(status[:3]), len(body))

    def log_refusal(self, code: int, length: int) -> None:
        """The access line of a request answered before twisted.web hands it over (413, 507, a
        broken head's 400, 414, 431, 408), which it never finishes, so never logged: every answer
        has one, and counts in ``/.metrics``, as nginx logs its 400s and 413s."""
        channel = self.channel
        if getattr(self, ACCESS_LOGGED, False) or channel is None:
            return
        if not self._early:  # twisted.web sets the request line only once the body is in
            command, path, version = (getattr(channel, name, None) for name in ("_command", "_path", "_version"))
            self.method, self.uri = bytes(command or b"-"), bytes(path or b"-")
            self.clientproto = bytes(version or b"-")
            if command and path:
                routed = route_of(self.method, self.uri)
                setattr(self, METRICS_SERVICE, metrics.http_service(routed.kind.value, routed.service))
                setattr(self, ACCESS_REPO, routed.repo or None)
        self.code, self.sentLength = code, length
        site = getattr(channel, "site", None)
        if isinstance(site, HgwireSite):
            site.log(self)


def close_under_tls(transport: Any) -> None:
    """Close the TCP connection under a closing TLS one in ``REFUSED_LINGER`` seconds: TLS closes
    once the client's close_notify comes, which a client still sending its body sends only when
    done (its bytes are dropped meanwhile)."""
    from twisted.internet import reactor

    close_sent(transport, reactor.callLater, REFUSED_LINGER)


REFUSED_LINGER = 5.0
"""Seconds a TLS connection whose request was refused before its body was read (413, 507) keeps
taking the body so that the client reads the answer, before it is closed under TLS's feet."""


class _Discard:
    """Where the rest of a refused body goes while the connection closes."""

    def write(self, data: bytes) -> None:
        pass

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def close(self) -> None:
        pass


_CHUNKED_DECODER = http._ChunkedTransferDecoder


class _StrictChunks(_CHUNKED_DECODER):
    """twisted.web's chunked decoder, refusing a chunk-size, chunk-end or trailer line that ends
    in LF alone (``protocols.http_head.line_ends_in_bare_lf``) as soon as it comes: twisted.web
    waited for a CRLF, and took a trailer line ``X: a<LF>`` up to the CRLF after it and went on
    waiting for the section's end, reading the next request as trailers."""

    bare_lf = False

    def _refuse_bare_lf(self) -> None:
        if line_ends_in_bare_lf(self._buffer):
            self.bare_lf = True
            raise http._MalformedChunkedDataError(BARE_LF)

    def _dataReceived_CHUNK_LENGTH(self) -> bool:
        self._refuse_bare_lf()
        return super()._dataReceived_CHUNK_LENGTH()

    def _dataReceived_CRLF(self) -> bool:
        self._refuse_bare_lf()
        return super()._dataReceived_CRLF()

    def _dataReceived_TRAILER(self) -> bool:
        self._refuse_bare_lf()
        return super()._dataReceived_TRAILER()


class HgwireHTTPChannel(http.HTTPChannel):
    """twisted.web's channel with room for Mercurial's ``X-HgArg-N`` headers.

    hg sends a pull's node lists (``known``, ``getbundle`` heads/common) in
    headers of ``httpheader`` bytes each; twisted.web's 16 KiB total would
    refuse pulls of repositories with a few hundred heads.  The count stays
    bounded by ``protocols.hg_http.HttpLimits.header_count``.
    """

    totalHeadersSize = 256 * 1024
    _header_deadline: Any = None
    _partial = False

    def lineLengthExceeded(self, line: bytes) -> None:
        """A request line (414) or header line (431) over ``MAX_LENGTH``, answered with why
        (twisted.web closed the connection without a word)."""
        if getattr(self, "_HTTPChannel__first_line", False):
            self._refuse_request(b"414 URI Too Long", f"the request line is longer than {self.MAX_LENGTH} bytes")
        else:
            self._refuse_request(b"431 Request Header Fields Too Large",
                                 f"a header line is longer than {self.MAX_LENGTH} bytes")

    def _respondToBadRequestAndDisconnect(self) -> None:
        """twisted.web's bare 400, with a body that says what is wrong: over the limits of the
        headers, 431 (as a header line too long is)."""
        if getattr(self._transferDecoder, "bare_lf", False):
            self._refuse_request(b"400 Bad Request", BARE_LF)
        elif self._headers_over_limits():
            why = (f"the request's headers are over this server's limits ({self.maxHeaders} headers, "
                   f"{self.totalHeadersSize // 1024} KiB in all)")
            if b"cmd=" in (getattr(self, "_path", None) or b""):
                # an hg command whose arguments (a pull's or clone's thousands of heads) came as
                # X-HgArg-N headers: hg prints only the reason phrase, so it says what to do
                why += ("; a request naming very many heads: pull over SSH, or ask the server's operator "
                        "to turn on [hg_http] httppostargs")
                self._refuse_request(b"431 " + why.encode(), why)
            else:
                self._refuse_request(b"431 Request Header Fields Too Large", why + "; send fewer")
        else:
            self._refuse_request(b"400 Bad Request", "the request line or one of its headers is malformed")

    def _headers_over_limits(self) -> bool:
        """Whether twisted.web refuses the request for its count of headers or their size."""
        return bool(self._receivedHeaderCount > self.maxHeaders or self._receivedHeaderSize > self.totalHeadersSize)

    def lineReceived(self, line: bytes) -> None:
        """twisted.web's, with the empty lines before a request line ignored (RFC 9112 §2.2; it
        ignored one and answered 400 to a second) and its version read as ``request_line_version``
        reads it (``HTTP/1.2`` as 1.1: twisted.web's 400; ``HTTP/2.0``: 505), its target's bytes past
        ASCII read as their percent-encoding (``request_line_target``: libgit2's unescaped UTF-8 names;
        twisted.web's 400), and a line holding a bare LF (``GET / HTTP/1.1<LF>Host: h<CR><LF>``)
        refused (400, ``BARE_LF``)."""
        if b"\n" in line:
            self._refuse_bare_lf()
            return
        if getattr(self, "_HTTPChannel__first_line", 0) and self.persistent:
            if not line:
                return
            try:
                line = request_line_target(request_line_version(line))
            except ProtocolError as bad:
                status = b"%d %s" % (bad.http_status, http.RESPONSES.get(bad.http_status, b"Bad Request"))
                self._refuse_request(status, str(bad))
                return
        super().lineReceived(line)

    def _refuse_request(self, status: bytes, why: str) -> None:
        body = f"{why}; nothing was done\n".encode()
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        self.loseConnection()
        self._log_refused(int(status[:3]), len(body))

    def _log_refused(self, code: int, length: int) -> None:
        """The access line of a request the channel answered itself (``BoundedRequest.log_refusal``);
        one refused at its first line has no request yet: it gets one to be logged."""
        request = self.requests[-1] if self.requests else self.requestFactory(self, 0)
        if isinstance(request, BoundedRequest):
            request.log_refusal(code, length)

    # A request's line and headers must arrive within ``request_timeout`` (slow-loris):
    # the clock runs from the connection, and again after each answered request.

    def connectionMade(self) -> None:
        super().connectionMade()
        self._arm_header_deadline()

    _dropping = False
    _first = True
    _held = b""  # the first bytes while they may still begin a git:// request (``may_become_daemon_request``)

    def dataReceived(self, data: bytes) -> None:
        if self._first:
            data, self._held = self._held + data, b""
            if may_become_daemon_request(data):  # (git sent a pkt-line's length alone: its request follows)
                self._held = data
                return
            self._first = False
            if tls_handshake(data) and not interfaces.ISSLTransport.providedBy(self.transport):
                self._refuse_tls()
                return
            if is_daemon_request(data):
                self._refuse_git_request()
                return
        if self._header_deadline is not None:
            self._partial = True
        super().dataReceived(data)
        if (self.line_mode and not self._busyReceiving and not self.paused and line_ends_in_bare_lf(self._buffer)
                and self.transport is not None and not getattr(self.transport, "disconnecting", False)):
            # the head's line not yet ended holds a LF without its CR: refused now, where it
            # waited request_timeout for the CRLF (``printf 'GET / HTTP/1.1\nHost: h\n\n' | nc``)
            self._refuse_bare_lf()

    def _refuse_bare_lf(self) -> None:
        """A line of the request's head ends in LF alone: 400 (``BARE_LF``), the connection closing,
        nothing of the request run and nothing after it read (read another way by a proxy in front,
        its bytes are not this server's to guess)."""
        assert self.transport is not None
        log.info("HTTP request from {peer} refused (400): a line of its head ends in LF alone, not CRLF",
                 peer=peer_text(self.transport.getPeer()))
        self._disarm_header_deadline()
        self._refuse_request(b"400 Bad Request", BARE_LF)

    def _maybeChooseTransferDecoder(self, header: bytes, data: bytes) -> bool:
        """twisted.web's, with its chunked decoder made ``_StrictChunks``.  Called for each header
        (and true for each that lets the request go on): only ``Transfer-Encoding`` is looked at
        again, the decoder's class taken once (through ``twisted.web.http``'s deprecation proxy each
        attribute costs a Python call: six a request)."""
        chosen = bool(super()._maybeChooseTransferDecoder(header, data))
        if chosen and header == b"Transfer-Encoding" and type(self._transferDecoder) is _CHUNKED_DECODER:
            self._transferDecoder = _StrictChunks(self.requests[-1].handleContentChunk, self._finishRequestBody)
        return chosen

    def _refuse_tls(self) -> None:
        """A TLS handshake on a plain listener: the client used ``https://`` for an ``http://`` port.
        Answered at once (as ``hg serve`` does), where it waited ``request_timeout`` for a request
        line and then logged it as too slow; git and hg report their TLS error, ``curl -v`` shows
        the answer."""
        assert self.transport is not None
        log.info("HTTP request from {peer}: a TLS handshake on the plain HTTP listener "
                 "(the client used https:// for an http:// port)", peer=peer_text(self.transport.getPeer()))
        self._disarm_header_deadline()
        self._refuse_request(b"400 Bad Request", "this port speaks plain HTTP, not TLS: use an http:// URL for it, "
                                                 "or the server's HTTPS port for https://")

    def _refuse_git_request(self) -> None:
        """A git:// request on the HTTP listener (the client used ``git://`` for an ``http://``
        port): an ``ERR`` pkt-line, which git shows as ``fatal: remote error:``, at once, where git
        waited ``request_timeout`` for the end of a request line and hung up saying nothing."""
        assert self.transport is not None
        log.info("HTTP request from {peer}: a git:// request on the HTTP listener "
                 "(the client used git:// for an http:// port)", peer=peer_text(self.transport.getPeer()))
        self._disarm_header_deadline()
        self.transport.write(pktline.encode(b"ERR " + SPEAKS_HTTP.encode()))
        self.loseConnection()

    def rawDataReceived(self, data: bytes) -> None:
        if self._dropping:  # a request answered before its body was sent: the connection is closing
            return
        super().rawDataReceived(data)

    def _send100Continue(self) -> None:
        """twisted.web's ``100 Continue``, unless the request holds it (``BoundedRequest.holds_continue``)."""
        request = self.requests[-1] if self.requests else None
        if not (isinstance(request, BoundedRequest) and request.holds_continue()):
            super()._send100Continue()

    def send_continue(self) -> None:
        """The ``100 Continue`` a request held, once its handler reads the body."""
        if self.transport is not None and not self._dropping:
            super()._send100Continue()

    def drop_input(self) -> None:
        """Read nothing more: the request was answered before its body was sent, and the connection
        closes once the answer is out (under TLS, soon even if the client does not close its side)."""
        self._dropping = True

    def allHeadersReceived(self) -> None:
        self._disarm_header_deadline()
        if not self._head_refused():
            super().allHeadersReceived()

    def _head_refused(self) -> bool:
        """Check the request's head as twisted.web does not (``protocols.http_head``: its target,
        its ``Host``, its body's framing): answered, nothing more read, and True if it breaks
        HTTP/1.1; an absolute-form target becomes the path it names, its host the request's
        ``Host`` (RFC 9112 §3.2.2)."""
        request = self.requests[-1] if self.requests else None
        command, target, version = (getattr(self, name, None) for name in ("_command", "_path", "_version"))
        if not (isinstance(request, BoundedRequest) and isinstance(command, bytes) and isinstance(target, bytes)
                and isinstance(version, bytes)):
            return False
        try:
            check_host(version, request.requestHeaders.getRawHeaders(b"host", []))
            check_framing(version, request.requestHeaders.getRawHeaders(b"transfer-encoding", []))
            self._path, authority = origin_form(command, target)
        except ProtocolError as bad:
            self.drop_input()  # its body, and whatever follows it, may be framed another way than it says
            request.refuse_head(bad)
            return True
        if authority is not None:
            request.requestHeaders.setRawHeaders(b"host", [authority])
        return False

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        """twisted.web's, with ``Connection`` read as the list of options it is (``close, foo``)."""
        if b"close" in connection_options(request.requestHeaders.getRawHeaders(b"connection", [])):
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])
            return False
        return bool(super().checkPersistence(request, version))

    def requestDone(self, request: Any) -> None:
        super().requestDone(request)
        if self._dropping and self.transport is not None:
            close_under_tls(self.transport)
        elif self.persistent and not self.requests and self.transport is not None:
            self._arm_header_deadline()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._disarm_header_deadline()
        if no_client_certificate(reason):  # (one it refused is logged by the check: tls._client_verified)
            log.info("TLS handshake from {peer} refused: it presented no client certificate, which the "
                     "listener's clientCA= requires", peer=peer_text(getattr(self.transport, "getPeer", lambda: None)()))
        super().connectionLost(reason)

    def between_requests(self) -> bool:
        """No request in progress, none begun (``gateway.limits``: closed so while the service stops)."""
        return not self.requests and not self._partial

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        limits = getattr(getattr(self, "site", None), "connection_limits", None)
        seconds = limits().request_timeout if limits is not None else DEFAULT_LIMITS.request_timeout
        self._partial = False
        self._header_deadline = self.callLater(seconds, self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None and self._header_deadline.active():
            self._header_deadline.cancel()
        self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport is None:
            return
        if self._partial:  # a request was begun and not finished in time: say so
            log.info("HTTP request from {peer} too slow: its headers did not arrive in time",
                     peer=peer_text(self.transport.getPeer()))
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                 b"Content-Type: text/plain\r\nContent-Length: 41\r\n\r\n"
                                 b"the request headers took too long; retry\n")
            self._log_refused(408, 41)
        # a peer that does not read is dropped by the idle limit; under TLS, one that does not
        # answer close_notify is not waited for (it held its slot until it left)
        close_sent(self.transport, self.callLater, TLS_CLOSE_GRACE)


access_log = SafeLogger(namespace="gateway.http.access")

METRICS_SERVICE = "_hgwire_metrics_service"
"""Set on a request once routed: its ``service`` label in ``/.metrics`` (``metrics.http_service``)."""

ACCESS_REPO = "_hgwire_access_repo"
"""Set on a request once routed: the repository its access event names (``repo``), None for none."""

ACCESS_LOGGED = "_hgwire_access_logged"
"""Set on a request whose access line was written (``BoundedRequest.log_refusal`` writes none more)."""

QUIET_ACCESS = "_hgwire_quiet_access"
"""Set on a request whose access line is not written (``/.health`` answering 200: a load
balancer asking every few seconds wrote tens of thousands of lines a day)."""


class HgwireSite(server.Site):
    """twisted.web's site, whose access line (one a request, in the combined log format) is a
    structured event: its text as before, with ``method``, ``path``, ``status``, ``peer``, ``user``
    (the user whose credentials the request carried, checked; else None, ``-`` in the text) and
    ``client_certificate`` (the subject of the certificate the client presented on an ``ssl:``
    listener with ``clientCA=``, else None) as fields; the subject also ends the text."""

    def log(self, request: Any) -> None:
        if self._logFile is None:  # stopped: as twisted.web's
            return
        setattr(request, ACCESS_LOGGED, True)
        metrics.count_request("http", getattr(request, METRICS_SERVICE, "none"))
        if (kind := metrics.http_error_kind(request.code)) is not None:
            metrics.count_error("http", getattr(request, metrics.ERROR_KIND, None) or kind)
        if getattr(request, QUIET_ACCESS, False):  # a health check that found all well
            return
        line = self._logFormatter(self._logDateTime, request)
        user = getattr(request, LOGGED_USER, None)
        if user is not None:  # a plain name (auth.plain_user): no space, quote or control character to escape
            line = line.replace(" - - ", f" - {user} ", 1)  # '"IP" - USER [date] …', the combined format's user
        subject = client_certificate_subject(getattr(request.channel, "transport", None))
        text = line if subject is None else line + ' client certificate "' + subject.replace('"', '\\"') + '"'
        begun = getattr(request, "_begun", None)
        access_log.info("{access_line}", access_line=text, client_certificate=subject, user=user,
                        method=request.method.decode("latin-1"), path=request.uri.decode("latin-1")[:MAX_LOGGED_PATH],
                        status=request.code, peer=peer_text(request.getClientAddress()),
                        repo=getattr(request, ACCESS_REPO, None), bytes_out=request.sentLength,
                        elapsed_ms=None if begun is None else round((time.monotonic() - begun) * 1000))


MAX_LOGGED_PATH = 2000
"""Characters of a request's target an access event's ``path`` field holds (its line holds all)."""


def make_http_site(config: ServiceConfig) -> server.Site:
    """The protocol factory of one ``--http`` listener."""
    register_handlers()
    users = Htpasswd(Path(config.htpasswd)) if config.htpasswd else None
    if config.htpasswd and not os.path.exists(config.htpasswd):
        log.warn("--htpasswd {path} does not exist (yet): nobody can log in over HTTP until it does",  # noqa: G010
                 path=config.htpasswd)
    elif users is not None:  # read now: what cannot be read, and the entries refused, are told at the start
        try:
            users.refresh()
        except OSError as exc:
            warn_passwords_unreadable(users.path, exc)
    front = HttpFront(config, authorizer_for(config), users)
    site = HgwireSite(RootResource(front))
    site.requestFactory = BoundedRequest
    site.protocol = HgwireHTTPChannel  # type: ignore[method-assign,assignment]
    site.displayTracebacks = False
    # HTTP/1.1 only over TLS ALPN: twisted.web names h2 first once the h2 package is installed, and
    # hgwire's channel, its streamed bodies and its limits are HTTP/1.1's
    site.acceptableProtocols = lambda: [b"http/1.1"]  # type: ignore[method-assign]
    site.connection_limits = lambda: limits_for(config)  # type: ignore[attr-defined]
    site.trusted_proxies = lambda: trusted_proxies(config)  # type: ignore[attr-defined]
    return site
