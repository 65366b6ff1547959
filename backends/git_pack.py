"""The graph and pack work of upload-pack on top of dulwich: refs, negotiation, shallow, packs.

Pure and synchronous: the gateway calls these from its worker pool.  The
protocol core (``protocols.git_upload``) decides what to write; this module
answers its graph questions — which haves we have, whether every want reaches
a common commit (git's ``ok_to_give_up``), where a shallow boundary lies
(git's ``get_shallow_commits``, ``get_shallow_commits_by_rev_list``) — and
streams the pack as byte chunks, reusing stored deltas where dulwich offers them.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import heapq
import operator
import os
import stat
import struct
import threading
import weakref
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, count, repeat
from typing import Any, cast

from dulwich.errors import ObjectFormatException
from dulwich.object_format import OBJECT_FORMATS as DULWICH_FORMATS
from dulwich.object_format import ObjectFormat as DulwichFormat
from dulwich.object_store import (
    BaseObjectStore,
    DiskObjectStore,
    GraphTraversalReachability,
    MissingObjectFinder,
)
from dulwich.objects import S_ISGITLINK, Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.pack import (
    OFS_DELTA,
    REF_DELTA,
    PackFileDisappeared,
    PackHint,
    UnpackedObject,
    generate_unpacked_objects,
    pack_object_chunks,
)

from backends import git_fastpack
from backends.git_commitgraph import CommitGraph, store_commit_graph
from backends.git_objects import LOWER_HEX, MAX_PEEL, CorruptPack, PackObjectReader, pack_dirs, store_views
from backends.git_packindex import MappedPacks, StoredTypes
from backends.git_reach import ABANDON_CHECK, BitmapError, PackBitmap, check_abandoned, tag_object
from backends.interfaces import SHA1_FORMAT, GitRepository, ObjectFormat, ObjectId, object_format_of
from protocols.client_gone import CHECK_EVERY, check
from protocols.errors import ProtocolError
from protocols.git_receive import resolve_symref
from protocols.git_reflines import RefRun
from protocols.git_upload import INFINITE_DEPTH, FetchRequest, HaveVerdict, Negotiation

CHUNK_SIZE = 1 << 16
MAX_ANCESTRY_WALK = 1_000_000
"""Commits a fast-forward check may visit before it calls the update non-fast-forward."""
PEELED_CACHE_SIZE = 1 << 16
"""How many ref tips' peeled ids are remembered (under 12 MiB when full)."""

_peeled: dict[bytes, ObjectId] = {}
"""Object id -> the id it finally peels to, for objects whose chain was read to its end.

An object's content is fixed by its id, so what it peels to is the same in every
repository and never goes stale: no invalidation on write.  Every advertisement
peels every ref, and reading a commit just to see that it is no tag cost about
half a millisecond per ref.
"""


@dataclass(frozen=True, slots=True)
class RefSnapshot:
    """The refs as advertised once: ids, peeled ids of annotated tags, symrefs."""

    refs: Mapping[bytes, ObjectId]
    peeled: Mapping[bytes, ObjectId]
    symrefs: Mapping[bytes, bytes]
    run: RefRun | None = None
    """The refs as a run of encoded lines and its differences, when the backend keeps one."""
    unpeeled: tuple[bytes, ...] = ()
    """The refs naming a chain of more than ``MAX_PEEL`` tags of tags, listed without a peeled
    value (the operator is told; git lists them peeled)."""


@dataclass(frozen=True, slots=True, weakref_slot=True)
class KeptRefs:
    """A ``RefSnapshot``'s refs, peeled tags and symrefs, kept compactly by a v0 upload-pack
    connection between its advertisement and its wants (``keep_refs``): the names as one buffer,
    the ids as one of their bytes, the peeled values as positions among the refs and one buffer of
    ids.  Ten connections to a mirror of 100,000 annotated tags, each idle after the advertisement,
    held its snapshot as dicts (45-50 MB each: the server went from 73 to 570 MB of RSS, ten
    ``git-upload-pack`` processes hold 232 MB); connections that saw the same refs share one
    (``keep_refs`` finds it by its digest).  ``snapshot()`` gives the dicts back, in their order,
    when the wants arrive: they are checked against what this connection advertised."""

    names: bytes
    """The refs' names joined by newlines (no ref name holds one), in the snapshot's order."""
    ids: bytes
    """Each ref's id, as bytes (``raw_len`` each), in the same order."""
    peeled_at: array[int]
    """For each peeled tag, in the snapshot's order: its ref's position in ``names``."""
    peeled_ids: bytes
    """What each of those peels to, as bytes."""
    symrefs: Mapping[bytes, bytes]
    raw_len: int
    digest: bytes
    """What ``keep_refs`` shares it by."""

    def snapshot(self) -> RefSnapshot:
        """The refs as they were advertised (a ``RefSnapshot`` without its ``run``)."""
        names = self.names.split(b"\n") if self.ids else []
        ids = _hex_ids(self.ids, self.raw_len)
        targets = _hex_ids(self.peeled_ids, self.raw_len)
        refs = cast(dict[bytes, ObjectId], dict(zip(names, ids)))
        peeled = cast(dict[bytes, ObjectId], dict(zip([names[i] for i in self.peeled_at], targets)))
        return RefSnapshot(refs, peeled, dict(self.symrefs))

    def held(self) -> int:
        """About the bytes it holds (its buffers)."""
        return len(self.names) + len(self.ids) + len(self.peeled_at) * self.peeled_at.itemsize + len(self.peeled_ids)


def _hex_ids(joined: bytes, raw_len: int) -> list[bytes]:
    text = binascii.hexlify(joined)
    size = 2 * raw_len
    return [text[i:i + size] for i in range(0, len(text), size)]


_KEPT_REFS: weakref.WeakValueDictionary[bytes, KeptRefs] = weakref.WeakValueDictionary()
"""The ``KeptRefs`` some connection holds, by digest: one for every connection that saw the same refs."""
_KEPT_REFS_LOCK = threading.Lock()
_LOWER_HEX_DIGITS = b"0123456789abcdef"


def keep_refs(snapshot: RefSnapshot) -> KeptRefs | RefSnapshot:
    """``snapshot`` in the compact form a connection keeps until its wants arrive (``KeptRefs``), the
    one another connection holds already if it saw the same refs; ``snapshot`` itself when its ids are
    not all lowercase hex of one length or a name holds a newline (a backend's own refs: kept as they
    are).  Blocking: 20-40 ms for 100,000 refs."""
    refs, peeled = snapshot.refs, snapshot.peeled
    names = list(refs)
    hex_ids = b"".join(refs.values())
    lengths = {*map(len, refs.values())}
    if len(lengths) > 1 or (names and next(iter(lengths)) % 2):
        return snapshot
    raw_len = next(iter(lengths)) // 2 if names else SHA1_FORMAT.raw_len
    joined = b"\n".join(names)
    if joined.count(b"\n") != max(len(names) - 1, 0) or hex_ids.translate(None, _LOWER_HEX_DIGITS):
        return snapshot
    targets = b"".join(peeled.values())
    if targets.translate(None, _LOWER_HEX_DIGITS) or len(targets) != 2 * raw_len * len(peeled):
        return snapshot
    position = {name: i for i, name in enumerate(names)}
    try:
        peeled_at = array("I", [position[name] for name in peeled])
    except KeyError:  # a peeled value of no ref
        return snapshot
    ids, peeled_ids = binascii.unhexlify(hex_ids), binascii.unhexlify(targets)
    digest = hashlib.sha256()
    symrefs = b"".join(b"%d:%s%d:%s" % (len(name), name, len(target), target)
                       for name, target in sorted(snapshot.symrefs.items()))
    for part in (joined, ids, peeled_at.tobytes(), peeled_ids, symrefs):
        digest.update(b"%d:" % len(part))
        digest.update(part)
    key = digest.digest()
    with _KEPT_REFS_LOCK:
        kept = _KEPT_REFS.get(key)
        if kept is None:
            kept = KeptRefs(joined, ids, peeled_at, peeled_ids, dict(snapshot.symrefs), raw_len, key)
            _KEPT_REFS[key] = kept
    return kept


def visible_refs(repo: GitRepository, service: str = "upload-pack",
                 refs: Mapping[bytes, ObjectId] | None = None) -> dict[bytes, ObjectId]:
    """The refs (``refs``, read already, or the repository's), less those the repository hides from
    ``service`` (``hidden_refs``, if the backend has it)."""
    refs = dict(repo.refs() if refs is None else refs)
    hidden_refs = getattr(repo, "hidden_refs", None)
    if hidden_refs is not None:
        hidden = hidden_refs(service)
        if hidden is not nothing_hidden:  # a call per ref for nothing: 2 ms of 20,000 refs
            refs = {name: oid for name, oid in refs.items() if not hidden(name)}
    return refs


def hidden_tips(repo: GitRepository, service: str = "upload-pack") -> dict[bytes, ObjectId]:
    """The refs the repository hides from ``service`` (``hidden_refs``), read now: never advertised
    nor named to a client, their tips reach a client's shallow commits for ``--deepen`` where the
    config allows a want of a hidden tip (``UploadSettings.hidden_tips_reach_shallows``), as git's
    upload-pack reads them as it deepens.  Read when a deepen asks, not with each snapshot of the
    refs (a mirror hiding 20,000 of its 120,000 refs: 5-8 ms of server CPU a ``git ls-remote``)."""
    hidden_refs = getattr(repo, "hidden_refs", None)
    hidden = hidden_refs(service) if hidden_refs is not None else nothing_hidden
    if hidden is nothing_hidden:
        return {}
    return {name: oid for name, oid in repo.refs().items() if hidden(name)}


def nothing_hidden(_ref: bytes) -> bool:
    """The ``hidden_refs`` answer of a repository that hides no ref."""
    return False


