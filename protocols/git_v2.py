"""upload-pack, protocol v2: capability advertisement, ls-refs, fetch, object-info.

gitprotocol-v2(5).  A request is ``command=<name>``, capability lines, an
optional delim (0001) and arguments, ended by a flush; a flush with no command
ends the session.  Over HTTP each POST carries exactly one request
(``stateless``).  As in ``git_upload``, graph questions are the caller's; this
core parses requests into events and formats the sections of each response.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from backends.interfaces import SHA1_FORMAT, FilterRules, ObjectFormat, ObjectId
from protocols import git_caps, pktline, sideband, text
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_reflines import V2, V2_PEELED, RefRun
from protocols.git_upload import (
    INFINITE_DEPTH,
    MAX_DEEPEN_NOT,
    MAX_REF_NAME,
    MAX_SHALLOWS,
    MULTIPLE_FILTERS,
    FetchRequest,
    ObjectFilter,
    RequestBounds,
    filter_refusal,
    parse_filter,
    parse_oid,
    ref_order,
)
from protocols.pkt_machine import RequestReader
from protocols.pktline import Signal, Special
from protocols.text import quoted

MAX_SERVER_OPTIONS = 256
MAX_OBJECT_INFO = 65536
MAX_NAMES_BYTES = 64 << 20
"""Bytes of ``ref-prefix`` (past them, as past ``max_ref_prefixes`` of them, every ref is listed) or of
``want-ref`` names (past them, the request is refused) one request may hold: the bounds of their
count alone let a client make a request hold 4 GB of names of 64 KiB each."""

LS_REFS = b"ls-refs"
FETCH = b"fetch"
OBJECT_INFO = b"object-info"
SERVER_OPTION = b"server-option"
WAIT_FOR_DONE = b"wait-for-done"
UNBORN = b"unborn"
WANT_REF = b"want-ref"
WANTED_REFS = b"wanted-refs"

def capability_advertisement(agent: bytes, allow_filter: bool = True, object_format: ObjectFormat = SHA1_FORMAT,
                             unborn: bool = True, ref_in_want: bool = False, session_id: bytes | None = None) -> bytes:
    """The v2 capability advertisement, shaped as git 2.39's (tests/transcripts/git/clone-v2.txt).

    ``filter`` is offered only because every reachable object may be wanted,
    which the lazy fetches of a partial clone need; ``unborn`` off (``lsrefs.unborn`` other than
    ``advertise``) offers a bare ``ls-refs``; ``ref_in_want`` (``uploadpack.allowRefInWant``)
    offers ``want-ref``, after ``filter`` as git orders them; ``session_id``
    (``transfer.advertiseSID``) is offered after ``object-format``, where git offers it.
    """
    fetch_features = [git_caps.SHALLOW, WAIT_FOR_DONE] + ([git_caps.FILTER] if allow_filter else []) \
        + ([git_caps.REF_IN_WANT] if ref_in_want else [])
    lines = [
        b"version 2",
        git_caps.AGENT + b"=" + agent,
        LS_REFS + (b"=" + UNBORN if unborn else b""),
        FETCH + b"=" + b" ".join(fetch_features),
        SERVER_OPTION,
        git_caps.OBJECT_FORMAT + b"=" + object_format.name.encode(),
        *([git_caps.SESSION_ID + b"=" + session_id] if session_id is not None else []),
        OBJECT_INFO,
    ]
    return b"".join(pktline.encode(line + b"\n") for line in lines) + pktline.FLUSH


@dataclass(frozen=True, slots=True)
class LsRefs:
    """``ls-refs``: which refs, and whether to add symref targets, peeled ids and unborn HEAD."""

    symrefs: bool = False
    peel: bool = False
    unborn: bool = False
    prefixes: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Fetch:
    """``fetch``: the wants and shallow request (as v0's FetchRequest), this round's haves, done.

    ``want_refs``: the refs named by ``want-ref`` lines (``ref-in-want``), in the client's order;
    the caller resolves them (an unknown one ends the request: ``unknown_ref``), wants their
    objects besides ``request.wants`` and names them in the ``wanted-refs`` section.
    """

    request: FetchRequest
    haves: tuple[ObjectId, ...] = ()
    done: bool = False
    wait_for_done: bool = False
    want_refs: tuple[bytes, ...] = ()

    @property
    def wants_anything(self) -> bool:
        """Some object is wanted, by its id or through a ref."""
        return bool(self.request.wants or self.want_refs)

    @property
    def sends_pack_now(self) -> bool:
        """No haves, or done: the pack follows without an acknowledgments section."""
        return self.done or not self.haves


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """``object-info``: the sizes of the listed objects."""

    oids: tuple[ObjectId, ...]
    size: bool = False


@dataclass(frozen=True, slots=True)
class ClientDone:
    """The client ended the session (a flush with no command, or EOF)."""


Event = LsRefs | Fetch | ObjectInfo | ClientDone


class State(enum.Enum):
    IDLE = "idle"
    CAPABILITIES = "capabilities"
    ARGUMENTS = "arguments"
    RUNNING = "running"
    SENDING = "sending"
    DONE = "done"


class Input(enum.Enum):
    COMMAND = "command"
    CAPABILITY = "capability"
    DELIM = "delim"
    ARGUMENT = "argument"
    FLUSH = "flush"
    EMPTY_FLUSH = "empty-flush"
    EOF = "eof"
    RESPONDED = "responded"
    RESPONDED_LAST = "responded-last"
    PACK_FOLLOWS = "pack-follows"
    PACK_SENT = "pack-sent"


_TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.IDLE, Input.COMMAND): State.CAPABILITIES,
    (State.IDLE, Input.EMPTY_FLUSH): State.DONE,
    (State.IDLE, Input.EOF): State.DONE,
    (State.CAPABILITIES, Input.CAPABILITY): State.CAPABILITIES,
    (State.CAPABILITIES, Input.DELIM): State.ARGUMENTS,
    (State.CAPABILITIES, Input.FLUSH): State.RUNNING,
    (State.ARGUMENTS, Input.ARGUMENT): State.ARGUMENTS,
    (State.ARGUMENTS, Input.FLUSH): State.RUNNING,
    (State.RUNNING, Input.RESPONDED): State.IDLE,
    (State.RUNNING, Input.RESPONDED_LAST): State.DONE,
    (State.RUNNING, Input.PACK_FOLLOWS): State.SENDING,
    (State.SENDING, Input.PACK_SENT): State.IDLE,
    (State.SENDING, Input.RESPONDED_LAST): State.DONE,
}
"""Every legal (state, input) pair of a v2 session; anything else is an error."""

_READING = frozenset({State.IDLE, State.CAPABILITIES, State.ARGUMENTS})


@dataclass
class _Request:
    """The request being read: its command, capabilities and arguments."""

    command: bytes
    server_options: list[bytes] = field(default_factory=list)
    arguments: _Arguments | None = None
    """The command's arguments parsed so far, from the end of the capabilities on (each line as it
    comes: a request holds what it names, not its lines)."""
    argument_count: int = 0
    object_format: bytes | None = None
    session_id: bytes | None = None


class UploadPackV2(RequestReader[State, Input, Event]):
    """The server side of a v2 session (or, ``stateless``, of one HTTP request)."""

    def __init__(self, stateless: bool = False, allow_filter: bool = True,
                 max_buffer: int = pktline.DEFAULT_MAX_BUFFER, bounds: RequestBounds = RequestBounds(),
                 object_format: ObjectFormat = SHA1_FORMAT) -> None:
        super().__init__("protocol v2", _TRANSITIONS, _READING, State.IDLE,
                         pktline.PktLineDecoder(max_buffer, bounds.pkt_line), object_format)
        self._stateless = stateless
        self.allow_filter = allow_filter
        """Whether ``filter`` was offered (``uploadpack.allowFilter`` not false)."""
        self.answer_unborn = True
        """Whether an ``unborn`` ls-refs argument is answered (``lsrefs.unborn`` not ``ignore``)."""
        self.allow_ref_in_want = False
        """Whether ``want-ref`` is taken (``ref-in-want`` offered: ``uploadpack.allowRefInWant``)."""
        self.filter_rules = FilterRules()
        """``uploadpackfilter.*``: a fetch naming a filter they do not allow is refused in git's words."""
        self._bounds = bounds
        self._request: _Request | None = None
        self.client_session_id: str | None = None
        """The ``session-id=`` the client sent with a request (``git_caps.session_id_of``), if any."""

    def _on_eof(self) -> None:
        if self._state is not State.IDLE:
            raise ProtocolError("protocol v2: the client closed the connection in the middle of a request")
        self._advance(Input.EOF)
        self._pending = ClientDone()

    def _on_packet(self, packet: bytes | Special | Signal) -> None:
        if packet is Special.FLUSH:
            self._on_flush()
        elif packet is Special.DELIM:
            self._advance(Input.DELIM)
            self._end_capabilities()
        elif not isinstance(packet, bytes):
            raise ProtocolError(f"protocol v2: unexpected {packet} packet")
        elif self._state is State.ARGUMENTS:
            self._on_argument(packet.removesuffix(b"\n"))
        else:
            self._on_capability(packet.removesuffix(b"\n"))

    def _on_capability(self, line: bytes) -> None:
        name, _, value = line.partition(b"=")
        if self._state is State.IDLE:
            if name != b"command":
                raise ProtocolError("protocol v2: a request must start with command=<name>")
            self._advance(Input.COMMAND)
            if value not in _COMMANDS:
                raise ProtocolError(f"unknown command '{value[:64].decode('utf-8', 'replace')}'")
            self._request = _Request(value)
            return
        self._advance(Input.CAPABILITY)
        assert self._request is not None
        _check_capability(name, value, self._request)

    def _on_argument(self, line: bytes) -> None:
        self._advance(Input.ARGUMENT)
        assert self._request is not None and self._request.arguments is not None
        if self._request.argument_count >= self._bounds.haves + self._bounds.wants + self._bounds.ref_prefixes:
            raise LimitExceeded("too many arguments in one protocol v2 request")
        self._request.argument_count += 1
        self._request.arguments.add(line)

    def _end_capabilities(self) -> None:
        """The request's capabilities are read (its delim, or its flush without arguments): check its
        object format and start parsing its arguments."""
        assert self._request is not None
        request = self._request
        named = {git_caps.OBJECT_FORMAT: request.object_format} if request.object_format is not None else {}
        git_caps.check_object_format(named, self._format, unnamed=git_caps.SHA1)
        if request.session_id is not None and self.client_session_id is None:
            self.client_session_id = git_caps.session_id_of({git_caps.SESSION_ID: request.session_id})
        parse = _Parse(self.allow_filter, self._bounds, self._format.hex_len, self.allow_ref_in_want,
                       self.filter_rules)
        request.arguments = _COMMANDS[request.command](parse)

    def _on_flush(self) -> None:
        if self._state is State.IDLE:
            self._advance(Input.EMPTY_FLUSH)
            self._pending = ClientDone()
            return
        self._advance(Input.FLUSH)
        assert self._request is not None
        if self._request.arguments is None:
            self._end_capabilities()
        request, self._request = self._request, None
        assert request.arguments is not None
        self._pending = request.arguments.event()

    # -- responses ------------------------------------------------------------------

    def _responded(self) -> None:
        self._advance(Input.RESPONDED_LAST if self._stateless else Input.RESPONDED)

    def ls_refs(
        self,
        request: LsRefs,
        refs: Mapping[bytes, ObjectId],
        peeled: Mapping[bytes, ObjectId],
        symrefs: Mapping[bytes, bytes],
        run: RefRun | None = None,
    ) -> bytes:
        """Answer ls-refs: HEAD first, then refs sorted, filtered by prefix, then flush.  ``run``:
        ``refs`` as a run of lines encoded once (``git_reflines``), a prefix's refs found in it by
        bisection, the others' lines written here."""
        self._responded()
        out = []
        head_target = symrefs.get(b"HEAD")
        if (request.unborn and self.answer_unborn and b"HEAD" not in refs and head_target
                and _matches(b"HEAD", request)):
            out.append(pktline.encode(
                b"unborn HEAD" + (b" symref-target:" + head_target if request.symrefs else b"") + b"\n"))
        if run is not None and run.lines.encodable:
            if b"HEAD" in refs and _matches(b"HEAD", request):
                out.append(pktline.encode(_ref_line(b"HEAD", refs[b"HEAD"], request, peeled, symrefs) + b"\n"))

            def line(name: bytes) -> bytes:
                return pktline.encode(_ref_line(name, refs[name], request, peeled, symrefs) + b"\n")

            out.append(run.spliced(V2_PEELED if request.peel else V2, line, request.prefixes, frozenset([b"HEAD"])))
            out.append(pktline.FLUSH)
            return b"".join(out)
        with_symrefs = symrefs if request.symrefs else {}
        with_peeled = peeled if request.peel else {}
        # one formatting per plain line (pktline.encode per line costs three times as much: 26 ms
        # for 20,000 refs); a line with attributes or near git's limit goes through encode's check
        for name in _listed(refs, request):
            oid = refs[name]
            size = len(oid) + len(name) + 6
            if name in with_symrefs or name in with_peeled or size > pktline.MAX_PKT:
                out.append(pktline.encode(_ref_line(name, oid, request, peeled, symrefs) + b"\n"))
            else:
                out.append(b"%04x%s %s\n" % (size, oid, name))
        out.append(pktline.FLUSH)
        return b"".join(out)

    def object_info(self, request: ObjectInfo, sizes: Sequence[tuple[ObjectId, int | None]]) -> bytes:
        """Answer object-info: the attribute line, then ``<oid> <size>`` per object (an unknown
        object's size empty, as git 2.39 sends it)."""
        self._responded()
        lines = [b"size"] if request.size else []
        lines += [oid + b" " + (b"" if size is None else str(size).encode()) for oid, size in sizes] \
            if request.size else []
        return b"".join(pktline.encode(line + b"\n") for line in lines) + pktline.FLUSH

    def acknowledgments(self, fetch: Fetch, common: Sequence[ObjectId], ready: bool) -> bytes:
        """The acknowledgments section of a fetch without done; ``ready`` means the pack follows."""
        ready = ready and not fetch.wait_for_done
        lines = [b"acknowledgments"] + ([b"ACK " + oid for oid in common] or [b"NAK"])
        body = b"".join(pktline.encode(line + b"\n") for line in lines)
        if ready:
            return body + pktline.encode(b"ready\n") + pktline.DELIM
        self._responded()
        return body + pktline.FLUSH

    def empty_fetch(self) -> bytes:
        """A fetch with no wants (and no wait-for-done): nothing is sent, as git's upload-pack sends
        nothing (not even a flush)."""
        self._responded()
        return b""

    def pack_header(self, shallow_section: bool, shallow: Sequence[ObjectId] = (),
                    unshallow: Sequence[ObjectId] = (), wanted_refs: Sequence[tuple[ObjectId, bytes]] = ()) -> bytes:
        """The wanted-refs section (``want-ref`` lines were sent: each ref, as asked, with the object
        it names), the shallow-info section (when the request is shallow) and the packfile header,
        in git's order."""
        self._advance(Input.PACK_FOLLOWS)
        out = b""
        if wanted_refs:
            lines = [WANTED_REFS + b"\n"] + [oid + b" " + name + b"\n" for oid, name in wanted_refs]
            out = b"".join(map(pktline.encode, lines)) + pktline.DELIM
        if shallow_section:
            lines = [b"shallow " + oid for oid in shallow] + [b"unshallow " + oid for oid in unshallow]
            out += pktline.encode(b"shallow-info\n") + b"".join(map(pktline.encode, lines)) + pktline.DELIM
        return out + pktline.encode(b"packfile\n")

    def pack_data(self, data: bytes) -> bytes:
        """Pack bytes on band 1 (v2 always multiplexes the packfile section)."""
        return sideband.encode(sideband.Band.DATA, data, sideband.MAX_PAYLOAD_64K)

    def keepalive(self) -> bytes:
        """git's keepalive inside the packfile section (always multiplexed): an empty band-1 packet."""
        return sideband.KEEPALIVE

    def progress(self, message: bytes, no_progress: bool) -> bytes:
        return b"" if no_progress else sideband.encode(sideband.Band.PROGRESS, message, sideband.MAX_PAYLOAD_64K)

    def fatal(self, message: bytes) -> bytes:
        """A fatal error: band 3 inside the packfile section, else an ERR pkt-line."""
        if self._state is State.SENDING:
            return sideband.encode(sideband.Band.ERROR, message, sideband.MAX_PAYLOAD_64K)
        return pktline.encode(b"ERR " + message)

    def pack_sent(self) -> bytes:
        """End the fetch response."""
        self._advance(Input.RESPONDED_LAST if self._stateless else Input.PACK_SENT)
        return pktline.FLUSH


