"""The words of a push refused for a second head on a branch: hg-evolve's ``enforce-single-head``
(``topic/flow.py``) and core hg's ``single-head-per-branch`` (``scmutil.enforcesinglehead``, whose
hint names four heads and counts the others)."""

from __future__ import annotations

import pytest

from backends.hg.writer import SingleHeadRule
from backends.interfaces import Node
from protocols.errors import PermissionDenied
from protocols.hg_exchange import _check_single_heads


def _heads(count: int) -> list[tuple[Node, bool]]:
    return [(Node(bytes([i + 1]) * 20), False) for i in range(count)]


def test_one_head_per_branch_passes() -> None:
    rule = SingleHeadRule(extension=False, closed=False, public_only=False, topics=False)
    _check_single_heads(rule, [(b"default", _heads(1)), (b"stable", _heads(1))])


def test_core_names_four_heads_and_counts_the_others() -> None:
    rule = SingleHeadRule(extension=False, closed=False, public_only=False, topics=True)
    with pytest.raises(PermissionDenied) as refused:
        _check_single_heads(rule, [(b"default", _heads(1)), (b"default//feat", _heads(6))])
    assert refused.value.message == 'rejecting multiple heads on branch "default//feat"'
    assert refused.value.hint == ("6 heads: 010101010101 020202020202 030303030303 040404040404 "
                                  "and 2 others")


def test_the_extension_lists_every_head() -> None:
    rule = SingleHeadRule(extension=True, closed=True, public_only=False, topics=True)
    with pytest.raises(PermissionDenied) as refused:
        _check_single_heads(rule, [(b"default", _heads(5))])
    assert refused.value.message == '5 heads on "default"'
    assert refused.value.hint == "010101010101, 020202020202, 030303030303, 040404040404, 050505050505"
