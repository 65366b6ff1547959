"""Transport-neutral git sessions: upload-pack and receive-pack over any Channel.

git:// (``gateway.git_daemon``) and SSH (``gateway.ssh``) build these with
``make_git_session(service, ctx, channel)``.  A session feeds the peer's bytes
to a sans-IO core, runs every backend step through ``run_blocking`` with the
peer's input paused, and streams packs with ``IteratorProducer``.  Errors are
rendered by ``gateway.errors``: ``ERR`` before the advertisement, band 3 (or
``ERR``) after it, ``unpack``/``ng`` for pushes; stderr and exit status 128
where the transport has them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple, TypeVar

from dulwich.object_store import BaseObjectStore
from twisted.internet import defer, task
from twisted.python.failure import Failure

from backends import git_archive as archive_backend
from backends import git_fastpack, git_pack, returned_repository
from backends.filesystem import default_object_format
from backends.git import KEEPALIVE_SECONDS
from backends.git_objects import MAX_PEEL
from backends.interfaces import (
    MISSING_OBJECTS,
    OBJECT_FORMATS,
    SHALLOW_UPDATE,
    GitRepository,
    Kind,
    ObjectFormat,
    ObjectId,
    PackedObject,
    PackSink,
    PushCertSettings,
    RefResult,
    RefUpdate,
    UploadSettings,
    object_format_of,
)
from backends.lru import LruCache
from gateway import audit, errors, git_hooks, maintenance, protected
from gateway.auth import Access
from gateway.channel import Channel, Session, SessionContext, peer_host
from gateway.http import page_owner as owner_of_page
from gateway.limits import receive_bounds, request_bounds
from gateway.logs import SafeLogger
from gateway.name_hints import with_hint
from gateway.policy import (
    EXPORT_CHECKED,
    Protections,
    check_exported,
    clone_cache,
    export_all,
    read_base_git_config,
)
from gateway.policy import maintenance as policy_maintenance
from gateway.pump import PumpedSession
from gateway.repo_use import RepoUse, close_git
from gateway.shared_streams import share
from gateway.threads import IteratorProducer, run_blocking, run_for_hooks
from protocols import (
    client_gone,
    git_archive,
    git_caps,
    git_push_cert,
    git_receive,
    git_upload,
    git_v2,
    pktline,
)
from protocols.errors import (
    HgwireError,
    NotARepository,
    PermissionDenied,
    ProtocolError,
    ReadOnly,
    RepositoryNotFound,
    StorageError,
    UnsupportedFeature,
)
from protocols.git_request import Service, parse_service
from protocols.pktline import Signal

log = SafeLogger()

SCAN_AHEAD = 512 * 1024
"""Bytes of a pushed pack a session takes while the pool scans what came before, past which it
pauses the client: the next step scans all of it at once."""
JOINED_OUTCOME = "ok: pack sent from a running identical clone"
KEPT_OUTCOME = "ok: pack sent from a kept identical clone"


def _agent() -> bytes:
    try:
        version = importlib.metadata.version("hgwire")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return git_caps.agent_value(version)


AGENT = _agent()

_HOST_TAG = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def new_session_id() -> bytes:
    """A ``session-id`` for one git request (``transfer.advertiseSID``), shaped as git's trace2
    ids (UTC time, ``-H`` a hash of the host name, ``-P`` the process id) and ended by random
    digits, since one process serves many requests: printable, without spaces, unique."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    return f"{stamp}-H{_HOST_TAG}-P{os.getpid():08x}-{secrets.token_hex(4)}".encode()


def open_git_repo(ctx: SessionContext, create: bool = False) -> GitRepository:
    """Open (or, for a permitted push, create) the repository; blocking, for the pool."""
    try:
        repo = returned_repository(ctx.backend.open(ctx.repo_name), f"open({ctx.repo_name!r})")
    except NotARepository as folder:
        raise with_hint(ctx, folder) from None
    except RepositoryNotFound as missing:
        if not may_create(ctx, create):
            hint = ctx.extra.get("not_found_hint")  # (SSH's: the port of an scp-like URL)
            if hint and not str(missing).endswith(hint):
                raise RepositoryNotFound(str(missing) + hint) from None
            if (owner := page_owner(ctx)) is not None:
                base = ctx.extra.get("clone_base")
                raise RepositoryNotFound(f"{ctx.repo_name} is a page of repository {owner}, not a repository: "
                                         + (f"use {base}/{owner}" if base else f"clone {owner}")) from None
            raise with_hint(ctx, missing) from None
        try:
            repo = returned_repository(ctx.backend.create(ctx.repo_name, Kind.GIT), f"create({ctx.repo_name!r})")
        except FileExistsError:  # another push made it this moment
            repo = returned_repository(ctx.backend.open(ctx.repo_name), f"open({ctx.repo_name!r})")
        else:
            audit.created(ctx, "git")
    if repo.kind is not Kind.GIT:
        raise errors.wrong_kind(ctx.repo_name, repo.kind)
    read_base_git_config(ctx.authorizer, repo)
    check_exported(ctx.authorizer, ctx.transport, ctx.repo_name, repo)
    service = ctx.extra.get("http_service")
    if service is not None:  # git http-backend's http.uploadpack / http.receivepack: they only narrow
        enabled = getattr(repo, "http_service_enabled", None)
        if enabled is not None and enabled(service) is False:
            raise PermissionDenied(f"Service not enabled: '{service.removeprefix('git-')}'")
    return repo


def page_owner(ctx: SessionContext) -> str | None:
    """The repository whose web page the missing name is (``app.git/file/tip``, a URL copied from
    a browser into ``git clone``): the longest name before a page's that exists and the user may
    read; None when there is none, or when an unexported repository must look missing (blocking)."""
    if ctx.transport in EXPORT_CHECKED and not export_all(ctx.authorizer):
        return None
    def check_read(owner: str) -> None:
        if ctx.authorizer is not None:
            ctx.authorizer.check(ctx.user, owner, ctx.transport, Access.READ)

    return owner_of_page(ctx.repo_name, ctx.backend.exists, check_read)


def may_create(ctx: SessionContext, wanted: bool) -> bool:
    """Whether the missing repository a push names may be made: ``wanted`` (``--create-on-push``)
    and servable where it was asked for (one made over git:// or HTTP under ``[git] export_all =
    false`` could not be served there); ``PermissionDenied`` when the rules refuse the user.  Not
    for a path whose "not found" carries a hint (an scp-like URL's port, ``host:2222/app.git``: the
    user meant port 2222, not a repository ``2222/app.git``): that refusal tells them so."""
    if not wanted or ctx.extra.get("not_found_hint") \
            or (ctx.transport in EXPORT_CHECKED and not export_all(ctx.authorizer)):
        return False
    if ctx.authorizer is not None:
        ctx.authorizer.check(ctx.user, ctx.repo_name, ctx.transport, Access.CREATE)
    return True


@dataclass(frozen=True, slots=True)
class PendingRepository:
    """A git repository a push may make (``--create-on-push``), not made yet: it is advertised as
    an empty one, and made once the push's commands arrive, so that a dry run, a probe or an
    advertisement over HTTP makes nothing."""

    name: str
    object_format: ObjectFormat
    kind: Literal[Kind.GIT] = Kind.GIT


NOT_MADE_BY_PUSH = "a push makes no repository on this server: check the name, or ask the server's operator to create it"
"""What a push to a missing name is told without ``--create-on-push`` (it read "not found" alone, as if
the push could have made it)."""


def open_for_push(ctx: SessionContext, first: bool = True) -> GitRepository | PendingRepository:
    """The repository a push goes to; with ``--create-on-push``, a missing one this client may make
    is a ``PendingRepository`` (``open_git_repo(ctx, create=True)`` makes it); blocking, for the pool.
    A repository whose backend refuses every push (``refuses_push``) is refused here, before the
    advertisement, as ``--read-only`` refuses it: the client sends nothing.  Not ``first`` (smart
    HTTP's POST, after a GET that found the repository), a missing one is not told that a push makes
    none: it went away during the push."""
    try:
        repo = open_git_repo(ctx)
    except RepositoryNotFound as missing:
        if first and not ctx.create_on_push and ";" not in str(missing):  # (no hint given already)
            raise RepositoryNotFound(f"{missing}; {NOT_MADE_BY_PUSH}") from None
        if not may_create(ctx, ctx.create_on_push):
            raise
        # optional: without it, what git init would make (a backend wrapping fs makes what fs makes)
        new_format = getattr(ctx.backend, "new_git_object_format", None)
        return PendingRepository(ctx.repo_name, new_format() if new_format is not None
                                 else OBJECT_FORMATS[default_object_format()])
    try:
        refusal = errors.push_refusal(repo, ctx.repo_name)
    except BaseException:
        close_git(repo)
        raise
    if refusal is not None:
        close_git(repo)
        raise refusal
    try:
        refuse_service(repo, "receive-pack")
    except StorageError:
        close_git(repo)
        raise
    return repo


def refuse_service(repo: object, service: str) -> None:
    """``StorageError`` in git's words when git would refuse ``service`` (``receive-pack``, or
    ``pack`` for a fetch that gets a pack) of the repository for what is on disk (the optional
    ``service_refusal(service) -> str | None`` of a repository: a setting git would not read)."""
    refusal = getattr(repo, "service_refusal", None)
    reason = refusal(service) if refusal is not None else None
    if reason:
        raise StorageError(reason)


def refuse_cut_history(repo: object, request: git_upload.FetchRequest, plan: git_pack.ShallowPlan) -> None:
    """``StorageError`` when the request's pack would go through a commit the repository's
    ``info/grafts`` cuts off from its own parents (the optional ``graft_refusal(wants, plan)`` of a
    repository; ``plan`` only for a deepened request, whose shallow boundary bounds the pack)."""
    refusal = getattr(repo, "graft_refusal", None)
    reason = refusal(request.wants, plan if request.deepen else None) if refusal is not None else None
    if reason:
        raise StorageError(reason)


