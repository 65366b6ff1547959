"""A full clone's pack (no haves, no shallow boundary) does not keep the counting's reader for the
writing: its cache (the trees the counting walked, up to ``BASE_CACHE_BYTES``) was held while the
pack streamed to the client, for as long as the client took, where no tree of such a pack goes as
a delta against a base it does not send.  A shallow pack and one above the client's haves keep it:
their trees are made deltas of from its cache (``test_git_tree_text_deltas``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends.git_fastpack import WriteStats, plan_pack, write_pack
from backends.git_objects import PackMaps, PackObjectReader
from tests.unit.backends.test_git_chain_deltas import git
from tests.unit.backends.test_git_tree_text_deltas import wide_history


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wide_history(tmp_path_factory.mktemp("full"))


def _readers(monkeypatch: pytest.MonkeyPatch) -> list[PackObjectReader]:
    made: list[PackObjectReader] = []
    real = PackObjectReader.__init__

    def init(self: PackObjectReader, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(PackObjectReader, "__init__", init)
    return made


def test_a_full_clone_lets_go_of_the_countings_cache_before_writing(source: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert not list((source / "objects" / "pack").glob("*.bitmap"))  # (the counting walks the trees)
    tips = [git(source, "rev-parse", name).strip() for name in ("main", "mid", "old")]
    readers = _readers(monkeypatch)
    maps = PackMaps()
    plan = plan_pack(Repo(str(source)).object_store, tips, [], thin_pack=False, ofs_delta=True, maps=maps)
    assert readers, "the counting read through a PackObjectReader"
    assert plan.reader is None
    assert [reader._cached_bytes for reader in readers] == [0] * len(readers)  # closed: nothing held
    stats = WriteStats()
    pack = b"".join(write_pack(plan, maps, chunk_size=4096, stats=stats))
    assert int.from_bytes(pack[8:12], "big") == plan.count
    client = tmp_path / "client"
    git(tmp_path, "init", "-q", "--bare", str(client))
    git(client, "index-pack", "--stdin", "--strict", input=pack)
    for i, tip in enumerate(tips):
        git(client, "update-ref", f"refs/heads/b{i}", tip.decode())
    git(client, "fsck", "--full", "--strict", "--no-dangling")


@pytest.mark.parametrize("shallow", [True, False])
def test_a_shallow_pack_or_one_above_haves_keeps_it(source: Path, shallow: bool) -> None:
    tips = [git(source, "rev-parse", name).strip() for name in ("main", "mid", "old")]
    haves = [] if shallow else [git(source, "rev-parse", "main~20").strip()]
    maps = PackMaps()
    plan = plan_pack(Repo(str(source)).object_store, tips, haves, thin_pack=True, ofs_delta=True,
                     shallow_boundary=tips if shallow else (), maps=maps)
    try:
        assert plan.reader is not None
    finally:
        if plan.reader is not None:
            plan.reader.close()
        maps.close()
