"""A pushed pack is kept (``.keep``, as git's receive-pack keeps it) from the moment it leaves its
quarantine until the push's refs name its objects: a ``git repack -a -d`` an operator runs in that
moment leaves it alone, where it would drop the push's objects (no ref names them yet) and the refs
written next would name objects that are gone.

The repack runs from the ``reference-transaction`` hook, which hgwire runs in exactly that moment
(objects in the store, refs about to be written).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_damaged_repository import bare_with_a_commit

HOOK = """#!/bin/sh
# as an operator's cron job would, in the moment before the refs are written
[ "$1" = prepared ] || exit 0
ls "$GIT_DIR/objects/pack" | grep -c '\\.keep$' >> "$GIT_DIR/keeps-seen"
env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \\
    git -C "$GIT_DIR" repack -a -d -q
"""


def test_a_repack_while_a_push_lands_keeps_the_pushed_objects(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare = server.root / "kept.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    hook = bare / "hooks" / "reference-transaction"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    work = client.cwd / "kept"
    client.git("init", "-q", str(work))
    for n in range(3):
        (work / f"f{n}.txt").write_text(f"version {n}\n" * 50)
        client.git("add", ".", cwd=work)
        client.git("commit", "-qm", f"commit {n}", cwd=work)
        client.git("push", "-q", server.git_url("kept"), "main", cwd=work)
    tip = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert client.git("--git-dir", str(bare), "rev-parse", "main").stdout.strip() == tip
    client.git("--git-dir", str(bare), "fsck", "--full", "--strict")
    assert [int(n) for n in (bare / "keeps-seen").read_text().split()] == [1, 1, 1]  # each push's own pack
    assert not list((bare / "objects" / "pack").glob("*.keep")), "released once the refs are written"
    clone = client.cwd / "clone"
    client.git("clone", "-q", server.git_url("kept"), str(clone))
    assert client.git("rev-parse", "HEAD", cwd=clone).stdout.strip() == tip


def test_a_keep_file_a_killed_server_left_goes_a_day_later(client: Client, tmp_path: Path) -> None:
    """Only a push's own ``.keep`` (git's receive-pack's words in it), and only once stale; an
    operator's stays."""
    import os
    import time

    from dulwich.repo import Repo

    from backends.git_ingest import sweep_stale_temporaries

    bare = tmp_path / "k.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    pack_dir = bare / "objects" / "pack"
    left, fresh, own = pack_dir / "pack-a.keep", pack_dir / "pack-b.keep", pack_dir / "pack-c.keep"
    left.write_text("receive-pack 123 on host\n")
    fresh.write_text("receive-pack 456 on host\n")
    own.write_text("")
    day_ago = time.time() - 25 * 3600
    for path in (left, own):
        os.utime(path, (day_ago, day_ago))
    sweep_stale_temporaries(Repo(str(bare)).object_store)  # type: ignore[arg-type]
    assert sorted(p.name for p in pack_dir.glob("*.keep")) == ["pack-b.keep", "pack-c.keep"]


def test_a_quarantine_removed_under_a_push_refuses_it_in_words(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: Any) -> None:
    """``git prune`` may take a push's quarantine for a stale one and remove it while the pack
    lands: the push is refused saying so (it was "internal error" and a traceback)."""
    import shutil

    from backends.git import DulwichGitRepository

    server = make_server("fs", git=[LOOPBACK])
    _, work = bare_with_a_commit(client, server.root, "pruned.git", push=False)
    landed = DulwichGitRepository._landed

    def pruned_first(self: Any, pack: Any, quarantine: Any = None) -> None:
        if quarantine is not None:
            shutil.rmtree(quarantine.path)
        landed(self, pack, quarantine)

    monkeypatch.setattr(DulwichGitRepository, "_landed", pruned_first)
    refused = client.git("push", server.git_url("pruned"), "main", cwd=work, check=False)
    assert refused.returncode == 1
    assert ("the push's quarantine directory was removed while the push was stored (a `git prune --expire=now` "
            "on the server?); push again") in refused.stderr, refused.stderr
    monkeypatch.setattr(DulwichGitRepository, "_landed", landed)
    client.git("push", "-q", server.git_url("pruned"), "main", cwd=work)
