"""A proc-receive hook's answers (``protocols.git_proc_receive``): any bytes as its version and report
lines are read without an untyped exception, and every report names a ref it was sent."""

from __future__ import annotations

from protocols import git_proc_receive

from .harness import Finding, Target

SENT = [b"refs/for/main", b"refs/for/main/topic"]


def run(data: bytes) -> None:
    version, _, report = data.partition(b"\n\n")
    git_proc_receive.parse_version(version.split(b"\n"))
    reports, errors = git_proc_receive.parse_report(report.split(b"\n"), SENT)
    if any(r.ref not in SENT for r in reports):
        raise Finding("a report names a ref that was not sent")
    if len(reports) + len(errors) > report.count(b"\n") + 1:
        raise Finding("more reports and errors than lines")
    for r in reports:
        if r.reason is not None and (r.refname or r.old or r.new or r.forced or r.fall_through):
            raise Finding("options taken for a refused ref")


def seeds() -> list[bytes]:
    return [b"version=1\x00push-options\n\nok refs/for/main\noption refname refs/pull/1/head",
            b"version=1\n\nng refs/for/main/topic no\noption fall-through\nok refs/x",
            b"\n\nok refs/for/main\noption old-oid " + b"0" * 40 + b"\noption forced-update",
            b"version=2\n\n", b"version=\n\nincomplete"]


TARGET = Target("git_proc_receive", run, seeds, max_size=4096)
