"""``git archive --remote --format=zip`` of a regular file whose blob is over the repository's
``core.bigFileThreshold``: git streams it, deflated a piece at a time whatever that saves (stored
with ``-0``), its CRC and sizes in a data descriptor after it; hgwire read the blob whole to write
its sizes first (past dulwich's 512 MiB bound a loose one was "internal error").  Now the same
bytes as git's, read a piece at a time.  The bound is lowered here, as in ``test_git_big_loose_blob``."""

from __future__ import annotations

import io
import os
import random
import subprocess
import zipfile
from typing import Any

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_big_loose_blob import LIMIT, inflated  # noqa: F401 (a fixture)
from tests.integration.test_git_daemon import commit, started_repo


@pytest.mark.parametrize("level", ["", "-0"])
def test_a_zip_streams_a_blob_over_the_big_file_threshold_as_git_does(
        make_server: Any, client: Client, inflated: list[bytes], level: str) -> None:  # noqa: F811
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    _url, work = started_repo(server, client, "big", push=True)
    noise = random.Random(3).randbytes(3 * LIMIT + 1)
    (work / "tool.sh").write_text("#!/bin/sh\n" + "echo hello\n" * (LIMIT // 8))
    os.chmod(work / "tool.sh", 0o755)
    (work / "subst.txt").write_text("$Format:%H$\n" + "x\n" * LIMIT)
    (work / ".gitattributes").write_text("subst.txt export-subst\n")
    client.git("add", ".", cwd=work)
    commit(client, work, "noise.bin", noise, "blobs past the bound")
    repo = server.root / "big.git"
    client.git("--git-dir", str(repo), "config", "core.bigFileThreshold", "64k")
    client.git("--git-dir", str(repo), "config", "daemon.uploadarch", "true")
    client.git("push", "-q", f"file://{repo}", "HEAD:main", cwd=work)  # git's receive-pack stores them loose
    big = client.git("rev-parse", "HEAD:noise.bin", cwd=work).stdout.strip()
    assert (repo / "objects" / big[:2] / big[2:]).is_file()
    args = ["--format=zip", *([level] if level else []), "main"]
    for packed in (False, True):
        if packed:
            client.git("-c", "pack.threads=1", "--git-dir", str(repo), "repack", "-adq")
        ours = subprocess.run(["git", "archive", f"--remote={server.git_url('big.git')}", *args], env=client.env,
                              cwd=client.cwd, capture_output=True, timeout=60, check=True).stdout
        theirs = subprocess.run(["git", "archive", f"--remote={repo}", *args], env=client.env, cwd=client.cwd,
                                capture_output=True, timeout=60, check=True).stdout
        with zipfile.ZipFile(io.BytesIO(ours)) as archive:
            assert archive.read("noise.bin") == noise
            assert archive.getinfo("noise.bin").flag_bits & 0x8
            assert not archive.getinfo("subst.txt").flag_bits & 0x8  # (export-subst: never streamed)
        assert ours == theirs
    assert big.encode() not in inflated, inflated


def test_an_export_subst_file_over_the_big_file_threshold_is_substituted_when_loose(
        make_server: Any, client: Client) -> None:
    """Such a file stored loose was taken for one to read a piece at a time, and the archive (tar
    or zip) was "internal error"; it is read whole and substituted, as git does."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    _url, work = started_repo(server, client, "subst", push=True)
    (work / ".gitattributes").write_text("subst.txt export-subst\n")
    client.git("add", ".", cwd=work)
    head = commit(client, work, "subst.txt", "$Format:%H$\n" + "x\n" * LIMIT, "a file to substitute")
    repo = server.root / "subst.git"
    client.git("--git-dir", str(repo), "config", "core.bigFileThreshold", "64k")
    client.git("--git-dir", str(repo), "config", "daemon.uploadarch", "true")
    client.git("push", "-q", f"file://{repo}", "HEAD:main", cwd=work)
    blob = client.git("rev-parse", "HEAD:subst.txt", cwd=work).stdout.strip()
    assert (repo / "objects" / blob[:2] / blob[2:]).is_file()
    ours = subprocess.run(["git", "archive", f"--remote={server.git_url('subst.git')}", "--format=tar", "main"],
                          env=client.env, cwd=client.cwd, capture_output=True, timeout=60, check=True).stdout
    theirs = subprocess.run(["git", "archive", f"--remote={repo}", "--format=tar", "main"], env=client.env,
                            cwd=client.cwd, capture_output=True, timeout=60, check=True).stdout
    assert ours == theirs
    assert ours.count(head.encode()) >= 2  # (the pax header's commit id, and the substituted line)