class _GitSession(PumpedSession):
    """The pump shared by every git service (``gateway.pump``), with git's error rendering."""

    WAITING = (Signal.NEED_DATA, Signal.PAUSED)

    def __init__(self, ctx: SessionContext, channel: Channel) -> None:
        super().__init__(ctx, channel)
        self._shared = ""
        """For a full clone's pack: "started" a shared generation or "joined" one (``gateway.shared_streams``)."""
        self._advertised = False
        self._use: RepoUse | None = None
        """The session's use of its repository (``_using``)."""
        self._leave: Callable[[], None] | None = None
        self._steps = 0
        """Steps of this session in the pool or their callbacks (``_run``)."""
        self._session_id: bytes | None = None
        """The ``session-id`` offered to the client (``transfer.advertiseSID``; None: none)."""

    def _using(self, repo: GitRepository) -> None:
        """The session's repository: closed once the session, its steps in the pool and the pack
        streams it started are done (``RepoUse``)."""
        self._use = RepoUse(repo)
        self._leave = self._use.join()
        self._over()

    def _stream_use(self) -> Callable[[], None] | None:
        """For a pack stream of this session: what it calls when it ends."""
        return self._use.join() if self._use is not None else None

    def _run(self, then: Callable[[Any], None], f: Callable[..., Any], *args: Any,
             runner: Callable[..., defer.Deferred[Any]] | None = None, pause: bool = True) -> defer.Deferred[None]:
        self._steps += 1
        d = super()._run(then, f, *args, runner=runner, pause=pause)
        d.addBoth(self._step_done)
        return d

    def _watched(self, step: Callable[..., R]) -> Callable[..., R]:
        """``step`` for the pool, its long loops (a ref snapshot's: ``git_pack.snapshot_refs``)
        stopped with ``ClientGone`` once the session's client has gone (``protocols.client_gone``)."""
        return client_gone.watched(step, lambda: self._closed)

    def _step_done(self, result: object) -> object:
        self._steps -= 1
        self._over()
        return result

    def _finish(self, outcome: str, status: int = 0) -> None:
        if not self._closed:
            self._log_session_ids(outcome)
        super()._finish(outcome, status)
        self._over()

    def _offer_session_id(self, offered: bool) -> bytes | None:
        """The ``session-id`` this session offers where the repository says so (None otherwise)."""
        self._session_id = new_session_id() if offered else None
        return self._session_id

    def _log_session_ids(self, outcome: str) -> None:
        """With ``transfer.advertiseSID``: the session ids of both sides, so that a client's trace2
        log (its ``server-sid``) and the server's meet."""
        core: Any = getattr(self, "_core", None)
        client = getattr(core, "client_session_id", None)
        if self._session_id is None and client is None:
            return
        log.info("{transport} {repo}: session-id {session_id}, the client's {client_session_id}: {outcome}",
                 transport=self.ctx.transport, repo=self.ctx.repo_name,
                 session_id=(self._session_id or b"-").decode(), client_session_id=client or "-", outcome=outcome)

    def connection_lost(self) -> None:
        super().connection_lost()
        self._over()

    def _over(self) -> None:
        """Once the session is over and no step of it runs, it lets go of its repository."""
        if self._closed and not self._steps and self._leave is not None:
            leave, self._leave = self._leave, None
            leave()

    def _fail(self, error: Failure | BaseException) -> None:
        if self._closed:
            return
        exc = error.value if isinstance(error, Failure) else error
        assert exc is not None
        self._log_failure(error, exc)
        if self._error_in_band():
            self._write(self._error_bytes(exc))
        self.channel.write_stderr(self._stderr_bytes(exc))
        self._finish(errors.git_outcome(exc), errors.GIT_EXIT_STATUS)

    def _log_failure(self, error: Failure | BaseException, exc: BaseException) -> None:
        """Log what ended the session as its kind is logged (a damaged repository, the server's own
        files, no file descriptors left, the unexpected with its traceback); the expected not."""
        if (damage := errors.damaged_repository(exc)) is not None:
            log.error("git session on {repo}: {reason}", repo=self.ctx.repo_name, reason=damage)
        elif (corrupt := errors.corrupt_loose_object(exc)) is not None:
            log.error("git session on {repo}: {reason}", repo=self.ctx.repo_name, reason=corrupt,
                      object=getattr(exc, "hexsha", None))
        elif (fault := errors.storage_fault(exc)) is not None:  # (as every transport logs it: a warning)
            log.warn("git session on {repo}: {reason}", repo=self.ctx.repo_name,  # noqa: G010
                     reason=fault + errors.fault_place(exc))
        elif errors.out_of_files(exc):
            log.warn("git session on {repo} refused: {error}; {advice}", repo=self.ctx.repo_name,  # noqa: G010
                     error=str(exc), advice=errors.OUT_OF_FILES_ADVICE)
        elif not errors.is_expected(exc):
            log.failure("git session on {repo}", _as_failure(error), repo=self.ctx.repo_name)

    def _keepalive(self, service: str) -> tuple[bytes, float]:
        """What the client gets while nothing is written (``service`` "upload": a pack counted, a
        shared clone waited for; "receive": a pack committed, hooks run): git's keepalive packet
        (none without side-band) and how often (the repository's ``uploadpack.keepAlive`` or
        ``receive.keepAlive``, 5 s; 0: none)."""
        repo: Any = getattr(self, "_repo", None)
        setting = getattr(repo, service + "_keepalive", None)  # optional: a backend may not have it
        core: Any = getattr(self, "_core", None)
        return (core.keepalive() if core is not None else b"",
                setting() if setting is not None else float(KEEPALIVE_SECONDS))

    def _pack_sent(self, repo: GitRepository | None) -> None:
        """After a pack went out: a big repository without a bitmap is repacked with one (``gateway.maintenance``)."""
        if repo is not None:
            settings = policy_maintenance(self.ctx.authorizer)
            maintenance.after_fetch(repo, self.ctx.repo_name, settings.auto_pack_limit, settings.bitmap_min_objects)

    def _error_bytes(self, exc: BaseException) -> bytes:
        if not self._advertised:
            return errors.git_err_line(exc)
        return self._core_fatal(errors.git_message(exc))

    def _error_in_band(self) -> bool:
        """Whether the error goes to the client in the protocol (``_error_bytes``).  Not over SSH
        before the first word: there git's programs die before they write anything (a repository
        that does not exist, or is not exported), and their ``fatal:`` line on stderr is all the
        client prints, then its own "Could not read from remote repository" (an ``ERR`` line
        too printed the refusal twice, once as ``fatal: remote error: …``)."""
        return self._advertised or self.ctx.transport != "git-ssh"

    def _stderr_bytes(self, exc: BaseException) -> bytes:
        """What the user's terminal gets besides (SSH's stderr; dropped where there is none)."""
        return errors.git_stderr(exc)

    # -- per service -------------------------------------------------------------

    def _core_fatal(self, message: bytes) -> bytes:
        raise NotImplementedError


