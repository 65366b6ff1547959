"""The fuzz smoke of the normal test suite: a few hundred hypothesis inputs per target (a hundred for
the targets whose every input runs a whole ingest or push).

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
FEWER = {"git_ingest": 100, "hg_push": 100, "bundle2": 100}
"""Targets where an input costs 5-20 ms (a pack indexed and checked, a push's bundle applied to a
repository): 400 of them were a third of the module's time; every kind of edit still reaches them at
100, and ``make fuzz`` runs each for 10^6."""


@pytest.mark.parametrize("name", sorted(MODULES))
def test_seeds_are_accepted_cleanly(name: str) -> None:
    target = load(name)
    for seed in target.seeds():
        check(target, seed)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_fuzz_smoke(name: str) -> None:
    target = load(name)

    @settings(max_examples=FEWER.get(name, EXAMPLES), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy(target))
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()
