"""hgweb's ``[web]`` access lists of an hg repository's hgrc name a user beyond ASCII however the
file composes it: ``allow_read = josé`` written decomposed lets in the ``josé`` a browser logs in as."""

from __future__ import annotations

import pytest

from gateway.hg_http import check_web_access
from protocols.errors import PermissionDenied


class _Repo:
    def __init__(self, lists: dict[str, list[str] | None]) -> None:
        self._lists = lists

    def web_access(self) -> dict[str, list[str] | None]:
        return self._lists


def test_web_lists_name_a_user_beyond_ascii_however_composed() -> None:
    repo = _Repo({"deny_read": None, "allow_read": ["jose\u0301", "bøb"], "deny_push": ["bo\u0308b"],
                  "allow-push": None})
    check_web_access(repo, "josé", None)  # type: ignore[arg-type]
    check_web_access(repo, "bøb", None)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="not authorized"):
        check_web_access(repo, "ana", None)  # type: ignore[arg-type]
