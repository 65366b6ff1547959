"""Record an ``hg serve --stdio`` session as a c:/s: transcript (a dev tool, not a test).

Used as ``hg --ssh "python record_ssh.py OUT" ...``: it runs the real server
for the path in the remote command and logs every byte in each direction.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading

HG = "/work/main/.venv/bin/hg"


def _pump(src: object, dst: object, tag: str, log: list[tuple[str, bytes]], lock: threading.Lock) -> None:
    while True:
        data = src.read1(65536)  # type: ignore[attr-defined]
        with lock:
            log.append((tag, data))
        if not data:
            dst.close()  # type: ignore[attr-defined]
            return
        dst.write(data)  # type: ignore[attr-defined]
        dst.flush()  # type: ignore[attr-defined]


def main() -> None:
    out = sys.argv[1]
    argv = shlex.split(sys.argv[-1])
    argv[0] = HG
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_pump, args=(sys.stdin.buffer, proc.stdin, "c", log, lock)),
        threading.Thread(target=_pump, args=(proc.stdout, sys.stdout.buffer, "s", log, lock)),
        threading.Thread(target=_pump, args=(proc.stderr, sys.stderr.buffer, "e", log, lock)),
    ]
    for t in threads:
        t.daemon = True
        t.start()
    proc.wait()
    threads[1].join()
    threads[2].join()
    with open(out, "w") as fh:
        for tag, data in log:
            if data:
                fh.write(f"{tag}: {data!r}\n")


if __name__ == "__main__":
    main()
