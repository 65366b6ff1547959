"""The ``--config`` policy: parsing, globs, groups, decisions, protections and reloading."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from backends.interfaces import Kind
from gateway.auth import Access, Authorizer
from gateway.config import ServiceConfig
from gateway.policy import (
    GitSettings,
    Limits,
    Maintenance,
    PolicyError,
    PolicyFile,
    Protection,
    RepoRule,
    authorizer_for,
    check_exported,
    clone_cache,
    export_all,
    first_match,
    load_policy,
    maintenance,
    parse_policy,
)
from gateway.shared_streams import KeepBounds
from protocols.errors import HgwireError, PermissionDenied, ReadOnly, RepositoryNotFound

EXAMPLE = """
anonymous_read = false
protected_refs = ["refs/heads/main"]

[groups]
admins = ["root"]
dev = ["alice"]

[users]
bob = ["dev"]

[[repo]]
pattern = "*"
write = ["@admins"]
create = ["@admins"]

[[repo]]
pattern = "team/*"
read = ["*"]
write = ["@dev"]
protected_refs = ["refs/tags/*", { pattern = "refs/heads/release/*", no_direct_push = true }]
protected_bookmarks = ["stable"]

[[repo]]
pattern = "public/site"
read = ["anonymous", "carol"]

[limits]
max_request_body = 1000
idle_timeout = 30
"""

R, W, C = Access.READ, Access.WRITE, Access.CREATE


def _authorizer(tmp_path: Path, text: str = EXAMPLE, read_only: bool = False) -> Authorizer:
    path = tmp_path / "hgwire.toml"
    path.write_text(text)
    return Authorizer(read_only=read_only, policy=PolicyFile(path))


MATRIX = [
    # user, repo, access, allowed
    (None, "team/app", R, False),       # anonymous_read = false
    ("carol", "team/app", R, True),     # "*" reads team/*
    ("carol", "team/app", W, False),
    ("alice", "team/app", W, True),     # @dev
    ("bob", "team/app.git", W, True),   # @dev through [users]; NAME.git matches NAME
    ("bob", "team/app", C, False),
    ("root", "team/app", C, True),      # @admins on "*"
    ("root", "elsewhere/deep/repo", W, True),  # * crosses /
    ("alice", "elsewhere", W, False),   # deny by default
    ("alice", "elsewhere", R, True),    # no read list: any authenticated user
    (None, "elsewhere", R, False),
    (None, "public/site", R, True),     # "anonymous" listed
    ("carol", "public/site", R, True),
    ("alice", "public/site", R, False),  # a read list that does not name alice
    ("root", "public/site", R, True),   # writers read
    (None, "team/app", W, False),
]


@pytest.mark.parametrize(("user", "repo", "access", "allowed"), MATRIX)
def test_decisions(tmp_path: Path, user: str | None, repo: str, access: Access, allowed: bool) -> None:
    assert _authorizer(tmp_path).allows(user, repo, "git-ssh", access) is allowed


def test_a_rule_names_a_user_beyond_ascii_however_the_file_composes_it(tmp_path: Path) -> None:
    """``josé`` written decomposed in the file is the user who logs in as ``josé`` (composed, as
    the password and keys files' names are taken), in a group, a ``[users]`` entry and a rule."""
    text = ('[groups]\ndev = ["jose\u0301"]\n[users]\n"bo\u0308b" = ["dev"]\n'
            '[[repo]]\npattern = "*"\nwrite = ["@dev"]\n[[repo]]\npattern = "lab/*"\nwrite = ["Ame\u0301lie"]\n')
    authorizer = _authorizer(tmp_path, text)
    assert authorizer.allows("josé", "app", "git-http", W)
    assert authorizer.allows("böb", "app", "git-http", W)
    assert authorizer.allows("Amélie", "lab/x", "git-http", W)
    assert not authorizer.allows("Amélie", "app", "git-http", W)


@pytest.mark.parametrize(("defined", "named", "joined"), [
    ("e\u0301quipe", "e\u0301quipe", "e\u0301quipe"),  # decomposed throughout (a name pasted from macOS)
    ("\u00e9quipe", "e\u0301quipe", "\u00e9quipe"),  # two spellings of one name
    ("e\u0301quipe", "\u00e9quipe", "\u00e9quipe"),
])
def test_a_group_named_beyond_ascii_is_one_group_however_the_file_composes_its_name(
        tmp_path: Path, defined: str, named: str, joined: str) -> None:
    """A rule's ``@équipe`` is the group ``[groups] équipe`` (and ``[users]`` entries naming it)
    whether each spelling is composed or decomposed.  Once the rules' principals were composed
    (NFC), a group whose name was decomposed everywhere granted nobody anything, silently, and
    two spellings of one name were refused at load as a group that is not defined."""
    text = (f'[groups]\n"{defined}" = ["alice"]\n[users]\nbob = ["@{joined}"]\n'
            f'[[repo]]\npattern = "*"\nwrite = ["@{named}"]\n')
    authorizer = _authorizer(tmp_path, text)
    assert authorizer.allows("alice", "app", "git-http", W)
    assert authorizer.allows("bob", "app", "git-http", W)
    assert not authorizer.allows("carol", "app", "git-http", W)


def test_refusals_say_what_to_do(tmp_path: Path) -> None:
    authorizer = _authorizer(tmp_path)
    with pytest.raises(PermissionDenied, match="carol may not push to team/app; ask the server's operator"):
        authorizer.check("carol", "team/app", "git-ssh", W)
    with pytest.raises(PermissionDenied, match="needs an authenticated user"):
        authorizer.check(None, "team/app", "git-http", R)


def test_a_push_to_no_repository_says_so_to_whoever_may_read_the_name(tmp_path: Path) -> None:
    """A push to a name that is not there is "not found" (as without ``--config``), or under
    ``--create-on-push`` "does not exist, and … may not create it" (it said "may not push"); a
    create of one that is there (``hg init``) "already exists" (it said "may not create").  To a
    user who may not read the name the policy's words stay: they are the same whether it exists."""
    path = tmp_path / "hgwire.toml"
    path.write_text(EXAMPLE + '[[repo]]\npattern = "secret/*"\nread = ["root"]\n')
    there = {"team/app", "secret/plans"}

    def locate(name: str) -> tuple[str, Kind] | None:
        return (name, Kind.HG) if name in there else None

    plain = Authorizer(policy=PolicyFile(path), locate=locate)
    creating = Authorizer(policy=PolicyFile(path), locate=locate, create_on_push=True)
    with pytest.raises(RepositoryNotFound, match="^repository team/typo not found$"):
        plain.check("carol", "team/typo", "git-ssh", W)
    with pytest.raises(RepositoryNotFound, match="^repository team/typo does not exist, and carol may not create it; "
                                                 "check the name, or ask the server's operator to create it$"):
        creating.check("carol", "team/typo", "git-ssh", W)
    with pytest.raises(RepositoryNotFound, match="^repository team/typo does not exist, and alice may not create"):
        creating.check("alice", "team/typo", "git-http", C)  # may push, may not create: the session's check
    with pytest.raises(HgwireError, match="^repository team/app already exists$"):
        creating.check("alice", "team/app", "hg-ssh", C)
    with pytest.raises(PermissionDenied, match="^alice may not create team/typo; "):
        creating.check("alice", "team/typo", "hg-ssh", C)  # hg init: asked to create, told so
    for name in ("secret/plans", "secret/typo"):  # alice may not read secret/*: exists or not, the same words
        with pytest.raises(PermissionDenied, match=f"^alice may not push to {name}; "):
            creating.check("alice", name, "git-ssh", W)
    with pytest.raises(PermissionDenied, match="^carol may not push to team/app; "):
        creating.check("carol", "team/app", "git-ssh", W)
    assert not creating.allows("carol", "team/typo", "git-ssh", W)


def test_a_read_list_on_name_git_answers_name_alike_whether_or_not_it_exists(tmp_path: Path) -> None:
    """A read list on ``plans.git`` (and on ``ghost.git``, which is not there): a request for
    ``plans`` was refused ("may not read") and one for ``ghost`` answered "not found" (the name
    ``ghost`` matched no rule), so that comparing the two told carol which private repositories
    exist; both are now refused alike, reads and pushes, over every transport."""
    path = tmp_path / "hgwire.toml"
    path.write_text(EXAMPLE + '[[repo]]\npattern = "plans.git"\nread = ["root"]\n'
                    '[[repo]]\npattern = "ghost.git"\nread = ["root"]\n')
    there = {"plans.git": Kind.GIT, "notes": Kind.HG}

    def locate(name: str) -> tuple[str, Kind] | None:
        for stored in (name, name + ".git", name.removesuffix(".git")):
            if stored in there:
                return stored, there[stored]
        return None

    for create_on_push in (False, True):
        authorizer = Authorizer(policy=PolicyFile(path), locate=locate, create_on_push=create_on_push)
        for name in ("plans", "ghost"):
            with pytest.raises(PermissionDenied, match=f"^carol may not read {name}; "):
                authorizer.check("carol", name, "git-http", R)
            with pytest.raises(PermissionDenied, match=f"^carol may not push to {name}; "):
                authorizer.check("carol", name, "git-ssh", W)
        authorizer.check("root", "ghost", "git-ssh", R)
    authorizer.check("carol", "notes", "hg-ssh", R)  # a Mercurial repository is not reached as notes.git
    with pytest.raises(RepositoryNotFound):
        authorizer.check("carol", "typo", "git-ssh", W)


def test_read_only_flag_wins_over_the_file(tmp_path: Path) -> None:
    authorizer = _authorizer(tmp_path, read_only=True)
    with pytest.raises(ReadOnly):
        authorizer.check("root", "team/app", "git-ssh", W)
    authorizer.check("root", "team/app", "git-ssh", R)


def test_git_daemon_pushes_anonymously_only_without_a_policy(tmp_path: Path) -> None:
    Authorizer().check(None, "r", "git-daemon", W)
    with pytest.raises(PermissionDenied, match="push over SSH or HTTP"):
        _authorizer(tmp_path).check(None, "r", "git-daemon", W)
    with pytest.raises(PermissionDenied):
        Authorizer().check(None, "r", "git-ssh", W)


def test_protections_add_up_over_matching_rules(tmp_path: Path) -> None:
    authorizer = _authorizer(tmp_path)
    team = authorizer.protections("team/app")
    assert team is not None
    assert [p.pattern for p in team.refs] == ["refs/heads/main", "refs/tags/*", "refs/heads/release/*"]
    assert [p.pattern for p in team.bookmarks] == ["stable"]
    assert first_match(team.refs, "refs/tags/v1/rc") == Protection("refs/tags/*")
    assert first_match(team.refs, "refs/heads/release/2") == Protection("refs/heads/release/*", True)
    assert first_match(team.refs, "refs/heads/topic") is None
    other = authorizer.protections("other")
    assert other is not None and [p.pattern for p in other.refs] == ["refs/heads/main"]
    assert Authorizer().protections("team/app") is None


def test_limits_are_parsed() -> None:
    policy = parse_policy(EXAMPLE, "x.toml")
    assert policy.limits == Limits(max_request_body=1000, idle_timeout=30.0)


def test_clone_cache_is_off_unless_the_file_gives_it_bytes(tmp_path: Path) -> None:
    assert parse_policy("", "x.toml").clone_cache == KeepBounds(0, 300.0)
    assert parse_policy("[clone_cache]\nmax_bytes = 1000\nmax_age = 60\n", "x.toml").clone_cache == KeepBounds(
        1000, 60.0)
    assert not clone_cache(Authorizer()).on
    path = tmp_path / "policy.toml"
    path.write_text("[clone_cache]\nmax_bytes = 1000\n")
    bounds = clone_cache(Authorizer(policy=PolicyFile(str(path))))
    assert (bounds.on, bounds.max_bytes, bounds.max_age) == (True, 1000, 300.0)
    path.write_text("[clone_cache]\nmax_age = 10\n")
    assert not clone_cache(Authorizer(policy=PolicyFile(str(path)))).on


def test_repacking_after_pushes_is_on_unless_the_file_turns_it_off(tmp_path: Path) -> None:
    assert parse_policy("", "x.toml").maintenance == Maintenance(50)
    assert parse_policy("[maintenance]\nauto_pack_limit = 0\n", "x.toml").maintenance == Maintenance(0)
    assert parse_policy("", "x.toml").maintenance.bitmap_min_objects == 10_000
    assert parse_policy("[maintenance]\nbitmap_min_objects = 0\n", "x.toml").maintenance == Maintenance(50, 0)
    assert maintenance(Authorizer()) == Maintenance(50)
    path = tmp_path / "policy.toml"
    path.write_text("[maintenance]\nauto_pack_limit = 8\n")
    assert maintenance(Authorizer(policy=PolicyFile(str(path)))) == Maintenance(8)


def test_every_git_repository_is_exported_unless_the_file_says_otherwise(tmp_path: Path) -> None:
    assert parse_policy("", "x.toml").git == GitSettings(export_all=True)
    assert parse_policy("[git]\nexport_all = false\n", "x.toml").git == GitSettings(export_all=False)
    assert parse_policy('[git]\narchives = ["zip", "bz2"]\n', "x.toml").git.archives == {"zip", "bz2"}
    assert export_all(Authorizer())
    path = tmp_path / "policy.toml"
    path.write_text("[git]\nexport_all = false\n")
    assert not export_all(Authorizer(policy=PolicyFile(str(path))))


def test_only_a_marked_git_repository_is_exported_over_git_and_http(tmp_path: Path) -> None:
    from backends.filesystem import FilesystemBackend
    from backends.interfaces import Kind
    from backends.memory import MemoryBackend

    path = tmp_path / "policy.toml"
    path.write_text("[git]\nexport_all = false\n")
    strict, lenient = Authorizer(policy=PolicyFile(str(path))), Authorizer()
    disk = FilesystemBackend(str(tmp_path / "root"))
    repo, hg, memory = (disk.create("a.git", Kind.GIT), disk.create("h", Kind.HG),
                        MemoryBackend("").create("m.git", Kind.GIT))
    for transport in ("git-daemon", "git-http"):
        for unmarked in (repo, memory):
            check_exported(lenient, transport, "x", unmarked)
            with pytest.raises(RepositoryNotFound, match="^repository x not found$"):
                check_exported(strict, transport, "x", unmarked)
        check_exported(strict, transport, "h", hg)  # git's file says nothing of Mercurial
    for transport in ("git-ssh", "hg-ssh", "hg-http"):
        check_exported(strict, transport, "a.git", repo)
    (tmp_path / "root" / "a.git" / "git-daemon-export-ok").touch()
    check_exported(strict, "git-daemon", "a.git", disk.open("a.git"))
    check_exported(strict, "git-http", "a", disk.open("a"))


def test_trusted_proxies_are_networks_and_none_without_the_key() -> None:
    assert not parse_policy("", "x.toml").trusted_proxies
    trusted = parse_policy('[http]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]\n', "x.toml").trusted_proxies
    assert "127.0.0.1" in trusted and "10.200.0.1" in trusted and "::1" in trusted
    assert "127.0.0.2" not in trusted and "11.0.0.1" not in trusted
    assert trusted.header == "x-forwarded-for"
    rfc = parse_policy('[http]\ntrusted_proxies = ["::1"]\nforwarded_header = "Forwarded"\n', "x.toml").trusted_proxies
    assert rfc.header == "forwarded" and rfc.client_header == rfc.proto_header == b"forwarded"


def test_the_operators_hgrc_is_an_absolute_path_and_none_without_the_key() -> None:
    assert parse_policy("", "x.toml").hg_hgrc is None
    assert parse_policy('[hg]\nhgrc = "/etc/hgwire/hgrc"\n', "x.toml").hg_hgrc == "/etc/hgwire/hgrc"


def test_the_operators_git_config_is_an_absolute_path_and_none_without_the_key() -> None:
    assert parse_policy("", "x.toml").git.config is None
    assert parse_policy('[git]\nconfig = "/etc/gitconfig"\n', "x.toml").git.config == "/etc/gitconfig"
    with pytest.raises(PolicyError, match="git.config: 'gitconfig' is not an absolute path"):
        parse_policy('[git]\nconfig = "gitconfig"\n', "x.toml")
    with pytest.raises(PolicyError, match="git.config: must be a non-empty string"):
        parse_policy('[git]\nconfig = 1\n', "x.toml")


BROKEN = [
    ("anonymous_read = 1\n", "x.toml: anonymous_read: must be true or false"),
    ("colour = 1\n", "x.toml: colour: unknown key"),
    ("[[repo]]\nread = []\n", "x.toml: repo[0].pattern: is missing"),
    ('[[repo]]\npattern = "*"\nwrite = ["@ghosts"]\n', "repo[0].write[0]: group 'ghosts' is not defined"),
    ('[[repo]]\npattern = "*"\nwrite = ["anonymous"]\n', "anonymous users can only be granted read"),
    ('[[repo]]\npattern = "*"\nwrite = "alice"\n', "repo[0].write: must be a list of strings"),
    ('[[repo]]\npattern = "*"\nreed = []\n', "repo[0].reed: unknown key"),
    ('protected_refs = ["main"]\n', "protected_refs[0]: 'main' is not a full ref name"),
    ('protected_refs = [{ pattern = "refs/x", force = true }]\n', "protected_refs[0].force: unknown key"),
    ("[limits]\nmax_refs = -1\n", "limits.max_refs: must be a positive integer"),
    ("[limits]\nrequests_per_minute = 0.5\n", "limits.requests_per_minute: must be a positive integer"),
    # TOML's nan passed "positive": every connection then failed with a traceback (its timer's delay)
    ("[limits]\nidle_timeout = nan\n", "limits.idle_timeout: must be a positive number"),
    ("[clone_cache]\nmax_age = nan\n", "clone_cache.max_age: must be a positive number of seconds"),
    ("[limits]\nmax_bananas = 1\n", "limits.max_bananas: unknown key"),
    ("[clone_cache]\nmax_bytes = -1\n", "clone_cache.max_bytes: must be an integer of bytes, 0 or more"),
    ("[maintenance]\nauto_pack_limit = 1\n", "maintenance.auto_pack_limit: must be an integer of packs, 2 or more"),
    ("[maintenance]\nauto_pack_limit = true\n", "maintenance.auto_pack_limit: must be an integer"),
    ("[maintenance]\nbitmap_min_objects = -1\n", "maintenance.bitmap_min_objects: must be a number of objects"),
    ("[maintenance]\nbitmap_min_objects = \"lots\"\n", "maintenance.bitmap_min_objects: must be a number"),
    ("[maintenance]\ngc = 1\n", "maintenance.gc: unknown key"),
    ('[git]\nexport_all = "no"\n', "git.export_all: must be true or false"),
    ("[git]\nexport_ok = true\n", "git.export_ok: unknown key (did you mean export_all?); the keys allowed here are archives, config, export_all"),
    ("git = true\n", "git: must be a table: write the settings under [git]"),
    ('[git]\narchives = ["tgz"]\n', "git.archives[0]: 'tgz' is not an archive type; write zip, gz or bz2"),
    ('[git]\narchives = "zip"\n', "git.archives: must be a list of strings"),
    ("[clone_cache]\nmax_bytes = 1.5\n", "clone_cache.max_bytes: must be an integer of bytes"),
    ("[clone_cache]\nmax_age = 0\n", "clone_cache.max_age: must be a positive number of seconds"),
    ("[clone_cache]\nsize = 1\n", "clone_cache.size: unknown key"),
    ("clone_cache = 1\n", "write the settings under [clone_cache]"),
    ('[http]\ntrusted_proxies = ["nginx"]\n', "http.trusted_proxies[0]: 'nginx' is not an IP address or network"),
    ('[http]\ntrusted_proxies = ["10.0.0.0/33"]\n', "http.trusted_proxies[0]"),
    ('[http]\ntrusted_proxies = ["10.0.0.5/8"]\n',  # a slip that would trust all of 10/8
     "http.trusted_proxies[0]: '10.0.0.5/8' has bits set past its length: write 10.0.0.0/8 if all of it is meant"),
    ('[hg_http]\nuncompressed_networks = ["192.168.1.7/16"]\n',
     "hg_http.uncompressed_networks[0]: '192.168.1.7/16' has bits set past its length: write 192.168.0.0/16"),
    ('[http]\ntrusted_proxies = "127.0.0.1"\n', "http.trusted_proxies: must be a list of strings"),
    ("[http]\ntrust = []\n", "http.trust: unknown key"),
    ('[http]\nforwarded_header = "x-real-ip"\n', 'http.forwarded_header: must be "x-forwarded-for"'),
    ('[hg]\nhgrc = "etc/hgrc"\n', "hg.hgrc: 'etc/hgrc' is not an absolute path"),
    ("[hg]\nhgrc = 1\n", "hg.hgrc: must be a non-empty string"),
    ('[hg]\nrc = "/etc/hgrc"\n', "hg.rc: unknown key"),
    ('hg = "/etc/hgrc"\n', "write the settings under [hg]"),
    ('[groups]\nadmins = ["@dev"]\n', "groups cannot contain groups"),
    ("[[repo]\n", "x.toml: not valid TOML"),
    ("repo = 3\n", "write each rule under [[repo]]"),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_broken_files_name_the_key_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "x.toml")
    assert message in str(caught.value)


def test_syntax_errors_give_the_line() -> None:
    with pytest.raises(PolicyError, match=r"line 3"):
        parse_policy('anonymous_read = true\n[groups]\ndev = = 1\n', "x.toml")


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "nope.toml")


