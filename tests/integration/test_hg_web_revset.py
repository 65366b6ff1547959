"""hgweb's revset expression search (``json-changelog?rev=QUERY``, ``log?style=raw&rev=QUERY``,
``json-shortlog?rev=QUERY&revcount=N``), side by side with the real ``hg serve`` on one history:
status and body byte for byte, for a curated list of revsets (every function and operator hgwire
evaluates, alone and nested, the ones whose order is not the revisions' order), for queries hgweb
answers with its keyword search instead (a parse error, no revset syntax, a ``re:`` string, a
function it does not count as safe, a revision that cannot be found, bad arguments) or with its
exact search (a query naming a revision), and for a seeded stream of random expressions.

hgweb's rule (``getsearchmode``): a query naming a revision is an exact search; else ``reverse(QUERY)``
is parsed as a revset, and a parse error, a tree no deeper than 2, a ``re:`` string or a function
outside ``revset.safesymbols`` makes it a keyword search, as does an error evaluating it; else the
revset's revisions, first ``revcount`` of them. The raw style names the mode (``# Mode``), which
the tests read from ``hg serve``'s answer so that each list means what it says.

The history has what the functions tell apart: users written in different case, three named
branches and a closed branch head, two merges (one tagged), global and local tags, bookmarks (a
divergent-looking name, one on a draft changeset, one on a secret changeset), public, draft and
secret changesets (the secret ones, at the tip, are never listed: pulls cannot see them, so
``all()`` has no place for them, their bookmark and their numbers are unknown revisions), files in
nested directories, descriptions with one word in several cases.

Besides: revsets of a kind hgwire does not evaluate (``matching``, ``follow(FILE)``, relations...)
are a 404 that says so, and very deep or very wide queries up to the 1000-byte bound are answered
promptly, never with a 500 (``hg serve`` overflows its stack on 500 nested parentheses)."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import Client, RunningServer, client_environment, hg_history_served
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import Answer, raw

ANN = "Ann <ann@example.com>"
BOB = "bob"
CAROL = "Carol <carol@example.org>"
LOUD_BOB = "BOB <Bob@Work.example>"
VISIBLE = 22
"""Changesets 0 to 21 are public or draft; 22 and 23 are secret."""


def _change(client: Client, repo: Path, user: str, message: str, files: dict[str, bytes], date: int,
            *options: str) -> None:
    for name, data in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", user, "-d", f"{date} 0", "-m", message, *options)


def _history(client: Client, repo: Path) -> None:
    """24 changesets (``hg log -G`` of it in the comments: number, branch, what it is)."""
    hg = ("-R", str(repo))
    at = 1_700_000_000
    client.hg("init", str(repo))
    _change(client, repo, ANN, "Initial import", {"README.txt": b"readme\n", "src/main.py": b"main\n",
                                                  "deep/er/down/f.txt": b"f\n", "deep/g.txt": b"g\n",
                                                  "docs/guide.txt": b"guide\n"}, at)  # 0
    _change(client, repo, BOB, "Fix typo in README", {"README.txt": b"read me\n"}, at + 100)  # 1
    _change(client, repo, CAROL, "Add parser\n\nThe parser reads tokens.", {"src/parser.py": b"p\n"}, at + 200)  # 2
    _change(client, repo, ANN, "fix: handle empty input", {"src/parser.py": b"p2\n"}, at + 300)  # 3
    client.hg("tag", "-q", *hg, "-u", CAROL, "-d", f"{at + 400} 0", "v1")  # 4: tags 3
    client.hg("branch", "-q", *hg, "side")
    _change(client, repo, BOB, "Start side work", {"side/notes.txt": b"n\n"}, at + 500)  # 5 side
    _change(client, repo, LOUD_BOB, "side: more notes (FIX later)",
            {"side/notes.txt": b"n2\n", "deep/er/down/h.txt": b"h\n"}, at + 600)  # 6 side
    client.hg("update", "-q", *hg, "default")
    _change(client, repo, ANN, "Document the API", {"docs/api.txt": b"api\n"}, at + 700)  # 7
    client.hg("merge", "-q", *hg, "side")
    _change(client, repo, CAROL, "Merge side into default", {}, at + 800)  # 8: merge of 7 and 6
    client.hg("tag", "-q", *hg, "-u", ANN, "-d", f"{at + 900} 0", "v2")  # 9: tags the merge
    client.hg("update", "-q", *hg, "3")
    client.hg("branch", "-q", *hg, "stable")
    _change(client, repo, BOB, "Stable fixes", {"stable.txt": b"s\n"}, at + 1000)  # 10 stable, from 3
    _change(client, repo, CAROL, "fix crash on stable", {"src/main.py": b"main2\n"}, at + 1100)  # 11 stable
    client.hg("update", "-q", *hg, "6")
    _change(client, repo, BOB, "Close side", {"side/notes.txt": b"n3\n"}, at + 1200, "--close-branch")  # 12
    client.hg("update", "-q", *hg, "default")
    _change(client, repo, ANN, "Rework parser\n\nMERGE-safe now.", {"src/parser.py": b"p3\n",
                                                                    "deep/er/down/f.txt": b"f2\n"}, at + 1300)  # 13
    client.hg("merge", "-q", *hg, "stable")
    _change(client, repo, BOB, "merge stable", {}, at + 1400)  # 14: merge of 13 and 11
    _change(client, repo, CAROL, "Update docs for *.txt files", {"docs/guide.txt": b"guide2\n",
                                                                   "notes.txt": b"top\n"}, at + 1500)  # 15
    client.hg("update", "-q", *hg, "stable")
    _change(client, repo, ANN, "stable: backport fix", {"src/main.py": b"main3\n"}, at + 1600)  # 16 stable head
    client.hg("update", "-q", *hg, "default")
    _change(client, repo, LOUD_BOB, "Fix typo in docs", {"docs/api.txt": b"API\n"}, at + 1700)  # 17
    client.hg("tag", "-q", *hg, "-u", BOB, "-d", f"{at + 1800} 0", "v3")  # 18: tags 17
    _change(client, repo, ANN, "Prepare release", {"VERSION": b"3\n"}, at + 1900)  # 19
    client.hg("phase", "-q", *hg, "--public", "-r", "19")  # 19 and its ancestors; 12 and 16 stay draft
    _change(client, repo, CAROL, "WIP: refactor main", {"src/main.py": b"main4\n"}, at + 2000)  # 20 draft
    _change(client, repo, BOB, "more WIP", {"deep/er/down/f.txt": b"f3\n"}, at + 2100)  # 21 draft
    _change(client, repo, ANN, "secret experiment", {"secret/plan.txt": b"plan\n"}, at + 2200)  # 22 secret
    _change(client, repo, ANN, "secret fix", {"secret/plan.txt": b"plan2\n"}, at + 2300)  # 23 secret
    client.hg("phase", "-q", *hg, "--secret", "--force", "-r", "22::")
    client.hg("tag", "-q", *hg, "--local", "-r", "2", "mine")
    client.hg("bookmark", "-q", *hg, "-r", "2", "book")
    client.hg("bookmark", "-q", *hg, "-r", "17", "book@other")
    client.hg("bookmark", "-q", *hg, "-r", "21", "feature-x")
    client.hg("bookmark", "-q", *hg, "-r", "23", "hidden-work")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``_history``, made once for the module (some forty hg commands): each test serves a copy."""
    base = tmp_path_factory.mktemp("web-revset")
    _history(Client(client_environment(base), base), base / "web")
    return base / "web"


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client, history: Path) -> tuple[RunningServer, Path]:
    return hg_history_served(make_server, client, "web", lambda _, repo: shutil.copytree(history, repo))


