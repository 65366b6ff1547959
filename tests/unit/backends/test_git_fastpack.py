"""The fast pack path against real git: index-pack must accept it, fsck must pass, and the
objects sent must be exactly ``git rev-list --objects WANTS --not HAVES``."""

from __future__ import annotations

import binascii
import hashlib
import mmap
import os
import random
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest
from dulwich.repo import MemoryRepo, Repo

from backends import git_pack
from backends.git import DulwichGitRepository
from backends.git_fastpack import (
    OFS_DELTA,
    REF_DELTA,
    Omit,
    WriteStats,
    _open_maps,
    encode_entry_header,
    encode_ofs,
    generate_pack_fast,
    omission,
    plan_pack,
    with_fast_path,
    write_pack,
)
from backends.git_maintenance import has_bitmap, write_bitmap
from backends.git_objects import PackObjectReader
from backends.git_packindex import index_view
from backends.git_reach import BLOB, COMMIT, TAG, TREE, decode_ewah, read_pack_bitmap

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "A U Thor",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "C O Mitter",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_AUTHOR_DATE": "1700000000 +0000",
    "GIT_COMMITTER_DATE": "1700000000 +0000",
}


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd)}
    done = subprocess.run(["git", *args], cwd=cwd, input=input, env=env, capture_output=True, check=False)
    if done.returncode:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def rev(cwd: Path, spec: str) -> bytes:
    return git(cwd, "rev-parse", spec).strip()


# -- the source repositories ---------------------------------------------------------------


def _text(rng: random.Random, lines: int) -> str:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    return "".join(" ".join(rng.choice(words) for _ in range(8)) + f" {rng.randint(0, 999)}\n"
                   for _ in range(lines))


def _commit(work: Path, rng: random.Random, n: int, files: list[str]) -> None:
    for name in rng.sample(files, 3):
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_text() if path.exists() else _text(rng, 200)
        lines = old.splitlines(keepends=True)
        lines[rng.randrange(len(lines))] = _text(rng, 1)
        lines.append(_text(rng, 1))
        path.write_text("".join(lines))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"commit {n}")


def _build(work: Path) -> None:
    rng = random.Random(1234)
    files = [f"dir{i % 4}/sub{i % 3}/file{i}.txt" for i in range(24)]
    git(work, "init", "-q", "-b", "main")
    for n in range(12):
        _commit(work, rng, n, files)
    git(work, "tag", "-a", "v1", "-m", "version 1")
    git(work, "checkout", "-q", "-b", "feature")
    for n in range(12, 17):
        _commit(work, rng, n, files)
    git(work, "checkout", "-q", "main")
    for n in range(17, 20):
        _commit(work, rng, n, files)
    git(work, "merge", "-q", "--no-ff", "-X", "theirs", "-m", "merge feature", "feature")
    for n in range(20, 24):
        _commit(work, rng, n, files)
    git(work, "tag", "-a", "v2", "-m", "version 2")
    git(work, "tag", "-a", "v2-blessed", "-m", "a tag of a tag", "v2")
    git(work, "tag", "light", "HEAD~2")
    git(work, "tag", "-a", "blob-tag", "-m", "a tagged blob", rev(work, "HEAD:dir0/sub0/file0.txt").decode())
    git(work, "repack", "-adfq", "--write-bitmap-index")      # pack 1, with a bitmap
    for n in range(24, 29):
        _commit(work, rng, n, files)
    git(work, "repack", "-dq")                                 # pack 2: incremental, no bitmap
    for n in range(29, 32):
        _commit(work, rng, n, files)                           # loose objects
    git(work, "checkout", "-q", "-b", "dev", "HEAD~1")
    for n in range(32, 34):
        _commit(work, rng, n, files)
    git(work, "checkout", "-q", "main")


@dataclass(frozen=True)
class Source:
    name: str
    path: Path          # the .git directory


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Source]:
    root = tmp_path_factory.mktemp("fastpack")
    work = root / "work"
    work.mkdir()
    _build(work)
    mixed = work / ".git"
    nobitmap = root / "nobitmap.git"
    shutil.copytree(mixed, nobitmap)
    for bitmap in (nobitmap / "objects" / "pack").glob("*.bitmap"):
        bitmap.unlink()
    refdelta = root / "refdelta.git"
    shutil.copytree(mixed, refdelta)
    git(refdelta, "-c", "repack.useDeltaBaseOffset=false", "repack", "-adfq", "--no-write-bitmap-index")
    loose = root / "loose.git"
    git(root, "init", "-q", "--bare", str(loose))
    for pack in sorted((mixed / "objects" / "pack").glob("*.pack")):
        git(loose, "unpack-objects", "-q", input=pack.read_bytes())
    for obj in (mixed / "objects").glob("??/*"):
        target = loose / "objects" / obj.parent.name / obj.name
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            shutil.copy(obj, target)
    for line in git(mixed, "for-each-ref", "--format=%(objectname) %(refname)").splitlines():
        sha, ref = line.decode().split()
        git(loose, "update-ref", ref, sha)
    dupes = root / "dupes.git"  # a third pack repeating objects of the other two and of loose ones
    shutil.copytree(mixed, dupes)
    listed = git(dupes, "rev-list", "--objects", "main~8..main")
    git(dupes, "pack-objects", "-q", str(dupes / "objects" / "pack" / "pack"),
        input=b"\n".join(line[:40] for line in listed.splitlines()) + b"\n")
    tipbitmaps = root / "tipbitmaps.git"  # one pack, a bitmap at every ref's tip
    shutil.copytree(mixed, tipbitmaps)
    git(tipbitmaps, "repack", "-adbq")
    return {name: Source(name, path) for name, path in
            [("mixed", mixed), ("nobitmap", nobitmap), ("refdelta", refdelta), ("loose", loose),
             ("dupes", dupes), ("tipbitmaps", tipbitmaps)]}


# -- the oracle ----------------------------------------------------------------------------


def expected_objects(src: Path, wants: list[bytes], haves: list[bytes]) -> set[bytes]:
    args = [w.decode() for w in wants] + ["^" + h.decode() for h in haves]
    out = git(src, "rev-list", "--objects", "--stdin", input="\n".join(args).encode() + b"\n")
    return {line.split()[0] for line in out.splitlines() if line}


def tags_to_include(src: Path, sent: set[bytes], have: set[bytes]) -> set[bytes]:
    """include-tag: annotated tags (and the tags they point through) whose peeled object is sent."""
    extra: set[bytes] = set()
    for line in git(src, "for-each-ref", "--format=%(objectname) %(objecttype)", "refs/tags").splitlines():
        sha, kind = line.split()
        if kind != b"tag" or rev(src, sha.decode() + "^{}") not in sent:
            continue
        obj = sha
        while git(src, "cat-file", "-t", obj.decode()).strip() == b"tag":
            if obj not in have:
                extra.add(obj)
            obj = git(src, "cat-file", "tag", obj.decode()).split()[1]
    return extra


def client_with(root: Path, src: Path, haves: list[bytes], object_format: str = "sha1") -> tuple[Path, set[bytes]]:
    """A bare repository (of ``object_format``) holding exactly what the haves reach."""
    client = root / f"client-{len(list(root.iterdir()))}"
    git(root, "init", "-q", "--bare", f"--object-format={object_format}", str(client))
    have_objects: set[bytes] = set()
    if haves:
        have_objects = expected_objects(src, haves, [])
        pack = git(src, "pack-objects", "--stdout", "-q", input=b"\n".join(sorted(have_objects)) + b"\n")
        git(client, "index-pack", "--stdin", input=pack)
        for i, have in enumerate(haves):
            git(client, "update-ref", f"refs/have/{i}", have.decode())
    return client, have_objects


