"""``core.bigFileThreshold`` below the size of a loose object (``1k``, ``1m`` beside a pushed file of
a few MiB: a push of fewer than ``receive.unpackLimit`` objects is stored loose) made every clone
and fetch of it "internal error": dulwich's open takes the setting as the most it inflates of one
loose object.  To git it only says which blobs are not delta-compressed; git reads them all."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


@pytest.mark.parametrize("threshold", ["1k", "0"])
def test_a_loose_object_past_the_big_file_threshold_is_served(make_server: Callable[..., RunningServer],
                                                                client: Client, threshold: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "s.git"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "big").write_text("".join(f"line {n} of a file larger than the threshold\n" for n in range(200)))
    client.git("add", "big", cwd=work)
    client.git("commit", "-qm", "big", cwd=work)
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main", cwd=work)  # (three objects: stored loose)
    assert not list((bare / "objects" / "pack").glob("*.pack"))
    client.git("config", "core.bigFileThreshold", threshold, cwd=bare)
    ours = client.git("clone", "-q", server.git_url("s"), str(client.cwd / "ours"), check=False)
    assert ours.returncode == 0, ours.stderr
    theirs = client.git("clone", "-q", f"file://{bare}", str(client.cwd / "theirs"))
    assert theirs.returncode == 0
    assert (client.cwd / "ours" / "big").read_bytes() == (client.cwd / "theirs" / "big").read_bytes()
    (work / "big").write_text("changed\n")
    client.git("commit", "-qam", "small", cwd=work)
    pushed = client.git("push", "-q", server.git_url("s"), "main", cwd=work, check=False)
    assert pushed.returncode == 0, pushed.stderr
    client.git("--git-dir", str(bare), "fsck", "--full")
