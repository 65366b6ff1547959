"""Git LFS for the ``git lfs`` client: over HTTP(S) (the Batch API, basic transfers, locking), and
over SSH (``git-lfs-transfer``, its pure SSH protocol; ``git-lfs-authenticate``, a token for HTTP).

For a remote ``https://HOST/NAME.git`` git-lfs finds its server at
``https://HOST/NAME.git/info/lfs`` (git-lfs's ``docs/api/server-discovery.md``):

- ``POST …/info/lfs/objects/batch``: what to do with each object
  (``protocols.git_lfs``); an upload needs the right to push, a download the
  right to read, as for git itself (``HttpFront.authorize``).
- ``PUT …/info/lfs/objects/<sha256>``: an upload, kept once it is the size it
  was announced with and hashes to its name (``backends.lfs``); ``GET``: a
  download, streamed with backpressure.
- ``…/info/lfs/locks…``: file locking (``git lfs lock``, ``locks``, ``unlock``,
  and the ``locks/verify`` git-lfs asks before each push, refusing a push that
  changes a file someone else locked), for git repositories on disk
  (``backends.lfs.LfsLocks``).  Listing needs the right to read; locking,
  unlocking and verifying the right to push.  A lock's owner is the user who
  took it (``anonymous`` without a login); anyone who may push can remove
  another's lock with ``--force``, as the lock only guards against mistakes.

The actions the batch answer gives carry the request's own ``Authorization``,
so the transfers authenticate as the batch request did.  Repositories on disk
only; errors are the API's JSON ``{"message": …}`` with its status codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import replace
from typing import IO, Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import server

from backends import returned_repository
from backends.blobs import VerifiedWriter
from backends.interfaces import Kind
from backends.lfs import (
    LfsLocks,
    LfsObjectCorrupt,
    LfsObjectRefused,
    LfsStore,
    LockConflict,
    LockNotFound,
    LockNotOwned,
)
from backends.names import strip_git_suffix
from gateway import audit, git_session, metrics
from gateway.auth import Access
from gateway.channel import Channel, OneShotSession, SessionContext, peer_text
from gateway.config import ServiceConfig, user_name
from gateway.errors import push_refusal
from gateway.git_http import http_status
from gateway.http import (
    HttpFront,
    Route,
    RouteKind,
    Unauthorized,
    refusal_outcome,
    retry_after,
    site_url,
)
from gateway.limits import CUT_AT_SHUTDOWN, gone_outcome
from gateway.live_body import BodyAborted, LiveBody, announced_length
from gateway.logs import SafeLogger
from gateway.policy import check_exported, read_base_git_config
from gateway.threads import IteratorProducer, run_blocking, run_for_hooks
from protocols import git_lfs, pktline
from protocols import git_lfs_transfer as lfs_transfer
from protocols.errors import (
    HgwireError,
    NotARepository,
    PermissionDenied,
    ProtocolError,
    RepositoryNotFound,
    UnsupportedFeature,
)
from protocols.git_lfs import MEDIA_TYPE
from protocols.http_head import reason_phrase

log = SafeLogger()

PROTO = "git-lfs"
BODY_CHUNK = 1 << 17
NO_GIT_LFS = "this repository cannot keep Git LFS objects (its backend keeps them on disk only)"


def _context(front: HttpFront, request: server.Request, route: Route, user: str | None) -> SessionContext:
    address = request.getClientAddress()
    extra = {"allow_push_over_http": "1"} if front.config.allow_push_over_http else {}
    return SessionContext(backend=front.config.backend, repo_name=route.repo, transport="git-http",
                          peer=peer_text(address), user=user,
                          read_only=front.config.read_only, authorizer=front.authorizer, extra=extra,
                          create_on_push=front.config.create_on_push)


def _store(ctx: SessionContext, access: Access = Access.READ, secure: bool = True) -> tuple[Kind, LfsStore]:
    """The repository's kind and LFS store, git or Mercurial; for Mercurial, hgweb's rules too: the
    repository's ``[web]`` lists, and uploads over HTTPS only unless ``--allow-push-over-http``.
    (Writes on a read-only server never get here: the authorizer refuses them at the door; a read-only
    mirror's are refused before the plain-HTTP rule, which would send the pusher to https:// in vain.)"""
    try:
        repo = returned_repository(ctx.backend.open(ctx.repo_name), f"open({ctx.repo_name!r})")
    except RepositoryNotFound:
        if access is not Access.WRITE or not git_session.may_create(ctx, ctx.create_on_push):
            raise
        keeps_lfs = getattr(ctx.backend, "new_git_keeps_lfs", None)  # optional: without it, it is found out
        if keeps_lfs is not None and not keeps_lfs():  # by making one: refused before, nothing is made
            raise UnsupportedFeature(NO_GIT_LFS)
        # git-lfs's pre-push hook uploads a new repository's objects before its push: the push is
        # under way, so the repository is made now (its checks and rights are the push's own)
        repo = git_session.open_git_repo(ctx, create=True)
    if repo.kind is Kind.HG:
        from gateway.web_access import check_web_access

        check_web_access(repo, ctx.user, "push" if access is Access.WRITE else "pull")
    elif repo.kind is not Kind.GIT:
        raise NotARepository(f"'{ctx.repo_name}' is not a repository hgwire serves")
    read_base_git_config(ctx.authorizer, repo)
    check_exported(ctx.authorizer, ctx.transport, ctx.repo_name, repo)
    if access is Access.WRITE and (refusal := push_refusal(repo, ctx.repo_name)) is not None:
        raise refusal  # a read-only mirror (``refuses_push``): its uploads are refused as its pushes
    if repo.kind is Kind.HG and access is Access.WRITE and not secure and ctx.extra.get("allow_push_over_http") != "1":
        # (after the mirror's refusal, which https:// would meet too)
        raise ProtocolError("pushing over plain HTTP is refused; use https:// (or start hgwire with "
                            "--allow-push-over-http)", http_status=403)
    opener = getattr(repo, "lfs", None)  # optional: a backend may keep no LFS objects
    store: LfsStore | None = opener() if opener is not None else None
    if store is None:
        raise UnsupportedFeature("this repository does not serve LFS: enable hg's lfs extension in its hgrc "
                                 "([extensions] lfs =)" if repo.kind is Kind.HG else
                                 NO_GIT_LFS)
    return repo.kind, store


def _send_json(request: server.Request, status: int, body: bytes, reason: str | None = None) -> None:
    """``body`` with ``status``; ``reason``, a refusal's message, is the status line's reason phrase
    too: hg's LFS client prints only that (``abort: LFS HTTP error: HTTP Error 403: <phrase>``),
    git-lfs the body's message."""
    if request.finished or request._disconnected:
        return
    request.setResponseCode(status, None if reason is None else reason_phrase(reason))
    request.setHeader(b"Content-Type", MEDIA_TYPE.encode())
    request.setHeader(b"Content-Length", b"%d" % len(body))
    request.setHeader(b"Cache-Control", b"no-cache")
    request.write(body)
    request.finish()


def _failed(request: server.Request, route: Route, failure: Failure) -> None:
    """An error as the API gives it: its status and a JSON message (401 with the challenges)."""
    exc = failure.value
    assert exc is not None
    if isinstance(exc, BodyAborted):  # the client went (or the body was refused, logged so) while it came
        outcome = "the upload did not arrive whole; nothing was kept"
        if not getattr(request, "_refused", False):  # counted as a git push its client left is
            outcome = gone_outcome("client gone: " + outcome, getattr(request, "transport", None))
            metrics.count_http_outcome(request.code, outcome)
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome=outcome)
        return
    if isinstance(exc, LfsObjectRefused):
        status, message = exc.status, str(exc)
    elif isinstance(exc, LfsObjectCorrupt):  # (a corrupt object: 422, as hg serve answers)
        status, message = 422, str(exc)
    else:
        status = http_status(exc)
        message = "internal error" if status == 500 else str(exc)
    if status == 500:
        log.failure("{proto} on {repo}", failure, proto=PROTO, repo=route.repo)
    if isinstance(exc, LfsObjectCorrupt):
        _log_corrupt(route.repo, exc, "it was not sent")
    else:
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo,
                 outcome=refusal_outcome(status, message, exc))
    if isinstance(exc, Unauthorized):
        challenge = b'Basic realm="hgwire"'
        request.setHeader(b"LFS-Authenticate", challenge)
        request.setHeader(b"WWW-Authenticate", challenge)
    if isinstance(exc, git_lfs.RangeNotSatisfiable):
        request.setHeader(b"Content-Range", b"bytes */%d" % exc.size)
    retry_after(request, exc)
    _send_json(request, status, git_lfs.error_body(message), message)


