"""getbundle and unbundle beyond the recorded happy paths: races, bad bundles, options.

Push bundles start from the one the real hg client sent (``push-bundle2.txt``)
and are altered part by part; every failure must leave the repository as it was.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from backends.interfaces import LockWait, Node, StoreFile
from protocols import bundle2 as b2
from protocols import hg_exchange
from protocols.changegroup import ChangegroupDecoder, StreamReader
from protocols.errors import ProtocolError, StorageError, UnsupportedFeature
from protocols.hg_exchange import (
    GetbundleRequest,
    abort_bundle,
    clone_share_key,
    encode_bookmarks,
    encode_phase_heads,
    getbundle,
    parse_getbundle_args,
    stream_out_v1,
    unbundle,
)
from protocols.hg_exchange import pushkey as hg_pushkey
from protocols.hg_responses import Outgoing, PushError, PushResponse, StreamResponse
from protocols.hg_ssh import CommandRequest, ConnectionClosed, PushPayload, SshV1Server
from protocols.hg_wire import url_quote

from .fake_repo import FakeRepo
from .helpers import parts_of, reference_repo, side

FORCE = b"666f726365"
PUSHED = Node(bytes.fromhex("d408a57b42875c0221266b70cabe8a80883df0fd"))
CLIENT_B2CAPS = url_quote(
    b"HG20\nbookmarks\nchangegroup=01,02,03\ncheckheads=related\nerror=abort,unsupportedcontent,pushraced,pushkey"
    b"\nlistkeys\nphases=heads\npushkey\nstream=v2"
)


def pushed_bundle(name: str = "push-bundle2.txt") -> bytes:
    """The bundle a real client streamed in a recorded unbundle, unframed."""
    server = SshV1Server()
    server.receive_data(side(name, "c"))
    server.receive_data(b"")
    data = bytearray()
    while not isinstance(event := server.next_event(), ConnectionClosed):
        if isinstance(event, CommandRequest) and event.name == b"unbundle":
            server.accept_push()
        elif isinstance(event, PushPayload):
            data += event.data
        else:
            server.send(PushResponse(0))
    return bytes(data)


def real_parts() -> dict[bytes, tuple[b2.InPart, bytes]]:
    return {part.type: (part, payload) for part, payload in parts_of(pushed_bundle())}


def as_out(part_type: bytes, payload: bytes | None = None) -> b2.OutPart:
    part, data = real_parts()[part_type]
    mandatory = [(k, part.params[k]) for k in part.mandatory_keys]
    advisory = [(k, v) for k, v in part.params.items() if k not in part.mandatory_keys]
    return b2.OutPart(part_type, mandatory, advisory, [data if payload is None else payload], part.mandatory)


def push(repo: FakeRepo, parts: Sequence[b2.OutPart], heads: bytes = FORCE) -> list[tuple[b2.InPart, bytes]]:
    reply = unbundle(repo, heads, iter([b"".join(b2.write_bundle2(parts))]))
    assert isinstance(reply, StreamResponse)
    return parts_of(b"".join(reply.chunks))


def assert_unchanged(repo: FakeRepo) -> None:
    assert repo.state == reference_repo().state
    assert repo.commits == 1  # the load of the reference state


def test_the_recorded_push_parts() -> None:
    assert list(real_parts()) == [
        b"replycaps", b"check:bookmarks", b"check:phases", b"check:updated-heads", b"changegroup", b"bookmarks",
    ]  # fmt: skip


def test_push_of_the_real_bundle_lands_in_one_transaction() -> None:
    repo = reference_repo()
    reply = push(repo, [as_out(t) for t in real_parts()])
    assert [(p.type, p.params) for p, _ in reply] == [
        (b"reply:changegroup", {b"in-reply-to": b"4", b"return": b"1"})
    ]
    assert repo.commits == 2
    assert repo.heads() == [PUSHED]
    assert repo.listkeys(b"phases") == {b"2e98c005657ff71e9fc9917a697d5a0b1ce591bd": b"1"}


def test_publishing_repository_makes_pushed_changesets_public() -> None:
    repo = reference_repo()
    repo._publishing = True
    push(repo, [as_out(b"replycaps"), as_out(b"changegroup")])
    assert repo.state.phases[PUSHED] == 0
    assert repo.listkeys(b"phases") == {b"publishing": b"True"}


def test_check_heads_race_is_pushraced_and_nothing_lands() -> None:
    repo = reference_repo()
    stale = b2.OutPart(b2.PART_CHECK_HEADS, payload=[b"\1" * 20])
    reply = push(repo, [as_out(b"replycaps"), stale, as_out(b"changegroup")])
    assert [p.type for p, _ in reply] == [b"error:pushraced"]
    assert b"remote repository changed" in reply[0][0].params[b"message"]
    assert_unchanged(repo)


def test_check_updated_heads_race() -> None:
    repo = reference_repo()
    reply = push(
        repo, [as_out(b"replycaps"), as_out(b"check:updated-heads", b"\2" * 20), as_out(b"changegroup")]
    )
    assert [p.type for p, _ in reply] == [b"error:pushraced"]
    assert_unchanged(repo)


def test_check_bookmarks_race() -> None:
    repo = reference_repo()
    moved = encode_bookmarks([(b"main", Node(b"\3" * 20))])
    reply = push(repo, [as_out(b"replycaps"), as_out(b"check:bookmarks", moved), as_out(b"changegroup")])
    assert [p.type for p, _ in reply] == [b"error:pushraced"]
    assert_unchanged(repo)


def test_check_phases_race() -> None:
    repo = reference_repo()
    draft = Node(bytes.fromhex("2e98c005657ff71e9fc9917a697d5a0b1ce591bd"))
    public = Node(bytes.fromhex("5f4b89c47f3c1609e8ba11bf036ba9dec7a16db4"))
    ok = push(
        repo, [as_out(b"replycaps"), as_out(b"check:phases", encode_phase_heads([(0, public), (1, draft)]))]
    )
    assert ok == []
    reply = push(repo, [as_out(b"replycaps"), as_out(b"check:phases", encode_phase_heads([(0, draft)]))])
    assert [(p.type, p.params[b"message"]) for p, _ in reply] == [
        (
            b"error:pushraced",
            b"remote repository changed while pushing - please try again (2e98c005657f is draft expected public)",
        )
    ]


def test_check_phases_of_an_unknown_changeset_is_a_race() -> None:
    repo = reference_repo()
    reply = push(
        repo, [as_out(b"replycaps"), as_out(b"check:phases", encode_phase_heads([(0, Node(b"\4" * 20))]))]
    )
    assert [p.type for p, _ in reply] == [b"error:pushraced"]


def test_heads_argument_race_for_bundle2() -> None:
    repo = reference_repo()
    reply = push(repo, [as_out(b"replycaps"), as_out(b"changegroup")], heads=(b"\5" * 20).hex().encode())
    assert [p.type for p, _ in reply] == [b"error:pushraced"]
    assert_unchanged(repo)


def _corrupt(payload: bytes, offset: int) -> bytes:
    return payload[:offset] + bytes([payload[offset] ^ 0xFF]) + payload[offset + 1 :]


def test_wrong_node_hash_is_refused_and_nothing_lands() -> None:
    repo = reference_repo()
    _, cg = real_parts()[b"changegroup"]
    bad = _corrupt(cg, 4 + 102 + 20)  # a byte of the first changeset's delta data
    reply = push(repo, [as_out(b"replycaps"), as_out(b"changegroup", bad)])
    assert [p.type for p, _ in reply] == [b"error:abort"]
    assert_unchanged(repo)


def test_unknown_delta_base_is_refused() -> None:
    repo = reference_repo()
    _, cg = real_parts()[b"changegroup"]
    bad = cg[: 4 + 60] + b"\6" * 20 + cg[4 + 80 :]  # the delta base of the first changeset
    reply = push(repo, [as_out(b"replycaps"), as_out(b"changegroup", bad)])
    assert [p.type for p, _ in reply] == [b"error:abort"]
    assert_unchanged(repo)


@pytest.mark.parametrize("cut", [1, 10, 300])
def test_truncated_bundle_is_an_abort_and_nothing_lands(cut: int) -> None:
    repo = reference_repo()
    bundle = pushed_bundle()
    reply = unbundle(repo, FORCE, iter([bundle[:-cut]]))
    assert isinstance(reply, StreamResponse)
    parts = parts_of(b"".join(reply.chunks))
    assert [p.type for p, _ in parts] == [b"error:abort"]
    assert b"truncated" in parts[0][0].params[b"message"]
    assert_unchanged(repo)


def test_unknown_mandatory_part_is_unsupportedcontent() -> None:
    repo = reference_repo()
    reply = push(repo, [as_out(b"replycaps"), b2.OutPart(b"new-thing"), as_out(b"changegroup")])
    assert [(p.type, p.params) for p, _ in reply] == [
        (b"error:unsupportedcontent", {b"parttype": b"new-thing"})
    ]
    assert_unchanged(repo)


def test_unknown_mandatory_parameter_is_unsupportedcontent() -> None:
    repo = reference_repo()
    _, cg = real_parts()[b"changegroup"]
    odd = b2.OutPart(b"changegroup", [(b"version", b"03"), (b"exp-unheard-of", b"1")], payload=[cg])
    reply = push(repo, [as_out(b"replycaps"), odd])
    assert [(p.type, p.params) for p, _ in reply] == [
        (b"error:unsupportedcontent", {b"parttype": b"changegroup", b"params": b"exp-unheard-of"})
    ]


def test_a_changegroup_from_a_repository_keeping_sidedata_is_applied() -> None:
    """hg's client marks the changegroup of a repository with sidedata (its copies kept there) with
    ``exp-sidedata``, mandatory; the stream is of an advertised version, as any other push's."""
    repo = reference_repo()
    _, cg = real_parts()[b"changegroup"]
    marked = b2.OutPart(b"changegroup", [(b"version", b"03"), (b"exp-sidedata", b"1")], payload=[cg])
    reply = push(repo, [as_out(b"replycaps"), marked])
    assert [p.type for p, _ in reply] == [b"reply:changegroup"]


