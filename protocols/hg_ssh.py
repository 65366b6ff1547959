"""The server side of Mercurial's SSH wire protocol version 1, sans-IO.

Spec: ``mercurial/helptext/internals/wireprotocol.txt`` ("SSH Protocol",
"SSH Version 1 Transport") and hg 7.2.4's ``_runsshserver``.  A request is a
command line ``name\\n`` then, per declared argument, ``key <len>\\n<value>``;
a ``*`` argument is ``* <count>\\n`` then ``count`` such entries.  A string
reply is ``<len>\\n<data>``, a stream reply is raw, and an out-of-band error is
``msg\\n`` on stderr plus ``\\n`` on stdout (``OOB_STDOUT``).  ``unbundle`` answers ``0\\n``
("go ahead") and then reads ``<len>\\n<chunk>`` frames until ``0\\n``.

The caller owns the I/O, as with h11: ``receive_data`` buffers (``b""`` is
EOF), ``next_event`` parses, ``send``/``accept_push`` return bytes to write.
An adapter loops on ``next_event``:

- ``CommandRequest``: look up ``COMMANDS[name]`` (absent: still ``dispatch``, it
  answers ``0\n``), check its permission, run ``hg_commands.dispatch`` in the
  worker pool, then write ``send(response)``: ``stderr``, then ``stdout``, then
  the ``stream`` chunks raw.  For a command with ``takes_payload`` (unbundle),
  write ``accept_push()`` first (or ``send(OobError(...))`` to refuse); the
  following ``PushPayload`` events up to ``PushEnd`` are the bundle, handed to
  the handler as ``CommandContext.payload``, a blocking iterator read in the pool.
- ``Signal.PAUSED``: a reply is owed; ``Signal.NEED_DATA``: read more.
- ``ConnectionClosed``: exit status 0.  ``ProtocolError`` from any call: the
  peer broke the protocol; report it on stderr and close.
"""

from __future__ import annotations

import enum
import itertools
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from protocols.errors import LimitExceeded, ProtocolError
from protocols.hg_commands import COMMANDS, STAR, Args, Command
from protocols.hg_http import ENGINE_ZLIB, ENGINE_ZSTD, PROTO_COMP, WireSettings, compress_stream
from protocols.hg_responses import BytesResponse, OobError, PushError, PushResponse, Response, StreamResponse

SSH_CAPS = (b"protocaps",)
"""Capabilities only the SSH transport adds (``sshv1protocolhandler.addcapabilities``)."""
GO_AHEAD = b"0\n"
OOB_STDOUT = b"\n"
"""An out-of-band error's reply: hg's client reads this empty line as "remote error", shows what
came on stderr (``remote: <line>`` each) and aborts ("check previous remote output").  hg's
``_sshv1respondooberror`` ends the message with a ``-`` line, which no client of any version
parses and every one shows (``remote: -``): hgwire ends it with its line end alone."""
PROTOCAPS_COMMAND = b"protocaps"
_MAX_DIGITS = 18
"""Longest decimal length read; any limit fits, and int() never sees its 4300-digit ceiling."""


@dataclass(frozen=True, slots=True)
class SshLimits:
    """Bounds of the request parser; hg's own parser has none."""

    max_line: int = 4096
    max_arg_length: int = 8 << 20
    max_args: int = 64
    max_request: int = 16 << 20
    """All of one request's arguments together: what the parser may buffer."""
    max_frame: int = 16 << 20


class Signal(enum.Enum):
    """Non-event results of ``next_event``."""

    NEED_DATA = "need-data"
    PAUSED = "paused"
    """A reply (``send``) or a push decision (``accept_push``/``send``) is awaited."""


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A complete command with its arguments (unknown commands included: they get ``0\\n``)."""

    name: bytes
    args: Args


@dataclass(frozen=True, slots=True)
class PushPayload:
    """A piece of the pushed bundle (after ``accept_push``)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PushEnd:
    """The pushed bundle is complete; ``send`` the unbundle result next."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client ended the session (EOF or an empty command line)."""


Event = CommandRequest | PushPayload | PushEnd | ConnectionClosed