def receive(client: Path, pack: bytes, wants: list[bytes], object_format: str = "sha1") -> set[bytes]:
    """index-pack --fix-thin the pack, point refs at the wants, fsck; the pack's object names."""
    out = git(client, "index-pack", "--stdin", "--fix-thin", input=pack).split()
    idx = client / "objects" / "pack" / f"pack-{out[-1].decode()}.idx"
    listed = git(client, "show-index", f"--object-format={object_format}", input=idx.read_bytes())
    names = {line.split()[1] for line in listed.splitlines()}
    for i, want in enumerate(wants):
        git(client, "update-ref", f"refs/want/{i}", want.decode())
    fsck = subprocess.run(["git", "fsck", "--full", "--strict", "--no-dangling"], cwd=client,
                          capture_output=True, env={**os.environ, **GIT_ENV}, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert b"missing" not in fsck.stdout + fsck.stderr
    return names


def generate(src: Path, wants: list[bytes], haves: list[bytes], **kw: bool) -> tuple[bytes, int]:
    repo = Repo(str(src))
    chunks = generate_pack_fast(repo.object_store, wants, haves, chunk_size=4096, refs=repo.get_refs(), **kw)
    assert chunks is not None
    data = b"".join(chunks)
    assert data[:8] == b"PACK\x00\x00\x00\x02"
    return data, int.from_bytes(data[8:12], "big")


# -- the cases -----------------------------------------------------------------------------

CASES = {
    # name: (wants, haves, options)
    "full-clone": (["main", "feature", "dev", "v1", "v2", "v2-blessed", "light", "blob-tag"], [], {}),
    "fetch-thin": (["main"], ["main~6"], {"thin_pack": True}),
    "fetch-not-thin": (["main"], ["main~6"], {"thin_pack": False}),
    "fetch-no-ofs-delta": (["main", "dev"], ["main~9"], {"thin_pack": False, "ofs_delta": False}),
    "fetch-thin-no-ofs": (["main", "dev"], ["main~9", "feature"], {"thin_pack": True, "ofs_delta": False}),
    "fetch-across-packs": (["dev"], ["main~3"], {"thin_pack": True}),
    "old-branch": (["feature"], ["v1"], {"thin_pack": True}),
    "nothing-new": (["feature"], ["main"], {"thin_pack": True}),
    "include-tag": (["main"], ["v1"], {"thin_pack": True, "include_tag": True}),
    "tag-want": (["v2-blessed"], ["main~20"], {}),
}


# every case on the main layouts; the slower ones (all loose, duplicated packs) get a subset
MATRIX = [(v, c) for v in ("mixed", "nobitmap", "refdelta") for c in sorted(CASES)] + [
    (v, c) for v in ("loose", "dupes")
    for c in ("full-clone", "fetch-thin", "fetch-not-thin", "fetch-no-ofs-delta", "include-tag", "tag-want")]


def assert_case_exact(src: Path, tmp_path: Path, case: str) -> tuple[list[bytes], list[bytes], dict[str, bool]]:
    """Generate ``case``'s pack from ``src`` and check it against git: its count, index-pack and
    fsck of a client holding the haves, exactly the objects git's rev-list names; the wants, haves
    and options."""
    want_specs, have_specs, options = CASES[case]
    wants = sorted({rev(src, s) for s in want_specs})
    haves = [rev(src, s + "^{}") for s in have_specs]
    expected = expected_objects(src, wants, haves)
    client, have_objects = client_with(tmp_path, src, haves)
    if options.get("include_tag"):
        expected |= tags_to_include(src, expected, have_objects)
    pack, count = generate(src, wants, haves, **options)
    assert count == len(expected)
    names = receive(client, pack, wants)
    assert names - have_objects == expected
    if not options.get("thin_pack"):
        assert names == expected  # no base was appended: the pack was self-contained
    if options.get("ofs_delta") is False:
        assert OFS_DELTA not in entry_types(pack)
    return wants, haves, options


@pytest.mark.parametrize(("variant", "case"), MATRIX)
def test_pack_is_accepted_and_exact(sources: dict[str, Source], tmp_path: Path, variant: str, case: str) -> None:
    assert_case_exact(sources[variant].path, tmp_path, case)


def test_without_pack_use_bitmaps_the_count_walks(sources: dict[str, Source], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``pack.useBitmaps = false``: git's pack-objects walks though the repository has a bitmap, and
    so does the fast path (it counted from the bitmap); the pack is the same exact one."""
    from backends import git_fastpack

    def looked_for(*_args: object) -> None:
        raise AssertionError("a bitmap was looked for")

    monkeypatch.setattr(git_fastpack, "_find_bitmap", looked_for)
    src = sources["mixed"].path
    wants, haves = sorted({rev(src, "main"), rev(src, "dev")}), [rev(src, "main~6^{}")]
    expected = expected_objects(src, wants, haves)
    client, have_objects = client_with(tmp_path, src, haves)
    pack, count = generate(src, wants, haves, thin_pack=True, use_bitmaps=False)
    assert count == len(expected)
    assert receive(client, pack, wants) - have_objects == expected


def entry_types(pack: bytes, raw_len: int = 20) -> list[int]:
    """Types of all entries of a pack of ``raw_len``-byte ids, read with zlib only (an independent
    parser); checks that the trailing checksum is all that follows them."""
    types, p = [], 12
    for _ in range(int.from_bytes(pack[8:12], "big")):
        byte = pack[p]
        kind = (byte >> 4) & 7
        p += 1
        while byte & 0x80:
            byte = pack[p]
            p += 1
        if kind == OFS_DELTA:
            while pack[p] & 0x80:
                p += 1
            p += 1
        elif kind == REF_DELTA:
            p += raw_len
        inflater = zlib.decompressobj()
        inflater.decompress(pack[p:])
        p = len(pack) - len(inflater.unused_data)
        types.append(kind)
    assert p == len(pack) - raw_len
    return types


def forked(sources: dict[str, Source], tmp_path: Path, commits: int, ref: str) -> tuple[Path, Path]:
    """A copy of the mixed layout and a fork of it (``git clone --shared``: ``objects/info/alternates``)
    pushed ``commits`` commits of its own to ``ref`` (loose objects: a local push)."""
    base = tmp_path / "base.git"
    shutil.copytree(sources["mixed"].path, base)
    fork = tmp_path / "fork.git"
    git(tmp_path, "clone", "-q", "--bare", "--shared", str(base), str(fork))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(fork), str(work))
    for n in range(commits):
        (work / f"own{n}.txt").write_text(f"the fork's own {n}\n")
        git(work, "add", "-A")
        git(work, "-c", "user.name=F", "-c", "user.email=f@example.com", "commit", "-q", "-m", f"own {n}")
    git(work, "push", "-q", str(fork), f"HEAD:{ref}")
    return base, fork


@pytest.mark.parametrize("case", ["full-clone", "include-tag"])
def test_a_fork_s_packs_reuse_the_entries_it_borrows(sources: dict[str, Source], tmp_path: Path, case: str) -> None:
    """A fork that borrows its history (``git clone --shared``: ``objects/info/alternates``) with
    commits of its own: the packs are exact, and the borrowed objects go out as the base stores
    them (its entries and its bitmap reused), not resolved and compressed again one by one."""
    base, fork = forked(sources, tmp_path, commits=1, ref="main")
    assert not list((fork / "objects" / "pack").glob("*.pack"))  # nothing packed of its own
    wants, haves, options = assert_case_exact(fork, tmp_path, case)
    repo = Repo(str(fork))
    plan = plan_pack(repo.object_store, wants, haves, thin_pack=bool(options.get("thin_pack")),
                     ofs_delta=True)
    stats = WriteStats()
    b"".join(write_pack(plan, _open_maps(plan), stats=stats))
    loose = sum(1 for repo_dir in (base, fork) for path in (repo_dir / "objects").glob("??/*") if path.is_file())
    assert stats.whole <= loose and stats.verbatim > 0  # only loose objects go whole: every packed one is reused


def test_full_clone_of_a_single_pack_is_the_pack_itself(sources: dict[str, Source], tmp_path: Path) -> None:
    src = tmp_path / "one.git"
    shutil.copytree(sources["refdelta"].path, src)
    wants = [line.split()[0] for line in git(src, "show-ref", "--heads", "--tags").splitlines()]
    pack, _ = generate(src, sorted(set(wants)), [])
    (stored,) = (src / "objects" / "pack").glob("*.pack")
    assert pack == stored.read_bytes()


def test_stats_show_verbatim_reuse(sources: dict[str, Source]) -> None:
    repo = Repo(str(sources["mixed"].path))
    wants = [repo.refs[b"refs/heads/main"]]
    plan = plan_pack(repo.object_store, wants, [], thin_pack=False, ofs_delta=True)
    stats = WriteStats()
    b"".join(write_pack(plan, _open_maps(plan), stats=stats))
    assert stats.verbatim > 0 and stats.verbatim + stats.rebased + stats.whole == plan.count
    assert stats.whole >= 1  # the loose commits on main


def test_returns_none_when_the_generic_path_must_serve(sources: dict[str, Source]) -> None:
    store = Repo(str(sources["mixed"].path)).object_store
    main = rev(sources["mixed"].path, "main")
    assert generate_pack_fast(store, [b"0" * 40], []) is None
    assert generate_pack_fast(store, [], []) is None
    assert generate_pack_fast(MemoryRepo().object_store, [main], []) is None


def test_unknown_haves_are_ignored(sources: dict[str, Source], tmp_path: Path) -> None:
    src = sources["mixed"].path
    main = rev(src, "main")
    _, count = generate(src, [main], [b"f" * 40])
    assert count == len(expected_objects(src, [main], []))


def test_stream_closes_early_without_error(sources: dict[str, Source]) -> None:
    repo = Repo(str(sources["mixed"].path))
    chunks = generate_pack_fast(repo.object_store, [repo.refs[b"refs/heads/main"]], [], chunk_size=1024)
    assert chunks is not None and isinstance(chunks, Iterator)
    next(chunks)
    chunks.close()


def test_with_fast_path_wraps_git_packs_generate_pack(sources: dict[str, Source], tmp_path: Path) -> None:
    """The switch: fast when it can, the generic generator (same signature) otherwise."""
    src = sources["mixed"].path
    repo = Repo(str(src))
    refs = repo.get_refs()
    main, old = rev(src, "main"), rev(src, "main~6")
    calls: list[object] = []
    messages: list[bytes] = []

    def generic(store: object, plan: object, refs: object, progress: object = None) -> Iterator[bytes]:
        calls.append(plan)
        return git_pack.generate_pack(store, plan, refs, progress)  # type: ignore[arg-type]

    generate_pack = with_fast_path(generic)
    plan = git_pack.PackPlan((main,), (old,), git_pack.ShallowPlan(), True, True, True)
    chunks = generate_pack(repo.object_store, plan, refs, messages.append)
    assert calls == [] and messages == []  # lazy: nothing runs before the first next()
    client, _ = client_with(tmp_path, src, [old])
    receive(client, b"".join(chunks), [main])
    assert calls == [] and messages[0].startswith(b"Enumerating objects: ")
    shallow = git_pack.PackPlan((main,), (), git_pack.ShallowPlan(boundary=frozenset({old})), True, True, False)
    b"".join(generate_pack(repo.object_store, shallow, refs))
    assert calls == []  # shallow requests are served too
    filtered = git_pack.PackPlan((main,), (), git_pack.ShallowPlan(), True, True, False, blob_limit=0)
    b"".join(generate_pack(repo.object_store, filtered, refs))
    assert calls == []  # blob:none, blob:limit and tree:0 too
    declined = git_pack.PackPlan((main,), (), git_pack.ShallowPlan(), True, True, False, tree_depth=1)
    b"".join(generate_pack(repo.object_store, declined, refs))
    assert calls == [declined]


@pytest.mark.parametrize("distance", [1, 127, 128, 129, 16511, 16512, 2**21, 2**35 + 3])
def test_ofs_encoding_round_trips(distance: int) -> None:
    encoded = encode_ofs(distance)
    byte, p = encoded[0], 1
    value = byte & 0x7F
    while byte & 0x80:
        byte = encoded[p]
        p += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    assert (value, p) == (distance, len(encoded))


def test_entry_header_matches_git_for_sizes() -> None:
    assert encode_entry_header(3, 5) == bytes([0x35])
    assert encode_entry_header(1, 16) == bytes([0x90, 0x01])
    assert encode_entry_header(REF_DELTA, 300) == bytes([0xFC, 0x12])


def test_ewah_runs_and_literals() -> None:
    # RLW: 2 words of ones, then one literal word 0b101; 200 bits.
    rlw = (1 << 33) | (2 << 1) | 1
    data = (200).to_bytes(4, "big") + (2).to_bytes(4, "big") + rlw.to_bytes(8, "big") \
        + (5).to_bytes(8, "big") + (0).to_bytes(4, "big")
    bits, end = decode_ewah(data, 0, 200)
    assert end == len(data)
    assert bits == ((1 << 128) - 1) | (5 << 128)


def test_index_view_is_in_pack_order(sources: dict[str, Source]) -> None:
    (pack,) = (sources["refdelta"].path / "objects" / "pack").glob("*.pack")
    view = index_view(str(pack)[:-5])
    assert list(view.offsets) == sorted(view.offsets)
    assert view.entry_end(len(view) - 1) == pack.stat().st_size - 20
    listed = git(pack.parent, "show-index", input=pack.with_suffix(".idx").read_bytes())
    by_name = {bytes.fromhex(line.split()[1].decode()): int(line.split()[0]) for line in listed.splitlines()}
    assert {name: int(view.offsets[view.position(name)]) for name in view.names} == by_name


@pytest.mark.parametrize("variant", ["mixed", "refdelta"])
def test_pack_object_reader_matches_the_store(sources: dict[str, Source], variant: str) -> None:
    store = Repo(str(sources[variant].path)).object_store
    views = [index_view(str(p)[:-5]) for p in sorted((sources[variant].path / "objects" / "pack").glob("*.pack"))]
    with PackObjectReader(store, views) as reader:
        names = [binascii.hexlify(name) for view in views for name in view.names]
        for hexsha in names + names[::-1]:  # twice: cold, then through the base cache
            assert reader.read(hexsha) == store.get_raw(hexsha)


@pytest.mark.parametrize("variant", ["mixed", "refdelta"])
@pytest.mark.parametrize("viewed", [True, False])
def test_pack_object_reader_types_match_the_store(sources: dict[str, Source], variant: str, viewed: bool) -> None:
    """``type_of`` reads only entry headers along the delta chains (OFS and REF), through the
    views or, for a pack without one, dulwich's index; every type is the store's."""
    store = Repo(str(sources[variant].path)).object_store
    packs = sorted((sources[variant].path / "objects" / "pack").glob("*.pack"))
    views = [index_view(str(p)[:-5]) for p in packs]
    names = [binascii.hexlify(name) for view in views for name in view.names]
    with PackObjectReader(store, views if viewed else []) as reader:
        for hexsha in names + names[::-1]:  # twice: cold, then remembered
            assert reader.type_of(hexsha) == store.get_raw(hexsha)[0], hexsha
        with pytest.raises(KeyError):
            reader.type_of(b"1" * 40)


def test_write_bitmap_makes_counting_use_it(sources: dict[str, Source], tmp_path: Path) -> None:
    src = tmp_path / "maint.git"
    shutil.copytree(sources["nobitmap"].path, src)
    store = Repo(str(src)).object_store
    main = rev(src, "main")
    assert not has_bitmap(src)
    assert plan_pack(store, [main], [], thin_pack=False, ofs_delta=True).have_view is None
    assert write_bitmap(src)
    assert has_bitmap(src)
    store = Repo(str(src)).object_store
    plan = plan_pack(store, [main], [], thin_pack=False, ofs_delta=True)
    assert plan.have_view is not None and plan.count == len(expected_objects(src, [main], []))


def test_damaged_bitmap_is_ignored(sources: dict[str, Source], tmp_path: Path) -> None:
    src = tmp_path / "damaged.git"
    shutil.copytree(sources["mixed"].path, src)
    (bitmap,) = (src / "objects" / "pack").glob("*.bitmap")
    bitmap.write_bytes(bitmap.read_bytes()[:100])
    main = rev(src, "main")
    plan = plan_pack(Repo(str(src)).object_store, [main], [], thin_pack=False, ofs_delta=True)
    assert plan.have_view is None and plan.count == len(expected_objects(src, [main], []))


def test_concurrent_generation_gives_identical_packs(sources: dict[str, Source]) -> None:
    src = sources["dupes"].path
    wants = sorted({rev(src, s) for s in ("main", "dev", "feature", "v2-blessed")})
    haves = [rev(src, "main~9")]

    def one(_: int) -> bytes:
        return generate(src, wants, haves, thin_pack=True, include_tag=True)[0]

    with ThreadPoolExecutor(4) as pool:
        packs = list(pool.map(one, range(8)))
    assert len(set(packs)) == 1


SHALLOW_CASES = {
    # name: (wants, extra wants (parents of unshallowed commits), haves, new boundary, client's boundary)
    "depth-1-clone": (["main", "dev"], [], [], ["main", "dev"], []),
    "depth-3-clone": (["main"], [], [], ["main~2"], []),
    "deepen-from-1-to-5": (["main"], ["main~1"], ["main"], ["main~4", "main"], ["main"]),
    "shallow-client-fetches": (["dev"], [], ["main~2"], ["main~2"], ["main~2"]),
    # a client that had been a full clone, now shallow: its old tag and branch are haves below the boundary
    "once-full-client-fetches": (["main", "dev"], [], ["main~1", "v1^{commit}", "feature"], ["main~2", "dev"],
                                 ["main~2"]),
    "once-full-client-deepens": (["main"], ["main~3"], ["main~1", "v1^{commit}"], ["main~6", "main~2"], ["main~2"]),
}


def with_shallow_file(root: Path, src: Path, boundary: list[bytes], name: str) -> Path:
    copy = root / name
    shutil.copytree(src, copy)
    (copy / "shallow").write_bytes(b"".join(b + b"\n" for b in boundary))
    return copy


@pytest.mark.parametrize("variant", ["mixed", "refdelta", "tipbitmaps"])
@pytest.mark.parametrize("case", sorted(SHALLOW_CASES))
def test_shallow_packs_stop_at_the_boundary(sources: dict[str, Source], tmp_path: Path, variant: str,
                                            case: str) -> None:
    src = sources[variant].path
    want_specs, extra_specs, have_specs, boundary_specs, client_specs = SHALLOW_CASES[case]
    wants = sorted({rev(src, s) for s in want_specs})
    extra = [rev(src, s) for s in extra_specs]
    haves = [rev(src, s) for s in have_specs]
    boundary = sorted({rev(src, s) for s in boundary_specs})
    client_boundary = [rev(src, s) for s in client_specs]
    oracle = with_shallow_file(tmp_path, src, boundary, "oracle.git")
    # exact: reach(wants) - reach(haves), both walks stopping at the boundary.  (``rev-list wants
    # ^haves`` would list more here: with main grafted parentless, main~1 is no longer its ancestor.)
    expected = expected_objects(oracle, wants + extra, []) - (expected_objects(oracle, haves, []) if haves else set())
    client = tmp_path / "client.git"
    git(tmp_path, "init", "-q", "--bare", str(client))
    have_objects: set[bytes] = set()
    if haves:
        have_objects = expected_objects(with_shallow_file(tmp_path, src, client_boundary, "old.git"), haves, [])
        pack = git(src, "pack-objects", "--stdout", "-q", input=b"\n".join(sorted(have_objects)) + b"\n")
        git(client, "index-pack", "--stdin", input=pack)
    repo = Repo(str(src))
    chunks = generate_pack_fast(repo.object_store, wants + extra, haves, thin_pack=True, refs=repo.get_refs(),
                                shallow_boundary=boundary)
    assert chunks is not None
    pack = b"".join(chunks)
    assert int.from_bytes(pack[8:12], "big") == len(expected)
    present = expected | have_objects
    still_shallow = [b for b in boundary if not set(parents(src, b)) <= present]
    (client / "shallow").write_bytes(b"".join(b + b"\n" for b in still_shallow))
    names = receive(client, pack, wants)
    assert names - have_objects == expected


def parents(src: Path, commit: bytes) -> list[bytes]:
    return git(src, "rev-list", "--parents", "-n1", commit.decode()).split()[1:]


def test_index_view_reads_large_offsets(tmp_path: Path) -> None:
    """A version-2 index whose second object lies past 2 GiB (the 8-byte offset table)."""
    names = [bytes([1]) * 20, bytes([2]) * 20]
    far = (1 << 31) + 12345
    fanout = b"".join((sum(1 for n in names if n[0] <= i)).to_bytes(4, "big") for i in range(256))
    body = (b"\377tOc" + (2).to_bytes(4, "big") + fanout + b"".join(names) + bytes(8)
            + (12).to_bytes(4, "big") + (0x80000000).to_bytes(4, "big") + far.to_bytes(8, "big")
            + bytes([7]) * 20)
    (tmp_path / "p.idx").write_bytes(body + hashlib.sha1(body).digest())
    (tmp_path / "p.pack").write_bytes(b"PACK")
    view = index_view(str(tmp_path / "p"))
    assert list(view.offsets) == [12, far]
    assert view.position(names[1]) == 1 and view.position_at_offset(far) == 1
    assert view.checksum == bytes([7]) * 20


def test_needs_repack_counts_packs_and_estimates_loose_objects(tmp_path: Path) -> None:
    from backends.git_maintenance import needs_repack

    pack_dir = tmp_path / "objects" / "pack"
    pack_dir.mkdir(parents=True)
    for n in range(3):
        (pack_dir / f"pack-{n}.pack").write_bytes(b"")
        (pack_dir / f"pack-{n}.idx").write_bytes(b"")
    (pack_dir / "pack-x.pack").write_bytes(b"")  # no index yet: a pack being written does not count
    assert needs_repack(tmp_path, 3) and not needs_repack(tmp_path, 4) and not needs_repack(tmp_path, 0)
    loose = tmp_path / "objects" / "17"
    loose.mkdir()
    for n in range(27):  # 27 * 256 > 6,700: git's gc --auto would run
        (loose / f"{n:038x}").write_bytes(b"")
    assert needs_repack(tmp_path, 50)


@pytest.mark.parametrize(("settings", "packs", "loose", "repacked"), [
    ({}, 50, 0, True),                                   # hgwire's limit (50 here)
    ({}, 49, 27, True),                                  # git's gc.auto default: 6,700 loose objects
    ({"gc.autoPackLimit": "5"}, 5, 0, True),             # the repository's own pack limit
    ({"gc.autoPackLimit": "100"}, 50, 0, False),
    ({"gc.autoPackLimit": "0"}, 60, 0, False),           # packs not counted ...
    ({"gc.autoPackLimit": "0"}, 1, 27, True),            # ... loose objects still are
    ({"gc.auto": "1k"}, 1, 5, True),                     # 5 * 256 > 1,024
    ({"gc.auto": "0"}, 60, 27, False),                   # gc --auto off
    ({"receive.autogc": "false"}, 60, 27, False),        # receive-pack runs no gc --auto
    ({"receive.autogc": "true", "gc.auto": "2m"}, 50, 27, True),
    ({"extensions.preciousObjects": "true"}, 60, 27, False),  # git gc neither repacks nor prunes
    ({"extensions.preciousObjects": "false"}, 50, 0, True),
])
def test_a_repository_s_own_gc_settings_decide_its_repacks(
        tmp_path: Path, settings: dict[str, str], packs: int, loose: int, repacked: bool) -> None:
    """As git's receive-pack running ``gc --auto``: ``receive.autogc``, ``gc.auto``, ``gc.autoPackLimit``;
    none where objects are precious (git's repack refuses to delete packs there, its gc skips it)."""
    import subprocess

    from backends import load_backend

    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "r.git")], check=True)
    for key, value in settings.items():
        subprocess.run(["git", "--git-dir", str(tmp_path / "r.git"), "config", key, value], check=True)
    pack_dir = tmp_path / "r.git" / "objects" / "pack"
    for n in range(packs):
        (pack_dir / f"pack-{n:040x}.pack").write_bytes(b"")
        (pack_dir / f"pack-{n:040x}.idx").write_bytes(b"")
    (tmp_path / "r.git" / "objects" / "17").mkdir()
    for n in range(loose):
        (tmp_path / "r.git" / "objects" / "17" / f"{n:038x}").write_bytes(b"")
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    assert (repo.repack_candidate(50) is not None) is repacked  # type: ignore[attr-defined]


