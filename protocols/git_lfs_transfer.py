"""git-lfs's pure SSH protocol: ``git-lfs-transfer PATH upload|download`` over an SSH exec channel.

git-lfs's ``docs/proposals/ssh_adapter.md``, as the ``git lfs`` client (3.0 and
later) speaks it.  pkt-lines both ways.  The server opens with its
capabilities (``version=1``, ``locking``) and a flush; then each request is a
command line, ``key=value`` arguments, and either a flush, or a delim and text
lines (``batch``) or binary data (``put-object``) and a flush.  Each answer is
``status <http code>``, arguments, and, after a delim, text lines or data, and
a flush; an error's text is its first line after the delim.  ``quit`` ends the
session.

``TransferReader`` turns the client's bytes into ``Message``, ``DataStart``,
``DataChunk`` and ``DataEnd`` events; the ``answer``-style functions write the
server's side.  Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from protocols import pktline
from protocols.errors import HgwireError, LimitExceeded, ProtocolError
from protocols.git_lfs import Lock
from protocols.pktline import MAX_PAYLOAD, PktLineDecoder, Signal, Special
from protocols.text import quoted

CAPABILITIES = ("version=1", "locking")
MAX_ARGS = 64
MAX_LINES = 10_000
"""Objects in one ``batch`` (as the HTTP batch API allows)."""
DATA_COMMANDS = frozenset({"put-object"})


@dataclass(frozen=True, slots=True)
class Message:
    """A request without binary data: ``batch``'s lines, or none."""

    command: str
    argument: str
    """What follows the command word (``get-object <oid>``: the oid)."""
    args: dict[str, str] = field(default_factory=dict)
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataStart:
    """A request whose binary data follows (``put-object <oid>``) in ``DataChunk`` events, then ``DataEnd``."""

    command: str
    argument: str
    args: dict[str, str]


@dataclass(frozen=True, slots=True)
class DataChunk:
    data: bytes


@dataclass(frozen=True, slots=True)
class DataEnd:
    pass


@dataclass(frozen=True, slots=True)
class Refused:
    """What the protocol does not allow, after the requests before it: answer 400 and end."""

    message: str


Event = Message | DataStart | DataChunk | DataEnd | Refused


class TransferReader:
    """The client's side, incrementally: ``feed(bytes) -> events`` (``b""`` at EOF).

    What the protocol does not allow (a special packet where a command
    belongs, a text line that is not UTF-8, too many arguments or lines, a
    request cut by the end of the stream) ends the events with ``Refused``,
    after the requests that came before it; later input is ignored.
    """

    def __init__(self) -> None:
        self._decoder = PktLineDecoder()
        self._command: tuple[str, str] | None = None
        self._args: dict[str, str] = {}
        self._lines: list[str] | None = None
        self._data = False
        self._refused = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self._refused:
            return events
        try:
            self._decoder.receive_data(data)
            while True:
                packet = self._decoder.next_packet()
                if packet is Signal.NEED_DATA:
                    if self._decoder.eof and self._command is not None:
                        raise ProtocolError("the client closed the connection in the middle of a request")
                    return events
                event = self._step(packet)  # type: ignore[arg-type]
                if event is not None:
                    events.append(event)
        except HgwireError as refused:
            self._refused = True
            events.append(Refused(str(refused)))
            return events

    def _step(self, packet: bytes | Special) -> Event | None:
        if self._data:
            if packet is Special.FLUSH:
                self._data = False
                self._command = None
                return DataEnd()
            if isinstance(packet, Special):
                raise ProtocolError("a special packet inside an object's data")
            return DataChunk(packet)
        if self._command is None:
            if isinstance(packet, Special):
                raise ProtocolError("a request must start with a command")
            word, _, argument = _text(packet).partition(" ")
            self._command, self._args, self._lines = (word, argument), {}, None
            return None
        command, argument = self._command
        if packet is Special.FLUSH:
            message = Message(command, argument, self._args, tuple(self._lines or ()))
            self._command = None
            return message
        if packet is Special.DELIM:
            if self._lines is not None:
                raise ProtocolError("two delimiters in one request")
            if command in DATA_COMMANDS:
                self._data = True
                return DataStart(command, argument, self._args)
            self._lines = []
            return None
        if isinstance(packet, Special):
            raise ProtocolError("an unexpected special packet in a request")
        line = _text(packet)
        if self._lines is not None:
            if len(self._lines) >= MAX_LINES:
                raise LimitExceeded(f"more than {MAX_LINES} lines in one request")
            self._lines.append(line)
            return None
        if len(self._args) >= MAX_ARGS:
            raise LimitExceeded(f"more than {MAX_ARGS} arguments in one request")
        key, _, value = line.partition("=")
        self._args[key] = value
        return None


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").removesuffix("\n")
    except UnicodeDecodeError:
        raise ProtocolError("a request line that is not UTF-8") from None


# --- the server's side ------------------------------------------------------------------------

def _line(text: str) -> bytes:
    return pktline.encode(text.encode("utf-8") + b"\n")


def capabilities() -> bytes:
    return b"".join(_line(cap) for cap in CAPABILITIES) + pktline.FLUSH


def status(code: int, args: Iterable[str] = (), lines: Iterable[str] | None = None) -> bytes:
    """``status <code>``, the arguments, and (when ``lines`` is not None) a delim and the lines; a flush."""
    out = [_line(f"status {code}")]
    out += [_line(arg) for arg in args]
    if lines is not None:
        out.append(pktline.DELIM)
        out += [_line(line) for line in lines]
    out.append(pktline.FLUSH)
    return b"".join(out)


def error(code: int, message: str) -> bytes:
    """A refusal: the client shows the message (one line)."""
    return status(code, (), [" ".join(message.split())])


def data_head(size: int) -> bytes:
    """What precedes an object's data: ``status 200``, ``size=<n>``, a delim."""
    return _line("status 200") + _line(f"size={size}") + pktline.DELIM


def framed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Binary data as pkt-lines (each at most 65516 bytes of payload)."""
    for chunk in chunks:
        for start in range(0, len(chunk), MAX_PAYLOAD):
            yield pktline.encode(chunk[start:start + MAX_PAYLOAD])


def batch_objects(lines: Iterable[str]) -> list[tuple[str, int]]:
    """``<oid> <size> [key=value …]`` lines: (oid, size) each; ``ProtocolError`` for a malformed one."""
    objects = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) < 2 or not parts[1].isdigit() or not parts[1].isascii():
            raise ProtocolError(f"a batch line is not '<oid> <size>': {quoted(line, 100)}")
        objects.append((parts[0], int(parts[1])))
    return objects


def lock_args(lock: Lock) -> list[str]:
    return [f"id={lock.id}", f"path={lock.path}", f"locked-at={lock.locked_at}", f"ownername={lock.owner}"]


def lock_lines(locks: Iterable[Lock], owner: str) -> list[str]:
    """Each lock as the list answer gives it, and whether it is ``ours`` (``owner``'s) or ``theirs``."""
    lines = []
    for lock in locks:
        lines += [f"lock {lock.id}", f"path {lock.id} {lock.path}", f"locked-at {lock.id} {lock.locked_at}",
                  f"ownername {lock.id} {lock.owner}", f"owner {lock.id} {'ours' if lock.owner == owner else 'theirs'}"]
    return lines
