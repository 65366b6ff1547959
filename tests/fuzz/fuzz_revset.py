"""hgweb's revset search on a small history: any query is a list of changesets (no repeats,
each one pulls can see, or null), a keyword search (None), or a revset hgwire does not evaluate
(``NotServed``); never another exception, never a secret changeset."""

from __future__ import annotations

import backends.hg as hgstore
from backends.hg import revset
from backends.hg.graph import NULL_REV
from backends.hg.repository import HgRepo

from .harness import Finding, Target, hg_scratch

_made: list[tuple[HgRepo, set[int]]] = []


def _history() -> tuple[HgRepo, set[int]]:
    """Eight changesets (two branches, a merge, a closed head, tags, bookmarks, one secret), made
    once per process with the hg client; the repository and its visible revisions."""
    if _made:
        return _made[0]
    path, hg = hg_scratch("revset")
    for n, (user, name) in enumerate([("Ann <a@x>", "a.txt"), ("bob", "d/b.txt"), ("Ann <a@x>", "c.py")]):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(f"{n}\n")
        hg("commit", "-q", "-A", "-u", user, "-d", f"{n} 0", "-m", f"change {n} of {name}")
    hg("update", "-q", "1")
    hg("branch", "-q", "side")
    (path / "s.txt").write_text("side\n")
    hg("commit", "-q", "-A", "-u", "carol", "-d", "5 0", "-m", "side work")
    hg("merge", "-q", "default")
    hg("commit", "-q", "-u", "carol", "-d", "6 0", "-m", "Merge default")
    hg("tag", "-q", "-u", "t", "-d", "7 0", "v1")
    hg("commit", "-q", "--close-branch", "-u", "t", "-d", "8 0", "-m", "close side")
    hg("update", "-q", "default")
    hg("bookmark", "-q", "-r", "2", "feature")
    (path / "x.txt").write_text("secret\n")
    hg("commit", "-q", "-A", "-u", "t", "-d", "9 0", "-m", "secret work")
    hg("phase", "-q", "--secret", "--force", "-r", "tip")
    hg("bookmark", "-q", "-r", "tip", "hidden")
    repo = hgstore.open_repository(str(path), "r")
    assert repo is not None
    _made.append((repo, set(range(7))))
    return _made[0]


def run(data: bytes) -> None:
    repo, visible = _history()
    try:
        revs = revset.search_revs(repo, data[:400])
    except revset.NotServed:
        return
    if revs is None:
        return
    if len(set(revs)) != len(revs):
        raise Finding(f"{data!r} lists a changeset twice: {revs}")
    if not all(rev in visible or rev == NULL_REV for rev in revs):
        raise Finding(f"{data!r} lists {revs}, beyond the visible changesets")


def seeds() -> list[bytes]:
    _history()  # made here, before any input is timed (a dozen hg commands take seconds on a busy host)
    return [b"user(ann) and merge()", b"1::5", b"sort(all(), '-date user')", b"reverse(branch(side)) + tag()",
            b"ancestors(tip, depth=2) - ::1", b"only(tip, 2)", b"heads(all()) and not closed()", b"x:y",
            b"first(reverse(all()), 3)", b"limit(all(), 2, 1)", b"p2(merge())^~1", b"file('d/**') or keyword(C)",
            b"id(0) or null::1", b"descendants(null, 2)", b"bookmark()", b"present(nosuch)", b"-1:-3",
            b"children(branchpoint()) % 0", b"'a' ## b", b"ancestor(3, 4, 5)", b"max(draft()) and public()",
            b"limit(all(), 2, (), (), (), 1)", b"limit(all(), 2, (), ()=yes)", b"adds('**') - date('<1970-01-01 00:00:05 UTC')",
            b"matching(3, 'user date') + stack(2) + orphan() + filelog(a.txt)", b"adds('{*')",
            b"followlines(a.txt, 1:2, startrev=tip) + followlines('glob:a.*', 1, startrev=2, descend=yes)"]


TARGET = Target("revset", run, seeds, max_size=400)