@pytest.mark.parametrize("variant", ["mixed", "nobitmap", "refdelta", "dupes"])
def test_objects_without_a_bitmap_are_counted_from_the_index_sizes(sources: dict[str, Source], variant: str) -> None:
    from backends.git_maintenance import packed_objects

    src = sources[variant].path
    in_packs = int(dict(line.split(": ") for line in git(src, "count-objects", "-v").decode().splitlines())["in-pack"])
    bitmapped = any((src / "objects" / "pack").glob("*.bitmap"))
    assert has_bitmap(src) is bitmapped and packed_objects(src) == in_packs and in_packs > 100


@pytest.mark.parametrize(("settings", "more", "candidate"), [
    ({}, 0, True),                                       # as many objects as the threshold
    ({}, 1, False),                                      # one fewer
    ({"receive.autogc": "false"}, 0, False),             # the repository's config turns repacks off
    ({"gc.auto": "0"}, 0, False),
    ({"gc.autoPackLimit": "0"}, 0, True),                # packs not counted: a bitmap is another matter
    ({"pack.useBitmaps": "false"}, 0, False),            # fetches walk whatever the bitmaps: no use for one
])
def test_a_big_repository_without_a_bitmap_is_a_candidate_for_one(
        sources: dict[str, Source], tmp_path: Path, settings: dict[str, str], more: int, candidate: bool) -> None:
    """Every clone of it walks its history: after a push or a fetch it is repacked with a bitmap."""
    from backends import load_backend

    target = tmp_path / "r.git"
    shutil.copytree(sources["nobitmap"].path, target)
    for key, value in settings.items():
        git(target, "config", key, value)
    in_packs = int(dict(line.split(": ") for line in git(target, "count-objects", "-v").decode().splitlines())["in-pack"])
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    assert (repo.bitmap_candidate(in_packs + more) is not None) is candidate  # type: ignore[attr-defined]
    assert (repo.repack_candidate(50, in_packs + more) is not None) is candidate  # type: ignore[attr-defined]
    assert repo.repack_candidate(50) is None  # type: ignore[attr-defined]
    assert repo.bitmap_candidate(0) is None  # type: ignore[attr-defined]
    write_bitmap(target)
    assert repo.bitmap_candidate(1) is None  # type: ignore[attr-defined]