def test_a_changegroup_of_tree_manifests_is_refused_by_name() -> None:
    repo = reference_repo()
    _, cg = real_parts()[b"changegroup"]
    trees = b2.OutPart(b"changegroup", [(b"version", b"03"), (b"treemanifest", b"1")], payload=[cg])
    reply = push(repo, [as_out(b"replycaps"), trees])
    assert [(p.type, p.params.get(b"message")) for p, _ in reply] == [
        (b"error:abort", hg_exchange.TREE_MANIFESTS_REFUSED.encode())
    ]


def test_unknown_advisory_part_is_ignored() -> None:
    repo = reference_repo()
    reply = push(
        repo, [as_out(b"replycaps"), b2.OutPart(b"new-thing", mandatory=False), as_out(b"changegroup")]
    )
    assert [p.type for p, _ in reply] == [b"reply:changegroup"]


def test_error_parts_fall_back_to_abort_without_replycaps() -> None:
    repo = reference_repo()
    reply = push(repo, [b2.OutPart(b2.PART_CHECK_HEADS, payload=[b"\1" * 20])])
    assert [p.type for p, _ in reply] == [b"error:abort"]


def test_pushkey_parts_reply_and_a_refused_one_aborts_everything() -> None:
    repo = reference_repo()
    main = b"9208083d387257c95aee3971473b53c399035b46"

    def pk(key: bytes, old: bytes) -> b2.OutPart:
        params = [(b"namespace", b"bookmarks"), (b"key", key), (b"old", old), (b"new", main)]
        return b2.OutPart(b2.PART_PUSHKEY, params)

    ok = push(repo, [as_out(b"replycaps"), pk(b"new-bm", b"")])
    assert [(p.type, p.params) for p, _ in ok] == [
        (b"reply:pushkey", {b"in-reply-to": b"1", b"return": b"1"})
    ]
    assert repo.bookmarks()[b"new-bm"].hex().encode() == main
    refused = push(repo, [as_out(b"replycaps"), pk(b"other", b"00" * 20), as_out(b"changegroup")])
    assert [(p.type, p.params[b"in-reply-to"]) for p, _ in refused] == [(b"error:pushkey", b"1")]
    assert repo.known([PUSHED]) == [False]
    assert b"other" not in repo.bookmarks()


