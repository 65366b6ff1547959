"""hgweb's ``graph`` (``json-graph[/REV]``, and the data of the graph page for browsers): the
changesets from a revision down, each with the column and colour hg draws it in and the edges to
the next row, as ``hg serve`` lays them out.

The layout is hg's: the changesets newest first; each holds a column of the row's list of
columns (a new head takes a new one at the end), its parents in the window replace it there (its
first new parent keeps its colour, the others take new colours), a parent outside the window
too (drawn as going off the page); an edge joins each column of this row to its place in the
next, the changeset's own column to each parent's.  ``[graph] BRANCH.width`` and
``BRANCH.color`` of the hgrc style the edges drawn to a changeset of that branch.

Pure (``backends.hg.web.json_graph`` reads the history).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)

COLORS = 6
"""hgweb's palette: a colour number is shown modulo it, from 1."""


def shown_color(color: int) -> int:
    return (color - 1) % COLORS + 1


def _unstyled(_node: Hashable) -> tuple[int, bytes]:
    return -1, b""


def layout(parents_of: Callable[[Node], list[Node]], revs: list[Node],
           style: Callable[[Node], tuple[int, bytes]] = _unstyled
           ) -> list[tuple[Node, int, int, list[tuple[int, int, int, int, bytes]]]]:
    """hg's ``colored`` over ``revs`` (newest first): for each, (rev, column, colour, edges), an
    edge ``(column, next column, colour, width, branch colour)``; ``parents_of`` a revision's
    parents as the walk sees them (in the window, ascending, then those outside it); ``style`` the
    hgrc's width and colour for the edges to a revision."""
    seen: list[Node] = []
    colors: dict[Node, int] = {}
    new_color = 1
    out = []
    for rev in revs:
        if rev not in seen:  # a new head
            seen.append(rev)
            colors[rev] = new_color
            new_color += 1
        column = seen.index(rev)
        color = colors.pop(rev)
        parents = parents_of(rev)
        following = seen[:]
        added = [p for p in parents if p not in following]
        following[column:column + 1] = added
        for index, parent in enumerate(added):
            if index:
                colors[parent] = new_color
                new_color += 1
            else:
                colors[parent] = color
        edges = []
        for edge_column, target in enumerate(seen):
            if target in following:
                edges.append((edge_column, following.index(target), colors[target], *style(target)))
            elif target == rev:
                edges.extend((edge_column, following.index(p), color, *style(p)) for p in parents)
        out.append((rev, column, color, edges))
        seen = following
    return out


def branch_styles(settings: dict[bytes, bytes]) -> dict[bytes, tuple[int, bytes]]:
    """The hgrc's ``[graph]`` ``BRANCH.width`` (digits) and ``BRANCH.color`` (letters and digits)
    by branch, as (width, colour): -1 and b"" where unset."""
    styles: dict[bytes, dict[bytes, int | bytes]] = {}
    for name, value in settings.items():
        branch, dot, setting = name.rpartition(b".")
        if not dot:
            continue
        if setting == b"width" and value.isdigit():
            styles.setdefault(branch, {})[b"width"] = int(value)
        elif setting == b"color" and value.isalnum():
            styles.setdefault(branch, {})[b"color"] = value
    return {branch: (int(found.get(b"width", -1)), bytes(found.get(b"color", b"")))
            for branch, found in styles.items()}