def snapshot_refs(repo: GitRepository) -> RefSnapshot:
    """Read refs and peel every annotated tag, so the advertisement needs no further lookups.

    A backend with ``refs_and_symrefs()`` reads both in one pass (and they agree with each other);
    one with ``known_peeled()`` says what some objects peel to without their being read.  A worker
    watched for its client (``protocols.client_gone``) stops every ``CHECK_EVERY`` refs once it has
    gone (a mirror's 100,000 tags: 0.8 s)."""
    both = getattr(repo, "refs_and_symrefs", None)
    all_refs, symrefs = both() if both is not None else (repo.refs(), None)
    refs = visible_refs(repo, refs=all_refs)
    store = repo.object_store
    peeled = {}
    unpeeled: tuple[bytes, ...] = ()
    known = _peeled
    recorded = getattr(repo, "known_peeled", None)
    on_file = recorded() if recorded is not None else {}
    by_name = getattr(repo, "peeled_by_name", None)  # optional: what a backend knows by name already
    vouched = by_name(refs) if by_name is not None else None
    names: list[bytes] = list(refs)
    if vouched is not None:
        peeled, rest = vouched
        names = list(rest)
    # the caches looked up by C-level passes (a Python loop a ref: a tenth of a mirror's advertisement)
    oids = list(map(refs.__getitem__, names))
    found = list(map(on_file.get, oids, map(known.get, oids)))
    lost = list(map(operator.is_, found, repeat(None)))
    peeled.update(compress(zip(names, found), map(operator.and_, map(operator.ne, found, oids), map(operator.not_, lost))))
    check("the ref advertisement")
    if True in lost:  # the packs' indexes mapped once, only when some ref is not known
        names, oids = list(compress(names, lost)), list(compress(oids, lost))
        types = _stored_types(store)
        too_long: set[ObjectId] = set()
        try:
            targets = peel_many(store, oids, types, too_long)
        finally:
            if types is not None:
                types.close()
        ends = list(map(targets.__getitem__, oids))
        peeled.update(compress(zip(names, ends), map(operator.ne, ends, oids)))
        if too_long:
            unpeeled = tuple(name for name, oid in zip(names, oids) if oid in too_long)
    if symrefs is None:
        symrefs = repo.symrefs()
    # each names the ref it leads to in the end, as git's advertisement and ls-refs resolve it (HEAD ->
    # refs/heads/alias -> refs/heads/main: a clone checks out main); a loop is named nowhere
    resolved = {name: resolve_symref(symrefs, name) for name in symrefs if name == b"HEAD" or name in refs}
    run_of = getattr(repo, "ref_run", None)  # optional: only with peeled_by_name's values
    run = run_of(refs) if run_of is not None and vouched is not None else None
    return RefSnapshot(refs, peeled, {name: target for name, target in resolved.items() if target is not None}, run,
                       unpeeled)


def _stored_types(store: BaseObjectStore) -> StoredTypes | None:
    """The stored types of a store on disk's packed objects (``StoredTypes``), or None."""
    if not isinstance(store, DiskObjectStore):
        return None
    return StoredTypes(pack_dirs(store), object_format_of(store).raw_len)  # (a fork's and what it borrows)


Rests = dict[bytes, tuple[ObjectId, int]]
"""Each tag whose chain was read to its end by one request: that end and the tags from it on."""


def peel(store: BaseObjectStore, oid: ObjectId, types: StoredTypes | None = None, rests: Rests | None = None
         ) -> ObjectId:
    """Follow annotated tags to the object they finally name (a bounded chain).

    An object a pack stores whole is known by its entry's header (``types``: nothing is
    inflated); any other is read raw: its type says whether it is a tag, and a tag's first
    line names its object; a commit is not parsed (5,000 loose branches took 0.25 s to
    advertise the first time, each commit parsed by dulwich, against ``git daemon``'s 0.1).
    ``rests``: a request's chains read already (``_peel_readable``)."""
    target = _peel_readable(store, oid, types, MAX_PEEL, rests)
    return oid if target is None else target


def _peel_readable(store: BaseObjectStore, oid: ObjectId, types: StoredTypes | None = None,
                   tags: int = MAX_PEEL, rests: Rests | None = None) -> ObjectId | None:
    """``peel``'s answer, or None when an object on the way is one neither dulwich nor git reads (a
    tag whose first line is not ``object <id>``, written by another tool): git advertises such a
    ref, and a tag of it, with no peeled value, where every advertisement of the repository was
    refused ("the repository holds an object the server cannot read").  ``tags``: how many tags
    the chain from ``oid`` may hold (``peel_many`` passed over one already); ``rests``: the
    request's chains read already, taken and added to (refs naming each tag of one chain read the
    chain once, not once a ref)."""
    known = _peeled.get(oid)
    if known is not None:
        return known
    start = oid
    path: list[bytes] = []  # (the tags passed)
    while True:
        if rests is not None and (read := rests.get(oid)) is not None:
            end, rest = read
            break
        if len(path) > tags:
            raise TagChainTooLong(start)
        stored = types.type_of(_binary(oid)) if types is not None else None
        if stored is None or stored >= Tag.type_num:  # not known from its entry (a tag, a delta): read it
            try:
                type_num, raw = store.get_raw(_dul(oid))
            except KeyError:
                return oid  # a missing object ends the chain here only in this store: not remembered
            except ObjectFormatException:  # (a loose object dulwich parses as it reads it)
                return None
            if type_num == Tag.type_num:
                try:
                    target = _tag_target(store, oid, raw)
                except ObjectFormatException:
                    return None
                if target is None:
                    return oid
                path.append(oid)
                oid = ObjectId(target)
                continue
        end, rest = oid, 0  # a commit, tree or blob: the chain's end
        break
    if rests is not None:
        for at, tag in enumerate(path):
            rests[tag] = (end, len(path) - at + rest)
    if len(path) + rest > tags:
        raise TagChainTooLong(start)
    if len(_peeled) >= PEELED_CACHE_SIZE:
        _peeled.clear()
    _peeled[start] = end
    return end


class TagChainTooLong(ProtocolError):
    """A chain of more than ``MAX_PEEL`` tags of tags, from ``oid``."""

    def __init__(self, oid: bytes) -> None:
        super().__init__(f"tag chain longer than {MAX_PEEL} at {oid.decode()}")
        self.oid = oid


def peel_many(store: BaseObjectStore, oids: Sequence[ObjectId], types: StoredTypes | None = None,
              too_long: set[ObjectId] | None = None) -> dict[ObjectId, ObjectId]:
    """What each of ``oids`` finally peels to, as ``peel`` answers, for many at once: the objects
    the packs store whole are read by ``StoredTypes.whole_entries`` (a tag's first line, a pass over
    each index), each tag's object peeled once however many tags name it; the others (a delta, a
    loose object) by ``peel``.  Tags are not added to ``peel``'s cache: a mirror's 100,000 tags
    overflowed it at every advertisement, so that none was found there the next time.

    A chain of more than ``MAX_PEEL`` tags is answered unpeeled (itself), its id added to
    ``too_long``: one such ref made every advertisement of its repository fail, every other ref
    unserved."""
    binary = _binaries(oids)
    whole = types.whole_entries(set(binary.values()) - {b""}) if types is not None else {}
    check("the ref advertisement")
    # (C-level passes over the ids: a Python loop a ref took 0.2 s of a mirror's 100,000 tags)
    entries = list(map(whole.get, map(binary.__getitem__, oids), repeat(_NOT_WHOLE)))
    rests: Rests = {}
    ends = _tag_ends(store, types, cast(set[bytes], set(entries).difference((None, _NOT_WHOLE))), rests)
    ends[None] = None
    result: dict[ObjectId, ObjectId | None] = dict(zip(oids, map(ends.get, entries)))  # None: a commit, tree or blob, unreadable, or not whole
    if _TOO_LONG in ends.values():
        for oid, end in result.items():
            if end is _TOO_LONG:
                result[oid] = None
                if too_long is not None:
                    too_long.add(oid)
    for oid in compress(oids, map(operator.is_, entries, repeat(_NOT_WHOLE))):  # a delta, a loose object, none
        known = _peeled.get(oid)
        try:
            result[oid] = known if known is not None else peel(store, oid, types, rests)
        except TagChainTooLong:
            result[oid] = None
            if too_long is not None:
                too_long.add(oid)
    for oid in [oid for oid, end in result.items() if end is None]:
        result[oid] = oid  # (itself, or a tag of a tag git cannot read: unpeeled)
    return cast(dict[ObjectId, ObjectId], result)


def _tag_ends(store: BaseObjectStore, types: StoredTypes | None, targets: set[bytes], rests: Rests
              ) -> dict[bytes | None, ObjectId | None]:
    """What each of ``targets`` (the objects tags name, hex) peels to, as ``_peel_readable`` answers
    for a chain of at most ``MAX_PEEL - 1`` tags more (``_TOO_LONG`` for a longer one): the packs'
    whole entries read a level of the chains at a time (``StoredTypes.whole_entries``: a pass over
    each index, a tag's first line alone), the others by ``_peel_readable``.  A mirror's 100,000
    tags of as many commits read each commit's entry one by one, and emptied ``peel``'s cache of
    them on the way.  The chains' ends are followed once however many targets one passes through
    (refs naming each tag of one chain): ``rests`` holds them for the request."""
    step: dict[bytes, bytes | None] = {}
    level = targets
    for _ in range(MAX_PEEL):
        if not level or types is None:
            break
        binary = _binaries(list(level))
        found = types.whole_entries(set(binary.values()) - {b""})
        check("the ref advertisement")
        step.update(zip(level, map(found.get, map(binary.__getitem__, level), repeat(_NOT_WHOLE))))
        level = {target for target in map(step.__getitem__, level) if target is not None and target is not _NOT_WHOLE
                 and target not in step}
    ends: dict[bytes | None, ObjectId | None] = {}
    for start in targets:
        target, path = start, cast(list[bytes], [])  # (the tags passed after the one that names ``start``)
        while True:
            known = rests.get(target)
            if known is not None:
                end, rest = known
                break
            nxt = step.get(target, _NOT_WHOLE)
            if nxt is None:  # a commit, a tree or a blob
                end, rest = ObjectId(target), 0
                break
            if nxt is _NOT_WHOLE:  # a delta, a loose object, none
                try:
                    reached = _peel_readable(store, ObjectId(target), types, MAX_PEEL - 1 - len(path), rests)
                except TagChainTooLong:
                    reached = _TOO_LONG
                if target in rests:  # (read to its end: remembered)
                    end, rest = rests[target]
                    break
                end, rest = ObjectId(target), -1  # (itself, unreadable, or too long: as it is)
                ends[start] = reached
                break
            path.append(target)
            if len(path) >= MAX_PEEL:
                end, rest = _TOO_LONG, -1
                ends[start] = _TOO_LONG
                break
            target = nxt
        if rest < 0:
            continue
        for at, tag in enumerate(path):
            rests[tag] = (end, len(path) - at + rest)
        ends[start] = end if len(path) + rest < MAX_PEEL else _TOO_LONG
    return ends


_TOO_LONG = ObjectId(b"!")
"""``_tag_ends``' answer for a chain of more than ``MAX_PEEL`` tags."""


_NOT_WHOLE = b"-"
"""``peel_many``'s mark of an id ``StoredTypes.whole_entries`` did not answer for."""


def _binaries(oids: Sequence[bytes]) -> dict[bytes, bytes]:
    """Each hex id's bytes (``_binary``), in one C-level pass when they are all hex of one length."""
    if oids and len({*map(len, oids)}) == 1:
        try:
            joined = binascii.unhexlify(b"".join(oids))
        except (binascii.Error, ValueError):
            pass
        else:
            size = len(oids[0]) // 2
            return dict(zip(oids, [joined[i:i + size] for i in range(0, len(joined), size)]))
    return {oid: _binary(oid) for oid in oids}


def _tag_target(store: BaseObjectStore, oid: bytes, raw: bytes) -> bytes | None:
    """The object the tag ``oid`` (read raw: ``raw``) names: its first line as git writes it, else
    dulwich's reading of the tag (which says what is wrong); None when dulwich reads no tag."""
    target = tag_object(raw, len(oid))
    if target is not None:
        return target
    tag = _lookup(store, oid)
    return tag.object[1] if isinstance(tag, Tag) else None


