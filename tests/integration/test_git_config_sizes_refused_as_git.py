"""A repository's config giving ``core.bigFileThreshold`` or ``core.deltaBaseCacheLimit`` a value git
would not read ("lots"): git 2.39 reads them as its pack-objects, index-pack and unpack-objects start,
so a fetch that gets a pack and a push are refused, while ``ls-remote`` is answered (upload-pack
alone does not read them).  hgwire refused every request, ``ls-remote`` too; it now refuses what git
refuses, each checked beside git's own (``file://``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_config_twins import refused_as_git, served_and_twin


@pytest.mark.parametrize("key", ["core.bigFileThreshold", "core.deltaBaseCacheLimit"])
def test_a_size_git_would_not_read_is_refused_where_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, key: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, _bare, twin = served_and_twin(client, server, lambda bare: client.git("config", key, "lots", cwd=bare))
    refused_as_git(client, server, work, twin, f"bad numeric config value 'lots' for '{key.lower()}'", True)
