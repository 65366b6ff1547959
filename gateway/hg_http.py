"""Mercurial over HTTP(S): ``GET|POST /NAME?cmd=COMMAND`` on the shared HTTP listener.

``HANDLERS`` maps ``RouteKind.HG_COMMAND`` to ``serve_command``; ``gateway.http``
registers it.  One request runs one command of the shared table
(``protocols.hg_commands``), as hgweb's ``handlewsgirequest`` does:

1. ``protocols.hg_http.parse_head`` reads the query string and the ``X-HgArg``
   / ``X-HgProto`` / ``X-HgArgs-Post`` headers (bounded; 400/431 otherwise).
2. A command with ``push`` permission needs POST (405 ``push requires POST
   request``) and TLS unless ``--allow-push-over-http`` (403, hgweb's
   ``push_ssl``); then Basic credentials are checked (``HttpFront``) and the
   ``Authorizer`` decides: an anonymous push gets 401 with ``WWW-Authenticate``
   so hg asks for a password, ``--read-only`` 403.  ``batch`` checks each
   sub-command through the same checker (CVE-2018-1000132).
3. In the worker pool: open the repository, read the ``X-HgArgs-Post`` prefix
   of the spooled body (twisted.web keeps a large body in a temporary file),
   and dispatch; ``unbundle`` reads the rest of the body as its payload, chunk
   by chunk, so a push is never held whole in memory (the repository keeps it
   on disk until it is whole, then locks and applies it: ``backends.hg.push_spool``).
4. ``protocols.hg_http.render`` gives the content type and the body or a
   compressed stream, which ``IteratorProducer`` writes with backpressure
   (chunked encoding); a client that goes away stops and closes the stream.
   An answer that sends changesets runs the repository's ``preoutgoing`` hooks
   before it starts (a refusal is hg's ``error:abort``) and its ``outgoing``
   hooks before the response ends, on the hooks' own threads; hg has no channel
   for their output over HTTP, so it is logged.

Errors before the answer starts are HTTP statuses whose reason phrase carries
the message (hg prints ``abort: HTTP Error 403: <reason>``), with hgweb's
``0\\n<message>\\n`` body; ``UnsupportedFeature`` is a 200 ``application/hg-error``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import server

from backends import returned_repository
from backends.interfaces import HgRepository, Kind
from gateway import metrics
from gateway.auth import Access
from gateway.channel import SessionContext, peer_text
from gateway.errors import (
    OUT_OF_FILES,
    OUT_OF_FILES_ADVICE,
    corrupt_on_disk,
    fault_place,
    out_of_files,
    push_refusal,
    storage_fault,
    wrong_kind,
)
from gateway.hg_hooks import PullHooks, pull_hooks_of
from gateway.hg_session import (
    PERMISSION_ACCESS,
    after_answer,
    close_stream,
    grant_hidden_access,
    hidden_access_needs_login,
    push_outcome,
    run_after_answer,
)
from gateway.http import (
    REALM,
    HttpFront,
    LoginNeeded,
    Route,
    RouteKind,
    Unauthorized,
    page_owner,
    refusal_outcome,
    retry_after,
    site_url,
)
from gateway.limits import bundle2_limits, changegroup_limits, gone_outcome, lock_wait
from gateway.live_body import BodyAborted, LiveBody, announced_length
from gateway.logs import SafeLogger
from gateway.name_hints import with_hint
from gateway.policy import clone_cache, wire_settings
from gateway.protected import guard_hg_repository
from gateway.shared_streams import share
from gateway.threads import IteratorProducer, run_blocking, run_for_hooks
from gateway.watched_stream import WatchedStream
from gateway.web_access import check_web_access
from protocols import hg_commands, hg_http, hg_wire
from protocols.errors import (
    ClientGone,
    HgwireError,
    NotARepository,
    PermissionDenied,
    ProtocolError,
    ReadOnly,
    RepositoryNotFound,
    UnsafeName,
    UnsupportedFeature,
)
from protocols.hg_commands import PULL, PUSH, Command, CommandContext, Permission, Transport
from protocols.hg_responses import BytesResponse, OobError, Response, StreamResponse
from protocols.http_head import reason_phrase

log = SafeLogger()

PROTO = "hg-http"
BODY_CHUNK = 64 * 1024

LIMITS = hg_http.HttpLimits()

Answer = tuple[Response, PullHooks | None]
"""A command's answer, and the repository's pull hooks to run around it."""

HEAD_ANSWER = BytesResponse(b"")
"""What a HEAD request's command "answers": nothing was run (``HgHttpCommand._respond_to_head``)."""