def _binary(oid: bytes) -> bytes:
    """A hex id's bytes; empty for what is no hex id (a broken ref's value: found in no index)."""
    try:
        return binascii.unhexlify(oid)
    except (binascii.Error, ValueError):
        return b""


def _lookup(store: BaseObjectStore, oid: bytes) -> ShaFile | None:
    try:
        return store[_dul(oid)]
    except KeyError:
        return None


def _dul(oid: bytes) -> ObjectID:
    """Our hex ObjectId as dulwich's hex ObjectID (both are the same hex: 40 digits, 64 in SHA-256)."""
    return ObjectID(oid)


def _duls(oids: Iterable[bytes]) -> list[ObjectID]:
    return [ObjectID(o) for o in oids]


def check_wants(store: BaseObjectStore, snapshot: RefSnapshot, wants: Iterable[ObjectId]) -> None:
    """Refuse wants we do not have; any reachable object may be wanted.

    We advertise allow-tip-sha1-in-want and allow-reachable-sha1-in-want.  Every
    object in the store counts as reachable (the backends keep no unreachable
    objects for long), so the check is presence — what git's ``not our ref`` guards.
    """
    tips = set(snapshot.refs.values()) | set(snapshot.peeled.values())
    # each distinct want looked up once, the first unknown one named: a client may name one object
    # that is no tip a quarter of a million times (a store look-up each: 2.4 s of server CPU)
    for oid in dict.fromkeys(wants):
        if oid not in tips and _dul(oid) not in store:
            raise ProtocolError(f"upload-pack: not our ref {oid.decode()}")


def is_ancestor(store: BaseObjectStore, old: ObjectId, new: ObjectId) -> bool:
    """True when commit ``old`` is reachable from commit ``new`` (blocking: walks the store)."""
    pending, seen = [new], {new}
    while pending and len(seen) < MAX_ANCESTRY_WALK:
        sha = pending.pop()
        if sha == old:
            return True
        commit = _lookup(store, sha)
        if commit is None:
            continue
        if not isinstance(commit, Commit):
            return False  # a tag or tree: never a fast-forward of a commit
        for parent in map(ObjectId, commit.parents):
            if parent not in seen:
                seen.add(parent)
                pending.append(parent)
    return False


class _CommitLinks:
    """What the walks of a fetch read of a commit: its id, parents and commit time."""

    __slots__ = ("commit_time", "id", "parents")

    def __init__(self, oid: bytes, parents: list[bytes], commit_time: int) -> None:
        self.id = oid
        self.parents = parents
        self.commit_time = commit_time


def _commit(store: BaseObjectStore, oid: bytes, read: tuple[int, bytes] | None = None,
            get_raw: Callable[[bytes], tuple[int, bytes]] | None = None) -> _CommitLinks | None:
    """The commit ``oid`` names (through annotated tags), read raw as git's ``parse_commit`` reads
    it: the header's parent lines and committer time, the rest not parsed (negotiation walks a
    fetch's new commits and reads each have; shallow requests walk from the wants).  A committer
    line without a readable time gives 0, as git's ``parse_commit_date``: a commit an old tool
    wrote with a date git's fsck faults is served, not an internal error.  None when there is
    no such commit.  ``read``: ``oid``'s type and raw text, when the caller read them already;
    ``get_raw``: what reads an object by its hex id (dulwich's store by default); one of
    ``_commit_reading``'s takes a commit its commit-graph holds from the graph, as git's
    ``parse_commit`` does, not reading it."""
    graph = getattr(get_raw, "graph", None) if read is None else None
    if graph is not None and (found := _graph_commit(graph, oid)) is not None:
        return found
    for _ in range(MAX_PEEL + 1):  # (the tags and what the last one names)
        if read is not None:
            type_num, raw = read
            read = None
        else:
            try:
                type_num, raw = get_raw(oid) if get_raw is not None else store.get_raw(_dul(oid))
            except KeyError:
                return None
        if type_num == Tag.type_num:
            target = _tag_target(store, oid, raw)
            if target is None:
                return None
            oid = target
            continue
        if type_num != Commit.type_num:
            return None
        end = raw.find(b"\n\n")
        parents: list[bytes] = []
        commit_time = 0
        hex_len = len(oid)
        for line in (raw if end < 0 else raw[:end]).split(b"\n"):
            if line.startswith(b"parent "):
                if len(line) == 7 + hex_len and LOWER_HEX.fullmatch(line, 7):
                    parents.append(line[7:])
            elif line.startswith(b"committer "):
                after = line[line.rfind(b">") + 1:].split(None, 1)
                if after and after[0].isdigit() and len(after[0]) < 20:
                    commit_time = int(after[0])
                break
        return _CommitLinks(oid, parents, commit_time)
    return None


def _graph_of(store: BaseObjectStore) -> CommitGraph | None:
    """The store's commit-graph (``backends.git_commitgraph``), if it has one that is read
    (``core.commitGraph`` not false)."""
    if not isinstance(store, DiskObjectStore):
        return None
    return store_commit_graph(store, os.fspath(store.path), object_format_of(store).raw_len)


def _graph_commit(graph: CommitGraph | None, oid: bytes) -> _CommitLinks | None:
    """``_commit`` of a commit the graph holds, from the graph (None when it does not hold it)."""
    pos = graph.position_of(oid) if graph is not None else None
    if pos is None:
        return None
    assert graph is not None
    parents = graph.parents_at(pos)  # (its tree is not needed: not made a hex name)
    return None if parents is None else _CommitLinks(oid, [graph.name_at(p) for p in parents], graph.time_at(pos))


MAX_NEGOTIATION_COMMITS = 200_000
"""Commits a negotiation keeps read (about 250 bytes each: 50 MB at most); past that the walks
read the others each time they meet them."""


def stored_among(store: BaseObjectStore, oids: Sequence[ObjectId]) -> set[ObjectId] | None:
    """Which of ``oids`` the store holds, every pack directory (the store's, those it borrows from)
    listed once and each index looked in once for all of them, then a loose file's ``stat`` for
    those not packed; None when the store is not on disk or a pack is one only dulwich reads (ask
    it then).  A have the client sends is most often one the server lacks (a rewritten history, a
    fork's own work): dulwich looks for each missing object in its packs, the multi-pack index,
    its loose file and its alternates, and lists the pack directory again: 3,200 haves of a
    rewritten history spent most of a v0 fetch's negotiation there."""
    if not isinstance(store, DiskObjectStore) or not oids:
        return None
    raw_len = object_format_of(store).raw_len
    by_name: dict[bytes, ObjectId] = {}
    for oid in oids:
        if len(oid) == 2 * raw_len and LOWER_HEX.fullmatch(oid):
            by_name[binascii.unhexlify(oid)] = oid
    found: set[ObjectId] = set()
    directories = pack_dirs(store)
    for directory in directories:
        remaining = by_name.keys() - {binascii.unhexlify(oid) for oid in found}
        if not remaining:
            break
        packs = MappedPacks(directory, raw_len)
        try:
            for _path, names, _offsets in packs.find_many(set(remaining), rescan=True):
                found.update(by_name[name] for name in names)
            if not packs.complete:
                return None
        finally:
            packs.close()
    for oid in by_name.values():
        if oid not in found:
            hexname = oid.decode("ascii")
            if any(os.path.isfile(os.path.join(os.path.dirname(directory), hexname[:2], hexname[2:]))
                   for directory in directories):
                found.add(oid)
    return found


class Negotiator:
    """The server's memory of one negotiation: what the client has, and whether we can stop.

    Mirrors git's THEY_HAVE marks (a have and its parents) and ``ok_to_give_up``:
    every wanted commit reaches a THEY_HAVE commit, walking no older than the
    oldest have.
    """

    def __init__(self, store: BaseObjectStore, wants: Sequence[ObjectId]) -> None:
        self._store = store
        self._wants = wants
        self._uncovered: set[bytes] | None = None
        """The wanted commits not yet known to reach a have: read at the first question, when the
        client has something in common (a partial clone's checkout wants thousands of blobs and
        sends no have: none of them is read here)."""
        self._they_have: set[bytes] = set()
        self._oldest_have: int | None = None
        self.common: list[ObjectId] = []
        self._seen_common: set[ObjectId] = set()
        self._answer: bool | None = None  # ok_to_give_up, valid until THEY_HAVE grows
        self._read: dict[bytes, _CommitLinks | None] = {}
        self._graph: CommitGraph | None | bool = False
        """The store's commit-graph (False until looked for): the parents and time of a commit it
        holds, not read (a have the store holds, a commit the walks of ``ok_to_give_up`` meet, as
        git's parse_commit takes them from it)."""
        self._reader: PackObjectReader | None = None
        """The store's packs read through their cached index views while a round or a question
        runs (``_reading``), closed after it: dulwich's ``get_raw`` looked for a multi-pack index
        (a ``stat``) and went through its own pack list for each commit a fetch's walk read."""

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        if self._reader is not None or not isinstance(self._store, DiskObjectStore):
            yield
            return
        self._reader = PackObjectReader(self._store, store_views(self._store))
        try:
            yield
        finally:
            reader, self._reader = self._reader, None
            reader.close()

    def _get_raw(self, oid: bytes) -> tuple[int, bytes]:
        """``oid``'s type and raw text, through the round's reader when there is one (KeyError when
        the store lacks it; a pack the reader finds damaged is left to dulwich, which says how)."""
        if self._reader is not None:
            with contextlib.suppress(CorruptPack):
                return self._reader.read(oid)
        return self._store.get_raw(_dul(oid))

    def negotiate(self, haves: Sequence[ObjectId], readiness: bool) -> Negotiation:
        """Answer one round of haves (and, if asked, ``ready`` for each miss and at the end)."""
        with self._reading():
            verdicts = []
            stored = stored_among(self._store, haves)
            for oid in haves:
                common = (stored is None or oid in stored) and self._add_have(oid, stored is not None)
                ready = readiness and not common and self.ok_to_give_up()
                verdicts.append(HaveVerdict(oid, common, ready))
            return Negotiation(tuple(verdicts), readiness and self.ok_to_give_up())

    def _commit_graph(self) -> CommitGraph | None:
        if self._graph is False:
            self._graph = _graph_of(self._store)
        return self._graph if isinstance(self._graph, CommitGraph) else None

    def _add_have(self, oid: ObjectId, stored: bool = False) -> bool:
        """``stored``: the store is known to hold ``oid`` (then a commit the graph holds is not read)."""
        commit = _graph_commit(self._commit_graph(), oid) if stored else None
        if commit is not None:
            if oid not in self._seen_common:
                self._seen_common.add(oid)
                self.common.append(oid)
            self._mark_they_have(commit)
            return True
        try:
            read = self._get_raw(oid)
        except KeyError:
            return False
        if oid not in self._seen_common:
            self._seen_common.add(oid)
            self.common.append(oid)
        if read[0] == Commit.type_num:
            commit = _commit(self._store, oid, read, self._get_raw)
            if commit is not None:
                self._mark_they_have(commit)
        return True

    def _mark_they_have(self, commit: _CommitLinks) -> None:
        before = len(self._they_have)
        self._they_have.add(commit.id)
        self._they_have.update(commit.parents)
        if self._oldest_have is None or commit.commit_time < self._oldest_have:
            self._oldest_have = commit.commit_time
            self._answer = None
        if len(self._they_have) != before:
            self._answer = None

    def ok_to_give_up(self) -> bool:
        """Whether every want reaches something the client has (git's ok_to_give_up)."""
        if not self.common:
            return False
        if self._answer is None:
            with self._reading():
                if self._uncovered is None:
                    self._uncovered = {c.id for w in self._wants
                                       if (c := _commit(self._store, w, get_raw=self._get_raw)) is not None}
                dead: set[bytes] = set()
                self._uncovered = {w for w in self._uncovered if not self._reaches_they_have(w, dead)}
                self._answer = not self._uncovered
        return self._answer

    def _reaches_they_have(self, start: bytes, dead: set[bytes]) -> bool:
        """Whether ``start`` reaches a THEY_HAVE commit, walking no older than the oldest have.
        ``dead``: the commits an earlier walk of the same question went through without finding
        one, which cannot lead to one now either (what a commit reaches depends on it alone while
        THEY_HAVE and the oldest have stay): this walk skips them, and adds its own when it fails.
        The wanted tips of a rewritten history share their commits, none of which the client has:
        each walked all of them again (200 branches over 3,000 commits took 112 s of a v0 fetch)."""
        cutoff = self._oldest_have or 0
        if start in dead:
            return False
        queue, seen = deque([start]), {start}
        while queue:
            oid = queue.popleft()
            if oid in self._they_have:
                return True
            commit = self._links(oid)
            if commit is None or commit.commit_time < cutoff:
                continue
            for parent in commit.parents:
                if parent not in seen and parent not in dead:
                    seen.add(parent)
                    queue.append(parent)
        dead |= seen
        return False

    def _links(self, oid: bytes) -> _CommitLinks | None:
        """``_commit`` of ``oid``, read once per negotiation (the walks of each round go over the
        same commits again), up to ``MAX_NEGOTIATION_COMMITS`` of them kept."""
        if oid in self._read:
            return self._read[oid]
        commit = _graph_commit(self._commit_graph(), oid) or _commit(self._store, oid, get_raw=self._get_raw)
        if len(self._read) < MAX_NEGOTIATION_COMMITS:
            self._read[oid] = commit
        return commit


