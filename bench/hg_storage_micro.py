"""Micro-benchmark of the native Mercurial engine (issue 4); not a timed test.

Run: ``.venv/bin/python -m bench.hg_storage_micro [--changesets 5000]``.
Measures: ingest of N synthetic changesets into a fresh on-disk repository,
open + heads on it, full-text reads per second, and emit of the whole history.
The history builder is also used by the hg storage tests.
"""

from __future__ import annotations

import argparse
import binascii
import tempfile
import time
from collections.abc import Iterator

from backends.hg.changelog import Changeset, format_changeset, format_manifest
from backends.hg.mpatch import full_replacement
from backends.hg.revlog import node_hash
from backends.interfaces import NULL_NODE, Node, RevisionDelta, RevisionGroup, Section


class HistoryBuilder:
    """Build valid changegroup groups without Mercurial: files, manifests, changesets, hashes."""

    def __init__(self) -> None:
        self.changesets: list[RevisionDelta] = []
        self.manifests: list[RevisionDelta] = []
        self.files: dict[bytes, list[RevisionDelta]] = {}
        self.state: dict[Node, dict[bytes, tuple[Node, bytes]]] = {NULL_NODE: {}}
        self.contents: dict[tuple[bytes, Node], bytes] = {}
        self.manifest_of: dict[Node, Node] = {NULL_NODE: NULL_NODE}

    def commit(
        self,
        changes: dict[bytes, bytes],
        p1: Node = NULL_NODE,
        p2: Node = NULL_NODE,
        branch: bytes = b"default",
        close: bool = False,
        message: bytes = b"change",
    ) -> Node:
        """Add a changeset on ``p1`` (and ``p2``) changing ``changes`` (path -> new content)."""
        manifest = dict(self.state[p1])
        for path, data in sorted(changes.items()):
            old = manifest.get(path, (NULL_NODE, b""))[0]
            fnode = node_hash(data, old, NULL_NODE)
            manifest[path] = (fnode, b"")
            self.contents[(path, fnode)] = data
            self._pending_file = (path, fnode, old, data)
            self.files.setdefault(path, []).append(
                RevisionDelta(fnode, old, NULL_NODE, NULL_NODE, NULL_NODE, full_replacement(0, data))
            )
        mtext = format_manifest(manifest)
        mp1, mp2 = self.manifest_of[p1], self.manifest_of[p2]
        mnode = node_hash(mtext, mp1, mp2)
        extra = {b"branch": branch}
        if close:
            extra[b"close"] = b"1"
        cs = Changeset(mnode, b"bench <bench@example.com>", 1700000000.0 + len(self.changesets), 0,
                       extra, tuple(sorted(changes)), message)
        ctext = format_changeset(cs)
        cnode = node_hash(ctext, p1, p2)
        self.changesets.append(RevisionDelta(cnode, p1, p2, cnode, NULL_NODE, full_replacement(0, ctext)))
        if not any(m.node == mnode for m in self.manifests[-1:]):
            self.manifests.append(RevisionDelta(mnode, mp1, mp2, cnode, NULL_NODE, full_replacement(0, mtext)))
        self._link_files(changes, manifest, cnode)
        self.state[cnode] = manifest
        self.manifest_of[cnode] = mnode
        return cnode

    def _link_files(self, changes: dict[bytes, bytes], manifest: dict[bytes, tuple[Node, bytes]], cnode: Node) -> None:
        for path in changes:
            last = self.files[path][-1]
            self.files[path][-1] = RevisionDelta(last.node, last.p1, last.p2, cnode, last.base, last.delta)

    def groups(self) -> Iterator[RevisionGroup]:
        """All of it as one changegroup (file revisions deduplicated by node)."""
        yield RevisionGroup(Section.CHANGELOG, b"", iter(self.changesets))
        yield RevisionGroup(Section.MANIFEST, b"", iter(_dedupe(self.manifests)))
        for path in sorted(self.files):
            yield RevisionGroup(Section.FILE, path, iter(_dedupe(self.files[path])))


def _dedupe(revs: list[RevisionDelta]) -> list[RevisionDelta]:
    seen: set[bytes] = set()
    out = []
    for rd in revs:
        if rd.node not in seen:
            seen.add(rd.node)
            out.append(rd)
    return out


def linear_history(count: int, files: int = 50) -> HistoryBuilder:
    """``count`` changesets, each appending a line to one of ``files`` files."""
    builder = HistoryBuilder()
    contents: dict[bytes, bytes] = {}
    parent = NULL_NODE
    for i in range(count):
        path = b"dir%d/file%d.txt" % (i % 7, i % files)
        contents[path] = contents.get(path, b"") + b"line %d: some text to make the file grow\n" % i
        parent = builder.commit({path: contents[path]}, parent, message=b"commit %d" % i)
    return builder


def _time(label: str, fn: object, *args: object) -> object:
    start = time.perf_counter()
    result = fn(*args)  # type: ignore[operator]
    print(f"{label}: {time.perf_counter() - start:.3f} s")
    return result


def main() -> None:
    import backends.hg as hgstore
    from backends.interfaces import DeltaMode

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changesets", type=int, default=5000)
    args = parser.parse_args()
    builder = linear_history(args.changesets)
    with tempfile.TemporaryDirectory() as tmp:
        repo = hgstore.create_repository(tmp + "/r", "bench")

        def ingest() -> None:
            tx = repo.transaction()
            tx.add_changegroup(builder.groups())
            tx.commit()

        _time(f"ingest {args.changesets} changesets", ingest)
        heads = _time("open + heads", lambda: hgstore.open_repository(tmp + "/r", "bench").heads())
        assert isinstance(heads, list) and len(heads) == 1
        fresh = hgstore.open_repository(tmp + "/r", "bench")
        cl = fresh.changelog()
        ml = fresh.manifestlog()
        start = time.perf_counter()
        for rev in range(len(ml) - 1, -1, -1):  # backwards: no help from the one-text cache
            ml.revision(rev)
        elapsed = time.perf_counter() - start
        print(f"manifest full-text reads: {len(ml) / elapsed:.0f} /s ({len(ml)} revs)")
        start = time.perf_counter()
        for rev in range(len(cl)):
            cl.revision(rev)
        print(f"changelog full-text reads: {len(cl) / (time.perf_counter() - start):.0f} /s")
        nodes = _time("missing(all)", fresh.missing, [], fresh.heads())
        assert isinstance(nodes, list)

        def emit() -> int:
            return sum(len(rd.delta) for g in fresh.emit_groups(nodes, DeltaMode.ANY) for rd in g.revisions)

        _time("emit_groups(all, ANY)", emit)
        print("store bytes:", sum(f.size for f in fresh.stream_files()[2]), binascii.hexlify(heads[0]).decode()[:12])


if __name__ == "__main__":
    main()