def test_phase_heads_part_moves_phases() -> None:
    repo = reference_repo()
    merge = Node(bytes.fromhex("9208083d387257c95aee3971473b53c399035b46"))
    push(
        repo,
        [as_out(b"replycaps"), b2.OutPart(b2.PART_PHASE_HEADS, payload=[encode_phase_heads([(0, merge)])])],
    )
    assert repo.listkeys(b"phases") == {}


def test_bundle1_push_with_stale_heads_is_a_push_error() -> None:
    repo = reference_repo()
    stale = b"686173686564 " + (b"\7" * 20).hex().encode()
    reply = unbundle(repo, stale, iter([b"HG10UN" + b"\0" * 12]))
    assert reply == PushError(b"repository changed while preparing changes - please try again")
    assert_unchanged(repo)


@pytest.mark.parametrize("data", [b"", b"XX", b"garbage!", b"HG10XX"])
def test_not_a_bundle_is_an_abort_result(data: bytes) -> None:
    reply = unbundle(reference_repo(), FORCE, iter([data]))
    assert isinstance(reply, PushResponse) and reply.result == 0
    assert reply.output.startswith(b"abort: ")


def test_payload_is_always_consumed() -> None:
    consumed: list[bytes] = []

    def payload() -> Iterator[bytes]:
        for chunk in (b"garbage!", b"more", b"and more"):
            consumed.append(chunk)
            yield chunk

    unbundle(reference_repo(), FORCE, payload())
    assert consumed == [b"garbage!", b"more", b"and more"]


