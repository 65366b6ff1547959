"""receive-pack, protocol v0/v1: advertisement, ref-update commands, pack passthrough, report-status.

gitprotocol-pack(5) "Pushing Data To a Server" and "Report Status";
gitprotocol-capabilities(5) for report-status(-v2), delete-refs, atomic,
push-options, push-cert and side-band-64k.  A signed push (``push-cert``) sends
its commands inside the certificate (``protocols.git_push_cert``).  The pushed pack is not framed: it is a raw
PACK stream whose end only its own structure tells (header count, then each
object's zlib stream, then the trailing checksum), so ``PackScanner`` walks
that structure without keeping it, and the pack bytes leave as ``PackData``.
"""

from __future__ import annotations

import enum
import hashlib
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from backends.interfaces import (
    SHA1_FORMAT,
    ObjectFormat,
    ObjectId,
    PackedObject,
    RefResult,
    RefUpdate,
    is_zero_id,
)
from protocols import git_caps, git_push_cert, pktline, sideband
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_upload import parse_oid
from protocols.pkt_machine import step
from protocols.pktline import Signal, Special
from protocols.text import printable, quoted

MAX_COMMANDS = 262144
MAX_PUSH_OPTIONS = 256
MAX_SHALLOWS = 65536
MAX_REF_NAME = 4096
MAX_NAMES_SIZE = 64 << 20
"""Bytes of ref names in one push's commands (``MAX_COMMANDS`` names of ``MAX_REF_NAME`` bytes)."""
DEFAULT_MAX_PACK = 1 << 32
MAX_OBJECT_SIZE = 1 << 32
PACK_HEADER = 12
PACK_TRAILER = 20


@dataclass(frozen=True, slots=True)
class ReceiveBounds:
    """How much one push may carry; a server may lower or raise them (``[limits]``)."""

    commands: int = MAX_COMMANDS
    """Ref updates in one push."""
    object_size: int = MAX_OBJECT_SIZE
    """Declared size of one object of the pushed pack: a full text, or a delta's own size."""
    delta_result: int = MAX_OBJECT_SIZE
    """Size of the object a delta of the pushed pack says it rebuilds."""
    pkt_line: int = pktline.MAX_PKT
    """Longest pkt-line taken from the client (git's own limit by default; never above it)."""


@dataclass(frozen=True, slots=True)
class RefCommands:
    """The client's ref updates, capabilities and push options (everything before the pack)."""

    updates: tuple[RefUpdate, ...]
    caps: frozenset[bytes]
    options: tuple[bytes, ...] = ()
    shallows: tuple[ObjectId, ...] = ()
    cert: bytes = b""
    """A signed push's certificate, as sent (its lines up to ``push-cert-end``); empty when unsigned."""

    @property
    def cert_options_differ(self) -> bool:
        """A certificate whose ``push-option`` lines are not the push options sent (git refuses
        every command: "inconsistent push options")."""
        return bool(self.cert) and git_push_cert.push_options(git_push_cert.split(self.cert)[0]) != list(self.options)

    @property
    def needs_pack(self) -> bool:
        """git sends no pack when every command is a delete."""
        return any(not is_zero_id(u.new) for u in self.updates)

    @property
    def atomic(self) -> bool:
        return git_caps.ATOMIC in self.caps


@dataclass(frozen=True, slots=True)
class NoCommands:
    """The client had nothing to push (a bare flush): the session ends."""


@dataclass(frozen=True, slots=True)
class PackData:
    """A piece of the pushed pack, in order, and the objects that end in it."""

    data: bytes
    objects: tuple[PackedObject, ...] = ()


@dataclass(frozen=True, slots=True)
class PackEnd:
    """The pushed pack is complete (or was never needed): update refs, then report."""


@dataclass(frozen=True, slots=True)
class ClientClosed:
    """The client closed before sending a command."""


Event = RefCommands | NoCommands | PackData | PackEnd | ClientClosed


class State(enum.Enum):
    COMMANDS = "commands"
    CERT = "cert"
    OPTIONS = "options"
    PACK = "pack"
    REPORT = "report"
    DONE = "done"


class Input(enum.Enum):
    COMMAND = "command"
    SHALLOW = "shallow"
    CERT_START = "push-cert"
    CERT_LINE = "push-cert line"
    CERT_END = "push-cert-end"
    FLUSH = "flush"
    EMPTY_FLUSH = "empty-flush"
    FLUSH_NEEDS_OPTIONS = "flush-needs-options"
    FLUSH_NO_PACK = "flush-no-pack"
    OPTION = "option"
    PACK_COMPLETE = "pack-complete"
    EOF = "eof"
    REPORTED = "reported"


_TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.COMMANDS, Input.COMMAND): State.COMMANDS,
    (State.COMMANDS, Input.SHALLOW): State.COMMANDS,
    (State.COMMANDS, Input.CERT_START): State.CERT,
    (State.CERT, Input.CERT_LINE): State.CERT,
    (State.CERT, Input.CERT_END): State.COMMANDS,
    (State.COMMANDS, Input.EMPTY_FLUSH): State.DONE,
    (State.COMMANDS, Input.EOF): State.DONE,
    (State.COMMANDS, Input.FLUSH_NEEDS_OPTIONS): State.OPTIONS,
    (State.COMMANDS, Input.FLUSH): State.PACK,
    (State.COMMANDS, Input.FLUSH_NO_PACK): State.REPORT,
    (State.OPTIONS, Input.OPTION): State.OPTIONS,
    (State.OPTIONS, Input.FLUSH): State.PACK,
    (State.OPTIONS, Input.FLUSH_NO_PACK): State.REPORT,
    (State.PACK, Input.PACK_COMPLETE): State.REPORT,
    (State.PACK, Input.REPORTED): State.DONE,  # a malformed pack: "unpack <reason>" and ng for every ref
    (State.REPORT, Input.REPORTED): State.DONE,
}
"""Every legal (state, input) pair of a receive-pack v0 exchange; anything else is an error."""


