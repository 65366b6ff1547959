"""Obsolescence markers on disk, against the real ``hg``: repositories whose markers ``hg`` wrote (format
1 and format 0) are read by the engine, which hides exactly the changesets ``hg``'s served view hides,
finds the markers ``hg debugobsolete --rev`` calls relevant, and appends markers ``hg`` then reads back.
The client-facing exchange is in ``test_hg_obsolescence``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_hg_storage_repos import Hg, hg_cli  # noqa: F401

from backends.hg import open_repository
from backends.hg.obsstore import ObsStore
from protocols import hg_obsmarkers as obs
from protocols.hg_obsmarkers import Marker

EVOLVE = ("--config", "experimental.evolution=all")


def _commit(hg: Hg, repo: Path, name: str, *extra: str) -> str:
    (repo / name).write_text(f"{name}\n")
    hg(repo, *EVOLVE, "commit", "-q", "-A", "-m", name, "-d", "1700000000 0", *extra)
    return hg(repo, *EVOLVE, "log", "-r", ".", "-T", "{node}").decode()


def _prune(hg: Hg, repo: Path, node: str) -> None:
    """A prune marker with the parents recorded, as ``hg prune`` of the evolve extension writes it."""
    hg(repo, *EVOLVE, "debugobsolete", "--record-parents", "-d", "1700000100 0", node)


def build_obsolete_repo(hg: Hg, repo: Path, version: str = "1") -> dict[str, str]:
    """Every way a marker hides a changeset or does not: amended, pruned, revealed by an orphan,
    pinned by a bookmark, by a local tag and by the working directory, secret, and public; markers
    in format ``version``."""
    hg(repo.parent, "init", str(repo))
    (repo / ".hg" / "hgrc").write_text(f"[format]\nobsstore-version = {version}\n")
    nodes = {"base": _commit(hg, repo, "base")}
    hg(repo, "phase", "-p", "0")
    nodes["a"] = _commit(hg, repo, "a")
    (repo / "a").write_text("a2\n")
    hg(repo, *EVOLVE, "commit", "-q", "--amend", "-m", "a2", "-d", "1700000050 0")
    nodes["a2"] = hg(repo, *EVOLVE, "log", "-r", ".", "-T", "{node}").decode()
    nodes["b"] = _commit(hg, repo, "b")
    nodes["c"] = _commit(hg, repo, "c")  # an orphan once b is pruned: b stays visible
    _prune(hg, repo, nodes["b"])
    for name in ("d", "e", "f", "g", "s"):
        hg(repo, *EVOLVE, "update", "-q", "--hidden", nodes["base"])
        nodes[name] = _commit(hg, repo, name, *(("--secret",) if name == "s" else ()))
        _prune(hg, repo, nodes[name])
    hg(repo, *EVOLVE, "bookmark", "--hidden", "-r", nodes["e"], "keep")
    hg(repo, *EVOLVE, "tag", "--local", "--hidden", "-r", nodes["f"], "mine")
    hg(repo, *EVOLVE, "update", "-q", "--hidden", nodes["g"])  # pinned by the working directory
    hg(repo, *EVOLVE, "debugobsolete", "-d", "1700000200 0", nodes["base"])  # public: no effect
    return nodes


_TEMPLATES: dict[str, tuple[Path, dict[str, str]]] = {}
"""One built repository per marker format, copied by each test (pytest keeps the first test's tmp_path)."""


def _obsolete_repo(hg: Hg, tmp_path: Path, version: str = "1") -> tuple[Path, dict[str, str]]:
    if version not in _TEMPLATES:
        template = tmp_path / f"template-{version}"
        _TEMPLATES[version] = (template, build_obsolete_repo(hg, template, version))
    template, nodes = _TEMPLATES[version]
    repo = tmp_path / "obs"
    shutil.copytree(template, repo, symlinks=True)
    return repo, dict(nodes)


def _served_view(hg: Hg, repo: Path) -> tuple[set[str], set[str]]:
    """(nodes, heads) of hg's ``served`` view: visible and not secret."""
    nodes = set(hg(repo, *EVOLVE, "log", "-r", "not secret()", "-T", "{node}\n").decode().split())
    heads = set(hg(repo, *EVOLVE, "log", "-r", "heads(not secret())", "-T", "{node}\n").decode().split())
    return nodes, heads


def _all_nodes(hg: Hg, repo: Path) -> list[str]:
    return hg(repo, *EVOLVE, "log", "--hidden", "-T", "{node}\n").decode().split()


def _hg_markers(hg: Hg, repo: Path, *args: str) -> set[tuple[str, tuple[str, ...], int]]:
    found = json.loads(hg(repo, *EVOLVE, "debugobsolete", "-T", "json", *args))
    return {(m["prednode"], tuple(m["succnodes"]), int(m["date"][0])) for m in found}


def _ours(markers: list[Marker]) -> set[tuple[str, tuple[str, ...], int]]:
    return {(m.prec.hex(), tuple(s.hex() for s in m.succs), int(m.date[0])) for m in markers}


@pytest.mark.parametrize("version", ["1", "0"])
def test_hidden_changesets_are_those_hg_hides(hg_cli: Hg, tmp_path: Path, version: str) -> None:  # noqa: F811
    repo, nodes = _obsolete_repo(hg_cli, tmp_path, version)
    assert (repo / ".hg" / "store" / "obsstore").read_bytes()[0] == int(version)
    served, heads = _served_view(hg_cli, repo)
    # the fixture covers each case: amended and plain prunes hidden, the others shown
    assert {nodes["a"], nodes["d"], nodes["s"]}.isdisjoint(served)
    assert {nodes["b"], nodes["c"], nodes["e"], nodes["f"], nodes["g"], nodes["base"]} <= served
    ours = open_repository(str(repo), "obs")
    everything = _all_nodes(hg_cli, repo)
    assert ours.known([bytes.fromhex(n) for n in everything]) == [n in served for n in everything]
    assert {h.hex() for h in ours.heads()} == heads
    assert {n.hex() for ns in ours.branchmap().values() for n in ns} == heads
    with pytest.raises(KeyError):
        ours.lookup(nodes["a"].encode())
    assert ours.obsmarkers_version() == int(version)


def test_relevant_markers_are_those_hg_finds(hg_cli: Hg, tmp_path: Path) -> None:  # noqa: F811
    repo, nodes = _obsolete_repo(hg_cli, tmp_path)
    ours = open_repository(str(repo), "obs")
    for name in ("a2", "c", "e", "base"):
        expected = _hg_markers(hg_cli, repo, "--hidden", "--rev", f"::{nodes[name]}")
        _version, found = ours.obsmarkers_for([bytes.fromhex(nodes[name])])
        assert _ours(found) == expected, name
    assert _ours(ours.obsmarkers_for(None)[1]) == _hg_markers(hg_cli, repo, "--rev", "::heads(not secret())")


@pytest.mark.parametrize("version", ["1", "0"])
def test_markers_appended_by_a_transaction_are_read_by_hg(hg_cli: Hg, tmp_path: Path, version: str) -> None:  # noqa: F811
    repo, nodes = _obsolete_repo(hg_cli, tmp_path, version)
    store = repo / ".hg" / "store" / "obsstore"
    before = store.read_bytes()
    ours = open_repository(str(repo), "obs")
    marker = Marker(bytes.fromhex(nodes["c"]), (), 0, ((b"user", b"hgwire test"),), (1700000300.0, -3600),
                    (bytes.fromhex(nodes["b"]),))
    existing = ObsStore.parse(before).markers[0]

    tx = ours.transaction()
    assert tx.add_obsmarkers([marker, existing, marker]) == 1  # a known one and a repeat are dropped
    tx.abort()
    assert store.read_bytes() == before

    tx = ours.transaction()
    tx.add_obsmarkers([marker])
    assert tx.obsolescence_summary() == (1, 1, 0, 0, 0)  # no createmarkers: no instabilities
    tx.commit()
    assert store.read_bytes()[: len(before)] == before
    assert (nodes["c"], (), 1700000300) in _hg_markers(hg_cli, repo)
    hg_cli(repo, "verify", "-q")
    served, heads = _served_view(hg_cli, repo)
    assert nodes["c"] not in served and nodes["b"] not in served  # c pruned: b is no longer revealed
    fresh = open_repository(str(repo), "obs")
    assert {h.hex() for h in fresh.heads()} == heads


def test_a_new_obsstore_is_written_in_format_1(hg_cli: Hg, tmp_path: Path) -> None:  # noqa: F811
    repo = tmp_path / "plain"
    hg_cli(tmp_path, "init", str(repo))
    node = _commit(hg_cli, repo, "x")
    child = _commit(hg_cli, repo, "y")
    hg_cli(repo, "update", "-q", node)  # the working directory's parent is never hidden
    ours = open_repository(str(repo), "plain")
    assert ours.obsmarkers_version() is None
    with ours.transaction() as tx:
        tx.add_obsmarkers([Marker(bytes.fromhex(child), (), 0, (), (0.0, 0), (bytes.fromhex(node),))])
    data = (repo / ".hg" / "store" / "obsstore").read_bytes()
    assert data[0] == 1 and obs.decode(data)[1][0].prec == bytes.fromhex(child)
    assert _hg_markers(hg_cli, repo) == {(child, (), 0)}
    assert [h.hex() for h in open_repository(str(repo), "plain").heads()] == [node]


def test_a_damaged_obsstore_is_a_clear_error(hg_cli: Hg, tmp_path: Path) -> None:  # noqa: F811
    repo = tmp_path / "damaged"
    hg_cli(tmp_path, "init", str(repo))
    _commit(hg_cli, repo, "x")
    (repo / ".hg" / "store" / "obsstore").write_bytes(b"\x01\x00\x00\x00\xff")
    with pytest.raises(Exception, match="obsstore is damaged"):
        open_repository(str(repo), "damaged").heads()


def test_appended_markers_are_read_alone_and_a_rewritten_store_whole(hg_cli: Hg, tmp_path: Path) -> None:  # noqa: F811
    repo, _nodes = _obsolete_repo(hg_cli, tmp_path)
    store = repo / ".hg" / "store" / "obsstore"
    ours = open_repository(str(repo), "obs")
    first = ours.obsstore()
    assert first is not None

    def marker(i: int) -> Marker:
        return Marker(bytes([i]) * 20, (), 0, ((b"note", b"x" * i),), (float(i), 0), None)

    with ours.transaction() as tx:
        tx.add_obsmarkers([marker(1), marker(2)])
    grown = ours.obsstore()
    assert grown is not None and grown is not first
    assert grown.markers == ObsStore.parse(store.read_bytes()).markers == [*first.markers, marker(1), marker(2)]
    assert grown.successors[marker(1).prec] == [marker(1)] and marker(1).prec not in first.successors

    tx = ours.transaction()  # appended for a pending hook, seen, then rolled back
    tx.add_obsmarkers([marker(3)])
    tx.write_pending()
    assert ours.obsstore().markers[-1] == marker(3)  # type: ignore[union-attr]
    tx.abort()
    with ours.transaction() as tx:  # the same file grows past where it was, with other bytes
        tx.add_obsmarkers([marker(40), marker(41)])
    assert ours.obsstore().markers == ObsStore.parse(store.read_bytes()).markers  # type: ignore[union-attr]
    assert marker(3) not in ours.obsstore().known  # type: ignore[union-attr]


def test_a_merge_in_progress_keeps_its_other_side_visible(hg_cli: Hg, tmp_path: Path) -> None:  # noqa: F811
    """hg's ``pinnedrevs`` keeps both sides of a merge with unresolved files (here a graft's, whose other
    side is no parent of the working directory): an obsolete other side stays visible until the files
    are resolved (then it hides), in hg's view and the engine's."""
    repo = tmp_path / "merging"
    hg_cli(tmp_path, "init", str(repo))
    _commit(hg_cli, repo, "base")
    (repo / "f").write_text("theirs\n")
    hg_cli(repo, *EVOLVE, "commit", "-q", "-A", "-m", "theirs")
    other = hg_cli(repo, "log", "-r", ".", "-T", "{node}").decode()
    hg_cli(repo, "update", "-q", "0")
    (repo / "f").write_text("ours\n")
    hg_cli(repo, *EVOLVE, "commit", "-q", "-A", "-m", "ours")
    hg_cli(repo, "graft", "-q", "--tool", "internal:fail", "-r", other, check=False)  # one dirstate parent
    hg_cli(repo, *EVOLVE, "debugobsolete", other)
    assert (repo / ".hg" / "merge" / "state2").exists()
    for resolved in (False, True):
        if resolved:
            hg_cli(repo, "resolve", "-q", "--mark", "--all")
        served, _heads = _served_view(hg_cli, repo)
        assert (other in served) is not resolved
        ours = open_repository(str(repo), "merging")
        assert ours.known([bytes.fromhex(other)]) == [other in served]
