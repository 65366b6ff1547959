"""``core.commitGraph = false`` (in the repository's config, or in the ``[git] config`` file read
before it): git then never reads ``objects/info/commit-graph``, and neither do hgwire's walks; a
graph that says another parent than the commit's own (its checksum made to fit) is then not
served, where with the setting unset both git's upload-pack and hgwire follow the graph."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


def _lying_graph(client: Client, bare: Path, commits: list[str], liar: str, parent: str) -> None:
    """The repository's commit-graph written, then ``liar``'s first parent made ``parent`` in it."""
    client.git("repack", "-adbq", cwd=bare)
    client.git("commit-graph", "write", "--reachable", cwd=bare)
    path = bare / "objects" / "info" / "commit-graph"
    data = bytearray(path.read_bytes())
    chunks = dict(struct.unpack_from(">4sQ", data, 8 + 12 * n) for n in range(data[6] + 1))
    names = sorted(commits)
    at = chunks[b"CDAT"] + names.index(liar) * 36 + 20
    struct.pack_into(">I", data, at, names.index(parent))
    data[-20:] = hashlib.sha1(bytes(data[:-20])).digest()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["repository", "base", "unset"])
def test_core_commit_graph_false_is_honoured(make_server: Callable[..., RunningServer], client: Client,
                                             tmp_path: Path, where: str) -> None:
    settings = {}
    if where == "base":
        base = tmp_path / "gitconfig"
        base.write_text("[core]\n\tcommitGraph = false\n")
        policy = tmp_path / "policy.toml"
        policy.write_text(f'[git]\nconfig = "{base}"\n')
        settings["config_file"] = str(policy)
    server = make_server("fs", git=[LOOPBACK], **settings)
    work, bare = client.cwd / "work", server.root / "g.git"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(5):
        (work / "f").write_text(f"{n}\n")
        client.git("add", "f", cwd=work)
        client.git("commit", "-qm", f"c{n}", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    commits = client.git("rev-list", "main", cwd=bare).stdout.split()  # newest first
    _lying_graph(client, bare, commits, commits[0], commits[3])
    if where == "repository":
        client.git("config", "core.commitGraph", "false", cwd=bare)
    # (git's own upload-pack, run by a file:// clone, given the setting as a system config would give it)
    setting = ["--upload-pack", "git -c core.commitGraph=false upload-pack"] if where == "base" else []
    found = []
    for name, url, how in (("ours", server.git_url("g"), []), ("git", f"file://{bare}", setting)):
        clone = client.cwd / name
        cloned = client.git("clone", "-q", *how, "--depth", "2", url, str(clone), check=False)
        found.append((clone / ".git" / "shallow").read_text().split() if cloned.returncode == 0 else cloned.stderr)
    if where == "unset":  # the graph's parent served (git's: its file:// clone then passes the client's check)
        assert found[1] == [commits[3]], found
        assert f"Could not read {commits[1]}" in str(found[0]), found
    else:
        assert found == [[commits[1]], [commits[1]]]


@pytest.mark.parametrize("damage", ["parent", "cut"])
def test_a_damaged_graph_is_not_read(make_server: Callable[..., RunningServer], client: Client,
                                     damage: str) -> None:
    """A commit-graph damaged on disk (a bit of a parent flipped, its checksum left as it was; or cut
    short): a shallow clone gets the commits the objects say (the depth's walk took the damaged
    parent, and the client said 'remote did not send all necessary objects')."""
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "d.git"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(5):
        (work / "f").write_text(f"{n}\n")
        client.git("add", "f", cwd=work)
        client.git("commit", "-qm", f"c{n}", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    commits = client.git("rev-list", "main", cwd=bare).stdout.split()  # newest first
    client.git("repack", "-adbq", cwd=bare)
    client.git("commit-graph", "write", "--reachable", cwd=bare)
    path = bare / "objects" / "info" / "commit-graph"
    data = bytearray(path.read_bytes())
    if damage == "parent":
        chunks = dict(struct.unpack_from(">4sQ", data, 8 + 12 * n) for n in range(data[6] + 1))
        at = chunks[b"CDAT"] + sorted(commits).index(commits[0]) * 36 + 20
        struct.pack_into(">I", data, at, sorted(commits).index(commits[3]))  # (its parent c1, not c3)
    else:
        del data[len(data) - 7:]
    path.write_bytes(bytes(data))
    clone = client.cwd / "clone"
    client.git("clone", "-q", "--depth", "2", server.git_url("d"), str(clone))
    assert (clone / ".git" / "shallow").read_text().split() == [commits[1]]
    client.git("fsck", "--full", cwd=clone)
    trees = client.cwd / "trees"  # (a filter dulwich's walks serve, which read the graph through dulwich)
    client.git("clone", "-q", "--filter=tree:1", "--no-checkout", server.git_url("d"), str(trees))
    assert client.git("rev-list", "main", cwd=trees).stdout.split() == commits


@pytest.mark.parametrize("content", ["empty", "header"])
def test_an_empty_or_cut_graph_fails_no_fetch(make_server: Callable[..., RunningServer], client: Client,
                                              content: str) -> None:
    """``objects/info/commit-graph`` empty, or cut after its first bytes (a disk filled while git's gc
    wrote it): git's commands say "commit-graph file is too small" and read the commits; hgwire's
    clones and fetches are served, the objects' history."""
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "e.git"
    client.git("init", "-q", "-b", "main", str(work))
    for n in range(4):
        (work / "f").write_text(f"{n}\n")
        client.git("add", "f", cwd=work)
        client.git("commit", "-qm", f"c{n}", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    clone = client.cwd / "clone"
    client.git("clone", "-q", server.git_url("e"), str(clone))
    client.git("repack", "-adq", cwd=bare)
    tree = client.git("rev-parse", "main^{tree}", cwd=bare).stdout.strip()
    top = client.git("commit-tree", tree, "-p", "main", "-m", "more", cwd=bare).stdout.strip()  # (loose)
    client.git("update-ref", "refs/heads/main", top, cwd=bare)
    client.git("commit-graph", "write", "--reachable", cwd=bare)
    path = bare / "objects" / "info" / "commit-graph"
    path.write_bytes(b"" if content == "empty" else path.read_bytes()[:10])
    client.git("fetch", "-q", "origin", cwd=clone)
    client.git("clone", "-q", "--depth", "2", server.git_url("e"), str(client.cwd / "shallow"))
    client.git("clone", "-q", "--filter=blob:none", server.git_url("e"), str(client.cwd / "partial"))
    client.git("clone", "-q", "--filter=tree:1", server.git_url("e"), str(client.cwd / "trees"))  # (dulwich's walks)
    client.git("fetch", "-q", "--filter=object:type=commit", "origin", cwd=clone)
    assert client.git("rev-parse", "origin/main", cwd=clone).stdout.strip() == top


@pytest.mark.parametrize("value", ["no", "off", "0", "1", "yes", "maybe"])
def test_core_commit_graph_is_read_as_git_reads_it(make_server: Callable[..., RunningServer], client: Client,
                                                   value: str) -> None:
    """``core.commitGraph`` as git reads a boolean (``no``, ``off``, ``0``, ``1``, ``yes``: the
    repository was served to nobody, every client told "internal error", dulwich's open taking only
    ``true`` and ``false``); one git would not read (``maybe``: git's upload-pack dies on it) refuses
    fetches in git's words, naming the setting."""
    server = make_server("fs", git=[LOOPBACK])
    work, bare = client.cwd / "work", server.root / "v.git"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "f").write_text("f\n")
    client.git("add", "f", cwd=work)
    client.git("commit", "-qm", "f", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(bare))
    client.git("config", "core.commitGraph", value, cwd=bare)
    cloned = client.git("clone", "-q", server.git_url("v"), str(client.cwd / "v"), check=False)
    if value == "maybe":
        assert cloned.returncode != 0, cloned.stderr
        assert "bad boolean config value 'maybe' for 'core.commitgraph'" in cloned.stderr, cloned.stderr
    else:
        assert cloned.returncode == 0, cloned.stderr
