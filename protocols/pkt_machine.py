"""What git's request readers share: pkt-lines from a bounded decoder driven through a table of moves.

``upload-pack`` v0 and v2 read one request into at most one pending event; ``receive-pack`` keeps a
queue and a pack state of its own, and shares only ``step``, the table look-up every reader makes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, TypeVar

from backends.interfaces import ObjectFormat
from protocols import pktline
from protocols.errors import ProtocolError
from protocols.pktline import Signal, Special

StateT = TypeVar("StateT", bound=enum.Enum)
InputT = TypeVar("InputT", bound=enum.Enum)
EventT = TypeVar("EventT")


def step(transitions: Mapping[tuple[StateT, InputT], StateT], state: StateT, inp: InputT, who: str) -> StateT:
    """The state ``inp`` moves ``state`` to; a ProtocolError naming both where the table has no such move."""
    try:
        return transitions[(state, inp)]
    except KeyError:
        raise ProtocolError(f"{who}: unexpected {inp.value} while in {state.value}") from None


class RequestReader(Generic[StateT, InputT, EventT]):
    """One request read packet by packet until an event is complete.

    A subclass names itself (``who``), its table of moves, the states in which it reads, and handles
    ``_on_packet`` and ``_on_eof``, which set ``_pending``.
    """

    def __init__(self, who: str, transitions: Mapping[tuple[StateT, InputT], StateT], reading: frozenset[StateT],
                 state: StateT, decoder: pktline.PktLineDecoder, object_format: ObjectFormat) -> None:
        self._who = who
        self._transitions = transitions
        self._reading = reading
        self._state = state
        self._decoder = decoder
        self._format = object_format
        self._pending: EventT | None = None

    @property
    def state(self) -> StateT:
        return self._state

    def use_object_format(self, object_format: ObjectFormat) -> None:
        """The repository's object format, once it is open (before the client's request is read)."""
        self._format = object_format

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client; b"" is EOF."""
        self._decoder.receive_data(data)

    def next_event(self) -> EventT | Signal:
        """Parse until an event is complete; NEED_DATA or PAUSED otherwise."""
        while self._pending is None:
            if self._state not in self._reading:
                return Signal.PAUSED
            packet = self._decoder.next_packet()
            if packet is Signal.NEED_DATA:
                if not self._decoder.eof:
                    return Signal.NEED_DATA
                self._on_eof()
            else:
                self._on_packet(packet)
        event, self._pending = self._pending, None
        return event

    def _advance(self, inp: InputT) -> None:
        self._state = step(self._transitions, self._state, inp, self._who)

    def _on_eof(self) -> None:
        raise NotImplementedError

    def _on_packet(self, packet: bytes | Special | Signal) -> None:
        raise NotImplementedError
