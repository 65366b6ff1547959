"""hgweb's diffs and line-range logs matched from the stored deltas (``annotate.stored_hints``,
proven by ``linediff.hinted_blocks``) side by side with the real ``hg serve``, on the seeded history
annotate's test uses to tempt a shortcut into another answer than hg's: files drawn from a few
repeated lines, edits of several hunks, blocks moved and duplicated, merges, a rename and a copy
edited afterwards, a file emptied and refilled, a last line without its newline, a file of 1,200
lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, hg_history_served
from tests.integration.test_hg_annotate_deltas import _history
from tests.integration.test_hg_archive import _hg_serve
from tests.integration.test_hg_http import raw


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path]:
    return hg_history_served(make_server, client, "diffdeltas", _history)


def test_diffs_and_line_range_logs_over_stored_deltas_are_hg_serve_s(served: tuple[RunningServer, Path],
                                                                     client: Client) -> None:
    server, repo = served
    revs = client.hg("log", "-R", str(repo), "-T", "{rev}\n").stdout.split()
    pages = [page for rev in revs for page in (f"json-rev/{rev}", f"raw-rev/{rev}")]
    pages += [f"diff/{rev}/long.txt?style=raw" for rev in revs[::3]]
    pages += [f"json-filelog/tip/{name}?linerange={first}:{last}" for name, first, last in
              [("long.txt", 1, 1), ("long.txt", 40, 60), ("long.txt", 500, 520), ("long.txt", 1100, 1150),
               ("copy.txt", 300, 330), ("moved.txt", 2, 6)]]
    pages += [f"json-filelog/0/long.txt?linerange={first}:{last}&descend" for first, last in [(1, 3), (600, 640)]]
    statuses = []
    with _hg_serve(client, repo) as port:
        for page in pages:
            ours = raw(server.port("http"), "GET", f"/diffdeltas/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), page
            statuses.append(ours.status)
    assert statuses.count(200) == len(pages), statuses
