"""The SSH front door: Twisted Conch, public keys only, exec of git and hg services only.

``make_ssh_factory(config)`` builds the ``SSHFactory`` of one ``--ssh`` listener.

- Algorithms: OpenSSH's AEAD ciphers and encrypt-then-MAC MACs beside Conch's
  ctr ones, strict key exchange, nothing of CBC, 3DES, MD5 or SHA-1
  (``gateway.ssh_transport``).
- Host key: ``--host-key FILE`` (OpenSSH or PEM, ed25519 preferred, RSA and
  ECDSA accepted).  A missing file is created as a new ed25519 key with mode
  0600; without the option the key lives in ``ROOT/.ssh_host_ed25519_key``
  (a hidden name, so never servable as a repository).  ``--host-key`` may repeat,
  one key of each type (``load_host_keys``), each with the certificate beside it
  and those ``--host-cert`` names (``HostCertificateFile``) offered too.
- Users: public-key authentication against ``--authorized-keys FILE``; the
  user of a key is its ``user="NAME"`` option or its comment
  (``gateway.auth.AuthorizedKeys`` documents the format).  The SSH login name
  (``git@host``) is ignored.  No password or keyboard-interactive method is
  offered; after ``MAX_AUTH_ATTEMPTS`` failures or ``LOGIN_GRACE_SECONDS`` the
  client is disconnected.
- Channels: only ``session``, at most ``MAX_SESSIONS_PER_CONNECTION`` at once;
  no port forwarding (global requests and ``direct-tcpip`` are refused).  A
  session accepts exactly one ``exec`` (parsed by ``protocols.ssh_exec``, never
  a shell) and ``env`` for ``GIT_PROTOCOL``; a ``shell`` request (``ssh -T
  git@host``, how people test their key) is answered with a greeting that
  lists the repositories the user may read (``greeting``; also the answer to
  gitolite's ``info`` command), exit status 0, and gives no shell; ``pty-req``, ``subsystem``, agent and X11 forwarding fail.
- A parsed exec request is served by ``EXEC_SESSIONS[kind](ctx, channel)``,
  filled from ``SESSION_PROVIDERS``: ``gateway.git_session.make_git_session``
  and ``gateway.hg_session.make_hg_session`` (``kind`` is ``hg-serve`` or
  ``hg-init``), each called as ``maker(kind, ctx, channel)``.  A refused command gets one line on
  stderr and exit status 1.

Flow control: outbound, conch calls ``stopWriting``/``startWriting`` when the
client's window closes/opens and we pause/resume the registered producer; of
an OpenSSH client's window only a round trip's worth is used
(``in_flight_bound``).
Inbound, ``HgwireConnection`` stops conch from re-opening the channel's window
by itself: the window is re-opened as the session takes input, so that what is
unread (not yet taken, or under way) stays within one window (128 KiB, up to 2 MiB
for a distant client: ``inbound_window``) however long the session pauses, and other
channels, and the window adjusts the client sends us, keep flowing.  (Pausing
the whole TCP transport would also stop those window adjusts: a session that
pauses input while it writes would deadlock.)
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch import avatar as conch_avatar
from twisted.conch.error import ConchError, IgnoreAuthentication, ValidPublicKey
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import channel as conch_channel
from twisted.conch.ssh import common, connection, factory, keys, transport, userauth
from twisted.cred import credentials, portal
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from backends import names_in_folder
from backends.lru import LruCache
from backends.names import validate_name
from gateway import metrics
from gateway.auth import (
    UNKNOWN_KEY,
    Access,
    AuthorizedKeys,
    Authorizer,
    KeyRestriction,
    Refused,
    file_stamp,
    forces_hidden,
    restricted,
)
from gateway.channel import Session, SessionContext, peer_host, peer_text, url_host
from gateway.config import ServiceConfig, user_name
from gateway.errors import OUT_OF_FILES, OUT_OF_FILES_ADVICE, out_of_files, push_refusal, ssh_refusal
from gateway.limits import (
    REFUSAL_GRACE,
    ConnectionLimits,
    count_request,
    drop,
    gone_outcome,
    limits_for,
    plain_address,
    user_sessions,
)
from gateway.logs import SafeLogger, log_safe, loggable_name
from gateway.policy import authorizer_for, public_url
from gateway.ssh_transport import SHA1_USER_ALGORITHMS, AlgorithmTransport
from gateway.threads import reactor_time, run_blocking
from protocols import ssh_cert
from protocols.errors import HgwireError, HomePathRefused, RepositoryNotFound, UnsupportedFeature
from protocols.git_request import parse_git_protocol, protocol_version
from protocols.ssh_exec import (
    ExecRequest,
    RouteKind,
    UnsafeExecPath,
    check_env,
    from_home,
    info_folder,
    info_matches,
    is_info,
    parse_exec,
    parse_info,
    port_in_path_hint,
    sender,
)

log = SafeLogger()

_conch_log = Logger(observer=FilteringLogObserver(
    globalLogPublisher, [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)]))
"""The logger of Conch's code in our subclasses: its warnings and errors only.

Conch writes a dozen debug and info lines for every connection (algorithms
chosen, each auth attempt, channel open, EOF, close, connection lost).  They
buried the one line per session we write ourselves, and formatting them cost
about 8 ms of reactor time per connection.
"""


def _locale_variable(name: bytes) -> bool:
    """``LANG``, ``LANGUAGE`` or ``LC_*``: what ``SendEnv`` of a stock OpenSSH client sends."""
    return name in (b"LANG", b"LANGUAGE") or name.startswith(b"LC_")


MAX_AUTH_ATTEMPTS = 6
"""Failed authentications before disconnecting (OpenSSH MaxAuthTries)."""

LOGIN_GRACE_SECONDS = 120
"""Time allowed to authenticate, counted from the connection (OpenSSH LoginGraceTime)."""

MAX_SESSIONS_PER_CONNECTION = 10
"""Concurrent session channels on one connection (OpenSSH MaxSessions)."""

DEFAULT_HOST_KEY_NAME = ".ssh_host_ed25519_key"

IN_FLIGHT_FLOOR = 256 * 1024
"""The least output an OpenSSH client may have unread in its buffers (see ``in_flight_bound``)."""

IN_FLIGHT_RATE = 128 * 1024 * 1000
"""Bytes per second the bound keeps up with, whatever the round trip: 128 KiB per millisecond
(1 Gbit/s).  On loopback OpenSSH's own round trip (confirmation to exec) is about 1.7 ms."""


def in_flight_bound(client_version: bytes, window: int, max_packet: int, round_trip: float) -> int:
    """How much of an SSH client's channel window the server fills at once.

    OpenSSH's client takes a 2 MiB window and holds whatever its reader (git's
    ``index-pack``, hg) has not read yet in a buffer it reallocates as the data
    comes and goes.  On a fast path with a slower reader that buffer is always
    near full: a 32 MB clone cost the client about 68,000 page faults and 0.3 s
    of system CPU, on the cores the reader needs.  With at most 256 KiB in
    flight it took about 1,000 faults and 0.05 s, and the clone's wall time
    went down.

    The bound follows the path: a round trip's worth at ``IN_FLIGHT_RATE`` and at
    least ``IN_FLIGHT_FLOOR``, so a distant client still gets its whole window.
    It only applies to OpenSSH clients, whose window adjusts come as soon as they
    have used three packets of their window (``channel_check_window``, the same
    from OpenSSH 2 to 10): a client that adjusts only at half its window would
    wait for ever under a smaller bound.
    """
    if not client_version.startswith(b"SSH-2.0-OpenSSH_"):
        return window
    return min(window, max(IN_FLIGHT_FLOOR, 8 * max_packet, int(round_trip * IN_FLIGHT_RATE)))


INBOUND_WINDOW_MAX = 2 * 1024 * 1024
"""The most a client may send ahead of its session's reads: OpenSSH's own window."""

EARLY_FAILURE_CLOSE_GRACE = 0.5
"""How long the channel of a command that failed before a JSch client sent anything (a repository
not found, a refusal) stays open after its stderr, EOF and exit status, unless the client sends
its own EOF or close first (JGit does, once it has read the refusal).  JSch, the SSH library of
JGit, Gerrit's replication and many Java tools, checks that the channel is still open once its
exec request was answered, polling every 10 ms: a channel already closed by then made JGit say
"connection failed" (one time in five on loopback) instead of the refusal it had been sent.  sshd
never meets this (starting git takes it longer than that), and OpenSSH's client waits for the
close before it exits, so other clients are closed at once, as before."""

JSCH_VERSION_PREFIX = b"SSH-2.0-JSCH"
"""How JSch (``SSH-2.0-JSCH-0.1.54``) and its maintained fork (``SSH-2.0-JSCH_0.2.x``) name themselves."""


def inbound_window(window: int, round_trip: float) -> int:
    """The window a session channel gives its client: a round trip's worth, within bounds.

    Twisted's 128 KiB is plenty near by, but a client 50 ms away can then send
    at most 2.6 MB/s: a 32 MB git push took 18.5 s through a proxy that delays
    each direction by 25 ms, against 5.1 s direct.  The window only grows
    (``window`` is the least), up to ``INBOUND_WINDOW_MAX``.
    """
    return max(window, min(INBOUND_WINDOW_MAX, int(round_trip * IN_FLIGHT_RATE)))


