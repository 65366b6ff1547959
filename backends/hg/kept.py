"""The one budget of what the Mercurial engine keeps parsed between requests, and what it weighs.

Every cache of parsed hg data kept across requests (the shared index cache, each store's views,
branches, tags, bookmarks, markers and store paths, the manifests the web pages read, the
repositories kept for read-only requests) is in ``KEPT``, one ``BudgetPool``: each value is weighed
by the objects it holds, an object held by several (a changelog's parsed index, held by its views,
the shared index cache and a kept repository) counted once, least recently used first out across
them, and weighed again as it grows (a node map built).  A repository whose parsed data is larger
than the whole budget is served but not kept.  The gateway sets the budget from
``[limits] hg_kept_repositories_bytes``.

The weights are what the parsed structures hold in Python's allocations (tracemalloc), not the
sizes of the files they were parsed from (a split index's 64-byte entry parses into 293-356 bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.lru import BudgetPool

if TYPE_CHECKING:
    from backends.hg.revlog import Index

KEPT_BYTES = 256 << 20
"""The default budget of ``KEPT`` (``[limits] hg_kept_repositories_bytes``)."""

KEPT = BudgetPool(KEPT_BYTES)

INDEX_ENTRY_BYTES = 360
"""A parsed index entry (a tuple of eight fields, its ints and its node, and the list's slot): 293
bytes in a 50,000-changeset index whose small ints are shared, 356 in a real 40,000-entry one."""
NODEMAP_ENTRY_BYTES = 80
"""A node map's entry once it is built (the dict's slot; its keys are the entries' nodes)."""
NODE_KEY_BYTES = 56
"""A node map's key made for it (a 20-byte bytes object), where a lazy index has no entry's node to share."""
NODE_COLUMN_BYTES = 20
PARENT_COLUMNS_BYTES = 8
PREFIX_COLUMN_BYTES = 4
COLUMN_ENTRY_BYTES = NODE_COLUMN_BYTES + PARENT_COLUMNS_BYTES
"""An index's node column (20 bytes a revision) and parent columns (two 4-byte ints)."""
INDEX_OBJECT_BYTES = 200
"""An ``Index`` itself, its list's and node map's headers."""
VIEWS_ENTRY_BYTES = 2
"""``Views``' phases and visibility (a byte each); its parents are its index's parent columns,
weighed with the index (``index_bytes``)."""
HEAD_BYTES = 40
"""A head in the views' lists of heads (an int and a slot)."""
BRANCH_ENTRY_BYTES = 72
"""A revision's (branch, closes) in a store's branch list: 65 measured when its branch name is
shared (the default branch, or read from the rev-branch-cache); a name parsed from each changeset
adds about 40."""
TAG_BYTES = 110
"""A tag, beside its name's length: the name's and the node's bytes objects, the dict's slot."""
MARKER_BYTES = 900
"""A parsed obsolescence marker and its places in the obsstore's indexes (896 measured)."""
STORE_PATH_BYTES = 130
"""A (file, store path) pair of the fncache's list, beside the two names' lengths (187 measured for 57)."""
MANIFEST_ENTRY_BYTES = 150
"""A parsed manifest line (path, node, flags), beside its path's length (204 measured for 21)."""


def index_bytes(index: Index) -> int:
    """What a parsed index holds: its entries, its node map (counted as built for an index that
    has one, over ``revlog.SCANNED_ENTRIES``: the first lookup of a node builds it, which nearly
    every request on a changelog does), an inline file's bytes.

    A lazy one (``revlog.Index``: a split index of more than ``revlog.LAZY_ENTRIES``) holds its
    file's bytes and its node and parent columns (counted as made: nearly every use of a changelog
    makes them), and what it has worked out so far: its entries parsed whole, its node map (whose
    keys are bytes objects of its own).  It is weighed again when it makes those
    (``IndexCache.snapshot``, the views' and kept repositories' caches at each use)."""
    parts = index.packed_parts
    entries = len(index)
    if parts is None:  # (and its node and parent columns, once a reader of every revision made them)
        return (INDEX_OBJECT_BYTES + INDEX_ENTRY_BYTES * entries + len(index.inline_data or b"")
                + NODEMAP_ENTRY_BYTES * max(len(index._nodemap), entries if entries > 4 else 0)
                + NODE_COLUMN_BYTES * (index._nodes is not None) * entries
                + PARENT_COLUMNS_BYTES * (index._parents is not None) * entries)
    held = INDEX_OBJECT_BYTES + len(parts[0]) + len(parts[1]) + COLUMN_ENTRY_BYTES * entries
    if index._prefixes is not None:  # (its node prefixes, which its node lookups scan)
        held += PREFIX_COLUMN_BYTES * entries
    if not index.lazy:
        held += INDEX_ENTRY_BYTES * entries
    if index._nodemap:
        held += (NODEMAP_ENTRY_BYTES + NODE_KEY_BYTES) * len(index._nodemap)
    return held


def branches_bytes(known: list[tuple[bytes, bool]]) -> int:
    """What a store's list of (branch, closes) a revision holds."""
    return BRANCH_ENTRY_BYTES * len(known) + 64


def markers_bytes(markers: object) -> int:
    """What a parsed obsstore (``ObsStore``) holds."""
    return MARKER_BYTES * len(getattr(markers, "markers", ())) + 1000
