"""A mirror's advertisement across changes between requests, byte for byte against git's
upload-pack and receive-pack (v0's ref lines with the first one's ref and ``symref=``, v2's
``ls-refs`` with ``peel``, ``symrefs``, ``unborn``, ``ref-prefix``; receive-pack's ref lines): a
seeded sequence of pushes through hgwire (a ref forced, a packed tag deleted, an annotated tag
added), ``git pack-refs``, ``hideRefs`` values added to and taken from the config (``transfer``,
``uploadpack``, ``receive``, with ``!`` and ``^``), loose refs over packed hidden ones, packed
refs deleted, HEAD moved (to no branch, detached, to a hidden ref), ``packed-refs`` rewritten
without ``fully-peeled`` (an old git's ``peeled`` header or no header and no ``^`` lines).  Each
state is asked twice (parsed, then kept), with the kept budget's default and with one too small
to keep the file (its answers written line by line).  (Longer runs of it found ``transfer.hideRefs``
taken before ``uploadpack.hideRefs`` whatever their order in the file:
``test_hidden_refs_take_the_config_files_order_across_sections``.)"""

from __future__ import annotations

import random
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import git as git_backend
from backends.git import RUN_MIN_REFS
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration import test_git_mirror_advertisement_bytes as adv
from tests.integration.test_git_daemon import commit

REQUESTS = [adv._ls_refs("sha1", b"peel", b"symrefs", b"unborn"), adv._ls_refs("sha1"),
            adv._ls_refs("sha1", b"peel", b"ref-prefix refs/tags/v000", b"ref-prefix HEAD",
                         b"ref-prefix refs/pull/03", b"ref-prefix refs/heads/"),
            adv._ls_refs("sha1", b"ref-prefix refs/pull/", b"ref-prefix refs/tags/light00")]
PULLS = RUN_MIN_REFS + 100
RULES = ["refs/pull", "!refs/pull/0007", "refs/tags/v00", "refs/heads/zz", "!refs/heads/zz", "refs/tags/light0",
         "^refs/heads/loose", "refs/heads/loose", "refs/pull/03", "!refs/pull/03", "refs/tags/t1"]


@pytest.fixture(autouse=True)
def _budget_restored() -> Iterator[None]:
    budget = git_backend._PACKED_REFS.budget
    yield
    git_backend._PACKED_REFS.resize(budget)


def _v0_first_ref(data: bytes) -> bytes:
    """A v0 advertisement less its first line's capabilities but ``symref=`` (hgwire offers more)."""
    size = int(data[:4], 16)
    ref, _, caps = data[4:size].partition(b"\0")
    return ref + b"|" + b" ".join(c for c in caps.split() if c.startswith(b"symref=")) + b"|" + data[size:]


