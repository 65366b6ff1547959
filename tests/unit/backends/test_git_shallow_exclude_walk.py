"""``git fetch --shallow-exclude`` plans its boundary as git's ``rev-list WANTS --not REF`` walks it:
newest first, stopping a few commits after only the excluded side's wait; the commits below the
excluded ref are not all read (a branch 8,000 commits below the tip of a history of 42,000: its
34,000 were, 0.1 s of the planning's 0.13).  The boundary is git's: the commits listed with a
parent not listed, over a history with merges, with the excluded ref a side branch too."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_pack
from backends.interfaces import ObjectId
from protocols.errors import ProtocolError
from protocols.git_upload import FetchRequest
from tests.unit.backends.test_git_large_tree_counting import _file, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

LINE = 300


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 commits on ``main``, each fifth merging a commit of ``side`` made off the one before;
    ``old`` 250 commits down ``main``, ``stale`` a side commit there."""
    src = tmp_path_factory.mktemp("exclude") / "src.git"
    git(src.parent, "init", "-q", "--bare", str(src))
    stream, main = [], ""
    for n in range(LINE):
        lines = [f"from :{main}\n"] if main else []
        if n % 5 == 4:
            stream.append(f"commit refs/heads/side\nmark :{2 * n + 1}\ncommitter C <c@example.com> {1700000000 + 2 * n} "
                          f"+0000\ndata 2\ns\nfrom :{main}\n" + _file("side.txt", f"{n}\n"))
            lines.append(f"merge :{2 * n + 1}\n")
        stream.append(f"commit refs/heads/main\nmark :{2 * n + 2}\ncommitter C <c@example.com> {1700000001 + 2 * n} "
                      f"+0000\ndata 2\nm\n" + "".join(lines) + _file("m.txt", f"{n}\n"))
        main = f"{2 * n + 2}"
        if n == 50:
            stream.append(f"reset refs/heads/old\nfrom :{main}\n\nreset refs/heads/stale\nfrom :99\n\n")
    git(src, "fast-import", "--quiet", input="".join(stream).encode())
    return src


def expected(src: Path, wants: list[str], excluded: str) -> tuple[set[str], set[str]]:
    """git's boundary (commits listed with a parent not listed) and the other commits listed."""
    listed = {}
    for line in git(src, "rev-list", "--parents", *wants, "--not", excluded).decode().splitlines():
        oid, *parents = line.split()
        listed[oid] = parents
    shallow = {c for c, parents in listed.items() if any(p not in listed for p in parents)}
    return shallow, set(listed) - shallow


@pytest.mark.parametrize("excluded", ["old", "stale", "side"])
def test_a_shallow_exclude_is_git_s_and_stops_where_the_histories_meet(
        source: Path, monkeypatch: pytest.MonkeyPatch, excluded: str) -> None:
    store = Repo(str(source)).object_store
    refs = {b"refs/heads/" + name.encode(): ObjectId(git(source, "rev-parse", name).strip())
            for name in ["main", "old", "side", "stale"]}
    tip = refs[b"refs/heads/main"]
    read: list[bytes] = []
    commit = git_pack._commit

    def counted(*args: object, **kwargs: object) -> object:
        read.append(args[1])  # type: ignore[arg-type]
        return commit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(git_pack, "_commit", counted)
    request = FetchRequest((tip,), frozenset(), (tip,), deepen_not=(excluded.encode(),))
    plan = git_pack.plan_shallow(store, request, refs)
    shallow, inner = expected(source, ["main"], excluded)
    assert {s.decode() for s in plan.shallow} == shallow - {tip.decode()}
    assert plan.unshallow == ((tip,) if tip.decode() not in shallow else ())
    if excluded == "old":  # (of the 300 and 60 commits, those below old are not all read)
        assert len(set(read)) < len(inner) + len(shallow) + 20


def skewed(root: Path, seed: int) -> Path:
    """120 commits over branches main, a and b, some merging another branch, a fifth of them
    dated up to 50 minutes off (a clock ahead or behind; commits a minute apart)."""
    rng = random.Random(seed)
    src = root / f"skewed-{seed}.git"
    git(root, "init", "-q", "--bare", str(src))
    stream, heads = [], {}
    for n in range(1, 121):
        when = 1_700_000_000 + 60 * n + (rng.randrange(-3000, 3000) if rng.random() < 0.2 else 0)
        branch = rng.choice(["main", "main", "a", "b"])
        head = heads.get(branch)
        lines = f"from :{head}\n" if head else (f"from :{rng.randrange(1, n)}\n" if n > 1 else "")
        others = [mark for name, mark in heads.items() if name != branch]
        if head and others and rng.random() < 0.2:
            lines += f"merge :{rng.choice(others)}\n"
        stream.append(f"commit refs/heads/{branch}\nmark :{n}\ncommitter C <c@example.com> {when} +0000\n"
                      f"data 1\nx\n{lines}" + _file("f", f"{n}\n"))
        heads[branch] = n
    git(src, "fast-import", "--quiet", input="".join(stream).encode())
    return src


@pytest.mark.parametrize("seed", [6, 22])
def test_a_shallow_exclude_over_skewed_clocks_is_git_s(tmp_path: Path, seed: int) -> None:
    """Where commit times go backwards git's walk stops before it has excluded every commit the
    excluded ref reaches, and lists them: so does hgwire's (a walk of the whole excluded history
    left them out, a boundary git does not send)."""
    src = skewed(tmp_path, seed)
    store = Repo(str(src)).object_store
    refs = {b"refs/heads/" + name.encode(): ObjectId(git(src, "rev-parse", name).strip()) for name in ["main", "a", "b"]}
    for want in ["main", "a", "b"]:
        for excluded in {"main", "a", "b"} - {want}:
            shallow, _inner = expected(src, [want], excluded)
            tip = refs[b"refs/heads/" + want.encode()]
            request = FetchRequest((tip,), frozenset(), (tip,), deepen_not=(excluded.encode(),))
            if not shallow:
                with pytest.raises(ProtocolError):
                    git_pack.plan_shallow(store, request, refs)
                continue
            plan = git_pack.plan_shallow(store, request, refs)
            found = {s.decode() for s in plan.shallow} | ({tip.decode()} if tip not in plan.unshallow else set())
            assert found == shallow, (want, excluded)