@dataclass(frozen=True, slots=True)
class ShallowPlan:
    """The answer to a shallow/deepen request, and how it shapes the pack.

    ``shallow``/``unshallow`` are sent to the client; ``boundary`` is where the
    pack walk stops (the client's and the new shallow commits); ``extra_wants``
    are the parents of unshallowed commits, whose history the client now needs.
    The unshallowed commits themselves, and their trees, the client has: the pack
    leaves them out (``PackPlan.known``), as git's upload-pack gives them to
    pack-objects among what the client has (its "extra edges").
    """

    shallow: tuple[ObjectId, ...] = ()
    unshallow: tuple[ObjectId, ...] = ()
    boundary: frozenset[ObjectId] = frozenset()
    extra_wants: tuple[ObjectId, ...] = ()


def plan_shallow(store: BaseObjectStore, request: FetchRequest, refs: Mapping[bytes, ObjectId],
                 peeled: Mapping[bytes, ObjectId] | None = None,
                 hidden: Mapping[bytes, ObjectId] | None = None) -> ShallowPlan:
    """Compute the shallow/unshallow lines and the pack boundary for a FetchRequest.

    ``refs``: the refs advertised (the client's shallow commits a deepen-relative request deepens
    are those they reach, ``reachable_shallows``); ``peeled``: what their annotated tags peel to
    (``RefSnapshot.peeled``); ``hidden``: hidden refs whose tips reach them too (git's upload-pack
    with ``uploadpack.allowTipSHA1InWant`` or ``allowReachableSHA1InWant``)."""
    if not request.shallows and not request.deepen:
        return ShallowPlan()
    with _commit_reading(store) as get_raw:
        links = _shallow_links(store, request.shallows, get_raw)
        client_shallow = list(links)
        if not request.deepen:
            return ShallowPlan(boundary=frozenset(client_shallow))
        if request.depth:
            result, not_shallow = _by_depth(store, request, links, {**refs, **hidden} if hidden else refs, peeled,
                                            get_raw)
        else:
            result, not_shallow = _by_rev_list(store, request, refs, get_raw)
    known = set(client_shallow)
    shallow = tuple(s for s in result if s not in known and s not in not_shallow)
    unshallow = tuple(s for s in client_shallow if s in not_shallow)
    # (their parents as read above: 10,000 unshallowed commits were each read again, 0.3 s)
    extra = tuple(dict.fromkeys(ObjectId(p) for s in unshallow for p in links[s].parents))
    return ShallowPlan(shallow, unshallow, frozenset(shallow) | known, extra)


def _shallow_links(store: BaseObjectStore, shallows: Iterable[ObjectId],
                   get_raw: Callable[[bytes], tuple[int, bytes]]) -> dict[ObjectId, _CommitLinks]:
    """The commits the client's ``shallow`` lines name, as git's upload-pack takes them: one the
    repository lacks is passed over; one that is no commit (a tag, a tree, a blob) ends the request,
    ``invalid shallow object <id>`` (hgwire used a tag's commit and ignored the others)."""
    links: dict[ObjectId, _CommitLinks] = {}
    shallows = list(dict.fromkeys(shallows))
    # (a commit the store holds and its commit-graph has: taken from the graph, not read)
    graph = _graph_of(store) if shallows else None
    stored = stored_among(store, shallows) if graph is not None else None
    for oid in shallows:
        commit = _graph_commit(graph, oid) if stored is not None and oid in stored else None
        if commit is not None:
            links[oid] = commit
            continue
        try:
            read = get_raw(oid)
        except KeyError:
            continue
        if read[0] != Commit.type_num:
            raise ProtocolError(f"invalid shallow object {oid.decode()}")
        commit = _commit(store, oid, read=read, get_raw=get_raw)
        if commit is not None:
            links[oid] = commit
    return links


def check_shallows(store: BaseObjectStore, shallows: Sequence[ObjectId]) -> None:
    """Refuse a request whose ``shallow`` lines name an object that is no commit (``_shallow_links``),
    where no boundary is planned: a protocol v2 round of haves answered without a pack."""
    if shallows:
        with _commit_reading(store) as get_raw:
            _shallow_links(store, shallows, get_raw)


def _parents(store: BaseObjectStore, oid: bytes,
             get_raw: Callable[[bytes], tuple[int, bytes]] | None = None) -> list[bytes]:
    commit = _commit(store, oid, get_raw=get_raw)
    return list(commit.parents) if commit is not None else []


@contextlib.contextmanager
def _commit_reading(store: BaseObjectStore) -> Iterator[Callable[[bytes], tuple[int, bytes]]]:
    """What reads objects by hex id while a shallow request is planned: the store's packs through
    their cached index views (``Negotiator._reading``), dulwich's ``get_raw`` off disk."""
    if not isinstance(store, DiskObjectStore):
        yield lambda oid: store.get_raw(_dul(oid))
        return
    reader = PackObjectReader(store, store_views(store))

    def read(oid: bytes) -> tuple[int, bytes]:
        with contextlib.suppress(CorruptPack):  # (a damaged pack is left to dulwich, which says how)
            return reader.read(oid)
        return store.get_raw(_dul(oid))

    try:
        yield _CommitReads(read, _graph_of(store))
    finally:
        reader.close()


class _CommitReads:
    """``_commit_reading``'s reads by hex id, with the store's commit-graph (``graph``), from which
    ``_commit`` takes the commits it holds: a ``--shallow-exclude`` walked every commit below the
    ref it names, each inflated through dulwich (42,000 commits: 2.2 s of server CPU, git daemon
    0.27), as did ``--shallow-since`` and ``--depth`` the commits they select."""

    __slots__ = ("_read", "graph")

    def __init__(self, read: Callable[[bytes], tuple[int, bytes]], graph: CommitGraph | None) -> None:
        self._read = read
        self.graph = graph

    def __call__(self, oid: bytes) -> tuple[int, bytes]:
        return self._read(oid)


def _by_depth(
    store: BaseObjectStore, request: FetchRequest, links: Mapping[ObjectId, _CommitLinks],
    refs: Mapping[bytes, ObjectId], peeled: Mapping[bytes, ObjectId] | None,
    get_raw: Callable[[bytes], tuple[int, bytes]] | None = None,
) -> tuple[list[ObjectId], set[ObjectId]]:
    if request.depth >= INFINITE_DEPTH:
        return [], set(links)
    if request.deepen_relative:
        reached = reachable_shallows(store, links, refs, get_raw, peeled)
        return shallow_commits(store, [s for s in links if s in reached], request.depth + 1, get_raw)
    return shallow_commits(store, request.wants, request.depth, get_raw)


SHALLOW_REACH_SLOP = 5
"""Commits of the refs' side older than the shallow commits' side that ``reachable_shallows`` still
takes before it stops (a commit dated before its parent, as git's rev-list allows its walk)."""