def _chunked(data: bytes, events: list[str]) -> Iterator[bytes]:
    """``data`` as a client sends it, in 1 KiB pieces, noting in ``events`` when the last one is read."""
    for start in range(0, len(data), 1024):
        yield data[start:start + 1024]
    events.append("sent")


def _keeping(repo: FakeRepo, events: list[str], fails: StorageError | None = None) -> None:
    """Give ``repo`` an ``HgPushSpool`` (in memory) and note when its transactions start."""

    @contextmanager
    def spool_push(chunks: Iterator[bytes]) -> Iterator[Iterator[bytes]]:
        kept = b"".join(chunks)
        if fails is not None:
            raise fails
        events.append("kept")
        yield iter([kept])

    real = repo.transaction

    def transaction(max_text: int | None = None, wait: LockWait | None = None) -> Any:
        events.append("locked")
        return real(max_text, wait)

    repo.spool_push = spool_push  # type: ignore[attr-defined]
    repo.transaction = transaction  # type: ignore[method-assign]


def test_a_repository_that_keeps_the_bundle_is_locked_only_once_the_client_sent_all_of_it() -> None:
    """As ``hg serve``: a client that stalls in the middle of its bundle holds no lock."""
    repo, events = reference_repo(), []
    _keeping(repo, events)
    bundle = b"".join(b2.write_bundle2([as_out(t) for t in real_parts()]))
    reply = unbundle(repo, FORCE, _chunked(bundle, events))
    assert isinstance(reply, StreamResponse)
    assert [p.type for p, _ in parts_of(b"".join(reply.chunks))] == [b"reply:changegroup"]
    assert events == ["sent", "kept", "locked"]
    assert repo.heads() == [PUSHED]


def test_heads_are_checked_against_the_repository_as_it_is_once_the_bundle_is_whole() -> None:
    """A push made against the heads before another landed while it was sent is refused as raced."""
    repo, events = reference_repo(), []
    _keeping(repo, events)
    before = repo.heads()
    stale = b" ".join(node.hex().encode() for node in before)
    landed = Node(b"\2" * 20)
    repo.heads = lambda: [*before, landed] if "sent" in events else before  # type: ignore[method-assign]
    bundle = b"".join(b2.write_bundle2([as_out(b"replycaps"), as_out(b"changegroup")]))
    reply = unbundle(repo, stale, _chunked(bundle, events))
    assert isinstance(reply, StreamResponse)
    assert [p.type for p, _ in parts_of(b"".join(reply.chunks))] == [b"error:pushraced"]
    assert events == ["sent", "kept", "locked"]


def test_a_bundle_the_disk_cannot_keep_is_refused_in_its_format_before_any_lock() -> None:
    repo, events = reference_repo(), []
    refusal = StorageError("the server could not store the push (No space left on device); nothing was changed")
    _keeping(repo, events, fails=refusal)
    reply = unbundle(repo, FORCE, _chunked(pushed_bundle(), events))
    assert isinstance(reply, StreamResponse)
    [(part, _)] = parts_of(b"".join(reply.chunks))
    assert (part.type, part.params[b"message"]) == (b"error:abort", refusal.message.encode())
    assert events == ["sent"]
    assert_unchanged(repo)
    one = unbundle(repo, FORCE, iter([b"HG10UN" + b"\0" * 12]))
    assert one == PushResponse(0, b"abort: " + refusal.message.encode() + b"\n")


def test_what_is_no_bundle_is_refused_before_it_is_kept() -> None:
    repo, events = reference_repo(), []
    _keeping(repo, events)
    reply = unbundle(repo, FORCE, _chunked(b"garbage!" * 1000, events))
    assert reply == PushResponse(0, b"abort: the pushed data is not a Mercurial bundle\n")
    assert events == ["sent"]


