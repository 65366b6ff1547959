"""PROXY protocol headers: a header and the bytes after it, a wait, or ProxyHeaderError."""

from __future__ import annotations

from protocols.proxy_header import V1_MAX, V2_SIGNATURE, Endpoint, ProxyHeaderReader, encode_v1, encode_v2

from .harness import Finding, Target


def run(data: bytes) -> None:
    split = data[0] % (len(data) + 1) if data else 0  # fed in two reads, as TCP may deliver it
    reader = ProxyHeaderReader()
    first = reader.feed(data[:split])
    result = first if first is not None else reader.feed(data[split:])
    if first is not None:
        header, rest = first
        rest = rest + data[split:]
    elif result is None:
        if not (data.startswith(V2_SIGNATURE) or V2_SIGNATURE.startswith(data)) and len(data) >= V1_MAX:
            raise Finding(f"the reader waits after {len(data)} bytes that cannot begin a v2 header")
        return
    else:
        header, rest = result
    if not data.endswith(rest):
        raise Finding("the bytes after the header are not the input's own")
    if len(data) - len(rest) > 16 + 65535:
        raise Finding("a header longer than its length field can say was read")
    for endpoint in (header.source, header.destination):
        if endpoint is not None and not 0 <= endpoint.port <= 65535:
            raise Finding(f"port {endpoint.port} out of range")


def seeds() -> list[bytes]:
    a, b = Endpoint("203.0.113.7", 56324), Endpoint("192.0.2.1", 443)
    c, d = Endpoint("2001:db8::7", 1), Endpoint("2001:db8::1", 22)
    return [
        encode_v1(a, b) + b"GET / HTTP/1.1\r\n",
        encode_v1(c, d) + b"SSH-2.0-x\r\n",
        encode_v1(None, None),
        encode_v2(a, b) + b"0032git-upload-pack /x\x00",
        encode_v2(c, d, b"\x04\x00\x01x"),
        encode_v2(None, None),
    ]


TARGET = Target("proxy_header", run, seeds)
