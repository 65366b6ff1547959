"""The bases a pushed thin pack left out are appended at the zlib level git's ``index-pack
--fix-thin`` writes them at: ``core.looseCompression``, else ``core.compression``, else 1."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob
from dulwich.pack import Pack, create_delta, pack_object_header
from dulwich.repo import Repo

from backends import git_ingest, load_backend
from backends.git import DulwichGitRepository

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

ZLIB_FLAGS = {1: 0x01, -1: 0x9C, 6: 0x9C, 9: 0xDA}
"""The second byte of a zlib stream by its level (its FLEVEL bits and check bits)."""


def _appended_flags(tmp_path: Path, level: int | None) -> int:
    """Push a blob as a REF_DELTA of a stored one; the zlib flags of the base appended to the pack."""
    server = tmp_path / "s.git"
    subprocess.run(["git", "init", "-q", "--bare", str(server)], check=True)
    base = Blob.from_string(b"".join(b"line %d of the stored blob\n" % n for n in range(200)))
    Repo(str(server)).object_store.add_object(base)
    delta = b"".join(create_delta(base.data, base.data + b"one more line\n"))
    data = b"PACK" + struct.pack(">II", 2, 1)
    data += bytes(pack_object_header(7, bytes.fromhex(base.id.decode()), len(delta), DEFAULT_OBJECT_FORMAT))
    data += zlib.compress(delta)
    data += hashlib.sha1(data).digest()
    store = Repo(str(server)).object_store
    ingest = git_ingest.PackIngest(store) if level is None else git_ingest.PackIngest(store, base_level=level)
    try:
        ingest.write(data)
        pack = ingest.commit()
    finally:
        ingest.abort()
    assert isinstance(pack, Pack)
    with pack:
        offset = pack.index.object_offset(bytes.fromhex(base.id.decode()))
        raw = Path(pack._data_path).read_bytes()
    at = offset
    while raw[at] & 0x80:  # the entry's header: type and size, 7 bits a byte after the first
        at += 1
    assert raw[at + 1] == 0x78, "a zlib stream of a 32 KiB window"
    subprocess.run(["git", "fsck", "--full", "--strict"], cwd=server, check=True, capture_output=True)
    return raw[at + 2]


@pytest.mark.parametrize("level", [None, 9, -1], ids=["git-s-default", "nine", "zlib-s-default"])
def test_an_appended_base_is_compressed_at_the_level_asked(tmp_path: Path, level: int | None) -> None:
    assert _appended_flags(tmp_path, level) == ZLIB_FLAGS[1 if level is None else level]


@pytest.mark.parametrize(("settings", "level"), [
    ({}, 1),
    ({"core.compression": "9"}, 9),
    ({"core.compression": "9", "core.looseCompression": "0"}, 0),
    ({"core.compression": "-1"}, -1),
    ({"core.compression": "12"}, 1),
], ids=["unset", "compression", "loose-first", "zlib-s-default", "out-of-range"])
def test_the_level_is_the_repository_s_as_git_reads_it(tmp_path: Path, settings: dict[str, str], level: int) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "r.git")], check=True)
    for key, value in settings.items():
        subprocess.run(["git", "config", key, value], cwd=tmp_path / "r.git", check=True)
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    assert isinstance(repo, DulwichGitRepository)
    assert repo.thin_base_level() == level
