"""A largefiles clone over SSH whose largefile the server lacks when the client asks for it (gone
since its ``statlfile``): the client shows what ``hg serve --stdio``'s refusal makes it show."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_hooks import _real_hg_serve
from tests.integration.test_hg_largefiles import LF, largefiles_clone
from tests.integration.test_hg_ssh import HgSsh

STAT_SAYS_PRESENT = """\
from hgext.largefiles import wirestore


def uisetup(ui):
    wirestore.wirestore._stat = lambda self, hashes: dict.fromkeys(hashes, 0)
"""
"""A client extension: every largefile is there by ``statlfile`` (as when one goes between the
client's stat and its ``getlfile``), so the client asks for it."""


def test_a_missing_largefile_is_told_as_hg_serve_tells_it(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    server = make_server("fs", **ssh_server_settings(ssh_keys))
    peer = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    repo, work = largefiles_clone(peer, peer.url, server, client, tmp_path)
    data = os.urandom(1 << 16)
    (work / "blob.bin").write_bytes(data)
    client.hg(*LF, "add", "-q", "--large", str(work / "blob.bin"), cwd=work)
    client.hg(*LF, "commit", "-q", "-m", "big", cwd=work)
    peer.hg(*LF, "--config", "largefiles.usercache=" + str(tmp_path / "cache0"), "push", "-q", "-R", str(work),
            peer.url("big"))
    sha = hashlib.sha1(data).hexdigest()
    (repo / ".hg" / "largefiles" / sha).unlink()
    for cached in Path(client.env["HOME"]).rglob(sha):  # the user cache hg serve would look in too
        cached.unlink()
    reference = tmp_path / "reference" / "big"
    shutil.copytree(repo, reference)
    (tmp_path / "stat_says_present.py").write_text(STAT_SAYS_PRESENT)
    racing = ("--config", f"extensions.statpresent={tmp_path / 'stat_says_present.py'}")
    seen = {}
    with _real_hg_serve(client, "ssh", reference, tmp_path) as (real, url):
        for name, (target, target_url) in {"hgwire": (peer, peer.url("big")), "hg": (real, url)}.items():
            cloned = target.hg(*LF, *racing, "--config", f"largefiles.usercache={tmp_path / ('cache-' + name)}", "clone",
                               target_url, str(tmp_path / f"clone-{name}"), check=False)
            seen[name] = (cloned.returncode, cloned.stdout, cloned.stderr)
    assert seen["hgwire"] == seen["hg"], seen
    returncode, out, err = seen["hgwire"]
    assert returncode == 255 and f"remote: abort: requested largefile {sha} not present in cache\n" in out, seen
    assert "remote: -" not in out and err == "abort: unexpected response: empty string\n", seen