def test_a_repository_of_loose_objects_is_a_bitmap_candidate_and_read_raw(
        sources: dict[str, Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository whose objects are all loose (brought as it was, never repacked) counts its loose
    objects (estimated as gc --auto does) towards a bitmap's repack, and its objects are read as
    stored, not parsed by dulwich."""
    from dulwich.objects import ShaFile

    from backends import load_backend
    from backends.git_maintenance import estimate_loose

    target = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(target))
    for pack in (sources["nobitmap"].path / "objects" / "pack").glob("*.pack"):
        git(target, "unpack-objects", "-q", input=pack.read_bytes())
    loose = estimate_loose(target)
    assert loose > 0 and not list((target / "objects" / "pack").glob("*.pack"))
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    assert repo.bitmap_candidate(loose) is not None  # type: ignore[attr-defined]
    objects = [line.split()[0] for line in
               git(target, "cat-file", "--batch-all-objects", "--batch-check").splitlines()]
    monkeypatch.setattr(ShaFile, "from_path", lambda *a, **k: pytest.fail("a loose object was parsed"))
    with PackObjectReader(repo.object_store, []) as reader:
        for oid in objects[:50]:
            kind, raw = reader.read(oid)
            assert raw == git(target, "cat-file", {1: "commit", 2: "tree", 3: "blob", 4: "tag"}[kind], oid.decode())


def test_a_pack_a_repack_removed_meanwhile_is_read_from_its_successor(sources: dict[str, Source],
                                                                     tmp_path: Path) -> None:
    """A push's ingest lists the packs, then a background repack replaces them: objects the listed
    views name are read from the store's new pack, and the listing skips the gone ones (a push
    failed "could not store the pushed pack (No such file or directory)")."""
    from backends import load_backend
    from backends.git_ingest import cheap_views

    target = tmp_path / "r.git"
    shutil.copytree(sources["nobitmap"].path, target)
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    store = repo.object_store
    views, _ = cheap_views(store)  # (small packs: every one viewed)
    objects = [line.split()[0] for line in
               git(target, "cat-file", "--batch-all-objects", "--batch-check").splitlines()][:40]
    git(target, "repack", "-q", "-a", "-d")  # the old packs go, one new pack holds everything
    assert all(not os.path.exists(v.pack_path) for v in views)
    with PackObjectReader(store, views) as reader:
        for oid in objects:
            kind, raw = reader.read(oid)
            assert raw == git(target, "cat-file", {1: "commit", 2: "tree", 3: "blob", 4: "tag"}[kind], oid.decode())
            assert reader.type_of(oid) == kind and reader.size_of(oid) == len(raw)
    fresh, _ = cheap_views(store)
    assert [v.pack_path for v in fresh] == [str(p)[:-5] + ".pack" for p in (target / "objects" / "pack").glob("*.pack")]


def test_a_fork_s_repack_keeps_borrowing_from_its_alternates(sources: dict[str, Source], tmp_path: Path) -> None:
    """A fork whose history lives in another repository's objects (``clone --shared``: an
    ``objects/info/alternates``) is repacked with its own objects only, as ``git gc`` repacks it:
    the borrowed history is not copied in."""
    base, fork = forked(sources, tmp_path, commits=3, ref="refs/heads/own")
    borrowed = int(dict(line.split(": ") for line in git(base, "count-objects", "-v").decode().splitlines())["in-pack"])
    assert write_bitmap(fork)
    counts = dict(line.split(": ") for line in git(fork, "count-objects", "-v").decode().splitlines())
    assert 9 <= int(counts["in-pack"]) < borrowed // 10, counts  # its own commits, trees and blobs only
    assert (fork / "objects" / "info" / "alternates").exists()
    git(fork, "fsck", "--full")


def test_a_multi_pack_index_bitmap_alone_is_a_bitmap_hgwire_counts_from(sources: dict[str, Source],
                                                                        tmp_path: Path) -> None:
    """``git repack --write-midx -b`` (hosts that repack geometrically) leaves a bitmap of the
    multi-pack index only: hgwire counts from it as git does, and starts no repack for a bitmap
    (``backends.git_midx``; the other layouts are in ``test_git_midx``)."""
    from backends import load_backend
    from backends.git_maintenance import packed_objects

    target = tmp_path / "r.git"
    shutil.copytree(sources["nobitmap"].path, target)
    git(target, "repack", "-q", "-a", "-d", "--write-midx", "--write-bitmap-index")
    pack_dir = target / "objects" / "pack"
    assert [p.name for p in pack_dir.glob("*.bitmap")] == [p.name for p in pack_dir.glob("multi-pack-index-*.bitmap")]
    assert has_bitmap(target) and packed_objects(target) > 100
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    assert repo.bitmap_candidate(100) is None  # type: ignore[attr-defined]
    main = rev(target, "main")
    plan = plan_pack(Repo(str(target)).object_store, [main], [], thin_pack=False, ofs_delta=True)
    assert plan.have_view is not None and plan.have_view.pack_path == str(pack_dir / "multi-pack-index")
    assert plan.count == len(expected_objects(target, [main], []))


@pytest.mark.parametrize(("key", "value"), [("gc.auto", "lots"), ("gc.autoPackLimit", ""),
                                            ("receive.autogc", "maybe")])
def test_a_gc_setting_git_would_not_read_is_an_error_naming_it(tmp_path: Path, key: str, value: str) -> None:
    import subprocess

    from backends import load_backend
    from backends.git import ConfigValueError

    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "r.git")], check=True)
    (tmp_path / "r.git" / "config").write_text(
        (tmp_path / "r.git" / "config").read_text() + f"[{key.split('.')[0]}]\n\t{key.split('.')[1]} = {value}\n")
    repo = load_backend("fs", str(tmp_path)).open("r.git")
    with pytest.raises(ConfigValueError, match=key.lower()):
        repo.repack_candidate(50)  # type: ignore[attr-defined]


# -- partial clones (filters) ---------------------------------------------------------------

FILTERS = {"blob:none": Omit(frozenset({BLOB})), "tree:0": Omit(frozenset({TREE, BLOB})),
           "blob:limit=10000": Omit(blobs_from=10000)}
FILTER_CASES = ("fetch-thin", "fetch-not-thin", "fetch-no-ofs-delta", "fetch-across-packs", "old-branch",
                "include-tag", "tag-want")


def filtered_objects(src: Path, wants: list[bytes], haves: list[bytes], spec: str) -> set[bytes]:
    """What git's upload-pack sends for ``spec``: its rev-list with the filter."""
    args = [w.decode() for w in wants] + ["^" + h.decode() for h in haves]
    out = git(src, "rev-list", "--objects", f"--filter={spec}", "--stdin", input="\n".join(args).encode() + b"\n")
    return {line.split()[0] for line in out.splitlines() if line}


