"""A listing for one user (the SSH greeting, ``info``, the web index) reads only the folders where
the rules let that user read (``Policy.readable_starts``): a user who may read 5 repositories of
10,000, under a read list on ``*``, had every name of the root listed and checked (2.7 s).  The
names shown are those the whole walk's check keeps, whatever the rules, users and folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backends import names_in_folder
from backends.filesystem import FilesystemBackend
from gateway import repo_page, ssh
from gateway.auth import Access, Authorizer
from gateway.policy import Policy, PolicyFile, RepoRule
from protocols.errors import RepositoryNotFound

if TYPE_CHECKING:
    from tests.unit.gateway.conftest import Counted

RULES = """anonymous_read = false
[groups]
admins = ["root"]
team07 = ["carol"]

[[repo]]
pattern = "*"
read = ["@admins"]
write = ["@admins"]

[[repo]]
pattern = "team07/*"
read = ["@team07"]

[[repo]]
pattern = "team03/r1.git"
read = ["ivan"]

[[repo]]
pattern = "team05/r*"
read = ["ivan"]

[[repo]]
pattern = "team05/r2"
deny_read = ["ivan"]
"""


def _make(root: Path, names: list[str], git: frozenset[str] | None = None) -> None:
    """Repositories as the ``fs`` backend tells them (an hg one's ``.hg``, a bare git directory),
    without git or hg: cheap enough for many examples; git ones those ending with ``.git``, or
    those of ``git``."""
    for name in names:
        path = root / name
        if (name.endswith(".git") if git is None else name in git):
            (path / "objects").mkdir(parents=True, exist_ok=True)
            (path / "refs").mkdir(exist_ok=True)
            (path / "HEAD").write_text("ref: refs/heads/main\n")
        else:
            (path / ".hg").mkdir(parents=True, exist_ok=True)


def _setup(tmp_path: Path, rules: str = RULES) -> tuple[FilesystemBackend, Authorizer]:
    root = tmp_path / "root"
    _make(root, [f"team{t:02d}/r{n}{'.git' if n % 2 else ''}" for t in range(10) for n in range(4)])
    policy = tmp_path / "rules.toml"
    policy.write_text(rules)
    backend = FilesystemBackend(str(root))
    return backend, Authorizer(policy=PolicyFile(str(policy)), locate=backend.locate,
                               names_below=backend.names_below)


def test_a_greeting_lists_only_the_folders_the_rules_let_the_user_read(tmp_path: Path, counted: Counted) -> None:
    backend, authorizer = _setup(tmp_path)
    root = str(tmp_path / "root")
    counted.listed.clear()
    text = ssh.greeting(backend, authorizer, "ivan").decode()
    assert text.splitlines()[3:] == [" R    team03/r1.git", " R    team05/r0", " R    team05/r1.git",
                                     " R    team05/r3.git"], "team05/r2 denied"
    assert counted.listed == [os.path.join(root, "team03"), os.path.join(root, "team05")], \
        "it listed the root and every team folder (10,000 repositories: 2.7 s)"
    assert set(counted.checked) <= {"team03/r1.git", "team05/r0", "team05/r1.git", "team05/r2", "team05/r3.git"}
    counted.listed.clear()
    assert ssh.greeting(backend, authorizer, "ivan", "team05/*").decode().count(" R ") == 3
    assert counted.listed == [os.path.join(root, "team05")]
    counted.listed.clear()
    ssh.greeting(backend, authorizer, "carol").decode()
    assert counted.listed == [os.path.join(root, "team07")]


def test_the_web_index_for_a_logged_in_user_lists_only_their_folders(tmp_path: Path, counted: Counted,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The index (and a folder's page) shares the walk: ivan's page listed every folder of the root."""
    backend, authorizer = _setup(tmp_path)
    shown: list[str] = []

    def entry(front: Any, name: str, user: str | None) -> dict[str, Any] | None:
        shown.append(name)
        return {"name": name, "path": name, "kind": "git", "description": "", "date": None} \
            if authorizer.allows(user, name, "git-http", Access.READ) else None

    monkeypatch.setattr(repo_page, "_index_entry", entry)
    front: Any = SimpleNamespace(config=SimpleNamespace(backend=backend), authorizer=authorizer)
    root = str(tmp_path / "root")
    counted.listed.clear()
    body, following = repo_page._index(front, "ivan", "http://host", as_json=True)
    assert following is None and body is not None and b"team05/r3.git" in body
    assert shown == ["team03/r1.git", "team05/r0", "team05/r1.git", "team05/r2", "team05/r3.git"]
    assert counted.listed == [os.path.join(root, "team03"), os.path.join(root, "team05")]
    counted.listed.clear()
    assert repo_page._index(front, "ivan", "http://host", folder="team04/") == (None, None)
    assert counted.listed == [], "a folder page where the rules let ivan read nothing reads no folder"


def test_a_grant_everywhere_still_walks_the_root(tmp_path: Path, counted: Counted) -> None:
    """A granting pattern that starts with a glob, or names no read list covers (any logged-in user
    reads them): every folder is listed, as before."""
    for rules in (RULES + '[[repo]]\npattern = "*/r3.git"\nread = ["ivan"]\n',
                  RULES.replace('pattern = "*"\n', 'pattern = "team0[0-8]/*"\n')):
        backend, authorizer = _setup(tmp_path, rules)
        counted.listed.clear()
        text = ssh.greeting(backend, authorizer, "ivan").decode()
        assert len(counted.listed) == 11, rules
        assert "team05/r3.git" in text


def test_the_rest_past_the_greeting_is_counted_where_the_rules_bound_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``… and more`` gave no count, as counting checked every name of the root; where the rules
    bound the walk, the rest is counted (up to ``MAX_GREETING_COUNTED`` names checked)."""
    backend, authorizer = _setup(tmp_path, RULES.replace('team07 = ["carol"]', 'team07 = ["carol", "ivan"]'))
    monkeypatch.setattr(ssh, "MAX_GREETING_REPOSITORIES", 2)
    lines = ssh.greeting(backend, authorizer, "ivan").decode().splitlines()
    assert lines[3:] == [" R    team03/r1.git", " R    team05/r0",
                         " … and 6 more ('info PATTERN' lists those whose names hold PATTERN)"]
    monkeypatch.setattr(ssh, "MAX_GREETING_COUNTED", 5)
    assert ssh.greeting(backend, authorizer, "ivan").decode().splitlines()[-1] == \
        " … and more ('info PATTERN' lists those whose names hold PATTERN)", "7 names were left"
    monkeypatch.setattr(ssh, "MAX_GREETING_COUNTED", 6)
    assert " … and 6 more" in ssh.greeting(backend, authorizer, "ivan").decode()
    unbounded = RULES.replace('pattern = "*"\n', 'pattern = "team0[0-8]/*"\n')
    backend, authorizer = _setup(tmp_path, unbounded)
    assert ssh.greeting(backend, authorizer, "ivan").decode().splitlines()[-1] == \
        " … and more ('info PATTERN' lists those whose names hold PATTERN)", "not counted over the whole root"


# --- the bounded walk against the whole walk's check ------------------------------------------

SEGMENTS = ["a", "ab", "b", "app", "app.git", "a.g", "x-y", "é"]
PRINCIPALS = ["u1", "u2", "@g", "*", "anonymous"]
USERS = [None, "u1", "u2", "u3"]

segment = st.sampled_from(SEGMENTS)
repo_name = st.builds(lambda parts, suffix: "/".join(parts) + (".git" if suffix else ""),
                      st.lists(segment, min_size=1, max_size=3), st.booleans())
glob_piece = st.sampled_from(["*", "?", "[ab]", "a*", "*.git", "p*", "[!a]*"])
pattern = st.builds(lambda parts: "/".join(parts),
                    st.lists(st.one_of(segment, glob_piece, st.builds(lambda s, g: s + g, segment, glob_piece)),
                             min_size=1, max_size=3)) | \
    st.sampled_from(["*", "**", "a*", "a/*", "app", "app.git", "a/app.g*", "a/app.git"])
principals = st.lists(st.sampled_from(PRINCIPALS), max_size=2).map(frozenset)
rule = st.builds(lambda p, read, write, deny: RepoRule(p, read=read, write=write, deny_read=deny),
                 pattern, st.none() | principals, principals,
                 st.just(frozenset()) | st.lists(st.sampled_from(PRINCIPALS), max_size=1).map(frozenset))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(repo_name, max_size=12), kinds=st.lists(st.booleans(), min_size=12, max_size=12),
       rules=st.lists(rule, max_size=6), anonymous_read=st.booleans(),
       catch_all=st.none() | principals, user=st.sampled_from(USERS),
       folder=st.sampled_from(["", "a", "app", "a/b"]), after=st.sampled_from(["", "a", "a/app", "app.git", "b"]))
@example(names=["a/app", "a/b"], kinds=[True] * 12, rules=[RepoRule("a/app.git", read=frozenset({"u1"}))],
         anonymous_read=True, catch_all=frozenset(), user="u1", folder="", after="")  # (app.git is a/app's rule name)
def test_the_bounded_walk_keeps_what_the_whole_walk_keeps(
        names: list[str], kinds: list[bool], rules: list[RepoRule], anonymous_read: bool,
        catch_all: frozenset[str] | None, user: str | None, folder: str, after: str) -> None:
    if catch_all is not None:  # a read list on every name: what makes the walk bounded
        rules = [RepoRule("*", read=catch_all), *rules]
    policy = Policy(anonymous_read=anonymous_read, groups={"g": frozenset({"u1"})}, rules=tuple(rules))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        # (git ones stored as app or app.git, hg ones as app or x.git)
        _make(root, names, frozenset(name for name, git in zip(names, kinds, strict=False) if git))
        backend = FilesystemBackend(str(root))
        authorizer = Authorizer(policy=cast(PolicyFile, SimpleNamespace(current=policy)), locate=backend.locate,
                                names_below=backend.names_below)

        def reads(name: str) -> bool:
            return authorizer.allows(user, name, "git-ssh", Access.READ)

        whole = [name for name in names_in_folder(backend, folder, after) if reads(name)]
        starts = authorizer.readable_starts(user)
        bounded = [name for name in names_in_folder(backend, folder, after, starts) if reads(name)]
        assert bounded == whole, (starts, sorted(set(names)))
        listed_only = _ListOnly(backend.list())  # a backend without list_folder: its list() filtered
        assert [name for name in names_in_folder(listed_only, folder, after, starts) if reads(name)] == whole
        for name in backend.list():  # a folder the rules alone keep the user out of holds nothing they read
            parts = name.split("/")
            for depth in range(1, len(parts)):
                below = "/".join(parts[:depth]) + "/"
                assert not (policy.reads_nothing_below(user, below) and reads(name)), (below, name)


class _ListOnly:
    def __init__(self, names: Any) -> None:
        self.names = list(names)

    def list(self) -> list[str]:
        return list(reversed(self.names))


# --- a folder whose every name the rules refuse ------------------------------------------------

def _folder_check(tmp_path: Path, rules: str) -> tuple[Authorizer, list[tuple[str, int]]]:
    root = tmp_path / "root"
    _make(root, [f"hidden-team/secret-{n:02d}.git" for n in range(80)] + ["open/app.git"])
    policy = tmp_path / "folder-rules.toml"
    policy.write_text(rules)
    backend = FilesystemBackend(str(root))
    asked: list[tuple[str, int]] = []

    def names_below(name: str, limit: int) -> list[str] | None:
        asked.append((name, limit))
        return backend.names_below(name, limit)

    return Authorizer(policy=PolicyFile(str(policy)), locate=backend.locate, names_below=names_below), asked


def test_a_folder_the_rules_keep_a_user_out_of_is_answered_without_reading_it(tmp_path: Path) -> None:
    """``hidden-team`` (a name the rules let anyone read, no rule letting an anonymous user read
    below it, under ``anonymous_read = false``) was answered "not found" as ``hidden-tean`` is, but
    after up to 64 of its entries were read and checked (12.7 ms against 2.5 over git://); the rules
    alone tell now, and only whether it is a folder is asked."""
    rules = ('anonymous_read = false\n[[repo]]\npattern = "open/*"\nread = ["anonymous"]\n'
             + "".join(f'[[repo]]\npattern = "{name}"\nread = ["anonymous"]\n'
                       for name in ("hidden-team", "hidden-tean")))
    authorizer, asked = _folder_check(tmp_path, rules)
    with pytest.raises(RepositoryNotFound, match="repository hidden-team not found"):
        authorizer.check(None, "hidden-team", "git-daemon", Access.READ)
    authorizer.check(None, "hidden-tean", "git-daemon", Access.READ)  # (nothing there: its open says "not found")
    assert asked == [("hidden-team", 0), ("hidden-tean", 0)], "the folder's entries were read and checked"
    assert authorizer.allows(None, "open/app.git", "git-daemon", Access.READ)


def test_a_folder_the_rules_cannot_tell_of_is_still_read(tmp_path: Path) -> None:
    """A read list on ``*/secret-*``: an hg repository ``hidden-team/docs`` would be read by anyone,
    so only the folder's entries tell (``FOLDER_SCAN_LIMIT``)."""
    authorizer, asked = _folder_check(tmp_path, 'anonymous_read = true\n[[repo]]\npattern = "*/secret-*"\n'
                                      'read = ["root"]\n')
    with pytest.raises(RepositoryNotFound, match="repository hidden-team not found"):
        authorizer.check(None, "hidden-team", "git-daemon", Access.READ)
    assert asked == [("hidden-team", 64)]
    authorizer, asked = _folder_check(tmp_path, 'anonymous_read = false\n[[repo]]\npattern = "hidden-team*"\n'
                                      'read = ["anonymous"]\n')
    assert authorizer.allows(None, "hidden-team/secret-01.git", "git-daemon", Access.READ)


def test_the_rules_that_grant_a_user_reading_are_found_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked of every name that reaches no repository, on the event loop: each ask scanned every rule
    (2,000 rules: 1.4 ms a folder, three folders a name); a policy now finds them once a user."""
    rules = tuple(RepoRule(f"team{n:04d}/*", read=frozenset({f"@team{n % 50}"})) for n in range(2000))
    policy = Policy(anonymous_read=False, rules=(RepoRule("*", read=frozenset({"root"})), *rules))
    scanned: list[str] = []
    grants = Policy._grants_reading

    def counting(self: Policy, user: str | None, rule: RepoRule) -> bool:
        scanned.append(rule.pattern)
        return grants(self, user, rule)

    monkeypatch.setattr(Policy, "_grants_reading", counting)
    for folder in ("hidden-team/", "hidden-team.git/", "team0007/", "nothere/") * 5:
        policy.reads_nothing_below("ivan", folder)
    assert policy.readable_starts("ivan") == ()
    assert len(scanned) == 2001
