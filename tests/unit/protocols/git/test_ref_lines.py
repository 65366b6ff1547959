"""The ref advertisements (v0's and v2's ls-refs) format each line in one step: they must equal
their definition, one ``pktline.encode`` per line (HEAD first, names sorted, peeled tags after
their ref in v0, attributes in v2), for any refs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.interfaces import ObjectId
from protocols import git_caps, pktline
from protocols.git_upload import advertisement
from protocols.git_v2 import LsRefs, UploadPackV2

oids = st.binary(min_size=20, max_size=20).map(lambda raw: ObjectId(raw.hex().encode()))
names = st.one_of(st.just(b"HEAD"), st.builds(lambda kind, rest: b"refs/" + kind + b"/" + rest,
                                              st.sampled_from([b"heads", b"tags", b"pull", b"x"]),
                                              st.binary(min_size=1, max_size=30).filter(lambda n: b"\n" not in n)))
ref_sets = st.dictionaries(names, oids, max_size=20)


def _order(refs: dict[bytes, ObjectId]) -> list[bytes]:
    return ([b"HEAD"] if b"HEAD" in refs else []) + sorted(n for n in refs if n != b"HEAD")


def _v0_definition(refs: dict[bytes, ObjectId], peeled: dict[bytes, ObjectId], caps: bytes) -> bytes:
    lines = []
    for name in _order(refs):
        lines.append(refs[name] + b" " + name)
        if name in peeled:
            lines.append(peeled[name] + b" " + name + b"^{}")
    if not lines:
        return pktline.FLUSH
    lines[0] += b"\0" + caps
    return b"".join(pktline.encode(line + b"\n") for line in lines) + pktline.FLUSH


@settings(max_examples=300, deadline=None)
@given(ref_sets, st.data())
def test_the_v0_advertisement_is_its_definition(refs: dict[bytes, ObjectId], data: st.DataObject) -> None:
    peeled = {name: data.draw(oids) for name in refs if data.draw(st.booleans())}
    symrefs = {b"HEAD": b"refs/heads/main"}
    caps = git_caps.format_caps([f for f in git_caps.UPLOAD_PACK_V0 if f != git_caps.FILTER],
                                [(git_caps.SYMREF, b"HEAD:refs/heads/main")] if b"HEAD" in refs else [])
    caps += b" filter object-format=sha1 agent=a"  # symref= before filter, as git 2.39 orders them
    assert advertisement(refs, peeled, symrefs, b"a") == _v0_definition(refs, peeled, caps)


@settings(max_examples=300, deadline=None)
@given(ref_sets, st.data())
def test_ls_refs_is_its_definition(refs: dict[bytes, ObjectId], data: st.DataObject) -> None:
    peeled = {name: data.draw(oids) for name in refs if data.draw(st.booleans())}
    symrefs = {name: b"refs/heads/" + name[-5:] for name in refs if data.draw(st.booleans())}
    prefixes = tuple(data.draw(st.lists(st.sampled_from([b"HEAD", b"refs/heads/", b"refs/tags/", b"refs/", b""]),
                                        max_size=3)))
    request = LsRefs(data.draw(st.booleans()), data.draw(st.booleans()), False, prefixes)
    lines = []
    for name in _order(refs):
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        line = refs[name] + b" " + name
        if request.symrefs and name in symrefs:
            line += b" symref-target:" + symrefs[name]
        if request.peel and name in peeled:
            line += b" peeled:" + peeled[name]
        lines.append(line)
    core = UploadPackV2()
    core.receive_data(b"0014command=ls-refs\n0000")
    core.next_event()
    assert core.ls_refs(request, refs, peeled, symrefs) == b"".join(
        pktline.encode(line + b"\n") for line in lines) + pktline.FLUSH


@pytest.mark.parametrize("room", [0, 3, 4])
def test_a_name_at_the_line_limit_is_encoded_or_refused_as_before(room: int) -> None:
    oid = ObjectId(b"a" * 40)
    name = b"refs/heads/" + b"n" * (pktline.MAX_PAYLOAD - 42 - len(b"refs/heads/") - room)
    line = oid + b" " + name + b"\n"
    assert len(line) == pktline.MAX_PAYLOAD - room
    for peeled in ({}, {name: oid}):
        fits = not peeled or room >= 3
        refs = {b"refs/heads/a": oid, name: oid}
        if fits:
            assert advertisement(refs, peeled, {}, b"a").endswith(
                pktline.encode(line) + (pktline.encode(oid + b" " + name + b"^{}\n") if peeled else b"") + pktline.FLUSH)
        else:
            with pytest.raises(ValueError):
                advertisement(refs, peeled, {}, b"a")
    too_long = {b"refs/heads/a": oid, name + b"x" * (room + 1): oid}
    with pytest.raises(ValueError):
        advertisement(too_long, {}, {}, b"a")
