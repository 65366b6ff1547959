"""The pages for browsers (``protocols.hg_web_html``) with any history in them: whatever names,
messages, paths and lines hold, the document has only the renderer's own elements and
attributes, no event handler, no script, and every link stays under the repository's URL."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import hg_web_html as html

URL = "http://example.test/team/app"
ELEMENTS = {"html", "head", "meta", "title", "style", "body", "header", "main", "a", "span", "table", "tr", "td",
            "th", "h2", "h3", "p", "div", "pre", "br", "form", "input", "svg", "line", "circle"}
ATTRIBUTES = {"charset", "href", "class", "id", "style", "title", "action", "method", "name", "size", "placeholder",
              "type", "value", "width", "height", "viewbox", "x1", "y1", "x2", "y2", "stroke", "stroke-width", "cx",
              "cy", "r", "fill", "rowspan"}

text = st.text(alphabet=st.sampled_from(list("<>&\"' =/\\:;ab\n\tjavascript()\x00é")), max_size=30)
node = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
date = st.tuples(st.integers(0, 2**31 - 1), st.integers(-50400, 50400).map(lambda m: m - m % 60)).map(list)


def changeset_entry() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "node": node, "date": date, "desc": text, "user": text, "branch": text,
        "tags": st.lists(text, max_size=2), "bookmarks": st.lists(text, max_size=2),
        "parents": st.lists(node, max_size=2), "phase": st.sampled_from(["public", "draft"])})


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: set[str] = set()
        self.attributes: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("href", "action"):
                self.links.append(value or "")


def _check(document: bytes) -> None:
    collector = _Collector()
    collector.feed(document.decode("utf-8"))
    assert collector.elements <= ELEMENTS, collector.elements - ELEMENTS
    assert collector.attributes <= ATTRIBUTES, collector.attributes - ATTRIBUTES
    assert all(link.startswith(URL) for link in collector.links), collector.links
    assert b"<script" not in document.lower()


@settings(max_examples=150, deadline=None)
@given(st.lists(changeset_entry(), max_size=3), text, text)
def test_logs_and_summaries_hold_only_their_own_markup(entries: list[dict[str, Any]], name: str, label: str) -> None:
    _check(html.shortlog(name, URL, {"changesets": entries}, 2))
    _check(html.filelog(name, URL, label, {"entries": entries}))
    _check(html.search(name, URL, {"query": label, "entries": entries}))
    _check(html.index(URL, [{"name": e["user"], "kind": "hg", "description": e["desc"], "date": e["date"]}
                            for e in entries], "/?after=" + label if entries else None))
    graph_entries = [{**e, "col": n % 3, "color": n + 1, "row": n,
                      "edges": [{"col": n % 3, "nextcol": (n + 1) % 3, "color": n, "width": -1, "bcolor": label},
                                {"col": 0, "nextcol": 2, "color": 7, "width": 3, "bcolor": "00ff00"}]}
                     for n, e in enumerate(entries)]
    _check(html.graph(name, URL, {"changesets": graph_entries}, 2))
    names = [{"tag": label, "bookmark": label, "branch": label, "node": e["node"], "date": e["date"],
              "status": "open"} for e in entries]
    _check(html.summary(name, URL, {"shortlog": entries, "bookmarks": names, "branches": names, "tags": names,
                                    "archives": [{"type": "zip", "url": URL + "/archive/tip.zip"}]}))
    for kind in ("tags", "branches", "bookmarks"):
        _check(html.names(name, URL, {kind: names}, kind, git=kind != "bookmarks"))


@settings(max_examples=150, deadline=None)
@given(changeset_entry(), st.lists(text, max_size=3), st.lists(st.lists(st.tuples(
    st.sampled_from(["+", "-", "@", ""]), text), max_size=4), max_size=2), st.booleans())
def test_a_changeset_holds_only_its_own_markup(entry: dict[str, Any], paths: list[str],
                                               blocks: list[list[tuple[str, str]]], git: bool) -> None:
    data = {**entry, "children": entry["parents"],
            "files": [{"file": path, "status": status} for path, status in zip(paths, ["added", "removed", "modified"],
                                                                                strict=False)],
            "diff": [{"blockno": n, "lines": [{"t": t, "n": i, "l": line} for i, (t, line) in enumerate(block, 1)]}
                     for n, block in enumerate(blocks, 1)]}
    if git:
        data.pop("phase")
    _check(html.changeset("app", URL, data, git=git))
    _check(html.comparison("app", URL, {
        "path": paths[0] if paths else "", "node": entry["node"], "leftnode": entry["node"],
        "comparison": [{"lines": [{"t": t, "ln": i, "ll": line, "rn": "", "rl": line} for i, (t, line) in
                                  enumerate(block, 1)]} for block in blocks]}, git=git))
    _check(html.filediff("app", URL, {"path": paths[0] if paths else "", "node": entry["node"], "date": entry["date"],
                                      "desc": entry["desc"], "author": entry["user"], "parents": entry["parents"],
                                      "children": entry["parents"], "diff": data["diff"]}, git=git))


@settings(max_examples=150, deadline=None)
@given(node, text, st.lists(text, max_size=4), st.lists(st.tuples(text, text), max_size=3), st.lists(node, max_size=4))
def test_files_and_directories_hold_only_their_own_markup(at: str, path: str, lines: list[str],
                                                          entries: list[tuple[str, str]], origins: list[str]) -> None:
    _check(html.file("app", URL, {"node": at, "path": path, "lines": [{"line": line} for line in lines]}))
    _check(html.annotate("app", URL, {"node": at, "abspath": path, "annotate": [
        {"node": origin, "author": line, "desc": path, "abspath": line, "targetline": n, "line": line, "lineno": n}
        for n, (origin, line) in enumerate(zip(origins, lines, strict=False), 1)]}))
    _check(html.directory("app", URL, {
        "node": at, "abspath": "/" + path + "/",
        "directories": [{"abspath": "/" + base, "basename": base, "emptydirs": empty} for base, empty in entries],
        "files": [{"abspath": base, "basename": base, "size": 3, "flags": empty} for base, empty in entries]}))