ADJUST_AFTER_PACKETS = 3
"""Packets' worth of input taken after which the window is re-opened (OpenSSH's sshd and client
adjust after three: ``channel_check_window``)."""


def adjust_threshold(window: int, max_packet: int) -> int:
    """Bytes the session must have taken before the client's window is re-opened by what it took.

    Half the window (Conch's rule, and ours before) kept a distant client's sender
    between half and all of its window in flight, three quarters on average: a
    33 MB git push 200 ms away took 11.6-12.3 s against sshd's 8.3-9.3 s, each
    limited by its 2 MiB window.  After three packets, as OpenSSH, the window is
    kept nearly full, at the cost of a window adjust message per 96 KiB.
    """
    return min(window // 2, ADJUST_AFTER_PACKETS * max_packet)


SessionFactory = Callable[[SessionContext, "ExecChannel"], Session]

EXEC_SESSIONS: dict[str, SessionFactory] = {}
"""Route kind (``protocols.ssh_exec.RouteKind``) → the session that serves it."""

ROUTE_ACCESS: dict[RouteKind, Access] = {
    RouteKind.GIT_UPLOAD_PACK: Access.READ,
    RouteKind.GIT_UPLOAD_ARCHIVE: Access.READ,
    RouteKind.GIT_RECEIVE_PACK: Access.WRITE,
    RouteKind.HG_SERVE: Access.READ,  # hg push permission is checked per wire command
    RouteKind.HG_INIT: Access.CREATE,
    RouteKind.GIT_LFS_AUTH_DOWNLOAD: Access.READ,
    RouteKind.GIT_LFS_AUTH_UPLOAD: Access.WRITE,
    RouteKind.GIT_LFS_TRANSFER_DOWNLOAD: Access.READ,
    RouteKind.GIT_LFS_TRANSFER_UPLOAD: Access.READ,  # writes checked per request, answered in its protocol
}
"""What a route needs at the door; the authorizer decides."""

ROUTE_PROTO: dict[RouteKind, str] = {
    RouteKind.GIT_UPLOAD_PACK: "git-ssh",
    RouteKind.GIT_UPLOAD_ARCHIVE: "git-ssh",
    RouteKind.GIT_RECEIVE_PACK: "git-ssh",
    RouteKind.HG_SERVE: "hg-ssh",
    RouteKind.HG_INIT: "hg-ssh",
    RouteKind.GIT_LFS_AUTH_DOWNLOAD: "git-ssh",
    RouteKind.GIT_LFS_AUTH_UPLOAD: "git-ssh",
    RouteKind.GIT_LFS_TRANSFER_DOWNLOAD: "git-ssh",
    RouteKind.GIT_LFS_TRANSFER_UPLOAD: "git-ssh",
}

LFS_ROUTES = frozenset({RouteKind.GIT_LFS_AUTH_DOWNLOAD, RouteKind.GIT_LFS_AUTH_UPLOAD,
                        RouteKind.GIT_LFS_TRANSFER_DOWNLOAD, RouteKind.GIT_LFS_TRANSFER_UPLOAD})
"""git-lfs's routes: their sessions get the HTTP API's URL (``extra["http_url"]``)."""


def reached_http_url(config: ServiceConfig, local: Any) -> str | None:
    """The first HTTP listener's URL named by the address the SSH client reached (``local``, the
    connection's own end), when that listener is on every address: its URL otherwise names this
    host's name, which the client may not resolve.  None when it is not, or cannot take that address
    (an IPv6 one for an IPv4 listener)."""
    if config.http_every is None:
        return None
    scheme, bound, port = config.http_every
    host = str(getattr(plain_address(local), "host", ""))  # IPv4 through a dual-stack listener: as IPv4
    if not host or "%" in host or (":" in host and bound != "::"):
        return None
    return f"{scheme}://{url_host(host)}:{port}"


@dataclass(frozen=True)
class SessionProvider:
    """A module that serves some route kinds with ``maker(kind, ctx, channel) -> Session``."""

    module: str
    maker: str
    kinds: tuple[RouteKind, ...]


SESSION_PROVIDERS: tuple[SessionProvider, ...] = (
    SessionProvider("gateway.git_session", "make_git_session",
                    (RouteKind.GIT_UPLOAD_PACK, RouteKind.GIT_RECEIVE_PACK, RouteKind.GIT_UPLOAD_ARCHIVE)),
    SessionProvider("gateway.hg_session", "make_hg_session", (RouteKind.HG_SERVE, RouteKind.HG_INIT)),
    SessionProvider("gateway.git_lfs", "make_lfs_session", tuple(LFS_ROUTES)),
)
"""Where the rows of ``EXEC_SESSIONS`` come from; a provider that is not there yet is skipped."""


def register_sessions() -> None:
    """Fill ``EXEC_SESSIONS`` from every available provider (rows already present win)."""
    for provider in SESSION_PROVIDERS:
        try:
            maker = getattr(importlib.import_module(provider.module), provider.maker)
        except (ImportError, AttributeError) as exc:
            log.info("{module} is not available: {error}", module=provider.module, error=str(exc))
            continue
        for kind in provider.kinds:
            EXEC_SESSIONS.setdefault(kind, _row(maker, kind))


def _row(make: Callable[..., Session], kind: RouteKind) -> SessionFactory:
    def start(ctx: SessionContext, channel: ExecChannel) -> Session:
        return make(str(kind), ctx, channel)

    return start


# --- keys -------------------------------------------------------------------------------------

def host_key_paths(host_key: str | Sequence[str] | None, root: str) -> list[Path]:
    """The ``--host-key`` files, or the one kept in the root."""
    return [Path(p) for p in _listed(host_key)] or [Path(root, DEFAULT_HOST_KEY_NAME)]


def load_host_keys(paths: Sequence[Path], owner: tuple[int, int] | None = None) -> list[keys.Key]:
    """Every host key (one of each type; a single missing one is made, as ``load_host_key``, given
    to ``owner``); ``ConchError`` with the reason and what to do when one cannot be used."""
    host_keys: list[keys.Key] = []
    for path in paths:
        try:
            key = load_host_key(path, create=len(paths) == 1, owner=owner)
        except PermissionError as exc:
            raise ConchError(_unreadable_host_key(path, exc)) from None
        except OSError as exc:
            raise ConchError(f"host key {path} cannot be read or made ({exc.strerror or exc}); check the path") from None
        except keys.EncryptedKeyError:
            raise ConchError(f"host key {path} is encrypted with a passphrase, which hgwire cannot be given: "
                             f"remove the passphrase (ssh-keygen -p -N '' -f {path})") from None
        except (keys.BadKeyError, ValueError):  # its words may quote the file: not shown
            raise ConchError(f"{path} is not an ed25519, RSA or ECDSA private key (an OpenSSH private key file "
                             "without a passphrase)") from None
        if any(other.sshType() == key.sshType() for other in host_keys):
            raise ConchError(f"{path} is a second {key.sshType().decode()} host key: give one key of each type")
        host_keys.append(key)
    return host_keys


def host_key_fingerprint(key: keys.Key) -> str:
    """``SHA256:…`` as ``ssh-keygen -lf`` and ssh's first-connection prompt write it (no ``=``
    padding): what the operator tells users to compare."""
    return "SHA256:" + str(key.fingerprint(keys.FingerprintFormats.SHA256_BASE64)).rstrip("=")


def warn_open_host_keys(paths: Sequence[Path]) -> None:
    """Warn of a host key that other users than its owner may read or write (sshd refuses such a
    key: "UNPROTECTED PRIVATE KEY FILE"); warned, not refused, so that a service that ran with it
    keeps running, but whoever can read it can pose as this server."""
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError:  # load_host_keys has said why
            continue
        if mode & 0o077:
            log.warn("SSH host key {path} is open to other users (mode {mode:04o}): whoever reads it can pose as "  # noqa: G010
                     "this server; chmod 600 {path}", path=str(path), mode=mode & 0o7777)


def _listed(value: str | Sequence[str] | None) -> list[str]:
    """A setting given once (a path) or repeated (a list of paths)."""
    return [] if not value else [value] if isinstance(value, str) else list(value)


def _unreadable_host_key(path: Path, exc: OSError) -> str:
    """Why the host key cannot be read, and what to run: a key another user owns (one made by a
    start as root under ``twistd --uid``, before hgwire gave such keys to that user) is given to
    this process's user."""
    reason = exc.strerror or str(exc)
    try:
        owner = path.stat().st_uid
    except OSError:
        owner = os.geteuid()
    if owner != os.geteuid():
        user = user_name(os.geteuid())
        return (f"host key {path} cannot be read by {user} ({reason}): it is {user_name(owner)}'s; "
                f"give it to the service's user (chown {user} {path}), keeping it mode 600")
    return f"host key {path} cannot be read or made ({reason}); check the path and its directory's rights"


def load_host_key(path: Path, create: bool = True, owner: tuple[int, int] | None = None) -> keys.Key:
    """Read the host key, creating a new ed25519 key (mode 0600, given to ``owner``) if the file
    does not exist (and ``create``: one key of several is never made up)."""
    if not path.exists():
        if not create:
            raise ConchError(f"host key {path} does not exist: make it (ssh-keygen -t TYPE -N '' -f {path}) "
                             "or leave it out")
        _write_new_ed25519(path, owner)
        log.info("created SSH host key {path}", path=str(path))
    key: keys.Key = keys.Key.fromFile(str(path))
    if not key.isPublic() and key.type() in ("Ed25519", "RSA", "EC"):
        return key
    raise ConchError(f"{path} is not an ed25519, RSA or ECDSA private key")


HOST_CERT_SUFFIX = "-cert.pub"
"""``ssh-keygen -s CA -h KEY.pub`` writes ``KEY-cert.pub``: found beside the host key, it is offered."""

_CERT_SIGNATURES = {
    b"ssh-ed25519-cert-v01@openssh.com": b"ssh-ed25519",
    b"ecdsa-sha2-nistp256-cert-v01@openssh.com": b"ecdsa-sha2-nistp256",
    b"ecdsa-sha2-nistp384-cert-v01@openssh.com": b"ecdsa-sha2-nistp384",
    b"ecdsa-sha2-nistp521-cert-v01@openssh.com": b"ecdsa-sha2-nistp521",
    b"rsa-sha2-512-cert-v01@openssh.com": b"rsa-sha2-512",
    b"rsa-sha2-256-cert-v01@openssh.com": b"rsa-sha2-256",
    b"ssh-rsa-cert-v01@openssh.com": b"ssh-rsa",
}
"""A host certificate's algorithms, each with the signature the certified key makes for it."""


class CertifiedHostKey:
    """The host key as its certificate presents it (OpenSSH's ``PROTOCOL.certkeys``): the key
    exchange sends the certificate's blob and signs with the key, by the key's own algorithm.
    Stands in the factory's key tables beside the plain key, under the certificate's type."""

    def __init__(self, key: keys.Key, cert_blob: bytes, cert_type: bytes) -> None:
        self._key = key
        self._blob = cert_blob
        self.cert_type = cert_type

    def blob(self) -> bytes:
        return self._blob

    def public(self) -> CertifiedHostKey:
        return self

    def sign(self, data: bytes, signatureType: bytes | None = None) -> bytes:
        return self._key.sign(data, signatureType=_CERT_SIGNATURES[signatureType or self.cert_type])

    def supportedSignatureAlgorithms(self) -> list[bytes]:
        if self.cert_type == b"ssh-rsa-cert-v01@openssh.com":
            return [b"rsa-sha2-512-cert-v01@openssh.com", b"rsa-sha2-256-cert-v01@openssh.com", self.cert_type]
        return [self.cert_type]


def load_host_certificate(key_path: Path, key: keys.Key, now: float | None = None) -> CertifiedHostKey | None:
    """The host certificate beside the host key (``<key>-cert.pub``), when there is one for this
    key, a host certificate, valid now; None otherwise (what is wrong is logged; the plain key
    is offered either way)."""
    return _read_host_certificate(key_path.with_name(key_path.name + HOST_CERT_SUFFIX), key, now)[0]


def _read_host_certificate(path: Path, key: keys.Key | Sequence[keys.Key], now: float | None = None
                           ) -> tuple[CertifiedHostKey | None, tuple[int, int] | None]:
    """``load_host_certificate`` of ``path``, and the certificate's validity window when it is a
    host certificate of ``key`` (or of one of the host keys: the one it certifies), offered or
    not, as the time says."""
    host_keys = [key] if isinstance(key, keys.Key) else list(key)
    if not path.exists():
        return None, None
    try:
        fields = path.read_bytes().split()
        blob = base64.b64decode(fields[1], validate=True) if len(fields) >= 2 else b""
        cert = ssh_cert.parse(blob)
    except (OSError, ValueError, ssh_cert.CertificateError) as exc:
        log.warn("{path} is not an OpenSSH certificate ({error}); it is not offered", path=str(path),  # noqa: G010
                 error=str(exc))
        return None, None
    certified = next((k for k in host_keys if k.public().blob() == cert.key_blob), None)
    if cert.cert_type != ssh_cert.HOST_CERT or certified is None:
        why = ("it is a user certificate, not a host one (ssh-keygen -s CA -h)" if cert.cert_type != ssh_cert.HOST_CERT
               else "it certifies another key than the host key" + ("s" if len(host_keys) > 1 else ""))
        log.warn("SSH host certificate {path} is not offered: {why}", path=str(path), why=why)  # noqa: G010
        return None, None
    window = (cert.valid_after, cert.valid_before)
    if not cert.valid_at(time.time() if now is None else now):
        log.warn("SSH host certificate {path} is not offered: it is not valid now", path=str(path))  # noqa: G010
        return None, window
    cert_type = fields[0]
    if cert_type not in _CERT_SIGNATURES:
        return None, None
    log.info("offering SSH host certificate {path} (key id {key_id!r}, principals {principals})", path=str(path),
             key_id=cert.key_id, principals=",".join(cert.principals) or "any")
    return CertifiedHostKey(certified, blob, cert_type), window


HOST_CERT_CHECK_SECONDS = 10.0
"""A connection at least this long after the last look has the host certificate looked at again."""


class HostCertificateFile:
    """The host certificate (``--host-cert``, else the one beside the host key), as it is now: a renewed one (a new file) is offered
    from the next connections on, one that expires or goes is no longer offered, one that becomes
    valid is, without a restart (sshd needs a SIGHUP for it).  ``refresh`` looks (blocking: a
    ``stat``, and a read when the file changed); the factory calls it in the pool, at most every
    ``HOST_CERT_CHECK_SECONDS``, when a connection comes."""

    def __init__(self, key_path: Path, key: keys.Key | Sequence[keys.Key], cert_path: Path | None = None) -> None:
        self.path = cert_path or key_path.with_name(key_path.name + HOST_CERT_SUFFIX)
        self._key = key
        self._stamp: tuple[int, ...] | None = None
        self._window: tuple[int, int] | None = None
        self.current: CertifiedHostKey | None = None
        if cert_path is not None and not cert_path.exists():  # named on purpose: say it is not there
            log.warn("SSH host certificate {path} (--host-cert) does not exist; it is offered once it does",  # noqa: G010
                     path=str(cert_path))
        self.refresh()

    def refresh(self, now: float | None = None) -> bool:
        """Look at the file again; whether what is offered changed."""
        now = time.time() if now is None else now
        try:
            status = os.stat(self.path)
            stamp: tuple[int, ...] | None = file_stamp(status)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            window = self._window
            if window is None or (window[0] <= now < window[1]) == (self.current is not None):
                return False  # the same file, and its time says what it said
        before = self.current
        if stamp is None:
            self.current, self._window = None, None
            log.info("SSH host certificate {path} is gone; it is no longer offered", path=str(self.path))
        else:
            self.current, self._window = _read_host_certificate(self.path, self._key, now)
        self._stamp = stamp
        return self.current is not before

    def drop_if_ended(self, now: float | None = None) -> bool:
        """No longer offer a certificate whose validity has ended (nothing read: its window is
        known); whether it was dropped.  Checked as each connection comes, so that one arriving
        before the next ``refresh`` is not given a certificate already past its end."""
        now = time.time() if now is None else now
        if self.current is None or self._window is None or now < self._window[1]:
            return False
        self.current = None
        log.warn("SSH host certificate {path} is not offered: it is not valid now", path=str(self.path))  # noqa: G010
        return True


def _write_new_ed25519(path: Path, owner: tuple[int, int] | None = None) -> None:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if owner is not None:  # before the secret is in it
        os.fchown(fd, *owner)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


class KeysUnreadable(UnauthorizedLogin):
    """A key refused because the authorized keys file could not be read; ``busy``: for want of
    open files, which the client is told (a disconnect: try again later) instead of a bare
    "Permission denied"."""

    def __init__(self, message: str, busy: bool) -> None:
        super().__init__(message)
        self.busy = busy


@implementer(ICredentialsChecker)
class AuthorizedKeyChecker:
    """Accept a key listed in authorized_keys whose signature verifies; the avatar id is its user.

    A key offered without a signature is answered ``ValidPublicKey`` (the
    client then signs) only when it is listed, as sshd does.
    """

    credentialInterfaces = (ISSHPrivateKey,)

    def __init__(self, authorized: AuthorizedKeys | None) -> None:
        self._authorized = authorized

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        if self._authorized is None:
            return defer.fail(UnauthorizedLogin("no --authorized-keys file is configured"))
        address = getattr(credentials, "address", None)  # HgwireUserAuth's: for from= in authorized_keys
        d = run_blocking(self._authorized.decide, credentials.blob, address)
        d.addErrback(self._unreadable)
        return d.addCallback(self._verify, credentials)

    def _unreadable(self, failure: Failure) -> None:
        """The authorized keys file could not be read: the key is refused for that reason (the
        login line says so, not "no public key offered"), with one line for the operator instead
        of Conch's critical "Error checking auth" traceback."""
        failure.trap(OSError)
        exc = failure.value
        assert isinstance(exc, OSError) and self._authorized is not None
        busy = out_of_files(exc)
        log.warn("{path} could not be read ({error}); {advice}", path=str(self._authorized.path),  # noqa: G010
                 error=exc.strerror or str(exc),
                 advice=OUT_OF_FILES_ADVICE if busy else "nobody can log in by SSH until it can")
        raise KeysUnreadable(f"the authorized keys file could not be read: {exc.strerror or exc}", busy)

    def _verify(self, login: tuple[str, KeyRestriction | None] | Refused | None,
                credentials: Any) -> bytes | RestrictedLogin:
        """The avatar id; ``UnauthorizedLogin`` whose message is the reason (``HgwireUserAuth`` logs it)."""
        if login is None or isinstance(login, Refused):
            raise UnauthorizedLogin(UNKNOWN_KEY if login is None else login.reason)
        user, restriction = login
        if credentials.algName in SHA1_USER_ALGORITHMS or _signature_type(credentials.signature) in SHA1_USER_ALGORITHMS:
            raise UnauthorizedLogin("SHA-1 signature (ssh-rsa): sign with rsa-sha2-256 or rsa-sha2-512")
        if not credentials.signature:
            raise ValidPublicKey()
        blob = credentials.blob  # a certificate's own key signs the login
        key = keys.Key.fromString(ssh_cert.parse(blob).key_blob if ssh_cert.is_certificate(blob) else blob)
        if not key.verify(credentials.signature, credentials.sigData):
            raise UnauthorizedLogin("bad signature")
        if key.isSecurityKey() and not _user_present(credentials.signature):
            raise UnauthorizedLogin("security key signature without user presence")
        if restriction is not None:
            return RestrictedLogin(user.encode("utf-8"), restriction)
        return user.encode("utf-8")


def _signature_type(signature: bytes | None) -> bytes | None:
    """The algorithm a signature names (its first string); None without one or if unreadable."""
    try:
        return common.getNS(signature)[0] if signature else None
    except (struct.error, IndexError, ValueError):
        return None


def key_identity(blob: bytes) -> tuple[str, str]:
    """A public key's type and SHA256 fingerprint as ``ssh-keygen -l`` shows it (a certificate's:
    its own type, the fingerprint of the key it certifies)."""
    try:
        kind = common.getNS(blob)[0].decode("ascii", "replace")[:64]
    except (struct.error, IndexError, ValueError):
        kind = "unreadable"
    if ssh_cert.is_certificate(blob):
        try:
            blob = ssh_cert.parse(blob).key_blob
        except ssh_cert.CertificateError:
            pass  # the fingerprint of what was sent
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return kind, f"SHA256:{digest}"


SK_USER_PRESENT = 0x01
"""The flag of a security key's signature (OpenSSH ``PROTOCOL.u2f``) that says the key was touched."""


def _user_present(signature: bytes) -> bool:
    """Whether a security key's signature (its type, its signature, then a flags byte and a counter)
    says the key was touched, as sshd requires unless a key's line says ``no-touch-required`` (an
    option hgwire does not honour: such lines are skipped)."""
    try:
        _, _, trailing = common.getNS(signature, 2)
    except (struct.error, IndexError, ValueError):
        return False
    return bool(trailing) and bool(trailing[0] & SK_USER_PRESENT)


@dataclass(frozen=True, slots=True)
class RestrictedLogin:
    """The avatar id of a key whose authorized_keys line restricts it (``hg-ssh``)."""

    user: bytes
    restriction: KeyRestriction


# --- avatar and realm -------------------------------------------------------------------------

@dataclass
class Front:
    """What every channel of one listener needs to know."""

    config: ServiceConfig
    authorizer: Authorizer


class HgwireAvatar(conch_avatar.ConchUser):
    """A logged-in user: may open session channels, nothing else."""

    def __init__(self, user: str, front: Front) -> None:
        super().__init__()
        self.user = user
        self.front = front
        self.channelLookup[b"session"] = ExecChannel

    def gotGlobalRequest(self, requestType: bytes, data: bytes) -> int:
        return 0  # tcpip-forward and friends: refused


@implementer(portal.IRealm)
class HgwireRealm:
    def __init__(self, front: Front) -> None:
        self._front = front

    def requestAvatar(
        self, avatarId: bytes | tuple[()], mind: object, *interfaces: Any
    ) -> tuple[Any, Any, Callable[[], None]]:
        front = self._front
        if isinstance(avatarId, RestrictedLogin):  # every check of its sessions has the key's rule too
            front = replace(front, authorizer=restricted(front.authorizer, avatarId.restriction))
            avatarId = avatarId.user
        if IConchUser not in interfaces or not isinstance(avatarId, bytes):
            raise NotImplementedError("only SSH users")
        return IConchUser, HgwireAvatar(avatarId.decode("utf-8"), front), lambda: None


MAX_ALGORITHM_SHOWN = 64
"""Characters of a key algorithm name a client offered that a refusal names (OpenSSH's are under 40)."""


class HgwireUserAuth(userauth.SSHUserAuthServer):
    _log = _conch_log
    attemptsBeforeDisconnect = MAX_AUTH_ATTEMPTS - 1  # conch disconnects after attempts > this
    loginTimeout = LOGIN_GRACE_SECONDS

    _asked = False
    """Whether the client asked to log in at all (a USERAUTH_REQUEST, even of method none)."""
    _too_many = False

    def ssh_USERAUTH_REQUEST(self, packet: bytes) -> Any:
        self._asked = True
        return super().ssh_USERAUTH_REQUEST(packet)

    def _ebBadAuth(self, reason: Any) -> None:
        if reason.check(KeysUnreadable) and reason.value.busy and self.transport is not None:
            # the client is told why, as a disconnect reason ssh prints, not "Permission denied (publickey)"
            self.transport.sendDisconnect(transport.DISCONNECT_TOO_MANY_CONNECTIONS, OUT_OF_FILES.encode())
            return
        if (self.method != b"none" and not reason.check(IgnoreAuthentication)
                and self.loginAttempts + 1 > self.attemptsBeforeDisconnect):
            self._too_many = True  # Conch disconnects now
        super()._ebBadAuth(reason)

    def serviceStopped(self) -> None:
        """One log line for a connection that asked to log in and did not (``log_refusal``)."""
        super().serviceStopped()
        if self._asked and not hasattr(self.transport, "avatar"):
            self.log_refusal()

    def log_refusal(self) -> None:
        """``SSH login refused from HOST port PORT for user NAME: WHY``, WHY being ``too many
        authentication attempts; `` (when so) then each refused key, ``TYPE SHA256:... (REASON)``,
        or ``no public key offered``: the shape fail2ban matches (README "SSH")."""
        lower = getattr(self.transport, "transport", None)
        peer = lower.getPeer() if lower is not None else None
        refused = [{"type": kind, "fingerprint": fingerprint, "reason": why}
                   for (kind, fingerprint), why in self._refused.items()]
        keys_text = "; ".join(f"{k['type']} {k['fingerprint']} ({k['reason']})" for k in refused) \
            or "no public key offered"
        why = ("too many authentication attempts; " if self._too_many else "") + keys_text
        user = (self.user or b"").decode("utf-8", "replace")[:64]
        metrics.count_auth_failure("ssh")
        log.info("SSH login refused from {host} port {port} for user {user}: {why}",
                 host=str(getattr(peer, "host", "?")), port=getattr(peer, "port", 0), user=user, why=why,
                 refused=refused, too_many_attempts=self._too_many)

    def auth_publickey(self, packet: bytes) -> defer.Deferred[Any]:
        """``_publickey``, noting why a key is refused (``log_refusal``)."""
        blob = common.getNS(packet[1:], 2)[1]
        return self._publickey(packet).addErrback(self._note_refusal, blob)

    def _note_refusal(self, failure: Any, blob: bytes) -> Any:
        if failure.check(UnauthorizedLogin):
            # 400: the longest reason, a skipped authorized_keys line's, whole (they are ours, bounded)
            self._refused.setdefault(key_identity(blob), failure.getErrorMessage()[:400])
        return failure

    def _publickey(self, packet: bytes) -> defer.Deferred[Any]:
        """Conch's, and OpenSSH user certificates (``*-cert-v01@openssh.com``), which Conch's key
        parser does not read: the checker reads them (``AuthorizedKeys.user_for``)."""
        has_sig = packet[0]
        algorithm, blob, rest = common.getNS(packet[1:], 2)
        if not ssh_cert.is_certificate(blob):
            try:
                keys.Key.fromString(blob)
            except keys.BadKeyError:
                # (Conch's refusal put the client's algorithm name into its log line's format: its
                # newlines and escapes went to the log as they were, and {log_source...} was looked up)
                named = log_safe(algorithm[:MAX_ALGORITHM_SHOWN].decode("ascii", "replace"))
                return defer.fail(UnauthorizedLogin(f'unsupported key type "{named}" or bad key'))
            return super().auth_publickey(packet)
        user: bytes = self.user or b""
        if not has_sig:
            query = credentials.SSHPrivateKey(user, algorithm, blob, None, None)
            checked: defer.Deferred[Any] = self.portal.login(query, None, IConchUser)
            return checked.addErrback(self._ebCheckKey, packet[1:])
        assert self.transport is not None and self.transport.sessionID is not None
        service: bytes = self.nextService or b""
        signed = (common.NS(self.transport.sessionID) + bytes((userauth.MSG_USERAUTH_REQUEST,)) + common.NS(user)
                  + common.NS(service) + common.NS(b"publickey") + bytes((has_sig,))
                  + common.NS(algorithm) + common.NS(blob))
        signature = common.getNS(rest)[0]
        offered = credentials.SSHPrivateKey(user, algorithm, blob, signed, signature)
        logged_in: defer.Deferred[Any] = self.portal.login(offered, None, IConchUser)
        return logged_in

    def serviceStarted(self) -> None:
        self._refused: dict[tuple[str, str], str] = {}
        """(key type, SHA256 fingerprint) → why, of each key refused on this connection, in order."""
        limits = getattr(getattr(self.transport, "factory", None), "connection_limits", None)
        if limits is not None:  # [limits] max_auth_attempts of the policy file in force now
            self.attemptsBeforeDisconnect = limits().max_auth_attempts - 1
        super().serviceStarted()
        lower = getattr(self.transport, "transport", None)
        peer = lower.getPeer() if lower is not None else None
        self.portal = _AddressedPortal(self.portal, getattr(peer, "host", None))


class _AddressedPortal:
    """The listener's portal, telling each credential the client's address (``from=`` of a key)."""

    def __init__(self, wrapped: portal.Portal, address: str | None) -> None:
        self._wrapped = wrapped
        self._address = address

    def login(self, credentials: Any, mind: Any, *interfaces: Any) -> defer.Deferred[Any]:
        credentials.address = self._address
        return self._wrapped.login(credentials, mind, *interfaces)


class HgwireConnection(connection.SSHConnection):
    """Re-open an exec channel's receive window only while its session accepts input."""

    _log = _conch_log

    def ssh_CHANNEL_OPEN(self, packet: bytes) -> None:
        """A channel this connection may not open is refused with a reason and one log line (Conch
        logged each refusal as a critical failure, with its traceback)."""
        channel_type, rest = common.getNS(packet)
        refusal = self._refusal(channel_type) if len(rest) >= 12 else None
        if refusal is None:
            super().ssh_CHANNEL_OPEN(packet)
            return
        reason, description = refusal
        self.transport.sendPacket(  # type: ignore[union-attr]
            connection.MSG_CHANNEL_OPEN_FAILURE,
            struct.pack(">2L", struct.unpack(">L", rest[:4])[0], reason) + common.NS(description) + common.NS(b""))

    def _refusal(self, channel_type: bytes) -> tuple[int, bytes] | None:
        """Why a channel of ``channel_type`` is not opened (logged), or None: only sessions are served
        (not the ``direct-tcpip`` of ``ssh -L``/``-W``), at most ``MAX_SESSIONS_PER_CONNECTION`` at
        once (an OpenSSH ControlMaster then opens a connection of its own, as with sshd's MaxSessions)."""
        if channel_type != b"session":
            ssh = self.transport
            log.info("refused an SSH channel of type {channel_type} from {peer}: only sessions are served",
                     channel_type=channel_type[:40].decode("ascii", "replace"),
                     peer=ssh._peer_host() if isinstance(ssh, HgwireServerTransport) else "?")
            return (connection.OPEN_ADMINISTRATIVELY_PROHIBITED,
                    b"hgwire serves git and hg sessions only; forwarding is refused")
        open_sessions = sum(isinstance(ch, ExecChannel) for ch in self.channels.values())
        if open_sessions < MAX_SESSIONS_PER_CONNECTION:
            return None
        log.info("refused an SSH session: {sessions} are open on this connection, the most one may have "
                 "(OpenSSH then opens another connection)", sessions=open_sessions)
        return connection.OPEN_RESOURCE_SHORTAGE, b"too many sessions on this connection"

    def ssh_CHANNEL_DATA(self, packet: bytes) -> None:
        local_channel, length = struct.unpack(">2L", packet[:8])
        channel = self.channels.get(local_channel)
        if not isinstance(channel, ExecChannel):
            super().ssh_CHANNEL_DATA(packet)
            return
        if length > channel.localWindowLeft or length > channel.localMaxPacket:
            log.warn("peer overran the window of an SSH channel; closing it")
            self.sendClose(channel)
            return
        data = common.getNS(packet[4:])[0]
        channel.localWindowLeft -= length
        channel.dataReceived(data)


# --- the exec channel -------------------------------------------------------------------------

EXTENDED_DATA_STDERR = connection.EXTENDED_DATA_STDERR


@dataclass
class _Record:
    """What the one log event of a session says."""

    proto: str = "ssh"
    service: str = "-"
    repo: str = "-"
    outcome: str = "client gone"
    reason: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    started: float = field(default_factory=time.monotonic)
    round_trip_ms: float | None = None
    """The channel's round trip (open confirmation to exec) that sized its windows."""


class ExecChannel(conch_channel.SSHChannel):
    """An SSH session channel that runs one hgwire service session; also its ``Channel``."""

    name = b"session"
    _log = _conch_log
    clock: IReactorTime | None = None
    """The reactor's clock unless set (tests)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session: Session | None = None
        self._leave: Callable[[], None] | None = None
        self._exec_seen = False
        self._env: dict[str, bytes] = {}
        self._producer: IPushProducer | None = None
        self._input_paused = False
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._eof_pending = False
        self._exit_status: int | None = None
        self._done = False
        self._client_eof = False
        self._close_later: IDelayedCall | None = None
        self._record = _Record()
        self._in_progress: Callable[[], None] | None = None
        """Ends the session's count among the requests under way (``/.metrics``, systemd's status)."""
        self._peer = "?"
        self._opened_at = 0.0
        self._queue: deque[memoryview] = deque()
        """Output waiting for the peer's window, as views: waiting bytes are never copied again."""

    @property
    def _connection(self) -> connection.SSHConnection:
        assert self.conn is not None, "an open channel has a connection"
        return self.conn

    def channelOpen(self, specificData: bytes) -> None:
        address = self._connection.transport.transport.getPeer()  # type: ignore[union-attr]
        self._peer = peer_text(address)
        self._opened_at = reactor_time(self.clock).seconds()  # Conch has just sent the open confirmation

    def _fit_windows(self, round_trip: float) -> None:
        """Size both windows to the path: ``in_flight_bound`` and ``inbound_window``.

        The round trip is the channel's own, from the open confirmation to the
        exec request, which OpenSSH sends as soon as the confirmation arrives:
        measured end to end, a TCP proxy in front of the server cannot make a
        distant client look near.  Nothing has been sent yet.
        """
        self._record.round_trip_ms = round(round_trip * 1000, 1)
        version = getattr(self._connection.transport, "otherVersionString", b"")
        self.remoteWindowLeft = in_flight_bound(version, self.remoteWindowLeft, self.remoteMaxPacket, round_trip)
        self.localWindowSize = inbound_window(self.localWindowSize, round_trip)
        self._reopen_window()

    @property
    def _front(self) -> Front:
        assert isinstance(self.avatar, HgwireAvatar)
        front: Front = self.avatar.front
        return front

    @property
    def _user(self) -> str:
        assert isinstance(self.avatar, HgwireAvatar)
        user: str = self.avatar.user
        return user

    # requests

    def requestReceived(self, requestType: bytes, data: bytes) -> bool:
        handler = _CHANNEL_REQUESTS.get(requestType)
        if handler is None:
            log.debug("refused SSH channel request {request}", request=requestType[:64].decode("utf-8", "replace"))
            return False
        return handler(self, data)

    def _request_exec(self, data: bytes) -> bool:
        if self._exec_seen:
            return False
        self._exec_seen = True
        clock = reactor_time(self.clock)
        self._fit_windows(clock.seconds() - self._opened_at)
        command = common.getNS(data)[0]
        if is_info(command):  # ``ssh git@host info [PATTERN]``, as gitolite users ask
            clock.callLater(0, self._greet, command)
            return True
        clock.callLater(0, self._start, command)  # after the exec reply is sent
        return True

    def _request_shell(self, data: bytes) -> bool:
        """No shell: a greeting, as git hosting services answer ``ssh -T git@host``."""
        if self._exec_seen:
            return False
        self._exec_seen = True
        reactor_time(self.clock).callLater(0, self._greet, b"")  # after the shell reply is sent
        return True

    def _greet(self, command: bytes) -> None:
        """The greeting, for a shell request (no command) or ``info [PATTERN]``."""
        if self._done or self.localClosed:
            return
        self._record.service = "shell" if not command else "info"
        front = self._front
        try:
            pattern = parse_info(command) if command else ""
            count_request(front.config, self._user, peer_host(self._peer) or "?")
        except HgwireError as refusal:
            self.refuse(str(refusal))
            return
        d = run_blocking(greeting, front.config.backend, front.authorizer, self._user, pattern)
        d.addCallbacks(self._greeted, self._greeting_failed)

    def _greeted(self, text: bytes) -> None:
        if not self._done:
            self.write(text)
            self.finish(0)

    def _greeting_failed(self, failure: Any) -> None:
        log.failure("greeting {user} over SSH", failure, user=self._user)
        if not self._done:
            self.refuse("internal error")

    def _request_env(self, data: bytes) -> bool:
        name, rest = common.getNS(data)
        if self._exec_seen:
            return False
        try:
            key, value = check_env(name, common.getNS(rest)[0])
            parse_git_protocol(value)
        except HgwireError as refusal:
            # OpenSSH clients send the locale with every connection (Debian's ``SendEnv LANG LC_*``):
            # a line for each of those told the operator nothing
            if not _locale_variable(name):
                log.debug("refused SSH env request: {reason}", reason=str(refusal))
            return False
        self._env[key] = value
        return True

    # starting a session

    def _start(self, command: bytes) -> None:
        if self._done or self.localClosed:  # the client went away before we started
            return
        request = None
        try:
            request = parse_exec(command)
            # the name as the user wrote it: git sends ssh://host/x as '/x', and x is what git:// and HTTP quote;
            # ssh://host/~/x and host:./x are x, as from sshd, where the root stands for the account's home
            written = from_home(request.path.removeprefix("/"))
            self._route(request.kind, written)
            name = validate_name(written)
            self._record.repo = name
            factory_ = EXEC_SESSIONS.get(request.kind)
            if factory_ is None:
                raise UnsupportedFeature(f"{request.kind} is not available on this server yet")
            self._front.authorizer.check(self._user, name, self._record.proto, ROUTE_ACCESS[request.kind])
            config = self._front.config
            count_request(config, self._user, peer_host(self._peer) or "?")
            self._leave = user_sessions(config).enter(self._user, limits_for(config).max_sessions_per_user)
            self._session = factory_(self._context(request, name), self)
        except HgwireError as refusal:
            if isinstance(refusal, UnsafeExecPath):
                self._route(refusal.kind, refusal.path)
            elif request is None and (client := sender(command)) is not None:  # said as git's or hg's own
                self._record.proto = ROUTE_PROTO[client]
            said = str(refusal)
            if isinstance(refusal, RepositoryNotFound) and request is not None:
                said += port_in_path_hint(request.kind, request.path)
            elif isinstance(refusal, HomePathRefused) and request is not None:
                said = refusal.over("ssh", "ssh://HOST/team/project" if ROUTE_PROTO[request.kind] == "hg-ssh"
                                    else "ssh://HOST/team/project.git")
            self.refuse(said, as_client=True)
            return
        except Exception:
            log.failure("starting an SSH session for {command}", command=command[:200].decode("utf-8", "replace"))
            self.refuse("internal error", as_client=True)
            return
        self._deliver()

    def _route(self, kind: RouteKind, name: str) -> None:
        """What the session runs and on which name, for its log line (a refused name too: an
        operator sees a ``..`` attempt) and for the words of a refusal."""
        self._record.service = str(kind)
        self._record.proto = ROUTE_PROTO[kind]
        if self._in_progress is not None:
            self._in_progress()
        self._in_progress = metrics.started("ssh", str(kind))
        self._record.repo = loggable_name(name) or "-"

    def _context(self, request: ExecRequest, name: str) -> SessionContext:
        config = self._front.config
        raw_protocol = self._env.get("GIT_PROTOCOL", b"")
        extra = {"git_protocol": raw_protocol.decode("ascii", "replace")} if raw_protocol else {}
        if request.hidden or (request.kind is RouteKind.HG_SERVE and forces_hidden(self._front.authorizer)):
            extra["hidden"] = "1"  # (hg pull --remote-hidden, or a key forced to hg serve --stdio --hidden)
        if hint := port_in_path_hint(request.kind, request.path):
            extra["not_found_hint"] = hint
        if request.kind in LFS_ROUTES:  # (the HTTP API: where git-lfs-authenticate sends it, a refusal points)
            local = self._connection.transport.transport.getHost()  # type: ignore[union-attr]
            extra["http_url"] = (public_url(self._front.authorizer) or reached_http_url(config, local)
                                 or config.http_url or "")
        if request.kind in (RouteKind.GIT_LFS_AUTH_DOWNLOAD, RouteKind.GIT_LFS_AUTH_UPLOAD):
            extra["lfs_token_key"] = (config.lfs_token_key or b"").hex()
        return SessionContext(
            backend=config.backend,
            repo_name=name,
            transport=self._record.proto,
            peer=self._peer,
            user=self._user,
            read_only=config.read_only,
            create_on_push=config.create_on_push,
            protocol_version=protocol_version(parse_git_protocol(raw_protocol)),
            extra=extra,
            authorizer=self._front.authorizer,
        )

    def refuse(self, message: str, as_client: bool = False) -> None:
        """One line on stderr, exit status 1: how a refused command ends; ``as_client``, a git or hg
        command refused before it started, with its client's own words (``gateway.errors.ssh_refusal``):
        git's ``fatal:`` and hg's ``abort:``, as every other refusal of theirs reads."""
        # the reason in the line itself, as git:// ("error: …") and HTTP ("refused 403: …") log it
        self._record.outcome, self._record.reason = f"refused: {message}", message
        line, status = ssh_refusal(self._record.proto if as_client else "ssh", message)
        self.write_stderr(line)
        self.finish(status)

    # input, with backpressure

    def dataReceived(self, data: bytes) -> None:
        if self._done:
            return
        self._record.bytes_in += len(data)
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._deliver()

    def eofReceived(self) -> None:
        self._client_eof = True
        if self._close_later is not None:  # a failed command's channel, held open for the client
            self._close_now()
            return
        self._eof_pending = True
        self._deliver()

    def _deliver(self) -> None:
        """Hand pending input to the session while it accepts some; then re-open the window.

        A session that fails on its input (a bug, a resource gone) ends the channel with an
        internal error said on stderr and logged, instead of leaving the client waiting."""
        session = self._session
        try:
            while session is not None and not self._input_paused and not self._done and self._pending:
                # what came while the session was busy goes as one chunk: a step per SSH packet
                # (32 KiB) was a push's scan's pace
                data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                session.data_received(data)
            if session is not None and self._eof_pending and not self._pending and not self._input_paused:
                self._eof_pending = False
                session.eof_received()
        except Exception:  # noqa: BLE001 -- any failure ends this channel, never the others
            log.failure("SSH session {service} for {user} failed on its input", service=self._record.service,
                        user=self._user)
            if not self._done:
                self.refuse("internal error")
            return
        if session is not None:
            self._reopen_window()

    def _reopen_window(self) -> None:
        """Let the client send what keeps the unread input (still to hand to the session, or under
        way) within one window: as the session takes input, even while it then works on what it
        took, not only once it took all (the client then waited a round trip each window, and the
        session for it: a push's scan idled)."""
        credit = self.localWindowSize - self.localWindowLeft - self._pending_bytes
        if not self.localClosed and credit >= adjust_threshold(self.localWindowSize, self.localMaxPacket):
            self._connection.adjustWindow(self, credit)

    def pause_input(self) -> None:
        self._input_paused = True

    def resume_input(self) -> None:
        if self._input_paused:
            self._input_paused = False
            self._deliver()

    # output, with backpressure

    def write_stderr(self, data: bytes) -> None:
        if not self._done and data:
            self.writeExtended(EXTENDED_DATA_STDERR, data)

    def write(self, data: bytes) -> None:
        """Send what the peer's window allows; queue the rest and pause the producer.

        Twisted's channel keeps the unsent rest as one ``bytes`` and re-slices it on
        every window adjustment; OpenSSH adjusts once per packet read, so a 256 KiB
        write cost a quadratic amount of copying (1.3 s of CPU on a 44 MB clone).
        """
        if self._done or not data:
            return
        self._record.bytes_out += len(data)
        if self._queue or len(data) > self.remoteWindowLeft:
            self._queue.append(memoryview(data))
            self._drain()
        else:
            super().write(data)

    def _drain(self) -> None:
        while self._queue and self.remoteWindowLeft > 0 and not self.localClosed:
            head = self._queue[0]
            size = min(len(head), self.remoteWindowLeft)
            if size == len(head):
                self._queue.popleft()
            else:
                self._queue[0] = head[size:]
            super().write(head[:size].tobytes())  # fits the window: sent at once
        if self._queue and self.areWriting:
            self.areWriting = False
            self.stopWriting()

    def addWindowBytes(self, data: int) -> None:
        """``SSHChannel.addWindowBytes``, with the queue drained before the producer may resume."""
        self.remoteWindowLeft += data
        self._drain()
        if not self._queue and not self.areWriting and not self.closing:
            self.areWriting = True
            self.startWriting()
        if self.buf:
            pending, self.buf = self.buf, b""
            super().write(pending)
        if self.extBuf:
            pending_ext, self.extBuf = self.extBuf, []
            for data_type, chunk in pending_ext:
                self.writeExtended(data_type, chunk)
        self._maybe_exit()

    def loseConnection(self) -> None:
        self.closing = 1
        if not self._queue and not self.buf and not self.extBuf:
            self._connection.sendClose(self)

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        if not streaming:
            raise ValueError("SSH channels take push producers only")
        self._producer = producer
        if not self.areWriting:
            producer.pauseProducing()

    def unregisterProducer(self) -> None:
        self._producer = None

    def stopWriting(self) -> None:
        if self._producer is not None:
            self._producer.pauseProducing()

    def startWriting(self) -> None:
        if self._producer is not None:
            self._producer.resumeProducing()

    # the end

    def finish(self, exit_status: int) -> None:
        """Send exit-status once everything written has left, then close the channel."""
        if self._exit_status is not None or self._done:
            return
        self._exit_status = exit_status
        if self._record.outcome == "client gone":
            said = getattr(self._session, "outcome", None)  # a refused push, a failed command: and why
            if isinstance(said, str) and said.startswith(("refused", "error")):
                self._record.outcome = said[:400]
            else:
                self._record.outcome = "ok" if exit_status == 0 else f"exit {exit_status}"
        self._maybe_exit()

    def _maybe_exit(self) -> None:
        if self._exit_status is None or self._done or self._queue or self.buf or self.extBuf:
            return
        self._done = True
        self._end_count()  # before the client can hear of the end and start its next operation
        self._connection.sendEOF(self)
        self._connection.sendRequest(self, b"exit-status", struct.pack(">L", self._exit_status))
        if self._exit_status != 0 and self._record.bytes_in == 0 and not self._client_eof and self._jsch_client():
            # failed before its client said anything: JSch may not have seen its exec answered yet
            # (``EARLY_FAILURE_CLOSE_GRACE``); its EOF or close ends the wait
            clock = reactor_time(self.clock)
            self._close_later = clock.callLater(EARLY_FAILURE_CLOSE_GRACE, self._close_now)
            return
        self.loseConnection()

    def _jsch_client(self) -> bool:
        version = getattr(self._connection.transport, "otherVersionString", b"") or b""
        return version.upper().startswith(JSCH_VERSION_PREFIX)

    def _close_now(self) -> None:
        later, self._close_later = self._close_later, None
        if later is not None and later.active():
            later.cancel()
        if not self.localClosed:
            self.loseConnection()

    def closed(self) -> None:
        later, self._close_later = self._close_later, None
        if later is not None and later.active():
            later.cancel()
        producer, self._producer = self._producer, None
        self._queue.clear()
        if producer is not None:
            producer.stopProducing()
        session, self._session = self._session, None
        self._done = True
        self._end_count()
        if session is not None:
            try:
                session.connection_lost()
            except Exception:
                log.failure("closing an SSH session")
        self._log_session()

    def _end_count(self) -> None:
        """The session no longer counts among its user's operations (``max_sessions_per_user``)."""
        leave, self._leave = self._leave, None
        if leave is not None:
            leave()

    def _log_session(self) -> None:
        record = self._record
        record.outcome = gone_outcome(record.outcome, getattr(self.conn, "transport", None))
        log.info(
            "{proto} {service} {repo} user={user} peer={peer}: {outcome} in {elapsed_ms} ms",
            proto=record.proto,
            service=record.service,
            repo=record.repo,
            user=self._user,
            peer=self._peer,
            outcome=record.outcome,
            reason=record.reason,
            bytes_in=record.bytes_in,
            bytes_out=record.bytes_out,
            round_trip_ms=record.round_trip_ms,
            elapsed_ms=int((time.monotonic() - record.started) * 1000),
        )
        metrics.count_request("ssh", record.service if record.service != "-" else "none", record.outcome)
        if self._in_progress is not None:
            self._in_progress()


