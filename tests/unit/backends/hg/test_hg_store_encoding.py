"""Store path encoding: Mercurial's documented vectors plus properties.

The comparison with repositories written by real ``hg`` lives in
tests/integration/test_hg_storage_read.py (every fncache entry must map to
the file hg created, including the hashed ``dh/`` form).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from backends.hg.store import decode_dir, encode_dir, encode_store_path

VECTORS = [
    (b"data/nothing/special.txt.i", b"data/nothing/special.txt.i"),
    (b"data/HELLO.i", b"data/_h_e_l_l_o.i"),
    (b"data/hello:world?.i", b"data/hello~3aworld~3f.i"),
    (b"data/the\x07quick\xadshot.i", b"data/the~07quick~adshot.i"),
    (b"data/foo.i/bar.d/bla.hg/hi.i", b"data/foo.i.hg/bar.d.hg/bla.hg.hg/hi.i"),
    (b"data/aux.txt.i", b"data/au~78.txt.i"),
    (b"data/txt.aux.i", b"data/txt.aux.i"),
    (b"data/con/prn/nul.i", b"data/co~6e/pr~6e/nu~6c.i"),
    (b"data/com1/lpt9.x.i", b"data/co~6d1/lp~749.x.i"),
    (b"data/com0/lpt10.i", b"data/com0/lpt10.i"),
    (b"data/.foo/ bar.i", b"data/~2efoo/~20bar.i"),
    (b"data/foo./bar .d", b"data/foo~2e/bar .d"),
    (b"data/under_score.i", b"data/under__score.i"),
    (b"00changelog.i", b"00changelog.i"),
    # Mercurial's test-hybridencode.t, hashed form for long paths
    (
        b"data/" + b"abcdefghijklmnopqrstuvwxyz0123456789" * 5 + b".i",
        None,
    ),
]


@pytest.mark.parametrize(("path", "expected"), VECTORS)
def test_vectors(path: bytes, expected: bytes | None) -> None:
    encoded = encode_store_path(path)
    if expected is None:
        assert encoded.startswith(b"dh/") and encoded.endswith(b".i")
        assert len(encoded) <= 120
    else:
        assert encoded == expected


@pytest.mark.parametrize(("path", "expected"), [
    (b"data/.foo/ bar.i", b"data/.foo/ bar.i"),  # kept: no dotencode
    (b"data/foo./bar .d", b"data/foo~2e/bar .d"),
    (b"data/..i", b"data/..i"),
    (b"data/./x/../y.i", b"data/~2e/x/.~2e/y.i"),  # a dot segment never stays one
    (b"data/.aux/aux.txt.i", b"data/.aux/au~78.txt.i"),
])
def test_vectors_without_dotencode(path: bytes, expected: bytes) -> None:
    assert encode_store_path(path, dotencode=False) == expected


def test_hashed_form_keeps_directory_prefixes() -> None:
    long_dir = b"A-Very-Long-Directory-Name" * 3
    encoded = encode_store_path(b"data/" + long_dir + b"/" + long_dir + b"/file.TXT.i")
    assert encoded.startswith(b"dh/a-very-l/a-very-l/file.txt")
    assert encoded.endswith(b".i")
    assert len(encoded) <= 120


path_segments = st.lists(
    st.binary(min_size=1, max_size=30).filter(lambda s: b"/" not in s), min_size=1, max_size=6
)


@given(path_segments, st.sampled_from([b".i", b".d"]), st.booleans())
@example([b"\0" * 30] * 5 + [b"."], b".i", False)  # hashed, its basename "..i" (hypothesis found it)
def test_encoded_paths_are_portable(segments: list[bytes], ext: bytes, dotencode: bool) -> None:
    path = b"data/" + b"/".join(segments) + ext
    encoded = encode_store_path(path, dotencode)
    if dotencode or segments[-1].strip(b"."):
        assert encoded.endswith(ext)
    # (a basename of dots alone, "..i", has no extension for hg's hashed form, which takes it as
    # os.path.splitext does: hg stores such a file as "dh/…/..i<digest>", and so does hgwire)
    allowed = set((string.ascii_lowercase + string.digits + "~_.-/ !#$%&'()+,;=@[]^`{}").encode())
    assert set(encoded) <= allowed
    assert encoded == encode_store_path(path, dotencode)  # deterministic
    for part in encoded.split(b"/"):
        assert part not in (b"", b".", b"..")  # (without dotencode too: a trailing dot is escaped)
    if not encoded.startswith(b"dh/"):
        assert len(encoded) <= 120
        for part in encoded.split(b"/")[1:]:
            assert not (dotencode and part.startswith((b".", b" ")))
            assert part.split(b".")[0] not in (b"aux", b"con", b"prn", b"nul")


@given(st.lists(st.sampled_from([b"a", b".i", b".d", b".hg", b"/", b"x.i/", b"b.hg/"]), max_size=12))
def test_encode_dir_round_trips(parts: list[bytes]) -> None:
    path = b"".join(parts)
    assert decode_dir(encode_dir(path)) == path


@given(st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=40))
def test_case_folding_is_injective(name: str) -> None:
    raw = name.encode()
    encoded = encode_store_path(b"data/" + raw + b".i")
    if not encoded.startswith(b"dh/"):
        decoded = encoded[5:-2].replace(b"__", b"\0")
        for c in string.ascii_lowercase:
            decoded = decoded.replace(b"_" + c.encode(), c.upper().encode())
        assert decoded.replace(b"\0", b"_") == raw
