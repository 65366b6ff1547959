"""The SSH exec command parser: what git and hg send is accepted, nothing else is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import HgwireError, LimitExceeded, ProtocolError, UnsupportedFeature
from protocols.ssh_exec import (
    MAX_COMMAND_BYTES,
    ExecRequest,
    RouteKind,
    UnsafeExecPath,
    check_env,
    from_home,
    parse_exec,
    sender,
    split_words,
)

ACCEPTED: list[tuple[bytes, ExecRequest]] = [
    # git over ssh://host/r.git and scp-style host:r.git (git 2.39, OpenSSH variant)
    (b"git-upload-pack '/r.git'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/r.git")),
    (b"git-upload-pack 'r.git'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "r.git")),
    (b"git-receive-pack '/team/app.git'", ExecRequest(RouteKind.GIT_RECEIVE_PACK, "/team/app.git")),
    (b"git-upload-archive '/r.git'", ExecRequest(RouteKind.GIT_UPLOAD_ARCHIVE, "/r.git")),
    (b"git upload-pack '/r.git'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/r.git")),
    (b"git receive-pack '/r.git'", ExecRequest(RouteKind.GIT_RECEIVE_PACK, "/r.git")),
    (b"git upload-archive '/r.git'", ExecRequest(RouteKind.GIT_UPLOAD_ARCHIVE, "/r.git")),
    # git's sq_quote: ' becomes '\'' and ! becomes '\!'
    (b"git-upload-pack '/it'\\''s.git'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/it's.git")),
    (b"git-upload-pack '/wow'\\!'.git'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/wow!.git")),
    (b"git-upload-pack '/with space.git'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/with space.git")),
    ("git-upload-pack '/caf\u00e9.git'".encode(), ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/caf\u00e9.git")),
    # the unquoted form
    (b"git-upload-pack /r.git", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/r.git")),
    # beyond ASCII unquoted, as git-lfs 3.3 sends a path (sh reads no such character as syntax)
    ("git-lfs-authenticate /d\u00e9p\u00f4t.git upload".encode(),
     ExecRequest(RouteKind.GIT_LFS_AUTH_UPLOAD, "/d\u00e9p\u00f4t.git")),
    ("git-lfs-transfer /cafe\u0301/\u65e5\u672c.git download".encode(),
     ExecRequest(RouteKind.GIT_LFS_TRANSFER_DOWNLOAD, "/cafe\u0301/\u65e5\u672c.git")),
    (b"git-upload-pack  /r.git ", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/r.git")),
    # hg sshpeer: _serverquote leaves [A-Za-z0-9@%_+=:,./-] bare, quotes the rest
    (b"hg -R repo serve --stdio", ExecRequest(RouteKind.HG_SERVE, "repo")),
    (b"hg -R team/repo serve --stdio", ExecRequest(RouteKind.HG_SERVE, "team/repo")),
    (b"hg -R 'my repo' serve --stdio", ExecRequest(RouteKind.HG_SERVE, "my repo")),
    (b"hg -R 'it'\\''s' serve --stdio", ExecRequest(RouteKind.HG_SERVE, "it's")),
    (b"hg -R repo serve --stdio --hidden", ExecRequest(RouteKind.HG_SERVE, "repo", hidden=True)),
    (b"hg --repository repo serve --stdio", ExecRequest(RouteKind.HG_SERVE, "repo")),
    (b"hg init new/repo", ExecRequest(RouteKind.HG_INIT, "new/repo")),
    # a path to the program (hg --remotecmd /usr/bin/hg, git --upload-pack): its name counts
    (b"/usr/bin/git-upload-pack '/r.git'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "/r.git")),
    (b"/opt/hg/bin/hg -R repo serve --stdio", ExecRequest(RouteKind.HG_SERVE, "repo")),
    (b"bin/git receive-pack '/r.git'", ExecRequest(RouteKind.GIT_RECEIVE_PACK, "/r.git")),
    # a word's leading ~ unquoted, as git-lfs sends host:~/app.git: a home directory to sh (from_home)
    (b"git-lfs-transfer ~/app.git upload", ExecRequest(RouteKind.GIT_LFS_TRANSFER_UPLOAD, "~/app.git")),
    (b"git-lfs-authenticate ~alice/app.git download", ExecRequest(RouteKind.GIT_LFS_AUTH_DOWNLOAD, "~alice/app.git")),
    (b"git-upload-pack ~", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "~")),
    (b"git-lfs-transfer /~/app.git download", ExecRequest(RouteKind.GIT_LFS_TRANSFER_DOWNLOAD, "/~/app.git")),
    # validated later by backends.names, not here
    (b"git-upload-pack '../x'", ExecRequest(RouteKind.GIT_UPLOAD_PACK, "../x")),
]

REFUSED: list[tuple[bytes, type[HgwireError]]] = [
    (b"", UnsupportedFeature),
    (b"   ", UnsupportedFeature),
    (b"ls", UnsupportedFeature),
    (b"sh -c 'git-upload-pack /r.git'", UnsupportedFeature),
    (b"bash", UnsupportedFeature),
    (b"/usr/bin/sh -c 'git-upload-pack /r.git'", UnsupportedFeature),
    (b"/usr/bin/git status", UnsupportedFeature),
    (b"git-upload-pack", UnsupportedFeature),
    (b"git-upload-pack '/a' '/b'", UnsupportedFeature),
    (b"git-upload-pack --strict '/r.git'", UnsupportedFeature),
    (b"git status", UnsupportedFeature),
    (b"git -c core.sshCommand=x upload-pack '/r.git'", UnsupportedFeature),
    (b"hg serve --stdio", UnsupportedFeature),
    (b"hg -R repo serve --stdio --debugger", UnsupportedFeature),
    (b"hg -R repo serve", UnsupportedFeature),
    (b"hg -Rrepo serve --stdio", UnsupportedFeature),
    (b"hg --repository=repo serve --stdio", UnsupportedFeature),
    (b"hg serve --stdio -R repo", UnsupportedFeature),
    (b"hg -R repo --config=ui.debugger=1 serve --stdio", UnsupportedFeature),
    # option-like paths (CVE-2017-9462, CVE-2017-1000117)
    (b"git-upload-pack '--help'", UnsafeExecPath),
    (b"git-upload-pack --help", UnsafeExecPath),
    (b"git-receive-pack '-oProxyCommand=x'", UnsafeExecPath),
    (b"hg -R --debugger serve --stdio", UnsafeExecPath),
    (b"hg -R --config=ui.debugger=1 serve --stdio", UnsafeExecPath),
    (b"hg -R -q serve --stdio", UnsafeExecPath),
    (b"hg init --config=x", UnsafeExecPath),
    (b"git-upload-pack ''", UnsafeExecPath),
    # shell syntax we never interpret
    (b"git-upload-pack '/r.git'; ls", ProtocolError),
    (b"git-upload-pack /r.git && ls", ProtocolError),
    (b"git-upload-pack $(id)", ProtocolError),
    (b"git-upload-pack `id`", ProtocolError),
    (b'git-upload-pack "/r.git"', ProtocolError),
    (b"git-upload-pack /r.git > /tmp/x", ProtocolError),
    (b"git-upload-pack r~/x.git", ProtocolError),  # a ~ within a word: refused as before
    (b"git-upload-pack //~/x.git", ProtocolError),
    (b"git-upload-pack ''/~/x.git", ProtocolError),
    (b"git-upload-pack '/'~/x.git", ProtocolError),
    (b"git-upload-pack '/r.git", ProtocolError),
    (b"git-upload-pack /r.git\\", ProtocolError),
    (b"git-upload-pack '/r.git'|ls", ProtocolError),
    # bytes that are never allowed
    (b"git-upload-pack '/r\x00.git'", ProtocolError),
    (b"git-upload-pack '/r.git'\nls", ProtocolError),
    (b"git-upload-pack\t'/r.git'", ProtocolError),
    (b"git-upload-pack '/r\x1b[31m.git'", ProtocolError),
    (b"git-upload-pack '/r\xff.git'", ProtocolError),
    ("git-upload-pack /r\u0085.git".encode(), ProtocolError),  # a C1 control (NEL) unquoted: still refused
    # bounds (CVE-2022-39260)
    (b"git-upload-pack '/" + b"a" * MAX_COMMAND_BYTES + b"'", LimitExceeded),
    (b"a " * 20, LimitExceeded),
]


@pytest.mark.parametrize(("command", "expected"), ACCEPTED, ids=[repr(c) for c, _ in ACCEPTED])
def test_accepted(command: bytes, expected: ExecRequest) -> None:
    assert parse_exec(command) == expected


@pytest.mark.parametrize(("command", "error"), REFUSED, ids=[repr(c)[:60] for c, _ in REFUSED])
def test_refused(command: bytes, error: type[HgwireError]) -> None:
    with pytest.raises(error) as raised:
        parse_exec(command)
    assert type(raised.value) is error
    assert "\n" not in str(raised.value)


def test_unknown_command_message_names_the_command() -> None:
    with pytest.raises(UnsupportedFeature, match="unknown command 'ls'"):
        parse_exec(b"ls -la")


def test_wrong_arguments_message_shows_usage() -> None:
    with pytest.raises(UnsupportedFeature, match=r"usage: git-upload-pack PATH"):
        parse_exec(b"git-upload-pack")


def test_split_words_concatenates_adjacent_pieces() -> None:
    assert split_words("a'b c'\\'d  e") == ["ab c'd", "e"]


def test_refusal_message_is_bounded() -> None:
    with pytest.raises(UnsupportedFeature) as raised:
        parse_exec(b"x" * 1000)
    assert len(str(raised.value)) < 200


def _sq_quote(path: str) -> str:
    """Quote as git's sq_quote does: the documented behaviour, written from scratch."""
    return "'" + path.replace("'", "'\\''").replace("!", "'\\!'") + "'"


