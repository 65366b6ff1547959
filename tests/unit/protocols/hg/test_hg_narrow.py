"""Narrow clones in the sans-IO core: the patterns and what they match (a transcript of hg 7.2.4's
``narrowspec.match`` on the same specs and paths), getbundle's narrow changegroup and
``narrow_widen``'s answer, on the fake repository."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.interfaces import Section
from protocols import bundle2 as b2
from protocols.changegroup import ChangegroupDecoder, StreamReader
from protocols.errors import ProtocolError, UnsupportedFeature
from protocols.hg_commands import COMMANDS, NARROW_CAP, Args, bind_args, capabilities_string
from protocols.hg_exchange import getbundle, narrow_widen, parse_getbundle_args
from protocols.hg_narrow import MAX_PATTERNS, InvalidPattern, NarrowSpec, check_pattern, narrow_spec
from protocols.hg_wire import url_quote

from .helpers import parts_of, reference_repo
from .test_hg_commands import ctx
from .test_hg_exchange import bundle_parts, request

PATHS = [b"top", b"a", b"a/x", b"a/xy", b"ab", b"ab/z", b"a/b", b"a/b/y", b"a/b/c", b"a/b/c/y", b"a/b/cd", b"c/z",
         b"c/d/z", b"x/y"]
EVERY = PATHS

# hg 7.2.4: [p for p in PATHS if narrowspec.match(root, include=I, exclude=E)(p)] (nothing when I is empty)
HG_MATCHES = [
    (([], []), []),
    (([b"path:"], []), EVERY),
    (([b"path:a"], []), [b"a", b"a/x", b"a/xy", b"a/b", b"a/b/y", b"a/b/c", b"a/b/c/y", b"a/b/cd"]),
    (([b"path:a"], [b"path:a/b"]), [b"a", b"a/x", b"a/xy"]),
    (([b"path:a", b"path:a/b/c"], [b"path:a/b"]), [b"a", b"a/x", b"a/xy", b"a/b/c", b"a/b/c/y"]),
    (([b"path:a"], [b"path:a"]), []),
    (([b"path:"], [b"path:"]), []),
    (([b"path:", b"path:a/b"], [b"path:a"]), [b"top", b"ab", b"ab/z", b"a/b", b"a/b/y", b"a/b/c", b"a/b/c/y",
                                              b"a/b/cd", b"c/z", b"c/d/z", b"x/y"]),
    (([b"path:a/b"], [b"path:a"]), [b"a/b", b"a/b/y", b"a/b/c", b"a/b/c/y", b"a/b/cd"]),
    (([b"rootfilesin:"], []), [b"top", b"a", b"ab"]),
    (([b"rootfilesin:a"], []), [b"a/x", b"a/xy", b"a/b"]),
    (([b"path:a", b"rootfilesin:c"], [b"path:a/b"]), [b"a", b"a/x", b"a/xy", b"c/z"]),
    (([b"path:a", b"rootfilesin:c"], [b"path:a/b", b"path:a/b/c"]), [b"a", b"a/x", b"a/xy", b"c/z"]),
    (([b"path:"], [b"rootfilesin:a"]), [b"top", b"a", b"ab", b"ab/z", b"a/b/y", b"a/b/c", b"a/b/c/y", b"a/b/cd",
                                        b"c/z", b"c/d/z", b"x/y"]),
    (([b"path:ab"], []), [b"ab", b"ab/z"]),
    (([b"path:a/x"], []), [b"a/x"]),
    (([b"rootfilesin:a", b"path:a/b/c"], [b"rootfilesin:a"]), [b"a/b/c", b"a/b/c/y"]),
]


@pytest.mark.parametrize(("spec", "expected"), HG_MATCHES)
def test_what_a_spec_matches_is_what_hg_matches(spec: tuple[list[bytes], list[bytes]], expected: list[bytes]) -> None:
    match = NarrowSpec(frozenset(spec[0]), frozenset(spec[1])).matcher()
    assert [path for path in PATHS if match(path)] == expected


def _nearest_rule(includes: set[bytes], excludes: set[bytes], path: bytes) -> bool:
    """The rule of path-only specs said plainly: the longest pattern naming the path or a directory
    above it decides (an exclude where both name it); no pattern, no match."""
    names = [p for p in includes | excludes if p == b"" or path == p or path.startswith(p + b"/")]
    if not includes or not names:
        return False
    nearest = max(names, key=len)
    return nearest not in excludes


_component = st.sampled_from([b"a", b"b", b"c", b"ab"])
_path = st.lists(_component, min_size=1, max_size=4).map(b"/".join)
_pattern = st.one_of(st.just(b""), _path)


@given(st.sets(_pattern, max_size=4), st.sets(_pattern, max_size=4), _path)
def test_path_patterns_follow_the_nearest_rule(includes: set[bytes], excludes: set[bytes], path: bytes) -> None:
    spec = NarrowSpec(frozenset(b"path:" + p for p in includes), frozenset(b"path:" + p for p in excludes))
    assert spec.matcher()(path) == _nearest_rule(includes, excludes, path)


@pytest.mark.parametrize(("pattern", "message"), [
    (b"glob:*.c", "invalid prefix on narrow pattern: glob:*.c"),
    (b"a", "invalid prefix on narrow pattern: a"),
    (b"path:a\nb", "newlines are not allowed in narrowspec paths"),
    (b"path: a", "leading or trailing whitespace is not allowed in narrowspec paths"),
    (b"path:a/../b", '"." and ".." are not allowed in narrowspec paths'),
    (b"rootfilesin:.", '"." and ".." are not allowed in narrowspec paths'),
    (b"path:a//b", "empty path components are not allowed in narrowspec paths"),
    (b"path:" + b"a" * 5000, "narrow pattern longer than 4096 bytes"),
])
def test_patterns_hg_refuses_are_refused_in_its_words(pattern: bytes, message: str) -> None:
    with pytest.raises(InvalidPattern) as caught:
        check_pattern(pattern)
    assert caught.value.message == message


def test_a_trailing_slash_is_dropped_and_lists_are_bounded() -> None:
    assert check_pattern(b"path:a/b/") == b"path:a/b"
    assert check_pattern(b"path:") == b"path:"
    assert narrow_spec([b"", b"path:a", b"path:a/"], []) == NarrowSpec(frozenset({b"path:a"}))
    with pytest.raises(ProtocolError, match="more than"):
        narrow_spec([b"path:a"] * (MAX_PATTERNS + 1), [])


@pytest.mark.parametrize(("includes", "excludes", "empty"), [
    ([], [], True), ([b"path:a"], [b"path:a"], True), ([b"path:a/b"], [b"path:a"], False),
    ([b"rootfilesin:a"], [b"path:"], True), ([b"rootfilesin:a"], [b"rootfilesin:a"], False), ([b"path:a"], [], False),
])
def test_a_spec_that_takes_nothing_gets_no_manifest(includes: list[bytes], excludes: list[bytes], empty: bool) -> None:
    assert NarrowSpec(frozenset(includes), frozenset(excludes)).empty is empty


# ---------------------------------------------------------------- getbundle and narrow_widen


def _groups(parts: list[tuple[b2.InPart, bytes]]) -> list[tuple[Section, bytes, int]]:
    """Each group of the one changegroup part: section, path, how many revisions."""
    (part, payload), = [(p, data) for p, data in parts if p.type == b2.PART_CHANGEGROUP]  # fmt: skip
    decoder = ChangegroupDecoder(StreamReader(iter([payload])), part.params[b"version"])
    return [(g.section, g.path, len(list(g.revisions))) for g in decoder.groups()]


def test_a_narrow_getbundle_sends_every_changeset_and_manifest_and_the_files_it_takes() -> None:
    repo = reference_repo()
    full = _groups(bundle_parts(repo, request()))
    assert [g[1] for g in full if g[0] is Section.FILE] == [b"a", b"b"]
    narrow = _groups(bundle_parts(repo, request(narrow=b"1", includepats=b"path:b,path:c")))
    assert narrow == [g for g in full if g[1] != b"a"]
    nothing = _groups(bundle_parts(repo, request(narrow=b"1")))
    assert nothing == [(Section.CHANGELOG, b"", 5), (Section.MANIFEST, b"", 0)]
    excluded = _groups(bundle_parts(repo, request(narrow=b"1", includepats=b"path:", excludepats=b"path:a")))
    assert excluded == [g for g in full if g[1] != b"a"]


def test_a_narrow_getbundle_refuses_what_hg_serve_refuses() -> None:
    repo = reference_repo()
    (part, _), = bundle_parts(repo, request(narrow=b"1", includepats=b"path:a", stream=b"1", cg=b"0"))  # fmt: skip
    assert part.params[b"message"] == b"server does not support narrow stream clones"
    caps = b"HG20,bundle2=" + url_quote(b"HG20\nchangegroup=01")
    (part, _), = bundle_parts(repo, request(narrow=b"1", includepats=b"path:a", bundlecaps=caps))  # fmt: skip
    assert part.params[b"message"] == b"version 01 changegroups do not support sparse file matchers"
    with pytest.raises(UnsupportedFeature):
        getbundle(repo, parse_getbundle_args({b"narrow": b"1", b"includepats": b"path:a"}))
    with pytest.raises(InvalidPattern):
        request(narrow=b"1", includepats=b"re:.*")


def _widen(repo: object, **args: bytes) -> list[tuple[b2.InPart, bytes]]:
    heads = b" ".join(node.hex().encode() for node in reference_repo().heads())
    named = {b"oldincludes": b"path:a", b"oldexcludes": b"", b"newincludes": b"path:a,path:b", b"newexcludes": b"",
             b"commonheads": heads, b"cgversion": b"03", b"known": b"", b"ellipses": b"0"}
    named.update({k.encode(): v for k, v in args.items()})
    return parts_of(b"".join(narrow_widen(repo, named)))  # type: ignore[arg-type]


def test_narrow_widen_sends_the_history_of_the_files_the_new_patterns_add() -> None:
    repo = reference_repo()
    assert _groups(_widen(repo)) == [(Section.CHANGELOG, b"", 0), (Section.MANIFEST, b"", 0), (Section.FILE, b"b", 2)]
    from_nothing = _groups(_widen(repo, oldincludes=b""))
    assert from_nothing == [(Section.CHANGELOG, b"", 0), (Section.MANIFEST, b"", 5), (Section.FILE, b"a", 2),
                            (Section.FILE, b"b", 2)]
    assert _widen(repo, commonheads=b"") == []


@pytest.mark.parametrize(("args", "message"), [
    ({"ellipses": b"1"}, b"this server does not serve ellipsis (shallow narrow) clones"),
    ({"cgversion": b"01"}, b"unsupported changegroup version 01"),
    ({"commonheads": b"ff" * 20}, b"unknown revision " + b"ff" * 20),
    ({"newincludes": b"glob:*"}, b"invalid prefix on narrow pattern: glob:*"),
])
def test_narrow_widen_refusals_are_an_abort_part(args: dict[str, bytes], message: bytes) -> None:
    (part, _), = _widen(reference_repo(), **args)  # fmt: skip
    assert part.type == b"error:abort" and part.params[b"message"] == message


def test_narrow_clones_are_advertised_and_a_narrow_push_s_patterns_are_not_read() -> None:
    assert NARROW_CAP in capabilities_string(reference_repo(), ctx()).split(b" ")
    unbundle = COMMANDS[b"unbundle"]
    bound = bind_args(unbundle, {b"heads": b"force", b"includepats": b"path:a", b"excludepats": b""})
    assert bound == Args({b"heads": b"force"})
    assert bind_args(unbundle, {b"heads": b"force", b"other": b""}) == Args({b"heads": b"force"})  # as hg: dropped
