"""Read path: every revision of every revlog read natively equals what real ``hg`` reports."""

# The session fixtures are imported from test_hg_storage_repos, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import binascii
from pathlib import Path

import pytest
from test_hg_storage_repos import LONG_PATH, Hg, hg_cli, legacy_repo, source_repo, zlib_repo, zstd_repo  # noqa: F401

import backends.hg as hgstore
from backends.hg.changelog import parse_changeset, parse_filelog_text, parse_manifest
from backends.hg.repository import HgRepo
from backends.hg.revlog import Revlog
from backends.hg.store import decode_dir
from backends.interfaces import AmbiguousIdentifier


def _hex(node: bytes) -> str:
    return binascii.hexlify(node).decode()


def _filelog_paths(repo: HgRepo) -> list[bytes]:
    fncache = repo.store.read(b"fncache").splitlines()
    return sorted(decode_dir(line)[5:-2] for line in fncache if line.endswith(b".i"))


def _compare_index(hg: Hg, path: Path, revlog: Revlog, *target: str) -> None:
    expected = hg.index(path, *target)
    assert len(revlog) == len(expected)
    for rev, row in enumerate(expected):
        assert _hex(revlog.node(rev)) == row["nodeid"]
        p1, p2 = revlog.parent_revs(rev)
        assert (_hex(revlog.node(p1)), _hex(revlog.node(p2))) == (row["p1-nodeid"], row["p2-nodeid"])
        assert revlog.linkrev(rev) == int(row["linkrev"])
        revlog.revision(rev, verify=True)  # sha1 of the rebuilt text must equal the node


def test_every_revlog_matches_hg_index_and_hashes(hg_cli: Hg, source_repo: Path) -> None:
    repo = hgstore.open_repository(str(source_repo), "src")
    _compare_index(hg_cli, source_repo, repo.changelog(), "-c")
    _compare_index(hg_cli, source_repo, repo.manifestlog(), "-m")
    paths = _filelog_paths(repo)
    assert paths
    for path in paths:
        # every fncache entry maps, through our encoder, to the file hg wrote
        assert repo.store.exists(repo.filelog_path(path)), path
        fl = repo.filelog(path)
        for rev in range(len(fl)):
            fl.revision(rev, verify=True)
    for path in (b"big.txt", b"README", b"f.txt"):
        if path in paths:
            _compare_index(hg_cli, source_repo, repo.filelog(path), path.decode())


def test_changelog_and_manifest_texts_equal_debugdata(hg_cli: Hg, source_repo: Path) -> None:
    repo = hgstore.open_repository(str(source_repo), "src")
    cl, ml = repo.changelog(), repo.manifestlog()
    for rev in (0, len(cl) - 1):  # every other text is pinned by its sha1 node
        assert cl.revision(rev) == hg_cli(source_repo, "debugdata", "-c", str(rev))
    tip = len(ml) - 1
    assert ml.revision(tip) == hg_cli(source_repo, "debugdata", "-m", str(tip))


def test_file_contents_flags_and_copies_equal_hg(hg_cli: Hg, zstd_repo: Path) -> None:
    repo = hgstore.open_repository(str(zstd_repo), "src")
    cl, ml = repo.changelog(), repo.manifestlog()
    tip_cs = parse_changeset(cl.revision(len(cl) - 2))
    manifest = parse_manifest(ml.revision(ml.rev(tip_cs.manifest)))
    listing = hg_cli(zstd_repo, "manifest", "--debug", "-r", str(len(cl) - 2))
    expected = {}
    for line in listing.splitlines():
        flag = {b"*": b"x", b"@": b"l", b" ": b""}[line[45:46]]
        expected[line[47:]] = (line[:40], flag)
    assert {p: (binascii.hexlify(n), f) for p, (n, f) in manifest.items()} == expected
    for path in (b"README", b"link", b"big.txt", b"moved.bin", b"empty", LONG_PATH.encode()):
        if path not in manifest:
            continue
        fl = repo.filelog(path)
        data = parse_filelog_text(fl.revision(fl.rev(manifest[path][0]))).data
        assert data == hg_cli(zstd_repo, "cat", "-r", str(len(cl) - 2), "path:" + path.decode())
    assert manifest[b"README"][1] == b"x"
    assert manifest[b"link"][1] == b"l"
    moved = repo.filelog(b"moved.bin")
    source = parse_filelog_text(moved.revision(0)).copy_source
    assert source is not None and source[0] == b"binary.bin"
    copied = parse_filelog_text(repo.filelog(b"README.copy").revision(0)).copy_source
    assert copied is not None and copied[0] == b"README"