class UploadPackSession(_GitSession):
    """git-upload-pack v0/v1.

    With ``stateless`` (smart HTTP) the ref advertisement was the GET's job:
    the session reads one request and answers it (gitprotocol-http(5)).
    """

    def __init__(self, ctx: SessionContext, channel: Channel, stateless: bool = False) -> None:
        super().__init__(ctx, channel)
        self._stateless = stateless
        self._core = git_upload.UploadPackV0(stateless=stateless, bounds=request_bounds(ctx.authorizer))
        self._repo: GitRepository | None = None
        self._snapshot: git_pack.RefSnapshot | None = None
        """The refs this connection advertised, as dicts once its wants have arrived (over HTTP: read for them)."""
        self._kept: git_pack.KeptRefs | git_pack.RefSnapshot | None = None
        """Until then, over git:// and SSH, once ``KEEP_REFS_AFTER`` has passed: the same refs in the
        compact form (``git_pack.keep_refs``), instead of ``_snapshot``."""
        self._keep_call: Any = None
        """The delayed call that makes them compact (``_keep_refs``)."""
        self._wanted = False
        """The wants (or what ends the request) have arrived."""
        self._negotiator: git_pack.Negotiator | None = None
        self._plan: git_pack.ShallowPlan | None = None
        self._use_bitmaps = True  # pack.useBitmaps, read with the repository
        self._handlers: dict[type, Callable[[Any], None]] = {
            git_upload.FetchRequest: self._on_request,
            git_upload.Haves: self._on_haves,
            git_upload.SendPack: self._on_send_pack,
            git_upload.NoWants: lambda _: self._finish("ok: no wants"),
            git_upload.ClientClosed: lambda _: self._finish("ok: client closed"),
            git_upload.EndOfRequest: lambda _: self._finish("ok: negotiation round"),
        }

    def start(self) -> None:
        self._run(self._advertise, self._watched(_open_for_upload), self.ctx)

    def _advertise(self, opened: tuple[GitRepository, git_pack.RefSnapshot, UploadSettings]) -> None:
        self._repo, snap, settings = opened
        self._use_bitmaps = settings.use_bitmaps
        self._using(self._repo)
        self._snapshot = snap
        object_format = object_format_of(self._repo)
        self._core.use_object_format(object_format)
        self._core.allow_filter = settings.allow_filter
        self._core.filter_rules = settings.filter_rules
        session_id = self._offer_session_id(settings.advertise_session_id)
        if not self._stateless:
            self._write(version_line(self.ctx) + git_upload.advertisement(
                snap.refs, snap.peeled, snap.symrefs, AGENT, flags=v0_upload_flags(settings, False),
                object_format=object_format, session_id=session_id, run=snap.run))
            from twisted.internet import reactor

            # refs of a kept parse (``run``) share its bytes: a connection holds their dicts alone
            after = KEEP_REFS_AFTER if snap.run is not None else 0
            self._keep_call = reactor.callLater(after, self._keep_refs, snap)
        self._advertised = True
        self._resume()

    def _keep_refs(self, snap: git_pack.RefSnapshot) -> None:
        """The client has not sent its wants yet (``KEEP_REFS_AFTER``): the refs it was shown are made
        compact in the pool, and kept so until they arrive."""
        self._keep_call = None
        if self._closed or self._wanted or self._snapshot is not snap:
            return
        run_blocking(git_pack.keep_refs, snap).addCallbacks(
            lambda kept: self._refs_kept(snap, kept),
            lambda failure: log.failure("keeping the refs of {repo}", failure, repo=self.ctx.repo_name))

    def _refs_kept(self, snap: git_pack.RefSnapshot, kept: git_pack.KeptRefs | git_pack.RefSnapshot) -> None:
        if not self._closed and not self._wanted and self._snapshot is snap:
            self._snapshot, self._kept = None, kept

    def _cancel_keep(self) -> None:
        call, self._keep_call = self._keep_call, None
        if call is not None and call.active():
            call.cancel()

    def _finish(self, outcome: str, status: int = 0) -> None:
        self._cancel_keep()
        super()._finish(outcome, status)

    def connection_lost(self) -> None:
        # (a reset, no end of input read: the timer would hold the session and its refs until it fired)
        self._cancel_keep()
        super().connection_lost()

    def _core_receive(self, data: bytes) -> None:
        self._core.receive_data(data)

    def _core_next(self) -> object:
        return self._core.next_event()

    def _core_fatal(self, message: bytes) -> bytes:
        if self._core.state is git_upload.State.SENDING:
            return self._core.fatal(message)
        return errors.git_err_line(ProtocolError(message.decode("utf-8", "replace")))

    def _handle(self, event: object) -> None:
        self._handlers[type(event)](event)

    def _on_request(self, request: git_upload.FetchRequest) -> None:
        assert self._repo is not None
        self._wanted = True
        self._cancel_keep()
        kept = self._snapshot if self._snapshot is not None else self._kept
        assert kept is not None
        self._run(self._on_prepared, _prepare_fetch, self._repo, kept, request)

    def _on_prepared(self, prepared: tuple[git_pack.Negotiator, git_pack.ShallowPlan, git_pack.RefSnapshot]) -> None:
        self._negotiator, self._plan, self._snapshot = prepared
        self._kept = None
        self._write(self._core.shallow_info(self._plan.shallow, self._plan.unshallow))
        self._resume()

    def _on_haves(self, haves: git_upload.Haves) -> None:
        assert self._negotiator is not None
        self._run(self._on_negotiated, self._negotiator.negotiate, haves.haves, haves.readiness)

    def _on_negotiated(self, negotiation: git_upload.Negotiation) -> None:
        self._write(self._core.acknowledge(negotiation))
        self._resume()

    def _on_send_pack(self, _: git_upload.SendPack) -> None:
        assert self._repo is not None and self._negotiator is not None and self._plan is not None
        request = self._core.request
        assert request is not None and self._snapshot is not None
        abandoned = threading.Event()
        plan = git_pack.PackPlan(request.wants, tuple(self._negotiator.common), self._plan,
                                 request.thin_pack, request.ofs_delta, request.include_tag, request.blob_limit,
                                 request.tree_depth, request.object_types, self._use_bitmaps, abandoned.is_set)
        progress = ProgressQueue(self._core.progress)
        chunks = pack_stream(self._repo.object_store, plan, self._snapshot.refs, progress, self._snapshot.peeled)
        stream = PackStream(_framed(chunks, self._core.pack_data, progress), on_end=self._stream_use(),
                            abandoned=abandoned)
        key = clone_share_key(b"v0", request.caps, plan, self._snapshot.refs)
        self._busy = True
        consumer: Any = self.channel  # a Channel is an IConsumer (gateway/channel.py)
        shared, self._shared = share(self.ctx.backend, self.ctx.repo_name, key, stream,
                                     clone_cache(self.ctx.authorizer))
        self._producer = IteratorProducer(shared, consumer, keepalive=self._keepalive("upload"))
        self._producer.start().addCallbacks(self._pack_done, self._pack_failed)

    def _pack_done(self, _: None) -> None:
        self._producer = None
        self._write(self._core.pack_sent())
        self._pack_sent(self._repo)
        self._finish(_shared_outcome(self._shared, "ok: pack sent"))

    def _pack_failed(self, failure: Failure) -> None:
        self._producer = None
        if not isinstance(failure.value, defer.CancelledError):
            self._fail(failure)


class UploadPackV2Session(_GitSession):
    """git-upload-pack, protocol v2: ls-refs, fetch and object-info, one request after another.

    With ``stateless`` (smart HTTP) the capability advertisement is the GET's
    job and the session serves exactly one request.
    """

    def __init__(self, ctx: SessionContext, channel: Channel, stateless: bool = False) -> None:
        super().__init__(ctx, channel)
        self._stateless = stateless
        self._core = git_v2.UploadPackV2(stateless=stateless, bounds=request_bounds(ctx.authorizer))
        self._repo: GitRepository | None = None
        self._use_bitmaps = True  # pack.useBitmaps, read with the repository
        self._handlers: dict[type, Callable[[Any], None]] = {
            git_v2.LsRefs: self._on_ls_refs,
            git_v2.Fetch: self._on_fetch,
            git_v2.ObjectInfo: self._on_object_info,
            git_v2.ClientDone: lambda _: self._finish(_shared_outcome(self._shared, "ok")),
        }

    def start(self) -> None:
        self._run(self._opened, _open_for_v2, self.ctx)

    def _opened(self, opened: tuple[GitRepository, UploadSettings]) -> None:
        repo, settings = opened
        self._repo = repo
        self._use_bitmaps = settings.use_bitmaps
        self._using(repo)
        object_format = object_format_of(repo)
        self._core.use_object_format(object_format)
        self._core.allow_filter = settings.allow_filter
        self._core.filter_rules = settings.filter_rules
        self._core.answer_unborn = settings.unborn != "ignore"
        self._core.allow_ref_in_want = settings.allow_ref_in_want
        session_id = self._offer_session_id(settings.advertise_session_id)
        if not self._stateless:
            self._write(git_v2.capability_advertisement(AGENT, allow_filter=settings.allow_filter,
                                                        object_format=object_format,
                                                        unborn=settings.unborn == "advertise",
                                                        ref_in_want=settings.allow_ref_in_want,
                                                        session_id=session_id))
        self._advertised = True
        self._resume()

    def _core_receive(self, data: bytes) -> None:
        self._core.receive_data(data)

    def _core_next(self) -> object:
        return self._core.next_event()

    def _core_fatal(self, message: bytes) -> bytes:
        return self._core.fatal(message)

    def _handle(self, event: object) -> None:
        self._handlers[type(event)](event)

    def _answered(self, data: bytes) -> None:
        self._write(data)
        if self._core.state is git_v2.State.DONE:
            self._finish(_shared_outcome(self._shared, "ok"))
        else:
            self._resume()

    def _on_ls_refs(self, request: git_v2.LsRefs) -> None:
        assert self._repo is not None
        self._run(self._ls_refs_ready(request), self._watched(snapshot), self._repo)

    def _ls_refs_ready(self, request: git_v2.LsRefs) -> Callable[[git_pack.RefSnapshot], None]:
        return lambda snap: self._answered(self._core.ls_refs(request, snap.refs, snap.peeled, snap.symrefs, snap.run))

    def _on_object_info(self, request: git_v2.ObjectInfo) -> None:
        assert self._repo is not None
        self._run(lambda sizes: self._answered(self._core.object_info(request, sizes)),
                  git_pack.object_sizes, self._repo.object_store, request.oids)

    def _on_fetch(self, fetch: git_v2.Fetch) -> None:
        assert self._repo is not None
        if not fetch.wants_anything and not fetch.wait_for_done:
            self._answered(self._core.empty_fetch())
            return
        self._run(lambda prepared: self._fetch_prepared(fetch, prepared), _prepare_v2_fetch, self._repo, fetch)

    def _fetch_prepared(self, fetch: git_v2.Fetch, prepared: _V2Prepared) -> None:
        if self._closed:  # the client left while its haves were read: no pack for nobody
            return
        if not fetch.sends_pack_now:
            self._write(self._core.acknowledgments(fetch, prepared.common_now, prepared.ready))
            if self._core.state is not git_v2.State.RUNNING:
                self._answered(b"")
                return
        request = prepared.request
        self._write(self._core.pack_header(bool(request.deepen or request.shallows),
                                           prepared.shallow.shallow, prepared.shallow.unshallow, prepared.wanted_refs))
        abandoned = threading.Event()
        plan = git_pack.PackPlan(request.wants, prepared.common, prepared.shallow, request.thin_pack,
                                 request.ofs_delta, request.include_tag, request.blob_limit, request.tree_depth,
                                 request.object_types, self._use_bitmaps, abandoned.is_set)
        assert self._repo is not None
        no_progress = git_caps.NO_PROGRESS in request.caps
        progress = ProgressQueue(lambda message: self._core.progress(message, no_progress))
        chunks = pack_stream(self._repo.object_store, plan, prepared.refs, progress, prepared.peeled)
        stream = PackStream(_framed(chunks, self._core.pack_data, progress), on_end=self._stream_use(),
                            abandoned=abandoned)
        key = clone_share_key(b"v2", request.caps, plan, prepared.refs)
        self._busy = True
        consumer: Any = self.channel
        shared, self._shared = share(self.ctx.backend, self.ctx.repo_name, key, stream,
                                     clone_cache(self.ctx.authorizer))
        self._producer = IteratorProducer(shared, consumer, keepalive=self._keepalive("upload"))
        self._producer.start().addCallbacks(self._pack_done, self._pack_failed)

    def _pack_done(self, _: None) -> None:
        self._producer = None
        self._pack_sent(self._repo)
        self._answered(self._core.pack_sent())

    def _pack_failed(self, failure: Failure) -> None:
        self._producer = None
        if not isinstance(failure.value, defer.CancelledError):
            self._fail(failure)


