"""Store path encoding, with and without dotencode: any tracked path maps to a relative path that stays
inside ``.hg/store``."""

from __future__ import annotations

import os.path

from backends.hg.store import decode_dir, encode_dir, encode_store_path, filelog_path

from .harness import Finding, Target

STORE = b"/srv/r/.hg/store"
WINDOWS_RESERVED = frozenset(b'\\:*?"<>|')


def run(data: bytes) -> None:
    if decode_dir(encode_dir(data)) != data:
        raise Finding(f"decode_dir(encode_dir(x)) != x for {data!r}")
    for ext in (b".i", b".d"):
        for dotencode in (True, False):  # (False: a repository of Mercurial 1.1 to 1.6)
            check_encoded(encode_store_path(filelog_path(data, ext), dotencode))


def check_encoded(encoded: bytes) -> None:
    """An encoded store path is relative, has no ``.``/``..`` segment, no NUL, and joins under the store."""
    segments = encoded.split(b"/")
    if encoded.startswith(b"/") or any(s in (b".", b"..") for s in segments):
        raise Finding(f"encoded path {encoded!r} is absolute or has a dot segment")
    if any(b < 0x20 or b > 0x7E or b in WINDOWS_RESERVED for b in encoded):
        raise Finding(f"encoded path {encoded!r} keeps a byte the encoding must escape")
    joined = os.path.normpath(os.path.join(STORE, encoded))
    if os.path.commonpath([STORE, joined]) != STORE:
        raise Finding(f"encoded path {encoded!r} escapes the store")


def seeds() -> list[bytes]:
    return [b"README", b"src/Foo_bar.py", b"../../etc/passwd", b"a/.hg/b", b"x.i/y.d/z", b"aux.txt",
            b"com1/lpt9.c", b" lead/trail. ", b"\x00\x1f\x7f\xff", b"d/" * 70 + b"long", b"..", b"./a/."]


TARGET = Target("store", run, seeds, max_size=1024)
