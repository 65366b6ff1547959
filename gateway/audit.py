"""The audit log: one structured ``twisted.logger`` event per write (issue 8, item 5).

Every event has ``log_namespace`` ``hgwire.audit`` and the fields ``audit``
(True), ``action`` (``push`` | ``pushkey`` | ``create`` | ``lfs-upload`` | ``lfs-lock`` | ``lfs-unlock``), ``proto``, ``user``
(None for anonymous), ``repo``, ``peer``, ``changes`` (a list of
``{"name", "old", "new", "result"}`` dicts: git refs with hex ids, hg heads,
bookmarks and phases with hex nodes, an LFS object as ``lfs:<sha256>``, ``result`` "ok" or the
refusal) and
``outcome``; ``changes_total`` and ``changes_refused`` count the changes, of which ``changes`` keeps
the first ``KEPT_CHANGES`` (and the text line names the first ``SUMMARY_CHANGES``).  Filter on the namespace to ship them elsewhere, e.g. a JSON file
observer: ``twistd --logger`` with ``jsonFileLogObserver`` and a
``FilteringLogObserver`` on ``log_namespace == "hgwire.audit"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from backends.interfaces import RefResult, RefUpdate
from gateway import metrics
from gateway.channel import SessionContext
from gateway.logs import SafeLogger
from protocols.text import printable

AUDIT_NAMESPACE = "hgwire.audit"
log = SafeLogger(namespace=AUDIT_NAMESPACE)

OK = "ok"


@dataclass(frozen=True, slots=True)
class Change:
    """One name moved by a write: a git ref, an hg head/bookmark/phase."""

    name: str
    old: str
    new: str
    result: str = OK


SUMMARY_CHANGES = 20
"""Changes the text line names; past them, "and N more" (a ``git push --mirror`` names every ref:
100,000 made one line of 5.3 MB, which journald splits and syslog cuts)."""

KEPT_CHANGES = 100
"""Changes the structured ``changes`` field keeps (the first); ``changes_total`` and
``changes_refused`` count them all."""

KEPT_IDS = 100
"""Ids one change keeps in the ``changes`` field (a phase a push of 100,000 changesets made public);
past them, ``(+N more)``."""


def record(ctx: SessionContext, action: str, changes: Sequence[Change], outcome: str) -> None:
    """Emit the audit event of one write (a push's is counted too: ``/.metrics``), bounded however
    many names it moved: its line names the first ``SUMMARY_CHANGES`` and counts the rest, its
    ``changes`` field keeps the first ``KEPT_CHANGES``."""
    if action == "push":
        metrics.count_push(ctx.transport, outcome)
    refused = sum(c.result != OK for c in changes)
    log.info(
        "audit: {proto} {action} {repo} by {who} from {peer}: {outcome} ({summary})",
        audit=True,
        action=action,
        proto=ctx.transport,
        user=ctx.user,
        who=ctx.user if ctx.user is not None else "an anonymous user",
        repo=ctx.repo_name,
        peer=ctx.peer,
        changes=[{**asdict(c), "old": _kept(c.old), "new": _kept(c.new)} for c in changes[:KEPT_CHANGES]],
        changes_total=len(changes),
        changes_refused=refused,
        outcome=outcome,
        summary=_summary(changes, refused),
    )


def _summary(changes: Sequence[Change], refused: int) -> str:
    """The line's list of changes: the first ``SUMMARY_CHANGES``, then how many more (and how many
    of those were refused)."""
    if not changes:
        return "no changes"
    shown = changes[:SUMMARY_CHANGES]
    text = ", ".join(f"{_short_name(c.name)} {_short(c.old)}..{_short(c.new)} {c.result}" for c in shown)
    more = len(changes) - len(shown)
    if more:
        refused_more = refused - sum(c.result != OK for c in shown)
        text += f", and {more} more" + (f" ({refused_more} of them refused)" if refused_more else "")
    return text


NAME_CHARS = 256
"""Characters of one name the text line shows (a git ref name may be as long as a pkt-line)."""


def _short_name(name: str) -> str:
    return name if len(name) <= NAME_CHARS else f"{name[:NAME_CHARS]}… ({len(name)} characters)"


def _kept(ids: str) -> str:
    """Ids for the ``changes`` field: whole, the first ``KEPT_IDS`` of them, then how many more."""
    if ids.count(" ") < KEPT_IDS:
        return ids
    each = ids.split(" ")
    return " ".join(each[:KEPT_IDS]) + f" (+{len(each) - KEPT_IDS} more)"


SUMMARY_IDS = 4
"""Ids of one change the summary line shows (the ``changes`` field keeps up to ``KEPT_IDS``)."""


def _short(ids: str) -> str:
    """Ids for the summary line, each cut to 12 characters: hg's heads (and a phase's changesets)
    are several, space-separated; past ``SUMMARY_IDS``, how many more."""
    each = ids.split(" ")
    shown = " ".join(i[:12] for i in each[:SUMMARY_IDS])
    return shown + (f" (+{len(each) - SUMMARY_IDS} more)" if len(each) > SUMMARY_IDS else "")


def git_push(ctx: SessionContext, updates: Sequence[RefUpdate], results: Sequence[RefResult],
             unpack_error: str | None) -> None:
    """The event of a git receive-pack: every ref command with its ``ok``/``ng`` result."""
    changes = [Change(_ref_name(u, r), u.old.decode("ascii"), u.new.decode("ascii"), _result(r))
               for u, r in zip(updates, results, strict=True)]
    refused = sum(c.result != OK for c in changes)
    outcome = f"unpack failed: {unpack_error}" if unpack_error else ("ok" if not refused else f"{refused} refused")
    record(ctx, "push", changes, outcome)


def _result(result: RefResult) -> str:
    """A ref's result as the log says it: with what failed its transaction there, when known."""
    if result.reason is None:
        return OK
    return result.reason if result.cause is None else f"{result.reason}: {result.cause}"


def _ref_name(update: RefUpdate, result: RefResult) -> str:
    """The ref as the log names it: a symbolic ref with the ref its update moved."""
    name = printable(update.ref)
    return f"{name} -> {printable(result.target)}" if result.target is not None else name


def created(ctx: SessionContext, kind: str) -> None:
    """The event of a repository creation (``hg init`` over SSH, a git push with ``--create-on-push``)."""
    record(ctx, "create", [Change(ctx.repo_name, "", kind)], OK)