_CHANNEL_REQUESTS: dict[bytes, Callable[[ExecChannel, bytes], bool]] = {
    b"exec": ExecChannel._request_exec,
    b"env": ExecChannel._request_env,
    b"shell": ExecChannel._request_shell,
}
"""Every channel request a session accepts; pty-req, subsystem, x11-req and
auth-agent-req@openssh.com are absent, so they fail."""

MAX_GREETING_REPOSITORIES = 200
"""Repositories a greeting lists, the first in name order; it says when there are more (it stops
at the next one the user may read, so a login reads the folders that hold those, not the root)."""
MAX_GREETING_COUNTED = 1000
"""Names past those a greeting lists that it checks to count the rest (``… and 57 more``), where
the rules bound what the user may read to some folders (``Authorizer.readable_starts``); past
these, or where they do not (every name of the root would be checked), ``… and more``."""


def greeting(backend: Any, authorizer: Authorizer, user: str, pattern: str = "") -> bytes:
    """What ``ssh -T git@host`` is told (blocking: the backend lists its repositories): who the
    key logged in as, that there is no shell, and the repositories the user may read, ``W`` where
    they may push too (as gitolite's ``info``); with ``pattern`` (``info PATTERN``), those it
    matches (``info_matches``)."""
    lines = [f"hello {user}, this is hgwire: it serves git and Mercurial repositories and gives no shell."]
    readable: list[str] = []
    more = False
    counted: int | None = None  # (how many more past the next, once the rest was counted)
    starts = authorizer.readable_starts(user)  # (only the folders where the rules let the user read are listed)
    names = iter(names_in_folder(backend, info_folder(pattern), starts=starts))  # in name order, as far as needed
    for name in names:
        if not info_matches(name, pattern):
            continue
        transport = "git-ssh" if name.endswith(".git") else "hg-ssh"
        if not authorizer.allows(user, name, transport, Access.READ):
            continue
        if len(readable) >= MAX_GREETING_REPOSITORIES:
            more = True  # (counting the rest checked every repository of the root: 3.7 s for 10,000)
            if starts is not None:
                counted = _count_the_rest(authorizer, user, pattern, names)
            break
        writable = authorizer.allows(user, name, transport, Access.WRITE) and not refuses_every_push(backend, name)
        readable.append(f" R {'W' if writable else ' '}  {name}")
    if readable:
        lines += ["", "You may read (R) and push to (W):", *readable]
        if more:
            how_many = "more" if counted is None else f"{1 + counted} more"
            lines.append(f" … and {how_many} ('info PATTERN' lists those whose names hold PATTERN)")
    elif pattern:
        lines += ["", f"There is no repository you may read that matches {pattern!r}."]
    else:
        lines += ["", "There is no repository you may read yet."]
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")


