"""Packs served from a SHA-256 repository (and the same cases from a SHA-1 one) are valid packs
of that format: real git's ``index-pack --fix-thin`` takes them, ``fsck --full`` passes, and the
objects sent are exactly ``git rev-list --objects WANTS --not HAVES``.  Both pack paths: the fast
one (``git_fastpack``: stored entries reused, bitmaps) and the generic one (``git_pack``)."""

from __future__ import annotations

import binascii
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_pack
from backends.git_fastpack import (
    OFS_DELTA,
    REF_DELTA,
    WriteStats,
    _open_maps,
    generate_pack_fast,
    plan_pack,
    serve_pack,
    write_pack,
)
from backends.git_objects import PackObjectReader, size_reader
from backends.git_packindex import cached_view, index_view, pack_basenames, pack_views
from backends.interfaces import OBJECT_FORMATS, ObjectFormat, ObjectId
from tests.unit.backends.test_git_fastpack import (
    client_with,
    entry_types,
    expected_objects,
    git,
    receive,
    rev,
    tags_to_include,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

FORMATS = ["sha1", "sha256"]
# -- the source repositories ---------------------------------------------------------------


def _commit(work: Path, n: int) -> None:
    """Commit ``n``: one more version of the big file (a delta chain), and a few small files."""
    big = work / "big.txt"
    lines = big.read_text().splitlines(keepends=True) if big.exists() else [f"line {i}\n" for i in range(400)]
    lines[(n * 37) % len(lines)] = f"changed in commit {n}\n"
    lines.append(f"appended by commit {n}\n")
    big.write_text("".join(lines))
    (work / f"dir{n % 3}").mkdir(exist_ok=True)
    (work / f"dir{n % 3}" / f"file{n % 5}.txt").write_text(f"small file, version {n}\n" * (n + 1))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"commit {n}")


def _build(work: Path, object_format: str) -> None:
    git(work, "init", "-q", f"--object-format={object_format}", "-b", "main")
    for n in range(8):
        _commit(work, n)
    git(work, "tag", "-a", "v1", "-m", "version 1")
    git(work, "checkout", "-q", "-b", "feature")
    for n in range(8, 11):
        _commit(work, n)
    git(work, "checkout", "-q", "main")
    for n in range(11, 14):
        _commit(work, n)
    git(work, "merge", "-q", "--no-ff", "-X", "theirs", "-m", "merge feature", "feature")
    git(work, "tag", "-a", "v2", "-m", "version 2")
    git(work, "tag", "-a", "v2-blessed", "-m", "a tag of a tag", "v2")
    git(work, "tag", "light", "HEAD~2")
    git(work, "repack", "-adfq", "--write-bitmap-index")      # pack 1, with a bitmap
    for n in range(14, 18):
        _commit(work, n)
    git(work, "repack", "-dq")                                 # pack 2: incremental, no bitmap
    for n in range(18, 21):
        _commit(work, n)                                       # loose objects


@dataclass(frozen=True)
class Source:
    object_format: str
    path: Path          # the .git directory of the bitmapped layout
    refdelta: Path      # one pack, REF_DELTA entries only, no bitmap


@pytest.fixture(scope="module", params=FORMATS)
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Source:
    object_format: str = request.param
    root = tmp_path_factory.mktemp(f"serve-{object_format}")
    work = root / "work"
    work.mkdir()
    _build(work, object_format)
    refdelta = root / "refdelta.git"
    shutil.copytree(work / ".git", refdelta)
    git(refdelta, "-c", "repack.useDeltaBaseOffset=false", "repack", "-adfq", "--no-write-bitmap-index")
    return Source(object_format, work / ".git", refdelta)


def fmt(source: Source) -> ObjectFormat:
    return OBJECT_FORMATS[source.object_format]


# -- the oracle ----------------------------------------------------------------------------


def check_pack(source: Source, pack: bytes) -> list[int]:
    of = fmt(source)
    assert pack[:8] == b"PACK\x00\x00\x00\x02"
    assert of.hasher(pack[:-of.raw_len]).digest() == pack[-of.raw_len:]
    return entry_types(pack, of.raw_len)


# -- the cases -----------------------------------------------------------------------------

CASES = {
    # name: (wants, haves, thin, ofs_delta, include_tag)
    "full-clone": (["main", "feature", "v1", "v2", "v2-blessed", "light"], [], False, True, False),
    "fetch-thin": (["main"], ["main~5"], True, True, False),
    "fetch-not-thin": (["main"], ["main~5"], False, True, False),
    "fetch-no-ofs-delta": (["main", "feature"], ["main~9"], True, False, False),
    "include-tag": (["main"], ["v1"], True, True, True),
}


