"""A pushed changegroup written into a repository (``Transaction.add_changegroup``): whatever the
bytes, a typed refusal leaves the repository byte for byte as it was, and what is accepted passes
``hg verify`` (run only then: mutated pushes are almost always refused)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import backends.hg as hgstore
from protocols.changegroup import ChangegroupDecoder, StreamReader
from protocols.errors import HgwireError

from .fuzz_changegroup import LIMITS, _cg02
from .harness import Finding, Target, chunked, with_split

_HG = os.path.join(os.path.dirname(sys.executable), "hg")
_place: list[Path] = []


def _repository() -> Path:
    """One empty repository per process, made again after an accepted push."""
    if not _place:
        base = Path(tempfile.mkdtemp(prefix="hgwire-fuzz-push-"))
        atexit.register(shutil.rmtree, base, True)
        _place.append(base / "r")
    path = _place[0]
    if not path.exists():
        hgstore.create_repository(str(path), "r")
    return path


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def run(data: bytes) -> None:
    path = _repository()
    before = _snapshot(path)
    repo = hgstore.open_repository(str(path), "r")
    assert repo is not None
    tx = repo.transaction()
    try:
        tx.add_changegroup(ChangegroupDecoder(StreamReader(chunked(data)), b"02", LIMITS).groups())
        tx.commit()
    except HgwireError:
        tx.abort()
        if _snapshot(path) != before:
            raise Finding("a refused push changed the repository") from None
        raise
    checked = subprocess.run([_HG, "--cwd", str(path), "verify", "-q"], capture_output=True, check=False)
    shutil.rmtree(path)
    if checked.returncode != 0 or checked.stdout.strip():
        raise Finding(f"an accepted push fails hg verify: {(checked.stdout + checked.stderr)[-500:]!r}")


def seeds() -> list[bytes]:
    return [with_split(0xFF, _cg02()), with_split(50, _cg02())]


TARGET = Target("hg_push", run, seeds, max_size=16384)
