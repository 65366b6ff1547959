"""Mercurial over SSH: ``hg -R PATH serve --stdio`` and ``hg init PATH`` as sessions.

``gateway.ssh`` builds these with ``make_hg_session(kind, ctx, channel)``.  The
session feeds the client's bytes to ``protocols.hg_ssh.SshV1Server``, runs each
command of the shared table (``protocols.hg_commands``) in the worker pool with
the client's input paused, writes string replies and streams bundles with
``IteratorProducer``.  A push (``unbundle``) is different: the handler starts
in the pool as soon as the push is accepted and reads the pushed bundle from a
bounded queue that the reactor fills, so the bundle is never held whole in
memory; the repository keeps it on disk until it is whole and only then locks
and applies it (``backends.hg.push_spool``).
An answer that sends changesets runs the repository's ``preoutgoing`` hooks
before it starts and its ``outgoing`` hooks once it is sent, on the hooks' own
threads, before the next command (``hg_hooks.PullHooks``); what they write goes
to stderr, which the client shows as ``remote:`` lines.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure

from backends import returned_repository
from backends.interfaces import HgRepository, Kind
from gateway import audit
from gateway.auth import Access, Authorizer
from gateway.channel import Channel, OneShotSession, Session, SessionContext, peer_host
from gateway.errors import (
    HG_EXIT_ABORT,
    OUT_OF_FILES,
    OUT_OF_FILES_ADVICE,
    corrupt_on_disk,
    fault_place,
    out_of_files,
    push_refusal,
    wrong_kind,
)
from gateway.hg_hooks import PullHooks, pull_hooks_of
from gateway.limits import bundle2_limits, changegroup_limits, lock_wait
from gateway.logs import SafeLogger
from gateway.name_hints import with_hint
from gateway.policy import clone_cache, wire_settings
from gateway.protected import guard_hg_repository
from gateway.pump import PumpedSession
from gateway.shared_streams import share
from gateway.threads import IteratorProducer, run_blocking, run_for_hooks
from gateway.watched_stream import WatchedStream
from protocols import hg_commands
from protocols.errors import (
    ClientGone,
    HgwireError,
    NotARepository,
    ProtocolError,
    ReadOnly,
    RepositoryNotFound,
    StorageError,
)
from protocols.hg_commands import PUSH, CommandContext, Permission, Transport
from protocols.hg_responses import BrokenPush, OobError, PushError, PushResponse, Response, StreamResponse
from protocols.hg_ssh import (
    SSH_CAPS,
    CommandRequest,
    ConnectionClosed,
    PushEnd,
    PushPayload,
    Signal,
    SshOutput,
    SshV1Server,
)

log = SafeLogger()

PERMISSION_ACCESS: dict[Permission, Access] = {"pull": Access.READ, "push": Access.WRITE}
QUEUE_HIGH = 64
"""Pushed chunks waiting for the pool before the client's input is paused."""
QUEUE_LOW = 8
"""Chunks left when the pool asks for more input again."""
_END = object()
_BROKEN = object()


def _abort_line(message: str) -> bytes:
    return f"abort: {message}\n".encode("utf-8", "replace")


def open_hg_repo(ctx: SessionContext, hidden: bool = False) -> tuple[HgRepository, str | None]:
    """Open the repository and make sure it is a Mercurial one; blocking, for the pool.  With
    ``hidden`` (``serve --stdio --hidden``: ``hg pull --remote-hidden``) it serves its hidden
    changesets if the session's user may see them (``grant_hidden_access``); the second item is what
    the client is told when not."""
    try:
        repo = returned_repository(ctx.backend.open(ctx.repo_name), f"open({ctx.repo_name!r})")
    except (RepositoryNotFound, NotARepository) as refused:
        raise with_hint(ctx, refused) from None
    if repo.kind is not Kind.HG:
        raise wrong_kind(ctx.repo_name, repo.kind)
    refusal = grant_hidden_access(repo, ctx.user) if hidden else None
    return guard_hg_repository(repo, ctx), refusal


