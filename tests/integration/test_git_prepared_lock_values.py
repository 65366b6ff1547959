"""A ``reference-transaction`` hook told "prepared" finds each ref's new value in its lock file
(``refs/heads/a.lock``), as git 2.39's ref transaction writes the values into the locks before it
tells the hook: hgwire wrote them after, the hook finding the locks empty.  Checked beside git's
own receive-pack (``file://``), a push with ``--atomic`` (one transaction) and without (one a ref)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Client, RunningServer
from tests.integration.test_git_atomic_hooked_ref_locks import hooked_pair

LOCK_READING_HOOK = """#!/bin/sh
[ "$1" = prepared ] || { cat >/dev/null; exit 0; }
while read -r old new ref; do
  printf '%s %s\\n' "$ref" "$(cat "$GIT_DIR/$ref.lock" 2>/dev/null || echo none)" >> "$GIT_DIR/../seen"
done
"""


@pytest.mark.parametrize("atomic", [False, True])
def test_a_transaction_hook_told_prepared_finds_the_new_values_in_the_locks(
        make_server: Callable[..., RunningServer], client: Client, atomic: bool) -> None:
    server, served, twin, work, (_first, second, _third) = hooked_pair(
        make_server, client, LOCK_READING_HOOK, ("a", "b"))
    seen = {}
    for url, git_dir in ((f"file://{twin}", twin), (server.git_url("ours/r"), served)):
        client.git("push", "-q", *(["--atomic"] if atomic else []), url, f"{second}:refs/heads/a",
                   f"{second}:refs/heads/b", cwd=work)
        seen[url] = sorted((git_dir.parent / "seen").read_text().splitlines())
        assert client.git("--git-dir", str(git_dir), "rev-parse", "a", "b").stdout.split() == [second, second]
        client.git("--git-dir", str(git_dir), "fsck", "--full")
    gits, ours = seen.values()
    assert gits == [f"refs/heads/a {second}", f"refs/heads/b {second}"], gits
    assert ours == gits
