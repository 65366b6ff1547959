"""``gateway.metrics``: the Prometheus text exposition format (0.0.4) written by hand, the kinds of
error read from the outcomes the log lines already say, the labels kept to short fixed lists, and
``[http] status_from``."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from gateway import metrics
from gateway.metrics import Family, exposition, http_error_kind, http_service, outcome_kind
from gateway.policy import LOOPBACK_READERS, PolicyError, parse_policy


def test_exposition_writes_help_type_and_samples_with_escaped_labels() -> None:
    text = exposition([
        Family("hgwire_requests_total", "counter", "Requests served,\nby transport \\ service.",
               [((("transport", "git"), ("service", "git-upload-pack")), 3),
                ((("transport", "http"), ("service", 'a"b\\c\nd')), 1)]),
        Family("process_start_time_seconds", "gauge", "Start time.", [((), 1796599246.25)]),
        Family("hgwire_workers", "gauge", "Worker threads.", [((), 8.0)]),
    ])
    assert text == (
        "# HELP hgwire_requests_total Requests served,\\nby transport \\\\ service.\n"
        "# TYPE hgwire_requests_total counter\n"
        'hgwire_requests_total{transport="git",service="git-upload-pack"} 3\n'
        'hgwire_requests_total{transport="http",service="a\\"b\\\\c\\nd"} 1\n'
        "# HELP process_start_time_seconds Start time.\n"
        "# TYPE process_start_time_seconds gauge\n"
        "process_start_time_seconds 1796599246.25\n"
        "# HELP hgwire_workers Worker threads.\n"
        "# TYPE hgwire_workers gauge\n"
        "hgwire_workers 8\n"
    )


def test_exposition_of_special_values() -> None:
    text = exposition([Family("x", "gauge", "x", [((("k", "a"),), float("nan")), ((("k", "b"),), float("inf")),
                                                  ((("k", "c"),), float("-inf")), ((("k", "d"),), 0.5)])])
    assert text.splitlines()[2:] == ['x{k="a"} NaN', 'x{k="b"} +Inf', 'x{k="c"} -Inf', 'x{k="d"} 0.5']


@pytest.mark.parametrize(("outcome", "kind"), [
    ("ok", None), ("ok: pack sent", None), ("ok: client closed", None), ("no request", None),
    ("asked to log in (401): authentication required", None),
    ("refused: 2 refs", "refused"), ("refused 403: alice may not write team/app", "refused"),
    ("client gone", "client_gone"), ("the client went away during the archive", "client_gone"),
    ("cut at shutdown after the grace", "shutdown"), ("cut at shutdown after the grace during tip/big", "shutdown"),
    ("error: request timeout", "timeout"),
    ("error: repository nothing-here.git not found", "not_found"),
    ("error: internal error", "internal"), ("error: bad pack: truncated", "failed"), ("exit 1", "failed"),
])
def test_outcome_kinds(outcome: str, kind: str | None) -> None:
    assert outcome_kind(outcome) == kind


def test_http_error_kinds() -> None:
    assert [http_error_kind(s) for s in (200, 304, 401, 403, 404, 405, 413, 429, 500, 502, 503)] == [
        None, None, None, "refused", "not_found", "bad_request", "bad_request", "limit", "internal", "internal",
        "unavailable"]


def test_http_services_are_a_short_fixed_list() -> None:
    assert http_service("hg-command", "getbundle") == "hg-getbundle"
    assert http_service("hg-command", "unbundle") == "hg-unbundle"
    assert http_service("hg-command", "secret-project-name") == "hg-other"  # what a client sends is no label
    assert http_service("hg-command", "caf\u00e9") == "hg-other"
    assert http_service("git-upload-pack", "") == "git-upload-pack"
    assert http_service("git-lfs-batch", "") == "git-lfs"
    assert {http_service(kind, "") for kind in ("hg-web-html", "repository-page", "root-page", "hg-archive",
                                                "go-get")} == {"web"}
    assert http_service("error", "") == "none"


def test_counting_a_request_and_its_error() -> None:
    before = dict(metrics.REQUESTS), dict(metrics.ERRORS)
    metrics.count_request("ssh", "git-receive-pack", "refused: 1 refs")
    metrics.count_request("ssh", "git-receive-pack", "ok")
    assert metrics.REQUESTS[("ssh", "git-receive-pack")] - before[0].get(("ssh", "git-receive-pack"), 0) == 2
    assert metrics.ERRORS[("ssh", "refused")] - before[1].get(("ssh", "refused"), 0) == 1


def test_requests_in_progress_and_their_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "IN_PROGRESS", Counter())  # (other tests' servers in this process)
    assert metrics.in_progress_text() == ""
    ends = [metrics.started("git", "git-upload-pack"), metrics.started("http", "hg-getbundle"),
            metrics.started("ssh", "git-receive-pack"), metrics.started("ssh", "hg-serve")]
    assert metrics.in_progress_text() == "2 fetches, 1 push, 1 hg ssh session"
    ends[0]()
    ends[0]()  # (once only)
    assert metrics.IN_PROGRESS[("git", "git-upload-pack")] == 0
    assert metrics.in_progress_text() == "1 fetch, 1 push, 1 hg ssh session"
    for end in ends:
        end()
    assert metrics.in_progress_text() == ""


def test_pushes_by_transport() -> None:
    before = dict(metrics.PUSHES)
    for proto, outcome in (("git-daemon", "ok"), ("hg-ssh", "refused: hook"), ("hg-http", "aborted"),
                           ("git-http", "1 refused")):
        metrics.count_push(proto, outcome)
    grew = {key: n - before.get(key, 0) for key, n in metrics.PUSHES.items() if n != before.get(key, 0)}
    assert grew == {("git", "accepted"): 1, ("ssh", "refused"): 1, ("http", "refused"): 2}


def test_status_from_defaults_to_this_host_and_reads_networks_and_unix() -> None:
    assert parse_policy("", "t.toml").status_from is LOOPBACK_READERS
    assert "127.0.0.1" in LOOPBACK_READERS and "::1" in LOOPBACK_READERS
    assert "unix" not in LOOPBACK_READERS and "10.0.0.7" not in LOOPBACK_READERS
    readers = parse_policy('[http]\nstatus_from = ["10.0.0.0/8", "unix"]\n', "t.toml").status_from
    assert readers.networks == (ipaddress.ip_network("10.0.0.0/8"),) and readers.unix
    assert "10.1.2.3" in readers and "unix" in readers and "127.0.0.1" not in readers
    assert not parse_policy('[http]\nstatus_from = []\n', "t.toml").status_from.networks
    with pytest.raises(PolicyError, match=r"http\.status_from\[0\].*10\.0\.0\.5/8"):
        parse_policy('[http]\nstatus_from = ["10.0.0.5/8"]\n', "t.toml")