def grant_hidden_access(repo: HgRepository, user: str | None) -> str | None:
    """A client asks for the repository's hidden changesets (``hg pull --remote-hidden``: ``serve
    --stdio --hidden`` over SSH, ``access-hidden=1`` over HTTP): served to the users the hgrc's
    ``[experimental] server.allow-hidden-access`` names (``*``: everyone), as by ``hg serve``; then
    ``repo`` (the backend's, before it is guarded) serves them and None is returned.  Otherwise the
    request is ignored and what the client is told is returned, in ``hg serve``'s words."""
    allows = getattr(repo, "allows_hidden_access", None)  # optional: a backend may keep no markers
    if allows is None or not hasattr(repo, "serve_hidden"):
        return f"ignoring request to access hidden changeset by unauthorized user: {user or 'anonymous'}"
    if allows(user):
        repo.serve_hidden = True
        return None
    return f"ignoring request to access hidden changeset by unauthorized user: {user or 'anonymous'}"


def hidden_access_needs_login(repo: HgRepository) -> bool:
    """``[experimental] server.allow-hidden-access`` names users: an anonymous HTTP client asking
    for hidden changesets is asked for its credentials (hg sends them only when challenged)."""
    names = getattr(repo, "hidden_access_names_users", None)
    return bool(names()) if names is not None and hasattr(repo, "serve_hidden") else False


def after_answer(repo: HgRepository) -> Callable[[], None] | None:
    """What the repository left to do once the answer it computed is sent (its optional
    ``take_after_answer``: a cache to write), taken in the pool with the answer."""
    take = getattr(repo, "take_after_answer", None)
    return take() if take is not None else None


def run_after_answer(work: Callable[[], None] | None, proto: str, repo_name: str) -> None:
    """Start ``work`` in the pool now that the answer is on its way: the client does not wait for it."""
    if work is None:
        return
    run_blocking(work).addErrback(lambda failure: log.failure(
        "{proto} {repo}: the work after an answer failed", failure, proto=proto, repo=repo_name))


def close_stream(response: Response) -> None:
    """Release an answer that will not be sent: its generator is closed in the pool."""
    close = getattr(response.chunks, "close", None) if isinstance(response, StreamResponse) else None
    if close is not None:
        run_blocking(close)


class PushQueue:
    """The pushed bundle on its way from the reactor (``put``) to the handler in the pool (``chunks``).

    The reactor pauses the client's input when ``QUEUE_HIGH`` chunks wait; the
    pool resumes it once fewer than ``QUEUE_LOW`` are left.
    """

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._pause = pause
        self._resume = resume
        self._paused = False
        self.closed = False

    def put(self, data: bytes) -> None:
        if self.closed:
            return
        self._queue.put(data)
        if self._queue.qsize() >= QUEUE_HIGH and not self._paused:
            self._paused = True
            self._pause()

    def end(self, broken: bool = False) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put(_BROKEN if broken else _END)

    def _resumed(self) -> None:
        if self._paused:
            self._paused = False
            self._resume()

    def chunks(self) -> Iterator[bytes]:
        """The bundle for the handler; runs in the pool."""
        while True:
            item = self._queue.get()
            if self._paused and self._queue.qsize() < QUEUE_LOW:
                _reactor.callFromThread(self._resumed)  # type: ignore[attr-defined]
            if item is _END:
                return
            if item is _BROKEN:
                raise ProtocolError("the push was cut off before the bundle ended")
            assert isinstance(item, bytes)
            yield item


