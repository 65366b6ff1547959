"""upload-pack, protocol v0/v1: ref advertisement, want/have negotiation, pack framing.

gitprotocol-pack(5) "Reference Discovery", "Packfile Negotiation" and
"Packfile Data"; gitprotocol-capabilities(5) for multi_ack, multi_ack_detailed,
no-done, side-band(-64k) and the shallow family.  The negotiation follows git's
``upload-pack.c: get_common_commits``: the graph questions (do we have this
object?  can every want reach a common commit?) are the caller's, answered in
a ``Negotiation``; this core only decides which ACK/NAK lines to write.

Sans-IO (h11's shape): ``receive_data`` buffers, ``next_event`` returns an
event, ``Signal.NEED_DATA`` or ``Signal.PAUSED`` (waiting for the caller's
``shallow_info``/``acknowledge``/``pack_sent``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from backends.interfaces import SHA1_FORMAT, FilterRules, ObjectFormat, ObjectId
from protocols import git_caps, pktline, sideband
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_reflines import V0, RefRun
from protocols.pkt_machine import RequestReader
from protocols.pktline import Signal, Special
from protocols.text import quoted

MAX_WANTS = 1 << 18
"""A clone wants every tag and branch it is shown: a repository of 100,000 annotated tags (a mirror,
a CI that tags every build) has its clone name 100,000 objects; 65,536 refused it ("more than
65536 wants"), where git daemon has no bound.  262,144 serves such a clone with room to spare and
holds about 23 MB at most while a request is read (a 40-byte id and its list's and tuple's slots
each, over v0 and v2 alike); 1,048,576 let one anonymous connection hold about 90 MB and 3.5 s of
CPU with made-up ids (git daemon stops at the first id it does not have), 64 connections of an
address some 6 GB.  A larger mirror's operator raises ``[limits] max_wants``."""
MAX_SHALLOWS = 65536
_KNOWN_CAPS = frozenset(git_caps.UPLOAD_PACK_V0) | {git_caps.AGENT, git_caps.OBJECT_FORMAT, git_caps.SESSION_ID}
"""The capabilities a want line after the first adds to the request (``UploadPackV0._want``)."""
MAX_HAVES = 1 << 18
MAX_REF_PREFIXES = 65536
MAX_DEEPEN_NOT = 256
MAX_REF_NAME = 4096
INFINITE_DEPTH = 0x7FFFFFFF

_HEX_BYTES = b"0123456789abcdef"


def parse_oid(text: bytes, hex_len: int = 40) -> ObjectId:
    """Parse ``hex_len`` hex digits (either case, as git's get_oid_hex) to a lowercase ObjectId:
    40 in a SHA-1 repository, 64 in a SHA-256 one."""
    oid = text.lower()
    if len(oid) != hex_len or oid.translate(None, _HEX_BYTES):  # what is left is not hex
        raise ProtocolError(f"expected an object id, got {quoted(text, 80)}")
    return ObjectId(oid)


_SIZE_UNITS = {b"": 1, b"k": 1 << 10, b"m": 1 << 20, b"g": 1 << 30}
MAX_FILTER_SPEC = 256


MAX_TREE_DEPTH = 1 << 20
"""The largest ``tree:<depth>`` taken; deeper than any tree, so the same as no filter."""


OBJECT_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
"""``object:type=<name>``: the type numbers of git's object types."""
MAX_COMBINED = 32
"""Filters a ``combine:`` spec may hold (a ``combine:`` inside one is refused)."""


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """A partial-clone filter: ``blob:none`` (blob_limit -1), ``blob:limit=<n>``, ``tree:<depth>``,
    ``object:type=<type>``, or a ``combine:`` of them (an object is sent when every one of them
    sends it: the smallest limit and depth, the types they all allow).  What the client named (its
    wants, what a wanted tag names) is sent whatever the filter, as by git (``backends.git_pack``)."""

    blob_limit: int | None = None
    """Omit blobs of this size or larger (-1: every blob) unless wanted, as git does."""
    tree_depth: int | None = None
    """Omit trees and blobs at this depth or deeper (a commit's root tree is at 0) unless wanted."""
    object_types: frozenset[int] | None = None
    """Omit objects of other types (type numbers) unless wanted; None: every type."""
    chosen: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    """The filters the spec named, by git's names for them (``combine``, then each of its parts),
    each with its ``tree:`` depth (0 for the others): what ``uploadpackfilter.*`` rules judge."""

    def combined(self, other: ObjectFilter) -> ObjectFilter:
        """What both filters let through."""
        def least(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else min(a, b)

        types = other.object_types if self.object_types is None else \
            self.object_types if other.object_types is None else self.object_types & other.object_types
        return ObjectFilter(least(self.blob_limit, other.blob_limit), least(self.tree_depth, other.tree_depth), types)


_UNSUPPORTED = ("hgwire supports blob:none, blob:limit=<n>, tree:<depth>, object:type=<type> and combine: "
                "of these")


def parse_filter(spec: bytes) -> ObjectFilter:
    """Parse the partial-clone filter specs hgwire implements, as git's ``list-objects-filter-options``
    reads them; others (``sparse:oid=``) are refused, not ignored."""
    if len(spec) > MAX_FILTER_SPEC:
        raise ProtocolError("filter spec too long")
    if spec.startswith(b"combine:"):
        parts = _combined_parts(spec)
        result = ObjectFilter()
        for part in parts:
            if part.startswith(b"combine:"):
                raise ProtocolError(f"unsupported filter spec {quoted(spec, 80)}: a combine: inside a combine:")
            one = _parse_one(part)
            result = replace(result.combined(one), chosen=result.chosen + one.chosen)
        return replace(result, chosen=(("combine", 0),) + result.chosen)
    return _parse_one(spec)


MULTIPLE_FILTERS = "multiple filter-specs cannot be combined"
"""git's upload-pack's refusal of a second ``filter`` line in one request (the first one stays)."""


def filter_refusal(rules: FilterRules, object_filter: ObjectFilter) -> str | None:
    """Why git's upload-pack, with these ``uploadpackfilter.*`` rules, refuses a fetch naming
    ``object_filter`` (in its words), or None when it takes it."""
    for name, depth in object_filter.chosen:
        if not rules.allows(name):
            return f"filter '{name}' not supported"
        if name == "tree" and rules.tree_max_depth is not None and depth > rules.tree_max_depth:
            return f"tree filter allows max depth {rules.tree_max_depth}, but got {depth}"
    return None


def _combined_parts(spec: bytes) -> list[bytes]:
    """The filters of ``combine:<spec>+<spec>…``, each %-decoded (git encodes its reserved bytes)."""
    parts = spec[len(b"combine:"):].split(b"+")
    if len(parts) > MAX_COMBINED:
        raise ProtocolError(f"a combine: filter spec holds more than {MAX_COMBINED} filters")
    decoded = []
    for part in parts:
        if not part:
            raise ProtocolError("expected something after combine: or +")  # git's words
        pieces = part.split(b"%")
        out = bytearray(pieces[0])
        for piece in pieces[1:]:
            code = piece[:2]
            if len(code) != 2 or not all(c in _HEX_ANY_CASE for c in code):
                raise ProtocolError(f"unsupported filter spec {quoted(spec, 80)}: a bad %-escape")
            out.append(int(code, 16))
            out += piece[2:]
        decoded.append(bytes(out))
    return decoded


_HEX_ANY_CASE = frozenset(b"0123456789abcdefABCDEF")


def _parse_one(spec: bytes) -> ObjectFilter:
    if spec == b"blob:none":
        return ObjectFilter(blob_limit=-1, chosen=(("blob:none", 0),))
    if spec.startswith(b"blob:limit="):
        value = spec[len(b"blob:limit=") :].lower()
        digits, unit = (value[:-1], value[-1:]) if value[-1:] in (b"k", b"m", b"g") else (value, b"")
        if digits.isdigit() and len(digits) <= 18:
            return ObjectFilter(blob_limit=int(digits) * _SIZE_UNITS[unit], chosen=(("blob:limit", 0),))
    if spec.startswith(b"tree:"):
        digits = spec[len(b"tree:") :]
        if digits.isdigit() and len(digits) <= 7 and int(digits) <= MAX_TREE_DEPTH:
            return ObjectFilter(tree_depth=int(digits), chosen=(("tree", int(digits)),))
    if spec.startswith(b"object:type="):
        kind = OBJECT_TYPES.get(spec[len(b"object:type="):])
        if kind is not None:
            return ObjectFilter(object_types=frozenset({kind}), chosen=(("object:type", 0),))
    raise ProtocolError(f"unsupported filter spec {quoted(spec, 80)}: {_UNSUPPORTED}")


class AckMode(enum.Enum):
    """Which acknowledgement dialect the client chose (multi_ack_detailed > multi_ack > none)."""

    SINGLE = "single"
    MULTI = "multi_ack"
    DETAILED = "multi_ack_detailed"


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """The client's wants, capabilities and shallow/deepen request (first flush)."""

    wants: tuple[ObjectId, ...]
    caps: frozenset[bytes]
    shallows: tuple[ObjectId, ...] = ()
    depth: int = 0
    deepen_since: int | None = None
    deepen_not: tuple[bytes, ...] = ()
    object_filter: ObjectFilter | None = None

    @property
    def blob_limit(self) -> int | None:
        """The pack's blob size limit for a partial clone (-1: no blobs), or None."""
        return self.object_filter.blob_limit if self.object_filter is not None else None

    @property
    def tree_depth(self) -> int | None:
        """The pack's tree depth limit for a partial clone (``tree:<depth>``), or None."""
        return self.object_filter.tree_depth if self.object_filter is not None else None

    @property
    def object_types(self) -> frozenset[int] | None:
        """The types a partial clone's pack holds (``object:type=``), besides wanted objects; None: all."""
        return self.object_filter.object_types if self.object_filter is not None else None

    @property
    def deepen(self) -> bool:
        """Whether the client asked to change its shallow boundary (then shallow info is sent)."""
        return self.depth > 0 or self.deepen_since is not None or bool(self.deepen_not)

    @property
    def deepen_relative(self) -> bool:
        return git_caps.DEEPEN_RELATIVE in self.caps

    @property
    def thin_pack(self) -> bool:
        return git_caps.THIN_PACK in self.caps

    @property
    def ofs_delta(self) -> bool:
        return git_caps.OFS_DELTA in self.caps

    @property
    def include_tag(self) -> bool:
        return git_caps.INCLUDE_TAG in self.caps


@dataclass(frozen=True, slots=True)
class NoWants:
    """The client wants nothing (``git ls-remote``, an up-to-date fetch): the session ends."""


@dataclass(frozen=True, slots=True)
class Haves:
    """One round of ``have`` lines, ended by a flush or by ``done``.

    ``readiness`` says whether the caller must also answer ``ready`` questions
    (multi_ack modes only).
    """

    haves: tuple[ObjectId, ...]
    done: bool
    readiness: bool


@dataclass(frozen=True, slots=True)
class SendPack:
    """Negotiation is over: stream the pack now, then call ``pack_sent``."""


@dataclass(frozen=True, slots=True)
class EndOfRequest:
    """Stateless RPC: this request's response is complete without a pack."""


@dataclass(frozen=True, slots=True)
class ClientClosed:
    """The client closed the connection where that is a normal end (before a pack)."""


Event = FetchRequest | NoWants | Haves | SendPack | EndOfRequest | ClientClosed


@dataclass(frozen=True, slots=True)
class HaveVerdict:
    """The caller's answer for one have: do we have it, and is every want now covered."""

    oid: ObjectId
    common: bool
    ready: bool = False


@dataclass(frozen=True, slots=True)
class Negotiation:
    """The caller's answer to a ``Haves`` round; ``ready`` is ok_to_give_up at its end."""

    verdicts: tuple[HaveVerdict, ...]
    ready: bool = False


class State(enum.Enum):
    WANTS = "wants"
    REQUESTED = "requested"
    HAVES = "haves"
    NEGOTIATING = "negotiating"
    SENDING = "sending"
    DONE = "done"


class Input(enum.Enum):
    WANT = "want"
    SHALLOW = "shallow"
    DEEPEN = "deepen"
    FILTER = "filter"
    FLUSH = "flush"
    EMPTY_FLUSH = "empty-flush"
    HAVE = "have"
    DONE = "done"
    EOF = "eof"
    SHALLOW_SENT = "shallow-sent"
    CONTINUE = "continue"
    READY = "ready"
    STATELESS_END = "stateless-end"
    PACK_SENT = "pack-sent"


_TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.WANTS, Input.WANT): State.WANTS,
    (State.WANTS, Input.SHALLOW): State.WANTS,
    (State.WANTS, Input.DEEPEN): State.WANTS,
    (State.WANTS, Input.FILTER): State.WANTS,
    (State.WANTS, Input.FLUSH): State.REQUESTED,
    (State.WANTS, Input.EMPTY_FLUSH): State.DONE,
    (State.WANTS, Input.EOF): State.DONE,
    (State.REQUESTED, Input.SHALLOW_SENT): State.HAVES,
    (State.HAVES, Input.HAVE): State.HAVES,
    (State.HAVES, Input.FLUSH): State.NEGOTIATING,
    (State.HAVES, Input.DONE): State.NEGOTIATING,
    (State.HAVES, Input.EOF): State.DONE,
    (State.NEGOTIATING, Input.CONTINUE): State.HAVES,
    (State.NEGOTIATING, Input.READY): State.SENDING,
    (State.NEGOTIATING, Input.STATELESS_END): State.DONE,
    (State.SENDING, Input.PACK_SENT): State.DONE,
}
"""Every legal (state, input) pair of an upload-pack v0 exchange; anything else is an error."""