def _touch_later(path: Path) -> None:
    """Move the mtime forward so a rewrite within one clock tick is still seen as a change."""
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def test_reload_on_change_and_broken_file_keeps_the_last_good_rules(tmp_path: Path) -> None:
    authorizer = _authorizer(tmp_path)
    policy = authorizer.policy
    assert policy is not None
    assert not policy.refresh()  # unchanged
    assert not authorizer.allows("carol", "team/app", "hg-ssh", W)

    policy.path.write_text(EXAMPLE.replace('write = ["@dev"]', 'write = ["@dev", "carol"]'))
    _touch_later(policy.path)
    assert policy.refresh()
    assert authorizer.allows("carol", "team/app", "hg-ssh", W)

    policy.path.write_text("[[repo]]\npattern = 3\n")
    _touch_later(policy.path)
    assert not policy.refresh()  # logged, ignored
    assert authorizer.allows("carol", "team/app", "hg-ssh", W)
    assert not policy.refresh(force=True)  # SIGHUP on a still-broken file: same

    policy.path.unlink()
    assert not policy.refresh()
    assert authorizer.allows("carol", "team/app", "hg-ssh", W)


def test_one_authorizer_per_service(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(EXAMPLE)
    config = ServiceConfig(backend=None, root=str(tmp_path), config_file=str(path))  # type: ignore[arg-type]
    assert authorizer_for(config) is authorizer_for(config)
    assert authorizer_for(config).policy is not None
    plain = ServiceConfig(backend=None, root=str(tmp_path), read_only=True)  # type: ignore[arg-type]
    assert authorizer_for(plain).policy is None and authorizer_for(plain).read_only


def test_the_readme_example_file_parses() -> None:
    import re

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.DOTALL)
    assert example, "the README lost its --config example"
    policy = parse_policy(example.group(1), "README.md")
    assert policy.clone_cache == KeepBounds(1 << 30, 300.0)
    assert policy.limits.max_connections_per_address == 32


