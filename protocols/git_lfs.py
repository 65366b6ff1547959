"""Git LFS over HTTP: the Batch API and the basic transfer adapter, as JSON in and JSON out.

git-lfs's ``docs/api/batch.md`` and ``basic-transfers.md``.  The client asks
``POST <repo>.git/info/lfs/objects/batch`` (``application/vnd.git-lfs+json``)
what to do with objects named by their SHA-256 and size::

    {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": "…", "size": 123}]}

and the server answers, per object, an action (an ``href`` to ``PUT`` it to or
``GET`` it from, with headers) or an error; an upload of an object the server
has gets no action at all.  Only ``basic`` transfers and SHA-256 are spoken.

File locking (git-lfs's ``docs/api/locking.md``: ``git lfs lock``, ``locks``,
``unlock``, and the ``locks/verify`` a push asks first) is read and answered
here too: ``POST …/locks`` ``{"path": …}``, ``GET …/locks?path=&id=&cursor=&limit=``,
``POST …/locks/verify`` (the caller's locks as ``ours``, the others' as
``theirs``), ``POST …/locks/<id>/unlock`` ``{"force": …}``.  Pure functions: no I/O here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from protocols.errors import ProtocolError

MEDIA_TYPE = "application/vnd.git-lfs+json"
MAX_BATCH_OBJECTS = 500_000
"""Objects of one batch request: git-lfs asks about 100 at a time, but hg's client about every
object of a push (or of a checkout) at once, so a repository of a few hundred thousand LFS files
must fit (``hg serve`` sets no bound)."""
MAX_BATCH_BODY = 64 << 20
"""Bytes of one batch request: ``MAX_BATCH_OBJECTS`` as hg writes them (about 95 bytes each)."""
ANSWER_CHUNK = 64 << 10
"""Bytes of a batch answer made at a time (``batch_response``)."""
MAX_OBJECT_SIZE = 1 << 40
"""Largest size an object may claim (the request body bound keeps real uploads far smaller)."""
ACTION_EXPIRES_IN = 3600
"""Seconds a returned action may be used for (the client asks again after)."""
UPLOAD, DOWNLOAD = "upload", "download"
BASIC = "basic"

_OID = re.compile(r"[0-9a-f]{64}")


def valid_oid(oid: str) -> bool:
    """An LFS object is named by its SHA-256 in lower-case hex, nothing else (never a path)."""
    return _OID.fullmatch(oid) is not None


_RANGE = re.compile(r"bytes=[ \t]*([0-9]{0,19})-([0-9]{0,19})[ \t]*")


class RangeNotSatisfiable(ProtocolError):
    """A ``Range`` that starts past an object's end (416, ``Content-Range: bytes */SIZE``)."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message, http_status=416)
        self.size = size


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one span of ``size`` bytes a ``Range`` header asks for, as ``(first, end)`` (end
    exclusive): how git-lfs resumes a download it has part of (``bytes=N-SIZE-1``).  None to send
    the whole object, as RFC 9110 lets a server answer any range it does not serve: no header, one
    this does not read, several ranges, a span that covers everything.  ``RangeNotSatisfiable`` for
    one that starts at or after the end (or a suffix of none)."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # bytes=-N: the last N bytes
        length = int(match[2])
        if length == 0:
            raise RangeNotSatisfiable(f"the range {header!r} asks for no bytes", size)
        first, end = max(size - length, 0), size
    else:
        first = int(match[1])
        if match[2] and int(match[2]) < first:
            return None  # (not a valid range: ignored, as RFC 9110 says)
        end = min(int(match[2]) + 1, size) if match[2] else size
        if first >= size:
            raise RangeNotSatisfiable(f"the range {header!r} starts after the object's {size} bytes", size)
    return None if (first, end) == (0, size) else (first, end)


@dataclass(frozen=True, slots=True)
class LfsObject:
    oid: str
    size: int


@dataclass(frozen=True, slots=True)
class BatchRequest:
    operation: str
    objects: tuple[LfsObject, ...]