def _nodes(client: Client, repo: Path) -> list[str]:
    """Every changeset's id, by number (the secret ones too)."""
    return client.hg("log", "-R", str(repo), "-r", "all()", "-T", "{node}\n").stdout.split()


REVSETS = [
    # functions
    "all()", "none()", "merge()", "head()", "closed()", "branchpoint()", "tagged()", "tag()", "public()",
    "draft()", "secret()", "ancestor(4, 5)", "ancestor(12, 16)", "ancestor(6, 11, 16)", "ancestors(v2)",
    "ancestors(tip, 2)", "ancestors(tip, 0)", "ancestors(null)", "descendants(1, 1)", "descendants(side)",
    "descendants(2, 0)", "children(0)", "children(3)", "children(merge())", "author(bob)", "user(ann)",
    "user(BOB)", "user('@example.org')", "desc(fix)", "desc(FIX)", "desc('fix typo')", "keyword(MERGE)",
    "keyword(txt)", "keyword(example)", "bookmark(book)", "bookmark('book@other')", "bookmark(feature-x)",
    "branch(default)", "branch(side)", "branch(tip)", "branch(13)", "branch('literal:side')", "tag(v1)",
    "follow(src/main.py, tip)", "follow(src, 5)", "follow('glob:src/*.py', tip)",
    "follow(docs/guide.txt, all())", "follow(deep, startrev=tip) and user(ann)", "follow(nosuch.txt, tip)",
    "followlines(src/main.py, 1, startrev=tip)", "followlines(src/main.py, 1:1, startrev=3, descend=true)",
    "followlines('glob:src/ma*.py', 1:1, startrev=tip)",
    "tag(tip)", "tag(mine)", "file('deep/**')", "file('*.txt')", "file('src/*.py')", "file(README.txt)",
    "file('**.py')", "file('docs/{api,guide}.txt')", "file('deep/er/down/[fh].txt')", "file('deep/er/*/?.txt')",
    "file(deep)", "file('nosuch/**')", "first(reverse(all()), 3)", "first(all())", "last(all(), 3)",
    "last(branch(side))", "limit(all(), 2, 1)", "limit(all())", "limit(all(), 3, 100)", "limit(draft(), 1)",
    "heads(all())", "heads(branch(stable))", "heads(all()) and not closed()", "max(all())",
    "max(branch(stable))", "min(branch(side))", "min(all() - 0)", "only(tip, 3)", "only(tip)", "only(16)",
    "only(16, 14)", "p1(merge())", "p2(merge())", "p1(0)", "p2(14)", "parents(merge())", "parents(8 + 14 + 0)",
    "present(nosuch)", "present(nosuch) + 3", "present(nosuch::tip)", "rev(3)", "rev(-1)", "rev(22)", "rev(99)",
    "reverse(all())", "reverse(0:3)", "roots(all())", "roots(branch(stable))", "roots(draft())",
    "id(zz)", "sort(all(), -date)", "sort(all(), date)", "sort(all(), user)", "sort(all(), '-user date')",
    "sort(all(), author)", "sort(all(), branch)", "sort(all(), '-branch rev')", "sort(all(), desc)",
    "sort(all(), -desc)", "sort(all(), node)", "sort(all(), -node)", "sort(all(), rev)", "sort(all(), -rev)",
    "sort(merge() + 3 + 1)",
    # operators
    "2+0+1", "2|0|1", "side + stable", "stable | side", "0::3", "3::0", "v1::v2", "v1..v2", "::v1", "v3::",
    "book@other::", "::3 and 2::", "5:2", "2:5", ":3", "19:", "tip:", "side:", "null:2", "null::1", "0 + null",
    "(:)", "all() and :", "0:3 & 2:5", "merge() or closed()", "not public()", "!merge()", "all() - draft()",
    "2:5 - 3", "0 - 1", "-3:", "0::-3", "-24::-20", "5::-3", "feature-x - 20", "feature-x^", "tip^", "tip^2",
    "14^2", "14^1", "14^0", "8^^", "tip~2", "tip~0", "tip^^~2", "8~-1", "3%1", "21%16", "21%", "'v' ## 1",
    "1 ## 2", "desc('fi' ## 'x')", "tag('v' ## 2)", "3 and 4", "(merge() or 3) and not 8",
    # nested
    "first(sort(desc(fix), -date), 2)", "heads(ancestors(v2) - ancestors(v1))",
    "limit(reverse(branch(default)), 3, 2)", "only(heads(all()) and not closed(), stable)",
    "children(branchpoint()) and draft()", "max(ancestors(16) and merge())",
    "roots(descendants(v1) - descendants(v2))", "ancestors(tip) - ancestors(16)",
    "sort(user(bob) or desc(merge), -user)", "last(sort(file('**.txt'), date), 2) + first(public())",
    "p1(p2(merge())) or children(p1(v2))", "(tip~2)^:: and not (public() and not merge())",
    "descendants(ancestor(16, 12)) & branch(side) | tag(v1)",
    # status, extras, sizes
    "adds('notes.txt')", "adds('side/notes.txt')", "adds('glob:**.txt')", "adds('*.txt')", "adds('path:deep')",
    "adds('rootfilesin:docs')", "adds('')", "modifies(README.txt)", "modifies('glob:src/**')",
    "modifies('relglob:*.py')", "modifies('path:README.txt')", "removes('src/*.py')", "removes('glob:**')",
    "3 + adds('notes.txt')", "first(modifies(README.txt), 2)", "merge() and modifies('**')",
    "extra(branch, side)", "extra(branch)", "extra(close)", "extra(label=branch, value='literal:stable')",
    "extra(nosuch)", "extra(branch, SIDE)", "converted()", "converted(abc)", "commonancestors(16 + 12)",
    "commonancestors(v2)", "heads(commonancestors(16 + 12))", "commonancestors(none())", "hidden()",
    "conflictlocal()", "conflictother() + 1", "expectsize(all(), 22)", "expectsize(merge(), 1:5)",
    "expectsize(tip, :1) + 3", "expectsize(all(), 20:)",
    "filelog(README.txt)", "filelog('docs/guide.txt')", "filelog('secret/plan.txt')", "filelog('./src/../README.txt')",
    "filelog(nosuch)", "filelog(deep)", "filelog('side/notes.txt') and draft()", "filelog('foo:bar')",
    "matching(3)", "matching(3, user)", "matching(6, 'branch author')", "matching(0, files)", "matching(14, parents)",
    "matching(2, summary)", "matching(merge(), phase)", "matching(tip, 'user date')", "matching(1 + 5, user)",
    "matching(4, 'summary description')", "matching(3, '')",
    "limit(all(), 2, ())", "limit(all(), (), 1)", "first(all(), ())", "limit(all(), n=())",
    # where hg's optimizer rewrites (only(), a difference, _notpublic()) and null tells them apart
    "null - public()", "(null + 3) and (not public())", "::null - ::1", "::null and not ::1", "not ::3 and ::16",
    "ancestors(tip, 1) and not ::3", "(null + 4) and not branchpoint()", "not public() - merge()",
    "4 + null - public() - closed()", "ancestor(closed(), rev(17) + null - public())^1",
    # dates (zones named, or far from a day's edge, so that the host's zone does not matter)
    "date('2023-11-14 22:20 UTC')", "date('<2023-11-14 22:25 +0000')", "date('>2023-11-14 23:30 +0100')",
    "date('2023-11-14 22:15 UTC to 2023-11-14 22:30 UTC')", "date('1700000500 0')", "date('2023-11-14T22:21:40Z')",
    "date('Tue Nov 14 22:30:00 2023 +0000')", "date('2023-11-14 22:25:00+01:00')", "date(2023)",
    "date('2023-11')", "date('Nov 2023')", "date('<2023-11-10')", "date('>2023-11-20')", "date(-1)",
    "date(-10000)", "date('today')", "date('2022 to 2024') and merge()", "sort(date('>2023-11-14 22:30 GMT'), user)",
]
"""Revsets hgweb evaluates: every function and operator hgwire evaluates."""

