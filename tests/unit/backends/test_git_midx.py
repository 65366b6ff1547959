"""Counting from a multi-pack index's bitmap (``backends.git_midx``): what a repository repacked
geometrically (``git repack --geometric=2 --write-midx -b``) or by ``git multi-pack-index write
--bitmap`` holds.  The layout is checked against git itself (each bitmapped commit's bits are
``git rev-list --objects`` of it), the packs served from it against git's index-pack, fsck and
rev-list, and a damaged or stale index is passed over, never trusted."""

from __future__ import annotations

import binascii
import hashlib
import os
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest
from dulwich.repo import Repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import git_midx
from backends.git_fastpack import WriteStats, _open_maps, plan_pack, write_pack
from backends.git_maintenance import has_bitmap
from backends.git_midx import MIDX_NAME, MidxError, midx_bitmap_present, read_midx
from backends.git_packindex import pack_views
from backends.git_reach import read_pack_bitmap
from tests.unit.backends.test_git_fastpack import (  # noqa: F401 - ``sources`` is a fixture
    CASES,
    FILTERS,
    GIT_ENV,
    Source,
    assert_case_exact,
    assert_filtered_exact,
    expected_objects,
    git,
    rev,
    sources,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")


def _pack_dir(repo: Path) -> Path:
    return repo / "objects" / "pack"


def _views(repo: Path) -> dict[str, object]:
    return {view.pack_path: view for view in pack_views(str(_pack_dir(repo)))}


def _layout(repo: Path) -> git_midx.MidxLayout:
    return read_midx(str(_pack_dir(repo) / MIDX_NAME), 20, _views(repo).get)  # type: ignore[arg-type]


def _chunk_table(data: bytes) -> list[tuple[bytes, int]]:
    return [(data[at:at + 4], int.from_bytes(data[at + 4:at + 12], "big"))
            for at in range(12, 12 + (data[6] + 1) * 12, 12)]


def _without_ridx(repo: Path) -> None:
    """Rewrite the multi-pack index without its RIDX chunk, as git before 2.39 wrote it (the reverse
    index in ``multi-pack-index-<checksum>.rev``); the bitmap and the .rev renamed to the new checksum."""
    pack_dir = _pack_dir(repo)
    data = (pack_dir / MIDX_NAME).read_bytes()
    old = data[-20:].hex()
    table = _chunk_table(data)
    chunks = [(cid, data[start:end]) for (cid, start), (_n, end) in pairwise(table) if cid != b"RIDX"]
    assert len(chunks) == len(table) - 2, "the index had a RIDX chunk"
    offset = 12 + (len(chunks) + 1) * 12
    head = data[:6] + bytes([len(chunks)]) + data[7:12]
    for cid, body in chunks:
        head += cid + offset.to_bytes(8, "big")
        offset += len(body)
    head += b"\0\0\0\0" + offset.to_bytes(8, "big")
    body = head + b"".join(body for _cid, body in chunks)
    new = hashlib.sha1(body).digest()
    (pack_dir / MIDX_NAME).chmod(0o644)
    (pack_dir / MIDX_NAME).write_bytes(body + new)
    for suffix in (".bitmap", ".rev"):
        source = pack_dir / f"{MIDX_NAME}-{old}{suffix}"
        content = source.read_bytes()
        if suffix == ".rev":  # its trailer names the index: the index's checksum, then its own
            content = content[:-40] + new
            content += hashlib.sha1(content).digest()
        else:  # the bitmap's header names the index too
            content = content[:12] + new + content[32:]
        source.unlink()
        (pack_dir / f"{MIDX_NAME}-{new.hex()}{suffix}").write_bytes(content)


@pytest.fixture(scope="module")
def layouts(sources: dict[str, Source], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    """Three packs (one repeating objects of the others) and loose objects under a multi-pack index
    with a bitmap: ``midx`` (the first pack's own bitmap kept beside it), ``midx-preferred`` (the
    pack of repeats preferred: the index takes their copies from it), ``midx-rev`` (that one as git
    before 2.39 wrote it: a .rev file, no RIDX chunk)."""
    root = tmp_path_factory.mktemp("midx")
    found = {}
    midx = root / "midx.git"
    shutil.copytree(sources["dupes"].path, midx)
    git(midx, "multi-pack-index", "write", "--bitmap")
    found["midx"] = midx
    preferred = root / "preferred.git"
    shutil.copytree(sources["dupes"].path, preferred)
    for bitmap in _pack_dir(preferred).glob("pack-*.bitmap"):
        bitmap.unlink()
    mixed = {p.name for p in _pack_dir(sources["mixed"].path).glob("*.idx")}
    (repeats,) = [p.name for p in _pack_dir(preferred).glob("*.idx") if p.name not in mixed]
    git(preferred, "multi-pack-index", "write", "--bitmap", f"--preferred-pack={repeats}")
    found["midx-preferred"] = preferred
    old = root / "old.git"
    shutil.copytree(sources["dupes"].path, old)
    for bitmap in _pack_dir(old).glob("pack-*.bitmap"):
        bitmap.unlink()
    subprocess.run(["git", "multi-pack-index", "write", "--bitmap", f"--preferred-pack={repeats}"], cwd=old,
                   env={**os.environ, **GIT_ENV, "HOME": str(old), "GIT_TEST_MIDX_WRITE_REV": "1"},
                   capture_output=True, check=True)
    _without_ridx(old)
    found["midx-rev"] = old
    for repo in found.values():
        git(repo, "multi-pack-index", "verify")
    return found


VARIANTS = ("midx", "midx-preferred", "midx-rev")


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_bitmapped_commit_s_bits_are_what_git_says_it_reaches(layouts: dict[str, Path], variant: str) -> None:
    repo = layouts[variant]
    layout = _layout(repo)
    # (a pack whose every object the index takes from another has no run: the preferred one's repeats;
    # between two others git takes the newer pack's copy, by whole seconds, so which one is a matter of timing)
    assert 2 <= len(layout.packs) <= 3 and layout.starts[-1] == len(layout.view)
    assert {os.path.basename(p) for p in layout.packs} <= {p.name for p in _pack_dir(repo).glob("*.pack")}
    assert list(layout.starts) == sorted(set(layout.starts)), "each pack has a run of its own"
    bitmap = read_pack_bitmap(layout.bitmap_path(), layout.view)
    assert bitmap.by_commit
    for commit in bitmap.by_commit:
        bits = bitmap.bitmap(commit)
        assert bits is not None
        named = {binascii.hexlify(layout.view.names[pos]) for pos in range(len(layout.view)) if bits >> pos & 1}
        assert named == expected_objects(repo, [binascii.hexlify(commit)], [])
    for pos, name in enumerate(layout.view.names):  # each position's pack holds that object there
        run = next(i for i, end in enumerate(layout.starts[1:]) if pos < end)
        view = _views(repo)[layout.packs[run]]
        assert view.names[layout.pack_positions[pos]] == name  # type: ignore[attr-defined]


def test_the_preferred_pack_comes_first_and_its_copies_are_taken(layouts: dict[str, Path]) -> None:
    layout = _layout(layouts["midx-preferred"])
    first = _views(layouts["midx-preferred"])[layout.packs[0]]
    assert layout.starts[1] == len(first), "every object of the preferred pack is taken from it"  # type: ignore[arg-type]
    assert _layout(layouts["midx"]).packs[0] != layout.packs[0]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("variant", VARIANTS)
def test_packs_counted_from_the_index_s_bitmap_are_exact(layouts: dict[str, Path], tmp_path: Path,
                                                         variant: str, case: str) -> None:
    repo = layouts[variant]
    wants, haves, options = assert_case_exact(repo, tmp_path, case)
    plan = plan_pack(Repo(str(repo)).object_store, wants, haves, thin_pack=bool(options.get("thin_pack")),
                     ofs_delta=options.get("ofs_delta", True))
    assert plan.have_view is not None and plan.have_view.pack_path.endswith(MIDX_NAME)


@pytest.mark.parametrize("spec", sorted(FILTERS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_filtered_pack_from_the_index_s_bitmap_holds_what_git_s_filter_keeps(
        layouts: dict[str, Path], tmp_path: Path, variant: str, spec: str) -> None:
    """The type bitsets of the index's bitmap, in its bits' order."""
    assert_filtered_exact(layouts[variant], tmp_path, spec)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_clone_from_the_index_s_packs_reuses_their_entries(layouts: dict[str, Path], variant: str) -> None:
    repo = layouts[variant]
    wants = sorted({rev(repo, spec) for spec in ("main", "feature", "dev")})
    plan = plan_pack(Repo(str(repo)).object_store, wants, [], thin_pack=False, ofs_delta=True)
    stats = WriteStats()
    b"".join(write_pack(plan, _open_maps(plan), stats=stats))
    loose = sum(1 for path in (repo / "objects").glob("??/*") if path.is_file())
    assert plan.count == len(expected_objects(repo, wants, []))
    assert stats.verbatim > plan.count // 2 and stats.whole <= loose + 16


def test_a_repository_with_the_index_s_bitmap_has_a_bitmap(layouts: dict[str, Path], tmp_path: Path) -> None:
    """No repack is started for a bitmap it already has; the bitmap of an index since replaced
    does not count."""
    repo = tmp_path / "r.git"
    shutil.copytree(layouts["midx-preferred"], repo)
    assert not list(_pack_dir(repo).glob("pack-*.bitmap"))
    assert has_bitmap(repo) and midx_bitmap_present(str(_pack_dir(repo)))
    (bitmap,) = _pack_dir(repo).glob(f"{MIDX_NAME}-*.bitmap")
    bitmap.rename(_pack_dir(repo) / f"{MIDX_NAME}-{'0' * 40}.bitmap")
    assert not has_bitmap(repo)


def _plan(repo: Path) -> tuple[object, int]:
    main = rev(repo, "main")
    plan = plan_pack(Repo(str(repo)).object_store, [main], [], thin_pack=False, ofs_delta=True)
    assert plan.count == len(expected_objects(repo, [main], []))
    return plan.have_view, plan.count


def test_an_index_naming_a_pack_that_is_gone_is_passed_over(layouts: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "gone.git"
    shutil.copytree(layouts["midx"], repo)
    (first,) = _pack_dir(repo).glob("pack-*.bitmap")
    gone = next(pack for pack in _layout(repo).packs if not os.path.exists(pack[:-5] + ".bitmap"))
    shutil.copy(gone, tmp_path / "kept.pack")
    Path(gone).unlink()
    Path(gone[:-5] + ".idx").unlink()
    git(repo, "unpack-objects", "-q", input=(tmp_path / "kept.pack").read_bytes())  # its objects loose
    view, _count = _plan(repo)
    assert view is not None and view.pack_path == str(first)[:-len(".bitmap")] + ".pack"  # type: ignore[attr-defined]


def test_a_stale_or_damaged_index_bitmap_is_passed_over(layouts: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "stale.git"
    shutil.copytree(layouts["midx-preferred"], repo)
    (bitmap,) = _pack_dir(repo).glob(f"{MIDX_NAME}-*.bitmap")
    bitmap.write_bytes(bitmap.read_bytes()[:60])  # damaged
    assert _plan(repo)[0] is None  # no bitmap left: the walk
    bitmap.unlink()
    assert _plan(repo)[0] is None
    index = _pack_dir(repo) / MIDX_NAME
    index.chmod(0o644)
    index.write_bytes(index.read_bytes()[:-1] + b"\1")  # not the index its bitmap was written for
    shutil.copy(layouts["midx-preferred"] / "objects" / "pack" / bitmap.name, bitmap)
    assert _plan(repo)[0] is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_index_is_refused_or_read_as_it_was(layouts: dict[str, Path], data: st.DataObject) -> None:
    """Bytes changed anywhere in the index (its checksum aside: it is not recomputed on reading): it
    is refused, or what is read is what the index said before (a byte nobody reads, a padding)."""
    repo = layouts["midx-preferred"]
    original = (_pack_dir(repo) / MIDX_NAME).read_bytes()
    expected = _layout(repo)
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(original) - 21))
        damaged[at] = data.draw(st.integers(0, 255))
    damaged = damaged[:data.draw(st.integers(len(damaged) // 2, len(damaged)))] if data.draw(st.booleans()) else damaged
    path = _pack_dir(repo).parent.parent / "damaged-midx" / "objects" / "pack" / MIDX_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(damaged))
    views = {p.replace(str(_pack_dir(repo)), str(path.parent)): v for p, v in _views(repo).items()}
    try:
        layout = read_midx(str(path), 20, views.get)  # type: ignore[arg-type]
    except MidxError:
        return
    assert layout.view.names == expected.view.names
    assert list(layout.view.idx_to_pos) == list(expected.view.idx_to_pos)
    assert list(layout.pack_positions) == list(expected.pack_positions) and layout.starts == expected.starts
    assert [os.path.basename(p) for p in layout.packs] == [os.path.basename(p) for p in expected.packs]


def test_a_sha256_repository_s_index_bitmap_is_counted_from(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "--object-format=sha256", "-b", "main")
    for n in range(6):
        (work / f"f{n % 3}.txt").write_text(f"version {n}\n" * (n + 1))
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"commit {n}")
        if n in (2, 4):
            git(work, "repack", "-dq")  # packs of commits 0-2 and 3-4; commit 5 loose
    git(work, "multi-pack-index", "write", "--bitmap")
    repo = work / ".git"
    assert midx_bitmap_present(str(_pack_dir(repo))) and has_bitmap(repo)
    main = rev(work, "main")
    plan = plan_pack(Repo(str(work)).object_store, [main], [rev(work, "main~4")], thin_pack=True, ofs_delta=True)
    assert plan.have_view is not None and plan.have_view.pack_path.endswith(MIDX_NAME) and plan.have_view.raw_len == 32
    assert plan.count == len(expected_objects(work, [main], [rev(work, "main~4")]))


def test_the_layouts_kept_are_bounded(layouts: dict[str, Path]) -> None:
    cache = git_midx._LayoutCache(1, max_objects=0)
    for variant in VARIANTS:
        views = _views(layouts[variant])
        layout = cache.get(str(_pack_dir(layouts[variant])), 20, views.get)  # type: ignore[arg-type]
        assert layout is not None and cache.get(str(_pack_dir(layouts[variant])), 20, views.get) is layout  # type: ignore[arg-type]
        assert len(cache) == 1
    assert cache.get(str(_pack_dir(layouts["midx"]).parent), 20, {}.get) is None  # no index there
