"""Store path encoding (``store`` + ``fncache``, with or without ``dotencode``), byte-exact with Mercurial.

A tracked path ``data/<file>.i`` is stored under an encoded name so that any
byte string maps to a name every filesystem accepts (helptext/internals/
requirements.txt "fncache", "dotencode"; the rules are those of Mercurial's
``store.py``):

1. directory escaping: ``.hg/`` ``.i/`` ``.d/`` gain a ``.hg`` suffix;
2. ``A-Z`` -> ``_a``, ``_`` -> ``__``, control bytes, bytes >= 126 and
   ``\\:*?"<>|`` -> ``~xx``;
3. Windows reserved names (aux, con, prn, nul, com1-9, lpt1-9) get their third
   byte escaped, a trailing ``.``/space and (dotencode) a leading one too (a
   repository of Mercurial 1.1 to 1.6 has fncache without dotencode: a name
   starting with a dot or space is kept as it is, hg's "hybrid" encoding);
4. if the result exceeds 120 bytes, a hashed ``dh/`` form is used instead.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable

MAX_STORE_PATH = 120
DIR_PREFIX_LEN = 8
MAX_SHORT_DIRS_LEN = 8 * (DIR_PREFIX_LEN + 1) - 4
_WIN_RESERVED = frozenset(b'\\:*?"<>|')
_RESERVED3 = (b"aux", b"con", b"prn", b"nul")
_RESERVED4 = (b"com", b"lpt")


def _is_escaped(byte: int) -> bool:
    return byte < 32 or byte >= 126 or byte in _WIN_RESERVED


def _build_tables() -> tuple[list[bytes], list[bytes]]:
    """Per-byte tables for the full (case-folding) and lower-case encodings."""
    full: list[bytes] = []
    lower: list[bytes] = []
    for b in range(256):
        if _is_escaped(b):
            full.append(b"~%02x" % b)
            lower.append(b"~%02x" % b)
        elif ord("A") <= b <= ord("Z"):
            full.append(b"_" + bytes([b + 32]))
            lower.append(bytes([b + 32]))
        elif b == ord("_"):
            full.append(b"__")
            lower.append(b"_")
        else:
            full.append(bytes([b]))
            lower.append(bytes([b]))
    return full, lower


_FULL, _LOWER = _build_tables()


def encode_dir(path: bytes) -> bytes:
    """Escape directories that would clash with revlog file names (``foo.i/`` -> ``foo.i.hg/``)."""
    return path.replace(b".hg/", b".hg.hg/").replace(b".i/", b".i.hg/").replace(b".d/", b".d.hg/")


def decode_dir(path: bytes) -> bytes:
    """Invert :func:`encode_dir`."""
    if b".hg/" not in path:
        return path
    return path.replace(b".d.hg/", b".d/").replace(b".i.hg/", b".i/").replace(b".hg.hg/", b".hg/")


def _encode_bytes(path: bytes, table: list[bytes]) -> bytes:
    return b"".join([table[b] for b in path])


def _aux_encode(parts: list[bytes], dotencode: bool = True) -> list[bytes]:
    """Escape Windows reserved names and trailing dots and spaces, and (``dotencode``) leading ones."""
    out = []
    for part in parts:
        if part:
            if dotencode and part[0] in b". ":
                part = b"~%02x" % part[0] + part[1:]
            else:
                stem = part.find(b".")
                stem = len(part) if stem < 0 else stem
                if (stem == 3 and part[:3] in _RESERVED3) or (
                    stem == 4 and b"1"[0] <= part[3] <= b"9"[0] and part[:3] in _RESERVED4
                ):
                    part = part[:2] + b"~%02x" % part[2] + part[3:]
            if part[-1] in b". ":
                part = part[:-1] + b"~%02x" % part[-1]
        out.append(part)
    return out


def _hash_encode(path: bytes, dotencode: bool = True) -> bytes:
    """The non-reversible ``dh/`` form for paths too long to store as they are."""
    digest = hashlib.sha1(path).hexdigest().encode()
    parts = _aux_encode(_encode_bytes(path[5:], _LOWER).split(b"/"), dotencode)
    basename = parts[-1]
    ext = os.path.splitext(basename)[1]
    short_dirs: list[bytes] = []
    used = 0
    for part in parts[:-1]:
        prefix = part[:DIR_PREFIX_LEN]
        if prefix[-1:] in (b".", b" "):
            prefix = prefix[:-1] + b"_"
        total = len(prefix) if used == 0 else used + 1 + len(prefix)
        if used and total > MAX_SHORT_DIRS_LEN:
            break
        short_dirs.append(prefix)
        used = total
    dirs = b"/".join(short_dirs) + (b"/" if short_dirs else b"")
    result = b"dh/" + dirs + digest + ext
    room = MAX_STORE_PATH - len(result)
    if room > 0:
        result = b"dh/" + dirs + basename[:room] + digest + ext
    return result


ENCODED_DIRS = (b"data/", b"meta/", b"data-s/", b"meta-s/")
"""The store directories whose paths are encoded (those of other store files need no encoding):
the revlogs', and where hg keeps the index of a revlog split inside a transaction
(revlog.py ``_split_index_file``, ``data-s/<file>.i``), whose name hg encodes alike."""


def encode_store_path(path: bytes, dotencode: bool = True) -> bytes:
    """Map a store path such as ``data/Foo.txt.i`` to its on-disk name under ``.hg/store``
    (``dotencode``: as a repository with that requirement names it)."""
    escaped = encode_dir(path)
    if not path.startswith(ENCODED_DIRS):
        return escaped
    if len(path) > MAX_STORE_PATH:  # (encoding never shortens a path)
        return _hash_encode(escaped, dotencode)
    result = b"/".join(_aux_encode(_encode_bytes(escaped, _FULL).split(b"/"), dotencode))
    if len(result) > MAX_STORE_PATH:
        return _hash_encode(escaped, dotencode)
    return result


def store_encoder(dotencode: bool) -> Callable[[bytes], bytes]:
    """The store path encoding of a repository with (or without) the ``dotencode`` requirement."""
    return encode_store_path if dotencode else functools.partial(encode_store_path, dotencode=False)


def filelog_path(file_path: bytes, ext: bytes) -> bytes:
    """The store path (before encoding) of a tracked file's revlog: ``data/<path>.i`` or ``.d``."""
    return b"data/" + file_path + ext
