"""``GET /.metrics``: the service's counters and gauges in Prometheus' text exposition format
(version 0.0.4), written here without a client library.

An operator running many services scrapes each one's metrics; hgwire had only its log lines and
``/.health``'s counts.  The counters are plain integers, bumped where the work already logs its
outcome (a git:// connection's line, an SSH session's line, an HTTP request's access line, the
audit event of a push, a refused login) or kept by the listener's guard (bytes, connections); the
gauges are read when the page is asked for.  No label names a repository, a user or an address:
their values come from short fixed lists (transports, services, kinds of error), so a scrape stays
small whatever the clients send.

Who may read the page is ``[http] status_from`` (``gateway.health.status_reader``); others get
the 404 of a name nothing is at.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
"""The exposition format's media type, as Prometheus asks for it."""

TRANSPORTS = ("git", "ssh", "http")

_lock = threading.Lock()
"""Guards the counters below: an audit event may come from a worker thread."""

REQUESTS: Counter[tuple[str, str]] = Counter()
"""(transport, service) → requests served: a git:// connection's request, an SSH session, an HTTP request."""
ERRORS: Counter[tuple[str, str]] = Counter()
"""(transport, kind) → requests that ended in an error of that kind (``outcome_kind``, ``http_error_kind``)."""
PUSHES: Counter[tuple[str, str]] = Counter()
"""(transport, ``accepted``/``refused``) → pushes that proposed changes (the audit's push events)."""
AUTH_FAILURES: Counter[str] = Counter()
"""transport → logins refused (a wrong HTTP password, an SSH connection that did not log in)."""
IN_PROGRESS: Counter[tuple[str, str]] = Counter()
"""(transport, service) → requests under way now (``started``)."""


def _bump(counter: Counter[Any], key: Any) -> None:
    with _lock:
        counter[key] += 1


def count_request(transport: str, service: str, outcome: str | None = None) -> None:
    """One request of ``transport`` for ``service`` (a short fixed name), ended with ``outcome``
    (its log line's: counted as an error of ``outcome_kind`` when it is one)."""
    _bump(REQUESTS, (transport, service or "none"))
    kind = outcome_kind(outcome) if outcome is not None else None
    if kind is not None:
        _bump(ERRORS, (transport, kind))


def started(transport: str, service: str) -> Callable[[], None]:
    """One more request of ``transport`` for ``service`` under way; the function that ends it
    (once, whatever the number of calls)."""
    key = (transport, service or "none")
    _bump(IN_PROGRESS, key)
    ended: list[bool] = []

    def end() -> None:
        if not ended:
            ended.append(True)
            with _lock:
                IN_PROGRESS[key] -= 1

    return end


FETCHES = frozenset({"git-upload-pack", "git-upload-archive", "hg-getbundle"})
PUSHES_SERVICES = frozenset({"git-receive-pack", "hg-unbundle"})


def in_progress_text() -> str:
    """The fetches, pushes and hg SSH sessions under way, for a person (``systemctl status``):
    ``2 fetches, 1 push``; "" when there are none."""
    with _lock:
        now = list(IN_PROGRESS.items())
    fetches = sum(n for (_, service), n in now if service in FETCHES)
    pushes = sum(n for (_, service), n in now if service in PUSHES_SERVICES)
    sessions = sum(n for (_, service), n in now if service == "hg-serve")
    parts = [f"{fetches} fetch{'es' if fetches != 1 else ''}" if fetches else "",
             f"{pushes} push{'es' if pushes != 1 else ''}" if pushes else "",
             f"{sessions} hg ssh session{'s' if sessions != 1 else ''}" if sessions else ""]
    return ", ".join(part for part in parts if part)


def count_error(transport: str, kind: str) -> None:
    _bump(ERRORS, (transport, kind))


def count_auth_failure(transport: str) -> None:
    _bump(AUTH_FAILURES, transport)


