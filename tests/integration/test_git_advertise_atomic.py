"""``receive.advertiseAtomic = false`` in a served repository offers no ``atomic`` push, as git's
receive-pack: ``git push --atomic`` then stops at the client ("the receiving end does not support
--atomic push") and nothing is pushed.  hgwire did not read it: it offered ``atomic`` all the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_damaged_repository import bare_with_a_commit


@pytest.mark.parametrize("transport", ["git", "http"])
def test_advertise_atomic_false_offers_no_atomic_push(make_server: Callable[..., RunningServer], client: Client,
                                                      transport: str, tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd))
    bare, work = bare_with_a_commit(client, server.root, "atomic.git", push=False)
    url = server.git_url("atomic") if transport == "git" else f"http://alice:s3cret@127.0.0.1:{server.port('http')}/atomic.git"
    client.git("--git-dir", str(bare), "config", "receive.advertiseAtomic", "false")
    client.git("branch", "side", cwd=work)
    refused = client.git("push", "--atomic", url, "main", "side", cwd=work, check=False)
    assert refused.returncode != 0 and "does not support --atomic push" in refused.stderr, refused.stderr
    assert client.git("--git-dir", str(bare), "for-each-ref").stdout == ""
    client.git("push", "-q", url, "main", cwd=work)
    client.git("--git-dir", str(bare), "config", "--unset", "receive.advertiseAtomic")
    client.git("push", "-q", "--atomic", url, "side", cwd=work)  # offered by default
    client.git("--git-dir", str(bare), "fsck", "--full")
    assert len(client.git("--git-dir", str(bare), "for-each-ref").stdout.splitlines()) == 2
