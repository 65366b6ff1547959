"""The cache of pack index views (``backends.git_packindex._ViewCache``): a number of views of any
size, and more while they hold few objects in all (a repository gathers a pack a push)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from backends import git_packindex


class FakeView:
    def __init__(self, objects: int) -> None:
        self.objects = objects

    def __len__(self) -> int:
        return self.objects

    @property
    def weight(self) -> int:
        return self.objects


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each view built, by idx path (an index file of N objects is named ``N-<k>.idx``)."""
    made: list[str] = []

    def read_index(idx_path: str, pack_path: str, raw_len: int = 20) -> Any:
        made.append(idx_path)
        return FakeView(int(Path(idx_path).name.split("-")[0]))

    monkeypatch.setattr(git_packindex, "read_index", read_index)
    return made


def _index(tmp_path: Path, objects: int, k: int) -> str:
    path = tmp_path / f"{objects}-{k}.idx"
    path.write_bytes(b"")
    return str(path)


def test_many_small_views_are_kept_past_the_count(tmp_path: Path, built: list[str]) -> None:
    cache = git_packindex._ViewCache(limit=4, max_objects=1000)
    paths = [_index(tmp_path, 10, k) for k in range(30)]  # a repository of 30 small packs
    for _ in range(3):
        for path in paths:
            cache.get(path, path[:-4] + ".pack")
    assert len(built) == 30, "each built once: 300 objects in all is within the bound"
    assert len(cache) == 30


def test_past_the_object_bound_the_count_decides(tmp_path: Path, built: list[str]) -> None:
    cache = git_packindex._ViewCache(limit=4, max_objects=1000)
    small = [_index(tmp_path, 10, k) for k in range(10)]
    for path in small:
        cache.get(path, "")
    big = [_index(tmp_path, 5000, k) for k in range(3)]  # each over the bound alone: kept by count
    for path in big:
        cache.get(path, "")
    assert len(cache) == 4
    built.clear()
    for path in big:
        cache.get(path, "")
    assert built == [], "the newest views, large as they are, stay"
    cache.get(small[0], "")
    assert built == [small[0]], "the small ones went when the large ones came"
    cache.get(big[0], "")
    assert built == [small[0]]


def test_a_changed_index_file_is_read_again(tmp_path: Path, built: list[str]) -> None:
    cache = git_packindex._ViewCache(limit=2, max_objects=1000)
    path = _index(tmp_path, 10, 0)
    first = cache.get(path, "")
    assert cache.get(path, "") is first
    Path(path).write_bytes(b"grown")  # another size: another version of the file
    assert cache.get(path, "") is not first
    assert len(built) == 2 and len(cache) == 2


def test_requests_that_want_a_view_being_built_wait_for_that_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = git_packindex._ViewCache(limit=4, max_objects=1000)
    path = _index(tmp_path, 10, 0)
    started, release = threading.Event(), threading.Event()
    made: list[str] = []

    def read_index(idx_path: str, pack_path: str, raw_len: int = 20) -> Any:
        made.append(idx_path)
        started.set()
        assert release.wait(30)
        return FakeView(10)

    monkeypatch.setattr(git_packindex, "read_index", read_index)
    got: list[Any] = []
    first = threading.Thread(target=lambda: got.append(cache.get(path, "")))
    first.start()
    assert started.wait(30)
    others = [threading.Thread(target=lambda: got.append(cache.get(path, ""))) for _ in range(3)]
    for t in others:
        t.start()
    release.set()  # (whether the others reached the build's lock yet or not, none builds again)
    for t in (first, *others):
        t.join(30)
    assert made == [path], "one build: eight clones at a cold start each built the same view"
    assert len(got) == 4 and all(view is got[0] for view in got)
