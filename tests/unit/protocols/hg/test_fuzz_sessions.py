"""Whole SSH sessions with damaged client bytes: only typed errors escape, and a push lands whole or not at all."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import HgwireError

from .helpers import reference_repo, run_ssh, side

PUSH = side("push-bundle2.txt", "c")
PUSH1 = side("push-bundle1.txt", "c")
CLONE = side("clone-bundle2.txt", "c")


def _landed_states() -> list[object]:
    before = reference_repo()
    after = reference_repo()
    run_ssh(after, PUSH)
    return [before.state.revlogs, after.state.revlogs]


LANDED = _landed_states()


def damaged(data: bytes) -> st.SearchStrategy[bytes]:
    flips = st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), min_size=1, max_size=4)

    def apply(edits: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for pos, xor in edits:
            out[pos] ^= xor
        return bytes(out)

    return st.one_of(flips.map(apply), st.integers(0, len(data) - 1).map(lambda n: data[:n]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(PUSH))
def test_damaged_bundle2_push_sessions(client: bytes) -> None:
    repo = reference_repo()
    try:
        run_ssh(repo, client)
    except HgwireError:
        pass
    assert repo.state.revlogs in LANDED


def test_a_changegroup_cut_short_by_a_damaged_length_is_refused() -> None:
    # The length of the file group's name chunk turned into 4: the empty chunk that ends the
    # file groups.  The file revision would be dropped and the rest of the part left unread.
    name_chunk = PUSH.index(b"\x00\x00\x00\x05e\x00\x00\x00")
    damaged_push = PUSH[:name_chunk] + b"\x00\x00\x00\x04" + PUSH[name_chunk + 4 :]
    repo = reference_repo()
    out, _ = run_ssh(repo, damaged_push)
    assert b"bytes follow the end of its changegroup" in out
    assert repo.state.revlogs == LANDED[0]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(damaged(PUSH1), damaged(CLONE)))
def test_damaged_bundle1_push_and_clone_sessions(client: bytes) -> None:
    repo = reference_repo()
    run_ssh(repo, PUSH)
    try:
        run_ssh(repo, client)
    except HgwireError:
        pass