def count_push(proto: str, outcome: str) -> None:
    """A push's audit event: accepted when its outcome is ``ok``, else refused (a hook, a
    protected branch, a failed unpack, refs refused)."""
    _bump(PUSHES, (transport_of(proto), "accepted" if outcome == "ok" else "refused"))


def transport_of(proto: str) -> str:
    """The transport of a session's ``proto`` (``git-daemon``, ``git-ssh``, ``hg-http``, ``git-lfs``…)."""
    if "ssh" in proto:
        return "ssh"
    if proto in ("git", "git-daemon"):
        return "git"
    return "http"


def outcome_kind(outcome: str) -> str | None:
    """The kind of error a session's outcome (its log line's) says, None for a success: ``refused``
    (a permission, a limit, a hook or a protected branch), ``client_gone``, ``shutdown`` (cut by the
    service's stop once ``--shutdown-grace`` was over: its client had not gone), ``timeout``,
    ``not_found``, ``internal`` (logged with its traceback), ``failed`` (anything else)."""
    text = outcome.strip().lower()
    if not text or text.startswith(("ok", "asked to log in", "no request", "done")):
        return None
    if text.startswith("refused"):
        return "refused"
    if text.startswith("cut at shutdown"):
        return "shutdown"
    if "client gone" in text or "went away" in text:
        return "client_gone"
    if "timeout" in text or "timed out" in text or "too slow" in text:
        return "timeout"
    if "not found" in text:
        return "not_found"
    if "internal error" in text:
        return "internal"
    return "failed"


HTTP_ERROR_KINDS = {403: "refused", 404: "not_found", 408: "timeout", 429: "limit", 500: "internal",
                    503: "unavailable"}
"""An HTTP status's kind of error; a 401 is not one (every push's first request meets it: a wrong
password is ``hgwire_auth_failures_total``)."""


def http_error_kind(status: int) -> str | None:
    if status < 400 or status == 401:
        return None
    return HTTP_ERROR_KINDS.get(status, "bad_request" if status < 500 else "internal")


ERROR_KIND = "_hgwire_error_kind"
"""Set on an HTTP request whose error status does not tell its kind: a ``500`` answering a fault of
the server's own files (a repository it may not read, a damaged one), logged without a traceback, is
``failed`` as over git:// and SSH, not ``internal`` (which is a traceback's)."""


def count_http_outcome(status: int, outcome: str) -> None:
    """An HTTP request whose status says no error but whose outcome is one (a push answered 200 with
    its refusal inside, git's report or hg's error part; a stream its client left): counted as the
    same outcome over git:// and SSH is.  A status that is an error is counted by the access log's
    ``http_error_kind``, and is not counted again here."""
    if status < 400:
        kind = outcome_kind(outcome)
        if kind is not None:
            count_error("http", kind)


WEB_ROUTES = frozenset({"hg-archive", "hg-raw-file", "hg-web-page", "hg-web-html", "repository-page", "root-page",
                        "go-get", "redirect"})
"""The HTTP routes (``gateway.http.RouteKind`` values) counted as ``web``: what a browser or a tool
other than git and hg asks for."""
HTTP_SERVICES = {"git-info-refs": "git-info-refs", "git-upload-pack": "git-upload-pack",
                 "git-receive-pack": "git-receive-pack", "git-lfs-batch": "git-lfs", "git-lfs-object": "git-lfs",
                 "git-lfs-locks": "git-lfs", "health": "health", "metrics": "metrics", "error": "none"}


def http_service(route_kind: str, command: str) -> str:
    """The ``service`` label of an HTTP request routed to ``route_kind`` (an hg ``command`` for
    ``hg-command``): ``hg-getbundle``, ``hg-unbundle``… for the commands hg's wire protocol has,
    ``hg-other`` for any other name a client sent."""
    if route_kind == "hg-command":
        from protocols import hg_commands

        known = command.isascii() and command.encode("ascii") in hg_commands.COMMANDS
        return f"hg-{command}" if known else "hg-other"
    if route_kind in WEB_ROUTES:
        return "web"
    return HTTP_SERVICES.get(route_kind, "other")


