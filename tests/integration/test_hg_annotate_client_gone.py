"""hgweb's annotate page, the costliest of the web's pages (every revision of the file read and
matched against its parents), ran to its end in a worker for nobody when its client went away (a
browser tab closed on a slow page), holding one of the repository's two page slots meanwhile: a
log page stopped (``protocols.client_gone``), annotate did not.  Its walk now looks at each
revision, stops, and logs one line; the next request is answered in full."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from twisted.web import http

from backends.hg import annotate
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_single_command_client_gone import WAIT, Hold, _events, _gone_lines, _until

REVISIONS = 300


@pytest.mark.parametrize("page", ["json-annotate", "annotate"])
def test_web_annotate_page_stops_once_its_client_has_gone(make_server: Callable[..., RunningServer],
                                                         client: Client, monkeypatch: pytest.MonkeyPatch,
                                                         page: str) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "repo"
    client.hg("init", str(repo))
    client.hg("debugbuilddag", "-q", "-R", str(repo), "-m", f"+{REVISIONS}")  # "mf" edited by each changeset

    hold = Hold()
    read: list[None] = []
    text = annotate._Walk.text

    def held_text(walk: Any, *args: Any) -> Any:
        read.append(None)
        return hold.wait_then(lambda: text(walk, *args))

    monkeypatch.setattr(annotate._Walk, "text", held_text)
    hold.notice(monkeypatch, http.Request, "connectionLost")
    with _events() as events:
        conn = socket.create_connection(("127.0.0.1", server.port("http")))
        conn.sendall(f"GET /repo/{page}/tip/mf HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        assert hold.started.wait(WAIT), "the page was never made"
        conn.close()
        _until(lambda: bool(_gone_lines(events)), "no log line says the annotation was stopped")
    assert hold.ended.wait(WAIT)
    assert len(_gone_lines(events)) == 1, _gone_lines(events)
    assert len(read) <= 2, len(read)  # was every one of the 300 revisions

    with urllib.request.urlopen(f"http://127.0.0.1:{server.port('http')}/repo/json-annotate/tip/mf",
                                timeout=WAIT) as answer:  # the next one is whole
        lines = json.loads(answer.read())["annotate"]
    assert len({line["node"] for line in lines}) > REVISIONS // 2
