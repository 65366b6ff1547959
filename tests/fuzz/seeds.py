"""Valid inputs recorded from real clients (tests/transcripts), the starting points of mutation."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "transcripts"


@cache
def transcript(vcs: str, name: str) -> tuple[tuple[str, bytes], ...]:
    """(direction, bytes) entries of ``tests/transcripts/<vcs>/<name>.txt``."""
    entries = []
    for line in (TRANSCRIPTS / vcs / f"{name}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            direction, _, literal = line.partition(": ")
            entries.append((direction, ast.literal_eval(literal)))
    return tuple(entries)


def client_bytes(vcs: str, name: str) -> bytes:
    """Everything the client sent in one recorded exchange, concatenated."""
    return b"".join(data for direction, data in transcript(vcs, name) if direction == "c")


def server_bytes(vcs: str, name: str) -> bytes:
    """Everything the server wrote on stdout in one recorded exchange."""
    return b"".join(data for direction, data in transcript(vcs, name) if direction == "s")


def transcript_names(vcs: str) -> list[str]:
    return sorted(p.stem for p in (TRANSCRIPTS / vcs).glob("*.txt"))


def git_session(name: str) -> bytes:
    """A recorded git client stream without its git:// request line: what a service core reads."""
    stream = client_bytes("git", name)
    if stream[4:8] == b"git-":
        stream = stream[int(stream[:4], 16) :]
    return stream
