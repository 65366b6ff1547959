"""Argument and reply encodings, checked against recorded hg bytes and by property tests."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.interfaces import Node
from protocols import hg_wire
from protocols.errors import LimitExceeded, ProtocolError

from .helpers import side

nodes = st.binary(min_size=20, max_size=20).map(Node)
names = st.binary(min_size=1, max_size=30).filter(lambda b: b" " not in b and b";" not in b)


def test_bundle2_caps_blob_of_hg_round_trips_to_the_same_bytes() -> None:
    caps_line = re.search(rb"capabilities: ([^\n]*)\n", side("unknown-command.txt", "s"))
    assert caps_line is not None
    quoted = next(c for c in caps_line.group(1).split(b" ") if c.startswith(b"bundle2="))[len(b"bundle2=") :]
    blob = hg_wire.url_unquote(quoted)
    caps = hg_wire.decode_bundle2_caps(blob)
    assert caps[b"changegroup"] == [b"01", b"02", b"03"]
    assert hg_wire.encode_bundle2_caps(caps) == blob
    assert hg_wire.url_quote(blob) == quoted


def test_capability_string_has_hg_layout() -> None:
    """With hg's own bundle2 caps, our builder reproduces hg's capability line minus the legacy cap."""
    caps_line = re.search(rb"capabilities: ([^\n]*)\n", side("unknown-command.txt", "s"))
    assert caps_line is not None
    theirs = caps_line.group(1)
    quoted = next(c for c in theirs.split(b" ") if c.startswith(b"bundle2="))[len(b"bundle2=") :]
    b2caps = hg_wire.decode_bundle2_caps(hg_wire.url_unquote(quoted))
    requirements = {"dotencode", "fncache", "generaldelta", "revlog-compression-zstd", "revlogv1", "sparserevlog",
                    "store", "share-safe"}  # fmt: skip
    ours = hg_wire.format_capabilities(b2caps, requirements, (b"protocaps",))
    assert ours == theirs.replace(b" changegroupsubset", b"")
    # a repository with secret changesets: hg's server leaves streamreqs out, and so do we
    without = hg_wire.format_capabilities(b2caps, requirements, (b"protocaps",), stream=False)
    assert without.split(b" ") == [c for c in ours.split(b" ") if not c.startswith(b"streamreqs=")]


@given(st.binary(max_size=200))
def test_batch_escaping_round_trips(value: bytes) -> None:
    escaped = hg_wire.escape_batch(value)
    assert not set(escaped) & set(b",;=")
    assert hg_wire.unescape_batch(escaped) == value


def format_batch(cmds: list[tuple[bytes, dict[bytes, bytes]]]) -> bytes:
    """A batch request as a client encodes it (``wireprotov1peer._batch``)."""
    return b";".join(
        name
        + b" "
        + b",".join(hg_wire.escape_batch(k) + b"=" + hg_wire.escape_batch(v) for k, v in args.items())
        for name, args in cmds
    )


@given(
    st.lists(
        st.tuples(
            names.filter(lambda b: b":" not in b and b"=" not in b and b"," not in b),
            st.dictionaries(st.binary(min_size=1, max_size=10), st.binary(max_size=50), max_size=4),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_batch_requests_round_trip(cmds: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
    assert hg_wire.parse_batch(format_batch(cmds)) == cmds


def test_batch_request_of_hg_parses() -> None:
    cmds = b"heads ;known nodes=d408a57b42875c0221266b70cabe8a80883df0fd"
    assert hg_wire.parse_batch(cmds) == [
        (b"heads", {}),
        (b"known", {b"nodes": b"d408a57b42875c0221266b70cabe8a80883df0fd"}),
    ]


@given(st.binary(max_size=300))
def test_batch_parser_raises_only_protocol_errors(garbage: bytes) -> None:
    try:
        hg_wire.parse_batch(garbage)
    except ProtocolError:
        pass


def test_batch_parser_bounds_the_command_count() -> None:
    with pytest.raises(LimitExceeded):
        hg_wire.parse_batch(b";".join([b"heads "] * (hg_wire.MAX_BATCH_COMMANDS + 1)))


@given(st.lists(nodes, max_size=10))
def test_node_lists_round_trip(values: list[Node]) -> None:
    assert hg_wire.decode_nodes(hg_wire.encode_nodes(values)) == values


@pytest.mark.parametrize("bad", [b"zz" * 20, b"00" * 19, b"00" * 21, b"00" * 20 + b"  "])
def test_bad_node_lists_are_protocol_errors(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        hg_wire.decode_nodes(bad)


def test_between_pairs() -> None:
    null = b"0" * 40
    assert hg_wire.decode_pairs(null + b"-" + null) == [(Node(b"\0" * 20), Node(b"\0" * 20))]
    with pytest.raises(ProtocolError):
        hg_wire.decode_pairs(null)


@pytest.mark.parametrize(("raw", "value"), [(b"1", True), (b"0", False), (b"true", True), (b"", False)])
def test_booleans(raw: bytes, value: bool) -> None:
    assert hg_wire.decode_bool(raw) is value


def test_csv_and_scsv() -> None:
    assert hg_wire.decode_csv(b"") == []
    assert hg_wire.decode_csv(b"bookmarks,phases") == [b"bookmarks", b"phases"]
    assert hg_wire.decode_scsv(b"HG20,HG20") == {b"HG20"}


def test_reply_formats_match_recorded_hg_replies() -> None:
    stdout = side("listkeys-and-known.txt", "s")
    branchmap = {
        b"default": [Node(bytes.fromhex("01a4fcbf8ba3269e542771b7068c2b36687ba48f"))],
        b"stable": [Node(bytes.fromhex("2e98c005657ff71e9fc9917a697d5a0b1ce591bd"))],
    }
    assert hg_wire.format_branchmap(branchmap) in stdout
    assert hg_wire.format_listkeys({b"phases": b"", b"namespaces": b"", b"bookmarks": b""}) in stdout
    assert hg_wire.format_lookup(None, b"unknown revision 'nope'") in stdout
    assert b"2\n" + hg_wire.format_pushkey(True) in side("push-bundle1.txt", "s")


def test_branch_names_are_url_quoted() -> None:
    assert hg_wire.format_branchmap({"bränch x".encode(): []}) == b"br%C3%A4nch%20x "


@given(st.dictionaries(st.binary(max_size=12).filter(lambda k: b"\t" not in k and b"\n" not in k),
                       st.binary(max_size=12)))
def test_listkeys_reply_is_sorted_key_tab_value_lines(keys: dict[bytes, bytes]) -> None:
    lines = [k + b"\t" + v for k, v in sorted(keys.items())]
    assert hg_wire.format_listkeys(keys) == b"\n".join(lines)
