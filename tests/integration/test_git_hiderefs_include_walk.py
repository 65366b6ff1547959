"""``hideRefs`` of included files read as git reads them, where dulwich's read of the config
differs: an included file that writes a section twice has each header's values where it is
(dulwich gathers them under its first, which showed ``refs/pull/7/head`` git hides); a file
included twice counts at each include (dulwich reads it once, and hgwire took
the values section by section, which showed ``refs/pull/7/head`` git hides); an ``[includeIf
"hasconfig:remote.*.url:…"]`` asks every remote URL of the config, one written after it too
(dulwich asks those above it: the file's ``refs/pull`` was not hidden); and a file that includes
itself, or a directory, is refused, as git refuses it (hgwire served it: a file that includes
itself with its values taken section by section, which showed ``refs/pull/7/head``), also under a
``hasconfig:`` condition that does not hold, as is a remote URL set in a file such a condition
includes (git's walk for the URLs follows each such include and forbids that: both were served)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_hiderefs_repeated_sections import (
    pull_refs_repository,
    pushes_to_pull_7_are_denied,
)

CASES = {
    "twice": (
        "[transfer]\n\thideRefs = refs/pull\n[include]\n\tpath = hide.inc\n[include]\n\tpath = hide.inc\n",
        ("[uploadpack]\n\thideRefs = !refs/pull/7\n[receive]\n\thideRefs = !refs/pull/7\n"
         "[transfer]\n\thideRefs = refs/pull/7\n")),
    "hasconfig": (
        ('[includeIf "hasconfig:remote.*.url:https://example.com/**"]\n\tpath = hide.inc\n'
         '[remote "origin"]\n\turl = https://example.com/mirror.git\n'),
        "[transfer]\n\thideRefs = refs/pull\n"),
    "cycle": (
        ("[transfer]\n\thideRefs = refs/pull\n[uploadpack]\n\thideRefs = !refs/pull/7\n"
         "[include]\n\tpath = hide.inc\n"),
        "[transfer]\n\thideRefs = refs/pull/7\n[include]\n\tpath = config\n"),
    "sections": (
        "[include]\n\tpath = hide.inc\n",
        ("[transfer]\n\thideRefs = refs/pull\n[uploadpack]\n\thideRefs = !refs/pull/7\n"
         "[receive]\n\thideRefs = !refs/pull/7\n[transfer]\n\thideRefs = refs/pull/7\n")),
    "directory": ("[transfer]\n\thideRefs = refs/pull\n[include]\n\tpath = refs\n", ""),
    # git gathers the remote URLs a hasconfig: condition asks about in a walk that follows every such
    # include, held or not, where what an [includeIf] includes may set no remote URL: both were served
    "hasconfig-cycle": (
        ('[transfer]\n\thideRefs = refs/pull\n[includeIf "hasconfig:remote.*.url:https://nowhere/**"]\n'
         '\tpath = hide.inc\n'),
        "[include]\n\tpath = hide.inc\n"),
    "hasconfig-url": (
        ('[transfer]\n\thideRefs = refs/pull\n[includeIf "hasconfig:remote.*.url:https://example.com/**"]\n'
         '\tpath = hide.inc\n'),
        '[remote "origin"]\n\turl = https://example.com/mirror.git\n'),
}
REFUSED = {"cycle": ("include depth", "includes files more than 10 deep"),
           "directory": ("bad config line", "includes a file that cannot be read (Is a directory)"),
           "hasconfig-cycle": ("include depth", "includes files more than 10 deep"),
           "hasconfig-url": ("remote URLs cannot be configured",
                             'sets a remote URL in hide.inc, which an [includeIf "hasconfig:remote.*.url:..."] includes')}


@pytest.mark.parametrize("version", ["0", "2"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hiderefs_of_included_files_as_git_reads_them(
        make_server: Callable[..., RunningServer], client: Client, version: str, case: str) -> None:
    server, bare, work = pull_refs_repository(make_server, client, "hide")
    config, included = CASES[case]
    (bare / "hide.inc").write_text(included)
    with open(bare / "config", "a") as f:
        f.write(config)
    gits = client.git("-c", f"protocol.version={version}", "ls-remote", f"file://{bare}", check=False)
    ours = client.git("-c", f"protocol.version={version}", "ls-remote", server.git_url("hide"), check=False)
    if case in REFUSED:  # git refuses the config, and so hgwire
        git_says, we_say = REFUSED[case]
        assert gits.returncode != 0 and git_says in gits.stderr, gits.stderr
        assert ours.returncode != 0 and "refs/" not in ours.stdout, ours.stdout
        assert we_say in ours.stderr, ours.stderr
        return
    assert "refs/pull/7" not in gits.stdout and "refs/heads/main" in gits.stdout
    assert ours.stdout == gits.stdout
    pushes_to_pull_7_are_denied(client, server, bare, work)


@pytest.mark.parametrize("after", [
    ("[uploadpack]\n\thideRefs = !refs/pull/7\n[receive]\n\thideRefs = !refs/pull/7\n"
     "[transfer]\n\thideRefs = refs/pull/7\n"),
    "[include]\n\tpath = missing.inc\n"])
def test_hiderefs_of_a_config_that_starts_with_a_byte_order_mark(
        make_server: Callable[..., RunningServer], client: Client, after: str) -> None:
    """A config written with a UTF-8 byte order mark, which git skips: its first header was not
    seen, so a ``[transfer]`` written again below was not read in file order (``refs/pull/7/head``
    shown), and with an include the values above the first header seen were dropped (all of
    ``refs/pull`` shown)."""
    server, bare, _ = pull_refs_repository(make_server, client, "bom")
    own = (bare / "config").read_bytes()
    (bare / "config").write_bytes(b"\xef\xbb\xbf[transfer]\n\thideRefs = refs/pull\n" + own + after.encode())
    gits = client.git("ls-remote", f"file://{bare}").stdout
    ours = client.git("ls-remote", server.git_url("bom")).stdout
    assert "refs/pull" not in gits and "refs/heads/main" in gits
    assert ours == gits


@pytest.mark.parametrize("broken", ["[transfer]\n\thideRefs = refs/pull\n\tbad line = x\n",
                                    "[include]\n\tpath = binary.inc\n"])
def test_a_config_git_cannot_parse_is_refused_with_a_message(
        make_server: Callable[..., RunningServer], client: Client, broken: str) -> None:
    """A repository config that does not parse (or an included file that does not): nothing is
    listed, as git lists nothing ("bad config line"), and the client is told why, where it was told
    "internal error" and the log held a traceback."""
    server = make_server("fs", git=[LOOPBACK])
    bare = server.root / "broken.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    (bare / "binary.inc").write_bytes(b"\x00\xff\x01 not a config\n")
    with open(bare / "config", "a") as f:
        f.write(broken)
    gits = client.git("ls-remote", f"file://{bare}", check=False)
    ours = client.git("ls-remote", server.git_url("broken"), check=False)
    assert gits.returncode != 0 and "bad config" in gits.stderr, gits.stderr
    assert ours.returncode != 0 and "the repository's git config cannot be read" in ours.stderr, ours.stderr