# ---------------------------------------------------------------- getbundle


def request(**kwargs: bytes) -> GetbundleRequest:
    args = {b"bundlecaps": b"HG20,bundle2=" + CLIENT_B2CAPS, b"common": b"0" * 40}
    args.update({k.encode(): v for k, v in kwargs.items()})
    return parse_getbundle_args(args)


def bundle_parts(repo: FakeRepo, req: GetbundleRequest) -> list[tuple[b2.InPart, bytes]]:
    return parts_of(b"".join(getbundle(repo, req)[0]))


def test_getbundle_stream2_part() -> None:
    parts = bundle_parts(reference_repo(), request(stream=b"1", cg=b"0"))
    (part, payload), = parts  # fmt: skip
    assert part.type == b"stream2"
    assert part.params == {
        b"bytecount": b"18",
        b"filecount": b"2",
        b"requirements": b"generaldelta%2Crevlog-compression-zstd%2Crevlogv1%2Csparserevlog",
    }
    assert payload == b"s\x0d\x0f00changelog.ichangelog-bytes" + b"s\x0c\x03data/a.i/b.ixyz"


def test_getbundle_changegroup_version_follows_the_client() -> None:
    caps = url_quote(b"HG20\nchangegroup=01,02")
    parts = bundle_parts(reference_repo(), request(bundlecaps=b"HG20,bundle2=" + caps))
    assert [(p.type, p.params) for p, _ in parts] == [
        (b"changegroup", {b"version": b"02", b"nbchanges": b"5"})
    ]


def test_getbundle_without_common_version_is_an_error_part() -> None:
    caps = url_quote(b"HG20\nchangegroup=04")
    parts = bundle_parts(reference_repo(), request(bundlecaps=b"HG20,bundle2=" + caps))
    assert [p.type for p, _ in parts] == [b"error:abort"]


def test_getbundle_names_the_first_changeset_it_sends() -> None:
    """For the ``preoutgoing``/``outgoing`` hooks: only an answer with a changegroup sends changesets."""
    repo = reference_repo()
    nodes = repo.missing([], repo.heads())
    assert getbundle(repo, request())[1] == Outgoing(nodes[0], bundle2=True)
    heads = b" ".join(node.hex().encode() for node in repo.heads())
    for nothing in (request(common=heads), request(cg=b"0", phases=b"1"), request(stream=b"1", cg=b"0")):
        assert getbundle(repo, nothing)[1] is None


def test_abort_bundle_is_one_error_part() -> None:
    (part, _), = parts_of(b"".join(abort_bundle("preoutgoing.gate hook exited with status 1")))  # fmt: skip
    assert (part.type, part.params) == (b"error:abort", {b"message": b"preoutgoing.gate hook exited with status 1"})


def test_getbundle_listkeys_phases_and_publishing() -> None:
    repo = reference_repo()
    repo._publishing = True
    parts = bundle_parts(repo, request(cg=b"0", listkeys=b"phases", phases=b"1"))
    assert [(p.type, payload) for p, payload in parts] == [
        (b"listkeys", b"2e98c005657ff71e9fc9917a697d5a0b1ce591bd\t1\npublishing\tTrue"),
        (b"phase-heads", struct.pack(">i", 0) + bytes.fromhex("9208083d387257c95aee3971473b53c399035b46")),
    ]


def test_getbundle_for_a_bundle1_client_is_a_bare_cg01() -> None:
    repo = reference_repo()
    data, outgoing = getbundle(repo, parse_getbundle_args({b"common": b"0" * 40}))
    data = b"".join(data)
    assert outgoing == Outgoing(repo.missing([], repo.heads())[0], bundle2=False)
    loaded = FakeRepo()
    tx = loaded.transaction()
    tx.add_changegroup(ChangegroupDecoder(StreamReader(iter([data])), b"01").groups())
    tx.commit()
    assert loaded.state.revlogs == repo.state.revlogs


def test_getbundle_ignores_unknown_common_and_refuses_unknown_heads() -> None:
    repo = reference_repo()
    unknown = (b"\x09" * 20).hex().encode()
    parts = bundle_parts(repo, request(common=unknown))
    assert [(p.type, p.params.get(b"nbchanges")) for p, _ in parts] == [(b"changegroup", b"5")]
    parts = bundle_parts(repo, request(heads=unknown))
    assert [(p.type, p.params[b"message"]) for p, _ in parts] == [
        (b"error:abort", b"changeset " + unknown + b" is no longer on the server (it was stripped or made obsolete"
         b" after this clone or pull began); try it again")
    ]


