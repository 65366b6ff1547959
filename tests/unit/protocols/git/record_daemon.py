"""Record a git:// exchange with the real ``git daemon`` as a c:/s: transcript (a dev tool, not a test).

Run ``python record_daemon.py LISTEN_PORT DAEMON_PORT OUT`` and point a git
client at ``git://127.0.0.1:LISTEN_PORT/...``: one connection is proxied to
the daemon and logged, one pkt-line per transcript line (raw pack bytes as one
line), with the volatile ``agent=git/x.y.z`` replaced by ``agent=AGENT``.
"""

from __future__ import annotations

import re
import socket
import sys
import threading

AGENT = re.compile(rb"agent=git/[^ \n\0]*")


def _pump(src: socket.socket, dst: socket.socket, tag: str, log: list[tuple[str, bytes]],
          lock: threading.Lock) -> None:
    while data := src.recv(65536):
        with lock:
            if log and log[-1][0] == tag:
                log[-1] = (tag, log[-1][1] + data)
            else:
                log.append((tag, data))
        dst.sendall(data)
    dst.shutdown(socket.SHUT_WR)


def _scrub(packet: bytes) -> bytes:
    """Replace the agent and re-encode the length so the pkt-line stays valid."""
    if not AGENT.search(packet) or len(packet) < 4:
        return packet
    payload = AGENT.sub(b"agent=AGENT", packet[4:])
    return b"%04x" % (len(payload) + 4) + payload


def _split(stream: bytes) -> list[bytes]:
    out: list[bytes] = []
    i = 0
    while i + 4 <= len(stream):
        head = stream[i : i + 4]
        if not re.fullmatch(rb"[0-9a-f]{4}", head):
            break
        n = int(head, 16)
        size = max(n, 4)
        out.append(stream[i : i + size])
        i += size
    if i < len(stream):
        out.append(stream[i:])
    return out


def main() -> None:
    listen_port, daemon_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    server = socket.create_server(("127.0.0.1", listen_port))
    client, _ = server.accept()
    upstream = socket.create_connection(("127.0.0.1", daemon_port))
    log: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_pump, args=(client, upstream, "c", log, lock)),
               threading.Thread(target=_pump, args=(upstream, client, "s", log, lock))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as fh:
        for tag, stream in log:
            fh.writelines(f"{tag}: {packet!r}\n" for packet in map(_scrub, _split(stream)))


if __name__ == "__main__":
    main()
