"""The ``proc-receive`` hook's pkt-line protocol (githooks(5)), and ``receive.procReceiveRefs``.

A push's commands whose ref matches ``receive.procReceiveRefs`` (``refs/for`` for review
requests, say) are not made by the server: the hook gets them and says what became of each.

    server: version=1\\0<features>  flush   (features: "atomic", "push-options")
    hook:   version=1[\\0<features>] flush
    server: <old> <new> <ref> ...    flush   [push options ... flush, if both have push-options]
    hook:   ok <ref> | ng <ref> <why>, each maybe followed by
            option refname <ref> | option old-oid <id> | option new-oid <id> |
            option forced-update | option fall-through   ...   flush

Sans-IO: bytes to send and lines received; ``gateway.git_hooks`` runs the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backends.interfaces import HEX_ID_LENGTHS, is_zero_id
from protocols import pktline
from protocols.errors import ProtocolError

VERSION = b"version=1"
MAX_REPORT_LINES = 65536
"""Lines of a hook's report read at most (a hook that writes for ever is cut off)."""


@dataclass(frozen=True, slots=True)
class ProcRule:
    """One ``receive.procReceiveRefs`` value: ``[<modifiers>:]<ref prefix>``, modifiers from
    ``a`` (create), ``m`` (modify), ``d`` (delete) and ``!`` (negate)."""

    prefix: bytes
    create: bool = True
    modify: bool = True
    delete: bool = True
    negative: bool = False


def parse_rules(values: Sequence[bytes]) -> tuple[ProcRule, ...]:
    """``receive.procReceiveRefs`` values, as git's receive-pack reads them (a trailing ``/`` is dropped)."""
    rules = []
    for value in values:
        modifiers, colon, prefix = value.partition(b":")
        if not colon:
            modifiers, prefix = b"", value
        prefix = prefix.strip().rstrip(b"/")
        if not prefix:
            continue
        actions = set(modifiers) & set(b"amd")
        rules.append(ProcRule(prefix, create=not actions or ord("a") in actions,
                              modify=not actions or ord("m") in actions,
                              delete=not actions or ord("d") in actions, negative=b"!" in modifiers))
    return tuple(rules)


def matches(rules: Sequence[ProcRule], ref: bytes, old: bytes, new: bytes) -> bool:
    """Whether the hook, not the server, handles this command (git's ``proc_receive_ref_matches``)."""
    for rule in rules:
        created, deleted = is_zero_id(old), is_zero_id(new)
        if ((not rule.create and created) or (not rule.delete and deleted)
                or (not rule.modify and not created and not deleted)):
            continue
        under = ref.startswith(rule.prefix) and ref[len(rule.prefix):len(rule.prefix) + 1] in (b"", b"/")
        if under != rule.negative:
            return True
    return False


def version_request(atomic: bool, push_options: bool) -> bytes:
    features = [name for name, on in ((b"atomic", atomic), (b"push-options", push_options)) if on]
    line = VERSION + (b"\0" + b" ".join(features) if features else b"") + b"\n"
    return pktline.encode(line) + pktline.FLUSH


def parse_version(lines: Sequence[bytes]) -> frozenset[bytes]:
    """The hook's features from its version lines; ``ProtocolError`` unless it speaks version 1 (a
    hook that names no version is taken as version 1, as git takes it)."""
    version, features = 0, b""
    for line in lines:
        if line.startswith(b"version=") and len(line) > 8:
            head, _, features = line.rstrip(b"\n").partition(b"\0")
            digits = head[8:]
            digits = digits[:len(digits) - len(digits.lstrip(b"0123456789"))] if digits[:1].isdigit() else b""
            version = int(digits[:9] or b"0")
    if version not in (0, 1):
        raise ProtocolError(f"proc-receive version '{version}' is not supported")
    return frozenset(features.split())


def commands_request(commands: Sequence[tuple[bytes, bytes, bytes]], options: Sequence[bytes] | None) -> bytes:
    """The commands (old, new, ref), then the push options when both sides want them."""
    out = b"".join(pktline.encode(b"%s %s %s" % command) for command in commands) + pktline.FLUSH
    if options is not None:
        out += b"".join(pktline.encode(option) for option in options) + pktline.FLUSH
    return out


@dataclass(slots=True)
class Report:
    """One ``ok``/``ng`` of the hook and its ``option`` lines: ``reason`` None for ``ok``."""

    ref: bytes
    reason: str | None = None
    refname: bytes | None = None
    old: bytes | None = None
    new: bytes | None = None
    forced: bool = False
    fall_through: bool = False
    has_options: bool = False
    """Whether an ``option`` followed: only then does report-status-v2 tell the client of it."""


def parse_report(lines: Sequence[bytes], sent: Sequence[bytes]) -> tuple[list[Report], list[str]]:
    """The hook's report, and git's words for each line it could not take (skipped, as git skips them)."""
    reports: list[Report] = []
    errors: list[str] = []
    current: Report | None = None
    for raw in lines:
        line = raw.rstrip(b"\n")
        text = line.decode("utf-8", "replace")[:200]
        head, space, rest = line.partition(b" ")
        if not space:
            errors.append(f"proc-receive reported incomplete status line: '{text}'")
            continue
        if head == b"option":
            if current is None or current.reason is not None:
                message = "proc-receive reported 'option' without a matching 'ok/ng' directive"
                if message not in errors:
                    errors.append(message)
                continue
            key, _, value = rest.partition(b" ")
            _option(current, key, value)
            continue
        current = None
        ref, _, why = rest.partition(b" ")
        if head not in (b"ok", b"ng"):
            errors.append(f"proc-receive reported bad status '{head.decode('utf-8', 'replace')[:40]}' on ref "
                          f"'{ref.decode('utf-8', 'replace')[:200]}'")
            continue
        if ref not in sent:
            errors.append(f"proc-receive reported status on unknown ref: {ref.decode('utf-8', 'replace')[:200]}")
            continue
        report = Report(ref, None if head == b"ok" else (why.decode("utf-8", "replace") or "failed"))
        reports.append(report)
        current = report
    return reports, errors


def _option(report: Report, key: bytes, value: bytes) -> None:
    """An ``option`` line, as git reads it: unknown keys and ids that are not hex are passed over."""
    report.has_options = True
    if key == b"fall-through":
        report.fall_through = True
    elif key == b"forced-update":
        report.forced = True
    elif key == b"refname":
        report.refname = value or None
    elif key in (b"old-oid", b"new-oid") and len(value) in HEX_ID_LENGTHS and not value.strip(b"0123456789abcdef"):
        if key == b"old-oid":
            report.old = value
        else:
            report.new = value
