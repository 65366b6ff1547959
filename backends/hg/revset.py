"""hgweb's revset expression search: a log's ``?rev=QUERY`` that is a revset (``user(ann)``,
``branch(default) and merge()``, ``1::5``), evaluated as ``hg serve`` evaluates it.

hgweb (``getsearchmode``) takes ``reverse(QUERY)`` as a revset when it parses,
uses revset syntax (its tree is deeper than a function of one symbol), holds no
string beginning ``re:`` and calls only the functions Mercurial counts as safe
for a web server; an error while evaluating it (an unknown name, a bad argument)
makes it a keyword search after all.  ``search_revs`` answers the same: the
revisions, in the revset's order, or None for a keyword search.

Written from Mercurial's documentation of revsets (``hg help revsets``) and its
grammar: the same tokens and binding strengths, the same tree (so that "uses
revset syntax" and "the functions used" decide as hgweb's do), and each
function's rules for the order of its answer (``x or y`` keeps the order it was
written in, ``x and y`` is in x's order, ``sort``, ``reverse``, ``first``,
``last``, ``limit`` and ranges define theirs, filters keep their input's).
Secret and hidden changesets are outside every answer, as for ``hg serve``.

Not evaluated (404 with a sentence, never a wrong answer): the safe functions
outside ``FUNCTIONS`` (``adds``, ``date``, ``follow``, ``matching``...), the
``#generations`` relation, regular expressions, ``sort`` by ``topo`` or
``random``, file patterns other than globs and paths.  A query costing more
than its budget of steps (each revision a function looks at; a thousand per changeset, at most
``MAX_BUDGET``) is refused the same way.
"""

from __future__ import annotations

import binascii
import bisect
import calendar
import datetime
import heapq
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union, cast

from backends.hg import blocklines
from backends.hg.archive import adjusted_linkrev, file_parents, manifest_at
from backends.hg.changelog import Changeset
from backends.hg.graph import NULL_REV, ParentColumns
from backends.hg.keys import BOOLEANS
from backends.hg.obsstore import instability_sets
from backends.hg.repository import MERGE_STATES, HgRepo
from backends.hg.web import fold
from backends.interfaces import NULL_NODE, AmbiguousIdentifier
from protocols.errors import ProtocolError

Tree = Union[tuple[Any, ...], None]  # noqa: UP007 (a runtime alias: Python 3.11 has no `|` of these)
Token = tuple[bytes, Union[bytes, None], int]  # noqa: UP007


class RevsetError(Exception):
    """What Mercurial raises as a parse error, an unknown revision, an abort or an ambiguous
    prefix while reading or evaluating a revset: hgweb then searches for the query's words."""


class NotServed(Exception):
    """A revset hgweb would evaluate and hgwire does not (its message says which part)."""


SAFE_FUNCTIONS = frozenset(
    b"_commonancestorheads _firstancestors _firstdescendants _followfirst _hexlist _internal _intlist "
    b"_list _matchfiles _notpublic _phase _phaseandancestors _rev adds all ancestor ancestors author "
    b"bisect bisected bookmark branch branchpoint bundle children closed commonancestors conflictlocal "
    b"conflictother contentdivergent converted date desc descendants destination draft expectsize "
    b"extinct extra file filelog first follow followlines head heads hidden id keyword last limit "
    b"matching max merge min modifies none obsolete only origin orphan p1 p2 parents phasedivergent "
    b"present public removes rev reverse revset roots secret sort stack successors tag tagged unstable "
    b"user wdir".split())
"""The functions Mercurial lets a web search call (``revset.safesymbols``); a query calling any
other is searched for as words."""

MAX_BUDGET = 20_000_000
"""The most steps (a revision looked at by a set operation) one search may take, whatever the
repository's size: a few seconds of one worker thread."""

MAX_NESTING = 100
"""Operators and parentheses nested deeper than this (a chain of ``or`` counting once) make a
query a keyword search, as one that does not parse (hg's own parser runs out of stack and
``hg serve`` answers 500)."""

# token type -> (binding strength, primary, prefix (name, strength[, closing]), infix, suffix)
_ELEMENTS: dict[bytes, tuple[int, bytes | None, tuple[Any, ...] | None, tuple[Any, ...] | None, bytes | None]] = {
    b"(": (21, None, (b"group", 1, b")"), (b"func", 1, b")"), None),
    b"[": (21, None, None, (b"subscript", 1, b"]"), None),
    b"#": (21, None, None, (b"relation", 21), None),
    b"##": (20, None, None, (b"_concat", 20), None),
    b"~": (18, None, None, (b"ancestor", 18), None),
    b"^": (18, None, None, (b"parent", 18), b"parentpost"),
    b"-": (5, None, (b"negate", 19), (b"minus", 5), None),
    b"::": (17, b"dagrangeall", (b"dagrangepre", 17), (b"dagrange", 17), b"dagrangepost"),
    b"..": (17, b"dagrangeall", (b"dagrangepre", 17), (b"dagrange", 17), b"dagrangepost"),
    b":": (15, b"rangeall", (b"rangepre", 15), (b"range", 15), b"rangepost"),
    b"not": (10, None, (b"not", 10), None, None),
    b"!": (10, None, (b"not", 10), None, None),
    b"and": (5, None, None, (b"and", 5), None),
    b"&": (5, None, None, (b"and", 5), None),
    b"%": (5, None, None, (b"only", 5), b"onlypost"),
    b"or": (4, None, None, (b"or", 4), None),
    b"|": (4, None, None, (b"or", 4), None),
    b"+": (4, None, None, (b"or", 4), None),
    b"=": (3, None, None, (b"keyvalue", 3), None),
    b",": (2, None, None, (b"list", 2), None),
    b")": (0, None, None, None, None),
    b"]": (0, None, None, None, None),
    b"symbol": (0, b"symbol", None, None, None),
    b"string": (0, b"string", None, None, None),
    b"end": (0, None, None, None, None),
}
_KEYWORDS = frozenset((b"and", b"or", b"not"))
_OPERATOR_BYTES = frozenset(b"()[]#:=,-|&+!~^%")
_SYMBOL_START = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@") | frozenset(
    range(128, 256))
_SYMBOL_BYTES = _SYMBOL_START | frozenset(b"-/")
_SPACE = frozenset(b" \t\n\r\x0b\x0c")


def tokenize(program: bytes, lookup: Callable[[bytes], bool] | None = None) -> list[Token]:
    """The tokens of a revset, hg's: operators, quoted strings (``r'...'`` raw), symbols (a
    symbol with ``-`` in it is one name when ``lookup`` knows it, else names and minus signs)."""
    if program and lookup is not None:  # an old-style range of names holding revset characters
        parts = program.split(b":", 1)
        if all(lookup(part) for part in parts if part):
            tokens: list[Token] = []
            if parts[0]:
                tokens.append((b"symbol", parts[0], 0))
            if len(parts) > 1:
                tokens.append((b":", None, len(parts[0])))
                if parts[1]:
                    tokens.append((b"symbol", parts[1], len(parts[0]) + 1))
            return [*tokens, (b"end", None, len(program))]
    tokens = []
    pos, end = 0, len(program)
    while pos < end:
        c = program[pos]
        pair = program[pos:pos + 2]
        if c in _SPACE:
            pass
        elif pair in (b"::", b"..", b"##"):
            tokens.append((pair, None, pos))
            pos += 1
        elif c in _OPERATOR_BYTES:
            tokens.append((bytes((c,)), None, pos))
        elif c in b"'\"" or pair in (b"r'", b'r"'):
            raw = c == ord("r")
            if raw:
                pos += 1
            quote = program[pos]
            pos += 1
            start = pos
            while pos < end and program[pos] != quote:
                pos += 2 if program[pos] == ord("\\") else 1
            if pos >= end:
                raise RevsetError("unterminated string")
            text = program[start:pos]
            tokens.append((b"string", text if raw else _unescape(text), start))
        elif c in _SYMBOL_START:
            start = pos
            pos += 1
            while pos < end and program[pos] in _SYMBOL_BYTES:
                if program[pos] == ord(".") and program[pos - 1] == ord("."):  # '..' ends a symbol
                    pos -= 1
                    break
                pos += 1
            symbol = program[start:pos]
            if symbol in _KEYWORDS:
                tokens.append((symbol, None, start))
            elif b"-" in symbol and not (lookup is not None and lookup(symbol)):
                offset = start
                pieces = symbol.split(b"-")
                for piece in pieces[:-1]:
                    if piece:
                        tokens.append((b"symbol", piece, offset))
                    offset += len(piece)
                    tokens.append((b"-", None, offset))
                    offset += 1
                if pieces[-1]:
                    tokens.append((b"symbol", pieces[-1], offset))
            else:
                tokens.append((b"symbol", symbol, start))
            pos -= 1
        else:
            raise RevsetError("syntax error in revset")
        pos += 1
    tokens.append((b"end", None, pos))
    return tokens


_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.|$)", re.DOTALL)
_ESCAPED = {b"\\": b"\\", b"'": b"'", b'"': b'"', b"a": b"\a", b"b": b"\b", b"f": b"\f", b"n": b"\n",
            b"r": b"\r", b"t": b"\t", b"v": b"\v", b"\n": b""}


def _unescape(text: bytes) -> bytes:
    """A quoted string's escapes, read as hg reads them (Python's ``string-escape``): ``\\n``,
    ``\\x41``, octal ``\\101``…; an unknown escape stays as written.  Ours, not
    ``codecs.escape_decode``, which warns (and will refuse) at every unknown escape, such as the
    ``\\.`` of a regular expression."""
    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if not code:
            raise RevsetError("Trailing \\ in string")
        if code[:1] == b"x":
            if len(code) == 3:
                return bytes([int(code[1:], 16)])
            raise RevsetError(f"invalid \\x escape at position {match.start()}")
        if code[:1] in b"01234567":
            return bytes([int(code, 8) & 0xFF])
        return _ESCAPED.get(code, match.group(0))

    return _ESCAPE.sub(one, text) if b"\\" in text else text