def test_log_metadata_equals_hg(hg_cli: Hg, zstd_repo: Path) -> None:
    repo = hgstore.open_repository(str(zstd_repo), "src")
    cl = repo.changelog()
    views = repo.views()
    out = hg_cli(zstd_repo, "log", "--hidden", "-r", "all()", "-T", "{node}|{branch}|{phase}|{join(files, ',')}|{desc}\n")
    for rev, line in enumerate(out.splitlines()):
        node_hex, branch, phase, files, desc = line.split(b"|", 4)
        cs = parse_changeset(cl.revision(rev))
        assert binascii.hexlify(cl.node(rev)) == node_hex
        assert cs.branch == branch
        assert {0: b"public", 1: b"draft", 2: b"secret"}[views.phases[rev]] == phase
        assert b",".join(cs.files) == files
        assert cs.description == desc


def test_heads_branchmap_bookmarks_tags_equal_hg(hg_cli: Hg, zstd_repo: Path) -> None:
    repo = hgstore.open_repository(str(zstd_repo), "src")
    heads = hg_cli(zstd_repo, "heads", "--closed", "-T", "{node}\n").split()
    # our heads() is all topological heads of the visible (non-secret) graph
    served = hg_cli(zstd_repo, "log", "-r", "heads(not secret())", "-T", "{node}\n").split()
    assert [binascii.hexlify(h) for h in repo.heads()] == served
    branchmap = {k: sorted(binascii.hexlify(n) for n in v) for k, v in repo.branchmap().items()}
    expected = {}
    for branch in branchmap:
        revset = b"heads(branch('%s') and not secret())" % branch
        expected[branch] = sorted(hg_cli(zstd_repo, "log", "-r", revset.decode(), "-T", "{node}\n").split())
    assert branchmap == expected
    closed = hg_cli(zstd_repo, "log", "-r", "closed()", "-T", "{node}\n").split()
    assert binascii.hexlify(repo.branchmap()[b"doomed"][0]) in closed
    assert heads  # the closed branch's head is among hg's heads --closed
    marks = hg_cli(zstd_repo, "bookmarks", "-T", "{bookmark} {node}\n")
    assert {k: binascii.hexlify(v) for k, v in repo.bookmarks().items()} == dict(
        line.split(b" ") for line in marks.splitlines()
    )
    for line in hg_cli(zstd_repo, "tags", "-T", "{tag} {node}\n").splitlines():
        tag, node_hex = line.split(b" ")
        if tag != b"tip":  # hg's tip here is the secret head, which a server hides
            assert binascii.hexlify(repo.lookup(tag)) == node_hex


def test_lookup_forms(hg_cli: Hg, zstd_repo: Path) -> None:
    repo = hgstore.open_repository(str(zstd_repo), "src")
    served_tip = hg_cli(zstd_repo, "log", "-r", "max(not secret())", "-T", "{node}")
    assert binascii.hexlify(repo.lookup(b"tip")) == served_tip == binascii.hexlify(repo.lookup(b"default"))
    for spec in ("0", "3", "-2", "v1.0", "main-mark", "feature/\u00e9t\u00e9", "doomed", "null",
                 "000000000000"):
        expected = hg_cli(zstd_repo, "log", "-r", spec, "-T", "{node}").strip()
        assert binascii.hexlify(repo.lookup(spec.encode())) == expected, spec
    full = binascii.hexlify(repo.lookup(b"2"))
    assert repo.lookup(full) == repo.lookup(full[:12]) == repo.lookup(b"2")
    nodes = hg_cli(zstd_repo, "log", "-r", "not secret()", "-T", "{node}\n").split()
    shared = next(c for c in b"abcdef" if sum(n[0] == c for n in nodes) > 1)  # a digit is a rev number
    try:
        repo.lookup(bytes([shared]))
        raise AssertionError("a prefix of two changesets resolved")
    except AmbiguousIdentifier:
        pass
    assert b"ambiguous" in hg_cli(zstd_repo, "log", "-r", chr(shared), check=False) + hg_cli.last_stderr
    below = b"-%d" % (len(repo.changelog()) + 1)  # past the first revision: no number (it was null)
    for bad in (b"no-such-thing", b"99", b"fffffffffffff", below):
        try:
            repo.lookup(bad)
        except KeyError:
            continue
        raise AssertionError(bad)


def test_listkeys_phases_match_hg(hg_cli: Hg, zstd_repo: Path) -> None:
    repo = hgstore.open_repository(str(zstd_repo), "src")
    keys = dict(repo.listkeys(b"phases"))
    assert keys.pop(b"publishing") == b"True"
    roots = hg_cli(zstd_repo, "log", "-r", "roots(draft())", "-T", "{node}\n").split()
    assert sorted(keys) == sorted(roots)
    assert set(keys.values()) == {b"1"}
    assert repo.listkeys(b"namespaces") == {b"bookmarks": b"", b"namespaces": b"", b"phases": b""}