def parse_batch(body: bytes) -> BatchRequest:
    """A batch request, checked; raises ``ProtocolError`` with the status git-lfs expects
    (422 for a malformed request, 409 for a hash other than SHA-256, 413 for too many objects)."""
    request = _json_object(body, MAX_BATCH_BODY, "batch", f"{MAX_BATCH_BODY >> 20} MiB")
    operation = request.get("operation")
    if operation not in (UPLOAD, DOWNLOAD):
        raise ProtocolError("the batch operation must be 'upload' or 'download'", http_status=422)
    if request.get("hash_algo", "sha256") != "sha256":
        raise ProtocolError("only SHA-256 object names are supported", http_status=409)
    transfers = request.get("transfers", [BASIC])
    if not isinstance(transfers, list) or (transfers and BASIC not in transfers):
        raise ProtocolError("only the 'basic' transfer adapter is supported", http_status=422)
    objects = request.get("objects")
    if not isinstance(objects, list):
        raise ProtocolError("the batch request has no objects list", http_status=422)
    if len(objects) > MAX_BATCH_OBJECTS:
        raise ProtocolError(f"more than {MAX_BATCH_OBJECTS} objects in one batch request; send fewer at a time "
                            "(with hg, push fewer changesets at once: hg push -r REV)", http_status=413)
    parsed = []
    for item in objects:
        oid = item.get("oid") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        if not isinstance(oid, str) or not isinstance(size, int) or isinstance(size, bool) \
                or not 0 <= size <= MAX_OBJECT_SIZE:
            raise ProtocolError("each object needs an 'oid' and a 'size' of at least zero", http_status=422)
        parsed.append(LfsObject(oid, size))
    return BatchRequest(operation, tuple(parsed))


CORRUPT_MESSAGE = ("The object is corrupt: the server's copy does not match its hash; tell the server's "
                   "operator, who can restore it or have it pushed again")
"""A batch answer's error for a download of a corrupt object (``hg serve``'s words first)."""


def batch_response(request: BatchRequest, stored_size: Callable[[str], int | None], href: Callable[[str], str],
                   header: Mapping[str, str], max_upload: int | None = None,
                   intact: Callable[[str], bool | None] | None = None) -> Iterator[bytes]:
    """The answer to ``request``, in chunks of about ``ANSWER_CHUNK`` bytes: ``stored_size(oid)``
    says what the server holds (None: nothing), ``href(oid)`` where an object is put or got,
    ``header`` what the client sends there; an upload larger than ``max_upload`` gets its error
    here (422, which git-lfs shows), not a 413 for the upload it would otherwise try again and
    again.  Each object's entry is made as it is reached: hg asks about a whole push's objects in
    one request, and its answer (some 300 bytes an object) is never held whole.  ``intact(oid)``
    says whether a held object's bytes still hash to its name (None: not checked), as ``hg serve``
    checks them: a corrupt one is a download's error (422) and an upload's action again, which
    puts a good copy in its place."""
    pieces = [b'{"transfer":"%s","hash_algo":"sha256","objects":[' % BASIC.encode()]
    held_bytes = len(pieces[0])
    for index, obj in enumerate(request.objects):
        entry = _json(_batch_entry(request.operation, obj, stored_size, href, header, max_upload, intact))
        pieces.append(b"," + entry if index else entry)
        held_bytes += len(pieces[-1])
        if held_bytes >= ANSWER_CHUNK:
            yield b"".join(pieces)
            pieces, held_bytes = [], 0
    pieces.append(b"]}")
    yield b"".join(pieces)


def _batch_entry(operation: str, obj: LfsObject, stored_size: Callable[[str], int | None],
                 href: Callable[[str], str], header: Mapping[str, str], max_upload: int | None,
                 intact: Callable[[str], bool | None] | None = None) -> dict[str, object]:
    """One object's part of a batch answer: its action, none (an upload the server has), or its error."""
    entry: dict[str, object] = {"oid": obj.oid, "size": obj.size}
    if not valid_oid(obj.oid):
        entry["error"] = {"code": 422, "message": "the object name is not a SHA-256 in lower-case hex"}
        return entry
    held = stored_size(obj.oid)
    if held is not None and intact is not None and intact(obj.oid) is False:
        if operation != UPLOAD:
            entry["error"] = {"code": 422, "message": CORRUPT_MESSAGE}
            return entry
        held = None  # uploaded again: the good copy replaces it
    action = {"href": href(obj.oid), "header": dict(header), "expires_in": ACTION_EXPIRES_IN}
    if operation == UPLOAD:
        if held is None and max_upload is not None and obj.size > max_upload:
            entry["error"] = {"code": 422, "message": f"the object is larger than this server takes "
                                                      f"({max_upload} bytes a request)"}
        elif held is None:
            entry["actions"] = {UPLOAD: action}
    elif held is None:
        entry["error"] = {"code": 404, "message": "Object does not exist"}
    else:
        entry["size"] = held
        entry["actions"] = {DOWNLOAD: action}
    if "actions" in entry:
        entry["authenticated"] = True
    return entry


def _json_object(body: bytes, limit: int, what: str, limit_text: str) -> dict[str, Any]:
    """A request body of at most ``limit`` bytes holding a JSON object; ``ProtocolError`` with
    the status git-lfs expects otherwise (413 too large, 422 not JSON or not an object)."""
    if len(body) > limit:
        raise ProtocolError(f"a {what} request larger than {limit_text}", http_status=413)
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        raise ProtocolError(f"the {what} request is not JSON", http_status=422) from None
    if not isinstance(request, dict):
        raise ProtocolError(f"the {what} request is not a JSON object", http_status=422)
    return request


