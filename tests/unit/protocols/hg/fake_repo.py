"""A small in-memory ``HgRepository`` over dicts, for the wire protocol tests.

It stores full texts per revlog, computes real node hashes
(sha1(min(p1, p2) + max(p1, p2) + text)) and applies mpatch deltas, so bundles
recorded from real hg can be loaded into it and served back.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from backends.interfaces import (
    NULL_NODE,
    DeltaMode,
    IngestResult,
    Kind,
    LockWait,
    Node,
    RevisionDelta,
    RevisionGroup,
    Section,
    StoreFile,
    delta_bytes,
)
from protocols.errors import StorageError

_HUNK = struct.Struct(">lll")
REQUIREMENTS = frozenset(
    {
        "dotencode",
        "fncache",
        "generaldelta",
        "revlog-compression-zstd",
        "revlogv1",
        "sparserevlog",
        "store",
        "share-safe",
    }
)


def node_hash(text: bytes, p1: Node, p2: Node) -> Node:
    a, b = sorted((p1, p2))
    return Node(hashlib.sha1(a + b + text).digest())


def apply_delta(base: bytes, delta: bytes) -> bytes:
    """Apply an mpatch delta (sorted ``start end len`` hunks against ``base``)."""
    out, pos, last = [], 0, 0
    while pos < len(delta):
        if pos + _HUNK.size > len(delta):
            raise StorageError("bad delta")
        start, end, size = _HUNK.unpack_from(delta, pos)
        pos += _HUNK.size
        if not last <= start <= end <= len(base) or not 0 <= size <= len(delta) - pos:
            raise StorageError("bad delta")
        out += [base[last:start], delta[pos : pos + size]]
        pos += size
        last = end
    out.append(base[last:])
    return b"".join(out)


def full_text_delta(text: bytes, base: bytes = b"") -> bytes:
    return _HUNK.pack(0, len(base), len(text)) + text


@dataclass
class Rev:
    node: Node
    p1: Node
    p2: Node
    linknode: Node
    text: bytes


@dataclass
class State:
    revlogs: dict[tuple[Section, bytes], list[Rev]] = field(default_factory=dict)
    phases: dict[Node, int] = field(default_factory=dict)
    bookmarks: dict[bytes, Node] = field(default_factory=dict)

    def copy(self) -> State:
        return State({k: list(v) for k, v in self.revlogs.items()}, dict(self.phases), dict(self.bookmarks))

    @property
    def changelog(self) -> list[Rev]:
        return self.revlogs.setdefault((Section.CHANGELOG, b""), [])


def _branch(text: bytes) -> bytes:
    date_line = text.split(b"\n")[2]
    parts = date_line.split(b" ", 2)
    for item in parts[2].split(b"\0") if len(parts) > 2 else []:
        if item.startswith(b"branch:"):
            return item[len(b"branch:") :]
    return b"default"


def _find(revs: list[Rev], node: Node) -> Rev | None:
    return next((r for r in revs if r.node == node), None)


class FakeTransaction:
    def __init__(self, repo: FakeRepo) -> None:
        self.repo = repo
        self.state = repo.state.copy()
        self.done = False
        self._added: list[Node] = []

    def add_changegroup(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        before = len(self.repo._heads(self.state))
        added: list[Node] = []
        for group in groups:
            revs = self.state.revlogs.setdefault((group.section, group.path), [])
            for delta in group.revisions:
                if _find(revs, delta.node) is not None:
                    continue
                self._add(revs, delta, group.section, added)
        self._added.extend(added)
        return IngestResult(added, before, len(self.repo._heads(self.state)))

    def _check_files(self, added: list[Node]) -> None:
        """As the storage engine (``Transaction._validate_new_changesets``): each new changeset's
        manifest, and the revision it names of each file the changeset lists, must exist (checked
        as the transaction commits, after the wire protocol's own checks of the whole push)."""
        manifests = self.state.revlogs.get((Section.MANIFEST, b""), [])
        for node in added:
            changeset = _find(self.state.changelog, node)
            assert changeset is not None
            lines = changeset.text.partition(b"\n\n")[0].split(b"\n")
            manifest_node = bytes.fromhex(lines[0].decode("ascii"))
            if manifest_node == NULL_NODE:
                continue
            manifest = _find(manifests, manifest_node)
            if manifest is None:
                raise StorageError("a changeset refers to a missing manifest")
            entries = dict(line.split(b"\0", 1) for line in manifest.text.split(b"\n") if line)
            for path in lines[3:]:
                if path in entries:
                    file_node = bytes.fromhex(entries[path][:40].decode("ascii"))
                    if _find(self.state.revlogs.get((Section.FILE, path), []), file_node) is None:
                        raise StorageError(f"a changeset refers to a missing revision of {path!r}")

    def _add(self, revs: list[Rev], d: RevisionDelta, section: Section, added: list[Node]) -> None:
        base = b"" if d.base == NULL_NODE else self._text(revs, d.base)
        text = apply_delta(base, delta_bytes(d.delta))
        if node_hash(text, d.p1, d.p2) != d.node:
            raise StorageError(f"integrity check failed on {section.value} node {d.node.hex()}")
        for parent in (d.p1, d.p2):
            if parent != NULL_NODE and _find(revs, parent) is None:
                raise StorageError("unknown parent")
        if section is not Section.CHANGELOG and _find(self.state.changelog, d.linknode) is None:
            raise StorageError("unknown linknode")
        # hg links a changeset to itself whatever the linknode field says (csmap in cg1unpacker).
        linknode = d.node if section is Section.CHANGELOG else d.linknode
        revs.append(Rev(d.node, d.p1, d.p2, linknode, text))
        if section is Section.CHANGELOG:
            added.append(d.node)
            self.state.phases[d.node] = 1

    def _text(self, revs: list[Rev], node: Node) -> bytes:
        rev = _find(revs, node)
        if rev is None:
            raise StorageError("unknown delta base")
        return rev.text

    def set_bookmark(self, name: bytes, old: Node | None, new: Node | None) -> bool:
        if self.state.bookmarks.get(name) != old:
            return False
        if new is None:
            self.state.bookmarks.pop(name, None)
        else:
            self.state.bookmarks[name] = new
        return True

    def set_phase(self, phase: int, nodes: Sequence[Node]) -> None:
        targets = self.repo._ancestors(self.state, nodes) if phase == 0 else set(nodes)
        for node in targets:
            if self.state.phases.get(node, 0) > phase:
                self.state.phases[node] = phase

    def commit(self) -> None:
        assert not self.done
        self._check_files(self._added)
        self.repo.state = self.state
        self.done = True
        self.repo.commits += 1

    def abort(self) -> None:
        self.done = True
        self.repo.aborts += 1


class FakeRepo:
    kind: Literal[Kind.HG] = Kind.HG

    def __init__(self, name: str = "fake", publishing: bool = False) -> None:
        self.name = name
        self._publishing = publishing
        self.state = State()
        self.commits = 0
        self.aborts = 0
        self.store_files: list[tuple[bytes, bytes]] = [
            (b"00changelog.i", b"changelog-bytes"),
            (b"data/a.i/b.i", b"xyz"),
        ]

    def requirements(self) -> frozenset[str]:
        return REQUIREMENTS

    def publishing(self) -> bool:
        return self._publishing

    def _parents(self, state: State, node: Node) -> list[Node]:
        rev = _find(state.changelog, node)
        assert rev is not None
        return [p for p in (rev.p1, rev.p2) if p != NULL_NODE]

    def _ancestors(self, state: State, nodes: Sequence[Node]) -> set[Node]:
        seen: set[Node] = set()
        todo = [n for n in nodes if n != NULL_NODE]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(self._parents(state, node))
        return seen

    def _heads(self, state: State) -> list[Node]:
        parents = {p for r in state.changelog for p in (r.p1, r.p2)}
        return [r.node for r in state.changelog if r.node not in parents]

    def heads(self) -> list[Node]:
        return self._heads(self.state) or [NULL_NODE]

    def known(self, nodes: Sequence[Node]) -> list[bool]:
        have = {r.node for r in self.state.changelog}
        return [n in have for n in nodes]

    def branchmap(self) -> Mapping[bytes, Sequence[Node]]:
        result: dict[bytes, list[Node]] = {}
        log = self.state.changelog
        for rev in log:
            branch = _branch(rev.text)
            children = [c for c in log if rev.node in (c.p1, c.p2) and _branch(c.text) == branch]
            if not children:
                result.setdefault(branch, []).append(rev.node)
        return dict(sorted(result.items()))

    def lookup(self, key: bytes) -> Node:
        log = self.state.changelog
        if key == b"tip" and log:
            return log[-1].node
        if key in self.state.bookmarks:
            return self.state.bookmarks[key]
        heads = self.branchmap().get(key)
        if heads:
            return heads[-1]
        if key.isdigit() and int(key) < len(log):
            return log[int(key)].node
        matches = [r.node for r in log if r.node.hex().encode().startswith(key)]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(key)

    def listkeys(self, namespace: bytes) -> Mapping[bytes, bytes]:
        if namespace == b"namespaces":
            return {b"bookmarks": b"", b"namespaces": b"", b"phases": b""}
        if namespace == b"bookmarks":
            return {k: v.hex().encode() for k, v in self.state.bookmarks.items()}
        if namespace == b"phases":
            keys = {n.hex().encode(): b"1" for n in self._draft_roots()}
            if self._publishing:
                keys[b"publishing"] = b"True"
            return keys
        return {}

    def _draft_roots(self) -> list[Node]:
        phases = self.state.phases
        return [
            r.node
            for r in self.state.changelog
            if phases.get(r.node, 0) == 1
            and all(phases.get(p, 0) == 0 for p in self._parents(self.state, r.node))
        ]

    def bookmarks(self) -> Mapping[bytes, Node]:
        return dict(self.state.bookmarks)

    def phase_heads(self, heads: Sequence[Node]) -> Sequence[tuple[int, Node]]:
        if self._publishing:
            return [(0, h) for h in heads]
        ancestors = self._ancestors(self.state, heads)
        public = {n for n in ancestors if self.state.phases.get(n, 0) == 0}
        public_parents = {p for n in public for p in self._parents(self.state, n)}
        result = [(0, n) for n in public if n not in public_parents]
        result += [(1, h) for h in heads if self.state.phases.get(h, 0) == 1]
        return result

    def missing(self, common: Sequence[Node], heads: Sequence[Node]) -> list[Node]:
        wanted = self._ancestors(self.state, heads) - self._ancestors(self.state, common)
        return [r.node for r in self.state.changelog if r.node in wanted]

    def emit_groups(self, nodes: Sequence[Node], mode: DeltaMode,
                    match: Callable[[bytes], bool] | None = None) -> Iterator[RevisionGroup]:
        """Every file, ``match`` or not: the caller filters (as a backend that ignores it)."""
        links = set(nodes)
        keys = [(Section.CHANGELOG, b""), (Section.MANIFEST, b"")]
        keys += sorted(k for k in self.state.revlogs if k[0] is Section.FILE)
        for key in keys:
            revs = [r for r in self.state.revlogs.get(key, []) if r.linknode in links]
            if revs or key[0] is not Section.FILE:
                yield RevisionGroup(key[0], key[1], self._deltas(self.state.revlogs.get(key, []), revs, mode))

    def _deltas(self, revlog: list[Rev], revs: list[Rev], mode: DeltaMode) -> Iterator[RevisionDelta]:
        previous: Rev | None = None
        for rev in revs:
            if mode is DeltaMode.ANY:
                base, base_text = NULL_NODE, b""
            else:
                base = rev.p1 if previous is None else previous.node
                found = _find(revlog, base)
                base_text = found.text if found is not None else b""
            delta = full_text_delta(rev.text, base_text)
            yield RevisionDelta(rev.node, rev.p1, rev.p2, rev.linknode, Node(base), delta)
            previous = rev

    def to_plain(self) -> tuple[object, ...]:
        """The state as builtins only (picklable whatever this module is imported as)."""
        revlogs = {(k[0].value, k[1]): [(r.node, r.p1, r.p2, r.linknode, r.text) for r in v]
                   for k, v in self.state.revlogs.items()}  # fmt: skip
        return self._publishing, revlogs, self.state.phases, self.state.bookmarks

    @classmethod
    def from_plain(cls, plain: tuple[object, ...]) -> FakeRepo:
        publishing, revlogs, phases, bookmarks = plain
        repo = cls("served", bool(publishing))
        assert isinstance(revlogs, dict) and isinstance(phases, dict) and isinstance(bookmarks, dict)
        repo.state.revlogs = {(Section(k[0]), k[1]): [Rev(*r) for r in v] for k, v in revlogs.items()}
        repo.state.phases, repo.state.bookmarks = phases, bookmarks
        return repo

    def transaction(self, max_text: int | None = None, wait: LockWait | None = None) -> FakeTransaction:
        return FakeTransaction(self)

    def stream_clone_allowed(self) -> bool:
        return all(phase < 2 for phase in self.state.phases.values())

    def stream_files(self, caches: bool = False) -> tuple[int, int, Iterator[StoreFile]]:
        files = self.store_files
        entries = (StoreFile(path, len(data), iter([data])) for path, data in files)
        return len(files), sum(len(d) for _, d in files), entries
