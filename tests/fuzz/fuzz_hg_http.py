"""hg over HTTP: ``?cmd=`` query, ``X-HgArg-N``, ``X-HgArgs-Post`` body prefix, ``X-HgProto-N``, then the reply."""

from __future__ import annotations

from protocols.hg_http import HttpLimits, WireSettings, parse_head, render, with_post_args
from protocols.hg_responses import StreamResponse

from .harness import Finding, Target

LIMITS = HttpLimits()
SETTINGS = WireSettings(post_args=True)


def _split_request(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """``query\\nName: value\\n...\\n\\nbody``: the shape the harness gives an HTTP request."""
    head, _, body = data.partition(b"\n\n")
    query, *lines = head.split(b"\n")
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(b":") for line in lines)]
    return query, headers, body


def run(data: bytes) -> None:
    query, headers, body = _split_request(data)
    content_length = None if data[-1:] == b"?" else len(body)
    head = parse_head(query, headers, content_length, LIMITS)
    args = with_post_args(head, body[: head.post_args_length], LIMITS)
    if not head.command or any(not isinstance(k, bytes) for k in args):
        raise Finding("parse_head returned an empty command or a non-bytes argument name")
    reply = render(StreamResponse(iter([body[:64], b"x" * 100])), head.command, head.proto, SETTINGS)
    if reply.stream is None:
        raise Finding("a stream response rendered without a stream")
    for _ in reply.stream:
        pass


def seeds() -> list[bytes]:
    node = b"1f0dee641bb7258c56bd60e93edfa2405381c41e"
    return [
        b"cmd=capabilities",
        b"cmd=batch\nX-HgArg-1: cmds=heads+%3Bknown+nodes%3D\nX-HgProto-1: 0.1 0.2 comp=zstd,zlib,none,bzip2",
        b"cmd=getbundle\nX-HgArg-1: bundlecaps=HG20&common=" + node + b"\nX-HgArg-2: &heads=" + node
        + b"\nX-HgProto-1: 0.1 0.2 comp=zstd,zlib partial-pull\nVary: X-HgProto-1",
        b"cmd=known\nX-HgArgs-Post: 46\nX-HgProto-1: 0.2 comp=zlib\n\nnodes=" + node + b"more body",
        b"cmd=unbundle&heads=666f726365\n\nHG20\x00\x00\x00\x00",
        b"cmd=lookup&key=tip\nX-HgProto-1: 0.1",
        b"cmd=listkeys\nX-HgArg-1: namespace=bookmarks\nX-HgProto-1: 0.2 comp=none",
    ]


TARGET = Target("hg_http", run, seeds)
