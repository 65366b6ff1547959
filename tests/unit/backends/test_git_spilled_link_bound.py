"""backends.git_ingest.PushLinks: links kept past ``SPILL_LINKS`` (by first byte, as raw ids) are
bounded by ``max_links`` as links in sets were, by the objects they name, not by how many times a
push's trees named them.  A push's whole trees name the same files again (each version of a large
directory stored whole names all of it): counted with every repeat, such a push gave up its links
and its connectivity check walked every object it added (25 s of CPU for the bench corpus's
migration push, 0.02 s through the links)."""

from __future__ import annotations

import hashlib

import pytest

from backends import git_ingest


def _entries(count: int, salt: bytes = b"") -> list[tuple[bytes, int, bytes]]:
    return [(b"f%d" % n, 0o100644, hashlib.sha1(salt + b"%d" % n).hexdigest().encode()) for n in range(count)]


@pytest.fixture(autouse=True)
def _spill_early(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_ingest, "SPILL_LINKS", 16, raising=False)


def test_the_same_links_named_again_and_again_stay_kept() -> None:
    """200 files named by 30 whole versions of their tree: 6,000 links named, 200 objects, under a
    bound of 1,000."""
    links = git_ingest.PushLinks(max_links=1000)
    entries = _entries(200)
    for _version in range(30):
        links.link_entries(entries)
    assert links._check_bound()
    assert links.linked() == {sha for _name, _mode, sha in entries}


def test_more_objects_than_the_bound_still_give_the_links_up() -> None:
    """1,200 distinct objects, each named three times, under a bound of 1,000: the walk checks."""
    links = git_ingest.PushLinks(max_links=1000)
    for salt in (b"a", b"b", b"c"):
        for _again in range(3):
            links.link_entries(_entries(400, salt))
    assert not links._check_bound()
    assert links.linked() is None


def test_repeats_settle_as_links_in_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links compacted on the way settle against the pack's own objects as if kept in sets."""
    entries = _entries(300)
    own = [bytes.fromhex(sha.decode()) for _name, _mode, sha in entries[:100]]
    ordered = (b"".join(sorted(own)), bytes([git_ingest.BLOB]) * len(own))
    answers = []
    for spill in (16, 1 << 30):
        monkeypatch.setattr(git_ingest, "SPILL_LINKS", spill, raising=False)
        links = git_ingest.PushLinks(max_links=1000)
        for _version in range(10):
            links.link_entries(entries)
        wrong = links.settle({git_ingest.BLOB: own}, lambda: ordered)
        answers.append((wrong, links.linked()))
    assert answers[0] == answers[1]
    assert answers[0][1] == {sha for _name, _mode, sha in entries[100:]}
