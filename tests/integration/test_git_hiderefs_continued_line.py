"""A ``hideRefs`` value continued onto a next line that reads ``hiderefs`` (``refs/pull/8\\`` then
``hiderefs``: one value, ``refs/pull/8hiderefs``), beside a ``hideRefs = true``: git's parser reads no
valueless setting there and git serves the repository; hgwire's pattern over the file's lines took
the continuation for a ``hideRefs`` without ``=`` and refused every fetch ("sets
'transfer.hiderefs' without a value").  Which settings have no value is now what git's parse of
the file finds, in the repository's config and in a file it includes alike; a real valueless
line there is still refused, on its line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Client, RunningServer
from tests.integration.test_git_hiderefs_repeated_sections import pull_refs_repository

CONTINUED = "[transfer]\n\thideRefs = true\n\thideRefs = refs/pull/8\\\nhiderefs\n"


@pytest.mark.parametrize("where", ["config", "included"])
def test_a_continued_value_is_not_a_valueless_hiderefs(
        make_server: Callable[..., RunningServer], client: Client, where: str) -> None:
    server, bare, _ = pull_refs_repository(make_server, client, "bare")
    with open(bare / "config", "a") as f:
        f.write(CONTINUED if where == "config" else "[include]\n\tpath = more\n")
    if where == "included":
        (bare / "more").write_text(CONTINUED)
    git = client.git("ls-remote", f"file://{bare}")
    ours = client.git("ls-remote", server.git_url("bare"))
    assert ours.stdout == git.stdout and "refs/pull/8/head" in ours.stdout, (ours.stdout, git.stdout)


def test_a_valueless_hiderefs_after_a_continued_value_is_refused_on_its_line(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server, bare, _ = pull_refs_repository(make_server, client, "bare")
    (bare / "more").write_text(CONTINUED + "\thideRefs\n")
    with open(bare / "config", "a") as f:
        f.write("[include]\n\tpath = more\n")
    done = client.git("ls-remote", f"file://{bare}", check=False)
    assert done.returncode != 0 and "missing value for 'transfer.hiderefs'" in done.stderr, done.stderr
    assert "in file 'more' at line 5" in done.stderr, done.stderr
    done = client.git("ls-remote", server.git_url("bare"), check=False)
    assert done.returncode != 0, done.stdout
    assert ("the repository's git config sets 'transfer.hiderefs' without a value (line 5 of more), "
            "which git refuses as a bad config variable; tell the server's operator") in done.stderr, done.stderr
