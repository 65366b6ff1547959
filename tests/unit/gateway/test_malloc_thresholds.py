"""glibc's malloc thresholds are set from the start to where glibc's moving ones end (a freed buffer
of a few MiB at a heap's top went back to the system at once and the next one faulted its pages in
again: about 5,000 page faults an archive of the bench corpus's tag), unless the operator set them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway import threads


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def mallopt(param: Any, value: Any) -> int:
        calls.append((param.value, value.value))
        return 1

    def glibc_function(name: str) -> Callable[..., int] | None:
        return mallopt if name == "mallopt" else None

    monkeypatch.setattr(threads, "_glibc_function", glibc_function)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                 "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_the_thresholds_are_set_where_glibc_would_move_them(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recording(monkeypatch)
    assert threads.settle_malloc_thresholds() is True
    assert calls == [(-3, 32 << 20), (-1, 64 << 20)]  # M_MMAP_THRESHOLD, then M_TRIM_THRESHOLD


@pytest.mark.parametrize("name, value", [
    ("MALLOC_TRIM_THRESHOLD_", "131072"),
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ("MALLOC_TOP_PAD_", "0"),
    ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072"),
])
def test_the_operators_choice_wins(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    calls = _recording(monkeypatch)
    monkeypatch.setenv(name, value)
    assert threads.settle_malloc_thresholds() is False
    assert calls == []


def test_other_tunables_leave_the_thresholds_to_hgwire(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recording(monkeypatch)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
    assert threads.settle_malloc_thresholds() is True
    assert len(calls) == 2


def test_without_glibc_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    _recording(monkeypatch)
    monkeypatch.setattr(threads, "_glibc_function", lambda name: None)
    assert threads.settle_malloc_thresholds() is False


def test_the_pool_settles_them_when_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted.internet.task import Clock

    settled: list[bool] = []

    def settle() -> bool:
        settled.append(True)
        return True

    monkeypatch.setattr(threads, "settle_malloc_thresholds", settle)
    monkeypatch.setattr(threads, "_pool", None)
    monkeypatch.setattr(threads, "_trimmer", None)
    monkeypatch.setattr(threads, "_watch", None)

    class FakeReactor(Clock):
        def addSystemEventTrigger(self, *args: Any) -> None:
            pass

    pool = threads.start_pool(FakeReactor(), size=1)  # type: ignore[arg-type]
    try:
        assert settled == [True]
    finally:
        pool.stop()
