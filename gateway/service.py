"""Build the hgwire service: one backend, one listener service per endpoint.

``make_service(options)`` is what the twistd plugin calls; ``build_service``
takes a ``ServiceConfig`` and is the Python API for embedding and tests.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import importlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure

from backends import load_backend
from backends.names import strip_git_suffix
from gateway import tls
from gateway.channel import url_host
from gateway.config import ServiceConfig
from gateway.listen_checks import EndpointError, endpoint_problem, proxied_endpoint
from gateway.logs import SafeLogger
from gateway.sd_notify import NO_NOTIFIER, Notifier
from protocols.errors import StorageError

log = SafeLogger()

DRAIN_QUIET = 1.0
"""While the service stops, a connection between requests is closed once quiet this many seconds
(an hg client's next request on its keep-alive connection comes sooner)."""
DRAIN_STEP = 0.1
"""Seconds between two looks at the open connections while the service stops."""
STATUS_EVERY = 5.0
"""Seconds between two looks at the work in flight for systemd's ``STATUS=`` (sent when it changed)."""
CLOSE_WAIT = 5.0
"""Seconds the stopping service waits for the connections it closed past the grace to be gone (a
push's thread waiting on its client is let go by the loss of its connection; the threads are
joined after)."""

FIRST_USE_IMPORTS = ("email.policy", "dulwich.config", "dulwich.worktree")
"""Modules our libraries import on first use, imported when the service starts instead.

Otherwise the first request after a start waits for them: ``email.policy``
(about 8 ms), which twisted.web needs to parse the ``Content-Type`` of the
first POST (a push over HTTP); dulwich's ``config`` and ``worktree`` (about
4 ms), which opening the first git repository needs.
"""


class UnusablePython(Exception):
    """The service's user may not read the Python it runs on (after twistd's ``--uid``)."""


def import_first_use_modules() -> None:
    """Import them now; a Python whose library the service's user may not read (twistd's ``--uid``
    from root, with a Python in root's home) ends the start with one line, not an import's traceback."""
    try:
        for name in FIRST_USE_IMPORTS:
            importlib.import_module(name)
    except ImportError:
        stdlib = os.path.dirname(os.__file__)  # (nothing more may be importable: only what is loaded)
        if os.access(stdlib, os.R_OK | os.X_OK):
            raise
        try:
            import pwd  # (built in)

            user = pwd.getpwuid(os.geteuid()).pw_name
        except (ImportError, KeyError):
            user = f"user {os.geteuid()}"
        message = (f"{user}, the service's user, may not read Python's own library {stdlib}, so hgwire "
                   "cannot run as that user: run twistd from a virtual environment made from a Python every "
                   "user may run (/usr/bin/python3 -m venv …)")
        log.critical("{message}", message=message)
        _quiet_exit_for(UnusablePython)
        raise UnusablePython(message) from None


@dataclass(frozen=True)
class ListenerKind:
    """One row of the listener table: where its factory lives and how its URLs look."""

    option: str
    module: str
    factory: str
    scheme: str
    default_port: int
    url_suffix: str


LISTENERS: dict[str, ListenerKind] = {
    "git": ListenerKind("--git", "gateway.git_daemon", "GitDaemonFactory", "git", 9418, "NAME.git"),
    "ssh": ListenerKind("--ssh", "gateway.ssh", "make_ssh_factory", "ssh", 2222, "NAME"),
    "http": ListenerKind("--http", "gateway.http", "make_http_site", "http", 8080, "NAME"),
}


class NotImplementedYet(Exception):
    """A listener or option this version does not provide."""


def factory_maker(kind: str) -> Callable[[ServiceConfig], Factory]:
    """The callable that builds the protocol factory of a listener kind."""
    row = LISTENERS[kind]
    try:
        module = importlib.import_module(row.module)
        maker: Callable[[ServiceConfig], Factory] = getattr(module, row.factory)
    except (ImportError, AttributeError) as exc:
        raise NotImplementedYet(f"{row.option} is not implemented yet") from exc
    return maker


def implemented(kind: str) -> bool:
    try:
        factory_maker(kind)
    except NotImplementedYet:
        return False
    return True


class ListenerService(service.Service):
    """Listen on one endpoint description and log the URL clients should use."""

    def __init__(self, kind: str, description: str, factory: IProtocolFactory,
                 stop_reactor_on_failure: bool) -> None:
        self.kind = kind
        self.description = description
        self.factory = factory
        self.stop_reactor_on_failure = stop_reactor_on_failure
        self.port: IListeningPort | None = None
        self.listening: defer.Deferred[IListeningPort] = defer.Deferred()
        self.tls: tls.ReloadableContext | None = None
        """An ``ssl:`` listener's certificate and key, read again on SIGHUP (``reload_tls``)."""
        self._listen_started = False
        self.tls_refused: str | None = None
        """Why the last SIGHUP could not read the ``ssl:`` files again (the pair in use serves on)."""
        self._listen_factory: IProtocolFactory | None = None
        """What an ``ssl:`` listener listens with: TLS over ``factory``."""
        self.error: BaseException | None = None
        """Why the listener could not listen (None while it could)."""

    def privilegedStartService(self) -> None:
        """Listen here, before twistd switches to ``--uid``/``--gid``: a port below 1024 (22, 80,
        443, 9418's 418…) is bound while the process may still bind it, and the TLS files are first
        read as the user that started it, as sshd, nginx and Apache bind and read them before they
        drop their privileges.  (It listened in ``startService``, after the switch: every such port
        failed "Permission denied".)"""
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        self._listen()  # embedded (build_service without twistd): nothing called privilegedStartService

    def _listen(self) -> None:
        from twisted.internet import reactor

        if self._listen_started:
            return
        self._listen_started = True
        try:
            endpoint = self._endpoint(reactor)
        except Exception:
            self._failed(Failure())
            return
        d = endpoint.listen(self._listen_factory or self.factory)
        d.addCallbacks(self._listening, self._failed)

    def _endpoint(self, reactor: Any) -> IStreamServerEndpoint:
        """The endpoint to listen on; an ``ssl:`` one's TLS options completed by ``tls.prepare``.
        Behind a proxy, TLS (``haproxy:ssl:``) comes after the PROXY header: the port listens on
        plain TCP and each connection is handed to TLS once the header is read (the guard's wrapped
        factory becomes TLS over the listener's own)."""
        proxied, text = proxied_endpoint(self.description)
        problem = endpoint_problem(text)
        if problem is not None:
            raise problem
        client_checks = tls.ClientChecks()
        if text[:4].lower() == "ssl:":
            if (warning := tls.check_files(text)) is not None:
                log.warn("{endpoint}: {warning}", endpoint=self.description, warning=warning)  # noqa: G010
            client_checks, warning = tls.client_checks(text)
            if warning is not None:
                log.warn("{endpoint}: {warning}", endpoint=self.description, warning=warning)  # noqa: G010
        try:
            endpoint: IStreamServerEndpoint = serverFromString(reactor, tls.twisted_description(text))
        except Exception as exc:
            told = tls.key_mismatch(exc) or tls.files_error(exc, text)
            if told is None:
                raise
            raise told from None
        if not isinstance(endpoint, SSL4ServerEndpoint):
            return endpoint
        tls.prepare(endpoint._sslContextFactory, text, client_checks)
        self.tls = tls.ReloadableContext(text, endpoint._sslContextFactory)
        plain = TCP4ServerEndpoint(reactor, endpoint._port, endpoint._backlog, endpoint._interface)
        if not proxied:  # TLS over the guard, as Twisted's ssl: endpoint, with hgwire's end of a failed handshake
            self._listen_factory = tls.LingeringTLSFactory(self.tls, False, self.factory)
            self._listen_factory.plain_http_refused = self.kind == "http"
            return plain
        guard = self.factory
        if not isinstance(guard, WrappingFactory):
            raise ValueError(f"{self.description}: TLS behind the PROXY header needs a guarded listener")
        guard.wrappedFactory = tls.LingeringTLSFactory(self.tls, False, guard.wrappedFactory)
        guard.wrappedFactory.plain_http_refused = self.kind == "http"
        return plain

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        if self._listen_factory is not None:
            port._type = "TLS"  # type: ignore[attr-defined]  # its log lines' word, as Twisted's listenSSL
        log.info("hgwire serves {kind} at {url}{bound}", kind=self.kind,
                 url=self.url("NAME") if not self.unix else f"{self.description} (its clients' URL: [http] public_url)",
                 bound="" if self.unix else _bound_text(port), endpoint=self.description)
        self.listening.callback(port)

    def _failed(self, failure: Any) -> None:
        self.error = failure.value
        log.critical("cannot listen on {endpoint}: {reason}; {advice}", endpoint=self.description,
                     reason=_reason(failure.value, self.unix), advice=_listen_advice(failure.value, self.unix))
        if not failure.check(CannotListenError, OSError, ValueError):  # the line above says all of those
            log.failure("the listener {endpoint} failed", failure, endpoint=self.description)
        self.listening.errback(failure)
        from twisted.internet import reactor

        if self.stop_reactor_on_failure:  # as git daemon: a port it cannot have stops it, exit status 1
            _exit_failed_once()
            if reactor.running:
                _stop_once(reactor)
            else:  # the listen failed at once, before the reactor runs
                reactor.callWhenRunning(_stop_once, reactor)

    def reload_tls(self) -> None:
        """Read an ``ssl:`` listener's certificate and key again (a renewal): new connections get
        them; a pair that cannot be used is logged and the one in use kept (``tls_refused`` says why
        until a reload that reads them)."""
        from twisted.internet import reactor

        if self.tls is None:
            return
        try:
            warning = self.tls.reload(reactor)
        except Exception as exc:  # noqa: BLE001 - Twisted's and OpenSSL's errors too: the old pair serves on
            self.tls_refused = _reason(exc)
            log.warn("{endpoint}: the certificate and key were not read again: {reason}; {advice}; "  # noqa: G010
                     "it goes on with the ones it had", endpoint=self.description,
                     reason=_reason(exc), advice=_listen_advice(exc))
            return
        self.tls_refused = None
        log.info("{endpoint}: certificate and key read again; new connections get them", endpoint=self.description)
        if warning is not None:
            log.warn("{endpoint}: {warning}", endpoint=self.description, warning=warning)  # noqa: G010

    @property
    def unix(self) -> bool:
        """Whether the listener is a ``unix:`` socket (a proxy's upstream: no URL of its own)."""
        return proxied_endpoint(self.description)[1].lower().startswith("unix:")

    def url(self, name: str) -> str:
        """The clone URL of repository ``name`` on this listener."""
        row = LISTENERS[self.kind]
        host, port = _host_port(self.port)
        tls = proxied_endpoint(self.description)[1].lower().startswith("ssl:")
        scheme = "https" if tls and row.scheme == "http" else row.scheme
        return f"{scheme}://{host}:{port}/{row.url_suffix.replace('NAME', strip_git_suffix(name))}"

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            stopped: defer.Deferred[None] | None = port.stopListening()
            return stopped
        return None


class _HookWait:
    """The stopping service's wait for the repository hooks still running once its connections
    are gone (a push whose client left, or was closed at the grace's end, goes on with its hooks):
    until the grace ends, then the hooks are stopped (``git_hooks.stop_running_hooks``) and waited
    for ``HOOK_STOP_WAIT`` more seconds, so that ``--shutdown-grace`` bounds the stop.  The
    process waited for such a hook before, up to its 300 s limit, saying nothing."""

    def __init__(self, clock: Any, deadline: float, grace: float) -> None:
        self.clock, self.deadline, self.grace = clock, deadline, grace
        self.told = False
        self.stopped_at: float | None = None

    def ended(self) -> bool:
        """Whether the stop need wait no longer for hooks (none runs, or the stopped ones had
        their time); logs what it waits for and what it stops."""
        from gateway.git_hooks import HOOK_STOP_WAIT, running_hooks, stop_running_hooks

        running = running_hooks()
        if not running:
            return True
        now = self.clock.seconds()
        if self.stopped_at is not None:
            if now < self.stopped_at + HOOK_STOP_WAIT + 1:
                return False
            log.warn("hgwire: {count} hooks still running after SIGKILL; exiting without them",  # noqa: G010
                     count=len(running))
            return True
        if now < self.deadline:
            if not self.told:
                self.told = True
                log.info("hgwire waits for {count} repository hooks still running, up to the {grace} s "
                         "shutdown grace: {hooks}", count=len(running), grace=self.grace,
                         hooks=", ".join(f"{what} ({ran:.0f} s)" for what, ran in running))
            return False
        self.stopped_at = now
        for what, ran in stop_running_hooks():
            log.warn("hgwire: stopping the hook {hook} (running {seconds:.0f} s) at the end of the {grace} s "  # noqa: G010
                     "shutdown grace: its push is refused if the hook had to accept it, or its work after "
                     "the push is cut; raise --shutdown-grace to let such hooks finish",
                     hook=what, seconds=ran, grace=self.grace)
        return False


EVERY_ADDRESS = ("0.0.0.0", "::", "")
"""The hosts of a listener bound to every address of its family (``interface=\\:\\:``, or none)."""


def _host_port(port: IListeningPort | None) -> tuple[str, int]:
    """The host and port of a listener's URLs: a listener on every address is named by this
    machine's host name (as ``hg serve`` does), since ``localhost`` is the one name remote
    clients cannot use."""
    if port is None:
        return ("?", 0)
    address = port.getHost()
    host = getattr(address, "host", "localhost")
    if host in EVERY_ADDRESS:
        host = socket.gethostname() or "localhost"
    return url_host(host), int(getattr(address, "port", 0))


def _bound_text(port: IListeningPort) -> str:
    """What the start line adds for a listener on every address (its URL names only one of
    them): which family's addresses, and the port; nothing for a listener on one address."""
    address = port.getHost()
    host = getattr(address, "host", None)
    if host not in EVERY_ADDRESS:
        return ""
    number = getattr(address, "port", 0)
    if host != "::":
        return f" (listening on every IPv4 address, port {number})"
    sock = getattr(port, "socket", None)
    try:
        v6only = bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)) if sock is not None else False
    except OSError:
        v6only = False
    families = "IPv6 address" if v6only else "IPv6 and IPv4 address"
    return f" (listening on every {families}, port {number})"


