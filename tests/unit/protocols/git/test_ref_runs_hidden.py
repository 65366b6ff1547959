"""A run's hidden refs given as indexes (``RefRun.hidden``: a mirror's thousands of hidden
``refs/pull/*``, cut out as ranges) answer as the same refs left out by name, and as the answer
written line by line, with any ``ref-prefix``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backends.interfaces import ObjectId
from protocols.git_reflines import RefLines, RefRun
from protocols.git_upload import advertisement
from protocols.git_v2 import LsRefs, UploadPackV2

oids = st.binary(min_size=20, max_size=20).map(lambda raw: ObjectId(raw.hex().encode()))
names = st.builds(lambda kind, rest: b"refs/" + kind + b"/" + rest, st.sampled_from([b"heads", b"pull", b"tags"]),
                  st.binary(min_size=1, max_size=4).filter(lambda n: b"\n" not in n))
prefixes = st.lists(st.sampled_from([b"HEAD", b"refs/", b"refs/heads/", b"refs/pull/", b"refs/tags/", b"refs/p",
                                     b"zz"]), max_size=3).map(tuple)


@settings(max_examples=300, deadline=None)
@given(stored=st.dictionaries(names, oids, max_size=30), loose=st.dictionaries(names, oids, max_size=6),
       picks=st.data(), asked=prefixes, peel=st.booleans())
def test_hidden_indexes_answer_as_the_refs_left_out(stored: dict[bytes, ObjectId], loose: dict[bytes, ObjectId],
                                                    picks: st.DataObject, asked: tuple[bytes, ...],
                                                    peel: bool) -> None:
    tags = {name: picks.draw(oids) for name in stored if picks.draw(st.booleans())}
    shown = {name for name in stored if picks.draw(st.booleans())}
    refs = {name: oid for name, oid in stored.items() if name in shown}
    refs.update(loose)  # a loose ref over a run's (shown or hidden) or between them
    peeled = {name: target for name, target in tags.items() if name in refs and name not in loose}
    lines = RefLines(sorted(stored), stored, tags)
    by_name = frozenset(name for name in stored if name not in shown or name in loose)
    hidden = [i for i, name in enumerate(lines.names) if name not in refs]
    runs = [RefRun(lines, by_name, (*loose, b"HEAD")),
            RefRun(lines, frozenset(name for name in loose if name in stored), (*loose, b"HEAD"), hidden)]
    refs[b"HEAD"] = next(iter(refs.values()), ObjectId(b"1" * 40))
    symrefs = {b"HEAD": b"refs/heads/main"}
    written = advertisement(refs, peeled, symrefs, b"git/x")
    request = LsRefs(symrefs=True, peel=peel, unborn=True, prefixes=asked)
    answers = []
    for run in [*runs, None]:
        if run is not None:
            assert advertisement(refs, peeled, symrefs, b"git/x", run=run) == written
        core = UploadPackV2()
        core.receive_data(b"0014command=ls-refs\n0000")
        core.next_event()
        answers.append(core.ls_refs(request, refs, peeled, symrefs, run))
    assert answers[0] == answers[1] == answers[2]
