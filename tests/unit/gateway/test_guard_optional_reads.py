"""A session's hg repository is guarded (``gateway.protected.GuardedHgRepository``), and the guard
hands on every optional read the backend interface declares (``HG_OPTIONAL_READS``, made from its
protocols): each reaches the backend's own method, with its arguments, its answer as it is; one the
backend lacks is lacking through the guard too, so its callers do as without it.  The guard had a
method for each, written by hand: one declared without it was never asked."""

from __future__ import annotations

import inspect
from typing import Any, cast

import pytest

from backends import interfaces
from backends.hg.repository import HgRepo
from backends.interfaces import HG_OPTIONAL_READS, HgRepository, Kind
from gateway.channel import SessionContext
from gateway.protected import GuardedHgRepository


def _optional_for_hg(value: object) -> bool:
    first = (inspect.getdoc(value) or "").split("\n", 1)[0]
    return inspect.isclass(value) and first.startswith("Optional for ") and "``HgRepository``" in first


OPTIONAL_PROTOCOLS = [value for value in vars(interfaces).values() if _optional_for_hg(value)]
"""The interface's optional protocols of an hg repository, as each declares itself (its first line)."""


class _Backend:
    kind = Kind.HG
    name = "r"


def _guarded(backend: object) -> Any:
    return GuardedHgRepository(cast(HgRepository, backend), cast(SessionContext, None), None)


def _declared(name: str) -> inspect.Signature:
    protocol = next(p for p in OPTIONAL_PROTOCOLS if name in vars(p))
    return inspect.signature(vars(protocol)[name])


def test_every_optional_protocol_is_read_or_write() -> None:
    declared = {name for protocol in OPTIONAL_PROTOCOLS for name, value in vars(protocol).items()
                if callable(value) and not name.startswith("_")}
    assert len(OPTIONAL_PROTOCOLS) >= 4 and declared
    assert declared - HG_OPTIONAL_READS == {"spool_push"}  # (the one that writes: the guard audits it itself)


@pytest.mark.parametrize("name", sorted(HG_OPTIONAL_READS))
def test_an_optional_read_reaches_the_backend_through_the_guard(name: str) -> None:
    asked: list[tuple[object, ...]] = []
    answer = object()

    def method(*args: object) -> object:
        asked.append(args)
        return answer
    backend = _Backend()
    setattr(backend, name, method)
    args = tuple(object() for _ in list(_declared(name).parameters)[1:])
    assert getattr(_guarded(backend), name)(*args) is answer
    assert asked == [args]


@pytest.mark.parametrize("name", sorted(HG_OPTIONAL_READS))
def test_an_optional_read_the_backend_lacks_is_lacking_through_the_guard(name: str) -> None:
    assert getattr(_guarded(_Backend()), name, None) is None


@pytest.mark.parametrize("name", sorted(HG_OPTIONAL_READS - {"refuses_push"}))
def test_the_engine_has_each_optional_read_as_declared(name: str) -> None:
    """The engine's repositories (``fs``'s) answer each, taking what the interface says it takes
    (``refuses_push`` is a mirror's, which the engine is not)."""
    ours = list(inspect.signature(getattr(HgRepo, name)).parameters)
    assert ours == list(_declared(name).parameters)


def test_other_names_are_not_handed_on() -> None:
    backend = _Backend()
    backend.save_served_branchmap = lambda: None  # type: ignore[attr-defined]  # (the engine's own upkeep)
    guard = _guarded(backend)
    assert getattr(guard, "save_served_branchmap", None) is None
    with pytest.raises(AttributeError):
        guard._repo_missing  # noqa: B018
