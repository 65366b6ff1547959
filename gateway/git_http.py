"""git smart HTTP (git-http-backend(1)): info/refs and the stateless-RPC POSTs.

``HANDLERS`` maps ``gateway.http.RouteKind`` to a handler; ``gateway.http``
registers them.  Each handler authorizes first (``HttpFront.authorize``: pushes
need a user, so anonymous pushes get 401 and git asks for credentials), then:

- ``GET /NAME/info/refs?service=S``: ``# service=S`` pkt-line, flush, and the
  v0 advertisement of the sans-IO core, with git-http-backend's content type and
  no-cache headers.  With ``Git-Protocol: version=2`` upload-pack answers the
  v2 capability advertisement instead, with no ``# service`` line
  (PROTOCOL-NOTES §2.1); receive-pack has no v2 and answers v0.
- ``POST /NAME/git-upload-pack`` / ``git-receive-pack``: the body (spooled by
  twisted.web; ``Content-Encoding: gzip`` inflated into a bounded spool in the
  pool) is fed to the same session class as git:// and SSH use
  (``gateway.git_session``, v0 or v2 by ``Git-Protocol``) built with
  ``stateless=True``: no advertisement, one request, the response streamed
  with chunked encoding and backpressure.

An ``HttpChannel`` adapts a ``twisted.web`` request to ``gateway.channel.Channel``.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping
from typing import IO, Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.web import server

from backends import git_pack
from backends.interfaces import GitRepository, object_format_of
from gateway import git_session, metrics
from gateway.auth import Access
from gateway.channel import Session, SessionContext, peer_text
from gateway.errors import (
    INTERNAL_ERROR,
    OUT_OF_FILES,
    OUT_OF_FILES_ADVICE,
    damaged_repository,
    fault_place,
    out_of_files,
    storage_fault,
    temp_space_refusal,
    unreadable_object,
)
from gateway.http import (
    HttpFront,
    Route,
    RouteKind,
    Unauthorized,
    refusal_outcome,
    retry_after,
    send_error,
    send_unauthorized,
    site_url,
)
from gateway.limits import gone_outcome, limits_for
from gateway.live_body import BodyAborted, LiveBody
from gateway.logs import SafeLogger
from gateway.repo_use import closing_git
from gateway.threads import run_blocking
from protocols import client_gone, git_receive, git_upload, git_v2, pktline
from protocols.errors import (
    ClientGone,
    HgwireError,
    LimitExceeded,
    NotARepository,
    PermissionDenied,
    ProtocolError,
    RepositoryNotFound,
    UnsafeName,
    UnsupportedFeature,
)
from protocols.git_request import parse_git_protocol, protocol_version

log = SafeLogger()

PROTO = "git-http"
BODY_CHUNK = 64 * 1024
MAX_INFLATED_BODY = 2 * 1024**3
"""Largest gzip-inflated request body (zip-bomb bound)."""

SPOOL_IN_MEMORY = 1024 * 1024
MAX_GIT_PROTOCOL_HEADER = 256

NO_CACHE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Expires", b"Fri, 01 Jan 1980 00:00:00 GMT"),
    (b"Pragma", b"no-cache"),
    (b"Cache-Control", b"no-cache, max-age=0, must-revalidate"),
)
"""What git-http-backend sends on every smart response (its ``hdr_nocache``)."""

SERVICE_ACCESS: Mapping[str, Access] = {"git-upload-pack": Access.READ, "git-receive-pack": Access.WRITE}

class SpoolFull(HgwireError):
    """A request needs more temporary space (``TMPDIR``) than the server has: 507."""


HTTP_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (SpoolFull, 507),
    (Unauthorized, 401),
    (PermissionDenied, 403),
    (RepositoryNotFound, 404),
    (NotARepository, 404),
    (UnsafeName, 404),
    (UnsupportedFeature, 403),
)
"""Exception → HTTP status before the response has started (``ProtocolError`` carries its own)."""


def http_status(exc: BaseException) -> int:
    if isinstance(exc, ProtocolError):
        return exc.http_status
    return next((status for kind, status in HTTP_STATUS if isinstance(exc, kind)), 500)


def _set_headers(request: server.Request, content_type: str) -> None:
    request.setHeader(b"Content-Type", content_type.encode("ascii"))
    for name, value in NO_CACHE_HEADERS:
        request.setHeader(name, value)


def fail_request(failure: Failure, request: server.Request, repo: str, proto: str = PROTO,
                 shape: Callable[[str], tuple[bytes, bytes]] | None = None, logger: SafeLogger = log) -> None:
    """Answer an error that happened before any response byte was written (also the
    repository page's, ``gateway.repo_page``, logged as its ``proto``); ``shape``: the body and
    content type the message is sent as (else plain text; a 401 is always plain); ``logger``: the
    handler's own, so that an hg page's refusal is not logged under ``gateway.git_http``."""
    exc = failure.value
    assert exc is not None
    if isinstance(exc, ClientGone):  # a page stopped in the middle: its client had gone
        logger.info("{proto} {repo}: client gone: {reason}", proto=proto, repo=repo, reason=exc.message)
        return
    if request.finished or request._disconnected:
        return
    status = http_status(exc)
    told = (storage_fault(exc) or damaged_repository(exc)) if status == 500 else None
    if out_of_files(exc):
        logger.warn("{proto} on {repo} refused: {error}; {advice}", proto=proto, repo=repo, error=str(exc),  # noqa: G010
                 advice=OUT_OF_FILES_ADVICE)
        status, message = 503, OUT_OF_FILES
    elif told is not None:
        setattr(request, metrics.ERROR_KIND, "failed")  # (no traceback: not an internal error)
        if storage_fault(exc) is not None:  # the server's own files (a repository it may not read): as git:// logs it
            logger.warn("{proto} on {repo}: {reason}", proto=proto, repo=repo,  # noqa: G010
                        reason=told + fault_place(exc))
        else:
            logger.error("{proto} on {repo}: {reason}", proto=proto, repo=repo, reason=told)
        message = told
    elif status == 500:
        logger.failure("{proto} on {repo}", failure, proto=proto, repo=repo)
        message = unreadable_object(exc) or INTERNAL_ERROR
    else:
        message = str(exc)
    logger.info("{proto} {repo}: {outcome}", proto=proto, repo=repo, outcome=refusal_outcome(status, message, exc))
    if isinstance(exc, Unauthorized):
        send_unauthorized(request, message)
    else:
        retry_after(request, exc)
        if shape is None:
            send_error(request, status, message)
        else:
            body, content_type = shape(message)
            send_error(request, status, message, content_type, body=body)


def _context(front: HttpFront, request: server.Request, route: Route, user: str | None) -> SessionContext:
    config = front.config
    address = request.getClientAddress()
    git_protocol = (request.getHeader(b"git-protocol") or b"")[:MAX_GIT_PROTOCOL_HEADER]
    return SessionContext(
        backend=config.backend,
        repo_name=route.repo,
        transport=PROTO,
        peer=peer_text(address),
        user=user,
        read_only=config.read_only,
        create_on_push=config.create_on_push,
        protocol_version=protocol_version(parse_git_protocol(git_protocol)),
        extra={"http_service": route.service, "clone_base": site_url(front, request),
               **({"git_protocol": git_protocol.decode("ascii", "replace")} if git_protocol else {})},
        authorizer=front.authorizer,
    )


# --- GET info/refs ----------------------------------------------------------------------------

def _service_banner(service: str) -> bytes:
    """``# service=S`` and a flush: the smart-HTTP prefix of a v0 advertisement (not sent in v2)."""
    return pktline.encode(f"# service={service}\n".encode()) + pktline.FLUSH


def _advertise_upload(ctx: SessionContext) -> bytes:
    with closing_git(git_session.open_git_repo(ctx)) as repo:
        git_session.refuse_service(repo, "upload-pack")  # (git's v0 upload-pack dies as it starts)
        snapshot = git_session.snapshot(repo)
        settings = git_session.upload_settings(repo)
        flags = git_session.v0_upload_flags(settings, stateless=True)
        return _service_banner("git-upload-pack") + git_session.version_line(ctx) + git_upload.advertisement(
            snapshot.refs, snapshot.peeled, snapshot.symrefs, git_session.AGENT, flags=flags,
            object_format=object_format_of(repo), session_id=_session_id(settings.advertise_session_id),
            run=snapshot.run)


def _advertise_upload_v2(ctx: SessionContext) -> bytes:
    with closing_git(git_session.open_git_repo(ctx)) as repo:  # a missing repository is a 404 here too
        settings = git_session.v2_upload_settings(repo)
        return git_v2.capability_advertisement(git_session.AGENT, allow_filter=settings.allow_filter,
                                               object_format=object_format_of(repo),
                                               unborn=settings.unborn == "advertise",
                                               ref_in_want=settings.allow_ref_in_want,
                                               session_id=_session_id(settings.advertise_session_id))


def _advertise_receive(ctx: SessionContext) -> bytes:
    opened = git_session.open_for_push(ctx)
    if isinstance(opened, git_session.PendingRepository):  # made by the POST that pushes to it
        return _service_banner("git-receive-pack") + git_session.version_line(ctx) + git_receive.advertisement(
            {}, git_session.AGENT, object_format=opened.object_format)
    repo: GitRepository
    with closing_git(opened) as repo:
        signing = git_session.push_cert_settings(repo)
        nonce = git_session.cert_nonce(signing, repo) if signing is not None else None
        return _service_banner("git-receive-pack") + git_session.version_line(ctx) + git_receive.advertisement(
            git_pack.visible_refs(repo, "receive-pack"), git_session.AGENT, cert_nonce=nonce,
            push_options=git_session.push_options_offered(repo), atomic=git_session.atomic_offered(repo),
            object_format=object_format_of(repo),
            session_id=_session_id(git_session.session_id_advertised(repo)))


def _session_id(offered: bool) -> bytes | None:
    """The ``session-id`` of an advertisement (``transfer.advertiseSID``); each POST that follows
    is a session of its own, with its own id, as each of git http-backend's processes has."""
    return git_session.new_session_id() if offered else None


ADVERTISERS: Mapping[tuple[str, int], Callable[[SessionContext], bytes]] = {
    ("git-upload-pack", 0): _advertise_upload,
    ("git-upload-pack", 2): _advertise_upload_v2,
    ("git-receive-pack", 0): _advertise_receive,
}
"""(service, protocol version) → the GET answer, blocking; a version without a row falls back to 0."""


def _pick(table: Mapping[tuple[str, int], Any], service: str, version: int) -> Any:
    return table.get((service, version)) or table[(service, 0)]


def serve_info_refs(front: HttpFront, request: server.Request, route: Route) -> None:
    """``GET /NAME/info/refs?service=S``: the smart advertisement, as git-http-backend."""
    d: Deferred[Any] = front.authorize(request, route.repo, PROTO, SERVICE_ACCESS[route.service])
    d.addCallback(lambda user: _context(front, request, route, user))
    d.addCallback(lambda ctx: run_blocking(_watched(request, _pick(ADVERTISERS, route.service, ctx.protocol_version)),
                                           ctx))
    d.addCallback(_send_advertisement, request, route)
    d.addErrback(fail_request, request, route.repo)


def _watched(request: server.Request, advertise: Callable[[SessionContext], bytes]) -> Callable[[SessionContext], bytes]:
    """``advertise`` for the pool, its ref snapshot's loop (``git_pack.snapshot_refs``: a mirror's
    100,000 tags) stopped with ``ClientGone`` once the request's client has gone."""
    return client_gone.watched(advertise, lambda: bool(request.finished or request._disconnected))


def _send_advertisement(body: bytes, request: server.Request, route: Route) -> None:
    if request._disconnected:
        return
    _set_headers(request, f"application/x-{route.service}-advertisement")
    request.write(body)
    request.finish()
    offered = _OFFERED_SESSION_ID.search(body[:_CAPS_SPAN])  # transfer.advertiseSID: what the client's trace2 notes
    if offered is None:
        log.info("{proto} {service} {repo}: {outcome}", proto=PROTO, service="info/refs " + route.service,
                 repo=route.repo, outcome="ok", bytes_out=len(body))
    else:
        log.info("{proto} {service} {repo}: {outcome}, session-id {session_id}", proto=PROTO,
                 service="info/refs " + route.service, repo=route.repo, outcome="ok", bytes_out=len(body),
                 session_id=offered.group(1).decode("ascii"))


_OFFERED_SESSION_ID = re.compile(rb"(?:[\0 ]|\n[0-9a-f]{4})session-id=([!-~]+)")
_CAPS_SPAN = 70000
"""Where an advertisement's capabilities are: its first pkt-lines (v2's, or v0's first ref line)."""


# --- POST: stateless RPC ----------------------------------------------------------------------

RPC_SESSIONS: Mapping[tuple[str, int], Callable[..., git_session.GitSession]] = {
    ("git-upload-pack", 0): git_session.UploadPackSession,
    ("git-upload-pack", 2): git_session.UploadPackV2Session,
    ("git-receive-pack", 0): git_session.ReceivePackSession,
}
"""(service, protocol version) → the session class, built with ``stateless=True``."""


def serve_rpc(front: HttpFront, request: server.Request, route: Route) -> None:
    """``POST /NAME/git-<service>``: feed the body to a stateless session, stream its answer."""
    expected = f"application/x-{route.service}-request"
    content_type = (request.getHeader(b"content-type") or b"").decode("latin-1").split(";")[0].strip()
    if content_type != expected:
        send_error(request, 415, f"expected Content-Type {expected}")
        return
    encoding = (request.getHeader(b"content-encoding") or b"").decode("latin-1").strip().lower()
    if encoding not in BODY_DECODERS:
        send_error(request, 415, f"unsupported Content-Encoding {encoding[:40]!r}")
        return
    d: Deferred[Any] = front.authorize(request, route.repo, PROTO, SERVICE_ACCESS[route.service])
    d.addCallback(lambda user: _with_body(request, encoding, user, limits_for(front.config).max_decompressed))
    d.addCallback(lambda opened: _start_rpc(front, request, route, *opened))
    d.addErrback(fail_request, request, route.repo)


def _with_body(request: server.Request, encoding: str, user: str | None, max_decompressed: int) -> Any:
    assert request.content is not None
    d = run_blocking(BODY_DECODERS[encoding], request.content, max_decompressed)
    return d.addCallback(lambda body: (body, user))


def _identity(content: IO[bytes], max_decompressed: int) -> IO[bytes]:
    content.seek(0)
    return content


def _gunzip(content: IO[bytes], max_decompressed: int = MAX_INFLATED_BODY) -> IO[bytes]:
    """Inflate a gzip body into a bounded spool; a bad or oversized body is refused (400/413)."""
    content.seek(0)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    total = 0
    try:
        while chunk := content.read(BODY_CHUNK):
            while chunk:
                out = inflater.decompress(chunk, BODY_CHUNK)
                total += len(out)
                if total > max_decompressed:
                    raise LimitExceeded(f"inflated request body is larger than {max_decompressed} bytes")
                spool.write(out)
                chunk = inflater.unconsumed_tail
        if not inflater.eof:
            raise ProtocolError("truncated gzip request body")
    except zlib.error:
        spool.close()
        raise ProtocolError("malformed gzip request body") from None
    except ProtocolError:
        spool.close()
        raise
    except OSError as exc:  # past SPOOL_IN_MEMORY the spool is a file in TMPDIR: full, over quota
        with contextlib.suppress(OSError):
            spool.close()
        raise SpoolFull(temp_space_refusal("the request's inflated body", exc)) from None
    spool.seek(0)
    return cast(IO[bytes], spool)


BODY_DECODERS: Mapping[str, Callable[[IO[bytes], int], IO[bytes]]] = {
    "": _identity,
    "identity": _identity,
    "gzip": _gunzip,
    "x-gzip": _gunzip,
}


def _start_rpc(front: HttpFront, request: server.Request, route: Route, body: IO[bytes],
               user: str | None) -> None:
    if request._disconnected:
        return
    _set_headers(request, f"application/x-{route.service}-result")
    ctx = _context(front, request, route, user)
    channel = HttpChannel(request, body, route, ctx)
    session = _pick(RPC_SESSIONS, route.service, ctx.protocol_version)(ctx, channel, stateless=True)
    channel.attach(session)
    session.start()
    channel.begin()


class HttpChannel:
    """A twisted.web request as a session ``Channel``: the body is stdin, the response stdout."""

    def __init__(self, request: server.Request, body: IO[bytes], route: Route, ctx: SessionContext) -> None:
        self._request = request
        self._ctx = ctx
        self._body = body
        self._route = route
        self._session: Session | None = None
        self._paused = False
        self._reading = False
        self._eof = False
        self._done = False
        self._bytes_out = 0
        self._bytes_in = 0
        """The request body the session was given (a push's pack; decoded, when it came gzipped)."""
        self._started = time.monotonic()
        request.notifyFinish().addBoth(self._request_gone)

    def attach(self, session: Session) -> None:
        self._session = session

    def begin(self) -> None:
        """Start feeding the body unless the session paused input while starting."""
        self._feed()

    # input: the request body, one chunk in flight

    def pause_input(self) -> None:
        self._paused = True

    def resume_input(self) -> None:
        self._paused = False
        self._feed()

    def _feed(self) -> None:
        if self._paused or self._reading or self._eof or self._done or self._session is None:
            return
        self._reading = True
        body = self._body
        # a push's body as it arrives (gateway.live_body), any other as spooled
        d = body.read_later(BODY_CHUNK) if isinstance(body, LiveBody) else run_blocking(body.read, BODY_CHUNK)
        d.addCallbacks(self._got_chunk, self._read_failed)

    def _got_chunk(self, chunk: bytes) -> None:
        self._reading = False
        if self._done or self._session is None:
            return
        if chunk:
            self._bytes_in += len(chunk)
            self._session.data_received(chunk)
        else:
            self._eof = True
            self._session.eof_received()
        self._feed()

    def _read_failed(self, failure: Failure) -> None:
        self._reading = False
        if self._done:  # answered meanwhile: its body was closed under the read (a v0 fetch's rest)
            return
        if failure.check(BodyAborted):  # the connection went (or the body was refused) while it came
            self._request_gone(None)
            return
        log.failure("reading a request body", failure)
        self.finish(1)

    # output

    def write(self, data: bytes) -> None:
        if not self._done and data:
            self._bytes_out += len(data)
            self._request.write(data)

    def write_stderr(self, data: bytes) -> None:
        """HTTP has no stderr: the session's message is already in the response."""

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        if not self._done:
            self._request.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        if not self._done:
            self._request.unregisterProducer()

    def finish(self, exit_status: int) -> None:
        if self._done:
            return
        self._done = True
        said = getattr(self._session, "outcome", None)  # why a session failed, as git over SSH logs it
        # (a push whose refs were refused, or whose pack was not stored, ends with status 0 too: its
        # report went in the answer; its line says so, as over git:// and SSH, not "ok")
        self._log(said[:400] if isinstance(said, str) and said.startswith(("refused", "error"))
                  else "ok" if exit_status == 0 else f"exit {exit_status}")
        self._close_body()
        self._request.finish()

    def _request_gone(self, result: object) -> None:
        if self._done:
            return
        self._done = True
        self._log("client gone")
        self._close_body()
        if self._session is not None:
            self._session.connection_lost()
        return

    def _close_body(self) -> None:
        body, self._body = self._body, _EMPTY
        if isinstance(body, LiveBody):
            body.discard()  # answered: the rest of the body is read off the connection and dropped
        elif body is not self._request.content:
            run_blocking(body.close)

    def _log(self, outcome: str) -> None:
        outcome = gone_outcome(outcome, getattr(self._request, "transport", None))
        metrics.count_http_outcome(self._request.code, outcome)  # (a 200 carrying a refused push's report)
        log.info(
            "{proto} {service} {repo}: {outcome} in {elapsed_ms} ms",
            proto=PROTO, service=self._route.service, repo=self._route.repo, outcome=outcome,
            user=self._ctx.user, peer=self._ctx.peer, bytes_in=self._bytes_in, bytes_out=self._bytes_out, elapsed_ms=int((time.monotonic() - self._started) * 1000),
        )


class _Empty:
    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


_EMPTY: Any = _Empty()

HANDLERS: Mapping[RouteKind, Callable[[HttpFront, server.Request, Route], None]] = {
    RouteKind.GIT_INFO_REFS: serve_info_refs,
    RouteKind.GIT_UPLOAD_PACK: serve_rpc,
    RouteKind.GIT_RECEIVE_PACK: serve_rpc,
}