def _plan(src: Path, case: str) -> tuple[git_pack.PackPlan, list[bytes], list[bytes]]:
    want_specs, have_specs, thin, ofs_delta, include_tag = CASES[case]
    wants = sorted({rev(src, s) for s in want_specs})
    haves = [rev(src, s + "^{}") for s in have_specs]
    plan = git_pack.PackPlan(tuple(map(ObjectId, wants)), tuple(map(ObjectId, haves)), git_pack.ShallowPlan(),
                             thin, ofs_delta, include_tag)
    return plan, wants, haves


def _never(*_args: object) -> Iterator[bytes]:
    raise AssertionError("the fast path declined a request it serves")


@pytest.mark.parametrize("layout", ["bitmapped", "refdelta"])
@pytest.mark.parametrize("path", ["fast", "generic"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_pack_is_accepted_and_exact(source: Source, tmp_path: Path, layout: str, path: str, case: str) -> None:
    src = source.path if layout == "bitmapped" else source.refdelta
    plan, wants, haves = _plan(src, case)
    repo = Repo(str(src))
    refs = repo.get_refs()
    if path == "fast":
        pack = b"".join(serve_pack(repo.object_store, plan, refs, generic=_never))
    else:
        pack = b"".join(git_pack.generate_pack(repo.object_store, plan, refs))
    types = check_pack(source, pack)
    client, have_objects = client_with(tmp_path, src, haves, source.object_format)
    expected = expected_objects(src, wants, haves)
    if plan.include_tag:
        expected |= tags_to_include(src, expected, have_objects)
    assert len(types) == len(expected)
    names = receive(client, pack, wants, source.object_format)
    assert names - have_objects == expected
    if not plan.thin:
        assert names == expected
    if not plan.ofs_delta:
        assert OFS_DELTA not in types
    if path == "fast" and case == "fetch-thin" and layout == "bitmapped":
        assert REF_DELTA in types  # deltas against objects only the client has


def test_fast_clone_reuses_stored_deltas_and_the_bitmap(source: Source) -> None:
    repo = Repo(str(source.path))
    main = repo.refs[b"refs/heads/main"]
    plan = plan_pack(repo.object_store, [main], [], thin_pack=False, ofs_delta=True)
    assert plan.have_view is not None  # the bitmap (its header holds a raw_len-byte checksum) was read
    stats = WriteStats()
    pack = b"".join(write_pack(plan, _open_maps(plan), stats=stats))
    types = check_pack(source, pack)
    assert stats.verbatim > 0 and stats.whole >= 3  # loose commits on main go whole
    assert OFS_DELTA in types and len(types) == plan.count == len(expected_objects(source.path, [main], []))


def test_single_pack_clone_is_the_stored_pack(source: Source, tmp_path: Path) -> None:
    src = tmp_path / "one.git"
    shutil.copytree(source.refdelta, src)
    wants = sorted({line.split()[0] for line in git(src, "show-ref", "--heads", "--tags").splitlines()})
    chunks = generate_pack_fast(Repo(str(src)).object_store, wants, [], chunk_size=4096)
    assert chunks is not None
    (stored,) = (src / "objects" / "pack").glob("*.pack")
    assert b"".join(chunks) == stored.read_bytes()


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_shallow_clone_stops_at_the_boundary(source: Source, tmp_path: Path, path: str) -> None:
    src = source.path
    repo = Repo(str(src))
    main = rev(src, "main")
    boundary = git_pack.shallow_commits(repo.object_store, [ObjectId(main)], 3)[0]
    assert [bytes(b) for b in boundary] == [rev(src, "main~2")]
    plan = git_pack.PackPlan((ObjectId(main),), (), git_pack.ShallowPlan(tuple(boundary), (), frozenset(boundary)),
                             True, True, False)
    refs = repo.get_refs()
    if path == "fast":
        pack = b"".join(serve_pack(repo.object_store, plan, refs, generic=_never))
    else:
        pack = b"".join(git_pack.generate_pack(repo.object_store, plan, refs))
    check_pack(source, pack)
    oracle = tmp_path / "oracle.git"
    shutil.copytree(src, oracle)
    (oracle / "shallow").write_bytes(b"".join(b + b"\n" for b in boundary))
    expected = expected_objects(oracle, [main], [])
    client, _ = client_with(tmp_path, src, [], source.object_format)
    (client / "shallow").write_bytes(b"".join(b + b"\n" for b in boundary))
    assert receive(client, pack, [main], source.object_format) == expected


@pytest.mark.parametrize("spec", ["blob:none", "tree:0", "object:type=tree"])
def test_filtered_packs_of_both_formats(source: Source, tmp_path: Path, spec: str) -> None:
    """``blob:none`` and ``tree:0`` are the fast path's, ``object:type=`` the generic path's; both
    send what git's filter keeps."""
    src = source.path
    repo = Repo(str(src))
    main = rev(src, "main")
    filters: dict[str, Any] = {"blob:none": {"blob_limit": -1}, "tree:0": {"tree_depth": 0},
                               "object:type=tree": {"object_types": frozenset({2})}}[spec]
    plan = git_pack.PackPlan((ObjectId(main),), (), git_pack.ShallowPlan(), False, True, False,
                             **filters)
    calls: list[object] = []

    def generic(store: object, plan: object, refs: object, progress: object = None) -> Iterator[bytes]:
        calls.append(plan)
        return git_pack.generate_pack(store, plan, refs, progress)  # type: ignore[arg-type]

    pack = b"".join(serve_pack(repo.object_store, plan, repo.get_refs(), generic=generic))
    assert calls == ([plan] if spec.startswith("object:") else [])
    check_pack(source, pack)
    out = git(src, "rev-list", "--objects", f"--filter={spec}", main.decode())
    expected = {line.split()[0] for line in out.splitlines() if line}
    client, _ = client_with(tmp_path, src, [], source.object_format)
    git(client, "config", "extensions.partialClone", "origin")
    written = git(client, "index-pack", "--stdin", input=pack).split()
    idx = client / "objects" / "pack" / f"pack-{written[-1].decode()}.idx"
    listed = git(client, "show-index", f"--object-format={source.object_format}", input=idx.read_bytes())
    assert {line.split()[1] for line in listed.splitlines()} == expected


# -- the readers ----------------------------------------------------------------------------


def test_index_views_have_the_format_s_names(source: Source) -> None:
    raw_len = fmt(source).raw_len
    (pack,) = (source.refdelta / "objects" / "pack").glob("*.pack")
    base = str(pack)[:-5]
    view = index_view(base, raw_len)
    assert view.raw_len == raw_len and {len(n) for n in view.names} == {raw_len}
    assert list(view.offsets) == sorted(view.offsets)
    assert view.entry_end(len(view) - 1) == pack.stat().st_size - raw_len
    assert view.checksum == pack.read_bytes()[-raw_len:]
    listed = git(pack.parent, "show-index", f"--object-format={source.object_format}",
                 input=pack.with_suffix(".idx").read_bytes())
    by_name = {bytes.fromhex(line.split()[1].decode()): int(line.split()[0]) for line in listed.splitlines()}
    assert {name: int(view.offsets[view.position(name)]) for name in view.names} == by_name
    assert cached_view(base, raw_len) is view and index_view(base, raw_len) is view
    assert pack_views(str(pack.parent), raw_len) == [view]
    other = 52 - raw_len  # the other format's length: a separate cache entry, never this view
    assert cached_view(base, other) is None or cached_view(base, other) is not view


@pytest.mark.parametrize("layout", ["bitmapped", "refdelta"])
def test_pack_object_reader_matches_the_store(source: Source, layout: str) -> None:
    src = source.path if layout == "bitmapped" else source.refdelta
    store = Repo(str(src)).object_store
    raw_len = fmt(source).raw_len
    views = [index_view(base, raw_len) for base in pack_basenames(str(src / "objects" / "pack"))]
    names = [binascii.hexlify(name) for view in views for name in view.names]
    loose = [rev(src, "main"), rev(src, "main~1")]
    with PackObjectReader(store, views) as reader:
        for hexsha in names + names[::-1] + loose:  # twice: cold, then through the base cache
            assert reader.read(hexsha) == store.get_raw(hexsha)
    for viewed in (views, []):  # through the views, then through dulwich's indexes
        with PackObjectReader(store, viewed) as reader:
            for hexsha in names + loose:
                assert reader.type_of(hexsha) == store.get_raw(hexsha)[0]
    with size_reader(store) as sizes:
        for hexsha in names + loose:
            assert sizes.size_of(hexsha) == len(store.get_raw(hexsha)[1])
    sizes_listed = git_pack.object_sizes(store, [ObjectId(n) for n in names[:5]])
    assert [s for _, s in sizes_listed] == [len(store.get_raw(n)[1]) for n in names[:5]]