def _log_corrupt(repo: str, exc: LfsObjectCorrupt, what: str) -> None:
    """The operator's one line about a corrupt object found as it was about to be sent."""
    log.error("{proto} {repo}: LFS object {oid} is corrupt on disk ({path}: its contents do not match its hash); "
              "{what}. Restore the file from a backup, or push the object again from a clone that has it "
              "(the upload replaces it)", proto=PROTO, repo=repo, oid=exc.oid, path=exc.path, what=what)


BATCH_CHECK_BYTES = 1 << 30
"""Bytes of held objects one batch request hashes at most, to check them as ``hg serve`` does
(about 0.7 s at SHA-256's 1.5 GB/s here); those past it are listed unchecked (a download is
checked before it is sent all the same).  git-lfs gives up on an answer silent for 30 s."""


def _intact_within(store: LfsStore, repo: str, upload: bool) -> Callable[[str], bool | None] | None:
    """``store.intact`` with one batch's budget of hashing, each corrupt object logged for the
    operator; None for a store that cannot check."""
    intact = getattr(store, "intact", None)
    if intact is None:
        return None
    budget = [BATCH_CHECK_BYTES]

    def checked(oid: str) -> bool | None:
        found: bool | None = intact(oid, budget)
        if found is False:
            path = getattr(store, "path_of", lambda _: "?")(oid)
            _log_corrupt(repo, LfsObjectCorrupt(oid, path), "the client was asked to upload it again" if upload
                         else "the client was told so and not given it")
        return found

    return checked


def _body(request: server.Request, limit: int) -> bytes:
    """The request's body, up to one byte past ``limit`` (which its parser then refuses)."""
    content: IO[bytes] | None = request.content
    if content is None:
        return b""
    content.seek(0)
    return content.read(limit + 1)


# --- the batch API ----------------------------------------------------------------------------

def serve_batch(front: HttpFront, request: server.Request, route: Route) -> None:
    d: defer.Deferred[Any] = run_blocking(lambda: git_lfs.parse_batch(_body(request, git_lfs.MAX_BATCH_BODY)))

    def authorized(batch: git_lfs.BatchRequest) -> defer.Deferred[bytes]:
        access = Access.WRITE if batch.operation == git_lfs.UPLOAD else Access.READ
        d2 = lfs_authorize(front, request, route, access)
        return d2.addCallback(lambda user: run_blocking(_answer, front, request, route, user, batch, access))

    d.addCallback(authorized)
    d.addCallback(lambda answer: _send_batch(request, route, *answer))
    d.addErrback(lambda failure: _failed(request, route, failure))


def _ok(request: server.Request, route: Route, body: bytes, outcome: str) -> None:
    _send_json(request, 200, body)
    log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome=outcome)


def _answer(front: HttpFront, request: server.Request, route: Route, user: str | None,
            batch: git_lfs.BatchRequest, access: Access) -> tuple[bytes, Iterator[bytes] | None]:
    """The batch answer's first chunk, and the chunks after it when there are more (a batch of
    thousands of objects, as hg asks: streamed rather than held whole)."""
    _, store = _store(_context(front, request, route, user), access, request.isSecure())
    base = f"{site_url(front, request)}/{quote(route.repo, safe='/')}/info/lfs/objects/"
    auth = request.getHeader(b"authorization")
    header = {"Authorization": auth.decode("latin-1")} if auth else {}
    chunks = git_lfs.batch_response(batch, store.size, lambda oid: base + oid, header,
                                    getattr(request, "max_body", None),  # (the bound its upload will meet)
                                    _intact_within(store, route.repo, batch.operation == git_lfs.UPLOAD))
    first = next(chunks)
    following = next(chunks, None)
    return first, None if following is None else itertools.chain((following,), chunks)


def _send_batch(request: server.Request, route: Route, first: bytes, rest: Iterator[bytes] | None) -> None:
    """A batch answer: whole with its length when it is one chunk, else streamed from the pool with
    backpressure (a failure then can only cut it, so the client sees no answer rather than a wrong one)."""
    if rest is None:
        _ok(request, route, first, "ok: batch")
        return
    if request.finished or request._disconnected:
        return
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", MEDIA_TYPE.encode())
    request.setHeader(b"Cache-Control", b"no-cache")
    request.write(first)

    def sent(_: object) -> None:
        if not request.finished and not request._disconnected:
            request.finish()
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome="ok: batch (streamed)")

    def broke(failure: Failure) -> None:
        if not failure.check(defer.CancelledError):
            log.failure("{proto} answering a batch of {repo}", failure, proto=PROTO, repo=route.repo)
        if not request.finished and not request._disconnected:
            request.loseConnection()

    IteratorProducer(rest, request).start().addCallbacks(sent, broke)


