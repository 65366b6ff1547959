"""A bundle2 ``bookmarks`` part naming a changeset the server does not have is refused in words that
say so (hg serve stores such a bookmark, which hg then ignores); the bookmark is not stored."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import VENV_BIN, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_hooks import _real_hg_serve
from tests.integration.test_hg_ssh import HgSsh

PUSH_BOOKMARK = """\
import struct, sys
from mercurial import bundle2, bundle2_part_handlers, error, hg, ui as uimod, util  # noqa: F401 (its handlers)
ui = uimod.ui.load()
ui.setconfig(b"ui", b"ssh", sys.argv[2].encode())
local = hg.repository(ui, sys.argv[4].encode())
peer = hg.peer(ui, {}, sys.argv[1].encode())
bundler = bundle2.bundle20(ui)
caps = {b"error": [b"abort", b"pushraced", b"unsupportedcontent", b"pushkey"]}
bundler.newpart(b"replycaps", data=bundle2.encodecaps(caps))
bundler.newpart(b"bookmarks", data=bytes.fromhex(sys.argv[3]) + struct.pack(">H", 5) + b"ghost")
try:
    with local.lock(), local.transaction(b"push") as tr:
        reply = peer.unbundle(util.chunkbuffer(bundler.getchunks()), [b"force"], b"push")
        bundle2.processbundle(local, reply, lambda: tr)
    print("accepted")
except error.PushRaced as exc:
    print("raced:", exc)
except error.Abort as exc:
    print("abort:", exc.message.decode(), exc.hint.decode() if exc.hint else "")
"""
"""A client pushing a bundle2 whose only part (beside ``replycaps``) moves bookmark ``ghost`` to a
node; it prints how the server answered."""


def test_a_bookmark_to_a_changeset_the_server_lacks_is_refused_as_unknown(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    peer = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    work, repo = tmp_path / "work", server.root / "r"
    client.hg("init", str(work))
    (work / "a").write_text("a\n")
    client.hg("commit", "-q", "-A", "-R", str(work), "-m", "a")
    client.hg("clone", "-q", "-U", str(work), str(repo))
    reference = tmp_path / "reference" / "r"
    shutil.copytree(repo, reference)
    script = tmp_path / "push_bookmark.py"
    script.write_text(PUSH_BOOKMARK)
    unknown = os.urandom(20).hex()
    said = {}
    with _real_hg_serve(client, "ssh", reference, tmp_path) as (real, url):
        for name, ssh, target in (("hgwire", peer.ssh, peer.url("r")), ("hg", real.ssh, url)):
            done = subprocess.run([os.path.join(VENV_BIN, "python"), str(script), target, ssh, unknown, str(work)],
                                  check=True, env=real.client.env, capture_output=True, text=True, timeout=60)
            said[name] = done.stdout + done.stderr
    # hg serve stores it (and hg then ignores a bookmark to a node its changelog lacks)
    assert said["hg"] == "accepted\n" and f"{unknown} ghost" in (reference / ".hg" / "bookmarks").read_text()
    assert said["hgwire"].endswith(f'abort: bookmark "ghost" names changeset {unknown[:12]}, which is unknown to the '
                                   "server; push that changeset with the bookmark \n"), said
    assert "changed while pushing" not in said["hgwire"]
    assert not (repo / ".hg" / "bookmarks").exists()
    client.hg("verify", "-q", "-R", str(repo))
