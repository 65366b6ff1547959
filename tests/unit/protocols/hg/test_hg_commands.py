"""The command table: permissions (batch included), argument binding, simple replies."""

from __future__ import annotations

import pytest

from protocols.errors import HgwireError, PermissionDenied, ProtocolError
from protocols.hg_commands import (
    COMMANDS,
    PULL,
    PUSH,
    Args,
    CommandContext,
    Listing,
    Permission,
    Transport,
    bind_args,
    dispatch,
    listing_of,
)
from protocols.hg_responses import BytesResponse, OobError, StreamResponse
from protocols.hg_ssh import SSH_CAPS

from .helpers import allow_all, reference_repo


def pull_only(permission: Permission) -> None:
    if permission != PULL:
        raise PermissionDenied("this repository is read-only for you")


def ctx(check: object = allow_all) -> CommandContext:
    return CommandContext(Transport.SSH, check, SSH_CAPS)  # type: ignore[arg-type]


def test_every_command_of_the_issue_is_declared_with_hg_permissions() -> None:
    expected = {
        b"hello": PULL, b"between": PULL, b"capabilities": PULL, b"batch": PULL, b"heads": PULL,
        b"known": PULL, b"branchmap": PULL, b"branches": PULL, b"lookup": PULL, b"listkeys": PULL,
        b"pushkey": PUSH, b"getbundle": PULL, b"unbundle": PUSH, b"protocaps": PULL, b"clonebundles": PULL,
        b"clonebundles_manifest": PULL, b"stream_out": PULL, b"changegroup": PULL, b"changegroupsubset": PULL,
        b"get_cached_bundle_inline": PULL,
        # hg's largefiles extension (hgext/largefiles/__init__.py)
        b"putlfile": PUSH, b"getlfile": PULL, b"statlfile": PULL, b"lheads": PULL,
        # hg's narrow extension (hgext/narrow/narrowwirepeer.py)
        b"narrow_widen": PULL,
        b"debugwireargs": PULL,
        # hg-evolve's topic extension (hgext3rd/topic/server.py)
        b"_exttopics_heads": PULL,
        # hg-evolve's marker discovery (hgext3rd/evolve/obsdiscovery.py)
        b"evoext_obshashrange_v1": PULL,
    }  # fmt: skip
    assert {name: cmd.permission for name, cmd in COMMANDS.items()} == expected


def test_unknown_command_gets_the_empty_string() -> None:
    assert dispatch(reference_repo(), b"nosuch", Args({}), ctx()) == BytesResponse(b"")


@pytest.mark.parametrize(("flat", "answer"), [
    ({b"one": b"un", b"two": b"deux"}, b"un deux None None None"),
    ({b"one": b"un", b"two": b"deux", b"three": b"3", b"four": b"4", b"five": b"5"}, b"un deux 3 4 None"),
    ({b"one": b"a b", b"two": b""}, b"a b  None None None"),
])  # (hg serve's answers to hg debugwireargs URL ONE TWO [--three 3 --four 4])
def test_debugwireargs_answers_what_it_got_as_hg_serve(flat: dict[bytes, bytes], answer: bytes) -> None:
    args = bind_args(COMMANDS[b"debugwireargs"], flat)
    assert dispatch(reference_repo(), b"debugwireargs", args, ctx()) == BytesResponse(answer)


def test_dispatch_checks_the_command_permission() -> None:
    args = Args({b"namespace": b"bookmarks", b"key": b"x", b"old": b"", b"new": b""})
    with pytest.raises(PermissionDenied):
        dispatch(reference_repo(), b"pushkey", args, ctx(pull_only))


def test_batch_checks_every_sub_command_permission() -> None:
    """CVE-2018-1000132: a pull-only user cannot write through batch."""
    repo = reference_repo()
    cmds = (
        b"heads ;pushkey namespace=bookmarks,key=evil,old=,new=" + b"9208083d387257c95aee3971473b53c399035b46"
    )
    with pytest.raises(PermissionDenied):
        dispatch(repo, b"batch", Args({b"cmds": cmds}), ctx(pull_only))
    assert b"evil" not in repo.bookmarks()


def test_batch_runs_sub_commands_and_escapes_results() -> None:
    repo = reference_repo()
    reply = dispatch(repo, b"batch", Args({b"cmds": b"heads ;listkeys namespace=phases"}), ctx())
    assert reply == BytesResponse(
        b"9208083d387257c95aee3971473b53c399035b46\n;2e98c005657ff71e9fc9917a697d5a0b1ce591bd\t1"
    )