def _check_capability(name: bytes, value: bytes, request: _Request) -> None:
    """Request capabilities: agent, object-format (checked once the request is read),
    server-option and session-id (``transfer.advertiseSID``: kept for the log); nothing else."""
    if name == git_caps.AGENT:
        return
    if name == git_caps.SESSION_ID:
        request.session_id = value
        return
    if name == git_caps.OBJECT_FORMAT:
        request.object_format = value
        return
    if name == SERVER_OPTION:
        if len(request.server_options) >= MAX_SERVER_OPTIONS:
            raise LimitExceeded(f"more than {MAX_SERVER_OPTIONS} server options")
        request.server_options.append(value)
        return
    raise ProtocolError(f"unknown capability '{name[:64].decode('utf-8', 'replace')}'")


def _listed(refs: Mapping[bytes, ObjectId], request: LsRefs) -> list[bytes]:
    names = ref_order(refs)
    return [n for n in names if n.startswith(request.prefixes)] if request.prefixes else names


def _matches(name: bytes, request: LsRefs) -> bool:
    return not request.prefixes or name.startswith(request.prefixes)


def _ref_line(
    name: bytes, oid: ObjectId, request: LsRefs, peeled: Mapping[bytes, ObjectId], symrefs: Mapping[bytes, bytes]
) -> bytes:
    line = oid + b" " + name
    if request.symrefs and name in symrefs:
        line += b" symref-target:" + symrefs[name]
    if request.peel and name in peeled:
        line += b" peeled:" + peeled[name]
    return line


