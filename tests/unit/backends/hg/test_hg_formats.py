"""Text formats: changesets, manifests, filelog metadata, requirements, phaseroots, hgrc, revlog chunks."""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from backends.hg import requirements as reqs
from backends.hg.changelog import (
    Changeset,
    FileRevision,
    format_changeset,
    format_filelog_text,
    format_manifest,
    manifest_entries,
    manifest_lookup,
    parse_changeset,
    parse_filelog_text,
    parse_manifest,
)
from backends.hg.keys import (
    absolute_includes,
    config_section,
    parse_bookmarks,
    parse_phaseroots,
    parse_publishing,
)
from backends.hg.revlog import (
    FLAG_GENERALDELTA,
    FLAG_INLINE,
    INDEX_ENTRY,
    Compressor,
    decompress,
    parse_index,
)
from backends.interfaces import Node
from protocols.errors import StorageError, UnsupportedFeature

N1 = Node(bytes(range(20)))


def test_changeset_round_trip_with_extra_escaping() -> None:
    cs = Changeset(N1, b"Ann <a@b>", 1700000000.0, -3600, {b"branch": b"x\ny", b"close": b"1", b"k": b"a\0b\\c"},
                   (b"a", b"dir/b"), b"multi\nline")
    text = format_changeset(cs)
    assert parse_changeset(text) == cs
    assert parse_changeset(text).branch == b"x\ny" and parse_changeset(text).closes_branch


def test_changeset_defaults() -> None:
    text = b"%s\nu\n0 0\n\ndesc" % N1.hex().encode()
    cs = parse_changeset(text)
    assert (cs.branch, cs.closes_branch, cs.files) == (b"default", False, ())
    assert format_changeset(cs) == text


def test_manifest_and_lookup() -> None:
    entries = {b"a": (N1, b""), b"b/x": (N1, b"x"), b"l": (N1, b"l")}
    text = format_manifest(entries)
    assert parse_manifest(text) == entries
    assert manifest_lookup(text, b"a") == manifest_lookup(text, b"l") == N1
    assert manifest_lookup(text, b"b") is None


def test_manifest_entries_are_tuples_in_stored_order() -> None:
    """The pages' parse (``manifest_entries``: a tuple per line, the lines as stored, an empty one
    skipped) and its refusals of a damaged line, as the parse that made an object per line had."""
    text = format_manifest({b"b/x": (N1, b"x"), b"a": (N1, b""), b"l": (N1, b"l")})
    assert manifest_entries(text + b"\n") == [(b"a", N1, b""), (b"b/x", N1, b"x"), (b"l", N1, b"l")]
    for damaged, reason in ((b"a" + N1.hex().encode(), "line"), (b"a\0" + N1.hex()[:39].encode(), "line"),
                            (b"a\0" + b"g" * 40, "node")):
        with pytest.raises(StorageError, match=f"corrupt manifest {reason}"):
            manifest_entries(text + damaged + b"\n")


_PATHS = st.binary(min_size=1, max_size=6).filter(lambda p: b"\n" not in p and b"\0" not in p)


@given(st.dictionaries(_PATHS, st.sampled_from([b"", b"x", b"l"]), max_size=40), st.lists(_PATHS, max_size=10))
def test_manifest_lookup_finds_what_a_parse_finds(files: dict[bytes, bytes], others: list[bytes]) -> None:
    """The binary search over a manifest's sorted lines answers as the whole parse does, for the
    paths it lists and for others (prefixes of listed paths, paths between them, before and after)."""
    entries = {path: (Node(bytes([len(path)]) * 20), flags) for path, flags in files.items()}
    text = format_manifest(entries)
    parsed = parse_manifest(text)
    for path in [*files, *others, *(p[:-1] for p in files), *(p + b"!" for p in files)]:
        expected = parsed.get(path)
        assert manifest_lookup(text, path) == (expected[0] if expected else None)


@given(st.binary(max_size=50), st.booleans())
def test_filelog_metadata_round_trip(data: bytes, copied: bool) -> None:
    meta = {b"copy": b"src", b"copyrev": N1.hex().encode()} if copied else {}
    parsed = parse_filelog_text(format_filelog_text(FileRevision(data, meta)))
    assert parsed.data == data and dict(parsed.meta) == meta
    if copied:
        assert parsed.copy_source == (b"src", N1)


@pytest.mark.parametrize("engine", ["zstd", "zlib"])
@given(data=st.binary(max_size=300))
def test_compression_round_trip(engine: str, data: bytes) -> None:
    assert decompress(Compressor(engine).compress(data)) == data


def test_chunk_headers() -> None:
    assert decompress(b"") == b""
    assert decompress(b"\0raw") == b"\0raw"
    assert decompress(b"uplain") == b"plain"
    assert decompress(zlib.compress(b"z" * 100)) == b"z" * 100
    assert decompress(zstandard.ZstdCompressor().compress(b"s" * 100)) == b"s" * 100
    with pytest.raises(StorageError):
        decompress(b"?what")
    with pytest.raises(StorageError):
        decompress(b"x\x01broken")


@pytest.mark.parametrize("feature", ["treemanifest", "revlogv2", "changelogv2", "narrowhg", "shared"])
def test_unknown_requirements_are_refused(feature: str) -> None:
    with pytest.raises(UnsupportedFeature, match=f"unsupported repository feature: {feature}"):
        reqs.check(set(reqs.STORE_DEFAULT) | {feature})
    reqs.check(set(reqs.STORE_DEFAULT) | set(reqs.WORKING_COPY_DEFAULT))
    reqs.check(set(reqs.STORE_DEFAULT) | {"internal-phase-2", "exp-archived-phase"})  # served: hidden as secret


