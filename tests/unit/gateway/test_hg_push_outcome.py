"""What the log says of an answered hg push (the SSH session's line said "pushed" whatever the reply said)."""

from __future__ import annotations

from gateway.hg_session import push_outcome
from protocols.hg_responses import OobError, PushError, PushResponse, StreamResponse


def test_a_refused_push_is_logged_refused_with_why() -> None:
    assert push_outcome(StreamResponse(iter(()), refused="prechangegroup.x hook exited with status 1")) == \
        "refused: prechangegroup.x hook exited with status 1"
    assert push_outcome(PushError(b"push race")) == "refused: push race"
    assert push_outcome(OobError(b"this SSH key may only read r")) == "refused: this SSH key may only read r"


def test_a_landed_push_is_logged_pushed() -> None:
    assert push_outcome(StreamResponse(iter(()))) == "pushed"
    assert push_outcome(PushResponse(1)) == "pushed"
