"""A pushed history of small edits is stored as deltas where Mercurial stores deltas: a small file's
revisions (edits larger than half of it, merges) took hgwire whole texts, a store larger than the
pusher's own; the texts read back are the pusher's, and ``hg verify`` passes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Client, RunningServer
from tests.integration.test_hg_http import HgHttp, _settings, htpasswd  # noqa: F401

EDITS = 12


def _history(client: Client, source: Path) -> None:
    """A small file (127 bytes) whose first and last lines every commit changes, on two branches
    merged: each delta's one hunk is most of the text."""
    client.hg("init", str(source))
    body = [b"import os\n", b"import sys\n", b"\n", b"def main(argv):\n",
            b"    return run(argv[1:], os.environ)\n", b"\n", b"print(main(sys.argv))\n"]
    for n in range(EDITS):
        if n == EDITS // 2:
            client.hg("update", "-q", "-R", str(source), "-r", str(EDITS // 4))
        if n == EDITS - 1:
            client.hg("merge", "-q", "-R", str(source), "--tool", ":local", "-r", str(EDITS // 2 - 1))
        head = b"# revision %d\n" % n
        text = head + b"".join(body) + b"#" * (127 - len(head) - sum(map(len, body)) - 4) + b" %02d\n" % n
        assert len(text) == 127
        (source / "b.py").write_bytes(text)
        client.hg("commit", "-q", "-A", "-R", str(source), "-u", "t", "-m", f"edit {n}")


def _deltas(client: Client, repo: Path, path: str) -> list[str]:
    out = client.hg("debugdeltachain", "-R", str(repo), path, "-T", "{deltatype}\n").stdout
    return out.split()


def test_a_pushed_history_of_small_edits_is_stored_as_deltas_as_hg_stores_it(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path) -> None:
    server = make_server("fs", **_settings(htpasswd))
    peer = HgHttp(server, client)
    served = server.root / "r"
    client.hg("init", str(served))
    source = tmp_path / "src"
    _history(client, source)

    client.hg("push", "-q", "-R", str(source), peer.push_url("r"))

    client.hg("verify", "-q", "-R", str(served))
    theirs = _deltas(client, source, "b.py")
    ours = _deltas(client, served, "b.py")
    assert len(ours) == len(theirs) == EDITS
    assert ours.count("base") <= theirs.count("base"), (ours, theirs)
    mine = (served / ".hg" / "store" / "data" / "b.py.i").stat().st_size
    assert mine <= (source / ".hg" / "store" / "data" / "b.py.i").stat().st_size
    for args in (["b.py"], ["-m"]):  # (``hg verify`` checked every text's hash; read as hg reads them)
        for rev in range(EDITS):
            assert (client.hg("debugdata", "-R", str(served), *args, str(rev)).stdout
                    == client.hg("debugdata", "-R", str(source), *args, str(rev)).stdout)


def _long_lived_branch(client: Client, source: Path) -> None:
    """A file edited once more on its first branch after 12 revisions of another branch's (texts
    unlike each other): the new revision's parent is some 100 KB back in the file's revlog."""
    client.hg("init", str(source))
    lines = [b"line %d %s\n" % (i, b"%016x" % (i * 0x9E3779B97F4A7C15 % (1 << 64))) for i in range(600)]
    (source / "f").write_bytes(b"".join(lines))
    client.hg("commit", "-q", "-A", "-R", str(source), "-u", "t", "-m", "base")
    for n in range(12):
        (source / "f").write_bytes(os.urandom(8000).hex().encode())
        client.hg("commit", "-q", "-R", str(source), "-u", "t", "-m", f"other {n}")
    client.hg("update", "-q", "-R", str(source), "-r", "0")
    for n in range(2):
        lines[n * 7] = b"edit %d\n" % n
        (source / "f").write_bytes(b"".join(lines))
        client.hg("commit", "-q", "-R", str(source), "-u", "t", "-m", f"edit {n}")


def _spans(client: Client, repo: Path, path: str) -> list[tuple[str, int, int]]:
    """(delta type, bytes from the chain's start to the revision's end, text size) of each revision."""
    out = client.hg("debugdeltachain", "--all-info", "-R", str(repo), path,
                    "-T", "{deltatype} {lindist} {uncompsize}\n").stdout
    return [(kind, int(span), int(size)) for kind, span, size in (line.split() for line in out.splitlines())]


def test_a_repository_without_sparse_revlog_gets_deltas_whose_span_hg_would_take(
        make_server: Callable[..., RunningServer], client: Client, htpasswd: Path,  # noqa: F811
        tmp_path: Path) -> None:
    """hg reads a delta chain of a generaldelta revlog without ``sparserevlog`` (a repository an hg
    before 4.7 made) as one span from its first chunk: hgwire stored the branch's edit as a delta on
    its parent 24 times its text away, where hg stores it whole (a span of at most 4 times)."""
    server = make_server("fs", **_settings(htpasswd))
    peer = HgHttp(server, client)
    served = server.root / "r"
    client.hg("init", "--config", "format.sparse-revlog=no", str(served))
    assert "sparserevlog" not in (served / ".hg" / "store" / "requires").read_text()
    reference = tmp_path / "reference"
    client.hg("init", "--config", "format.sparse-revlog=no", str(reference))
    source = tmp_path / "src"
    _long_lived_branch(client, source)

    client.hg("push", "-q", "-R", str(source), peer.push_url("r"))
    client.hg("push", "-q", "-R", str(source), str(reference))

    client.hg("verify", "-q", "-R", str(served))
    ours, theirs = _spans(client, served, "f"), _spans(client, reference, "f")
    assert theirs[13][0] != "p1" and ours[13][0] == "base", (ours, theirs)  # (hg's: a delta on the revision before)
    assert all(span <= 4 * size for _kind, span, size in ours + theirs), (ours, theirs)
    for rev in (13, 14):  # (``hg verify`` checked every text's hash; read as hg reads them)
        assert (client.hg("debugdata", "-R", str(served), "f", str(rev)).stdout
                == client.hg("debugdata", "-R", str(source), "f", str(rev)).stdout)