class HgwireService(service.MultiService):
    """The whole service: its config and its listeners."""

    def __init__(self, config: ServiceConfig, stop_reactor_on_failure: bool = False) -> None:
        """``stop_reactor_on_failure``: the service owns its process (twistd's), so a listener that
        cannot bind stops it, and its limit on open descriptors is raised at the start."""
        super().__init__()
        self.config = config
        self.stop_reactor_on_failure = stop_reactor_on_failure
        self.listeners: list[ListenerService] = []
        self.notifier: Notifier = NO_NOTIFIER
        """What tells systemd the service's state (``$NOTIFY_SOCKET``: ``make_service`` under twistd)."""
        self._status_loop: Any = None
        self._log_file: Any = None
        """twistd's ``--logfile`` once taken over (``gateway.log_file``): a SIGHUP reopens it when moved."""

    def add_listener(self, kind: str, description: str) -> ListenerService:
        from gateway.limits import guard

        factory = guard(kind, factory_maker(kind)(self.config), self.config,
                        proxy_header=proxied_endpoint(description)[0])
        self.config.guards.append(factory)
        listener = ListenerService(kind, description, factory, self.stop_reactor_on_failure)
        listener.setServiceParent(self)
        self.listeners.append(listener)
        if kind == "http":
            listener.listening.addCallback(self._http_listening, listener)
        return listener

    def _http_listening(self, port: IListeningPort, listener: ListenerService) -> IListeningPort:
        """The first HTTP listener's URL, for what is handed out over SSH without ``[http] public_url``."""
        if self.config.http_url is None and not listener.unix:
            self.config.http_url = listener.url("NAME").removesuffix("/NAME")
            address = port.getHost()
            host = getattr(address, "host", None)
            if host in EVERY_ADDRESS:
                scheme = self.config.http_url.split("://", 1)[0]
                self.config.http_every = (scheme, host, int(getattr(address, "port", 0)))
        return port

    def privilegedStartService(self) -> None:
        """The listeners listen (``ListenerService.privilegedStartService``).  One that could not
        ends the start here, with exit status 1, before twistd switches users or starts the reactor:
        a daemonized twistd (no ``-n``) then exits 1 itself instead of 0 ("An error has occurred…
        look at log file", where each listener's line says why), as ``hg serve -d`` fails when it
        cannot listen; an init system sees the failure of the command it ran."""
        super().privilegedStartService()
        failed = [l.description for l in self.listeners if l.listening.called and l.port is None]
        if failed:
            self._notify_failed()
        if failed and self.stop_reactor_on_failure:
            # an Exception, not SystemExit: twistd passes its words to the daemon's parent, which
            # waits for them (a SystemExit left it waiting forever)
            _quiet_exit_for(ListenFailed)
            raise ListenFailed(f"cannot listen on {failed[0]}")

    def startService(self) -> None:
        from twisted.internet import reactor

        from gateway.threads import start_pool

        start_pool(reactor, self.config.workers)  # type: ignore[arg-type]
        import_first_use_modules()
        if self.stop_reactor_on_failure:
            raise_descriptor_limit(reactor)
            from gateway.limits import limits_for

            listeners = len(self.config.git) + len(self.config.ssh) + len(self.config.http)
            warn_low_descriptor_limit(descriptors_needed(listeners, limits_for(self.config).max_connections))
        super().startService()
        if _exit_status_set:  # a listener could not listen: the lines above say why, and it stops
            return
        if self.stop_reactor_on_failure:
            _on_sighup(reactor, self._sighup, chain=False)  # (the --config file's reloader is called by _sighup)
            from gateway.log_file import manage_log_file

            with contextlib.suppress(ValueError):  # (not the main thread: embedded)
                self._log_file = manage_log_file(reactor, self.config.log_size, self.config.log_keep)
                if self._log_file is None and (self.config.log_keep or self.config.log_size != ServiceConfig.log_size):
                    log.warn("--log-size and --log-keep bound twistd's --logfile alone, and there is none (the log "  # noqa: G010
                             "goes to standard output or syslog): they change nothing; give twistd --logfile FILE, "
                             "or leave them out and bound the journal's size instead")
        warn_unusable_root(self.config)
        warn_unreadable_files(self.config)
        _log_serving(self.config)
        if self.config.create_on_push:
            warn_unknown_default_hash(self.config.backend)
        if self.notifier.enabled:  # READY=1 once every listener is bound and the reactor runs
            listening = self.listening()
            listening.addCallbacks(lambda _: reactor.callWhenRunning(self._ready), lambda _: self._notify_failed())

    def _notify_failed(self) -> None:
        """Tell systemd why the start fails (the first listener that could not listen, its errno)."""
        failed = next((l for l in self.listeners if l.error is not None), None)
        if failed is None or failed.error is None:
            return
        error = failed.error
        code = getattr(getattr(error, "socketError", None), "errno", None) or getattr(error, "errno", None)
        self.notifier.failed(f"cannot listen on {failed.description}: {_reason(error, failed.unix)}",
                             code if isinstance(code, int) else None)

    def _ready(self) -> None:
        """Every listener listens and the reactor runs: READY=1, then the watchdog's pings and the
        work in flight every ``STATUS_EVERY`` seconds, for ``systemctl status``."""
        from twisted.internet import reactor, task

        if not self.running or _exit_status_set:
            return
        self.notifier.ready(self.status_text())
        self.notifier.start_watchdog(reactor)
        self._status_loop = task.LoopingCall(self._tell_status)
        self._status_loop.start(STATUS_EVERY, now=False)

    def _tell_status(self) -> None:
        if self.running:
            self.notifier.status(self.status_text())

    def status_text(self) -> str:
        """What ``systemctl status`` shows of a running service: its listeners and the work in flight."""
        from gateway.metrics import in_progress_text
        from gateway.threads import hook_threads_busy, pool_load

        kinds: dict[str, int] = {}
        for guard in self.config.guards:
            kinds[guard.kind] = kinds.get(guard.kind, 0) + len(guard.protocols)
        busy, size, waiting = pool_load()
        hooks = hook_threads_busy()
        count = len(self.listeners)
        work = in_progress_text()
        text = (f"serving {count} listener{'s' if count != 1 else ''}; {work + '; ' if work else ''}"
                f"{_plural(sum(kinds.values()), 'connection')} open "
                f"({', '.join(f'{kind} {n}' for kind, n in kinds.items())}), {busy} of {size} workers busy")
        if waiting:
            text += f", {waiting} steps waiting for one"
        if hooks:
            text += f", {_plural(hooks, 'push')} in hooks"
        return "".join(f"{refusal}; " for refusal in self._refusals()) + text

    def _refusals(self) -> list[str]:
        """What the last reads of the ``--config`` file and of the ``ssl:`` files refused, first in
        ``systemctl status`` until a read that takes them: a ``READY=1`` ends any reload, refused
        or not (systemd's notification protocol has no failed reload)."""
        from gateway.policy import PolicyReloader

        reloader = next((s for s in self if isinstance(s, PolicyReloader)), None)
        refused = reloader.policy.refused if reloader is not None else None
        refusals = [f"--config refused, the last good rules in force: {refused}"] if refused else []
        refusals += [f"{l.description}: certificate and key refused, the ones in use serve on: {l.tls_refused}"
                     for l in self.listeners if l.tls_refused]
        return refusals

    def _sighup(self) -> None:
        """SIGHUP: the ``ssl:`` listeners' certificates and keys are read again, and the ``--config``
        file (by its reloader); with neither, it is logged and changes nothing.  systemd is told
        ``RELOADING=1`` first and ``READY=1`` once all is read (``Type=notify-reload``)."""
        from gateway.log_file import reopen_if_moved
        from gateway.policy import PolicyReloader

        if self._log_file is not None:  # first: the reload's own lines go to the new file
            reopen_if_moved(self._log_file)
        self.notifier.reloading("reloading: reading the --config file and the certificates again")
        listeners = [l for l in self.listeners if l.tls is not None]
        for listener in listeners:
            listener.reload_tls()
        reloader = next((s for s in self if isinstance(s, PolicyReloader)), None)
        if not listeners and reloader is None:
            log.info("SIGHUP: there is no --config file or ssl: listener to read again; hgwire goes on serving")
        read: defer.Deferred[Any] = reloader.reload() if reloader is not None else defer.succeed(None)
        read.addBoth(lambda _: self.notifier.ready(self.status_text()) if self.running else None)

    def stopService(self) -> defer.Deferred[None]:
        """Stop listening, then let the open connections finish (``shutdown_grace`` at most), as
        git daemon's and sshd's sessions outlive their listener: a clone or push in progress
        completes; connections between requests are closed once quiet for ``DRAIN_QUIET``."""
        loop, self._status_loop = self._status_loop, None
        if loop is not None and loop.running:
            loop.stop()
        still = sum(len(guard.protocols) for guard in self.config.guards)
        self.notifier.stopping("stopping: no longer listening" + (
            f"; {_plural(still, 'open connection')} get up to {self.config.shutdown_grace:g} s to finish" if still else ""))
        stopped = defer.maybeDeferred(super().stopService)
        return stopped.addCallback(lambda _: self._drain())

    def _drain(self) -> defer.Deferred[None] | None:
        from twisted.internet import reactor

        from gateway.git_hooks import running_hooks
        from gateway.limits import GuardedFactory

        factories = [l.factory for l in self.listeners if isinstance(l.factory, GuardedFactory)]
        grace = self.config.shutdown_grace
        open_now = sum(f.close_quiet(DRAIN_QUIET) for f in factories)
        if not open_now and not running_hooks():
            return None
        if open_now:
            log.info("hgwire stopped listening; {count} open connections get up to {grace} s to finish",
                     count=open_now, grace=grace)
        clock: Any = reactor
        deadline = clock.seconds() + grace
        done: defer.Deferred[None] = defer.Deferred()
        closed_at: list[float] = []
        connections_gone: list[bool] = [] if open_now else [True]
        hooks = _HookWait(clock, deadline, grace)

        def step() -> None:
            left = sum(f.close_quiet(DRAIN_QUIET) for f in factories)
            if self.notifier.enabled:
                self.notifier.status(_drain_status(left, len(running_hooks()), grace,
                                                   deadline - clock.seconds(), bool(closed_at)))
            if not left:
                if not connections_gone:
                    connections_gone.append(True)
                    log.info("hgwire: every connection finished")
                if hooks.ended():
                    done.callback(None)
                else:
                    clock.callLater(DRAIN_STEP, step)
            elif closed_at:
                # the connections closed are lost a reactor turn later: only then is a push thread
                # waiting on its client let go (and the shutdown joins those threads next)
                if clock.seconds() >= closed_at[0] + CLOSE_WAIT:
                    log.warn("hgwire: {count} connections not gone {wait} s after they were closed",  # noqa: G010
                             count=left, wait=CLOSE_WAIT)
                    done.callback(None)
                else:
                    clock.callLater(DRAIN_STEP, step)
            elif clock.seconds() >= deadline:
                log.warn("hgwire: {count} connections still open after the {grace} s shutdown grace; "  # noqa: G010
                         "closing them", count=left, grace=grace)
                for f in factories:
                    f.close_all()
                closed_at.append(clock.seconds())
                clock.callLater(DRAIN_STEP, step)
            else:
                clock.callLater(DRAIN_STEP, step)

        clock.callLater(DRAIN_STEP, step)
        return done

    def listening(self) -> defer.Deferred[list[ListenerService]]:
        """Fires once every listener is bound (ports known)."""
        d = defer.gatherResults([l.listening for l in self.listeners], consumeErrors=True)
        return d.addCallback(lambda _: self.listeners)

    def listener(self, kind: str) -> ListenerService:
        return next(l for l in self.listeners if l.kind == kind)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "es" if word.endswith("sh") else "s")


