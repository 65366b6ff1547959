"""A ``packed-refs`` line whose name has no ``/`` (``onelevel``, as another tool may write) is a
name git's pack-refs keeps, with its id: hgwire's maintenance refused to run it over the file
("would rewrite with the zero id"), as for a name no rule allows (``refs/heads/a..b``, which it
does write with the zero id), so the loose refs of every push piled up; it now packs them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_packed_refs_damage import _packed


def test_maintenance_packs_refs_beside_a_one_level_name(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    bare, work, ids = _packed(client, server.root, "one.git")
    one = f"{ids['b1']} onelevel\n"
    with open(bare / "packed-refs", "a") as f:
        f.write(one)
    client.git("push", "-q", server.git_url("one"), "main:refs/heads/new", cwd=work)
    assert (bare / "refs" / "heads" / "new").exists()
    assert server.backend.open("one").pack_refs()  # type: ignore[union-attr]
    text = (bare / "packed-refs").read_text()
    assert one in text and f"{ids['main']} refs/heads/new\n" in text
    assert not (bare / "refs" / "heads" / "new").exists()
    subprocess.run(["git", "--git-dir", str(bare), "pack-refs", "--all"], check=True)
    assert one in (bare / "packed-refs").read_text()  # (as git's own pack-refs leaves it)