def _operator_rules(repositories: int = 2000) -> str:
    """An operator's file: a glob per team, a read list on each team's private folder, a grant per repository."""
    lines = ['[[repo]]\npattern = "*"\nwrite = ["root"]\n']
    for team in range(50):
        lines.append(f'[[repo]]\npattern = "team{team:02d}/g*"\nread = ["anonymous", "*"]\nwrite = ["u{team}"]\n')
        lines.append(f'[[repo]]\npattern = "team{team:02d}/private/*"\nread = ["u{team}"]\n')
    lines += [f'[[repo]]\npattern = "team{n % 50:02d}/g{n:04d}.git"\nwrite = ["w{n}"]\n' for n in range(repositories)]
    return "\n".join(lines)


def test_an_access_check_tries_only_the_rules_that_can_match_its_name(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Each check matched every [[repo]] pattern: with 2,000 rules 3.5 ms of the event loop per read,
    # several times a request, and 25 s for an index page or SSH greeting over 10,000 repositories.
    path = tmp_path / "hgwire.toml"
    path.write_text(_operator_rules())

    def locate(name: str) -> tuple[str, Kind] | None:  # the git repositories exist, nothing else
        stored = name.strip("/").removesuffix(".git") + ".git"
        return (stored, Kind.GIT) if "/g" in name else None

    authorizer = Authorizer(policy=PolicyFile(path), locate=locate)
    tried: list[str] = []
    matches = RepoRule.matches

    def counted(rule: RepoRule, repo: str) -> bool:
        tried.append(rule.pattern)
        return matches(rule, repo)

    monkeypatch.setattr(RepoRule, "matches", counted)
    assert authorizer.allows(None, "team07/g0007.git", "git-http", R)
    assert authorizer.allows("w7", "team07/g0007.git", "git-ssh", W)
    assert not authorizer.allows("w8", "team07/g0007.git", "git-ssh", W)
    assert authorizer.allows("u7", "team07/private/plans", "hg-ssh", R)
    assert not authorizer.allows("u8", "team07/private/plans", "hg-ssh", R)
    assert not authorizer.allows("u8", "team07/private", "hg-ssh", R)  # the directory a read list hides
    assert authorizer.allows("u7", "team07/private", "hg-ssh", R)
    assert authorizer.protections("team07/g0007.git") is not None
    assert len(tried) < 100, f"{len(tried)} patterns tried for 8 questions"


PATTERNS = ["*", "a*", "a/*", "a/b", "a/b.git", "a/?", "a/[bc]*", "a/[!b]", "*.git", "*/b", "a/b/*", "b*",
            "a[", "a/b.git/*", "a/**/c"]
NAMES = ["a", "a/b", "a/b.git", "a/c", "a/b/c", "b", "b.git", "a/bx", "/a/b/", "a[", "c/b", "a/b/x/c", "a/b.git/x"]


def test_the_rules_an_index_finds_are_the_rules_that_match(monkeypatch: pytest.MonkeyPatch) -> None:
    body = "\n".join(f'[[repo]]\npattern = "{p}"\nread = ["r{i}"]\nwrite = ["w{i}"]\n' for i, p in enumerate(PATTERNS))
    policy = parse_policy(body, "test")
    for name in NAMES:
        for names in ((name,), (name, name.strip("/").removesuffix(".git") + ".git")):
            assert policy.matching(names) == [r for r in policy.rules if any(r.matches(n) for n in names)], names
    for prefix in ("a/", "a/b/", "a/b.git/", "b/", "c/"):
        assert policy.read_rules_below(prefix) == [
            r for r in policy.rules if r.read is not None
            and (r.pattern.startswith(prefix) or fnmatch.fnmatchcase(prefix + "\x00", r.pattern))], prefix
