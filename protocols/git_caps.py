"""Every git capability name hgwire speaks, once; parse and format capability lists.

gitprotocol-capabilities(5).  In protocol v0/v1 the server lists its
capabilities after a NUL on the first advertised ref, and the client picks its
own on its first ``want`` (upload-pack) or command (receive-pack) line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from backends.interfaces import OBJECT_FORMATS, ObjectFormat
from protocols.errors import ProtocolError

MULTI_ACK = b"multi_ack"
MULTI_ACK_DETAILED = b"multi_ack_detailed"
NO_DONE = b"no-done"
THIN_PACK = b"thin-pack"
SIDE_BAND = b"side-band"
SIDE_BAND_64K = b"side-band-64k"
OFS_DELTA = b"ofs-delta"
AGENT = b"agent"
OBJECT_FORMAT = b"object-format"
SYMREF = b"symref"
SHALLOW = b"shallow"
DEEPEN_SINCE = b"deepen-since"
DEEPEN_NOT = b"deepen-not"
DEEPEN_RELATIVE = b"deepen-relative"
NO_PROGRESS = b"no-progress"
INCLUDE_TAG = b"include-tag"
ALLOW_TIP_SHA1_IN_WANT = b"allow-tip-sha1-in-want"
ALLOW_REACHABLE_SHA1_IN_WANT = b"allow-reachable-sha1-in-want"
FILTER = b"filter"
REF_IN_WANT = b"ref-in-want"
REPORT_STATUS = b"report-status"
REPORT_STATUS_V2 = b"report-status-v2"
DELETE_REFS = b"delete-refs"
QUIET = b"quiet"
ATOMIC = b"atomic"
PUSH_OPTIONS = b"push-options"
PUSH_CERT = b"push-cert"
SESSION_ID = b"session-id"

SHA1 = b"sha1"
AGENT_PRODUCT = b"hgwire"

MAX_CAPS_LENGTH = 8192
MAX_CAPS = 64
MAX_SESSION_ID = 256

UPLOAD_PACK_V0 = (
    MULTI_ACK,
    THIN_PACK,
    SIDE_BAND,
    SIDE_BAND_64K,
    OFS_DELTA,
    SHALLOW,
    DEEPEN_SINCE,
    DEEPEN_NOT,
    DEEPEN_RELATIVE,
    NO_PROGRESS,
    INCLUDE_TAG,
    MULTI_ACK_DETAILED,
    ALLOW_TIP_SHA1_IN_WANT,
    ALLOW_REACHABLE_SHA1_IN_WANT,
    NO_DONE,
    FILTER,
)
"""upload-pack's advertised flags, in git 2.39's order; ``symref=`` goes before ``filter``, and
``session-id=``, ``object-format=`` and ``agent=`` follow (``git_upload.advertisement``)."""

RECEIVE_PACK_V0 = (
    REPORT_STATUS,
    REPORT_STATUS_V2,
    DELETE_REFS,
    SIDE_BAND_64K,
    QUIET,
    ATOMIC,
    OFS_DELTA,
    PUSH_OPTIONS,
)
"""receive-pack's advertised flags, in git 2.39's order; object-format/agent follow."""


def agent_value(version: str) -> bytes:
    """``hgwire/<version>``: what follows ``agent=``."""
    return AGENT_PRODUCT + b"/" + version.encode("ascii")


def session_id_of(caps: Mapping[bytes, bytes | None]) -> str | None:
    """The ``session-id=`` a client sent (git's ``transfer.advertiseSID``, answering the server's),
    for the log: printable ASCII (anything else made ``?``), at most 256 characters; None without one."""
    value = caps.get(SESSION_ID)
    if not value:
        return None
    return "".join(chr(b) if 0x21 <= b < 0x7F else "?" for b in value[:MAX_SESSION_ID])


def format_caps(flags: Iterable[bytes], values: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """Join flags and ``name=value`` pairs with single spaces, as git writes them."""
    return b" ".join([*flags, *(name + b"=" + value for name, value in values)])


def parse_caps(blob: bytes) -> Mapping[bytes, bytes | None]:
    """Parse a client's space-separated capability list into name -> value (None for flags).

    Bounded in length and count; an empty name (two spaces) is tolerated as git
    tolerates it.  Unknown names are kept: the caller decides what it honours.
    """
    if len(blob) > MAX_CAPS_LENGTH:
        raise ProtocolError(f"capability list longer than {MAX_CAPS_LENGTH} bytes")
    words = [w for w in blob.split(b" ") if w]
    if len(words) > MAX_CAPS:
        raise ProtocolError(f"more than {MAX_CAPS} capabilities requested")
    caps: dict[bytes, bytes | None] = {}
    for word in words:
        name, sep, value = word.partition(b"=")
        caps[name] = value if sep else None
    return caps


def check_object_format(caps: Mapping[bytes, bytes | None], server: ObjectFormat, unnamed: bytes | None = None) -> None:
    """Refuse a client whose ``object-format=`` is not the repository's, in git's words.

    ``unnamed``: what a client that names none speaks (None: anything).  In protocol v2 that is
    SHA-1 (git's serve.c), the mismatch a SHA-1 client meets at a SHA-256 repository."""
    value = caps.get(OBJECT_FORMAT) or unnamed
    if value is None:
        return
    if value.decode("ascii", "replace") not in OBJECT_FORMATS:
        raise ProtocolError(f"unknown object format '{value[:32].decode('utf-8', 'replace')}'")
    if value != server.name.encode():
        raise ProtocolError(f"mismatched object format: server {server.name}; client {value.decode()}")
