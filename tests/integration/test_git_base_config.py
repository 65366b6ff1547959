"""``[git] config`` of the ``--config`` file: a git config read before each git repository's own,
as git's receive-pack and upload-pack read the system's (``/etc/gitconfig``), so an operator sets
``receive.denyNonFastForwards`` or ``transfer.hideRefs`` once for every repository; a repository's
own value wins; a file git could not read refuses, saying which (it is not guessed past)."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import bcrypt

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit

POLICY = """
[git]
config = "{config}"

[[repo]]
pattern = "*"
write = ["alice"]
"""


def test_the_operators_git_config_is_read_before_each_repository_s_own(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    base = tmp_path / "gitconfig"
    base.write_text("[receive]\n\tdenyNonFastForwards = true\n[include]\n\tpath = hidden.cfg\n")
    (tmp_path / "hidden.cfg").write_text("[transfer]\n\thideRefs = refs/private\n")  # beside it, as for git
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY.format(config=base))
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy), htpasswd=str(htpasswd))
    server.backend.create("r", Kind.GIT)
    git_dir = server.root / "r.git"
    url = server.git_url("r")  # read over git://, pushed to over HTTP (as alice)
    work = client.cwd / "work"
    client.git("clone", "-q", url, str(work))
    client.git("remote", "set-url", "--push", "origin",
               server.url("http", "r").replace("http://", "http://alice:pw@"), cwd=work)
    commit(client, work, "a.txt", "a\n", "a")
    commit(client, work, "b.txt", "b\n", "b")
    client.git("push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/other", cwd=work)
    client.git("--git-dir", str(git_dir), "update-ref", "refs/private/x", "main")
    served = client.git("ls-remote", url).stdout
    assert "refs/heads/main" in served and "refs/private" not in served  # hidden by the included file
    refused = client.git("push", "origin", "+HEAD~1:main", cwd=work, check=False)
    assert refused.returncode != 0 and "non-fast-forward" in refused.stderr, refused.stderr
    hidden = client.git("push", "origin", "HEAD:refs/private/y", cwd=work, check=False)
    assert hidden.returncode != 0 and "deny updating a hidden ref" in hidden.stderr, hidden.stderr
    before = client.git("--git-dir", str(git_dir), "rev-parse", "main").stdout
    client.git("--git-dir", str(git_dir), "config", "receive.denyNonFastForwards", "false")  # its own wins
    client.git("push", "-q", "origin", "+HEAD~1:main", cwd=work)
    assert client.git("--git-dir", str(git_dir), "rev-parse", "main").stdout != before
    client.git("--git-dir", str(git_dir), "fsck", "--full")

    (tmp_path / "hidden.cfg").write_text("[transfer]\n\thideRefs = refs/heads/other\n")  # read again at once
    served = client.git("ls-remote", url).stdout
    assert "refs/private/x" in served and "refs/heads/other" not in served
    base.write_text("[receive\n")  # git could not read it: nothing is served as if it were not there
    broken = client.git("ls-remote", url, check=False)
    assert broken.returncode != 0 and f"the server's git config {base} cannot be read" in broken.stderr
    over_http = client.git("ls-remote", server.url("http", "r"), check=False)  # said there too, not "internal error"
    assert over_http.returncode != 0 and f"the server's git config {base} cannot be read" in over_http.stderr
    forced = client.git("push", "origin", "+HEAD:refs/heads/other", cwd=work, check=False)
    assert forced.returncode != 0
    base.unlink()  # a missing file is none, as git takes a missing /etc/gitconfig
    assert "refs/private/x" in client.git("ls-remote", url).stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port('http')}/r.git/log", timeout=30) as page:
        assert page.status == 200