@pytest.mark.parametrize("variant", ["mixed", "nobitmap", "refdelta", "dupes"])
@pytest.mark.parametrize("spec", sorted(FILTERS))
def test_a_filtered_pack_holds_what_git_s_filter_keeps(sources: dict[str, Source], tmp_path: Path, variant: str,
                                                       spec: str) -> None:
    """From the bitmap's type bitsets (mixed, dupes), from the pack entries' headers (the objects
    of the other packs, the loose ones; every object without a bitmap)."""
    assert_filtered_exact(sources[variant].path, tmp_path, spec)


def assert_filtered_exact(src: Path, tmp_path: Path, spec: str) -> None:
    """Each of ``FILTER_CASES`` filtered by ``spec`` from ``src``: what git's rev-list with the filter
    names, taken by index-pack."""
    store = Repo(str(src)).object_store
    for case in FILTER_CASES:
        want_specs, have_specs, options = CASES[case]
        wants = sorted({rev(src, s) for s in want_specs})
        haves = [rev(src, s + "^{}") for s in have_specs]
        expected = filtered_objects(src, wants, haves, spec)
        client, have_objects = client_with(tmp_path, src, haves)
        # git's pack-objects follows the tags of what the filter let through: a blob it left out
        # takes its tag with it
        if options.get("include_tag"):
            expected |= tags_to_include(src, expected, have_objects)
        chunks = generate_pack_fast(store, wants, haves, chunk_size=4096, refs=Repo(str(src)).get_refs(),
                                    omit=FILTERS[spec], **options)
        assert chunks is not None, case
        pack = b"".join(chunks)
        out = git(client, "index-pack", "--stdin", "--fix-thin", input=pack).split()
        idx = client / "objects" / "pack" / f"pack-{out[-1].decode()}.idx"
        names = {line.split()[1] for line in git(client, "show-index", input=idx.read_bytes()).splitlines()}
        assert names - have_objects == expected, case
        assert int.from_bytes(pack[8:12], "big") == len(expected), case


