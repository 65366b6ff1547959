"""A URL of an older setup that names a repository by its absolute path on the server
(``ssh://host//srv/hg/a`` of hg-ssh, ``ssh://host/srv/git/pub.git`` of a git-shell account,
``git://host/srv/git/pub.git`` of git daemon without ``--base-path``) is still refused, but where
the path starts with ROOT's own, the refusal says the name it has here (whether or not it exists);
a name that does not start with ROOT's path is told nothing of ROOT."""

from __future__ import annotations

from collections.abc import Callable

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings


def test_a_name_under_the_root_s_own_path_is_refused_with_its_name_here(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    client.git("init", "-q", "--bare", str(server.root / "pub.git"))
    server.backend.create("team/a", Kind.HG)
    root = str(server.root.resolve()).strip("/")
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    git_bases = [f"git://127.0.0.1:{server.port('git')}/", f"ssh://git@127.0.0.1:{server.port('ssh')}/",
                 f"http://127.0.0.1:{server.port('http')}/"]
    for base in git_bases:
        refused = client.git("ls-remote", f"{base}{root}/pub.git", check=False)
        assert refused.returncode != 0, (base, refused)
        assert (f"repository {root}/pub.git not found; this server names repositories by their path under its "
                "root: pub.git") in refused.stderr, (base, refused.stderr)
        elsewhere = client.git("ls-remote", f"{base}srv/git/pub.git", check=False)
        assert "repository srv/git/pub.git not found" in elsewhere.stderr and root not in elsewhere.stderr, base
        missing = client.git("ls-remote", f"{base}{root}/nope.git", check=False)  # (told alike: no name's
        assert "not found; this server names repositories by their path under its root: nope.git" in \
            missing.stderr, base  # existence is told, which access rules may hide)
    ssh = ssh_keys.command(server.port("ssh"))
    for url in (f"ssh://git@127.0.0.1:{server.port('ssh')}//{root}/team/a",
                f"http://127.0.0.1:{server.port('http')}/{root}/team/a"):
        refused_hg = client.hg("id", "--ssh", ssh, url, check=False)
        assert refused_hg.returncode != 0, (url, refused_hg)
        assert "this server names repositories by their path under its root: team/a" in refused_hg.stderr + \
            refused_hg.stdout, (url, refused_hg.stderr)
    assert client.hg("id", "--ssh", ssh, f"ssh://git@127.0.0.1:{server.port('ssh')}/team/a").stdout.strip() \
        == "000000000000"