@dataclass(frozen=True)
class _V2Prepared:
    request: git_upload.FetchRequest
    """The client's request, the objects of its ``want-ref`` refs among the wants."""
    refs: Mapping[bytes, ObjectId]
    shallow: git_pack.ShallowPlan
    common: tuple[ObjectId, ...]
    common_now: tuple[ObjectId, ...]
    ready: bool
    wanted_refs: tuple[tuple[ObjectId, bytes], ...] = ()
    peeled: Mapping[bytes, ObjectId] | None = None
    """The snapshot's peeled annotated tags of ``refs`` (include-tag reads only those of sent objects)."""


def _prepare_v2_fetch(repo: GitRepository, fetch: git_v2.Fetch) -> _V2Prepared:
    """Resolve the wanted refs, check wants, plan the shallow boundary and find the common haves
    of this request."""
    try:
        snapshot = git_pack.snapshot_refs(repo)
    finally:
        refs_read_done(repo)
    store = repo.object_store
    wanted_refs = _wanted_refs(snapshot, fetch.want_refs)
    request = fetch.request
    if wanted_refs:
        request = replace(request, wants=tuple(dict.fromkeys([*request.wants, *(oid for oid, _ in wanted_refs)])))
    git_pack.check_wants(store, snapshot, request.wants)
    refuse_service(repo, "upload-pack")  # (protocol v2's fetch command: v0 judged it as it started)
    refuse_service(repo, "pack")
    git_pack.check_deepen_not(request, snapshot.refs)
    negotiator = git_pack.Negotiator(store, request.wants)
    verdicts = negotiator.negotiate(fetch.haves, readiness=False).verdicts
    common = tuple(v.oid for v in verdicts if v.common)
    ready = not fetch.sends_pack_now and negotiator.ok_to_give_up()
    # the boundary goes out with the pack only, as git's upload-pack plans it (send_shallow_info):
    # each round of haves walked for it (10,000 shallow lines over 50,000 commits: 0.4 s a round)
    if not (fetch.sends_pack_now or ready):
        git_pack.check_shallows(store, request.shallows)  # (as git's upload-pack reads them, each round)
    shallow = (git_pack.plan_shallow(store, request, snapshot.refs, snapshot.peeled, _hidden_tips(repo, snapshot, request))
               if fetch.sends_pack_now or ready else git_pack.ShallowPlan())
    if fetch.sends_pack_now or ready:
        refuse_cut_history(repo, request, shallow)
    return _V2Prepared(request, snapshot.refs, shallow, tuple(negotiator.common), common, ready, wanted_refs,
                       snapshot.peeled)


def _wanted_refs(snapshot: git_pack.RefSnapshot, names: Sequence[bytes]) -> tuple[tuple[ObjectId, bytes], ...]:
    """Each ``want-ref`` ref with the object it names now, in the client's order (a ref named twice
    is answered twice, as git answers it); a ref that does not exist or is hidden ends the request
    with git's ``ERR unknown ref <name>``."""
    resolved = []
    for name in names:
        oid = snapshot.refs.get(name)
        if oid is None:
            raise git_v2.unknown_ref(name)
        resolved.append((oid, name))
    return tuple(resolved)


def _shared_outcome(how: str, plain: str) -> str:
    return {"joined": JOINED_OUTCOME, "kept": KEPT_OUTCOME}.get(how, plain)


def clone_share_key(version: bytes, caps: frozenset[bytes], plan: git_pack.PackPlan,
                    refs: Mapping[bytes, ObjectId]) -> Hashable | None:
    """A key for the wire bytes of a full clone's pack, or None for any other fetch.

    A full clone (no common commit, no shallow boundary) is what a CI fleet
    sends many times at once, byte for byte alike.  Its pack depends on the
    wants, the capabilities (framing, deltas, progress, tags) and, through
    ``include-tag``, on the refs; the objects named by the wants never change.
    """
    if plan.common or plan.shallow != git_pack.ShallowPlan():
        return None
    refs_digest = hashlib.sha256()
    for name, oid in sorted(refs.items()):
        refs_digest.update(b"%d:%s%d:%s" % (len(name), name, len(oid), oid))
    return ("git-upload-pack", version, tuple(sorted(caps)), tuple(sorted(set(plan.wants))), plan.thin,
            plan.ofs_delta, plan.include_tag, plan.blob_limit, plan.tree_depth, plan.object_types, plan.use_bitmaps,
            refs_digest.digest())


def _as_failure(error: Failure | BaseException) -> Failure:
    return error if isinstance(error, Failure) else Failure(error)


def pack_stream(
    store: BaseObjectStore, plan: git_pack.PackPlan, refs: Mapping[bytes, ObjectId], progress: ProgressQueue,
    peeled: Mapping[bytes, ObjectId] | None = None,
) -> Iterator[bytes]:
    """The one place that picks the pack writer for both protocol versions (a generator: no work yet).

    Stored pack entries go out as they are (``git_fastpack``) whenever the
    fast path can serve the request; partial-clone filters and stores without
    packs (the memory backend) take the generic path.
    """
    return git_fastpack.serve_pack(store, plan, refs, progress, peeled=peeled,
                                   generic=functools.partial(git_pack.generate_pack, peeled=peeled))


class ProgressQueue:
    """Progress messages of a pack generator, framed on band 2 between pack chunks."""

    def __init__(self, frame: Callable[[bytes], bytes]) -> None:
        self._frame = frame
        self._messages: list[bytes] = []

    def __call__(self, message: bytes) -> None:
        self._messages.append(message)

    def drain(self) -> bytes:
        messages, self._messages = self._messages, []
        return b"".join(self._frame(m) for m in messages)


