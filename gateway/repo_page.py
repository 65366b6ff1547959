"""``GET /NAME`` over HTTP: a short page that says what NAME is and how to clone it;
``GET /``: what the server is (a load balancer's health check gets its 200 there).

A person who pastes a clone URL into a browser (``Accept: text/html``) gets the
repository's summary page, as ``hg serve`` shows one (``gateway.hg_web``); anything else
(``curl``) reads which kind of repository it is and the command that clones it.  The page is for those who may read the repository: it is
authorized as a clone is (hgwire's rules, then an hg repository's ``[web]`` read
lists — not ``allow-pull``, as hgweb's pages —, a git repository's ``http.uploadpack``),
so it tells nobody else that the name exists.  Plain text with ``nosniff``: of the request, only a ``Host`` that
looks like a host name, and the checked repository name, percent-encoded, appear.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.web import server

from backends import names_in_folder, returned_repository
from backends.hg.keys import BOOLEANS, config_list
from backends.hg.repository import HgRepo
from backends.hg.web import json_string
from backends.interfaces import NULL_NODE, Kind
from backends.names import strip_git_suffix
from gateway.auth import Access
from gateway.git_http import fail_request
from gateway.hg_archive import check_git_readable, page_queued, readable_any
from gateway.http import HttpFront, Route, RouteKind, send_error, site_url
from gateway.logs import SafeLogger
from gateway.policy import repository_index
from gateway.repo_use import closing_git
from gateway.threads import run_blocking
from gateway.web_access import check_web_access
from protocols import http_accept
from protocols.errors import HgwireError, NotARepository

log = SafeLogger()

PROTO = "http-page"
"""A ``Host`` header shown back in the clone command: a name or an IP literal, maybe a port."""
KIND_WORDS = {Kind.GIT: ("a Git", "git clone {url}.git"), Kind.HG: ("a Mercurial", "hg clone {url}")}


def serve_repo_page(front: HttpFront, request: server.Request, route: Route) -> None:
    from gateway import hg_web

    if hg_web.styled(request):  # hgweb's /NAME?style=json (the shortlog), ?style=atom (the feed)
        hg_web.serve_styled(front, request, route.repo, [])
        return
    if git_bundle_fetch(request):  # (before any look: git http-backend's 404 tells nothing of the name either)
        request.setHeader(b"Vary", b"Accept, User-Agent")
        send_error(request, 404, NOT_A_BUNDLE)
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome=f"refused 404: {NOT_A_BUNDLE}")
        return
    transport = "git-http" if route.repo.endswith(".git") else "hg-http"
    request.setHeader(b"Vary", b"Accept")  # HTML or plain text by it (``wants_html``): caches keep both apart
    d: defer.Deferred[Any] = front.authorize(request, route.repo, transport, Access.READ)
    d.addCallback(_page_for, front, request, route)
    d.addErrback(fail_request, request, route.repo, PROTO, logger=log)


def _page_for(user: str | None, front: HttpFront, request: server.Request, route: Route) -> Any:
    if wants_html(request):  # a browser: the repository's summary, as hg serve shows one
        if repository_index(front.authorizer):  # or, for a folder of repositories, its index
            found: defer.Deferred[bool] = run_blocking(_is_repository, front, route.repo)
            found.addCallback(_summary_or_folder, front, request, route, user)
            found.addErrback(fail_request, request, route.repo, PROTO, logger=log)
            return None
        _summary(None, front, request, route, user)
        return None
    d: defer.Deferred[Kind] = run_blocking(_kind_for, front, route.repo, user)
    return d.addCallback(_send_page, request, route, site_url(front, request))


def _is_repository(front: HttpFront, name: str) -> bool:
    """Whether ``name`` reaches a repository (blocking); a name the backend refuses, or an
    ``exists`` that fails, is taken for one: opening it says what is wrong."""
    try:
        return bool(front.config.backend.exists(name))
    except Exception:  # noqa: BLE001 - answered where it is opened, as before
        return True


def _summary_or_folder(is_repository: bool, front: HttpFront, request: server.Request, route: Route,
                       user: str | None) -> None:
    """A repository's summary; for a name that is none, the index of the repositories below it that
    ``user`` may read (``/team/``, as hgweb's under ``[paths] / = root/**``), or, with none, the
    summary page's own refusal (not found, not a repository)."""
    if is_repository:
        _summary(None, front, request, route, user)
        return
    following: list[str] = []
    folder = route.repo.strip("/")
    base = site_url(front, request)
    after = (request.args.get(b"after") or [b""])[0].decode("utf-8", "surrogateescape")

    def make(user: str | None) -> bytes | None:
        body, next_page = _index(front, user, base, False, after, folder + "/")
        following.extend([next_page] if next_page else [])
        return body

    d: defer.Deferred[Any] = page_queued(user, make, request)
    d.addCallback(lambda body: _summary(None, front, request, route, user) if body is None
                  else _send_index(body, request, False, following))
    d.addErrback(fail_request, request, route.repo, PROTO, logger=log)


def _summary(_: object, front: HttpFront, request: server.Request, route: Route, user: str | None) -> None:
    from gateway import hg_web

    hg_web.serve_authorized(front, request, route.repo, [], user)


def _kind_for(front: HttpFront, name: str, user: str | None) -> Kind:
    """The repository's kind, once its own settings let ``user`` clone it over HTTP (blocking)."""
    with closing_git(returned_repository(front.config.backend.open(name), f"open({name!r})")) as repo:
        if repo.kind is Kind.HG:
            check_web_access(repo, user, None)  # as its pages (hgweb's: not allow-pull)
        elif repo.kind is Kind.GIT:
            check_git_readable(front, name, repo)
        else:
            raise NotARepository(f"'{name}' is not a repository hgwire serves")
        return repo.kind


HTML_TYPES = ("text/html", "application/xhtml+xml")


def wants_html(request: server.Request) -> bool:
    """Whether the client reads HTML: a browser names it in ``Accept`` with a weight above zero
    (preferred to plain text whatever their weights); git, hg and curl (``*/*``) do not name it."""
    accept = b",".join(request.requestHeaders.getRawHeaders(b"accept") or [])
    return http_accept.names_any(accept, HTML_TYPES)


NOT_A_BUNDLE = ("this URL is a repository's, not a bundle's: git clone --bundle-uri (and a bundle list's uri) "
                "takes the URL of a file 'git bundle create' wrote; clone from this URL without it")


def git_bundle_fetch(request: server.Request) -> bool:
    """Whether git's HTTP client asks for the repository's own URL: no command of git's protocol
    asks for it (they ask for ``info/refs`` and the service below it), so it is a ``--bundle-uri``
    (or a bundle list's ``uri``) that names it.  It read the plain-text page as a bundle list and
    printed "bad config line 1"; git http-backend answers 404 ("failed to download bundle")."""
    agent = b"".join(request.requestHeaders.getRawHeaders(b"user-agent") or [])
    return agent.startswith(b"git/") and not wants_html(request)


def serve_root_page(front: HttpFront, request: server.Request, route: Route) -> None:
    """What this server is and what its clone URLs look like; no repository is named or looked up,
    so it costs nothing and tells nothing (it is also what a load balancer's health check reads).
    A browser gets the index instead (``[http] index``): the repositories it may read; a script
    asks for hgweb's JSON index (``?style=json``) or its raw one (``?style=raw``: a path a line)."""
    as_json = request.args.get(b"style") == [b"json"]
    as_raw = request.args.get(b"style") == [b"raw"]
    after = (request.args.get(b"after") or [b""])[0].decode("utf-8", "surrogateescape")
    index = repository_index(front.authorizer)
    if index and not as_json and not as_raw:
        request.setHeader(b"Vary", b"Accept")  # the index or the plain text by it (``wants_html``)
    if (as_json or as_raw or wants_html(request)) and index:
        d: defer.Deferred[Any] = front.authenticate(request)
        d.addCallback(front.counted, request)
        following: list[str] = []

        def make(user: str | None) -> bytes | None:
            body, next_page = _index(front, user, base, as_json, after, raw=as_raw)
            following.extend([next_page] if next_page else [])
            return body

        base = site_url(front, request)
        d.addCallback(lambda user: page_queued(user, make, request))
        d.addCallback(_send_index, request, as_json, following, as_raw)
        d.addErrback(fail_request, request, "(index)", PROTO, logger=log)
        return
    if as_json or as_raw:
        send_error(request, 404, "the index of repositories is turned off here ([http] index = false)")
        return
    base = site_url(front, request)
    body = ("This is hgwire: it serves Git and Mercurial repositories.\n\nClone one with:\n\n"
            f"    git clone {base}/NAME.git\n    hg clone {base}/NAME\n\n"
            "where NAME is the repository's name; ask the server's operator for it.\n")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    send_error(request, 200, body)


MAX_INDEX = 1000
"""Repositories a page of the index lists at most (in name order); the next page starts after the
last one (``?after=NAME``)."""
MAX_INDEX_LOOKED_AT = 20_000
"""Names a page of the index looks at (most a visitor may not read) before it stops."""


def _index(front: HttpFront, user: str | None, base: str, as_json: bool = False,
           after: str = "", folder: str = "", raw: bool = False) -> tuple[bytes | None, str | None]:
    """A page of the index for ``user``: the first ``MAX_INDEX`` repositories it may read whose
    names sort after ``after`` (blocking: the backend lists and opens repositories); with
    ``as_json``, hgweb's JSON index (``/?style=json``).  Each repository listed is opened (its
    description, its last change); those past the page are not: the page looked at every one
    before, to count them (10,000 repositories opened, 25 s, for a page of 1,000).  Returns the
    page and, when more follow, the path of the next page (``/?after=NAME``, of the last name listed;
    an ``after`` that is no name ``user`` may read gives the first page).
    ``folder`` (``team/``): only the repositories below it, and None for a page of none (the
    folder is not one, or holds nothing ``user`` may read: answered as the name alone is)."""
    from protocols import hg_web_html as html

    if after and _index_entry(front, after, user) is None:
        # a page follows only a name the visitor may read (the last its previous page listed), else it
        # is the first: after a name of their choosing, the time a page took (the names it looked
        # past, 0.45 ms each) told anyone, name by name, which repositories they may not read exist
        after = ""
    entries: list[dict[str, Any]] = []
    more = False
    looked = 0
    last = after
    # in name order from ``after`` on, below ``folder``: the ``fs`` backend reads only the directories
    # that hold this page's names (it listed the whole root for every page: 0.8 s for 10,000), and
    # only those where the rules let ``user`` read (``Authorizer.readable_starts``)
    bound = getattr(front.authorizer, "readable_starts", None)
    for name in names_in_folder(front.config.backend, folder, after, bound(user) if bound is not None else None):
        if looked >= MAX_INDEX_LOOKED_AT:  # (a next page only when this one moved on: names not shown stay unnamed)
            more = last != after
            break
        looked += 1
        entry = _index_entry(front, name, user)
        if entry is None:
            continue
        if len(entries) >= MAX_INDEX:
            more = True
            break
        entries.append(entry)
        last = name
    if folder and not entries:
        return None, None
    following = "/" + quote(folder, safe="/", errors="surrogateescape") + "?after=" + \
        quote(last, safe="/", errors="surrogateescape") if more else None
    if as_json:
        return _json_index(entries), following and following + "&style=json"
    if raw:  # hgweb's raw index: its empty header's line, each repository's path between slashes, a last line
        return (b"\n" + b"".join(b"/%s/\n" % e["path"].encode("utf-8", "surrogateescape") for e in entries) + b"\n",
                following and following + "&style=raw")
    return html.index(base, entries, following), following


UNKNOWN = "unknown"
"""What hgweb's index says for a description or a contact a repository does not give (``""`` before)."""


def _json_index(entries: list[dict[str, Any]]) -> bytes:
    """hgweb's json style of its index: each repository's name, description, contact (``unknown``
    for none, as hgweb's), last change and labels, in hgweb's layout; the last change in whole
    seconds: a Mercurial repository's changelog's modification time, or its store's before its
    first commit, as hgweb's, a git one's newest branch tip's committer date, as gitweb's
    (``[0, 0]`` for none yet)."""
    def text(value: str) -> bytes:
        return json_string(value.encode("utf-8", "surrogateescape"))

    rows = [b'{\n"name": %s,\n"description": %s,\n"contact": %s,\n"lastchange": [%d, %d],\n"labels": [%s]\n}'
            % (text(e["name"]), text(e["description"] or UNKNOWN), text(e.get("contact") or UNKNOWN),
               int(e["date"][0] if e["date"] else 0), int(e["date"][1] if e["date"] else 0),
               b", ".join(text(label) for label in e.get("labels", []))) for e in entries]
    return b'{\n"entries": [' + b", ".join(rows) + b"]\n}"


def _index_entry(front: HttpFront, name: str, user: str | None) -> dict[str, Any] | None:
    """What the index shows of ``name``, or None where ``user`` may not read it over HTTP or its
    settings hide it (an hg repository's ``[web] hidden``)."""
    git_named = name.endswith(".git")
    if not front.authorizer.allows(user, name, "git-http" if git_named else "hg-http", Access.READ):
        return None
    try:
        repo = readable_any(front, Route(RouteKind.REPO_PAGE, name), user)  # as the repository's own pages
        if isinstance(repo, HgRepo):
            settings = repo.web_settings()
            if BOOLEANS.get(settings.get(b"hidden", b"").strip().lower(), False):
                return None
            description = settings.get(b"description", b"").decode("utf-8", "replace")
            # hgweb's get_contact: [web] contact, else [ui] username (the process's $EMAIL is not the repository's)
            contact = (settings.get(b"contact") or repo.hgrc_section(b"ui").get(b"username") or b"").decode(
                "utf-8", "replace")
            labels = [label.decode("utf-8", "replace") for label in config_list(settings.get(b"labels", b""))]
            changed = _hg_last_change(repo)
            path, shown = name, repo.web_name(name)  # as hgwebdir's index names it; its link is its path
        else:
            from backends.git_web import GitPages

            with closing_git(repo):
                if not git_named and not front.authorizer.allows(user, name, "git-http", Access.READ):
                    return None
                pages = GitPages(repo)
                description = pages.description()
                changed = pages.last_change()
            path = shown = name if git_named else name + ".git"
            contact, labels = "", []
    except (HgwireError, OSError):  # unreadable, refused, or removed meanwhile: not listed
        return None
    return {"name": shown, "path": path, "kind": "git" if repo.kind is Kind.GIT else "hg",
            "description": description[:300], "date": changed, "contact": contact[:300], "labels": labels[:20]}


def _hg_last_change(repo: Any) -> list[Any] | None:
    """hgweb's last change of a repository: when its changelog was last written (a push, a
    commit), or before its first commit its store directory (hgwebdir's ``get_mtime``; it said
    ``[0, 0]``), in the server's time zone; without such files (in memory) its tip's date."""
    from backends.hg.vfs import FsVfs

    if isinstance(repo.store, FsVfs):
        stamp = repo.store.stamp(b"00changelog.i") or repo.store.stamp(b"")
        if stamp is not None:
            return [float(stamp[1] // 1_000_000_000), -time.localtime().tm_gmtoff]
    cl = repo.changelog()
    tip = repo.lookup(b"tip")
    if tip == NULL_NODE:
        return None
    changeset = repo.changeset(cl, cl.rev(tip))
    return [float(changeset.time), changeset.tz]


def _send_index(body: bytes | None, request: server.Request, as_json: bool, following: list[str],
                raw: bool = False) -> None:
    """The index page; a ``Link: <…>; rel="next"`` header names the next page when there is one
    (the JSON index's body is hgweb's, which has no place for it)."""
    from gateway.hg_archive import send_page
    from protocols import hg_web_html as html

    if following:
        request.setHeader(b"Link", b'<%s>; rel="next"' % following[0].encode("ascii"))
    if as_json:
        send_page(body, request, Route(RouteKind.ROOT_PAGE, "(index)"), b"application/json", PROTO)
        return
    if raw:
        send_page(body, request, Route(RouteKind.ROOT_PAGE, "(index)"), b"text/plain; charset=UTF-8", PROTO)
        return
    send_page(body, request, Route(RouteKind.ROOT_PAGE, "(index)"), b"text/html; charset=UTF-8", PROTO,
              {b"Content-Security-Policy": html.CONTENT_SECURITY_POLICY})


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
