"""mpatch: hunk parsing, application under a size cap, and composition agreeing with application."""

from __future__ import annotations

from backends.hg import mpatch
from protocols.errors import StorageError

from .harness import Finding, Target

MAX_SIZE = 1 << 16
HUNK = mpatch.HUNK_HEADER


def _split(data: bytes) -> tuple[bytes, list[bytes]]:
    """base, then deltas, separated by ``\\xff\\xfe`` (a separator mutation can move or break)."""
    base, *deltas = data.split(b"\xff\xfe")
    return base, deltas[:8]


def run(data: bytes) -> None:
    base, deltas = _split(data)
    try:
        text = mpatch.patches(base, deltas, MAX_SIZE)
    except StorageError:
        text = None
    if text is not None and len(text) > MAX_SIZE:
        raise Finding(f"patches built {len(text)} bytes over the {MAX_SIZE} cap")
    composed = mpatch.compose(deltas, len(base))
    if text is not None and mpatch.apply(base, composed, MAX_SIZE) != text:
        raise Finding("compose() disagrees with applying the deltas one by one")
    if text is not None and mpatch.apply(base, mpatch.diff(base, text)) != text:
        raise Finding("diff(base, text) does not rebuild text")


def _delta(*hunks: tuple[int, int, bytes]) -> bytes:
    return b"".join(HUNK.pack(start, end, len(data)) + data for start, end, data in hunks)


def seeds() -> list[bytes]:
    base = b"line one\nline two\nline three\n"
    d1 = _delta((0, 9, b"LINE ONE\n"), (18, 18, b"inserted\n"))
    d2 = _delta((5, 5, b"X"), (29, 38, b""))
    d3 = mpatch.full_replacement(38, b"new text\n")
    return [base + b"\xff\xfe" + d1, base + b"\xff\xfe" + d1 + b"\xff\xfe" + d2,
            base + b"\xff\xfe" + d1 + b"\xff\xfe" + d3, b"\xff\xfe" + _delta((0, 0, b"abc"))]


TARGET = Target("mpatch", run, seeds)
