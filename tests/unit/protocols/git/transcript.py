"""Load c:/s: byte transcripts of git exchanges (tests/transcripts/git/*.txt)."""

from __future__ import annotations

import ast
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parents[3] / "transcripts" / "git"


def load(name: str) -> list[tuple[str, bytes]]:
    """(direction, bytes) per line: ``c`` from the client, ``s`` from the server."""
    lines = []
    for raw in (TRANSCRIPTS / f"{name}.txt").read_text().splitlines():
        tag, _, literal = raw.partition(": ")
        value = ast.literal_eval(literal)
        assert tag in ("c", "s") and isinstance(value, bytes), raw
        lines.append((tag, value))
    return lines


def side(name: str, tag: str) -> list[bytes]:
    """Every packet of one direction, in order."""
    return [data for t, data in load(name) if t == tag]


def band_one(packets: list[bytes]) -> bytes:
    """The concatenated side-band channel 1 payloads (the pack) among server packets."""
    return b"".join(p[5:] for p in packets if len(p) > 5 and p[4:5] == b"\x01")
