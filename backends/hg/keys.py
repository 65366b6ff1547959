"""Small text files beside the revlogs: phaseroots, bookmarks, and the hgrc publish flag.

Formats as Mercurial writes them: ``phaseroots`` is ``<phase> <hex>`` lines
(phases.py), ``bookmarks`` is ``<hex> <name>`` lines (bookmarks.py), and a
repository publishes unless ``[phases] publish`` says otherwise.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping

from backends.interfaces import Node

HEX40 = re.compile(rb"[0-9a-fA-F]{40}\Z")


def parse_phaseroots(data: bytes, rev_of: Mapping[bytes, int]) -> dict[int, int]:
    """``<phase> <hex>`` lines -> {rev: phase}; unknown nodes are ignored as Mercurial does."""
    roots: dict[int, int] = {}
    for line in data.splitlines():
        phase, _, hexnode = line.partition(b" ")
        try:
            rev = rev_of[binascii.unhexlify(hexnode.strip())]
            roots[rev] = max(roots.get(rev, 0), int(phase))
        except (KeyError, ValueError, binascii.Error):
            continue
    return roots


def parse_bookmarks(data: bytes) -> dict[bytes, Node]:
    marks: dict[bytes, Node] = {}
    for line in data.splitlines():
        hexnode, _, name = line.partition(b" ")
        if name and HEX40.match(hexnode):
            marks[name] = Node(binascii.unhexlify(hexnode))
    return marks


def format_bookmarks(marks: Mapping[bytes, Node]) -> bytes:
    return b"".join(binascii.hexlify(node) + b" " + name + b"\n" for name, node in sorted(marks.items()))


def parse_publishing(hgrc: bytes) -> bool:
    """``[phases] publish`` from an hgrc; Mercurial's default is publishing."""
    section = b""
    result = True
    for raw in hgrc.splitlines():
        line = raw.strip()
        if line.startswith(b"[") and line.endswith(b"]"):
            section = line[1:-1].strip()
        elif section == b"phases" and b"=" in line and not line.startswith((b"#", b";")):
            key, _, value = line.partition(b"=")
            if key.strip() == b"publish":
                result = value.strip().lower() not in (b"false", b"no", b"0", b"off", b"never")
    return result
