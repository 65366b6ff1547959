"""A git request over HTTP answered while a read of its body was in flight: the read fails on the
closed body, which is no error (it logged a critical traceback in one v0 fetch in fifteen)."""

from __future__ import annotations

import io
from typing import Any

from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from gateway.git_http import HttpChannel
from gateway.http import Route, RouteKind


class _Ctx:
    user = None
    peer = "127.0.0.1:1"


def test_a_read_failing_after_the_answer_is_not_logged_as_an_error() -> None:
    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)  # type: ignore[arg-type]
    try:
        request = DummyRequest([b""])
        request.code = 200  # (a twisted.web Request's status until set; DummyRequest has none)
        request.content = io.BytesIO(b"0032want ")
        channel = HttpChannel(request, request.content, Route(RouteKind.GIT_UPLOAD_PACK, "g.git", "git-upload-pack"),
                              _Ctx())  # type: ignore[arg-type]
        channel.finish(0)
        try:
            raise ValueError("I/O operation on closed file.")
        except ValueError:
            channel._read_failed(Failure())
    finally:
        globalLogPublisher.removeObserver(seen.append)  # type: ignore[arg-type]
    assert not [e for e in seen if e.get("log_level") is not None and e["log_level"].name in ("error", "critical")]