KEYWORD_SEARCHES = [
    "matching(3, nosuch)", "matching()", "matching(1, 2, 3)",
    "limit((), 2)", "ancestors(4, ())", "sort(all(), ())", "extra(branch, ())", "last(all(), ())",
    "date('nonsense')", "date('')", "date('<')", "date('-x')", "date('2023-13-45')", "date(1 2 3)",
    "fix (typo)", "foo-bar", "a:b", "Merge: side", "user(", "'unterminated", "re:x", "desc('re:fix')",
    "desc(r're:x')", "user(\"re:a\")", "branch('re:s')", "file('re:.*txt')", "branch(re:s)",
    "branch(literal:side)", "rev(x)", "limit(all(), x)", "limit(all(), -1)", "ancestors(tip, -1)",
    "sort(all(), foo)", "nosuch::tip", "foo(1)", "grep(x)", "contains(a)", "::", ":", "(::)", ":: - 0",
    "-1", "-2", "-1:", "8^3", "3~-2", "5:: - closed()", "3% - tag()", "desc(fix) or", "merge(1)", "all(1)",
    "desc()", "user()", "keyword()", "heads()", "first()", "max()", "rev()", "id()", "bookmark()",
    "bookmark(hidden-work)", "bookmark(nosuch)", "tag(nosuch)", "branch(nosuch)", "22", "all() + 22",
    "23::", "MERGE & side", "fix typo", "WIP:", "x - y", "0 ## 3", "2 ## 8", "(merge)", '"merge"', "'side'",
    "fix-typo", "3#foo[1]", "3[1]", "tip[0]",
    "followlines(src/main.py, 1, startrev=all())", "followlines(nosuch.txt, 1, startrev=tip)",
    "followlines(src/main.py, 1, startrev=tip, descend=maybe)", "followlines(src/main.py, startrev=tip)",
    "followlines(src/main.py, 0:1, startrev=tip)", "followlines(src/main.py, 1:, startrev=tip)",
    "followlines('glob:src/*.py', 1, startrev=tip)", "followlines(src/main.py, 1, startrev=tip, startrev=0)",
    "follow(README.txt)", "followlines(README.txt, 1:1)",
]
"""Queries hgweb answers with its keyword search: no revset, a parse error, a ``re:`` string, a function
it does not count as safe, a revision it cannot find (the secret ones), bad arguments. Some are less
plain: ``:`` and ``::`` alone are trees too shallow to be revsets (``(:)`` is one), ``-1`` and ``-2``
count the secret changesets, ``x:: - y`` is ``x::(-y)``, a negation hg cannot evaluate, ``bookmark()``
meets the secret changeset's bookmark, ``3~-2`` asks for the one child of a branchpoint, a bare
subscript (``3[1]``) is a parse error, not a relation, and ``follow(FILE)``/``followlines()`` from
``.`` meet the working directory's parent, the secret changeset."""