@given(st.text(min_size=1, max_size=200).filter(lambda s: not s.startswith("-")))
def test_git_quoting_round_trips(path: str) -> None:
    command = f"git-upload-pack {_sq_quote(path)}".encode()
    try:
        request = parse_exec(command)
    except (ProtocolError, LimitExceeded):
        assert any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in path) or len(command) > 4096
        return
    assert request == ExecRequest(RouteKind.GIT_UPLOAD_PACK, path)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_a_request_or_a_typed_refusal(command: bytes) -> None:
    try:
        result = parse_exec(command)
    except HgwireError as refusal:
        assert str(refusal)
        return
    assert isinstance(result, ExecRequest)
    assert not result.path.startswith("-")
    assert "\0" not in result.path


@given(st.lists(st.sampled_from(["git-upload-pack", "hg", "-R", "serve", "--stdio", "'x'", "'", "\\", " ", "init"])))
def test_word_soup_gives_a_request_or_a_typed_refusal(pieces: list[str]) -> None:
    try:
        parse_exec(" ".join(pieces).encode())
    except HgwireError:
        pass


@pytest.mark.parametrize(("path", "name"), [
    ("~/app.git", "app.git"), ("~//team/app", "team/app"), ("./app.git", "app.git"), ("~/./././app", "app"),
    ("~", ""), ("~/", ""), ("app.git", "app.git"), ("team/./app", "team/./app"),  # (the name check refuses that)
    ("~alice/app.git", "~alice/app.git"), ("~/~alice/app", "~alice/app"), ("~/../x", "../x"), ("~/-x", "-x"),
    (".hidden", ".hidden"), ("~x", "~x"),
])
def test_a_path_from_the_home_is_the_root_s(path: str, name: str) -> None:
    assert from_home(path) == name


