"""Write path: replay real repositories through emit_groups -> add_changegroup, then ask ``hg``."""

# The session fixtures are imported from test_hg_storage_repos, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import binascii
import os
import struct
import tempfile
from pathlib import Path

import pytest
from test_hg_storage_repos import Hg, hg_cli, legacy_repo, source_repo, zlib_repo, zstd_repo  # noqa: F401

import backends.hg as hgstore
from backends.hg import revlog as revlog_mod
from backends.hg.changelog import Changeset, format_changeset
from backends.hg.repository import HgRepo
from backends.hg.revlog import node_hash
from backends.hg.writer import HASH_ON_HELPER, HASHES_AHEAD
from backends.interfaces import NULL_NODE, DeltaMode, Kind, Node, RevisionDelta, RevisionGroup, Section
from protocols.errors import ProtocolError
from tests.integration.test_hg_changelog_format import inline_changelog

LOG_DEBUG = ("log", "--debug", "-r", "not secret()")


def replay(source: HgRepo, target: HgRepo, mode: DeltaMode, one_by_one: bool) -> None:
    """Copy every served changeset, its phase and the bookmarks, the way a pull/push would."""
    nodes = source.missing([], source.heads())
    batches = [[n] for n in nodes] if one_by_one else [nodes]
    for batch in batches:
        tx = target.transaction()
        result = tx.add_changegroup(source.emit_groups(batch, mode))
        assert list(result.added) == batch
        tx.commit()
    views = source.views()
    cl = source.changelog()
    public = [cl.node(r) for r in range(len(cl)) if views.visible[r] and views.phases[r] == 0]
    with target.transaction() as tx:  # type: ignore[attr-defined]
        tx.set_phase(0, public)
        for name, node in source.bookmarks().items():
            assert tx.set_bookmark(name, None, node)


