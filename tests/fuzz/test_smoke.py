"""The fuzz smoke of the normal test suite: a few hundred hypothesis inputs per target.

Each input is a valid recorded seed with structured edits (or raw bytes); only
hgwire's typed errors may escape.  ``python -m tests.fuzz.run`` runs the same
targets for millions of inputs.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .harness import check, strategy
from .registry import MODULES, load

EXAMPLES = 400


@pytest.mark.parametrize("name", sorted(MODULES))
def test_seeds_are_accepted_cleanly(name: str) -> None:
    target = load(name)
    for seed in target.seeds():
        check(target, seed)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_fuzz_smoke(name: str) -> None:
    target = load(name)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy(target))
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()