def test_the_blob_limit_splits_the_blobs(sources: dict[str, Source]) -> None:
    """(else the blob:limit case above would test nothing that blob:none and no filter do not)"""
    src = sources["mixed"].path
    main = [rev(src, "main")]
    limited = filtered_objects(src, main, [], "blob:limit=10000")
    assert filtered_objects(src, main, [], "blob:none") < limited < expected_objects(src, main, [])


def test_a_filter_with_a_wanted_tree_or_tag_of_one_is_left_to_the_generic_path(sources: dict[str, Source]) -> None:
    src = sources["mixed"].path
    store = Repo(str(src)).object_store
    omit = FILTERS["blob:none"]
    for want in ("blob-tag", "main^{tree}", "main:dir0"):  # a tag of a blob, trees
        assert generate_pack_fast(store, [rev(src, want)], [], omit=omit) is None, want
    assert generate_pack_fast(store, [rev(src, "v2-blessed")], [], omit=omit) is not None  # a tag of a tag of a commit


@pytest.mark.parametrize("variant", ["mixed", "nobitmap", "loose"])
@pytest.mark.parametrize("spec", sorted(FILTERS))
def test_wanted_blobs_are_sent_whatever_the_filter(sources: dict[str, Source], tmp_path: Path, variant: str,
                                                   spec: str) -> None:
    """How a partial clone's checkout fetches the blobs it lacks: ``want`` each, with the filter."""
    src = sources[variant].path
    paths = git(src, "ls-tree", "-r", "--name-only", "v1").decode().split()[:3]
    wants = sorted({rev(src, f"{tip}:{path}") for tip in ("v1", "main") for path in paths})
    chunks = generate_pack_fast(Repo(str(src)).object_store, wants, [], omit=FILTERS[spec])
    assert chunks is not None
    client, _ = client_with(tmp_path, src, [])
    out = git(client, "index-pack", "--stdin", input=b"".join(chunks)).split()
    idx = client / "objects" / "pack" / f"pack-{out[-1].decode()}.idx"
    names = {line.split()[1] for line in git(client, "show-index", input=idx.read_bytes()).splitlines()}
    assert names == set(wants) == filtered_objects(src, wants, [], spec)


