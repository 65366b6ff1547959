"""Closing the git repositories a request opened, once nothing reads them any more.

A dulwich repository is kept alive by reference cycles of its own, so the packs
it opened (their maps, descriptors and caches) stayed until the cyclic
collector ran: after 60 shallow fetches the server held 60 maps of the pack,
250 descriptors and 190 MiB more.  A repository opened for one request is
closed (``close()``, where its backend gives one: the filesystem backend's
repositories) when the request is done with it: at once for an answer made in
one step (``closing_git``), or when the last of its users lets go (``RepoUse``:
a session once it is over and none of its steps runs in the pool, and the pack
streams it started, which a shared generation carries on for the clients that
joined it).  Pushes left theirs too: 60 pushes to a repository gathering packs
left up to 700 descriptors open (each push's maps of the indexes of every
pack; deleted files' disk space once a repack had removed them) until a
collection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from twisted.python import threadable

from backends.interfaces import Kind
from gateway.logs import SafeLogger

log = SafeLogger()
R = TypeVar("R")


def close_git(repo: object) -> None:
    """Close a git repository opened for one request, where its backend can (a Mercurial one is left).

    On the reactor's thread (a session's end, a stream's) the close runs in the worker pool, as
    every backend call does: a backend's ``close`` may wait (a custom one flushing to the network),
    and one that slept 3 s there held every client of the service as long."""
    if getattr(repo, "kind", None) is not Kind.GIT:
        return
    close = getattr(repo, "close", None)
    if close is None:
        return
    if not threadable.isInIOThread():
        close()
        return
    from gateway.threads import run_blocking

    run_blocking(close).addErrback(lambda failure: log.failure("closing repository {repo}", failure,
                                                               repo=getattr(repo, "name", "?")))


@contextmanager
def closing_git(repo: R) -> Iterator[R]:
    """``repo`` for one blocking step, closed at its end (``close_git``)."""
    try:
        yield repo
    finally:
        close_git(repo)


class RepoUse:
    """Who still uses a repository opened for one session: the session and the pack streams it
    started.  The last to let go closes it (``close_git``)."""

    def __init__(self, repo: object) -> None:
        self._repo = repo
        self._users = 0
        self._lock = threading.Lock()

    def join(self) -> Callable[[], None]:
        """One more user; the function it returns lets go (once; from any thread)."""
        with self._lock:
            self._users += 1
        left = False

        def leave() -> None:
            nonlocal left
            with self._lock:
                if left:
                    return
                left = True
                self._users -= 1
                last = self._users == 0
            if last:
                close_git(self._repo)

        return leave