class _Parser:
    """Top-down operator precedence over ``_ELEMENTS``: a token is a primary or a prefix where
    it starts a term, an infix or a suffix after one (a suffix when no term can follow)."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.nesting = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.at]

    def advance(self) -> Token:
        token = self.tokens[self.at]
        if self.at < len(self.tokens) - 1:
            self.at += 1
        return token

    def starts_term(self) -> bool:
        element = _ELEMENTS[self.current[0]]
        return bool(element[1] or element[2])

    def operand(self, strength: int, closing: bytes | None = None) -> Tree:
        if closing is not None and self.current[0] == closing:
            tree = None
        else:
            tree = self.parse(strength)
        if closing is not None:
            if self.current[0] != closing:
                raise RevsetError(f"unexpected token: {self.current[0].decode()}")
            self.advance()
        return tree

    def parse(self, strength: int = 0) -> Tree:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise RevsetError("too deeply nested")
        kind, value, _pos = self.advance()
        element = _ELEMENTS.get(kind)
        if element is None:
            raise RevsetError("not a prefix")
        primary, prefix = element[1], element[2]
        tree: Tree
        if primary and not (prefix and self.starts_term()):
            tree = (primary, value)
        elif prefix:
            tree = (prefix[0], self.operand(*prefix[1:]))
        else:
            raise RevsetError(f"not a prefix: {kind.decode()}")
        while strength < _ELEMENTS[self.current[0]][0]:
            kind, value, _pos = self.advance()
            infix, suffix = _ELEMENTS[kind][3], _ELEMENTS[kind][4]
            if suffix and not (infix and self.starts_term()):
                tree = (suffix, tree)
            elif infix:
                tree = (infix[0], tree, self.operand(*infix[1:]))
            else:
                raise RevsetError(f"not an infix: {kind.decode()}")
        self.nesting -= 1
        return tree


def parse(program: bytes, lookup: Callable[[bytes], bool] | None = None) -> Tree:
    """hg's tree of a revset: chains of ``or`` and ``,`` flattened, ``or`` over a ``list``,
    ``x^:y`` read as ``(x^):y``."""
    parser = _Parser(tokenize(program, lookup))
    tree = parser.parse()
    if parser.current[0] != b"end":
        raise RevsetError("invalid token")
    if _nesting(tree) > MAX_NESTING:  # a long chain of "and" is as deep as it is long
        raise RevsetError("too deeply nested")
    return _fix(_flatten(tree))


def _nesting(tree: Tree) -> int:
    """How deep the tree is once chains of ``or`` and ``,`` are flattened (without recursion)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(tree, 1)]
    while pending:
        node, level = pending.pop()
        deepest = max(deepest, level)
        for position, part in enumerate(node[1:]):
            if isinstance(part, tuple):
                chained = position == 0 and node[0] in (b"or", b"list") and part[0] == node[0]
                pending.append((part, level if chained else level + 1))
    return deepest


def _flatten(tree: Tree) -> Tree:
    if not isinstance(tree, tuple):
        return tree
    op = tree[0]
    if op not in (b"list", b"or"):
        return (op, *(_flatten(t) for t in tree[1:]))
    operands = []
    while isinstance(tree, tuple) and tree[0] == op:
        operands.append(_flatten(tree[2]))
        tree = tree[1]
    operands.append(_flatten(tree))
    return (op, *reversed(operands))


def _fix(tree: Tree) -> Tree:
    if not isinstance(tree, tuple):
        return tree
    op = tree[0]
    if op == b"parent":
        post = (b"parentpost", tree[1])
        right = tree[2]
        if right[0] == b"dagrangepre":
            return _fix((b"dagrange", post, right[1]))
        if right[0] == b"dagrangeall":
            return _fix((b"dagrangepost", post))
        if right[0] == b"rangepre":
            return _fix((b"range", post, right[1]))
        if right[0] == b"rangeall":
            return _fix((b"rangepost", post))
    elif op == b"or":
        return (op, _fix((b"list", *tree[1:])))
    elif op == b"subscript" and tree[1][0] == b"relation":
        return _fix((b"relsubscript", tree[1][1], tree[1][2], tree[2]))
    return (op, *(_fix(t) for t in tree[1:]))


def depth(tree: Any) -> int:
    """hg's measure of a tree: a leaf 0, a node one more than its deepest part."""
    if isinstance(tree, tuple):
        return max(map(depth, tree)) + 1
    return 0


def functions_used(tree: Any) -> set[bytes]:
    if not isinstance(tree, tuple) or tree[0] in (b"string", b"symbol"):
        return set()
    used: set[bytes] = set()
    for part in tree[1:]:
        used |= functions_used(part)
    if tree[0] == b"func":
        used.add(tree[1][1])
    return used


def search_revs(repo: HgRepo, query: bytes, budget: int | None = None) -> list[int] | None:
    """hgweb's revset search of ``query``: the revisions of ``reverse(QUERY)`` (``NULL_REV`` where
    the query names ``null``), or None where hgweb searches for the words instead.

    Raises ``NotServed`` for a revset hgweb would evaluate and hgwire does not."""
    program = b"reverse(%s)" % query
    try:
        tree = parse(program)
        if depth(tree) <= 2:  # a function of one symbol: no revset syntax
            return None
        if any(kind == b"string" and (value or b"")[:3] == b"re:" for kind, value, _pos in tokenize(program)):
            return None
    except RevsetError:
        return None
    if not functions_used(tree) <= SAFE_FUNCTIONS:
        return None
    evaluator = _Evaluator(repo, budget)
    try:
        return evaluator.run(parse(program, evaluator.is_symbol))
    except RevsetError:
        return None
    except RecursionError as e:  # not expected within MAX_NESTING: refused, never a 500
        raise NotServed("this revset is nested too deeply for a web search; simplify it") from e


_DEFINE, _FOLLOW, _ANY = "define", "follow", "any"

_HEX = re.compile(rb"[0-9a-f]+")

_SORT_KEYS = (b"rev", b"branch", b"desc", b"user", b"author", b"date", b"node")


