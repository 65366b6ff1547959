"""hgweb's URLs that scripts and tools use, for hg repositories over HTTP, each to those who may
pull the repository (hgwire's rules, then its ``[web]`` lists):

- ``GET /NAME/archive/REV.zip`` (``.tar.gz``, ``.tar.bz2``, maybe ``/PATH`` after it), the archive
  downloads release links point at: only the types the repository's hgrc allows (``[web]
  allow-archive = zip gz bz2``, or ``allowzip = true``...); everything that can fail is checked
  before the first byte (``backends.hg.archive.prepare``), then the archive streams from the pool
  with backpressure, one file at a time, ``ARCHIVE_SLOTS`` at once over the server;
- ``GET /NAME/raw-file/REV/PATH``: one file (or a directory's listing), streamed;
- ``GET /NAME/raw-rev/REV``, ``GET /NAME/json-{tags,bookmarks,branches,summary}``, ``GET
  /NAME/json-{rev,shortlog,changelog,log}[/REV]``, ``GET /NAME/json-{manifest,file}/REV[/PATH]`` and
  the feeds, ``GET /NAME/{atom,rss}-{log,tags,bookmarks,branches}`` (``backends.hg.web``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import server

from backends import git_web, returned_repository
from backends.git_web import GitPages, WebArchive
from backends.hg import annotate as hg_annotate
from backends.hg import archive as hg_archive
from backends.hg import web as hg_web
from backends.hg.repository import HgRepo
from backends.interfaces import GitRepository, Kind
from gateway import metrics
from gateway.auth import Access
from gateway.errors import corrupt_loose_object
from gateway.git_http import fail_request
from gateway.git_session import PackStream
from gateway.http import HttpFront, Route, RouteKind, send_error, site_url
from gateway.limits import CUT_AT_SHUTDOWN, annotate_max_revisions, gone_outcome
from gateway.logs import SafeLogger
from gateway.policy import check_exported, git_archives, read_base_git_config
from gateway.protected import log_recovery, read_base_hgrc
from gateway.repo_use import close_git, closing_git
from gateway.threads import IteratorProducer, run_blocking
from gateway.web_access import check_web_access, upload_pack_enabled
from protocols import client_gone
from protocols.errors import NotARepository, PermissionDenied, ProtocolError, StorageError, UnsupportedFeature

log = SafeLogger()

PROTO = "hg-archive"
RAW_FILE_PROTO = "hg-raw-file"
WEB_PAGE_PROTO = "hg-web-page"
TRANSPORT = "hg-http"


ARCHIVE_SLOTS = 2
"""Archives made at once over the whole server: each keeps a core busy (1.4 s of CPU for the bench
corpus) and holds its compressor and file texts; more at once only share the cores and add memory
(8 concurrent tar.gz of the corpus: 209 MB peak resident, against 133 MB for 8 zips and 100 MB for one)."""
MAX_WAITING_ARCHIVES = 64
"""Archive requests that may wait for a slot; past that they are answered 503 (try again later)."""

_SLOTS = defer.DeferredSemaphore(ARCHIVE_SLOTS)

PAGE_SLOTS = 4
"""hgweb pages (``json-*``, ``raw-rev``) made at once over the whole server: one may walk a large
history (a file's parents through the ancestors, a log of many changesets), so a flood of them
holds at most these worker threads and clones and pushes keep the others."""
MAX_WAITING_PAGES = 256
"""Page requests that may wait for a slot; past that they are answered 503."""

_PAGE_SLOTS = defer.DeferredSemaphore(PAGE_SLOTS)

PAGES_PER_REPOSITORY = 2
"""Of the ``PAGE_SLOTS``, how many one repository's pages may hold at once: a run of slow pages of
one repository (a crawler on a large file's annotate pages) leaves the others for every other
repository's, whose pages waited behind it (12.5 s for a page made in 0.01 s, in a trial)."""

_REPOSITORY_PAGE_SLOTS: dict[str, defer.DeferredSemaphore] = {}
"""The repositories whose pages are being made or wait, each with its ``PAGES_PER_REPOSITORY``
slots (an entry goes once none is taken or waited for)."""


def query_path(request: server.Request) -> str:
    """hgweb's ``?file=PATH`` (its last value, as hgweb's): the path of a page whose URL names none
    after its revision (``/NAME/archive/tip.zip?file=src``, ``/NAME/raw-file/tip?file=src/a.c``);
    "" without one.  A path in the URL wins, as with hgweb."""
    values = request.args.get(b"file")
    return "/".join(filter(None, values[-1].decode("utf-8", "surrogateescape").split("/"))) if values else ""


def serve_archive(front: HttpFront, request: server.Request, route: Route) -> None:
    d: defer.Deferred[Any] = front.authorize(request, route.repo, transport_of(route.repo), Access.READ)
    d.addCallback(_queued, front, request, route)
    d.addErrback(fail_request, request, route.repo, PROTO, logger=log)


def _queued(user: str | None, front: HttpFront, request: server.Request, route: Route) -> defer.Deferred[None]:
    """Make and send the archive once one of the ``ARCHIVE_SLOTS`` is free (its errors before the
    first byte go to the caller's errback; the slot is given back in every case)."""
    if not _SLOTS.tokens and len(_SLOTS.waiting) >= MAX_WAITING_ARCHIVES:
        raise ProtocolError("too many archives are being made right now; try again in a minute", 503)
    return _SLOTS.run(_make_and_send, user, front, request, route)


def _make_and_send(user: str | None, front: HttpFront, request: server.Request, route: Route) -> defer.Deferred[None]:
    if request.finished or request._disconnected:  # gone while it waited for a slot
        return defer.succeed(None)
    made: defer.Deferred[hg_archive.Archive | WebArchive] = run_blocking(_prepare, front, route, user,
                                                                           query_path(request))
    return made.addCallback(_send, request, route)


def _prepare(front: HttpFront, route: Route, user: str | None, asked: str = "") -> hg_archive.Archive | WebArchive:
    """The archive the route names, once the repository's settings let ``user`` pull it (blocking):
    a Mercurial repository's as hgweb makes it (of the path ``asked`` by ``?file=`` when the URL
    names none), a git repository's of the types ``[git] archives`` allows."""
    segments = route.service.split("/")
    at = next((i for i, segment in enumerate(segments) if hg_archive.split_type(segment) is not None), -1)
    parsed = hg_archive.split_type("/".join(segments[:at + 1])) if at >= 0 else None
    if parsed is None:
        raise ProtocolError("Unsupported archive type", 404)
    key, kind = parsed  # a git ref may hold slashes (refs/heads/main.tar.gz); a Mercurial revision, as hgweb's, not
    path = "/".join(segments[at + 1:])
    repo = readable_any(front, route, user)
    if isinstance(repo, HgRepo):
        if at:
            raise ProtocolError("Unsupported archive type", 404)
        if at + 1 == len(segments):
            path = asked
        return hg_archive.prepare(repo, route.repo, key, kind, path)
    try:
        archive = GitPages(repo).archive(route.repo, key, kind, path, git_archives(front.authorizer))
    except BaseException:
        close_git(repo)
        raise
    # (closed once read, or closed unread: a HEAD, a 304)
    return WebArchive(archive.filename, archive.content_type,
                      lambda: PackStream(archive.chunks(), on_end=lambda: close_git(repo)), archive.tag)


def readable_any(front: HttpFront, route: Route, user: str | None) -> HgRepo | GitRepository:
    """The repository the route names, of either kind, once its settings let ``user`` read it over
    HTTP (blocking): an hg repository's ``[web]`` read lists (not ``allow-pull``, which hgweb
    applies to the wire protocol only), a git repository's ``http.uploadpack`` and ``[git] export_all``."""
    repo = returned_repository(front.config.backend.open(route.repo), f"open({route.repo!r})")
    if repo.kind is Kind.GIT:
        try:
            check_git_readable(front, route.repo, repo)
        except BaseException:
            close_git(repo)  # refused: the caller never gets it to close
            raise
        return repo
    if not isinstance(repo, HgRepo):
        engine = getattr(repo, "__wrapped__", None)  # a backend's wrapper of an engine repository: pages read that
        if isinstance(engine, HgRepo):
            repo = engine
        elif getattr(repo, "kind", None) is not None and repo.kind.value == "hg":
            raise UnsupportedFeature(f"the web pages, archives and raw files of {route.repo} are not served: they "
                                     "come from repositories of hgwire's own Mercurial engine only; clone it to read it")
        else:
            raise NotARepository(f"'{route.repo}' is not a Mercurial repository")
    read_base_hgrc(repo, front.authorizer)
    log_recovery(repo)
    check_web_access(repo, user, None)  # as hgweb, its [web] read lists; allow-pull is the wire protocol's
    return repo


def check_git_readable(front: HttpFront, name: str, repo: GitRepository) -> None:
    """Refuse a git repository its settings do not let anyone clone over HTTP: ``[git] export_all``
    (or its ``git-daemon-export-ok``) and its ``http.uploadpack``."""
    read_base_git_config(front.authorizer, repo)
    check_exported(front.authorizer, "git-http", name, repo)
    if not upload_pack_enabled(repo):
        raise PermissionDenied("Service not enabled: 'upload-pack'")


def _send(archive: hg_archive.Archive | WebArchive, request: server.Request, route: Route) -> defer.Deferred[None]:
    """Stream the archive; the Deferred fires when it is sent, cut or abandoned (never errbacks:
    once the headers are out, a failure can only cut the download, which ``broke`` does)."""
    if request.finished or request._disconnected:
        return defer.succeed(None)
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    if not_modified(request, b'W/"%s"' % archive.tag.encode("ascii"), finish=False):  # weak: the same files
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome=f"ok: {archive.filename} (304)")
        return _unread_then_finish(archive.chunks, request)
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", archive.content_type.encode("ascii"))
    request.setHeader(b"Content-Disposition", b'attachment; filename="%s"' % archive.filename.encode("ascii"))
    if request.method == b"HEAD":
        return _unread_then_finish(archive.chunks, request)
    return _stream(archive.chunks(), request, route, PROTO, archive.filename)


def _unread(chunks: Callable[[], Iterator[bytes]]) -> None:
    """An archive that is not sent (HEAD, 304): what its chunks hold let go (a git repository), unread."""
    getattr(chunks(), "close", lambda: None)()


def _unread_then_finish(chunks: Callable[[], Iterator[bytes]], request: server.Request) -> defer.Deferred[None]:
    """Let an archive that is not sent go, then answer: answered first, a client's next request
    could find the archive's slot still held (503) while its repository was being let go."""

    def answer(_: object) -> None:
        if not request.finished and not request._disconnected:
            request.finish()

    return run_blocking(_unread, chunks).addBoth(answer)


def _stream(chunks: Iterator[bytes], request: server.Request, route: Route, proto: str, what: str
            ) -> defer.Deferred[None]:
    """Send ``chunks`` as the response's body, from the pool with backpressure; the Deferred fires
    when they are sent, cut or abandoned (never errbacks: once the headers are out, a failure can
    only cut the download, which ``broke`` does)."""
    producer = IteratorProducer(chunks, request)

    def sent(_: object) -> None:
        if not request.finished and not request._disconnected:
            request.finish()
        log.info("{proto} {repo}: {outcome}", proto=proto, repo=route.repo, outcome=f"ok: sent {what}")

    def broke(failure: Failure) -> None:  # the client sees a cut download
        if failure.check(defer.CancelledError):  # its client gone, or the stop's grace over (cut)
            cut = gone_outcome("client gone", getattr(request, "transport", None)) == CUT_AT_SHUTDOWN
            outcome = f"{CUT_AT_SHUTDOWN} during {what}" if cut else f"the client went away during {what}"
            metrics.count_http_outcome(request.code, outcome)  # (its status, 200, is no error)
            log.info("{proto} {repo}: {outcome}", proto=proto, repo=route.repo, outcome=outcome)
            return
        if failure.check(StorageError):  # a file gone from its store, an LFS blob corrupt on disk (its path)
            where = getattr(failure.value, "path", None)
            log.error("{proto} {repo}: {what} cut short: {error}{where}", proto=proto, repo=route.repo, what=what,
                      error=str(failure.value), where=f" ({where})" if where else "")
        elif (corrupt := corrupt_loose_object(failure.value)) is not None:  # (a loose blob streamed: its id, its file)
            log.error("{proto} {repo}: {what}: {reason}", proto=proto, repo=route.repo, what=what, reason=corrupt,
                      object=getattr(failure.value, "hexsha", None))
        else:
            log.failure("{proto} sending {what} of {repo}", failure, proto=proto, what=what, repo=route.repo)
        if not request.finished and not request._disconnected:
            request.loseConnection()

    return producer.start().addCallbacks(sent, broke)


def serve_raw_file(front: HttpFront, request: server.Request, route: Route) -> None:
    """hgweb's ``raw-file``: a file's bytes as ``application/binary`` (hgweb's default, ``guessmime``
    off: a browser never renders them), or a directory's listing as plain text; for a git
    repository too (``/NAME.git/raw-file/REF/PATH``: a blob, a tree's listing)."""
    d: defer.Deferred[Any] = front.authorize(request, route.repo, transport_of(route.repo), Access.READ)
    d.addCallback(lambda user: run_blocking(_read_raw_file, front, route, user))
    d.addCallback(_send_raw_file, request, route)
    d.addErrback(fail_request, request, route.repo, RAW_FILE_PROTO, error_shape("raw-file"), logger=log)  # hgweb's "\nerror: ...\n"


def transport_of(name: str) -> str:
    """How a page's request is authorized: as a clone of that kind (by the name, as the repository page does)."""
    return "git-http" if name.endswith(".git") else TRANSPORT


def _read_raw_file(front: HttpFront, route: Route, user: str | None) -> hg_archive.RawFile:
    key, _, path = route.service.partition("/")
    repo = readable_any(front, route, user)
    if isinstance(repo, HgRepo):
        return hg_archive.raw_file(repo, key, path)
    with closing_git(repo):
        return GitPages(repo).raw_file(key, path)


def _send_raw_file(found: hg_archive.RawFile, request: server.Request, route: Route) -> None:
    if request.finished or request._disconnected:
        run_blocking(getattr(found.chunks, "close", lambda: None))
        return
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    if found.tag and not_modified(request, b'"%s"' % found.tag.encode("ascii")):
        run_blocking(getattr(found.chunks, "close", lambda: None))
        log.info("{proto} {repo}: {outcome}", proto=RAW_FILE_PROTO, repo=route.repo, outcome=f"ok: {route.service} (304)")
        return
    request.setResponseCode(200)
    if found.name is None:
        request.setHeader(b"Content-Type", b"text/plain; charset=UTF-8")
    else:
        request.setHeader(b"Content-Type", b"application/binary")
        request.setHeader(b"Content-Disposition", content_disposition(b"inline", found.name))
    request.setHeader(b"Content-Length", b"%d" % found.size)
    if request.method == b"HEAD":
        run_blocking(getattr(found.chunks, "close", lambda: None))
        request.finish()
        return
    _stream(found.chunks, request, route, RAW_FILE_PROTO, f"{route.service} ({found.size} bytes)")


def content_disposition(disposition: bytes, name: bytes) -> bytes:
    """``Content-Disposition`` naming a file: ``filename="..."`` with quotes and backslashes
    escaped, as hgweb names it; a name beyond printable ASCII (which a header line cannot carry)
    has each such character as ``_`` there (what ``curl -J`` saves it as) and the name itself in
    RFC 6266's ``filename*=UTF-8''caf%C3%A9.txt`` (RFC 8187), which browsers save it by (bytes
    that are not UTF-8 as U+FFFD, as the pages show such a name)."""
    if all(0x20 <= b < 0x7F for b in name):
        return b'%s; filename="%s"' % (disposition, _quoted(name))
    text = name.decode("utf-8", "replace")
    fallback = "".join(c if " " <= c <= "~" else "_" for c in text).encode("ascii")
    encoded = quote(text, safe=EXT_VALUE_SAFE, encoding="utf-8").encode("ascii")
    return b"%s; filename=\"%s\"; filename*=UTF-8''%s" % (disposition, _quoted(fallback), encoded)


def _quoted(name: bytes) -> bytes:
    """Printable ASCII as the inside of a quoted-string (RFC 9110 §5.6.4)."""
    return name.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


EXT_VALUE_SAFE = "!#$&+-.^_`|~"
"""RFC 8187's ``attr-char`` punctuation (letters and digits aside): left as they are in ``filename*``."""


def serve_web_page(front: HttpFront, request: server.Request, route: Route) -> None:
    """hgweb's ``json-tags``, ``json-bookmarks``, ``json-branches``, ``raw-rev/REV``, ``json-rev``,
    the logs (``json-shortlog``, ``json-changelog``, with ``?revcount=``), ``json-manifest``,
    ``json-file`` and ``json-summary``, as ``hg serve`` writes them; a log with ``?rev=`` and no
    revision is hgweb's search."""
    searched = route.service.partition("/")[0] in (*hg_web.LOG_PAGES, hg_web.RAW_LOG)
    query = request.args.get(b"rev", [None])[-1] if searched else None
    if query is not None and len(query) > MAX_QUERY:
        send_error(request, 414, f"a search holds at most {MAX_QUERY} bytes")
        return
    revcount = _revcount(request.args.get(b"revcount", [b""])[-1])
    url = f"{site_url(front, request)}/{route.repo}/"  # hgweb's {urlbase}{url}, for the summary's archive links
    d: defer.Deferred[Any] = front.authorize(request, route.repo, TRANSPORT, Access.READ)
    context = context_arg(request)
    switches = annotate_switches(request)
    linerange = line_range(request)
    d.addCallback(page_queued, lambda user: _web_page(front, route, user, revcount, url, context, query, switches,
                                                      linerange), request, route.repo)
    d.addCallback(_send_page, request, route)
    d.addErrback(fail_request, request, route.repo, WEB_PAGE_PROTO, error_shape(route.service), logger=log)


def _web_page(front: HttpFront, route: Route, user: str | None, revcount: int | None, url: str,
              context: str | None, query: bytes | None, switches: dict[bytes, bytes],
              linerange: LineQuery | None) -> bytes:
    """A page of hgweb's (blocking): of an hg repository as ``hg serve`` writes it; of a git
    repository, its JSON pages (``backends.git_web.json_page``), for scripts reading either kind."""
    repo = readable_any(front, route, user)
    if isinstance(repo, HgRepo):
        hg_annotate.LIMIT.revisions = annotate_max_revisions(front.authorizer)  # ([limits], as the policy says now)
        return hg_web.page(repo, route.service, revcount, url, context, query, switches, linerange)
    if not route.service.startswith("json-"):
        close_git(repo)
        page = route.service.split("/", 1)[0]
        raise NotARepository(f"'{route.repo}' is a git repository, and hgweb's {page} page is served for Mercurial "
                             f"repositories only: read its history on its pages or as JSON (json-shortlog)")
    with closing_git(repo):
        return git_web.json_page(GitPages(repo), route.service, revcount, url, query)


def annotate_switches(request: server.Request) -> dict[bytes, bytes]:
    """hgweb's whitespace switches of an annotation given in the query (``?ignorews=1``), each's last value."""
    return {name: request.args[name][-1][:20] for name in hg_web.WHITESPACE_SWITCHES if name in request.args}


MAX_QUERY = 1000
"""Bytes of a log's search (``?rev=``)."""


def error_shape(service: str) -> Callable[[str], tuple[bytes, bytes]] | None:
    """How a page's error is written: a JSON page's as hgweb's json style writes one (``{"error":
    MESSAGE}``), a raw page's as its raw style does (``error: MESSAGE``); None for plain text."""
    if service.startswith("json-"):
        return lambda message: (b'{\n"error": %s\n}' % hg_web.json_string(_valid_utf8(message)), b"application/json")
    if service.startswith("raw-"):
        return lambda message: (b"\nerror: %s\n" % message.encode("utf-8", "surrogateescape"),
                                b"text/plain; charset=UTF-8")
    return None


def _valid_utf8(message: str) -> bytes:
    """An error's sentence as UTF-8, a byte of the URL that was not UTF-8 (``json-file/tip/%ff``,
    held as a lone surrogate) as U+FFFD, as the pages show such a name: hg's ``\\udcff`` for it is
    no character, and strict JSON parsers refuse the whole answer (the pages' own fields keep
    hg's escape, byte for byte as ``hg serve`` writes them, for scripts that read the bytes back)."""
    return message.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8")


def page_queued(user: str | None, make: Callable[[str | None], bytes | None], request: server.Request,
                repository: str = "") -> defer.Deferred[bytes | None]:
    """Make a page of ``repository`` in the pool once one of its ``PAGES_PER_REPOSITORY`` and one of
    the ``PAGE_SLOTS`` are free (None for a client gone while it waited)."""
    own = _REPOSITORY_PAGE_SLOTS.get(repository)
    if not (_PAGE_SLOTS.tokens and (own is None or own.tokens)) and MAX_WAITING_PAGES <= (
            len(_PAGE_SLOTS.waiting) + sum(len(slots.waiting) for slots in _REPOSITORY_PAGE_SLOTS.values())):
        raise ProtocolError("too many pages are being made right now; try again in a minute", 503)
    if own is None:
        own = _REPOSITORY_PAGE_SLOTS[repository] = defer.DeferredSemaphore(PAGES_PER_REPOSITORY)

    def gone() -> bool:  # (asked from the worker: a long log stops once its client has gone)
        return bool(request.finished or request._disconnected)

    def made() -> defer.Deferred[bytes | None]:
        if gone():
            return defer.succeed(None)
        return run_blocking(client_gone.watched(make, gone), user)

    def done(result: object) -> object:
        if own.tokens == PAGES_PER_REPOSITORY and not own.waiting \
                and _REPOSITORY_PAGE_SLOTS.get(repository) is own:
            del _REPOSITORY_PAGE_SLOTS[repository]
        return result

    return own.run(_PAGE_SLOTS.run, made).addBoth(done)


LineQuery = tuple[Sequence[bytes], bool]
"""hgweb's ``?linerange=`` values of a file's log, and whether ``descend`` is given."""


def line_range(request: server.Request) -> LineQuery | None:
    """A file log's ``?linerange=FROM:TO`` (and ``&descend``), as given; None without one."""
    return (request.args[b"linerange"], _flag(request, b"descend")) if b"linerange" in request.args else None


def _flag(request: server.Request, name: bytes) -> bool:
    """Whether the query names ``name``, with a value or bare (``?linerange=1:3&descend``: Twisted's
    ``args`` leave out a name without ``=``, hgweb's take it)."""
    query = request.uri.partition(b"?")[2]
    return name in request.args or any(part.partition(b"=")[0] == name for part in query.split(b"&"))


def context_arg(request: server.Request) -> str | None:
    """hgweb's ``?context=N|full`` of a comparison (its first characters), or None."""
    value = request.args.get(b"context", [None])[-1]
    return value.decode("ascii", "replace")[:12] if value is not None else None


def _revcount(value: bytes) -> int | None:
    """hgweb's ``revcount``: a number (at least 1), or None (the page's own) for anything else."""
    digits = value.strip().removeprefix(b"-").removeprefix(b"+")
    if not digits.isdigit() or len(digits) > 9:
        return None
    return max(int(value), 1)


PAGE_TYPES = {"raw": b"text/plain; charset=UTF-8", "atom": b"application/atom+xml; charset=utf-8",
              "rss": b"text/xml; charset=utf-8"}
"""The content type of an hgweb page by its name's first word (``json-*`` pages: JSON)."""


def _send_page(body: bytes | None, request: server.Request, route: Route) -> None:
    page = route.service.partition("/")[0]
    send_page(body, request, route, PAGE_TYPES.get(page.partition("-")[0], b"application/json"), WEB_PAGE_PROTO)


def send_page(body: bytes | None, request: server.Request, route: Route, content_type: bytes, proto: str,
              headers: Mapping[bytes, bytes] | None = None) -> None:
    """Answer a page made whole (None: its client went away while it waited for a slot), with an
    ``ETag`` of its bytes (one of ``MAX_TAGGED`` or less): a client that has them (``If-None-Match``,
    a feed reader polling) gets 304 and no body, as hg serve answers it."""
    if body is None or request.finished or request._disconnected:
        return
    tag = page_tag(body)
    for name, value in (headers or {}).items():
        request.setHeader(name, value)
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    if tag is not None and not_modified(request, tag):
        log.info("{proto} {repo}: {outcome}", proto=proto, repo=route.repo, outcome=f"ok: {route.service} (304)")
        return
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", b"%d" % len(body))
    if request.method != b"HEAD":
        request.write(body)
    request.finish()
    log.info("{proto} {repo}: {outcome}", proto=proto, repo=route.repo, outcome=f"ok: {route.service}")


MAX_TAGGED = 1 << 20
"""The largest page given an ``ETag`` (its bytes are hashed on the reactor: a 1 MiB page in about a
millisecond; the larger ones, huge diffs, are rarely asked for twice)."""


def page_tag(body: bytes) -> bytes | None:
    """A weak ``ETag`` naming a page's bytes; None for one over ``MAX_TAGGED``."""
    if len(body) > MAX_TAGGED:
        return None
    return b'W/"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode("ascii") + b'"'


def not_modified(request: server.Request, tag: bytes, finish: bool = True) -> bool:
    """Send ``tag`` as the answer's ``ETag``; when ``If-None-Match`` names it, answer 304 with no
    body (the caller sends nothing more; ``finish=False``: the caller finishes it) and say so."""
    request.setHeader(b"ETag", tag)
    if not tag_matches(request.getHeader(b"if-none-match"), tag):
        return False
    request.setResponseCode(304)
    if finish:
        request.finish()
    return True


def tag_matches(header: bytes | None, tag: bytes) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weakly: ``W/`` aside) or is ``*``."""
    if not header:
        return False
    wanted = tag.removeprefix(b"W/")
    for item in header.split(b","):
        item = item.strip()
        if item == b"*" or item.removeprefix(b"W/") == wanted:
            return True
    return False


HANDLERS = {RouteKind.HG_ARCHIVE: serve_archive, RouteKind.HG_WEB_PAGE: serve_web_page}
"""(``HG_RAW_FILE`` is ``gateway.hg_web``'s: it finds the repository, then calls ``serve_raw_file``.)"""