def reachable_shallows(store: BaseObjectStore, shallows: Mapping[ObjectId, _CommitLinks],
                       refs: Mapping[bytes, ObjectId],
                       get_raw: Callable[[bytes], tuple[int, bytes]] | None = None,
                       peeled: Mapping[bytes, ObjectId] | None = None) -> set[ObjectId]:
    """The client's shallow commits (``shallows``: each name's commit, ``_commit``) that some ref
    reaches: those a deepen-relative request (``git fetch --deepen``) deepens, as git's upload-pack
    takes them (``get_reachable_list``).  The shallow commit of a branch deleted since the client
    fetched it is reached by no ref and stays where it is.

    The refs' history and the shallow commits' own are walked newest first, as git's rev-list of
    the shallow commits less the refs, until every shallow commit is reached, or nothing of the
    shallow commits' side is waiting and the refs' side has gone older than it (with some slop for
    clocks): a clone's shallow commits, a little below its tips, cost that little walk; a shallow
    commit no ref reaches costs the commits newer than where its history meets the refs'.  A
    shallow commit dated after its children is still reached from them (a walk of the refs alone
    stopped a few commits older than it).  Each commit is read once.  Where the store has a pack
    bitmap (``git_fastpack``'s, kept between requests), a commit with one is not walked below: its
    bitmap says which shallow commits it reaches, and a commit of the shallow side it reaches is
    not read (10,000 shallow lines over a history of 50,000 commits: 0.38 s walked, git's rev-list
    0.09-0.12, its tip's bitmap 0.01).  ``peeled``: what the refs' annotated tags peel to, by name
    (``RefSnapshot.peeled``), else as ``peel`` remembers them: a tip a bitmap covers is not read."""
    tips = set(refs.values())
    pending = {link.id: name for name, link in shallows.items() if name not in tips and link.id not in tips}
    reached = set(shallows) - set(pending.values())
    if not pending:
        return reached
    peeled_tips = {(peeled or {}).get(name) or _peeled.get(oid, oid) for name, oid in refs.items()}
    for commit in pending.keys() & peeled_tips:  # (a tag's commit)
        reached.add(pending.pop(commit))
    if not pending:
        return reached
    covered = _Covered.of(store)
    unread = list(peeled_tips)
    if covered is not None:
        # the tips a bitmap covers first, none of them read (the advertisement peeled the tags):
        # 20,000 tags were each read for one shallow commit below a branch tip, 0.33 s a fetch
        for _ in range(2):  # (those with a bitmap of their own, then those those cover)
            unread = [tip for tip in unread if not covered.take(tip)]
        covered.settle(pending, reached)
        if not pending:
            return reached
    # Two sides, as git's rev-list of the shallow commits less the refs: the refs' history
    # ("down", what they reach) and the shallow commits' own ("up" until the refs' side gets
    # there).  The walk goes on while an "up" commit waits in the queue, so a shallow commit
    # dated after its children (a clock ahead, imported history) is still reached from them: a
    # walk of the refs alone stopped a few commits older than it and took it as not reached.
    links: dict[bytes, _CommitLinks] = {}
    down: set[bytes] = set()
    queued: set[bytes] = set()
    queue: list[tuple[int, bytes]] = []
    up_queued = 0

    def paint(oid: bytes) -> None:  # (down, with every commit read below it: git's mark_parents_uninteresting)
        nonlocal up_queued
        stack = [oid]
        while stack:
            commit = stack.pop()
            if commit in down:
                continue
            down.add(commit)
            name = pending.pop(commit, None)
            if name is not None:
                reached.add(name)
            if commit in queued:
                up_queued -= 1
            stack.extend(p for p in links[commit].parents if p in links)

    def push(link: _CommitLinks, is_down: bool) -> None:
        nonlocal up_queued
        links[link.id] = link
        if is_down:
            down.add(link.id)
            if (name := pending.pop(link.id, None)) is not None:
                reached.add(name)  # (a tag's commit, when the tag's peeled id was not known)
        else:
            up_queued += 1
        queued.add(link.id)
        heapq.heappush(queue, (-link.commit_time, link.id))

    for tip in unread:
        link = _commit(store, tip, get_raw=get_raw)
        if link is not None and link.id not in links:
            push(link, True)
    for commit in pending:
        if commit not in links:
            push(shallows[pending[commit]], False)
    slop = SHALLOW_REACH_SLOP
    last_up_time: float = float("inf")
    steps = 0
    while queue and pending:
        steps += 1
        if not steps % CHECK_EVERY:
            check("the shallow boundary")
        negative_time, oid = heapq.heappop(queue)
        queued.discard(oid)
        if oid not in down:
            up_queued -= 1
            if covered is not None and covered.covers(oid):
                paint(oid)  # (a bitmap taken reaches it, and all below it)
                continue
            last_up_time = -negative_time
            for parent in links[oid].parents:
                if parent in links or (covered is not None and covered.covers(parent)):
                    continue  # (a bitmap taken reaches it: not read)
                if (parent_link := _commit(store, parent, get_raw=get_raw)) is not None:
                    push(parent_link, False)
            continue
        if covered is None or not covered.take(oid):  # (with a bitmap: all it reaches is covered)
            for parent in links[oid].parents:
                if parent in links:
                    paint(parent)
                elif (parent_link := _commit(store, parent, get_raw=get_raw)) is not None:
                    push(parent_link, True)
        elif up_queued == 0:
            covered.settle(pending, reached)
        # (git's still_interesting: the walk ends a few commits after nothing of the shallow
        # commits' side is waiting and the refs' side has gone older than that side's last)
        if up_queued or (queue and -queue[0][0] >= last_up_time):
            slop = SHALLOW_REACH_SLOP
        else:
            slop -= 1
            if not slop:
                break
    if covered is not None:
        covered.settle(pending, reached)
    return reached


