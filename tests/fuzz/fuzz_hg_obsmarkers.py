"""Obsolescence marker streams (``protocols.hg_obsmarkers``): any bytes either decode or raise
``MarkerError``, and what decodes encodes back to markers that decode to the same markers."""

from __future__ import annotations

from protocols import hg_obsmarkers as obs

from .harness import Finding, Target


def run(data: bytes) -> None:
    try:
        version, markers = obs.decode(data)
    except obs.MarkerError:
        return
    for marker in markers:
        if obs.NULL in marker.succs or marker.prec in marker.succs:
            raise Finding("a marker with a null or cyclic successor was taken")
    for target in obs.VERSIONS:
        try:
            encoded = b"".join(obs.encode(markers, target))
        except ValueError:  # metadata version 0 cannot carry (':' in a key)
            continue
        again = obs.decode(encoded)[1]
        if target == version and again != markers:
            raise Finding("markers changed in an encode/decode round trip")


def _v1(meta: bytes = b"\x01\x02u" + b"ab") -> bytes:
    fixed = b"\x00\x00\x00\x00" + b"A\xda\xc4e\xe6\x03m\xfd" + b"\x00\x00" + b"\x00\x00" + b"\x01\x03\x01"
    return fixed + b"\x11" * 20 + b"\x22" * 20 + meta


def seeds() -> list[bytes]:
    one = _v1()
    sized = (len(one)).to_bytes(4, "big") + one[4:]
    v0 = b"\x00" + b"\x01" + b"\x00\x00\x00\x0e" + b"\x00" + b"\x11" * 20 + b"\x22" * 20 + b"date:0 0\x00u:x"
    return [b"\x01" + sized, b"\x01" + sized + sized, v0, b"\x01", b"\x00", b"\x02abc", b"\x01" + sized[:-3]]


TARGET = Target("hg_obsmarkers", run, seeds, max_size=4096)
