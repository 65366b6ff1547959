"""What every fuzz target shares: the allowed errors, the mutator and the input strategy.

A target is a function ``bytes -> None`` that drives one sans-IO parser as far
as the bytes let it.  STYLE.md §4 rule 8: only the typed errors of
``protocols/errors.py`` may leave a parser, so ``check`` lets those pass and
turns anything else (IndexError, struct.error, UnicodeDecodeError,
AssertionError, MemoryError, a hang) into a ``Finding``.

The same target runs twice: briefly under hypothesis in the test suite
(``strategy``: valid seeds, then structured edits) and for millions of inputs
under ``tests.fuzz.run`` (``mutate``: the same edits, drawn from a seeded
``random.Random`` for speed).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from types import FrameType

from hypothesis import strategies as st

from protocols import pktline
from protocols.errors import HgwireError

ALLOWED: tuple[type[BaseException], ...] = (HgwireError,)
"""Every exception hgwire raises on purpose (ProtocolError, LimitExceeded, UnsafeName, StorageError...)."""

HANG_SECONDS = 5.0
"""One input taking longer than this is a finding: a parser must be linear in its input."""

INTERESTING_INTS = (0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
INTERESTING_TOKENS = (b"\n", b"\0", b" ", b"=", b"-1", b"0000", b"0001", b"0002", b"ffff", b"fff0", b"fff1",
                      b":", b",", b";", b"'", b"\\", b"..", b"/", b"%", b"\xff", b"\xc3", b"-")


class Hang(Exception):
    """An input ran for more than HANG_SECONDS."""


class Finding(Exception):
    """A target let an untyped exception escape, or broke one of its properties."""


@dataclass(frozen=True)
class Target:
    """One fuzzed parser: how to run it on bytes, and valid inputs to start from."""

    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], Sequence[bytes]]
    max_size: int = 4096


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"one input ran for more than {HANG_SECONDS} s")


def check(target: Target, data: bytes) -> None:
    """Run ``target`` on ``data``; typed errors pass, anything else raises ``Finding``."""
    timed = threading.current_thread() is threading.main_thread()  # signals reach the main thread only
    previous = signal.signal(signal.SIGALRM, _on_alarm) if timed else None
    if timed:
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        target.run(data)
    except ALLOWED:
        pass
    except Exception as exc:  # every other exception is what we hunt for
        raise Finding(f"{target.name}: {type(exc).__name__}: {exc}") from exc
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- shared input helpers


def chunked(data: bytes) -> Iterator[bytes]:
    """Split ``data`` into pieces whose size its first byte picks (1, 2, 4 ... 2048, or 0xff: whole)."""
    if not data:
        return
    step = 1 << (data[0] % 12) if data[0] != 0xFF else len(data)
    body = data[1:]
    for pos in range(0, len(body), step):
        yield body[pos : pos + step]


def with_split(step: int, data: bytes) -> bytes:
    """Prefix a seed with the chunking byte ``chunked`` reads (``0xff``: one chunk)."""
    return bytes([step]) + data


_SPECIAL_LINES = {b"0000": pktline.FLUSH, b"0001": pktline.DELIM, b"0002": pktline.RESPONSE_END}


def frame_lines(text: bytes) -> bytes:
    """Pkt-line-encode newline-separated lines (``0000``/``0001``/``0002`` are the specials).

    Mutating lines rather than frames keeps the framing valid, so edits reach
    the request grammar behind it (a 5000-digit ``deepen``, say).
    """
    out = bytearray()
    for line in text.split(b"\n"):
        special = _SPECIAL_LINES.get(line)
        out += special if special is not None else pktline.encode((line + b"\n")[: pktline.MAX_PAYLOAD])
    return bytes(out)


def to_lines(stream: bytes) -> bytes:
    """The inverse of ``frame_lines`` for a recorded client stream; a trailing pack stays raw."""
    lines, pos = [], 0
    while pos + 4 <= len(stream) and stream[pos : pos + 4] != b"PACK":
        length = int(stream[pos : pos + 4], 16)
        lines.append(b"%04x" % length if length < 4 else stream[pos + 4 : pos + length].removesuffix(b"\n"))
        pos += max(length, 4)
    return b"\n".join([*lines, stream[pos:]]).removesuffix(b"\n")


def git_chunks(data: bytes) -> Iterator[bytes]:
    """A git client stream from fuzz input: ``L<split><lines>[PACK...]`` is framed by
    ``frame_lines`` first; any other input is raw pkt-line bytes.  Either way ``chunked`` splits it."""
    if data[:1] != b"L" or len(data) < 2:
        return chunked(data)
    text, magic, pack = data[2:].partition(b"PACK")
    return chunked(data[1:2] + frame_lines(text.removesuffix(b"\n")) + magic + pack)


def git_seeds(stream: bytes) -> list[bytes]:
    """A recorded stream as raw input (whole and in 7-byte pieces) and as lines (whole and in pieces)."""
    lines = to_lines(stream)
    return [with_split(0xFF, stream), with_split(3, stream), b"L\xff" + lines, b"L\x00" + lines]


def drain(iterator: Iterator[object], limit: int = 100_000) -> None:
    """Consume an iterator; too many items from a small input is a hang in disguise."""
    for count, _ in enumerate(iterator):
        if count >= limit:
            raise Finding(f"more than {limit} items from one input")


# ---------------------------------------------------------------- mutation


def _flip(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _set_byte(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))


def _set_int(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    if len(data) >= 4:
        pos = rng.randrange(len(data) - 3)
        value = rng.choice(INTERESTING_INTS) if rng.random() < 0.7 else rng.randrange(1 << 32)
        fmt = rng.choice((">I", "<I", ">H", "B"))
        packed = struct.pack(fmt, value & {">I": 0xFFFFFFFF, "<I": 0xFFFFFFFF, ">H": 0xFFFF, "B": 0xFF}[fmt])
        data[pos : pos + len(packed)] = packed


def _insert(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    pos = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        data[pos:pos] = rng.choice(INTERESTING_TOKENS)
    else:
        data[pos:pos] = rng.randbytes(rng.randrange(1, 9))


def _delete(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        pos = rng.randrange(len(data))
        del data[pos : pos + rng.randrange(1, 17)]


def _truncate(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        del data[rng.randrange(len(data)) :]


def _duplicate(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    if data:
        start = rng.randrange(len(data))
        piece = data[start : start + rng.randrange(1, 65)]
        pos = rng.randrange(len(data) + 1)
        data[pos:pos] = piece * rng.randrange(1, 4)


def _splice(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    other = rng.choice(seeds)
    if other:
        start = rng.randrange(len(other))
        piece = other[start : start + rng.randrange(1, 129)]
        pos = rng.randrange(len(data) + 1)
        data[pos:pos] = piece


_NUMBER = re.compile(rb"(?<=[ =:\n*])[0-9]+(?=[\n ,:;\0]|$)")


def _long_run(rng: Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    """Repeat one byte thousands of times, often inside a decimal field: ``int()`` of 4301+ digits
    raises ValueError, and long runs show quadratic loops."""
    numbers = list(_NUMBER.finditer(data))
    if numbers and rng.random() < 0.7:
        pos = rng.choice(numbers).start()
        data[pos:pos] = b"9" * rng.randrange(4000, 6000)
        return
    pos = rng.randrange(len(data) + 1)
    data[pos:pos] = bytes([rng.choice(b"09af \n:,=-/.")]) * rng.randrange(100, 6000)


MUTATORS = (_flip, _set_byte, _set_int, _insert, _delete, _truncate, _duplicate, _splice, _long_run)


def mutate(rng: Random, seeds: Sequence[bytes], max_size: int) -> bytes:
    """A seed with one to eight edits, or (rarely) random bytes."""
    if rng.random() < 0.05 or not seeds:
        return rng.randbytes(rng.randrange(max(1, min(max_size, 256))))
    data = bytearray(rng.choice(seeds))
    for _ in range(1 + int(rng.expovariate(0.6)) % 8):
        rng.choice(MUTATORS)(rng, data, seeds)
    return bytes(data[:max_size])


def strategy(target: Target) -> st.SearchStrategy[bytes]:
    """Hypothesis inputs: mutated seeds (seeded ``Random``: the runner's edits), seeds whole, and raw bytes."""
    seeds = list(target.seeds())
    mutated = st.integers(0, 2**64).map(lambda seed: mutate(Random(seed), seeds, target.max_size))
    raw = st.binary(max_size=min(target.max_size, 512))
    return st.one_of(mutated, mutated, mutated, st.sampled_from(seeds), raw)


HG = os.path.join(os.path.dirname(sys.executable), "hg")
"""The hg client of this interpreter's environment (the test extra installs it)."""


def hg_scratch(name: str) -> tuple[Path, Callable[..., None]]:
    """An empty Mercurial repository in a directory removed when the process ends (made once per
    fuzzing process by the targets that need a history), and a runner of the hg client in it
    (plain output, no user configuration)."""
    base = Path(tempfile.mkdtemp(prefix=f"hgwire-fuzz-{name}-"))
    atexit.register(shutil.rmtree, base, True)
    path = base / "r"
    env = {**os.environ, "HGPLAIN": "1", "HGRCPATH": ""}

    def hg(*args: str) -> None:
        subprocess.run([HG, "-R", str(path), *args], env=env, check=True, capture_output=True)

    subprocess.run([HG, "init", str(path)], env=env, check=True, capture_output=True)
    return path, hg