def test_a_payload_that_breaks_mid_push_aborts_cleanly() -> None:
    repo = reference_repo()
    bundle = pushed_bundle()

    def payload() -> Iterator[bytes]:
        yield bundle[:500]
        raise ProtocolError("the connection closed in the middle of a push")

    reply = unbundle(repo, FORCE, payload())
    assert isinstance(reply, StreamResponse)
    assert [p.type for p, _ in parts_of(b"".join(reply.chunks))] == [b"error:abort"]
    assert_unchanged(repo)


def test_http_push_output_travels_in_an_output_part() -> None:
    bundle = b"".join(b2.write_bundle2([as_out(b"replycaps"), as_out(b"changegroup")]))
    reply = unbundle(reference_repo(), FORCE, iter([bundle]), capture_output=True)
    assert isinstance(reply, StreamResponse) and reply.output == b""
    parts = parts_of(b"".join(reply.chunks))
    assert [(p.type, p.mandatory) for p, _ in parts] == [(b"reply:changegroup", False), (b"output", False)]
    assert parts[1][1].endswith(b"added 1 changesets with 1 changes to 1 files\n")


def test_a_push_never_retracts_a_public_changeset_to_draft() -> None:
    repo = reference_repo()
    public = Node(bytes.fromhex("5f4b89c47f3c1609e8ba11bf036ba9dec7a16db4"))
    push(
        repo,
        [as_out(b"replycaps"), b2.OutPart(b2.PART_PHASE_HEADS, payload=[encode_phase_heads([(1, public)])])],
    )
    assert repo.state.phases[public] == 0
    key = public.hex().encode()
    refused = push(
        repo,
        [
            as_out(b"replycaps"),
            b2.OutPart(
                b2.PART_PUSHKEY,
                [(b"namespace", b"phases"), (b"key", key), (b"old", b"0"), (b"new", b"1")],
                mandatory=False,
            ),
        ],
    )
    assert [(p.type, p.params[b"return"]) for p, _ in refused] == [(b"reply:pushkey", b"0")]
    assert repo.state.phases[public] == 0


def test_pushkey_publishes_a_draft_changeset() -> None:
    repo = reference_repo()
    draft = b"2e98c005657ff71e9fc9917a697d5a0b1ce591bd"
    assert hg_pushkey(repo, b"phases", draft, b"1", b"0") is True
    assert repo.listkeys(b"phases") == {b"9208083d387257c95aee3971473b53c399035b46": b"1"}


def test_check_phases_on_a_publishing_repository_with_local_drafts() -> None:
    """hg clients take draft roots from listkeys even when the remote publishes."""
    repo = reference_repo()
    repo._publishing = True
    draft = Node(bytes.fromhex("2e98c005657ff71e9fc9917a697d5a0b1ce591bd"))
    head = Node(bytes.fromhex("9208083d387257c95aee3971473b53c399035b46"))
    check = as_out(b"check:phases", encode_phase_heads([(0, head), (1, draft)]))
    assert push(repo, [as_out(b"replycaps"), check]) == []


@pytest.mark.parametrize(
    ("error", "status"), [(UnsupportedFeature("no"), b"1\n"), (StorageError("lock"), b"2\n")]
)
def test_stream_out_refusals_are_status_lines(error: Exception, status: bytes) -> None:
    repo = reference_repo()

    def refuse() -> tuple[int, int, Iterator[StoreFile]]:
        raise error

    repo.stream_files = refuse  # type: ignore[method-assign]
    assert b"".join(stream_out_v1(repo)) == status


@pytest.mark.parametrize("cut", [0, 300])
def test_a_generator_payload_is_read_to_its_end_never_closed(cut: int) -> None:
    """A transport's payload generator must reach its end marker, or the connection loses its place."""
    state = {"finished": False, "closed": False}
    bundle = pushed_bundle()

    def payload() -> Iterator[bytes]:
        try:
            for i in range(0, len(bundle) - cut, 100):
                yield bundle[i : i + 100]
            yield b"trailing garbage after the bundle"
            state["finished"] = True
        except GeneratorExit:
            state["closed"] = True
            raise

    unbundle(reference_repo(), FORCE, payload())
    assert state == {"finished": True, "closed": False}