_READING = frozenset({State.WANTS, State.HAVES})


def _ack_mode(caps: frozenset[bytes]) -> AckMode:
    if git_caps.MULTI_ACK_DETAILED in caps:
        return AckMode.DETAILED
    if git_caps.MULTI_ACK in caps:
        return AckMode.MULTI
    return AckMode.SINGLE


def _band_limit(caps: frozenset[bytes]) -> int | None:
    if git_caps.SIDE_BAND_64K in caps:
        return sideband.MAX_PAYLOAD_64K
    if git_caps.SIDE_BAND in caps:
        return sideband.MAX_PAYLOAD_SMALL
    return None


def advertisement(
    refs: Mapping[bytes, ObjectId],
    peeled: Mapping[bytes, ObjectId],
    symrefs: Mapping[bytes, bytes],
    agent: bytes,
    flags: tuple[bytes, ...] = git_caps.UPLOAD_PACK_V0,
    object_format: ObjectFormat = SHA1_FORMAT,
    session_id: bytes | None = None,
    run: RefRun | None = None,
) -> bytes:
    """The v0 ref advertisement: HEAD first, refs sorted, peeled tags as ``^{}``, then flush.

    Capabilities ride on the first line, in git 2.39's order: the flags but ``filter``, HEAD's
    ``symref=``, ``filter``, ``session-id=`` (``transfer.advertiseSID``), ``object-format=``,
    ``agent=``.  An empty repository gets a bare flush,
    as git 2.39's upload-pack sends (tests/transcripts/git/clone-empty-v0.txt).
    Only HEAD's symref is sent, as git does, so the line cannot overflow.  ``run``: ``refs`` as
    a run of lines encoded once (``git_reflines``), the lines of HEAD and the others it does not
    hold written here (a mirror's 200,000 lines were each written at every request: 0.1 s).
    """
    words = [f for f in flags if f != git_caps.FILTER]
    if b"HEAD" in refs and b"HEAD" in symrefs:
        words.append(git_caps.SYMREF + b"=HEAD:" + symrefs[b"HEAD"])
    if git_caps.FILTER in flags:
        words.append(git_caps.FILTER)
    if session_id is not None:
        words.append(git_caps.SESSION_ID + b"=" + session_id)
    caps = git_caps.format_caps(words, [(git_caps.OBJECT_FORMAT, object_format.name.encode()), (git_caps.AGENT, agent)])
    if run is not None and run.lines.encodable:
        def line(name: bytes) -> bytes:
            return pktline.encode(refs[name] + b" " + name + b"\n") + (
                pktline.encode(peeled[name] + b" " + name + b"^{}\n") if name in peeled else b"")

        if b"HEAD" in refs:
            head = [pktline.encode(refs[b"HEAD"] + b" HEAD\0" + caps + b"\n")]
            if b"HEAD" in peeled:
                head.append(pktline.encode(peeled[b"HEAD"] + b" HEAD^{}\n"))
            return b"".join([*head, run.spliced(V0, line, skip=frozenset([b"HEAD"])), pktline.FLUSH])
        # no HEAD (unborn, or naming a branch that does not exist): the capabilities go on the first
        # ref's line (a repository whose HEAD names master beside a main was written line by line)
        body = run.spliced(V0, line)
        if not body:
            return pktline.FLUSH
        size = int(body[:4], 16)
        return b"".join([pktline.encode(body[4:size - 1] + b"\0" + caps + b"\n"), body[size:], pktline.FLUSH])
    names = ref_order(refs)
    if not names:
        return pktline.FLUSH
    first = names[0]
    out = [pktline.encode(refs[first] + b" " + first + b"\0" + caps + b"\n")]
    if first in peeled:
        out.append(pktline.encode(peeled[first] + b" " + first + b"^{}\n"))
    # one formatting per ref, its peeled line with it: pktline.encode's call, check and
    # concatenations cost three times as much (26 ms of a 20,000-ref advertisement), a line apart
    # each a third more (a mirror's 100,000 tags); a line near git's limit goes through encode's check
    append, peeled_of = out.append, peeled.get
    for name, oid in zip(names[1:], map(refs.__getitem__, names[1:])):
        size = len(oid) + len(name) + 6
        target = peeled_of(name)
        if size > pktline.MAX_PKT - 3:
            append(pktline.encode(oid + b" " + name + b"\n"))
            if target is not None:
                append(pktline.encode(target + b" " + name + b"^{}\n"))
        elif target is None:
            append(b"%04x%s %s\n" % (size, oid, name))
        else:
            append(b"%04x%s %s\n%04x%s %s^{}\n" % (size, oid, name, len(target) + len(name) + 9, target, name))
    out.append(pktline.FLUSH)
    return b"".join(out)


