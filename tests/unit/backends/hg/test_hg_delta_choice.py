"""Which delta a revlog writer stores for each revision: Mercurial's rule (a delta no larger than the
text, its chain's compressed bytes within twice the text (and 1 KiB), both parents tried, chains up to 1,000
links for texts that are not large), and whatever it stores reads back as the text it was given."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import mpatch
from backends.hg.revlog import (
    CHAIN_SLACK,
    FLAG_GENERALDELTA,
    MAX_CHAIN_LENGTH,
    NULL_REV,
    SHORT_CHAIN_LENGTH,
    Compressor,
    Revlog,
    RevlogCache,
    RevlogWriter,
    chain_limit,
)
from backends.hg.vfs import MemoryVfs
from backends.interfaces import Node


class _Journal:
    def __init__(self) -> None:
        self.encode: Callable[[bytes], bytes] = bytes

    def record_append(self, path: bytes, size: int) -> None:
        pass

    def backup(self, path: bytes, location: bytes = b"") -> None:
        pass


def _writer(engine: str = "zstd", header: int = FLAG_GENERALDELTA | 1, path: bytes = b"data/f.py.i",
            sparse: bool = True) -> RevlogWriter:
    vfs = MemoryVfs()
    return RevlogWriter(RevlogCache(vfs, header).open(path), _Journal(), Compressor(engine), sparse=sparse)


def _node(text: bytes, p1: Node, p2: Node) -> Node:
    return Node(hashlib.sha1(min(p1, p2) + max(p1, p2) + text).digest())


def _add(writer: RevlogWriter, text: bytes, p1: int = NULL_REV, p2: int = NULL_REV,
         delta: tuple[int, bytes] | None = None) -> int:
    n1, n2 = writer.node(p1), writer.node(p2)
    return writer.add(_node(text, n1, n2), n1, n2, len(writer), text, delta)


def _stored(writer: RevlogWriter) -> Revlog:
    writer.flush()
    return RevlogCache(writer.vfs, writer.header).open(writer.index_path)


def _chain(revlog: Revlog, rev: int) -> tuple[int, int]:
    revs, _ = revlog.delta_chain(rev)
    return len(revs), sum(revlog.index.entry(r)[1] for r in revs)


def _span(revlog: Revlog, rev: int) -> int:
    """The bytes from the start of ``rev``'s chain to its end, which hg reads whole in a revlog that
    is not sparse (``hg debugdeltachain``'s ``lindist``)."""
    revs, _ = revlog.delta_chain(rev)
    entry = revlog.index.entry
    return (entry(rev)[0] >> 16) + entry(rev)[1] - (entry(revs[0])[0] >> 16)


def test_an_edit_of_a_small_file_larger_than_half_of_it_is_stored_as_a_delta() -> None:
    # 127 bytes; the edit changes its first and last lines, so the one hunk is most of the text
    first = b"import os\nimport sys\n\ndef main(argv):\n    return run(argv[1:], os.environ)\n\nprint(main(sys.argv))\n"
    first += b"#" * (127 - len(first) - 1) + b"\n"
    second = b"import re\n" + first[10:-4] + b"##\n"
    writer = _writer()
    _add(writer, first)
    rev = _add(writer, second, 0)
    revlog = _stored(writer)
    chunk = revlog.raw_chunk(rev)
    assert revlog.delta_parent(rev) == 0
    assert len(chunk) <= len(second)
    assert revlog.revision(rev, verify=True) == second


def test_a_merge_is_stored_against_the_parent_it_is_closest_to() -> None:
    rng = random.Random(3)
    base = b"".join(b"line %d %d\n" % (i, rng.getrandbits(32)) for i in range(400))
    ours = base.replace(b"line 3 ", b"LINE 3 ")
    theirs = b"".join(b"other %d %d\n" % (i, rng.getrandbits(32)) for i in range(400))
    merged = theirs.replace(b"other 399 ", b"merged 399 ")
    writer = _writer()
    _add(writer, base)
    _add(writer, ours, 0)  # rev 1
    _add(writer, theirs)  # rev 2, unrelated
    rev = _add(writer, merged, 1, 2)
    revlog = _stored(writer)
    assert revlog.delta_parent(rev) == 2
    assert revlog.revision(rev, verify=True) == merged


def _two_line_edits() -> list[bytes]:
    rng = random.Random(9)
    lines = [b"line %d %x\n" % (i, rng.getrandbits(64)) for i in range(200)]
    texts = [b"".join(lines)]
    for n in range(2):  # the first and the last line: one hunk of ours spans the whole text
        lines[0], lines[-1] = b"first %d\n" % n, b"last %d\n" % n
        texts.append(b"".join(lines))
    return texts


def test_a_files_delta_as_the_client_sent_it_is_kept_against_its_own_base() -> None:
    texts = _two_line_edits()
    writer = _writer()
    _add(writer, texts[0])
    _add(writer, texts[1], 0)
    sent = mpatch.line_diff(texts[0], texts[2])  # two small hunks, against rev 0 (hg's snapshot)
    rev = _add(writer, texts[2], 1, delta=(0, sent))
    revlog = _stored(writer)
    assert revlog.delta_parent(rev) == 0
    assert revlog.stored_delta(rev)[1] == sent
    assert revlog.revision(rev, verify=True) == texts[2]


def test_a_manifests_delta_is_against_a_parent_whatever_the_client_sent() -> None:
    texts = _two_line_edits()
    writer = _writer(path=b"00manifest.i")
    _add(writer, texts[0])
    _add(writer, texts[1], 0)
    rev = _add(writer, texts[2], 1, delta=(0, mpatch.line_diff(texts[0], texts[2])))
    revlog = _stored(writer)
    assert revlog.delta_parent(rev) in (1, NULL_REV)
    assert revlog.revision(rev, verify=True) == texts[2]


def test_a_delta_far_from_its_base_is_stored_whole_in_a_revlog_that_is_not_sparse() -> None:
    """A long-lived branch's next revision, its parent behind another branch's revisions: a delta
    on it in a generaldelta revlog without ``sparserevlog`` made hg read the whole span between
    (24 times the text in an hg push's case); hg stores such a revision whole past 4 times."""
    rng = random.Random(11)
    lines = [b"line %d %x\n" % (i, rng.getrandbits(64)) for i in range(120)]
    base = b"".join(lines)
    edited = base.replace(b"line 7 ", b"LINE 7 ")
    for sparse in (True, False):
        writer = _writer(sparse=sparse)
        _add(writer, base)
        previous = 0
        for _ in range(8):  # the other branch: texts unlike each other
            previous = _add(writer, rng.randbytes(len(base) // 2).hex().encode(), previous)
        rev = _add(writer, edited, 0)
        _add(writer, edited.replace(b"line 9 ", b"LINE 9 "), rev)
        revlog = _stored(writer)
        assert revlog.delta_parent(rev) == (0 if sparse else NULL_REV)
        assert revlog.delta_parent(rev + 1) == rev  # (near its base: a delta as before)
        assert revlog.revision(rev, verify=True) == edited
        if not sparse:
            assert all(_span(revlog, r) <= 4 * revlog.raw_size(r) for r in range(len(revlog)))


def test_small_edits_of_a_file_make_chains_longer_than_200_links() -> None:
    rng = random.Random(5)
    lines = [b"%d %x\n" % (i, rng.getrandbits(64)) for i in range(300)]
    writer = _writer()
    rev = _add(writer, b"".join(lines))
    for _ in range(SHORT_CHAIN_LENGTH + 50):
        lines[rng.randrange(len(lines))] = b"%x\n" % rng.getrandbits(64)
        rev = _add(writer, b"".join(lines), rev)
    revlog = _stored(writer)
    assert _chain(revlog, rev)[0] == SHORT_CHAIN_LENGTH + 51
    assert revlog.revision(rev, verify=True) == b"".join(lines)


def test_the_chain_limit_falls_to_200_links_for_large_texts() -> None:
    assert chain_limit(10_000) == MAX_CHAIN_LENGTH
    assert chain_limit(256 << 10) == MAX_CHAIN_LENGTH
    assert chain_limit(512 << 10) == 512
    assert chain_limit(55 << 20) == SHORT_CHAIN_LENGTH


_edit = st.tuples(st.integers(0, 10_000), st.integers(0, 8), st.binary(max_size=40))
_step = st.tuples(
    st.lists(_edit, min_size=0, max_size=4),
    st.integers(0, 10_000),  # which earlier revision is p1 (modulo)
    st.booleans(),  # a merge with another earlier revision
    st.integers(0, 10_000),
)


@settings(max_examples=60, deadline=None)
@given(seed_text=st.binary(max_size=600), steps=st.lists(_step, min_size=1, max_size=40),
       engine=st.sampled_from(["zstd", "zlib", "none"]), generaldelta=st.booleans(), sparse=st.booleans())
def test_random_edit_histories_read_back_as_written_within_mercurials_bounds(
        seed_text: bytes, steps: list[tuple[list[tuple[int, int, bytes]], int, bool, int]], engine: str,
        generaldelta: bool, sparse: bool) -> None:
    writer = _writer(engine, (FLAG_GENERALDELTA if generaldelta else 0) | 1, sparse=sparse)
    texts = [seed_text]
    _add(writer, seed_text)
    for edits, p1_pick, merge, p2_pick in steps:
        p1 = p1_pick % len(texts)
        p2 = p2_pick % len(texts) if merge else NULL_REV
        text = texts[p1]
        for at, cut, data in edits:
            at = at % (len(text) + 1)
            text = text[:at] + data + text[at + cut:]
        if p2 == p1:
            p2 = NULL_REV
        _add(writer, text, p1, p2)
        texts.append(text)
    revlog = _stored(writer)
    for rev, text in enumerate(texts):
        assert revlog.revision(rev, verify=True) == text
        base = revlog.delta_parent(rev)
        if base == NULL_REV:
            continue
        assert text  # an empty text is stored whole
        assert base in ((revlog.parent_revs(rev)) if generaldelta else (rev - 1,))
        assert len(revlog.raw_chunk(rev)) <= len(text)
        length, size = _chain(revlog, rev)
        assert size <= 2 * len(text) + CHAIN_SLACK
        assert length <= chain_limit(len(text))
        if not sparse:
            assert _span(revlog, rev) <= 4 * len(text)
        assert mpatch.apply(revlog.revision(base), revlog.stored_delta(rev)[1]) == text
