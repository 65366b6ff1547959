"""The history of a block of a file's lines, as hg's ``blockancestors`` and ``blockdescendants``
find it: hgweb's file log with ``?linerange=FROM:TO`` and the revset ``followlines()``.

Walking back from a file revision, each parent's text is compared with its child's (hg's line
matching, ``backends.hg.linediff``): the block's lines are found in the parent (hg's
``blocksinrange``) and the child is listed when a change touched them.  The walk goes through
merges (each parent with the block's lines) and renames (a copy's source is its first parent),
newest linked changeset first; a block made in a revision stops there.  Walking forward (descend)
follows the file's own revisions (not renames), and takes the span of both sides at a merge.

Each pair is matched from the lines the stored delta between them keeps (``annotate.stored_hints``,
proven by ``linediff.hinted_blocks``), so a small edit of a long file costs its changed lines; the
texts a walk down meets are rebuilt a few dozen at a time, patched forward from one delta chain
(``_Texts``), not each from its chain's start.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

from backends.hg import linediff
from backends.hg.annotate import stored_hints
from backends.hg.archive import adjusted_linkrev, file_parents
from backends.hg.changelog import parse_filelog_text
from backends.hg.repository import HgRepo
from backends.hg.revlog import Revlog
from protocols.client_gone import tick
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


PREFETCH = 64
"""Revisions of a file a walk down rebuilds at once (forward from one delta chain)."""
PREFETCH_BYTES = 8 << 20
"""Bytes of texts a walk keeps at most."""


class _Texts:
    """The file revisions a walk compares: each revision's stored text read once, those below it
    rebuilt with it when the walk goes down (``downward``: each patched onto the one before,
    where that is its delta parent), the lines of the last few kept."""

    def __init__(self, repo: HgRepo, downward: bool) -> None:
        self.repo = repo
        self.downward = downward
        self.filelogs: dict[bytes, Revlog] = {}
        self.stored: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self.stored_bytes = 0
        self.lines: OrderedDict[tuple[bytes, int], tuple[linediff.Lines, int]] = OrderedDict()

    def filelog(self, path: bytes) -> Revlog:
        filelog = self.filelogs.get(path)
        if filelog is None:
            filelog = self.filelogs[path] = self.repo.filelog(path)
        return filelog

    def get(self, path: bytes, rev: int) -> tuple[linediff.Lines, int]:
        """A revision's lines and the length of the copy metadata its stored text starts with."""
        key = (path, rev)
        found = self.lines.get(key)
        if found is None:
            stored = self._stored(path, rev)
            data = parse_filelog_text(stored).data
            found = self.lines[key] = (linediff.Lines.of(data), len(stored) - len(data))
            if len(self.lines) > 4:
                self.lines.popitem(last=False)
        return found

    def _stored(self, path: bytes, rev: int) -> bytes:
        text = self.stored.pop((path, rev), None)
        if text is not None:
            self.stored_bytes -= len(text)
            return text
        filelog = self.filelog(path)
        first = rev
        if self.downward:
            count = min(PREFETCH, PREFETCH_BYTES // max(1, filelog.raw_size(rev)))
            while first > 0 and rev - first + 1 < count and filelog.delta_parent(first) == first - 1:
                first -= 1
        texts = list(zip(range(first, rev + 1), filelog.texts(first, rev + 1), strict=True))
        for at, text in texts[:-1]:
            self.stored[(path, at)] = text
            self.stored_bytes += len(text)
        while self.stored_bytes > PREFETCH_BYTES:
            self.stored_bytes -= len(self.stored.popitem(last=False)[1])
        return texts[-1][1]


def range_before(repo: HgRepo, old: tuple[bytes, bytes], new: tuple[bytes, bytes], wanted: tuple[int, int],
                 charge: Callable[[int], None] = _nothing, texts: _Texts | None = None) -> tuple[bool, tuple[int, int]]:
    """hg's ``_changesrange``: whether the change from file revision ``old`` to ``new`` (each
    (path, node)) touches ``new``'s lines ``wanted`` (0-based, end excluded), and where those
    lines are in ``old`` (``mdiff.blocksinrange``); 403 "line range exceeds file size" as hg.
    ``texts``: the walk's, to read each revision once."""
    texts = texts or _Texts(repo, downward=False)
    old_log, new_log = texts.filelog(old[0]), texts.filelog(new[0])
    old_rev, new_rev = old_log.rev(old[1]), new_log.rev(new[1])
    old_lines, old_meta = texts.get(old[0], old_rev)
    new_lines, new_meta = texts.get(new[0], new_rev)
    charge(len(old_lines.text) + len(new_lines.text))
    if old[0] == new[0]:
        hints = stored_hints(old_log, old_rev, old_lines, old_meta, new_rev, new_lines, new_meta)
    else:
        hints = linediff.trimmed_hints(old_lines, new_lines)
    low, high = wanted
    low_a: int | None = None
    high_a: int | None = None
    changed = False
    previous = (0, 0, 0, 0)
    runs = linediff.hinted_blocks(old_lines, new_lines, hints)
    if new_lines.repeats is not None:  # each copy of a line in old is matched to one in new, or unmatched
        bound = new_lines.repeats + len(old_lines.lines) - sum(a2 - a1 for a1, a2, _b1, _b2 in runs)
        if old_lines.repeats is None or bound < old_lines.repeats:
            old_lines.repeats = bound  # (so that the next step, where old is new, need not count its lines)
    for run in runs:
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
    texts = _Texts(repo, downward=True)
    visit: dict[tuple[int, bytes], tuple[bytes, bytes, int, tuple[int, int]]] = {
        (log.linkrev(log.rev(node)), node): (path, node, intro, wanted)}
    while visit:
        c_path, c_node, c_rev, c_range = visit.pop(max(visit))
        tick("the line range's history")  # stopped once the page's client has gone
        parents = file_parents(repo, c_path, c_node)
        if not parents:  # the lines began here
            yield c_rev, c_path, c_node
            continue
        touched = False
        for p_path, p_node in parents:
            changed, p_range = range_before(repo, (p_path, p_node), (c_path, c_node), c_range, charge, texts)
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
    texts = _Texts(repo, downward=False)
    for file_rev in range(first + 1, len(filelog)):
        tick("the line range's history")
        touched = False
        for parent in filelog.parent_revs(file_rev):
            if parent not in seen:
                continue  # null, or another branch of the file
            changed, here = range_before(repo, (path, filelog.node(file_rev)), (path, filelog.node(parent)),
                                         seen[parent], charge, texts)
            touched = touched or changed
            if file_rev in seen and seen[file_rev] != here:  # a merge: the span of both
                here = (min(here[0], seen[file_rev][0]), max(here[1], seen[file_rev][1]))
            seen[file_rev] = here
        if touched:
            yield filelog.linkrev(file_rev), path, filelog.node(file_rev)