@pytest.mark.parametrize("cmds", [b"getbundle ", b"unbundle heads=", b"nosuch ", b"heads"])
def test_batch_refuses_unbatchable_or_malformed_commands(cmds: bytes) -> None:
    with pytest.raises(ProtocolError):
        dispatch(reference_repo(), b"batch", Args({b"cmds": cmds}), ctx())


def test_batched_unsupported_command_is_an_oob_error() -> None:
    reply = dispatch(reference_repo(), b"batch", Args({b"cmds": b"branches nodes="}), ctx())
    assert isinstance(reply, OobError)


def test_bind_args() -> None:
    known = COMMANDS[b"known"]
    assert bind_args(known, {b"nodes": b"", b"x": b"1"}) == Args({b"nodes": b""}, {b"x": b"1"})
    assert bind_args(COMMANDS[b"lookup"], {b"key": b"x", b"extra": b"1"}) == Args({b"key": b"x"})  # as hg: dropped
    with pytest.raises(ProtocolError):
        bind_args(COMMANDS[b"lookup"], {})


def test_lookup_variants() -> None:
    repo = reference_repo()

    def lookup(key: bytes) -> bytes:
        reply = dispatch(repo, b"lookup", Args({b"key": key}), ctx())
        assert isinstance(reply, BytesResponse)
        return reply.data

    assert lookup(b"stable") == b"1 2e98c005657ff71e9fc9917a697d5a0b1ce591bd\n"
    assert lookup(b"main") == b"1 9208083d387257c95aee3971473b53c399035b46\n"
    assert lookup(b"nope") == b"0 unknown revision 'nope'\n"


def test_getbundle_ignores_an_unknown_argument_as_hg_does() -> None:
    repo = reference_repo()
    plain = dispatch(repo, b"getbundle", Args({}, {b"common": b"0" * 40}), ctx())
    extra = dispatch(repo, b"getbundle", Args({}, {b"common": b"0" * 40, b"remote_sidedata": b"x"}), ctx())
    assert isinstance(plain, StreamResponse) and isinstance(extra, StreamResponse)
    assert b"".join(extra.chunks) == b"".join(plain.chunks)


def test_clonebundles_are_empty_and_stream_out_is_uncompressed() -> None:
    repo = reference_repo()
    assert dispatch(repo, b"clonebundles", Args({}), ctx()) == BytesResponse(b"")
    assert dispatch(repo, b"clonebundles_manifest", Args({}), ctx()) == BytesResponse(b"")
    reply = dispatch(repo, b"stream_out", Args({}), ctx())
    assert isinstance(reply, StreamResponse) and reply.prefer_uncompressed
    assert b"".join(reply.chunks) == (
        b"0\n2 18\n00changelog.i\x0015\nchangelog-bytes" + b"data/a.i.hg/b.i\x003\nxyz"
    )


MANIFEST = (b"https://cdn.example/full.hg BUNDLESPEC=zstd-v2 REQUIRESNI=true\r\n"
            b"peer-bundle-cache://full.hg BUNDLESPEC=zstd-v2\n"
            b"https://cdn.example/packed.hg BUNDLESPEC=none-v2%3Bstream%3Dv2%3Bstore-fingerprint%3Dabc\n")


def test_a_clone_bundles_manifest_is_advertised_and_served() -> None:
    """As hg's clonebundles extension; inline entries are not listed by a backend that keeps no
    bundles of its own, fingerprinted ones only to clients of ``clonebundles_manifest``."""
    repo = reference_repo()
    caps = dispatch(repo, b"capabilities", Args({}), ctx())
    assert isinstance(caps, BytesResponse) and b"clonebundles" not in caps.data.split(b" ")
    repo.clonebundles_manifest = lambda: MANIFEST  # type: ignore[attr-defined]
    caps = dispatch(repo, b"capabilities", Args({}), ctx())
    assert isinstance(caps, BytesResponse)
    assert {b"clonebundles", b"clonebundles_manifest"} <= set(caps.data.split(b" "))
    assert dispatch(repo, b"clonebundles", Args({}), ctx()) == BytesResponse(
        b"https://cdn.example/full.hg BUNDLESPEC=zstd-v2 REQUIRESNI=true\n")
    assert dispatch(repo, b"clonebundles_manifest", Args({}, {b"store_fingerprint": b"1"}), ctx()) == BytesResponse(
        b"https://cdn.example/full.hg BUNDLESPEC=zstd-v2 REQUIRESNI=true\n"
        b"https://cdn.example/packed.hg BUNDLESPEC=none-v2%3Bstream%3Dv2%3Bstore-fingerprint%3Dabc\n")