@dataclass(frozen=True, slots=True)
class SshOutput:
    """What to write for a response: ``stderr`` first, then ``stdout``, then ``stream`` raw."""

    stdout: bytes
    stderr: bytes = b""
    stream: Iterator[bytes] | None = None
    engine: bytes = b""
    """The engine ``stream`` is compressed with inside its bundle2 (``compressed_bundle2``), or b""."""


BUNDLE2_COMPRESSION: Mapping[bytes, bytes] = {ENGINE_ZSTD: b"ZS", ENGINE_ZLIB: b"GZ"}
"""Wire engines whose output a bundle2 carries under its ``Compression`` stream parameter."""

DEFAULT_SETTINGS = WireSettings()

_PLAIN_BUNDLE2 = b"HG20" + struct.pack(">i", 0)
"""The head of a bundle2 without stream parameters: what ``compressed_bundle2`` rewrites."""


def bundle_engine(protocaps: frozenset[bytes], settings: WireSettings) -> bytes | None:
    """The engine for a getbundle answer over SSH: the first of the server's that the client lists.

    hg's own SSH server sends bundles uncompressed: 1.65 times the bytes of a
    compressed one on the bench corpus, for the client's ssh to decrypt and its
    pipe reader to read (``bufferedinputpipe``, 4 KiB a read).  Since hg 4.6 the client names the
    wire engines it decompresses in ``protocaps`` (``comp=zstd,zlib,none``), and
    its bundle2 reader takes a ``Compression`` stream parameter from any peer,
    reading the compressed part with ``unbufferedread``, so it never waits for
    bytes past the bundle's end.  No ``comp=`` (an older client), or ``none``
    first in the server's order: None.
    """
    offered = (e for cap in protocaps if cap.startswith(PROTO_COMP) for e in cap[len(PROTO_COMP):].split(b","))
    engine = settings.preferred_engine(offered)
    return engine if engine is not None and engine in BUNDLE2_COMPRESSION else None


def compressed_bundle2(chunks: Iterator[bytes], engine: bytes, settings: WireSettings) -> Iterator[bytes]:
    """A bundle2 without stream parameters, sent with ``Compression=`` and the rest compressed.

    Any other stream (a bundle1 changegroup) passes as it is.
    """
    try:
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= len(_PLAIN_BUNDLE2):
                break
        if not head.startswith(_PLAIN_BUNDLE2):
            if head:
                yield head
            yield from chunks
            return
        param = b"Compression=" + BUNDLE2_COMPRESSION[engine]
        yield b"HG20" + struct.pack(">i", len(param)) + param
        yield from compress_stream(itertools.chain((head[len(_PLAIN_BUNDLE2):],), chunks), engine, settings)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class State(enum.Enum):
    IDLE = "idle"
    RESPONDING = "responding"
    PUSH_PENDING = "push-pending"
    PUSH_PAYLOAD = "push-payload"
    CLOSED = "closed"


class Input(enum.Enum):
    COMMAND = "command"
    PUSH_COMMAND = "push-command"
    SEND = "send"
    ACCEPT_PUSH = "accept-push"
    PAYLOAD_END = "payload-end"
    CLOSE = "close"


_TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.IDLE, Input.COMMAND): State.RESPONDING,
    (State.IDLE, Input.PUSH_COMMAND): State.PUSH_PENDING,
    (State.IDLE, Input.CLOSE): State.CLOSED,
    (State.RESPONDING, Input.SEND): State.IDLE,
    (State.PUSH_PENDING, Input.ACCEPT_PUSH): State.PUSH_PAYLOAD,
    (State.PUSH_PENDING, Input.SEND): State.IDLE,
    (State.PUSH_PAYLOAD, Input.PAYLOAD_END): State.RESPONDING,
    (State.RESPONDING, Input.CLOSE): State.CLOSED,
    (State.PUSH_PENDING, Input.CLOSE): State.CLOSED,
    (State.CLOSED, Input.CLOSE): State.CLOSED,
}


def frame(data: bytes) -> bytes:
    """A string reply: ``<len>\\n<data>`` (``_sshv1respondbytes``)."""
    return b"%d\n" % len(data) + data


