"""A repository's pages for browsers: what ``hg serve`` shows at a repository's URL, rendered
from the data of its JSON pages (``backends.hg.web``), one function per page; a git repository's
pages from the same shapes of data (``backends.git_web``).

Pure: a page's data (the JSON page parsed) and the repository's URL in, the HTML document out.
Every piece of history (names, descriptions, paths, file lines) is escaped, every URL built from
percent-encoded parts; the documents hold no script (the gateway also forbids one by its
``Content-Security-Policy``).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

Data = Mapping[str, Any]

STYLE = """
body { font-family: sans-serif; margin: 0; color: #222; }
header { background: #2c3e50; color: #fff; padding: .6em 1em; }
header a { color: #fff; margin-right: 1em; text-decoration: none; }
header .repo { font-weight: bold; font-size: 1.1em; margin-right: 2em; }
main { padding: 1em; }
table { border-collapse: collapse; }
td, th { padding: .2em .6em; text-align: left; vertical-align: top; }
tr:nth-child(even) { background: #f4f6f8; }
.label { background: #e0e6ee; border-radius: 3px; padding: 0 .3em; margin-left: .3em; font-size: .85em; }
.node, pre, code { font-family: monospace; }
pre { margin: 0; }
.desc { white-space: pre-wrap; font-family: monospace; background: #f4f6f8; padding: .5em; }
.add { color: #060; } .del { color: #a00; } .hunk { color: #73a; } .meta { color: #777; }
.lines td.n { color: #999; text-align: right; user-select: none; }
.clone { background: #f4f6f8; padding: .5em; font-family: monospace; }
table.graph td { padding: 0 .6em; white-space: nowrap; } tr.graphrow { height: 26px; }
table.graph td.graph { padding: 0; vertical-align: top; line-height: 0; }
table.graph tr:nth-child(even) { background: none; }
"""

CONTENT_SECURITY_POLICY = b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
"""No script, no resource from elsewhere; the one form (a log's search) submits to the server itself."""


_NOT_UTF8 = re.compile("[\ud800-\udfff]")
"""Bytes of history that were not UTF-8 (the JSON data's ``\\udcXX``)."""


def _text(value: Any) -> str:
    """``value`` escaped for HTML, a byte that was not UTF-8 shown as U+FFFD."""
    return escape(_NOT_UTF8.sub("\ufffd", str(value)), quote=True)


def _link(url: str, text: str, title: str = "") -> str:
    shown = f' title="{_text(title)}"' if title else ""
    return f'<a href="{_text(url)}"{shown}>{text}</a>'


def _path_link(url: str, path: str, text: str, fragment: str = "", title: str = "") -> str:
    """A link to ``url`` + the percent-encoded ``path`` (+ ``fragment``): its own bytes, those that
    were not UTF-8 too (``caf%E9.txt``, as hgweb links them)."""
    return _link(url + _quoted(path) + fragment, text, title)


def _quoted(path: str) -> str:
    """``path``'s own bytes percent-encoded: only letters, digits, ``_.-~/`` and ``%`` remain, none
    of which HTML escapes."""
    return quote(path.encode("utf-8", "surrogateescape"))


def _short(node: str) -> str:
    return node[:12]


def _date(value: Sequence[Any]) -> str:
    """hg's ``[seconds, offset]`` as the changeset's own local time and offset."""
    seconds, offset = float(value[0]), int(value[1])
    local = datetime.datetime.fromtimestamp(seconds - offset, datetime.UTC)
    sign = "-" if offset > 0 else "+"
    minutes = abs(offset) // 60
    return local.strftime("%Y-%m-%d %H:%M:%S") + f" {sign}{minutes // 60:02d}{minutes % 60:02d}"


def _page(repo: str, url: str, title: str, body: str, git: bool = False) -> bytes:
    pages = [("shortlog", "log"), ("graph", "graph"), ("file/tip", "files"), ("tags", "tags"),
             ("branches", "branches")]
    if not git:  # a git repository has no bookmarks
        pages.append(("bookmarks", "bookmarks"))
    nav = " ".join(_link(f"{url}/{page}", label) for page, label in pages)
    home = _link(url, '<span class="repo">' + _text(repo) + "</span>")
    return _document(f"{_text(repo)}: {_text(title)}", home + nav, body)


def _document(title: str, header: str, body: str) -> bytes:
    """An HTML page: its (escaped) title, the header bar's links, the body."""
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{STYLE}</style></head>\n<body><header>{header}</header>\n<main>{body}</main></body></html>\n"
            ).encode("utf-8", "replace")


def _labels(entry: Data) -> str:
    out = []
    if entry.get("branch", "default") != "default":
        out.append(f'<span class="label">{_text(entry["branch"])}</span>')
    out += [f'<span class="label">{_text(name)}</span>' for name in entry.get("tags", [])]
    out += [f'<span class="label">{_text(name)}</span>' for name in entry.get("bookmarks", [])]
    return "".join(out)


def _first_line(desc: str) -> str:
    return desc.strip().split("\n", 1)[0].strip() or "(no description)"


def _changeset_rows(url: str, entries: Sequence[Data]) -> str:
    rows = []
    for entry in entries:
        target = url + "/rev/" + entry["node"]
        rows.append(f"<tr><td>{_text(_date(entry['date']))}</td><td>{_text(entry['user'])}</td>"
                    f"<td>{_link(target, _text(_first_line(entry['desc'])))}{_labels(entry)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def index(url: str, entries: Sequence[Data], following: str | None = None) -> bytes:
    """The server's index: the repositories the visitor may read, each linked to its summary,
    with its kind, description, contact (an hg repository's ``[web] contact``, as hgweb's index
    shows it) and last change; ``following``: the path (quoted) of the page that lists the next ones."""
    rows = []
    for entry in entries:
        shown = entry["name"]
        when = _text(_date(entry["date"])) if entry.get("date") else ""
        rows.append(f"<tr><td>{_path_link(url + '/', entry.get('path', shown), _text(shown))}</td><td>{_text(entry['kind'])}</td>"
                    f"<td>{_text(entry['description'])}</td><td>{_text(entry.get('contact', ''))}</td><td>{when}</td></tr>")
    body = ("<table><tr><th>repository</th><th>kind</th><th>description</th><th>contact</th><th>last change</th></tr>"
            + "".join(rows) + "</table>") if rows else "<p>There is no repository you may read here yet.</p>"
    if following:
        body += f"<p>{_link(url + following, 'More repositories…')}</p>"
    return _document("Repositories", _link(url + "/", '<span class="repo">hgwire</span>'), f"<h2>Repositories</h2>{body}")


def summary(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """The repository's front page: what it is (``description``, ``contact`` when the data has
    them), how to clone it, its latest changesets and its names."""
    clone = data.get("clone", f"hg clone {url}")
    about = "".join(f"<p>{_text(data[key])}</p>" for key in ("description", "contact", "note") if data.get(key))
    body = [about, f"<p>Clone it with:</p><p class=\"clone\">{_text(clone)}</p>",
            "<h3>Latest changes</h3>", _changeset_rows(url, data["shortlog"]),
            "<p>" + _link(url + "/shortlog", "more…") + "</p>"]
    for title, key, name_key in (("Bookmarks", "bookmarks", "bookmark"), ("Branches", "branches", "branch"),
                                 ("Tags", "tags", "tag")):
        if data[key]:
            body.append(f"<h3>{title}</h3>" + _name_rows(url, data[key], name_key))
    if data["archives"]:
        links = " ".join(_link(a["url"], _text(a["type"])) for a in data["archives"])
        body.append(f"<p>Download the tip: {links}</p>")
    return _page(repo, url, "summary", "".join(body), git)


def notice(repo: str, url: str, title: str, note: str, git: bool = False) -> bytes:
    """A page that has nothing to show but why (``note``): a git repository's HEAD without a commit."""
    return _page(repo, url, title, f"<h2>{_text(title.capitalize())}</h2><p>{_text(note)}</p>", git)


def _name_rows(url: str, entries: Sequence[Data], key: str) -> str:
    """One row a name: linked to its changeset, its date, its short id (and a branch's status).
    A git tag of a tree or a blob (its ``type``) links to that tree's listing or that blob's bytes
    (``raw-file/TAG``, gitweb's tree and blob links), its type beside its id, its date blank when
    it has none (a lightweight tag)."""
    rows = []
    for entry in entries:
        status = f"<td>{_text(entry['status'])}</td>" if "status" in entry else ""
        target = url + "/rev/" + entry["node"]
        shown = _short(entry["node"])
        if "type" in entry:
            target = url + "/raw-file/" + _revision_quoted(entry[key])
            shown = _text(entry["type"]) + " " + shown
        when = _text(_date(entry["date"])) if entry.get("date") else ""
        rows.append(f"<tr><td>{_link(target, _text(entry[key]))}</td>"
                    f"<td>{when}</td><td class=\"node\">{shown}</td>{status}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _revision_quoted(name: str) -> str:
    """A revision's name for a URL's revision slot: its own bytes percent-encoded, each ``/`` as
    ``%252F`` as hgweb's links write it (decoded once, ``%2F`` stands for ``/`` in a revision)."""
    return quote(name.encode("utf-8", "surrogateescape"), safe="").replace("%2F", "%252F")


def names(repo: str, url: str, data: Data, kind: str, git: bool = False) -> bytes:
    """``tags``, ``branches`` or ``bookmarks``: each name, its changeset and date."""
    key = {"tags": "tag", "branches": "branch", "bookmarks": "bookmark"}[kind]
    entries = data[kind]
    body = _name_rows(url, entries, key) if entries else f"<p>No {kind}.</p>"
    return _page(repo, url, kind, f"<h2>{kind.capitalize()}</h2>{body}", git)


def shortlog(repo: str, url: str, data: Data, revcount: int, git: bool = False, older: str | None = None) -> bytes:
    """Changesets from a revision down; the next page is linked: at ``older`` (a path and query
    under the repository's URL) when given, else at the changeset after the last shown."""
    entries = list(data["changesets"])
    more = entries[revcount] if len(entries) > revcount else None
    body = _changeset_rows(url, entries[:revcount])
    if more is not None:
        body += "<p>" + _link(url + "/" + (older or "shortlog/" + more["node"]), "older…") + "</p>"
    form = (f'<form action="{_text(url)}/log" method="get"><input name="rev" size="30" '
            f'placeholder="{"words, a commit, a branch or a tag" if git else "words, a revision, a tag or a branch"}">'
            ' <input type="submit" value="Search"></form>')
    return _page(repo, url, "log", f"<h2>Changes</h2>{form}{body}", git)


GRAPH_ROW = 26
"""Pixels of one changeset's row in the graph page (its table rows are as tall)."""
GRAPH_COLUMN = 16
GRAPH_COLORS = ("#c0392b", "#2e86c1", "#27ae60", "#8e44ad", "#d68910", "#17a589")
"""hgweb's six colours, in its order of colour numbers (1-6)."""
_HEX_COLOR = re.compile(r"[0-9A-Fa-f]{6}")


def _graph_color(number: int, branch_color: str = "") -> str:
    if _HEX_COLOR.fullmatch(branch_color):
        return "#" + branch_color
    return GRAPH_COLORS[(int(number) - 1) % len(GRAPH_COLORS)]


def graph(repo: str, url: str, data: Data, revcount: int, git: bool = False) -> bytes:
    """The graph of changesets from a revision down: a drawing (columns, colours and edges as hg
    lays them out) beside each changeset's row, a link to a longer one."""
    entries = list(data["changesets"])
    columns = max([int(e["col"]) for e in entries] + [int(edge["nextcol"]) for e in entries for edge in e["edges"]]
                  + [0]) + 1
    width, height = columns * GRAPH_COLUMN + 8, len(entries) * GRAPH_ROW
    shapes = []
    for row, entry in enumerate(entries):
        middle = row * GRAPH_ROW + GRAPH_ROW // 2
        for edge in entry["edges"]:
            x1 = int(edge["col"]) * GRAPH_COLUMN + GRAPH_COLUMN // 2
            x2 = int(edge["nextcol"]) * GRAPH_COLUMN + GRAPH_COLUMN // 2
            stroke = _graph_color(edge["color"], str(edge["bcolor"]))
            line_width = int(edge["width"]) if int(edge["width"]) > 0 else 2
            shapes.append(f'<line x1="{x1}" y1="{middle}" x2="{x2}" y2="{middle + GRAPH_ROW}" stroke="{stroke}" '
                          f'stroke-width="{line_width}"/>')
    for row, entry in enumerate(entries):  # the nodes over the edges
        x = int(entry["col"]) * GRAPH_COLUMN + GRAPH_COLUMN // 2
        shapes.append(f'<circle cx="{x}" cy="{row * GRAPH_ROW + GRAPH_ROW // 2}" r="5" '
                      f'fill="{_graph_color(entry["color"])}"/>')
    drawing = (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">' + "".join(shapes)
               + "</svg>")
    rows = []
    for row, entry in enumerate(entries):
        cell = f'<td rowspan="{len(entries)}" class="graph">{drawing}</td>' if row == 0 else ""
        rows.append(f'<tr class="graphrow">{cell}<td>{_link(url + "/rev/" + entry["node"], _short(entry["node"]))}</td>'
                    f"<td>{_text(_first_line(entry['desc']))}{_labels(entry)}</td><td>{_text(entry['user'])}</td>"
                    f"<td>{_text(_date(entry['date']))}</td></tr>")
    body = '<table class="graph">' + "".join(rows) + "</table>" if rows else "<p>No changesets yet.</p>"
    if len(entries) >= revcount:
        body += "<p>" + _link(f"{url}/graph?revcount={revcount * 2}", "more…") + "</p>"
    return _page(repo, url, "graph", f"<h2>Graph</h2>{body}", git)


def search(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """A log's search (``?rev=``): the changesets found, newest first."""
    body = _changeset_rows(url, data["entries"]) if data["entries"] else "<p>Nothing found.</p>"
    return _page(repo, url, f"search for {data['query']}", f"<h2>Changes matching {_text(data['query'])}</h2>{body}",
                 git)


def filelog(repo: str, url: str, path: str, data: Data, git: bool = False, lines: str | None = None) -> bytes:
    """A file's history: the changesets that made its revisions (``lines``: the changesets that
    changed those lines, ``FROM:TO``)."""
    body = _changeset_rows(url, data["entries"]) if data["entries"] else "<p>No history.</p>"
    what = f"lines {lines} of {path}" if lines is not None else path
    return _page(repo, url, f"history of {what}", f"<h2>History of {_text(what)}</h2>{body}", git)


def changeset(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """A changeset: its header, description, files and diff."""
    node = data["node"]
    rows = [("changeset", f'<span class="node">{_text(node)}</span>{_labels(data)}'),
            ("user", _text(data["user"])), ("date", _text(_date(data["date"]))),
            ("parents", " ".join(_link(f"{url}/rev/{p}", _short(p)) for p in data["parents"])),
            ("children", " ".join(_link(f"{url}/rev/{c}", _short(c)) for c in data["children"])),
            *([("phase", _text(data["phase"]))] if "phase" in data else []),
            ("more", (_link(f"{url}/raw-rev/{node}", "patch") + " " if "phase" in data else "")
             + _link(f"{url}/file/{node}", "browse"))]
    table = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    files = "".join("<tr><td>" + _text(f["status"] + (" from " + f["from"] if "from" in f else "")) + "</td><td>"
                    + (_path_link(url + "/file/" + node + "/", f["file"], _text(f["file"]))
                       if f["status"] != "removed" else _text(f["file"]))
                    + "</td><td>" + _path_link(url + "/diff/" + node + "/", f["file"], "diff") + "</td></tr>"
                    for f in data["files"])
    diff = "".join(_diff_block(block) for block in data["diff"])
    body = (table + '<div class="desc">' + _text(data["desc"]) + "</div>"
            + (f"<h3>Files</h3><table>{files}</table>" if files else "")
            + (f"<h3>Diff</h3>{diff}" if diff else ""))
    return _page(repo, url, f"changeset {_short(node)}", body, git)


def filediff(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """One file's diff in a changeset: the changeset's header, the file's parents and children."""
    node, path = data["node"], data["path"]
    more = "" if git else " " + _path_link(f"{url}/comparison/{node}/", path, "side by side")
    rows = [("file", _text(path) + " " + _path_link(f"{url}/log/{node}/", path, "history") + more),  # may be removed
            ("changeset", _link(f"{url}/rev/{node}", _short(node))), ("user", _text(data["author"])),
            ("date", _text(_date(data["date"]))),
            ("parents", " ".join(_link(f"{url}/rev/{p}", _short(p)) for p in data["parents"])),
            ("children", " ".join(_link(f"{url}/rev/{c}", _short(c)) for c in data["children"]))]
    table = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    diff = "".join(_diff_block(block) for block in data["diff"]) or "<p>No change to this file here.</p>"
    body = table + '<div class="desc">' + _text(data["desc"]) + "</div><h3>Diff</h3>" + diff
    return _page(repo, url, f"{path} in {_short(node)}", body, git)


def comparison(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """A file before and after a changeset, side by side: numbered lines of both, the changed ones
    marked, groups of changes with their context."""
    node, path = data["node"], data["path"]
    classes = {"equal": "", "delete": "del", "insert": "add", "replace": "hunk"}
    blocks = []
    for block in data["comparison"]:
        rows = []
        for line in block["lines"]:
            cls = classes.get(line["t"], "")
            attribute = f' class="{cls}"' if cls else ""
            rows.append(f'<tr{attribute}><td class="n">{_text(line["ln"])}</td><td><pre>{_text(line["ll"])}</pre></td>'
                        f'<td class="n">{_text(line["rn"])}</td><td><pre>{_text(line["rl"])}</pre></td></tr>')
        blocks.append('<table class="lines">' + "".join(rows) + "</table><br>")
    links = (_link(f"{url}/rev/{data['leftnode']}", _short(data["leftnode"])) + " → "
             + _link(f"{url}/rev/{node}", _short(node)) + " "
             + _path_link(f"{url}/diff/{node}/", path, "unified diff"))
    body = (f"<h2>{_text(path)}</h2><p>{links}</p>" + ("".join(blocks) or "<p>No change to this file here.</p>"))
    return _page(repo, url, f"{path} compared in {_short(node)}", body, git)


_LINE_CLASSES = {"+": "add", "-": "del", "@": "hunk", "": "meta"}


def _diff_block(block: Data) -> str:
    lines = []
    for line in block["lines"]:
        kind = line["t"] if line["t"] in _LINE_CLASSES else ""
        text = line["l"].rstrip("\n")
        cls = _LINE_CLASSES[kind] if kind or not text.startswith(" ") else ""
        lines.append(f'<span class="{cls}">{_text(text)}</span>' if cls else _text(text))
    return "<pre>" + "\n".join(lines) + "</pre><br>"


def annotate(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """A file at a revision, each line with the changeset that last changed it (linked to that
    changeset's annotation at the line), shown where a run of lines from one changeset starts."""
    node, path = data["node"], data["abspath"]
    links = " ".join([_path_link(f"{url}/file/{node}/", path, "file"),
                      _path_link(f"{url}/log/{node}/", path, "history"),
                      _link(f"{url}/rev/{node}", "changeset " + _short(node))])
    rows = []
    previous = None
    for line in data["annotate"]:
        origin = ""
        if line["node"] != previous:
            title = f"{line['author']}: {_first_line(line['desc'])}"
            origin = (_path_link(f"{url}/annotate/{line['node']}/", line["abspath"], _short(line["node"]),
                                 f"#l{int(line['targetline'])}", title)
                      + " " + _text(line["author"].split("<")[0].strip() or line["author"]))
        previous = line["node"]
        rows.append(f'<tr id="l{int(line["lineno"])}"><td>{origin}</td><td class="n">{int(line["lineno"])}</td>'
                    "<td><pre>" + _text(line["line"].rstrip("\n")) + "</pre></td></tr>")
    body = f"<h2>{_text(path)}</h2><p>{links}</p><table class=\"lines\">{''.join(rows)}</table>"
    return _page(repo, url, f"{path} annotated", body, git)


def directory(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """A directory at a revision: its subdirectories and files, with sizes and links."""
    node = data["node"]
    path = data["abspath"]
    base = f"{url}/file/{node}"
    rows = ["<h2>" + _text(path) + " at " + _link(url + "/rev/" + node, _short(node)) + "</h2><table>"]
    if path != "/":
        parent = path.rstrip("/").rpartition("/")[0]
        rows.append(f"<tr><td>{_path_link(base, parent + '/', '..')}</td><td></td></tr>")
    for d in data["directories"]:
        shown = d["basename"] + ("/" + d["emptydirs"] if d["emptydirs"] else "")
        target = d["abspath"] + ("/" + d["emptydirs"] if d["emptydirs"] else "")
        rows.append(f"<tr><td>{_path_link(base, target, _text(shown) + '/')}</td><td></td></tr>")
    files = _text(base + "/")  # escaped once: a percent-encoded path adds nothing to escape
    for f in data["files"]:  # one string a row, read once (a directory may hold 100,000 files)
        rows.append(f'<tr><td><a href="{files}{_quoted(f["abspath"])}">{_text(f["basename"])}</a></td>'
                    f'<td>{int(f["size"])}</td><td>{_text(f["flags"])}</td></tr>')
    rows.append("</table>")
    return _page(repo, url, f"files at {_short(node)}: {path}", "".join(rows), git)


def file(repo: str, url: str, data: Data, git: bool = False) -> bytes:
    """A file at a revision: its lines, numbered, and links to its raw bytes and history."""
    node, path = data["node"], data["path"]
    links = " ".join(([_path_link(f"{url}/raw-file/{node}/", path, "raw")] if data.get("raw", True) else [])
                     + [_path_link(f"{url}/log/{node}/", path, "history")]
                     + ([_path_link(f"{url}/annotate/{node}/", path, "annotate")] if data.get("raw", True) else [])
                     + [_link(f"{url}/rev/{node}", "changeset " + _short(node))])
    rows = "".join(f'<tr id="l{n}"><td class="n">{n}</td><td><pre>' + _text(line["line"].rstrip("\n"))
                   + "</pre></td></tr>" for n, line in enumerate(data["lines"], 1))
    body = f"<h2>{_text(path)}</h2><p>{links}</p><table class=\"lines\">{rows}</table>"
    return _page(repo, url, path, body, git)
