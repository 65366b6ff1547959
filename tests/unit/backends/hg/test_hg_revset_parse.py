"""The revset reader of hgweb's search (``backends.hg.revset``): tokens, trees, and the choice
between a revset and a keyword search, as transcripts (text in, tree out).

The trees are the ones ``hg debugrevspec -p parsed`` prints for the same text (written out by
hand here); the answers of whole searches are compared with ``hg serve`` in
``tests/integration/test_hg_web_revset.py``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.hg import revset
from backends.hg.revset import RevsetError, depth, functions_used, parse, tokenize

TREES = [
    (b"1::5", (b"dagrange", (b"symbol", b"1"), (b"symbol", b"5"))),
    (b"::tip", (b"dagrangepre", (b"symbol", b"tip"))),
    (b"tip::", (b"dagrangepost", (b"symbol", b"tip"))),
    (b"a..b", (b"dagrange", (b"symbol", b"a"), (b"symbol", b"b"))),
    (b"2:", (b"rangepost", (b"symbol", b"2"))),
    (b":", (b"rangeall", None)),
    (b"1 + 2 | 3 or 4", (b"or", (b"list", (b"symbol", b"1"), (b"symbol", b"2"), (b"symbol", b"3"),
                                  (b"symbol", b"4")))),
    (b"a and not b", (b"and", (b"symbol", b"a"), (b"not", (b"symbol", b"b")))),
    (b"a - b", (b"minus", (b"symbol", b"a"), (b"symbol", b"b"))),
    (b"-1", (b"negate", (b"symbol", b"1"))),
    (b"x^2", (b"parent", (b"symbol", b"x"), (b"symbol", b"2"))),
    (b"x^", (b"parentpost", (b"symbol", b"x"))),
    (b"x^::y", (b"dagrange", (b"parentpost", (b"symbol", b"x")), (b"symbol", b"y"))),
    (b"x^:", (b"rangepost", (b"parentpost", (b"symbol", b"x")))),
    (b"x~-2", (b"ancestor", (b"symbol", b"x"), (b"negate", (b"symbol", b"2")))),
    (b"x % y", (b"only", (b"symbol", b"x"), (b"symbol", b"y"))),
    (b"x%", (b"onlypost", (b"symbol", b"x"))),
    (b"sort(all(), '-date')", (b"func", (b"symbol", b"sort"), (b"list", (b"func", (b"symbol", b"all"), None),
                                                                (b"string", b"-date")))),
    (b"ancestors(tip, depth=2)", (b"func", (b"symbol", b"ancestors"), (b"list", (b"symbol", b"tip"), (
        b"keyvalue", (b"symbol", b"depth"), (b"symbol", b"2"))))),
    (b"(a or b) and c", (b"and", (b"group", (b"or", (b"list", (b"symbol", b"a"), (b"symbol", b"b")))),
                         (b"symbol", b"c"))),
    (b"a ## 'b'", (b"_concat", (b"symbol", b"a"), (b"string", b"b"))),
    (b"x#generations[1]", (b"relsubscript", (b"symbol", b"x"), (b"symbol", b"generations"), (b"symbol", b"1"))),
    (b"foo-bar", (b"minus", (b"symbol", b"foo"), (b"symbol", b"bar"))),
    (b"r'a\\n' + 'a\\n'", (b"or", (b"list", (b"string", b"a\\n"), (b"string", b"a\n")))),
    (b"release-1.0", (b"minus", (b"symbol", b"release"), (b"symbol", b"1.0"))),
    (b"1..", (b"dagrangepost", (b"symbol", b"1"))),
    (b"user(\"\xc3\xa9\")", (b"func", (b"symbol", b"user"), (b"string", b"\xc3\xa9"))),
]


@pytest.mark.parametrize(("text", "tree"), TREES, ids=[text.decode("latin-1") for text, _tree in TREES])
def test_a_revset_reads_as_hg_reads_it(text: bytes, tree: tuple[object, ...]) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize("text", [b"foo bar", b"user(", b"'unterminated", b"a $ b", b")", b"a and", b"a b",
                                  b"sort(,)", b"x[1", b"(" * 200 + b"1" + b")" * 200, b"1&" * 150 + b"1"])
def test_what_does_not_read_is_a_parse_error(text: bytes) -> None:
    with pytest.raises(RevsetError):
        parse(text)


def test_a_long_chain_of_or_is_flat_not_deep() -> None:
    tree = parse(b"+".join([b"1"] * 400))
    assert tree is not None and tree[0] == b"or" and len(tree[1]) == 401


def test_a_hyphenated_name_the_repository_knows_is_one_symbol() -> None:
    assert tokenize(b"foo-bar", lambda name: name == b"foo-bar")[0] == (b"symbol", b"foo-bar", 0)
    assert [t[0] for t in tokenize(b"foo-bar")] == [b"symbol", b"-", b"symbol", b"end"]
    # an old-style range of names that hold revset characters
    assert tokenize(b"v1.0-rc:v2(x)", lambda name: name in (b"v1.0-rc", b"v2(x)")) == [
        (b"symbol", b"v1.0-rc", 0), (b":", None, 7), (b"symbol", b"v2(x)", 8), (b"end", None, 13)]


@pytest.mark.parametrize(("query", "deep"), [(b"merge", False), (b"fix typo", False), (b"user(ann)", True),
                                             (b"1::5", True), (b"'a'", False), (b"tip~1", True)])
def test_hgweb_takes_a_query_as_a_revset_when_its_tree_is_deeper_than_two(query: bytes, deep: bool) -> None:
    try:
        tree = parse(b"reverse(%s)" % query)
    except RevsetError:
        assert not deep
        return
    assert (depth(tree) > 2) is deep


def test_the_functions_used_are_found_at_any_depth() -> None:
    tree = parse(b"reverse(heads(ancestors(tip) and user(x)) - grep(y))")
    assert functions_used(tree) == {b"reverse", b"heads", b"ancestors", b"user", b"grep"}
    assert b"grep" not in revset.SAFE_FUNCTIONS and {b"user", b"heads"} <= revset.SAFE_FUNCTIONS
    assert revset.FUNCTIONS <= revset.SAFE_FUNCTIONS


@pytest.mark.parametrize(("pattern", "paths"), [
    (b"*.txt", {b"a.txt": True, b"deep/a.txt": False, b"a.txtx": False}),
    (b"deep/**", {b"deep/a.txt": True, b"deep/er/b": True, b"deeper/c": False}),
    (b"deep", {b"deep/a.txt": False, b"deep": True, b"deeper": False}),
    (b"", {b"deep/a.txt": True, b"a": True}),
    (b"./deep/../a", {b"a": True, b"deep/a": False}),
    (b"**.py", {b"a.py": True, b"x/y/z.py": True, b"a.pyc": False}),
    (b"a?c", {b"abc": True, b"a/c": False}),
    (b"{a,b}.txt", {b"a.txt": True, b"b.txt": True, b"c.txt": False}),
    (b"[ab]*", {b"apple": True, b"cherry": False}),
    (b"path:deep/er", {b"deep/er/x": True, b"deep/erx": False, b"deep/er": True}),
    (b"filepath:deep/er", {b"deep/er/x": False, b"deep/er": True}),
    (b"nokind:x", {b"nokind:x": True, b"x": False}),
    (b"rootfilesin:deep", {b"deep/a": True, b"deep/er/b": False}),
    (b"relglob:*.c", {b"x/y.c": True, b"y.c": True, b"y.h": False}),
])
def test_file_patterns_match_as_hg_matches_a_changeset_s_files(pattern: bytes, paths: dict[bytes, bool]) -> None:
    matcher = revset._file_matcher(pattern)
    assert {path: matcher(path) for path in paths} == paths


@pytest.mark.parametrize("pattern", [b"{*", b"a{b,c", b"glob:x{", b"relglob:{{"])
def test_an_unbalanced_brace_is_an_invalid_pattern(pattern: bytes) -> None:
    with pytest.raises(RevsetError):
        revset._file_matcher(pattern)


def test_other_pattern_kinds_are_not_served() -> None:
    for pattern in (b"listfile:/etc/passwd", b"re:.*", b"set:added()", b"include:x"):
        with pytest.raises(revset.NotServed):
            revset._file_matcher(pattern)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"(", b")", b"::", b"..", b":", b"and", b"or", b"not", b"!", b"-", b"^", b"~",
                                 b"%", b"+", b"|", b"&", b",", b"=", b"#", b"[", b"]", b"##", b"'s'", b"r'\\'",
                                 b"x", b"1", b"tip", b"f(", b"all()", b" ", b"'", b"\xc3\xa9", b"a-b"]),
                max_size=30))
def test_any_text_reads_or_is_a_parse_error(pieces: list[bytes]) -> None:
    text = b"".join(pieces)
    try:
        tree = parse(b"reverse(%s)" % text)
    except RevsetError:
        return
    assert depth(tree) >= 2
    assert isinstance(functions_used(tree), set)


@pytest.mark.parametrize(("spec", "inside", "outside"), [
    (b"2023-11-14 22:20 UTC", [1_700_000_400, 1_700_000_459], [1_700_000_399, 1_700_000_460]),
    (b"<2023-11-14 22:20 +0100", [1_700_000_400 - 3600 + 59], [1_700_000_400 - 3600 + 60]),
    (b">2023-11-14T22:20:00Z", [1_700_000_400], [1_700_000_399]),
    (b"2023-11-14 22:20 UTC to 2023-11-14 22:21 UTC", [1_700_000_400, 1_700_000_519], [1_700_000_520]),
    (b"1700000400 0", [1_700_000_400], [1_700_000_401]),
    (b"-1", [1_700_000_000 - 86_400], [1_700_000_000 - 86_401]),
])
def test_date_specifications_name_the_periods_hg_names(spec: bytes, inside: list[int], outside: list[int]) -> None:
    matches = revset.date_matcher(spec, now=1_700_000_000)
    assert all(matches(when) for when in inside) and not any(matches(when) for when in outside)


@pytest.mark.parametrize("spec", [b"", b"  ", b"<", b">", b"-x", b"--1", b"nonsense", b"2023-13-45",
                                  b"1 2 3", b"a to b to c", b"caf\xe9", b"99999999999 0", b"0 99999"])
def test_what_is_no_date_is_a_parse_error(spec: bytes) -> None:
    with pytest.raises(RevsetError):
        revset.date_matcher(spec, now=1_700_000_000)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"\\", b"x", b"4", b"1", b"7", b"8", b"a", b"n", b"'", b'"', b".", b"\n", b"f",
                                 b"G", b"0", b"\xff", b"z"]), max_size=12).map(b"".join))
def test_string_escapes_read_as_python_s_string_escape(text: bytes) -> None:
    """hg reads a quoted string's escapes with Python's ``string-escape``; hgwire's own reading
    gives the same bytes, or refuses where it refuses, without its warnings."""
    import codecs
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected: bytes | None = codecs.escape_decode(text)[0]
        except ValueError:
            expected = None
    if expected is None:
        with pytest.raises(RevsetError):
            revset._unescape(text)
    else:
        assert revset._unescape(text) == expected


def test_a_regular_expression_s_escapes_pass_without_a_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (b"string", b"a\\.b\n", 6) in tokenize(b"grep('a\\.b\\n')")
    with pytest.raises(RevsetError, match=r"invalid \\x escape at position 0"):
        tokenize(b"'\\x4'")