def _render_push(response: PushResponse) -> SshOutput:
    return SshOutput(frame(b"") + frame(b"%d" % response.result), stderr=response.output)


def _render_push_error(response: PushError) -> SshOutput:
    return SshOutput(frame(response.message), stderr=response.output)


def _render_oob(response: OobError) -> SshOutput:
    message = response.message if response.message.endswith(b"\n") else response.message + b"\n"
    return SshOutput(OOB_STDOUT, stderr=message)


def render(response: Response, engine: bytes | None = None, settings: WireSettings = DEFAULT_SETTINGS) -> SshOutput:
    """How a handler's value goes on the SSH channel (``_runsshserver``'s reply ladder, as a table).

    ``engine`` (``bundle_engine``) compresses a getbundle answer that is not a stream clone.
    """
    match response:
        case BytesResponse(data=data, output=output):
            return SshOutput(frame(data), stderr=output)
        case StreamResponse(chunks=chunks, output=output, compressible_bundle=True) if engine is not None:
            return SshOutput(b"", stderr=output, stream=compressed_bundle2(chunks, engine, settings), engine=engine)
        case StreamResponse(chunks=chunks, output=output):
            return SshOutput(b"", stderr=output, stream=chunks)
        case PushResponse():
            return _render_push(response)
        case PushError():
            return _render_push_error(response)
        case OobError():
            return _render_oob(response)
    raise TypeError(f"not a wire response: {response!r}")


class _Incomplete(Exception):
    """More bytes are needed to parse the request."""