def _count_the_rest(authorizer: Authorizer, user: str, pattern: str, names: Iterator[str]) -> int | None:
    """How many of ``names`` (the rest of a bounded walk) ``user`` may read and ``pattern`` lists;
    None once ``MAX_GREETING_COUNTED`` were checked and more are left."""
    found = 0
    for checked, name in enumerate(names):
        if checked >= MAX_GREETING_COUNTED:
            return None
        if info_matches(name, pattern) and authorizer.allows(
                user, name, "git-ssh" if name.endswith(".git") else "hg-ssh", Access.READ):
            found += 1
    return found


PUSH_REFUSAL_TTL = 300.0
"""Seconds a greeting remembers whether a repository's backend refuses every push to it."""
_push_refusals: LruCache[tuple[int, str], tuple[float, bool]] = LruCache(4096)
"""(the backend's id, a repository name) -> (when asked, whether ``refuses_push`` refused)."""


def refuses_every_push(backend: Any, name: str, now: Callable[[], float] = time.monotonic) -> bool:
    """Whether the backend's repository ``name`` refuses every push (its optional ``refuses_push``,
    a read-only mirror), for the greeting's ``W`` (blocking: it may open the repository).  hgwire's
    own backends never refuse and are not asked; another's repository is opened once and its answer
    kept ``PUSH_REFUSAL_TTL`` seconds, so that a greeting opens at most the repositories it lists
    (``MAX_GREETING_REPOSITORIES``) and the next logins none.  A repository that cannot be opened
    keeps its ``W`` (the push would say why)."""
    if _never_refuses(backend):
        return False
    key = (id(backend), name)
    known = _push_refusals.get(key)
    if known is not None and now() - known[0] < PUSH_REFUSAL_TTL:
        return known[1]
    try:
        repo = backend.open(name)
    except Exception:  # noqa: BLE001 - a greeting shows what it can; the push itself reports the error
        return False
    try:
        refused = push_refusal(repo, name) is not None
    except Exception:  # noqa: BLE001 - as above
        refused = False
    finally:
        close = getattr(repo, "close", None)  # optional: a backend may not have it
        if close is not None:
            close()
    _push_refusals.put(key, (now(), refused))
    return refused


