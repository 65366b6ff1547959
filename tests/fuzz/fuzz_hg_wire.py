"""hg wire v1 codecs: batch requests and escaping, node lists, between pairs, bundle2 caps blobs."""

from __future__ import annotations

from collections.abc import Callable

from protocols import hg_wire

from .harness import Finding, Target

NODE = b"1f0dee641bb7258c56bd60e93edfa2405381c41e"


def _batch(value: bytes) -> None:
    for name, args in hg_wire.parse_batch(value):
        if not name or any(not isinstance(k, bytes) for k in args):
            raise Finding("parse_batch returned an empty name or a non-bytes key")


def _escape(value: bytes) -> None:
    escaped = hg_wire.escape_batch(value)
    if any(c in escaped for c in b",;="):
        raise Finding("escape_batch left a separator in place")
    if hg_wire.unescape_batch(escaped) != value:
        raise Finding("unescape_batch(escape_batch(x)) != x")


def _caps(value: bytes) -> None:
    caps = hg_wire.decode_bundle2_caps(value)
    if hg_wire.decode_bundle2_caps(hg_wire.encode_bundle2_caps(caps)) != caps:
        raise Finding("bundle2 caps do not round-trip")


def _quote(value: bytes) -> None:
    if hg_wire.url_unquote(hg_wire.url_quote(value)) != value:
        raise Finding("url_unquote(url_quote(x)) != x")


DECODERS: dict[int, Callable[[bytes], object]] = {
    ord("b"): _batch,
    ord("e"): _escape,
    ord("n"): hg_wire.decode_nodes,
    ord("p"): hg_wire.decode_pairs,
    ord("c"): _caps,
    ord("u"): hg_wire.unescape_batch,
    ord("q"): _quote,
}


def run(data: bytes) -> None:
    if not data:
        return
    DECODERS.get(data[0], hg_wire.parse_node)(data[1:])


def seeds() -> list[bytes]:
    return [
        b"bheads ;known nodes=" + NODE + b"+" + NODE,
        b"bknown nodes=:c:o:s:e,other=x;heads ",
        b"e:,;=:c:e",
        b"n" + NODE + b" " + NODE,
        b"p" + NODE + b"-" + NODE,
        b"cHG20\nbookmarks\nchangegroup=01,02,03\nerror=abort,unsupportedcontent",
        b"u:c:o:s:e::c",
        b"q%2F a/b\xff",
    ]


TARGET = Target("hg_wire", run, seeds)