class SshV1Server:
    """One ``hg serve --stdio`` session, from bytes in to events and bytes out."""

    def __init__(self, commands: Mapping[bytes, Command] = COMMANDS, limits: SshLimits = SshLimits(),
                 settings: WireSettings = DEFAULT_SETTINGS) -> None:
        self._commands = commands
        self._limits = limits
        self.settings = settings
        """Compression order and levels of getbundle answers (``bundle_engine``)."""
        self._buffer = bytearray()
        self._eof = False
        self._state = State.IDLE
        self._frame_left = 0
        self._payload_name = "push"
        """What the payload being read is (``Command.payload_name``): a cut one is named so."""
        self.protocaps: frozenset[bytes] = frozenset()

    @property
    def state(self) -> State:
        return self._state

    def _move(self, event: Input) -> None:
        target = _TRANSITIONS.get((self._state, event))
        if target is None:
            raise ProtocolError(f"unexpected {event.value} in state {self._state.value}")
        self._state = target

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client's stdin; ``b""`` means EOF."""
        if not data:
            self._eof = True
        self._buffer += data

    def next_event(self) -> Event | Signal:
        """Parse the next event; raises ``ProtocolError``/``LimitExceeded`` on bad input."""
        if self._state is State.CLOSED:
            return ConnectionClosed()
        if self._state is State.IDLE:
            return self._next_command()
        if self._state is State.PUSH_PAYLOAD:
            return self._next_payload()
        if self._eof and not self._buffer:
            self._move(Input.CLOSE)
            return ConnectionClosed()
        return Signal.PAUSED

    def accept_push(self) -> bytes:
        """Let the client send its bundle (after the permission check): the ``0\\n`` go-ahead."""
        self._move(Input.ACCEPT_PUSH)
        self._frame_left = 0
        return GO_AHEAD

    def send(self, response: Response) -> SshOutput:
        """Render the reply to the current command (or refuse a pending push with it)."""
        self._move(Input.SEND)
        return render(response, bundle_engine(self.protocaps, self.settings), self.settings)

    # ---------------------------------------------------------------- commands

    def _next_command(self) -> Event | Signal:
        try:
            request, consumed = self._parse_request()
        except _Incomplete:
            if self._eof:
                if self._buffer:
                    raise ProtocolError("the connection closed in the middle of a request") from None
                self._move(Input.CLOSE)
                return ConnectionClosed()
            return Signal.NEED_DATA
        del self._buffer[:consumed]
        if request is None:
            self._move(Input.CLOSE)
            return ConnectionClosed()
        cmd = self._commands.get(request.name)
        self._move(Input.PUSH_COMMAND if cmd is not None and cmd.takes_payload else Input.COMMAND)
        if cmd is not None and cmd.takes_payload:
            self._payload_name = cmd.payload_name
        if request.name == PROTOCAPS_COMMAND:
            self.protocaps = frozenset(request.args.named[b"caps"].split(b" "))
        return request

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\n", start, start + self._limits.max_line + 1)
        if end < 0:
            if len(self._buffer) - start > self._limits.max_line:
                raise LimitExceeded(f"a request line is longer than {self._limits.max_line} bytes")
            raise _Incomplete
        return bytes(self._buffer[start:end]), end + 1

    def _parse_request(self) -> tuple[CommandRequest | None, int]:
        """Parse one whole request from the buffer start; None is the empty line (end of session)."""
        name, pos = self._line(0)
        if not name:
            return None, pos
        cmd = self._commands.get(name)
        if cmd is None:
            return CommandRequest(name, Args({})), pos
        named: dict[bytes, bytes] = {}
        extra: dict[bytes, bytes] = {}
        for _ in cmd.args:
            key, size, pos = self._arg_header(pos)
            if key not in cmd.args or key in named or (key == STAR and extra):
                raise ProtocolError(f"unexpected parameter {key.decode('ascii', 'replace')}")
            if key == STAR:
                pos = self._star_entries(pos, size, extra)
            else:
                named[key], pos = self._value(pos, size)
        return CommandRequest(name, Args(named, extra)), pos

    def _arg_header(self, pos: int) -> tuple[bytes, int, int]:
        line, pos = self._line(pos)
        key, sep, size_text = line.partition(b" ")
        # Reject "-1" and friends: a negative length would be read as a negative slice.  Bound
        # the digits too: int() raises ValueError past 4300 of them, which a wide max_line allows.
        if not sep or not size_text.isdigit() or len(size_text) > _MAX_DIGITS:
            raise ProtocolError("an argument line must be 'name length'")
        size = int(size_text)
        if size > self._limits.max_arg_length:
            raise LimitExceeded(
                f"an argument of {size} bytes is over the {self._limits.max_arg_length}-byte limit"
            )
        return key, size, pos

    def _value(self, pos: int, size: int) -> tuple[bytes, int]:
        if pos + size > self._limits.max_request:
            raise LimitExceeded(f"a request is over the {self._limits.max_request}-byte limit")
        if len(self._buffer) < pos + size:
            raise _Incomplete
        return bytes(self._buffer[pos : pos + size]), pos + size

    def _star_entries(self, pos: int, count: int, extra: dict[bytes, bytes]) -> int:
        if count > self._limits.max_args:
            raise LimitExceeded(f"a request may carry at most {self._limits.max_args} arguments")
        for _ in range(count):
            key, size, pos = self._arg_header(pos)
            if key in extra:
                raise ProtocolError(f"duplicate parameter {key.decode('ascii', 'replace')}")
            extra[key], pos = self._value(pos, size)
        return pos

    # ---------------------------------------------------------------- push payload

    def _next_payload(self) -> Event | Signal:
        if self._frame_left:
            return self._frame_data()
        try:
            line, pos = self._line(0)
        except _Incomplete:
            if self._eof:
                raise ProtocolError(f"the connection closed in the middle of a {self._payload_name}") from None
            return Signal.NEED_DATA
        if not line.isdigit() or len(line) > _MAX_DIGITS:
            raise ProtocolError("a push frame must start with its decimal length")
        size = int(line)
        if size > self._limits.max_frame:
            raise LimitExceeded(
                f"a push frame of {size} bytes is over the {self._limits.max_frame}-byte limit"
            )
        del self._buffer[:pos]
        if size == 0:
            self._move(Input.PAYLOAD_END)
            return PushEnd()
        self._frame_left = size
        return self._frame_data()

    def _frame_data(self) -> Event | Signal:
        """Hand out what has arrived of the current frame, so no frame is buffered whole."""
        if not self._buffer:
            if self._eof:
                raise ProtocolError(f"the connection closed in the middle of a {self._payload_name}")
            return Signal.NEED_DATA
        data = bytes(self._buffer[: self._frame_left])
        del self._buffer[: len(data)]
        self._frame_left -= len(data)
        return PushPayload(data)