HTTP_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthorized, 401),
    (PermissionDenied, 403),
    (RepositoryNotFound, 404),
    (NotARepository, 404),
    (UnsafeName, 404),
)
"""Exception → status before the answer starts (``ProtocolError`` carries its own; the rest is 500)."""


class PlainHttpPush(PermissionDenied):
    """A push over plain HTTP that the operator did not allow (hgweb's ``ssl required``)."""


def http_status(exc: BaseException) -> int:
    if isinstance(exc, ProtocolError):
        return exc.http_status
    return next((status for kind, status in HTTP_STATUS if isinstance(exc, kind)), 500)


def _header_pairs(request: server.Request) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, values in request.requestHeaders.getAllRawHeaders() for value in values]


def _body_size(content: IO[bytes] | LiveBody | None, request: server.Request) -> int | None:
    """Size of the spooled body (a seek, no read); of a body read as it arrives, its
    ``Content-Length`` (None when it is sent in chunks)."""
    if content is None:
        return 0
    if isinstance(content, LiveBody):
        return announced_length(request)
    size = content.seek(0, 2)
    content.seek(0)
    return size


class _LiveReader:
    """A body read as it arrives (``LiveBody``), read from a pool thread as a file: each read waits
    for the reactor to have bytes (the connection is paused while more than the body's high water
    waits unread).  The thread waits on the client, as an hg push over SSH's does
    (``gateway.hg_session.PushQueue``); ``BodyAborted`` when the client went."""

    def __init__(self, body: LiveBody) -> None:
        self._body = body

    def read(self, size: int) -> bytes:
        from twisted.internet import reactor
        from twisted.internet.threads import blockingCallFromThread

        taken: list[bytes] = []
        left = size
        while left > 0:
            chunk: bytes = blockingCallFromThread(reactor, self._body.read_later, left)  # type: ignore[arg-type]
            if not chunk:
                break
            taken.append(chunk)
            left -= len(chunk)
        return b"".join(taken)


