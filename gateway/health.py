"""``GET /.health`` (and ``HEAD``) on every HTTP listener: whether this hgwire can serve, for a
load balancer or a monitor, and the work in flight, for an operator.

``GET /`` answered 200 whatever the state of the storage: with ROOT gone, read-only or full, every
clone said "not found" and every push failed while the load balancer kept sending clients, and
nothing showed the open connections or the worker pool's load short of reading the log.  Here:

- ``200`` and ``ok``, or ``503`` and one line that says what is wrong and what to do: ROOT missing,
  not a directory, unreadable or on a read-only file system (unless ``--read-only``),
  its file system nearly full (``MIN_FREE_BYTES``, or no inode left), for the ``fs`` backend; and,
  for every backend, a check that runs in the worker pool and did not end within
  ``CHECK_TIMEOUT`` seconds (every worker busy, or the storage hanging);
- a ROOT the service's user may not write is a ``note:`` line under ``ok``: only a new repository
  cannot be made there (it was a 503, and a load balancer took out a node that served every clone
  and push);
- then, one a line, the open connections of each kind, the worker threads busy, the steps
  waiting for one, and the pushes running their hooks.

A 200 writes no access line (a load balancer asking every 2 s wrote 43,200 a day); a 503 writes
its access line, and a change of state (ok to failing, failing to ok) one warning or info line.

The counts, the reason of a 503 (it names ROOT) and ``GET /.metrics`` (``gateway.metrics``) are for
the clients ``[http] status_from`` names (this host's own by default: ``status_reader``); anyone
else reached them all.  Others get ``ok`` or ``failing`` alone, with the same status, which is all
a load balancer's probe reads, and for ``/.metrics`` the 404 of a name nothing is at.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.web import server

from gateway import metrics
from gateway.config import ServiceConfig
from gateway.http import (
    METRICS_PATH,
    PAGE_METHODS,
    QUIET_ACCESS,
    HttpFront,
    Route,
    RouteKind,
    _refused_name,
    send_error,
)
from gateway.limits import address_key, trusted_proxies
from gateway.logs import SafeLogger
from gateway.policy import in_force
from gateway.threads import hook_threads_busy, pool_load, run_blocking
from protocols.forwarded import forwarded_client

log = SafeLogger()

CHECK_TIMEOUT = 5.0
"""Seconds the check in the worker pool may take before the answer is 503."""

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Free space on ROOT's file system under which the answer is 503 (a push would fail)."""

_last_problem: dict[int, str | None] = {}
"""Per service (its config's id): the problem the last check found, to log changes only."""


def storage_problem(config: ServiceConfig) -> str | None:
    """What is wrong with the ``fs`` backend's ROOT, in one sentence that says what to do; None if
    nothing is (other backends: None, once a worker thread ran this)."""
    from backends.filesystem import FilesystemBackend

    if not isinstance(config.backend, FilesystemBackend):
        return None
    root = config.backend.root
    try:
        if not os.path.isdir(root):
            return (f"the repositories' directory {root} is gone or is not a directory; "
                    "restore it (or the mount it is on) and no restart is needed")
        with os.scandir(root) as entries:
            next(entries, None)
        found = os.statvfs(root)
    except OSError as e:
        return f"the repositories' directory {root} cannot be read ({e.strerror or e}); check its mount and permissions"
    if config.read_only:
        return None
    if found.f_flag & os.ST_RDONLY:
        return (f"the repositories' directory {root} is on a read-only file system, so every push fails; "
                "remount it read-write, or run hgwire with --read-only")
    free = found.f_bavail * found.f_frsize
    if free < MIN_FREE_BYTES:
        return (f"the file system of {root} has {free // (1024 * 1024)} MiB free, so pushes may fail; "
                "free some space")
    if found.f_files and not found.f_favail:
        return f"the file system of {root} has no inode free, so pushes fail; free some files"
    return None


def storage_note(config: ServiceConfig) -> str | None:
    """What the counts' reader is told of the ``fs`` backend's ROOT that does not take the node out:
    one its user may not write (no new repository can be made; the ones there serve and take
    pushes, so a load balancer must keep sending clients)."""
    from backends.filesystem import FilesystemBackend

    if config.read_only or not isinstance(config.backend, FilesystemBackend):
        return None
    root = config.backend.root
    if os.access(root, os.W_OK | os.X_OK):
        return None
    return (f"the repositories' directory {root} is not writable by {service_user()}, the service's user, so no "
            "new repository can be made in it (the ones there are served and take pushes); if repositories are "
            f"to be made there, {write_rights_advice(root)}")


def service_user() -> str:
    """The name of the user the service runs as (its uid when it has none)."""
    import pwd

    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def write_rights_advice(path: str) -> str:
    """What gives the service's user write rights on the directory ``path``: a ``chown`` when another
    user owns it, else a ``chmod``."""
    try:
        owner = os.stat(path).st_uid
    except OSError:
        owner = None
    if owner is not None and owner != os.geteuid():
        return f"give it to that user (chown {service_user()} {path})"
    return f"give that user write rights on it (chmod u+wx {path})"