ANY_FILTER = FilterRules()
"""No ``uploadpackfilter.*`` rule: every filter hgwire implements is taken."""


@dataclass(frozen=True, slots=True)
class _Parse:
    """What parsing a command's arguments depends on: the server's settings and id length."""

    allow_filter: bool
    bounds: RequestBounds
    hex_len: int
    allow_ref_in_want: bool = False
    filter_rules: FilterRules = ANY_FILTER


class _Arguments:
    """One command's arguments, parsed a line at a time as they arrive (``add``), then its event."""

    def add(self, arg: bytes) -> None:
        raise NotImplementedError

    def event(self) -> Event:
        raise NotImplementedError


class _LsRefsArguments(_Arguments):
    def __init__(self, parse: _Parse) -> None:
        self._bound = parse.bounds.ref_prefixes
        self._flags: set[bytes] = set()
        self._prefixes: list[bytes] = []
        self._prefix_bytes = 0
        self._past_bound = False

    def add(self, arg: bytes) -> None:
        if arg.startswith(b"ref-prefix "):
            # git's ls-refs.c: past this many prefixes, the client gets every ref rather than an error
            if not self._past_bound:
                self._prefixes.append(arg[len(b"ref-prefix ") :])
                self._prefix_bytes += len(arg)
                if len(self._prefixes) > self._bound or self._prefix_bytes > MAX_NAMES_BYTES:
                    self._past_bound = True
                    self._prefixes = []
        elif arg in (b"symrefs", b"peel", UNBORN):
            self._flags.add(arg)
        else:
            raise ProtocolError(f"unexpected line: {quoted(arg, 80)}")  # git's ls-refs' words

    def event(self) -> LsRefs:
        flags = self._flags
        return LsRefs(b"symrefs" in flags, b"peel" in flags, UNBORN in flags, tuple(self._prefixes))