def error_body(message: str) -> bytes:
    """An error response of the API: only a message."""
    return _json({"message": message})


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


# --- file locking -----------------------------------------------------------------------------

MAX_LOCK_BODY = 64 << 10
MAX_LOCK_PATH = 4096
LOCK_PAGE = 100
"""Locks per answer when the client names no limit (git-lfs asks for 100 at a time)."""
MAX_LOCK_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Lock:
    """One lock: its id, the repository path it locks, when (RFC 3339, UTC) and by whom."""

    id: str
    path: str
    locked_at: str
    owner: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "locked_at": self.locked_at, "owner": {"name": self.owner}}


def _lock_body(body: bytes) -> dict[str, Any]:
    if len(body) <= MAX_LOCK_BODY and not body.strip():
        return {}  # (git-lfs sends none with some requests)
    return _json_object(body, MAX_LOCK_BODY, "lock", f"{MAX_LOCK_BODY >> 10} KiB")


def lock_path(path: object) -> str:
    """A path to lock as git-lfs sends it: relative to the repository's top, ``/``-separated;
    raises ``ProtocolError`` (422) for anything else."""
    if not isinstance(path, str) or not path or len(path) > MAX_LOCK_PATH or any(c < " " for c in path) \
            or path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
        raise ProtocolError("a lock needs a 'path' relative to the repository's top, like dir/file.psd",
                            http_status=422)
    return path


def parse_lock_create(body: bytes) -> str:
    """``{"path": …, "ref": {"name": …}}``: the path to lock (the ref is not looked at: a lock
    covers every branch, as git-lfs's own server has it)."""
    return lock_path(_lock_body(body).get("path"))


def parse_lock_verify(body: bytes) -> tuple[str | None, int]:
    """``{"cursor": …, "limit": …, "ref": {"name": …}}``: where to start and how many."""
    request = _lock_body(body)
    return _cursor(request.get("cursor")), _limit(request.get("limit"))


def parse_unlock(body: bytes) -> bool:
    """``{"force": true|false, "ref": …}``: whether to remove another user's lock."""
    force = _lock_body(body).get("force", False)
    if not isinstance(force, bool):
        raise ProtocolError("'force' must be true or false", http_status=422)
    return force


def parse_lock_query(args: Mapping[str, str]) -> tuple[str | None, str | None, str | None, int]:
    """``GET …/locks``'s query: ``path``, ``id``, ``cursor``, ``limit`` (``refspec`` is not looked at)."""
    path = args.get("path") or None
    return (lock_path(path) if path is not None else None, args.get("id") or None, _cursor(args.get("cursor")),
            _limit(args.get("limit")))


def _cursor(value: object) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 128:
        raise ProtocolError("'cursor' must be a lock id", http_status=422)
    return value


def _limit(value: object) -> int:
    if value in (None, "", 0):
        return LOCK_PAGE
    try:
        limit = int(str(value))
    except (TypeError, ValueError):
        raise ProtocolError("'limit' must be a number", http_status=422) from None
    if limit < 0:
        raise ProtocolError("'limit' must be a number", http_status=422)
    return min(limit, MAX_LOCK_PAGE)


def lock_page(locks: list[Lock], cursor: str | None, limit: int) -> tuple[list[Lock], str | None]:
    """The locks from ``cursor`` (a lock's id; the first when None), at most ``limit``, and the
    cursor of the next page (None when this is the last)."""
    start = 0
    if cursor is not None:
        start = next((i for i, lock in enumerate(locks) if lock.id == cursor), len(locks))
    page = locks[start:start + limit]
    rest = locks[start + limit:start + limit + 1]
    return page, (rest[0].id if rest else None)


def locks_response(locks: list[Lock], next_cursor: str | None) -> bytes:
    body: dict[str, Any] = {"locks": [lock.as_json() for lock in locks]}
    if next_cursor is not None:
        body["next_cursor"] = next_cursor
    return _json(body)


def verify_response(locks: list[Lock], owner: str, next_cursor: str | None) -> bytes:
    """``ours`` (``owner``'s locks) and ``theirs`` (everyone else's)."""
    body: dict[str, Any] = {"ours": [lock.as_json() for lock in locks if lock.owner == owner],
                            "theirs": [lock.as_json() for lock in locks if lock.owner != owner]}
    if next_cursor is not None:
        body["next_cursor"] = next_cursor
    return _json(body)


def lock_response(lock: Lock, message: str | None = None) -> bytes:
    body: dict[str, Any] = {"lock": lock.as_json()}
    if message is not None:
        body["message"] = message
    return _json(body)