class _Covered:
    """The commits the bitmaps taken by ``reachable_shallows`` reach, over the store's bitmapped pack."""

    def __init__(self, bitmap: PackBitmap) -> None:
        self._bitmap = bitmap
        self._view = bitmap.view
        self._view.make_names_order()  # (the deepen's pack names bases: its order made once, not sorted twice)
        self._marks = bytearray(len(bitmap.view) // 8 + 1)
        self._new = False
        """Whether a bitmap was taken since ``settle`` last looked."""

    @classmethod
    def of(cls, store: BaseObjectStore) -> _Covered | None:
        bitmap = git_fastpack.pack_bitmap(store)
        return cls(bitmap) if bitmap is not None else None

    def _pos(self, oid: bytes) -> int | None:
        return self._view.position(binascii.unhexlify(oid))

    def covers(self, oid: bytes) -> bool:
        """Whether a bitmap taken reaches ``oid`` (none is looked up for it)."""
        pos = self._pos(oid)
        return pos is not None and bool(self._marks[pos >> 3] >> (pos & 7) & 1)

    def take(self, oid: bytes) -> bool:
        """True if everything ``oid`` reaches is covered now: it was, or it has a bitmap, taken."""
        pos = self._pos(oid)
        if pos is None:
            return False
        marks = self._marks
        if marks[pos >> 3] >> (pos & 7) & 1:
            return True
        try:
            bits = self._bitmap.bitmap(binascii.unhexlify(oid))
        except BitmapError:
            bits = None
        if bits is None:
            return False
        marks[:] = (int.from_bytes(marks, "little") | bits).to_bytes(len(marks), "little")
        self._new = True
        return True

    def settle(self, pending: dict[bytes, ObjectId], reached: set[ObjectId]) -> None:
        """Move the ``pending`` commits the bitmaps taken reach to ``reached``."""
        if not self._new:
            return
        self._new = False
        marks = self._marks
        for oid in list(pending):
            pos = self._pos(oid)
            if pos is not None and marks[pos >> 3] >> (pos & 7) & 1:
                reached.add(pending.pop(oid))


def shallow_commits(
    store: BaseObjectStore, heads: Iterable[ObjectId], depth: int,
    get_raw: Callable[[bytes], tuple[int, bytes]] | None = None,
) -> tuple[list[ObjectId], set[ObjectId]]:
    """Commits at exactly ``depth`` (the heads are depth 1) by shortest path, and those above.

    git's ``get_shallow_commits``: a commit is NOT_SHALLOW when some path from a
    head reaches it within depth-1 steps; the shallow ones sit at the boundary.
    A commit the commit-graph holds (``_CommitReads.graph``) is walked by its position there,
    its parents those the graph names, made hex names only at the end (a deepen of 10,000
    shallow commits looked each up twice and made each parent a name: 0.11 s).
    """
    graph = getattr(get_raw, "graph", None)
    walk = _GraphWalk(store, graph, get_raw)
    distance: dict[int | bytes, int] = {}
    queue: deque[int | bytes] = deque()
    for head in heads:
        node = walk.head(head)
        if node is not None and node not in distance:
            distance[node] = 1
            queue.append(node)
    shallow: list[int | bytes] = []
    while queue:
        node = queue.popleft()
        if distance[node] >= depth:
            shallow.append(node)
            continue
        for parent in walk.parents(node):
            if parent not in distance:
                distance[parent] = distance[node] + 1
                queue.append(parent)
    inner = {walk.name(n) for n, d in distance.items() if d < depth}
    return [name for name in map(walk.name, shallow) if name not in inner], inner


class _GraphWalk:
    """The commits of a walk by position in the commit-graph where it holds them (an ``int``), by
    hex name elsewhere (``bytes``: one written since the graph, or a store without one): every
    commit the graph holds is its position, so a commit is one node whichever way it is met."""

    __slots__ = ("_get_raw", "_graph", "_store")

    def __init__(self, store: BaseObjectStore, graph: CommitGraph | None,
                 get_raw: Callable[[bytes], tuple[int, bytes]] | None) -> None:
        self._store = store
        self._graph = graph
        self._get_raw = get_raw

    def head(self, oid: bytes) -> int | bytes | None:
        """The node of the commit ``oid`` names (through tags); None when it names no commit."""
        pos = self._graph.position_of(oid) if self._graph is not None else None
        if pos is not None:
            return pos
        commit = _commit(self._store, oid, get_raw=self._get_raw)
        return None if commit is None else self._node(commit.id)

    def parents(self, node: int | bytes) -> list[int | bytes]:
        if isinstance(node, int):
            assert self._graph is not None
            found = self._graph.parents_at(node)
            if found is not None:
                return list(found)
        return [self._node(p) for p in _parents(self._store, self.name(node), self._get_raw)]

    def name(self, node: int | bytes) -> ObjectId:
        if isinstance(node, int):
            assert self._graph is not None
            return ObjectId(self._graph.name_at(node))
        return ObjectId(node)

    def _node(self, oid: bytes) -> int | bytes:
        pos = self._graph.position_of(oid) if self._graph is not None else None
        return oid if pos is None else pos


def _by_rev_list(
    store: BaseObjectStore, request: FetchRequest, refs: Mapping[bytes, ObjectId],
    get_raw: Callable[[bytes], tuple[int, bytes]] | None = None,
) -> tuple[list[ObjectId], set[ObjectId]]:
    """deepen-since / deepen-not: the commits ``rev-list --max-age=T wants ^not`` selects.

    git's ``get_shallow_commits_by_rev_list``: included commits with a parent
    outside the selection become the new shallow boundary; the other included
    commits are NOT_SHALLOW (so a client's old boundary among them is lifted).
    """
    since = request.deepen_since
    if request.deepen_not:
        excluded = [_resolve_ref(refs, name) for name in request.deepen_not]
        included = _limited_rev_list(store, request.wants, excluded, since, get_raw)
    else:
        included = {}  # (each one's parents: a commit read once)
        queue: deque[bytes] = deque(c.id for w in request.wants
                                    if (c := _commit(store, w, get_raw=get_raw)) is not None)
        while queue:
            oid = ObjectId(queue.popleft())
            if oid in included:
                continue
            commit = _commit(store, oid, get_raw=get_raw)
            if commit is None or (since is not None and commit.commit_time < since):
                continue
            included[oid] = commit.parents
            queue.extend(commit.parents)
    if not included:
        raise ProtocolError("no commits selected for shallow requests")
    result = [c for c, parents in included.items() if any(p not in included for p in parents)]
    return result, included.keys() - set(result)


REV_LIST_SLOP = 5
"""Commits a limited walk (``_limited_rev_list``) takes once only excluded ones wait, as git's
``still_interesting`` (its ``SLOP``)."""


def _limited_rev_list(store: BaseObjectStore, wants: Iterable[bytes], excluded: Iterable[bytes],
                      since: int | None, get_raw: Callable[[bytes], tuple[int, bytes]] | None
                      ) -> dict[ObjectId, list[bytes]]:
    """The commits ``git rev-list [--max-age=since] WANTS --not EXCLUDED`` lists, each with its
    parents, walked as git's ``limit_list`` walks them: newest first, an excluded commit (or one
    older than ``since``) marking what it reaches excluded, and the walk ending a few commits
    (``REV_LIST_SLOP``) after only excluded ones wait and they are older than the last one listed.
    A ``--shallow-exclude`` of a branch 8,000 commits below the tip walked all 34,000 commits
    below that branch (0.1 s of 0.13 with a commit-graph, as many commits read without one); git
    stops where the two histories meet."""
    links: dict[bytes, _CommitLinks] = {}
    bad: set[bytes] = set()
    queue: list[tuple[int, int, bytes]] = []
    order = count()

    def read(oid: bytes) -> _CommitLinks | None:
        link = links.get(oid)
        if link is None and (link := _commit(store, oid, get_raw=get_raw)) is not None:
            links[link.id] = link
        return link

    def mark_below(link: _CommitLinks) -> None:  # (git's mark_parents_uninteresting)
        stack = list(link.parents)
        while stack:
            oid = stack.pop()
            if oid not in bad:
                bad.add(oid)
                if oid in links:
                    stack.extend(links[oid].parents)

    def push(link: _CommitLinks) -> None:
        heapq.heappush(queue, (-link.commit_time, next(order), link.id))

    tips: set[bytes] = set()
    for tip, is_bad in [*((w, False) for w in wants), *((x, True) for x in excluded)]:
        link = read(tip)
        if link is None:
            continue
        if is_bad:
            bad.add(link.id)
            mark_below(link)
        if link.id not in tips:
            tips.add(link.id)
            push(link)
    listed: dict[ObjectId, list[bytes]] = {}
    last_listed: float = float("inf")
    slop = REV_LIST_SLOP
    steps = 0
    while queue:
        steps += 1
        if not steps % CHECK_EVERY:
            check("the shallow boundary")
        _, _, oid = heapq.heappop(queue)
        link = links[oid]
        if since is not None and link.commit_time < since:
            bad.add(oid)
        is_bad = oid in bad
        for parent in link.parents:
            seen = parent in links
            if is_bad:
                bad.add(parent)
            parent_link = read(parent)
            if parent_link is None:
                continue
            if is_bad:
                mark_below(parent_link)
            if not seen:
                push(parent_link)
        if is_bad:
            mark_below(link)
            # (git's still_interesting: go on while a listed commit is older than what waits,
            # or something not excluded waits; else a few more)
            if not queue:
                break
            if last_listed <= -queue[0][0] or any(item[2] not in bad for item in queue):
                slop = REV_LIST_SLOP
            else:
                slop -= 1
                if not slop:
                    break
            continue
        last_listed = link.commit_time
        listed[ObjectId(oid)] = link.parents
    return {oid: parents for oid, parents in listed.items() if oid not in bad}


def check_deepen_not(request: FetchRequest, refs: Mapping[bytes, ObjectId]) -> None:
    """Refuse a ``deepen-not`` that names no ref, as git's upload-pack refuses it on reading the
    request: in protocol v2 a round of haves answered without a pack too (``plan_shallow`` is left
    to the round that sends one)."""
    for name in request.deepen_not:
        _resolve_ref(refs, name)


def _resolve_ref(refs: Mapping[bytes, ObjectId], name: bytes) -> ObjectId:
    for candidate in (name, b"refs/" + name, b"refs/heads/" + name, b"refs/tags/" + name):
        if candidate in refs:
            return refs[candidate]
    raise ProtocolError(f"git upload-pack: ambiguous deepen-not: {name.decode('utf-8', 'replace')}")


def object_sizes(store: BaseObjectStore, oids: Sequence[ObjectId]) -> list[tuple[ObjectId, int | None]]:
    """Sizes of the objects for v2 ``object-info``; None for an object the store does not hold (git's
    upload-pack answers it with an empty size)."""
    from backends.git_objects import size_reader

    sizes: list[tuple[ObjectId, int | None]] = []
    with size_reader(store) as reader:
        for oid in oids:
            try:
                sizes.append((oid, reader.size_of(_dul(oid))))
            except KeyError:
                sizes.append((oid, None))
    return sizes


@dataclass(frozen=True, slots=True)
class PackPlan:
    """Everything ``generate_pack`` needs, decided before the first byte is sent."""

    wants: tuple[ObjectId, ...]
    common: tuple[ObjectId, ...]
    shallow: ShallowPlan
    thin: bool
    ofs_delta: bool
    include_tag: bool
    blob_limit: int | None = None
    """Partial clone (``filter=blob:…``): omit blobs of this size or larger (-1: every blob) unless wanted."""
    tree_depth: int | None = None
    """Partial clone (``filter=tree:<depth>``): omit trees and blobs this deep or deeper unless wanted."""
    object_types: frozenset[int] | None = None
    """Partial clone (``filter=object:type=``): omit objects of other types unless wanted."""
    use_bitmaps: bool = True
    """``pack.useBitmaps`` (``UploadSettings``): False counts by walking, bitmaps or not, as git does."""
    abandoned: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    """Whether nobody waits for the pack any more (its client went away): the counting asks it
    and stops (``git_reach.WalkAbandoned``); not part of what the pack is."""

    @property
    def known(self) -> tuple[ObjectId, ...]:
        """The commits the client has whose objects the pack leaves out: the common commits and
        the client's shallow commits this fetch unshallows (each with its whole tree, which a
        shallow commit's holder has; ``git fetch --unshallow`` after a shallow fetch of another
        branch got that branch's files again).  (A set of the common ones to look in: a fetch of
        10,000 shallow lines and as many haves compared each with each, 100 million times.)"""
        if not self.shallow.unshallow:
            return self.common
        common = set(self.common)
        return (*self.common, *(s for s in self.shallow.unshallow if s not in common))

    @property
    def filtered(self) -> bool:
        """Whether a partial-clone filter leaves objects out."""
        return self.blob_limit is not None or self.tree_depth is not None or self.object_types is not None


class _WithoutBitmaps:
    """The object store as ``MissingObjectFinder`` sees it, walking the graph instead of using bitmaps.

    dulwich 1.2.21's bitmap reachability raises FileNotFoundError when one pack
    has a ``.bitmap`` and another has none -- the usual state of a repository
    after a push to a bitmapped one.  Bitmaps are ``git_fastpack``'s business;
    this generic path serves what the fast path declines and needs correctness.
    """

    def __init__(self, store: BaseObjectStore, symlinks: set[bytes] | None = None,
                 abandoned: Callable[[], bool] | None = None) -> None:
        """``abandoned`` (``PackPlan.abandoned``): asked every ``ABANDON_CHECK`` objects the walk
        reads or commits whose parents it takes from the commit-graph, the haves' walk included;
        True stops it with ``WalkAbandoned``."""
        self._store = store
        self.symlinks = symlinks
        """When a set: the ids of the symbolic links' blobs of every tree the walk reads (its hint
        calls them trees)."""
        self.watched = _Watched(store, abandoned)
        """The store's reads as steps of the walk (the filters' passes after it read through it too)."""

    def get_reachability_provider(self, prefer_bitmaps: bool = True) -> Any:
        # (what dulwich's stores give without bitmaps, over the watched reads)
        return _HavesInPart(self.watched)  # type: ignore[arg-type]

    def get_commit_graph(self) -> Any:
        return self.watched.get_commit_graph()

    def __getitem__(self, sha: bytes) -> Any:
        obj = self.watched[sha]
        if self.symlinks is not None and isinstance(obj, Tree) and b"120000 " in obj.as_raw_string():
            self.symlinks.update(bytes(child) for _name, mode, child in obj.iteritems() if stat.S_ISLNK(mode))
        return obj

    def __contains__(self, sha: bytes) -> bool:
        return sha in self._store  # type: ignore[operator]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _TagAsGitReadsIt(Tag):
    """A tag whose ``object`` line names its object in capital hex (another tool's; ``git fsck``
    passes it), naming it in lower case as git reads it: dulwich's walk and the filters' passes
    (``_Watched``'s reads) looked the capital id up, a missing object or a checksum mismatch, and
    the fetch failed "internal error".  Its id and raw text are the tag's own."""

    __slots__ = ()

    @classmethod
    def of(cls, tag: Tag) -> ShaFile:
        lowered = tag.copy()
        lowered.__class__ = cls
        return lowered

    @property  # type: ignore[misc]  # (read only)
    def object(self) -> tuple[type[ShaFile], ObjectID]:
        kind, target = Tag.object.fget(self)  # type: ignore[attr-defined]
        return kind, ObjectID(target.lower())


class _HavesInPart(GraphTraversalReachability):
    """dulwich's graph walk, whose walk of the client's haves (``get_reachable_commits``: what
    ``MissingObjectFinder`` asks of the haves alone) passes over a parent the store lacks, as git's
    walk of what a client has does: a branch reset and ``git repack -adb`` leave the old tip's loose
    commits above a packed one that is gone, and a client holding them names them as haves."""

    def get_reachable_commits(self, heads: Iterable[ObjectID], exclude: Iterable[ObjectID] | None = None,
                              shallow: Iterable[ObjectID] | None = None) -> set[ObjectID]:
        excluded = frozenset(exclude or ())
        boundary = frozenset(shallow or ())
        graph = self.store.get_commit_graph()
        reached: set[ObjectID] = set()
        todo = [sha for sha in heads if sha not in excluded]
        while todo:
            sha = todo.pop()
            if sha in reached:
                continue
            parents = graph.get_parents(sha) if graph is not None else None
            if parents is None:
                try:
                    commit = self.store[sha]
                except KeyError:
                    continue  # (not reached: no want's walk may stop at a commit that is not there)
                parents = commit.parents if isinstance(commit, Commit) else []
            reached.add(sha)
            if sha not in boundary:
                todo.extend(parent for parent in parents if parent not in excluded and parent not in reached)
        return reached


class _Watched:
    """An object store whose reads (and a commit-graph's parent lookups) count the steps of a walk:
    every ``ABANDON_CHECK`` of them it asks ``abandoned`` and stops the walk once it is True."""

    def __init__(self, store: BaseObjectStore, abandoned: Callable[[], bool] | None) -> None:
        self._store = store
        self._abandoned = abandoned
        self._steps = 0

    def step(self) -> None:
        self._steps += 1
        if not self._steps % ABANDON_CHECK:
            check_abandoned(self._abandoned)

    def __getitem__(self, sha: bytes) -> Any:
        self.step()
        obj = self._store[sha]  # type: ignore[index]
        if type(obj) is Tag and not LOWER_HEX.fullmatch(obj.object[1]):
            return _TagAsGitReadsIt.of(obj)
        return obj

    def __contains__(self, sha: bytes) -> bool:
        return sha in self._store  # type: ignore[operator]

    def get_commit_graph(self) -> Any:
        """dulwich's view of the store's commit-graph, for its walks; None where hgwire's reader does
        not read the file (``_graph_of``: damaged, cut short, emptied, of another layout, or
        ``core.commitGraph = false``): dulwich reads it unchecked, and raised on an empty or cut
        one, which failed every fetch its walks served ("internal error")."""
        if _graph_of(self._store) is None:
            return None
        try:
            graph = self._store.get_commit_graph()
        except (ValueError, IndexError, struct.error):  # (dulwich's parse of a file hgwire's reader took)
            return None
        return graph if graph is None or self._abandoned is None else _WatchedGraph(graph, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _WatchedGraph:
    """A commit-graph whose parent lookups are steps of a ``_Watched`` walk."""

    def __init__(self, graph: Any, watched: _Watched) -> None:
        self._graph = graph
        self._watched = watched

    def get_parents(self, sha: bytes) -> Any:
        self._watched.step()
        return self._graph.get_parents(sha)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)


def generate_pack(
    store: BaseObjectStore,
    plan: PackPlan,
    refs: Mapping[bytes, ObjectId],
    progress: Callable[[bytes], None] | None = None,
    peeled: Mapping[bytes, ObjectId] | None = None,
) -> Iterator[bytes]:
    """Stream the pack of ``wants`` minus ``common`` as ~64 KiB chunks.

    Objects are enumerated first (dulwich's MissingObjectFinder, stopping at the
    shallow boundary), then written one at a time: stored deltas are reused when
    their base is in the pack (or, for thin packs, known to the client).
    ``peeled``: what the advertisement peeled ``refs``' annotated tags to (``RefSnapshot.peeled``:
    a ref it leaves out is no annotated tag), for include-tag to read only the tags of sent objects.
    """
    view = _WithoutBitmaps(store, set() if plan.filtered else None, plan.abandoned)
    try:
        finder = MissingObjectFinder(  # in the first next(), i.e. in the pool, like every step
            view,  # type: ignore[arg-type]  # a read-only view of the store
            haves=_duls(plan.known),
            wants=_duls([*plan.wants, *plan.shallow.extra_wants]),
            shallow=set(_duls(plan.shallow.boundary)),
        )
        other_haves = finder.get_remote_has() if plan.thin else None
        object_ids = list(finder)
    except RecursionError:  # (dulwich follows a tag's chain by recursion: some 900 tags of tags)
        raise ProtocolError("a wanted tag heads a chain of tags of tags too long for this server to walk here "
                            "(a fetch with --filter, or one the fast path declines): fetch it without --filter, "
                            "or have the operator point its ref at the commit the chain ends at") from None
    if plan.include_tag:
        object_ids += _included_tags(view, refs, {oid for oid, _ in object_ids}, finder.sha_done,  # type: ignore[arg-type]  # (watched)
                                     peeled)
    if plan.shallow.unshallow:  # (the finder leaves out the trees of the known commits its walk meets only)
        edges = _edge_objects(view, plan.shallow.unshallow)
        object_ids = [(oid, hint) for oid, hint in object_ids if oid not in edges]
        if other_haves is not None:
            other_haves = {*other_haves, *edges}
    if plan.filtered:
        assert view.symlinks is not None
        object_ids = _filtered(store, object_ids, plan, view.symlinks, view.watched)
    source = _LookedUp(store) if isinstance(store, DiskObjectStore) else store
    records = generate_unpacked_objects(source, object_ids, ofs_delta=plan.ofs_delta, other_haves=other_haves)  # type: ignore[arg-type]
    report = progress or (lambda message: None)
    report(b"Enumerating objects: %d, done.\n" % len(object_ids))
    stats = _Stats()
    yield from _write_pack(len(object_ids), records, plan.ofs_delta, stats, object_format_of(store))
    report(b"Total %d (delta %d)\n" % (len(object_ids), stats.deltas))


SCAN_SHARE = 8
"""A pack one of whose ``SCAN_SHARE`` objects or more a pack sends is read whole for its reusable
deltas (``_LookedUp``); fewer are looked up in its index one by one."""


class _LookedUp:
    """A disk store as dulwich's ``generate_unpacked_objects`` reads it, its search for reusable
    deltas (``iter_unpacked_subset``) looking the objects of a small pack up in each pack's index:
    dulwich's store reads every entry of every pack for them, 0.7 s of a fetch of 10 commits from a
    mirror of 200,000 objects (a ``tree:1`` filter: the generic path).  A pack holding many of them
    is read whole, as dulwich reads it; the objects come in each pack's order either way."""

    def __init__(self, store: DiskObjectStore) -> None:
        self._store = store

    def __getitem__(self, sha: bytes) -> ShaFile:
        return self._store[sha]  # type: ignore[index]

    def __contains__(self, sha: bytes) -> bool:
        return sha in self._store  # type: ignore[operator]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def iter_unpacked_subset(self, shas: Iterable[bytes], *, include_comp: bool = False, allow_missing: bool = False,
                             convert_ofs_delta: bool = True) -> Iterator[UnpackedObject]:
        todo = {bytes(sha) for sha in shas}
        try:
            packs = list(self._store.packs)
        except OSError:  # (the store's own search says what is wrong)
            packs = []
        for pack in packs:
            if not todo:
                return
            try:
                if len(todo) * SCAN_SHARE >= len(pack.index):  # read whole, as dulwich does
                    found = list(pack.iter_unpacked_subset(cast(set[ObjectID], todo), include_comp=include_comp,
                                                           allow_missing=True, convert_ofs_delta=convert_ofs_delta))
                else:
                    at = sorted((offset, sha) for sha in todo if (offset := _offset(pack, sha)) is not None)
                    found = [pack.get_unpacked_object(cast(ObjectID, sha), include_comp=include_comp,
                                                      convert_ofs_delta=convert_ofs_delta) for _, sha in at]
                    for (_, sha), one in zip(at, found, strict=True):
                        one._sha = binascii.unhexlify(sha)  # (a delta's id is not computed from its own data)
            except (OSError, ValueError, zlib.error, PackFileDisappeared):  # gone meanwhile, damaged: the
                yield from self._store.iter_unpacked_subset(  # store's own search says what it finds
                    cast(set[ObjectID], todo), include_comp=include_comp, allow_missing=allow_missing,
                    convert_ofs_delta=convert_ofs_delta)
                return
            for one in found:
                yield one
                todo.discard(binascii.hexlify(one.sha()))
        for alternate in getattr(self._store, "alternates", ()):  # (loose objects are none of its business)
            if not todo:
                return
            for one in alternate.iter_unpacked_subset(todo, include_comp=include_comp, allow_missing=True,
                                                      convert_ofs_delta=convert_ofs_delta):
                yield one
                todo.discard(binascii.hexlify(one.sha()))