@pytest.mark.parametrize(("command", "route"), [
    (b"git-upload-pack '/" + b"a" * 5000 + b"'", RouteKind.GIT_UPLOAD_PACK),
    (b"  /usr/lib/git-core/git-receive-pack 'x'; ls", RouteKind.GIT_RECEIVE_PACK),
    (b"git upload-pack", RouteKind.GIT_UPLOAD_PACK),
    (b"hg -R x serve", RouteKind.HG_SERVE), (b"chg init", RouteKind.HG_SERVE),
    (b"git-lfs-transfer", RouteKind.GIT_LFS_TRANSFER_DOWNLOAD),
    (b"ls -l", None), (b"", None), (b"\xff\xfe hg", None), (b"a" * 300 + b"hg", None),
])
def test_the_sender_of_a_refused_command_is_told_by_its_first_word(command: bytes, route: RouteKind | None) -> None:
    assert sender(command) is route


def test_env_accepts_git_protocol_only() -> None:
    assert check_env(b"GIT_PROTOCOL", b"version=2") == ("GIT_PROTOCOL", b"version=2")
    with pytest.raises(UnsupportedFeature):
        check_env(b"LD_PRELOAD", b"/tmp/x.so")
    with pytest.raises(UnsupportedFeature):
        check_env(b"GIT_DIR", b"/")
    with pytest.raises(LimitExceeded):
        check_env(b"GIT_PROTOCOL", b"version=2:" * 100)
    with pytest.raises(ProtocolError):
        check_env(b"GIT_PROTOCOL", b"version=2\n")
