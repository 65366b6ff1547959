"""A config line git's parser stops in ("bad config line N in file F"): git refuses the whole config,
every service and whatever the line sets.  dulwich read some such lines (``[uploadpack] hideRefs ;
note`` on its header's line, ``hideRefs`` ended by a form feed, as ``true``) and so hgwire served
them, taking ``true`` for a ref to hide; a line of a file included where dulwich does not follow the
include (``includeIf "hasconfig:…"``) was passed over.  Each is now refused as git refuses it,
naming the line and the file, for the repository's config, a file it includes, and the server's
``[git] config`` file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer
from tests.git_config_twins import listed_under_base_config, refused_everywhere
from tests.integration.test_git_daemon import commit
from tests.integration.test_git_hiderefs_repeated_sections import pull_refs_repository

LINES = {"header": "[uploadpack] hideRefs ; note\n", "form-feed": "[transfer]\n\thideRefs\f\n",
         "comment": "[receive]\n\thideRefs # note\n"}
HASCONFIG = '[remote "o"]\n\turl = https://example.com/o.git\n[includeIf "hasconfig:remote.*.url:https://example.com/**"]\n'


@pytest.mark.parametrize("where", ["own", "included"])
@pytest.mark.parametrize("form", sorted(LINES))
def test_a_bad_config_line_refuses_every_service_as_git_does(
        make_server: Callable[..., RunningServer], client: Client, form: str, where: str) -> None:
    server, bare, work = pull_refs_repository(make_server, client, "bare")
    with open(bare / "config", "a") as f:
        if where == "own":
            f.write(LINES[form])
        else:
            f.write(HASCONFIG + "\tpath = more\n")
            (bare / "more").write_text("[core]\n\tx = 1\n" + LINES[form])
    line = (bare / "config").read_text().count("\n") if where == "own" else 2 + LINES[form].count("\n")
    says = (f"the repository's git config cannot be read (bad config line {line} in file "
            f"{'config' if where == 'own' else 'more'}), and git cannot read it either; tell the server's operator")
    commit(client, work, "b.txt", "b\n", "second")
    refused_everywhere(client, bare, server.git_url("bare"), work, "bad config line", says)


def test_a_bad_line_of_the_server_config_refuses_every_repository(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    base, fetched = listed_under_base_config(make_server, client, tmp_path, "[core]\n\tx = 1\n" + LINES["header"])
    assert fetched.returncode != 0
    assert (f"the server's git config {base} cannot be read (bad config line 3 in file {base}), and git cannot "
            "read it either; tell the server's operator") in fetched.stderr, fetched.stderr
