"""A repository's ``objects/info/commit-graph`` that is a FIFO (or a device) was opened with a plain
``open``: every fetch whose walk asks for the graph held a worker thread until some process wrote to
the FIFO, for ever if none did (git waits there too).  It is now looked at first and read only when
regular: anything else is no graph, and the commits are read.

A writer keeps trying to open the FIFO without waiting, which succeeds only while a reader has it
open: old code that opens it for reading is found out (and freed), never left hanging."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from backends.git_commitgraph import commit_graph


def test_a_fifo_at_the_commit_graph_is_no_graph_and_never_opened(tmp_path: Path) -> None:
    (tmp_path / "info").mkdir()
    fifo = tmp_path / "info" / "commit-graph"
    os.mkfifo(fifo)
    opened = threading.Event()
    stop = threading.Event()

    def writer() -> None:
        while not stop.wait(0.01):
            with contextlib.suppress(OSError):  # (ENXIO while no one reads it)
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                opened.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        assert commit_graph(str(tmp_path), 20) is None
    finally:
        stop.set()
        thread.join()
    assert not opened.is_set()


def test_a_link_to_dev_zero_at_the_commit_graph_is_no_graph(tmp_path: Path) -> None:
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / "commit-graph").symlink_to("/dev/zero")
    assert commit_graph(str(tmp_path), 20) is None