class _ObjectInfoArguments(_Arguments):
    def __init__(self, parse: _Parse) -> None:
        self._hex_len = parse.hex_len
        self._size = False
        self._oids: list[ObjectId] = []

    def add(self, arg: bytes) -> None:
        if arg == b"size":
            self._size = True
        elif arg.startswith(b"oid ") and len(self._oids) < MAX_OBJECT_INFO:
            self._oids.append(parse_oid(arg[4:], self._hex_len))
        else:
            raise ProtocolError(f"object-info: unexpected line: {quoted(arg, 80)}")  # git's words

    def event(self) -> ObjectInfo:
        return ObjectInfo(tuple(self._oids), self._size)


@dataclass
class _FetchArgs:
    wants: list[ObjectId] = field(default_factory=list)
    haves: list[ObjectId] = field(default_factory=list)
    shallows: list[ObjectId] = field(default_factory=list)
    flags: set[bytes] = field(default_factory=set)
    depth: int = 0
    deepen_since: int | None = None
    deepen_not: list[bytes] = field(default_factory=list)
    object_filter: ObjectFilter | None = None
    want_refs: list[bytes] = field(default_factory=list)
    want_ref_bytes: int = 0
    bounds: RequestBounds = RequestBounds()
    hex_len: int = 40
    filter_rules: FilterRules = ANY_FILTER


