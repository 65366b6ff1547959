"""Which repositories the engine opens, by their requirements: the layouts it reads and writes and
the working-copy ones a server never touches; anything else is refused by name, older layouts
with how to upgrade them."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.hg import requirements as reqs
from protocols.errors import RepositoryNotFound, UnsupportedFeature

MODERN = {"revlogv1", "store", "fncache", "dotencode", "generaldelta", "sparserevlog", "share-safe",
          "revlog-compression-zstd"}


@pytest.mark.parametrize("extra", [set(), {"dirstate-v2"}, {"dirstate-tracked-key-v1"}, {"exp-sparse"},
                                   {"persistent-nodemap", "bookmarksinstore"}, {"largefiles", "lfs"},
                                   {"exp-compression-none"}])
def test_served(extra: set[str]) -> None:
    reqs.check(MODERN | extra)


def test_mercurial_1_1_to_1_6_layout_is_served() -> None:
    reqs.check(MODERN - {"dotencode"})


@pytest.mark.parametrize(("found", "message"), [
    (MODERN | {"treemanifest"}, "unsupported repository feature: treemanifest$"),
    (MODERN | {"shared"}, "unsupported repository feature: shared$"),
    (MODERN - {"fncache", "dotencode"}, "missing fncache .*format.usefncache=false.*'hg debugupgraderepo --run'"),
    (MODERN - {"store", "fncache", "dotencode"}, "missing store .*'hg clone --pull OLD NEW'"),
    (MODERN - {"revlogv1"}, "missing revlogv1$"),
])
def test_refused_by_name(found: set[str], message: str) -> None:
    with pytest.raises(UnsupportedFeature, match=message):
        reqs.check(found)


def test_a_repository_older_than_the_requires_file_is_refused_with_how_to_upgrade(tmp_path: Path) -> None:
    """Mercurial before 0.9.2 wrote no ``.hg/requires``: its changelog sits in ``.hg`` itself."""
    from backends.hg import open_repository

    old = tmp_path / "old"
    (old / ".hg" / "data").mkdir(parents=True)
    (old / ".hg" / "00changelog.i").write_bytes(b"")
    with pytest.raises(UnsupportedFeature, match="without .hg/requires .*'hg clone --pull OLD NEW'"):
        open_repository(str(old), "old")
    (tmp_path / "half" / ".hg").mkdir(parents=True)  # a .hg with nothing in it is no repository
    with pytest.raises(RepositoryNotFound):
        open_repository(str(tmp_path / "half"), "half")
