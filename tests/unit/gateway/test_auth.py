"""Authorizer decisions, authorized_keys parsing and htpasswd checking."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest
from twisted.logger import formatEvent, globalLogPublisher

from gateway.auth import (
    NOT_FROM_A_PERMITTED_HOST,
    PLAIN_NAMES,
    UNKNOWN_KEY,
    Access,
    AuthorizedKeys,
    Authorizer,
    Htpasswd,
    KeyLineError,
    ParsedKeys,
    Refused,
    cidr_list_allows,
    from_allows,
    parse_authorized_keys,
    parse_key_line,
    plain_user,
)
from protocols.errors import PermissionDenied, ReadOnly

BLOB = base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAIBSbHUBgnK7HLJr6S9R7yqdNbgSdKYh5VxZZqHqZz8wT")
B64 = base64.b64encode(BLOB).decode()


# --- Authorizer -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("read_only", "user", "access", "expected"),
    [
        (False, None, Access.READ, None),
        (False, "alice", Access.READ, None),
        (False, None, Access.WRITE, PermissionDenied),
        (False, None, Access.CREATE, PermissionDenied),
        (False, "alice", Access.WRITE, None),
        (False, "alice", Access.CREATE, None),
        (True, None, Access.READ, None),
        (True, "alice", Access.READ, None),
        (True, "alice", Access.WRITE, ReadOnly),
        (True, None, Access.WRITE, ReadOnly),
        (True, "alice", Access.CREATE, ReadOnly),
    ],
)
def test_authorizer(read_only: bool, user: str | None, access: Access, expected: type[Exception] | None) -> None:
    authorizer = Authorizer(read_only=read_only)
    if expected is None:
        authorizer.check(user, "team/app", "git-ssh", access)
        assert authorizer.allows(user, "team/app", "git-ssh", access)
    else:
        with pytest.raises(expected) as raised:
            authorizer.check(user, "team/app", "git-ssh", access)
        assert type(raised.value) is expected
        assert not authorizer.allows(user, "team/app", "git-ssh", access)


def test_anonymous_read_can_be_switched_off() -> None:
    authorizer = Authorizer(anonymous_read=False)
    with pytest.raises(PermissionDenied, match="needs an authenticated user"):
        authorizer.check(None, "r", "git-http", Access.READ)
    authorizer.check("bob", "r", "git-http", Access.READ)


def test_extra_rules_are_rows() -> None:
    def only_alice_writes(_: Authorizer, request: object) -> None:
        from gateway.auth import AccessRequest

        assert isinstance(request, AccessRequest)
        if request.access is Access.WRITE and request.user != "alice":
            raise PermissionDenied(f"{request.user} may not push to {request.repo}")

    authorizer = Authorizer(rules=(*Authorizer().rules, only_alice_writes))
    authorizer.check("alice", "r", "git-ssh", Access.WRITE)
    with pytest.raises(PermissionDenied, match="bob may not push"):
        authorizer.check("bob", "r", "git-ssh", Access.WRITE)


# --- authorized_keys --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "user"),
    [
        (f"ssh-ed25519 {B64} alice", "alice"),
        (f"ssh-ed25519 {B64} alice@laptop more words", "alice@laptop"),
        (f'user="bob" ssh-ed25519 {B64} alice@laptop', "bob"),
        (f'restrict,user="bob" ssh-ed25519 {B64}', "bob"),
        (f"no-pty,no-port-forwarding ssh-ed25519 {B64} carol", "carol"),
        (f"   ssh-ed25519 {B64} dave  ", "dave"),
        # what gitolite writes: its forced command names the user, the comment is the key file's
        ((f'command="/home/git/bin/gitolite-shell erin",no-port-forwarding,no-X11-forwarding,'
          f'no-agent-forwarding,no-pty ssh-ed25519 {B64} erin@laptop'), "erin"),
        (f'command="/usr/share/gitolite/gl-auth-command frank" ssh-ed25519 {B64}', "frank"),
        (f'command="gitolite-shell -s gina",user="gina" ssh-ed25519 {B64} x', "gina"),
    ],
)
def test_key_line_user(line: str, user: str) -> None:
    key = parse_key_line(line)
    assert key is not None
    assert (key.user, key.key_type, key.blob) == (user, "ssh-ed25519", BLOB)


@pytest.mark.parametrize("line", ["", "   ", "# a comment"])
def test_key_line_blank(line: str) -> None:
    assert parse_key_line(line) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"ssh-ed25519 {B64}", "no user"),
        (f'command="/bin/sh" ssh-ed25519 {B64} eve', "cannot honour"),
        (f'command="/opt/gitlab/bin/gitlab-shell key-42" ssh-ed25519 {B64} eve', "'/opt/gitlab/bin/gitlab-shell'"),
        (f'command="/usr/bin/gitolite-shell-not alice" ssh-ed25519 {B64} eve', "cannot honour"),
        (f'command="/usr/bin/gitolite-shell" ssh-ed25519 {B64} eve', "without exactly one user"),
        (f'command="/usr/bin/gitolite-shell a b" ssh-ed25519 {B64} eve', "without exactly one user"),
        (f'command="gitolite-shell -rf" ssh-ed25519 {B64} eve', "not a plain name"),
        (f'command="gitolite-shell alice",user="bob" ssh-ed25519 {B64}', "another user"),
        (f'command="gitolite-shell alice",cert-authority ssh-ed25519 {B64}', "cert-authority line with command="),
        (f'permitopen="x:1" ssh-ed25519 {B64} eve', "cannot be honoured"),
        (f'from="" ssh-ed25519 {B64} eve', "from= needs a list"),
        (f'from="10.0.0.1,,x" ssh-ed25519 {B64} eve', "from= needs a list"),
        (f'from="10.0.0.0/33" ssh-ed25519 {B64} eve', "not a valid address/length"),
        (f'from ssh-ed25519 {B64} eve', "from= needs a list"),
        (f"ssh-dss {B64} eve", "not supported"),
        (f"restrict xyz {B64} eve", "no supported key type"),
        ("ssh-ed25519 !!!notbase64 eve", "base64"),
        (f"ssh-ed25519 {B64} -rf", "not a plain name"),
        (f'user="a b" ssh-ed25519 {B64}', "not a plain name"),
        (f'user="unterminated ssh-ed25519 {B64} x', "malformed options"),
    ],
)
def test_key_line_refused(line: str, reason: str) -> None:
    with pytest.raises(KeyLineError, match=reason):
        parse_key_line(line)


def test_parse_authorized_keys_skips_bad_lines_and_duplicates() -> None:
    other = base64.b64encode(BLOB[:-1] + b"\x01").decode()
    text = "\n".join(
        [
            f"ssh-ed25519 {B64} alice",
            f'command="x" ssh-ed25519 {other} mallory',
            f"ssh-ed25519 {B64} bob",
            "garbage",
        ]
    )
    assert {blob: [k.user for k in keys] for blob, keys in parse_authorized_keys(text).keys.items()} == {BLOB: ["alice"]}


def _logged_while(parse: Callable[[], object]) -> list[str]:
    seen: list[dict[str, object]] = []
    globalLogPublisher.addObserver(seen.append)  # type: ignore[arg-type]
    try:
        parse()
    finally:
        globalLogPublisher.removeObserver(seen.append)  # type: ignore[arg-type]
    return [formatEvent(event) for event in seen]  # type: ignore[arg-type]


@pytest.mark.parametrize("ended", [True, False])
def test_a_private_key_pasted_in_is_one_line_without_its_content(tmp_path: Path, ended: bool) -> None:
    """A private key pasted into authorized_keys was logged line by line, each base64 line quoted
    (lowercased) as an option hgwire could not honour: secret material in the log.  Now one line
    names its lines and says what to do; the keys around it still count."""
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f", str(tmp_path / "k")],
                   check=True)
    private = (tmp_path / "k").read_text().splitlines()
    if not ended:  # a paste cut short: the key's lines end where base64 ends
        private = private[:-1]
    text = "\n".join([f"ssh-ed25519 {B64} alice", *private, (tmp_path / "k.pub").read_text().strip()]) + "\n"
    parsed: list[ParsedKeys] = []
    lines = _logged_while(lambda: parsed.append(parse_authorized_keys(text, "ak")))
    last = len(private) + 1
    assert lines == [(f"ak: lines 2–{last} look like a private key, not a public one: remove them (and treat "
                      "that key as exposed)")]
    secret = "".join(private[1:-1] if ended else private[1:])
    logged = "".join(lines).lower()
    assert not any(secret[i:i + 12].lower() in logged for i in range(0, len(secret) - 12, 6))
    assert sorted(keys[0].user for keys in parsed[0].keys.values()) == ["alice", "bob"]


def test_an_unknown_option_is_quoted_by_its_beginning_only() -> None:
    line = f"Hunter2-my-password-is-long-and-secret ssh-ed25519 {B64} eve"
    assert _logged_while(lambda: parse_authorized_keys(line, "ak")) == [
        "ak:1: key skipped: option 'Hunter2-my-password-'… cannot be honoured by hgwire"]


def test_a_key_whose_line_was_skipped_is_refused_with_that_lines_reason(tmp_path: Path) -> None:
    path = tmp_path / "authorized_keys"
    other = base64.b64encode(BLOB[:-1] + b"\x01").decode()
    path.write_text(f"ssh-ed25519 {other} bob\n"
                    f'command="/usr/bin/hg-ssh /srv/hg/a /srv/hg/b" ssh-ed25519 {B64} alice\n'
                    f"ssh-ed25519 {B64} -rf\n")
    refused = AuthorizedKeys(path).decide(BLOB, "192.0.2.7")
    assert refused == Refused("its authorized_keys line 2 was skipped: command= runs hg-ssh with the absolute "
                              "path '/srv/hg/a': name the repository as it is named under --root")
    assert AuthorizedKeys(path).decide(base64.b64decode(other)) == ("bob", None)
    path.write_text(f"ssh-ed25519 {other} bob\n")
    assert AuthorizedKeys(path).decide(BLOB) == Refused(UNKNOWN_KEY)
    path.write_text(f'from="10.0.0.0/8" ssh-ed25519 {B64} alice\nssh-ed25519 {B64} -rf\n')
    assert AuthorizedKeys(path).decide(BLOB, "192.0.2.7") == Refused(NOT_FROM_A_PERMITTED_HOST)


def test_authorized_keys_reloads_on_change(tmp_path: Path) -> None:
    path = tmp_path / "authorized_keys"
    keys = AuthorizedKeys(path)
    assert keys.user_for(BLOB) is None  # missing file: nobody
    path.write_text(f"ssh-ed25519 {B64} alice\n")
    assert keys.user_for(BLOB) == "alice"
    path.write_text(f"ssh-ed25519 {B64} bob   \n")
    os.utime(path, ns=(1, 10**18))
    assert keys.user_for(BLOB) == "bob"


@pytest.mark.parametrize(("patterns", "address", "allowed"), [
    ("10.1.2.3", "10.1.2.3", True),
    ("10.1.2.3", "10.1.2.4", False),
    ("10.1.2.*", "10.1.2.200", True),
    ("10.1.?.1", "10.1.22.1", False),
    ("10.0.0.0/8,192.0.2.1", "10.200.1.1", True),
    ("10.0.0.0/8,192.0.2.1", "192.0.2.1", True),
    ("10.0.0.0/8,!10.6.6.6", "10.6.6.6", False),
    ("!10.6.6.6,10.0.0.0/8", "10.6.6.6", False),
    ("!10.6.6.6", "10.1.1.1", False),       # only negations: nothing allows it
    ("*.example.com", "10.1.1.1", False),   # a host name never matches an address (UseDNS no)
    ("*", "2001:db8::1", True),
    ("2001:db8::/32", "2001:DB8::7", True),
    ("10.0.0.0/8", "::ffff:10.1.1.1", True),  # a dual-stack socket's IPv4 client
    ("10.1.2.[3]", "10.1.2.3", False),       # no [sets] in sshd's patterns
    ("10.0.0.0/8", "not-an-address", False),
])
def test_from_matches_the_client_address_as_sshd_does(patterns: str, address: str, allowed: bool) -> None:
    key = parse_key_line(f'from="{patterns}" ssh-ed25519 {B64} alice')
    assert key is not None and key.allows(address) is allowed
    assert not key.allows(None), "an unknown address is never allowed"


@pytest.mark.parametrize("patterns", ["127.1.2.3/8", "!10.0.0.1/8,127.0.0.1", "127.0.0.1,::1/0,fd00::1/8"])
def test_a_network_with_bits_set_past_its_length_allows_no_address(patterns: str) -> None:
    """sshd reads ``127.1.2.3/8`` as an inconsistent mask length and refuses the key whatever the
    rest of the list says: the line is skipped with the reason, and the list matches nothing."""
    with pytest.raises(KeyLineError, match="bits set past its length"):
        parse_key_line(f'from="{patterns}" ssh-ed25519 {B64} alice')
    assert not from_allows(patterns.split(","), "127.0.0.1")
    assert not from_allows(patterns.split(","), "10.0.0.1")


@pytest.mark.parametrize(("entries", "address", "allowed"), [
    ("10.0.0.0/8", "10.1.2.3", True),
    ("10.0.0.0/8,192.0.2.1", "192.0.2.1", True),
    ("192.0.2.1", "192.0.2.2", False),
    ("2001:db8::/32", "2001:db8::5", True),
    ("10.1.2.3/8", "10.1.2.3", False),            # bits set past the length: refused
    ("10.0.0.0/8,127.1.2.3/8", "10.1.2.3", False),  # any bad entry refuses, as sshd
    ("10.0.0.*", "10.0.0.1", False),              # no wildcard in a source-address
    ("!10.0.0.2,10.0.0.0/8", "10.0.0.1", False),  # nor negation
    ("10.0.0.0/8", None, False),
])
def test_a_certificate_s_source_address_is_a_list_of_networks(entries: str, address: str | None,
                                                              allowed: bool) -> None:
    assert cidr_list_allows(entries.split(","), address) is allowed


def test_expiry_time_refuses_the_key_from_then_on() -> None:
    key = parse_key_line(f'expiry-time="20270102Z" ssh-ed25519 {B64} alice')
    assert key is not None and key.expires == 1798848000.0  # 2027-01-02T00:00:00Z
    assert key.allows("10.0.0.1", now=1798847999.0) and not key.allows("10.0.0.1", now=1798848000.0)
    key = parse_key_line(f'expiry-time="202701020304Z",from="10.0.0.0/8" ssh-ed25519 {B64} alice')
    assert key is not None and key.expires == 1798848000.0 + 3 * 3600 + 4 * 60
    assert not key.allows("192.0.2.1", now=0.0) and key.allows("10.0.0.1", now=0.0)
    local = parse_key_line(f'expiry-time="20270102030405" ssh-ed25519 {B64} alice')
    assert local is not None and local.expires is not None  # the server's time zone
    expired = parse_key_line(f'expiry-time="20000101" ssh-ed25519 {B64} alice')
    assert expired is not None and not expired.allows("10.0.0.1")


@pytest.mark.parametrize("value", ["", "2027", "2027010", "20271301", "20270102Zz", "2027-01-02", "20270102030"])
def test_a_bad_expiry_time_skips_the_key(value: str) -> None:
    with pytest.raises(KeyLineError, match="expiry-time must be"):
        parse_key_line(f'expiry-time="{value}" ssh-ed25519 {B64} alice')


def test_a_key_on_several_lines_is_allowed_by_any_of_them(tmp_path: Path) -> None:
    path = tmp_path / "authorized_keys"
    path.write_text(f'from="10.0.0.0/8" ssh-ed25519 {B64} alice\nfrom="192.0.2.7" ssh-ed25519 {B64} alice\n')
    keys = AuthorizedKeys(path)
    assert keys.user_for(BLOB, "10.9.9.9") == keys.user_for(BLOB, "192.0.2.7") == "alice"
    assert keys.user_for(BLOB, "192.0.2.8") is None
    assert keys.user_for(BLOB) is None
    path.write_text(f"ssh-ed25519 {B64} alice\n")
    os.utime(path, ns=(1, 10**18))
    assert keys.user_for(BLOB, "203.0.113.1") == "alice"


# --- htpasswd ---------------------------------------------------------------------------------

def _bcrypt(password: str, prefix: bytes = b"$2b$") -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4))
    return (prefix + hashed[4:]).decode()


def test_htpasswd_bcrypt(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"# users\nalice:{_bcrypt('s3cret')}\nbob:{_bcrypt('pw', b'$2y$')}\n")
    users = Htpasswd(path)
    assert users.check("alice", "s3cret")
    assert users.check("alice", "s3cret")  # cached answer
    assert not users.check("alice", "wrong")
    assert users.check("bob", "pw")
    assert not users.check("carol", "pw")
    assert not users.check("alice", "x" * 2000)
    assert not users.check("alice", "s3cret" + "x" * 80)


def test_a_user_s_first_htpasswd_line_is_the_one_used_and_a_second_is_told(tmp_path: Path) -> None:
    """As Apache's and nginx's basic authentication read the file (hgwire took the last line, so a
    line appended to change a password "worked" here and not behind them, and nothing said so)."""
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{_bcrypt('old')}\nbob:{_bcrypt('pw')}\nalice:{_bcrypt('new')}\n")
    seen: list[str] = []

    def observe(event: dict[str, object]) -> None:
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        users = Htpasswd(path)
        assert users.check("alice", "old") and not users.check("alice", "new") and users.check("bob", "pw")
    finally:
        globalLogPublisher.removeObserver(observe)
    assert f"{path}:3: a second entry for alice is ignored: line 1 is the one used; remove one of them" in seen, seen


def test_an_htpasswd_user_name_beyond_ascii_logs_in(tmp_path: Path) -> None:
    """``bøb:$2b$…`` and ``josé`` (Apache and lighttpd take them; git and hg send them in UTF-8)
    log in: they were refused at start as not plain names.  ``josé`` written decomposed in the
    file and sent composed (or the other way) is the same user, named composed."""
    path = tmp_path / "htpasswd"
    path.write_text(f"bøb:{_bcrypt('pw')}\njose\u0301:{_bcrypt('pj')}\n", encoding="utf-8")
    users = Htpasswd(path)
    assert users.check("bøb", "pw")
    assert not users.check("bøb", "wrong")
    assert users.check("josé", "pj")
    assert users.skipped("bøb") is None


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("alice", "alice"), ("bøb", "bøb"), ("josé", "josé"), ("jose\u0301", "josé"), ("Алиса", "Алиса"),
        ("李雷", "李雷"), ("ana.maría@example.org", "ana.maría@example.org"), ("_ø", "_ø"),
        ("a b", None), ("bøb\x1b[2J", None), ("bø\u202eb", None), ("bø\u200bb", None), ("bø:b", None),
        ("@bøb", None), ("-bøb", None), ("\u0301e", None), ("bø*", None), ("bø/b", None), ("bø\nb", None),
        ("ø" * 64, "ø" * 64), ("ø" * 65, None), ("", None), ("b\ufffdb", None), ("bø\u00a0b", None),
    ],
)
def test_plain_user_takes_letters_of_any_script_and_nothing_that_breaks_a_line(name: str, plain: str | None) -> None:
    assert plain_user(name) == plain


@pytest.mark.parametrize("name", [
    "bob\u034f", "b\u034fob",  # a combining grapheme joiner: a mark, and nothing to see
    "bob\ufe0f", "\u845b\U000e0100",  # variation selectors (the second an ideographic one)
    "\u3164", "bob\u3164", "\uffa0bob", "\u115fbob", "bob\u1160",  # Hangul fillers: letters that show nothing
    "bo\u17b4b", "bob\u180b",  # a Khmer inherent vowel, a Mongolian variation selector
])
def test_plain_user_refuses_a_character_that_shows_nothing(name: str) -> None:
    """A user name may hold no invisible character (README): ``bob`` and ``bob`` followed by a
    mark or a letter that shows nothing (Unicode's default-ignorable code points) would be two
    users that read the same in the logs, the audit log and a hook's ``REMOTE_USER``.  Spaces,
    controls and format characters (bidi marks, zero-width space) were refused; these passed,
    being letters or combining marks."""
    assert plain_user(name) is None


def test_a_second_htpasswd_entry_for_the_same_composed_name_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"josé:{_bcrypt('first')}\njose\u0301:{_bcrypt('second')}\n", encoding="utf-8")
    seen: list[str] = []

    def observe(event: dict[str, object]) -> None:
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        users = Htpasswd(path)
        users.refresh()
    finally:
        globalLogPublisher.removeObserver(observe)
    assert users.check("josé", "first")
    assert not users.check("josé", "second")
    assert f"{path}:2: a second entry for josé is ignored: line 1 is the one used; remove one of them" in seen, seen


def test_an_htpasswd_user_name_with_a_control_character_is_told_as_such(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"bø\x1bb:{_bcrypt('pw')}\nno colon here\n", encoding="utf-8")
    seen: list[str] = []

    def observe(event: dict[str, object]) -> None:
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        users = Htpasswd(path)
        assert not users.check("bø\x1bb", "pw")
    finally:
        globalLogPublisher.removeObserver(observe)
    assert any(f"{path}:1: entry refused: user name " in line and f"is not a plain name ({PLAIN_NAMES})" in line
               for line in seen), seen
    assert f"{path}:2: entry refused: not a 'user:hash' line" in seen, seen
    assert users.skipped("bø\x1bb") == (f"its --htpasswd line 1 was skipped: the user name is not a plain name "
                                         f"({PLAIN_NAMES})")


def test_an_htpasswd_file_in_latin_1_is_told_as_such(tmp_path: Path) -> None:
    """``bøb`` saved in Latin-1 (read as UTF-8: ``b\ufffdb``) is not "not a plain name (letters …)"."""
    path = tmp_path / "htpasswd"
    path.write_bytes(f"bøb:{_bcrypt('pw')}\n".encode("latin-1"))
    seen: list[str] = []

    def observe(event: dict[str, object]) -> None:
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        Htpasswd(path).refresh()
    finally:
        globalLogPublisher.removeObserver(observe)
    assert (f"{path}:1: entry refused: user name 'b\ufffdb' is not a plain name (it is not UTF-8: save the file in "
            "UTF-8 (iconv -f latin1 -t utf-8))") in seen, seen
    with pytest.raises(KeyLineError, match="it is not UTF-8"):
        parse_key_line(f'user="b\ufffdb" ssh-ed25519 {B64}')


def test_a_key_line_names_a_user_beyond_ascii() -> None:
    assert parse_key_line(f'user="jose\u0301" ssh-ed25519 {B64}').user == "josé"
    assert parse_key_line(f"ssh-ed25519 {B64} bøb@laptop").user == "bøb@laptop"
    assert parse_key_line(f'command="gitolite-shell Алиса",no-pty ssh-ed25519 {B64}').user == "Алиса"
    with pytest.raises(KeyLineError, match="not a plain name"):
        parse_key_line(f'user="bø\u202eb" ssh-ed25519 {B64}')


@pytest.mark.parametrize(
    "entry",
    [
        "mallory:plaintext",
        "mallory:$apr1$abcdefgh$0123456789abcdefghijkl",
        "mallory:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "mallory:$6$salt$hash",
        "mallory:abCDefGH12345",
        "mallory:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    ],
)
def test_htpasswd_refuses_weak_or_unavailable_hashes(tmp_path: Path, entry: str) -> None:
    pytest.importorskip("bcrypt")
    path = tmp_path / "htpasswd"
    path.write_text(entry + "\n")
    users = Htpasswd(path)
    password = entry.split(":", 1)[1]
    assert not users.check("mallory", password)
    assert not users.check("mallory", "plaintext")


def test_htpasswd_reloads_on_change(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{_bcrypt('one')}\n")
    users = Htpasswd(path)
    assert users.check("alice", "one")
    path.write_text(f"alice:{_bcrypt('two')}\n")
    os.utime(path, ns=(1, 10**18))
    assert not users.check("alice", "one")
    assert users.check("alice", "two")


def test_unknown_user_costs_a_hash_like_a_known_one(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{_bcrypt('pw')}\n")
    users = Htpasswd(path)
    assert not users.check("nobody", "pw")
    assert users._decoy_hash is not None and users._decoy_hash.startswith(b"$2b$04$")