class HgHttpCommand:
    """One ``?cmd=`` request, from the head to the last byte of the answer."""

    def __init__(self, front: HttpFront, request: server.Request, route: Route) -> None:
        self.front = front
        self.request = request
        self.route = route
        self.method = request.method or b""
        self.secure = request.isSecure()
        self.settings = wire_settings(front.authorizer, getattr(request.getClientAddress(), "host", None))
        """Read once: the capabilities and the encoding of one answer agree even if the file reloads."""
        self.user: str | None = None
        self.command = route.service
        self.head: hg_http.RequestHead | None = None
        self.bytes_out = 0
        self.media_type = b""
        self.engine = hg_http.ENGINE_NONE
        self.started = time.monotonic()
        self._producer: IteratorProducer | None = None
        self.shared = ""
        """For a clone's stream: "started" (a new generation), "joined" (another request's) or "kept"."""
        self._hooks: PullHooks | None = None
        """The pull hooks of an answer that sends changesets, until ``outgoing`` has run."""
        self._gone = False
        self._after: Callable[[], None] | None = None
        """The repository's work left by the answer (``after_answer``), started once the request ends."""
        # The body is ours: twisted.web closes request.content when the client goes
        # away, which would pull it from under a push that is running in the pool.
        # One read as it arrives stays there: twisted.web writes into it, and its closing tells a
        # reader waiting in the pool that the client went.
        self.content: IO[bytes] | LiveBody | None = request.content
        if not isinstance(request.content, LiveBody):
            request.content = None
        request.notifyFinish().addErrback(self._request_gone)

    # -- the steps -----------------------------------------------------------------------

    def start(self) -> None:
        try:
            cmd = self._read_head()
            self._transport_gate(cmd.permission)
        except HgwireError as exc:
            self._close_body()
            self._fail(Failure(exc))
            return
        d = self.front.authenticate(self.request).addCallback(lambda user: self._run(user, cmd))
        d.addBoth(self._close_body_then)
        d.addCallback(self._gate)
        d.addCallback(lambda response: self._respond(response, cmd))
        d.addErrback(self._fail)

    def _close_body(self) -> None:
        content, self.content = self.content, None
        if isinstance(content, io.BytesIO):  # a GET's or a small POST's: nothing to wait for, no worker's turn
            content.close()
        elif content is not None and not isinstance(content, LiveBody):  # (a live one is the request's)
            run_blocking(content.close)

    def _close_body_then(self, result: Answer) -> Answer:
        self._close_body()
        return result

    def _read_head(self) -> Command:
        uri = self.request.uri or b""
        query = uri.partition(b"?")[2]
        size = _body_size(self.content, self.request)
        self.head = hg_http.parse_head(query, _header_pairs(self.request), size, LIMITS)
        self.command = self.head.command.decode("ascii", "replace")
        cmd = hg_commands.COMMANDS.get(self.head.command)
        if cmd is None:
            raise ProtocolError(f"no such method: {self.command[:60]}")
        return cmd

    def _transport_gate(self, permission: Permission) -> None:
        """What hgweb's ``checkauthz`` asks of a push before the user: POST, and TLS unless allowed."""
        if permission != PUSH:
            return
        if self.method != b"POST":
            raise ProtocolError("push requires POST request", http_status=405)
        if self.front.authorizer.read_only:
            return  # the authorizer's "this server is read-only": https:// would not let the push in either
        if not (self.secure or self.front.config.allow_push_over_http):
            raise PlainHttpPush("pushing over plain HTTP is refused; use https:// "
                                "(or start hgwire with --allow-push-over-http)")

    def _run(self, user: str | None, cmd: Command) -> defer.Deferred[Answer]:
        self.user = user
        self.check_permission(cmd.permission)
        self.front.counted(user, self.request)  # max_sessions_per_user, requests_per_minute
        if cmd.takes_payload:  # a push: the repository's hooks may hold it for minutes (``run_for_hooks``)
            return run_for_hooks(self._execute, cmd)
        return run_blocking(self._execute, cmd)

    def check_permission(self, permission: Permission) -> None:
        """The command table's checker (also for each batched command); thread-safe, no I/O."""
        self._transport_gate(permission)
        try:
            self.front.authorizer.check(self.user, self.route.repo, PROTO, PERMISSION_ACCESS[permission])
        except ReadOnly:
            raise
        except PermissionDenied as refusal:
            if self.user is None and not isinstance(refusal, Unauthorized):
                raise LoginNeeded(str(refusal)) from None
            raise

    def _execute(self, cmd: Command) -> Answer:
        """In the pool: open the repository, read the arguments, run the command; the repository's
        pull hooks come with an answer that sends changesets."""
        assert self.head is not None
        try:
            repo = self._open(self._reads_only(cmd))
        except UnsupportedFeature as exc:  # a repository hgwire cannot serve: hg shows the reason
            return OobError(exc.message.encode("utf-8", "replace")), None
        check_web_access(repo, self.user, cmd.permission)
        if cmd.permission == PUSH and (refusal := push_refusal(repo, self.route.repo)) is not None:
            raise refusal  # a read-only mirror (``refuses_push``): 403, as --read-only is
        content: IO[bytes] | _LiveReader | None
        if isinstance(self.content, LiveBody):
            content = _LiveReader(self.content)
        else:
            content = self.content
            if content is not None:
                content.seek(0)
        prefix = b""
        if content is not None:
            prefix = content.read(self.head.post_args_length)
        args = hg_http.with_post_args(self.head, prefix, LIMITS) if self.head.post_args_length else self.head.args
        payload = _payload(content) if cmd.takes_payload and content is not None else None
        caps = hg_http.http_capabilities(self.settings)
        ctx = CommandContext(Transport.HTTP, self.check_permission, caps, payload,
                             bundle2_limits(self.front.authorizer), changegroup_limits(self.front.authorizer),
                             lock_wait(self.front.authorizer), gone=lambda: self._gone)
        bound = hg_commands.bind_args(cmd, args)
        if self.method == b"HEAD":  # checked as GET is; the command is not run (``_respond_to_head``)
            return HEAD_ANSWER, None
        try:
            response = hg_commands.dispatch(repo, cmd.name, bound, ctx)
        except UnsupportedFeature as exc:
            return OobError(exc.message.encode("utf-8", "replace")), None
        self._after = after_answer(repo)
        return response, pull_hooks_of(repo, response, hg_commands.listing_of(cmd.name, bound))

    def _gate(self, answer: Answer) -> Response | defer.Deferred[Response]:
        """Run the pull hooks (``preoutgoing``, ``prelistkeys``, ``listkeys``; on the hooks' own threads)
        before the answer starts."""
        response, hooks = answer
        if hooks is None:
            return response
        return run_for_hooks(hooks.before).addCallback(lambda refusal: self._gated(response, hooks, refusal))

    def _gated(self, response: Response, hooks: PullHooks, refusal: str | None) -> Response:
        """The answer, or hg's refusal of it (``outgoing`` runs once the answer is sent)."""
        self._log_hook_output(hooks)
        if refusal is None:
            self._hooks = hooks
            return response
        close_stream(response)
        log.info("{proto} {command} {repo}: refused by a hook: {reason}", proto=PROTO, command=self.command,
                 repo=self.route.repo, user=self.user, reason=refusal)
        return hg_commands.refused_pull(hooks.bundle2, refusal, Transport.HTTP)

    def _log_hook_output(self, hooks: PullHooks) -> None:
        """hg has no channel for a pull's hook output over HTTP (hg serve prints it): log it."""
        out = hooks.take_output()
        if out:
            log.info("{proto} {command} {repo}: the repository's hooks wrote: {output}", proto=PROTO,
                     command=self.command, repo=self.route.repo, output=out.decode("utf-8", "replace").rstrip())

    def _reads_only(self, cmd: Command) -> bool:
        """Whether the request only reads the repository (a poll's ``capabilities``, ``batch`` of
        ``heads``/``known``/``listkeys``...): no push, no ``pushkey`` in a batch, no hidden access."""
        assert self.head is not None
        if cmd.permission != PULL or cmd.takes_payload or (self.request.args or {}).get(b"access-hidden"):
            return False
        if cmd.name != b"batch":
            return True
        if self.head.post_args_length:  # its commands are in the body, not read yet
            return False
        batched = hg_wire.parse_batch(self.head.args.get(b"cmds", b""))
        return all((found := hg_commands.COMMANDS.get(name)) is not None and found.permission == PULL
                   for name, _ in batched)

    def _open(self, reads_only: bool = False) -> HgRepository:
        """The repository, opened (for a request that ``reads_only``, through the backend's optional
        ``open_for_reading``, which may give one opened before while nothing changed on disk)."""
        backend = self.front.config.backend
        opener = getattr(backend, "open_for_reading", None) if reads_only else None
        address = self.request.getClientAddress()
        ctx = SessionContext(self.front.config.backend, self.route.repo, PROTO, peer_text(address), self.user,
                             extra={"scheme": "https" if self.secure else "http"}, authorizer=self.front.authorizer)
        try:
            repo = returned_repository((opener or backend.open)(self.route.repo), f"open({self.route.repo!r})")
        except RepositoryNotFound as missing:
            if (owner := self._page_owner()) is not None:
                raise RepositoryNotFound(f"{self.route.repo} is a page of repository {owner}, not a repository: "
                                         f"use {site_url(self.front, self.request)}/{owner}") from None
            raise with_hint(ctx, missing) from None
        except NotARepository as folder:
            raise with_hint(ctx, folder) from None
        if repo.kind is not Kind.HG:
            raise wrong_kind(self.route.repo, repo.kind)
        if (self.request.args or {}).get(b"access-hidden", [b""])[0]:  # hg pull --remote-hidden
            self._hidden_access(repo)
        return guard_hg_repository(repo, ctx)  # protected bookmarks and the audit log

    def _page_owner(self) -> str | None:
        """The repository whose web page the request's path names (``team/app/rev/tip``, a URL
        copied from a browser into ``hg clone``): the longest name before a page's that exists and
        the user may read; None when there is none (blocking: asks the backend)."""
        return page_owner(self.route.repo, self.front.config.backend.exists,
                          lambda owner: self.front.authorizer.check(self.user, owner, PROTO, Access.READ))

    def _hidden_access(self, repo: HgRepository) -> None:
        """Serve ``repo``'s hidden changesets to a user ``[experimental] server.allow-hidden-access``
        names; an anonymous client is asked to log in when it names users (hg's client sends its
        credentials only when challenged), anyone else's request is ignored and logged, as hgweb
        warns in its log."""
        refusal = grant_hidden_access(repo, self.user)
        if refusal is None:
            return
        if self.user is None and hidden_access_needs_login(repo):
            raise LoginNeeded("access to hidden changesets needs a login")
        log.info("{proto} {command} {repo}: {outcome}", proto=PROTO, command=self.command,
                 repo=self.route.repo, outcome=refusal)

    def _respond(self, response: Response, cmd: Command) -> None:
        assert self.head is not None
        if response is HEAD_ANSWER:
            self._respond_to_head()
            return
        reply = hg_http.render(response, cmd.name, self.head.proto, self.settings)
        if self._gone:
            close = getattr(reply.stream, "close", None)
            if close is not None:  # the generator releases what it holds
                run_blocking(close)
            self._log("client gone")
            return
        request = self.request
        self.media_type, self.engine = reply.content_type, reply.engine
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", reply.content_type)
        if self.head.vary:
            request.setHeader(b"Vary", b",".join(self.head.vary))
        if reply.stream is None:
            request.setHeader(b"Content-Length", b"%d" % len(reply.body))
            self._write(reply.body)
            said = push_outcome(response)  # a refusal in the answer (a repository hgwire cannot serve, a push)
            self._done("ok" if said == "pushed" else said)
            return
        key = None
        if isinstance(response, StreamResponse) and response.share_key is not None:
            # the encoding is part of the bytes
            key = (PROTO, reply.content_type, *self.settings.encoding_key(reply.engine), response.share_key)
        watched = WatchedStream(reply.stream, PROTO, self.command, self.route.repo)  # stopped once nobody reads it
        stream, self.shared = share(self.front.config.backend, self.route.repo, key, watched,
                                   clone_cache(self.front.authorizer))
        self._producer = IteratorProducer(stream, self)
        outcome = {"joined": "ok, from a running identical clone", "kept": "ok, from a kept identical clone"}.get(
            self.shared, "ok")
        if isinstance(response, StreamResponse) and response.refused is not None:  # a push refused in its reply
            outcome = push_outcome(response)
        self._producer.start().addCallbacks(lambda _: self._sent(outcome), self._stream_failed)

    def _respond_to_head(self) -> None:
        """HEAD: GET's status once every check GET makes has passed (the request, the user, the
        repository and its ``[web]`` lists, the arguments), and hg's media type, with no body and
        nothing run: a getbundle's bundle was made whole to be dropped (hg serve makes it too)."""
        assert self.head is not None
        if self._gone:
            self._log("client gone")
            return
        self.media_type = hg_http.MEDIA_TYPE_V1  # what GET answers a client that does not negotiate 0.2
        self.request.setResponseCode(200)
        self.request.setHeader(b"Content-Type", self.media_type)
        if self.head.vary:
            self.request.setHeader(b"Vary", b",".join(self.head.vary))
        self._done("ok: HEAD, not run")

    def _sent(self, outcome: str) -> None:
        """The whole answer is written: run ``outgoing`` (if it sent changesets), then end the response."""
        hooks, self._hooks = self._hooks, None
        if hooks is None:
            self._done(outcome)
            return
        self._producer = None
        d = run_for_hooks(hooks.after)
        d.addCallback(lambda _: self._log_hook_output(hooks))
        d.addErrback(lambda failure: log.failure("{proto} outgoing hooks of {repo}", failure, proto=PROTO,
                                                 repo=self.route.repo))
        d.addCallback(lambda _: self._done(outcome))

    # -- IConsumer for the producer: count what goes out ------------------------------------

    def write(self, data: bytes) -> None:
        self._write(data)

    def registerProducer(self, producer: object, streaming: bool) -> None:
        self.request.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        if not self._gone:
            self.request.unregisterProducer()

    def _write(self, data: bytes) -> None:
        if not self._gone:
            self.bytes_out += len(data)
            self.request.write(data)

    # -- the end -------------------------------------------------------------------------

    def _done(self, outcome: str) -> None:
        self._producer = None
        if not self._gone:
            self.request.finish()
            self._log(outcome)

    def _stream_failed(self, failure: Failure) -> None:
        self._producer = None
        if failure.check(defer.CancelledError) or self._gone:
            self._log("client gone")  # twisted.web stops the registered producer when the client leaves
            return
        if not self.request.startedWriting:
            self._fail(failure)
            return
        if corrupt_on_disk(failure.value) is not None:  # changed on disk since it was found intact: cut short
            log.error("hg-http {command} on {repo}: {reason}", command=self.command, repo=self.route.repo,
                      reason=corrupt_on_disk(failure.value))
            self._log("stream broken")
            self.request.loseConnection()
            return
        log.failure("hg-http {command} on {repo}: the stream broke", failure, command=self.command,
                    repo=self.route.repo)
        self._log("stream broken")
        self.request.loseConnection()  # no final chunk: the client sees a truncated answer

    def _fail(self, failure: Failure) -> None:
        exc = failure.value
        assert exc is not None
        if isinstance(exc, BodyAborted):  # the client went (or its body was refused, logged so) while it sent it
            gone = "" if getattr(self.request, "_refused", False) else "client gone: "
            self._log(gone + "the push did not arrive whole; nothing was changed")
            return
        if isinstance(exc, ClientGone):
            self._log(f"client gone: {exc.message}")
            return
        if self._gone or self.request.finished or self.request.startedWriting:
            return
        status = http_status(exc)
        # a StorageError, or an error hgwire raised saying why (a largefile not there): one line, no traceback
        told = storage_fault(exc) or (str(exc) if type(exc) is HgwireError else None)
        message = str(exc) if status != 500 else told or "internal error"
        if out_of_files(exc):
            log.warn("hg-http {command} on {repo} refused: {error}; {advice}", command=self.command,  # noqa: G010
                     repo=self.route.repo, error=str(exc), advice=OUT_OF_FILES_ADVICE)
            status, message = 503, OUT_OF_FILES
        elif status == 500 and told is None:
            log.failure("hg-http {command} on {repo}", failure, command=self.command, repo=self.route.repo)
        elif corrupt_on_disk(exc) is not None:  # which file, where: the operator's one line
            log.error("hg-http {command} on {repo}: {reason}", command=self.command, repo=self.route.repo,
                      reason=corrupt_on_disk(exc))
        elif status == 500 and storage_fault(exc) is not None:  # as every transport logs it: a warning
            log.warn("hg-http {command} on {repo}: {reason}", command=self.command, repo=self.route.repo,  # noqa: G010
                     reason=f"{told}{fault_place(exc)}")
        elif status == 500:
            log.error("hg-http {command} on {repo}: {reason}", command=self.command, repo=self.route.repo, reason=told)
        if status == 500 and told is not None:  # said in one line, no traceback: not an internal error
            setattr(self.request, metrics.ERROR_KIND, "failed")
        self._send_error(exc, status, message)
        self._log(refusal_outcome(status, message, exc))

    def _send_error(self, exc: BaseException, status: int, message: str) -> None:
        request = self.request
        if isinstance(exc, Unauthorized):
            request.setHeader(b"WWW-Authenticate", f'Basic realm="{REALM}"'.encode())
        if status == 405:
            request.setHeader(b"Allow", b"POST")
        retry_after(request, exc)
        body = hg_http.error_body(message.encode("utf-8", "replace"))
        request.setResponseCode(status, reason_phrase(message))
        request.setHeader(b"Content-Type", hg_http.MEDIA_TYPE_V1)
        request.setHeader(b"Content-Length", b"%d" % len(body))
        self._write(body)
        request.finish()

    def _request_gone(self, failure: Failure) -> None:
        self._gone = True
        if self._producer is not None:
            self._producer.stopProducing()  # its errback logs

    def _log(self, outcome: str) -> None:
        """Log the request's one line as it ends (every way it ends, once), and start what the
        repository left for after its answer."""
        work, self._after = self._after, None
        run_after_answer(work, PROTO, self.route.repo)
        outcome = gone_outcome(outcome, getattr(self.request, "transport", None))
        metrics.count_http_outcome(self.request.code, outcome)  # (a 200 carrying a refused push)
        log.info("{proto} {command} {repo}: {outcome} in {elapsed_ms} ms", proto=PROTO, command=self.command,
                 repo=self.route.repo, user=self.user, outcome=outcome, bytes_out=self.bytes_out,
                 media_type=self.media_type.decode("ascii"), engine=self.engine.decode("ascii"), shared=self.shared,
                 elapsed_ms=int((time.monotonic() - self.started) * 1000))


def _payload(content: IO[bytes] | _LiveReader) -> Iterator[bytes]:
    """The pushed bundle: the body after the POST arguments (spooled, or as it arrives), read in the pool."""
    while chunk := content.read(BODY_CHUNK):
        yield chunk


def serve_command(front: HttpFront, request: server.Request, route: Route) -> None:
    """``GET|POST /NAME?cmd=COMMAND``: run one command of the shared table."""
    HgHttpCommand(front, request, route).start()


HANDLERS: Mapping[RouteKind, Callable[[HttpFront, server.Request, Route], None]] = {
    RouteKind.HG_COMMAND: serve_command,
}
