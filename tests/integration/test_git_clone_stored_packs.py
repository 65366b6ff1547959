"""git clone of a repository whose packs go out as stored (every entry of each sent), with real
clients over git://: a bitmapped pack holding objects no ref reaches any more, a pack kept from a
push (index-pack's fixed thin pack: whole commits, then REF_DELTAs mixed with OFS_DELTAs, their
bases appended), loose objects; SHA-1 and SHA-256; clients with and without ofs-delta, v0 and v2.
The clone must hold what ``git rev-list --objects --all`` lists on the server (as ``git daemon``
sends: not the unreachable objects), the received pack exactly those, and pass ``git fsck --full``."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from backends import git_fastpack
from tests.conftest import LOOPBACK, Client, RunningServer


def _commit_lines(client: Client, work: Path, first: int, last: int) -> None:
    for i in range(first, last):
        for n in range(4):  # four growing files: deltas between their versions
            lines = [f"line {n} {k} of a file long enough to be stored as a delta\n" for k in range(300 + 7 * i)]
            (work / f"big{n}").write_text("".join(lines[i % 5:]))
        (work / f"small{i}").write_text(f"{i}\n")
        client.git("add", "-A", cwd=work)
        client.git("commit", "-q", "-m", f"c{i}", cwd=work)


def _stored_types(repo: Path) -> list[Counter[int]]:
    """The entry kinds of each pack of ``repo``, from their index's offsets."""
    kinds = []
    for pack in sorted((repo / "objects" / "pack").glob("*.pack")):
        data = pack.read_bytes()
        kinds.append(Counter((data[o] >> 4) & 7 for o in _offsets(pack)))
    return kinds


def _offsets(pack: Path) -> list[int]:
    import subprocess

    with open(pack.with_suffix(".idx"), "rb") as idx:
        out = subprocess.run(["git", "show-index", f"--object-format={_format(pack)}"], stdin=idx,
                             capture_output=True, check=True, text=True).stdout
    return sorted(int(line.split()[0]) for line in out.splitlines())


def _format(pack: Path) -> str:
    return "sha256" if len(pack.stem) == len("pack-") + 64 else "sha1"


@pytest.fixture(params=["sha1", "sha256"])
def served(request: pytest.FixtureRequest, make_server: object, client: Client) -> tuple[RunningServer, Path]:
    object_format = request.param
    server: RunningServer = make_server("fs", git=[LOOPBACK], read_only=True)  # type: ignore[operator]
    repo = server.root / "stored.git"
    client.git("init", "-q", "--bare", f"--object-format={object_format}", str(repo))
    work = client.cwd / f"work-{object_format}"
    client.git("init", "-q", f"--object-format={object_format}", str(work))
    _commit_lines(client, work, 0, 12)
    client.git("checkout", "-q", "-b", "gone", cwd=work)
    _commit_lines(client, work, 100, 104)  # a branch deleted after the repack: unreachable in the pack
    client.git("push", "-q", str(repo), "main", "gone", cwd=work)
    client.git("-c", "pack.threads=1", "repack", "-adbq", cwd=repo)
    client.git("update-ref", "-d", "refs/heads/gone", cwd=repo)
    client.git("reflog", "expire", "--expire=now", "--all", cwd=repo)
    client.git("checkout", "-q", "main", cwd=work)
    _commit_lines(client, work, 12, 20)
    client.git("-c", "pack.threads=1", "push", "-q", "--receive-pack=git -c receive.unpackLimit=1 receive-pack",
               str(repo), "main", cwd=work)  # kept as index-pack fixed it: REF_DELTAs to appended bases
    _commit_lines(client, work, 20, 22)
    client.git("push", "-q", str(repo), "main", cwd=work)  # unpacked: loose objects
    client.git("tag", "-a", "-m", "v1", "v1", "main~3", cwd=work)
    client.git("push", "-q", str(repo), "v1", cwd=work)
    kinds = _stored_types(repo)
    assert len(kinds) == 2 and any(k[7] and k[6] for k in kinds), kinds  # (the pushed pack mixes both deltas)
    # "whole.git": the same repacked (every object of its one pack reachable), then a push kept
    whole = server.root / "whole.git"
    client.git("clone", "-q", "--mirror", str(repo), str(whole))
    client.git("-c", "pack.threads=1", "repack", "-adbq", cwd=whole)
    _commit_lines(client, work, 22, 30)
    client.git("-c", "pack.threads=1", "push", "-q", "--receive-pack=git -c receive.unpackLimit=1 receive-pack",
               str(whole), "main", cwd=work)
    return server, repo


@pytest.mark.parametrize("name", ["stored", "whole"])
@pytest.mark.parametrize("ofs_delta", [True, False])
@pytest.mark.parametrize("proto", ["0", "2"])
def test_a_clone_of_stored_packs_is_what_the_refs_reach(served: tuple[RunningServer, Path], client: Client,
                                                         name: str, ofs_delta: bool, proto: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    server, repo = served
    repo = server.root / f"{name}.git"
    runs: list[int] = []  # entries each pack sent whole put in its one run (the server runs in this process)
    real = git_fastpack._plain_entries

    def counted(*args: object, **kw: object) -> object:
        for done, end in real(*args, **kw):  # type: ignore[arg-type]
            runs.append(done)
            yield done, end

    monkeypatch.setattr(git_fastpack, "_plain_entries", counted)
    wanted = {line.split()[0] for line in client.git("rev-list", "--objects", "--all", cwd=repo).stdout.splitlines()}
    everything = set(client.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)",
                                cwd=repo).stdout.split())
    assert bool(everything - wanted) == (name == "stored"), "stored.git holds unreachable objects"
    clone = client.cwd / f"clone-{name}-{proto}-{ofs_delta}"
    done = client.git("-c", f"protocol.version={proto}", "-c", f"repack.usedeltabaseoffset={str(ofs_delta).lower()}",
                      "-c", "fetch.unpackLimit=1", "-c", "transfer.fsckObjects=true",
                      "clone", "--bare", "--progress", server.git_url(name), str(clone)).stderr
    found = re.search(r"Receiving objects: 100% \((\d+)/", done)
    assert found is not None, done
    assert int(found.group(1)) == len(wanted)
    got = {line.split()[0] for line in client.git("rev-list", "--objects", "--all", cwd=clone).stdout.splitlines()}
    assert got == wanted
    held = set(client.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=clone).stdout.split())
    assert held == wanted, "nothing unreachable was sent"
    client.git("fsck", "--full", "--strict", cwd=clone)
    if name == "whole":  # (stored.git's packs hold objects not sent: entry by entry)
        assert runs, "the packs went out as stored, their first entries as one run"