def advertisement(refs: Mapping[bytes, ObjectId], agent: bytes, push_options: bool = True,
                  cert_nonce: bytes | None = None, object_format: ObjectFormat = SHA1_FORMAT,
                  session_id: bytes | None = None, atomic: bool = True) -> bytes:
    """The receive-pack advertisement: refs sorted without HEAD or peeled lines, caps on the first.

    An empty repository advertises ``capabilities^{}`` with the zero id
    (tests/transcripts/git/push-empty-repo.txt).  With ``cert_nonce`` (a repository with
    ``receive.certNonceSeed``) ``push-cert=<nonce>`` follows ``ofs-delta``, where git puts it;
    ``session_id`` (``transfer.advertiseSID``) goes after the flags, before ``object-format=``;
    without ``atomic`` (``receive.advertiseAtomic = false``) no ``atomic`` is offered.
    """
    flags = [f for f in git_caps.RECEIVE_PACK_V0
             if (push_options or f != git_caps.PUSH_OPTIONS) and (atomic or f != git_caps.ATOMIC)]
    if cert_nonce is not None:
        flags.insert(flags.index(git_caps.OFS_DELTA) + 1, git_caps.PUSH_CERT + b"=" + cert_nonce)
    if session_id is not None:
        flags.append(git_caps.SESSION_ID + b"=" + session_id)
    caps = git_caps.format_caps(flags, [(git_caps.OBJECT_FORMAT, object_format.name.encode()), (git_caps.AGENT, agent)])
    lines = ([(refs[n], n) for n in sorted(refs) if n.startswith(b"refs/")]
             or [(object_format.zero, b"capabilities^{}")])
    out = [pktline.encode(lines[0][0] + b" " + lines[0][1] + b"\0" + caps + b"\n")]
    out += [pktline.encode(oid + b" " + name + b"\n") for oid, name in lines[1:]]
    return b"".join(out) + pktline.FLUSH


_CONTROL = frozenset(b"\x7f") | frozenset(range(0x20))
_REF_FORBIDDEN = _CONTROL | frozenset(b" ~^:?*[\\")

FUNNY_REFNAME = "funny refname"
"""git's receive-pack's reason for a command whose ref name its check-ref-format refuses."""
REFNAME_TOO_LONG = f"refname too long (more than {MAX_REF_NAME} bytes)"
DUPLICATE_REF = "failed to update ref: the push names this ref more than once"
"""An update of a ref an earlier command of the same push updates (git makes the first and fails the others)."""
INCONSISTENT_ALIAS = "inconsistent aliased update"
"""git's receive-pack's reason for a symbolic ref and its target updated differently in one push."""
BROKEN_SYMREF = "broken symref"
"""git's receive-pack's reason for an update of a symbolic ref that resolves to no ref name (a loop)."""
SYMREF_DEPTH = 5
"""Symbolic refs followed from one name, as git's resolver follows them."""


def ref_name_refusal(name: bytes) -> str | None:
    """Why git's receive-pack refuses a command's ref name (check-ref-format; commands only touch
    ``refs/``), or None.

    Names are data that later becomes file paths in the fs backend, so every name is checked
    before any backend sees it (PROTOCOL-NOTES §4.2); a refused one is refused alone, the push's
    other commands go on, as in git.
    """
    if len(name) > MAX_REF_NAME:
        return REFNAME_TOO_LONG
    components = name.split(b"/")
    bad = (
        not name.startswith(b"refs/")
        or any(b in _REF_FORBIDDEN for b in name)
        or b".." in name
        or b"@{" in name
        or name.endswith((b"/", b".", b".lock"))
        or any(not c or c.startswith(b".") or c.endswith(b".lock") for c in components)
    )
    return FUNNY_REFNAME if bad else None


def check_ref_name(name: bytes) -> None:
    """Raise ``ProtocolError`` for a name ``ref_name_refusal`` refuses."""
    reason = ref_name_refusal(name)
    if reason is not None:
        raise ProtocolError(f"invalid ref name {quoted(name, 200)}: {reason}")


@dataclass(frozen=True, slots=True)
class Screened:
    """What the gateway decides of one push command before a repository sees it."""

    reason: str | None = None
    """Why it is refused (its ``ng`` reason), or None."""
    target: bytes | None = None
    """For a command naming a symbolic ref: the ref its update moves (the repository is asked to
    update that ref)."""
    skipped: bool = False
    """A symbolic ref's command that its target's own command in the push makes (git reports it
    with the target's result)."""


def screen_commands(updates: Sequence[RefUpdate], symrefs: Mapping[bytes, bytes]) -> list[Screened]:
    """git's receive-pack's checks of a push's commands as a whole, one ``Screened`` per command.

    A name check-ref-format refuses is refused alone (``ref_name_refusal``).  A command naming a
    symbolic ref (``symrefs``: each one and its target) updates its target, as in git: when the
    target's own command is in the push too, the two must agree (git's ``check_aliased_updates``:
    the symbolic ref's command is then skipped; otherwise both are refused); deleting through a
    symbolic ref is refused (git deletes the target and leaves the symbolic ref dangling).  A ref
    the push would update twice (named twice, or through two symbolic refs) is updated by the
    first command only.
    """
    reasons: list[str | None] = [ref_name_refusal(u.ref) for u in updates]
    direct: dict[bytes, int] = {}
    for i, u in enumerate(updates):
        if reasons[i] is None and u.ref not in symrefs:
            direct.setdefault(u.ref, i)
    targets: list[bytes | None] = [None] * len(updates)
    skipped = [False] * len(updates)
    for i, u in enumerate(updates):
        if reasons[i] is not None or u.ref not in symrefs:
            continue
        target = targets[i] = resolve_symref(symrefs, u.ref)
        if target is None:
            reasons[i] = BROKEN_SYMREF
        elif is_zero_id(u.new):
            reasons[i] = (f"cannot delete a symbolic ref by a push (it points to {printable(target)}); "
                          "delete it on the server")
        elif (j := direct.get(target)) is not None:
            if (updates[j].old, updates[j].new) == (u.old, u.new):
                skipped[i] = True
            else:
                reasons[i] = reasons[j] = INCONSISTENT_ALIAS
    updated: set[bytes] = set()
    for i, u in enumerate(updates):
        if reasons[i] is None and not skipped[i]:
            ref = targets[i] or u.ref
            if ref in updated:
                reasons[i] = DUPLICATE_REF
            updated.add(ref)
    return [Screened(reason, target, skip) for reason, target, skip in zip(reasons, targets, skipped, strict=True)]


