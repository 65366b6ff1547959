"""Work that nobody waits for any more: the flag a read-only command's loops look at.

A command's worker runs it ``watching`` whether its client has gone (the
connection closed while the answer was being made); its long loops (a
``listkeys`` of 100,000 bookmarks, a ``known`` of many nodes, the changesets
of a pull, the entries of a long log page) call ``check`` every
``CHECK_EVERY`` steps, or iterate ``checked(...)``, and stop with
``ClientGone`` once it has.  Only reads are watched: a push, and a batch that
holds a ``pushkey``, run to their end or roll back as before.

The flag is the worker thread's own (a thread-local), so that the backends'
loops need no argument for it; a stream's steps, which run in any worker,
set it around each step (``gateway.client_gone.Watched``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from protocols.errors import ClientGone

T = TypeVar("T")

CHECK_EVERY = 256
"""Steps of a loop between two looks at the flag (a look costs a thread-local read and a call)."""

_local = threading.local()


@contextmanager
def watching(gone: Callable[[], bool] | None) -> Iterator[None]:
    """Run the block with ``gone`` as this thread's flag (None: nothing is watched, e.g. inside a
    batch that writes); the previous flag comes back after it."""
    previous = getattr(_local, "gone", None)
    _local.gone = gone
    try:
        yield
    finally:
        _local.gone = previous


def watched(work: Callable[..., T], gone: Callable[[], bool]) -> Callable[..., T]:
    """``work`` to be run in a worker ``watching`` ``gone`` (a session's or a request's client)."""

    def run(*args: object) -> T:
        with watching(gone):
            return work(*args)

    return run


def check(what: str = "its answer") -> None:
    """Raise ``ClientGone`` if the client of the work this thread runs has gone."""
    gone = getattr(_local, "gone", None)
    if gone is not None and gone():
        raise ClientGone(f"the client closed the connection; making {what} was stopped")


def checked(items: Iterable[T], what: str = "its answer") -> Iterator[T]:
    """``items``, with a ``check`` every ``CHECK_EVERY`` of them."""
    for count, item in enumerate(items, 1):
        if not count % CHECK_EVERY:
            check(what)
        yield item


def tick(what: str = "its answer") -> None:
    """One step of work spread over calls (a log page's entries, each made by its own call): a
    ``check`` every ``CHECK_EVERY`` steps this thread takes while watched."""
    if getattr(_local, "gone", None) is None:
        return
    steps = _local.steps = getattr(_local, "steps", 0) + 1
    if not steps % CHECK_EVERY:
        check(what)
