"""Answers spliced from a run of lines encoded once (``git_reflines.RefRun``) are the answers
written line by line, for any refs, any run and any difference between them (refs the run does
not hold, refs of the run left out, refs of the run with other values), any ``ref-prefix``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backends.interfaces import ObjectId
from protocols.git_reflines import RefLines, RefRun
from protocols.git_upload import advertisement
from protocols.git_v2 import LsRefs, UploadPackV2

oids = st.binary(min_size=20, max_size=20).map(lambda raw: ObjectId(raw.hex().encode()))
names = st.builds(lambda kind, rest: b"refs/" + kind + b"/" + rest, st.sampled_from([b"heads", b"tags", b"x"]),
                  st.binary(min_size=1, max_size=6).filter(lambda n: b"\n" not in n))
prefixes = st.lists(st.sampled_from([b"HEAD", b"refs/", b"refs/heads/", b"refs/tags/", b"refs/x/\x00", b"refs/tags/\xff",
                                     b"refs/h", b"", b"zz"]), max_size=3).map(tuple)


@settings(max_examples=300, deadline=None)
@given(refs=st.dictionaries(names, oids, max_size=25), stored=st.dictionaries(names, oids, max_size=25),
       tagged=st.data(), head=st.booleans(), asked=prefixes, peel=st.booleans())
def test_a_spliced_answer_is_the_answer_line_by_line(refs: dict[bytes, ObjectId], stored: dict[bytes, ObjectId],
                                                     tagged: st.DataObject, head: bool, asked: tuple[bytes, ...],
                                                     peel: bool) -> None:
    # the run: "stored" (its peeled values among "tags"); the answer's refs: "refs", each either the
    # run's own (same id and peeled value) or an extra
    tags = {name: tagged.draw(oids) for name in stored if tagged.draw(st.booleans())}
    peeled = {name: tagged.draw(oids) for name in refs if tagged.draw(st.booleans())}
    for name, oid in stored.items():
        if tagged.draw(st.booleans()):  # a ref of the run, as it has it
            refs[name] = oid
            peeled.pop(name, None)
            if name in tags:
                peeled[name] = tags[name]
    same = {name for name in refs if name in stored and refs[name] == stored[name] and peeled.get(name) == tags.get(name)}
    if head:
        refs[b"HEAD"] = next(iter(refs.values()), ObjectId(b"1" * 40))
    symrefs = {b"HEAD": b"refs/heads/main"}
    lines = RefLines(sorted(stored), stored, tags)
    run = RefRun(lines, frozenset(name for name in stored if name not in same),
                 tuple(name for name in refs if name not in same))
    assert (advertisement(refs, peeled, symrefs, b"git/x", run=run)
            == advertisement(refs, peeled, symrefs, b"git/x"))
    request = LsRefs(symrefs=True, peel=peel, unborn=True, prefixes=asked)
    answers = []
    for given_run in (run, None):
        core = UploadPackV2()
        core.receive_data(b"0014command=ls-refs\n0000")
        core.next_event()
        answers.append(core.ls_refs(request, refs, peeled, symrefs, given_run))
    assert answers[0] == answers[1]
