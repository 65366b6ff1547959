"""A repository name that is not UTF-8 (``caf\\xe9.git``, a directory made on a Latin-1 system) is
refused in one sentence on every transport, saying why and who can fix it; it read "repository
names must be UTF-8" over git://, "command is not valid UTF-8" over SSH and "repository name
contains a control character or is not valid Unicode" over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings

NAMES_ARE_UTF8 = ("repository names must be UTF-8: a repository whose name is in another charset (Latin-1) is not "
                  "served; the server's operator can rename it in UTF-8")
LATIN1 = os.fsdecode(b"caf\xe9.git")  # as a Latin-1 terminal passes it to git


def test_a_name_that_is_not_utf8_is_refused_alike_on_every_transport(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys) -> None:
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    server.backend.create("café.git", Kind.GIT)  # a name in UTF-8 next to it, served
    os.rename(server.root / "café.git", os.fsencode(server.root) + b"/caf\xe9.git")  # renamed in Latin-1
    env = {"GIT_SSH_COMMAND": ssh_keys.command(server.port("ssh"))}
    for url in (f"git://127.0.0.1:{server.port('git')}/{LATIN1}", f"ssh://git@127.0.0.1/{LATIN1}",
                f"http://127.0.0.1:{server.port('http')}/caf%E9.git"):
        result = client.git("ls-remote", url, check=False, env=env)
        assert result.returncode != 0, url
        assert NAMES_ARE_UTF8 in result.stderr, (url, result.stderr)
