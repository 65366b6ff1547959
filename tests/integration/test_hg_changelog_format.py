"""The changelog hgwire writes is the one hg writes: split (never inline), without generaldelta, every
revision a full snapshot; so real hg finds nothing to upgrade (``plain-cl-delta``), and its index and
delta chains are those of the same pushes into a local ``hg`` repository.  The other revlogs split past
hg's inline limit, as hg's."""

from __future__ import annotations

import random
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.hg.revlog import ENTRY_SIZE, FLAG_INLINE, INDEX_ENTRY, MAX_INLINE
from tests.conftest import Client, RunningServer, SshKeys, client_environment, ssh_server_settings


@pytest.fixture
def served(make_server: Callable[..., RunningServer], ssh_keys: SshKeys) -> tuple[RunningServer, str, tuple[str, str]]:
    """An fs server over SSH: the server, the URL of its ``p`` and the client's ``ui.ssh`` option."""
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    port = server.port("ssh")
    return server, f"ssh://alice@127.0.0.1:{port}/p", ("--config", f"ui.ssh={ssh_keys.command(port)}")


def _commit(client: Client, work: Path, message: str, files: dict[str, str]) -> None:
    for name, content in files.items():
        (work / name).write_text(content)
    (work.parent / "message").write_text(message)
    client.hg("commit", "-q", "-A", "-R", str(work), "-l", str(work.parent / "message"))


def _data_size(index: Path) -> tuple[bool, int]:
    """Whether the revlog is inline, and its bytes of revision data (``.d``'s, or the chunks in ``.i``)."""
    raw = index.read_bytes()
    inline = bool(struct.unpack(">I", raw[:4])[0] & FLAG_INLINE)
    if not inline:
        data = index.with_suffix(".d")
        return False, data.stat().st_size if data.exists() else 0
    pos = size = 0
    while pos < len(raw):
        length = INDEX_ENTRY.unpack_from(raw, pos)[1]
        size += length
        pos += ENTRY_SIZE + length
    return True, size


def _check_as_hg_keeps_it(client: Client, repo: Path, reference: Path) -> None:
    """hg has nothing to upgrade, verifies it, finds the changelog's flags, index and chains its own, and
    every other revlog inline exactly while under the inline limit."""
    assert re.search(r"^plain-cl-delta:\s+yes$", client.hg("debugformat", "-R", str(repo)).stdout, re.MULTILINE)
    upgrade = client.hg("debugupgraderepo", "-R", str(repo)).stdout
    assert "(no format upgrades found in existing repository)" in upgrade and "plain-cl-delta" not in upgrade
    client.hg("verify", "-q", "-R", str(repo))
    flags = [client.hg("debugrevlog", "-c", "-R", str(r)).stdout.splitlines()[1] for r in (repo, reference)]
    assert flags[0] == flags[1] == "flags  : (none)"
    chains = [client.hg("debugdeltachain", "-c", "-R", str(r), "-T", "{rev} {chainlen} {deltatype}\n").stdout
              for r in (repo, reference)]
    assert chains[0] == chains[1] and set(chains[0].split()[2::3]) == {"base"}, chains[0]
    assert client.hg("debugindex", "-c", "-R", str(repo)).stdout == client.hg("debugindex", "-c", "-R",
                                                                              str(reference)).stdout
    assert {p.name for p in (repo / ".hg/store").glob("00changelog.*")} == {"00changelog.i", "00changelog.d"}
    for index in (repo / ".hg/store").rglob("*.i"):
        if index.name != "00changelog.i":
            inline, size = _data_size(index)
            assert inline is (size < MAX_INLINE), (index, size)


def inline_changelog(repo: Path) -> None:
    """Rewrite the changelog as an inline one, as older hg (and hgwire) left it."""
    store = repo / ".hg" / "store"
    index, data = (store / "00changelog.i").read_bytes(), (store / "00changelog.d").read_bytes()
    out = bytearray()
    for rev, entry in enumerate(INDEX_ENTRY.iter_unpack(index)):
        packed = bytearray(INDEX_ENTRY.pack(*entry))
        if rev == 0:
            packed[:4] = struct.pack(">I", struct.unpack(">I", index[:4])[0] | FLAG_INLINE)
        start = (entry[0] >> 16) if rev else 0
        out += packed + data[start:start + entry[1]]
    (store / "00changelog.i").write_bytes(bytes(out))
    (store / "00changelog.d").unlink()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's repository, made once for the module (its tests copy it): a commit listing 300
    files, then one listing them all again (the old writer stored its changelog entry as a delta
    against the first), one more (revision 2); then 40 commits with 8 KB messages, past 128 KiB of
    changelog data."""
    base = tmp_path_factory.mktemp("changelog-format")
    client = Client(client_environment(base), base)
    work = base / "work"
    client.hg("init", str(work))
    names = [f"directory-{i % 7}-with-a-long-name/file-number-{i}.txt" for i in range(300)]
    for i in range(7):
        (work / f"directory-{i}-with-a-long-name").mkdir()
    _commit(client, work, "many files", dict.fromkeys(names, "one\n"))
    _commit(client, work, "all of them again", dict.fromkeys(names, "two\n"))
    _commit(client, work, "one more", {"small": "small\n"})
    noise = random.Random(42)
    for i in range(40):
        _commit(client, work, f"{i}: " + noise.randbytes(4096).hex(), {"small": f"{i}\n"})
    return work


@pytest.mark.parametrize("inline_first", [False, True])
def test_pushed_changelog_is_hgs(served: tuple[RunningServer, str, tuple[str, str]], client: Client,
                                 history: Path, tmp_path: Path, inline_first: bool) -> None:
    """``history``'s first three revisions pushed into a small changelog, then the 40 with 8 KB
    messages.  ``inline_first``: the server's changelog is inline before the pushes (its first write
    splits it, as hg's)."""
    server, url, ssh = served
    work, reference = tmp_path / "history", tmp_path / "reference"
    shutil.copytree(history, work)  # (a push marks the pushed changesets public in it)
    server_repo = server.root / "p"
    for repo in (server_repo, reference):
        client.hg("init", str(repo))
    if inline_first:
        client.hg("push", "-q", "-r", "0", "-R", str(work), str(reference))
        inline_changelog(reference)
        shutil.rmtree(server_repo)
        shutil.copytree(reference, server_repo)
    for target in (url, str(reference)):
        client.hg("push", "-q", "-r", "2", "-R", str(work), *ssh, target)
    _check_as_hg_keeps_it(client, server_repo, reference)
    for target in (url, str(reference)):
        client.hg("push", "-q", "-R", str(work), *ssh, target)
    assert (server_repo / ".hg/store/00changelog.d").stat().st_size > MAX_INLINE
    _check_as_hg_keeps_it(client, server_repo, reference)
