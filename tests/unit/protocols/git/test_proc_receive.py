"""The proc-receive hook's protocol (``protocols.git_proc_receive``) and report-status-v2's options."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from backends.interfaces import ZERO_ID, RefReport, RefResult
from protocols import git_proc_receive as pr
from protocols import pktline
from protocols.git_receive import ReceivePack

NEW = b"e1a040c2e941fb649bfbebbc4c30508eadc4f721"
ZERO = b"0" * 40


def test_rules_read_modifiers_and_negation_as_git_does() -> None:
    rules = pr.parse_rules([b"refs/for/", b"ad:refs/heads", b"!:refs/heads/keep", b" "])
    assert rules == (pr.ProcRule(b"refs/for"), pr.ProcRule(b"refs/heads", modify=False),
                     pr.ProcRule(b"refs/heads/keep", negative=True))
    assert pr.matches(rules[:1], b"refs/for/main/topic", ZERO, NEW)
    assert pr.matches(rules[:1], b"refs/for", ZERO, NEW)
    assert not pr.matches(rules[:1], b"refs/foreign", ZERO, NEW)  # a prefix of whole names only
    assert pr.matches(rules[1:2], b"refs/heads/x", ZERO, NEW)  # a: create
    assert pr.matches(rules[1:2], b"refs/heads/x", NEW, ZERO)  # d: delete
    assert not pr.matches(rules[1:2], b"refs/heads/x", NEW, NEW)  # not m
    assert pr.matches(rules[2:], b"refs/tags/v1", ZERO, NEW)  # negated: all but refs/heads/keep
    assert not pr.matches(rules[2:], b"refs/heads/keep", ZERO, NEW)
    assert not pr.matches((), b"refs/for/x", ZERO, NEW)


def test_the_server_s_side_of_the_exchange_in_bytes() -> None:
    assert pr.version_request(atomic=True, push_options=True) == b"0022version=1\0atomic push-options\n0000"
    assert pr.version_request(atomic=False, push_options=False) == b"000eversion=1\n0000"
    assert pr.commands_request([(ZERO, NEW, b"refs/for/main")], [b"reviewer=bob"]) == (
        b"0063" + ZERO + b" " + NEW + b" refs/for/main0000" + b"0010reviewer=bob0000")
    assert pr.commands_request([(ZERO, NEW, b"refs/for/main")], None).endswith(b"refs/for/main0000")


def test_the_hook_s_version_as_git_reads_it() -> None:
    assert pr.parse_version([b"version=1\0push-options atomic"]) == {b"push-options", b"atomic"}
    assert pr.parse_version([]) == frozenset()  # no version said: git takes it as version 1
    for bad in ([b"version=2"], [b"version=12abc"]):
        try:
            pr.parse_version(bad)
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            assert "is not supported" in str(exc)
        else:
            raise AssertionError(bad)


def test_a_report_and_git_s_words_for_the_lines_it_cannot_take() -> None:
    sent = [b"refs/for/a", b"refs/for/b", b"refs/for/c"]
    reports, errors = pr.parse_report([
        b"option refname refs/x",  # before any ok/ng
        b"ok refs/for/a", b"option refname refs/pull/1/head", b"option old-oid " + ZERO,
        b"option new-oid nothex", b"option forced-update", b"option unknown thing",
        b"ng refs/for/b", b"option refname refs/y",  # after ng
        b"ok refs/for/c", b"option fall-through",
        b"ok refs/for/zzz", b"maybe refs/for/a", b"incomplete",
    ], sent)
    assert [(r.ref, r.reason, r.refname, r.old, r.new, r.forced, r.fall_through, r.has_options) for r in reports] == [
        (b"refs/for/a", None, b"refs/pull/1/head", ZERO, None, True, False, True),
        (b"refs/for/b", "failed", None, None, None, False, False, False),
        (b"refs/for/c", None, None, None, None, False, True, True),
    ]
    assert errors == ["proc-receive reported 'option' without a matching 'ok/ng' directive",
                      "proc-receive reported status on unknown ref: refs/for/zzz",
                      "proc-receive reported bad status 'maybe' on ref 'refs/for/a'",
                      "proc-receive reported incomplete status line: 'incomplete'"]


@given(st.lists(st.binary(max_size=80), max_size=20))
def test_any_report_is_read_without_raising(lines: list[bytes]) -> None:
    reports, errors = pr.parse_report(lines, [b"refs/for/a"])
    assert all(r.ref == b"refs/for/a" for r in reports)
    assert len(reports) + len(errors) <= len(lines)


def test_report_status_v2_tells_where_the_hook_put_each_change() -> None:
    core = ReceivePack()
    line = ZERO_ID + b" " + NEW + b" refs/for/main\0report-status-v2"
    core.receive_data(b"%04x" % (len(line) + 4) + line + b"0000")
    core.next_event()
    empty = b"PACK\x00\x00\x00\x02\x00\x00\x00\x00"
    core.receive_data(empty + hashlib.sha1(empty).digest())
    core.next_event(), core.next_event()
    result = RefResult(b"refs/for/main", None, (RefReport(b"refs/pull/1/head", None, NEW, True), RefReport(b"refs/pull/2/head")))
    lines = [b"unpack ok\n", b"ok refs/for/main\n", b"option refname refs/pull/1/head\n",
             b"option new-oid " + NEW + b"\n", b"option forced-update\n", b"ok refs/for/main\n",
             b"option refname refs/pull/2/head\n"]
    assert core.report_status(None, [result]) == b"".join(pktline.encode(line) for line in lines) + b"0000"
    v1 = ReceivePack()  # report-status (v1): one ok, no options
    line = ZERO_ID + b" " + NEW + b" refs/for/main\0report-status"
    v1.receive_data(b"%04x" % (len(line) + 4) + line + b"0000")
    v1.next_event()
    v1.receive_data(empty + hashlib.sha1(empty).digest())
    v1.next_event(), v1.next_event()
    assert v1.report_status(None, [result]) == b"000eunpack ok\n0015ok refs/for/main\n0000"