# --- the exposition format ------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    """One metric: its name, ``counter`` or ``gauge``, its help text and its samples."""

    name: str
    kind: str
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def exposition(families: Iterable[Family]) -> str:
    """The text exposition format (0.0.4): each family's ``# HELP`` and ``# TYPE`` lines, then one
    line a sample, ``name{label="value",…} number``; the text ends with a newline."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            shown = ",".join(f'{key}="{_escape_label(text)}"' for key, text in labels)
            lines.append(f"{family.name}{{{shown}}} {_number(value)}" if shown else f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"


# --- what is measured ---------------------------------------------------------------------

def _counted(counter: Counter[Any], names: Sequence[str], zeros: Iterable[Any] = ()) -> list[tuple[Labels, float]]:
    with _lock:
        values = dict(counter)
    for key in zeros:
        values.setdefault(key, 0)
    samples = []
    for key in sorted(values):
        parts = key if isinstance(key, tuple) else (key,)
        samples.append((tuple(zip(names, parts, strict=True)), values[key]))
    return samples


def process_start_time() -> float:
    """When this process started, in seconds since the epoch (from ``/proc``; else when this module
    was imported, at the start)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED


_IMPORTED = time.time()
_START: list[float] = []


def families(config: Any) -> list[Family]:
    """Every metric of the service of ``config``, read now."""
    from gateway.shared_streams import SHARED
    from gateway.threads import hook_threads_busy, pool_load

    kinds = sorted({guard.kind for guard in config.guards}) or list(TRANSPORTS)
    guards: dict[str, list[Any]] = {}
    for guard in config.guards:
        guards.setdefault(guard.kind, []).append(guard)

    def per_transport(attribute: str) -> list[tuple[Labels, float]]:
        return [((("transport", kind),), sum(getattr(g, attribute, 0) for g in guards.get(kind, []))) for kind in kinds]

    errors = _counted(ERRORS, ("transport", "kind"))
    limit_refusals = {kind: sum(getattr(g, "refused", 0) for g in guards.get(kind, [])) for kind in kinds}
    errors += [((("transport", kind), ("kind", "connection_limit")), n) for kind, n in limit_refusals.items() if n]
    errors.sort()
    busy, size, waiting = pool_load()
    if not _START:
        _START.append(process_start_time())
    found = [
        Family("hgwire_requests_total", "counter",
               "Requests served, by transport and service: a git:// connection's request, an SSH session "
               "(one hg-serve session carries many hg commands), an HTTP request.",
               _counted(REQUESTS, ("transport", "service"))),
        Family("hgwire_errors_total", "counter",
               "Requests that ended in an error, by transport and kind (refused, not_found, client_gone, shutdown, "
               "timeout, internal, failed, limit, unavailable, bad_request, connection_limit).", errors),
        Family("hgwire_connections_total", "counter", "Connections accepted, by transport.",
               per_transport("accepted")),
        Family("hgwire_received_bytes_total", "counter",
               "Bytes received from clients, by transport (inside TLS).", per_transport("bytes_in")),
        Family("hgwire_sent_bytes_total", "counter",
               "Bytes sent to clients, by transport (inside TLS).", per_transport("bytes_out")),
        Family("hgwire_pushes_total", "counter",
               "Pushes that proposed changes, by transport and result (accepted, or refused by a hook, a "
               "protected branch or a failed unpack).",
               _counted(PUSHES, ("transport", "result"),
                        [(kind, result) for kind in kinds for result in ("accepted", "refused")])),
        Family("hgwire_auth_failures_total", "counter",
               "Logins refused (a wrong HTTP password, an SSH connection that did not log in), by transport.",
               _counted(AUTH_FAILURES, ("transport",), [kind for kind in kinds if kind != "git"])),
        Family("hgwire_clone_cache_hits_total", "counter",
               "Full clones answered from a kept answer ([clone_cache]).", [((), SHARED.reused)]),
        Family("hgwire_clone_cache_misses_total", "counter",
               "Full clones whose answer was computed (and shared with identical ones arriving meanwhile).",
               [((), SHARED.started)]),
        Family("hgwire_clone_joins_total", "counter",
               "Full clones that joined an identical clone's answer being computed.", [((), SHARED.joined)]),
        Family("hgwire_requests_in_progress", "gauge", "Requests under way now, by transport and service.",
               _counted(IN_PROGRESS, ("transport", "service"))),
        Family("hgwire_open_connections", "gauge", "Connections open now, by transport.",
               [((("transport", kind),), sum(len(g.protocols) for g in guards.get(kind, []))) for kind in kinds]),
        Family("hgwire_workers", "gauge", "Worker threads (--workers).", [((), size)]),
        Family("hgwire_workers_busy", "gauge", "Worker threads running a step now.", [((), busy)]),
        Family("hgwire_workers_waiting", "gauge", "Steps waiting for a worker thread.", [((), waiting)]),
        Family("hgwire_pushes_in_hooks", "gauge",
               "Pushes running their repository's hooks or waiting for a lock now.", [((), hook_threads_busy())]),
        Family("hgwire_clone_cache_answers", "gauge", "Finished clone answers kept now ([clone_cache]).",
               [((), SHARED.kept())]),
        Family("hgwire_clone_cache_bytes", "gauge", "Bytes of the clone answers kept now (spool files in TMPDIR).",
               [((), SHARED.kept_bytes)]),
        *_hg_kept(),
        *_git_kept(),
        Family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
               [((), _START[0])]),
        *_process(),
    ]
    return found


