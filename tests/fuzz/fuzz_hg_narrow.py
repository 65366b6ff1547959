"""Narrow clones on a small history: any include/exclude lists give a narrow getbundle answer and a
``narrow_widen`` answer that are bundle2 streams whose changegroup holds only the files the patterns
take (the widening's: taken by the new ones and not by the old, no changeset), or one ``error:abort``
part; only a typed refusal of the patterns themselves may escape getbundle's argument parsing."""

from __future__ import annotations

import backends.hg as hgstore
from backends.hg.repository import HgRepo
from backends.interfaces import Section
from protocols import bundle2 as b2
from protocols.changegroup import ChangegroupDecoder, StreamReader
from protocols.errors import HgwireError
from protocols.hg_exchange import getbundle, narrow_widen, parse_getbundle_args
from protocols.hg_narrow import narrow_spec
from protocols.hg_wire import url_quote

from .harness import Finding, Target, hg_scratch

_made: list[HgRepo] = []
CAPS = b"HG20,bundle2=" + url_quote(b"HG20\nchangegroup=02,03")


def _history() -> HgRepo:
    """Three changesets over files at the root and in nested directories, made once per process."""
    if _made:
        return _made[0]
    path, hg = hg_scratch("narrow")
    for n, names in enumerate([("top", "a/x", "a/b/y", "ab/z"), ("a/x", "c/d"), ("a/b/y", "top")]):
        for name in names:
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(f"{n} {name}\n")
        hg("commit", "-q", "-A", "-u", "t", "-d", f"{n} 0", "-m", str(n))
    repo = hgstore.open_repository(str(path), "r")
    assert repo is not None
    _made.append(repo)
    return repo


def _changegroup(answer: bytes, what: str) -> list[tuple[Section, bytes, int]] | None:
    """The groups of the answer's changegroup (section, path, revisions); None for an abort."""
    parts = [(part, part.read_all(1 << 24)) for part in b2.Bundle2Reader(iter([answer])).parts()]
    if any(part.type == b2.PART_ERROR_ABORT for part, _ in parts):
        if len(parts) != 1:
            raise Finding(f"{what}: an abort part beside others")
        return None
    groups = []
    for part, payload in parts:
        if part.type == b2.PART_CHANGEGROUP:
            decoder = ChangegroupDecoder(StreamReader(iter([payload])), part.params[b"version"])
            groups += [(g.section, g.path, len(list(g.revisions))) for g in decoder.groups()]
    return groups


def run(data: bytes) -> None:
    repo = _history()
    fields = (data.split(b"\n") + [b""] * 5)[:5]
    includes, excludes, old_includes, old_excludes, flags = fields
    try:
        request = parse_getbundle_args({b"narrow": b"1", b"includepats": includes, b"excludepats": excludes,
                                        b"bundlecaps": CAPS, b"common": b"0" * 40})
    except HgwireError:
        return
    assert request.narrow is not None
    match = request.narrow.matcher()
    groups = _changegroup(b"".join(getbundle(repo, request)[0]), "getbundle")
    if groups is None:
        raise Finding("a narrow getbundle of valid patterns aborted")
    sent = [path for section, path, _ in groups if section is Section.FILE]
    if not all(match(path) for path in sent) or groups[0] != (Section.CHANGELOG, b"", 3):
        raise Finding(f"getbundle sent {groups} for {request.narrow}")
    heads = b" ".join(node.hex().encode() for node in repo.heads())
    answer = b"".join(narrow_widen(repo, {
        b"oldincludes": old_includes, b"oldexcludes": old_excludes, b"newincludes": includes,
        b"newexcludes": excludes, b"commonheads": heads if not flags.startswith(b"n") else flags[1:],
        b"cgversion": b"03" if not flags.startswith(b"v") else flags[1:], b"known": b"",
        b"ellipses": b"1" if flags == b"e" else b"0"}))
    widened = _changegroup(answer, "narrow_widen")
    if widened is None:
        return
    try:
        was = narrow_spec(old_includes.split(b","), old_excludes.split(b",")).matcher()
    except HgwireError:
        raise Finding("narrow_widen accepted old patterns that do not parse") from None
    if any(section is Section.CHANGELOG and count for section, _, count in widened):
        raise Finding("narrow_widen sent changesets")
    if any(section is Section.FILE and (was(path) or not match(path)) for section, path, _ in widened):
        raise Finding(f"narrow_widen sent {widened}")


def seeds() -> list[bytes]:
    _history()
    return [b"path:a\npath:a/b\n\n\n", b"path:a,rootfilesin:\n\npath:a\npath:a/b\n", b"path:\npath:ab\n\n\ne",
            b"rootfilesin:a\n\npath:c\n\nv01", b"path:a\n\n\n\nn" + b"ff" * 20, b"glob:*\n\n\n\n"]


TARGET = Target("hg_narrow", run, seeds)
