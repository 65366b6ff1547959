"""What a kept ``packed-refs`` counts against ``MAX_PACKED_REFS_KEPT`` covers the bytes of its refs'
names.  A unit of it (``PACKED_REF_BYTES``) was a ref whatever its name: a pusher's refs of 4 KB
names, packed by ``git pack-refs`` (hgwire's maintenance runs it), were held at ten times what they
counted, each name twice for an annotated tag (its ref and its peeled value by name), and the
budget that was to bound every repository's to 300 MB let them hold gigabytes."""

from __future__ import annotations

import hashlib

from backends import git as git_backend

HEADER = b"# pack-refs with: peeled fully-peeled sorted \n"


def _file(count: int, name_length: int) -> bytes:
    lines = [HEADER]
    for i in range(count):
        name = b"refs/tags/%06d-" % i
        name += b"x" * (name_length - len(name))
        lines.append(hashlib.sha1(name).hexdigest().encode() + b" " + name + b"\n")
        lines.append(b"^" + hashlib.sha1(name + b"^").hexdigest().encode() + b"\n")
    return b"".join(lines)


def _cost(data: bytes) -> tuple[int, git_backend.PackedRefs]:
    parsed = git_backend._parse_packed_refs(data)
    return git_backend._packed_cost(((0, 0, 0, 0), parsed)), parsed


def test_long_names_count_their_bytes() -> None:
    cost, parsed = _cost(_file(2000, 4000))
    assert len(parsed.refs) == len(parsed.tags) == 2000
    held = sum(map(len, parsed.refs)) + sum(map(len, parsed.tags))  # 16 MB of names
    assert cost * git_backend.PACKED_REF_BYTES >= held


def test_long_names_count_the_same_through_dulwich() -> None:
    data = _file(300, 4000)
    plain = git_backend._plain_packed
    git_backend._plain_packed = lambda data: None
    try:
        through_dulwich = _cost(data)[0]
    finally:
        git_backend._plain_packed = plain
    assert through_dulwich == _cost(data)[0]


def test_short_names_count_a_unit_a_ref_as_before() -> None:
    cost, parsed = _cost(_file(2000, 40))
    assert cost == len(parsed.refs) + len(parsed.peeled) // 2 + len(parsed.tags) // 4 + 1