def make_target(path: Path) -> HgRepo:
    repo = hgstore.create_repository(str(path), "target")
    (path / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    return repo


def _without_tip(log: bytes) -> bytes:
    """The source's tip is its secret head, which is never replayed."""
    return log.replace(b"tag:         tip\n", b"")


_SOURCE_OUTPUT: dict[tuple[Path, tuple[str, ...]], bytes] = {}


def _source(hg: Hg, source: Path, *args: str) -> bytes:
    """Source repositories never change during a session: ask hg about them once."""
    key = (source, args)
    if key not in _SOURCE_OUTPUT:
        _SOURCE_OUTPUT[key] = hg(source, *args)
    return _SOURCE_OUTPUT[key]


def assert_same_history(hg: Hg, source: Path, target: Path) -> None:
    verify = hg(target, "verify", "-q", check=False)
    assert b"error" not in verify.lower(), verify
    assert _without_tip(hg(target, *LOG_DEBUG)) == _without_tip(_source(hg, source, *LOG_DEBUG))
    manifest = ("manifest", "--debug", "-r", "max(not secret())")
    assert hg(target, *manifest) == _source(hg, source, *manifest)
    assert hg(target, "bookmarks") == _source(hg, source, "bookmarks")


def test_replay_into_new_repo_passes_hg_verify(hg_cli: Hg, source_repo: Path, tmp_path: Path) -> None:
    source = hgstore.open_repository(str(source_repo), "src")
    target = make_target(tmp_path / "t")
    replay(source, target, DeltaMode.ANY, one_by_one=False)
    assert_same_history(hg_cli, source_repo, tmp_path / "t")


def test_replay_one_changeset_at_a_time(hg_cli: Hg, zstd_repo: Path, tmp_path: Path) -> None:
    """Each step is a partial copy receiving the next changeset, deltas against what it has."""
    source = hgstore.open_repository(str(zstd_repo), "src")
    target = make_target(tmp_path / "t")
    replay(source, target, DeltaMode.ANY, one_by_one=True)
    assert_same_history(hg_cli, zstd_repo, tmp_path / "t")


def test_replay_with_previous_deltas_and_through_memory(hg_cli: Hg, zstd_repo: Path, tmp_path: Path) -> None:
    source = hgstore.open_repository(str(zstd_repo), "src")
    memory = hgstore.MemoryHgRepository("mem")
    assert memory.kind is Kind.HG
    memory.plain.replace(b"hgrc", b"[phases]\npublish = False\n")
    replay(source, memory, DeltaMode.PREVIOUS, one_by_one=False)
    assert memory.heads() == source.heads()
    assert dict(memory.branchmap()) == dict(source.branchmap())
    target = make_target(tmp_path / "t")
    replay(memory, target, DeltaMode.PREVIOUS, one_by_one=False)
    assert_same_history(hg_cli, zstd_repo, tmp_path / "t")


def test_create_matches_hg_init_layout(hg_cli: Hg, tmp_path: Path) -> None:
    hgstore.create_repository(str(tmp_path / "ours"), "ours")
    hg_cli(tmp_path, "init", "theirs")
    for rel in (".hg/requires", ".hg/store/requires", ".hg/00changelog.i"):
        assert (tmp_path / "ours" / rel).read_bytes() == (tmp_path / "theirs" / rel).read_bytes()
    assert hgstore.is_hg_repository(str(tmp_path / "ours"))
    assert hg_cli(tmp_path / "ours", "verify", "-q") == b""


def test_hg_can_commit_on_top_of_what_we_wrote(hg_cli: Hg, zlib_repo: Path, tmp_path: Path) -> None:
    source = hgstore.open_repository(str(zlib_repo), "src")
    target = make_target(tmp_path / "t")
    assert target.requirements() >= {"revlog-compression-zstd"}
    replay(source, target, DeltaMode.ANY, one_by_one=False)
    hg_cli(tmp_path / "t", "update", "-q", "tip")
    (tmp_path / "t" / "new.txt").write_text("x\n")
    hg_cli(tmp_path / "t", "commit", "-A", "-q", "-m", "on top")
    assert b"error" not in hg_cli(tmp_path / "t", "verify", "-q", check=False)
    reopened = hgstore.open_repository(str(tmp_path / "t"), "t")
    assert len(reopened.changelog()) == len(source.changelog()) + 1


def test_hg_rollback_cannot_undo_our_push(hg_cli: Hg, zlib_repo: Path, tmp_path: Path) -> None:
    """hg's undo files describe its own last transaction; after our write they must be gone."""
    source = hgstore.open_repository(str(zlib_repo), "src")
    path = tmp_path / "t"
    hg_cli(tmp_path, "init", str(path))
    (path / "a").write_text("a\n")
    hg_cli(path, "commit", "-A", "-q", "-m", "local")
    hg_cli(path, "branches")  # makes hg write its branch cache
    hg_cli(path, "tags")
    assert any(p.name.startswith("branch") for p in (path / ".hg" / "cache").iterdir())
    target = hgstore.open_repository(str(path), "t")
    tx = target.transaction()
    tx.add_changegroup(source.emit_groups(source.missing([], source.heads()), DeltaMode.ANY))
    tx.commit()
    left = {p.name for p in (path / ".hg" / "cache").iterdir()}
    assert not any(name.startswith(("tags", "hgtagsfnodes")) for name in left)
    # hg's branch caches from before the push are gone; the served one is written anew (as a push
    # through hg serve writes it), naming the new tip.
    assert {name for name in left if name.startswith("branch")} <= {"branch2-served"}
    if "branch2-served" in left:
        tip = hg_cli(path, "log", "-r", "tip", "-T", "{node} {rev}")
        assert (path / ".hg" / "cache" / "branch2-served").read_bytes().split(b"\n")[0].startswith(tip)
    # The rev-branch-cache stays: its one record (checked against the node) is still true.
    assert {"rbc-names-v2", "rbc-revs-v2"} <= left
    heads = hg_cli(path, "log", "-r", "head()", "-T", "{node}\n").split()
    assert sorted(heads) == sorted(n.hex().encode() for n in hgstore.open_repository(str(path), "t").heads())
    assert b"no rollback information" in hg_cli(path, "rollback", check=False) + hg_cli.last_stderr
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert len(hgstore.open_repository(str(path), "t").changelog()) == 1 + len(source.changelog())


def test_replay_into_a_legacy_repository(hg_cli: Hg, zlib_repo: Path, tmp_path: Path) -> None:
    """Without generaldelta we must delta against the previous revision and record chain starts."""
    path = tmp_path / "legacy"
    hg_cli(tmp_path, "init", "--config", "format.usegeneraldelta=false", "--config", "format.sparse-revlog=false",
           "--config", "format.revlog-compression=zlib", str(path))
    (path / ".hg" / "hgrc").write_text("[phases]\npublish = False\n")
    target = hgstore.open_repository(str(path), "legacy")
    assert "generaldelta" not in target.requirements()
    source = hgstore.open_repository(str(zlib_repo), "src")
    replay(source, target, DeltaMode.ANY, one_by_one=True)
    assert_same_history(hg_cli, zlib_repo, path)


def _full(text: bytes) -> bytes:
    """A delta against the empty text: one hunk that inserts ``text``."""
    return struct.pack(">lll", 0, 0, len(text)) + text


def _one_changeset_push(manifest_extra: bytes = b"", manifest_order: int = 1,
                        files: tuple[bytes, ...] = (b"a",)) -> list[RevisionGroup]:
    """A first push of one changeset with ``files`` (each ``hello NAME``), as a client would build
    it; its manifest may carry ``manifest_extra`` lines (and have its lines in reverse order with -1)."""
    lines = [name + b"\0" + binascii.hexlify(_file_node(name)) + b"\n" for name in files]
    lines += manifest_extra.splitlines(keepends=True)
    manifest = b"".join(sorted(lines)[::manifest_order])
    manifest_node = node_hash(manifest, NULL_NODE, NULL_NODE)
    changeset = format_changeset(Changeset(manifest_node, b"T <t@example.com>", 1767225600.0, 0,
                                           {}, files, b"one"))
    changeset_node = node_hash(changeset, NULL_NODE, NULL_NODE)

    def revision(node: Node, text: bytes) -> RevisionDelta:
        return RevisionDelta(node, NULL_NODE, NULL_NODE, changeset_node, NULL_NODE, _full(text))

    return [RevisionGroup(Section.CHANGELOG, b"", iter([revision(changeset_node, changeset)])),
            RevisionGroup(Section.MANIFEST, b"", iter([revision(manifest_node, manifest)])),
            *(RevisionGroup(Section.FILE, name, iter([revision(_file_node(name), b"hello " + name + b"\n")]))
              for name in files)]


def _file_node(name: bytes) -> Node:
    return node_hash(b"hello " + name + b"\n", NULL_NODE, NULL_NODE)


@pytest.mark.parametrize(("extra", "order", "refusal"), [
    (b"b\0" + b"12" * 20 + b"\n", 1, "refers to a missing revision of 'b'"),
    (b"b\0" + b"00" * 20 + b"\n", 1, "with the null revision"),
    (b"b\0" + b"zz" * 20 + b"\n", 1, "malformed node"),
    (b"b-no-node\n", 1, "malformed line"),
    (b"b\0" + b"12" * 20 + b"\n", -1, "not sorted"),
])
def test_a_manifest_naming_what_the_push_lacks_is_refused(
        hg_cli: Hg, tmp_path: Path, extra: bytes, order: int, refusal: str) -> None:
    """A pushed manifest whose own lines name a file revision nowhere (a file its changeset does
    not list, so that list's check does not see it), the null revision, a malformed line or lines
    out of order would leave a repository ``hg verify`` fails and clients cannot read: refused, the
    repository as it was; the same push without that line lands."""
    path = tmp_path / "t"
    target = hgstore.create_repository(str(path), "t")
    tx = target.transaction()
    with pytest.raises(ProtocolError, match=refusal):
        tx.add_changegroup(iter(_one_changeset_push(extra, order)))
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert hg_cli(path, "log", "-T", "{node}\n") == b""
    tx = target.transaction()
    tx.add_changegroup(iter(_one_changeset_push()))
    tx.commit()
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert hg_cli(path, "files", "-r", "tip") == b"a\n"


def test_a_file_sent_in_two_groups_lands_whole(hg_cli: Hg, tmp_path: Path) -> None:
    """A written file group's writer lets go of its revisions; a second group of the same file (hg
    sends one, a hand-made changegroup may send two) is added to what the first wrote, and the
    checks see both."""
    path = tmp_path / "t"
    target = hgstore.create_repository(str(path), "t")
    changelog, manifest, file_a, file_b = _one_changeset_push(files=(b"a", b"b"))
    again = RevisionGroup(Section.FILE, b"a", iter(()))  # an empty second group of a
    tx = target.transaction()
    tx.add_changegroup(iter([changelog, manifest, file_b, again, file_a]))
    tx.commit()
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert hg_cli(path, "cat", "-r", "tip", "a", "b") == b"hello a\nhello b\n"


@pytest.mark.parametrize("size", [100, HASH_ON_HELPER + 1])
@pytest.mark.parametrize("wrong_at", [0, HASHES_AHEAD + 3, HASHES_AHEAD + 5])
def test_a_revision_whose_node_is_not_its_text_s_hash_is_refused(
        hg_cli: Hg, tmp_path: Path, size: int, wrong_at: int) -> None:
    """Every pushed revision's node is checked against its text (hg's own server does not), a
    large text's on a helper thread while the ingest goes on: either way the push is refused and
    the repository stays as it was, wherever the bad revision is in its group (the first, one the
    helper is still hashing when the group goes on, the last)."""
    count = HASHES_AHEAD + 6
    texts = [(b"revision %d\n" % n).ljust(size, b".") for n in range(count)]
    nodes: list[Node] = []
    for text in texts:
        nodes.append(node_hash(text, nodes[-1] if nodes else NULL_NODE, NULL_NODE))
    manifest = b"f\0" + binascii.hexlify(nodes[-1]) + b"\n"
    manifest_node = node_hash(manifest, NULL_NODE, NULL_NODE)
    changeset = format_changeset(Changeset(manifest_node, b"T <t@example.com>", 1767225600.0, 0, {}, (b"f",),
                                           b"many revisions of f"))
    changeset_node = node_hash(changeset, NULL_NODE, NULL_NODE)

    def push(sent: list[bytes]) -> list[RevisionGroup]:
        def one(node: Node, text: bytes, p1: Node = NULL_NODE) -> RevisionDelta:
            return RevisionDelta(node, p1, NULL_NODE, changeset_node, NULL_NODE, _full(text))

        return [RevisionGroup(Section.CHANGELOG, b"", iter([one(changeset_node, changeset)])),
                RevisionGroup(Section.MANIFEST, b"", iter([one(manifest_node, manifest)])),
                RevisionGroup(Section.FILE, b"f", iter([one(node, sent[n], nodes[n - 1] if n else NULL_NODE)
                                                        for n, node in enumerate(nodes)]))]

    path = tmp_path / "t"
    target = hgstore.create_repository(str(path), "t")
    tx = target.transaction()
    with pytest.raises(ProtocolError, match=f"revision {binascii.hexlify(nodes[wrong_at]).decode()} fails its hash"):
        tx.add_changegroup(iter(push([text + b"!" if n == wrong_at else text for n, text in enumerate(texts)])))
    tx.abort()
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert hg_cli(path, "log", "-T", "{node}\n") == b""
    tx = target.transaction()
    tx.add_changegroup(iter(push(texts)))  # the same push, right: it lands
    tx.commit()
    assert hg_cli(path, "cat", "-r", "tip", "f") == texts[-1]


def _a_and_b(path: Path) -> tuple[HgRepo, Node, bytes]:
    """A repository at ``path`` of one changeset with files ``a`` and ``b``: it, that changeset,
    and its manifest's text."""
    target = hgstore.create_repository(str(path), "t")
    tx = target.transaction()
    tx.add_changegroup(iter(_one_changeset_push(files=(b"a", b"b"))))
    tx.commit()
    (first,) = target.heads()
    return target, first, b"".join(name + b"\0" + binascii.hexlify(_file_node(name)) + b"\n" for name in (b"a", b"b"))


@pytest.mark.parametrize("manifest", ["stored", "missing"])
def test_a_new_changeset_with_a_manifest_stored_before_is_checked_against_it(
        hg_cli: Hg, tmp_path: Path, manifest: str) -> None:
    """A pushed changeset whose manifest the repository holds already (a message amended, a
    backout of a backout) comes without a manifest group: its files are looked up in the stored
    manifest, and it lands; one naming a manifest nowhere is refused, the repository as it was."""
    path = tmp_path / "t"
    target, first, base_text = _a_and_b(path)
    named = node_hash(base_text, NULL_NODE, NULL_NODE) if manifest == "stored" else Node(b"\x12" * 20)
    changeset = format_changeset(Changeset(named, b"T <t@example.com>", 1767225601.0, 0, {}, (b"b",), b"again"))
    changeset_node = node_hash(changeset, first, NULL_NODE)
    groups = [RevisionGroup(Section.CHANGELOG, b"", iter([RevisionDelta(
                  changeset_node, first, NULL_NODE, changeset_node, NULL_NODE, _full(changeset))])),
              RevisionGroup(Section.MANIFEST, b"", iter([]))]
    tx = target.transaction()
    if manifest == "missing":
        with pytest.raises(ProtocolError, match="changeset 1 refers to a missing manifest"):
            tx.add_changegroup(iter(groups))
        assert hg_cli(path, "log", "-T", "{rev}\n") == b"0\n"
    else:
        tx.add_changegroup(iter(groups))
        tx.commit()
        assert hg_cli(path, "log", "-T", "{rev}:{desc}\n") == b"1:again\n0:one\n"
    assert hg_cli(path, "verify", "-q", check=False) == b""


def test_a_manifest_delta_that_joins_two_lines_is_checked(hg_cli: Hg, tmp_path: Path) -> None:
    """A delta that only removes bytes, from inside one line to inside the next, writes a line of
    neither: it is read and checked like any line the delta writes."""
    path = tmp_path / "t"
    target, first, base_text = _a_and_b(path)
    cut_from, cut_to = base_text.index(b"\0") + 21, base_text.index(b"\n") + 23  # inside a's node, inside b's
    text = base_text[:cut_from] + base_text[cut_to:]
    base_node = node_hash(base_text, NULL_NODE, NULL_NODE)
    manifest_node = node_hash(text, base_node, NULL_NODE)
    changeset = format_changeset(Changeset(manifest_node, b"T <t@example.com>", 1767225601.0, 0, {}, (), b"two"))
    changeset_node = node_hash(changeset, first, NULL_NODE)
    delta = struct.pack(">lll", cut_from, cut_to, 0)
    groups = [RevisionGroup(Section.CHANGELOG, b"", iter([RevisionDelta(
                  changeset_node, first, NULL_NODE, changeset_node, NULL_NODE, _full(changeset))])),
              RevisionGroup(Section.MANIFEST, b"", iter([RevisionDelta(
                  manifest_node, base_node, NULL_NODE, changeset_node, base_node, delta)]))]
    tx = target.transaction()
    with pytest.raises(ProtocolError, match="refers to a missing revision of 'a'|malformed"):
        tx.add_changegroup(iter(groups))
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert hg_cli(path, "log", "-T", "{rev}\n") == b"0\n"


@pytest.mark.parametrize("wrong", ["file", "manifest"])
def test_a_manifest_naming_another_changeset_as_its_own_is_refused(hg_cli: Hg, tmp_path: Path, wrong: str) -> None:
    """Each pushed manifest names the changeset that introduced it (its linknode); naming another,
    whose manifest is another, leaves a repository ``hg verify`` fails ("rev 1 points to unexpected
    changeset 0"): refused, the repository as it was. A file revision naming another changeset is
    taken, as ``hg verify`` takes it."""
    path = tmp_path / "t"
    target = hgstore.create_repository(str(path), "t")
    tx = target.transaction()
    tx.add_changegroup(iter(_one_changeset_push()))
    tx.commit()
    (first,) = target.heads()
    file_text = b"hello again\n"
    file_node = node_hash(file_text, _file_node(b"a"), NULL_NODE)
    base_text = b"a\0" + binascii.hexlify(_file_node(b"a")) + b"\n"
    text = b"a\0" + binascii.hexlify(file_node) + b"\n"
    base_node = node_hash(base_text, NULL_NODE, NULL_NODE)
    manifest_node = node_hash(text, base_node, NULL_NODE)
    changeset = format_changeset(Changeset(manifest_node, b"T <t@example.com>", 1767225601.0, 0, {}, (b"a",), b"two"))
    changeset_node = node_hash(changeset, first, NULL_NODE)

    def push(manifest_link: Node, file_link: Node) -> list[RevisionGroup]:
        return [RevisionGroup(Section.CHANGELOG, b"", iter([RevisionDelta(
                    changeset_node, first, NULL_NODE, changeset_node, NULL_NODE, _full(changeset))])),
                RevisionGroup(Section.MANIFEST, b"", iter([RevisionDelta(
                    manifest_node, base_node, NULL_NODE, manifest_link, NULL_NODE, _full(text))])),
                RevisionGroup(Section.FILE, b"a", iter([RevisionDelta(
                    file_node, _file_node(b"a"), NULL_NODE, file_link, NULL_NODE, _full(file_text))]))]

    tx = target.transaction()
    if wrong == "file":
        tx.add_changegroup(iter(push(changeset_node, first)))
        tx.commit()
        assert hg_cli(path, "verify", "-q", check=False) == b""
        return
    with pytest.raises(ProtocolError, match="names as its changeset one whose manifest is another"):
        tx.add_changegroup(iter(push(first, changeset_node)))
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert hg_cli(path, "log", "-T", "{rev}\n") == b"0\n"
    tx = target.transaction()
    tx.add_changegroup(iter(push(changeset_node, changeset_node)))
    tx.commit()
    assert hg_cli(path, "verify", "-q", check=False) == b""
    assert hg_cli(path, "cat", "-r", "tip", "a") == file_text


def _store_files(path: Path) -> dict[str, bytes]:
    store = path / ".hg" / "store"
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}