def _receive_ours(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(adv._pkt(b"git-receive-pack /mirror.git\0host=127.0.0.1\0"))
        data = adv._read_to_flush(sock, bytearray())
        sock.sendall(b"0000")
    return adv._without_first_line(data)


def _receive_git(client: Client, git_dir: Path) -> bytes:
    out = subprocess.run(["git", "receive-pack", "--advertise-refs", str(git_dir)], env=client.env,
                         capture_output=True, check=True).stdout
    return adv._without_first_line(out)


def _changes(client: Client, work: Path, git_dir: Path, url: str) -> list[Callable[[random.Random], str]]:
    made = [100]

    def git_in(*args: str, check: bool = True) -> None:
        client.git("--git-dir", str(git_dir), *args, check=check)

    def pack_refs(rnd: random.Random) -> str:
        git_in("pack-refs", "--all", "--prune")
        return "pack-refs"

    def hide(rnd: random.Random) -> str:
        section, rule = rnd.choice(["transfer", "uploadpack", "receive"]), rnd.choice(RULES)
        git_in("config", "--add", f"{section}.hideRefs", rule)
        return f"{section}.hideRefs {rule}"

    def unhide(rnd: random.Random) -> str:
        for section in ("transfer", "uploadpack", "receive"):
            git_in("config", "--unset-all", f"{section}.hideRefs", check=False)
        return "no hideRefs"

    def loose_over_packed(rnd: random.Random) -> str:
        n = rnd.randrange(PULLS)
        git_in("update-ref", f"refs/pull/{n:04d}/head", "main~1")
        return f"loose refs/pull/{n:04d}/head"

    def push_pull(rnd: random.Random) -> str:
        n = rnd.randrange(PULLS)
        client.git("push", "-q", "-f", url, f"HEAD:refs/pull/{n:04d}/head", cwd=work, check=False)  # (maybe hidden)
        return f"pushed refs/pull/{n:04d}/head"

    def push_delete(rnd: random.Random) -> str:
        n = rnd.randrange(40)
        client.git("push", "-q", url, f":refs/tags/light{n:04d}", cwd=work, check=False)
        return f"pushed the deletion of light{n:04d}"

    def push_tag(rnd: random.Random) -> str:
        made[0] += 1
        commit(client, work, f"n{made[0]}.txt", f"{made[0]}\n", f"c {made[0]}")
        client.git("tag", "-a", "-m", "x", f"t{made[0]}", cwd=work)
        client.git("push", "-q", "-f", url, f"refs/tags/t{made[0]}", "HEAD:main", cwd=work, check=False)
        return f"pushed main and t{made[0]}"

    def head(rnd: random.Random) -> str:
        target = rnd.choice(["refs/heads/main", "refs/heads/master", "refs/heads/zz", "detached",
                             "refs/pull/0007/head"])
        if target == "detached":
            (git_dir / "HEAD").write_text(client.git("rev-parse", "HEAD~1", cwd=work).stdout)
        else:
            git_in("symbolic-ref", "HEAD", target)
        return f"HEAD {target}"

    def not_fully_peeled(rnd: random.Random) -> str:
        packed = git_dir / "packed-refs"
        lines = packed.read_text().splitlines(keepends=True) if packed.exists() else []
        if not lines or "fully-peeled" not in lines[0]:
            return "packed-refs left"  # (a 'peeled' header over a file without ^ lines would lie)
        header = rnd.choice(["# pack-refs with: peeled sorted \n", ""])
        body = [line for line in lines[1:] if header or not line.startswith("^")]
        (git_dir / "packed-refs.new").write_text(header + "".join(body))
        (git_dir / "packed-refs.new").rename(packed)
        return f"packed-refs rewritten {header!r}"

    def delete_packed(rnd: random.Random) -> str:
        name = rnd.choice([f"refs/tags/v{rnd.randrange(30):04d}", f"refs/pull/{rnd.randrange(PULLS):04d}/head"])
        git_in("update-ref", "-d", name)
        return f"deleted {name}"

    def tag_elsewhere(rnd: random.Random) -> str:
        n = rnd.randrange(30)
        git_in("update-ref", f"refs/x/t{n}", client.git("rev-parse", f"refs/tags/v{n:04d}", cwd=work).stdout.strip())
        return f"refs/x/t{n}: an annotated tag outside refs/tags"

    def push_branch(rnd: random.Random) -> str:
        client.git("push", "-q", "-f", url, "HEAD~1:refs/heads/loose", cwd=work, check=False)  # (maybe hidden)
        return "pushed loose"

    return [pack_refs, hide, hide, unhide, loose_over_packed, push_pull, push_delete, push_tag, head,
            not_fully_peeled, delete_packed, tag_elsewhere, push_branch]


@pytest.mark.parametrize("budget", [0, 150_000])  # (0: the default; 150 kB keeps no such file)
@pytest.mark.parametrize("seed", [1, 2])
def test_each_state_of_a_changing_mirror_is_advertised_as_by_git(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
        budget: int) -> None:
    monkeypatch.setattr(adv, "_without_first_line", _v0_first_ref)  # (the first ref compared too)
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    if budget:
        git_backend.keep_packed_refs_within(budget)
    work = tmp_path / "w"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(3):
        commit(client, work, f"f{n}.txt", f"{n}\n", f"commit {n}")
    lines = "".join(f"create refs/tags/light{i:04d} HEAD~{i % 3}\n" for i in range(40))
    lines += "".join(f"create refs/pull/{i:04d}/head HEAD~{i % 3}\n" for i in range(PULLS))
    lines += "create refs/heads/loose HEAD~2\ncreate refs/heads/zz HEAD~1\n"
    client.git("update-ref", "--stdin", cwd=work, input=lines.encode())
    for i in range(30):
        client.git("tag", "-a", "-m", f"release {i}", f"v{i:04d}", f"HEAD~{i % 3}", cwd=work)
    git_dir = server.root / "mirror.git"
    client.git("clone", "-q", "--mirror", str(work), str(git_dir))
    client.git("--git-dir", str(git_dir), "pack-refs", "--all", "--prune")
    port = server.port("git")
    changes = _changes(client, work, git_dir, server.git_url("mirror"))
    rnd = random.Random(seed)
    done: list[str] = []
    for _ in range(30):
        done.append(rnd.choice(changes)(rnd))
        assert _receive_ours(port) == _receive_git(client, git_dir), done
        for version in (0, 2):
            want = adv._git(client, git_dir, version, REQUESTS)
            for _ in range(2):  # parsed, then kept
                assert adv._hgwire(port, version, REQUESTS) == want, (version, done)
