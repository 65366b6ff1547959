"""Serve the fake repository over stdin/stdout with ``SshV1Server``, for real ``hg --ssh`` clients.

Used as ``hg --ssh "python stdio_server.py STATE"``: the repository state is
loaded from (and saved back to) the pickle file STATE, so pushes persist between
client runs.  A blocking loop is fine here; the real adapter lives in gateway/.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from protocols.hg_commands import COMMANDS, CommandContext, Permission, Transport, dispatch
from protocols.hg_ssh import (
    SSH_CAPS,
    CommandRequest,
    ConnectionClosed,
    PushEnd,
    PushPayload,
    Signal,
    SshOutput,
    SshV1Server,
)
from tests.unit.protocols.hg.fake_repo import FakeRepo


def allow(permission: Permission) -> None:
    return None


class Session:
    def __init__(self, repo: FakeRepo) -> None:
        self.repo = repo
        self.server = SshV1Server()

    def next_event(self) -> object:
        while (event := self.server.next_event()) is Signal.NEED_DATA:
            self.server.receive_data(os.read(0, 65536))
        return event

    def payload(self) -> Iterator[bytes]:
        while not isinstance(event := self.next_event(), PushEnd):
            assert isinstance(event, PushPayload)
            yield event.data

    def write(self, output: SshOutput) -> None:
        sys.stderr.buffer.write(output.stderr)
        sys.stderr.buffer.flush()
        sys.stdout.buffer.write(output.stdout)
        for chunk in output.stream or ():
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()

    def run(self) -> None:
        while not isinstance(event := self.next_event(), ConnectionClosed):
            assert isinstance(event, CommandRequest), event
            cmd = COMMANDS.get(event.name)
            payload = None
            if cmd is not None and cmd.takes_payload:
                sys.stdout.buffer.write(self.server.accept_push())
                sys.stdout.buffer.flush()
                payload = self.payload()
            ctx = CommandContext(Transport.SSH, allow, SSH_CAPS, payload)
            self.write(self.server.send(dispatch(self.repo, event.name, event.args, ctx)))


def main() -> None:
    state = Path(sys.argv[1])
    repo = FakeRepo.from_plain(pickle.loads(state.read_bytes()))
    Session(repo).run()
    state.write_bytes(pickle.dumps(repo.to_plain()))


if __name__ == "__main__":
    main()