@pytest.mark.parametrize("inline", [True, False])
def test_a_changelog_spooled_to_disk_is_written_as_if_held(
    hg_cli: Hg, zstd_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    """The changelog is written at the commit; a long group's chunks past ``SPILL_BYTES`` wait in an
    unnamed file of the store's directory.  The repository written, and the pending changelog a
    hook reads, are byte for byte those of a push held in memory; an abort leaves nothing of it.
    ``inline``: the changelog was inline before; the pending index is already the split one."""
    source = hgstore.open_repository(str(zstd_repo), "src")
    nodes = source.missing([], source.heads())
    spools: list[object] = []
    original = tempfile.TemporaryFile

    def counted(**kwargs: object) -> object:
        spools.append(kwargs["dir"])
        return original(**kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(tempfile, "TemporaryFile", counted)
    written = {}
    held = revlog_mod.SPILL_BYTES
    for spill in (held, 1):
        monkeypatch.setattr(revlog_mod, "SPILL_BYTES", spill)
        path = tmp_path / f"spill-{spill}"
        target = make_target(path)
        with target.transaction() as tx:  # type: ignore[attr-defined]
            tx.add_changegroup(source.emit_groups(nodes[:3], DeltaMode.ANY))
        if inline:  # as older writers left it: the second transaction splits it (its pending index too)
            inline_changelog(path)
        assert bool(revlog_mod.FLAG_INLINE & struct.unpack(">I", (path / ".hg/store/00changelog.i").read_bytes()[:4])[0]) is inline
        before = _store_files(path)
        for commit in (False, True):
            tx = target.transaction()
            tx.add_changegroup(source.emit_groups(nodes[3:], DeltaMode.ANY))
            assert tx.write_pending() is not None  # type: ignore[attr-defined]
            pending = (path / ".hg/store/00changelog.i.a").read_bytes()
            if not commit:
                tx.abort()
                assert _store_files(path) == before
                continue
            tx.commit()
        assert pending == (path / ".hg/store/00changelog.i").read_bytes()
        assert hg_cli(path, "verify", "-q", check=False) == b""
        written[spill] = _store_files(path)
        assert bool(spools) is (spill == 1)
    assert spools and all(os.fsencode(d) == bytes(tmp_path / "spill-1/.hg/store") for d in spools)  # type: ignore[arg-type]
    assert written[1] == written[held]
    assert source.heads() == hgstore.open_repository(str(tmp_path / "spill-1"), "t").heads()