def _offset(pack: Any, sha: bytes) -> int | None:
    """Where ``pack`` holds the object ``sha`` (hex), or None."""
    try:
        return int(pack.index.object_offset(binascii.unhexlify(sha)))
    except KeyError:
        return None


def _edge_objects(store: Any, commits: Sequence[ObjectId]) -> set[ObjectID]:
    """The unshallowed commits and everything in their trees (what the client has of them)."""
    present, trees = [], []
    for oid in _duls(commits):
        try:
            commit = store[oid]
        except KeyError:  # (plan_shallow kept only the client's shallow commits the store has)
            continue
        if isinstance(commit, Commit):
            present.append(oid)
            trees.append(commit.tree)
    return {*present, *store.get_reachability_provider(prefer_bitmaps=False).get_tree_objects(trees)}


Listed = list[tuple[ObjectID, PackHint | None]]
"""The objects of a pack, each with the walk's hint (type and the name it was found under; no hint
for an object wanted by id, or a tag ``include-tag`` adds)."""


def _filtered(store: BaseObjectStore, object_ids: Listed, plan: PackPlan, symlinks: set[bytes],
              watched: _Watched | None = None) -> Listed:
    """A partial clone's pack (``filter``): the objects each of the plan's filters lets through, as
    git's upload-pack has them.

    What the client named is sent whatever the filter (git's "provided objects"): the wanted
    objects, and what a wanted tag names (through tags of tags), but for a commit or a tree that is
    a commit's root (which git's walk finds as it walks) -- where git counts from a bitmap, those
    too.  ``tree:<n>``: ``_filter_tree_depth``.  ``symlinks``: the symbolic links' blobs the walk
    found (it hints them as trees).  ``watched``: the walk's store, whose reads (and each object's
    type looked up here) are steps that stop the passes once the client has gone (``_Watched``).
    """
    from backends.git_objects import size_reader

    steps = watched if watched is not None else _Watched(store, None)

    # git's bitmap walk (none for a shallow request, nor for tree:<n> past 0) keeps every object the
    # wants name through tags (its "tips"), a commit's root tree among them, where its bitmap holds
    # the tip: one outside it (a pushed tag of a tree, loose beside the bitmapped pack) is found by
    # the walk, whose filter keeps it as a walk without a bitmap does (``_named``)
    bitmapped = (plan.tree_depth in (None, 0) and not plan.shallow.boundary and plan.use_bitmaps
                 and git_fastpack.counts_from_bitmap(store))
    lookups: Any = steps  # (read as a store)
    if bitmapped:
        exempt = _tips(lookups, plan.wants)
        covered = git_fastpack.bitmap_covers(store, exempt)
        if covered != exempt:  # tips git's bitmap walk finds by walking (loose, another pack's): judged as without one
            exempt = covered | (exempt & _named(lookups, object_ids, plan.wants)[0])
    else:
        exempt = _named(lookups, object_ids, plan.wants)[0]
    with size_reader(store) as reader:  # sizes and types from the pack entries' headers: nothing inflated
        def type_of(oid: ObjectID, hint: PackHint | None) -> int:
            steps.step()
            return _type_of(hint, reader, oid, symlinks)

        if plan.tree_depth == 0 and bitmapped:  # every tree and blob goes but the tips
            object_ids = [(oid, hint) for oid, hint in object_ids if oid in exempt
                          or type_of(oid, hint) not in (Tree.type_num, Blob.type_num)]
        elif plan.tree_depth is not None:  # (first: it walks the trees the others may drop)
            object_ids = _filter_tree_depth(lookups, object_ids, plan.tree_depth, plan.wants, type_of)
        if plan.blob_limit is not None:
            limit = plan.blob_limit
            object_ids = [(oid, hint) for oid, hint in object_ids
                          if oid in exempt or type_of(oid, hint) != Blob.type_num
                          or reader.size_of(oid) < limit]  # (git: "at least" the limit goes)
        if plan.object_types is not None:
            object_ids = _filter_types(object_ids, plan.object_types, exempt, type_of)
        return _without_stranded_tags(store, object_ids, exempt, type_of)


def _without_stranded_tags(store: BaseObjectStore, object_ids: Listed, exempt: set[bytes],
                           type_of: TypeOf) -> Listed:
    """The filtered pack without the tags include-tag added whose object (through tags of tags)
    the filter left out: git's pack-objects adds a tag ref's tags only when the object it peels to
    is in the pack, after the filtered walk (``add_ref_tag``), where the walk here adds them first."""
    sent = {bytes(oid) for oid, _hint in object_ids}
    kept: Listed = []
    for oid, hint in object_ids:
        if hint is None and oid not in exempt and type_of(oid, hint) == Tag.type_num \
                and peel(store, ObjectId(oid)) not in sent:
            continue
        kept.append((oid, hint))
    return kept