def _never_refuses(backend: Any) -> bool:
    """The ``fs`` and ``memory`` backends, whose repositories have no ``refuses_push``."""
    from backends.filesystem import FilesystemBackend
    from backends.memory import MemoryBackend
    return type(backend) in (FilesystemBackend, MemoryBackend)  # (a subclass may wrap what it opens)


# --- the factory ------------------------------------------------------------------------------

ACTIVITY_MESSAGES = frozenset({*range(50, 80), *range(90, 128)})
"""The messages that keep an SSH connection from being idle (``idle_timeout``): user authentication
(RFC 4250 §4.1.2: 50-79) and channels (90-127).  Not the transport's own (ignore, debug, key
exchange) nor global requests and their replies (80-82): OpenSSH's ``ServerAliveInterval`` asks
``keepalive@openssh.com`` every so often (every 300 s in Debian's ssh under ``BatchMode``), PuTTY
sends ignore messages, and their bytes kept a clone whose output nobody read open for ever."""


class HgwireServerTransport(AlgorithmTransport):
    """Conch's server transport with OpenSSH's algorithms (``gateway.ssh_transport``) and the login grace
    time counted from the connection.

    Conch's own ``loginTimeout`` starts with the ssh-userauth service, after the
    version and key exchanges: a client that sends its version line or its key
    exchange a byte at a time is never idle long enough for ``idle_timeout`` and
    would hold its connection for ever.  As OpenSSH's LoginGraceTime, a
    connection still not logged in ``LOGIN_GRACE_SECONDS`` after it opened is closed.
    """

    _log = _conch_log
    _login_deadline: IDelayedCall | None = None
    _active: Callable[[], None] | None = None
    """Marks the connection active (``ACTIVITY_MESSAGES``) for the connection limits that wrap it."""

    host_keys: tuple[dict[bytes, Any], dict[bytes, Any]] | None = None
    """The factory's public and private key tables when this connection was made (a host
    certificate renewed meanwhile is offered from the next connection on)."""

    def _getHostKeys(self, keyAlg: bytes) -> tuple[keys.Key, keys.Key]:
        """From the tables of this connection's making; a certificate's RSA signature algorithms
        all name the one ``ssh-rsa`` certificate."""
        if keyAlg in (b"rsa-sha2-512-cert-v01@openssh.com", b"rsa-sha2-256-cert-v01@openssh.com"):
            keyAlg = b"ssh-rsa-cert-v01@openssh.com"
        if self.host_keys is None:
            return super()._getHostKeys(keyAlg)
        key_format = b"ssh-rsa" if keyAlg in (b"rsa-sha2-256", b"rsa-sha2-512") else keyAlg
        public, private = self.host_keys
        return public[key_format], private[key_format]

    def connectionMade(self) -> None:
        claim = getattr(self.transport, "own_activity", None)  # gateway.limits: keepalives are not activity
        self._active = claim() if callable(claim) else None
        super().connectionMade()
        self._login_deadline = reactor_time().callLater(LOGIN_GRACE_SECONDS, self._login_timed_out)

    def dispatchMessage(self, messageNum: int, payload: bytes) -> None:
        if messageNum in ACTIVITY_MESSAGES and self._active is not None:
            self._active()
        super().dispatchMessage(messageNum, payload)

    def sendPacket(self, messageType: int, payload: bytes) -> None:
        if messageType in ACTIVITY_MESSAGES and self._active is not None:
            self._active()
        super().sendPacket(messageType, payload)

    def receiveError(self, reasonCode: int, description: bytes) -> None:
        """The client said why it disconnects: quiet when it simply hung up."""
        if reasonCode != transport.DISCONNECT_BY_APPLICATION:
            log.info("SSH client {peer} disconnected: {reason} (code {code})", peer=self._peer_host(),
                     reason=description[:200].decode("utf-8", "replace"), code=reasonCode)

    def goodbye(self, description: str) -> None:
        """Say why the connection ends (``gateway.limits``: idle, open too long) in a disconnect
        message, which OpenSSH prints ("Received disconnect from HOST port PORT:11: ...") before it
        exits, then close once it is written: a connection only dropped left ``ssh`` waiting until it
        next wrote ("client_loop: send disconnect: Broken pipe")."""
        self.sendDisconnect(transport.DISCONNECT_BY_APPLICATION, description.encode("utf-8"))

    def between_requests(self) -> bool:
        """Logged in with no channel open (``gateway.limits``: closed so while the service stops)."""
        return hasattr(self, "avatar") and not getattr(self.service, "channels", None)

    def setService(self, service: Any) -> None:
        super().setService(service)
        if hasattr(self, "avatar"):  # logged in (conch serves ssh-connection only then)
            self._cancel_login_deadline()

    def connectionLost(self, reason: Any = None) -> None:
        self._cancel_login_deadline()
        super().connectionLost(reason)

    def _cancel_login_deadline(self) -> None:
        if self._login_deadline is not None and self._login_deadline.active():
            self._login_deadline.cancel()
        self._login_deadline = None

    def _login_timed_out(self) -> None:
        """Say why in a disconnect message, then close once it is written, as sshd closes (it was
        reset: "Connection reset by …"); dropped after ``REFUSAL_GRACE`` if the client does not read
        (``connectionLost`` cancels that as it cancels the grace time)."""
        self._login_deadline = None
        if self.transport is None:
            return
        log.info("SSH connection from {peer} not logged in after {seconds} s: closed",
                 peer=self._peer_host(), seconds=LOGIN_GRACE_SECONDS)
        self.goodbye(f"not logged in within {LOGIN_GRACE_SECONDS:g} s (the server's login grace time); connect again")
        self._login_deadline = reactor_time().callLater(REFUSAL_GRACE, drop, self.transport)