def test_missing_matches_hg_revset(hg_cli: Hg, zstd_repo: Path) -> None:
    repo = hgstore.open_repository(str(zstd_repo), "src")
    common = [repo.lookup(b"3")]
    heads = repo.heads()
    expected = hg_cli(zstd_repo, "log", "-r", "::(heads(not secret())) - ::3", "-T", "{node}\n").split()
    assert [binascii.hexlify(n) for n in repo.missing(common, heads)] == expected


def test_tags_moved_or_removed_on_one_head_resolve_as_hg_resolves_them(hg_cli: Hg, tmp_path: Path) -> None:
    """T moved and U removed on one head, two later heads forked before that: their ``.hgtags``
    still has the old lines, and hg's merge keeps the move and the removal; a local tag counts too."""
    path = tmp_path / "tags"
    hg_cli(tmp_path, "init", str(path))
    (path / "a").write_text("a\n")
    hg_cli(path, "commit", "-qAm", "a")
    for args in (["-r", "0", "T"], ["-r", "0", "U"], ["-f", "-r", "1", "T"], ["--remove", "U"]):
        hg_cli(path, "tag", "-q", *args)
    for head in ("b", "c"):
        hg_cli(path, "update", "-q", "-r", "2")
        (path / head).write_text(head)
        hg_cli(path, "commit", "-qAm", head)
    hg_cli(path, "tag", "-q", "-l", "-r", "2", "loc")
    expected = {}
    for line in hg_cli(path, "tags", "-T", "{tag} {node}\n").splitlines():
        tag, node_hex = line.split(b" ")
        if tag != b"tip":
            expected[tag] = node_hex
    repo = hgstore.open_repository(str(path), "tags")
    assert {k: binascii.hexlify(v) for k, v in repo.tags().items()} == expected
    assert set(expected) == {b"T", b"loc"}


def test_tags_are_read_again_once_their_sources_change(hg_cli: Hg, tmp_path: Path) -> None:
    """Tags are kept per store between openings; a new tag (a new head), a strip, or an edited
    .hg/localtags is seen at once."""
    path = tmp_path / "tagcache"
    hg_cli(tmp_path, "init", str(path))
    (path / "a").write_text("a\n")
    hg_cli(path, "commit", "-qAm", "a")

    def tags() -> set[bytes]:
        return set(hgstore.open_repository(str(path), "tagcache").tags())

    assert tags() == set()
    hg_cli(path, "tag", "-q", "v1")
    assert tags() == {b"v1"}
    (path / ".hg" / "localtags").write_text(hg_cli(path, "log", "-r", "0", "-T", "{node}").decode() + " mine\n")
    assert tags() == {b"v1", b"mine"}
    (path / ".hg" / "localtags").write_text("")
    assert tags() == {b"v1"}
    hg_cli(path, "--config", "extensions.strip=", "strip", "-q", "--no-backup", "-r", "tip")
    assert tags() == set()


def _emitted(repo: HgRepo, common: list[bytes], heads: list[bytes]) -> list[tuple[object, ...]]:
    from backends.interfaces import DeltaMode

    return [(group.section, group.path, [(rd.node, rd.linknode, rd.base, rd.delta) for rd in group.revisions])
            for group in repo.emit_groups(repo.missing(common, heads), DeltaMode.ANY)]


def test_partial_bundles_read_manifest_deltas_as_the_whole_manifests_say(
        source_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clone of one revision, or a pull past one, names each file revision it sends from the
    lines its manifests' stored deltas insert (no manifest rebuilt) where those deltas are against
    a parent: the same bundle as looking the changesets' files up in the whole manifests."""
    from backends.hg import repository

    repo = hgstore.open_repository(str(source_repo), "src")
    cl = repo.changelog()
    heads = list(repo.heads())
    read_from_deltas: list[int] = []
    changed_entries = repository._changed_entries

    def counted(ml: Revlog, mrev: int) -> object:
        entries = changed_entries(ml, mrev)
        if entries is not None:
            read_from_deltas.append(mrev)
        return entries

    for rev in range(len(cl)):
        node = cl.node(rev)
        monkeypatch.setattr(repository, "_changed_entries", counted)
        partial = (_emitted(repo, [], [node]), _emitted(repo, [node], heads))
        monkeypatch.setattr(repository, "_changed_entries", lambda ml, mrev: None)
        assert partial == (_emitted(repo, [], [node]), _emitted(repo, [node], heads)), rev
    ml = repo.manifestlog()
    against_a_parent = [r for r in range(len(ml)) if ml.delta_parent(r) != -1 and ml.delta_parent(r) in ml.parent_revs(r)]
    assert set(read_from_deltas) <= set(against_a_parent)
    assert read_from_deltas or source_repo.name.startswith("legacy")  # (small full-text manifests there)
