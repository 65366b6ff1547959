"""systemd's notification protocol (``sd_notify``), spoken here without a library: each message
is one datagram of ``KEY=VALUE`` lines to the unix socket ``$NOTIFY_SOCKET`` names (an abstract
one when the name starts with ``@``).

A unit of ``Type=exec`` could only say that the process had started: systemd counted hgwire
started before its listeners were bound, a reload was over once ``kill -HUP`` returned, and a hung
event loop was never noticed.  Under ``Type=notify`` (or ``notify-reload``) hgwire now says:

- ``READY=1`` once every listener is bound and the reactor runs (never before; a listener that
  cannot listen says ``ERRNO=`` and its line as ``STATUS=`` instead, then exits 1 as before);
- ``RELOADING=1`` with ``MONOTONIC_USEC=`` when a SIGHUP reload begins (what systemd 253's
  ``Type=notify-reload`` waits for), then ``READY=1`` once the ``--config`` file and the
  certificates are read again;
- ``STOPPING=1`` when a stop begins, and what it waits for;
- ``STATUS=`` lines ``systemctl status`` shows: the listeners and the work in flight, the stop's wait;
- ``WATCHDOG=1`` every half of ``$WATCHDOG_USEC`` (``WatchdogSec=``), from the event loop, so that a
  loop that stops turning stops the pings and systemd restarts the service.

The variables are taken out of the process's environment once read, so that no hook, ``git`` or
other child talks to systemd on hgwire's behalf (``sd_notify``'s ``unset_environment``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from gateway.logs import SafeLogger

log = SafeLogger()

SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
"""What systemd gives the service's own process: never passed to a hook."""

STATE_SEND_WAIT = 1.0
"""Seconds a change of state waits for room in ``$NOTIFY_SOCKET``'s queue (``Notifier.send``)."""

MAX_STATUS = 400
"""Characters of a ``STATUS=`` line (systemctl shows one line)."""


def socket_address(name: str | None) -> str | bytes | None:
    """Where ``$NOTIFY_SOCKET`` points: a path, or an abstract socket's name (``@`` → a NUL byte);
    None when unset or of a kind hgwire does not speak (``vsock:``, a relative path)."""
    if not name:
        return None
    if name.startswith("@"):
        return b"\0" + name[1:].encode("utf-8", "surrogateescape")
    if name.startswith("/"):
        return name
    return None


def message(fields: Mapping[str, object]) -> bytes:
    """One notification: ``KEY=VALUE`` lines, in order; a value's line breaks become spaces (one
    message cannot hold a newline inside a value)."""
    lines = []
    for key, value in fields.items():
        text = " ".join(str(value).splitlines()) if not isinstance(value, int) else str(value)
        lines.append(f"{key}={text}")
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, as systemd reads ``MONOTONIC_USEC=`` of a reload."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between two ``WATCHDOG=1`` (half of ``$WATCHDOG_USEC``), None when systemd watches
    no process or another one (``$WATCHDOG_PID`` not ``pid``), as ``sd_watchdog_enabled`` reads them."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    watched = environ.get("WATCHDOG_PID")
    if watched:
        try:
            if int(watched) != pid:
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


class Notifier:
    """The service's messages to systemd; every method does nothing without ``$NOTIFY_SOCKET``."""

    def __init__(self, address: str | bytes | None, watchdog: float | None = None,
                 started_pid: int | None = None) -> None:
        self.address = address
        self.watchdog = watchdog if address is not None else None
        """Seconds between two ``WATCHDOG=1``; None: no watchdog."""
        self.started_pid = started_pid if started_pid is not None else os.getpid()
        """The process systemd started (twistd without ``-n`` forks away from it)."""
        self._status: str | None = None
        self._told_failure = False
        self._loop: Any = None

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """The notifier ``$NOTIFY_SOCKET`` asks for, the variables then taken out of ``environ``
        (``os.environ``: the process's children never see them)."""
        environ = os.environ if environ is None else environ
        address = socket_address(environ.get("NOTIFY_SOCKET"))
        watchdog = watchdog_interval(environ, os.getpid())
        for name in SYSTEMD_VARIABLES:
            environ.pop(name, None)
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, fields: Mapping[str, object]) -> bool:
        """Send one message; whether it left (a failure is logged once: systemd may be gone).

        The socket's queue is short (``net.unix.max_dgram_qlen``, 10 by default) and systemd
        reads it for every unit: a change of state (READY, RELOADING, STOPPING, ERRNO) waits up to
        ``STATE_SEND_WAIT`` seconds for room, a ``WATCHDOG=1`` or a ``STATUS=`` alone is dropped
        when there is none, so that the event loop never waits on systemd for long."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(STATE_SEND_WAIT if fields.keys() - {"WATCHDOG", "STATUS"} else 0.0)
                sock.sendto(message(fields), self.address)
        except (BlockingIOError, TimeoutError):
            return False
        except OSError as exc:
            if not self._told_failure:
                self._told_failure = True
                log.warn("cannot tell systemd the service's state through NOTIFY_SOCKET ({reason}); "  # noqa: G010
                         "a Type=notify unit waits for READY=1 until its start times out: check the unit's "
                         "NotifyAccess= and that nothing else uses the socket", reason=exc.strerror or str(exc))
            return False
        return True

    def _pid_fields(self) -> dict[str, object]:
        """``MAINPID=`` when this is not the process systemd started (twistd forked without ``-n``)."""
        pid = os.getpid()
        return {"MAINPID": pid} if pid != self.started_pid else {}

    def ready(self, status: str) -> None:
        self._status = _cut(status)
        self.send({"READY": 1, **self._pid_fields(), "STATUS": self._status})

    def reloading(self, status: str) -> None:
        self._status = _cut(status)
        self.send({"RELOADING": 1, "MONOTONIC_USEC": monotonic_usec(), "STATUS": self._status})

    def stopping(self, status: str) -> None:
        self._status = _cut(status)
        self.send({"STOPPING": 1, "STATUS": self._status})

    def failed(self, status: str, errno: int | None) -> None:
        """A start that cannot go on: why, and its ``errno`` when there is one."""
        fields: dict[str, object] = {"STATUS": _cut(status)}
        if errno:
            fields["ERRNO"] = errno
        self.send(fields)

    def status(self, status: str) -> None:
        """A new ``STATUS=`` line, sent only when it says something new."""
        status = _cut(status)
        if status != self._status:
            self._status = status
            self.send({"STATUS": status})

    def start_watchdog(self, clock: Any, alive: Callable[[], bool] = lambda: True) -> None:
        """Send ``WATCHDOG=1`` every ``watchdog`` seconds from ``clock``'s loop (a ``LoopingCall``:
        a loop that no longer turns sends none), while ``alive()``."""
        if self.watchdog is None or self._loop is not None:
            return
        from twisted.internet import task

        def ping() -> None:
            if alive():
                self.send({"WATCHDOG": 1})

        self._loop = task.LoopingCall(ping)
        self._loop.clock = clock
        self._loop.start(self.watchdog, now=True)

    def stop_watchdog(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()


def _cut(status: str) -> str:
    status = " ".join(status.splitlines())
    return status if len(status) <= MAX_STATUS else status[: MAX_STATUS - 1] + "…"


NO_NOTIFIER = Notifier(None)
"""What an embedded service (``build_service`` without twistd) has: it does not own its process's
messages to systemd."""
