"""dulwich's open reads some booleans of a repository's config (``OPEN_SETTINGS``); hgwire made
those git reads true or false and dropped a value git would not read (``maybe``), but for
``core.commitGraph``, so the repository was served where git refuses it.  git 2.39 refuses, in its
words ("bad boolean config value 'maybe' for 'KEY'"): ``core.multiPackIndex`` every request (its
upload-pack and receive-pack die as they start); ``core.fsyncObjectFiles`` a push (receive-pack
dies) and a fetch that gets a pack (pack-objects dies; ``ls-remote`` is answered);
``pack.writeBitmapHashCache`` and ``pack.writeBitmapLookupTable`` a fetch that gets a pack; and
``pack.writeBitmaps`` / ``repack.writeBitmaps`` nothing (only ``git repack`` reads them).  hgwire
now refuses what git refuses, each checked beside git's own (``file://``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_config_twins import served_and_twin

CASES = {  # key: (ls-remote, clone, push) refused
    "core.multiPackIndex": (True, True, True),
    "core.fsyncObjectFiles": (False, True, True),
    "pack.writeBitmapHashCache": (False, True, False),
    "pack.writeBitmapLookupTable": (False, True, False),
    "pack.writeBitmaps": (False, False, False),
    "repack.writeBitmaps": (False, False, False),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_boolean_git_would_not_read_is_refused_where_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, key: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work, _bare, twin = served_and_twin(client, server, lambda bare: client.git("config", key, "maybe", cwd=bare))
    says = f"bad boolean config value 'maybe' for '{key.lower()}'"
    for url in (f"file://{twin}", server.git_url("v")):
        tag = "git" if url.startswith("file:") else "ours"
        done = (client.git("ls-remote", url, check=False),
                client.git("clone", "-q", url, str(client.cwd / f"c-{tag}"), check=False),
                client.git("push", url, "main:refs/heads/new", cwd=work, check=False))
        for what, refused, run in zip(("ls-remote", "clone", "push"), CASES[key], done, strict=True):
            assert (run.returncode != 0) == refused, (tag, what, run.stderr)
            if tag == "ours":  # (git's own words may not reach a quiet clone: its pack-objects dies mid-stream)
                assert (says in run.stderr) == refused, (tag, what, run.stderr)
