"""``GET /NAME`` over HTTP: a short page that says what NAME is and how to clone it;
``GET /``: what the server is (a load balancer's health check gets its 200 there).

A person who pastes a clone URL into a browser (``Accept: text/html``) gets the
repository's summary page, as ``hg serve`` shows one (``gateway.hg_web``); anything else
(``curl``) reads which kind of repository it is and the command that clones it.  The page is for those who may read the repository: it is
authorized as a clone is (hgwire's rules, then an hg repository's ``[web]``
lists, a git repository's ``http.uploadpack``), so it tells nobody else that the
name exists.  Plain text with ``nosniff``: of the request, only a ``Host`` that
looks like a host name, and the checked repository name, percent-encoded, appear.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import server

from backends.interfaces import Kind
from backends.names import strip_git_suffix
from gateway.auth import Access
from gateway.git_http import fail_request
from gateway.hg_http import check_web_access
from gateway.http import HttpFront, Route, RouteKind, send_error, site_url
from gateway.policy import check_exported
from gateway.threads import run_blocking
from protocols.errors import NotARepository, PermissionDenied
from protocols.hg_commands import PULL

log = Logger()

PROTO = "http-page"
"""A ``Host`` header shown back in the clone command: a name or an IP literal, maybe a port."""
KIND_WORDS = {Kind.GIT: ("a Git", "git clone {url}.git"), Kind.HG: ("a Mercurial", "hg clone {url}")}


def serve_repo_page(front: HttpFront, request: server.Request, route: Route) -> None:
    if request.args.get(b"style"):  # hgweb's /NAME?style=json (the shortlog), ?style=atom (the feed)
        from gateway import hg_web

        hg_web.serve_styled(front, request, route.repo, [])
        return
    transport = "git-http" if route.repo.endswith(".git") else "hg-http"
    d: defer.Deferred[Any] = front.authorize(request, route.repo, transport, Access.READ)
    d.addCallback(_page_for, front, request, route)
    d.addErrback(fail_request, request, route.repo, PROTO)


def _page_for(user: str | None, front: HttpFront, request: server.Request, route: Route) -> Any:
    if wants_html(request):  # a browser: the repository's summary, as hg serve shows one
        from gateway import hg_web

        hg_web.serve_authorized(front, request, route.repo, [], user)
        return None
    d: defer.Deferred[Kind] = run_blocking(_kind_for, front, route.repo, user)
    return d.addCallback(_send_page, request, route, site_url(front, request))


def _kind_for(front: HttpFront, name: str, user: str | None) -> Kind:
    """The repository's kind, once its own settings let ``user`` clone it over HTTP (blocking)."""
    repo = front.config.backend.open(name)
    if repo.kind is Kind.HG:
        check_web_access(repo, user, PULL)
    elif repo.kind is Kind.GIT:
        check_exported(front.authorizer, "git-http", name, repo)
        enabled = getattr(repo, "http_service_enabled", None)
        if enabled is not None and enabled("git-upload-pack") is False:
            raise PermissionDenied("Service not enabled: 'upload-pack'")
    else:
        raise NotARepository(f"'{name}' is not a repository hgwire serves")
    return repo.kind


def wants_html(request: server.Request) -> bool:
    """Whether the client reads HTML (a browser says so in ``Accept``; git, hg and curl do not)."""
    accept = (request.getHeader(b"accept") or b"").lower()
    return b"text/html" in accept or b"application/xhtml+xml" in accept


def serve_root_page(front: HttpFront, request: server.Request, route: Route) -> None:
    """What this server is and what its clone URLs look like; no repository is named or looked up,
    so it costs nothing and tells nothing (it is also what a load balancer's health check reads)."""
    base = site_url(front, request)
    body = ("This is hgwire: it serves Git and Mercurial repositories.\n\nClone one with:\n\n"
            f"    git clone {base}/NAME.git\n    hg clone {base}/NAME\n\n"
            "where NAME is the repository's name; ask the server's administrator for it.\n")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    send_error(request, 200, body)


def _send_page(kind: Kind, request: server.Request, route: Route, base: str) -> None:
    if request.finished or request._disconnected:
        return
    name = strip_git_suffix(route.repo)
    url = f"{base}/{quote(name, safe='/')}"
    what, command = KIND_WORDS[kind]
    body = (f"{name} is {what} repository served by hgwire.\n\nClone it with:\n\n    {command.format(url=url)}\n")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    send_error(request, 200, body)
    log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome="ok")


HANDLERS = {RouteKind.REPO_PAGE: serve_repo_page, RouteKind.ROOT_PAGE: serve_root_page}