class _Evaluator:
    """One query's evaluation over the served view of one changelog snapshot.

    A set is a list of revisions without repeats, in its order; ``full`` (compared by identity)
    is every visible revision ascending, the set a query starts from."""

    def __init__(self, repo: HgRepo, budget: int | None) -> None:
        self.repo = repo
        self.cl = repo.changelog()
        self.views = repo.views(self.cl)
        self.visible = self.views.visible
        self.parents = _Parents(self.views.parents)
        self.full: list[int] = [rev for rev in range(len(self.cl)) if self.visible[rev]]
        self.budget = budget if budget is not None else min(1_000 * len(self.cl) + 100_000, MAX_BUDGET)
        self._changesets: dict[int, Changeset] = {}
        self._children: list[list[int]] | None = None
        self._branches: list[tuple[bytes, bool]] | None = None
        self._obs_sets: tuple[set[int], set[int], set[int], set[int]] | None = None

    # -- sets ----------------------------------------------------------------------------

    def charge(self, steps: int) -> None:
        self.budget -= steps
        if self.budget < 0:
            raise NotServed("this revset asks for more work than a web search is given; narrow it, "
                            "or clone the repository and use hg log -r")

    def seen(self, rev: int) -> bool:
        return 0 <= rev < len(self.visible) and bool(self.visible[rev])

    def follow(self, subset: list[int], members: Iterable[int]) -> list[int]:
        """``subset & members``: those of ``subset`` in ``members``, in ``subset``'s order (the whole
        repository's order is ascending)."""
        wanted = set(members)
        self.charge(len(wanted))
        if subset is self.full:  # null too, as hg's whole repository takes any set as it is
            return sorted(rev for rev in wanted if rev == NULL_REV or self.seen(rev))
        self.charge(len(subset))
        return [rev for rev in subset if rev in wanted]

    def define(self, revs: Sequence[int], subset: list[int]) -> list[int]:
        """``revs & subset``: those of ``revs`` in ``subset``, in ``revs``' order (all of them for the
        whole repository, which hg takes as holding any set)."""
        self.charge(len(revs))
        if subset is self.full:
            return list(revs)
        within = set(subset)
        return [rev for rev in revs if rev in within]

    def changeset(self, rev: int) -> Changeset:
        if rev < 0:
            return NULL_CHANGESET
        changeset = self._changesets.get(rev)
        if changeset is None:
            self.charge(100)  # a parse costs about as much as a hundred steps of a set operation
            changeset = self._changesets[rev] = self.repo.changeset(self.cl, rev)
        return changeset

    def files_of(self, rev: int) -> tuple[bytes, ...]:
        """The files a changeset touched, each one charged (a changeset may list very many)."""
        files = self.changeset(rev).files
        self.charge(len(files))
        return files

    def branch_of(self, rev: int) -> bytes:
        if rev < 0:
            return b"default"
        if self._branches is None:
            self._branches = self.repo._branches(self.cl, self.views)
        return self._branches[rev][0]

    def children_of(self, rev: int) -> list[int]:
        if self._children is None:
            self.charge(len(self.full))
            children: list[list[int]] = [[] for _ in range(len(self.cl))]
            for child in self.full:
                for parent in dict.fromkeys(self.parents[child]):
                    if parent >= 0:
                        children[parent].append(child)
            self._children = children
        return self._children[rev]

    # -- names ---------------------------------------------------------------------------

    def is_symbol(self, name: bytes) -> bool:
        """hg's ``isrevsymbol``: does ``name`` name a revision (an ambiguous prefix is an error)."""
        try:
            self.lookup(name)
        except RevsetError as e:
            if isinstance(e, _Ambiguous):
                raise
            return False
        return True

    def lookup(self, name: bytes) -> int:
        if not name:
            raise RevsetError("empty string is not a valid revision")
        try:
            node = self.repo.lookup(name)
        except AmbiguousIdentifier as e:
            raise _Ambiguous(str(e)) from e
        except KeyError as e:  # an unknown name, a hidden revision
            raise _LookupFailed(f"unknown revision {name!r}") from e
        return NULL_REV if node == NULL_NODE else self.cl.rev(node)

    # -- evaluation ----------------------------------------------------------------------

    def run(self, tree: Tree) -> list[int]:
        return self.get(self.full, _analyzed(_fold_concat(tree)), _DEFINE)

    def get(self, subset: list[int], tree: Tree, order: str) -> list[int]:
        if not tree:
            raise RevsetError("missing argument")
        op = tree[0]
        method = getattr(self, "op_" + op.decode("ascii"), None)
        if method is None:
            raise RevsetError(f"can't use {op.decode()} in this context")
        return method(subset, *tree[1:], order=order)  # type: ignore[no-any-return]

    def op_symbol(self, subset: list[int], name: bytes, order: str) -> list[int]:
        rev = self.lookup(name)
        if rev == NULL_REV:
            return [NULL_REV] if subset is self.full or NULL_REV in subset else []
        return self._one(subset, rev)

    op_string = op_symbol

    def _range(self, subset: list[int], first: int, last: int, order: str) -> list[int]:
        span = range(first, last + 1) if first <= last else range(first, last - 1, -1)
        self.charge(len(span))
        revs = [rev for rev in span if rev == NULL_REV or self.seen(rev)]
        if order == _DEFINE:
            return self.define(revs, subset)
        return self.follow(subset, revs)

    def op_range(self, subset: list[int], x: Tree, y: Tree, order: str) -> list[int]:
        m, n = self.get(self.full, x, _DEFINE), self.get(self.full, y, _DEFINE)
        if not m or not n:
            return []
        return self._range(subset, m[0], n[-1], order)

    def op_rangeall(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._range(subset, 0, self.full[-1], order) if self.full else []

    def op_rangepre(self, subset: list[int], y: Tree, order: str) -> list[int]:
        n = self.get(self.full, y, _DEFINE)
        return self._range(subset, 0, n[-1], order) if n else []

    def op_rangepost(self, subset: list[int], x: Tree, order: str) -> list[int]:
        m = self.get(self.full, x, _DEFINE)
        if not m:
            return []
        return self._range(subset, m[0], len(self.cl) - 1, order)

    def op_dagrange(self, subset: list[int], x: Tree, y: Tree, order: str) -> list[int]:
        roots = set(self.get(self.full, x, _DEFINE))
        heads = self.get(self.full, y, _DEFINE)
        if not roots or not heads:
            return []
        low = min(roots)
        ancestors = self.ancestors_of(heads, low)  # those reachable from heads, none older than a root
        on_path = {rev for rev in ancestors if rev in roots}
        for rev in sorted(ancestors):
            self.charge(1)
            if rev not in on_path and any(p in on_path for p in self.parents[rev]):
                on_path.add(rev)
        return self.follow(subset, on_path)

    def op_dagrangepre(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self.fn_ancestors(subset, x, order)

    def op_dagrangepost(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self.fn_descendants(subset, x, order)

    def op_dagrangeall(self, subset: list[int], x: Tree, order: str) -> list[int]:
        raise RevsetError("can't use '::' in this context")

    def op_and(self, subset: list[int], x: Tree, y: Tree, order: str) -> list[int]:
        """``x and y``: y among x's, in x's order, with the rewrites hg's optimizer makes, whose
        answers differ where null or the set a function is given matters: ``::a and not ::b`` is
        ``only(a, b)``, ``x and not y`` takes y over the whole set (a difference), and
        ``not public()`` is the changesets of another phase (never null)."""
        for ancestors_of, not_ancestors_of in ((x, y), (y, x)):
            if _is_ancestors(ancestors_of) and not_ancestors_of is not None and not_ancestors_of[0] == b"not" \
                    and _is_ancestors(not_ancestors_of[1]):
                return self.fn_only(subset, (b"list", _ancestors_arg(ancestors_of),
                                             _ancestors_arg(not_ancestors_of[1])), order)
        if y is not None and y[0] == b"not" and not _is_public_call(y[1]):
            left = self.get(subset, x, order)
            right = set(self.get(subset, y[1], _ANY))
            self.charge(len(left))
            return [rev for rev in left if rev not in right]
        return self.get(self.get(subset, x, order), y, _ANY if order == _ANY else _FOLLOW)

    def op_minus(self, subset: list[int], x: Tree, y: Tree, order: str) -> list[int]:
        return self.op_and(subset, x, (b"not", y), order)

    def op_not(self, subset: list[int], x: Tree, order: str) -> list[int]:
        if _is_public_call(x):  # hg's _notpublic()
            self.charge(len(subset))
            return [rev for rev in subset if rev >= 0 and self.views.phases[rev] != 0]
        right = set(self.get(subset, x, _ANY))
        self.charge(len(subset))
        return [rev for rev in subset if rev not in right]

    def op_or(self, subset: list[int], x: Tree, order: str) -> list[int]:
        operands = self.arguments(x)
        if not operands:
            return []
        if order == _FOLLOW:
            return self.follow(subset, self._union(self.full, operands, _ANY))
        return self._union(subset, operands, order)

    def _union(self, subset: list[int], operands: list[Tree], order: str) -> list[int]:
        out: dict[int, None] = {}
        for operand in operands:
            revs = self.get(subset, operand, order)
            self.charge(len(revs))
            out.update(dict.fromkeys(revs))
        return list(out)

    def op_only(self, subset: list[int], x: Tree, y: Tree, order: str) -> list[int]:
        return self.fn_only(subset, (b"list", x, y), order)

    def op_onlypost(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self.fn_only(subset, x, order)

    def op_parentpost(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self.fn_p1(subset, x, order)

    def op_parent(self, subset: list[int], x: Tree, n: Tree, order: str) -> list[int]:
        which = _integer(n, "^ expects a number 0, 1, or 2")
        if which not in (0, 1, 2):
            raise RevsetError("^ expects a number 0, 1, or 2")
        found: set[int] = set()
        for rev in self.get(self.full, x, _DEFINE):
            if which == 0:
                found.add(rev)
            elif which == 1:
                found.add(self.parents[rev][0])
            elif self.parents[rev][1] != NULL_REV:
                found.add(self.parents[rev][1])
        return self.follow(subset, found)

    def op_ancestor(self, subset: list[int], x: Tree, n: Tree, order: str) -> list[int]:
        steps = _integer(n, "~ expects a number")
        found: set[int] = set()
        for rev in self.get(self.full, x, _DEFINE):
            if steps < 0:
                for _ in range(-steps):
                    self.charge(1)
                    children = self.children_of(rev) if rev >= 0 else []
                    if not children:
                        break
                    if len(children) > 1:
                        raise RevsetError("revision in set has more than one child")
                    rev = children[0]
                else:
                    found.add(rev)
                continue
            for _ in range(steps):
                self.charge(1)
                rev = self.parents[rev][0]
            found.add(rev)
        return self.follow(subset, found)

    def op_relation(self, subset: list[int], x: Tree, name: Tree, order: str) -> list[int]:
        if name and name[0] == b"symbol" and name[1] in (b"g", b"generations"):
            raise NotServed("revset search with the generations relation (x#generations) is not served here; "
                            "use ancestors() or descendants(), or clone the repository and use hg log -r")
        raise RevsetError("unknown relation")

    def op_relsubscript(self, subset: list[int], x: Tree, name: Tree, z: Tree, order: str) -> list[int]:
        return self.op_relation(subset, x, name, order)

    def op_subscript(self, subset: list[int], x: Tree, y: Tree, order: str) -> list[int]:
        raise RevsetError("can't use a subscript in this context")

    def op_func(self, subset: list[int], name: Tree, x: Tree, order: str) -> list[int]:
        assert name is not None
        function = name[1]
        method = getattr(self, "fn_" + function.decode("ascii", "replace"), None) if function in FUNCTIONS else None
        if method is None:
            if function in SAFE_FUNCTIONS:
                raise NotServed(f"revset search with {function.decode()}() is not served here; search with other "
                                "functions or words, or clone the repository and use hg log -r")
            raise RevsetError(f"unknown function {function!r}")
        return method(subset, x, order)  # type: ignore[no-any-return]

    # -- arguments -----------------------------------------------------------------------

    @staticmethod
    def arguments(x: Tree) -> list[Tree]:
        if x is None:
            return []
        if x[0] == b"list":
            return list(x[1:])
        return [x]

    def count(self, x: Tree, low: int, high: int, message: str) -> list[Tree]:
        args = self.arguments(x)
        if len(args) < low or (high >= 0 and len(args) > high):
            raise RevsetError(message)
        return args

    def named(self, x: Tree, function: str, names: Sequence[str]) -> dict[str, Tree]:
        """hg's ``getargsdict``: positional arguments in ``names`` order, then ``name=value``."""
        args = self.arguments(x)
        out: dict[str, Tree] = {}
        keyed = False
        for position, arg in enumerate(args):
            if arg is not None and arg[0] == b"keyvalue":
                keyed = True
                key = arg[1]
                if key is None or key[0] != b"symbol" or key[1].decode("ascii", "replace") not in names:
                    raise RevsetError(f"{function} got an unexpected keyword argument")
                text = key[1].decode("ascii")
                if text in out:
                    raise RevsetError(f"{function} got multiple values for keyword argument")
                out[text] = arg[2]
            elif keyed:
                raise RevsetError(f"{function} got an invalid argument")
            elif position < len(names):
                out[names[position]] = arg
            else:
                raise RevsetError(f"{function} takes at most {len(names)} positional arguments")
        return out

    # -- functions -----------------------------------------------------------------------

    def fn_all(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "all takes no arguments")
        return self.follow(subset, self.full) if subset is not self.full else list(self.full)

    def fn_none(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "none takes no arguments")
        return []

    def fn_revset(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self.get(subset, x, order)

    def fn_present(self, subset: list[int], x: Tree, order: str) -> list[int]:
        try:
            return self.get(subset, x, order)
        except _LookupFailed:
            return []

    def fn_reverse(self, subset: list[int], x: Tree, order: str) -> list[int]:
        revs = self.get(subset, x, order)
        return revs[::-1] if order == _DEFINE else revs

    def fn_sort(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.named(x, "sort", ("set", "keys", "topo.firstbranch", "random.seed"))
        if "set" not in args:
            raise RevsetError("sort requires one or two arguments")
        keys = _string(args["keys"], "sort spec must be a string") if "keys" in args else b"rev"
        flags: list[tuple[bytes, bool]] = []
        for key in keys.split():
            descending = key.startswith(b"-")
            name = key[1:] if descending else key
            if name not in _SORT_KEYS and name not in (b"topo", b"random"):
                raise RevsetError("unknown sort key")
            flags.append((name, descending))
        if len(flags) > 1 and any(name == b"topo" for name, _d in flags):
            raise RevsetError("topo sort order cannot be combined with other sort keys")
        if "topo.firstbranch" in args and not any(name == b"topo" for name, _d in flags):
            raise RevsetError("topo.firstbranch can only be used when using the topo sort key")
        if "random.seed" in args and not any(name == b"random" for name, _d in flags):
            raise RevsetError("random.seed can only be used when using the random sort key")
        revs = self.get(subset, args["set"], order)
        if not flags or order != _DEFINE:
            return revs
        if any(name in (b"topo", b"random") for name, _d in flags):
            raise NotServed("revset search sorted by topo or random is not served here; sort by rev, date, "
                            "user, branch, desc or node, or clone the repository and use hg log -r")
        if len(flags) == 1 and flags[0][0] == b"rev":
            return sorted(revs, reverse=flags[0][1])
        self.charge(len(revs))
        out = list(revs)
        for name, descending in reversed(flags):  # stable sorts, the last key first
            out.sort(key=self._sort_key(name), reverse=descending)
        return out

    def _sort_key(self, name: bytes) -> Callable[[int], Any]:
        if name == b"rev":
            return lambda rev: rev
        if name == b"node":
            return lambda rev: self.cl.node(rev) if rev >= 0 else NULL_NODE
        if name == b"branch":
            return self.branch_of
        if name == b"date":
            return lambda rev: self.changeset(rev).time
        if name == b"desc":
            return lambda rev: self.changeset(rev).description
        return lambda rev: self.changeset(rev).user

    def _limited(self, subset: list[int], chosen: list[int], count: int, order: str) -> list[int]:
        if order == _FOLLOW and count > 1:
            return self.follow(subset, chosen)
        return self.define(chosen, subset)

    def fn_limit(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.named(x, "limit", ("set", "n", "offset"))
        if "set" not in args:
            raise RevsetError("limit requires one to three arguments")
        # "()" leaves a number out, as hg's getinteger(..., default) reads an empty argument
        count = _integer(args["n"], "limit expects a number") if args.get("n") is not None else 1
        if count < 0:
            raise RevsetError("negative number to select")
        offset = _integer(args["offset"], "limit expects a number") if args.get("offset") is not None else 0
        if offset < 0:
            raise RevsetError("negative offset")
        revs = self.get(self.full, args["set"], _DEFINE)
        return self._limited(subset, revs[offset:offset + count], count, order)

    fn_first = fn_limit

    def fn_last(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.count(x, 1, 2, "last requires one or two arguments")
        count = _integer(args[1], "last expects a number") if len(args) == 2 else 1
        if count < 0:
            raise RevsetError("negative number to select")
        revs = self.get(self.full, args[0], _DEFINE)
        chosen = revs[::-1][:count]
        if order == _FOLLOW and count > 1:
            return self.follow(subset, chosen)
        return self.define(chosen[::-1], subset)

    def fn_max(self, subset: list[int], x: Tree, order: str) -> list[int]:
        revs = self.get(self.full, x, _DEFINE)
        return self._one(subset, max(revs)) if revs else []

    def fn_min(self, subset: list[int], x: Tree, order: str) -> list[int]:
        revs = self.get(self.full, x, _DEFINE)
        return self._one(subset, min(revs)) if revs else []

    def _one(self, subset: list[int], rev: int) -> list[int]:
        return [rev] if (self.seen(rev) if subset is self.full else rev in subset) else []

    def fn_rev(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.count(x, 1, 1, "rev requires one argument")
        try:
            number = int(_string(args[0], "rev requires a number"))
        except ValueError as e:
            raise RevsetError("rev expects a number") from e
        if number != NULL_REV and not self.seen(number):
            return []
        return self.follow(subset, [number])

    def fn_id(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """hg's ``id()``: a full id, or a prefix only one changeset (hidden ones too, and null) has."""
        args = self.count(x, 1, 1, "id requires one argument")
        text = _string(args[0], "id requires a string")
        if len(text) == 40:
            try:
                node = binascii.unhexlify(text)
            except (binascii.Error, ValueError):
                return []
            rev = NULL_REV if node == NULL_NODE else self.cl.index.nodemap().get(node)
        else:
            text = text[1:] if text.startswith(b"x") else text
            if not text or not _HEX.fullmatch(text):
                return []
            self.charge(len(self.cl))
            matches = [r for r in range(len(self.cl)) if binascii.hexlify(self.cl.node(r)).startswith(text)]
            if (b"0" * 40).startswith(text):
                matches.append(NULL_REV)
            if (b"f" * 40).startswith(text):
                return []  # the working directory's pseudo id: nothing a server shows
            rev = matches[0] if len(matches) == 1 else None
        if rev is None or (rev != NULL_REV and not self.seen(rev)):
            return []
        return self.define([rev], subset)

    def working_parents(self) -> list[int]:
        """The working directory's parents as revisions (null for none), as hg's ``repo[None]``:
        one the changelog lacks or a hidden one is an error (a keyword search)."""
        revs = [self._working_rev(node) for node in self.repo.working_parents()]
        if not all(rev == NULL_REV or self.seen(rev) for rev in revs):
            raise _LookupFailed("the working directory's parent is not served")
        return revs

    def _working_rev(self, node: bytes) -> int:
        """A working directory parent's revision, served or not (null for the null node)."""
        rev = NULL_REV if node == NULL_NODE else self.cl.index.nodemap().get(node)
        if rev is None:
            raise _LookupFailed("the working directory's parent is not in the repository")
        return rev

    def _parent(self, subset: list[int], x: Tree, which: int) -> list[int]:
        if x is None:  # the working directory's
            found = {self.working_parents()[which]}
        else:
            found = {self.parents[rev][which] for rev in self.get(self.full, x, _DEFINE)}
        return self.follow(subset, found - {NULL_REV})

    def fn_p1(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._parent(subset, x, 0)

    def fn_p2(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._parent(subset, x, 1)

    def fn_parents(self, subset: list[int], x: Tree, order: str) -> list[int]:
        found: set[int] = set()
        if x is None:  # the working directory's
            found.update(self.working_parents())
        for rev in self.get(self.full, x, _DEFINE) if x is not None else ():
            found.update(self.parents[rev])
        return self.follow(subset, found - {NULL_REV})

    def fn_follow(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """``follow()``: the ancestors of the working directory's parent (``startrev=``: of those);
        ``follow(FILE)``, the changesets of the files' history, copies and renames followed."""
        args = self.named(x, "follow", ("file", "startrev"))
        if "file" in args:
            return self._follow_files(subset, args)
        starts = self.get(self.full, args["startrev"], _DEFINE) if "startrev" in args else [self.lookup(b".")]
        if not starts:
            return []
        distance = self.ancestors_of(starts, NULL_REV if NULL_REV in starts else 0)
        return self.follow(subset, [rev for rev in distance if rev >= 0 or rev in starts])

    def _follow_files(self, subset: list[int], args: dict[str, Tree]) -> list[int]:
        """hg's ``follow(PATTERN[, startrev])``: the files of each start the pattern names (a path
        by default: a file or a directory's), then their file revisions' ancestors through copies,
        each as the changeset hg shows for it (``filectxancestors``).  The start is ``startrev``'s
        revisions, else the working directory's parent (hg's ``repo["."]``, served or not)."""
        pattern = _string(args["file"], "follow expected a pattern")
        if "startrev" in args:
            starts = self.get(self.full, args["startrev"], _DEFINE)
        else:
            starts = [self._dot_unfiltered()]
            if starts[0] != NULL_REV and not self.seen(starts[0]):
                raise RevsetError("the working directory's parent is not served")
        matcher = _file_matcher(pattern, default=b"path")
        parents_of = self.views.parents
        visit: dict[int, set[tuple[bytes, bytes]]] = {}
        heap: list[int] = []

        def add(rev: int, path: bytes, node: bytes) -> None:
            if rev not in visit:
                visit[rev] = set()
                heapq.heappush(heap, -rev)
            visit[rev].add((path, node))

        for start in starts:
            for path, node, _flags in self.manifest(start):
                if matcher(path):
                    add(adjusted_linkrev(self.repo, parents_of, path, node, start, inclusive=True), path, node)
        found: list[int] = []
        while heap:
            rev = -heapq.heappop(heap)
            found.append(rev)
            for path, node in sorted(visit.pop(rev)):
                self.charge(100)
                for p_path, p_node in file_parents(self.repo, path, node):
                    add(adjusted_linkrev(self.repo, parents_of, p_path, p_node, rev, inclusive=False), p_path, p_node)
        return self.follow(subset, [rev for rev in found if self.seen(rev)])

    def _dot_unfiltered(self) -> int:
        """hg's ``repo["."]``: the working directory's first parent, served or not (null without one;
        hg reads a secret or hidden one, then fails on it: hgweb searches for the words)."""
        return self._working_rev(self.repo.working_parents()[0])

    def fn_children(self, subset: list[int], x: Tree, order: str) -> list[int]:
        parents = set(self.get(self.full, x, _DEFINE))
        if not parents:
            return []
        low = min(parents)
        self.charge(len(subset))
        return [rev for rev in subset if rev > low and (self.parents[rev][0] in parents or (
            self.parents[rev][1] != NULL_REV and self.parents[rev][1] in parents))]

    def ancestors_of(self, heads: Iterable[int], low: int = 0, stop: int | None = None) -> dict[int, int]:
        """Every ancestor of ``heads`` (themselves included) not older than ``low``, with its
        distance from them (the shortest), up to ``stop`` generations."""
        distance: dict[int, int] = {}
        frontier = [rev for rev in set(heads) if rev >= low]
        for rev in frontier:
            distance[rev] = 0
        generation = 0
        while frontier and (stop is None or generation < stop):
            generation += 1
            following = []
            for rev in frontier:
                self.charge(1)
                if rev < 0:
                    continue
                for parent in self.parents[rev]:
                    if parent >= low and parent not in distance:
                        distance[parent] = generation
                        following.append(parent)
            frontier = following
        return distance

    def _depths(self, x: Tree, function: str) -> tuple[Tree, int | None, int | None]:
        args = self.named(x, function, ("set", "depth", "startdepth"))
        if "set" not in args:
            raise RevsetError(f"{function} takes at least 1 argument")
        start = stop = None
        if "startdepth" in args:
            start = _integer(args["startdepth"], f"{function} expects an integer startdepth")
            if start < 0:
                raise RevsetError("negative startdepth")
        if "depth" in args:
            stop = _integer(args["depth"], f"{function} expects an integer depth")
            if stop < 0:
                raise RevsetError("negative depth")
            stop += 1
        return args["set"], start, stop

    def fn_ancestors(self, subset: list[int], x: Tree, order: str) -> list[int]:
        tree, start, stop = self._depths(x, "ancestors")
        heads = self.get(self.full, tree, _DEFINE)
        if not heads:
            return []
        distance = self.ancestors_of(heads, NULL_REV if NULL_REV in heads else 0, None if stop is None else stop - 1)
        distance = {rev: d for rev, d in distance.items() if rev >= 0 or rev in heads}  # null only as given
        return self.follow(subset, [rev for rev, d in distance.items() if start is None or d >= start])

    def fn_descendants(self, subset: list[int], x: Tree, order: str) -> list[int]:
        tree, start, stop = self._depths(x, "descendants")
        roots = self.get(self.full, tree, _DEFINE)
        if not roots:
            return []
        distance = {rev: 0 for rev in roots}
        low = min(roots)
        if stop is None or stop > 1:
            for rev in self.full:  # null's children are those whose first parent it is
                if rev <= low or rev in distance:
                    continue
                self.charge(1)
                p1, p2 = self.parents[rev]
                near = [distance[p] for p in ((p1, p2) if p2 >= 0 else (p1,)) if p in distance]
                if near:
                    distance[rev] = min(near) + 1
        found = [rev for rev, d in distance.items()
                 if (start is None or d >= start) and (stop is None or d < stop)]
        return self.follow(subset, found)

    def fn_only(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.count(x, 1, 2, "only takes one or two arguments")
        include = [rev for rev in self.get(self.full, args[0], _DEFINE) if rev >= 0]
        if len(args) == 1:
            if not include:
                return []
            below = set(self.fn_descendants(self.full, args[0], _DEFINE))
            exclude = [rev for rev in self.repo.head_revs(self.views) if rev not in below and rev not in include]
        else:
            exclude = [rev for rev in self.get(self.full, args[1], _DEFINE) if rev >= 0]
        ancestors = set(self.ancestors_of(include))
        excluded = set(self.ancestors_of(exclude)) if exclude else set()
        return self.follow(subset, ancestors - excluded)

    def fn_ancestor(self, subset: list[int], x: Tree, order: str) -> list[int]:
        revs = self._union(self.full, self.arguments(x), _ANY) if x is not None else []
        if not revs:
            return []
        common = revs[0]
        for rev in revs[1:]:
            common = self._common_ancestor(common, rev)
        return self._one(subset, common) if common >= 0 else []

    def _common_ancestor(self, a: int, b: int) -> int:
        """hg's ``ancestor`` of two changesets: of their common ancestors with no child among
        them, those furthest from a root (longest path), the least by node on a tie."""
        if a < 0 or b < 0:
            return NULL_REV
        shared = set(self.ancestors_of([a])) & set(self.ancestors_of([b]))
        below = {p for rev in shared for p in self.parents[rev] if p >= 0}
        heads = shared - below
        if len(heads) > 1:
            depth: dict[int, int] = {}
            for rev in range(max(heads) + 1):
                depth[rev] = 1 + max((depth[p] for p in self.parents[rev] if p >= 0), default=0)
            self.charge(len(depth))
            deepest = max(depth[rev] for rev in heads)
            heads = {rev for rev in heads if depth[rev] == deepest}
        return min(heads, key=self.cl.node) if heads else NULL_REV

    def fn_heads(self, subset: list[int], x: Tree, order: str) -> list[int]:
        revs = set(self.get(self.full, x, _FOLLOW if order == _DEFINE else order)) - {NULL_REV}
        parents_in = {p for rev in revs for p in self.parents[rev] if p in revs}
        return self.follow(subset, revs - parents_in)

    def fn_roots(self, subset: list[int], x: Tree, order: str) -> list[int]:
        revs = self.get(self.full, x, _DEFINE)
        within = set(revs)
        rooted = [rev for rev in revs if not any(0 <= p and p in within for p in self.parents[rev])] if revs else []
        self.charge(len(revs))
        return self.follow(subset, rooted)

    def fn_head(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "head takes no arguments")
        heads = self.repo._branch_head_revs(self.cl, self.views)
        return self.follow(subset, [rev for revs in heads.values() for rev in revs])

    def fn_branchpoint(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "branchpoint takes no arguments")
        if not subset:
            return []
        low = max(min(subset), 0)  # null is never one
        counts: dict[int, int] = {}
        for rev in self.full:
            if rev > low:
                for parent in self.parents[rev]:
                    if parent >= low:
                        counts[parent] = counts.get(parent, 0) + 1
        self.charge(len(self.full))
        return [rev for rev in subset if counts.get(rev, 0) > 1]

    def _filter(self, subset: list[int], keep: Callable[[int], bool]) -> list[int]:
        self.charge(len(subset))
        return [rev for rev in subset if keep(rev)]

    def fn_merge(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "merge takes no arguments")
        return self._filter(subset, lambda rev: self.parents[rev][1] != NULL_REV)

    def fn_closed(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "closed takes no arguments")
        return self._filter(subset, lambda rev: self.changeset(rev).closes_branch)

    def _phase(self, subset: list[int], x: Tree, name: str, phase: int) -> list[int]:
        self.count(x, 0, 0, f"{name} takes no arguments")
        return self._filter(subset, lambda rev: rev >= 0 and self.views.phases[rev] == phase)

    def fn_public(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._phase(subset, x, "public", 0)

    def fn_draft(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._phase(subset, x, "draft", 1)

    def fn_secret(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "secret takes no arguments")
        return []  # never served

    def _text_filter(self, subset: list[int], x: Tree, function: str,
                     field: Callable[[Changeset], Iterable[bytes]]) -> list[int]:
        pattern = _string(x, f"{function} requires a string")
        text = _pattern_kind(pattern)
        wanted = fold(text)
        return self._filter(subset, lambda rev: any(wanted in fold(value) for value in field(self.changeset(rev))))

    def fn_author(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._text_filter(subset, x, "author", lambda c: (c.user,))

    fn_user = fn_author

    def fn_desc(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._text_filter(subset, x, "desc", lambda c: (c.description,))

    def fn_keyword(self, subset: list[int], x: Tree, order: str) -> list[int]:
        wanted = fold(_string(x, "keyword requires a string"))
        return self._filter(subset, lambda rev: any(
            wanted in fold(value) for value in (*self.files_of(rev), self.changeset(rev).user,
                                                self.changeset(rev).description)))

    def fn_branch(self, subset: list[int], x: Tree, order: str) -> list[int]:
        if x is not None and x[0] in (b"string", b"symbol"):
            name = _pattern_kind(x[1])
            if self._has_branch(name):
                return self._filter(subset, lambda rev: self.branch_of(rev) == name)
            if x[1].startswith(b"literal:"):
                raise _LookupFailed("branch does not exist")
        revs = self.get(self.full, x, _DEFINE)
        names = {self.branch_of(rev) for rev in revs}
        within = set(revs)
        return self._filter(subset, lambda rev: rev in within or self.branch_of(rev) in names)

    def _has_branch(self, name: bytes) -> bool:
        return name in self.repo._branch_head_revs(self.cl, self.views)

    def fn_bookmark(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.count(x, 0, 1, "bookmark takes one or no arguments")
        stored = self.repo.stored_bookmarks()
        if args:
            name = _pattern_kind(_string(args[0], "the argument to bookmark must be a string"))
            node = stored.get(name)
            if node is None:
                raise _LookupFailed("bookmark does not exist")
            nodes = [node]
        else:
            nodes = list(stored.values())
        return self.follow(subset, self._served_revs(nodes))

    def _served_revs(self, nodes: Iterable[bytes]) -> set[int]:
        nodemap = self.cl.index.nodemap()
        revs = set()
        for node in nodes:
            rev = nodemap.get(node)
            if rev is None or not self.seen(rev):
                raise _LookupFailed("filtered revision")  # as hg's served view does
            revs.add(rev)
        return revs

    def fn_tag(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.count(x, 0, 1, "tag takes one or no arguments")
        tags = self.repo.tags()
        tip = self.repo.lookup(b"tip")
        if args:
            name = _pattern_kind(_string(args[0], "the argument to tag must be a string"))
            node = tip if name == b"tip" else tags.get(name)
            if node is None:
                raise _LookupFailed("tag does not exist")
            nodes = [node]
        else:
            nodes = list(tags.values())
        revs = self._served_revs(n for n in nodes if n != NULL_NODE)
        return self.follow(subset, revs)

    fn_tagged = fn_tag

    def fn_file(self, subset: list[int], x: Tree, order: str) -> list[int]:
        pattern = _string(x, "file requires a pattern")
        matcher = _file_matcher(pattern)
        return self._filter(subset, lambda rev: any(matcher(path) for path in self.files_of(rev)))

    def _status(self, subset: list[int], x: Tree, function: str, field: str) -> list[int]:
        """``adds``/``modifies``/``removes``: changesets whose files matching the pattern were added,
        modified or removed as against their first parent (hg's status of two commits: a file
        whose node or flags differ is modified)."""
        pattern = _string(x, f"{function} requires a pattern")
        matcher = _status_matcher(pattern)

        def changed(rev: int) -> bool:
            if rev < 0:
                return False
            matched = [path for path in self.files_of(rev) if matcher(path)]
            if not matched:
                return False
            mine, theirs = self.manifest(rev), self.manifest(self.parents[rev][0])
            for path in matched:
                now, before = _entry(mine, path), _entry(theirs, path)
                if field == "added" and now is not None and before is None:
                    return True
                if field == "removed" and now is None and before is not None:
                    return True
                if field == "modified" and now is not None and before is not None and now != before:
                    return True
            return False

        return self._filter(subset, changed)

    def manifest(self, rev: int) -> list[tuple[bytes, bytes, bytes]]:
        """A changeset's manifest entries (path, node, flags), sorted by path; null's is empty."""
        if rev < 0:
            return []
        entries = manifest_at(self.repo, rev)[1]
        self.charge(50 + len(entries) // 100)
        return entries

    def fn_adds(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._status(subset, x, "adds", "added")

    def fn_modifies(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._status(subset, x, "modifies", "modified")

    def fn_removes(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._status(subset, x, "removes", "removed")

    def fn_extra(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.named(x, "extra", ("label", "value"))
        if "label" not in args:
            raise RevsetError("extra takes at least 1 argument")
        label = _string(args["label"], "first argument to extra must be a string")
        value = _pattern_kind(_string(args["value"], "second argument to extra must be a string")) \
            if "value" in args else None

        def has(rev: int) -> bool:
            extra = {b"branch": b"default", **self.changeset(rev).extra}  # hg reads a missing branch as default
            return label in extra and (value is None or extra[label] == value)

        return self._filter(subset, has)

    def fn_converted(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.count(x, 0, 1, "converted takes one or no arguments")
        prefix = _string(args[0], "converted requires a revision") if args else None

        def converted(rev: int) -> bool:
            source = self.changeset(rev).extra.get(b"convert_revision")
            return source is not None and (prefix is None or source.startswith(prefix))

        return self._filter(subset, converted)

    def fn_commonancestors(self, subset: list[int], x: Tree, order: str) -> list[int]:
        starts = self.get(self.full, x, _ANY)
        if not starts:
            return []
        out = subset
        for rev in starts:
            out = self.follow(out, self.ancestors_of([rev], NULL_REV if rev < 0 else 0))
        return out

    def fn_hidden(self, subset: list[int], x: Tree, order: str) -> list[int]:
        self.count(x, 0, 0, "hidden takes no arguments")
        return []  # a server's view holds no hidden changeset

    def _merge_side(self, x: Tree, name: str) -> list[int]:
        self.count(x, 0, 0, f"{name} takes no arguments")
        if any(self.repo.plain.exists(name) for name in MERGE_STATES):
            raise NotServed(f"revset search with {name}() in a repository with an unfinished merge is not "
                            "served here")
        return []  # no merge in progress: nothing

    def fn_conflictlocal(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._merge_side(x, "conflictlocal")

    def fn_conflictother(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._merge_side(x, "conflictother")

    def fn_followlines(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """``followlines(file, fromline:toline[, startrev=., descend=False])``: the changesets that
        changed a block of a file's lines (``backends.hg.blocklines``), as hg's; a pattern names one
        file of ``startrev``; the lines are ``startrev``'s."""
        trees = self.arguments(x)
        kwstart = next((i for i, tree in enumerate(trees) if tree is not None and tree[0] == b"keyvalue"),
                       len(trees))
        if kwstart < 1:
            raise RevsetError("followlines takes at least 1 positional arguments")
        keywords: dict[bytes, Tree] = {}
        for tree in trees[kwstart:]:
            if tree is None or tree[0] != b"keyvalue" or tree[1][0] != b"symbol":
                raise RevsetError("followlines got an invalid argument")
            if tree[1][1] not in (b"startrev", b"descend") or tree[1][1] in keywords:
                raise RevsetError("followlines got an unexpected or repeated keyword argument")
            keywords[tree[1][1]] = tree[2]
        lines = trees[1:kwstart]
        if len(lines) != 1:
            raise RevsetError("followlines requires a line range")
        if b"startrev" in keywords:
            revs = self.get(self.full, keywords[b"startrev"], _DEFINE)
            if len(revs) != 1:
                raise RevsetError("followlines expects exactly one revision")
            rev = revs[-1]
        else:
            rev = self._dot_unfiltered()
            if rev != NULL_REV and not self.seen(rev):
                raise RevsetError("the working directory's parent is not served")
        pattern = _string(trees[0], "followlines requires a pattern")
        entries = self.manifest(rev)
        kind, sep, _rest = pattern.partition(b":")
        if sep and kind in _PATTERN_KINDS | _UNSERVED_KINDS:
            matcher = _file_matcher(pattern)
            names = [path for path, _node, _flags in entries if matcher(path)]
            if len(names) != 1:
                raise RevsetError("followlines expects exactly one file")
            name = names[0]
        else:
            if not _inside(pattern):
                raise RevsetError("the file is not under the repository's root")
            name = _normalize(pattern)
        first, last = _integer_range(lines[0], None, None, "followlines expects a line number or a range",
                                     "line range bounds must be integers")
        try:
            start, end = blocklines.line_range(first, last)
        except ValueError as e:
            raise RevsetError(str(e)) from e
        descend = False
        if b"descend" in keywords:
            value = keywords[b"descend"]
            parsed = BOOLEANS.get(value[1].lower()) if value is not None and value[0] == b"symbol" else None
            if parsed is None:
                raise RevsetError("descend argument must be a boolean")
            descend = parsed
        entry = _entry(entries, name)
        if entry is None:  # hg: the file is not in that changeset
            raise RevsetError(f"{name!r} not found in manifest")
        walk = blocklines.block_descendants if descend else blocklines.block_ancestors
        try:
            found = [rev for rev, _path, _node in walk(self.repo, self.views.parents, rev, name, entry[0],
                                                       (start, end), self.charge)]
        except ProtocolError as e:  # the range is past the file's end
            raise RevsetError(str(e)) from e
        return self.follow(subset, [rev for rev in dict.fromkeys(found) if self.seen(rev)])

    def fn_filelog(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """The changesets a file's revisions link to (the one after a hidden link that holds the
        same file revision, as hg scans for it); a pattern of a kind reads the working directory's
        files, which is not served."""
        pattern = _string(x, "filelog requires a pattern")
        kind, sep, _rest = pattern.partition(b":")
        if sep and kind in _PATTERN_KINDS | _UNSERVED_KINDS:
            raise NotServed("revset search with filelog() of a pattern is not served here; name one file, "
                            "or use file(PATTERN)")
        path = _normalize(pattern)
        if not path or b"\0" in path or b"\n" in path:  # no file is named so
            return []
        log = self.repo.filelog(path)
        found: set[int] = set()
        known: dict[bytes, int] = {}
        scan_from: int | None = 0
        self.charge(len(log))
        for file_rev in range(len(log)):
            file_node = log.node(file_rev)
            if file_node in known:
                found.add(known[file_node])
                continue
            link = log.linkrev(file_rev)
            if self.seen(link):
                found.add(link)
            elif scan_from is not None:  # linked to a hidden changeset: the first later one with it
                start, scan_from = max(link, scan_from) + 1, None
                for rev in range(start, len(self.cl)):
                    if not self.seen(rev) or path not in self.files_of(rev):
                        continue
                    entry = _entry(self.manifest(rev), path)
                    if entry is None:
                        continue
                    if entry[0] not in known:
                        if entry[0] == file_node:
                            found.add(rev)
                            scan_from = rev
                            break
                        known[entry[0]] = rev
        return self.follow(subset, found)

    # -- obsolescence (hg's obsolete.getrevs over every changeset; the served view then filters) -------

    def _obsolescence(self) -> tuple[set[int], set[int], set[int], set[int]]:
        """Obsolete, orphan, phase-divergent and content-divergent revisions."""
        if self._obs_sets is None:
            store = self.repo.obsstore()
            if store is None:
                self._obs_sets = (set(), set(), set(), set())
            else:
                nodemap = self.cl.index.nodemap()
                phases = self.views.phases
                self.charge(len(self.cl))
                obsolete = store.obsolete_revs(nodemap, phases)
                orphans, bumped, divergent = instability_sets(store, nodemap, self.cl.node, self.views.parents,
                                                              phases, len(self.cl))
                self._obs_sets = (obsolete, orphans, bumped, divergent)
        return self._obs_sets

    def _obs_function(self, subset: list[int], x: Tree, name: str, revs: Iterable[int]) -> list[int]:
        self.count(x, 0, 0, f"{name} takes no arguments")
        return self.follow(subset, revs)

    def fn_obsolete(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._obs_function(subset, x, "obsolete", self._obsolescence()[0])

    def fn_orphan(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._obs_function(subset, x, "orphan", self._obsolescence()[1])

    def fn_phasedivergent(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._obs_function(subset, x, "phasedivergent", self._obsolescence()[2])

    def fn_contentdivergent(self, subset: list[int], x: Tree, order: str) -> list[int]:
        return self._obs_function(subset, x, "contentdivergent", self._obsolescence()[3])

    def fn_unstable(self, subset: list[int], x: Tree, order: str) -> list[int]:
        _obsolete, orphans, bumped, divergent = self._obsolescence()
        return self._obs_function(subset, x, "unstable", orphans | bumped | divergent)

    def fn_extinct(self, subset: list[int], x: Tree, order: str) -> list[int]:
        obsolete, orphans, _bumped, _divergent = self._obsolescence()
        suspended = set(self.ancestors_of(orphans)) if orphans else set()
        return self._obs_function(subset, x, "extinct", obsolete - suspended)

    def fn_successors(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """The changesets of the set and every one they were rewritten into, directly or not."""
        revs = self.get(self.full, x, _DEFINE)
        store = self.repo.obsstore()
        if store is None:
            return self.follow(subset, revs)
        nodemap = self.cl.index.nodemap()
        pending: list[bytes] = [self.cl.node(rev) for rev in revs if rev >= 0]
        seen: set[bytes] = set(pending)
        found: set[int] = set()
        while pending:
            node = pending.pop()
            self.charge(1)
            rev = nodemap.get(node)
            if rev is not None:
                found.add(rev)
            for marker in store.successors.get(node, ()):
                for successor in marker.succs:
                    if successor not in seen:
                        seen.add(successor)
                        pending.append(successor)
        return self.follow(subset, found)

    # -- grafts, transplants, rebases ---------------------------------------------------------

    def source_of(self, rev: int) -> int | None:
        """The changeset a graft, transplant or rebase made ``rev`` from, if served (hg's
        ``_getrevsource``: ``source``, ``transplant_source`` (binary), ``rebase_source``)."""
        extra = self.changeset(rev).extra
        for label in (b"source", b"transplant_source", b"rebase_source"):
            value = extra.get(label)
            if value is None:
                continue
            if len(value) == 20:
                node: bytes | None = value
            else:
                try:
                    node = self.repo.lookup(value)
                except KeyError:
                    node = None
            found = self.cl.index.nodemap().get(node) if node is not None and node != NULL_NODE else None
            if found is not None and self.seen(found):
                return found
        return None

    def fn_origin(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """The changesets the given ones (all) were first grafted, transplanted or rebased from."""
        destinations = self.get(self.full, x, _DEFINE) if x is not None else self.full
        self.charge(len(destinations))
        origins: set[int] = set()
        for rev in destinations:
            source = self.source_of(rev) if rev >= 0 else None
            seen: set[int] = set()
            while source is not None and source not in seen:  # back to the first source
                seen.add(source)
                earlier = self.source_of(source)
                if earlier is None:
                    break
                source = earlier
            if source is not None:
                origins.add(source)
        return self.follow(subset, origins)

    def fn_destination(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """The changesets made by grafting, transplanting or rebasing the given ones (all), directly
        or through other such copies."""
        sources = set(self.get(self.full, x, _DEFINE)) if x is not None else set(self.full)
        self.charge(len(subset))
        made: set[int] = set()
        for rev in subset:
            if rev < 0:
                continue
            lineage: list[int] = []
            source = self.source_of(rev)
            current = rev
            while source is not None and len(lineage) <= len(self.cl):
                lineage.append(current)
                if source in sources or source in made:
                    made.update(lineage)
                    break
                current = source
                source = self.source_of(current)
        return [rev for rev in subset if rev in made]

    def fn_bisect(self, subset: list[int], x: Tree, order: str) -> list[int]:
        status = _string(x, "bisect requires a string").lower()
        if status not in (b"good", b"bad", b"skip", b"current", b"goods", b"bads", b"range", b"pruned",
                          b"untested", b"ignored"):
            raise RevsetError("invalid bisect state")
        if self.repo.plain.exists(b"bisect.state"):
            raise NotServed("revset search with bisect() in a repository being bisected is not served here")
        return []  # no bisection: every state is empty

    fn_bisected = fn_bisect

    def fn_stack(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """The draft changesets only the given ones (or the working directory's parent) have,
        without merges or what they descend from: ``only(REV) and not public() and not ::merge()``
        of each, as hg's stack."""
        starts = [b"."] if x is None else [b"%d" % rev for rev in self.get(self.full, x, _DEFINE)]
        stacks: dict[int, None] = {}
        for start in starts:
            tree = (b"and", (b"and", (b"func", (b"symbol", b"only"), (b"string", start)),
                             (b"not", (b"func", (b"symbol", b"public"), None))),
                    (b"not", (b"dagrangepre", (b"func", (b"symbol", b"merge"), None))))
            stacks.update(dict.fromkeys(sorted(self.get(self.full, tree, _DEFINE))))
        return self.follow(subset, stacks)

    def fn_matching(self, subset: list[int], x: Tree, order: str) -> list[int]:
        """The changesets whose fields (``metadata`` by default: user, description, date) equal those
        of one of the given changesets; ``diff`` and ``substate`` are not served."""
        args = self.count(x, 1, 2, "matching takes 1 or 2 arguments")
        revs = self.get(self.full, args[0], _DEFINE)
        names = _string(args[1], "matching requires a string as its second argument").split() \
            if len(args) > 1 else [b"metadata"]
        fields: set[bytes] = set()
        for name in names:
            if name == b"metadata":
                fields.update((b"user", b"description", b"date"))
            elif name == b"diff":
                fields.update((b"files", b"diff"))
            else:
                fields.add(b"user" if name == b"author" else name)
        if b"summary" in fields and b"description" in fields:
            fields.discard(b"summary")
        readers: dict[bytes, Callable[[int], object]] = {
            b"user": lambda rev: self.changeset(rev).user,
            b"branch": self.branch_of,
            b"date": lambda rev: (self.changeset(rev).time, self.changeset(rev).tz),
            b"description": lambda rev: self.changeset(rev).description,
            b"files": lambda rev: self.changeset(rev).files,
            b"parents": lambda rev: tuple(p for p in self.parents[rev] if p != NULL_REV) or (NULL_REV,),
            b"phase": lambda rev: self.views.phases[rev] if rev >= 0 else 0,
            b"summary": lambda rev: (self.changeset(rev).description.splitlines() or [b""])[0],
        }
        for field in fields:
            if field in (b"diff", b"substate"):
                raise NotServed(f"revset search with matching() of {field.decode()} is not served here; match "
                                "other fields, or clone the repository and use hg log -r")
            if field not in readers:
                raise RevsetError("unexpected field name passed to matching")
        chosen = [readers[field] for field in sorted(fields)]
        targets = {tuple(read(rev) for read in chosen) for rev in revs}
        self.charge(len(subset) * max(len(chosen), 1))
        return self._filter(subset, lambda rev: tuple(read(rev) for read in chosen) in targets)

    def fn_date(self, subset: list[int], x: Tree, order: str) -> list[int]:
        matches = date_matcher(_string(x, "date requires a string"))
        return self._filter(subset, lambda rev: matches(self.changeset(rev).time))

    def fn_expectsize(self, subset: list[int], x: Tree, order: str) -> list[int]:
        args = self.named(x, "expectsize", ("set", "size"))
        if "size" not in args or "set" not in args:
            raise RevsetError("invalid set of arguments")
        low, high = _integer_range(args["size"], 0, len(self.cl) + 1)
        if low < 0 or high < 0:
            raise RevsetError("negative size")
        revs = self.get(self.full, args["set"], order)
        if (low != high and not low <= len(revs) <= high) or (low == high and len(revs) != low):
            raise _LookupFailed("revset size mismatch")
        return self.follow(subset, revs) if order == _FOLLOW else self.define(revs, subset)


class _Parents:
    """Each revision's parents, null's too (null and null, as hg's index gives them)."""

    def __init__(self, parents: ParentColumns) -> None:
        self._p1 = parents.p1  # (the columns indexed here: no call more a revision)
        self._p2 = parents.p2

    def __getitem__(self, rev: int) -> tuple[int, int]:
        return (self._p1[rev], self._p2[rev]) if rev >= 0 else (NULL_REV, NULL_REV)


NULL_CHANGESET = Changeset(manifest=NULL_NODE, user=b"", time=0.0, tz=0, extra={}, files=(), description=b"")
"""What the predicates read of null, where a set holds it (``(null + 1) and user('')``)."""


class _LookupFailed(RevsetError):
    """hg's RepoLookupError: an unknown name (``present()`` turns it into nothing)."""


class _Ambiguous(RevsetError):
    """An id prefix that more than one changeset has."""


FUNCTIONS = frozenset(name[3:].encode() for name in dir(_Evaluator) if name.startswith("fn_"))
"""The safe functions hgwire evaluates."""


def _fold_concat(tree: Tree) -> Tree:
    """``a ## b``: one string of the strings and symbols it joins."""
    if not isinstance(tree, tuple):
        return tree
    if tree[0] == b"_concat":
        pieces: list[bytes] = []
        pending = [tree]
        while pending:
            node = pending.pop()
            if node is not None and node[0] == b"_concat":
                pending += [node[2], node[1]]
            elif node is not None and node[0] in (b"string", b"symbol"):
                pieces.append(node[1])
            else:
                raise RevsetError('"##" can\'t concatenate that')
        return (b"string", b"".join(pieces))
    if tree[0] in (b"string", b"symbol"):
        return tree
    return (tree[0], *(_fold_concat(part) for part in tree[1:]))


def _is_ancestors(tree: Tree) -> bool:
    """``::x`` or ``ancestors(x)`` of one expression (hg's optimizer matches no argument list)."""
    if tree is None:
        return False
    if tree[0] == b"dagrangepre":
        argument = tree[1]
    elif tree[0] == b"func" and tree[1] == (b"symbol", b"ancestors"):
        argument = tree[2]
    else:
        return False
    return argument is not None and argument[0] not in (b"list", b"keyvalue")


def _ancestors_arg(tree: Tree) -> Tree:
    assert tree is not None
    argument: Tree = tree[1] if tree[0] == b"dagrangepre" else tree[2]
    return argument


def _is_public_call(tree: Tree) -> bool:
    return tree is not None and tree[0] == b"func" and tree[1] == (b"symbol", b"public") and tree[2] is None


def _analyzed(tree: Tree) -> Tree:
    """The tree hg evaluates: parentheses gone, ``-x`` of a name or string as the string ``-x`` (a
    revision counted from the tip, a sort key)."""
    if not isinstance(tree, tuple) or tree[0] in (b"string", b"symbol"):
        return tree
    if tree[0] == b"group":
        return _analyzed(tree[1])
    if tree[0] == b"negate":
        operand = tree[1]
        if not operand or operand[0] not in (b"string", b"symbol"):
            raise RevsetError("can't negate that")
        return (b"string", b"-" + operand[1])
    return (tree[0], *(_analyzed(part) for part in tree[1:]))


def _string(x: Tree, message: str) -> bytes:
    if x and x[0] in (b"string", b"symbol"):
        return x[1]  # type: ignore[no-any-return]
    raise RevsetError(message)


def _integer(x: Tree, message: str) -> int:
    try:
        return int(_string(x, message))
    except ValueError as e:
        raise RevsetError(message) from e


def _pattern_kind(pattern: bytes) -> bytes:
    """hg's ``stringmatcher`` prefixes: ``literal:`` (stripped), ``re:`` (not served), else literal."""
    if pattern.startswith(b"re:"):
        raise NotServed("revset search with regular expressions is not served here; search with words, "
                        "or clone the repository and use hg log -r")
    if pattern.startswith(b"literal:"):
        return pattern[len(b"literal:"):]
    return pattern


_PATTERN_KINDS = frozenset((b"glob", b"path", b"relglob", b"relpath", b"rootglob", b"rootfilesin", b"filepath"))
_UNSERVED_KINDS = frozenset((b"re", b"relre", b"listfile", b"listfile0", b"set", b"include", b"subinclude"))


def _file_matcher(pattern: bytes, default: bytes = b"glob") -> Callable[[bytes], bool]:
    """The files a ``file()`` pattern names, relative to the repository's root, as hg matches a
    changeset's files: a glob by default (``default``: ``follow()``'s is ``path``), matching the
    whole path (``*`` within a directory, ``**`` across them); ``path:`` a file or a directory's
    files; ``rootfilesin:`` a directory's own files; ``relglob:`` a glob at any depth;
    ``filepath:`` one file."""
    kind, sep, rest = pattern.partition(b":")
    if sep and kind in _UNSERVED_KINDS:
        raise NotServed(f"revset search with {kind.decode()}: file patterns is not served here; use a glob "
                        "or a path: pattern")
    if not sep or kind not in _PATTERN_KINDS:
        kind, rest = default, pattern
    rest = _normalize(rest)
    if kind == b"rootfilesin":
        directory = rest + b"/" if rest else b""
        return lambda path: path.startswith(directory) and b"/" not in path[len(directory):]
    if not rest and kind != b"filepath":
        return lambda path: True
    if kind in (b"path", b"relpath"):
        regex = re.escape(rest) + rb"(?:/|$)"
    elif kind == b"filepath":
        regex = re.escape(rest) + b"$"
    elif kind == b"relglob":
        regex = rb"(?:|.*/)" + _glob(rest) + b"$"
    else:
        regex = _glob(rest) + b"$"
    try:
        compiled = re.compile(regex)
    except re.error as e:  # an unbalanced "{": hg refuses the pattern as invalid
        raise RevsetError(f"invalid pattern: {e}") from e
    return lambda path: compiled.match(path) is not None


DATE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H%M%S", "%Y-%m-%dT%H%M", "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M", "%Y-%m-%d %H%M%S", "%Y-%m-%d %H%M", "%Y-%m-%d %I:%M:%S%p", "%Y-%m-%d %H:%M",
    "%Y-%m-%d %I:%M%p", "%Y-%m-%d", "%m-%d", "%m/%d", "%m/%d/%y", "%m/%d/%Y", "%a %b %d %H:%M:%S %Y",
    "%a %b %d %I:%M:%S%p %Y", "%a, %d %b %Y %H:%M:%S", "%b %d %H:%M:%S %Y", "%b %d %I:%M:%S%p %Y",
    "%b %d %H:%M:%S", "%b %d %I:%M:%S%p", "%b %d %H:%M", "%b %d %I:%M%p", "%b %d %Y", "%b %d", "%H:%M:%S",
    "%I:%M:%S%p", "%H:%M", "%I:%M%p",
)
"""The date formats Mercurial reads (``hg help dates``), tried in this order."""
DAY_FORMATS = (*DATE_FORMATS, "%Y", "%Y-%m", "%b", "%b %Y")
"""And the partial dates a date range may name (a year, a month)."""


def date_matcher(spec: bytes, now: float | None = None) -> Callable[[float], bool]:
    """hg's ``date()`` specifications: ``DATE`` (the whole of what it names: a day, a month, a
    minute), ``<DATE``, ``>DATE``, ``DATE to DATE``, ``-DAYS`` (the last DAYS days); a date in any of
    ``DATE_FORMATS``, ``now``, ``today``, ``yesterday`` or ``UNIXTIME OFFSET``, in the server's local
    time unless it names its zone (``+0100``, ``UTC``, ``Z``)."""
    try:
        text = spec.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise RevsetError("invalid date") from e
    moment = time.time() if now is None else now

    def lower(when: str) -> float:
        return _parse_date(when, DAY_FORMATS, {"mb": "1", "d": "1"}, moment)

    def upper(when: str) -> float:
        for days in ("31", "30", "29"):
            try:
                return _parse_date(when, DAY_FORMATS, {"mb": "12", "HI": "23", "M": "59", "S": "59", "d": days},
                                   moment)
            except RevsetError:
                pass
        return _parse_date(when, DAY_FORMATS, {"mb": "12", "HI": "23", "M": "59", "S": "59", "d": "28"}, moment)

    if not text:
        raise RevsetError("dates cannot consist entirely of whitespace")
    if text[0] in "<>":
        if not text[1:]:
            raise RevsetError("invalid day spec")
        if text[0] == "<":
            latest = upper(text[1:])
            return lambda when: when <= latest
        earliest = lower(text[1:])
        return lambda when: when >= earliest
    if text[0] == "-":
        try:
            days = int(text[1:])
        except ValueError as e:
            raise RevsetError("invalid day spec") from e
        if days < 0:
            raise RevsetError("days must be nonnegative")
        since = moment - days * 86400
        return lambda when: when >= since
    if " to " in text:
        pieces = text.split(" to ")
        if len(pieces) != 2:
            raise RevsetError("invalid date range")
        start, stop = lower(pieces[0]), upper(pieces[1])
    else:
        start, stop = lower(text), upper(text)
    return lambda when: start <= when <= stop


def _parse_date(text: str, formats: Sequence[str], bias: dict[str, str], now: float) -> float:
    """hg's ``parsedate``: the Unix time ``text`` names; what it leaves out is the bias's (the
    start or end of the period) below its most precise part, and now's above it."""
    text = text.strip()
    if not text:
        return 0.0
    if text == "now":
        return float(int(now))
    if text in ("today", "yesterday"):
        day = datetime.date.fromtimestamp(now) - datetime.timedelta(days=1 if text == "yesterday" else 0)
        text = day.strftime("%b %d")
    pieces = text.split(" ")
    if len(pieces) == 2 and all(re.fullmatch(r"[-+]?\d+", piece) for piece in pieces):
        when, offset = int(pieces[0]), int(pieces[1])
    else:
        local = time.localtime(now)
        current = {part: time.strftime("%" + part[0], local) for part in ("d", "mb", "yY", "HI", "M", "S")}
        defaults = {part: (bias.get(part, "00" if part[0] in "HMS" else "1"), current[part]) for part in current}
        for form in formats:
            try:
                when, offset = _strdate(text, form, defaults)
                break
            except (ValueError, OverflowError):
                continue
        else:
            raise RevsetError("invalid date")
    if not -0x80000000 <= when <= 0x7FFFFFFF:
        raise RevsetError("date exceeds 32 bits")
    if not -50400 <= offset <= 43200:
        raise RevsetError("impossible time zone offset")
    return float(when)


def _strdate(text: str, form: str, defaults: dict[str, tuple[str, str]]) -> tuple[int, int]:
    offset, rest = _zone(text)
    use_now = False
    for part in ("S", "M", "HI", "d", "mb", "yY"):  # from the most precise part up
        if any("%" + letter in form for letter in part):
            use_now = True
        else:
            rest += "@" + defaults[part][use_now]
            form += "@%" + part[0]
    parsed = time.strptime(rest, form)
    as_utc = calendar.timegm(parsed)
    if offset is None:
        return int(time.mktime(parsed)), int(time.mktime(parsed)) - as_utc
    return as_utc + offset, offset


def _zone(text: str) -> tuple[int | None, str]:
    """A trailing time zone (``GMT``, ``UTC``, ``+HHMM``, ``Z`` after a digit, ``+HH:MM``): its offset
    in seconds west of UTC, and the rest."""
    if text.endswith(("GMT", "UTC")):
        return 0, text[:-3].rstrip()
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        sign = 1 if text[-5] == "+" else -1
        return -sign * (int(text[-4:-2]) * 60 + int(text[-2:])) * 60, text[:-5].rstrip()
    if text.endswith("Z") and text[-2:-1].isdigit():
        return 0, text[:-1]
    if len(text) >= 6 and text[-6] in "+-" and text[-3] == ":" and text[-5:-3].isdigit() and text[-2:].isdigit():
        sign = 1 if text[-6] == "+" else -1
        return -sign * (int(text[-5:-3]) * 60 + int(text[-2:])) * 60, text[:-6]
    return None, text


def _status_matcher(pattern: bytes) -> Callable[[bytes], bool]:
    """A pattern as hg's status predicates take it: a ``path:`` (``relpath:``, ``filepath:``) names
    one file exactly; any other is matched as ``file()`` matches it."""
    kind, sep, rest = pattern.partition(b":")
    if sep and kind in (b"path", b"relpath", b"filepath"):
        exact = _normalize(rest)
        return lambda path: path == exact
    return _file_matcher(pattern)


def _entry(entries: list[tuple[bytes, bytes, bytes]], path: bytes) -> tuple[bytes, bytes] | None:
    """The (node, flags) of ``path`` in sorted manifest entries, or None."""
    at = bisect.bisect_left(entries, (path,))
    if at < len(entries) and entries[at][0] == path:
        return entries[at][1], entries[at][2]
    return None


def _integer_range(x: Tree, low: int | None, high: int | None,
                   message: str = "expectsize requires a size range or a positive integer",
                   bounds: str = "size range bounds must be integers") -> tuple[int, int]:
    """hg's ``getintrange``: ``N``, or ``A:B`` with either side left out for ``low``/``high``
    (None: an error to leave it out)."""
    if x and x[0] in (b"string", b"symbol"):
        n = _integer(x, message)
        return n, n
    if not x or x[0] not in (b"range", b"rangepre", b"rangepost", b"rangeall"):
        raise RevsetError(message)
    first = x[1] if x[0] in (b"range", b"rangepost") else None
    last = x[2] if x[0] == b"range" else x[1] if x[0] == b"rangepre" else None
    if (first is None and low is None) or (last is None and high is None):
        raise RevsetError(bounds)
    return (_integer(first, bounds) if first is not None else cast(int, low),
            _integer(last, bounds) if last is not None else cast(int, high))


def _inside(path: bytes) -> bool:
    """Whether a relative path stays under the root (hg's ``canonpath`` refuses one that leaves it)."""
    depth = 0
    for part in path.split(b"/"):
        if part == b"..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in (b"", b"."):
            depth += 1
    return True


def _normalize(path: bytes) -> bytes:
    parts: list[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return b"/".join(parts)


def _glob(pattern: bytes) -> bytes:
    """A glob as a regular expression: ``*`` ``**`` ``?`` ``[...]`` ``{a,b}``, ``\\`` escaping."""
    out = []
    i, n = 0, len(pattern)
    group = 0
    while i < n:
        c = pattern[i:i + 1]
        i += 1
        if c == b"*":
            if pattern[i:i + 1] == b"*":
                i += 1
                if pattern[i:i + 1] == b"/":
                    i += 1
                    out.append(rb"(?:.*/)?")
                else:
                    out.append(rb".*")
            else:
                out.append(rb"[^/]*")
        elif c == b"?":
            out.append(rb"[^/]")
        elif c == b"[":
            j = i
            if j < n and pattern[j:j + 1] in (b"!", b"]"):
                j += 1
            while j < n and pattern[j:j + 1] != b"]":
                j += 1
            if j >= n:
                out.append(rb"\[")
            else:
                body = pattern[i:j].replace(b"\\", b"\\\\")
                i = j + 1
                if body[:1] == b"!":
                    body = b"^" + body[1:]
                elif body[:1] == b"^":
                    body = b"\\" + body
                out.append(b"[" + body + b"]")
        elif c == b"{":
            group += 1
            out.append(b"(?:")
        elif c == b"}" and group:
            group -= 1
            out.append(b")")
        elif c == b"," and group:
            out.append(b"|")
        elif c == b"\\":
            escaped = pattern[i:i + 1]
            if escaped:
                i += 1
                out.append(re.escape(escaped))
            else:
                out.append(re.escape(c))
        else:
            out.append(re.escape(c))
    return b"".join(out)