def test_http_capabilities_carry_the_transport_caps() -> None:
    repo = reference_repo()
    http = CommandContext(Transport.HTTP, allow_all, (b"httpheader=1024", b"httppostargs"))
    reply = dispatch(repo, b"capabilities", Args({}), http)
    assert isinstance(reply, BytesResponse)
    assert b"httpheader=1024" in reply.data.split(b" ")
    assert b"protocaps" not in reply.data.split(b" ")


def test_listing_names_the_namespaces_a_command_lists() -> None:
    """``prelistkeys``/``listkeys`` run for each namespace ``localrepo.listkeys`` is asked for."""
    assert listing_of(b"listkeys", Args({b"namespace": b"phases"})) == Listing((b"phases",))
    batch = Args({b"cmds": b"heads ;listkeys namespace=phases;known nodes=;listkeys namespace=bookmarks"})
    assert listing_of(b"batch", batch) == Listing((b"phases", b"bookmarks"))
    bundle2 = {b"bundlecaps": b"HG20,bundle2=HG20", b"listkeys": b"bookmarks,phases", b"cg": b"0"}
    assert listing_of(b"getbundle", Args({}, bundle2)) == Listing((b"bookmarks", b"phases"), bundle2=True)
    bundle1 = {b"listkeys": b"bookmarks"}  # a bundle1 answer holds no listkeys part
    assert listing_of(b"getbundle", Args({}, bundle1)) == Listing()
    assert listing_of(b"heads", Args({})) == Listing()
    # what the command itself refuses lists nothing
    assert listing_of(b"batch", Args({b"cmds": b"listkeys nope=1"})) == Listing()
    assert listing_of(b"getbundle", Args({}, {b"bundlecaps": b"HG20", b"heads": b"not-a-node"})) == Listing()


class _Bundle:
    """An open inline clone bundle as a backend hands it out."""

    def __init__(self, data: bytes) -> None:
        self.size = len(data)
        self._chunks = iter([data[:3], data[3:]])
        self.closed = False

    def __iter__(self) -> _Bundle:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self.closed = True


def test_an_inline_clone_bundle_is_listed_and_sent_only_when_the_backend_has_it() -> None:
    """``peer-bundle-cache://`` entries stay in ``clonebundles_manifest`` only for a bundle the
    backend has (the legacy ``clonebundles`` never lists them); ``get_cached_bundle_inline`` sends
    its length as a uvarint, then its bytes, uncompressed; one it does not have ends an SSH session
    with hg's sentence (a stream answer has no error framing) and is an HTTP out-of-band error."""
    repo = reference_repo()
    repo.clonebundles_manifest = lambda: MANIFEST  # type: ignore[attr-defined]
    data = b"HG20" + bytes(200)
    opened: list[_Bundle] = []

    def open_bundle(path: bytes) -> _Bundle | None:
        if path != b"full.hg":
            return None
        opened.append(_Bundle(data))
        return opened[-1]

    repo.inline_clone_bundle_size = lambda path: len(data) if path == b"full.hg" else None  # type: ignore[attr-defined]
    repo.open_inline_clone_bundle = open_bundle  # type: ignore[attr-defined]
    assert dispatch(repo, b"clonebundles_manifest", Args({}), ctx()) == BytesResponse(
        b"https://cdn.example/full.hg BUNDLESPEC=zstd-v2 REQUIRESNI=true\n"
        b"peer-bundle-cache://full.hg BUNDLESPEC=zstd-v2\n"
        b"https://cdn.example/packed.hg BUNDLESPEC=none-v2%3Bstream%3Dv2%3Bstore-fingerprint%3Dabc\n")
    assert dispatch(repo, b"clonebundles", Args({}), ctx()) == BytesResponse(
        b"https://cdn.example/full.hg BUNDLESPEC=zstd-v2 REQUIRESNI=true\n")

    sent = dispatch(repo, b"get_cached_bundle_inline", Args({b"path": b"full.hg"}), ctx())
    assert isinstance(sent, StreamResponse) and sent.prefer_uncompressed and not sent.compressible_bundle
    assert b"".join(sent.chunks) == b"\xcc\x01" + data  # 204 as a uvarint
    unread = dispatch(repo, b"get_cached_bundle_inline", Args({b"path": b"full.hg"}), ctx())
    assert isinstance(unread, StreamResponse)
    unread.chunks.close()  # type: ignore[attr-defined]
    assert opened[-1].closed, "an answer never sent releases its file"

    missing = dispatch(repo, b"get_cached_bundle_inline", Args({b"path": b"../hgrc"}), ctx())
    assert isinstance(missing, StreamResponse)
    with pytest.raises(HgwireError, match=r"^clonebundle \.\./hgrc does not exist$"):
        next(iter(missing.chunks))
    http = CommandContext(Transport.HTTP, allow_all)
    assert dispatch(repo, b"get_cached_bundle_inline", Args({b"path": b"gone.hg"}), http) == OobError(
        b"clonebundle gone.hg does not exist\n")
    assert listing_of(b"get_cached_bundle_inline", Args({b"path": b"full.hg"})) == Listing(inline_bundle=b"full.hg")


