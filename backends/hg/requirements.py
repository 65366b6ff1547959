"""Repository requirements: which on-disk features a repository uses, and which we handle.

``.hg/requires`` lists working-copy requirements; with ``share-safe`` the store
ones live in ``.hg/store/requires`` (helptext/internals/requirements.txt).  A
reader that meets a requirement it does not know must refuse the repository:
guessing would give wrong answers.
"""

from __future__ import annotations

from protocols.errors import UnsupportedFeature

SHARE_SAFE = "share-safe"
STORE = "store"
FNCACHE = "fncache"
DOTENCODE = "dotencode"
GENERALDELTA = "generaldelta"
SPARSEREVLOG = "sparserevlog"
REVLOGV1 = "revlogv1"
ZSTD = "revlog-compression-zstd"
NO_COMPRESSION = "exp-compression-none"
"""Revlog chunks are stored as they are (``format.revlog-compression=none``): hg writes each with its
``u`` marker (or none, for one starting with a NUL byte), and reads any engine's."""
BOOKMARKS_IN_STORE = "bookmarksinstore"
PERSISTENT_NODEMAP = "persistent-nodemap"
"""A node-to-revision index on disk (``00changelog.n`` and its ``.nd`` data) that hg keeps for its non-inline
changelog and manifest; a Rust-enabled hg creates repositories with it.  hgwire reads revlogs without it and
leaves it as it is: hg checks its tip against the revlog and indexes the revisions after that tip in
memory (``revlog._register_nodemap_info``), and its next write, or ``hg debugupdatecaches``, brings it up to
date.  It is not a stream clone requirement (hg's server leaves it out of ``streamreqs`` too)."""

INTERNAL_PHASE = "internal-phase-2"
"""Changesets may be in the internal phase (96: ``hg shelve`` keeps shelved changes there, and an
``hg amend``'s temporaries): hidden as secret ones are, never exchanged; ``phaseroots`` lists them."""
ARCHIVED_PHASE = "exp-archived-phase"
"""Changesets may be archived (phase 32): hidden as secret ones are, never exchanged."""

LFS = "lfs"
"""Some file revisions hold an LFS pointer (revision flag ``EXTSTORED``); the blobs are kept apart
(``backends.lfs``).  Added by a push that brings such revisions to a repository serving LFS."""
LARGEFILES = "largefiles"
"""Changesets hold standins (``.hglf/``) of files kept apart (``backends.hg.largefiles``); the store's
format is the usual one.  Added by a push that brings standins to a repository serving largefiles."""

SUPPORTED = frozenset(
    {
        REVLOGV1,
        STORE,
        FNCACHE,
        DOTENCODE,
        GENERALDELTA,
        SPARSEREVLOG,
        SHARE_SAFE,
        ZSTD,
        NO_COMPRESSION,
        BOOKMARKS_IN_STORE,
        PERSISTENT_NODEMAP,
        LARGEFILES,
        LFS,
        INTERNAL_PHASE,
        ARCHIVED_PHASE,
        # Working-copy only: a server never reads or writes the dirstate, nor which files are checked out.
        "dirstate-v2",
        "dirstate-tracked-key-v1",
        "exp-sparse",
    }
)
"""Everything else (treemanifest, revlogv2, changelogv2, narrowhg, shared, ...) is refused."""

WORKING_COPY_DEFAULT = (SHARE_SAFE,)
STORE_DEFAULT = (DOTENCODE, FNCACHE, GENERALDELTA, ZSTD, REVLOGV1, SPARSEREVLOG, STORE)
"""What ``hg init`` of Mercurial 7.2 writes (checked against a real ``hg init``)."""


def parse(data: bytes) -> set[str]:
    return {line.strip().decode("ascii", "replace") for line in data.splitlines() if line.strip()}


def format_requirements(reqs: frozenset[str] | tuple[str, ...]) -> bytes:
    return b"".join(r.encode("ascii") + b"\n" for r in sorted(reqs))


_UPGRADE = (" (a repository of Mercurial 1.0 or older, or made with format.usefncache=false); upgrade it where it lies with "
            "'hg debugupgraderepo --run' to serve it")
_RECLONE = (" (a repository of Mercurial 0.9.1 or older); make a new one of it with "
            "'hg clone --pull OLD NEW' to serve it")

_EXPERIMENTAL = (" (an experimental format of hg's, which hg makes only when told it may corrupt the data); make "
                 "a new one of it in today's format with 'hg clone --pull OLD NEW' to serve it")
_EXPERIMENTAL_FILES = frozenset({"fileindex-v1"})
"""Requirements of hg's experimental formats not named ``exp-…`` (``revlogv2``'s file index)."""
COPIES_SIDEDATA = "exp-copies-sidedata-changeset"
_COPIES_SIDEDATA = (" (an experimental format of hg's that keeps copies in changeset sidedata, which "
                    "format.exp-use-copies-side-data-changeset makes); make a new one of it in today's format with "
                    "'hg clone --pull OLD NEW' to serve it (its copies and renames are kept)")
"""Said of ``exp-changelog-v2`` and of the copies requirement beside it: hg makes both without telling the
user the format may corrupt the data, which the other experimental formats need."""


def check(reqs: set[str] | frozenset[str]) -> None:
    """Refuse a repository with any requirement outside SUPPORTED, or older than Mercurial 1.1's layout.

    Store path encoding is implemented for fncache, with or without dotencode (every
    repository created since Mercurial 1.1, 2008); an older one is refused with how to upgrade it.
    """
    for req in sorted(reqs):
        if req not in SUPPORTED:
            raise UnsupportedFeature(f"unsupported repository feature: {req}" + (
                _COPIES_SIDEDATA if COPIES_SIDEDATA in reqs and req in (COPIES_SIDEDATA, "exp-changelog-v2")
                else _EXPERIMENTAL if req.startswith("exp-") or req in _EXPERIMENTAL_FILES else ""))
    for needed in (REVLOGV1, STORE, FNCACHE):
        if needed not in reqs:
            raise UnsupportedFeature(f"unsupported repository feature: missing {needed}"
                                     + (_UPGRADE if needed == FNCACHE else _RECLONE if needed == STORE else ""))