def _drain_status(connections: int, hooks: int, grace: float, left: float, cut: bool) -> str:
    """What a stopping service waits for, for ``systemctl status``."""
    from gateway.metrics import in_progress_text
    from gateway.threads import hook_threads_busy

    if connections and cut:
        return f"stopping: closing {_plural(connections, 'connection')} still open after the {grace:g} s grace"
    if connections:
        pushes = hook_threads_busy()
        work = in_progress_text()
        busy = (f" ({work})" if work else "") + (f", {_plural(pushes, 'push')} in hooks" if pushes else "")
        return (f"stopping: waiting for {_plural(connections, 'connection')} to finish{busy} "
                f"(grace {grace:g} s, {max(0, round(left))} s left)")
    if hooks:
        return (f"stopping: waiting for {_plural(hooks, 'repository hook')} still running "
                f"(grace {grace:g} s, {max(0, round(left))} s left)")
    return "stopping"


def warn_unusable_root(config: ServiceConfig) -> None:
    """Warn at the start, once twistd runs as the service's user (``-u``), of a ROOT that user
    cannot list (every client would read "not found", and nothing else said why) or cannot write
    (repositories cannot be made, nor the Git LFS token key)."""
    from backends.filesystem import FilesystemBackend
    from gateway.git_lfs import TOKEN_KEY_NAME

    root = config.root
    repositories = isinstance(config.backend, FilesystemBackend)
    if repositories:
        try:
            with os.scandir(root) as entries:
                next(entries, None)
        except OSError as exc:
            log.warn("--root {root} cannot be read by the service's user ({error}): every repository is "  # noqa: G010
                     "\"not found\" to clients; give that user read and search rights on it", root=root,
                     error=exc.strerror or str(exc))
            return
    if os.access(root, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        return
    needs = ["pushes that create repositories"] if repositories and not config.read_only else []
    if (config.ssh or config.http) and not os.path.exists(os.path.join(root, TOKEN_KEY_NAME)):
        needs.append("the Git LFS token key")
    if needs:
        from gateway.health import service_user, write_rights_advice

        log.warn("--root {root} is not writable by {user}, the service's user: {needs} need it writable; "  # noqa: G010
                 "{advice}", root=root, user=service_user(), needs=" and ".join(needs),
                 advice=write_rights_advice(root))


def unreadable_files(config: ServiceConfig) -> list[tuple[str, str]]:
    """The files hgwire reads again while it runs that its user cannot read now, each with what
    that stops: (what, consequence).  Read at the start as the user that started twistd, they
    pass; under ``--uid`` the service's user may not read them, and only a login would tell."""
    files = [(f"--htpasswd {config.htpasswd}", config.htpasswd, "nobody can log in over HTTP"),
             (f"--authorized-keys {config.authorized_keys}", config.authorized_keys, "nobody can log in over SSH"),
             (f"--config {config.config_file}", config.config_file,
              "its changes are not read (the rules read at the start stay in force)")]
    for description in config.http:
        text = proxied_endpoint(description)[1]
        if text[:4].lower() == "ssl:":
            with contextlib.suppress(Exception):  # (a description it cannot read is told at the start)
                _, key_file, cert_file = tls._files(text)
                crl = tls.own_options(text)[1].get(tls.CLIENT_CRL)
                for path in dict.fromkeys((key_file, cert_file, *tls.client_files(text))):
                    files.append((f"{path} of {description}", path,
                                  "a SIGHUP cannot read a fresh revocation list (the one in use stays)" if path == crl
                                  else "a SIGHUP cannot read a renewed certificate (the one in use serves on)"))
    effective = os.access in os.supports_effective_ids
    return [(what, consequence) for what, path, consequence in files
            if path and os.path.exists(path) and not os.access(path, os.R_OK, effective_ids=effective)]


def warn_unreadable_files(config: ServiceConfig) -> None:
    """Warn at the start, once twistd runs as the service's user, of each file it will read again
    and cannot (``unreadable_files``)."""
    for what, consequence in unreadable_files(config):
        log.warn("{what} cannot be read by the service's user: {consequence}; give that user read rights "  # noqa: G010
                 "on it (chgrp GROUP FILE; chmod 640 FILE)", what=what, consequence=consequence)


DESCRIPTOR_LIMIT = 65536
"""The soft limit on open descriptors hgwire raises its own to (or to the hard limit, if lower)."""


def raise_descriptor_limit(reactor: object, limits: Any = None) -> int | None:
    """Raise the process's soft limit on open descriptors toward its hard limit (at most
    ``DESCRIPTOR_LIMIT``), as servers that hold many connections do: every connection, pack map and
    spool file takes one, and a service manager's default soft limit is often 1,024 (systemd's),
    which a few hundred concurrent clones would exhaust (accepts and opens then fail with EMFILE).
    Not under the select() reactor, which cannot watch descriptors past 1,024.  The new limit, or
    None when it stays as it was.  ``limits``: the ``resource`` module (tests give another)."""
    if limits is None:
        try:
            import resource as limits
        except ImportError:  # not a Unix
            return None
    if type(reactor).__name__ == "SelectReactor":  # select() watches descriptors below 1,024 only
        return None
    soft, hard = limits.getrlimit(limits.RLIMIT_NOFILE)
    target = DESCRIPTOR_LIMIT if hard == limits.RLIM_INFINITY else min(hard, DESCRIPTOR_LIMIT)
    if soft == limits.RLIM_INFINITY or soft >= target:
        return None
    try:
        limits.setrlimit(limits.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warn("the limit on open descriptors stays at {soft} ({why}); raise it for the service "
                 "(ulimit -n, systemd's LimitNOFILE) if many clients connect at once", soft=soft, why=exc)
        return None
    log.info("raised the limit on open descriptors from {soft} to {limit}", soft=soft, limit=target)
    return int(target)


DESCRIPTOR_RESERVE = 256
"""Descriptors beyond one a connection: the pool's pack maps and spool files, repositories, logs."""


def descriptors_needed(listeners: int, max_connections: int) -> int:
    """What ``listeners`` listeners holding ``max_connections`` connections each need open at once."""
    return listeners * max_connections + DESCRIPTOR_RESERVE


def warn_low_descriptor_limit(needed: int, limits: Any = None) -> bool:
    """Warn when the limit on open descriptors (once raised: ``raise_descriptor_limit``) is below
    ``needed``: the hard limit is low, and a burst of clients would be refused with "too many open
    files" long before ``max_connections`` refuses them.  Whether it warned."""
    if limits is None:
        try:
            import resource as limits
        except ImportError:  # not a Unix
            return False
    soft, _hard = limits.getrlimit(limits.RLIMIT_NOFILE)
    if soft == limits.RLIM_INFINITY or soft >= needed:
        return False
    log.warn("the limit on open descriptors is {limit}, below the {needed} the listeners' max_connections "  # noqa: G010
             "may need: clients past it are refused with \"too many open files\"; raise the hard limit "
             "(LimitNOFILE=65536 of the systemd unit, ulimit -Hn) or lower [limits] max_connections",
             limit=soft, needed=needed)
    return True


def warn_unknown_default_hash(backend: object) -> bool:
    """Warn, once at start, when the object format of the git repositories a push would make
    (``--create-on-push``; ``GIT_DEFAULT_HASH`` for ``fs``) cannot be known: each such push is
    refused, as ``git init`` refuses, and the operator would otherwise hear of it from a client
    only.  Whether it warned."""
    new_format = getattr(backend, "new_git_object_format", None)  # optional: a backend may not say
    if new_format is None:
        return False
    try:
        new_format()
    except StorageError as exc:
        log.warn("{why}", why=str(exc))  # noqa: G010
        return True
    return False


def build_service(config: ServiceConfig, stop_reactor_on_failure: bool = False) -> HgwireService:
    """The service for ``config``; under twistd a listener that cannot bind stops the process."""
    svc = HgwireService(config, stop_reactor_on_failure)
    if config.lfs_token_key is None and (config.ssh or config.http):
        from gateway.git_lfs import load_token_key

        config.lfs_token_key = load_token_key(config.root, config.file_owner)
    from backends.filesystem import FilesystemBackend  # (its imports load on start: FIRST_USE_IMPORTS)

    if isinstance(config.backend, FilesystemBackend):  # aliases by symbolic links, unless rules follow names
        config.backend.names_through_links = not config.config_file
    from gateway.limits import apply_kept_budgets

    if config.config_file:
        from gateway.policy import PolicyReloader, authorizer_for

        authorizer = authorizer_for(config)
        assert authorizer.policy is not None
        PolicyReloader(authorizer.policy, in_force=lambda: apply_kept_budgets(authorizer)).setServiceParent(svc)
    # What takes effect when the policy is read, not at each request: as it loads, and as each
    # reload puts new rules in force (the reloader's ``in_force``); without a file, the defaults.
    apply_kept_budgets(config.authorizer)
    for kind in LISTENERS:
        for description in getattr(config, kind):
            svc.add_listener(kind, description)
    return svc


def _log_serving(config: ServiceConfig) -> None:
    """The start's last line: where the repositories are.  The memory backend's are in the process,
    not under ROOT (the line named a ROOT that did not exist), and it starts empty: without
    ``--create-on-push`` no git repository can be made in it, which a warning says."""
    from backends.memory import MemoryBackend  # (here: its import brings dulwich's config reader, one of
    # FIRST_USE_IMPORTS, which the start imports on purpose)

    if not isinstance(config.backend, MemoryBackend):
        log.info("hgwire serves repositories under {root} with the {backend} backend and {workers} worker threads",
                 root=config.root, backend=type(config.backend).__name__, workers=config.workers)
        return
    log.info("hgwire serves repositories kept in memory, lost when it stops, with the {backend} backend and "
             "{workers} worker threads", backend=type(config.backend).__name__, workers=config.workers)
    if not config.create_on_push:
        log.warn("the memory backend starts with no repository, and without --create-on-push no git "  # noqa: G010
                 "repository can be made in it (a push is told it is not found; hg init ssh://... makes an "
                 "hg one): add --create-on-push, or use --backend fs")


def make_service(options: Mapping[str, Any]) -> HgwireService:
    """Turn parsed twistd options into the service (called by the plugin)."""
    root = options["root"]
    config = ServiceConfig(
        backend=options.get("backend-instance") or load_backend(options["backend"], root),
        root=root,
        read_only=bool(options["read-only"]),
        create_on_push=bool(options["create-on-push"]),
        allow_push_over_http=bool(options["allow-push-over-http"]),
        host_key=list(options["host-key"]) or None,
        host_cert=list(options.get("host-cert") or []) or None,
        authorized_keys=options["authorized-keys"],
        htpasswd=options["htpasswd"],
        config_file=options["config"],
        git=list(options["git"]),
        ssh=list(options["ssh"]),
        http=list(options["http"]),
        workers=int(options["workers"]),
        shutdown_grace=float(options.get("shutdown-grace", ServiceConfig.shutdown_grace)),
        log_size=int(options.get("log-size", ServiceConfig.log_size)),
        log_keep=int(options.get("log-keep", ServiceConfig.log_keep)),
        file_owner=options.get("file-owner"),
    )
    svc = build_service(config, stop_reactor_on_failure=True)
    # read now, in the process systemd started (twistd without -n forks later), and taken out of
    # the environment: no hook or git command of ours talks to systemd
    svc.notifier = Notifier.from_environment()
    from twisted.internet import reactor

    from gateway.start_locks import release_pid_file

    # (twistd ends a stop by SIGTERM with that signal, so no atexit runs: the --pidfile's lock file goes now)
    reactor.addSystemEventTrigger("after", "shutdown", release_pid_file)
    return svc


def _reason(exc: BaseException, unix: bool = False) -> str:
    """What went wrong when listening, in a few words (a ``unix:`` socket's lock file names the
    process id, not a file: left out)."""
    if isinstance(exc, CannotListenError) and isinstance(exc.socketError, socket.gaierror):
        return f"interface={exc.interface} is not an address and cannot be resolved ({exc.socketError.strerror})"
    if isinstance(exc, CannotListenError) and isinstance(exc.socketError, OSError):
        return exc.socketError.strerror or str(exc.socketError)
    if isinstance(exc, (tls.TLSFilesError, EndpointError)):
        return exc.reason
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename and not unix else "")
    return str(exc) or type(exc).__name__


def _listen_advice(exc: BaseException, unix: bool = False) -> str:
    """What to do about it."""
    if unix and isinstance(exc, (CannotListenError, OSError)):
        return "check that the socket's directory exists and that hgwire's user may write there"
    if isinstance(exc, CannotListenError):
        code = getattr(exc.socketError, "errno", None)
        if code == errno.EACCES:
            return "a port below 1024 needs privileges: choose a higher one, or let systemd open it (systemd:...)"
        if code == errno.EADDRNOTAVAIL or isinstance(exc.socketError, socket.gaierror):
            return "check the interface= address: it must be one of this host's"
        return "stop what uses that port or choose another"
    if isinstance(exc, (tls.TLSFilesError, EndpointError)):
        return exc.advice
    if isinstance(exc, OSError):
        return "check the files the endpoint names (privateKey=, certKey=) and that hgwire's user may read them"
    return "check the endpoint description, e.g. tcp:2222:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem"


_exit_status_set: list[bool] = []


class ListenFailed(Exception):
    """A listener could not listen while the service started (its line, logged, says why)."""


def _quiet_exit_for(kind: type[BaseException]) -> None:
    """Let an uncaught ``kind`` end the process with status 1 and no traceback (the logged lines
    said why, in words; a traceback under them said nothing more); other exceptions as before."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], value: BaseException, tb: Any) -> None:
        if not issubclass(exc_type, kind):
            previous(exc_type, value, tb)

    sys.excepthook = hook


def _on_sighup(reactor: Any, handle: Callable[[], None], chain: bool) -> None:
    """Call ``handle`` on the reactor at each SIGHUP (an operator's ``kill -HUP``, a unit's
    ``ExecReload=``, a certificate renewal's hook), then, with ``chain``, the handler installed before
    (the ``--config`` file's reloader).  Without this, SIGHUP's default ended the process at once."""
    previous = signal.getsignal(signal.SIGHUP)

    def on_sighup(signum: int, frame: Any) -> None:
        reactor.callFromThread(handle)
        if chain and callable(previous):
            previous(signum, frame)

    with contextlib.suppress(ValueError):  # (not the main thread: embedded)
        signal.signal(signal.SIGHUP, on_sighup)


def _stop_once(reactor: Any) -> None:
    """Stop the reactor for a listener that failed; another failing too finds it stopping (two
    stops: a ``ReactorNotRunning`` traceback after the lines that say why)."""
    if reactor.running and not getattr(reactor, "_stopped", False):
        reactor.stop()


def _exit_failed_once() -> None:
    """Make the process end with status 1 once twistd has cleaned up (its pid file, its logs), so an
    init system sees the failure (twistd itself ends with 0 after a stop)."""
    if _exit_status_set:
        return
    _exit_status_set.append(True)

    def exit_failed() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    atexit.register(exit_failed)
