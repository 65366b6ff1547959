"""A push that makes an inline manifest or filelog outgrow hg's inline limit splits it as hg does:
the split index waits beside ``.i`` (``data-s/<file>.i``, ``00manifest.i.s``) until the commit, so
while the push is open other sessions read the inline revlog as it was (a manifest's with the
pushed revisions appended, where hg's hooks read them), and a refused push leaves every byte of the
store as it was, with no ``.d`` and no split index behind."""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

from backends.hg.revlog import FLAG_INLINE
from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh

CHECK_SCRIPT = """\
cmp -s .hg/store/data/big.i "$SAVED/big.i" && echo "filelog as it was"
size=$(wc -c < "$SAVED/00manifest.i")
head -c "$size" .hg/store/00manifest.i | cmp -s - "$SAVED/00manifest.i" && echo "manifest as it was"
echo "pending: $(HGRCPATH= "$HGBIN" cat -r tip big | wc -c) bytes, $(HGRCPATH= "$HGBIN" manifest -r tip | wc -l) files"
exit 1
"""


def _store(repo: Path) -> dict[str, bytes]:
    store = repo / ".hg" / "store"
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def _inline(index: Path) -> bool:
    return bool(struct.unpack(">I", index.read_bytes()[:4])[0] & FLAG_INLINE)


def test_a_split_waits_for_the_commit_and_a_refused_push_leaves_the_revlogs_as_they_were(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    peer = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    repo, work, saved = server.root / "r", tmp_path / "work", tmp_path / "saved"
    client.hg("init", str(repo))
    client.hg("init", str(work))
    (work / "big").write_text("small\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "small")
    peer.hg("push", "-q", "-R", str(work), peer.url("r"))
    store = repo / ".hg" / "store"
    assert _inline(store / "data/big.i") and _inline(store / "00manifest.i")
    saved.mkdir()
    for name in ("data/big.i", "00manifest.i"):
        shutil.copy(store / name, saved)
    # a 400 KB text (random: it compresses to half) and 2,500 files of random names: both revlogs
    # pass the inline limit's 128 KiB of data in this push
    (work / "big").write_bytes(os.urandom(200_000).hex().encode())
    (work / "d").mkdir()
    for i in range(2500):
        (work / "d" / (os.urandom(40).hex() + ".txt")).write_text(f"{i}\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "large")
    (repo / ".hg" / "check.sh").write_text(CHECK_SCRIPT)
    (repo / ".hg" / "hgrc").write_text(f"[hooks]\npretxnchangegroup.check = SAVED={saved} HGBIN={VENV_BIN}/hg "
                                       "sh .hg/check.sh\n")
    before = _store(repo)
    refused = peer.hg("push", "-R", str(work), peer.url("r"), check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, refused
    # the hook, reading the repository while the push waits: the filelog's .i untouched, the
    # manifest's old bytes intact; and hg, told HG_PENDING, reads both pushed revisions
    assert "remote: filelog as it was" in said and "remote: manifest as it was" in said, said
    assert "remote: pending: 400000 bytes, 2501 files" in said, said
    assert _store(repo) == before  # byte for byte; no .d, no data-s/big.i, no 00manifest.i.s
    client.hg("verify", "-q", "-R", str(repo))
    (repo / ".hg" / "hgrc").unlink()
    peer.hg("push", "-q", "-R", str(work), peer.url("r"))
    assert not _inline(store / "data/big.i") and not _inline(store / "00manifest.i")
    assert not [p for p in store.rglob("*") if p.is_file() and ("data-s" in p.parts or p.name.endswith(".i.s"))]
    client.hg("verify", "-q", "-R", str(repo))
    assert len(client.hg("cat", "-R", str(repo), "-r", "tip", "path:big").stdout) == 400_000