def test_a_request_maps_each_pack_once(sources: dict[str, Source], monkeypatch: pytest.MonkeyPatch) -> None:
    """The counting, the writer and the reader of the objects sent whole share one map of a pack
    (three maps of it were three times its pages in the server's memory)."""
    src = sources["mixed"].path
    paths = git(src, "ls-tree", "-r", "--name-only", "v1").decode().split()
    wants = sorted({rev(src, f"{tip}:{path}") for tip in ("v1", "main~3", "main") for path in paths})
    mapped: list[str] = []

    class CountedMap(mmap.mmap):
        def __new__(cls, fileno: int, *args: Any, **kwargs: Any) -> Self:
            path = os.readlink(f"/proc/self/fd/{fileno}")
            if path.endswith(".pack"):  # index maps are the index views' and dulwich's own
                mapped.append(path)
            return super().__new__(cls, fileno, *args, **kwargs)

    monkeypatch.setattr(mmap, "mmap", CountedMap)
    progress: list[bytes] = []
    chunks = generate_pack_fast(Repo(str(src)).object_store, wants, [], omit=FILTERS["blob:none"],
                                progress=progress.append)
    assert chunks is not None
    b"".join(chunks)
    assert int(progress[-1].split(b"whole ")[1].rstrip(b")\n")) >= 1, "blobs whose delta base is not sent"
    assert mapped and len(mapped) == len(set(mapped)), mapped


@pytest.mark.parametrize(("blob_limit", "tree_depth", "object_types", "omit"), [
    (-1, None, None, Omit(frozenset({BLOB}))),               # blob:none
    (0, None, None, Omit(frozenset({BLOB}))),                # blob:limit=0
    (6, None, None, Omit(blobs_from=6)),                     # blob:limit=6
    (None, 0, None, Omit(frozenset({TREE, BLOB}))),          # tree:0
    (6, 0, None, Omit(frozenset({TREE, BLOB}))),             # combine:tree:0+blob:limit=6
    (None, 1, None, None),                                   # tree:1: the generic path
    (None, None, frozenset({COMMIT}), None),                 # object:type=commit: the generic path
])
def test_which_filters_the_fast_path_serves(blob_limit: int | None, tree_depth: int | None,
                                            object_types: frozenset[int] | None, omit: Omit | None) -> None:
    assert omission(blob_limit, tree_depth, object_types) == omit


def test_a_bitmap_s_type_bitsets_are_the_pack_s_types(sources: dict[str, Source]) -> None:
    src = sources["mixed"].path
    (bitmap_file,) = (src / "objects" / "pack").glob("*.bitmap")
    view = index_view(str(bitmap_file)[:-len(".bitmap")])
    bitmap = read_pack_bitmap(str(bitmap_file), view)
    kinds = {b"commit": COMMIT, b"tree": TREE, b"blob": BLOB, b"tag": TAG}
    listed = git(src, "cat-file", "--batch-check=%(objecttype)", input=b"\n".join(
        binascii.hexlify(name) for name in view.names) + b"\n").split()
    for type_num in (COMMIT, TREE, BLOB, TAG):
        bits = bitmap.of_type(type_num)
        assert [pos for pos in range(len(view)) if bits >> pos & 1] == [
            pos for pos, kind in enumerate(listed) if kinds[kind] == type_num]


def test_closing_a_repository_lets_go_of_its_packs_and_a_later_read_opens_them_again(
        sources: dict[str, Source], tmp_path: Path) -> None:
    from backends import load_backend

    shutil.copytree(sources["mixed"].path, tmp_path / "r.git")
    pack_dir = str(tmp_path / "r.git" / "objects" / "pack") + "/"

    def maps() -> int:
        with open("/proc/self/maps") as f:
            return sum(1 for line in f if line.rstrip("\n").split(" ")[-1].startswith(pack_dir))

    repo = load_backend("fs", str(tmp_path)).open("r.git")
    main = repo.refs()[b"refs/heads/main"]  # type: ignore[attr-defined]
    assert repo.object_store[main].type_name == b"commit" and maps() > 0  # type: ignore[attr-defined]
    repo.close()  # type: ignore[attr-defined]
    assert maps() == 0
    assert repo.object_store[main].type_name == b"commit"  # type: ignore[attr-defined]
    repo.close()  # type: ignore[attr-defined]
    borrowed = DulwichGitRepository("r.git", Repo(str(tmp_path / "r.git")))  # not opened for it: left open
    assert borrowed.object_store[main].type_name == b"commit"
    borrowed.close()
    assert maps() > 0
    borrowed.dulwich_repo.close()