# --- basic transfers --------------------------------------------------------------------------

def serve_object(front: HttpFront, request: server.Request, route: Route) -> None:
    oid = route.service
    upload = request.method == b"PUT"
    d: defer.Deferred[Any] = lfs_authorize(front, request, route, Access.WRITE if upload else Access.READ)
    body = request.content
    if upload and isinstance(body, LiveBody):  # (a body as sent: gateway.http.STREAMED_ROUTES)
        d.addCallback(lambda user: _put_streamed(front, request, route, user, oid, body))
        d.addCallback(lambda _: _ok(request, route, b"{}", f"ok: stored {oid}"))
    elif upload:
        # an upload may take a while to copy and hash: on the push threads, not the workers everyone shares
        d.addCallback(lambda user: run_for_hooks(_put, front, request, route, user, oid))
        d.addCallback(lambda _: _ok(request, route, b"{}", f"ok: stored {oid}"))
    else:  # GET, or HEAD: the same headers, no body
        wanted = request.getHeader(b"Range")
        d.addCallback(lambda user: run_blocking(_open, front, request, route, user, oid, wanted))
        d.addCallback(lambda found: _send_object(request, route, oid, *found))
    d.addErrback(lambda failure: _failed(request, route, failure))


def _upload_target(front: HttpFront, request: server.Request, route: Route, user: str | None,
                   oid: str) -> tuple[SessionContext, LfsStore]:
    """Where an upload of ``oid`` by ``user`` goes (the right to push checked), and its audit context."""
    if not git_lfs.valid_oid(oid):
        raise LfsObjectRefused("the object name is not a SHA-256 in lower-case hex")
    ctx = _context(front, request, route, user)
    kind, store = _store(ctx, Access.WRITE, request.isSecure())
    if kind is Kind.HG:  # the audit log names the repository's own protocol
        ctx = replace(ctx, transport="hg-http")
    return ctx, store


def _put(front: HttpFront, request: server.Request, route: Route, user: str | None, oid: str) -> None:
    ctx, store = _upload_target(front, request, route, user, oid)
    content: IO[bytes] | None = request.content
    if content is None:
        raise ProtocolError("an upload needs a body", http_status=400)
    size = content.seek(0, os.SEEK_END)
    content.seek(0)
    _keep_upload(ctx, store, oid, size, _read_all(content))


UPLOAD_READ = 256 * 1024
"""Bytes of an upload read as it arrives that one write on the push threads takes at most."""


@defer.inlineCallbacks
def _put_streamed(front: HttpFront, request: server.Request, route: Route, user: str | None, oid: str,
                  body: LiveBody) -> Generator[defer.Deferred[Any], Any, None]:
    """An upload written beside its place as it arrives (``LfsStore.upload``), a chunk at a time on
    the push threads, no thread waiting on the client (``LiveBody.read_later``): nothing in
    ``TMPDIR``, the object written once.  Its size is the ``Content-Length`` (git-lfs sends one; a
    body sent in chunks may be any size up to the limit).  A client gone, a body refused, an upload
    that is not what it says or a disk that refuses it: what was written is removed."""
    ctx, store = yield run_for_hooks(_upload_target, front, request, route, user, oid)
    writer = yield run_for_hooks(store.upload, oid, announced_length(request))
    try:
        while chunk := (yield body.read_later(UPLOAD_READ)):
            yield run_for_hooks(writer.write, chunk)
        yield run_for_hooks(writer.finish)
    except LfsObjectRefused as refused:
        yield run_for_hooks(_record_refused, ctx, oid, refused)
        raise
    finally:
        yield run_for_hooks(writer.abort)  # (nothing left to remove once kept)
    yield run_for_hooks(_record_kept, ctx, oid)


def _keep_upload(ctx: SessionContext, store: LfsStore, oid: str, size: int, chunks: Iterator[bytes]) -> None:
    """Keep an uploaded object once it is what its name and size say (``LfsStore.put``), and say
    so in the audit log, refused or not (over HTTP and over ``git-lfs-transfer``)."""
    try:
        store.put(oid, size, chunks)
    except LfsObjectRefused as refused:
        _record_refused(ctx, oid, refused)
        raise
    _record_kept(ctx, oid)


def _record_kept(ctx: SessionContext, oid: str) -> None:
    audit.record(ctx, "lfs-upload", [audit.Change(f"lfs:{oid}", "", oid)], "ok")


GIT_UPLOAD_REFUSED = 400
"""The status of a Git LFS upload refused over HTTP (its bytes not what its name and size say).
git-lfs 3.3 reads a 422 to a basic-transfer upload as "unsupported Content-Type header(s)", goes on,
and the push lands a ref whose object the server does not have; a 400 fails its push with the
reason.  An hg LFS upload keeps 422, as hg serve answers it (hg's client fails on either)."""


def _record_refused(ctx: SessionContext, oid: str, refused: LfsObjectRefused) -> None:
    if ctx.transport != "hg-http":
        refused.status = GIT_UPLOAD_REFUSED
    audit.record(ctx, "lfs-upload", [audit.Change(f"lfs:{oid}", "", oid, result=str(refused))],
                 f"refused: {refused}")


def _read_all(content: IO[bytes]) -> Iterator[bytes]:
    while chunk := content.read(BODY_CHUNK):
        yield chunk


def _open(front: HttpFront, request: server.Request, route: Route, user: str | None, oid: str,
          wanted: bytes | None) -> tuple[int, Iterator[bytes], tuple[int, int] | None]:
    """The object's size and its bytes (of the one span a ``Range`` asks, ``wanted``: how git-lfs
    resumes a download it has part of; objects never change, so no validator is needed)."""
    store = _store(_context(front, request, route, user))[1]
    size = store.size(oid) if git_lfs.valid_oid(oid) else None
    span = None if size is None else git_lfs.byte_range(None if wanted is None else wanted.decode("latin-1"), size)
    opener = getattr(store, "open_checked", store.open)  # (a backend's own store may not check)
    found = None if size is None else opener(oid, *span) if span else opener(oid)
    if found is None:
        raise ProtocolError("Object does not exist", http_status=404)
    return found[0], found[1], span