def ref_order(refs: Mapping[bytes, ObjectId]) -> list[bytes]:
    """The names of ``refs`` as git lists them: HEAD first, then sorted."""
    names = sorted(refs)
    if b"HEAD" in refs:
        names.remove(b"HEAD")
        names.insert(0, b"HEAD")
    return names


@dataclass(frozen=True, slots=True)
class RequestBounds:
    """How much one upload-pack request (v0 or v2) may name; a server may lower or raise them."""

    wants: int = MAX_WANTS
    haves: int = MAX_HAVES
    """Over a whole v0 negotiation, or in one v2 fetch request."""
    ref_prefixes: int = MAX_REF_PREFIXES
    """v2 ls-refs: past this many prefixes the client gets every ref (git's ls-refs.c), not an error."""
    pkt_line: int = pktline.MAX_PKT
    """Longest pkt-line taken from the client (git's own limit by default; never above it)."""


class UploadPackV0(RequestReader[State, Input, Event]):
    """The server side of one v0/v1 upload-pack exchange (or one stateless-RPC request)."""

    def __init__(self, stateless: bool = False, max_buffer: int = pktline.DEFAULT_MAX_BUFFER,
                 bounds: RequestBounds = RequestBounds(), object_format: ObjectFormat = SHA1_FORMAT) -> None:
        super().__init__("upload-pack", _TRANSITIONS, _READING, State.WANTS,
                         pktline.PktLineDecoder(max_buffer, bounds.pkt_line), object_format)
        self._stateless = stateless
        self._bounds = bounds
        self._wants: list[ObjectId] = []
        self._caps: set[bytes] = set()
        self._shallows: list[ObjectId] = []
        self._depth = 0
        self._deepen_since: int | None = None
        self._deepen_not: list[bytes] = []
        self._object_filter: ObjectFilter | None = None
        self.allow_filter = True
        """Whether ``filter`` was offered (``uploadpack.allowFilter`` not false): a filter line then refused."""
        self.filter_rules = FilterRules()
        """``uploadpackfilter.*``: a filter they do not allow is refused in git's words."""
        self._round: list[ObjectId] = []
        self._haves_seen = 0
        self._common: set[ObjectId] = set()
        self._last_common: ObjectId | None = None
        self._sent_ready = False
        self._round_done = False
        self.request: FetchRequest | None = None
        self.client_session_id: str | None = None
        """The ``session-id=`` the client sent with its wants (``git_caps.session_id_of``), if any."""

    def _on_eof(self) -> None:
        if self._state is State.WANTS and (self._wants or self._shallows):
            raise ProtocolError("upload-pack: the client closed the connection before its flush")
        self._advance(Input.EOF)
        self._pending = ClientClosed()

    def _on_packet(self, packet: bytes | Special | Signal) -> None:
        if packet is Special.FLUSH:
            self._on_flush()
            return
        if not isinstance(packet, bytes):
            raise ProtocolError(f"upload-pack v0: unexpected {packet} packet")
        line = packet.removesuffix(b"\n")
        keyword, _, arg = line.partition(b" ")
        if keyword not in _LINES:
            raise ProtocolError(f"upload-pack: unexpected line {quoted(line, 80)}")
        inp, handler = _LINES[keyword]
        self._advance(inp)
        handler(self, arg)

    def _on_flush(self) -> None:
        if self._state is State.WANTS:
            self._finish_wants()
        else:
            self._finish_round(done=False)

    def _finish_wants(self) -> None:
        if not self._wants:
            self._advance(Input.EMPTY_FLUSH)
            self._pending = NoWants()
            return
        self._advance(Input.FLUSH)
        self.request = FetchRequest(
            tuple(self._wants),
            frozenset(self._caps),
            tuple(self._shallows),
            self._depth,
            self._deepen_since,
            tuple(self._deepen_not),
            self._object_filter,
        )
        if self.request.depth and (self.request.deepen_since is not None or self.request.deepen_not):
            raise ProtocolError("deepen and deepen-since (or deepen-not) cannot be used together")
        self._pending = self.request

    def _finish_round(self, done: bool) -> None:
        if not done:
            self._advance(Input.FLUSH)
        self._pending = Haves(tuple(self._round), done, self.mode is not AckMode.SINGLE)
        self._round_done = done
        self._round = []

    # -- line handlers: one per keyword (_LINES) -------------------------

    def _want(self, arg: bytes) -> None:
        if len(self._wants) >= self._bounds.wants:
            raise LimitExceeded(f"more than {self._bounds.wants} wants")
        oid, _, features = arg.partition(b" ")
        self._wants.append(parse_oid(oid, self._format.hex_len))
        caps = git_caps.parse_caps(features)
        git_caps.check_object_format(caps, self._format)
        # The first want line's capabilities are kept whole (64 at most); a later line's only where
        # upload-pack knows them, as git reads them: a million want lines each naming 64 made-up
        # ones held 64 million names (8 GB).
        self._caps.update(caps if len(self._wants) == 1 else _KNOWN_CAPS.intersection(caps))
        if self.client_session_id is None:
            self.client_session_id = git_caps.session_id_of(caps)

    def _shallow(self, arg: bytes) -> None:
        if len(self._shallows) >= MAX_SHALLOWS:
            raise LimitExceeded(f"more than {MAX_SHALLOWS} shallow lines")
        self._shallows.append(parse_oid(arg, self._format.hex_len))

    def _deepen(self, arg: bytes) -> None:
        # Bound the digits first: int() refuses (ValueError) strings over 4300 digits.
        if not arg.isdigit() or len(arg) > 10 or not 0 < int(arg) <= INFINITE_DEPTH:
            raise ProtocolError(f"invalid deepen: {quoted(arg, 40)}")
        self._depth = int(arg)

    def _deepen_since_line(self, arg: bytes) -> None:
        if not arg.isdigit() or len(arg) > 20:
            raise ProtocolError(f"invalid deepen-since: {quoted(arg, 40)}")
        self._deepen_since = int(arg)

    def _deepen_not_line(self, arg: bytes) -> None:
        if not arg or len(arg) > MAX_REF_NAME or len(self._deepen_not) >= MAX_DEEPEN_NOT:
            raise ProtocolError("invalid or too many deepen-not lines")
        self._deepen_not.append(arg)

    def _filter(self, arg: bytes) -> None:
        # git's words, and git's test: the server offers filter and the client asked for it (a want
        # line's capability); a filter line the client did not ask for was served
        if not self.allow_filter or git_caps.FILTER not in self._caps:
            raise ProtocolError("git upload-pack: filtering capability not negotiated")
        if self._object_filter is not None:
            raise ProtocolError(MULTIPLE_FILTERS)
        self._object_filter = parse_filter(arg)
        refusal = filter_refusal(self.filter_rules, self._object_filter)
        if refusal is not None:
            raise ProtocolError(refusal)

    def _have(self, arg: bytes) -> None:
        self._haves_seen += 1
        if self._haves_seen > self._bounds.haves:
            raise LimitExceeded(f"more than {self._bounds.haves} haves")
        self._round.append(parse_oid(arg, self._format.hex_len))

    def _done(self, arg: bytes) -> None:
        if arg:
            raise ProtocolError("upload-pack: 'done' takes no argument")
        self._finish_round(done=True)

    # -- the caller's answers ----------------------------------------------------

    @property
    def mode(self) -> AckMode:
        return _ack_mode(frozenset(self._caps))

    def shallow_info(self, shallow: tuple[ObjectId, ...] = (), unshallow: tuple[ObjectId, ...] = ()) -> bytes:
        """Answer a FetchRequest: the new shallow boundary, sent only if the client deepens."""
        self._advance(Input.SHALLOW_SENT)
        assert self.request is not None
        if not self.request.deepen:
            return b""
        lines = [pktline.encode(b"shallow " + oid) for oid in shallow]
        lines += [pktline.encode(b"unshallow " + oid) for oid in unshallow]
        return b"".join(lines) + pktline.FLUSH

    def acknowledge(self, negotiation: Negotiation) -> bytes:
        """Answer a Haves round with ACK/NAK lines as git's get_common_commits writes them.

        Write the returned bytes before acting on the next event (SendPack,
        EndOfRequest, or more haves).
        """
        out = [self._verdict_line(v) for v in negotiation.verdicts]
        got_common = any(v.common for v in negotiation.verdicts)
        got_other = any(not v.common for v in negotiation.verdicts)
        if self._round_done:
            out.append(self._final_ack())
            self._advance(Input.READY)
            self._pending = SendPack()
            return b"".join(out)
        out.append(self._round_end(got_common, got_other, negotiation.ready))
        return b"".join(out)

    def _verdict_line(self, verdict: HaveVerdict) -> bytes:
        mode = self.mode
        if not verdict.common:
            if mode is AckMode.SINGLE or not verdict.ready:
                return b""
            if mode is AckMode.DETAILED:
                self._sent_ready = True
                return _ack(verdict.oid, b" ready")
            return _ack(verdict.oid, b" continue")
        first = not self._common
        self._common.add(verdict.oid)
        self._last_common = verdict.oid
        if mode is AckMode.DETAILED:
            return _ack(verdict.oid, b" common")
        if mode is AckMode.MULTI:
            return _ack(verdict.oid, b" continue")
        return _ack(verdict.oid, b"") if first else b""

    def _final_ack(self) -> bytes:
        if self._last_common is None:
            return pktline.encode(b"NAK\n")
        return _ack(self._last_common, b"") if self.mode is not AckMode.SINGLE else b""

    def _round_end(self, got_common: bool, got_other: bool, ready: bool) -> bytes:
        mode = self.mode
        out = []
        if mode is AckMode.DETAILED and got_common and not got_other and ready:
            assert self._last_common is not None
            self._sent_ready = True
            out.append(_ack(self._last_common, b" ready"))
        if not self._common or mode is not AckMode.SINGLE:
            out.append(pktline.encode(b"NAK\n"))
        if git_caps.NO_DONE in self._caps and self._sent_ready and self._last_common is not None:
            out.append(_ack(self._last_common, b""))
            self._advance(Input.READY)
            self._pending = SendPack()
        elif self._stateless:
            self._advance(Input.STATELESS_END)
            self._pending = EndOfRequest()
        else:
            self._advance(Input.CONTINUE)
        return b"".join(out)

    # -- pack framing ------------------------------------------------------------

    def pack_data(self, data: bytes) -> bytes:
        """Frame pack bytes: band 1 with side-band, raw without."""
        limit = _band_limit(frozenset(self._caps))
        return data if limit is None else sideband.encode(sideband.Band.DATA, data, limit)

    def keepalive(self) -> bytes:
        """git's upload-pack keepalive while the pack is counted (``uploadpack.keepAlive``): an empty
        band-1 packet with side-band; nothing without it (the raw pack has no room for one)."""
        return sideband.KEEPALIVE if _band_limit(frozenset(self._caps)) is not None else b""

    def progress(self, message: bytes) -> bytes:
        """Frame a progress message for the client's stderr, or b"" when it cannot or will not show it."""
        limit = _band_limit(frozenset(self._caps))
        if limit is None or git_caps.NO_PROGRESS in self._caps:
            return b""
        return sideband.encode(sideband.Band.PROGRESS, message, limit)

    def fatal(self, message: bytes) -> bytes:
        """Frame a fatal error after negotiation: band 3 with side-band, else an ERR pkt-line."""
        limit = _band_limit(frozenset(self._caps))
        if limit is None:
            return pktline.encode(b"ERR " + message)
        return sideband.encode(sideband.Band.ERROR, message, limit)

    def pack_sent(self) -> bytes:
        """End the response: a flush closes the side-band stream."""
        self._advance(Input.PACK_SENT)
        return pktline.FLUSH if _band_limit(frozenset(self._caps)) is not None else b""


def _ack(oid: ObjectId, suffix: bytes) -> bytes:
    return pktline.encode(b"ACK " + oid + suffix + b"\n")


_LINES: dict[bytes, tuple[Input, Callable[[UploadPackV0, bytes], None]]] = {
    b"want": (Input.WANT, UploadPackV0._want),
    b"shallow": (Input.SHALLOW, UploadPackV0._shallow),
    b"deepen": (Input.DEEPEN, UploadPackV0._deepen),
    b"deepen-since": (Input.DEEPEN, UploadPackV0._deepen_since_line),
    b"deepen-not": (Input.DEEPEN, UploadPackV0._deepen_not_line),
    b"filter": (Input.FILTER, UploadPackV0._filter),
    b"have": (Input.HAVE, UploadPackV0._have),
    b"done": (Input.DONE, UploadPackV0._done),
}
"""Client line keyword -> (transition input, handler); one row per line kind."""
