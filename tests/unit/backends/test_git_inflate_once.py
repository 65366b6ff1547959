"""A packed object whose deflated stream is longer than its size and 64 bytes (an incompressible
blob of some 200 KB or more: a binary, an image, an archive) is inflated once when read.  The
reader first tried to inflate it whole from its size and 64 bytes, which fails only once all of
that was inflated, then inflated it again piece by piece: twice the CPU (a 32 MiB binary: 0.17 s
where one pass takes 0.08) for a git archive, a web page's raw file or a push's checks."""

from __future__ import annotations

import os
import subprocess
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from dulwich.repo import Repo

from backends import git_objects
from backends.git_objects import PackObjectReader, store_views
from tests.unit.backends.test_git_fastpack import GIT_ENV


def test_an_incompressible_blob_is_inflated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, env=GIT_ENV)
    data = os.urandom(1 << 20)  # (deflated: 1 MiB and some 330 bytes)
    (tmp_path / "blob").write_bytes(data)
    hexsha = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", str(tmp_path / "blob")], check=True,
                            capture_output=True, text=True, env=GIT_ENV).stdout.strip()
    subprocess.run(["git", "-C", str(repo), "tag", "binary", hexsha], check=True, env=GIT_ENV)  # (packed: named)
    subprocess.run(["git", "-C", str(repo), "-c", "pack.threads=1", "repack", "-q", "-a", "-d"], check=True,
                   capture_output=True, env=GIT_ENV)
    inflated: list[int] = []

    def decompress(chunk: bytes) -> bytes:
        out = zlib.decompressobj()
        made = out.decompress(chunk)
        inflated.append(len(made))
        return zlib.decompress(chunk)  # (raises as zlib's when the stream does not end within it)

    class Inflater:
        def __init__(self) -> None:
            self._real = zlib.decompressobj()

        @property
        def eof(self) -> bool:
            return self._real.eof

        def decompress(self, chunk: bytes) -> bytes:
            made = self._real.decompress(chunk)
            inflated.append(len(made))
            return made

    counting = SimpleNamespace(decompress=decompress, decompressobj=Inflater, error=zlib.error)
    monkeypatch.setattr(git_objects, "zlib", counting)
    store = Repo(str(repo)).object_store
    with PackObjectReader(store, store_views(store)) as reader:
        kind, raw = reader.read(hexsha.encode())
    assert kind == 3 and raw == data
    assert sum(inflated) == len(data), inflated  # (not 2 MiB: once whole from size + 64 bytes, once again)
