"""The ``--config`` policy's deny lists (``deny_read``, ``deny_write``, ``deny_create``): a deny
wins over every grant of every rule, checked first as hgweb checks ``deny_read``; the rule index
finds deny rules as a plain scan of the rules does."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.interfaces import Kind
from gateway.auth import Access, AccessRequest, Authorizer
from gateway.policy import Policy, PolicyError, PolicyFile, RepoRule, parse_policy
from protocols.errors import PermissionDenied, RepositoryNotFound

R, W, C = Access.READ, Access.WRITE, Access.CREATE

DENIES = """
anonymous_read = true

[groups]
dev = ["alice", "ivan"]
interns = ["ivan"]
admins = ["root"]

[[repo]]
pattern = "*"
write = ["@admins"]
create = ["@admins"]

[[repo]]
pattern = "team/*"
write = ["@dev"]
create = ["@dev"]

[[repo]]
pattern = "team/secret"
deny_read = ["@interns"]

[[repo]]
pattern = "team/frozen"
read = ["ivan", "alice"]
deny_write = ["ivan"]

[[repo]]
pattern = "team/new*"
deny_create = ["ivan"]

[[repo]]
pattern = "archive/*"
deny_read = ["*"]

[[repo]]
pattern = "archive/*"
write = ["root"]                  # a grant of a later rule does not undo the deny
"""

DECISIONS = [
    # user, repo, access, allowed
    ("alice", "team/secret", R, True),
    ("alice", "team/secret", W, True),
    ("ivan", "team/secret", R, False),      # deny_read: no read although a writer by @dev
    ("ivan", "team/secret", W, False),      # deny_read takes write away
    ("ivan", "team/secret", C, False),      # and create
    ("ivan", "team/secret.git", R, False),  # NAME.git matches NAME, for denies as for grants
    ("ivan", "team/app", R, True),
    ("ivan", "team/app", W, True),
    ("ivan", "team/frozen", R, True),       # deny_write leaves read (here: a read list's)
    ("ivan", "team/frozen", W, False),
    ("ivan", "team/frozen", C, False),      # deny_write takes create away too
    ("alice", "team/frozen", W, True),
    ("ivan", "team/newapp", C, False),      # deny_create
    ("ivan", "team/newapp", W, True),       # leaves write
    ("ivan", "team/newapp", R, True),
    ("alice", "team/newapp", C, True),
    (None, "archive/old", R, False),        # a deny list refuses anonymous requests, as hgweb's
    (None, "team/secret", R, False),        # even one naming only the interns: it may be ivan unlogged
    (None, "team/app", R, True),
    ("alice", "archive/old", R, False),     # "*": every authenticated user
    ("root", "archive/old", R, False),      # granted write by two rules: the deny still wins
    ("root", "archive/old", W, False),
    ("root", "other", W, True),
    (None, "other", R, True),
]


def _authorizer(tmp_path: Path, text: str = DENIES, **kw: object) -> Authorizer:
    path = tmp_path / "hgwire.toml"
    path.write_text(text)
    return Authorizer(policy=PolicyFile(path), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("user", "repo", "access", "allowed"), DECISIONS)
def test_a_deny_wins_over_every_grant(tmp_path: Path, user: str | None, repo: str, access: Access,
                                      allowed: bool) -> None:
    assert _authorizer(tmp_path).allows(user, repo, "git-ssh", access) is allowed


def test_a_denied_user_is_told_what_a_user_without_a_grant_is_told_whether_or_not_it_exists(tmp_path: Path) -> None:
    """The refusal of a deny is the missing grant's, the same for a repository that is there and one
    that is not: it does not say that a deny (or a repository) is there."""
    there = {"team/secret", "archive/old"}

    def locate(name: str) -> tuple[str, Kind] | None:
        return (name, Kind.HG) if name in there else None

    authorizer = _authorizer(tmp_path, locate=locate, create_on_push=True)
    for name in ("team/secret", "archive/old", "archive/ghost"):
        who = "ivan" if name.startswith("team/") else "alice"
        for access, words in ((R, "read"), (W, "push to")):
            with pytest.raises(PermissionDenied, match=f"^{who} may not {words} {name}; ask"):
                authorizer.check(who, name, "hg-ssh", access)
    with pytest.raises(PermissionDenied, match="^reading archive/old needs an authenticated user"):
        authorizer.check(None, "archive/old", "hg-http", R)
    with pytest.raises(PermissionDenied, match="^reading archive/ghost needs an authenticated user"):
        authorizer.check(None, "archive/ghost", "hg-http", R)
    # denied a write but not a read: a push to a name that is not there is "not found" as before
    with pytest.raises(RepositoryNotFound, match="does not exist, and ivan may not create it"):
        authorizer.check("ivan", "team/frozen", "git-ssh", W)


def test_a_folder_a_deny_read_keeps_someone_from_is_refused_to_them_whole(tmp_path: Path) -> None:
    """``archive`` (a folder: no repository is at the name) is refused to those ``archive/*``'s
    deny keeps out, as a read list keeps its folder, whether or not it exists; root's folder ``team``
    to ivan too (a deny on ``team/secret`` lies below it), not to alice."""
    names_below = {"archive": ["archive/old"], "team": ["team/app", "team/secret"]}

    def locate(name: str) -> tuple[str, Kind] | None:
        return None if name.strip("/") in names_below or name.strip("/") == "attic" else (name, Kind.HG)

    authorizer = _authorizer(tmp_path, DENIES + '[[repo]]\npattern = "attic/*"\ndeny_read = ["*"]\n',
                             locate=locate, names_below=lambda name, limit: names_below.get(name.strip("/")))
    for name in ("archive", "attic"):
        with pytest.raises(PermissionDenied, match=f"^alice may not read {name}; "):
            authorizer.check("alice", name, "hg-http", R)
    with pytest.raises(PermissionDenied, match="^ivan may not read team; "):
        authorizer.check("ivan", "team", "hg-http", R)
    authorizer.check("alice", "team", "hg-http", R)  # left to the opening: "not a repository"


def test_a_folder_is_refused_under_a_deny_read_alone(tmp_path: Path) -> None:
    """With no read list in the file (nothing hidden before), the folder of a ``deny_read`` is
    still refused, not looked past as a file without read restrictions is."""
    authorizer = _authorizer(tmp_path, '[[repo]]\npattern = "archive/*"\ndeny_read = ["*"]\n',
                             locate=lambda name: None if name.strip("/") == "archive" else (name, Kind.GIT))
    with pytest.raises(PermissionDenied, match="^alice may not read archive; "):
        authorizer.check("alice", "archive", "git-http", R)
    authorizer.check("alice", "team", "git-http", R)


@pytest.mark.parametrize(("text", "message"), [
    ('[[repo]]\npattern = "*"\ndeny_read = ["@ghosts"]\n', "repo[0].deny_read[0]: group 'ghosts' is not defined"),
    ('[[repo]]\npattern = "*"\ndeny_write = ["@ghosts"]\n', "repo[0].deny_write[0]: group 'ghosts' is not defined"),
    ('[[repo]]\npattern = "*"\ndeny_create = [1]\n', "repo[0].deny_create[0]: must be a non-empty string"),
    ('[[repo]]\npattern = "*"\ndeny_read = "bob"\n', "repo[0].deny_read: must be a list of strings"),
    ('[[repo]]\npattern = "*"\ndeny_push = ["bob"]\n', "repo[0].deny_push: unknown key"),
])
def test_a_deny_list_is_checked_at_load_as_a_grant_list_is(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(text, "x.toml")


def test_a_deny_list_takes_anonymous_as_read_lists_do() -> None:
    policy = parse_policy('[[repo]]\npattern = "*"\ndeny_read = ["anonymous"]\ndeny_write = ["anonymous"]\n', "x")
    assert policy.rules[0].deny_read == frozenset({"anonymous"})
    assert policy.refusal(AccessRequest(None, "app", "git-http", R)) is not None
    assert policy.refusal(AccessRequest("bob", "app", "git-http", R)) is None


def test_a_deny_write_or_create_list_leaves_anonymous_reading() -> None:
    policy = parse_policy('[[repo]]\npattern = "*"\ndeny_write = ["bob"]\ndeny_create = ["carol"]\n', "x")
    assert policy.refusal(AccessRequest(None, "app", "git-http", R)) is None
    assert policy.refusal(AccessRequest("bob", "app", "git-http", R)) is None


# --- the rule index finds deny rules as a plain scan does -------------------------------------------

SEGMENTS = ["a", "b", "ab", "*", "?", "[ab]", "[!a]", "a*", "*.git", "b.git", "**", "["]
USERS = ["u1", "u2", "u3"]
PRINCIPALS = ["u1", "u2", "u3", "@g", "*", "anonymous"]
GROUP = frozenset({"u1", "u2"})

patterns = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join)
names = st.lists(st.sampled_from(["a", "b", "ab", "a.git", "b.git", "x", "[", "a*"]), min_size=1, max_size=3).map(
    "/".join)
principals = st.frozensets(st.sampled_from(PRINCIPALS), max_size=3)


def _rule_text(rule: dict[str, object]) -> str:
    lines = [f'[[repo]]\npattern = "{rule["pattern"]}"']
    for key in ("read", "write", "create", "deny_read", "deny_write", "deny_create"):
        if key in rule:
            members = sorted(rule[key])  # type: ignore[call-overload]
            if key in ("write", "create"):
                members = [m for m in members if m != "anonymous"]
            lines.append(f"{key} = [{', '.join(repr(m).replace(chr(39), chr(34)) for m in members)}]")
    return "\n".join(lines) + "\n"


rules = st.fixed_dictionaries({"pattern": patterns}, optional={
    "read": principals, "write": principals, "create": principals,
    "deny_read": principals, "deny_write": principals, "deny_create": principals})


def _plain_refused(policy: Policy, user: str | None, names_: tuple[str, ...], access: Access) -> bool:
    """The decision written from the README with a scan of every rule: denies first, then grants."""
    matching = [r for r in policy.rules if any(r.matches(n) for n in names_)]

    def named(members: frozenset[str]) -> bool:
        return any(m == "anonymous" and user is None or user is not None and (
            m == "*" or m == user or m == "@g" and user in GROUP) for m in members)

    keys = {R: ("deny_read",), W: ("deny_read", "deny_write"), C: ("deny_read", "deny_write", "deny_create")}[access]
    if any(named(getattr(r, key)) or user is None and getattr(r, key) for r in matching for key in keys):
        return True
    writers = frozenset().union(*(r.write for r in matching))
    if access is W:
        return user is None or not named(writers)
    if access is C:
        return user is None or not named(frozenset().union(*(r.create for r in matching)))
    listed = [r.read for r in matching if r.read is not None]
    if listed:
        return not named(frozenset().union(*listed, writers))
    return user is None and not policy.anonymous_read


@given(st.lists(rules, max_size=8), st.lists(names, min_size=1, max_size=4), st.booleans())
def test_the_index_finds_the_deny_rules_a_plain_scan_finds(chosen: list[dict[str, object]], asked: list[str],
                                                             anonymous_read: bool) -> None:
    text = f"anonymous_read = {str(anonymous_read).lower()}\n[groups]\ng = [\"u1\", \"u2\"]\n" + \
        "\n".join(_rule_text(rule) for rule in chosen)
    policy = parse_policy(text, "test")
    for name in asked:
        for names_ in ((name,), (name, name.strip("/").removesuffix(".git") + ".git")):
            assert policy.matching(names_) == [r for r in policy.rules if any(r.matches(n) for n in names_)], names_
            for user in (None, *USERS):
                for access in (R, W, C):
                    request = AccessRequest(user, name, "git-ssh", access, names_)
                    assert (policy.refusal(request) is not None) is _plain_refused(policy, user, names_, access), \
                        (text, user, names_, access)
        prefix = name.strip("/") + "/"
        assert policy.read_rules_below(prefix) == [
            r for r in policy.rules if (r.read is not None or r.deny_read)
            and (r.pattern.startswith(prefix) or fnmatch.fnmatchcase(prefix + "\x00", r.pattern))], prefix
    assert policy.restricts_reading() is any(r.read is not None or r.deny_read for r in policy.rules)


def test_a_rule_of_only_a_deny_list_is_a_rule() -> None:
    policy = parse_policy('[[repo]]\npattern = "x/*"\ndeny_create = ["bob"]\n', "x")
    assert policy.rules == (RepoRule("x/*", deny_create=frozenset({"bob"})),)
    assert not policy.restricts_reading()


def test_the_readme_example_denies_what_it_says() -> None:
    import re

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.DOTALL)
    assert example
    policy = parse_policy(example.group(1), "README.md")

    def allowed(user: str | None, name: str, access: Access) -> bool:
        return policy.refusal(AccessRequest(user, name, "git-ssh", access)) is None

    assert allowed("alice", "team/secret", W) and not allowed("bob", "team/secret", R)
    assert not allowed(None, "team/secret", R)  # or bob would read it without logging in
    assert allowed("bob", "team/app", W) and not allowed("bob", "team/secret", W)
    assert allowed(None, "team/app", R) and not allowed(None, "archive/old", R)
    assert not allowed("root", "archive/old", R) and not allowed("root", "archive/old", W)
    assert allowed("bob", "team/release-1", R) and not allowed("bob", "team/release-1", W)
    assert allowed("alice", "team/release-1", W)
