"""Line matching and the diffs, annotations and graphs built on it: any two texts give runs in
order, of equal lines, closed by the empty run at both ends (hg's matching, and git's:
``backends.git_diff``, also in git blame's form); a unified diff that rebuilds the
new text (and, under any ``[diff]`` whitespace switches, context and showfunc, only hunk lines);
whitespace cleaning that keeps the line count; and any DAG a graph layout whose edges lead from
each node to its parents."""

from __future__ import annotations

from backends import git_diff
from backends.hg import linediff, webgraph
from backends.hg.web import unified_hunks

from .harness import Finding, Target


def _texts(data: bytes) -> tuple[bytes, bytes]:
    """old and new text, separated by ``\\xff\\xfe``; lines drawn from the bytes, few distinct."""
    old, _, new = data.partition(b"\xff\xfe")
    return old[:4000], new[:4000]


def _check_runs(old: list[bytes], new: list[bytes], runs: list[tuple[int, int, int, int]]) -> None:
    if runs[-1] != (len(old), len(old), len(new), len(new)):
        raise Finding(f"the last run is {runs[-1]}, not the empty run at both ends")
    a_end = b_end = 0
    for a1, a2, b1, b2 in runs:
        if not (a_end <= a1 <= a2 and b_end <= b1 <= b2 and a2 - a1 == b2 - b1):
            raise Finding(f"run {(a1, a2, b1, b2)} out of order or uneven")
        if old[a1:a2] != new[b1:b2]:
            raise Finding(f"run {(a1, a2, b1, b2)} matches unequal lines")
        a_end, b_end = a2, b2


def _apply(old: bytes, hunks: list[bytes]) -> bytes:
    """Rebuild the new text from the old one and the unified diff (context and removals checked)."""
    lines = linediff.split_lines(old)
    out: list[bytes] = []
    at = 0
    body = b"".join(hunks).split(b"\n")[:-1]
    index = 0
    while index < len(body):
        header = body[index]
        if not header.startswith(b"@@ -"):
            raise Finding(f"expected a hunk header, found {header[:40]!r}")
        old_part = header[4:].split(b" ")[0]
        start, _, counted = old_part.partition(b",")  # git leaves out a count of one
        start, length = int(start), int(counted or b"1")
        first = start - 1 if length else start
        out.extend(lines[at:first])
        at = first
        index += 1
        while index < len(body) and not body[index].startswith(b"@@ -"):
            line = body[index] + b"\n"
            index += 1
            if index < len(body) and body[index] == b"\\ No newline at end of file":
                line = line[:-1]
                index += 1
            kind, text = line[:1], line[1:]
            if kind in (b" ", b"-"):
                if at >= len(lines) or lines[at] != text:
                    raise Finding("a context or removed line is not the old text's")
                at += 1
            if kind in (b" ", b"+"):
                out.append(text)
    out.extend(lines[at:])
    return b"".join(out)


def run(data: bytes) -> None:
    old, new = _texts(data)
    a, b = linediff.split_lines(old), linediff.split_lines(new)
    _check_runs(a, b, linediff.blocks(a, b))
    _check_runs(a, b, git_diff.blocks(a, b))
    _check_runs(a, b, git_diff.blame_blocks(old, new))
    if _apply(old, unified_hunks(old, new)) != new:
        raise Finding("the unified diff does not rebuild the new text")
    if _apply(old, git_diff.unified_hunks(old, new)) != new:
        raise Finding("git's unified diff does not rebuild the new text")
    for switches in ((True, False, False), (False, True, False), (False, False, True)):
        cleaned = linediff.clean_whitespace(old, *switches)
        if cleaned.count(b"\n") != old.count(b"\n"):
            raise Finding("whitespace cleaning changed the number of lines")
    switches = data[:1][0] if data else 0  # the first byte picks [diff] settings for one more diff
    whitespace = linediff.Whitespace(bool(switches & 1), bool(switches & 2), bool(switches & 4), bool(switches & 8))
    for line in unified_hunks(old, new, switches % 5, bool(switches & 16), whitespace):
        if line[:1] not in (b" ", b"-", b"+", b"@", b"\\") or not line.endswith(b"\n"):
            raise Finding(f"a diff line {line[:40]!r} is not a hunk's")
    # a DAG from the bytes: node n's parents are earlier nodes the bytes name
    parents = {n: sorted({(n - 1 - byte % n) for byte in data[n:n + 2] if n}) for n in range(min(len(data), 60))}
    order = sorted(parents, reverse=True)
    rows = webgraph.layout(lambda n: parents[n], order)
    for node, column, _color, edges in rows:
        own = [edge for edge in edges if edge[0] == column]
        if len(own) < len(parents[node]):
            raise Finding(f"node {node} has {len(own)} edges for {len(parents[node])} parents")


def seeds() -> list[bytes]:
    return [b"a\nb\nc\n\xff\xfea\nc\nd\n", b"x\n" * 40 + b"\xff\xfe" + b"x\n" * 20 + b"y\n" + b"x\n" * 20,
            b"  a \t\n}\n}\n\n\xff\xfe a\n}\n\n}\nend", b"\xff\xfe", b"no newline\xff\xfeno newline\n",
            # past 1 KiB of common end (git blame's cut), blank lines among changes
            b"one\n\ntwo\n" + b"\n".join(b"common line %d" % n for n in range(120)) + b"\n\xff\xfe"
            + b"uno\n\ndos\n" + b"\n".join(b"common line %d" % n for n in range(120)) + b"\n"]


TARGET = Target("linediff", run, seeds)
