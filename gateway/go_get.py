"""``GET /PATH?go-get=1``: the ``go-import`` page the ``go`` command asks a host for, to learn which
repository holds a Go import path without a VCS suffix (``host/team/mod/sub/pkg`` →
``<meta name="go-import" content="host/team/mod git https://host/team/mod.git">``).

The repository is the longest leading part of PATH that names one the requester may read: the
rules first (on the reactor, as every request's), then the repository's own settings, as its pages
(``readable_any``: an hg repository's ``[web]`` read lists, a git one's ``http.uploadpack`` and
``[git] export_all``).  A PATH with none answers as a missing repository does (404), or 401 when
a leading part's rules ask for a login the request did not give: the same answer whether or not a
repository is there, so the page tells nobody what the rules keep from them.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.web import server

from backends.interfaces import Kind
from backends.names import validate_name
from gateway.auth import Access
from gateway.git_http import fail_request
from gateway.hg_archive import readable_any
from gateway.http import HttpFront, LoginNeeded, Route, RouteKind, Unauthorized, send_error, site_url
from gateway.logs import SafeLogger
from gateway.repo_use import closing_git
from gateway.threads import run_blocking
from protocols.errors import HgwireError, PermissionDenied, RepositoryNotFound, UnsafeName

log = SafeLogger()

PROTO = "http-go-get"
VCS = {Kind.GIT: "git", Kind.HG: "hg"}


def serve_go_get(front: HttpFront, request: server.Request, route: Route) -> None:
    d: defer.Deferred[Any] = front.authenticate(request)
    d.addCallback(front.counted, request)
    d.addCallback(_look_up, front, request, route)
    d.addErrback(fail_request, request, route.repo, PROTO, logger=log)


def _look_up(user: str | None, front: HttpFront, request: server.Request, route: Route) -> defer.Deferred[Any]:
    """The leading parts of the path the rules let ``user`` read, longest first (asked here, on the
    reactor, as every request's rules are); then, in a worker, the first that is a repository."""
    parts = route.repo.split("/")
    allowed: list[str] = []
    login_helps = False
    for end in range(len(parts), 0, -1):
        try:
            name = validate_name("/".join(parts[:end]))
        except UnsafeName:
            continue
        try:
            front.authorizer.check(user, name, "hg-http", Access.READ)
        except PermissionDenied:
            login_helps = login_helps or user is None  # (refused: its reason is not told)
            continue
        except HgwireError:
            continue
        allowed.append(name)
    found: defer.Deferred[tuple[tuple[str, Kind] | None, bool]] = run_blocking(_first_repository, front, allowed,
                                                                                user)
    return found.addCallback(_send, front, request, route, login_helps)


def _first_repository(front: HttpFront, names: list[str],
                      user: str | None) -> tuple[tuple[str, Kind] | None, bool]:
    """The first of ``names`` that is a repository ``user`` may read over HTTP and its kind, or None;
    and whether one of them wants a login ``user`` did not give (an hg repository's ``[web]`` read
    lists, as its page answers 401), blocking."""
    login_helps = False
    for name in names:
        try:
            if not front.config.backend.exists(name):
                continue
            with closing_git(readable_any(front, Route(RouteKind.REPO_PAGE, name), user)) as repo:
                kind = repo.kind
            if kind is Kind.GIT and not front.authorizer.allows(user, name, "git-http", Access.READ):
                continue
        except Unauthorized:
            login_helps = True
            continue
        except (HgwireError, OSError):  # refused, unreadable, not a repository, removed meanwhile: not this one
            continue
        if kind in VCS:
            return (name, kind), login_helps
    return None, login_helps


def _send(result: tuple[tuple[str, Kind] | None, bool], front: HttpFront, request: server.Request, route: Route,
          login_helps: bool) -> None:
    if request.finished or request._disconnected:
        return
    found, login_wanted = result
    if found is None:
        if login_helps or login_wanted:
            raise LoginNeeded(f"reading {route.repo} needs an authenticated user; put your login for this host "
                              "in ~/.netrc, which the go command sends over HTTPS")
        raise RepositoryNotFound(f"no repository you may read is at {route.repo} or in a folder above it; "
                                 "check the import path")
    name, kind = found
    base = site_url(front, request)
    prefix = base.split("://", 1)[-1].rstrip("/") + "/" + name
    url = f"{base}/{quote(name, safe='/')}" + (".git" if kind is Kind.GIT and not name.endswith(".git") else "")
    content = escape(f"{prefix} {VCS[kind]} {url}")
    body = (f'<!DOCTYPE html>\n<html><head><meta name="go-import" content="{content}"></head>\n'
            f"<body>go get {escape(prefix)}</body></html>\n")
    request.setHeader(b"Content-Security-Policy", b"default-src 'none'")
    send_error(request, 200, body, b"text/html; charset=utf-8")
    log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome=f"ok: {name} ({VCS[kind]})")


HANDLERS = {RouteKind.GO_GET: serve_go_get}
