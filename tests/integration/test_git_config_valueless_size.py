"""A config writing a size git reads as a push starts (``core.bigFileThreshold``) without ``=``:
git 2.39 reads no value there and refuses the push "bad numeric config value '' for
'core.bigfilethreshold'"; dulwich reads such a line as ``true``, so hgwire refused it "bad numeric
config value 'true'", a value the file does not hold.  It now names the value as git does, in the
repository's own config and in the server's ``[git] config`` file, each beside git's own
(``file://``, its receive-pack given that file as its system config).  Which setting has no value
is what git's parser finds: a pattern over the lines took ``bigFileThreshold`` alone in another
section for ``core``'s (naming ``''`` where git names ``core.bigFileThreshold = true``'s ``'true'``)
and missed it on the header's own line (``[core] bigFileThreshold``, naming ``'true'``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_git_daemon import commit

SAYS = "bad numeric config value '{}' for 'core.bigfilethreshold'"
VALUELESS = "[core]\n\tbigFileThreshold\n"
ON_HEADER_LINE = "[core] bigFileThreshold\n"
ANOTHER_SECTIONS = "[core]\n\tbigFileThreshold = true\n[backup]\n\tbigFileThreshold\n"


@pytest.mark.parametrize(("text", "value", "other"), [(VALUELESS, "", "true"), (ON_HEADER_LINE, "", "true"),
                                                      (ANOTHER_SECTIONS, "true", "")],
                         ids=["valueless", "on-header-line", "another-sections"])
@pytest.mark.parametrize("where", ["own", "server"])
def test_a_valueless_size_is_refused_naming_no_value_as_git_does(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        where: str, text: str, value: str, other: str) -> None:
    says = SAYS.format(value)
    base = tmp_path / "gitconfig"
    base.write_text(text if where == "server" else "")
    (tmp_path / "policy.toml").write_text(f'[git]\nconfig = "{base}"\n[[repo]]\npattern = "*"\nwrite = ["alice"]\n')
    server = make_server("fs", config_file=str(tmp_path / "policy.toml"), **ssh_server_settings(ssh_keys))
    client.env["GIT_SSH_COMMAND"] = ssh_keys.command(server.port("ssh"))
    work, bare, twin = client.cwd / "work", server.root / "v.git", client.cwd / "twin.git"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "f", "f\n", "first")
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "pack.threads", "1", cwd=bare)
    if where == "own":
        with open(bare / "config", "a") as config:
            config.write(text)
    shutil.copytree(bare, twin, symlinks=True)
    system = f"env -u GIT_CONFIG_NOSYSTEM GIT_CONFIG_SYSTEM={base} git-receive-pack"
    theirs = client.git("push", "--receive-pack", system, f"file://{twin}", "main:refs/heads/new", cwd=work,
                        check=False)
    assert theirs.returncode != 0 and says in theirs.stderr, theirs.stderr
    ours = client.git("push", f"ssh://alice@127.0.0.1:{server.port('ssh')}/v.git", "main:refs/heads/new",
                      cwd=work, check=False)
    fix = f"fix it in the server's git config {base}" if where == "server" else \
        "fix it in the repository's config on the server"
    assert ours.returncode != 0 and f"{says}; {fix}" in ours.stderr, ours.stderr
    assert SAYS.format(other) not in ours.stderr, ours.stderr
