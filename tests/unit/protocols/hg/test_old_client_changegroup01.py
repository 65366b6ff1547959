"""A bundle1 clone (hg before 3.x, or ``devel.legacy.exchange=bundle1``) gets a changegroup 01, each
revision a delta against the one sent before it, replayed from a recorded hg 2.6 session.

Such deltas are computed, not read from the store.  Consecutive manifests differ in lines spread
over the whole text; one hunk from the first changed line to the last resent them almost whole
(on the bench corpus 166 MB of manifest deltas where hg serve sends 1.3 MB: 110 MB on the wire
instead of 28 MB, an hg 2.6 clone over HTTP 39 s instead of 11 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from backends.filesystem import FilesystemBackend
from backends.interfaces import HgRepository, Kind, Section
from protocols.changegroup import ChangegroupDecoder, StreamReader

from .helpers import load, run_ssh, side

TRANSCRIPT = "clone-hg2.6.2.txt"


def _reference_changegroup() -> bytes:
    """What hg serve answered the recorded ``getbundle``: its bytes up to the client's next command."""
    answer, after = bytearray(), False
    for direction, data in load(TRANSCRIPT):
        if direction == "c":
            if after:
                break
            after = data.startswith(b"getbundle")
        elif direction == "s" and after:
            answer += data
    return bytes(answer)


def _after_frames(stdout: bytes, count: int) -> bytes:
    """``stdout`` past its first ``count`` length-prefixed answers (``hello``, ``between``, ``batch``)."""
    at = 0
    for _ in range(count):
        newline = stdout.index(b"\n", at)
        at = newline + 1 + int(stdout[at:newline])
    return stdout[at:]


def _delta_bytes(changegroup: bytes) -> dict[str, int]:
    sizes = {section.name: 0 for section in Section}
    for group in ChangegroupDecoder(StreamReader(iter([changegroup])), b"01").groups():
        for revision in group.revisions:
            assert isinstance(revision.delta, bytes)
            sizes[group.section.name] += len(revision.delta)
    return sizes


def _repo(root: Path, changegroup: bytes) -> HgRepository:
    repo = cast(HgRepository, FilesystemBackend(str(root)).create("r", Kind.HG))
    tx = repo.transaction()
    tx.add_changegroup(ChangegroupDecoder(StreamReader(iter([changegroup])), b"01").groups())
    tx.commit()
    return repo


def test_changegroup_01_deltas_replace_only_the_changed_lines(tmp_path: Path) -> None:
    reference = _reference_changegroup()
    repo = _repo(tmp_path / "served", reference)
    ours, _ = run_ssh(repo, side(TRANSCRIPT, "c"))
    sent = _after_frames(ours, 3)
    theirs_sizes, our_sizes = _delta_bytes(reference), _delta_bytes(sent)
    assert our_sizes["MANIFEST"] <= theirs_sizes["MANIFEST"] * 1.1, (our_sizes, theirs_sizes)
    assert sum(our_sizes.values()) <= sum(theirs_sizes.values()) * 1.1, (our_sizes, theirs_sizes)
    # and what they build is the repository: every hash checked again on the way in
    again = _repo(tmp_path / "again", sent)
    assert again.heads() == repo.heads()