def test_keys_files() -> None:
    rev_of: dict[bytes, int] = {N1: 3}
    assert parse_phaseroots(b"1 %s\n2 %s\n" % (N1.hex().encode(), b"f" * 40), rev_of) == {3: 1}
    assert parse_bookmarks(b"%s name with spaces\nbad line\n" % N1.hex().encode()) == {b"name with spaces": N1}
    assert parse_publishing(b"")
    assert not parse_publishing(b"[ui]\nx=1\n[phases]\npublish = False\n")
    assert parse_publishing(b"[phases]\npublish = True\n")


@pytest.mark.parametrize(("hgrc", "publishing"), [
    (b"[phases] ; a comment after the header\npublish = False\n", False),
    (b"[phases]\npublish = False\n%unset publish\n", True),
    (b"[phases]\n# publish = False\n; publish = False\npublish=no\n", False),
    (b"[phases]\npublish = False\n[phases]\npublish = always\n", True),
    (b"[ui]\npublish = False\n", True),
    (b"%include pub.rc\n", False),  # pub.rc: [phases] publish = False
    (b"[phases]\npublish = False\n%include missing.rc\n", False),  # a missing file is skipped, as by hg
    (b"[phases]\n%include bare.rc\n", True),  # an included file starts outside any section
    (b"[phases]\npublish = False\n%include unset.rc\n", True),
])
def test_publishing_reads_the_hgrc_as_mercurial_does(hgrc: bytes, publishing: bool) -> None:
    files = {b"pub.rc": b"[phases]\npublish = False\n", b"bare.rc": b"publish = False\n",
             b"unset.rc": b"[phases]\n%unset publish\n"}
    assert parse_publishing(hgrc, files.get) is publishing


@pytest.mark.parametrize("value", [b"nope", b"False # a comment is part of the value", b"False\n  continued"])
def test_a_publish_value_hg_would_refuse_is_refused(value: bytes) -> None:
    with pytest.raises(StorageError, match="phases.publish is not a boolean"):
        parse_publishing(b"[phases]\npublish = " + value + b"\n")


def test_an_append_in_progress_is_not_yet_visible() -> None:
    header = FLAG_INLINE | FLAG_GENERALDELTA | 1
    first = INDEX_ENTRY.pack(header << 32, 3, 3, 0, 0, -1, -1, b"\x01" * 20) + b"u12"
    second = INDEX_ENTRY.pack(67 << 16, 3, 3, 1, 1, 0, -1, b"\x02" * 20) + b"u34"
    whole = first + second
    for cut in (len(first), len(first) + 10, len(whole) - 1):
        assert len(parse_index(whole[:cut], None, header).entries) == 1
    assert len(parse_index(whole, None, header).entries) == 2
    split = INDEX_ENTRY.pack(1 << 32 | 1, 3, 3, 0, 0, -1, -1, b"\x01" * 20)
    assert len(parse_index(split + split[:30], None, 1).entries) == 1


def test_zstd_chunks_decode_with_or_without_their_content_size_and_corruption_is_a_storage_error() -> None:
    text = b"line of a manifest\n" * 200
    with_size = zstandard.ZstdCompressor(level=3).compress(text)
    without_size = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(text)
    assert with_size != without_size
    for _ in range(3):  # the thread's context is reused between chunks
        assert decompress(with_size) == text
        assert decompress(without_size) == text
    with pytest.raises(StorageError, match="corrupt revlog chunk"):
        decompress(with_size[:-8] + b"\xff" * 8)
    with pytest.raises(StorageError, match="corrupt revlog chunk"):
        decompress(with_size[:12])
    assert decompress(with_size) == text, "a failed chunk leaves the context usable"


def test_zstd_chunks_decode_in_many_threads_at_once() -> None:
    texts = [(b"%d " % i) * (100 + i) for i in range(200)]
    chunks = [zstandard.ZstdCompressor(level=3).compress(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            assert list(pool.map(decompress, chunks)) == texts


def test_a_zstd_chunk_without_its_content_size_must_still_be_one_whole_frame() -> None:
    chunk = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(b"abc\n" * 500)
    with pytest.raises(StorageError, match="cut short"):
        decompress(chunk[:-4])


def test_config_section_is_read_in_mercurials_order() -> None:
    """A name set again moves to the end (Mercurial's sortdict), %unset removes it, includes count."""
    text = (b"[hooks]\nchangegroup.a = one\nincoming.b = two\n%include more.rc\n[other]\nx = 1\n"
            b"[hooks]\nchangegroup.a = three\n  continued\n%unset incoming.b\n")
    included = {b"more.rc": b"[hooks]\nprechangegroup.c = four\n"}
    assert config_section(text, b"hooks", included.get) == [
        (b"prechangegroup.c", b"four"), (b"changegroup.a", b"three\ncontinued")]
    assert config_section(text, b"missing", included.get) == []


def test_relative_includes_of_an_absolute_file_are_against_its_directory() -> None:
    text = b"[a]\nx = 1\n%include more.rc\n%include /etc/abs.rc\n  %include not-a-directive\n%include ~/home.rc"
    out = absolute_includes(text, b"/srv/conf")
    assert b"%include /srv/conf/more.rc\n" in out and b"%include /etc/abs.rc\n" in out
    assert b"  %include not-a-directive" in out and b"%include /srv/conf/" not in out.split(b"\n")[-1]