def _check(config: ServiceConfig) -> tuple[str | None, str | None]:
    """The problem (a 503) and the note, both found in a worker thread."""
    problem = storage_problem(config)
    return problem, (storage_note(config) if problem is None else None)


def load_lines(config: ServiceConfig) -> list[str]:
    """The work in flight, one a line."""
    kinds: dict[str, int] = {}
    for guard in config.guards:
        kinds[guard.kind] = kinds.get(guard.kind, 0) + len(guard.protocols)
    each = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
    busy, size, waiting = pool_load()
    return [f"connections: {sum(kinds.values())} open ({each})",
            f"workers: {busy} of {size} busy, {waiting} waiting",
            f"hooks: {hook_threads_busy()} pushes running hooks or waiting for a lock"]


FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
"""Headers a reverse proxy adds to name its client: a request that carries one came through a proxy."""


def status_reader(front: HttpFront, request: server.Request) -> bool:
    """Whether the client of ``request`` may read ``/.health``'s counts and ``/.metrics``: its
    address (or ``unix``, on a ``unix:`` listener) is in ``[http] status_from`` (this host's own,
    127.0.0.0/8 and ::1, by default).  A request that a proxy forwarded is judged by the client the
    proxy names when the proxy is among ``[http] trusted_proxies``, and is nobody's otherwise: a
    reverse proxy on this host would else pass anyone's request as its own loopback one."""
    readers = in_force(front.authorizer).status_from
    peer = address_key(server.Request.getClientAddress(request))
    headers = request.requestHeaders
    if not any(headers.hasHeader(name) for name in FORWARDING_HEADERS):
        return peer in readers
    trusted = trusted_proxies(front.config)
    client = forwarded_client(peer, headers.getRawHeaders(trusted.client_header, []), trusted)
    return client is not None and client in readers


def serve_health(front: HttpFront, request: server.Request, route: Route) -> None:
    from twisted.internet import reactor

    config = front.config
    full = status_reader(front, request)
    answered: list[bool] = []

    def answer(problem: str | None, note: str | None = None) -> None:
        if answered or request.finished or request._disconnected:
            return
        answered.append(True)
        if timer.active():
            timer.cancel()
        _log_change(config, problem)
        if problem is None:
            setattr(request, QUIET_ACCESS, True)
        if not full:  # the state alone, for a load balancer anywhere: no path, no counts
            body = "ok" if problem is None else "failing"
        else:
            body = "\n".join(["ok" if problem is None else f"failing: {problem}",
                              *([f"note: {note}"] if note else []), *load_lines(config)])
        send_error(request, 200 if problem is None else 503, body)

    def too_slow() -> None:
        busy, size, waiting = pool_load()
        answer(f"the check did not end within {CHECK_TIMEOUT:g} s in the worker pool ({busy} of {size} "
               f"threads busy, {waiting} waiting): the storage hangs or every worker is held; see the log's "
               "'all worker threads are busy' line, or raise --workers")

    clock: Any = reactor
    timer = clock.callLater(CHECK_TIMEOUT, too_slow)
    d: defer.Deferred[tuple[str | None, str | None]] = run_blocking(_check, config)
    d.addCallbacks(lambda found: answer(*found),
                   lambda failure: answer(f"the check failed: {failure.getErrorMessage()}"))


def _log_change(config: ServiceConfig, problem: str | None) -> None:
    key = id(config)
    if key in _last_problem and _last_problem[key] == problem:
        return
    before = _last_problem.get(key)
    _last_problem[key] = problem
    if problem is not None:
        log.warn("health check: {problem}", problem=problem)  # noqa: G010
    elif before is not None:
        log.info("health check: ok again")


def serve_metrics(front: HttpFront, request: server.Request, route: Route) -> None:
    """``GET /.metrics`` (``gateway.metrics``) for ``[http] status_from``; anyone else gets what a
    hidden name answers (the 404 of ``/.anything``), whatever the method, so the page is not seen."""
    if not status_reader(front, request):
        refused = _refused_name([METRICS_PATH])
        send_error(request, refused.status, refused.message)
        return
    if (request.method or b"").decode("ascii", "replace") not in PAGE_METHODS:
        request.setHeader(b"Allow", ", ".join(PAGE_METHODS).encode())
        send_error(request, 405, "/.metrics answers GET and HEAD only")
        return
    setattr(request, QUIET_ACCESS, True)  # scraped every 15 s: 5,760 access lines a day said nothing
    body = metrics.render(front.config)
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", metrics.CONTENT_TYPE)
    request.setHeader(b"Content-Length", str(len(body)).encode())
    request.setHeader(b"Cache-Control", b"no-cache")
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


HANDLERS = {RouteKind.HEALTH: serve_health, RouteKind.METRICS: serve_metrics}
