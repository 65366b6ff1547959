"""``hideRefs`` values of an included file (``[include] path = …``, an ``[includeIf]`` that holds)
count where the include is, as git takes them (the last value that matches decides): dulwich puts
them under the header of the same name in the including file, so a ``[transfer]`` of the included
file came before the ``[uploadpack]`` written above the include, and hgwire showed
``refs/pull/7/head`` to fetches, and let pushes change it, where git hides it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Client, RunningServer
from tests.integration.test_git_hiderefs_repeated_sections import (
    pull_refs_repository,
    pushes_to_pull_7_are_denied,
)

INCLUDED = """
[transfer]
\thideRefs = refs/pull/7
"""

CONFIG = """
[transfer]
\thideRefs = refs/pull
[uploadpack]
\thideRefs = !refs/pull/7
[receive]
\thideRefs = !refs/pull/7
[{include}]
\tpath = hide.inc
"""


@pytest.mark.parametrize("version", ["0", "2"])
@pytest.mark.parametrize("include", ["include", 'includeIf "gitdir:/"'])
def test_hiderefs_of_an_included_file_count_where_it_is_included(
        make_server: Callable[..., RunningServer], client: Client, version: str, include: str) -> None:
    server, bare, work = pull_refs_repository(make_server, client, "hide")
    (bare / "hide.inc").write_text(INCLUDED)
    with open(bare / "config", "a") as f:
        f.write(CONFIG.format(include=include))
    gits = client.git("-c", f"protocol.version={version}", "ls-remote", f"file://{bare}").stdout
    ours = client.git("-c", f"protocol.version={version}", "ls-remote", server.git_url("hide")).stdout
    assert "refs/pull" not in gits and "refs/heads/main" in gits
    assert ours == gits
    pushes_to_pull_7_are_denied(client, server, bare, work)
