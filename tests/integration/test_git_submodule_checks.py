"""Pushed ``.gitmodules`` and ``.gitattributes`` files, with the real ``git``, against git's own
receive-pack (``receive.fsckObjects`` on; hgwire always checks) pushing to a copy of the same repository.

A ``.gitmodules`` that would make ``git clone --recurse-submodules`` write outside the clone or run
a command (CVE-2018-11235 and its kin) is refused with git's message id, by the disk and the memory
backend, and the repository stays as it was; a real submodule is taken; a repository's
``receive.fsck.<msg-id>`` can let legacy history in, as git's can.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, Client
from tests.integration.test_git_daemon import commit, remote_refs, started_repo
from tests.integration.test_git_fsck_settings import _object, _push_both, _setting, server_and_git_copy


def _commit_with(client: Client, work: Path, entries: list[tuple[str, str, bytes]]) -> str:
    """A commit on ``HEAD`` whose tree is ``HEAD``'s plus ``(mode, name, content)`` entries (a
    ``120000`` content is a link's target)."""
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    listing = client.git("ls-tree", "HEAD", cwd=work).stdout
    for mode, name, content in entries:
        blob = _object(client, work, "blob", content)
        listing += f"{mode} blob {blob}\t{name}\n"
    tree = subprocess.run(["git", "mktree"], cwd=work, input=listing, capture_output=True, text=True, check=True,
                          env=client.env).stdout.strip()
    return client.git("commit-tree", tree, "-p", head, "-m", "dotfiles", cwd=work).stdout.strip()


CASES = {
    "name": ([("100644", ".gitmodules", b'[submodule "../../modules/evil"]\n\tpath = evil\n\turl = ./evil\n')],
             "gitmodulesName"),
    "url": ([("100644", ".gitmodules", b'[submodule "x"]\n\tpath = x\n\turl = -u./payload\n')], "gitmodulesUrl"),
    "relative-url-newline": ([("100644", ".gitmodules", b'[submodule "x"]\n\tpath = x\n\turl = ./%0ahost=evil\n')],
                             "gitmodulesUrl"),
    "path": ([("100644", ".gitmodules", b'[submodule "x"]\n\tpath = -x\n\turl = ./x\n')], "gitmodulesPath"),
    "update": ([("100644", ".gitmodules", b'[submodule "x"]\n\tpath = x\n\tupdate = !touch pwned\n')],
               "gitmodulesUpdate"),
    "ntfs-short-name": ([("100644", "GITMOD~1", b'[submodule "../x"]\n\tpath = x\n')], "gitmodulesName"),
    "symlink": ([("120000", ".gitmodules", b"../.git/config")], "gitmodulesSymlink"),
    "attributes-line": ([("100644", ".gitattributes", b"*.c text\n" + b"x" * 4096 + b" binary\n")],
                        "gitattributesLineLength"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_dotfile_is_refused_as_gits_receive_pack_refuses_it(make_server: Any, client: Client,
                                                                      case: str) -> None:
    url, work, bare, copy = server_and_git_copy(make_server, client, "dots")
    entries, msg_id = CASES[case]
    evil = _commit_with(client, work, entries)
    before = remote_refs(client, "default", url)
    listing = sorted(p.name for p in (bare / "objects").rglob("*"))

    ours, theirs = _push_both(client, work, url, copy, evil)
    assert ours.returncode == theirs.returncode != 0, (ours.stderr, theirs.stderr)
    assert msg_id in ours.stderr and msg_id in theirs.stderr, (ours.stderr, theirs.stderr)
    assert remote_refs(client, "default", url) == before
    assert sorted(p.name for p in (bare / "objects").rglob("*")) == listing  # nothing of the push stayed
    client.git("--git-dir", str(bare), "fsck", "--full")

    for git_dir in (bare, copy):  # legacy history: the repository's settings let it in, as git's do
        _setting(git_dir, f"receive.fsck.{msg_id}", "ignore")
    ours, theirs = _push_both(client, work, url, copy, evil)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")


def test_a_real_submodule_is_taken_and_cloned_with_it(make_server: Any, client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    lib_url, _lib_work = started_repo(server, client, "lib", push=True)
    url, work = started_repo(server, client, "app", push=True)
    client.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", lib_url, "vendor/lib", cwd=work)
    client.git("commit", "-q", "-m", "add lib", cwd=work)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    commit(client, work, "b.txt", "b\n", "b")  # a later tree names the stored .gitmodules again
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    client.git("--git-dir", str(server.root / "app.git"), "fsck", "--full")
    clone = client.cwd / "clone"
    client.git("clone", "-q", "--recurse-submodules", url, str(clone))
    assert (clone / "vendor" / "lib" / "a.txt").read_text() == "a\n"


def test_the_memory_backend_refuses_a_hostile_gitmodules_and_keeps_nothing(make_server: Any, client: Client) -> None:
    server = make_server("memory", git=[LOOPBACK])
    server.backend.create("mem", Kind.GIT)
    url = server.git_url("mem")
    work = client.cwd / "mem"
    client.git("clone", "-q", url, str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    before = remote_refs(client, "default", url)
    evil = _commit_with(client, work, CASES["name"][0])
    refused = client.git("push", url, f"{evil}:refs/heads/main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "gitmodulesName: disallowed submodule name: ../../modules/evil" in refused.stderr, refused.stderr
    assert remote_refs(client, "default", url) == before
    fine = _commit_with(client, work, [("100644", ".gitmodules", b'[submodule "x"]\n\tpath = x\n\turl = ./x\n')])
    client.git("push", "-q", url, f"{fine}:refs/heads/main", cwd=work)