def _send_object(request: server.Request, route: Route, oid: str, size: int, chunks: Iterator[bytes],
                 span: tuple[int, int] | None) -> None:
    if request.finished or request._disconnected or request.method == b"HEAD":
        if not request.finished and not request._disconnected:  # HEAD: the headers a GET would have
            _object_headers(request, size, span)
            request.finish()
        run_blocking(getattr(chunks, "close", lambda: None))
        return
    _object_headers(request, size, span)
    producer = IteratorProducer(chunks, request)
    what = f"sent {oid}" if span is None else f"sent bytes {span[0]}-{span[1] - 1} of {oid}"

    def sent(_: object) -> None:  # (the producer has unregistered itself)
        if not request.finished and not request._disconnected:
            request.finish()
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome=f"ok: {what}")

    def broke(failure: Failure) -> None:
        corrupt = failure.check(LfsObjectCorrupt)
        if corrupt:  # changed on disk since it was found intact: cut short, its last bytes never sent
            _log_corrupt(route.repo, failure.value, "its download was cut short before its end")  # type: ignore[arg-type]
        elif failure.check(defer.CancelledError):  # its client gone (said by nothing), or cut by the stop
            outcome = gone_outcome("client gone", getattr(request, "transport", None))
            metrics.count_http_outcome(request.code, outcome)  # (its status, 200, is no error)
            if outcome == CUT_AT_SHUTDOWN:
                log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo,
                         outcome=f"{CUT_AT_SHUTDOWN} during {what}")
        else:
            log.failure("{proto} sending {oid} of {repo}", failure, proto=PROTO, oid=oid, repo=route.repo)
        if not request.finished and not request._disconnected:
            request.loseConnection()

    producer.start().addCallbacks(sent, broke)


def _object_headers(request: server.Request, size: int, span: tuple[int, int] | None) -> None:
    request.setHeader(b"Content-Type", b"application/octet-stream")
    request.setHeader(b"Accept-Ranges", b"bytes")
    if span is None:
        request.setResponseCode(200)
        request.setHeader(b"Content-Length", b"%d" % size)
    else:
        request.setResponseCode(206)
        request.setHeader(b"Content-Range", b"bytes %d-%d/%d" % (span[0], span[1] - 1, size))
        request.setHeader(b"Content-Length", b"%d" % (span[1] - span[0]))


# --- locks ------------------------------------------------------------------------------------

def serve_locks(front: HttpFront, request: server.Request, route: Route) -> None:
    """The locking API: ``GET locks`` lists, ``POST locks`` locks, ``POST locks/verify`` sorts the
    locks into the caller's and the others', ``POST locks/<id>/unlock`` unlocks."""
    parts = route.service.split("/")
    listing = request.method == b"GET"
    if listing and len(parts) != 1:
        _failed(request, route, Failure(ProtocolError("only the list of locks is read with GET", http_status=405)))
        return
    if len(parts) == 2 and parts[1] != "verify" or len(parts) == 3 and parts[2] != "unlock":
        _failed(request, route, Failure(ProtocolError("Not Found", http_status=404)))
        return
    access = Access.READ if listing else Access.WRITE
    d: defer.Deferred[Any] = lfs_authorize(front, request, route, access)
    d.addCallback(lambda user: run_blocking(_locks, front, request, route, user, parts))
    d.addCallback(lambda answer: _ok_status(request, route, *answer))
    d.addErrback(lambda failure: _failed(request, route, failure))


def _ok_status(request: server.Request, route: Route, status: int, body: bytes, outcome: str) -> None:
    _send_json(request, status, body)
    log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=route.repo, outcome=outcome)


LOCK_OWNER_ANONYMOUS = "anonymous"


def _matching(locks: LfsLocks, path: str | None, lock_id: str | None) -> list[git_lfs.Lock]:
    """The locks a listing asks for: of ``path``, with ``lock_id`` (either None: any)."""
    return [lock for lock in locks.all()
            if (path is None or lock.path == path) and (lock_id is None or lock.id == lock_id)]


def _take_lock(ctx: SessionContext, locks: LfsLocks, path: str, owner: str) -> git_lfs.Lock:
    """Lock ``path`` for ``owner`` (``LockConflict`` when it is locked), in the audit log."""
    lock = locks.create(path, owner)
    audit.record(ctx, "lfs-lock", [audit.Change(f"lfs-lock:{path}", "", lock.id)], "ok")
    return lock


def _release_lock(ctx: SessionContext, locks: LfsLocks, lock_id: str, owner: str, force: bool) -> git_lfs.Lock:
    """Remove a lock (``LockNotFound``, ``LockNotOwned`` as ``LfsLocks.remove``), in the audit log,
    which says whose lock a forced unlock removed."""
    lock = locks.remove(lock_id, owner, force)
    audit.record(ctx, "lfs-unlock", [audit.Change(f"lfs-lock:{lock.path}", lock.id, "")],
                 "ok" + (f" (forced: the lock was {lock.owner}'s)" if lock.owner != owner else ""))
    return lock


def _locks(front: HttpFront, request: server.Request, route: Route, user: str | None,
           parts: list[str]) -> tuple[int, bytes, str]:
    """(status, JSON answer, what to log) of one locking request."""
    ctx = _context(front, request, route, user)
    locks = _store(ctx)[1].locks()  # None for a Mercurial repository's
    if locks is None:
        raise ProtocolError("Git LFS file locking is offered for git repositories only", http_status=404)
    owner = user or LOCK_OWNER_ANONYMOUS
    if request.method == b"GET":
        args = {key.decode("latin-1"): values[-1].decode("utf-8", "replace")
                for key, values in (request.args or {}).items() if values}
        path, lock_id, cursor, limit = git_lfs.parse_lock_query(args)
        page, following = git_lfs.lock_page(_matching(locks, path, lock_id), cursor, limit)
        return 200, git_lfs.locks_response(page, following), f"ok: {len(page)} locks listed"
    body = _body(request, git_lfs.MAX_LOCK_BODY)
    if len(parts) == 1:
        path = git_lfs.parse_lock_create(body)
        try:
            lock = _take_lock(ctx, locks, path, owner)
        except LockConflict as conflict:
            return 409, git_lfs.lock_response(conflict.lock, "already created lock"), f"refused 409: {conflict}"
        return 201, git_lfs.lock_response(lock), f"ok: locked {path}"
    if parts[1] == "verify":
        cursor, limit = git_lfs.parse_lock_verify(body)
        page, following = git_lfs.lock_page(locks.all(), cursor, limit)
        return 200, git_lfs.verify_response(page, owner, following), f"ok: {len(page)} locks verified"
    force = git_lfs.parse_unlock(body)
    try:
        lock = _release_lock(ctx, locks, parts[1], owner, force)
    except LockNotFound:
        raise ProtocolError("no lock has that id", http_status=404) from None
    except LockNotOwned as refused:
        raise ProtocolError(str(refused), http_status=403) from None
    return 200, git_lfs.lock_response(lock), f"ok: unlocked {lock.path}"