class PackStream:
    """An iterator of wire chunks whose ``close()`` is safe while ``next()`` runs in the pool.

    ``IteratorProducer.stopProducing`` closes the stream from the pool when the
    client goes away, possibly while another worker is inside ``next()``;
    closing a running generator raises ValueError, so the close is deferred to
    the end of that ``next()``.
    """

    def __init__(self, chunks: Iterator[bytes], on_end: Callable[[], None] | None = None,
                 abandoned: threading.Event | None = None) -> None:
        """``on_end``: called once when the stream is exhausted, fails or is closed (it lets go of the
        repository the chunks read from: a generation other clients joined outlives the session that
        started it).  ``abandoned``: the event the pack's counting looks at (``PackPlan.abandoned``),
        set by ``abandon``."""
        self._chunks = chunks
        self._on_end = on_end
        self._abandoned = abandoned
        self._lock = threading.Lock()
        self._running = False
        self._closed = False

    def __iter__(self) -> PackStream:
        return self

    def __next__(self) -> bytes:
        with self._lock:
            if self._closed:
                raise StopIteration
            self._running = True
        try:
            return next(self._chunks)
        except BaseException:  # exhausted or failed: the generator is done
            self._ended()
            raise
        finally:
            with self._lock:
                self._running = False
                close_now = self._closed
            if close_now:
                self._close_chunks()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._running:
                return
        self._close_chunks()

    def abandon(self) -> None:
        """Nobody will read the stream (its client, or every client of a shared one, went away),
        maybe while a ``next()`` runs in the pool: the pack's counting stops at its next look
        (reading only, it leaves nothing half done); ``close`` follows once that ``next()`` ends."""
        if self._abandoned is not None:
            self._abandoned.set()

    def _close_chunks(self) -> None:
        close = getattr(self._chunks, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self._ended()

    def _ended(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


def _framed(chunks: Iterator[bytes], frame: Callable[[bytes], bytes], progress: ProgressQueue) -> Iterator[bytes]:
    """Frame each pack chunk (and pending progress) for the wire; runs in the pool with the generator."""
    try:
        for chunk in chunks:
            yield progress.drain() + frame(chunk)
        if tail := progress.drain():
            yield tail
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _open_for_upload(ctx: SessionContext) -> tuple[GitRepository, git_pack.RefSnapshot, UploadSettings]:
    """A v0 upload-pack's repository, refused where git's would die as it starts
    (``refuse_service(repo, "upload-pack")``), its refs and its settings."""
    repo, (snap, settings) = _opened_reading(ctx, _v0_upload_reads)
    return repo, snap, settings


def _v0_upload_reads(repo: GitRepository) -> tuple[git_pack.RefSnapshot, UploadSettings]:
    refuse_service(repo, "upload-pack")
    return snapshot(repo), upload_settings(repo)


KEEP_REFS_AFTER = 5.0
"""Seconds a v0 fetch over git:// or SSH may take to send its wants after an advertisement spliced
from a kept ``packed-refs`` (``RefSnapshot.run``) before the refs it was shown are made compact
(``git_pack.keep_refs``: about 0.03 s of server CPU for 100,000 refs, as much again to make them
dicts when the wants come, where such a ``git ls-remote`` costs 0.02 s; its connection holds the
dicts' tables alone, their names and ids being the kept parse's).  Other refs (a file too big to
keep, parsed for the connection: 45-50 MB of dicts for a mirror of 100,000 annotated tags, 6 MB
compact) are made compact at once.  (Half a second was too short: on a busy host a ``git
ls-remote`` of such a mirror takes longer to read its 13 MB advertisement.)"""


R = TypeVar("R")


def _opened_reading(ctx: SessionContext, read: Callable[[GitRepository], R]) -> tuple[GitRepository, R]:
    """The session's repository and what ``read`` reads of it; closed again when that fails (the
    session never holds it then); blocking, for the pool."""
    repo = open_git_repo(ctx)
    try:
        return repo, read(repo)
    except BaseException:
        close_git(repo)
        raise


def snapshot(repo: GitRepository) -> git_pack.RefSnapshot:
    """``git_pack.snapshot_refs``, telling the operator of refs left out as damaged (blocking); the
    repository lets go of what its read held once it is taken (``refs_read_done``)."""
    try:
        snap = git_pack.snapshot_refs(repo)
    finally:
        refs_read_done(repo)
    broken = getattr(repo, "broken_refs", None)  # optional: a backend may not say
    if broken:
        warn_broken_refs(repo.name, broken)
    if snap.unpeeled:
        warn_unpeeled_refs(repo.name, snap.unpeeled)
    return snap


def refs_read_done(repo: GitRepository) -> None:
    """A command has read the refs it answers from: the repository lets go of what the read held
    (``forget_refs_read``, if the backend has it: the ``fs`` backend's parse of a ``packed-refs`` too
    big to keep for every request).  A protocol v2 connection keeps its repository between commands,
    and each one idle after ``ls-refs`` held that parse (tens of MB for a mirror of 100,000 tags) up
    to the idle timeout; the next command parses the file again (0.1-0.2 s for such a mirror)."""
    forget = getattr(repo, "forget_refs_read", None)
    if forget is not None:
        forget()


BROKEN_REFS_TOLD = LruCache[tuple[str, tuple[bytes, ...]], float](256)
"""When each repository's damaged refs were last logged: once every ``BROKEN_REFS_EVERY`` seconds."""
BROKEN_REFS_EVERY = 600.0


def warn_broken_refs(repo: str, broken: Sequence[bytes]) -> None:
    """One warning line naming a repository's damaged loose ref files, at most every ten minutes."""
    if _told_lately(BROKEN_REFS_TOLD, (repo, tuple(broken))):
        return
    log.warn("{repo}: {count} damaged ref files left out of what clients see ({refs}); "  # noqa: G010 - twisted's
             "'git fsck' in the repository names them, then repair or delete them",
             repo=repo, count=len(broken), refs=", ".join(r.decode("utf-8", "replace") for r in broken[:5]))


def _told_lately(told: LruCache[tuple[str, tuple[bytes, ...]], float], key: tuple[str, tuple[bytes, ...]]) -> bool:
    """Whether ``key`` was logged within ``BROKEN_REFS_EVERY`` seconds (``told`` keeps when); if
    not, it is now."""
    now = time.monotonic()
    last = told.get(key)
    if last is not None and now - last < BROKEN_REFS_EVERY:
        return True
    told.put(key, now)
    return False


UNPEELED_TOLD = LruCache[tuple[str, tuple[bytes, ...]], float](256)
"""When each repository's refs of too long tag chains were last logged (``BROKEN_REFS_EVERY``)."""


def warn_unpeeled_refs(repo: str, refs: Sequence[bytes]) -> None:
    """One warning line naming the refs of a repository listed without their peeled value, each a
    chain of more than ``MAX_PEEL`` tags of tags, at most every ten minutes."""
    if _told_lately(UNPEELED_TOLD, (repo, tuple(refs))):
        return
    log.warn("{repo}: {count} refs name a chain of more than {limit} tags of tags and are listed without "  # noqa: G010 - twisted's
             "what they peel to ({refs}); clients fetch them, but 'git archive --remote', include-tag and the "
             "web pages do not follow them: point them at the tag or commit the chain ends at",
             repo=repo, count=len(refs), limit=MAX_PEEL, refs=", ".join(r.decode("utf-8", "replace") for r in refs[:5]))


def upload_settings(repo: GitRepository) -> UploadSettings:
    """The repository's settings for fetches (``UploadSettings``; the defaults where its backend
    has none); blocking (its config is read), for the pool."""
    settings = getattr(repo, "upload_settings", None)  # optional: a backend may not have it
    return settings() if settings is not None else UploadSettings()


def version_line(ctx: SessionContext) -> bytes:
    """``version 1``, first of the advertisement of a client that asked for protocol v1 (v0
    otherwise: nothing), as git's upload-pack and receive-pack send it."""
    return pktline.encode(b"version 1\n") if ctx.protocol_version == 1 else b""


def v0_upload_flags(settings: UploadSettings, stateless: bool) -> tuple[bytes, ...]:
    """The v0 capabilities offered: ``filter`` only where ``uploadpack.allowFilter`` is not false,
    ``no-done`` only over HTTP (stateless), as git's upload-pack offers it."""
    return tuple(f for f in git_caps.UPLOAD_PACK_V0
                 if (settings.allow_filter or f != git_caps.FILTER) and (stateless or f != git_caps.NO_DONE))


def v2_upload_settings(repo: GitRepository) -> UploadSettings:
    """``upload_settings`` for protocol v2, whose capability advertisement and ``ls-refs`` read
    ``lsrefs.unborn`` where v0 never does: ``StorageError`` for a value git's v2 dies on."""
    settings = upload_settings(repo)
    if settings.unborn_refusal is not None:
        raise StorageError(settings.unborn_refusal)
    return settings


def _open_for_v2(ctx: SessionContext) -> tuple[GitRepository, UploadSettings]:
    return _opened_reading(ctx, v2_upload_settings)


def _prepare_fetch(
    repo: GitRepository, kept: git_pack.RefSnapshot | git_pack.KeptRefs, request: git_upload.FetchRequest
) -> tuple[git_pack.Negotiator, git_pack.ShallowPlan, git_pack.RefSnapshot]:
    """Check the wants against the refs the connection advertised (``kept``, made dicts again if
    it is their compact form) and plan the request's shallow boundary; the snapshot, for its pack."""
    snapshot = kept.snapshot() if isinstance(kept, git_pack.KeptRefs) else kept
    store = repo.object_store
    git_pack.check_wants(store, snapshot, request.wants)
    refuse_service(repo, "upload-pack")  # (protocol v2's fetch command: v0 judged it as it started)
    refuse_service(repo, "pack")
    plan = git_pack.plan_shallow(store, request, snapshot.refs, snapshot.peeled, _hidden_tips(repo, snapshot, request))
    refuse_cut_history(repo, request, plan)
    return git_pack.Negotiator(store, request.wants), plan, snapshot


def _hidden_tips(repo: GitRepository, snapshot: git_pack.RefSnapshot,
                 request: git_upload.FetchRequest) -> Mapping[bytes, ObjectId] | None:
    """The hidden refs whose tips reach the client's shallow commits for a deepen-relative request
    (``git fetch --deepen``), where the repository's config allows a want of a hidden tip, as git's
    upload-pack counts them (``UploadSettings.hidden_tips_reach_shallows``); None otherwise."""
    if not request.deepen_relative or not upload_settings(repo).hidden_tips_reach_shallows:
        return None
    return git_pack.hidden_tips(repo) or None


class ReceivePackSession(_GitSession):
    """git-receive-pack v0/v1: commands, pack into the backend's PackSink, report-status.

    With ``stateless`` (smart HTTP) no advertisement is written.
    """

    def __init__(self, ctx: SessionContext, channel: Channel, stateless: bool = False) -> None:
        super().__init__(ctx, channel)
        self._stateless = stateless
        self._core = git_receive.ReceivePack(bounds=receive_bounds(ctx.authorizer))
        self._repo: GitRepository | None = None
        self._pending: PendingRepository | None = None
        """The repository the push makes once its commands arrive (``open_for_push``)."""
        self._sink: PackSink | None = None
        self._sink_step: defer.Deferred[None] | None = None
        """The last step of the pool that used the sink: an abort waits for it."""
        self._warnings = b""
        """What the pushed pack's checks let through as warnings, told before the report."""
        self._signing: tuple[PushCertSettings, bytes] | None = None
        """A repository that takes signed pushes: its settings and the nonce issued to this client."""
        self._pack_input: list[bytes] = []
        """Pack bytes that arrived while the pool scanned earlier ones (b"" is EOF)."""
        self._pack_input_bytes = 0
        """Their length (kept: a sum at each arrival would cost as much as their count squared)."""
        self._keepalive_call: task.LoopingCall | None = None
        self._scanning = False
        self._refused: tuple[git_receive.RefusedPush, BaseException] | None = None
        """A stateless push that could not start (``_refuse_after_commands``): why, and the reader
        of its commands that answers it."""
        self._handlers: dict[type, Callable[[Any], None]] = {
            git_receive.RefCommands: self._on_commands,
            git_receive.PackData: self._on_pack_data,
            git_receive.PackEnd: self._on_pack_end,
            git_receive.NoCommands: lambda _: self._finish("ok: nothing to push"),
            git_receive.ClientClosed: lambda _: self._finish("ok: client closed"),
        }

    def start(self) -> None:
        if self.ctx.read_only:
            self._fail(ReadOnly("this server is read-only: pushing is disabled"))
            return
        self._run(self._advertise, _open_for_receive, self.ctx, self._stateless)

    def _advertise(self, opened: _Receiving) -> None:
        repo, refs, max_input, signing, push_options, advertise_sid, atomic = opened
        if isinstance(repo, PendingRepository):
            self._pending = repo
        else:
            self._repo = repo
            self._using(repo)
        object_format = object_format_of(repo)
        self._core.use_object_format(object_format)
        if max_input:  # (-1: a negative value, below any pack as git reads it)
            self._core.limit_pack(max(max_input, 0), "receive.maxInputSize is negative" if max_input < 0
                                  else f"receive.maxInputSize = {max_input} bytes")
        nonce = None
        if signing is not None:  # as git's receive-pack, a stateless one too: a nonce of this moment
            assert self._repo is not None
            nonce = cert_nonce(signing, self._repo)
            self._signing = (signing, nonce)
            self._core.offer_push_cert(nonce)
        session_id = self._offer_session_id(advertise_sid)
        if not self._stateless:
            self._write(version_line(self.ctx) + git_receive.advertisement(
                refs, AGENT, push_options=push_options, cert_nonce=nonce, object_format=object_format,
                session_id=session_id, atomic=atomic))
        self._advertised = True
        self._resume()

    def _core_receive(self, data: bytes) -> None:
        if self._refused is not None:
            self._refused[0].receive_data(data)
            return
        if self._scanning or (self._sink is not None and self._core.state is git_receive.State.PACK):
            # Scanning the pack inflates and hashes every object: that runs in the
            # pool, with the write, and the core is not touched here meanwhile.
            self._pack_input.append(data)
            self._pack_input_bytes += len(data)
            if not self._busy:
                self._scan_queued()
            elif self._pack_input_bytes > SCAN_AHEAD:
                self.channel.pause_input()  # (resumed when the scan has taken it: _resume)
            return
        try:
            self._core.receive_data(data)
        except ProtocolError as exc:
            self._bad_pack(exc)

    def _scan_queued(self) -> None:
        assert self._sink is not None
        chunks, self._pack_input = self._pack_input, []
        self._pack_input_bytes = 0
        self._scanning = True
        # the client goes on sending while the pool scans (what comes waits in _pack_input, up to
        # SCAN_AHEAD): the next step then takes all of it, not one read of the connection
        self._sink_step = self._run(self._scanned, _scan_and_write, self._core, self._sink, chunks, pause=False)

    def _scanned(self, error: HgwireError | None) -> None:
        self._scanning = False
        if error is not None:
            self._pack_input = []
            self._pack_input_bytes = 0
            self._bad_pack(error)
            return
        if self._pack_input and self._core.state is not git_receive.State.PACK:
            rest, self._pack_input = self._pack_input, []
            self._pack_input_bytes = 0
            for data in rest:  # after the pack's end: the core answers them (an error, or nothing)
                self._core_receive(data)
        self._resume()

    def _resume(self) -> None:
        """Scan what arrived during the last step first: the session stays busy meanwhile."""
        if self._pack_input and not self._closed and self._sink is not None:
            self._scan_queued()
            return
        super()._resume()

    def _core_next(self) -> object:
        if self._refused is not None:
            return _RefusalReady() if self._refused[0].answer() is not None else Signal.NEED_DATA
        try:
            return self._core.next_event()
        except ProtocolError as exc:
            if self._core.state is not git_receive.State.PACK:
                raise
            self._bad_pack(exc)
            return Signal.PAUSED

    def _core_fatal(self, message: bytes) -> bytes:
        return self._core.fatal(message)

    def _handle(self, event: object) -> None:
        if isinstance(event, _RefusalReady) and self._refused is not None:
            refusal, exc = self._refused
            self._write(refusal.answer() or b"")
            self._finish(errors.git_outcome(exc), errors.GIT_EXIT_STATUS)
            return
        self._handlers[type(event)](event)

    def _on_commands(self, commands: git_receive.RefCommands) -> None:
        if self._pending is not None:  # the push is under way: the repository is made now
            self._run(self._created, open_git_repo, self.ctx, True)
            return
        assert self._repo is not None
        if commands.needs_pack:
            self._run(self._got_sink, _begin_pack, self._repo)

    def _created(self, repo: GitRepository) -> None:
        assert self._pending is not None and self._core.commands is not None
        made = object_format_of(repo)
        if made != self._pending.object_format:  # another push made it meanwhile, or the backend chose
            close_git(repo)
            raise ProtocolError(f"repository {self.ctx.repo_name} was made with the {made.name} object format, "
                                f"not the {self._pending.object_format.name} this push was told; push again")
        self._pending = None
        self._repo = repo
        self._using(repo)
        if self._core.commands.needs_pack:
            self._run(self._got_sink, _begin_pack, repo)
        else:
            self._resume()

    def _got_sink(self, sink: PackSink) -> None:
        self._sink = sink
        self._resume()

    def _on_pack_data(self, event: git_receive.PackData) -> None:
        assert self._sink is not None
        self._sink_step = self._run(self._written, _write_pack, self._sink, event.data, event.objects)

    def _written(self, refused: HgwireError | None) -> None:
        if refused is not None:
            self._bad_pack(refused)
            return
        self._resume()

    def _on_pack_end(self, _: git_receive.PackEnd) -> None:
        assert self._repo is not None and self._core.commands is not None
        self._start_keepalive()
        sink, self._sink = self._sink, None  # the push owns it now: commit, or abort on its error
        protections = protected.protections_of(self.ctx)
        context = _push_context(self.ctx, self._core.commands, self._signed(self._core.commands))
        self._run(lambda outcome: self._pushed(outcome, protections, sink), _finish_push, self._repo, sink,
                  self._core.commands, protections, context, self._disk_refused)

    def _signed(self, commands: git_receive.RefCommands) -> git_hooks.SignedPush | None:
        if not commands.cert or self._signing is None or self._repo is None:
            return None
        settings, nonce = self._signing
        return git_hooks.SignedPush(commands.cert, settings, nonce, _cert_path(self._repo),
                                    object_format_of(self._repo).name, self._stateless)

    def _start_keepalive(self) -> None:
        """While the pack is checked and committed (and hooks run) the client hears nothing: every
        ``receive.keepAlive`` seconds (5 by default, 0: never) an empty band-1 packet, as git's
        receive-pack sends it, so that a proxy or a firewall does not drop the connection of a
        large push (an hour of index-pack's work for a large history is not unusual)."""
        packet, seconds = self._keepalive("receive")
        if not packet or seconds <= 0:
            return
        self._keepalive_call = task.LoopingCall(self._write, packet)
        self._keepalive_call.start(seconds, now=False)

    def _stop_keepalive(self) -> None:
        keepalive, self._keepalive_call = self._keepalive_call, None
        if keepalive is not None and keepalive.running:
            keepalive.stop()

    def _pushed(self, outcome: PushOutcome | git_hooks.GitHooks, protections: Protections | None,
                sink: PackSink | None = None) -> None:
        if not isinstance(outcome, git_hooks.GitHooks):  # (with hooks: until their report)
            self._stop_keepalive()
        self._warnings = _warning_lines(self.ctx, sink)
        if not isinstance(outcome, git_hooks.GitHooks):
            self._report(outcome)
            return
        assert self._repo is not None and self._core.commands is not None
        self._run(self._report, _update_with_hooks, self._repo, self._core.commands, protections, outcome,
                  self._disk_refused, runner=run_for_hooks)

    def _disk_refused(self, exc: BaseException) -> bool:
        """A refusal of the push that the server's disk made is the operator's: a warning names the
        file and what to do (the client is told the reason alone).  Any thread."""
        return errors.warn_disk_refusal(self.ctx.transport, self.ctx.repo_name, exc, self.ctx.backend)

    def connection_lost(self) -> None:
        self._stop_keepalive()
        super().connection_lost()
        self._drop_sink()

    def _finish(self, outcome: str, status: int = 0) -> None:
        self._stop_keepalive()  # (whichever way the session ends)
        super()._finish(outcome, status)

    def _fail(self, error: Failure | BaseException) -> None:
        self._stop_keepalive()
        self._drop_sink()
        if self._stateless and not self._advertised and self._refused is None and not self._closed:
            self._refuse_after_commands(error)
            return
        super()._fail(error)

    def _log_failure(self, error: Failure | BaseException, exc: BaseException) -> None:
        # (a pack the disk could not take as the push began; a repository not opened, one the
        # server may not read, is warned of as for a fetch)
        if self._repo is None or not self._disk_refused(exc):
            super()._log_failure(error, exc)

    def _refuse_after_commands(self, error: Failure | BaseException) -> None:
        """A push over smart HTTP that cannot start (its repository removed after its info/refs was
        answered, or no longer one it may push to): refused once its commands are read, in the
        terms the client asked for (``git_receive.RefusedPush``), where an ``ERR`` line sent at once
        showed ``send-pack: protocol error: bad band #69``.  Its pack is not read."""
        exc = error.value if isinstance(error, Failure) else error
        assert exc is not None
        self._log_failure(error, exc)
        self._refused = (git_receive.RefusedPush(errors.git_message(exc)), exc)
        self._resume()

    def _drop_sink(self) -> None:
        """A pack that will never be committed: the sink's temporaries go once no pool step uses them."""
        sink, self._sink = self._sink, None
        if sink is None:
            return

        def abort(_: object = None) -> None:
            run_blocking(sink.abort).addErrback(lambda f: log.failure("aborting a pack", f))

        if self._sink_step is None:
            abort()
        else:
            self._sink_step.addBoth(abort)

    def _report(self, outcome: PushOutcome) -> None:
        self._stop_keepalive()
        unpack_error, results, hook_output = outcome
        assert self._core.commands is not None
        audit.git_push(self.ctx, self._core.commands.updates, results, unpack_error)
        told = self._warnings + hook_output + (maintenance.told_after_push(self._repo) if self._repo is not None else b"")
        self._write(self._core.progress(told) + self._core.report_status(unpack_error, results))
        refused = sum(r.reason is not None for r in results)
        if unpack_error is None and refused < len(results) and self._repo is not None:
            settings = policy_maintenance(self.ctx.authorizer)
            maintenance.after_push(self._repo, self.ctx.repo_name, settings.auto_pack_limit,
                                   settings.bitmap_min_objects)
        self._finish("ok: pushed" if not refused and unpack_error is None else f"refused: {refused} refs")

    def _bad_pack(self, exc: HgwireError) -> None:
        """A malformed pack, or one the backend's sink refused (``BACKEND_REFUSALS``): abort the sink,
        report ``unpack <reason>`` and ``ng`` for every ref."""
        self._disk_refused(exc)
        commands = self._core.commands
        self._drop_sink()
        if commands is None or self._closed:
            raise exc
        results = [RefResult(u.ref, "unpacker error") for u in commands.updates]
        audit.git_push(self.ctx, commands.updates, results, str(exc))
        self._write(self._core.report_status(str(exc), results))
        self._finish(f"error: bad pack: {exc}", 0)


class _RefusalReady:
    """The commands of a refused stateless push are read: its answer can go (``ReceivePackSession``)."""


BACKEND_REFUSALS = (PermissionDenied, StorageError)
"""What a backend raises to refuse a push (a read-only mirror, a quota, a full store) from
``begin_pack``, its sink's ``write`` or ``commit``, or ``update_refs``: each ref is refused with its
message in the report (``! [remote rejected] main -> main (MESSAGE)``), as a hook's refusal is;
it ended the session, and git said "the remote end hung up unexpectedly"."""


class _RefusedSink:
    """The sink of a push whose ``begin_pack`` refused it: the pack is read (the client sends it
    all the same) and dropped; its ``commit`` raises the refusal, which each ref is told."""

    def __init__(self, refusal: HgwireError) -> None:
        self.refusal = refusal

    def write(self, data: bytes, objects: Sequence[PackedObject] | None = None) -> None:
        pass

    def commit(self) -> None:
        raise self.refusal

    def abort(self) -> None:
        pass


def _begin_pack(repo: GitRepository) -> PackSink:
    """The push's sink; one that refuses at ``commit`` when the backend cannot start one: refused
    (``BACKEND_REFUSALS``), each ref is told why; a pack it cannot store (its quarantine not made:
    a directory the service may not write, a full disk), ``unpack`` tells it and each ref is an
    ``unpacker error``, as git's receive-pack reports it, where the session ended and git said
    "the remote end hung up unexpectedly"."""
    try:
        return repo.begin_pack()
    except (*BACKEND_REFUSALS, ProtocolError) as refusal:
        return _RefusedSink(refusal)


def _write_pack(sink: PackSink, data: bytes, objects: Sequence[PackedObject] | None) -> HgwireError | None:
    """In the pool: ``sink.write``; a refusal of the backend's is returned, for the session to answer."""
    try:
        sink.write(data, objects)
    except BACKEND_REFUSALS as refusal:
        return refusal
    return None


def _backend_refused(updates: Sequence[RefUpdate], refusal: HgwireError) -> list[RefResult]:
    reason = " ".join(str(refusal).split())
    return [RefResult(u.ref, reason) for u in updates]


def _scan_and_write(core: git_receive.ReceivePack, sink: PackSink, chunks: list[bytes]) -> HgwireError | None:
    """In the pool: the pack pieces the core already holds, then ``chunks`` scanned and written, in order.

    A malformed pack, or one the sink refused, is returned, not raised: the session answers it in
    the client's protocol.
    """
    def write_scanned() -> None:
        for event in core.take_pack_data():
            sink.write(event.data, event.objects)

    try:
        write_scanned()  # pieces the core scanned before this step
        for data in chunks:
            core.receive_data(data)
            write_scanned()
    except (ProtocolError, *BACKEND_REFUSALS) as exc:
        return exc
    return None


class _Receiving(NamedTuple):
    """What a push's session needs of its repository before it advertises."""

    repo: GitRepository | PendingRepository
    refs: Mapping[bytes, ObjectId]
    """The refs a push may see."""
    max_input: int = 0
    """Its own bound on a pushed pack (0: none)."""
    signing: PushCertSettings | None = None
    """Its settings for signed pushes (None: it takes none)."""
    push_options: bool = True
    """Whether ``push-options`` is offered (``receive.advertisePushOptions`` not false)."""
    advertise_session_id: bool = False
    """Whether a ``session-id`` is offered (``transfer.advertiseSID``)."""
    atomic: bool = True
    """Whether ``atomic`` is offered (``receive.advertiseAtomic`` not false)."""


def _open_for_receive(ctx: SessionContext, stateless: bool = False) -> _Receiving:
    """The push's repository and what it advertises.  Its refs are read for the advertisement alone
    (none for ``stateless``: smart HTTP's GET advertised them), and the repository lets go of what
    that read held at once (``refs_read_done``): a pusher may stay quiet for minutes between the
    advertisement and its commands (a pre-push hook), and each such connection held its parse of a
    ``packed-refs`` too big to keep (45 MB for a mirror of 100,000 annotated tags) until it closed.
    The update reads each ref it changes again, under the lock, and checks it against the
    command's old value, so that nothing of the advertisement's read is needed then."""
    repo = open_for_push(ctx, first=not stateless)
    if isinstance(repo, PendingRepository):
        return _Receiving(repo, {})
    max_input = getattr(repo, "receive_max_input_size", None)  # optional: a backend may not have it
    try:
        refs = {} if stateless else git_pack.visible_refs(repo, "receive-pack")
    finally:
        refs_read_done(repo)
    return _Receiving(repo, refs, max_input() if max_input is not None else 0,
                      push_cert_settings(repo), push_options_offered(repo), session_id_advertised(repo),
                      atomic_offered(repo))


def atomic_offered(repo: GitRepository) -> bool:
    """Whether a push to ``repo`` is offered ``atomic``: unless its ``receive.advertiseAtomic`` is
    false (git's client then refuses ``git push --atomic``, as with git's receive-pack)."""
    offered = getattr(repo, "atomic_offered", None)  # optional: a backend may not have it
    return offered() if offered is not None else True


def push_options_offered(repo: GitRepository) -> bool:
    """Whether a push to ``repo`` is offered ``push-options``: unless its
    ``receive.advertisePushOptions`` is false (git's default is off; hgwire takes them by default)."""
    offered = getattr(repo, "push_options_offered", None)  # optional: a backend may not have it
    return offered() if offered is not None else True


def session_id_advertised(repo: GitRepository) -> bool:
    """Whether ``repo`` offers a ``session-id`` (``transfer.advertiseSID``; off by default, as in
    git); blocking (its config is read), for the pool."""
    advertised = getattr(repo, "advertises_session_id", None)  # optional: a backend may not have it
    return advertised() if advertised is not None else False


def push_cert_settings(repo: GitRepository) -> PushCertSettings | None:
    """The repository's settings for signed pushes; None when it takes none (no
    ``receive.certNonceSeed``, or a backend without them)."""
    settings = getattr(repo, "push_cert_settings", None)  # optional: a backend may not have it
    return settings() if settings is not None else None


def _cert_path(repo: GitRepository) -> bytes:
    """What a nonce is bound to: the repository's name (git's receive-pack uses its directory)."""
    return repo.name.encode("utf-8", "surrogateescape")


def cert_nonce(settings: PushCertSettings, repo: GitRepository) -> bytes:
    """A nonce for a signed push to ``repo``, issued now (made with its hash, as git's)."""
    return git_push_cert.nonce(settings.seed, _cert_path(repo), int(time.time()),
                               algorithm=object_format_of(repo).name)


def _push_context(ctx: SessionContext, commands: git_receive.RefCommands,
                  signed: git_hooks.SignedPush | None = None) -> git_hooks.PushContext:
    address = peer_host(ctx.peer)
    options = commands.options if git_caps.PUSH_OPTIONS in commands.caps else None
    return git_hooks.PushContext(ctx.user, address, options, signed)


def _warning_lines(ctx: SessionContext, sink: PackSink | None) -> bytes:
    """The findings a pushed pack's checks let through, as git's receive-pack tells them
    (``warning: object <id>: <msg-id>: <message>``), logged for the operator too."""
    lines = list(getattr(sink, "warnings", ()) or ())
    if not lines:
        return b""
    log.info("push to {repo} by {user}: {count} fsck warnings, the first: {first}", repo=ctx.repo_name,
             user=ctx.user, count=len(lines), first=lines[0])
    return b"".join(b"warning: " + line.encode("utf-8", "replace") + b"\n" for line in lines)


PushOutcome = tuple[str | None, list[RefResult], bytes]
"""The unpack error (or None), each ref's result, and what the repository's hooks wrote."""


def _finish_push(
    repo: GitRepository, sink: PackSink | None, commands: git_receive.RefCommands,
    protections: Protections | None, context: git_hooks.PushContext | None = None,
    disk_refused: Callable[[BaseException], object] = lambda exc: None,
) -> PushOutcome | git_hooks.GitHooks:
    """Commit the pack (completing a thin one), then compare-and-swap the refs protections allow.

    When the repository has receive hooks, the refs are left alone and its hooks returned: the
    session runs ``_update_with_hooks`` on the hooks' own threads.  ``disk_refused`` is shown each
    refusal of the backend's (the session's warning when the server's disk made it).
    """
    if commands.cert_options_differ:  # as git's receive-pack: the certificate must sign what was sent
        if sink is not None:
            sink.abort()
        return None, [RefResult(u.ref, "inconsistent push options") for u in commands.updates], b""
    if sink is not None:
        try:
            sink.commit()
        except ProtocolError as exc:
            disk_refused(exc)
            return str(exc), [RefResult(u.ref, "unpacker error") for u in commands.updates], b""
        except BACKEND_REFUSALS as refusal:
            disk_refused(refusal)
            with suppress(Exception):
                sink.abort()
            return None, _backend_refused(commands.updates, refusal), b""
    location = getattr(repo, "hook_location", None)
    found = location() if location is not None else None
    if found is not None:
        hooks = git_hooks.GitHooks(found, context or git_hooks.PushContext())
        if hooks.present():
            return hooks
    said: list[bytes] = []  # the gateway's own error: lines (a funny refname), before the backend's
    try:
        results = protected.update_refs(repo, commands.updates, commands.atomic, protections, said=said)
    except BACKEND_REFUSALS as refusal:
        disk_refused(refusal)
        return None, _backend_refused(commands.updates, refusal), b"".join(said) + _told(repo)
    _refs_disk_refused(repo, disk_refused)
    return None, _shallow(commands, results), b"".join(said) + _told(repo)


def _update_with_hooks(repo: GitRepository, commands: git_receive.RefCommands, protections: Protections | None,
                       hooks: git_hooks.GitHooks,
                       disk_refused: Callable[[BaseException], object] = lambda exc: None) -> PushOutcome:
    said: list[bytes] = []
    try:
        results = protected.update_refs(repo, commands.updates, commands.atomic, protections, hooks, said)
    except BACKEND_REFUSALS as refusal:
        disk_refused(refusal)
        return None, _backend_refused(commands.updates, refusal), hooks.take_output(b"".join(said) + _told(repo))
    _refs_disk_refused(repo, disk_refused)
    return None, _shallow(commands, results), hooks.take_output(b"".join(said) + _told(repo))


def _refs_disk_refused(repo: GitRepository, disk_refused: Callable[[BaseException], object]) -> None:
    """The errors behind refs the backend refused as their results (``failed to update ref: No
    space left on device``: optional ``take_write_errors``) are shown ``disk_refused`` until one
    is the disk's: one warning a push, as for a pack the disk refused."""
    take = getattr(repo, "take_write_errors", None)
    for exc in take() if take is not None else []:
        if disk_refused(exc):
            return


def _told(repo: GitRepository) -> bytes:
    """git's ``error:``/``warning:`` lines about the push's refs (which setting refused one and how to
    change it), from a repository that has them (optional: ``take_told``)."""
    take = getattr(repo, "take_told", None)
    return take() if take is not None else b""


def _shallow(commands: git_receive.RefCommands, results: Sequence[RefResult]) -> list[RefResult]:
    """A push from a shallow clone whose history stops short of what the repository holds: git's
    "shallow update not allowed" (a server takes no shallow history), not "missing objects"."""
    if not commands.shallows:
        return list(results)
    return [replace(r, reason=SHALLOW_UPDATE) if r.reason == MISSING_OBJECTS else r for r in results]


class UploadArchiveSession(_GitSession):
    """git-upload-archive (``git archive --remote``): checked arguments, ACK, the archive on side-band.

    git's upload-archive acknowledges as soon as it runs and reports whatever then goes wrong (a
    missing repository over SSH, an argument refused, a ref that does not exist, a failure while
    the archive is written) after the ACK, on bands 2 and 3 (``git_archive.failed``): the client
    prints ``remote: fatal: <reason>`` and exits with status 1.  Over git:// it runs only once git
    daemon found the repository and the service enabled there, and those refusals are the daemon's
    ``ERR`` lines (status 128).  Nothing goes to stderr: the client prints what comes on the bands.
    """

    def __init__(self, ctx: SessionContext, channel: Channel) -> None:
        super().__init__(ctx, channel)
        self._core = git_archive.UploadArchive()
        self._repo: GitRepository | None = None
        self._running = ctx.transport != "git-daemon"
        """Where git's upload-archive would be running, so that it has acknowledged (or would, at
        its first word): from the start over SSH, over git:// once the daemon's checks passed."""

    def start(self) -> None:
        self._run(self._opened, open_git_repo, self.ctx)

    def _opened(self, repo: GitRepository) -> None:
        self._repo = repo
        self._using(repo)
        self._resume()

    def _core_receive(self, data: bytes) -> None:
        self._core.receive_data(data)

    def _core_next(self) -> object:
        return self._core.next_event()

    def _core_fatal(self, message: bytes) -> bytes:
        return git_archive.failed(message)

    def _error_bytes(self, exc: BaseException) -> bytes:
        if self._advertised:
            return self._core_fatal(errors.git_message(exc))
        if self._running:
            self._advertised = True
            return git_archive.ack() + self._core_fatal(errors.git_message(exc))
        return errors.git_err_line(exc)

    def _error_in_band(self) -> bool:
        return True

    def _stderr_bytes(self, exc: BaseException) -> bytes:
        return b""

    def _handle(self, event: object) -> None:
        assert isinstance(event, git_archive.ArchiveRequest) and self._repo is not None
        self._run(lambda _: self._enabled(event), _check_archive_enabled, self.ctx, self._repo)

    def _enabled(self, request: git_archive.ArchiveRequest) -> None:
        assert self._repo is not None
        self._running = True
        if git_archive.wants_list(request.arguments):
            self._write(git_archive.ack() + git_archive.listed_formats() + git_archive.end())
            self._advertised = True
            self._finish("ok: formats listed")
            return
        options = git_archive.parse_arguments(request.arguments)
        self._run(lambda source: self._send(options, source), _archive_source, self._repo, options)

    def _send(self, options: git_archive.ArchiveOptions, source: archive_backend.ArchiveSource) -> None:
        assert self._repo is not None
        self._write(git_archive.ack())
        self._advertised = True
        paths: list[bytes] = []
        chunks = archive_backend.archive_chunks(self._repo.object_store, source, options,
                                                note=paths.append if options.verbose else None)
        consumer: Any = self.channel
        stream = PackStream(_archive_framed(chunks, paths), on_end=self._stream_use())
        shared, self._shared = share(self.ctx.backend, self.ctx.repo_name, archive_share_key(options, source),
                                     stream, clone_cache(self.ctx.authorizer))
        self._producer = IteratorProducer(shared, consumer)
        self._producer.start().addCallbacks(self._sent, self._send_failed)

    def _sent(self, _: None) -> None:
        self._producer = None
        self._write(git_archive.end())
        self._finish(_shared_outcome(self._shared, "ok: archive sent"))

    def _send_failed(self, failure: Failure) -> None:
        self._producer = None
        if not isinstance(failure.value, defer.CancelledError):
            self._fail(failure)


def archive_share_key(options: git_archive.ArchiveOptions, source: archive_backend.ArchiveSource) -> Hashable:
    """A key for the framed bytes of an archive: what they depend on, the ids of what it holds
    (the tree, filtered by the pathspecs; the commit, whose id and details go in it; the tree whose
    ``.gitattributes`` apply), its entries' mtime and how it is written.  Objects never change, so
    identical requests (a CI fleet fetching a release's tarball) share one generation, and with
    ``[clone_cache]`` a kept one (``gateway.shared_streams``)."""
    return ("git-upload-archive", source.tree, source.commit, source.mtime, source.attributes_tree,
            options.kind, options.prefix, options.level, options.pathspecs, options.verbose)


def _check_archive_enabled(ctx: SessionContext, repo: GitRepository) -> None:
    """Upload-archive runs over SSH always (the login decides), over git:// only where the
    repository's config sets ``daemon.uploadarch = true``, git daemon's own switch for this service
    (off by default there too).  Checked once the arguments are read, so that the client, done
    writing, reads the refusal instead of dying on a closed connection."""
    if ctx.transport == "git-daemon":
        enabled = getattr(repo, "daemon_service_enabled", None)
        if enabled is None or enabled("uploadarch") is not True:
            raise PermissionDenied("service not enabled: upload-archive is off over git:// for this repository "
                                   "(its config can turn it on: git config daemon.uploadarch true)")


def _archive_source(repo: GitRepository, options: git_archive.ArchiveOptions) -> archive_backend.ArchiveSource:
    """What ``options`` ask to archive, resolved as the repository's ``uploadArchive.allowUnreachable``
    lets it be (a ref name only, unless it is true)."""
    allows = getattr(repo, "archive_allows_unreachable", None)  # optional: a backend may not have it
    return archive_backend.resolve(repo, options.treeish, options.pathspecs,
                                   allow_unreachable=allows() if allows is not None else False)


ARCHIVE_WRITE_SIZE = 1 << 20
"""Largest piece of archive framed and written at once."""
ARCHIVE_GATHER = 256 << 10
"""Archive bytes gathered before they are framed and written: a tar's entries come as a header,
the file and its padding, three small chunks a file, and each was framed and written alone (4,800
pkt-lines and writes for 1,500 files)."""


def _archive_framed(chunks: Iterator[bytes], paths: list[bytes]) -> Iterator[bytes]:
    """Frame archive chunks on band 1, gathered to ``ARCHIVE_GATHER`` bytes, and before them on
    band 2 the paths of the entries the writer took meanwhile (``paths``, which it fills under
    ``--verbose``); runs in the pool with the archive generator."""
    gathered: list[bytes] = []
    held = 0

    def framed() -> Iterator[bytes]:
        nonlocal held
        whole = memoryview(gathered[0] if len(gathered) == 1 else b"".join(gathered))
        gathered.clear()
        held = 0
        for start in range(0, len(whole), ARCHIVE_WRITE_SIZE):  # a big file's entry comes in one chunk
            yield git_archive.data(whole[start:start + ARCHIVE_WRITE_SIZE])  # (framed from a view: no copy)

    try:
        for chunk in chunks:
            if paths:
                yield from framed()
                yield git_archive.noted(paths)
                paths.clear()
            gathered.append(chunk)
            held += len(chunk)
            if held >= ARCHIVE_GATHER:
                yield from framed()
        yield from framed()
        if paths:
            yield git_archive.noted(paths)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


GitSession = UploadPackSession | ReceivePackSession | UploadPackV2Session | UploadArchiveSession

_SESSIONS: dict[Service, Callable[[SessionContext, Channel], GitSession]] = {
    Service.UPLOAD_PACK: UploadPackSession,
    Service.RECEIVE_PACK: ReceivePackSession,
    Service.UPLOAD_ARCHIVE: UploadArchiveSession,
}
ARCHIVE_TRANSPORTS = frozenset({"git-ssh", "git-daemon"})
"""Where git-upload-archive runs: over SSH, and over git:// for a repository whose config sets
``daemon.uploadarch`` (git daemon, too, leaves it off unless asked)."""
_V2_SESSIONS: dict[Service, Callable[[SessionContext, Channel], GitSession]] = {
    Service.UPLOAD_PACK: UploadPackV2Session,
}


def make_git_session(service: str, ctx: SessionContext, channel: Channel) -> Session:
    """Build and start the session for a git service name (``git-upload-pack``, ...).

    ``ctx.protocol_version`` 2 selects protocol v2 for upload-pack (receive-pack
    has no v2; git never asks for it).  An unsupported service answers ``ERR``
    and ends.
    """
    try:
        kind = parse_service(service.encode("utf-8"))
        factory = _V2_SESSIONS.get(kind) if ctx.protocol_version == 2 else None
        factory = factory or _SESSIONS.get(kind)
        if factory is None:
            raise UnsupportedFeature(f"service '{service}' is not supported yet")
        if kind is Service.UPLOAD_ARCHIVE and ctx.transport not in ARCHIVE_TRANSPORTS:
            raise UnsupportedFeature(f"service '{service}' is served over SSH and git:// only")
    except UnsupportedFeature as exc:
        return _RefusedSession(ctx, channel, exc)
    session = factory(ctx, channel)
    session.start()
    return session


class _RefusedSession(_GitSession):
    """A session that only reports why it cannot run."""

    def __init__(self, ctx: SessionContext, channel: Channel, exc: Exception) -> None:
        super().__init__(ctx, channel)
        self._fail(exc)