_FETCH_FLAGS = frozenset({git_caps.THIN_PACK, git_caps.NO_PROGRESS, git_caps.INCLUDE_TAG, git_caps.OFS_DELTA,
                          git_caps.DEEPEN_RELATIVE, b"done", WAIT_FOR_DONE})


class _FetchArguments(_Arguments):
    def __init__(self, parse: _Parse) -> None:
        self._parse = parse
        self._parsed = _FetchArgs(bounds=parse.bounds, hex_len=parse.hex_len, filter_rules=parse.filter_rules)

    def add(self, arg: bytes) -> None:
        parse, parsed = self._parse, self._parsed
        if arg in _FETCH_FLAGS:
            parsed.flags.add(arg)
            return
        keyword, _, value = arg.partition(b" ")
        handler = _FETCH_ARGS.get(keyword)
        if handler is None or (keyword == git_caps.FILTER and not parse.allow_filter) \
                or (keyword == WANT_REF and not parse.allow_ref_in_want):
            raise ProtocolError(f"unexpected line: {quoted(arg, 80)}")  # git's upload-pack's words
        handler(parsed, value)

    def event(self) -> Fetch:
        parsed = self._parsed
        if parsed.depth and (parsed.deepen_since is not None or parsed.deepen_not):
            raise ProtocolError("deepen and deepen-since (or deepen-not) cannot be used together")
        caps = frozenset(parsed.flags - {b"done", WAIT_FOR_DONE}) | {git_caps.SIDE_BAND_64K}
        request = FetchRequest(tuple(parsed.wants), caps, tuple(parsed.shallows), parsed.depth,
                               parsed.deepen_since, tuple(parsed.deepen_not), parsed.object_filter)
        return Fetch(request, tuple(parsed.haves), b"done" in parsed.flags, WAIT_FOR_DONE in parsed.flags,
                     tuple(parsed.want_refs))