class HgwireSSHFactory(factory.SSHFactory):
    protocol = HgwireServerTransport
    _log = _conch_log
    services = {b"ssh-userauth": HgwireUserAuth, b"ssh-connection": HgwireConnection}

    connection_limits: Callable[[], ConnectionLimits] | None = None

    def __init__(self, host_key: keys.Key | Sequence[keys.Key], checker: AuthorizedKeyChecker, front: Front,
                 certificate: CertifiedHostKey | HostCertificateFile | Sequence[HostCertificateFile] | None = None
                 ) -> None:
        self._host_keys = [host_key] if isinstance(host_key, keys.Key) else list(host_key)
        if isinstance(certificate, HostCertificateFile):
            certificate = [certificate]
        self._certificate_files = list(certificate) if isinstance(certificate, Sequence) else []
        self._fixed = certificate if isinstance(certificate, CertifiedHostKey) else None
        self._looked_at = reactor_time().seconds()
        self._looking = False
        self._offer()
        self.portal = portal.Portal(HgwireRealm(front), [checker])

    def _offer(self) -> None:
        """New key tables (never changed in place: a connection keeps the ones it was built with)."""
        private: dict[bytes, Any] = {key.sshType(): key for key in self._host_keys}
        public: dict[bytes, Any] = {key.sshType(): key.public() for key in self._host_keys}
        certificates = [self._fixed, *(file.current for file in self._certificate_files)]
        for certificate in certificates:
            if certificate is not None:
                private[certificate.cert_type] = public[certificate.cert_type] = certificate
        self.privateKeys, self.publicKeys = private, public

    def buildProtocol(self, addr: Any) -> Any:
        dropped = [file.drop_if_ended() for file in self._certificate_files]  # every file looked at
        if any(dropped):
            self._offer()
        self._look_at_certificate()
        t = super().buildProtocol(addr)
        if isinstance(t, HgwireServerTransport):
            t.host_keys = (self.publicKeys, self.privateKeys)
            # Conch offers an RSA host key (and certificate) with SHA-1 signatures too: not sshd (8.8+)
            t.supportedPublicKeys = [name for name in t.supportedPublicKeys if name not in SHA1_USER_ALGORITHMS]
        return t

    def _look_at_certificate(self) -> None:
        """The host certificate looked at again in the pool, when it is time: what it finds is
        offered from the next connection on."""
        files = self._certificate_files
        now = reactor_time().seconds()
        if not files or self._looking or now - self._looked_at < HOST_CERT_CHECK_SECONDS:
            return
        self._looking, self._looked_at = True, now

        def refresh() -> bool:
            changed = [file.refresh() for file in files]  # every file looked at
            return any(changed)

        def looked(changed: bool) -> None:
            if changed:
                self._offer()

        def done(result: object) -> object:
            self._looking = False
            return result

        d = run_blocking(refresh)
        d.addCallback(looked)
        d.addBoth(done)
        d.addErrback(lambda failure: log.failure("looking at the SSH host certificates", failure))

    def getPrimes(self) -> None:
        return None  # group-exchange off; curve25519 and the fixed DH groups remain