class Stamped:
    """A repository that tells its state; only ``state_stamp`` is used by the key."""

    def __init__(self, stamp: bytes | None) -> None:
        self.stamp = stamp

    def state_stamp(self) -> bytes | None:
        return self.stamp


CLONE_ARGS = {b"bundlecaps": b"HG20,bundle2=" + CLIENT_B2CAPS, b"cg": b"1", b"common": b"0" * 40,
              b"heads": b"d408a57b42875c0221266b70cabe8a80883df0fd", b"listkeys": b"bookmarks", b"phases": b"1"}


def _share_key(repo: object, args: dict[bytes, bytes]) -> bytes | None:
    return clone_share_key(repo, args, parse_getbundle_args(args))  # type: ignore[arg-type]


def test_a_clone_has_a_share_key_that_names_its_arguments_and_the_state() -> None:
    key = _share_key(Stamped(b"s1"), CLONE_ARGS)
    assert key is not None
    assert _share_key(Stamped(b"s1"), dict(reversed(list(CLONE_ARGS.items())))) == key  # order does not matter
    assert _share_key(Stamped(b"s2"), CLONE_ARGS) != key  # the repository changed
    assert _share_key(Stamped(b"s1"), {**CLONE_ARGS, b"phases": b"0"}) != key
    assert _share_key(Stamped(b"s1"), {**CLONE_ARGS, b"heads": b"1" * 40}) != key
    # no ambiguity between where one argument ends and the next starts
    assert _share_key(Stamped(b"s1"), {b"listkeys": b"bookmarks", b"phases": b"1"}) != _share_key(
        Stamped(b"s1"), {b"listkeys": b"bookmarksphases1"})


def test_only_a_clone_of_a_repository_that_tells_its_state_shares() -> None:
    assert _share_key(Stamped(b"s1"), {**CLONE_ARGS, b"common": b"1" * 40}) is None  # a pull
    assert _share_key(Stamped(b"s1"), {**CLONE_ARGS, b"stream": b"1", b"cg": b"0"}) is None
    assert _share_key(Stamped(None), CLONE_ARGS) is None
    assert _share_key(FakeRepo(), CLONE_ARGS) is None  # a backend without state_stamp


def test_a_repository_with_lfs_pointers_sends_only_changegroup_03() -> None:
    from protocols.errors import UnsupportedFeature
    from protocols.hg_exchange import negotiate_changegroup_version

    assert negotiate_changegroup_version({b"changegroup": [b"01", b"02"]}) == b"02"
    assert negotiate_changegroup_version({b"changegroup": [b"01", b"02", b"03"]}, flags=True) == b"03"
    for caps in ({b"changegroup": [b"01", b"02"]}, {}):
        with pytest.raises(UnsupportedFeature, match="no common changegroup version"):
            negotiate_changegroup_version(caps, flags=True)


@pytest.mark.parametrize("name", [b"a\nb", b"with\rreturn", b"nul\0", b""])
def test_a_pushed_bookmark_name_hg_cannot_store_is_refused_by_name(name: bytes) -> None:
    """The bookmarks file separates names by newlines: such a name is refused saying why (it was
    "remote repository changed while pushing", asking for a retry that could never succeed)."""
    from protocols.hg_exchange import decode_bookmarks

    with pytest.raises(ProtocolError, match="which hg cannot store"):
        decode_bookmarks(encode_bookmarks([(b"fine", Node(b"\3" * 20)), (name, Node(b"\4" * 20))]))
    assert decode_bookmarks(encode_bookmarks([(b"fine/x y", None)])) == [(b"fine/x y", None)]


def test_a_bookmark_race_is_told_in_hg_s_words() -> None:
    """``check:bookmarks`` found a bookmark another push moved: hg's three sentences."""
    a, b = Node(b"\xaa" * 20), Node(b"\xbb" * 20)
    assert hg_exchange.bookmark_race(b"bm", a, b).endswith('(bookmark "bm" move from aaaaaaaaaaaa to bbbbbbbbbbbb)')
    assert hg_exchange.bookmark_race(b"bm", a, None).endswith('(bookmark "bm" is missing, expected aaaaaaaaaaaa)')
    assert hg_exchange.bookmark_race(b"bm", None, b).endswith('(bookmark "bm" set on bbbbbbbbbbbb, expected missing)')