def test_a_batch_whose_answers_add_up_past_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each listing is bounded, but a 7 KB batch of 200 ``listkeys namespace=bookmarks`` of a
    repository of 100,000 bookmarks made a 980 MB answer (2 GB of the server's memory)."""
    from protocols import hg_wire
    from protocols.errors import LimitExceeded

    repo = reference_repo()
    listing = {b"bm%d" % i: b"9208083d387257c95aee3971473b53c399035b46" for i in range(2000)}
    monkeypatch.setattr(repo, "listkeys", lambda namespace: listing, raising=False)
    one = dispatch(repo, b"batch", Args({b"cmds": b"listkeys namespace=bookmarks"}), ctx())
    assert isinstance(one, BytesResponse)
    monkeypatch.setattr(hg_wire, "MAX_BATCH_REPLY", 10 * len(one.data))
    ten = dispatch(repo, b"batch", Args({b"cmds": b";".join([b"listkeys namespace=bookmarks"] * 9)}), ctx())
    assert isinstance(ten, BytesResponse) and ten.data == b";".join([one.data] * 9)
    with pytest.raises(LimitExceeded, match=r"add up to more than \d+ MiB; send its commands in smaller batches"):
        dispatch(repo, b"batch", Args({b"cmds": b";".join([b"listkeys namespace=bookmarks"] * 200)}), ctx())


def test_a_batch_of_more_pushkeys_than_the_bound_is_refused_before_any_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pushkey is a transaction (0.14 s of CPU in a repository of 100,000 bookmarks); hg's client
    sends each in a request of its own, a hostile batch 10,000 of them."""
    from protocols import hg_exchange
    from protocols.errors import LimitExceeded

    ran: list[bytes] = []

    def pushkey(repo: object, namespace: bytes, key: bytes, old: bytes, new: bytes) -> tuple[bool, bytes]:
        ran.append(key)
        return True, b""

    monkeypatch.setattr(hg_exchange, "pushkey_reported", pushkey)

    def batch(count: int) -> bytes:
        return b";".join(b"pushkey namespace=bookmarks,key=k%d,old=,new=" % i for i in range(count)) + b";heads "

    reply = dispatch(reference_repo(), b"batch", Args({b"cmds": batch(100)}), ctx())
    assert isinstance(reply, BytesResponse) and len(ran) == 100
    ran.clear()
    with pytest.raises(LimitExceeded, match=r"at most 100 pushkey commands; send them in several batches"):
        dispatch(reference_repo(), b"batch", Args({b"cmds": batch(5_000)}), ctx())
    assert ran == []


def test_the_capabilities_of_the_same_repository_and_transport_are_encoded_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every poll, pull and push asks for the capabilities first: the string is kept for what it
    depends on (the bundle2 caps, requirements, transport caps, stream clones), and changes with it."""
    from protocols import hg_commands, hg_wire

    hg_commands._capabilities_text.cache_clear()
    encoded: list[bytes] = []
    real = hg_wire.format_capabilities

    def counted(*args: object, **kwargs: object) -> bytes:
        encoded.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return encoded[-1]

    monkeypatch.setattr(hg_wire, "format_capabilities", counted)
    repo = reference_repo()
    first = dispatch(repo, b"capabilities", Args({}), ctx())
    assert dispatch(repo, b"capabilities", Args({}), ctx()) == first
    assert isinstance(first, BytesResponse) and encoded == [first.data]
    repo.stream_clone_allowed = lambda: False  # type: ignore[method-assign]  # (secret changesets, say)
    other = dispatch(repo, b"capabilities", Args({}), ctx())
    assert isinstance(other, BytesResponse) and len(encoded) == 2 and other.data == encoded[1]
    assert not any(cap.startswith(b"streamreqs=") for cap in other.data.split(b" "))
