"""``core.bigFileThreshold`` and ``core.deltaBaseCacheLimit`` are read by git as unsigned longs
(``git_config_ulong``): a ``-`` anywhere is "invalid unit", more than 2**64 - 1 "out of range", and
git refuses a push and a fetch that gets a pack.  hgwire read ``-1`` as a number and served them
(before the loose objects' bound was kept, ``-1`` made every request "internal error")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_config_twins import refused_as_git, served_and_twin


@pytest.mark.parametrize(("key", "value"), [("core.bigFileThreshold", "-1"), ("core.deltaBaseCacheLimit", "-1"),
                                            ("core.bigFileThreshold", "-0"),
                                            ("core.bigFileThreshold", "99999999999999999999"),
                                            ("core.deltaBaseCacheLimit", "16777216k")])
def test_an_unsigned_size_git_refuses_is_refused_where_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, key: str, value: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, _bare, twin = served_and_twin(client, server, lambda bare: client.git("config", key, value, cwd=bare))
    refused = value != "16777216k"  # (16 GiB: in range)
    refused_as_git(client, server, work, twin, f"bad numeric config value '{value}' for '{key.lower()}'", refused)
