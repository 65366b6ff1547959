"""Under ``[git] export_all = false`` git daemon and git http-backend name no repository in a hint
(whether one is exported is in the repository), and the backend's folders were scanned for one
(``case_twin``, ``names_below``) before that was asked: work for nothing.  Over SSH the hint is
still looked for."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway import name_hints
from gateway.channel import SessionContext
from gateway.policy import NO_POLICY
from protocols.errors import NotARepository, RepositoryNotFound


class _Backend:
    def __init__(self) -> None:
        self.scans: list[str] = []

    def case_twin(self, name: str) -> str:
        self.scans.append("case_twin")
        return "team/app.git"

    def names_below(self, name: str, limit: int) -> list[str]:
        self.scans.append("names_below")
        return ["team/app.git"]


def _context(transport: str, backend: _Backend) -> SessionContext:
    policy = dataclasses.replace(NO_POLICY, git=dataclasses.replace(NO_POLICY.git, export_all=False))
    authorizer: Any = SimpleNamespace(policy=SimpleNamespace(current=policy),
                                      check=lambda user, name, transport, access: None)
    return SessionContext(backend=cast(Any, backend), repo_name="Team/App.git", transport=transport,
                          peer="127.0.0.1", authorizer=authorizer)


@pytest.mark.parametrize("transport", ["git-daemon", "git-http"])
def test_no_folder_is_scanned_where_no_repository_may_be_named(transport: str) -> None:
    backend = _Backend()
    for refused in (RepositoryNotFound("repository Team/App.git not found"), NotARepository("team is not ...")):
        assert name_hints.with_hint(_context(transport, backend), refused) is refused
    assert backend.scans == []


def test_over_ssh_the_hint_is_still_looked_for() -> None:
    backend = _Backend()
    hinted = name_hints.with_hint(_context("git-ssh", backend), RepositoryNotFound("repository Team/App.git not found"))
    assert str(hinted).endswith("did you mean team/app.git?")
    assert backend.scans == ["case_twin"]
