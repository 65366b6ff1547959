"""``hg annotate``'s answer, for hgweb's ``annotate`` pages (``json-annotate/REV/PATH``, the page
for browsers and the raw style): for each line of a file at a changeset, the changeset where the
line was last changed, the file's path there (copies and renames followed) and the line's number
in it.

Worked out as hg works it out, so that the answer is ``hg serve``'s line for line:

- the walk starts at the changeset that brought the file's revision (hg's ``introrev``: the
  revision of a file made identically on two branches is stored once, with the first one's
  changeset), and goes up the file revisions' parents, a copy's source first;
- a parent's changeset is its linkrev when that is an ancestor of the annotated changeset, else
  the nearest ancestor of the child's changeset that touched the file and holds this revision;
- a file revision's lines start as its own; the lines equal to a parent's, in the runs Mercurial's
  line matching finds (``backends.hg.linediff``), take that parent's answer, the second parent
  last (it wins where both match); the lines the revision's stored delta keeps of that parent (or
  the lines both texts start and end with) are where that matching starts, taken only where they
  are proven to be its answer (``linediff.hinted_blocks``), the rest searched as hg searches;
- a file that holds a NUL byte is one line, ``(binary:TYPE)``, of its revision's linkrev.

Blocking (revlog reads); the whole history of the file is read (``MAX_FILE_REVISIONS``), a look
at each revision whether the page's client has gone (``protocols.client_gone``: it stops then).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from backends.hg import mpatch
from backends.hg.archive import adjusted_linkrev, file_data, file_parents
from backends.hg.changelog import parse_filelog_text
from backends.hg.graph import ancestors_mask
from backends.hg.linediff import Lines, Run, Whitespace, hinted_blocks, split_lines, trimmed_hints
from backends.hg.repository import HgRepo
from backends.hg.revlog import Revlog
from protocols.client_gone import check
from protocols.errors import UnsupportedFeature

MAX_FILE_REVISIONS = 50000
"""File revisions one annotation may read by default (each is diffed against its parents): a
1,000-line file of 50,000 revisions, one line changed a revision, costs 8.2-8.4 s of CPU, as
``hg serve``'s 7.2-7.5 (20,000: 3.2-3.4 s, 3.1-3.2)."""


class _Bound(threading.local):
    revisions = MAX_FILE_REVISIONS


LIMIT = _Bound()
"""The bound in force in this thread: the gateway sets ``LIMIT.revisions`` from ``[limits]
annotate_max_revisions`` in the worker that renders each page; ``MAX_FILE_REVISIONS`` elsewhere."""


@dataclass(frozen=True)
class Origin:
    """A file revision as the walk meets it: its path, its node, and the changeset hg names for it."""

    path: bytes
    node: bytes
    rev: int


@dataclass(frozen=True)
class Line:
    """One line of the annotated file: where it comes from, its number there (from 1), its text."""

    origin: Origin
    number: int
    text: bytes


@dataclass
class _Annotated:
    origins: list[Origin]
    numbers: list[int]
    lines: list[bytes]
    compared: Lines  # the lines as matched (whitespace cleaned under the switches)
    meta: int  # the length of the revision's copy metadata, which its stored text starts with


def annotate(repo: HgRepo, parents_of: Sequence[tuple[int, int]], rev: int, path: bytes, file_node: bytes,
             binary_text: bytes, whitespace: Whitespace | None = None) -> list[Line]:
    """The lines of ``path`` (file node ``file_node``) at changeset ``rev``; ``parents_of`` each
    changeset's parents; ``binary_text`` the line a file with a NUL byte is shown as;
    ``whitespace`` hg's switches (``ignoreblanklines`` changes no annotation: hg's blank-only
    changes stay the child's, as changed lines do)."""
    text = file_data(repo, path, file_node)
    if b"\0" in text:  # the revision's own linkrev, not adjusted (hgweb's way)
        filelog = repo.filelog(path)
        return [Line(Origin(path, file_node, filelog.linkrev(filelog.rev(file_node))), 1, binary_text)]
    walk = _Walk(repo, parents_of, rev, whitespace or Whitespace())
    base = Origin(path, file_node, walk.adjusted(path, file_node, rev, inclusive=True))
    return walk.run(base)


