"""Transport-neutral ``getbundle``, ``unbundle``, ``pushkey`` and stream clone logic.

What hg 7.x sends and expects is in ``PROTOCOL-NOTES.md`` §1.2-1.3; the parts
are those of ``mercurial/helptext/internals/bundle2.txt``.  Everything that
writes goes through one ``HgTransaction``: a failing push leaves the
repository unchanged and is answered with a bundle2 ``error:*`` part.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from backends.interfaces import (
    NULL_NODE,
    DeltaMode,
    HgRepository,
    HgTransaction,
    LockWait,
    Node,
    RevisionDelta,
    RevisionGroup,
    Section,
    StoreFile,
)
from protocols import bundle2 as b2
from protocols import hg_obsmarkers as obs
from protocols import hg_wire
from protocols.changegroup import (
    BUNDLE1_MAGIC,
    VERSIONS,
    ChangegroupDecoder,
    ChangegroupLimits,
    StreamReader,
    encode_changegroup,
    read_bundle1,
)
from protocols.errors import (
    ClientGone,
    HgwireError,
    PermissionDenied,
    ProtocolError,
    PushkeyFailed,
    PushRaced,
    StorageError,
    UnsupportedContent,
    UnsupportedFeature,
)
from protocols.hg_narrow import NarrowSpec, narrow_spec
from protocols.hg_responses import (
    BROKEN_PUSH,
    PUSH_FAILED_EARLY,
    PUSH_FAILED_UNSURE,
    BrokenPush,
    Outgoing,
    PushError,
    PushResponse,
    Response,
    StreamResponse,
)
from protocols.text import quoted

SERVER_BUNDLE2_CAPS: Mapping[bytes, Sequence[bytes]] = {
    b2.MAGIC: (),
    b"bookmarks": (),
    b"changegroup": VERSIONS,
    b"checkheads": (b"related",),
    b"error": (b"abort", b"unsupportedcontent", b"pushraced", b"pushkey"),
    b"listkeys": (),
    b"phases": (b"heads",),
    b"pushkey": (),
    b"stream": (b"v2",),
}
"""The bundle2 capabilities hgwire implements, advertised in ``bundle2=``."""
OBSMARKERS_CAPS = tuple(b"V%d" % v for v in obs.VERSIONS)


def server_bundle2_caps(repo: HgRepository) -> Mapping[bytes, Sequence[bytes]]:
    """What ``bundle2=`` advertises for ``repo``: ``obsmarkers`` too where the hgrc turns on
    their exchange (``HgRepo.obsmarkers_exchange``), no ``stream`` where it turns stream clones off
    (``HgRepo.stream_turned_on``, ``[server] uncompressed``, as hg's ``getrepocaps``); both optional
    for a backend."""
    caps = dict(SERVER_BUNDLE2_CAPS)
    exchange = getattr(repo, "obsmarkers_exchange", None)
    if exchange is not None and exchange():
        caps[b"obsmarkers"] = OBSMARKERS_CAPS
    turned_on = getattr(repo, "stream_turned_on", None)
    if turned_on is not None and not turned_on():
        del caps[b"stream"]
    return caps

GETBUNDLE_ARGUMENT_TYPES: Mapping[bytes, bytes] = {
    b"heads": b"nodes",
    b"common": b"nodes",
    b"bookmarks": b"boolean",
    b"obsmarkers": b"boolean",
    b"phases": b"boolean",
    b"bundlecaps": b"scsv",
    b"listkeys": b"csv",
    b"cg": b"boolean",
    b"cbattempted": b"boolean",
    b"stream": b"boolean",
    b"includepats": b"csv",
    b"excludepats": b"csv",
    # hg's narrow extension adds these (``narrowbundle2.setup``); ``depth`` and ``known`` only
    # matter to ellipsis serving, which hgwire does not offer (nor does hg serve by default)
    b"narrow": b"boolean",
    b"depth": b"plain",
    b"oldincludepats": b"csv",
    b"oldexcludepats": b"csv",
    b"known": b"csv",
    # hg-evolve's marker discovery (``obsexchange.py``), where it is advertised
    b"evo_obscommon": b"nodes",
    b"evo_missing_nodes": b"nodes",
}
"""Argument types of getbundle (``wireprototypes.GETBUNDLE_ARGUMENTS``); others abort."""

FORCE = b"force"
HASHED = b"hashed"
_BOOKMARK_ENTRY = struct.Struct(">20sH")
_PHASE_ENTRY = struct.Struct(">i20s")
MISSING_BOOKMARK = Node(b"\xff" * 20)
"""``wdirid``: the node of an absent bookmark in binary bookmark parts."""
PUBLIC, DRAFT, SECRET = 0, 1, 2
PHASE_NAMES = {PUBLIC: "public", DRAFT: "draft", SECRET: "secret"}
RACE_MESSAGE = "remote repository changed while pushing - please try again"
STREAM_SOURCE_STORE = b"s"
STREAM_SOURCE_CACHE = b"c"
"""A stream v2 entry's source: the store, or ``.hg/cache`` (``streamclone._srcstore``/``_srccache``)."""


@dataclass(frozen=True, slots=True)
class GetbundleRequest:
    """The decoded arguments of a getbundle request."""

    heads: list[Node] | None = None
    common: list[Node] = field(default_factory=list)
    bundlecaps: frozenset[bytes] = frozenset()
    listkeys: tuple[bytes, ...] = ()
    cg: bool = True
    bookmarks: bool = False
    phases: bool = False
    stream: bool = False
    obsmarkers: bool = False
    narrow: NarrowSpec | None = None
    """A narrow client's files (``narrow=1``, or patterns named); None for a client that wants them all."""
    evo_obscommon: list[Node] | None = None
    """hg-evolve's discovery: the markers of ``::heads - ::evo_obscommon`` alone are wanted (its
    fallback past 200 differing changesets over HTTP, which names the wrong ones: not followed)."""
    evo_missing_nodes: list[Node] | None = None
    """hg-evolve's discovery: the markers of ``::heads - ::common`` and of these alone are wanted."""

    def bundle2_caps(self) -> dict[bytes, list[bytes]] | None:
        """The client's bundle2 capabilities, or None for a bundle1-only client."""
        if b2.MAGIC not in self.bundlecaps:
            return None
        for cap in self.bundlecaps:
            if cap.startswith(hg_wire.BUNDLE2_CAP_PREFIX):
                blob = hg_wire.url_unquote(cap[len(hg_wire.BUNDLE2_CAP_PREFIX) :])
                return hg_wire.decode_bundle2_caps(blob)
        return {}


def parse_getbundle_args(args: Mapping[bytes, bytes]) -> GetbundleRequest:
    """Decode getbundle's ``*`` arguments by type; an unknown one is ignored, as hg's server ignores
    it ("getbundle ignored unexpected arguments"): a newer client's extra argument is no error."""
    flags = {
        k: hg_wire.decode_bool(args[k])
        for k in (b"cg", b"bookmarks", b"phases", b"stream", b"obsmarkers", b"narrow") if k in args
    }
    narrow = None
    includes = hg_wire.decode_csv(args.get(b"includepats", b""))
    excludes = hg_wire.decode_csv(args.get(b"excludepats", b""))
    if flags.get(b"narrow", False) or includes or excludes:  # (hg's narrow client sends narrow=1 with them)
        narrow = narrow_spec(includes, excludes)
    return GetbundleRequest(
        heads=hg_wire.decode_nodes(args[b"heads"]) if b"heads" in args else None,
        common=hg_wire.decode_nodes(args.get(b"common", b"")),
        bundlecaps=frozenset(hg_wire.decode_scsv(args.get(b"bundlecaps", b""))),
        listkeys=tuple(hg_wire.decode_csv(args.get(b"listkeys", b""))),
        cg=flags.get(b"cg", True),
        bookmarks=flags.get(b"bookmarks", False),
        phases=flags.get(b"phases", False),
        stream=flags.get(b"stream", False),
        obsmarkers=flags.get(b"obsmarkers", False),
        narrow=narrow,
        evo_obscommon=hg_wire.decode_nodes(args[b"evo_obscommon"]) if b"evo_obscommon" in args else None,
        evo_missing_nodes=(hg_wire.decode_nodes(args[b"evo_missing_nodes"]) if b"evo_missing_nodes" in args
                           else None),
    )


# ------------------------------------------------------------------ getbundle


def getbundle(repo: HgRepository, request: GetbundleRequest) -> tuple[Iterator[bytes], Outgoing | None]:
    """Stream the answer to getbundle: bundle2 parts, or a bare cg01 changegroup for a bundle1 client;
    and the changesets its changegroup sends (None when it sends none)."""
    caps = request.bundle2_caps()
    if caps is None:
        if request.narrow is not None:
            raise UnsupportedFeature(NARROW_CG01)
        check_full_bundle(repo, request)
        nodes = outgoing(repo, request)
        sent = Outgoing(nodes[0], bundle2=False) if nodes else None
        # wireprotov1peer.getbundle reads a bare cg01 stream (no HG10 header) from such a client.
        return b2.coalesce(encode_changegroup(repo.emit_groups(nodes, DeltaMode.PREVIOUS), b"01")), sent
    try:
        check_full_bundle(repo, request)
        parts, first = _getbundle_parts(repo, request, caps)
    except ClientGone:  # nobody to tell
        raise
    except HgwireError as exc:
        parts, first = [_abort_part(exc.message, exc.hint)], None
    return b2.coalesce(b2.write_bundle2(parts)), None if first is None else Outgoing(first, bundle2=True)


def abort_bundle(message: str) -> Iterator[bytes]:
    """A bundle2 answer that is one ``error:abort`` part: how ``wireprotov1server.getbundle``
    answers a bundle2 client when making the bundle aborted (a ``preoutgoing`` hook refused)."""
    return b2.write_bundle2([_abort_part(message)])


FULL_BUNDLE_DISABLED = "server has pull-based clones disabled"
FULL_BUNDLE_HINT = "remove --pull if specified or upgrade Mercurial"


def check_full_bundle(repo: HgRepository, request: GetbundleRequest) -> None:
    """``[server] disablefullbundle``: refuse a full clone's changegroup, as hg's ``getbundle``.

    A full clone asks for a changegroup from nothing to every head; the
    operator wants clients to seed from clone bundles (or a stream) instead.
    """
    disabled = getattr(repo, "full_bundle_disabled", None)  # optional: a backend may not have it
    if not request.cg or disabled is None or not disabled():
        return
    if any(node != NULL_NODE for node in request.common):
        return
    heads = repo.heads()
    if heads and set(request.heads or ()) == set(heads):
        raise PermissionDenied(FULL_BUNDLE_DISABLED, FULL_BUNDLE_HINT)


def clone_share_key(repo: HgRepository, args: Mapping[bytes, bytes], request: GetbundleRequest) -> bytes | None:
    """A key for the answer's bytes if identical concurrent requests may share them, else None.

    Only a clone qualifies: no common changeset but null, and not a stream
    clone (cheap to serve).  CI fleets send such requests many times at once,
    byte for byte the same.  The key covers every argument and the repository's
    visible state (``state_stamp``, read before the answer is computed, so the
    answer is at least as new as its key); a repository that cannot tell its
    state does not share.
    """
    if request.stream or any(node != NULL_NODE for node in request.common):
        return None
    state_stamp = getattr(repo, "state_stamp", None)
    stamp = state_stamp() if state_stamp is not None else None
    if stamp is None:
        return None
    digest = hashlib.sha256(b"getbundle\0%d:%s" % (len(stamp), stamp))
    for name in sorted(args):
        value = args[name]
        digest.update(b"%d:%s%d:%s" % (len(name), name, len(value), value))
    return digest.digest()


def wire_heads(repo: HgRepository) -> list[Node]:
    """The repository heads as the wire shows them: ``[null]`` for an empty repository.

    Clients test ``remoteheads == [nullid]`` to recognise an empty remote
    (``discovery.checkheads``); an empty list would make a first push a "new branch".
    """
    return repo.heads() or [NULL_NODE]


def known_nodes(repo: HgRepository, nodes: Sequence[Node]) -> list[bool]:
    """``repo.known`` with the null node always known (``localrepo.known``)."""
    return [node == NULL_NODE or flag for node, flag in zip(nodes, repo.known(nodes))]


def first_unknown(repo: HgRepository, nodes: Sequence[Node]) -> str | None:
    """The hex of the first of ``nodes`` the repository does not know (null it knows), or None."""
    unknown = next((node for node, known in zip(nodes, known_nodes(repo, nodes)) if not known), None)
    return None if unknown is None else hg_wire.hex_node(unknown).decode("utf-8", "replace")


def refuse_unknown(repo: HgRepository, nodes: Sequence[Node]) -> None:
    """``ProtocolError`` naming the first of ``nodes`` the repository does not know (null it knows)."""
    unknown = first_unknown(repo, nodes)
    if unknown is not None:
        raise ProtocolError(f"unknown revision {unknown}")


HEAD_GONE = ("changeset {node} is no longer on the server (it was stripped or made obsolete after this clone or "
             "pull began); try it again")
"""Why a getbundle names a head the repository does not know: the client read it in ``heads`` (or
``lookup``) a moment before, and a strip or an obsolescence marker (``hg prune``, ``hg debugobsolete``,
an amend pushed by someone else) took it away since.  ``hg serve`` aborts with ``00changelog@NODE: no
node`` and a cut stream over SSH (or serves its session's stale view), with a 500 over HTTP."""


def outgoing(repo: HgRepository, request: GetbundleRequest) -> list[Node]:
    """The changesets to send: ``::heads - ::common``.

    Unknown common nodes are ignored and unknown heads refused, as
    ``exchange._computeoutgoing`` does (``HEAD_GONE``: what was one a moment ago).
    """
    heads = wire_heads(repo) if request.heads is None else request.heads
    gone = first_unknown(repo, heads)
    if gone is not None:
        raise ProtocolError(HEAD_GONE.format(node=gone))
    heads = [node for node in heads if node != NULL_NODE]
    common = [node for node, known in zip(request.common, known_nodes(repo, request.common)) if known]
    return repo.missing([node for node in common if node != NULL_NODE], heads) if heads else []


def _getbundle_parts(
    repo: HgRepository, request: GetbundleRequest, caps: Mapping[bytes, Sequence[bytes]]
) -> tuple[list[b2.OutPart], Node | None]:
    """The parts of a bundle2 answer, and the first changeset its changegroup sends (or None)."""
    heads = wire_heads(repo) if request.heads is None else request.heads
    parts: list[b2.OutPart] = []
    first = None
    if request.stream:
        if request.narrow is not None:  # hg serve's answer unless experimental.server.stream-narrow-clones
            raise UnsupportedFeature("server does not support narrow stream clones")
        parts.append(_stream2_part(repo, caps))
    if request.cg:
        negotiated = negotiate_changegroup_version(caps, _needs_flags(repo))  # before outgoing, as hg aborts
        nodes = outgoing(repo, request)
        if nodes:
            parts.append(_changegroup_part(repo, nodes, negotiated, request.narrow))
            first = nodes[0]
    if request.bookmarks:
        parts.extend(_bookmarks_part(repo, caps))
    parts.extend(_listkeys_part(repo, ns) for ns in request.listkeys)
    if request.obsmarkers:
        parts.extend(_obsmarkers_part(repo, request.heads, caps, request))
    if request.phases:
        parts.append(_phase_heads_part(repo, heads, caps))
    if request.cg and b"hgtagsfnodes" in caps:
        parts.extend(_tags_fnodes_part(repo, heads))
    return parts, first


def negotiate_changegroup_version(caps: Mapping[bytes, Sequence[bytes]], flags: bool = False) -> bytes | None:
    """The highest common changegroup version; None means the implicit 01 (hg 3.1/3.2 caps).

    ``flags``: the repository has revisions whose flags must travel (LFS pointers), which only 03
    carries (hg's ``supportedoutgoingversions`` drops 01 and 02 then).
    """
    offered = caps.get(b"changegroup")
    if not offered and not flags:
        return None
    common = [v for v in offered or () if v in VERSIONS and (not flags or v >= b"03")]
    if not common:
        raise UnsupportedFeature("no common changegroup version")
    return max(common)


def _needs_flags(repo: HgRepository) -> bool:
    required = getattr(repo, "lfs_required", None)  # optional: a backend may serve no LFS
    return bool(required()) if required is not None else False


def _changegroup_part(repo: HgRepository, nodes: list[Node], negotiated: bytes | None,
                      narrow: NarrowSpec | None = None) -> b2.OutPart:
    version = negotiated or b"01"
    mode = DeltaMode.PREVIOUS if version == b"01" else DeltaMode.ANY
    if narrow is None:
        payload = _lazy(lambda: encode_changegroup(repo.emit_groups(nodes, mode), version))
    else:
        if version == b"01":
            raise UnsupportedFeature(NARROW_CG01)
        payload = _lazy(lambda: encode_changegroup(
            narrow_groups(repo, nodes, mode, narrow.matcher(), manifests=not narrow.empty), version))
    return b2.OutPart(
        b2.PART_CHANGEGROUP,
        mandatory_params=[(b"version", version)] if negotiated else [],
        advisory_params=[(b"nbchanges", b"%d" % len(nodes))],
        payload=payload,
    )


NARROW_CG01 = "version 01 changegroups do not support sparse file matchers"
"""hg's refusal of a narrow changegroup in the first format (which every narrow client can do without)."""


def narrow_groups(repo: HgRepository, nodes: Sequence[Node], mode: DeltaMode, match: Callable[[bytes], bool],
                  changelog: bool = True, manifests: bool = True) -> Iterator[RevisionGroup]:
    """``emit_groups`` for a narrow client: the files ``match`` takes; the changelog and manifest
    groups empty where the client has (or gets) none of them.

    The backend is told ``match`` so that it need not read the other files; what it yields is
    filtered again here, so a backend that ignores it sends no more.
    """
    for group in repo.emit_groups(nodes, mode, match=match):
        if group.section is Section.FILE:
            if match(group.path):
                yield group
        elif (changelog if group.section is Section.CHANGELOG else manifests):
            yield group
        else:
            yield RevisionGroup(group.section, b"", iter(()))


def narrow_widen(repo: HgRepository, args: Mapping[bytes, bytes]) -> Iterator[bytes]:
    """The answer to ``narrow_widen`` (hg's narrow extension, when ``hg tracked --addinclude``
    widens a narrow clone): a bundle2 whose changegroup holds, for every changeset the client has
    (``::commonheads``), the revisions of the files the new patterns take and the old ones did not,
    with an empty changelog (and manifests only where the old patterns took none), as hg's
    ``bundle2.widen_bundle``; refusals are an ``error:abort`` part, as hg answers them."""
    try:
        old = narrow_spec(hg_wire.decode_csv(args[b"oldincludes"]), hg_wire.decode_csv(args[b"oldexcludes"]))
        new = narrow_spec(hg_wire.decode_csv(args[b"newincludes"]), hg_wire.decode_csv(args[b"newexcludes"]))
        if hg_wire.decode_bool(args[b"ellipses"]):
            raise UnsupportedFeature("this server does not serve ellipsis (shallow narrow) clones",
                                     "clone without --depth from a server that serves them")
        version = args[b"cgversion"]
        if version not in VERSIONS or version == b"01":
            raise UnsupportedFeature(f"unsupported changegroup version {version[:20].decode('ascii', 'replace')}")
        common = hg_wire.decode_nodes(args[b"commonheads"])
        refuse_unknown(repo, common)
        common = [node for node in common if node != NULL_NODE]
        parts = []
        nodes = repo.missing([], common) if common else []
        if nodes:
            was, wanted = old.matcher(), new.matcher()
            parts.append(b2.OutPart(
                b2.PART_CHANGEGROUP, mandatory_params=[(b"version", version)],
                payload=_lazy(lambda: encode_changegroup(narrow_groups(
                    repo, nodes, DeltaMode.ANY, lambda path: wanted(path) and not was(path), changelog=False,
                    manifests=old.empty and not new.empty), version)),
            ))
    except HgwireError as exc:
        parts = [_abort_part(exc.message, exc.hint)]
    return b2.coalesce(b2.write_bundle2(parts))


def _lazy(make: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
    """Defer a backend call until the bundle writer reaches this part."""
    yield from make()


def encode_bookmarks(bookmarks: Sequence[tuple[bytes, Node | None]]) -> bytes:
    """Binary bookmarks (``bookmarks.binaryencode``): node, be16 name length, name."""
    return b"".join(
        _BOOKMARK_ENTRY.pack(node or MISSING_BOOKMARK, len(name)) + name for name, node in bookmarks
    )


def decode_bookmarks(data: bytes) -> list[tuple[bytes, Node | None]]:
    """Inverse of ``encode_bookmarks``; the missing marker decodes to None."""
    entries: list[tuple[bytes, Node | None]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _BOOKMARK_ENTRY.size:
            raise ProtocolError("a bookmarks part is truncated")
        node, size = _BOOKMARK_ENTRY.unpack_from(data, offset)
        offset += _BOOKMARK_ENTRY.size
        name = data[offset : offset + size]
        if len(name) != size:
            raise ProtocolError("a bookmark name is truncated")
        if not name or any(byte in name for byte in b"\n\r\0"):  # the bookmarks file's own separators
            raise ProtocolError(f"bookmark name {quoted(name, 80)} is empty or holds a newline, carriage return or "
                                "NUL, which hg cannot store; rename it")
        _utf8_bookmark(name)
        offset += size
        entries.append((name, None if node == MISSING_BOOKMARK else Node(node)))
    return entries


def _utf8_bookmark(name: bytes) -> None:
    """Refuse a bookmark name that is not UTF-8, as hg serve refuses it ("decoding near …"): hg
    stores and sends names in UTF-8, and a clone would abort on it.  hg's client sends a bookmark
    in its local encoding (``HGENCODING=latin1``) in a bookmarks part."""
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"bookmark name {quoted(name, 80)} is not UTF-8, in which hg stores names (an hg "
                            "client under HGENCODING=latin1 sends it so); push it with HGENCODING=utf-8") from None


def encode_phase_heads(entries: Sequence[tuple[int, Node]]) -> bytes:
    """Binary phase heads (``phases.binaryencode``): be32 phase + node, by phase then node."""
    return b"".join(_PHASE_ENTRY.pack(phase, node) for phase, node in sorted(entries))


def decode_phase_heads(data: bytes) -> list[tuple[int, Node]]:
    if len(data) % _PHASE_ENTRY.size:
        raise ProtocolError("a phase-heads part is truncated")
    return [(phase, Node(node)) for phase, node in _PHASE_ENTRY.iter_unpack(data)]


def _bookmarks_part(repo: HgRepository, caps: Mapping[bytes, Sequence[bytes]]) -> list[b2.OutPart]:
    if b"bookmarks" not in caps:
        raise UnsupportedFeature("no common bookmarks exchange method")
    data = encode_bookmarks(sorted(repo.bookmarks().items()))
    return [b2.OutPart(b2.PART_BOOKMARKS, payload=[data])] if data else []


def _listkeys_part(repo: HgRepository, namespace: bytes) -> b2.OutPart:
    data = hg_wire.format_listkeys(repo.listkeys(namespace))
    return b2.OutPart(b2.PART_LISTKEYS, mandatory_params=[(b"namespace", namespace)], payload=[data])


def _phase_heads_part(
    repo: HgRepository, heads: Sequence[Node], caps: Mapping[bytes, Sequence[bytes]]
) -> b2.OutPart:
    if b"heads" not in caps.get(b"phases", ()):
        raise UnsupportedFeature("no common phases exchange method")
    return b2.OutPart(b2.PART_PHASE_HEADS, payload=[encode_phase_heads(repo.phase_heads(heads))])


def _tags_fnodes_part(repo: HgRepository, heads: Sequence[Node]) -> list[b2.OutPart]:
    """The ``.hgtags`` file node of each head the client asked for (``exchange._getbundletagsfnodes``:
    heads in common too), so that it need not read their manifests to resolve tags; advisory, and
    none where the backend keeps no such thing or the repository has no tags file."""
    nodes = getattr(repo, "tags_file_nodes", None)  # optional: a backend may leave it to the client
    pairs = nodes(heads) if nodes is not None else []
    if not pairs:
        return []
    return [b2.OutPart(b2.PART_HGTAGSFNODES, mandatory=False, payload=[b"".join(h + f for h, f in pairs)])]


def _obsmarkers_part(repo: HgRepository, heads: Sequence[Node] | None,
                     caps: Mapping[bytes, Sequence[bytes]], request: GetbundleRequest | None = None) -> list[b2.OutPart]:
    """The markers relevant to ``::heads`` (every visible head if None), in the newest format
    both sides know; no part without markers (``exchange._getbundleobsmarkerpart``).  Where the
    client found by hg-evolve's discovery what it lacks (``evo_missing_nodes``), only the markers
    of that (``obsexchange._getbundleobsmarkerpart``).  hg-evolve 12 sends ``evo_obscommon`` only
    where more than 200 changesets' markers differ and HTTP cannot carry their nodes (no
    ``httppostargs``), naming changesets above them: hg serve with evolve then sends none of their
    markers, at every pull; they are all sent here, as without the extension."""
    relevant = getattr(repo, "obsmarkers_for", None)  # optional: a backend may keep no markers
    if relevant is None:
        return []
    version = obs.common_version(obs.versions_of(caps.get(b"obsmarkers", ())))
    if version is None:
        raise UnsupportedFeature("no common obsolescence markers format with the client")
    outside = getattr(repo, "obsmarkers_outside", None)  # optional: hg-evolve's discovery
    if outside is not None and request is not None and request.evo_missing_nodes is not None:
        _stored, markers = outside(heads if heads is not None else wire_heads(repo), request.common,
                                   request.evo_missing_nodes)
    else:
        _stored, markers = relevant(heads)
    if not markers:
        return []
    return [b2.OutPart(b"obsmarkers", payload=_lazy(lambda: obs.encode(markers, version)))]


def _abort_part(message: str, hint: str | None = None) -> b2.OutPart:
    advisory = [(b"hint", _param(hint))] if hint else []
    return b2.OutPart(b2.PART_ERROR_ABORT, [(b"message", _param(message))], advisory)


def _param(text: str) -> bytes:
    """A bundle2 parameter value: UTF-8, cut to the 255 bytes the format can size."""
    return text.encode("utf-8", "replace")[: b2.MAX_PARAM_LEN]


# ------------------------------------------------------------------ stream clone


def encode_dir(path: bytes) -> bytes:
    """Escape directory names ending in .hg/.i/.d as ``store.encodedir`` does (stream v1)."""
    if b".hg/" not in path and b".i/" not in path and b".d/" not in path:
        return path
    return path.replace(b".hg/", b".hg.hg/").replace(b".i/", b".i.hg/").replace(b".d/", b".d.hg/")


def uvarint(value: int) -> bytes:
    """Unsigned LEB128, as ``util.uvarintencode``."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


STREAM_OK = b"0\n"
STREAM_DISABLED = b"1\n"
STREAM_LOCK_FAILED = b"2\n"
"""The first line of a ``stream_out`` reply (``streamclone.generatev1wireproto``)."""


def stream_out_v1(repo: HgRepository) -> Iterator[bytes]:
    """The ``stream_out`` reply: status line, ``<files> <bytes>\n``, then ``path\0size\n`` + data per file.

    The snapshot is taken now, so a refusal is the status line and not a broken stream.
    """
    try:
        count, size, files = repo.stream_files()
    except UnsupportedFeature:
        return iter([STREAM_DISABLED])
    except StorageError:
        return iter([STREAM_LOCK_FAILED])
    return _stream_out_entries(count, size, files)


def _stream_out_entries(count: int, size: int, files: Iterator[StoreFile]) -> Iterator[bytes]:
    yield STREAM_OK
    yield b"%d %d\n" % (count, size)
    for entry in files:
        yield encode_dir(entry.path) + b"\0%d\n" % entry.size
        yield from entry.chunks


def _stream2_payload(files: Iterator[StoreFile]) -> Iterator[bytes]:
    for entry in files:
        source = STREAM_SOURCE_CACHE if entry.cache else STREAM_SOURCE_STORE
        yield source + uvarint(len(entry.path)) + uvarint(entry.size) + entry.path
        yield from entry.chunks


def _stream2_part(repo: HgRepository, caps: Mapping[bytes, Sequence[bytes]]) -> b2.OutPart:
    if b"v2" not in caps.get(b"stream", ()):
        raise UnsupportedFeature("no common stream clone version with the client")
    if _stream_obsmarkers(repo, caps):
        count, size, files = repo.stream_files(caches=True, obsmarkers=True)  # type: ignore[call-arg]
    else:
        count, size, files = repo.stream_files(caches=True)
    requirements = b",".join(hg_wire.stream_requirements(repo.requirements()))
    params = [
        (b"bytecount", b"%d" % size),
        (b"filecount", b"%d" % count),
        (b"requirements", hg_wire.url_quote(requirements)),
    ]
    return b2.OutPart(b2.PART_STREAM2, mandatory_params=params, payload=_stream2_payload(files))


def _stream_obsmarkers(repo: HgRepository, caps: Mapping[bytes, Sequence[bytes]]) -> bool:
    """Whether a stream clone copies the obsstore: when the repository has markers in a format the
    client reads; a client that reads none is refused (it would show hidden changesets), as by hg."""
    stored = getattr(repo, "obsmarkers_version", None)  # optional: a backend may keep no markers
    version = stored() if stored is not None else None
    if version is None:
        return False
    theirs = obs.versions_of(caps.get(b"obsmarkers", ()))
    if not theirs:
        raise UnsupportedFeature("server has obsolescence markers, but client cannot receive them via stream clone",
                                 hint="enable obsolescence markers exchange on the client "
                                      "([experimental] evolution = all), or clone without --stream")
    return version in theirs


# ------------------------------------------------------------------ pushkey


def _phase_in(tx: HgTransaction, node: Node) -> int | None:
    """The changeset's phase as ``tx`` has it so far; None where it holds no such changeset or the
    backend's transaction cannot say."""
    phase_of = getattr(tx, "phase_of", None)  # optional: a backend's transaction may not say
    return phase_of(node) if phase_of is not None else None


def _visible(repo: HgRepository, tx: HgTransaction, node: Node) -> bool:
    """A changeset a pushkey may name: one the repository shows its clients, or one this
    transaction holds below secret, which the same push's changegroup brought (bundle2 clients
    before hg 4.4, whose pushed phases, and before 4.6 bookmarks, come as ``pushkey`` parts after
    the changegroup, in its transaction; the repository alone does not have them yet)."""
    if repo.known([node])[0]:
        return True
    phase = _phase_in(tx, node)
    return phase is not None and phase < SECRET


def _pushkey_bookmark(repo: HgRepository, tx: HgTransaction, key: bytes, old: bytes, new: bytes) -> bool:
    """Move a bookmark as ``bookmarks.pushbookmark`` does: from ``old`` (or where it is already
    ``new``: done) to ``new``, a changeset the client may see (not secret, not hidden)."""
    old_node = hg_wire.parse_node(old) if old else None
    new_node = hg_wire.parse_node(new) if new else None
    _utf8_bookmark(key)
    if new_node is not None and not _visible(repo, tx, new_node):
        return False
    if new_node != old_node and repo.bookmarks().get(key) == new_node:
        return True  # where the client wants it already (absent, for a deletion), as hg answers it
    return tx.set_bookmark(key, old_node, new_node)


def _pushkey_phase(repo: HgRepository, tx: HgTransaction, key: bytes, old: bytes, new: bytes) -> bool:
    """Publish a changeset as ``phases.pushphase`` does: when its phase is ``old`` (the client's
    view), it moves to ``new`` (public: exchange only ever publishes; any other move is refused);
    when it is ``new`` already, the push raced another and got its result; otherwise the client's
    view is stale: refused.  A changeset the client may not see (secret, hidden) is refused.
    """
    node = hg_wire.parse_node(key)
    try:
        old_phase, new_phase = abs(int(old)), abs(int(new))
    except ValueError as exc:
        raise ProtocolError("a phase must be an integer") from exc
    if node == NULL_NODE or not _visible(repo, tx, node):
        return False
    current = _phase_in(tx, node)
    if current is not None and current == new_phase:
        return True  # raced, but got the result asked for (hg's words)
    if new_phase != PUBLIC or old_phase == PUBLIC or (current is not None and current != old_phase):
        return False
    tx.set_phase(PUBLIC, [node])
    return True


def _pushkey_markers(repo: HgRepository, tx: HgTransaction, key: bytes, old: bytes, new: bytes) -> bool:
    """Markers pushed as hg clients before bundle2 pushed them (``obsolete.pushmarker``): a ``dumpN``
    key, no old value, the base85 of a marker stream; False where markers may not be created."""
    enabled = getattr(repo, "obsolescence_enabled", None)
    add = getattr(tx, "add_obsmarkers", None)
    if not key.startswith(b"dump") or old or enabled is None or add is None or not enabled(b"createmarkers"):
        return False
    try:
        data = obs.base85_decode(new)
    except ValueError:
        raise ProtocolError("the pushed obsolescence markers are not base85") from None
    add(obs.decode(data)[1])
    return True


def apply_pushkey(
    repo: HgRepository, tx: HgTransaction, namespace: bytes, key: bytes, old: bytes, new: bytes
) -> bool:
    """Apply one pushkey inside ``tx``; unknown namespaces are refused (False).

    A transaction that runs the repository's hooks runs ``prepushkey`` first (which may refuse the
    push) and is told the outcome for the ``pushkey`` hook, as hg's ``localrepo.pushkey``.
    """
    gate = getattr(tx, "prepushkey", None)
    if gate is not None:
        gate(namespace, key, old, new, compat=False)
    if namespace == b"bookmarks":
        ok = _pushkey_bookmark(repo, tx, key, old, new)
    elif namespace == b"phases":
        ok = _pushkey_phase(repo, tx, key, old, new)
    elif namespace == b"obsolete":
        ok = _pushkey_markers(repo, tx, key, old, new)
    else:
        ok = False
    told = getattr(tx, "pushkey_result", None)
    if told is not None:
        told(ok)
    return ok


def pushkey(repo: HgRepository, namespace: bytes, key: bytes, old: bytes, new: bytes) -> bool:
    """The ``pushkey`` wire command: one compare-and-swap in its own transaction."""
    return pushkey_reported(repo, namespace, key, old, new)[0]


def pushkey_reported(repo: HgRepository, namespace: bytes, key: bytes, old: bytes, new: bytes) -> tuple[bool, bytes]:
    """``pushkey``, and what hg's server prints as its transaction commits: the repository's hooks'
    output and what markers did (``N new obsolescence markers``, ``obsoleted N changesets``, new
    instabilities: ``scmutil.registersummarycallback`` reports a ``pushkey`` transaction's, which is
    how a bundle1 push sends its markers)."""
    tx = repo.transaction()
    try:
        ok = apply_pushkey(repo, tx, namespace, key, old, new)
        report = IngestReport()
        summary = getattr(tx, "obsolescence_summary", None) if ok else None
        if summary is not None:
            report.obsolescence = summary()
    except BaseException:
        tx.abort()
        raise
    if not ok:
        tx.abort()
        return False, b""
    tx.commit()
    before, closing, after = hook_output(tx)
    return True, before + closing + report.summary() + after


# ------------------------------------------------------------------ unbundle


def decode_push_heads(value: bytes) -> list[bytes]:
    """Decode unbundle's ``heads``: hex words (``force``, ``hashed`` + sha1, or nodes)."""
    try:
        return [bytes.fromhex(word.decode("ascii")) for word in value.split()]
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("unbundle heads must be hex words") from exc


def check_push_heads(repo: HgRepository, their_heads: Sequence[bytes], context: str) -> None:
    """Refuse a push made against other heads than the current ones (``exchange.check_heads``)."""
    if list(their_heads) == [FORCE]:
        return
    heads = wire_heads(repo)
    digest = hashlib.sha1(b"".join(sorted(heads))).digest()
    if sorted(their_heads) != sorted(heads) and list(their_heads) != [HASHED, digest]:
        raise PushRaced(f"repository changed while {context} - please try again")


def _drain(chunks: Iterator[bytes]) -> None:
    """Consume the rest of a push so the connection stays in sync (as hg's cleanup).

    A payload that fails (the client went away mid-push) has nothing left to drain.
    """
    try:
        for _ in chunks:
            pass
    except ProtocolError:
        return


def unbundle(
    repo: HgRepository, heads: bytes, payload: Iterator[bytes], capture_output: bool = False,
    limits: b2.Bundle2Limits = b2.DEFAULT_LIMITS, cg_limits: ChangegroupLimits = ChangegroupLimits(),
    wait: LockWait | None = None, answer_failures: bool = False,
) -> Response:
    """Apply a pushed bundle (HG20 or HG10) in one transaction and build the reply.

    The whole payload is consumed before returning, whatever happens.  A
    repository that keeps a bundle until it is whole (``HgPushSpool``) takes
    all of it before the transaction (and its lock) starts, as ``hg serve``
    does.  Messages for the user ("added 1 changesets ...") go in the
    response's ``output``, or with ``capture_output`` into bundle2 ``output``
    parts (HTTP).  An unexpected error inside the transaction (no
    ``HgwireError``: a bug) rolls it back and is raised again; with
    ``answer_failures`` it is raised as the cause of a ``BrokenPush`` that
    carries the reply telling the client (SSH, whose client has no status
    line to read a failure from).  So is one outside it (keeping the bundle,
    opening the transaction, reading the bundle's header; answering once it
    closed), with a reply saying nothing changed if no transaction opened.
    """
    reader = StreamReader(_Shielded(payload))
    magic = b""
    stage = _Stage()
    try:
        their_heads = decode_push_heads(heads)
        magic = reader.read_exact(4)
        if magic not in (b2.MAGIC, BUNDLE1_MAGIC) and not magic.startswith(b"\0"):
            raise ProtocolError("the pushed data is not a Mercurial bundle")  # (refused before it is kept)
        with ExitStack() as held:
            try:
                rest = held.enter_context(received(repo, reader.remaining()))
            except HgwireError as exc:  # a disk that cannot hold it, or a client gone: nothing locked yet
                return _not_received(magic, exc)
            return _apply(repo, their_heads, magic, rest, capture_output, limits, cg_limits, wait, answer_failures,
                          stage)
    except (ProtocolError, UnsupportedFeature) as exc:
        return _refused1(b"", exc.message)
    except BrokenPush:
        raise
    except Exception as exc:
        if not answer_failures or not magic:
            raise
        if stage.opened:  # after its transaction (answering it), or one that would not end
            raise BrokenPush(_failed_outside(magic, PUSH_FAILED_UNSURE, capture_output),
                             "the push failed outside its transaction and may have landed",
                             PUSH_FAILED_UNSURE) from exc
        raise BrokenPush(_failed_outside(magic, PUSH_FAILED_EARLY, capture_output),
                         "the push failed before its transaction opened; nothing changed",
                         PUSH_FAILED_EARLY) from exc
    finally:
        _drain(payload)


@dataclass
class _Stage:
    """How far a push went: ``opened`` once the repository gave it a transaction."""

    opened: bool = False


def _failed_outside(magic: bytes, message: str, capture_output: bool) -> Response:
    """The answer to a push that failed outside its transaction for no reason a refusal names, in
    its bundle's format: an ``error:abort`` part, or bundle1's result 0 and abort line."""
    if magic == b2.MAGIC:
        return _refused_reply([error_part(HgwireError(message), {})], b"", capture_output, message)
    return _refused1(b"", message)


def received(repo: HgRepository, chunks: Iterator[bytes]) -> AbstractContextManager[Iterator[bytes]]:
    """The rest of the bundle, kept whole first where the repository can (``HgPushSpool``)."""
    spool: Callable[[Iterator[bytes]], AbstractContextManager[Iterator[bytes]]] | None = getattr(
        repo, "spool_push", None)
    return nullcontext(chunks) if spool is None else spool(chunks)


def _not_received(magic: bytes, exc: HgwireError) -> Response:
    """A push refused before its transaction, in the answer its bundle's format gets."""
    if magic == b2.MAGIC:
        return StreamResponse(b2.write_bundle2([error_part(exc, {})]), refused=str(exc))
    return _refused1(b"", exc.message)


def _refused1(said: bytes, message: str, hint: str | None = None) -> PushResponse:
    """A refused bundle1 push's answer, as hg serve's: result 0, what the server said, then the
    ``abort:`` line (and the ``(hint)`` line); ``message`` is also kept for the server's log."""
    told = b"abort: " + message.encode("utf-8", "replace") + b"\n"
    if hint:
        told += b"(" + hint.encode("utf-8", "replace") + b")\n"
    return PushResponse(0, said + told, refused=message)


def _apply(
    repo: HgRepository, their_heads: Sequence[bytes], magic: bytes, rest: Iterator[bytes], capture_output: bool,
    limits: b2.Bundle2Limits, cg_limits: ChangegroupLimits, wait: LockWait | None = None,
    answer_failures: bool = False, stage: _Stage | None = None,
) -> Response:
    """Apply the bundle whose ``magic`` was read and whose ``rest`` is to come."""
    if magic == b2.MAGIC:
        return _unbundle2(repo, their_heads, StreamReader(rest), capture_output, limits, cg_limits, wait,
                          answer_failures, stage)
    whole = StreamReader(_prefixed(magic, rest))
    if magic == BUNDLE1_MAGIC:
        return _unbundle1(repo, their_heads, read_bundle1(whole, cg_limits), cg_limits.max_text, wait,
                          answer_failures, stage)
    # exchange.readbundle: a stream starting with NUL is a headerless HG10UN changegroup.
    return _unbundle1(repo, their_heads, ChangegroupDecoder(whole, b"01", cg_limits).groups(), cg_limits.max_text,
                      wait, answer_failures, stage)


class _Shielded(Iterator[bytes]):
    """Pass a payload's chunks on without ever closing it.

    The readers wrap the payload in generators; when those are collected,
    ``yield from`` would close a generator payload before ``_drain`` reads the
    rest of the push, and the connection would lose its place.
    """

    def __init__(self, source: Iterator[bytes]) -> None:
        self._source = source

    def __next__(self) -> bytes:
        return next(self._source)


def _prefixed(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _unbundle1(repo: HgRepository, their_heads: Sequence[bytes], groups: Iterator[RevisionGroup],
               max_text: int | None = None, wait: LockWait | None = None, answer_failures: bool = False,
               stage: _Stage | None = None) -> Response:
    wait, waited = kept_lock_messages(wait)
    try:
        tx = repo.transaction(max_text, wait)
    except HgwireError as exc:  # locked too long, or a disk that takes no write
        return _refused1(b"".join(waited), exc.message)
    if stage is not None:
        stage.opened = True
    report = IngestReport()
    try:
        check_push_heads(repo, their_heads, "preparing changes")
        ret = apply_changegroup(repo, tx, groups, report)
        check_push_rules(repo, tx, report)
        tx.commit()
    except PushRaced as exc:
        _abort_for(tx, exc)
        return PushError(exc.message.encode("utf-8"))
    except HgwireError as exc:
        _abort_for(tx, exc)
        return _refused1(b"".join([*waited, *hook_output(tx)]), exc.message, exc.hint)
    except Exception as exc:
        tx.abort()
        if not answer_failures:
            raise
        # hg serve's answer to an abort while it applies a bundle1: result 0, the abort line on stderr
        said = b"".join(waited) + _refused_output(tx, report)
        raise BrokenPush(_refused1(said, BROKEN_PUSH)) from exc
    except BaseException:
        tx.abort()
        raise
    before, closing, after = hook_output(tx)
    return PushResponse(ret, b"".join(waited) + before + report.progress() + report.notes + closing + report.summary()
                        + after)


def _abort_for(tx: HgTransaction, exc: HgwireError) -> None:
    """Abort ``tx``, refused for ``exc``: a transaction that records why (``abort_for``, optional: the
    gateway's, for the audit log) is told the reason the client is told."""
    abort_for: Callable[[str], None] | None = getattr(tx, "abort_for", None)
    if abort_for is not None:
        abort_for(exc.message)
    else:
        tx.abort()


def kept_lock_messages(wait: LockWait | None) -> tuple[LockWait, list[bytes]]:
    """``wait``, told to keep hg's ``waiting for lock …`` lines for the push's output where the
    transport tells the client none as they come (HTTP: hg serve sends them with the rest of
    the push's output), and the list they go to."""
    kept: list[bytes] = []
    if wait is not None and wait.notify is not None:
        return wait, kept
    return replace(wait or LockWait(), notify=lambda line: kept.append(line.encode("utf-8", "replace") + b"\n")), kept


def hook_output(tx: HgTransaction) -> tuple[bytes, bytes, bytes]:
    """What the repository's hooks wrote before the changegroup was applied, from then until the
    transaction closed (``pretxnchangegroup``, ``pretxnclose``…: hg prints its ``added N
    changesets`` after it), and after (``txnclose``, ``changegroup``, ``incoming``); from a
    transaction with ``take_output``, such as the gateway's, else nothing."""
    take = getattr(tx, "take_output", None)
    return take() if take is not None else (b"", b"", b"")


PROGRESS_MESSAGE = b"adding changesets\nadding manifests\nadding file changes\n"
INSTABILITIES = (b"orphan", b"phase-divergent", b"content-divergent")


@dataclass
class IngestReport:
    """What changegroups added, for the messages hg prints (``scmutil.reportchangegroup``)."""

    groups: int = 0
    changesets: int = 0
    revisions: int = 0
    files: int = 0
    heads_delta: int = 0
    streamed: int = 0
    """File revisions of the changegroup being applied, as sent (the backend may count the added ones)."""
    started: int = 0
    """Changegroups whose changesets the backend began to read (past ``prechangegroup``)."""
    markers: int = 0
    """Obsolescence markers the push's parts added (written to the transaction's journal as they come)."""
    obsolescence: tuple[int, ...] = (0, 0, 0, 0, 0)
    """New markers, changesets they obsoleted, new orphan, phase-divergent and content-divergent
    changesets (the transaction's optional ``obsolescence_summary``)."""
    notes: bytes = b""
    """What hg-evolve's checks said as the push closed, before its hooks' (``warn_bare_drafts``)."""

    def output(self) -> bytes:
        """``adding ...`` progress per changegroup, then ``added N changesets with M changes to F files``,
        then what markers did (``scmutil.registersummarycallback``)."""
        return self.progress() + self.notes + self.summary()

    def progress(self) -> bytes:
        """``adding ...`` per changegroup, as hg prints it while it applies one."""
        return PROGRESS_MESSAGE * self.groups

    def summary(self) -> bytes:
        """What hg prints once the transaction has closed: ``added N changesets …``, then what
        markers did."""
        lines = b""
        if self.changesets or self.revisions or self.files:
            heads = b" (%+d heads)" % self.heads_delta if self.heads_delta else b""
            lines += b"added %d changesets with %d changes to %d files%s\n" % (
                self.changesets,
                self.revisions,
                self.files,
                heads,
            )
        markers, obsoleted, *unstable = self.obsolescence
        if markers:
            lines += b"%d new obsolescence markers\n" % markers
        if obsoleted:
            lines += b"obsoleted %d changesets\n" % obsoleted
        for count, name in zip(unstable, INSTABILITIES, strict=True):
            if count:
                lines += b"%d new %s changesets\n" % (count, name)
        return lines


def _counted(groups: Iterator[RevisionGroup], report: IngestReport) -> Iterator[RevisionGroup]:
    report.started += 1  # first asked for when the backend starts reading
    for group in groups:
        yield RevisionGroup(group.section, group.path, _counted_revisions(group, report))


def _counted_revisions(group: RevisionGroup, report: IngestReport) -> Iterator[RevisionDelta]:
    count = 0
    for revision in group.revisions:
        count += 1
        yield revision
    if group.section is Section.FILE and count:
        report.files += 1
        report.streamed += count


def apply_changegroup(
    repo: HgRepository, tx: HgTransaction, groups: Iterator[RevisionGroup], report: IngestReport
) -> int:
    """Add one pushed changegroup; publish it on a publishing repository; return hg's result code."""
    report.groups += 1
    report.streamed = 0
    result = tx.add_changegroup(_counted(groups, report))
    if repo.publishing():
        tx.set_phase(PUBLIC, result.added)
    # hg counts the null head of an empty repository: a first push adds no head.
    before, after = max(result.heads_before, 1), max(result.heads_after, 1)
    report.changesets += len(result.added)
    report.revisions += report.streamed if result.file_revisions is None else result.file_revisions
    delta = after - before - result.closing_heads  # a head that closes its branch is no new head to hg
    report.heads_delta += delta
    return delta + 1 if delta >= 0 else delta - 1


def check_push_rules(repo: HgRepository, tx: HgTransaction, report: IngestReport) -> None:
    """What hg serve with hg-evolve's topic extension (and core hg) checks as a push's transaction
    closes, in its order (the validators' names sort them): the topics' publishing first
    (``topic.publish-bare-branch``), then ``enforce-single-head``, ``tns-reject-push``,
    ``topic.allow-publish``, ``topic-mode.server``, and core's ``single-head-per-branch``; a
    refusal raises, a warning goes to ``report.notes`` (said before the hooks' closing words)."""
    publish_bare_drafts(repo, tx)
    rules = getattr(repo, "single_head_rules", None)  # each optional: a backend may not have them
    heads_now: Callable[[Any], Sequence[tuple[bytes, Sequence[tuple[Node, bool]]]]] | None = getattr(
        tx, "branch_heads_now", None)
    checks = list(rules()) if rules is not None and heads_now is not None else []
    for rule in (r for r in checks if r.extension):
        _check_single_heads(rule, heads_now(rule) if heads_now is not None else [])
    _reject_topic_namespaces(repo, tx)
    _reject_publishing(repo, tx)
    reject_bare_drafts(repo, tx)
    warn_bare_drafts(repo, tx, report)
    for rule in (r for r in checks if not r.extension):
        _check_single_heads(rule, heads_now(rule) if heads_now is not None else [])


def _check_single_heads(rule: Any, heads: Sequence[tuple[bytes, Sequence[tuple[Node, bool]]]]) -> None:
    """Refuse a push leaving a branch with more than one head, in the words of the setting's owner:
    hg-evolve's ``N heads on "NAME"`` (the heads, comma-separated), or core hg's ``rejecting
    multiple heads on branch "NAME"`` (``N heads:`` the first four and how many others)."""
    for name, found in heads:
        if len(found) < 2:
            continue
        shown = name.decode("utf-8", "replace")
        short = [node.hex()[:12] for node, _closed in found]
        if rule.extension:
            raise PermissionDenied(f'{len(found)} heads on "{shown}"', hint=", ".join(short))
        listed = " ".join(short[:4]) + (f" and {len(short) - 4} others" if len(short) > 4 else "")
        raise PermissionDenied(f'rejecting multiple heads on branch "{shown}"',
                               hint=f"{len(found)} heads: {listed}")


def _reject_topic_namespaces(repo: HgRepository, tx: HgTransaction) -> None:
    """hg-evolve's ``[experimental] tns-reject-push``: a push leaving a new draft that names a topic
    namespace is refused, in the extension's words."""
    wanted = getattr(repo, "rejects_topic_namespaces", None)
    named = getattr(tx, "new_drafts_with_namespace", None)
    if wanted is None or named is None or not wanted():
        return
    nodes = named()
    if nodes:
        more = f" and {len(nodes) - 1} more" if len(nodes) > 1 else ""
        raise PermissionDenied(f"rejecting draft changesets with topic namespace: {nodes[0].hex()[:12]}{more}",
                               hint="this repository takes no topic namespaces: clear yours with "
                                    "'hg debug-topic-namespace --clear', amend these changesets (they then "
                                    "carry none) and push again")


def _reject_publishing(repo: HgRepository, tx: HgTransaction) -> None:
    """hg-evolve's ``[experimental] topic.allow-publish = no``: a push that makes any changeset
    public (``--publish``, a publishing repository, drafts it publishes itself, or changesets the
    client has public) is refused, in the extension's words."""
    allows = getattr(repo, "allows_publishing", None)
    changes = getattr(tx, "phase_changes", None)
    if allows is None or changes is None or allows():
        return
    published = [node for node, _old, new in changes() if new == PUBLIC]
    if published:
        others = f" and {len(published) - 1} others" if len(published) > 1 else ""
        raise PermissionDenied(f"rejecting publishing of changeset {published[0].hex()[:12]}{others}",
                               hint="this repository takes drafts only: push without --publish, "
                                    "and only changesets that are drafts on your side")


def reject_bare_drafts(repo: HgRepository, tx: HgTransaction) -> None:
    """hg-evolve's ``[experimental] topic-mode.server = enforce``: a push that would leave a new draft
    without a topic (once its phase parts are in: ``--publish`` passes) is refused, in the
    extension's words and with what to do."""
    nodes = _bare_new_drafts(repo, tx, "rejects_bare_drafts")
    if nodes:
        more = f" and {len(nodes) - 1} more" if len(nodes) > 1 else ""
        raise PermissionDenied(f"rejecting draft changesets: {nodes[0].hex()[:12]}{more}; this repository takes "
                               "drafts only on a topic: set one with 'hg topic NAME' (or 'hg topic -r REVS NAME') "
                               "and push again, or publish them with 'hg push --publish'")


def warn_bare_drafts(repo: HgRepository, tx: HgTransaction, report: IngestReport) -> None:
    """hg-evolve's ``[experimental] topic-mode.server = warning`` (or a mode the extension does not
    know): the push is taken, and its new drafts without a topic named, in the extension's words
    (``topic_server_mode``: optional, a backend may not have it)."""
    mode_of = getattr(repo, "topic_server_mode", None)
    mode = mode_of() if mode_of is not None else None
    if mode is None or mode in (b"ignore", b"enforce"):
        return
    bare = getattr(tx, "bare_new_drafts", None)
    nodes = list(bare()) if bare is not None else []
    if not nodes:
        return
    if mode == b"warning":
        more = b" and %d more" % (len(nodes) - 1) if len(nodes) > 1 else b""
        report.notes += b"pushed draft changeset without topic: %s%s\n" % (nodes[0].hex()[:12].encode(), more)
    else:
        report.notes += b"unknown 'topic-mode.server': %s\n" % mode


def publish_bare_drafts(repo: HgRepository, tx: HgTransaction) -> None:
    """hg-evolve's ``[experimental] topic.publish-bare-branch`` (heptapod's default): on a repository
    that does not publish but serves topics, the push's new drafts without a topic become public,
    their ancestors too, as the push commits (before its ``pretxnclose`` hooks)."""
    nodes = _bare_new_drafts(repo, tx, "publishes_bare_drafts")
    if nodes:
        tx.set_phase(PUBLIC, nodes)


def _bare_new_drafts(repo: HgRepository, tx: HgTransaction, setting: str) -> list[Node]:
    """The push's new drafts without a topic, where the repository's ``setting`` (a method, optional:
    a backend may not have it) asks for them; none otherwise."""
    wanted = getattr(repo, setting, None)
    bare = getattr(tx, "bare_new_drafts", None)
    if wanted is None or bare is None or not wanted():
        return []
    return list(bare())


@dataclass
class _PushOperation:
    """State of one bundle2 push: the open transaction and the reply being built."""

    repo: HgRepository
    tx: HgTransaction
    their_heads: Sequence[bytes]
    reply_caps: dict[bytes, list[bytes]] = field(default_factory=dict)
    replies: list[b2.OutPart] = field(default_factory=list)
    heads_checked: bool = False
    report: IngestReport = field(default_factory=IngestReport)
    cg_limits: ChangegroupLimits = ChangegroupLimits()

    def check_heads(self) -> None:
        """Check the ``heads`` argument once, after ``replycaps`` so a race is reported as pushraced."""
        if not self.heads_checked:
            check_push_heads(self.repo, self.their_heads, "preparing changes")
            self.heads_checked = True


def _unbundle2(
    repo: HgRepository, their_heads: Sequence[bytes], reader: StreamReader, capture_output: bool,
    limits: b2.Bundle2Limits = b2.DEFAULT_LIMITS, cg_limits: ChangegroupLimits = ChangegroupLimits(),
    wait: LockWait | None = None, answer_failures: bool = False, stage: _Stage | None = None,
) -> Response:
    wait, waited = kept_lock_messages(wait)
    try:
        tx = repo.transaction(cg_limits.max_text, wait)
    except HgwireError as exc:  # locked too long, or a disk that takes no write: nothing read yet
        return _refused_reply([error_part(exc, {})], b"".join(waited), capture_output, str(exc))
    if stage is not None:
        stage.opened = True
    hookargs = getattr(tx, "hookargs", None)  # optional: a transaction that runs the repository's hooks
    if hookargs is not None:
        hookargs["bundle2"] = "1"  # as hg's bundle2.applybundle tells every hook of the push
    op = _PushOperation(repo, tx, their_heads, cg_limits=cg_limits)
    try:
        for part in b2.Bundle2Reader(reader.remaining(), limits=limits, magic_read=True).parts():
            _process_part(op, part)
        op.check_heads()
        check_push_rules(repo, tx, op.report)
        summary = getattr(tx, "obsolescence_summary", None)  # also without markers: new orphans, ...
        if summary is not None:
            op.report.obsolescence = summary()
        tx.commit()
    except HgwireError as exc:
        _abort_for(tx, exc)
        said = b"".join(waited) + _refused_output(tx, op.report)
        return _refused_reply([error_part(exc, op.reply_caps)], said, capture_output, str(exc))
    except Exception as exc:
        tx.abort()
        if not answer_failures:
            raise
        # hg serve's answer to an abort raised while it applies a bundle2: its error:abort part
        said = b"".join(waited) + _refused_output(tx, op.report)
        reply = _refused_reply([error_part(HgwireError(BROKEN_PUSH), {})], said, capture_output, BROKEN_PUSH)
        raise BrokenPush(reply) from exc
    except BaseException:
        tx.abort()
        raise
    before, closing, after = hook_output(tx)
    output = (b"".join(waited) + before + op.report.progress() + op.report.notes + closing + op.report.summary()
              + after)
    if capture_output and output:
        op.replies.append(b2.OutPart(b2.PART_OUTPUT, payload=[output], mandatory=False))
        output = b""
    return StreamResponse(b2.write_bundle2(op.replies), output=output)


ABORT_MESSAGE = b"transaction abort!\nrollback completed\n"


def _refused_reply(parts: list[b2.OutPart], said: bytes, capture_output: bool, refused: str) -> StreamResponse:
    """A refused bundle2 push's reply: what the server said first (in an ``output`` part where the
    transport captures it), then the error."""
    if capture_output and said:
        return StreamResponse(b2.write_bundle2([b2.OutPart(b2.PART_OUTPUT, payload=[said], mandatory=False), *parts]),
                              refused=refused)
    return StreamResponse(b2.write_bundle2(parts), output=said, refused=refused)


def _refused_output(tx: HgTransaction, report: IngestReport) -> bytes:
    """What hg's server says of a push it refuses, before the error: the hooks' words, with
    ``adding ...`` for each changegroup it began to add (after the ``prechangegroup`` hooks), then,
    once its transaction was open (``opened``, told by the gateway's transaction), the rollback."""
    before, closing, after = hook_output(tx)
    # hg's transaction aborts silently where nothing went to its journal yet: a push of phases or
    # bookmarks only (they are written as it closes), refused
    wrote = report.started or report.markers
    rollback = ABORT_MESSAGE if getattr(tx, "opened", False) and wrote else b""
    return before + PROGRESS_MESSAGE * report.started + report.notes + closing + after + rollback


def error_part(exc: HgwireError, reply_caps: Mapping[bytes, Sequence[bytes]]) -> b2.OutPart:
    """The bundle2 part reporting a failed push, limited to what the client's replycaps accept."""
    accepted = reply_caps.get(b"error", ())
    if isinstance(exc, PushRaced) and b"pushraced" in accepted:
        return b2.OutPart(b2.PART_ERROR_PUSHRACED, [(b"message", _param(exc.message))])
    if isinstance(exc, UnsupportedContent) and b"unsupportedcontent" in accepted:
        params = [(b"parttype", exc.part_type)] if exc.part_type else []
        if exc.params:
            params.append((b"params", b"\0".join(exc.params)[: b2.MAX_PARAM_LEN]))
        return b2.OutPart(b2.PART_ERROR_UNSUPPORTEDCONTENT, params)
    if isinstance(exc, PushkeyFailed) and b"pushkey" in accepted:
        return b2.OutPart(
            b2.PART_ERROR_PUSHKEY,
            [(b"in-reply-to", b"%d" % exc.part_id)],
            [(b"namespace", exc.namespace), (b"key", exc.key[: b2.MAX_PARAM_LEN])],
        )
    return _abort_part(exc.message, exc.hint)


def _process_part(op: _PushOperation, part: b2.InPart) -> None:
    if part.type != b2.PART_REPLYCAPS:
        op.check_heads()
    row = PUSH_PART_HANDLERS.get(part.type)
    if row is None:
        if part.mandatory:
            raise UnsupportedContent(f"unsupported bundle2 part {quoted(part.type, 60)}", part_type=part.type)
        return
    known_params, handler = row
    unknown = tuple(k for k in part.mandatory_keys if k not in known_params)
    if unknown:
        raise UnsupportedContent(f"unsupported parameters of part {quoted(part.type, 60)}", part.type, unknown)
    handler(op, part)


def _read_nodes(part: b2.InPart) -> list[Node]:
    data = part.read_all()
    if len(data) % 20:
        raise ProtocolError(f"a {part.type.decode('utf-8', 'replace')} part must hold whole 20-byte nodes")
    return [Node(data[i : i + 20]) for i in range(0, len(data), 20)]


def _handle_replycaps(op: _PushOperation, part: b2.InPart) -> None:
    op.reply_caps = hg_wire.decode_bundle2_caps(part.read_all())


def served_branchmap(repo: HgRepository) -> Mapping[bytes, Sequence[Node]]:
    """What ``branchmap`` answers, and what a push's ``check:updated-heads`` is checked against: the
    topic-aware map where the repository serves hg-evolve's topics and does not publish (the heads
    the client was told), otherwise the branch map."""
    topical = getattr(repo, "topic_branchmap", None)  # optional: a backend may not serve topics
    found = topical() if topical is not None else None
    return repo.branchmap() if found is None else found


def _handle_check_heads(op: _PushOperation, part: b2.InPart) -> None:
    if sorted(_read_nodes(part)) != sorted(wire_heads(op.repo)):
        raise PushRaced(RACE_MESSAGE)


def _handle_check_updated_heads(op: _PushOperation, part: b2.InPart) -> None:
    current = {node for heads in served_branchmap(op.repo).values() for node in heads}
    if not set(_read_nodes(part)) <= current:
        raise PushRaced(RACE_MESSAGE)


def _handle_check_phases(op: _PushOperation, part: b2.InPart) -> None:
    """Check the phases the client saw: its draft roots, then its public heads.

    The client takes draft roots from ``listkeys phases`` even on a publishing
    repository, so those are checked against the current roots; public heads are
    checked against ``phase_heads``, whose publishing shortcut calls all public.
    """
    expected = decode_phase_heads(part.read_all())
    roots = {key for key, value in op.repo.listkeys(b"phases").items() if value == b"%d" % DRAFT}
    # A draft root the client saw in listkeys may be hidden (obsoleted by an amend or a prune that
    # was pushed): hg checks against the unfiltered repository, so a root that still is one is as
    # expected; the others must be changesets the repository shows.
    nodes = [node for phase, node in expected if not (phase == DRAFT and hg_wire.hex_node(node) in roots)]
    if not all(known_nodes(op.repo, nodes)):
        raise PushRaced(RACE_MESSAGE)
    drafts = {node for phase, node in op.repo.phase_heads(nodes) if phase == DRAFT}
    for phase, node in expected:
        is_draft = hg_wire.hex_node(node) in roots if phase == DRAFT else node in drafts
        actual = DRAFT if is_draft else PUBLIC
        if actual != phase:
            names = PHASE_NAMES.get(actual, "?"), PHASE_NAMES.get(phase, "?")
            raise PushRaced(f"{RACE_MESSAGE} ({node.hex()[:12]} is {names[0]} expected {names[1]})")


def bookmark_race(name: bytes, expected: Node | None, current: Node | None) -> str:
    """hg's words for a bookmark another push moved meanwhile (``bundle2.handlecheckbookmarks``)."""
    shown = name.decode("utf-8", "replace")
    if expected is None:
        return f'{RACE_MESSAGE} (bookmark "{shown}" set on {current.hex()[:12] if current else "?"}, expected missing)'
    if current is None:
        return f'{RACE_MESSAGE} (bookmark "{shown}" is missing, expected {expected.hex()[:12]})'
    return f'{RACE_MESSAGE} (bookmark "{shown}" move from {expected.hex()[:12]} to {current.hex()[:12]})'


def _handle_check_bookmarks(op: _PushOperation, part: b2.InPart) -> None:
    current = op.repo.bookmarks()
    for name, node in decode_bookmarks(part.read_all()):
        if current.get(name) != node:
            raise PushRaced(bookmark_race(name, node, current.get(name)))


TREE_MANIFESTS_REFUSED = ("this push holds tree manifests (its repository was made with experimental.treemanifest), "
                          "which this server does not serve; push it to a server that serves that format")


def _handle_changegroup(op: _PushOperation, part: b2.InPart) -> None:
    """Apply a pushed changegroup.  ``exp-sidedata`` says only that the client's repository keeps sidedata
    (``format.exp-use-copies-side-data-changeset``), ``exp-wanted-sidedata`` what it wants of it: the stream
    is of a version advertised here, none of which carries sidedata, so both are read and dropped, as by
    ``hg serve`` on a repository without sidedata (the client writes copies to its filelogs too).
    ``treemanifest`` (a client's repository made with ``experimental.treemanifest``) is refused by name."""
    if b"treemanifest" in part.params:
        raise UnsupportedFeature(TREE_MANIFESTS_REFUSED)
    version = part.params.get(b"version", b"01")
    reader = StreamReader(part.payload)
    decoder = ChangegroupDecoder(reader, version, op.cg_limits)
    ret = apply_changegroup(op.repo, op.tx, decoder.groups(), op.report)
    if not reader.at_eof():
        # A damaged length can end a changegroup early; what it cut off must not go unnoticed.
        raise ProtocolError("the pushed bundle is damaged (bytes follow the end of its changegroup); push again")
    op.replies.append(_reply(b2.PART_REPLY_CHANGEGROUP, part.id, ret))


def _reply(part_type: bytes, in_reply_to: int, ret: int) -> b2.OutPart:
    params = [(b"in-reply-to", b"%d" % in_reply_to), (b"return", b"%d" % ret)]
    return b2.OutPart(part_type, advisory_params=params, mandatory=False)


def _handle_phase_heads(op: _PushOperation, part: b2.InPart) -> None:
    """Publish the public heads the client sends; other phases are not lowered by a push.

    hg's ``updatephases`` only advances boundaries, and hg's client sends public
    heads alone (``exchange._pushb2phaseheads``).  A secret changeset of the
    server's that the push carries again is made draft by the changegroup's own
    transaction, as by hg's ``changegroup.apply``, not by this part.
    """
    public = [node for phase, node in decode_phase_heads(part.read_all()) if phase == PUBLIC]
    if public:
        op.tx.set_phase(PUBLIC, public)


def _handle_bookmarks(op: _PushOperation, part: b2.InPart) -> None:
    current = op.repo.bookmarks()
    changes = decode_bookmarks(part.read_all())
    gate = getattr(op.tx, "prepushkey", None)  # optional: a transaction that runs the repository's hooks
    if gate is not None:  # all of them before any bookmark moves, as hg's handlebookmark
        for name, node in changes:
            old = current.get(name)
            gate(b"bookmarks", name, old.hex().encode() if old else b"", node.hex().encode() if node else b"",
                 compat=True)
    for name, node in changes:
        if not op.tx.set_bookmark(name, current.get(name), node):
            raise PushRaced(f'{RACE_MESSAGE} (bookmark "{name.decode("utf-8", "replace")}" changed)')


def _handle_pushkey(op: _PushOperation, part: b2.InPart) -> None:
    p = part.params
    try:
        namespace, key, old, new = p[b"namespace"], p[b"key"], p[b"old"], p[b"new"]
    except KeyError as exc:
        raise ProtocolError("a pushkey part needs namespace, key, old and new") from exc
    ok = apply_pushkey(op.repo, op.tx, namespace, key, old, new)
    op.replies.append(_reply(b2.PART_REPLY_PUSHKEY, part.id, int(ok)))
    if part.mandatory and not ok:
        raise PushkeyFailed(
            f"failed to update {namespace.decode('utf-8', 'replace')} {key.decode('utf-8', 'replace')}",
            part.id,
            namespace,
            key,
        )


def _handle_obsmarkers(op: _PushOperation, part: b2.InPart) -> None:
    """Add pushed markers (``bundle2.handleobsmarker``): refused when the repository may not create
    markers, unless the part is advisory (then dropped); answered with ``reply:obsmarkers``."""
    data = part.read_all()
    enabled = getattr(op.repo, "obsolescence_enabled", None)
    add = getattr(op.tx, "add_obsmarkers", None)
    if enabled is None or add is None or not enabled(b"createmarkers"):
        if not part.mandatory:
            return
        raise UnsupportedFeature("creating obsolete markers is not enabled on this repo",
                                 hint="the server's hgrc needs [experimental] evolution = all")
    _version, markers = obs.decode(data)
    new = add(markers)
    op.report.markers += new
    hookargs = getattr(op.tx, "hookargs", None)
    if hookargs is not None:  # hg's tr.hookargs: every later hook of the push is told the count
        hookargs["new_obsmarkers"] = str(int(hookargs.get("new_obsmarkers", "0")) + new)
    op.replies.append(b2.OutPart(b"reply:obsmarkers", advisory_params=[
        (b"in-reply-to", b"%d" % part.id), (b"new", b"%d" % new)], mandatory=False))


def _ignore_part(op: _PushOperation, part: b2.InPart) -> None:
    """Parts the server reads and drops (client ``output``)."""


PartHandler = Callable[[_PushOperation, b2.InPart], None]

def _handle_pushvars(op: _PushOperation, part: b2.InPart) -> None:
    """``hg push --pushvars KEY=VALUE``: its advisory parameters, handed to the transaction, which
    tells them to the push's hooks where the repository allows it (hg's ``bundle2getvars``); a
    transaction that runs no hooks ignores them, as hg does without ``[push] pushvars.server``."""
    add = getattr(op.tx, "add_push_vars", None)  # optional: a transaction that runs the repository's hooks
    if add is not None:
        add([(key, value) for key, value in part.params.items() if key not in part.mandatory_keys])


PUSH_PART_HANDLERS: Mapping[bytes, tuple[frozenset[bytes], PartHandler]] = {
    b2.PART_REPLYCAPS: (frozenset(), _handle_replycaps),
    b2.PART_CHECK_HEADS: (frozenset(), _handle_check_heads),
    b2.PART_CHECK_UPDATED_HEADS: (frozenset(), _handle_check_updated_heads),
    b2.PART_CHECK_PHASES: (frozenset(), _handle_check_phases),
    b2.PART_CHECK_BOOKMARKS: (frozenset(), _handle_check_bookmarks),
    b2.PART_CHANGEGROUP: (frozenset({b"version", b"nbchanges", b"exp-sidedata", b"exp-wanted-sidedata",
                                     b"treemanifest"}), _handle_changegroup),
    b2.PART_PHASE_HEADS: (frozenset(), _handle_phase_heads),
    b2.PART_BOOKMARKS: (frozenset(), _handle_bookmarks),
    b2.PART_PUSHKEY: (frozenset({b"namespace", b"key", b"old", b"new"}), _handle_pushkey),
    b2.PART_OUTPUT: (frozenset(), _ignore_part),
    b"obsmarkers": (frozenset(), _handle_obsmarkers),
    b"pushvars": (frozenset(), _handle_pushvars),
}
"""One row per bundle2 part a push may carry: the mandatory parameters understood, and the handler."""