def resolve_symref(symrefs: Mapping[bytes, bytes], name: bytes) -> bytes | None:
    """The ref ``name`` resolves to through ``symrefs`` (followed ``SYMREF_DEPTH`` deep at most, as
    git does); None for a loop or a deeper chain."""
    for _ in range(SYMREF_DEPTH):
        name = symrefs[name]
        if name not in symrefs:
            return name
    return None


class ReceivePack:
    """The server side of one v0/v1 receive-pack exchange (or one stateless-RPC request)."""

    def __init__(self, max_pack: int = DEFAULT_MAX_PACK, max_buffer: int = pktline.DEFAULT_MAX_BUFFER,
                 bounds: ReceiveBounds = ReceiveBounds(), object_format: ObjectFormat = SHA1_FORMAT) -> None:
        self._decoder = pktline.PktLineDecoder(max_buffer, bounds.pkt_line)
        self._bounds = bounds
        self._format = object_format
        self._state = State.COMMANDS
        self._updates: list[RefUpdate] = []
        self._names_size = 0
        self._caps: frozenset[bytes] = frozenset()
        self._shallows: list[ObjectId] = []
        self._options: list[bytes] = []
        self._cert: list[bytes] = []
        self._cert_size = 0
        self._cert_nonce: bytes | None = None
        self._max_pack = max_pack
        self._scanner = PackScanner(max_pack, bounds.object_size, bounds.delta_result, object_format=object_format)
        self._pending: list[Event] = []
        self.commands: RefCommands | None = None
        self.client_session_id: str | None = None
        """The ``session-id=`` the client sent with its first command (``git_caps.session_id_of``), if any."""

    @property
    def state(self) -> State:
        return self._state

    def use_object_format(self, object_format: ObjectFormat) -> None:
        """The repository's object format, once it is open (before the client's commands are read,
        and before ``limit_pack``)."""
        if object_format != self._format:
            self._format = object_format
            self._scanner = PackScanner(self._max_pack, self._bounds.object_size, self._bounds.delta_result,
                                        object_format=object_format)

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client; b"" is EOF."""
        if self._state is State.PACK and data:
            self._scan(data)
        else:
            self._decoder.receive_data(data)

    def next_event(self) -> Event | Signal:
        """Parse until an event is complete; NEED_DATA or PAUSED otherwise."""
        while not self._pending:
            if self._state in (State.REPORT, State.DONE):
                return Signal.PAUSED
            if self._state is State.PACK:
                if self._decoder.eof:
                    raise ProtocolError("the pushed pack is truncated: the client closed the connection")
                return Signal.NEED_DATA
            packet = self._decoder.next_packet()
            if packet is Signal.NEED_DATA:
                if not self._decoder.eof:
                    return Signal.NEED_DATA
                self._on_eof()
            else:
                self._on_packet(packet)
        return self._pending.pop(0)

    def offer_push_cert(self, nonce: bytes) -> None:
        """Take a signed push: the advertisement offered ``push-cert=<nonce>`` (a client that sends
        a certificate it was not asked for is refused)."""
        self._cert_nonce = nonce

    def limit_pack(self, max_bytes: int, why: str) -> None:
        """Refuse a pushed pack of more than ``max_bytes`` (a repository's ``receive.maxInputSize``)."""
        self._scanner.limit(max_bytes, why)

    def take_pack_data(self) -> list[PackData]:
        """Remove and return the ``PackData`` events at the head of the queue.

        For a caller that writes the pack itself as it scans it (in another
        thread than the one taking the other events, never at the same time).
        """
        taken: list[PackData] = []
        while self._pending and isinstance(self._pending[0], PackData):
            taken.append(self._pending.pop(0))  # type: ignore[arg-type]
        return taken

    def _advance(self, inp: Input) -> None:
        self._state = step(_TRANSITIONS, self._state, inp, "receive-pack")

    def _on_eof(self) -> None:
        if self._state is not State.COMMANDS or self._updates:
            raise ProtocolError("receive-pack: the client closed the connection in the middle of its request")
        self._advance(Input.EOF)
        self._pending.append(ClientClosed())

    def _on_packet(self, packet: bytes | Special | Signal) -> None:
        if packet is Special.FLUSH:
            if self._state is State.CERT:  # as git: a flush ends the certificate and the commands
                self._end_cert()
            self._on_flush()
        elif not isinstance(packet, bytes):
            raise ProtocolError(f"receive-pack: unexpected {packet} packet")
        elif self._state is State.CERT:
            self._on_cert_line(packet)
        elif self._state is State.OPTIONS:
            self._on_option(packet)
        elif packet.startswith(b"shallow "):
            self._on_shallow(packet)
        elif packet.partition(b"\0")[0].removesuffix(b"\n") == b"push-cert":
            self._on_cert_start(packet)
        else:
            self._on_command(packet)

    def _first_line_caps(self, line: bytes) -> bytes:
        """The line without its capabilities, which the request's first line carries."""
        text, nul, caps = line.removesuffix(b"\n").partition(b"\0")
        if nul and not self._updates and not self._cert:
            parsed = git_caps.parse_caps(caps)
            git_caps.check_object_format(parsed, self._format)
            self._caps = frozenset(parsed)
            self.client_session_id = git_caps.session_id_of(parsed)
        return text

    def _on_cert_start(self, line: bytes) -> None:
        self._advance(Input.CERT_START)
        if self._cert_nonce is None:
            raise ProtocolError("receive-pack: a push certificate was sent, but this repository does not take "
                                "signed pushes (push without --signed)")
        if self._updates or self._cert:
            raise ProtocolError("receive-pack: got both push certificate and unsigned commands")
        self._first_line_caps(line)
        self._cert.append(b"")  # started; the lines follow

    def _on_cert_line(self, line: bytes) -> None:
        if line == b"push-cert-end\n":
            self._end_cert()
            return
        self._advance(Input.CERT_LINE)
        self._cert_size += len(line)
        if self._cert_size > git_push_cert.MAX_CERT:
            raise LimitExceeded(f"a push certificate of more than {git_push_cert.MAX_CERT} bytes")
        self._cert.append(line)

    def _end_cert(self) -> None:
        """The certificate is whole: its command lines are the push's commands."""
        self._advance(Input.CERT_END)
        try:
            lines = git_push_cert.command_lines(b"".join(self._cert))
        except ValueError as exc:
            raise ProtocolError(f"receive-pack: {exc}") from None
        for line in lines:
            self._add_update(line)

    def _on_command(self, line: bytes) -> None:
        self._advance(Input.COMMAND)
        if self._cert:
            raise ProtocolError("receive-pack: got both push certificate and unsigned commands")
        self._add_update(self._first_line_caps(line))

    def _add_update(self, command: bytes) -> None:
        if len(self._updates) >= self._bounds.commands:
            raise LimitExceeded(f"more than {self._bounds.commands} ref updates in one push; push the refs in "
                                "parts, or ask the server's operator to raise max_refs under [limits]")
        parts = command.split(b" ", 2)
        if len(parts) != 3:
            raise ProtocolError(f"receive-pack: expected '<old> <new> <ref>', got {quoted(command, 120)}")
        if any(b in _CONTROL for b in parts[2]):  # no client sends them (git checks its names); never logged
            raise ProtocolError(f"invalid ref name {quoted(parts[2], 200)}: control characters")
        self._names_size += len(parts[2])
        if self._names_size > MAX_NAMES_SIZE:  # names over MAX_REF_NAME are kept to be refused by name
            raise LimitExceeded(f"more than {MAX_NAMES_SIZE >> 20} MiB of ref names in one push")
        hex_len = self._format.hex_len
        self._updates.append(RefUpdate(parts[2], parse_oid(parts[0], hex_len), parse_oid(parts[1], hex_len)))

    def _on_shallow(self, line: bytes) -> None:
        self._advance(Input.SHALLOW)
        if len(self._shallows) >= MAX_SHALLOWS:
            raise LimitExceeded(f"more than {MAX_SHALLOWS} shallow lines")
        self._shallows.append(parse_oid(line[len(b"shallow ") :].removesuffix(b"\n"), self._format.hex_len))

    def _on_option(self, line: bytes) -> None:
        self._advance(Input.OPTION)
        if len(self._options) >= MAX_PUSH_OPTIONS:
            raise LimitExceeded(f"more than {MAX_PUSH_OPTIONS} push options")
        self._options.append(line.removesuffix(b"\n"))

    def _on_flush(self) -> None:
        if self._state is State.COMMANDS and not self._updates:
            self._advance(Input.EMPTY_FLUSH)
            self._pending.append(NoCommands())
            return
        if self._state is State.COMMANDS and git_caps.PUSH_OPTIONS in self._caps:
            self._advance(Input.FLUSH_NEEDS_OPTIONS)
            return
        commands = RefCommands(tuple(self._updates), self._caps, tuple(self._options), tuple(self._shallows),
                               b"".join(self._cert))
        self.commands = commands
        self._pending.append(commands)
        if not commands.needs_pack:
            self._advance(Input.FLUSH_NO_PACK)
            self._pending.append(PackEnd())
            return
        self._advance(Input.FLUSH)
        rest = self._decoder.take_raw()
        if rest:
            self._scan(rest)

    def _scan(self, data: bytes) -> None:
        consumed = self._scanner.feed(data)
        if consumed:
            self._pending.append(PackData(data[:consumed], tuple(self._scanner.take_objects())))
        if self._scanner.complete:
            if consumed < len(data):
                raise ProtocolError("receive-pack: unexpected bytes after the pack")
            self._advance(Input.PACK_COMPLETE)
            self._pending.append(PackEnd())

    # -- responses ----------------------------------------------------------------

    @property
    def _band_limit(self) -> int | None:
        return sideband.MAX_PAYLOAD_64K if git_caps.SIDE_BAND_64K in self._caps else None

    def report_status(self, unpack_error: str | None, results: Sequence[RefResult]) -> bytes:
        """``unpack ok|<reason>`` and one ``ok``/``ng`` line per ref, in band 1 if side-band-64k.

        Without report-status(-v2) the client asked for no report, so none is
        sent.  ``ng`` reasons are single lines (newlines would break framing).
        """
        self._advance(Input.REPORTED)
        return _report(self._caps, unpack_error, results)

    def progress(self, message: bytes) -> bytes:
        """Text for the client's terminal (hook output): band 2 with side-band-64k, else nothing."""
        limit = self._band_limit
        if not message or limit is None:
            return b""
        return sideband.encode(sideband.Band.PROGRESS, message, limit)

    def keepalive(self) -> bytes:
        """What git's receive-pack sends while it works on a received pack and has nothing to say
        (``receive.keepAlive``): an empty band-1 packet, which the client reads as no data but
        which keeps a proxy or a firewall from dropping a quiet connection; nothing without
        side-band-64k."""
        return sideband.KEEPALIVE if self._band_limit is not None else b""

    def fatal(self, message: bytes) -> bytes:
        """A fatal error after the commands: band 3 with side-band-64k, else an ERR pkt-line."""
        limit = self._band_limit
        if limit is None:
            return pktline.encode(b"ERR " + message)
        return sideband.encode(sideband.Band.ERROR, message, limit)


def _report(caps: frozenset[bytes], unpack_error: str | None, results: Sequence[RefResult]) -> bytes:
    """``ReceivePack.report_status`` for a request that asked for ``caps``."""
    if not caps & {git_caps.REPORT_STATUS, git_caps.REPORT_STATUS_V2}:
        return b""
    lines = [b"unpack " + (b"ok" if unpack_error is None else _one_line(unpack_error)) + b"\n"]
    v2 = git_caps.REPORT_STATUS_V2 in caps
    lines += [line for r in results for line in _result_lines(r, v2)]
    report = b"".join(pktline.encode(line) for line in lines) + pktline.FLUSH
    if git_caps.SIDE_BAND_64K not in caps:
        return report
    return sideband.encode(sideband.Band.DATA, report, sideband.MAX_PAYLOAD_64K) + pktline.FLUSH


class RefusedPush:
    """A push over smart HTTP refused as a whole before it could start (its repository was removed
    after its ``info/refs`` was answered, say): its request's commands are read, for the
    capabilities and ref names they carry, and ``answer`` says why in the terms the client reads.

    The ``ERR`` line sent at once before was read by a client that asked for side-band-64k (git
    does) as a packet of band 69: ``send-pack: protocol error: bad band #69``, the reason lost.
    With report-status, each ref is refused with the reason (``error: remote unpack failed:
    REASON``, ``! [remote rejected] REF (REASON)``); else band 3 with side-band-64k (``remote:
    REASON``); else the ``ERR`` line.  Nothing of the commands is checked but their shape: they
    are not run.
    """

    def __init__(self, reason: bytes) -> None:
        self._reason = reason.replace(b"\n", b" ")
        self._decoder = pktline.PktLineDecoder()
        self._caps: frozenset[bytes] = frozenset()
        self._refs: list[bytes] = []
        self._first = True
        self._in_cert = False
        self._read = False

    def receive_data(self, data: bytes) -> None:
        """The request's bytes as they come (b"": its end); ``ProtocolError`` for what is no request.
        What follows the commands (the pack) is not kept."""
        if self._read:
            return
        self._decoder.receive_data(data)
        while not self._read:
            packet = self._decoder.next_packet()
            if packet is Signal.NEED_DATA:
                self._read = self._decoder.eof
                return
            if packet is Special.FLUSH and not self._in_cert:
                self._read = True
            elif isinstance(packet, bytes):
                self._line(packet)

    def _line(self, packet: bytes) -> None:
        line, nul, caps = packet.removesuffix(b"\n").partition(b"\0")
        if self._first and nul:
            self._caps = frozenset(git_caps.parse_caps(caps))
        self._first = False
        if line == b"push-cert":
            self._in_cert = True
        elif line == b"push-cert-end":
            self._in_cert = False
        else:
            fields = line.split(b" ")
            if (len(fields) == 3 and len(self._refs) < MAX_COMMANDS and len(fields[0]) == len(fields[1])
                    and len(fields[0]) in (40, 64) and fields[2].startswith(b"refs/")):
                self._refs.append(fields[2][:MAX_REF_NAME])

    def answer(self) -> bytes | None:
        """What the client is sent, once the commands are read (None before)."""
        if not self._read:
            return None
        reason = self._reason.decode("utf-8", "replace")
        if self._refs and self._caps & {git_caps.REPORT_STATUS, git_caps.REPORT_STATUS_V2}:
            return _report(self._caps, reason, [RefResult(ref, reason) for ref in self._refs])
        if git_caps.SIDE_BAND_64K in self._caps:
            return sideband.encode(sideband.Band.ERROR, self._reason, sideband.MAX_PAYLOAD_64K) + pktline.FLUSH
        return pktline.encode(b"ERR " + self._reason)


def _one_line(text: str) -> bytes:
    return text.replace("\n", " ").encode("utf-8", "replace")[:1000]


def _result_lines(result: RefResult, v2: bool) -> list[bytes]:
    """``ok``/``ng``; with report-status-v2, an ``ok`` per report of a ``proc-receive`` hook, each
    followed by its ``option`` lines (git's order: refname, old-oid, new-oid, forced-update)."""
    if result.reason is not None:
        return [b"ng " + result.ref + b" " + _one_line(result.reason) + b"\n"]
    ok = b"ok " + result.ref + b"\n"
    if not v2 or not result.reports:
        return [ok]
    lines = []
    for report in result.reports:
        lines.append(ok)
        for key, value in ((b"refname", report.refname), (b"old-oid", report.old), (b"new-oid", report.new)):
            if value is not None:
                lines.append(b"option " + key + b" " + value + b"\n")
        if report.forced:
            lines.append(b"option forced-update\n")
    return lines


class _Phase(enum.Enum):
    HEADER = "header"
    OBJECT_HEADER = "object-header"
    INFLATE = "inflate"
    TRAILER = "trailer"
    COMPLETE = "complete"


_VALID_TYPES = frozenset({1, 2, 3, 4, 6, 7})
OFS_DELTA = 6
REF_DELTA = 7
_MAX_HEADER = 64
_TYPE_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_HEADS = (b"", b"commit ", b"tree ", b"blob ", b"tag ")
"""What a whole object's id hashes before its size, by type."""


_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
"""hashlib's own constructors: cheaper per object than ``hashlib.new`` (``ObjectFormat.hasher``)."""


def hash_constructor(object_format: ObjectFormat) -> Callable[[bytes], hashlib._Hash]:
    """The cheapest way to start a hash of ``object_format`` (hashlib's own constructor)."""
    return _HASHES.get(object_format.name, object_format.hasher)


def object_hash(type_num: int, size: int, new: Callable[[bytes], hashlib._Hash] = hashlib.sha1) -> hashlib._Hash:
    """The hash (``new``: SHA-1 by default) of a whole object, fed its header (``blob 5\\0``); the
    caller adds the content."""
    return new(_TYPE_NAMES[type_num] + b" %d\0" % size)

_WHOLE_OBJECT_MAX = 1 << 20
"""Objects up to this size are inflated in one call when they lie wholly in the data at hand, the
others piece by piece; the text of either, but a blob, goes with its record (``PackedObject.text``),
within ``TEXT_BATCH_BYTES``."""
TEXT_BATCH_BYTES = 4 << 20
"""Bytes of texts the records of one ``take_objects`` may carry in all: a few KiB of a pushed pack
can inflate to MiBs, which the records would hold until taken."""
_BLOB = 3
INFLATE_STEP = 1 << 20
"""Inflated bytes one step of the scan asks zlib for: 64 KiB of a pushed object of zeros inflate
to 64 MiB, which a step asking for all of them held (twice over, with the next answer) only to
hash and drop it: a 1 GiB blob of zeros in a 1 MB pack took 140 MB of the server's memory."""


class PackScanner:
    """Find where a PACK stream ends by walking its structure, keeping only a few header bytes.

    gitformat-pack(5): ``PACK``, version 2 or 3, a 32-bit object count; each
    object a type/size varint, an OFS_DELTA offset or REF_DELTA id, a zlib
    stream; then a checksum.  ``object_format`` is the repository's: it names
    the objects, sums the pack (20 bytes for SHA-1, 32 for SHA-256) and sizes
    a REF_DELTA's base id.  Inflated sizes are checked against the
    declared sizes, so a zlib bomb costs at most its declared size in CPU and
    never in memory (inflated bytes are discarded).

    On the way it records each object as a ``PackedObject`` (offsets, type,
    delta base, CRC-32, and the id of a whole object from its inflated bytes)
    and checks the trailing checksum, so that the store indexing the pack
    needs no second pass over it (``take_objects``).
    """

    def __init__(self, max_pack: int = DEFAULT_MAX_PACK, max_object: int = MAX_OBJECT_SIZE,
                 max_delta_result: int = MAX_OBJECT_SIZE, object_format: ObjectFormat = SHA1_FORMAT) -> None:
        self._phase = _Phase.HEADER
        self._new_hash = hash_constructor(object_format)
        self._raw_len = object_format.raw_len
        self._buffer = bytearray()
        self._remaining_objects = 0
        self._offset = 0
        self._max_pack = max_pack
        self._too_large = ""
        """The refusal of a pack over a lowered bound (``limit``); empty for the server's own bound."""
        self._max_object = max_object
        self._max_delta_result = max_delta_result
        self._inflater: zlib._Decompress | None = None
        self._declared = 0
        self._inflated = 0
        self._delta_head: bytearray | None = None
        """The first inflated bytes of a delta, until its result size is read from them."""
        self._checksum = self._new_hash(b"")
        """Of every byte before the trailer."""
        self._crc = 0
        self._object: tuple[int, int, int, int | bytes | None] | None = None
        """(offset, data offset, type, base) of the object being inflated."""
        self._hash: hashlib._Hash | None = None
        self._objects: list[PackedObject] = []
        self._text_room = TEXT_BATCH_BYTES
        """What more texts the records not yet taken may carry (``PackedObject.text``)."""
        self._pieces: list[bytes] | None = None
        """The inflated pieces of the object being inflated in pieces (not a blob), when its text
        goes with its record: a tree of 100,000 files (3.9 MB, always inflated as it arrives) was
        inflated again by the store to be checked, 15% of its push's server CPU."""
        self._at = 0
        """Pack offset of the view the current phase is given."""
        self._starts = array("Q")
        """Offsets where objects start, increasing: an OFS_DELTA's base must be one of them (8 bytes
        an object: a set of ints would take 60)."""

    @property
    def complete(self) -> bool:
        return self._phase is _Phase.COMPLETE

    def take_objects(self) -> list[PackedObject]:
        """The objects completed since the last call, in pack order."""
        objects, self._objects = self._objects, []
        self._text_room = TEXT_BATCH_BYTES - (self._declared if self._pieces is not None else 0)
        return objects

    def feed(self, data: bytes) -> int:
        """Scan ``data``; return how many of its bytes belong to the pack."""
        view = memoryview(data)
        pos = 0
        while pos < len(view) and self._phase is not _Phase.COMPLETE:
            phase = self._phase
            if phase is _Phase.OBJECT_HEADER and not self._buffer:
                end = self._whole_objects(view, pos)
                if end > pos:
                    pos = end
                    continue
            self._at = self._offset + pos
            used = _PHASES[phase](self, view[pos:])
            if phase is not _Phase.TRAILER:
                piece = view[pos:pos + used]
                self._checksum.update(piece)
                if phase is not _Phase.HEADER:
                    self._crc = zlib.crc32(piece, self._crc)
                    if self._phase is not phase and phase is _Phase.INFLATE:
                        self._finish_object(self._offset + pos + used)
            pos += used
        self._offset += pos
        if self._offset > self._max_pack:
            raise LimitExceeded(self._too_large or f"pushed pack larger than {self._max_pack} bytes")
        return pos

    def limit(self, max_pack: int, why: str) -> None:
        """Lower the pack size bound to ``max_pack`` bytes, for the reason ``why`` (a setting)."""
        if max_pack < self._max_pack:
            self._max_pack = max_pack
            self._too_large = f"pack exceeds maximum allowed size ({why})"

    def _whole_objects(self, view: memoryview, pos: int) -> int:
        """Scan the small objects that lie wholly in ``view`` from ``pos``, one after another, in one
        call; where the last ends (``pos`` when the first is not such an object).

        The common case, without the phase machine's per-piece steps: an object cut by the end of
        ``view``, a large one, or bytes that do not inflate as declared stop the run and are left
        to them, which raise the precise error.  A whole object's header is read here; a delta's,
        or any header out of the ordinary, as they read it (``_object_at``).  The pack's checksum
        takes the run's bytes in one update.  (A call an object, its header read by two more, its
        hash begun by a third, its record made by a fourth and the checksum updated apart: the scan
        of a push of 100,000 small files took 0.28 s of CPU in process, 0.19-0.20 s since.)
        """
        start, stop = pos, len(view)
        starts, append, crc32 = self._starts, self._objects.append, zlib.crc32
        new_hash, decompressobj, record = self._new_hash, zlib.decompressobj, tuple.__new__
        base_offset, max_small = self._offset, min(self._max_object, _WHOLE_OBJECT_MAX)
        remaining = self._remaining_objects
        while remaining and pos < stop:
            offset = base_offset + pos
            byte = view[pos]
            type_num, size, shift, i = (byte >> 4) & 7, byte & 0x0F, 4, pos + 1
            base: int | bytes | None = None
            if 0 < type_num < 5:
                while byte & 0x80 and shift < 32 and i < stop:  # (more than 32 bits: ``_object_at``'s)
                    byte = view[i]
                    size |= (byte & 0x7F) << shift
                    shift += 7
                    i += 1
                if byte & 0x80 or size > max_small:
                    break
            else:
                parsed = self._object_at(view[pos:pos + _MAX_HEADER], offset)
                if parsed is None:
                    break
                header_len, size, type_num, base = parsed
                if size > _WHOLE_OBJECT_MAX:
                    break
                i = pos + header_len
            inflater = decompressobj()
            piece = view[i:i + size + (size >> 11) + 64]  # zlib's bound on what ``size`` bytes deflate to
            try:
                out = inflater.decompress(piece, size + 1)
            except zlib.error:
                break
            if not inflater.eof or len(out) != size:
                break
            if base is None:
                digest: bytes | None = new_hash(_HEADS[type_num] + b"%d\0" % size + out).digest()
            else:
                sizes = delta_sizes(out[:DELTA_HEAD_MAX])
                if sizes is None or sizes[1] > self._max_delta_result:
                    break
                digest = None
            end = i + len(piece) - len(inflater.unused_data)
            starts.append(offset)
            text = None
            if type_num != _BLOB and size <= self._text_room:
                text = out
                self._text_room -= size
            append(record(PackedObject, (offset, base_offset + i, base_offset + end, type_num, size, base,
                                         crc32(view[pos:end]), digest, text)))
            remaining -= 1
            pos = end
        if pos > start:
            self._checksum.update(view[start:pos])
            self._remaining_objects = remaining
            if not remaining:
                self._phase = _Phase.TRAILER
        return pos

    def _buffered(self, view: memoryview, want: int) -> int:
        take = min(want - len(self._buffer), len(view))
        self._buffer += view[:take]
        return take

    def _header(self, view: memoryview) -> int:
        used = self._buffered(view, PACK_HEADER)
        if len(self._buffer) == PACK_HEADER:
            head = bytes(self._buffer)
            if head[:4] != b"PACK" or int.from_bytes(head[4:8], "big") not in (2, 3):
                raise ProtocolError("receive-pack: the pushed data is not a version 2 or 3 pack")
            self._remaining_objects = int.from_bytes(head[8:12], "big")
            self._buffer.clear()
            self._phase = _Phase.OBJECT_HEADER if self._remaining_objects else _Phase.TRAILER
        return used

    def _object_header(self, view: memoryview) -> int:
        before = len(self._buffer)
        take = min(_MAX_HEADER - before, len(view))
        self._buffer += view[:take]
        offset = self._at - before
        parsed = self._object_at(bytes(self._buffer), offset)
        if parsed is None:
            if len(self._buffer) >= _MAX_HEADER:
                raise ProtocolError("receive-pack: malformed object header in the pushed pack")
            return take
        header_len, size, type_num, base = parsed
        self._buffer.clear()
        self._declared, self._inflated = size, 0
        self._inflater = zlib.decompressobj()
        self._phase = _Phase.INFLATE
        self._starts.append(offset)
        self._object = (offset, offset + header_len, type_num, base)
        if type_num in (OFS_DELTA, REF_DELTA):
            self._delta_head, self._hash = bytearray(), None
        else:
            self._delta_head, self._hash = None, object_hash(type_num, size, self._new_hash)
        self._pieces = None
        if type_num != _BLOB and size <= self._text_room:
            self._pieces = []
            self._text_room -= size
        return header_len - before

    def _object_at(self, buf: bytes | memoryview, offset: int) -> tuple[int, int, int, int | bytes | None] | None:
        """(header length, size, type, base) of the object whose header begins ``buf``, at pack ``offset``.

        None if ``buf`` is too short.  An OFS_DELTA's base comes back as a pack
        offset, which must be where an earlier object starts; an object larger
        than the limit is refused.
        """
        parsed = _parse_object_header(buf, self._raw_len)
        if parsed is None:
            return None
        header_len, size, type_num, base = parsed
        if size > self._max_object:
            raise LimitExceeded(f"an object of {size} bytes in the pushed pack exceeds the limit of {self._max_object}")
        if type_num == OFS_DELTA:
            assert isinstance(base, int)
            if base > offset or not _started(self._starts, offset - base):
                raise ProtocolError("receive-pack: an OFS_DELTA in the pushed pack names a base that is "
                                    "not an earlier object of the pack")
            base = offset - base
        return header_len, size, type_num, base

    def _inflate(self, view: memoryview) -> int:
        try:
            return self._inflate_piece(view)
        except zlib.error as exc:
            raise ProtocolError(f"receive-pack: corrupt zlib data in the pushed pack ({exc})") from None

    def _inflate_piece(self, view: memoryview) -> int:
        assert self._inflater is not None
        # Rarely more input than the rest of the object needs: zlib copies what follows its end.
        piece = view[: max(512, min(len(view), self._declared - self._inflated + 1024, 65536))]
        asked = min(self._declared + 1 - self._inflated, INFLATE_STEP)
        out = self._inflater.decompress(piece, asked)
        self._took(out)
        # more while input waits, or while zlib may hold output it had no room for (a full answer)
        while (self._inflater.unconsumed_tail or len(out) == asked) and self._inflated <= self._declared \
                and not self._inflater.eof:
            asked = min(self._declared + 1 - self._inflated, INFLATE_STEP)
            out = self._inflater.decompress(self._inflater.unconsumed_tail, asked)
            self._took(out)
        if self._inflated > self._declared:
            raise ProtocolError("receive-pack: an object in the pushed pack inflates past its declared size")
        if not self._inflater.eof:
            return len(piece)
        if self._inflated != self._declared:
            raise ProtocolError("receive-pack: an object in the pushed pack is shorter than declared")
        self._remaining_objects -= 1
        self._phase = _Phase.OBJECT_HEADER if self._remaining_objects else _Phase.TRAILER
        return len(piece) - len(self._inflater.unused_data)

    def _took(self, out: bytes) -> None:
        self._inflated += len(out)
        if self._pieces is not None and out:
            self._pieces.append(out)
        if self._hash is not None:
            self._hash.update(out)
        else:
            self._watch_delta(out)

    def _finish_object(self, end: int) -> None:
        assert self._object is not None
        offset, data_offset, type_num, base = self._object
        sha = self._hash.digest() if self._hash is not None else None
        pieces, self._pieces = self._pieces, None
        text = None if pieces is None else pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._objects.append(PackedObject(offset, data_offset, end, type_num, self._declared, base, self._crc, sha,
                                          text))
        self._object, self._crc = None, 0

    def _watch_delta(self, out: bytes) -> None:
        """Read a delta's result size (its second varint) as soon as it is inflated; refuse one too large."""
        head = self._delta_head
        if head is None or not out:
            return
        head += out[: DELTA_HEAD_MAX - len(head)]
        sizes = delta_sizes(bytes(head))
        if sizes is None:
            if len(head) >= DELTA_HEAD_MAX or self._inflated >= self._declared:
                raise ProtocolError("receive-pack: a delta in the pushed pack has a malformed header")
            return
        self._delta_head = None
        if sizes[1] > self._max_delta_result:
            raise LimitExceeded(f"a delta in the pushed pack rebuilds an object of {sizes[1]} bytes, "
                                f"over the limit of {self._max_delta_result}")

    def _trailer(self, view: memoryview) -> int:
        used = self._buffered(view, self._raw_len)
        if len(self._buffer) == self._raw_len:
            if bytes(self._buffer) != self._checksum.digest():
                raise ProtocolError("receive-pack: the pushed pack's checksum does not match its content")
            self._buffer.clear()
            self._phase = _Phase.COMPLETE
            self._starts = array("Q")  # (8 bytes an object, which the ingest's columns hold too)
        return used


def _started(starts: array[int], offset: int) -> bool:
    """Whether an object starts at ``offset`` (``starts``: increasing)."""
    at = bisect_left(starts, offset)
    return at < len(starts) and starts[at] == offset


_PHASES: dict[_Phase, Callable[[PackScanner, memoryview], int]] = {
    _Phase.HEADER: PackScanner._header,
    _Phase.OBJECT_HEADER: PackScanner._object_header,
    _Phase.INFLATE: PackScanner._inflate,
    _Phase.TRAILER: PackScanner._trailer,
}


DELTA_HEAD_MAX = 20
"""Two varints of at most 10 bytes: a delta's base size and result size."""


def delta_sizes(head: bytes) -> tuple[int, int] | None:
    """(base size, result size) from the start of an inflated delta; None if not all there yet."""
    values, value, shift = [], 0, 0
    for byte in head:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            if len(values) == 2:
                return values[0], values[1]
            value, shift = 0, 0
        elif shift >= 70:
            raise ProtocolError("receive-pack: a delta size in the pushed pack does not fit in 64 bits")
    return None


def _parse_object_header(buf: bytes | memoryview, raw_len: int = 20
                         ) -> tuple[int, int, int, int | bytes | None] | None:
    """(header length, declared size, type, base) of a pack object, or None if ``buf`` is too short.

    ``base``: an OFS_DELTA's distance back to its base, a REF_DELTA's base id (``raw_len`` bytes), else None.
    """
    if not buf:
        return None
    type_num = (buf[0] >> 4) & 7
    if type_num not in _VALID_TYPES:
        raise ProtocolError(f"receive-pack: invalid object type {type_num} in the pushed pack")
    size, shift, i = buf[0] & 0x0F, 4, 0
    while buf[i] & 0x80:
        i += 1
        if i >= len(buf) or shift > 60:
            return None if i >= len(buf) else _too_large()
        size |= (buf[i] & 0x7F) << shift
        shift += 7
    i += 1
    if type_num == REF_DELTA:
        return (i + raw_len, size, type_num, bytes(buf[i:i + raw_len])) if len(buf) >= i + raw_len else None
    if type_num == OFS_DELTA:
        skipped = _ofs_distance(buf, i)
        return None if skipped is None else (skipped[0], size, type_num, skipped[1])
    return i, size, type_num, None


def _ofs_distance(buf: bytes | memoryview, i: int) -> tuple[int, int] | None:
    """(end, distance) of an OFS_DELTA base offset; 0 would make the object its own base (dulwich NEWS 1.2.9)."""
    if i >= len(buf):
        return None
    value = buf[i] & 0x7F
    while buf[i] & 0x80:
        i += 1
        if i >= len(buf):
            return None
        if value >= 1 << 56:
            _too_large()
        value = ((value + 1) << 7) | (buf[i] & 0x7F)
    if value == 0:
        raise ProtocolError("receive-pack: an OFS_DELTA in the pushed pack names itself as its base")
    return i + 1, value


def _too_large() -> NoReturn:
    raise LimitExceeded("receive-pack: an object size in the pushed pack does not fit in 64 bits")