def _want(args: _FetchArgs, value: bytes) -> None:
    if len(args.wants) + len(args.want_refs) >= args.bounds.wants:
        raise LimitExceeded(f"more than {args.bounds.wants} wants")
    args.wants.append(parse_oid(value, args.hex_len))


def _want_ref(args: _FetchArgs, value: bytes) -> None:
    """``want-ref <ref>``: a ref by its full name (``refs/heads/main``, ``HEAD``), counted with the
    wants; a name no ref could have is still only an unknown ref, as git answers it."""
    if len(args.wants) + len(args.want_refs) >= args.bounds.wants:
        raise LimitExceeded(f"more than {args.bounds.wants} wants")
    if not value or len(value) > MAX_REF_NAME:
        raise ProtocolError(f"invalid want-ref: {quoted(value, 80)}")
    args.want_ref_bytes += len(value)
    if args.want_ref_bytes > MAX_NAMES_BYTES:
        raise LimitExceeded(f"more than {MAX_NAMES_BYTES >> 20} MiB of want-ref names")
    args.want_refs.append(value)


def unknown_ref(name: bytes) -> ProtocolError:
    """What a ``want-ref`` of a ref that does not exist (or is hidden) ends with: git's ``ERR
    unknown ref <name>``."""
    return ProtocolError("unknown ref " + text.printable(name, MAX_SHOWN_REF))