@pytest.mark.parametrize("variant", ["mixed", "nobitmap"])
def test_a_fetch_with_nothing_new_walks_nothing(sources: dict[str, Source], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    """A shallow client's ``fetch --depth`` with nothing new wants what it has: without a bitmap the
    walks of its haves covered whatever history it still held (0.37 s of 0.45 on the corpus)."""
    from backends import git_reach

    src = sources[variant].path
    tips = [rev(src, "main"), rev(src, "dev")]
    client, _ = client_with(tmp_path, src, tips)

    def walk(*_args: object, **_kwargs: object) -> git_reach.Reached:
        raise AssertionError("walked")

    monkeypatch.setattr(git_reach.Walker, "_start", walk)  # (every walk starts there)
    chunks = generate_pack_fast(Repo(str(src)).object_store, tips, [*tips, rev(src, "main~3")],
                                shallow_boundary=frozenset({rev(src, "main~2")}), include_tag=True,
                                refs=Repo(str(src)).get_refs())
    assert chunks is not None
    pack = b"".join(chunks)
    assert int.from_bytes(pack[8:12], "big") == 0
    git(client, "index-pack", "--stdin", input=pack)  # a valid (empty) pack
    with pytest.raises(AssertionError, match="walked"):  # one want it does not have: counted as before
        generate_pack_fast(Repo(str(src)).object_store, tips, tips[:1])


def _counting_bitmap_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A fresh cache of bitmaps; counts of bitmap files read and EWAH bitsets decoded."""
    from backends import git_fastpack, git_reach
    from backends.lru import LruCache

    counts = {"files": 0, "decoded": 0}
    monkeypatch.setattr(git_fastpack, "_BITMAPS", LruCache(git_fastpack.MAX_KEPT_BITMAPS_BYTES,
                                                           git_fastpack._BITMAPS._cost))
    real_read, real_decode = git_fastpack.read_pack_bitmap, git_reach.decode_ewah

    def read(*args: Any) -> Any:
        counts["files"] += 1
        return real_read(*args)

    def decode(*args: Any) -> Any:
        counts["decoded"] += 1
        return real_decode(*args)

    monkeypatch.setattr(git_fastpack, "read_pack_bitmap", read)
    monkeypatch.setattr(git_reach, "decode_ewah", decode)
    return counts


def test_a_bitmap_is_read_once_and_its_bitsets_kept_for_the_next_requests(
        sources: dict[str, Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "kept.git"
    shutil.copytree(sources["mixed"].path, src)
    counts = _counting_bitmap_reads(monkeypatch)
    wants, haves = [rev(src, "main"), rev(src, "dev")], [rev(src, "main~6"), rev(src, "feature")]
    expected = len(expected_objects(src, wants, haves))
    first = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True)
    assert first.have_view is not None and first.count == expected
    assert counts["files"] == 1 and counts["decoded"] > 0
    decoded = counts["decoded"]
    again = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True)
    assert again.count == expected
    assert counts == {"files": 1, "decoded": decoded}, "the second request reads and decodes nothing"

    (work := tmp_path / "work").mkdir()  # a new commit, then a repack that writes a new bitmap
    git(tmp_path, "clone", "-q", str(src), str(work))
    (work / "new.txt").write_text("new\n")
    git(work, "add", "new.txt")
    git(work, "commit", "-q", "-m", "new")
    git(work, "push", "-q", str(src), "HEAD:refs/heads/next")
    git(src, "repack", "-adbq")
    wants = [rev(src, "next")]
    plan = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True)
    assert counts["files"] == 2, "a new bitmap file is read"
    assert plan.have_view is not None and plan.count == len(expected_objects(src, wants, haves))


def test_the_bitsets_kept_of_a_bitmap_are_bounded(sources: dict[str, Source], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import git_fastpack, git_reach

    src = tmp_path / "bounded.git"
    shutil.copytree(sources["mixed"].path, src)
    _counting_bitmap_reads(monkeypatch)
    size = len(index_view(str(next((src / "objects" / "pack").glob("*.bitmap")))[:-len(".bitmap")]))
    monkeypatch.setattr(git_reach, "MAX_DECODED_BYTES", 2 * (size // 8 + 1))  # two bitsets
    cases = [(["main"], ["main~6"]), (["dev", "main"], ["main~9", "feature"]), (["feature"], ["v1"]),
             (["main"], ["main~3", "dev"])]
    for _ in range(2):
        for want_specs, have_specs in cases:
            wants, haves = [rev(src, s) for s in want_specs], [rev(src, s + "^{}") for s in have_specs]
            plan = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True)
            assert plan.count == len(expected_objects(src, wants, haves))
            kept = git_fastpack._BITMAPS.get(str(next((src / "objects" / "pack").glob("*.bitmap"))))
            assert kept is not None and len(kept.bitmap._decoded) <= 2
            assert kept.bitmap.view is git_fastpack._NO_VIEW, "the kept bitmap holds no index view"


def test_a_kept_bitmap_counts_what_it_may_hold(sources: dict[str, Source]) -> None:
    from backends import git_fastpack, git_reach

    (bitmap_file,) = (sources["mixed"].path / "objects" / "pack").glob("*.bitmap")
    view = index_view(str(bitmap_file)[:-len(".bitmap")])
    bitmap = read_pack_bitmap(str(bitmap_file), view)
    bitset = len(view) // 8 + 1
    cost = git_fastpack._bitmap_cost(git_fastpack._KeptBitmap((0, 0, 0), view.checksum, len(view), bitmap))
    assert cost == (bitmap_file.stat().st_size + (len(bitmap.entries) + 4) * bitset
                    + git_reach.MAX_KEPT_CLOSURES * (bitset + git_reach.CLOSURE_BYTES))
    assert cost < git_reach.MAX_DECODED_BYTES // 100, "a small repository's bitmap is not charged the bound"


def test_a_shallow_request_takes_the_bitmaps_that_hold_no_boundary_commit(
        sources: dict[str, Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that had been a full clone and fetches with ``--depth``: its old tag and branch
    are counted from their bitmaps (their whole history is the client's), its main is walked down
    to the boundary; the pack is the same as when everything is walked."""
    from backends import git_reach

    src = tmp_path / "shallow-bitmaps.git"
    shutil.copytree(sources["tipbitmaps"].path, src)
    _counting_bitmap_reads(monkeypatch)
    wants, haves = [rev(src, "main"), rev(src, "dev")], [rev(src, "main~1"), rev(src, "v1^{commit}"),
                                                         rev(src, "feature")]
    boundary = [rev(src, "main~2"), rev(src, "dev")]
    reads: list[bytes] = []
    real_read = git_reach.Walker._read

    def counted(self: Any, sha: bytes) -> tuple[int, bytes]:
        reads.append(sha)
        return real_read(self, sha)

    monkeypatch.setattr(git_reach.Walker, "_read", counted)
    store = Repo(str(src)).object_store
    plan = plan_pack(store, wants, haves, thin_pack=True, ofs_delta=True, shallow_boundary=boundary)
    with_bitmaps = len(reads)
    for bitmap in (src / "objects" / "pack").glob("*.bitmap"):
        bitmap.unlink()
    reads.clear()
    walked = plan_pack(Repo(str(src)).object_store, wants, haves, thin_pack=True, ofs_delta=True,
                       shallow_boundary=boundary)
    assert plan.count == walked.count
    assert with_bitmaps < len(reads) // 2, (with_bitmaps, len(reads))


class CountingStore:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.reads: list[bytes] = []

    def __getitem__(self, oid: bytes) -> Any:
        self.reads.append(oid)
        return self.store[oid]

    def get_raw(self, oid: bytes) -> tuple[int, bytes]:
        self.reads.append(oid)
        return self.store.get_raw(oid)  # type: ignore[no-any-return]

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.store


def test_an_advertisement_peels_packed_tags_without_reading_them(
        sources: dict[str, Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tags ``git pack-refs`` packed (a tag of a tag, of a blob, a lightweight one) are peeled as
    packed-refs records them; a loose tag over a packed one is read."""
    from backends import git as git_backend

    src = tmp_path / "packed.git"
    shutil.copytree(sources["mixed"].path, src)
    git(src, "pack-refs", "--all")
    loose_target = rev(src, "v1")  # a loose v2 over the packed one
    (src / "refs" / "tags").mkdir(parents=True, exist_ok=True)
    (src / "refs" / "tags" / "v2").write_bytes(loose_target + b"\n")
    expected = {}
    for line in git(src, "show-ref", "-d").splitlines():
        oid, name = line.split(b" ", 1)
        if name.endswith(b"^{}"):
            expected[name[:-3]] = oid
    assert set(expected) == {b"refs/tags/v1", b"refs/tags/v2", b"refs/tags/v2-blessed", b"refs/tags/blob-tag"}

    monkeypatch.setattr(git_pack, "_peeled", {})  # nothing known from earlier tests
    monkeypatch.setattr(git_backend, "_PACKED_REFS", git_backend.LruCache(1000, git_backend._packed_cost))
    repo = DulwichGitRepository("packed.git", Repo(str(src)))
    counting = CountingStore(repo.object_store)
    monkeypatch.setattr(repo.dulwich_repo, "object_store", counting)
    snapshot = git_pack.snapshot_refs(repo)
    assert snapshot.peeled == expected
    assert snapshot.peeled[b"refs/tags/v2"] == expected[b"refs/tags/v1"]
    assert set(counting.reads) <= {loose_target, expected[b"refs/tags/v1"]}, \
        "only the loose ref's tag (which the file does not cover) was read"

    monkeypatch.setattr(git_pack, "_peeled", {})
    plain = DulwichGitRepository("packed.git", Repo(str(src)))
    monkeypatch.setattr(plain, "known_peeled", dict)
    assert git_pack.snapshot_refs(plain) == snapshot, "the same as reading every object"
    plain.close()
    repo.close()


def test_a_large_object_sent_whole_goes_out_in_pieces_of_the_chunk_size(tmp_path: Path) -> None:
    """A 3 MiB blob sent whole (loose, so resolved and compressed) was handed out as one 3 MiB
    chunk, past the chunk size the transport's backpressure is built around."""
    src = tmp_path / "src"
    git(tmp_path, "init", "-q", "-b", "main", str(src))
    (src / "small").write_text("small\n")
    git(src, "add", "small")
    git(src, "commit", "-q", "-m", "small")
    git(src, "repack", "-adq")
    old = rev(src, "main")
    client = tmp_path / "client"
    git(tmp_path, "clone", "-q", "--bare", str(src), str(client))
    (src / "large").write_bytes(random.Random(3).randbytes(3 << 20))  # does not compress: 3 MiB whole
    git(src, "add", "large")
    git(src, "commit", "-q", "-m", "large")
    main = rev(src, "main")
    repo = Repo(str(src))
    chunks = generate_pack_fast(repo.object_store, [main], [old], chunk_size=64 * 1024)
    assert chunks is not None
    pieces = list(chunks)
    pack = b"".join(pieces)
    assert len(pack) > 3 << 20
    assert max(len(piece) for piece in pieces) <= 64 * 1024
    assert receive(client, pack, [main]) == expected_objects(src, [main], [old])
