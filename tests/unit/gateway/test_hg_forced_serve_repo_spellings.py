"""A forced ``hg serve --stdio`` naming its repository as hg also reads it, ``--repo NAME``,
``--repo=NAME`` or ``-RNAME`` (hg's own early options: ``hg --repo team/app root`` works), was
skipped as a command hgwire "cannot honour": its user met only "Permission denied (publickey)"."""

from __future__ import annotations

import base64

import pytest

from gateway.auth import DEFAULT_RULES, Access, Authorizer, parse_key_line, restricted
from protocols.errors import PermissionDenied

B64 = base64.b64encode(base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAIBSbHUBgnK7HLJr6S9R7yqdNbgSdKYh5VxZZqHqZz8wT")).decode()


@pytest.mark.parametrize("command", ["hg --repo team/app serve --stdio", "hg --repo=team/app serve --stdio",
                                     "hg -Rteam/app serve --stdio", "hg serve --stdio --repo team/app"])
def test_each_spelling_hg_reads_reaches_the_repository_alone(command: str) -> None:
    key = parse_key_line(f'command="{command}" ssh-ed25519 {B64} alice')
    assert key is not None and key.restriction is not None
    assert key.restriction.repos == frozenset({"team/app"})
    authorizer = restricted(Authorizer(rules=DEFAULT_RULES), key.restriction)
    authorizer.check("alice", "team/app", "hg-ssh", Access.WRITE)
    with pytest.raises(PermissionDenied, match="this SSH key serves team/app alone"):
        authorizer.check("alice", "other", "hg-ssh", Access.READ)