EXACT_SEARCHES = ["tip", "null", "v2", "mine", "book@other", "feature-x", "stable", "-3", "-24", "0", "21"]
"""Queries that name a revision: ``-3`` is the third from the end counting the secret ones (21)."""

MODES = {"revset": b"revset expression search", "keyword": b"literal keyword search",
         "exact": b"exact revision search"}


def _compare(ours: Answer, theirs: Answer, page: str, query: str) -> None:
    assert (ours.status, ours.body) == (theirs.status, theirs.body), (
        f"{page} for {query!r}: hgwire {ours.status}, hg serve {theirs.status}\n"
        f"hgwire:   {ours.body[:300]!r}\nhg serve: {theirs.body[:300]!r}")


def _mode(answer: Answer) -> bytes:
    """The mode a raw search page names (its ``# Mode`` line)."""
    assert answer.status == 200, (answer.status, answer.body[:300])
    return answer.body.split(b"# Mode ", 1)[1].split(b"\n", 1)[0]


def _search_pages(query: str, revcount: int) -> list[str]:
    q = quote(query, safe="")
    return [f"json-changelog?rev={q}", f"log?style=raw&rev={q}", f"json-shortlog?rev={q}&revcount={revcount}"]


def _node_queries(nodes: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Revsets, keyword searches and exact searches by changeset ids (as the lists above)."""
    visible = nodes[:VISIBLE]
    shared = next(c for c in "0123456789abcde" if sum(node.startswith(c) for node in visible) > 1)
    revsets = [f"id({nodes[3][:12]})", f"id({nodes[3]})", f"{nodes[3][:12]}::", f"{nodes[8][:12]}^2",
               f"only({nodes[21][:12]}, v2)", f"id({nodes[0][:4]}) + id({nodes[14][:7]})",
               f"id({shared})",  # a prefix of several: no revision
               f"id({nodes[23][:12]})"]  # a secret one: no revision
    keyword = [nodes[23][:12], f"{nodes[22][:12]}::", f"{nodes[23]} or 3"]
    exact = [nodes[21][:12], nodes[5]]
    return revsets, keyword, exact


def test_a_revset_search_answers_as_hg_serve_does(served: tuple[RunningServer, Path], client: Client) -> None:
    """Each curated query on the three pages (``json-shortlog`` with a revcount of 1, 3, 5 or 100),
    in the mode its list says (read from hg serve's raw page)."""
    server, repo = served
    nodes = _nodes(client, repo)
    by_node = _node_queries(nodes)
    lists = {"revset": REVSETS + by_node[0], "keyword": KEYWORD_SEARCHES + by_node[1],
             "exact": EXACT_SEARCHES + by_node[2]}
    assert len(lists["revset"]) > 150 and len(lists["keyword"]) > 60
    found = 0
    with _hg_serve(client, repo) as port:
        for mode, queries in lists.items():
            for n, query in enumerate(queries):
                for page in _search_pages(query, (1, 3, 5, 100)[n % 4]):
                    theirs = raw(port, "GET", f"/{page}")
                    if page.startswith("log"):
                        assert _mode(theirs) == MODES[mode], (query, theirs.body[:300])
                        found += mode == "revset" and b"\nchangeset:" in theirs.body
                    _compare(raw(server.port("http"), "GET", f"/web/{page}"), theirs, page, query)
    assert found > 120


RANDOM_QUERIES = 300
REVS = [str(n) for n in range(VISIBLE)]
NAMES = ["tip", "null", "v1", "v2", "v3", "mine", "book", "book@other", "feature-x", "default", "side", "stable",
         "-3", "-5", "-24", "'v2'", '"stable"']
WORDS = ["fix", "FIX", "Merge", "typo", "parser", "ann", "Bob", "carol", "example", "docs", "WIP", "side",
         "stable", "release", "'fix typo'", "'@example.org'"]
BRANCHES = ["default", "side", "stable", "'literal:side'", "tip", "13"]
TAGS = ["v1", "v2", "v3", "tip", "'v' ## 3", "mine"]
BOOKMARKS = ["book", "feature-x", "'book@other'"]
PATTERNS = ["'deep/**'", "'*.txt'", "'src/*.py'", "'**/f.txt'", "README.txt", "'side/notes.txt'", "'docs/*'",
            "'**.py'", "'docs/{api,guide}.txt'"]
SORT_KEYS = ["rev", "-rev", "branch", "-branch", "desc", "-desc", "user", "-user", "author", "-author", "date",
             "-date", "node", "-node", "'-date user'", "'branch -rev'"]
NILADIC = ["all()", "none()", "merge()", "head()", "branchpoint()", "closed()", "draft()", "public()",
           "secret()", "tagged()", "tag()"]
UNARY = ["ancestors", "descendants", "children", "heads", "roots", "parents", "p1", "p2", "max", "min",
         "reverse", "first", "last", "present", "only", "branch", "limit"]
JOINED = ["1 ## 2", "2 ## 0", "'v' ## 1", "'ti' ## 'p'", "1 ## 5"]


def _expression(rng: random.Random, depth: int, nodes: list[str], top: bool = False) -> str:
    """A random query of the revset grammar hgwire evaluates, nested ``depth`` deep at most."""
    if depth == 0 or (not top and rng.random() < 0.2):
        return _atom(rng, nodes)

    def sub() -> str:
        return _expression(rng, depth - 1, nodes)

    n = rng.randint(0, 4)
    forms: list[Callable[[], str]] = [
        lambda: f"{rng.choice(UNARY)}({sub()})",
        lambda: f"{rng.choice(['ancestors', 'descendants', 'first', 'last', 'limit'])}({sub()}, {n})",
        lambda: f"limit({sub()}, {n}, {rng.randint(0, 3)})",
        lambda: f"{rng.choice(['only', 'ancestor'])}({sub()}, {sub()})",
        lambda: f"sort({sub()}, {rng.choice(SORT_KEYS)})",
        lambda: rng.choice(["::", "..", ":", " - ", " % "]).join([sub(), sub()]),
        lambda: rng.choice(["::", ":"]) + sub(),
        lambda: sub() + rng.choice(["::", ":", "%"]),
        lambda: f" {rng.choice(['and', '&', 'or', '|', '+'])} ".join([sub(), sub()]),
        lambda: rng.choice(["not ", "!"]) + sub(),
        lambda: sub() + rng.choice(["^", "^0", "^1", "^2", f"~{n}"]),
        lambda: f"({sub()})",
        lambda: f"{sub()} and {rng.choice(['user', 'author', 'desc', 'keyword'])}({rng.choice(WORDS)})",
        lambda: f"{sub()} - file({rng.choice(PATTERNS)})",
        lambda: f"{sub()} and {rng.choice(['adds', 'modifies', 'removes'])}({rng.choice(PATTERNS)})",
        lambda: f"{sub()} or extra(branch, {rng.choice(BRANCHES)})",
        lambda: f"commonancestors({sub()})",
        lambda: f"{sub()} + {rng.choice(NILADIC)}",
        lambda: f"{sub()} and branch({rng.choice(BRANCHES)})",
        lambda: f"{sub()} or tag({rng.choice(TAGS)})",
        lambda: f"{sub()} or bookmark({rng.choice(BOOKMARKS)})",
        lambda: f"rev({rng.choice(REVS)}) + {sub()}",
        lambda: f"{sub()} - {rng.choice(NILADIC)}",
        lambda: f"id({rng.choice(nodes)[:rng.choice((4, 12, 40))]}) | {sub()}",
    ]
    return rng.choice(forms)()


def _atom(rng: random.Random, nodes: list[str]) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(REVS)
    if roll < 0.7:
        return rng.choice(NAMES)
    if roll < 0.9:
        return rng.choice(NILADIC)
    if roll < 0.95:
        return rng.choice(nodes)[:12]
    return rng.choice(JOINED)


def _reordered(ours: Answer, theirs: Answer, page: str, query: str) -> bool:
    """The same changesets in another order, for a query where hg's ``reverse()`` or ``sort()`` of
    a filter may have turned the whole repository's set around in place (see
    ``test_a_reversed_filter_does_not_reorder_the_rest_of_the_query``)."""
    if (ours.status, ours.body) == (theirs.status, theirs.body) or ours.status != 200 or theirs.status != 200:
        return False
    if "reverse(" not in query and "sort(" not in query:
        return False
    if page.startswith("json"):
        mine, hers = json.loads(ours.body), json.loads(theirs.body)
        key = lambda entry: entry["node"]
        return bool(sorted(mine["entries"], key=key) == sorted(hers["entries"], key=key)
                    and {**mine, "entries": 0} == {**hers, "entries": 0})
    head, _, rest = ours.body.partition(b"\n\n")
    their_head, _, their_rest = theirs.body.partition(b"\n\n")
    return head == their_head and sorted(rest.split(b"\n\n")) == sorted(their_rest.split(b"\n\n"))


def test_random_revsets_answer_as_hg_serve_does(served: tuple[RunningServer, Path], client: Client) -> None:
    """300 seeded expressions of the grammar (depth 4 at most) over the history's numbers, names,
    words and ids, each on ``json-changelog`` (100 of them) and the raw log: mostly revsets, some
    keyword searches (``x:: - y`` is ``x::(-y)`` to hg, a negation it cannot evaluate).  The one
    difference allowed is hg's order after a ``reverse()``/``sort()`` that reversed its input in
    place, in few queries: the same changesets."""
    server, repo = served
    nodes = [node for node in _nodes(client, repo)[:VISIBLE] if not node.startswith("ffff")]  # wdir's
    rng = random.Random(20240611)
    queries: list[str] = []
    while len(queries) < RANDOM_QUERIES:
        query = _expression(rng, 4, nodes, top=True)
        if len(query) <= 1000 and query not in queries:
            queries.append(query)
    modes: dict[bytes, int] = {}
    reordered = []
    with _hg_serve(client, repo) as port:
        for query in queries:
            q = quote(query, safe="")
            for page in (f"json-changelog?rev={q}&revcount=100", f"log?style=raw&rev={q}&revcount=100"):
                theirs = raw(port, "GET", f"/{page}")
                if page.startswith("log"):
                    modes[_mode(theirs)] = modes.get(_mode(theirs), 0) + 1
                ours = raw(server.port("http"), "GET", f"/web/{page}")
                if _reordered(ours, theirs, page, query):
                    reordered.append(query)
                    continue
                _compare(ours, theirs, page, query)
    assert modes.get(MODES["revset"], 0) > 200 and modes.get(MODES["keyword"], 0) > 0, modes
    assert len(reordered) <= 6, reordered


def test_a_reversed_filter_does_not_reorder_the_rest_of_the_query(served: tuple[RunningServer, Path],
                                                                  client: Client) -> None:
    """``reverse(merge()) + tag()``: the merges newest first, then the tagged changesets oldest
    first, as each part alone lists them (``hg log -r`` of each).  hg's ``reverse()`` of a filter
    reverses the set the filter reads, which here is the whole repository's shared by the query's
    other parts, so that ``hg serve`` lists the tags newest first; hgwire answers what the revset
    says."""
    server, repo = served

    def revs(spec: str) -> list[int]:
        return [int(r) for r in client.hg("log", "-R", str(repo), "-r", spec, "-T", "{rev}\n").stdout.split()]

    merges, tags = revs("reverse(merge())"), revs("tag()")
    assert len(merges) >= 2 and len(tags) >= 2
    expected = [*merges, *(t for t in tags if t not in merges)][::-1]  # hgweb lists reverse(QUERY)
    found = json.loads(raw(server.port("http"), "GET", "/web/json-changelog?rev=" + quote(
        "reverse(merge()) + tag()", safe="") + "&revcount=100").body)["entries"]
    nodes = _nodes(client, repo)
    assert [nodes.index(entry["node"]) for entry in found] == expected


SECRET_QUERIES = ["secret()", "all()", "bookmark(hidden-work)", "bookmark('hidden-work')", "bookmark()",
                  "heads(all())", "head()", "hidden-work", "22", "23", "-1", "-2", "rev(22)", "rev(23)", "22:23",
                  "tip", "tip:", "max(all())", "last(all(), 5)", "descendants(20)", "children(21)", "draft()",
                  "not public()", "ancestors(hidden-work)", "sort(all(), -date)", "roots(secret())",
                  "branch(default)", "desc(secret)", "keyword(secret)", "user(ann)", "file('secret/**')",
                  "present(hidden-work)", "only(22)", "21::", "first(sort(all(), -rev))", "secret"]


def test_a_secret_changeset_is_in_no_answer(served: tuple[RunningServer, Path], client: Client) -> None:
    """No search lists the secret changesets: not ``secret()`` (which is empty), ``all()``, their
    bookmark, the heads, their numbers or ids, ``tip`` (hgweb's is 21)."""
    server, repo = served
    nodes = _nodes(client, repo)
    secrets = set(nodes[VISIBLE:])
    http = server.port("http")
    queries = [*SECRET_QUERIES, *(f"id({node[:12]})" for node in secrets), *(f"{node[:12]}::" for node in secrets)]
    for query in queries:
        q = quote(query, safe="")
        answer = raw(http, "GET", f"/web/json-changelog?rev={q}&revcount=100")
        assert answer.status == 200, (query, answer.status, answer.body[:300])
        listed = {entry["node"] for entry in json.loads(answer.body)["entries"]}
        assert not listed & secrets, query
        assert b"secret experiment" not in answer.body and b"secret fix" not in answer.body, query
        text = raw(http, "GET", f"/web/log?style=raw&rev={q}&revcount=100")
        assert text.status == 200, (query, text.status, text.body[:300])
        assert not any(b"changeset:   %s\n" % node.encode() in text.body for node in secrets), query
    for query in ("secret()", "rev(22)", "descendants(21) - 21"):  # revsets of nothing
        text = raw(http, "GET", f"/web/log?style=raw&rev={quote(query, safe='')}")
        assert _mode(text) == MODES["revset"] and b"changeset:" not in text.body, query
    listed = json.loads(raw(http, "GET", f"/web/json-changelog?rev={quote('all()', safe='')}&revcount=100").body)
    assert [entry["node"] for entry in listed["entries"]] == nodes[VISIBLE - 1::-1]


NOT_EVALUATED = ["filelog('glob:*.txt')", "matching(3, diff)", "matching(3, 'user substate')",
                 "wdir()",
                 "bundle()", "_followfirst()", "3#generations[1]", "tip#generations[-1:]",
                 "3#generations", "3 + filelog('path:docs')", "first(filelog('glob:docs/*'), 2)",
                 "ancestors(3#generations[0])"]
"""Revsets hg serve evaluates (functions it counts as safe, relations) that hgwire does not."""


def test_a_revset_hgwire_does_not_evaluate_is_refused(served: tuple[RunningServer, Path]) -> None:
    """A function hg counts as safe but hgwire does not evaluate, alone or nested, and the relation
    syntax (``x#generations[n]``) are a 404 naming revset search, on every search page (``wdir()``
    reads the working directory: today's date in hg serve)."""
    server, _repo = served
    http = server.port("http")
    for query in NOT_EVALUATED:
        for page in _search_pages(query, 3):
            answer = raw(http, "GET", f"/web/{page}")
            assert answer.status == 404 and b"revset" in answer.body, (query, page, answer.status, answer.body[:300])


def _bounds() -> list[str]:
    def nest(times: int, inner: str, left: str, right: str) -> str:
        return left * times + inner + right * times

    queries = [nest(499, "1", "(", ")"), "(" * 1000, ")" * 1000, nest(90, "tip", "ancestors(", ")"),
               nest(110, "tip", "only(", ", 3)"), nest(70, "all()", "sort(", ", -date)"),
               nest(76, "21", "p1(parents(", "))"), "+".join(["0", "1"] * 250), " or ".join(["all()"] * 111),
               "::".join(["0"] * 333), ":".join(["1"] * 500), "not " * 249 + "1", "!" * 999 + "1", "-" * 999 + "1",
               "tip" + "^" * 997, "21" + "~1" * 499, nest(249, "0", "(", "+1)"), "0" + "::0" * 333]
    for query in queries:
        assert 900 < len(query) <= 1000, (len(query), query[:20])
    return queries


def test_deep_and_wide_queries_are_answered_promptly(served: tuple[RunningServer, Path]) -> None:
    """Up to the 1000-byte bound: 499 nested parentheses (a RecursionError and a 500 in hg serve),
    ninety nested ``ancestors``, a thousand-term union, long chains of prefix and postfix operators;
    each a page or a 404 within seconds, never a 500, and the server keeps serving."""
    server, _repo = served
    http = server.port("http")
    for query in _bounds():
        for page in (f"json-changelog?rev={quote(query, safe='')}", f"log?style=raw&rev={quote(query, safe='')}"):
            started = time.monotonic()
            answer = raw(http, "GET", f"/web/{page}")
            assert answer.status in (200, 404), (query[:40], answer.status, answer.body[:300])
            assert time.monotonic() - started < 5, query[:40]
            if answer.status == 200 and page.startswith("json"):
                json.loads(answer.body)
    assert raw(http, "GET", "/web/json-changelog?rev=" + "(" * 1000 + "1" + ")" * 1000).status == 414
    assert raw(http, "GET", "/web/json-rev/0").status == 200
    found = json.loads(raw(http, "GET", "/web/json-changelog?rev=merge").body)
    assert [entry["desc"] for entry in found["entries"]] == ["merge stable", "Rework parser\n\nMERGE-safe now.",
                                                              "Merge side into default"]


def test_a_revset_beyond_its_budget_is_refused_with_a_sentence(served: tuple[RunningServer, Path]) -> None:
    """The work a search may do is bounded (steps per changeset of the repository): past it, a
    sentence saying to narrow the query or clone, not a page computed for minutes."""
    from backends.hg import open_repository, revset

    _server, repo = served
    opened = open_repository(str(repo), "web")
    assert opened is not None
    query = b"sort(all(), desc) and keyword(parser) and file('**')"
    assert revset.search_revs(opened, query) is not None
    with pytest.raises(revset.NotServed, match="narrow it"):
        revset.search_revs(opened, query, budget=50)


def _working_copy_history(client: Client, repo: Path) -> None:
    """Five changesets and a merge, a file revision linked to a secret changeset that a later
    visible one also has, a graft of a graft, and the working directory checked out at changeset 2
    (not the tip): what ``.`` names."""
    hg = ("-R", str(repo))
    client.hg("init", str(repo))
    for n in range(3):
        _change(client, repo, ANN, f"change {n}", {f"f{n}.txt": b"%d\n" % n}, 1_700_000_000 + n)
    client.hg("update", "-q", *hg, "1")
    _change(client, repo, BOB, "side", {"side.txt": b"s\n"}, 1_700_000_010)
    client.hg("merge", "-q", *hg, "2")
    client.hg("commit", "-q", *hg, "-u", BOB, "-d", "1700000020 0", "-m", "merge")
    # the same file revision made first in a secret changeset (its link), then in a visible one
    for n, phase in ((5, "--secret"), (6, "--draft")):
        client.hg("update", "-q", *hg, "1")
        _change(client, repo, ANN, f"same g {n}", {"g.txt": b"same\n"}, 1_700_000_030 + n)
        client.hg("phase", "-q", *hg, phase, "--force", "-r", ".")
    client.hg("update", "-q", *hg, "0")  # grafts: 7 from 3, then 8 from 7
    client.hg("graft", "-q", *hg, "-r", "3", "-u", CAROL, "-D")
    client.hg("update", "-q", *hg, "2")
    client.hg("graft", "-q", *hg, "-r", "7", "-u", CAROL, "-D")
    client.hg("update", "-q", *hg, "2")


def test_dot_is_the_working_directory_s_parent(make_server: Callable[..., RunningServer], client: Client) -> None:
    """``.`` names the checked-out changeset, on a revision's pages and in a search, and
    ``p1()``, ``parents()`` and ``follow()`` read it, byte for byte as ``hg serve``; so do
    ``filelog()``, ``origin()``/``destination()`` of grafts, and ``bisect()`` (no bisection)."""
    server, repo = hg_history_served(make_server, client, "wc", _working_copy_history)
    queries = [".", "p1()", "p2()", "parents()", "follow()", "follow(startrev=3)", ".^", "::. and not 0", ". + 4",
               "only(4, .)", "follow(startrev=null)", "filelog(g.txt)", "file(g.txt)", "origin()", "origin(8)",
               "origin(7 + 2)", "destination()", "destination(3)", "destination(7)", "bisect(good)", "bisect(range)",
               "bisected(untested)", "bisect(nonsense)", "extra(source)", "stack()", "stack(6)", "stack(8 + 6)",
               "stack(4)", "stack(null)"]
    pages = ["json-rev/.", "raw-rev/.", "json-shortlog/.", "json-file/./f0.txt", "json-manifest/.",
             *(page for query in queries for page in _search_pages(query, 5))]
    with _hg_serve(client, repo) as port:
        for page in pages:
            _compare(raw(server.port("http"), "GET", f"/wc/{page}"), raw(port, "GET", f"/{page}"), page, page)
    answer = json.loads(raw(server.port("http"), "GET", "/wc/json-changelog?rev=follow%28%29").body)
    assert [entry["desc"] for entry in answer["entries"]] == ["change 2", "change 1", "change 0"]
    for query, count in (("origin(8)", 1), ("destination(3)", 2), ("filelog(g.txt)", 1)):
        answer = json.loads(raw(server.port("http"), "GET", "/wc/json-changelog?rev=" + quote(query)).body)
        assert len(answer["entries"]) == count, (query, answer)


def _obsolescence_history(client: Client, repo: Path) -> None:
    """Changesets rewritten with obsolescence markers (``[experimental] evolution = all`` in the
    repository's hgrc, read by hg serve and hgwire alike): an amended changeset whose children
    become orphans, a pruned one kept visible by a bookmark (extinct), one rewritten twice (its
    successors content-divergent), and a public changeset with a draft successor
    (phase-divergent)."""
    hg = ("-R", str(repo))
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[experimental]\nevolution = all\n")

    def node() -> str:
        return client.hg("log", *hg, "-r", ".", "-T", "{node}").stdout

    _change(client, repo, ANN, "base", {"base.txt": b"b\n"}, 1_700_000_000)  # 0
    client.hg("phase", "-q", *hg, "--public", "-r", "0")
    _change(client, repo, ANN, "a", {"a.txt": b"a\n"}, 1_700_000_001)  # 1, amended below: obsolete
    _change(client, repo, BOB, "b", {"b.txt": b"b\n"}, 1_700_000_002)  # 2 orphan
    _change(client, repo, BOB, "c", {"c.txt": b"c\n"}, 1_700_000_003)  # 3 orphan
    client.hg("update", "-q", *hg, "1")
    (repo / "a.txt").write_bytes(b"a2\n")
    client.hg("commit", "-q", "--amend", *hg, "-u", ANN, "-d", "1700000004 0", "-m", "a amended")  # 4
    amended = node()
    _change(client, repo, CAROL, "pruned", {"p.txt": b"p\n"}, 1_700_000_005)  # 5
    client.hg("debugobsolete", "-q", *hg, node())
    client.hg("bookmark", "-q", *hg, "-r", node(), "keep-pruned")
    outcomes = []
    for n in (6, 7, 8):  # 6 rewritten into 7 and into 8
        client.hg("update", "-q", *hg, amended)
        _change(client, repo, CAROL, f"d{n}", {"d.txt": b"%d\n" % n}, 1_700_000_000 + n)
        outcomes.append(node())
    client.hg("debugobsolete", "-q", *hg, outcomes[0], outcomes[1])
    client.hg("debugobsolete", "-q", *hg, outcomes[0], outcomes[2])
    pair = []
    for n in (9, 10):  # 9 rewritten into 10, then 9 made public
        client.hg("update", "-q", *hg, amended)
        _change(client, repo, ANN, f"e{n}", {"e.txt": b"%d\n" % n}, 1_700_000_000 + n)
        pair.append(node())
    client.hg("debugobsolete", "-q", *hg, pair[0], pair[1])
    client.hg("phase", "-q", *hg, "--hidden", "--public", "-r", pair[0])


def test_obsolescence_revsets_answer_as_hg_serve_does(make_server: Callable[..., RunningServer],
                                                       client: Client) -> None:
    """``obsolete()``, ``orphan()``, ``unstable()``, ``extinct()``, ``phasedivergent()``,
    ``contentdivergent()`` and ``successors()`` on a history with each kind, byte for byte as
    ``hg serve`` (which hides what it hides: the changesets pruned or rewritten without a visible
    descendant or a bookmark)."""
    server, repo = hg_history_served(make_server, client, "evolved", _obsolescence_history)
    queries = ["obsolete()", "orphan()", "unstable()", "extinct()", "phasedivergent()", "contentdivergent()",
               "successors(1)", "successors(all())", "successors(keep-pruned)", "obsolete() and draft()",
               "not obsolete()", "orphan() - 3", "heads(all()) and unstable()", "all()", "obsolete(1)"]
    with _hg_serve(client, repo) as port:
        for query in queries:
            for page in _search_pages(query, 5):
                _compare(raw(server.port("http"), "GET", f"/evolved/{page}"), raw(port, "GET", f"/{page}"), page, query)
    listed = json.loads(raw(server.port("http"), "GET", "/evolved/json-changelog?rev=orphan%28%29").body)
    assert sorted(entry["desc"] for entry in listed["entries"]) == ["b", "c"]
    for query, expected in (("contentdivergent()", ["d7", "d8"]), ("phasedivergent()", ["e10"]),
                            ("extinct()", ["pruned"]), ("obsolete()", ["a", "pruned"])):
        listed = json.loads(raw(server.port("http"), "GET", "/evolved/json-changelog?rev=" + quote(query)).body)
        assert sorted(entry["desc"] for entry in listed["entries"]) == expected, query
