"""A 20 MB file, and a stream-clone snapshot that real ``hg`` verifies."""

# The session fixtures are imported from test_hg_storage_repos, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from test_hg_storage_repos import LONG_PATH, Hg, hg_cli, zstd_repo  # noqa: F401

import backends.hg as hgstore
from backends.hg import repository as hg_repository
from backends.hg.changelog import parse_changeset, parse_filelog_text, parse_manifest
from backends.hg.store import encode_store_path
from backends.interfaces import DeltaMode

SIZE = 20 * 1024 * 1024


def _big_content(seed: bytes) -> bytes:
    block = b"".join(hashlib.sha256(seed + b"%d" % i).hexdigest().encode() + b"\n" for i in range(4096))
    return (block * (SIZE // len(block) + 1))[:SIZE]


def test_twenty_megabyte_file_reads_and_replays(hg_cli: Hg, tmp_path: Path) -> None:
    src = tmp_path / "big"
    hg_cli(tmp_path, "init", str(src))
    content = _big_content(b"a")
    (src / "huge.bin").write_bytes(content)
    hg_cli(src, "commit", "-A", "-q", "-m", "huge")
    changed = content[: SIZE // 2] + b"a change in the middle\n" + content[SIZE // 2 :]
    (src / "huge.bin").write_bytes(changed)
    hg_cli(src, "commit", "-q", "-m", "edit huge")
    repo = hgstore.open_repository(str(src), "big")
    cl, ml = repo.changelog(), repo.manifestlog()
    fl = repo.filelog(b"huge.bin")
    for rev, expected in ((0, content), (1, changed)):
        manifest = parse_manifest(ml.revision(ml.rev(parse_changeset(cl.revision(rev)).manifest)))
        data = parse_filelog_text(fl.revision(fl.rev(manifest[b"huge.bin"][0]), verify=True)).data
        assert data == expected
    assert hg_cli(src, "cat", "-r", "1", "huge.bin") == changed
    target = hgstore.create_repository(str(tmp_path / "copy"), "copy")
    tx = target.transaction()
    tx.add_changegroup(repo.emit_groups(repo.missing([], repo.heads()), DeltaMode.ANY))
    tx.commit()
    assert hg_cli(tmp_path / "copy", "verify", "-q", check=False) == b""
    assert hg_cli(tmp_path / "copy", "cat", "-r", "1", "huge.bin") == changed
    assert (tmp_path / "copy" / ".hg" / "store" / "data" / "huge.bin.d").exists()  # split from inline


def _streamable_copy(hg_cli: Hg, zstd_repo: Path, tmp_path: Path) -> Path:
    """The rich repository with its secret change made draft (a stream clone refuses secret
    changesets), not publishing (so the phase roots are streamed too), as a copy."""
    copy = tmp_path / "src"
    shutil.copytree(zstd_repo, copy, symlinks=True)
    hg_cli(copy, "phase", "-q", "--force", "--draft", "-r", "secret()")
    (copy / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    return copy


def test_stream_files_make_a_repository_hg_verifies(hg_cli: Hg, zstd_repo: Path, tmp_path: Path) -> None:
    zstd_repo = _streamable_copy(hg_cli, zstd_repo, tmp_path)
    repo = hgstore.open_repository(str(zstd_repo), "src")
    count, size, files = repo.stream_files()
    clone = tmp_path / "clone"
    hgstore.create_repository(str(clone), "clone")
    written = 0
    names = set()
    for entry in files:
        names.add(entry.path)
        assert not entry.path.startswith(b"dh/")  # store paths as hg sends them, not encoded names
        path = clone / ".hg" / "store" / os.fsdecode(encode_store_path(entry.path))
        path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(entry.chunks)
        assert len(data) == entry.size
        path.write_bytes(data)
        written += 1
    assert written == count and size > 0
    assert {b"data/README.i", b"data/" + LONG_PATH.encode() + b".i", b"00changelog.i"} <= names
    fncache = (zstd_repo / ".hg" / "store" / "fncache").read_bytes()
    (clone / ".hg" / "store" / "fncache").write_bytes(fncache)
    assert hg_cli(clone, "verify", "-q", check=False) == b""
    log = ("log", "-r", "all()", "-T", "{node} {phase}\n")
    assert hg_cli(clone, *log) == hg_cli(zstd_repo, *log)


def test_stream_files_with_caches_add_hgs_own_caches_after_the_store(hg_cli: Hg, zstd_repo: Path,
                                                                    tmp_path: Path) -> None:
    zstd_repo = _streamable_copy(hg_cli, zstd_repo, tmp_path)
    hg_cli(zstd_repo, "branches")  # hg writes branch2-served and the rev-branch-cache
    cache = zstd_repo / ".hg" / "cache"
    (cache / "not-a-stream-cache").write_bytes(b"private")
    repo = hgstore.open_repository(str(zstd_repo), "src")
    plain_count, plain_size, plain = repo.stream_files()
    assert not any(entry.cache for entry in plain)
    count, size, files = repo.stream_files(caches=True)
    entries = [(entry.path, entry.cache, b"".join(entry.chunks), entry.size) for entry in files]
    caches = {path: data for path, is_cache, data, _size in entries if is_cache}
    assert {b"branch2-served", b"rbc-names-v2", b"rbc-revs-v2"} <= set(caches)
    assert set(caches) <= set(hg_repository.STREAM_CACHES), "only the files hg itself sends"
    assert all(data == (cache / os.fsdecode(path)).read_bytes() for path, data in caches.items())
    flags = [is_cache for _path, is_cache, _data, _size in entries]
    assert flags == sorted(flags), "the store first, then the caches"
    assert count == plain_count + len(caches) and size == plain_size + sum(map(len, caches.values()))
    assert all(len(data) == declared for _path, _c, data, declared in entries)


def test_a_stream_clone_of_a_store_rewritten_meanwhile_is_refused_not_mixed(hg_cli: Hg, tmp_path: Path) -> None:
    """The files a stream clone reads after its lock are the snapshot's only if they were appended
    to; ``hg debugupgraderepo`` (run by an operator while clients clone) replaces them: the clone
    is refused, not sent the new index with the old data."""
    import pytest

    from protocols.errors import StorageError

    src = tmp_path / "big"
    hg_cli(tmp_path, "init", str(src))
    for n in range(3):
        (src / f"t{n}.txt").write_bytes(hashlib.sha256(b"%d" % n).hexdigest().encode() * 20000)
        hg_cli(src, "commit", "-A", "-q", "-m", f"file {n}")
    repo = hgstore.open_repository(str(src), "big")
    _count, _size, files = repo.stream_files()
    hg_cli(src, "debugupgraderepo", "-q", "--run", "--no-backup", "--config", "format.revlog-compression=zlib")
    with pytest.raises(StorageError, match="was replaced during a stream clone"):
        for entry in files:
            b"".join(entry.chunks)
    assert hg_cli(src, "verify", "-q", check=False) == b""
    _count, size, files = hgstore.open_repository(str(src), "big").stream_files()
    assert sum(len(b"".join(entry.chunks)) for entry in files) == size  # a clone after it is whole
