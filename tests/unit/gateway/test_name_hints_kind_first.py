"""The mistyped-name hint (``readable_near``) compared names by their stem (``app`` of both
``team/app`` and ``team/app.git``) and kept only the last of a stem's names: an hg client asking
``team/apq`` beside the hg ``team/app`` and the git ``team/app.git`` was told the git one (its
clone then "is a git repository"), and a stem whose kept name the user may not read hid the other,
readable one.  The client's own kind comes first now, as ``readable_inside`` orders them."""

from __future__ import annotations

from typing import Any, cast

import pytest

from gateway import name_hints
from gateway.channel import SessionContext
from protocols.errors import PermissionDenied


class _Backend:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def list(self) -> list[str]:
        return list(self.names)


class _Authorizer:
    policy = None

    def __init__(self, unreadable: set[str]) -> None:
        self.unreadable = unreadable

    def check(self, user: str | None, name: str, transport: str, access: Any) -> None:
        if name in self.unreadable:
            raise PermissionDenied(f"may not read {name}")


def _near(transport: str, asked: str, names: list[str], unreadable: frozenset[str] = frozenset()) -> str | None:
    ctx = SessionContext(backend=cast(Any, _Backend(names)), repo_name=asked, transport=transport,
                         peer="127.0.0.1", authorizer=cast(Any, _Authorizer(set(unreadable))))
    return name_hints.readable_near(ctx)


@pytest.mark.parametrize(("transport", "asked", "told"), [
    ("hg-ssh", "team/apq", "team/app"),
    ("git-ssh", "team/apq.git", "team/app.git"),
    ("git-ssh", "team/apq", "team/app.git"),
])
def test_the_clients_own_kind_is_named_first(transport: str, asked: str, told: str) -> None:
    assert _near(transport, asked, ["team/app", "team/app.git"]) == told


def test_a_stems_unreadable_name_does_not_hide_its_readable_twin() -> None:
    assert _near("git-ssh", "team/apq.git", ["team/app", "team/app.git"], frozenset({"team/app.git"})) == "team/app"
    assert _near("hg-ssh", "team/apq", ["team/App", "team/app"], frozenset({"team/app"})) == "team/App"


def test_no_name_is_asked_of_the_rules_twice() -> None:
    asked: list[str] = []

    class Counting(_Authorizer):
        def check(self, user: str | None, name: str, transport: str, access: Any) -> None:
            asked.append(name)
            raise PermissionDenied("no")

    # (exsting is one letter from existing, and close by difflib's ratio too)
    ctx = SessionContext(backend=cast(Any, _Backend(["team/existing"])), repo_name="team/exsting",
                         transport="hg-ssh", peer="127.0.0.1", authorizer=cast(Any, Counting(set())))
    assert name_hints.readable_near(ctx) is None
    assert asked == ["team/existing"]
