"""hgweb's diffs under the hgrc's ``[diff]`` settings, side by side with the real ``hg serve``:
``raw-rev``, ``json-rev``, ``json-diff`` and the raw style of a file's diff, byte for byte, for
changesets of every kind of change (an edit, an addition, a removal, an empty file made, a mode
change alone, a rename, a rename with an edit, a copy, a symbolic link, binary files made,
changed, renamed and removed, a name with a space, a merge), with ``[diff]`` unset, ``git``,
``git`` with ``noprefix``, ``unified``, ``nodates``, ``showfunc`` and the whitespace switches (on a
file changed by its whitespace, blank lines and one word)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import Client, RunningServer, hg_history_served
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw

SETTINGS = ["", "[diff]\ngit = true\n", "[diff]\ngit = 1\nnoprefix = yes\nunified = 1\n",
            "[diff]\nunified = 0\nnodates = true\n", "[diff]\nunified = 7\n",
            "[diff]\nshowfunc = true\nunified = 2\n", "[diff]\ngit = true\nshowfunc = 1\n",
            "[diff]\nignorews = true\n", "[diff]\nignorewsamount = 1\nunified = 1\n", "[diff]\nignorewseol = yes\n",
            "[diff]\nignoreblanklines = true\n", "[diff]\nignoreblanklines = 1\nignorewsamount = 1\ngit = 1\n"]


def _history(client: Client, repo: Path) -> None:
    hg = ("-R", str(repo))
    client.hg("init", str(repo))
    step = [1_700_000_000]

    def commit(message: str) -> None:
        step[0] += 60
        client.hg("commit", "-q", "-A", *hg, "-u", "t", "-d", f"{step[0]} 3600", "-m", message)

    lines = b"".join(b"line %d\n" % n if n % 9 else b"def function_%d(with, a, rather, long, signature):\n" % n
                     for n in range(40))
    (repo / "a.txt").write_bytes(lines)
    (repo / "gone.txt").write_bytes(b"bye\n")
    (repo / "bin.dat").write_bytes(b"\0\1\2" * 100)
    (repo / "with space.txt").write_bytes(b"s\n")
    spaced = b"".join(b"word %d  and\tmore\n" % n for n in range(30))
    (repo / "ws.txt").write_bytes(spaced)
    commit("start")
    (repo / "a.txt").write_bytes(lines.replace(b"line 3\n", b"three\n").replace(b"line 30\n", b"thirty\n"))
    (repo / "gone.txt").unlink()
    (repo / "empty.txt").write_bytes(b"")
    (repo / "with space.txt").write_bytes(b"s2\n")
    (repo / "ws.txt").write_bytes(spaced.replace(b"word 2  and", b"word 2 and").replace(b"word 5 ", b"word 5")
                                  .replace(b"word 9  and\tmore\n", b"word 9  and\tmore   \n\n\n")
                                  .replace(b"word 20 ", b"  word 20 ").replace(b"word 25", b"changed 25"))
    commit("edit, remove, empty")
    (repo / "a.txt").chmod(0o755)
    commit("mode only")
    client.hg("mv", "-q", *hg, str(repo / "a.txt"), str(repo / "b.txt"))
    client.hg("cp", "-q", *hg, str(repo / "with space.txt"), str(repo / "copy.txt"))
    commit("rename, copy")
    client.hg("mv", "-q", *hg, str(repo / "b.txt"), str(repo / "c.txt"))
    (repo / "c.txt").write_bytes((repo / "c.txt").read_bytes() + b"more\n")
    (repo / "link").symlink_to("c.txt")
    (repo / "bin.dat").write_bytes(b"\0\1\3" * 100)
    commit("rename with edit, link, binary change")
    client.hg("mv", "-q", *hg, str(repo / "bin.dat"), str(repo / "bin2.dat"))
    (repo / "new.bin").write_bytes(b"\0new")
    commit("binary rename and add")
    (repo / "new.bin").unlink()
    (repo / "empty.txt").unlink()
    commit("binary and empty removed")
    client.hg("update", "-q", *hg, "1")
    (repo / "side.txt").write_bytes(b"side\n")
    commit("side")
    client.hg("merge", "-q", *hg, "--tool", ":local", "6")
    commit("merge")


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path]:
    return hg_history_served(make_server, client, "d", _history)


def test_diffs_follow_the_diff_settings_as_hg_serve_does(served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    revs = range(len(client.hg("log", "-R", str(repo), "-T", "x\n").stdout.split()))
    # each revision's file diffs: the files it changes, and two it may not (a diff of an untouched
    # file, or of one the revision does not have, reads no [diff] setting: once a revision, not for
    # each of the twelve names)
    files = {rev: sorted({*client.hg("log", "-R", str(repo), "-r", str(rev), "-T", "{join(files, '\\n')}").stdout
                          .splitlines(), "a.txt", "with space.txt"}) for rev in revs}
    pages = [page for rev in revs for page in (f"raw-rev/{rev}", f"json-rev/{rev}")]
    pages += [f"json-diff/{rev}/{quote(name)}" for rev in revs for name in files[rev]]
    pages += [f"diff/{rev}/{quote(name)}?style=raw" for rev in (2, 3, 4, 5) for name in files[rev]]
    compared = 0
    # as hg serve runs for a hosting operator: HGPLAIN (which the tests' client has) would make it
    # ignore [diff] noprefix
    reference = Client({k: v for k, v in client.env.items() if k != "HGPLAIN"}, client.cwd)
    # One hg serve for every setting, not one started for each: hgweb reads a
    # repository's hgrc when it opens the repository, which it does again once the size or the
    # mtime of the changelog (and three more files) changed; each setting's changelog gets an
    # mtime of its own, an hour apart from the others and from the file's own.
    changelog = repo / ".hg" / "store" / "00changelog.i"
    written = changelog.stat().st_mtime
    with _hg_serve(reference, repo) as port:
        for n, settings in enumerate(SETTINGS):
            (repo / ".hg" / "hgrc").write_text(settings)
            os.utime(changelog, (written - 3600 * (n + 1), written - 3600 * (n + 1)))
            for page in pages:
                ours, theirs = raw(server.port("http"), "GET", f"/d/{page}"), raw(port, "GET", f"/{page}")
                assert ours.status == theirs.status, (settings, page)
                if theirs.status == 200:
                    assert ours.body == theirs.body, (settings, page)
                    compared += 1
    assert compared > 600
    (repo / ".hg" / "hgrc").write_text(SETTINGS[1])
    patch = raw(server.port("http"), "GET", "/d/raw-rev/5").body
    assert b"rename from bin.dat\nrename to bin2.dat" in patch and b"GIT binary patch\nliteral 4\n" in patch
