"""In-memory Mercurial repositories for the ``memory`` backend.

The same engine as on disk (same revlog bytes, same journal) over a
:class:`~backends.hg.vfs.MemoryVfs`, so both backends answer identically and
pass the same contract tests.
"""

from __future__ import annotations

from backends.hg import requirements as reqs
from backends.hg.repository import HgRepo, ThreadLocks
from backends.hg.vfs import MemoryVfs


class MemoryHgRepository(HgRepo):
    """An empty repository with ``hg init``'s default requirements, held in dicts."""

    def __init__(self, name: str) -> None:
        super().__init__(
            name,
            MemoryVfs(),
            MemoryVfs(),
            frozenset(reqs.WORKING_COPY_DEFAULT + reqs.STORE_DEFAULT),
            ThreadLocks(),
        )
