"""A repository's pages for browsers, at hgweb's URLs (``/NAME/shortlog``, ``/NAME/rev/REV``,
``/NAME/file/REV/PATH``, ``/NAME/log/REV/PATH``, ``/NAME/annotate/REV/PATH``, ``/NAME/tags``…),
and its summary at ``/NAME`` itself for a browser (a request that accepts ``text/html``).

A Mercurial repository's page is made from the data of hgweb's JSON page (``backends.hg.web``), a
git repository's from the same shapes (``backends.git_web``: commits, trees, blobs, its visible
branches and tags), and both are rendered by ``protocols.hg_web_html``, for those who may clone
the repository (hgwire's rules, then an hg repository's ``[web]`` lists, a git repository's
``http.uploadpack`` and ``[git] export_all``), in the same slots as the JSON pages.  As hgweb,
the repository is the longest name before a page's name that is one (``team/log/rev/5`` is
``team/log``'s changeset 5 when ``team/log`` is a repository), and a whole path that names a
repository is its summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.web import server

from backends.git_web import GitPages
from backends.hg import annotate as hg_annotate
from backends.hg import web as hg_web
from backends.hg.repository import HgRepo
from backends.names import validate_name
from gateway import repo_page
from gateway.auth import Access
from gateway.git_http import fail_request
from gateway.hg_archive import (
    MAX_QUERY,
    LineQuery,
    annotate_switches,
    context_arg,
    line_range,
    page_queued,
    query_path,
    readable_any,
    send_page,
    serve_raw_file,
    serve_web_page,
    transport_of,
)
from gateway.http import (
    HTML_PAGES,
    RAW_FILE_SEGMENT,
    RAW_STYLED_PAGES,
    HttpFront,
    Route,
    RouteKind,
    send_error,
    site_url,
)
from gateway.limits import annotate_max_revisions
from gateway.logs import SafeLogger
from gateway.policy import git_archives
from gateway.repo_use import closing_git
from gateway.threads import run_blocking
from protocols import hg_web_html as html
from protocols.errors import ProtocolError, UnsafeName

log = SafeLogger()

PROTO = "hg-web-html"
LOG_PAGES = ("shortlog", "log", "changelog")
FILE_PAGES = ("file", "manifest")
NAME_PAGES = ("tags", "branches", "bookmarks")
DEFAULT_REVCOUNT = 60
MERCURIAL_AGENT = b"mercurial"
"""What hg's User-Agent holds (``mercurial/proto-1.0 (Mercurial 7.2.4)``): hgweb answers such a
client's ``/NAME/rev/REV`` in the raw style, the patch ``hg import URL`` applies, whatever the
``?style=``."""
QUERY_PATH_PAGES = frozenset({RAW_FILE_SEGMENT, "file", "manifest", "annotate", "raw-annotate", "diff", "filediff",
                              "raw-filediff", "comparison", "filelog", "log"})
"""The pages that take a path after their revision, which hgweb also takes as ``?file=PATH``
(its ``file`` argument) when the URL names none."""
HEAD_PAGES = frozenset({*LOG_PAGES, *FILE_PAGES, "graph"})
"""The pages of HEAD (the header's links): a git repository without a commit there says why instead."""


def serve_web_html(front: HttpFront, request: server.Request, route: Route) -> None:
    """Find the repository the path names (blocking: which names exist), then serve its page."""
    d: defer.Deferred[Any] = run_blocking(_resolve, front, [*route.repo.split("/"), *route.service.split("/")])
    d.addCallback(_serve_resolved, front, request, route)
    d.addErrback(fail_request, request, route.repo, PROTO, logger=log)


def serve_raw_file_found(front: HttpFront, request: server.Request, route: Route) -> None:
    """hgweb's ``raw-file`` (``/NAME/raw-file[/REV[/PATH]]``): the repository found as for a page
    (``/X/raw-file`` is repository ``X/raw-file``'s own page when there is one), then the file, or
    the directory's listing; no revision is the tip's root, as hgweb's raw manifest."""
    segments = [*route.repo.split("/"), RAW_FILE_SEGMENT, *filter(None, route.service.split("/"))]
    d: defer.Deferred[Any] = run_blocking(_resolve, front, segments)
    d.addCallback(_serve_resolved, front, request, Route(RouteKind.HG_WEB_HTML, route.repo,
                                                         "/".join(segments[len(route.repo.split("/")):])))
    d.addErrback(fail_request, request, route.repo, PROTO, logger=log)


def _resolve(front: HttpFront, segments: Sequence[str]) -> tuple[str, list[str]] | None:
    """The repository and the page's segments: None when the whole path is a repository (its own
    page); else the longest existing name before a page's name (``raw-file`` among them), or the
    shortest if none exists."""
    backend = front.config.backend
    if _exists(backend, "/".join(segments)):
        return None
    cuts = [i for i in range(1, len(segments)) if segments[i] in HTML_PAGES or segments[i] == RAW_FILE_SEGMENT]
    for at in reversed(cuts):
        if _exists(backend, "/".join(segments[:at])):
            return "/".join(segments[:at]), list(segments[at:])
    return "/".join(segments[:cuts[0]]), list(segments[cuts[0]:])


def _exists(backend: Any, name: str) -> bool:
    try:
        return bool(backend.exists(validate_name(name)))
    except UnsafeName:
        return False


def _serve_resolved(found: tuple[str, list[str]] | None, front: HttpFront, request: server.Request,
                    route: Route) -> None:
    if found is None:
        repo_page.serve_repo_page(front, request, Route(RouteKind.REPO_PAGE, f"{route.repo}/{route.service}"))
        return
    name, page = found
    if len(page) == 2 and page[0] in QUERY_PATH_PAGES and (asked := query_path(request)):
        page = [*page, *asked.split("/")]  # hgweb's /NAME/file/REV?file=PATH
    if page and page[0] == RAW_FILE_SEGMENT:
        serve_raw_file(front, request, Route(RouteKind.HG_RAW_FILE, name, "/".join(page[1:] or ["tip"])))
        return
    if page and page[0] in RAW_STYLED_PAGES:  # hgweb's /NAME/raw-annotate/REV/PATH: the raw style named in the path
        serve_styled(front, request, name, [page[0].removeprefix("raw-"), *page[1:]], style="raw")
        return
    if page and page[0] == "rev" and MERCURIAL_AGENT in (request.getHeader(b"user-agent") or b""):
        serve_styled(front, request, name, page, style="raw")  # `hg import URL` of a changeset's page: its patch
        return
    if styled(request):
        serve_styled(front, request, name, page)
        return
    serve_page(front, request, name, page)


STYLED_PAGES = {
    "json": {"summary": "json-summary", "shortlog": "json-shortlog", "log": "json-changelog", "diff": "json-diff",
             "filediff": "json-diff", "comparison": "json-comparison", "annotate": "json-annotate", "graph": "json-graph",
             "changelog": "json-changelog", "rev": "json-rev", "changeset": "json-rev", "file": "json-file",
             "manifest": "json-manifest", "filelog": "json-filelog", "tags": "json-tags", "branches": "json-branches",
             "bookmarks": "json-bookmarks", "": "json-shortlog"},
    "atom": {"log": "atom-log", "changelog": "atom-log", "shortlog": "atom-log", "tags": "atom-tags",
             "bookmarks": "atom-bookmarks", "branches": "atom-branches", "": "atom-log"},
    "rss": {"log": "rss-log", "changelog": "rss-log", "shortlog": "rss-log", "tags": "rss-tags",
            "bookmarks": "rss-bookmarks", "branches": "rss-branches", "": "rss-log"},
    "raw": {"rev": "raw-rev", "changeset": "raw-rev", "annotate": "raw-annotate", "log": "raw-log",
            "changelog": "raw-log", "shortlog": "raw-shortlog", "": "raw-shortlog", "diff": "raw-filediff",
            "filediff": "raw-filediff", "tags": "raw-tags", "bookmarks": "raw-bookmarks", "branches": "raw-branches"},
}
"""hgweb's ``?style=`` on a page's URL (``/NAME/rev/5?style=json``, ``/NAME?style=atom``): the page
of that style hgwire serves (``gateway.hg_archive.serve_web_page``); the json style's default page
is the shortlog, the feeds' the changelog."""


def styled(request: server.Request) -> bool:
    """Whether ``?style=`` asks for one of the styles ``STYLED_PAGES`` serves.  Any other (hgweb's
    HTML styles ``paper``, ``coal``, ``gitweb``, ``monoblue``, ``spartan``, or a name it does not
    know) gets the page as without it: hgweb falls back to the configured style, then ``paper``,
    for a style it does not have, and hgwire's pages are paper's."""
    return request.args.get(b"style", [b""])[-1].decode("ascii", "replace") in STYLED_PAGES


def serve_styled(front: HttpFront, request: server.Request, name: str, page: Sequence[str],
                 style: str | None = None) -> None:
    """A page asked for in another of hgweb's styles (``?style=``, or ``style`` when the path named
    it), as that style's page; 404 for a style or a page of it hgwire does not serve."""
    if style is None:
        style = request.args.get(b"style", [b""])[-1].decode("ascii", "replace")
    kind, rest = (page[0], list(page[1:])) if page else ("", [])
    if style == "raw" and kind in ("rev", "changeset") and not rest:
        rest = ["tip"]  # hgweb's changeset when none is named
    if kind in ("log", "changelog") and len(rest) > 1:
        kind = "filelog"  # a log with a file
    if style == "raw" and kind in FILE_PAGES:  # hgweb's raw style of a file or directory: raw-file
        serve_raw_file(front, request, Route(RouteKind.HG_RAW_FILE, name, "/".join(rest or ["tip"])))
        return
    service = STYLED_PAGES.get(style, {}).get(kind)
    if service is None or (service.startswith(("atom-", "rss-")) and rest):
        send_error(request, 404, f"hgweb's {style[:20]!r} style of this page is not served here")
        return
    serve_web_page(front, request, Route(RouteKind.HG_WEB_PAGE, name, "/".join([service, *rest])))


def serve_page(front: HttpFront, request: server.Request, name: str, page: Sequence[str]) -> None:
    """Page ``page`` (its segments: ``["rev", "tip"]``; empty for the summary) of repository ``name``."""
    d: defer.Deferred[Any] = front.authorize(request, name, transport_of(name), Access.READ)
    d.addCallback(lambda user: serve_authorized(front, request, name, page, user))
    d.addErrback(fail_request, request, name, PROTO, logger=log)


def serve_authorized(front: HttpFront, request: server.Request, name: str, page: Sequence[str],
                     user: str | None) -> None:
    """``serve_page`` for a request already let in (the repository page's, for a browser)."""
    url = f"{site_url(front, request)}/{quote(name)}"
    revcount = _revcount(request)
    shown = Route(RouteKind.HG_WEB_HTML, name, "/".join(page) or "summary")
    context = context_arg(request)
    query = request.args.get(b"rev", [None])[-1]
    if query is not None and len(query) > MAX_QUERY:
        send_error(request, 414, f"a search holds at most {MAX_QUERY} bytes")
        return
    switches = annotate_switches(request)
    lines = line_range(request)
    skip = _skip(request)
    d = page_queued(user, lambda user: _render_for(front, shown, user, url, list(page), revcount, context, query,
                                                   switches, lines, skip), request, name)
    d.addCallback(_send, request, shown)
    d.addErrback(fail_request, request, name, PROTO, logger=log)


def _revcount(request: server.Request) -> int:
    value = request.args.get(b"revcount", [b""])[-1]
    return max(1, min(int(value), hg_web.MAX_REVCOUNT - 1)) if value.isdigit() and len(value) < 9 else DEFAULT_REVCOUNT


def _skip(request: server.Request) -> int:
    """``?skip=N``: where in a git log's walk its page starts (the "older…" link's)."""
    value = request.args.get(b"skip", [b""])[-1]
    return int(value) if value.isdigit() and len(value) < 9 else 0


def _render_for(front: HttpFront, route: Route, user: str | None, url: str, page: list[str], revcount: int,
                context: str | None = None, query: bytes | None = None,
                switches: dict[bytes, bytes] | None = None, lines: LineQuery | None = None, skip: int = 0) -> bytes:
    """The page of the repository ``route`` names, once its settings let ``user`` clone it (blocking)."""
    repo = readable_any(front, route, user)
    if isinstance(repo, HgRepo):
        hg_annotate.LIMIT.revisions = annotate_max_revisions(front.authorizer)  # ([limits], as the policy says now)
        return render(HgPages(repo), route.repo, url, page, revcount, context=context, query=query, switches=switches,
                      lines=lines)
    with closing_git(repo):
        return render(GitPages(repo), route.repo, url, page, revcount, git_archives(front.authorizer), query=query,
                      skip=skip)


def _text(raw: bytes) -> str:
    """History's bytes as the renderer takes them, as json.loads gives them from hgweb's JSON:
    UTF-8, any other byte as ``\\udcXX``."""
    return raw.decode("utf-8", "surrogateescape")


def _directory_row(prefix: str, name: str, empty: bytes) -> dict[str, str]:
    return {"abspath": f"/{prefix}{name}", "basename": name, "emptydirs": _text(empty)}


def _file_row(prefix: str, name: str, size: int, flags: bytes) -> dict[str, Any]:
    return {"abspath": prefix + name, "basename": name, "size": size, "flags": _text(flags)}


class HgPages:
    """A Mercurial repository's page data, from hgweb's JSON pages (``backends.hg.web``; a file or
    directory from what json-file is written from), with the methods ``backends.git_web.GitPages`` has."""

    def __init__(self, repo: HgRepo) -> None:
        self.repo = repo

    def _data(self, page: str, revcount: int | None = None, url: str = "/", context: str | None = None,
              lines: LineQuery | None = None) -> Any:
        return json.loads(hg_web.page(self.repo, page, revcount, url + "/", context, linerange=lines))

    def summary(self, url: str, _archives: Collection[str] = ()) -> dict[str, Any]:
        settings = self.repo.web_settings()  # hgweb's [web] description and contact
        about = {key: settings[key.encode()].decode("utf-8", "replace") for key in ("description", "contact")
                 if settings.get(key.encode())}
        return {**self._data("json-summary", url=url), **about}

    def names(self, kind: str) -> list[dict[str, Any]]:
        return list(self._data(f"json-{kind}")[kind])

    def changeset(self, key: str) -> dict[str, Any]:
        return dict(self._data(f"json-rev/{key}"))

    def log(self, key: str, count: int, path: str = "", lines: LineQuery | None = None) -> list[dict[str, Any]]:
        if path:
            return list(self._data(f"json-filelog/{key}/{path}", count, lines=lines)["entries"])
        return list(self._data(f"json-shortlog/{key}", count)["changesets"])

    def tree(self, key: str, path: str) -> dict[str, Any]:
        """A file's lines or a directory's entries, in the shapes of json-file and json-manifest and
        only what the page shows, made from what those pages are written from: no JSON between
        (a directory of 100,000 files was written as 10 MB of JSON and parsed back); a directory's
        files and a file's lines are made one at a time as the page is rendered (``html.directory``
        and ``html.file`` read them once)."""
        shown = hg_web.file_or_directory(self.repo, key or "tip", path)
        node = shown.node.hex()
        if isinstance(shown, hg_web.FileLines):
            return {"node": node, "path": _text(shown.path), "lines": ({"line": _text(line)} for line in shown.lines)}
        prefix = _text(shown.prefix)
        return {"node": node, "abspath": "/" + prefix,
                "directories": [_directory_row(prefix, _text(name), empty) for name, empty in shown.directories],
                "files": (_file_row(prefix, _text(name), size, flags) for name, size, flags in shown.files)}

    def filediff(self, key: str, path: str) -> dict[str, Any]:
        return dict(self._data(f"json-diff/{key}/{path}"))

    def comparison(self, key: str, path: str, context: str | None) -> dict[str, Any]:
        return dict(self._data(f"json-comparison/{key}/{path}", context=context))

    def graph(self, key: str, count: int) -> dict[str, Any]:
        return dict(json.loads(hg_web.json_graph(self.repo, key, count)))

    def search(self, query: bytes, count: int) -> dict[str, Any]:
        return dict(json.loads(hg_web.json_search(self.repo, query, count)))

    def annotate(self, key: str, path: str, switches: dict[bytes, bytes] | None = None) -> dict[str, Any]:
        return dict(json.loads(hg_web.json_annotate(self.repo, key, path, switches)))


def render(pages: HgPages | GitPages, name: str, url: str, page: list[str], revcount: int = DEFAULT_REVCOUNT,
           archives: Collection[str] = (), context: str | None = None, query: bytes | None = None,
           switches: dict[bytes, bytes] | None = None, lines: LineQuery | None = None, skip: int = 0) -> bytes:
    """The HTML of ``page`` of a repository of either kind (blocking: history reads); a git log's
    page starts ``skip`` commits down its walk."""
    git = isinstance(pages, GitPages)
    if isinstance(pages, HgPages):
        name = pages.repo.web_name(name)  # hgweb titles its pages with the hgrc's [web] name
    kind, rest = (page[0], page[1:]) if page else ("summary", [])
    if (isinstance(pages, GitPages) and pages.head is None and kind in HEAD_PAGES and rest in ([], ["tip"], ["HEAD"])
            and query is None):
        return html.notice(name, url, kind, pages.head_note(), git=True)  # an empty repository, a dangling HEAD
    if kind == "summary" and not rest:
        return html.summary(name, url, pages.summary(url, archives), git=git)
    if kind in NAME_PAGES and not rest:
        return html.names(name, url, {kind: pages.names(kind)}, kind, git=git)
    if kind in ("rev", "changeset") and len(rest) <= 1:
        return html.changeset(name, url, pages.changeset(rest[0] if rest else "tip"), git=git)
    if kind == "graph" and len(rest) <= 1:
        return html.graph(name, url, pages.graph(rest[0] if rest else "", revcount), revcount, git=git)
    if kind in LOG_PAGES and not rest and query is not None:
        return html.search(name, url, pages.search(query, revcount), git=git)
    if kind in LOG_PAGES and len(rest) <= 1 and isinstance(pages, GitPages):
        return _git_log(pages, name, url, rest[0] if rest else "tip", revcount, skip)
    if kind in LOG_PAGES and len(rest) <= 1:
        changesets = pages.log(rest[0] if rest else "tip", revcount + 1)
        return html.shortlog(name, url, {"changesets": changesets}, revcount, git=git)
    if (kind in LOG_PAGES or kind == "filelog") and len(rest) > 1:
        path = "/".join(rest[1:])
        if isinstance(pages, HgPages) and lines:  # a block of lines' history: hg's only
            entries = pages.log(rest[0], revcount, path, lines)
            return html.filelog(name, url, path, {"entries": entries}, lines=lines[0][-1].decode("ascii", "replace")[:40])
        return html.filelog(name, url, path, {"entries": pages.log(rest[0], revcount, path)}, git=git)
    if kind == "comparison" and len(rest) > 1 and isinstance(pages, HgPages):
        return html.comparison(name, url, pages.comparison(rest[0], "/".join(rest[1:]), context))
    if kind == "annotate" and len(rest) > 1:
        data = pages.annotate(rest[0], "/".join(rest[1:]), switches) if isinstance(pages, HgPages) else \
            pages.annotate(rest[0], "/".join(rest[1:]))
        return html.annotate(name, url, data, git=git)
    if kind in ("diff", "filediff") and len(rest) > 1:
        return html.filediff(name, url, pages.filediff(rest[0], "/".join(rest[1:])), git=git)
    if kind in FILE_PAGES:
        data = pages.tree(rest[0] if rest else "tip", "/".join(rest[1:]))
        return html.file(name, url, data, git=git) if "lines" in data else html.directory(name, url, data, git=git)
    raise ProtocolError("no such page", 404)


def _git_log(pages: GitPages, name: str, url: str, key: str, revcount: int, skip: int) -> bytes:
    """A git log's page: ``revcount`` commits of the walk from ``key``, ``skip`` down.  Its
    "older…" link continues that walk (``shortlog/START?skip=N``, START the commit the walk
    starts at, so that a branch moved meanwhile does not shift it): a commit's ancestors alone
    would leave out the commits of another branch merged later but dated before it."""
    changesets = pages.log(key, revcount + 1, skip=skip)
    older = None
    if len(changesets) > revcount:
        shown = "" if revcount == DEFAULT_REVCOUNT else f"&revcount={revcount}"
        older = f"shortlog/{pages.resolve(key).decode()}?skip={skip + revcount}{shown}"
    return html.shortlog(name, url, {"changesets": changesets}, revcount, git=True, older=older)


def _send(body: bytes | None, request: server.Request, route: Route) -> None:
    send_page(body, request, route, b"text/html; charset=UTF-8", PROTO,
              {b"Content-Security-Policy": html.CONTENT_SECURITY_POLICY})


HANDLERS: dict[RouteKind, Callable[[HttpFront, server.Request, Route], None]] = {RouteKind.HG_WEB_HTML: serve_web_html,
                                                                                 RouteKind.HG_RAW_FILE: serve_raw_file_found}