def _named(store: BaseObjectStore, object_ids: Listed, wants: Sequence[bytes]) -> tuple[set[bytes], set[bytes]]:
    """What the client named (sent whatever the filter), and the trees depths count from: the
    commits' root trees (as the walk hints them; read from the commits when a wanted tag names a
    tree, which may be one of them, hinted as the tag's) and the trees the client named."""
    exempt: set[bytes] = set()
    named_trees: set[bytes] = set()
    tagged_trees: set[bytes] = set()
    followed: set[bytes] = set()  # the tags whose chain was followed to its end (wants at each tag of one chain)
    for want in wants:
        exempt.add(bytes(want))
        obj = _lookup(store, want)
        if isinstance(obj, Tree):
            named_trees.add(bytes(want))
        path: list[bytes] = []
        for _ in range(MAX_PEEL):
            if not isinstance(obj, Tag) or obj.id in followed:
                break
            path.append(obj.id)
            target = bytes(obj.object[1])
            obj = _lookup(store, target)
            if isinstance(obj, (Tag, Blob)):
                exempt.add(target)
            elif isinstance(obj, Tree):
                tagged_trees.add(target)
        if not isinstance(obj, Tag) or obj.id in followed:
            followed.update(path)
    roots = {bytes(oid) for oid, hint in object_ids if hint == (Tree.type_num, b"")}
    if tagged_trees:
        for oid, hint in object_ids:
            if hint is not None and hint[0] == Commit.type_num:
                commit = _lookup(store, oid)
                if isinstance(commit, Commit):
                    roots.add(bytes(commit.tree))
        named_trees |= tagged_trees - roots
        exempt |= tagged_trees - roots
    return exempt, roots | named_trees


def _type_of(hint: PackHint | None, reader: Any, oid: ObjectID, symlinks: set[bytes]) -> int:
    """The type of a listed object.  The walk's hint is sure of a commit, a tag and a file's blob;
    it says tree for any other tree entry that is not a submodule, a symbolic link's blob among
    them (``symlinks``), and gives nothing for an object wanted by id, what a wanted tag names, or
    a tag ``include-tag`` adds: ``reader.type_of`` reads those from their pack entries' headers."""
    if hint is not None and hint[0] in (Commit.type_num, Tag.type_num, Blob.type_num):
        return hint[0]
    if hint is not None and hint[0] == Tree.type_num and hint[1] is not None:
        return Blob.type_num if oid in symlinks else Tree.type_num
    return int(reader.type_of(oid))


TypeOf = Callable[[ObjectID, "PackHint | None"], int]


def _filter_types(object_ids: Listed, types: frozenset[int], exempt: set[bytes],
                  type_of: TypeOf) -> Listed:
    """``object:type=``: keep the objects of ``types`` and those the client named, and the tags
    ``include-tag`` adds (``_without_stranded_tags`` judges those once every filter ran)."""
    kept: Listed = []
    for oid, hint in object_ids:
        kind = None if oid in exempt else type_of(oid, hint)
        if kind is None or kind in types or (hint is None and kind == Tag.type_num):
            kept.append((oid, hint))
    return kept


def _filter_tree_depth(store: BaseObjectStore, object_ids: Listed, depth: int, wants: Sequence[bytes],
                       type_of: TypeOf) -> Listed:
    """``tree:<depth>``: the trees and blobs git's walk (without bitmaps) lets through.

    git walks what the wants name through tags first, in the wants' order, then the root trees of
    the pack's commits.  A tree or blob a want names is sent whatever its depth, and the entries of
    such a tree count from depth 0, unless the walk already met it as a commit's root tree or as an
    entry of a tree it walked (then it is filtered as the others).  Any other tree counts its
    depth (a commit's root tree is at 0, the entries of a tree at d at d + 1) and is sent, and
    walked, when under ``depth``, at the shallowest depth the walk meets it; a blob likewise.
    Commits and tags stay.
    """
    in_pack = {bytes(oid) for oid, _hint in object_ids}
    commits = [oid for oid, hint in object_ids if hint is not None and hint[0] == Commit.type_num]
    met: set[bytes] = set()  # git's NOT_USER_GIVEN: a commit's root tree, an entry of a tree walked
    for oid in commits:
        commit = _lookup(store, oid)
        if isinstance(commit, Commit):
            met.add(bytes(commit.tree))
    done: set[bytes] = set()  # git's SEEN: what a want named, and the blobs kept
    shallowest: dict[bytes, int] = {}
    keep: set[bytes] = set()

    def walk(tree_id: bytes, at: int | None) -> None:
        """One tree and what it holds; ``at``: its depth, None for a tree a want names."""
        stack: list[tuple[bytes, int | None]] = [(tree_id, at)]
        while stack:
            oid, level = stack.pop()
            if oid in done or oid not in in_pack:
                continue
            if level is None:
                keep.add(oid)
                done.add(oid)
                inner = 0
            else:
                if oid in shallowest and level >= shallowest[oid]:
                    continue
                shallowest[oid] = level
                if level >= depth:
                    continue
                keep.add(oid)
                inner = level + 1
            tree = _lookup(store, oid)
            if not isinstance(tree, Tree):
                continue
            for _name, mode, sha in tree.iteritems():
                entry = bytes(sha)
                if S_ISGITLINK(mode):
                    continue
                met.add(entry)
                if stat.S_ISDIR(mode):
                    stack.append((entry, inner))
                elif entry not in done and entry in in_pack and inner < depth:
                    keep.add(entry)
                    done.add(entry)

    for want in wants:
        obj = _lookup(store, want)
        target = bytes(want)
        for _ in range(MAX_PEEL):
            if not isinstance(obj, Tag):
                break
            target = bytes(obj.object[1])
            obj = _lookup(store, target)
        if isinstance(obj, Tree):
            walk(target, None if target not in met else 0)
        elif isinstance(obj, Blob) and target not in done and target in in_pack and (target not in met or depth > 0):
            keep.add(target)
            done.add(target)
    for oid in commits:
        commit = _lookup(store, oid)
        if isinstance(commit, Commit):
            walk(bytes(commit.tree), 0)
    return [(oid, hint) for oid, hint in object_ids
            if oid in keep or type_of(oid, hint) in (Commit.type_num, Tag.type_num)]


def _tips(store: BaseObjectStore, wants: Sequence[bytes]) -> set[bytes]:
    """The wants and what they name through tags (of tags)."""
    tips: set[bytes] = set()
    followed: set[bytes] = set()  # the tags whose chain was followed to its end (wants at each tag of one chain)
    for want in wants:
        target = bytes(want)
        tips.add(target)
        obj = _lookup(store, target)
        path: list[bytes] = []
        for _ in range(MAX_PEEL):
            if not isinstance(obj, Tag) or obj.id in followed:
                break
            path.append(obj.id)
            target = bytes(obj.object[1])
            tips.add(target)
            obj = _lookup(store, target)
        if not isinstance(obj, Tag) or obj.id in followed:
            followed.update(path)
    return tips


def _included_tags(store: BaseObjectStore, refs: Mapping[bytes, ObjectId], sent: set[ObjectID],
                   done: set[ObjectID], peeled: Mapping[bytes, ObjectId] | None = None) -> Listed:
    """include-tag: every annotated tag a tag ref names whose chain of tags ends at an object in
    ``sent``, and the tags of its chain, as git's pack-objects adds them; none in ``done`` (sent or
    known to the client already).  dulwich's ``get_tagged`` maps an object to one tag: of two tags
    of a sent commit one was sent, and the tag of a tag whose inner tag has no ref was not.
    With ``peeled`` (``generate_pack``'s), only the refs it peels to a sent object are read: every
    tag of a mirror's 100,000 was read for a fetch of 10 commits with a ``tree:1`` filter (3 s of
    server CPU; git's upload-pack, which takes them from ``packed-refs``' peeled lines, 0.05)."""
    found: Listed = []
    tagged: Iterable[tuple[bytes, ObjectId]] = refs.items()
    if peeled is not None:
        sent_ids = cast(set[bytes], sent)
        of_sent = {name for name, target in peeled.items() if target in sent_ids}
        tagged = [(name, oid) for name, oid in refs.items() if name in of_sent] if of_sent else []
    for name, oid in tagged:
        if not name.startswith(b"refs/tags/"):
            continue
        chain: list[ObjectID] = []
        obj = _lookup(store, oid)
        while isinstance(obj, Tag) and len(chain) < MAX_PEEL:
            chain.append(_dul(obj.id))
            kind, target = obj.object
            if kind is not Tag:
                if target in sent:
                    for tag in chain:
                        if tag not in done:
                            done.add(tag)
                            found.append((tag, None))
                break
            obj = _lookup(store, target)
    return found


@dataclass
class _Stats:
    deltas: int = 0


def _write_pack(count: int, records: Iterator[UnpackedObject], ofs_delta: bool, stats: _Stats,
                object_format: ObjectFormat = SHA1_FORMAT) -> Iterator[bytes]:
    """Serialise records as a version 2 pack; REF_DELTA when the base is absent or OFS is not allowed.
    ``object_format``: the store's, which names REF_DELTA bases and checks the pack."""
    digest = object_format.hasher()
    offsets: dict[bytes, int] = {}
    buffer: list[bytes] = []
    buffered = 0
    header = b"PACK" + (2).to_bytes(4, "big") + count.to_bytes(4, "big")
    written = 0
    for piece in _records_chunks(header, records, offsets, ofs_delta, stats, DULWICH_FORMATS[object_format.name]):
        if piece is _NEXT_OBJECT:
            written += 1
            continue
        assert isinstance(piece, bytes)
        digest.update(piece)
        buffer.append(piece)
        buffered += len(piece)
        if buffered >= CHUNK_SIZE:
            yield b"".join(buffer)
            buffer, buffered = [], 0
    if written != count:
        raise ProtocolError(f"pack generation produced {written} objects, expected {count}")
    buffer.append(digest.digest())
    yield b"".join(buffer)


_NEXT_OBJECT = object()


def _records_chunks(
    header: bytes, records: Iterator[UnpackedObject], offsets: dict[bytes, int], ofs_delta: bool, stats: _Stats,
    dulwich_format: DulwichFormat,
) -> Iterator[bytes | object]:
    offset = len(header)
    yield header
    for record in records:
        raw: list[bytes] | tuple[bytes | int, list[bytes]]
        type_num = record.pack_type_num
        if record.delta_base is not None:
            stats.deltas += 1
            base = bytes(record.delta_base)
            if ofs_delta and base in offsets:
                type_num, raw = OFS_DELTA, (offset - offsets[base], record.decomp_chunks)
            else:
                type_num, raw = REF_DELTA, (base, record.decomp_chunks)
        else:
            raw = record.decomp_chunks
        offsets[record.sha()] = offset
        for chunk in pack_object_chunks(type_num, raw, dulwich_format):
            offset += len(chunk)
            yield chunk
        yield _NEXT_OBJECT
