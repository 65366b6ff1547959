"""A URL holding terminal escapes, carriage returns or newlines (``%1B``, ``%0D%0A``) reaches the
server's log escaped: anyone may send one, an operator's ``tail -f`` must not obey it; an error
page that quotes such a URL is not sniffed as HTML."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import formatEvent, globalLogPublisher

from tests.conftest import LOOPBACK, Client, RunningServer


def test_a_hostile_path_is_logged_escaped(make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "evil"
    client.hg("init", str(repo))
    (repo / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", cwd=repo)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    try:
        for path in ("/evil/file/tip/zz%1B%5B31mRED%0D%0A2026-fake-line", "/evil/raw-file/tip/x%1B%5D0%3Bt%07"):
            conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
            conn.request("GET", path)
            assert conn.getresponse().status == 404
            conn.close()
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    lines = [formatEvent(e) for e in events]
    told = [line for line in lines if "zz" in line or "x\\x1b" in line]
    assert told, lines
    assert not [line for line in lines if any(c in line for c in "\x1b\r\x07")], told
    assert any("zz\\x1b[31mRED\\r\\n2026-fake-line" in line for line in told), told


def test_an_error_that_quotes_the_url_is_not_sniffed(make_server: Callable[..., RunningServer],
                                                     client: Client) -> None:
    """A 404 quotes what was asked for: ``nosniff``, so no browser reads it as HTML."""
    server = make_server("fs", http=[LOOPBACK])
    client.hg("init", str(server.root / "page"))
    conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
    conn.request("GET", "/page/shortlog/%3Chtml%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    assert answer.status == 404 and b"<script>" in body
    assert answer.getheader("X-Content-Type-Options") == "nosniff"
    assert answer.getheader("Content-Type", "").startswith("text/plain")


def test_a_largefile_that_is_not_there_is_one_log_line(make_server: Callable[..., RunningServer],
                                                       client: Client) -> None:
    """``getlfile`` of a hash the server lacks: 500 with hg's sentence, as ``hg serve`` answers, and
    one line in the log, not a traceback per anonymous request."""
    server = make_server("fs", http=[LOOPBACK])
    client.hg("init", str(server.root / "big"))
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
        conn.request("GET", "/big?cmd=getlfile&sha=" + "0" * 40)
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    assert answer.status == 500 and b"requested largefile 0000" in body and b"not present in cache" in body
    assert not [e for e in events if e.get("log_failure") is not None]


def test_a_page_the_client_has_is_answered_304(make_server: Callable[..., RunningServer], client: Client) -> None:
    """Each page carries an ``ETag`` of its bytes; ``If-None-Match`` with it gets 304 and no body (a
    feed reader polling ``atom-log``), a changed page 200 again, as hg serve answers."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "feed"
    client.hg("init", str(repo))
    (repo / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", cwd=repo)

    def get(path: str, tag: str | None = None) -> tuple[int, str | None, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=20)
        conn.request("GET", path, headers={"If-None-Match": tag} if tag else {})
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
        return answer.status, answer.getheader("ETag"), body

    tags = {}
    for page in ("/feed/atom-log", "/feed/json-shortlog", "/feed/shortlog?style=raw"):
        status, tag, body = get(page)
        tags[page] = tag
        assert status == 200 and tag and tag.startswith('W/"') and body, page
        again, same, nothing = get(page, tag)
        assert (again, same, nothing) == (304, tag, b""), page
        assert get(page, '"other", ' + tag)[0] == 304
    (repo / "a.txt").write_text("b\n")
    client.hg("commit", "-q", "-m", "b", cwd=repo)
    assert get("/feed/json-shortlog", tags["/feed/json-shortlog"])[0] == 200  # the pages changed
    assert get("/feed/atom-log", tags["/feed/atom-log"])[0] == 200


UNSAFE_IN_A_LOG = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
"""What no log line may hold: C0 controls (a tab aside), DEL, the C1 set (0x9B is the 8-bit CSI)
and lone surrogates (a byte that is not UTF-8, which goes out to the log file as itself)."""


def _logged_lines(port: int, targets: list[str]) -> list[str]:
    """Every log line the server writes while it answers ``targets``, one request each."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    try:
        for target in targets:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request("GET", target)
            conn.getresponse().read()
            conn.close()
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    return [formatEvent(e) or "" for e in events]


def _evil_repository(make_server: Callable[..., RunningServer], client: Client) -> RunningServer:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "evil"
    client.hg("init", str(repo))
    (repo / "a.txt").write_text("a\n")
    client.hg("commit", "-q", "-A", "-m", "a", cwd=repo)
    return server


def test_bytes_that_are_not_utf8_are_logged_as_escapes(make_server: Callable[..., RunningServer],
                                                       client: Client) -> None:
    """``%9B`` (the 8-bit CSI: ``%9B31m`` turns a terminal red) and overlong UTF-8 reached the log
    as raw bytes, and an hg page's refusal was logged under ``gateway.git_http``."""
    server = _evil_repository(make_server, client)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    try:
        lines = _logged_lines(server.port("http"), ["/evil/raw-file/tip/%9B31mRED", "/evil/json-file/tip/%9Bx",
                                                    "/evil/file/tip/%9B31m", "/evil/raw-file/tip/%C0%AE%C0%AE/x"])
    finally:
        globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]
    assert not [line for line in lines if UNSAFE_IN_A_LOG.search(line)], lines
    assert any("\\x9b31mRED" in line for line in lines), lines
    assert any("\\xc0\\xae\\xc0\\xae/x" in line for line in lines), lines
    refusals = [e for e in events if "refused 404" in str(e.get("outcome"))]
    assert len(refusals) == 4 and {e["log_namespace"] for e in refusals} <= {"gateway.hg_archive", "gateway.hg_web"}, \
        [e["log_namespace"] for e in refusals]


def test_no_log_line_holds_a_control_whatever_bytes_a_url_carries(make_server: Callable[..., RunningServer],
                                                                  client: Client) -> None:
    server = _evil_repository(make_server, client)
    port = server.port("http")

    @settings(max_examples=25, database=None)
    @given(st.binary(min_size=1, max_size=12))
    def logged_safe(raw: bytes) -> None:
        segment = urllib.parse.quote(raw, safe="")
        targets = [f"/evil/raw-file/tip/{segment}", f"/evil/json-file/tip/{segment}", f"/evil/rev/{segment}",
                   f"/{segment}/info/refs?service=git-upload-pack", f"/{segment}?cmd=capabilities",
                   f"/evil/{segment}"]
        lines = _logged_lines(port, targets)
        assert not [line for line in lines if UNSAFE_IN_A_LOG.search(line)], lines

    logged_safe()
