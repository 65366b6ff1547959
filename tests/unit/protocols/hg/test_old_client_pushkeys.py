"""Pushes of hg clients before 4.6, replayed from their recorded bytes on both real backends.

hg 4.0 sends a pushed changeset's phase and bookmark as bundle2 ``pushkey`` parts after the
changegroup part, in the same bundle; hg 4.4 sends the phase as a ``phase-heads`` part and the
bookmark still as a ``pushkey`` part.  They name changesets that only this push brings: hg serve
moves them (the transcripts' ``reply:pushkey`` parts say ``return 1``); hgwire refused them as
unknown, so the push aborted ("updating … to public failed", "exporting bookmark … failed").
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from backends.filesystem import FilesystemBackend
from backends.interfaces import HgRepository, Kind, Node
from backends.memory import MemoryBackend
from protocols.hg_exchange import apply_pushkey

from .helpers import bundle_in, parts_of, run_ssh, side

PUSHED = Node(bytes.fromhex("1f0dee641bb7258c56bd60e93edfa2405381c41e"))


def _empty_repo(backend: str, tmp_path: Path) -> HgRepository:
    made = (FilesystemBackend(str(tmp_path)) if backend == "fs" else MemoryBackend("")).create("r", Kind.HG)
    return cast(HgRepository, made)


def _replies(stdout: bytes) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return [(part.type.lower(), part.params) for part, _ in parts_of(bundle_in(stdout))]


@pytest.mark.parametrize("backend", ["fs", "memory"])
@pytest.mark.parametrize("transcript", ["push-hg4.0.2.txt", "push-hg4.4.2.txt"])
def test_pushkey_parts_may_name_the_changesets_of_the_same_push(
    backend: str, transcript: str, tmp_path: Path
) -> None:
    repo = _empty_repo(backend, tmp_path)
    ours, _ = run_ssh(repo, side(transcript, "c"))
    assert _replies(ours) == _replies(side(transcript, "s"))  # every part answered, return 1 each
    assert repo.heads() == [PUSHED]
    assert repo.bookmarks() == {b"pushed-bm": PUSHED}
    assert repo.listkeys(b"phases") == {b"publishing": b"True"}  # no draft root: the changeset is public


@pytest.mark.parametrize("backend", ["fs", "memory"])
def test_a_pushkey_still_may_not_name_a_secret_changeset(backend: str, tmp_path: Path) -> None:
    """What the push brought is visible to its pushkeys; a changeset the repository keeps secret is not."""
    repo = _empty_repo(backend, tmp_path)
    run_ssh(repo, side("push-hg4.4.2.txt", "c"))
    tx = repo.transaction()
    tx.set_phase(2, [PUSHED])
    tx.commit()
    tx = repo.transaction()
    assert not apply_pushkey(repo, tx, b"bookmarks", b"other", b"", PUSHED.hex().encode())
    assert not apply_pushkey(repo, tx, b"phases", PUSHED.hex().encode(), b"2", b"0")
    tx.abort()
