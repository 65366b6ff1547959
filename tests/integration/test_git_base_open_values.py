"""The settings git reads as a repository opens or a pack is made (``core.commitGraph``,
``core.multiPackIndex``, ``core.fsyncObjectFiles``, ``pack.writeBitmapHashCache``,
``core.bigFileThreshold`` …) set in the server's ``[git] config`` file to a value git would not
read ("maybe").  hgwire judged them in the repository's own config alone, so the file was served
where git, reading it as its ``/etc/gitconfig``, refuses: every request for ``core.commitGraph`` and
``core.multiPackIndex`` (unless the repository's own config sets them: git reads their last value),
a push and a fetch's pack for ``core.fsyncObjectFiles`` and the sizes, a fetch's pack for the
bitmap settings (git reads each of their values).  Each is checked beside git's own (``file://``,
its upload-pack and receive-pack given the file as their system config)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.git_config_twins import base_config_server, served_and_twin

CASES = {  # (key, the repository's own value): (ls-remote, clone, push) refused
    ("core.commitGraph", None): (True, True, True),
    ("core.commitGraph", "true"): (False, False, False),
    ("core.multiPackIndex", None): (True, True, True),
    ("core.fsyncObjectFiles", "false"): (False, True, True),
    ("pack.writeBitmapHashCache", None): (False, True, False),
    ("core.bigFileThreshold", "512m"): (False, True, True),
}


@pytest.mark.parametrize(("key", "own"), sorted(CASES, key=str))
def test_a_value_git_would_not_read_in_the_server_config_is_refused_where_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path, key: str,
        own: str | None) -> None:
    section, name = key.split(".")
    server, base = base_config_server(make_server, client, ssh_keys, tmp_path, f"[{section}]\n\t{name} = maybe\n")
    work, _bare, twin = served_and_twin(
        client, server, None if own is None else lambda bare: client.git("config", key, own, cwd=bare))
    system = f"env -u GIT_CONFIG_NOSYSTEM GIT_CONFIG_SYSTEM={base}"  # (git's own services read the file)
    says = (f"bad {'numeric' if 'Threshold' in key else 'boolean'} config value 'maybe' for '{key.lower()}'; "
            f"fix it in the server's git config {base}")
    for url in (f"file://{twin}", f"ssh://alice@127.0.0.1:{server.port('ssh')}/v.git"):
        tag = "git" if url.startswith("file:") else "ours"
        serve = ["--upload-pack", f"{system} git-upload-pack"] if tag == "git" else []
        done = (client.git("ls-remote", *serve, url, check=False),
                client.git("clone", "-q", *serve, url, str(client.cwd / f"c-{tag}"), check=False),
                client.git("push", *(["--receive-pack", f"{system} git-receive-pack"] if tag == "git" else []),
                           url, "main:refs/heads/new", cwd=work, check=False))
        for what, refused, run in zip(("ls-remote", "clone", "push"), CASES[key, own], done, strict=True):
            assert (run.returncode != 0) == refused, (tag, what, run.stderr)
            if tag == "ours":
                assert (says in run.stderr) == refused, (tag, what, run.stderr)