class HgServeSession(PumpedSession):
    """One ``hg serve --stdio`` run over a Channel."""

    WAITING = tuple(Signal)

    def __init__(self, ctx: SessionContext, channel: Channel) -> None:
        super().__init__(ctx, channel)
        # the compression order and levels of [hg_http] apply to the bundles of hg over SSH too
        self.server = SshV1Server(settings=wire_settings(ctx.authorizer, peer_host(ctx.peer)))
        self.repo: HgRepository | None = None
        self._push_refusal: ReadOnly | None = None
        """The backend's refusal of every push to the repository (``refuses_push``), asked once it is open."""
        self._push: PushQueue | None = None
        self._command_name = ""
        """The command being answered (for a log line)."""
        self._push_response: Response | None = None
        self._push_ended = False
        self._push_broke = False
        self._after: Callable[[], None] | None = None
        """The repository's work left by the answer being sent (``after_answer``), until it is sent."""
        self._run(self._opened, self._open, ctx)

    def connection_lost(self) -> None:
        super().connection_lost()
        if self._push is not None:
            self._push.end(broken=True)

    def _core_receive(self, data: bytes) -> None:
        self.server.receive_data(data)

    def _core_next(self) -> object:
        return self.server.next_event()

    def _handle(self, event: Any) -> None:
        if isinstance(event, CommandRequest):
            self._command(event)
        elif isinstance(event, PushPayload):
            if self._push is not None:
                self._push.put(event.data)
        elif isinstance(event, PushEnd):
            # The reply is owed now: read nothing more (not even EOF) until it is written.
            self._busy = True
            self._push_ended = True
            if self._push is not None:
                self._push.end()
            self._maybe_send_push_reply()
        elif isinstance(event, ConnectionClosed):
            self._finish("ok" if self.outcome == "started" else self.outcome, 0)

    def _open(self, ctx: SessionContext) -> tuple[HgRepository, str | None, ReadOnly | None]:
        hidden = ctx.extra.get("hidden") == "1"  # serve --stdio --hidden: hg pull --remote-hidden
        repo, refusal = open_hg_repo(ctx, hidden)
        return repo, refusal, push_refusal(repo, ctx.repo_name)

    def _opened(self, opened: tuple[HgRepository, str | None, ReadOnly | None]) -> None:
        self.repo, refusal, self._push_refusal = opened
        if refusal is not None:  # as hg serve --stdio warns, before any command: "remote: ignoring …"
            log.info("{proto} {repo}: {outcome}", proto=self.ctx.transport, repo=self.ctx.repo_name,
                     outcome=refusal)
            self.channel.write_stderr(f"{refusal}\n".encode("utf-8", "replace"))
        self._resume()

    # -- commands ------------------------------------------------------------------------

    def _context(self, payload: Iterator[bytes] | None = None) -> CommandContext:
        return CommandContext(Transport.SSH, self._check_permission, SSH_CAPS, payload,
                              bundle2_limits(self.ctx.authorizer), changegroup_limits(self.ctx.authorizer),
                              replace(lock_wait(self.ctx.authorizer), notify=self._lock_notice),
                              gone=lambda: self._closed)

    def _lock_notice(self, line: str) -> None:
        """hg's ``waiting for lock …``/``got lock after N seconds``, told by a push's thread while it
        waits: on stderr at once, as hg serve's ``ui.warn`` writes it (the client shows ``remote: …``)."""
        _reactor.callFromThread(self._write_notice, f"{line}\n".encode("utf-8", "replace"))  # type: ignore[attr-defined]

    def _write_notice(self, data: bytes) -> None:
        if not self._closed:
            self.channel.write_stderr(data)

    def _check_permission(self, permission: Permission) -> None:
        authorizer = self.ctx.authorizer or Authorizer(read_only=self.ctx.read_only)
        authorizer.check(self.ctx.user, self.ctx.repo_name, self.ctx.transport, PERMISSION_ACCESS[permission])
        if permission == PUSH and self._push_refusal is not None:  # a read-only mirror: before the bundle is sent
            raise self._push_refusal

    def _command(self, request: CommandRequest) -> None:
        self._command_name = request.name.decode("ascii", "replace")[:60]
        cmd = hg_commands.COMMANDS.get(request.name)
        if cmd is not None and cmd.takes_payload:
            self._start_push(request)
            return
        self._run(self._answered, self._answer, request, self._context())

    def _answer(self, request: CommandRequest, ctx: CommandContext) -> tuple[Response, PullHooks | None]:
        """In the pool: the command's answer, and the repository's pull hooks if it sends changesets
        or lists keys."""
        assert self.repo is not None
        response = self._dispatch(request, ctx)
        self._after = after_answer(self.repo)
        return response, pull_hooks_of(self.repo, response, hg_commands.listing_of(request.name, request.args))

    def _answered(self, answer: tuple[Response, PullHooks | None]) -> None:
        response, hooks = answer
        if self._closed:  # the client went away while the command ran: no pull hooks, nothing sent
            close_stream(response)
            return
        if hooks is None:
            self._reply(response)
            return
        # hg runs preoutgoing and prelistkeys before the first byte of the answer; on the hooks' own threads
        self._run(lambda refusal: self._gated(response, hooks, refusal), hooks.before, runner=run_for_hooks)

    def _gated(self, response: Response, hooks: PullHooks, refusal: str | None) -> None:
        """Send the answer, or hg's refusal of it; what the hooks wrote goes first, as ``remote:`` lines."""
        self._hook_output(hooks)
        if refusal is None:
            self._reply(response, lambda: self._run_outgoing(hooks))
            return
        close_stream(response)
        self.outcome = f"refused: {refusal}"
        self._reply(hg_commands.refused_pull(hooks.bundle2, refusal, Transport.SSH))

    def _run_outgoing(self, hooks: PullHooks) -> None:
        """The answer is sent: run ``outgoing`` before the next command, as hg serve does."""
        self._run(lambda _: self._outgoing_done(hooks), hooks.after, runner=run_for_hooks)

    def _outgoing_done(self, hooks: PullHooks) -> None:
        self._hook_output(hooks)
        self._resume()

    def _hook_output(self, hooks: PullHooks) -> None:
        out = hooks.take_output()
        if out and not self._closed:
            self.channel.write_stderr(out)

    def _dispatch(self, request: CommandRequest, ctx: CommandContext) -> Response:
        """Run one command in the pool; expected refusals become hg's out-of-band error."""
        assert self.repo is not None
        try:
            return hg_commands.dispatch(self.repo, request.name, request.args, ctx)
        except ClientGone as exc:  # a read stopped in the middle: nobody is told but the log
            log.info("{proto} {command} {repo}: client gone: {reason}", proto=self.ctx.transport,
                     command=self._command_name, repo=self.ctx.repo_name, reason=exc.message)
            return OobError(exc.message.encode("utf-8", "replace"))
        except HgwireError as exc:
            return OobError(exc.message.encode("utf-8", "replace"))

    def _reply(self, response: Response, then: Callable[[], None] | None = None) -> None:
        work, self._after = self._after, None
        if self._closed:  # the client went away (during the pull hooks): its generator releases what it holds
            close_stream(response)
            run_after_answer(work, self.ctx.transport, self.ctx.repo_name)
            return
        share_key = response.share_key if isinstance(response, StreamResponse) else None
        self._write_output(self.server.send(response), self._after_sent(work, then or self._resume), share_key)

    def _after_sent(self, work: Callable[[], None] | None, then: Callable[[], None]) -> Callable[[], None]:
        """``then``, once the repository's ``work`` left by the answer is started (the answer written)."""
        if work is None:
            return then

        def sent() -> None:
            run_after_answer(work, self.ctx.transport, self.ctx.repo_name)
            then()
        return sent

    def _write_output(self, out: SshOutput, then: Callable[[], None], share_key: bytes | None = None) -> None:
        if self._closed:
            return
        if out.stderr:
            self.channel.write_stderr(out.stderr)
        if out.stdout:
            self.channel.write(out.stdout)
        if out.stream is None:
            then()
            return
        # a clone: identical concurrent ones share one generation
        key = None if share_key is None else ("hg-ssh", *self.server.settings.encoding_key(out.engine), share_key)
        keep = clone_cache(self.ctx.authorizer)
        watched = WatchedStream(out.stream, self.ctx.transport, self._command_name, self.ctx.repo_name)
        stream, shared = share(self.ctx.backend, self.ctx.repo_name, key, watched, keep)
        if shared:
            log.debug("hg-ssh {repo}: clone stream {shared}", repo=self.ctx.repo_name, shared=shared)
        self._busy = True
        self._producer = IteratorProducer(stream, self.channel)
        d = self._producer.start()
        d.addCallback(lambda _: self._streamed(then))
        d.addErrback(self._stream_failed)

    def _streamed(self, then: Callable[[], None]) -> None:
        self._producer = None
        then()

    def _stream_failed(self, failure: Failure) -> None:
        """A stream not sent whole: a ``CancelledError`` is its channel stopping it as the client went
        away (killed, Ctrl-C, the network, the idle timeout), which ``connection_lost`` then records
        as "client gone", as git over SSH does, not a critical traceback and "internal error" for
        every such clone; anything else (or a failure of what follows the stream) is a failure."""
        self._producer = None
        if not failure.check(CancelledError):
            self._fail(failure)

    # -- push ----------------------------------------------------------------------------

    def _start_push(self, request: CommandRequest) -> None:
        try:
            self._check_permission("push")
        except HgwireError as exc:  # the session's log says so, not "ok" (a read-only repository's putlfile)
            self.outcome = f"refused: {exc.message[:300]}"
            self._reply(OobError(exc.message.encode("utf-8", "replace")))
            return
        self.channel.write(self.server.accept_push())
        self._push = PushQueue(self.channel.pause_input, self.channel.resume_input)
        self._push_response = None
        self._push_ended = False
        self._push_broke = False
        # on the push threads: the repository's hooks may hold it for minutes (``run_for_hooks``)
        d = run_for_hooks(self._dispatch, request, self._context(self._push.chunks()))
        d.addCallback(lambda response: self._guard(self._push_done, response))
        d.addErrback(self._push_failed)

    def _push_failed(self, failure: Failure) -> None:
        """The push's handler raised.  A push that broke for no reason a refusal names (a backend's
        or the engine's bug: inside its transaction, rolled back, or outside it) is logged with its
        traceback and answered with the reply it carries, as a refusal is, so the client prints its
        ``abort:`` line and the session goes on; anything else ends the session (``_fail``)."""
        exc = failure.value
        if not isinstance(exc, BrokenPush) or self._push is None or self._closed:
            self._fail(failure)
            return
        cause = exc.__cause__
        log.failure("hg serve --stdio for {repo}: {what}", Failure(cause) if cause is not None else failure,
                    repo=self.ctx.repo_name, what=exc.what)
        self._push_broke = True
        self._guard(self._push_done, exc.reply)

    def _push_done(self, response: Response) -> None:
        """The handler is done; the client may still be sending (a refused bundle): drain it first."""
        assert self._push is not None
        self._push.closed = True
        self._push_response = response
        self._maybe_send_push_reply()

    def _maybe_send_push_reply(self) -> None:
        if self._push_response is None or not self._push_ended:
            return
        response, self._push_response, self._push = self._push_response, None, None
        self.outcome = "error: internal error" if self._push_broke else push_outcome(response)
        self._reply(response)

    # -- the end -------------------------------------------------------------------------

    def _fail(self, error: Failure | BaseException) -> None:
        if self._closed:
            return
        exc = error.value if isinstance(error, Failure) else error
        if isinstance(exc, HgwireError):  # a backend's own words too, as every other transport shows them
            message = exc.message
            if corrupt_on_disk(exc) is not None:  # which file, where: the operator's one line
                log.error("hg serve --stdio for {repo}: {reason}", repo=self.ctx.repo_name, reason=corrupt_on_disk(exc))
            elif isinstance(exc, StorageError):  # the server's own files: as every transport logs them, a warning
                log.warn("hg serve --stdio for {repo}: {reason}", repo=self.ctx.repo_name,  # noqa: G010
                         reason=message + fault_place(exc))
        elif out_of_files(exc):
            log.warn("hg serve --stdio for {repo} refused: {error}; {advice}", repo=self.ctx.repo_name,  # noqa: G010
                     error=str(exc), advice=OUT_OF_FILES_ADVICE)
            message = OUT_OF_FILES
        else:
            log.failure("hg serve --stdio for {repo}", Failure(exc), repo=self.ctx.repo_name)
            message = "internal error"
        if self._push is not None:
            self._push.end(broken=True)
        self.channel.write_stderr(_abort_line(message))
        self._finish(f"error: {message}", HG_EXIT_ABORT)


