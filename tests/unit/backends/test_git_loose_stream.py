"""A loose blob over ``core.bigFileThreshold`` is read a piece at a time (``loose_stream``), and a
file that does not hold what its header says is refused when that is reached."""

from __future__ import annotations

import random
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from dulwich.errors import ObjectFormatException

from backends import git_objects, load_backend
from backends.git_objects import PIECE_STEP, RawLooseObjectStore

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")


def _store(tmp_path: Path, threshold: str) -> tuple[RawLooseObjectStore, Path]:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(["git", "--git-dir", str(repo), "config", "core.bigFileThreshold", threshold], check=True)
    store = load_backend("fs", str(tmp_path)).open("r.git").object_store
    assert isinstance(store, RawLooseObjectStore)
    return store, repo


def _write(repo: Path, raw: bytes, kind: str = "blob") -> bytes:
    """Written from a pipe: git stores it loose whatever its size."""
    return subprocess.run(["git", "--git-dir", str(repo), "hash-object", "--literally", "-t", kind, "-w", "--stdin"],
                          input=raw, capture_output=True, check=True).stdout.strip()


def test_a_blob_over_the_threshold_comes_in_pieces(tmp_path: Path) -> None:
    store, repo = _store(tmp_path, "1k")
    assert store.stream_above == 1024
    text = random.Random(3).randbytes(2 * PIECE_STEP + 5)
    oid = _write(repo, text)
    found = store.loose_stream(oid)
    assert found is not None
    kind, size, pieces = found
    taken = list(pieces)
    assert (kind, size, b"".join(taken)) == (3, len(text), text)
    assert max(map(len, taken)) <= PIECE_STEP
    assert store.loose_header(oid) == (3, len(text)) and store.loose_header(b"1" * 40) is None
    assert store.loose_stream(_write(repo, b"x" * 1024)) is None  # not over it: read whole
    assert store.loose_stream(_write(repo, b"y" * 5000, "commit")) is None  # only blobs stream, as git's
    assert store.loose_stream(b"1" * 40) is None


def test_a_file_that_does_not_hold_its_size_is_refused_when_reached(tmp_path: Path) -> None:
    store, repo = _store(tmp_path, "1k")
    oid = _write(repo, b"z" * 5000)
    path = repo / "objects" / oid[:2].decode() / oid[2:].decode()
    path.chmod(0o644)
    for stored, why in ((zlib.compress(b"blob 9000\0" + b"z" * 5000), "does not hold the 9000 bytes"),
                        (zlib.compress(b"blob 5000\0" + b"z" * 9000), "does not hold the 5000 bytes"),
                        (zlib.compress(b"blob 5000\0" + b"z" * 5000)[:-6], "cut short")):
        path.write_bytes(stored)
        found = store.loose_stream(oid)
        assert found is not None
        with pytest.raises(ObjectFormatException, match=why):
            b"".join(found[2])


def test_a_header_inflated_alone_is_followed_by_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that flushes after the header (its first piece holds nothing more) is read whole."""
    store, repo = _store(tmp_path, "1k")
    text = random.Random(4).randbytes(5000)
    oid = _write(repo, text)
    path = repo / "objects" / oid[:2].decode() / oid[2:].decode()
    path.chmod(0o644)
    header = b"blob 5000\0"
    deflater = zlib.compressobj()
    flushed = deflater.compress(header) + deflater.flush(zlib.Z_FULL_FLUSH)
    path.write_bytes(flushed + deflater.compress(text) + deflater.flush())
    monkeypatch.setattr(git_objects, "HEADER_STEP", len(flushed))  # the first read: the header's bytes alone
    found = store.loose_stream(oid)
    assert found is not None and b"".join(found[2]) == text