def _process() -> list[Family]:
    """The process's CPU time, memory and descriptors, as Prometheus' client libraries name them
    (from ``/proc``; none where there is no ``/proc``)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        resident = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        virtual = int(fields[20])
        descriptors = len(os.listdir("/proc/self/fd"))
    except (OSError, ValueError, IndexError):
        return []
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    found = [
        Family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
               [((), cpu)]),
        Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [((), resident)]),
        Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", [((), virtual)]),
        Family("process_open_fds", "gauge", "Number of open file descriptors.", [((), descriptors)]),
    ]
    if soft != resource.RLIM_INFINITY:
        found.append(Family("process_max_fds", "gauge", "Maximum number of open file descriptors.", [((), soft)]))
    return found


def _hg_kept() -> list[Family]:
    """The hg repositories kept open for the next read-only requests, and what the engine keeps parsed in all."""
    try:
        from backends import hg as hg_backend
    except ImportError:  # pragma: no cover - the hg engine is part of hgwire
        return []
    kept = hg_backend.READ_REUSE.values()
    return [
        Family("hgwire_hg_kept_repositories", "gauge",
               "Mercurial repositories kept open for the next read-only requests.", [((), len(kept))]),
        Family("hgwire_hg_kept_repositories_bytes", "gauge",
               "What the Mercurial engine keeps parsed between requests, in bytes: the kept repositories, "
               "every store's views, indexes, branches, tags, markers ([limits] hg_kept_repositories_bytes "
               "bounds it).", [((), hg_backend.kept.KEPT.held)]),
    ]


def _git_kept() -> list[Family]:
    """The git ``packed-refs`` files kept parsed between requests, and what they hold."""
    from backends import git as git_backend

    files, held = git_backend.packed_refs_kept()
    return [
        Family("hgwire_git_kept_refs", "gauge",
               "Git packed-refs files kept parsed (with their advertisement lines) between requests.",
               [((), files)]),
        Family("hgwire_git_kept_refs_bytes", "gauge",
               "What the kept git packed-refs parses hold, in bytes, as weighed ([limits] git_kept_refs_bytes "
               "bounds it).", [((), held)]),
    ]


def render(config: Any) -> bytes:
    """The page: every metric of the service of ``config``, in the exposition format."""
    return exposition(families(config)).encode("utf-8")
