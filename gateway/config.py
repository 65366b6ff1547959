"""What the service was asked to do, as one value every listener reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backends.interfaces import Backend

if TYPE_CHECKING:
    from gateway.auth import Authorizer


@dataclass
class ServiceConfig:
    """The options of ``twistd hgwire`` after parsing, plus the loaded backend."""

    backend: Backend
    root: str
    read_only: bool = False
    create_on_push: bool = False
    allow_push_over_http: bool = False
    host_key: str | list[str] | None = None
    """``--host-key``, maybe repeated (one key of each type); None: ``ROOT/.ssh_host_ed25519_key``."""
    host_cert: str | list[str] | None = None
    """``--host-cert``, maybe repeated: host certificates of the keys, besides each key's own
    ``<host key>-cert.pub`` when it exists."""
    authorized_keys: str | None = None
    htpasswd: str | None = None
    config_file: str | None = None
    git: list[str] = field(default_factory=list)
    ssh: list[str] = field(default_factory=list)
    http: list[str] = field(default_factory=list)
    workers: int = 8
    """Threads of the worker pool: backend calls (disk, CPU) of this many requests run at once."""
    shutdown_grace: float = 30.0
    """Seconds the open connections get to finish once the service is told to stop."""
    log_size: int = 1_000_000
    """Bytes at which twistd's ``--logfile`` is rotated (twistd's own size); 0: never by size."""
    log_keep: int = 0
    """Rotated ``--logfile`` files kept (FILE.1 … FILE.N); 0: every one, as twistd keeps them."""
    user_sessions: Any = None
    """The service's ``gateway.limits.UserSessions`` (every listener's), made on first use."""
    request_rates: Any = None
    """The service's ``gateway.limits.RequestRates`` (every listener's), made on first use."""
    guards: list[Any] = field(default_factory=list)
    """The listeners' connection guards (``gateway.limits.GuardedFactory``), which ``/.health``
    counts open connections from (``gateway.service``)."""
    http_url: str | None = None
    """The first HTTP listener's URL (``scheme://host:port``) once it listens (``gateway.service``)."""
    http_every: tuple[str, str, int] | None = None
    """The first HTTP listener's scheme, bound host (``0.0.0.0``, ``::``) and port when it listens on
    every address: ``http_url`` then names this host's name, and an SSH session names the address
    its client reached instead (``gateway.ssh``)."""
    authorizer: Authorizer | None = None
    """Built once from the flags and ``config_file`` by ``gateway.policy.authorizer_for``."""
    lfs_token_key: bytes | None = None
    """Signs the Git LFS tokens ``git-lfs-authenticate`` hands out over SSH for the HTTP API:
    ``ROOT/.lfs_token_key``, read (made when missing) by ``gateway.service.build_service``."""
    file_owner: tuple[int, int] | None = None
    """The uid and gid twistd switches to after the privileged start (``twistd --uid U --gid G``
    started as root): the files hgwire makes before then (ROOT, the host key, the LFS token key)
    are given to them, so that a later start as that user reads them; None: left as made."""


def user_name(uid: int) -> str:
    """The name of user ``uid`` (its number when it has none), for what to run (``chown NAME FILE``)."""
    try:
        import pwd
    except ImportError:  # not a Unix
        return str(uid)
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
