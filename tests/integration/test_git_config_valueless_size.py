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

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.git_config_twins import base_config_server, served_and_twin

SAYS = "bad numeric config value '{}' for 'core.bigfilethreshold'"
VALUELESS = "[core]\n\tbigFileThreshold\n"
ON_HEADER_LINE = "[core] bigFileThreshold\n"
ANOTHER_SECTIONS = "[core]\n\tbigFileThreshold = true\n[backup]\n\tbigFileThreshold\n"
TRUE_THEN_VALUELESS = "[core]\n\tbigFileThreshold = true\n\tbigFileThreshold\n"
VALUELESS_THEN_TRUE = "[core]\n\tbigFileThreshold\n\tbigFileThreshold = true\n"
"""One key written both ways: git dies at the first, naming its value; each ``true`` was taken
as valueless (``''``) where the file wrote any without ``=``."""


@pytest.mark.parametrize(("text", "value", "other"), [(VALUELESS, "", "true"), (ON_HEADER_LINE, "", "true"),
                                                      (ANOTHER_SECTIONS, "true", ""),
                                                      (TRUE_THEN_VALUELESS, "true", ""),
                                                      (VALUELESS_THEN_TRUE, "", "true")],
                         ids=["valueless", "on-header-line", "another-sections", "true-then-valueless",
                              "valueless-then-true"])
@pytest.mark.parametrize("where", ["own", "server"])
def test_a_valueless_size_is_refused_naming_no_value_as_git_does(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path,
        where: str, text: str, value: str, other: str) -> None:
    says = SAYS.format(value)
    server, base = base_config_server(make_server, client, ssh_keys, tmp_path, text if where == "server" else "")

    def configure(bare: Path) -> None:
        if where == "own":
            with open(bare / "config", "a") as config:
                config.write(text)

    work, _bare, twin = served_and_twin(client, server, configure)
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
