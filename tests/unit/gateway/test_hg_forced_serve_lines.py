"""authorized_keys lines that force ``hg -R NAME serve --stdio`` (sshd's one-repository Mercurial
key, Mercurial's wiki's set-up before hg-ssh): the key reaches that repository alone, with hg only,
never creating one; a form hgwire cannot honour is skipped with its reason."""

from __future__ import annotations

import base64

import pytest

from gateway.auth import (
    DEFAULT_RULES,
    Access,
    Authorizer,
    KeyLineError,
    forces_hidden,
    parse_key_line,
    restricted,
)
from protocols.errors import PermissionDenied

B64 = base64.b64encode(base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAIBSbHUBgnK7HLJr6S9R7yqdNbgSdKYh5VxZZqHqZz8wT")).decode()


@pytest.mark.parametrize(("command", "repo"), [
    ("hg -R team/app serve --stdio", "team/app"),
    ("/usr/bin/hg -R ~/team/app serve --stdio", "team/app"),
    ("hg --repository team/app serve --stdio", "team/app"),
    ("hg --repository=app/ serve --stdio", "app"),
    ("hg serve --stdio -R app", "app"),
])
def test_a_forced_hg_serve_line_reaches_its_repository_alone(command: str, repo: str) -> None:
    key = parse_key_line(f'command="{command}",no-pty,no-port-forwarding ssh-ed25519 {B64} alice')
    assert key is not None and key.user == "alice" and key.restriction is not None
    assert key.restriction.repos == frozenset({repo})
    authorizer = restricted(Authorizer(rules=DEFAULT_RULES), key.restriction)
    authorizer.check("alice", repo, "hg-ssh", Access.WRITE)
    with pytest.raises(PermissionDenied, match=f"this SSH key serves {repo} alone .*: use ssh://HOST/{repo}"):
        authorizer.check("alice", "other", "hg-ssh", Access.READ)
    with pytest.raises(PermissionDenied, match="may only run Mercurial"):
        authorizer.check("alice", repo, "git-ssh", Access.READ)
    with pytest.raises(PermissionDenied, match="may not create"):
        authorizer.check("alice", repo, "hg-ssh", Access.CREATE)


@pytest.mark.parametrize(("command", "reason"), [
    ("hg -R /srv/hg/app serve --stdio", "absolute path"),
    ("hg -R ../app serve --stdio", "'..' segment"),
    ("hg -R app serve", "without --stdio"),
    ("hg -R app serve --stdio --config x=y", "cannot honour"),
    ("hg -R app -R b serve --stdio", "cannot honour"),
    ("hg serve --stdio", "cannot honour"),
    ("hg -R $HOME/app serve --stdio", "needs a shell"),
    ("cd /srv/hg && hg serve --stdio", "cannot honour"),
])
def test_a_forced_hg_serve_line_hgwire_cannot_honour_is_skipped(command: str, reason: str) -> None:
    with pytest.raises(KeyLineError, match=reason.replace("$", r"\$")):
        parse_key_line(f'command="{command}" ssh-ed25519 {B64} eve')


@pytest.mark.parametrize(("command", "hidden"), [
    ("hg -R app serve --stdio --hidden", True),
    ("hg serve --stdio --hidden -R app", True),
    ("hg -R app serve --stdio", False),
])
def test_a_forced_hg_serve_hidden_line_asks_for_hidden_changesets(command: str, hidden: bool) -> None:
    key = parse_key_line(f'command="{command}" ssh-ed25519 {B64} alice')
    assert key is not None and key.restriction is not None
    assert key.restriction.repos == frozenset({"app"}) and key.restriction.hidden is hidden
    authorizer = restricted(Authorizer(rules=DEFAULT_RULES), key.restriction)
    assert forces_hidden(authorizer) is hidden
    shown = "hg -R app serve --stdio" + (" --hidden" if hidden else "")
    with pytest.raises(PermissionDenied, match=f"serves app alone \\({shown} in authorized_keys\\)"):
        authorizer.check("alice", "other", "hg-ssh", Access.READ)


@pytest.mark.parametrize("command", ["hg -R app serve --hidden --stdio", "hg -R app serve --stdio --hidden --hidden"])
def test_hidden_where_hg_refuses_it_is_skipped(command: str) -> None:
    with pytest.raises(KeyLineError, match="cannot honour"):
        parse_key_line(f'command="{command}" ssh-ed25519 {B64} eve')