# --- git-lfs-authenticate over SSH --------------------------------------------------------------

TOKEN_LIFETIME = 1800
"""Seconds a token handed out over SSH opens the HTTP API for (git-lfs asks again after)."""
TOKEN_SCHEME = "Bearer"
_TOKEN_PREFIX = "hgwire-lfs."
TOKEN_KEY_NAME = ".lfs_token_key"
"""The file under ROOT whose secret signs the tokens: every hgwire process serving ROOT (behind one
address, each with its SSH or HTTP listener) takes the others' tokens, and a restart keeps them."""
_TOKEN_KEY_BYTES = 32


def load_token_key(root: str, owner: tuple[int, int] | None = None) -> bytes:
    """The secret of ``ROOT/.lfs_token_key``, made (mode 0600, 32 random bytes as hex, given to
    ``owner``) when missing; a process of its own when the file can neither be read nor made
    (logged).  Blocking: called once, when the service is built."""
    path = os.path.join(root, TOKEN_KEY_NAME)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        pass
    except OSError as exc:  # missing, and ROOT does not let it be made: removing it would not help
        return _own_token_key(path, exc, f"let the service's user write {root}, where it is made")
    else:
        if owner is not None:  # before the secret is in it
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w") as made:
            made.write(secrets.token_hex(_TOKEN_KEY_BYTES) + "\n")
    try:
        for _ in range(50):  # another process may be writing it this moment
            with open(path, encoding="ascii") as kept:
                text = kept.read(4 * _TOKEN_KEY_BYTES).strip()
            if text:
                break
            time.sleep(0.01)
        key = bytes.fromhex(text)
        if len(key) < _TOKEN_KEY_BYTES:
            raise ValueError(f"it holds {len(key)} bytes, not {_TOKEN_KEY_BYTES}")
        return key
    except PermissionError as exc:
        return _own_token_key(path, exc, _unreadable_token_key_advice(path))
    except OSError as exc:
        return _own_token_key(path, exc, "let the service's user read it, or remove it to have it made again")
    except (ValueError, UnicodeDecodeError) as exc:
        return _own_token_key(path, exc, "remove the file to have it made again")


def _unreadable_token_key_advice(path: str) -> str:
    """What to run when the key file is another user's (one a start as root under ``twistd --uid``
    made before hgwire gave it to that user): give it to this process's user."""
    try:
        owner = os.stat(path).st_uid
    except OSError:
        owner = os.geteuid()
    if owner == os.geteuid():
        return "let the service's user read it, or remove it to have it made again"
    return f"give it to the service's user (chown {user_name(os.geteuid())} {path}), keeping it mode 600"


def _own_token_key(path: str, exc: Exception, advice: str) -> bytes:
    """A key of this process's own, for want of ``path``, with one line that says why and what to do."""
    error = f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
    log.warn("{path} cannot sign Git LFS tokens ({error}); this process signs its own, which other "  # noqa: G010
             "processes and a restart do not take: {advice}", path=path, error=error, advice=advice)
    return secrets.token_bytes(_TOKEN_KEY_BYTES)


