"""What a git client asks for before the service starts: service, repository, protocol version.

git:// (gitprotocol-pack(5) "Git Transport"): the first pkt-line is
``git-upload-pack /r.git\\0host=h:port\\0\\0version=2\\0`` — the host parameter,
then, after an extra NUL, "extra parameters".  SSH carries the extra parameters
in ``GIT_PROTOCOL`` and HTTP in ``Git-Protocol`` as ``version=2:other=x``
(gitprotocol-v2(5) "Initial Client Request").
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from protocols.errors import (
    NAMES_ARE_UTF8,
    HomePathRefused,
    ProtocolError,
    UnsafeName,
    UnsupportedFeature,
    home_path_user,
)

MAX_PATH = 4096
MAX_EXTRA_PARAMETERS = 32
KNOWN_VERSIONS = frozenset({0, 1, 2})


class Service(enum.Enum):
    """The git services a client can name; the value is the wire name."""

    UPLOAD_PACK = "git-upload-pack"
    RECEIVE_PACK = "git-receive-pack"
    UPLOAD_ARCHIVE = "git-upload-archive"


SERVICES = {s.value.encode("ascii"): s for s in Service}


@dataclass(frozen=True, slots=True)
class DaemonRequest:
    """A parsed git:// request line; ``repo_name`` has its leading ``/`` removed."""

    service: Service
    repo_name: str
    host: str | None
    extra: tuple[bytes, ...]

    @property
    def protocol_version(self) -> int:
        return protocol_version(self.extra)


HTTP_REQUEST_STARTS = frozenset(
    {b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC"})
"""The first four bytes of an HTTP/1 request line (RFC 9110 §9 methods): a browser, curl or an http://
URL sent to the git:// port, whose first bytes are no pkt-line length."""

SPEAKS_GIT_PROTOCOL = ("this port speaks the git:// protocol, not HTTP; use a git:// URL here, "
                       "or the server's HTTP listener for an http:// URL")
"""What an HTTP request sent to a git:// port is told."""


def is_http_request(first: bytes) -> bool:
    """Whether a git:// connection's first four bytes are an HTTP request line's (which the
    pkt-line decoder would call a bad length): the port answers it in HTTP, saying where HTTP is."""
    return first[:4] in HTTP_REQUEST_STARTS


SPEAKS_HTTP = ("this port speaks HTTP, not the git:// protocol; use an http:// URL here, "
               "or the server's git:// listener for a git:// URL")
"""What a git:// request sent to an HTTP port is told."""

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def is_daemon_request(first: bytes) -> bool:
    """Whether an HTTP connection's first bytes are a git:// request (a pkt-line length, then the
    service's name, ``0033git-upload-pack /r.git\\0host=…``): a git:// URL pointed at the HTTP
    port, which no HTTP request line begins like and which an HTTP server would wait on for its
    end of line."""
    return len(first) >= 8 and all(byte in _HEX_DIGITS for byte in first[:4]) and first[4:8] == b"git-"


def may_become_daemon_request(first: bytes) -> bool:
    """Whether ``first``, shorter than ``is_daemon_request`` needs, may still begin a git://
    request: git writes a pkt-line's four-byte length and its payload in two writes, which can
    arrive apart (the length alone).  At most eight bytes are so held back."""
    return len(first) < 8 and all(byte in _HEX_DIGITS for byte in first[:4]) and b"git-".startswith(first[4:8])


def parse_service(name: bytes) -> Service:
    """Map a wire service name to a Service; anything else is unsupported."""
    try:
        return SERVICES[name]
    except KeyError:
        shown = name[:64].decode("ascii", "replace")
        raise UnsupportedFeature(f"service '{shown}' is not supported") from None


def parse_daemon_request(payload: bytes) -> DaemonRequest:
    """Parse the first pkt-line payload of a git:// connection."""
    if len(payload) > MAX_PATH + 1024:
        raise ProtocolError("git:// request line too long")
    if b"\0" not in payload:
        payload = payload.removesuffix(b"\n")
    head, _, rest = payload.partition(b"\0")
    service_name, sep, path = head.partition(b" ")
    if not sep:
        raise ProtocolError("git:// request line must be '<service> <path>'")
    service = parse_service(service_name)
    host, extra = _parse_parameters(rest)
    return DaemonRequest(service, decode_repo_path(path), host, extra)


def decode_repo_path(path: bytes) -> str:
    """Decode an absolute request path to a repository name (strict UTF-8, no leading '/').

    git sends ``git://host/~alice/r.git`` as ``~alice/r.git`` (its connect.c drops the ``/``
    before a ``~``) for git daemon's ``--user-path``, the users' home directories: a root of its
    own, which this server does not have, so that path is refused as such, not as a relative one."""
    if len(path) > MAX_PATH:
        raise UnsafeName(f"repository paths are at most {MAX_PATH} bytes long")
    if path.startswith(b"~"):
        raise HomePathRefused(home_path_user(path.decode("utf-8", "replace")))
    if not path.startswith(b"/"):
        raise UnsafeName("repository paths must be absolute, e.g. /team/project.git")
    try:
        return path[1:].decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeName(NAMES_ARE_UTF8) from None


def _parse_parameters(rest: bytes) -> tuple[str | None, tuple[bytes, ...]]:
    fields = rest.split(b"\0")
    host: str | None = None
    if fields and fields[0].startswith(b"host="):
        host = fields.pop(0)[len(b"host=") :].decode("utf-8", "replace")
    if fields and fields[0] == b"":
        fields.pop(0)
    extra = tuple(f for f in fields if f)
    if len(extra) > MAX_EXTRA_PARAMETERS:
        raise ProtocolError(f"more than {MAX_EXTRA_PARAMETERS} extra parameters")
    return host, extra


def parse_git_protocol(value: bytes) -> tuple[bytes, ...]:
    """Split a ``GIT_PROTOCOL`` env value or ``Git-Protocol`` header into parameters."""
    params = tuple(p for p in value.split(b":") if p)
    if len(params) > MAX_EXTRA_PARAMETERS:
        raise ProtocolError(f"more than {MAX_EXTRA_PARAMETERS} protocol parameters")
    return params


def protocol_version(params: Iterable[bytes]) -> int:
    """The highest known ``version=N`` among the parameters; 0 when none is given.

    Unknown versions and malformed values are ignored, as git's
    ``determine_protocol_version_server`` ignores them.
    """
    versions = [0]
    for param in params:
        name, sep, value = param.partition(b"=")
        # Bound the digits first: int() refuses (ValueError) strings over 4300 digits.
        if name != b"version" or not sep or not value.isdigit() or len(value) > 10:
            continue
        if int(value) in KNOWN_VERSIONS:
            versions.append(int(value))
    return max(versions)