class HgInitSession(OneShotSession):
    """``hg init PATH``: create the repository (the door already checked ``create``), exit 0; a
    refusal is hg's ``abort:`` line and status."""

    refusal_status = HG_EXIT_ABORT
    what = "hg init"

    def answer(self) -> bytes:
        exists = HgwireError(f"repository {self.ctx.repo_name} already exists")  # hg 7's words
        if self.ctx.backend.exists(self.ctx.repo_name):
            raise exists
        try:
            self.ctx.backend.create(self.ctx.repo_name, Kind.HG)
        except FileExistsError:  # made this moment by another
            raise exists from None
        audit.created(self.ctx, "hg")
        return b""

    def refusal_line(self, message: str) -> bytes:
        return _abort_line(message)


SESSIONS: dict[str, Callable[[SessionContext, Channel], Session]] = {
    "hg-serve": HgServeSession,
    "hg-init": HgInitSession,
}


def make_hg_session(kind: str, ctx: SessionContext, channel: Channel) -> Session:
    """The session for an ``hg`` exec route (``protocols.ssh_exec.RouteKind``)."""
    return SESSIONS[kind](ctx, channel)


def push_outcome(response: Response) -> str:
    """What the log says of an answered push: "pushed", or "refused: why" (the client was told so in
    its reply; the session's log said "pushed" whatever the reply said)."""
    if isinstance(response, StreamResponse) and response.refused is not None:
        return f"refused: {response.refused[:300]}"
    if isinstance(response, PushResponse) and response.refused is not None:  # bundle1's result 0 and abort
        return f"refused: {response.refused[:300]}"
    if isinstance(response, PushError):
        return f"refused: {response.message.decode('utf-8', 'replace')[:300]}"
    if isinstance(response, OobError):
        return f"refused: {response.message.decode('utf-8', 'replace')[:300]}"
    return "pushed"
