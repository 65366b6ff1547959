"""The seam between the generic backends and the Mercurial storage engine in ``backends.hg``."""

from __future__ import annotations

from backends.interfaces import HgRepository
from protocols.errors import UnsupportedFeature

NOT_YET = "Mercurial repositories are not served by this version of hgwire yet"


def open_hg(path: str, name: str) -> HgRepository:
    from backends import hg

    opener = getattr(hg, "open_repository", None)
    if opener is None:
        raise UnsupportedFeature(NOT_YET)
    repo: HgRepository = opener(path, name)
    return repo


def open_hg_for_reading(path: str, name: str) -> HgRepository:
    """``open_hg`` for a request that only reads: an open repository may be given again."""
    from backends import hg

    opener = getattr(hg, "open_for_reading", None) or getattr(hg, "open_repository", None)
    if opener is None:
        raise UnsupportedFeature(NOT_YET)
    repo: HgRepository = opener(path, name)
    return repo


def create_hg(path: str, name: str) -> HgRepository:
    from backends import hg

    creator = getattr(hg, "create_repository", None)
    if creator is None:
        raise UnsupportedFeature(NOT_YET)
    repo: HgRepository = creator(path, name)
    return repo


def new_memory_hg(name: str) -> HgRepository:
    from backends import hg

    factory = getattr(hg, "MemoryHgRepository", None)
    if factory is None:
        raise UnsupportedFeature(NOT_YET)
    repo: HgRepository = factory(name)
    return repo


def forget_hg(path: str) -> None:
    """Let go of what the engine keeps of the repository that was at ``path`` (found gone)."""
    from backends import hg

    forget = getattr(hg, "forget", None)
    if forget is not None:
        forget(path)