def issue_token(user: str | None, repo: str, access: Access, key: bytes, now: float | None = None) -> str:
    """A token for ``user``'s ``access`` to the LFS objects of ``repo`` for ``TOKEN_LIFETIME``,
    signed with ``key`` (``load_token_key``)."""
    expires = int((time.time() if now is None else now) + TOKEN_LIFETIME)
    claims = json.dumps([user, _key(repo), access.value, expires], separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(claims).decode().rstrip("=")
    return _TOKEN_PREFIX + body + "." + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def check_token(token: str, repo: str, access: Access, key: bytes, now: float | None = None) -> str | None:
    """The user a token was issued to, when ``key`` signed it, unexpired, for ``repo`` and covers
    ``access`` (an upload token covers downloads); raises ``Unauthorized`` otherwise."""
    body, _, mac = token.removeprefix(_TOKEN_PREFIX).partition(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not token.startswith(_TOKEN_PREFIX) or not hmac.compare_digest(mac, expected):
        raise Unauthorized("the LFS token is not one this server issued; run the git command again")
    user, named, granted, expires = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if (time.time() if now is None else now) > expires:
        raise Unauthorized("the LFS token has expired; run the git command again")
    if named != _key(repo) or (access is Access.WRITE and granted != Access.WRITE.value):
        raise Unauthorized("the LFS token is for another repository or operation")
    return user if isinstance(user, str) else None


def _key(repo: str) -> str:
    return strip_git_suffix(repo)


_PROCESS_KEY: list[bytes] = []


def _process_key() -> bytes:
    """A secret of this process, for a service built without ``load_token_key`` (embedded)."""
    if not _PROCESS_KEY:
        _PROCESS_KEY.append(secrets.token_bytes(_TOKEN_KEY_BYTES))
    return _PROCESS_KEY[0]


def token_key(config: ServiceConfig) -> bytes:
    """The key that signs ``config``'s service's tokens."""
    return config.lfs_token_key or _process_key()


def lfs_authorize(front: HttpFront, request: server.Request, route: Route, access: Access
                  ) -> defer.Deferred[str | None]:
    """Who asks: the user of a token handed out over SSH (``Authorization: Bearer …``), still
    allowed by the authorizer, or Basic credentials as for git (``HttpFront.authorize``)."""
    header = (request.getHeader(b"authorization") or b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme != TOKEN_SCHEME or not token.startswith(_TOKEN_PREFIX):
        return front.authorize(request, route.repo, "git-http", access)
    try:
        user = check_token(token.strip(), route.repo, access, token_key(front.config))
        front.authorizer.check(user, route.repo, "git-http", access)
    except (PermissionDenied, RepositoryNotFound, ValueError) as refusal:  # (not found: a push to no repository)
        return defer.fail(refusal if not isinstance(refusal, ValueError) else Unauthorized("a malformed LFS token"))
    return defer.succeed(front.counted(user, request))


def lfs_http_url(ctx: SessionContext) -> str | None:
    """The repository's LFS API over HTTP, for a session over SSH (``[http] public_url``, else the
    first ``--http`` listener: ``extra["http_url"]``); None when this server has none."""
    base = ctx.extra.get("http_url", "")
    return f"{base}/{quote(ctx.repo_name, safe='/')}/info/lfs" if base else None


class LfsAuthenticateSession(OneShotSession):
    """``git-lfs-authenticate PATH upload|download`` (git-lfs, for an ``ssh://`` remote): where the
    repository's LFS API is over HTTP and a token that opens it, as JSON, exit 0; the door
    already checked the access the operation needs."""

    what = "git-lfs-authenticate"

    def __init__(self, kind: str, ctx: SessionContext, channel: Channel) -> None:
        self._access = Access.WRITE if kind.endswith("upload") else Access.READ
        super().__init__(ctx, channel)

    def answer(self) -> bytes:
        _store(self.ctx, self._access)  # the repository is there and keeps LFS objects (the door checked the access)
        href = lfs_http_url(self.ctx)
        if href is None:
            raise UnsupportedFeature("Git LFS needs the HTTP listener (--http), which this server does not run")
        token = issue_token(self.ctx.user, self.ctx.repo_name, self._access,
                            bytes.fromhex(self.ctx.extra.get("lfs_token_key", "")) or _process_key())
        return json.dumps({"href": href, "header": {"Authorization": f"{TOKEN_SCHEME} {token}"},
                           "expires_in": TOKEN_LIFETIME}).encode() + b"\n"


# --- git-lfs-transfer: LFS over SSH alone ---------------------------------------------------

MAX_TRANSFER_OBJECT = 2 * 1024**3
"""Bytes of one object put over ``git-lfs-transfer`` (the HTTP request body bound's default)."""
UPLOAD_WRITE = 256 * 1024
"""Bytes of an upload one write on the push threads takes at most."""
UPLOAD_HIGH_WATER = 512 * 1024
"""Bytes of an upload waiting to be written past which the channel is paused (the SSH window
then holds the client)."""
UPLOAD_LOW_WATER = 128 * 1024
"""Bytes waiting under which a paused channel is resumed."""
INPUT_SLICE = 256 * 1024
"""Bytes of input handed to the protocol's reader at once (its buffer takes a MiB)."""


class _TransferUpload:
    """One ``put-object``'s data: written beside the object's place as it arrives (``LfsStore.upload``),
    kept by ``finish`` when its request is answered, removed otherwise."""

    def __init__(self, start: lfs_transfer.DataStart) -> None:
        self.start = start
        self.writer: VerifiedWriter | None = None
        """Set once open (the request checked: the right to push, its size, its name)."""
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.received = 0
        self.writing = False
        self.ended = False
        self.error: Failure | None = None
        """Why it cannot be kept (refused, the disk full): its request is answered with it."""


class LfsTransferSession:
    """``git-lfs-transfer PATH upload|download`` (git-lfs 3, for an ``ssh://`` remote): the
    objects and locks of the repository over the SSH channel itself, no HTTP listener needed
    (``protocols.git_lfs_transfer``).  The door checked the right to read; each request that
    uploads, locks, unlocks or verifies locks needs the right to push and an ``upload``
    connection, else it is refused (403) with the reason, and the session goes on.  Requests are answered one at a
    time, in order; an object's data is streamed with backpressure; an upload is written beside
    its place as it arrives (``_TransferUpload``: nothing in ``TMPDIR``) and kept only once it
    hashes to its name."""

    def __init__(self, kind: str, ctx: SessionContext, channel: Channel) -> None:
        self.ctx = ctx
        self.channel = channel
        self._writes = kind.endswith("upload")
        self._reader = lfs_transfer.TransferReader()
        self._queue: deque[tuple[lfs_transfer.Message | lfs_transfer.Refused, _TransferUpload | None]] = deque()
        self._busy = False
        self._closed = False
        self._upload: _TransferUpload | None = None
        self._uploads: set[_TransferUpload] = set()
        """Uploads whose writer is open or being opened: aborted when the session ends."""
        self._paused = False
        self._in_input = False
        self._resume_wanted = False
        self.outcome = "ok"
        """The session's, for its log line (``gateway.ssh``): a refused upload's "refused: …", not "ok"."""
        channel.write(lfs_transfer.capabilities())

    # -- input --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self._in_input = True
        try:
            self._take_input(data)
        finally:
            self._in_input = False
        if self._resume_wanted:
            self._resume_wanted = False
            self._resume()

    def _take_input(self, data: bytes) -> None:
        # (a channel hands what it held while paused over as one chunk, up to its window: the reader
        # takes at most a MiB at once, and takes slices of it whole)
        if len(data) > INPUT_SLICE:
            for at in range(0, len(data), INPUT_SLICE):
                self._take_input(data[at:at + INPUT_SLICE])
                if self._closed:
                    return
            return
        for event in self._reader.feed(data):
            if isinstance(event, lfs_transfer.DataStart):
                self._upload = _TransferUpload(event)
                self._open_upload(self._upload)
            elif isinstance(event, lfs_transfer.DataChunk):
                upload = self._upload
                if upload is None:  # (after a refusal: dropped)
                    continue
                upload.received += len(event.data)
                if upload.received > MAX_TRANSFER_OBJECT:
                    self._fail(413, f"an object larger than {MAX_TRANSFER_OBJECT >> 20} MiB")
                    return
                if upload.error is None:
                    upload.pending.append(event.data)
                    upload.pending_bytes += len(event.data)
                    if upload.pending_bytes > UPLOAD_HIGH_WATER and not self._paused:
                        self._paused = True
                        self.channel.pause_input()
                    self._write_upload(upload)
            elif isinstance(event, lfs_transfer.DataEnd):
                upload, self._upload = self._upload, None
                if upload is None:
                    continue
                upload.ended = True
                self._queue.append((lfs_transfer.Message(upload.start.command, upload.start.argument,
                                                         upload.start.args), upload))
            else:
                self._queue.append((event, None))
        self._next()

    def eof_received(self) -> None:
        self.data_received(b"")  # a request the end of the stream cuts is refused
        self._queue.append((lfs_transfer.Message("quit", ""), None))  # the client went: end after what it asked
        self._next()

    def connection_lost(self) -> None:
        self._closed = True
        self._drop_uploads()

    # -- uploads, written as they arrive -------------------------------------------------------

    def _open_upload(self, upload: _TransferUpload) -> None:
        def opened(writer: VerifiedWriter) -> None:
            upload.writer = writer
            if self._closed:
                self._drop_uploads()
            else:
                self._write_upload(upload)

        self._uploads.add(upload)
        d = run_for_hooks(self._upload_writer, upload.start)
        d.addCallbacks(opened, lambda failure: self._upload_failed(upload, failure))

    def _write_upload(self, upload: _TransferUpload) -> None:
        """Hand what waits of ``upload`` to the push threads, one write at a time."""
        if upload.writer is None or upload.writing or upload.error is not None or self._closed:
            return
        if not upload.pending:
            self._resume()
            if upload.ended:
                self._next()
            return
        taken: list[bytes] = []
        size = 0
        while upload.pending and size < UPLOAD_WRITE:
            taken.append(upload.pending.popleft())
            size += len(taken[-1])
        upload.pending_bytes -= size
        upload.writing = True

        def written(_: object) -> None:
            upload.writing = False
            self._write_upload(upload)

        d = run_for_hooks(upload.writer.write, b"".join(taken))
        d.addCallbacks(written, lambda failure: self._upload_failed(upload, failure))
        if upload.pending_bytes < UPLOAD_LOW_WATER:
            self._resume()  # (after the write is under way: what comes now is written after it)

    def _upload_failed(self, upload: _TransferUpload, failure: Failure) -> None:
        """The upload cannot be kept (refused, or the disk refuses it): what comes of it is dropped,
        and its put-object is answered with the reason in its turn."""
        upload.writing = False
        upload.error = failure
        upload.pending.clear()
        upload.pending_bytes = 0
        self._resume()
        self._next()

    def _resume(self) -> None:
        """Resume a paused channel; inside ``data_received`` only once it is done (a channel hands
        what it held back at once, which must not run into the input being parsed)."""
        if not self._paused or self._closed:
            return
        if self._in_input:
            self._resume_wanted = True
            return
        self._paused = False
        self.channel.resume_input()

    # -- one request at a time ----------------------------------------------------------------

    def _next(self) -> None:
        if self._busy or self._closed or not self._queue:
            return
        upload = self._queue[0][1]
        if upload is not None and upload.error is None and (upload.writer is None or upload.writing
                                                             or upload.pending):
            return  # its data is still being written: answered once it is all in
        message, spool = self._queue.popleft()
        if isinstance(message, lfs_transfer.Refused):
            self._fail(400, message.message)
            return
        if message.command == "quit":
            self.channel.write(lfs_transfer.status(200))
            self._end(0)
            return
        self._busy = True
        if message.command == "get-object":
            d: defer.Deferred[Any] = run_blocking(self._open_object, message)
            d.addCallback(self._stream)
        else:
            runner = run_for_hooks if message.command == "put-object" else run_blocking
            d = runner(self._answer, message, spool)
            d.addCallback(self._reply)
        d.addErrback(self._failed_request, message)
        d.addBoth(self._done, spool)

    def _reply(self, body: bytes) -> None:
        if not self._closed:
            self.channel.write(body)

    def _done(self, _: object, upload: _TransferUpload | None) -> None:
        if upload is not None:
            self._release(upload)
        self._busy = False
        self._next()

    def _release(self, upload: _TransferUpload) -> None:
        """Remove what was written of an upload not kept (nothing once ``finish`` kept it)."""
        self._uploads.discard(upload)
        if upload.writer is not None:
            run_for_hooks(upload.writer.abort).addErrback(lambda failure: log.failure("removing an upload", failure))

    def _failed_request(self, failure: Failure, message: lfs_transfer.Message) -> None:
        exc = failure.value
        if isinstance(exc, LfsObjectCorrupt):
            _log_corrupt(self.ctx.repo_name, exc, "it was not sent")
            self._reply(lfs_transfer.error(422, str(exc)))
            return
        if isinstance(exc, LfsObjectRefused):
            code, text = 422, str(exc)
        elif isinstance(exc, HgwireError):
            code, text = http_status(exc), str(exc)
        else:
            log.failure("{proto} {command} on {repo}", failure, proto=PROTO, command=message.command,
                        repo=self.ctx.repo_name)
            code, text = 500, "internal error"
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=self.ctx.repo_name,
                 outcome=f"{message.command} refused {code}: {text}")
        if message.command == "put-object":
            self.outcome = f"refused: put-object {code}: {text}"[:400]
        self._reply(lfs_transfer.error(code, text))

    def _fail(self, code: int, message: str) -> None:
        """A request the protocol does not allow: answered, and the session ends."""
        log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=self.ctx.repo_name,
                 outcome=f"refused {code}: {message}")
        if not self._closed:
            self.channel.write(lfs_transfer.error(code, message))
        self._end(1)

    def _end(self, status: int) -> None:
        if not self._closed:
            self._closed = True
            self._drop_uploads()
            self.channel.finish(status)

    def _drop_uploads(self) -> None:
        """The session ends: every upload not kept is removed (one still being opened, once open)."""
        self._upload = None
        self._queue.clear()
        for upload in list(self._uploads):
            if upload.writer is not None:
                self._release(upload)

    # -- the requests (in the pool) -----------------------------------------------------------

    def _store(self, write: bool = False) -> LfsStore:
        """The repository's store, for a request that reads or (``write``) changes it.  The right to
        push is checked here, per request, not at the door: git-lfs shows the message of a refused
        request (``Locking x.bin failed: bob may not push …``) but of a refused session only its
        exit status."""
        if write and not self._writes:
            raise PermissionDenied("this connection was opened for download; git-lfs opens one for upload to "
                                   "put objects or change locks")
        if write and self.ctx.authorizer is not None:
            self.ctx.authorizer.check(self.ctx.user, self.ctx.repo_name, self.ctx.transport, Access.WRITE)
        kind, store = _store(self.ctx, Access.WRITE if write else Access.READ)
        if kind is not Kind.GIT:
            raise UnsupportedFeature("git-lfs-transfer serves git repositories only")
        return store

    def _answer(self, message: lfs_transfer.Message, upload: _TransferUpload | None) -> bytes:
        command, args = message.command, message.args
        if command == "version":
            if message.argument.strip() != "1":
                return lfs_transfer.error(400, "only version 1 of the protocol is spoken here")
            return lfs_transfer.status(200)
        if command == "batch":
            return self._batch(message)
        if command == "put-object":
            return self._put(message, upload)
        if command == "verify-object":
            oid, _, size_word = message.argument.partition(" ")
            size = args.get("size") or size_word
            held = self._store().size(oid) if git_lfs.valid_oid(oid) else None
            if held is None:
                return lfs_transfer.error(404, "Object does not exist")
            if str(held) != size:
                return lfs_transfer.error(409, f"the object is {held} bytes, not {size}")
            return lfs_transfer.status(200)
        if command in ("lock", "unlock", "list-lock", "list-locks"):
            return self._locking(message)
        return lfs_transfer.error(400, f"unknown command {command[:40]!r}")

    def _batch(self, message: lfs_transfer.Message) -> bytes:
        if message.args.get("hash-algo", "sha256") != "sha256":
            return lfs_transfer.error(409, "only SHA-256 object names are supported")
        objects = lfs_transfer.batch_objects(message.lines)
        upload = self._writes
        store = self._store(write=upload)
        intact = _intact_within(store, self.ctx.repo_name, True) if upload else None  # (a corrupt one is uploaded again; a download
        lines = []                                          # of one is refused by its get-object)
        for oid, size in objects:
            if not git_lfs.valid_oid(oid):
                return lfs_transfer.error(422, f"the object name {oid[:80]!r} is not a SHA-256 in lower-case hex")
            held = store.size(oid)
            if held is not None and intact is not None and intact(oid) is False:
                held = None
            if upload:
                lines.append(f"{oid} {size} {'noop' if held is not None else 'upload'}")
            else:
                # (one the server does not hold is offered all the same: its get-object is answered 404,
                # which git-lfs reports for that object; ``noop``, which the protocol's text suggests,
                # makes git-lfs skip it without a word, and a clone's smudge then crashes git-lfs 3.3)
                lines.append(f"{oid} {held if held is not None else size} download")
        return lfs_transfer.status(200, ["hash-algo=sha256"], lines)

    def _upload_writer(self, start: lfs_transfer.DataStart) -> VerifiedWriter:
        """Where a ``put-object``'s data goes as it arrives, its request checked first (in the pool)."""
        store = self._store(write=True)
        declared = start.args.get("size", "")
        if not declared.isdigit() or not declared.isascii():
            raise ProtocolError("put-object needs a size=<bytes> argument", http_status=400)
        if not git_lfs.valid_oid(start.argument):
            raise LfsObjectRefused("the object name is not a SHA-256 in lower-case hex")
        return store.upload(start.argument, int(declared))

    def _put(self, message: lfs_transfer.Message, upload: _TransferUpload | None) -> bytes:
        if upload is None:
            self._store(write=True)
            return lfs_transfer.error(400, "put-object needs the object's data")
        oid = message.argument
        if upload.error is not None:
            if upload.error.check(LfsObjectRefused) and git_lfs.valid_oid(oid):
                _record_refused(self.ctx, oid, upload.error.value)  # type: ignore[arg-type]
            upload.error.raiseException()
        assert upload.writer is not None
        try:
            upload.writer.finish()
        except LfsObjectRefused as refused:
            _record_refused(self.ctx, oid, refused)
            raise
        _record_kept(self.ctx, oid)
        return lfs_transfer.status(200)

    def _locking(self, message: lfs_transfer.Message) -> bytes:
        command, args = message.command, message.args
        listing = command in ("list-lock", "list-locks")
        # (a listing needs only the right to read, on an upload connection too, where it is git-lfs's
        # locks --verify: git-lfs would show a refusal of it only as "Error")
        locks = self._store(write=not listing).locks()
        assert locks is not None  # a git repository's store
        owner = self.ctx.user or LOCK_OWNER_ANONYMOUS
        if listing:
            path, lock_id, cursor, limit = git_lfs.parse_lock_query(args)
            page, following = git_lfs.lock_page(_matching(locks, path, lock_id), cursor, limit)
            return lfs_transfer.status(200, [f"next-cursor={following}"] if following else [],
                                       lfs_transfer.lock_lines(page, owner))
        if command == "lock":
            path = git_lfs.lock_path(args.get("path"))
            try:
                lock = _take_lock(self.ctx, locks, path, owner)
            except LockConflict as conflict:
                return lfs_transfer.status(409, lfs_transfer.lock_args(conflict.lock), ["already created lock"])
            return lfs_transfer.status(201, lfs_transfer.lock_args(lock))
        try:
            lock = _release_lock(self.ctx, locks, message.argument, owner, args.get("force") == "true")
        except LockNotFound:
            return lfs_transfer.error(404, "no lock has that id")
        except LockNotOwned as refused:  # git-lfs 3 sends no force over SSH: only HTTP can force it
            href = lfs_http_url(self.ctx) or "https://HOST/NAME.git/info/lfs"
            return lfs_transfer.error(403, f"'{refused.lock.path}' is locked by {refused.lock.owner}; git-lfs "
                                      "forces an unlock over HTTP only: run 'git lfs unlock --force' with the "
                                      f"remote.<name>.lfsurl set to {href}")
        return lfs_transfer.status(200, lfs_transfer.lock_args(lock))

    # -- get-object: streamed -----------------------------------------------------------------

    def _open_object(self, message: lfs_transfer.Message) -> tuple[int, Iterator[bytes]] | None:
        oid = message.argument
        store = self._store()
        return getattr(store, "open_checked", store.open)(oid) if git_lfs.valid_oid(oid) else None

    def _stream(self, found: tuple[int, Iterator[bytes]] | None) -> defer.Deferred[None] | None:
        if found is None:
            log.info("{proto} {repo}: {outcome}", proto=PROTO, repo=self.ctx.repo_name,
                     outcome="get-object refused 404: the repository holds no such LFS object")
            self._reply(lfs_transfer.error(404, "Object does not exist"))
            return None
        size, chunks = found
        if self._closed:
            run_blocking(getattr(chunks, "close", lambda: None))
            return None
        self.channel.write(lfs_transfer.data_head(size))
        producer = IteratorProducer(lfs_transfer.framed(chunks), self.channel)
        return producer.start().addCallbacks(lambda _: self._reply(pktline.FLUSH), self._cut)

    def _cut(self, failure: Failure) -> Failure | None:
        """An object found corrupt while it was sent (changed on disk since it was found intact):
        its last bytes are never sent and the session ends, since its data cannot be taken back."""
        if not failure.check(LfsObjectCorrupt):
            return failure
        _log_corrupt(self.ctx.repo_name, failure.value, "its download was cut short before its end")  # type: ignore[arg-type]
        self._end(1)
        return None


def make_lfs_session(kind: str, ctx: SessionContext, channel: Channel) -> LfsAuthenticateSession | LfsTransferSession:
    """The session for a ``git-lfs-authenticate`` or ``git-lfs-transfer`` exec route
    (``protocols.ssh_exec.RouteKind``)."""
    if kind.startswith("git-lfs-transfer"):
        return LfsTransferSession(kind, ctx, channel)
    return LfsAuthenticateSession(kind, ctx, channel)


HANDLERS: Mapping[RouteKind, Callable[[HttpFront, server.Request, Route], None]] = {
    RouteKind.GIT_LFS_BATCH: serve_batch,
    RouteKind.GIT_LFS_OBJECT: serve_object,
    RouteKind.GIT_LFS_LOCKS: serve_locks,
}