def _warn_keys_unreadable(path: str) -> None:
    """Say at the start that the ``--authorized-keys`` file cannot be read (a directory, no read
    right), as ``--htpasswd``'s is said: each login said so, the start nothing."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        log.warn("--authorized-keys {path} could not be read ({reason}); nobody can log in over SSH "  # noqa: G010
                 "until it can: give the service's user a file it may read", path=path,
                 reason=exc.strerror or str(exc))


def make_ssh_factory(config: ServiceConfig) -> HgwireSSHFactory:
    """The protocol factory of one ``--ssh`` listener."""
    register_sessions()
    key_paths = host_key_paths(config.host_key, config.root)
    host_keys = load_host_keys(key_paths, config.file_owner)
    warn_open_host_keys(key_paths)
    for path, key in zip(key_paths, host_keys, strict=True):
        log.info("SSH host key {path}: {fingerprint} ({type}), the fingerprint ssh shows at a client's first "
                 "connection", path=str(path), type=key.sshType().decode(), fingerprint=host_key_fingerprint(key))
    if config.authorized_keys is None:
        log.warn("no --authorized-keys file: nobody can log in over SSH")
    elif not os.path.exists(config.authorized_keys):
        log.warn("--authorized-keys {path} does not exist (yet): nobody can log in over SSH until it does",  # noqa: G010
                 path=config.authorized_keys)
    else:
        _warn_keys_unreadable(config.authorized_keys)
    authorized = AuthorizedKeys(Path(config.authorized_keys)) if config.authorized_keys else None
    front = Front(config, authorizer_for(config))
    certificates = [HostCertificateFile(path, host_keys) for path in key_paths]
    certificates += [HostCertificateFile(key_paths[0], host_keys, Path(cert)) for cert in _listed(config.host_cert)]
    ssh_factory = HgwireSSHFactory(host_keys, AuthorizedKeyChecker(authorized), front, certificates)
    ssh_factory.connection_limits = lambda: limits_for(config)
    return ssh_factory