class _Walk:
    def __init__(self, repo: HgRepo, parents_of: Sequence[tuple[int, int]], rev: int, whitespace: Whitespace) -> None:
        self.repo = repo
        self.whitespace = whitespace
        self.parents_of = parents_of
        self.ancestry = ancestors_mask(parents_of, [rev])  # hg's "ancestry context": the annotated changeset's
        self.filelogs: dict[bytes, Revlog] = {}
        """One open filelog a path for the whole walk: its last text is what the next revision, met
        after its parent, is patched onto (a filelog opened anew for each revision rebuilt every
        text from its chain's start, the whole history's deltas again for each revision)."""

    def text(self, path: bytes, node: bytes) -> tuple[bytes, int]:
        """A file revision's data, its copy metadata left out, and that metadata's length."""
        filelog = self.filelog(path)
        stored = filelog.revision(filelog.rev(node))
        data = parse_filelog_text(stored).data
        return data, len(stored) - len(data)

    def filelog(self, path: bytes) -> Revlog:
        filelog = self.filelogs.get(path)
        if filelog is None:
            filelog = self.filelogs[path] = self.repo.filelog(path)
        return filelog

    def hints(self, parent: Origin, before: _Annotated, child: Origin, after: _Annotated) -> list[Run]:
        """The lines a file revision is thought to keep of its parent, for the line matching to
        check: those its stored delta keeps, when it is stored against that parent (hg's usual
        case), else the lines both start and end with."""
        if parent.path == child.path and not self.whitespace.cleans:
            filelog = self.filelog(child.path)
            rev = filelog.rev(child.node)
            if filelog.delta_parent(rev) == filelog.rev(parent.node):
                return _kept(mpatch.parse_hunks(filelog.stored_delta(rev)[1]), before, after)
        return trimmed_hints(before.compared, after.compared)

    def adjusted(self, path: bytes, node: bytes, source: int, inclusive: bool = False) -> int:
        """hg's adjusted linkrev of a file revision met from changeset ``source``: for the walk's
        start (hg's ``introrev``) the source's own ancestors, else the ancestry context's."""
        return adjusted_linkrev(self.repo, self.parents_of, path, node, source, inclusive,
                                None if inclusive else self.ancestry)

    def parents(self, child: Origin) -> list[Origin]:
        return [Origin(path, node, self.adjusted(path, node, child.rev))
                for path, node in file_parents(self.repo, child.path, child.node)]

    def run(self, base: Origin) -> list[Line]:
        """hg's two walks: the first finds every revision's parents and how many children need it,
        the second annotates each revision once its parents are (depth first, parents in order)."""
        key = _key
        parents: dict[tuple[bytes, bytes], list[Origin]] = {}
        needed = {key(base): 1}
        visit = [base]
        while visit:
            here = visit.pop()
            if key(here) in parents:
                continue
            check("the annotation")  # (a page whose client has gone stops here: each step reads a revision)
            if len(parents) >= LIMIT.revisions:
                raise UnsupportedFeature(f"this file has more than {LIMIT.revisions} revisions: it is not "
                                         "annotated here; clone the repository and run hg annotate")
            found = parents[key(here)] = self.parents(here)
            for parent in found:
                needed[key(parent)] = needed.get(key(parent), 0) + 1
                if key(parent) not in parents:
                    visit.append(parent)
        done: dict[tuple[bytes, bytes], _Annotated] = {}
        visit = [base]
        while visit:
            here = visit[-1]
            if key(here) in done:
                visit.pop()
                continue
            waiting = [p for p in parents[key(here)] if key(p) not in done]
            if waiting:
                visit.extend(waiting)
                continue
            visit.pop()
            check("the annotation")
            text, meta = self.text(here.path, here.node)
            compared = Lines.of(self.whitespace.clean(text) if self.whitespace.cleans else text)
            count = len(compared.lines)
            lines = split_lines(text) if here is base else []  # (only the annotated revision's are shown)
            current = _Annotated([here] * count, list(range(1, count + 1)), lines, compared, meta)
            for parent in parents[key(here)]:
                before = done[key(parent)]
                hints = self.hints(parent, before, here, current)
                for a1, a2, b1, b2 in hinted_blocks(before.compared, current.compared, hints):
                    current.origins[b1:b2] = before.origins[a1:a2]
                    current.numbers[b1:b2] = before.numbers[a1:a2]
            for parent in parents[key(here)]:
                if needed[key(parent)] == 1:
                    del done[key(parent)]
                    del needed[key(parent)]
                else:
                    needed[key(parent)] -= 1
            done[key(here)] = current
        result = done[key(base)]
        return [Line(origin, number, text) for origin, number, text in zip(result.origins, result.numbers,
                                                                           result.lines, strict=True)]


def _kept(hunks: list[mpatch.Hunk], before: _Annotated, after: _Annotated) -> list[Run]:
    """The runs of whole lines a delta from one stored text to another leaves as they are (in
    the texts' data, past their copy metadata)."""
    return kept_runs(hunks, before.compared, before.meta, after.compared, after.meta)


def stored_hints(filelog: Revlog, old_rev: int, old: Lines, old_meta: int, new_rev: int, new: Lines,
                 new_meta: int) -> list[Run]:
    """The runs two revisions of one file are thought to share, for ``linediff.hinted_blocks`` to
    check: those the stored delta of one against the other keeps (either way round), else the
    lines both start and end with.  ``old_meta``, ``new_meta``: their copy metadata's lengths."""
    if filelog.delta_parent(new_rev) == old_rev != new_rev:
        return kept_runs(mpatch.parse_hunks(filelog.stored_delta(new_rev)[1]), old, old_meta, new, new_meta)
    if filelog.delta_parent(old_rev) == new_rev != old_rev:
        runs = kept_runs(mpatch.parse_hunks(filelog.stored_delta(old_rev)[1]), new, new_meta, old, old_meta)
        return [(j, i, k) for i, j, k in runs]
    return trimmed_hints(old, new)


def kept_runs(hunks: list[mpatch.Hunk], before: Lines, before_meta: int, after: Lines, after_meta: int
              ) -> list[Run]:
    """The runs of whole lines a delta from one stored text (``before``'s data after
    ``before_meta`` bytes of copy metadata) to another leaves as they are."""
    old, new = before.offsets, after.offsets
    runs: list[Run] = []
    pos = shift = 0
    for start, end, data in [*hunks, (old[-1] + before_meta, old[-1] + before_meta, b"")]:
        first, last = pos - before_meta, start - before_meta  # the kept bytes, in the data
        first_new = first + shift + before_meta - after_meta
        skipped = max(0, -first, -first_new)
        first, first_new = first + skipped, first_new + skipped
        line = bisect_left(old, first)
        if line < len(old):
            line_new = bisect_left(new, first_new + old[line] - first)
            count = bisect_right(old, last) - 1 - line
            if count > 0 and line_new < len(new) and new[line_new] == first_new + old[line] - first:
                runs.append((line, line_new, count))
        shift += len(data) - (end - start)
        pos = end
    return runs


def _key(origin: Origin) -> tuple[bytes, bytes]:
    """hg's identity of a file revision: path and node (not the changeset it was met through)."""
    return origin.path, origin.node
