"""authorized_keys lines of Mercurial's ``hg-ssh``: the key reaches the repositories its line lists,
with hg only, never creating one, and only reading with ``--read-only``; a line that needs a shell
(globs, ``~``, ``cd DIR && hg-ssh``, quotes) or names an absolute path is skipped with its reason."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.names import validate_name
from gateway.auth import (
    DEFAULT_RULES,
    Access,
    AuthorizedKeys,
    Authorizer,
    KeyLineError,
    KeyRestriction,
    parse_key_line,
    restricted,
)
from protocols.errors import PermissionDenied, ReadOnly

BLOB = base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAIBSbHUBgnK7HLJr6S9R7yqdNbgSdKYh5VxZZqHqZz8wT")
B64 = base64.b64encode(BLOB).decode()


@pytest.mark.parametrize(("line", "user", "repos", "read_only"), [
    ((f'command="hg-ssh team/app other",no-port-forwarding,no-X11-forwarding,no-agent-forwarding '
      f'ssh-ed25519 {B64} alice@laptop'), "alice@laptop", {"team/app", "other"}, False),
    (f'command="/usr/share/mercurial/contrib/hg-ssh --read-only docs/",no-pty ssh-ed25519 {B64} bob',
     "bob", {"docs"}, True),
    (f'command="hg-ssh app",user="carol" ssh-ed25519 {B64} laptop', "carol", {"app"}, False),
    # hg-ssh's own manual's example: the home's repositories, the root's here as in ssh://host/~/repo3
    (f'command="hg-ssh ~/repo3 ./team/app",no-pty ssh-ed25519 {B64} dave', "dave", {"repo3", "team/app"}, False),
])
def test_an_hg_ssh_line_logs_in_restricted(line: str, user: str, repos: set[str], read_only: bool) -> None:
    key = parse_key_line(line)
    assert key is not None
    assert key.user == user
    assert key.restriction == KeyRestriction(frozenset(repos), read_only)


def test_a_plain_line_is_not_restricted() -> None:
    key = parse_key_line(f"ssh-ed25519 {B64} alice")
    assert key is not None and key.restriction is None


@pytest.mark.parametrize(("command", "reason"), [
    ("hg-ssh", "without a repository"),
    ("hg-ssh --read-only", "without a repository"),
    ("hg-ssh repos/*", "needs a shell"),
    ("hg-ssh ~", "no repository"),
    ("hg-ssh ~/~/x", "needs a shell"),
    ("hg-ssh ~/../outside", "'..' segment"),
    ("hg-ssh ~user/repo4", "needs a shell"),
    ("hg-ssh projects/{mercurial,foo}", "needs a shell"),
    ("hg-ssh $HOME/r", "needs a shell"),
    ("hg-ssh a;rm", "needs a shell"),
    ("cd path/to/repos && hg-ssh a b", "through a shell"),
    ("hg-ssh /srv/hg/app", "absolute path"),
    ("hg-ssh ../outside", "'..' segment"),
    ("hg-ssh app/.hg", "hidden segment"),
    ("hg-ssh -x", "starts with '-'"),
    ("hg-ssh-other app", "cannot honour"),
])
def test_an_hg_ssh_line_hgwire_cannot_honour_is_skipped(command: str, reason: str) -> None:
    with pytest.raises(KeyLineError, match=reason.replace("{", r"\{").replace("$", r"\$")):
        parse_key_line(f'command="{command}" ssh-ed25519 {B64} eve')


def _checker(restriction: KeyRestriction) -> Authorizer:
    return restricted(Authorizer(rules=DEFAULT_RULES), restriction)


def test_the_restriction_allows_only_what_hg_ssh_allowed() -> None:
    authorizer = _checker(KeyRestriction(frozenset({"team/app"})))
    authorizer.check("alice", "team/app", "hg-ssh", Access.READ)
    authorizer.check("alice", "team/app", "hg-ssh", Access.WRITE)
    with pytest.raises(PermissionDenied, match="may not reach team/other"):
        authorizer.check("alice", "team/other", "hg-ssh", Access.READ)
    with pytest.raises(PermissionDenied, match="may only run Mercurial"):
        authorizer.check("alice", "team/app", "git-ssh", Access.READ)
    with pytest.raises(PermissionDenied, match="may not create"):
        authorizer.check("alice", "team/app", "hg-ssh", Access.CREATE)
    read_only = _checker(KeyRestriction(frozenset({"team/app"}), read_only=True))
    read_only.check("alice", "team/app", "hg-ssh", Access.READ)
    with pytest.raises(ReadOnly, match="may only read team/app"):
        read_only.check("alice", "team/app", "hg-ssh", Access.WRITE)


def test_the_restriction_only_adds_to_the_server_s_rules() -> None:
    base = Authorizer(read_only=True)
    narrowed = restricted(base, KeyRestriction(frozenset({"app"})))
    assert restricted(base, None) is base
    assert narrowed.rules[:-1] == base.rules and narrowed.read_only
    with pytest.raises(ReadOnly, match="this server is read-only"):
        narrowed.check("alice", "app", "hg-ssh", Access.WRITE)


def test_the_line_that_lets_the_key_in_decides(tmp_path: Path) -> None:
    """As sshd: the first line whose from= allows the client gives the options."""
    path = tmp_path / "authorized_keys"
    path.write_text(f'from="192.0.2.0/24",command="hg-ssh --read-only app" ssh-ed25519 {B64} alice\n'
                    f"ssh-ed25519 {B64} alice\n")
    keys = AuthorizedKeys(path)
    assert keys.login_for(BLOB, "192.0.2.7") == ("alice", KeyRestriction(frozenset({"app"}), True))
    assert keys.login_for(BLOB, "203.0.113.1") == ("alice", None)
    assert keys.user_for(BLOB, "192.0.2.7") == "alice"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["hg-ssh", "/usr/bin/hg-ssh", "--read-only", "cd", "&&", "team/app", "a/../b",
                                           ".hg", "-x", "~/r", "r*", "/abs", "ok/name"]),
                          st.text(alphabet=st.characters(blacklist_characters='"\\\n\r\0'), max_size=12)),
                max_size=6))
def test_any_forced_command_is_a_restriction_or_a_skipped_line(words: list[str]) -> None:
    """Whatever the command says, the line parses to a key (restricted to valid names only) or is
    skipped with a reason; nothing else escapes."""
    try:
        key = parse_key_line(f'command="{" ".join(words)}" ssh-ed25519 {B64} eve')
    except KeyLineError:
        return
    assert key is not None
    if key.restriction is not None:
        assert key.restriction.repos and all(validate_name(name) == name for name in key.restriction.repos)


@pytest.mark.parametrize("command", ['git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"',
                                     '/usr/bin/git-shell -c \\"${SSH_ORIGINAL_COMMAND}\\"'])
def test_a_git_shell_line_logs_in_for_git_only(command: str) -> None:
    key = parse_key_line(f'command="{command}",restrict ssh-ed25519 {B64} alice laptop')
    assert key is not None and key.user == "alice"
    assert key.restriction == KeyRestriction(frozenset(), program="git-shell")
    authorizer = restricted(Authorizer(rules=DEFAULT_RULES, anonymous_read=False), key.restriction)
    authorizer.check("alice", "app.git", "git-ssh", Access.WRITE)
    with pytest.raises(PermissionDenied, match="may only run git"):
        authorizer.check("alice", "notes", "hg-ssh", Access.READ)


@pytest.mark.parametrize("command", ["git-shell", "git-shell -c ls", "/usr/bin/git-shell -c '$SSH_ORIGINAL_COMMAND'"])
def test_a_git_shell_line_that_lets_no_command_through_is_skipped(command: str) -> None:
    with pytest.raises(KeyLineError, match="git-shell without -c"):
        parse_key_line(f'command="{command}" ssh-ed25519 {B64} alice')