MAX_SHOWN_REF = 200
"""Most bytes of a ref name an error repeats."""


def _have(args: _FetchArgs, value: bytes) -> None:
    if len(args.haves) >= args.bounds.haves:
        raise LimitExceeded(f"more than {args.bounds.haves} haves")
    args.haves.append(parse_oid(value, args.hex_len))


def _shallow(args: _FetchArgs, value: bytes) -> None:
    if len(args.shallows) >= MAX_SHALLOWS:
        raise LimitExceeded("too many shallow lines")
    args.shallows.append(parse_oid(value, args.hex_len))


def _deepen(args: _FetchArgs, value: bytes) -> None:
    # Bound the digits first: int() refuses (ValueError) strings over 4300 digits.
    if not value.isdigit() or len(value) > 10 or not 0 < int(value) <= INFINITE_DEPTH:
        raise ProtocolError(f"invalid deepen: {quoted(value, 40)}")
    args.depth = int(value)


def _deepen_since(args: _FetchArgs, value: bytes) -> None:
    if not value.isdigit() or len(value) > 20:
        raise ProtocolError(f"invalid deepen-since: {quoted(value, 40)}")
    args.deepen_since = int(value)


def _deepen_not(args: _FetchArgs, value: bytes) -> None:
    if not value or len(value) > MAX_REF_NAME or len(args.deepen_not) >= MAX_DEEPEN_NOT:
        raise ProtocolError("invalid or too many deepen-not lines")
    args.deepen_not.append(value)


def _filter(args: _FetchArgs, value: bytes) -> None:
    # as git's upload-pack: a second filter line is refused (a banned one followed by an allowed one
    # was served), and a filter the uploadpackfilter.* rules refuse is refused at its line
    if args.object_filter is not None:
        raise ProtocolError(MULTIPLE_FILTERS)
    args.object_filter = parse_filter(value)
    refusal = filter_refusal(args.filter_rules, args.object_filter)
    if refusal is not None:
        raise ProtocolError(refusal)


_FETCH_ARGS: dict[bytes, Callable[[_FetchArgs, bytes], None]] = {
    b"want": _want,
    WANT_REF: _want_ref,
    b"have": _have,
    b"shallow": _shallow,
    b"deepen": _deepen,
    b"deepen-since": _deepen_since,
    b"deepen-not": _deepen_not,
    git_caps.FILTER: _filter,
}
"""fetch argument keyword -> parser; one row per argument that carries a value."""

_COMMANDS: dict[bytes, Callable[[_Parse], _Arguments]] = {
    LS_REFS: _LsRefsArguments,
    FETCH: _FetchArguments,
    OBJECT_INFO: _ObjectInfoArguments,
}
"""The v2 commands hgwire serves; each parses its arguments, as they come, into an event."""
