"""A push's hg transaction is guarded (``gateway.protected.GuardedTransaction``), and every optional
method the backend interface declares for a transaction is reachable through the guard: each read
(``HG_TRANSACTION_READS``) is the backend's own, with its arguments and its answer, and lacking
where the backend lacks it, so its callers do as without it; each write is a method of the guard's
own, which asks the backend's.  The guard had a forwarder written by hand for some reads (answering
defaults of its own) and none for others."""

from __future__ import annotations

import inspect
from typing import Any, cast

import pytest

from backends import interfaces
from backends.hg.writer import Transaction
from backends.interfaces import HG_TRANSACTION_READS, HgRepository, HgTransaction
from gateway.channel import SessionContext
from gateway.protected import GuardedTransaction


def _optional_for_transactions(value: object) -> bool:
    first = (inspect.getdoc(value) or "").split("\n", 1)[0]
    return inspect.isclass(value) and first.startswith("Optional for ") and "``HgTransaction``" in first


OPTIONAL_PROTOCOLS = [value for value in vars(interfaces).values() if _optional_for_transactions(value)]
"""The interface's optional protocols of an hg transaction, as each declares itself (its first line)."""

DECLARED = {name: value for protocol in OPTIONAL_PROTOCOLS for name, value in vars(protocol).items()
            if callable(value) and not name.startswith("_")}


class _Repo:
    def heads(self) -> list[bytes]:
        return []


class _Tx:
    """A backend's transaction with none of the optional methods (each test adds the one it asks)."""


def _guarded(tx: object) -> Any:
    return GuardedTransaction(cast(HgRepository, _Repo()), cast(HgTransaction, tx), cast(SessionContext, None),
                              None)


def _asking(name: str, answer: object) -> tuple[_Tx, list[tuple[object, ...]], tuple[object, ...]]:
    """A transaction whose ``name`` notes what it is asked and answers ``answer``; the arguments to ask."""
    asked: list[tuple[object, ...]] = []

    def method(*args: object) -> object:
        asked.append(args)
        return answer
    tx = _Tx()
    setattr(tx, name, method)
    return tx, asked, tuple(object() for _ in list(inspect.signature(DECLARED[name]).parameters)[1:])


def test_every_declared_method_is_a_read_handed_on_or_a_write_the_guard_wraps() -> None:
    assert len(OPTIONAL_PROTOCOLS) >= 2 and len(DECLARED) >= 10
    wrapped = set(DECLARED) - HG_TRANSACTION_READS
    assert wrapped == {"add_obsmarkers", "write_pending"}  # (the ones that write)
    assert all(name in vars(GuardedTransaction) for name in wrapped)
    assert not any(name in vars(GuardedTransaction) for name in HG_TRANSACTION_READS)


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_a_declared_method_reaches_the_backend_through_the_guard(name: str) -> None:
    answer = object() if name in HG_TRANSACTION_READS else 1  # (the guard counts the new markers)
    tx, asked, args = _asking(name, answer)
    assert getattr(_guarded(tx), name)(*args) is answer
    assert asked == [args]


@pytest.mark.parametrize("name", sorted(HG_TRANSACTION_READS))
def test_a_read_the_backend_lacks_is_lacking_through_the_guard(name: str) -> None:
    assert getattr(_guarded(_Tx()), name, None) is None


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_the_engine_has_each_optional_method_as_declared(name: str) -> None:
    """The engine's transactions (``fs``'s) have each, taking what the interface says it takes."""
    ours = list(inspect.signature(getattr(Transaction, name)).parameters)
    assert ours == list(inspect.signature(DECLARED[name]).parameters)


def test_other_names_are_not_handed_on() -> None:
    tx = _Tx()
    tx.new_markers = [object()]  # type: ignore[attr-defined]  # (read by the guard itself)
    guard = _guarded(tx)
    assert getattr(guard, "new_markers", None) is None
    with pytest.raises(AttributeError):
        guard._tx_missing  # noqa: B018
