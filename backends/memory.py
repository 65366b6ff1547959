"""``memory`` backend: repositories held in process memory, for tests and ephemeral use."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from dulwich.repo import MemoryRepo

from backends import hg_support
from backends.git import DEFAULT_BRANCH, HEAD, DulwichGitRepository
from backends.interfaces import SHA1_FORMAT, Kind, ObjectFormat, Repository
from backends.names import strip_git_suffix, validate_name
from protocols.errors import RepositoryNotFound


class MemoryBackend:
    """A dict of repositories; git repositories answer to ``NAME`` and ``NAME.git``.

    ``root`` is accepted for the common factory signature and otherwise unused.
    """

    def __init__(self, root: str | None = None) -> None:
        self.root = root
        self._repos: dict[str, Repository] = {}
        self._guard = threading.Lock()

    def _key(self, name: str) -> str | None:
        name = validate_name(name)
        for candidate in (name, strip_git_suffix(name)):
            if candidate in self._repos:
                return candidate
        return None

    def open(self, name: str) -> Repository:
        with self._guard:
            key = self._key(name)
            if key is None:
                raise RepositoryNotFound(f"repository {validate_name(name)} not found")
            return _session(self._repos[key])

    def locate(self, name: str) -> tuple[str, Kind] | None:
        """The stored name and kind of the repository a request for ``name`` reaches, or None."""
        with self._guard:
            key = self._key(name)
            return None if key is None else (key, self._repos[key].kind)

    def new_git_object_format(self) -> ObjectFormat:
        """The object format of a git repository ``create`` makes: SHA-1, whatever ``GIT_DEFAULT_HASH`` says."""
        return SHA1_FORMAT

    def new_git_keeps_lfs(self) -> bool:
        """Whether a git repository ``create`` makes keeps Git LFS objects: no, they are kept on disk only."""
        return False

    def create(self, name: str, kind: Kind) -> Repository:
        with self._guard:
            if self._key(name) is not None:
                raise FileExistsError(f"repository {name} already exists")
            key = strip_git_suffix(validate_name(name)) if kind is Kind.GIT else validate_name(name)
            repo = _new_git(key) if kind is Kind.GIT else hg_support.new_memory_hg(key)
            self._repos[key] = repo
            return _session(repo)

    def exists(self, name: str) -> bool:
        with self._guard:
            return self._key(name) is not None

    def list(self) -> Iterable[str]:
        with self._guard:
            return sorted(self._repos)


def _session(repo: Repository) -> Repository:
    """What one session works with: a git repository's own view (its push in progress, its config
    read) over the shared store and refs, as the ``fs`` backend opens one per session; two
    concurrent pushes must not count each other's objects as their own."""
    if isinstance(repo, DulwichGitRepository):
        return DulwichGitRepository(repo.name, repo.dulwich_repo, bare=repo.bare)
    return repo


def _new_git(name: str) -> DulwichGitRepository:
    repo = MemoryRepo.init_bare([], {})
    repo.refs.set_symbolic_ref(HEAD, DEFAULT_BRANCH)
    return DulwichGitRepository(name, repo)
