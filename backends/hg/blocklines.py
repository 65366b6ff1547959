"""The history of a block of a file's lines, as hg's ``blockancestors`` and ``blockdescendants``
find it: hgweb's file log with ``?linerange=FROM:TO`` and the revset ``followlines()``.

Walking back from a file revision, each parent's text is compared with its child's (hg's line
matching, ``backends.hg.linediff``): the block's lines are found in the parent (hg's
``blocksinrange``) and the child is listed when a change touched them.  The walk goes through
merges (each parent with the block's lines) and renames (a copy's source is its first parent),
newest linked changeset first; a block made in a revision stops there.  Walking forward (descend)
follows the file's own revisions (not renames), and takes the span of both sides at a merge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from backends.hg import linediff
from backends.hg.archive import adjusted_linkrev, file_data, file_parents
from backends.hg.repository import HgRepo
from protocols.errors import ProtocolError

Found = tuple[int, bytes, bytes]
"""(changeset, path, file node) of a file revision that changed the block."""


def line_range(fromline: int, toline: int) -> tuple[int, int]:
    """hg's ``processlinerange``: 1-based ``FROM:TO`` (both included) as a 0-based range, end
    excluded; ``ValueError`` in hg's words for one that is not a range of lines."""
    if toline - fromline < 0:
        raise ValueError("line range must be positive")
    if fromline < 1:
        raise ValueError("fromline must be strictly positive")
    return fromline - 1, toline


def _nothing(_cost: int) -> None:
    return None


def range_before(repo: HgRepo, old: tuple[bytes, bytes], new: tuple[bytes, bytes], wanted: tuple[int, int],
                 charge: Callable[[int], None] = _nothing) -> tuple[bool, tuple[int, int]]:
    """hg's ``_changesrange``: whether the change from file revision ``old`` to ``new`` (each
    (path, node)) touches ``new``'s lines ``wanted`` (0-based, end excluded), and where those
    lines are in ``old`` (``mdiff.blocksinrange``); 403 "line range exceeds file size" as hg."""
    old_text, new_text = file_data(repo, *old), file_data(repo, *new)
    charge(len(old_text) + len(new_text))
    low, high = wanted
    low_a: int | None = None
    high_a: int | None = None
    changed = False
    previous = (0, 0, 0, 0)
    for run in linediff.text_blocks(old_text, new_text):
        gap = (previous[1], run[0], previous[3], run[2])
        typed = [(gap, False)] if gap[0] != gap[1] or gap[2] != gap[3] else []
        for (a1, a2, b1, b2), equal in [*typed, (run, True)]:
            if low >= b1 and high <= b2 and equal:
                low_a, high_a = low - b1 + a1, high - b1 + a1
            else:
                if b1 <= low < b2:
                    low_a = a2 - (b2 - low) if equal else a1
                if b1 < high <= b2:
                    high_a = a1 + (high - b1) if equal else a2
            if not equal and low < b2 and b1 < high:  # hg's hunkinrange of a changed block
                changed = True
        previous = run
    if low_a is None or high_a is None or high_a < low_a:
        raise ProtocolError("line range exceeds file size", 403)
    return changed, (low_a, high_a)


def block_ancestors(repo: HgRepo, parents_of: Sequence[tuple[int, int]], rev: int, path: bytes, node: bytes,
                    wanted: tuple[int, int], charge: Callable[[int], None] = _nothing) -> Iterator[Found]:
    """hg's ``blockancestors`` of file revision ``node`` of ``path`` met at changeset ``rev``:
    the revisions that changed lines ``wanted`` there, newest linked first, each with the
    changeset hg shows for it (its linkrev as seen from the child it was reached from)."""
    intro = adjusted_linkrev(repo, parents_of, path, node, rev, inclusive=True)
    log = repo.filelog(path)
    visit: dict[tuple[int, bytes], tuple[bytes, bytes, int, tuple[int, int]]] = {
        (log.linkrev(log.rev(node)), node): (path, node, intro, wanted)}
    while visit:
        c_path, c_node, c_rev, c_range = visit.pop(max(visit))
        parents = file_parents(repo, c_path, c_node)
        if not parents:  # the lines began here
            yield c_rev, c_path, c_node
            continue
        touched = False
        for p_path, p_node in parents:
            changed, p_range = range_before(repo, (p_path, p_node), (c_path, c_node), c_range, charge)
            touched = touched or changed
            if p_range[0] == p_range[1]:
                continue  # the lines were made here: not in that parent
            p_log = repo.filelog(p_path)
            p_rev = adjusted_linkrev(repo, parents_of, p_path, p_node, c_rev, inclusive=False)
            visit[p_log.linkrev(p_log.rev(p_node)), p_node] = (p_path, p_node, p_rev, p_range)
        if touched:
            yield c_rev, c_path, c_node


def block_descendants(repo: HgRepo, parents_of: Sequence[tuple[int, int]], rev: int, path: bytes, node: bytes,
                      wanted: tuple[int, int], charge: Callable[[int], None] = _nothing) -> Iterator[Found]:
    """hg's ``blockdescendants``: the revision itself when it changed the lines, then the file's
    later revisions that did, oldest first, each with its linkrev."""
    filelog = repo.filelog(path)
    first = filelog.rev(node)
    top = next(block_ancestors(repo, parents_of, rev, path, node, wanted, charge), None)
    if top is not None and top[1:] == (path, node):
        yield top
    seen: dict[int, tuple[int, int]] = {first: wanted}
    for file_rev in range(first + 1, len(filelog)):
        touched = False
        for parent in filelog.parent_revs(file_rev):
            if parent not in seen:
                continue  # null, or another branch of the file
            changed, here = range_before(repo, (path, filelog.node(file_rev)), (path, filelog.node(parent)),
                                         seen[parent], charge)
            touched = touched or changed
            if file_rev in seen and seen[file_rev] != here:  # a merge: the span of both
                here = (min(here[0], seen[file_rev][0]), max(here[1], seen[file_rev][1]))
            seen[file_rev] = here
        if touched:
            yield filelog.linkrev(file_rev), path, filelog.node(file_rev)
