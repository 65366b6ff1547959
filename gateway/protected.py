"""Protected git refs, hg bookmarks and hg named branches (``--config``), and the hg side of the audit log.

git: ``update_refs`` is the one place a receive-pack session moves refs; it
first refuses the ``RefUpdate``s that a protection forbids (``ng <ref>
protected branch: ...``), then hands the others to the backend.  A
non-fast-forward update is one whose old commit is not an ancestor of the new
one (the pack is already in the object store, so the walk sees the new commits).

hg: ``guard_hg_repository`` wraps a repository so that every write
transaction (unbundle and pushkey, over any transport) refuses the deletion,
the non-fast-forward move or (``no_direct_push``) any move of a protected
bookmark, and emits one audit event when it commits or aborts.  The ancestry
check knows the changesets the same push adds (their parents are recorded as
they stream by) and asks the repository about the rest.

Protected named branches (``protected_branches``, the same globs as bookmarks)
are checked when the transaction commits, over everything the push added; the
push is refused, and the transaction rolled back, when a protected branch

- would end with more heads than it had before (closed heads count on both
  sides, as in the ``branchmap``; a branch the repository does not have yet may
  be created with one head) -- also when the client used ``hg push --force``;
- gets a changeset that closes a head (``close`` in the changeset's extras);
- is ``no_direct_push`` and gets any new changeset at all.

The client sees one sentence, e.g. ``protected branch default: pushing a new
head is not allowed``.  The heads before the push come from the repository's
``branchmap``; the branch and close flag of each new changeset come from its
changelog text (``mercurial/helptext/internals/changelog.txt``: the extras of
the date line), read back from the transaction right after the revision went in.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn, Protocol, runtime_checkable

from dulwich.object_store import BaseObjectStore

from backends.git import MAX_TOLD_NAME, PRE_RECEIVE_DECLINED
from backends.git_pack import is_ancestor
from backends.hg.changelog import parse_changeset
from backends.interfaces import (
    ATOMIC_FAILURE,
    HG_OPTIONAL_READS,
    HG_TRANSACTION_READS,
    NULL_NODE,
    DeltaMode,
    GitRepository,
    HgRepository,
    HgTransaction,
    IngestResult,
    Kind,
    LockWait,
    Node,
    ReceiveHooks,
    RefResult,
    RefUpdate,
    RevisionDelta,
    RevisionGroup,
    Section,
    StoreFile,
    is_zero_id,
)
from gateway import audit, errors, hg_hooks
from gateway.auth import Authorizer
from gateway.channel import SessionContext
from gateway.logs import SafeLogger
from gateway.policy import Protection, Protections, first_match
from protocols import git_receive, hg_exchange
from protocols.errors import HgwireError, PermissionDenied, StorageError, UnsupportedFeature
from protocols.hg_obsmarkers import Marker
from protocols.text import quoted

log = SafeLogger()

PHASE_NAMES = {0: "public", 1: "draft", 2: "secret"}


# --- git --------------------------------------------------------------------------------------


def _what(ref: bytes) -> str:
    return "protected branch" if ref.startswith(b"refs/heads/") else "protected ref"


def ref_refusal(protection: Protection, store: BaseObjectStore, update: RefUpdate) -> str | None:
    """Why a protection refuses one ref update, or None."""
    what = _what(update.ref)
    if protection.no_direct_push:
        return f"{what}: direct pushes are not allowed"
    created, deleted = is_zero_id(update.old), is_zero_id(update.new)
    if deleted and not created:
        return f"{what}: deletion is not allowed"
    if created or deleted:
        return None
    if not is_ancestor(store, update.old, update.new):
        return f"{what}: force-push (non-fast-forward) is not allowed"
    return None


def _protection_refusal(protections: Protections | None, store: BaseObjectStore, update: RefUpdate,
                        target: bytes | None) -> str | None:
    """Why the repository's protected refs refuse ``update`` (and, through a symbolic ref, the
    same update of its ``target``), or None."""
    if not protections:
        return None
    for ref in (update.ref, target) if target is not None else (update.ref,):
        protection = first_match(protections.refs, ref.decode("utf-8", "replace"))
        reason = ref_refusal(protection, store, replace(update, ref=ref)) if protection is not None else None
        if reason is not None:
            return reason
    return None


def update_refs(repo: GitRepository, updates: Sequence[RefUpdate], atomic: bool,
                protections: Protections | None, hooks: ReceiveHooks | None = None,
                said: list[bytes] | None = None) -> list[RefResult]:
    """``repo.update_refs`` after the push's commands are screened (``git_receive.screen_commands``:
    names, a ref named twice, symbolic refs) and the protections checked: refused refs get ``ng``, the
    rest go to the backend (with the receive ``hooks``, which only a backend with ``hook_location`` is
    given), each ref once, a symbolic ref's update as its target's (the backend sees no symbolic ref).

    As git's receive-pack, the pre-receive hook is told every command as the client sent it, those
    refused here too (a funny refname, a protected ref): git checks them after the hook, as it
    updates each ref, so a hook that declines has them all "pre-receive hook declined", and one that
    accepts has its output before git's ``error: refusing to create funny ref`` lines (added to
    ``said``).  The backend is never given a refused command: the hook hears of them through
    ``_EveryCommand``, which the backend asks as it asks the hooks."""
    def backend_update(allowed: Sequence[RefUpdate]) -> Sequence[RefResult]:
        try:
            if feed is None:
                return repo.update_refs(allowed, atomic)
            return repo.update_refs(allowed, atomic, hooks=feed)  # type: ignore[call-arg]
        finally:
            failures = getattr(repo, "reflog_failures", None)  # optional: a backend may keep no reflogs
            for failure in failures or ():
                log.warn("push to {repo}: {failure}; the ref was updated", repo=repo.name, failure=failure)
            if failures:
                failures.clear()

    symrefs = _symrefs_named(repo, updates)
    screened = git_receive.screen_commands(updates, symrefs)
    reasons = [s.reason or _protection_refusal(protections, repo.object_store, u, s.target)
               for u, s in zip(updates, screened, strict=True)]
    aliased = any(s.target is not None for s in screened)
    feed = _EveryCommand(hooks, updates, screened, reasons, symrefs) \
        if hooks is not None and (any(reasons) or aliased) else hooks
    allowed = [replace(u, ref=s.target, via=u.ref) if s.target is not None else u
               for u, s, reason in zip(updates, screened, reasons, strict=True) if reason is None and not s.skipped]
    if isinstance(feed, _EveryCommand) and any(reasons) and (atomic or not allowed):
        feed.pre_receive(())  # the backend is given nothing to run it over
    if atomic and any(reasons):
        backend_update([])  # also with none: the push's objects then go
        reasons = _late(reasons, feed, said, updates)
        otherwise = PRE_RECEIVE_DECLINED if isinstance(feed, _EveryCommand) and feed.accepted is False \
            else ATOMIC_FAILURE
        return [RefResult(u.ref, reason or otherwise, target=s.target)
                for u, s, reason in zip(updates, screened, reasons, strict=True)]
    done = {r.ref: r for r in backend_update(allowed)}
    reasons = _late(reasons, feed, said, updates)
    results = []
    for u, s, reason in zip(updates, screened, reasons, strict=True):
        if reason is not None:
            results.append(RefResult(u.ref, reason, target=s.target))
        elif s.target is not None:  # made as its target (by the target's own command when skipped)
            results.append(replace(done[s.target], ref=u.ref, target=s.target))
        else:
            results.append(done[u.ref])
    return results


class _EveryCommand:
    """The push's receive hooks told the commands as the client sent them, whatever the backend
    asks them over (it is given only the commands the gateway let through, a symbolic ref's as its
    target's, since it sees no symbolic ref), as git's receive-pack tells them: pre-receive every
    command in the client's order (run once); ``update`` a symbolic ref's command by its own name;
    post-receive and post-update every command made, a symbolic ref's that its target's own
    command made too; ``reference-transaction`` a symbolic ref's line, then its target's after the
    transaction's other refs, as git's ref store adds it.  The rest is passed on."""

    def __init__(self, hooks: ReceiveHooks, updates: Sequence[RefUpdate],
                 screened: Sequence[git_receive.Screened] = (), reasons: Sequence[str | None] = (),
                 symrefs: Mapping[bytes, bytes] | None = None) -> None:
        self._hooks = hooks
        self._updates = list(updates)
        self._screened = list(screened) or [git_receive.Screened()] * len(self._updates)
        self._reasons = list(reasons) or [None] * len(self._updates)
        self._symrefs = dict(symrefs or {})
        self._named = {s.target: u.ref for u, s, reason in zip(self._updates, self._screened, self._reasons,
                                                               strict=True)
                       if s.target is not None and reason is None and not s.skipped}
        """A target the backend updates for a symbolic ref's command → the name the client sent."""
        self.accepted: bool | None = None
        """What pre-receive said (None: not run yet)."""

    def pre_receive(self, updates: Sequence[RefUpdate]) -> bool:
        if self.accepted is None:
            self.accepted = self._hooks.pre_receive(self._updates)
        return self.accepted

    def _as_sent(self, update: RefUpdate) -> RefUpdate:
        name = self._named.get(update.ref)
        return replace(update, ref=name, via=None) if name is not None else update

    def update(self, update: RefUpdate) -> bool:
        return self._hooks.update(self._as_sent(update))

    def post_receive(self, updates: Sequence[RefUpdate]) -> None:
        made = {u.ref for u in updates}
        told = [u for u, s, reason in zip(self._updates, self._screened, self._reasons, strict=True)
                if reason is None and (s.target or u.ref) in made]
        self._hooks.post_receive(told)

    def transaction_hook(self) -> Callable[[str, Sequence[RefUpdate], bytes | None], bool] | None:
        find = getattr(self._hooks, "transaction_hook", None)
        hook: Callable[..., bool] | None = find() if find is not None else None
        if hook is None or not self._named:
            return hook
        if "symrefs" not in inspect.signature(hook).parameters:  # hooks not hgwire's own: as the backend asks
            return hook
        symrefs = self._symrefs

        def told(state: str, updates: Sequence[RefUpdate], head: bytes | None) -> bool:
            return bool(hook(state, [self._as_sent(u) for u in updates], head, symrefs=symrefs))
        return told

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._hooks, attr)


def _late(reasons: list[str | None], feed: ReceiveHooks | None, said: list[bytes] | None,
          updates: Sequence[RefUpdate]) -> list[str | None]:
    """The gateway's refusals as git's receive-pack gives them after its pre-receive hook: all
    "pre-receive hook declined" when the hook declined, else as they are, a funny refname with
    git's ``error:`` line (in ``said``)."""
    if isinstance(feed, _EveryCommand) and feed.accepted is False:
        return [PRE_RECEIVE_DECLINED if reason is not None else None for reason in reasons]
    if said is not None:
        said += [f"error: refusing to create funny ref {quoted(u.ref, MAX_TOLD_NAME)} remotely\n".encode()
                 for u, reason in zip(updates, reasons, strict=True) if reason == git_receive.FUNNY_REFNAME]
    return reasons


def _symrefs_named(repo: GitRepository, updates: Sequence[RefUpdate]) -> Mapping[bytes, bytes]:
    """The symbolic refs a push's commands name, and those they lead through: the backend's
    optional ``symref_targets`` reads those refs alone (a name the screening refuses is not read),
    ``symrefs()`` every ref."""
    names = [u.ref for u in updates if git_receive.ref_name_refusal(u.ref) is None]
    if not names:
        return {}
    targets = getattr(repo, "symref_targets", None)  # optional: a backend may not have it
    return targets(names) if targets is not None else repo.symrefs()


def protections_of(ctx: SessionContext) -> Protections | None:
    """The protections that apply to the session's repository (None without a ``--config``)."""
    return ctx.authorizer.protections(ctx.repo_name) if ctx.authorizer is not None else None


# --- hg ---------------------------------------------------------------------------------------


def _hex(node: Node | None) -> str:
    return node.hex() if node is not None else ""


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@runtime_checkable
class ChangesetReader(Protocol):
    """A transaction that reads back the changelog text of a changeset before it commits.

    A changeset is readable once the transaction has taken its revision in,
    that is when it asks the changegroup for the next one.  ``backends.hg``
    transactions are such readers.
    """

    def changeset_text(self, node: Node) -> bytes: ...


@dataclass(frozen=True, slots=True)
class PushedChangeset:
    """What the branch protections need of one changeset a push adds."""

    node: Node
    parents: tuple[Node, Node]
    branch: bytes
    closes: bool


def branch_and_close(text: bytes) -> tuple[bytes, bool]:
    """The named branch of a changelog text, and whether it closes a head (``close`` among its extras)."""
    changeset = parse_changeset(text)
    return changeset.branch, changeset.closes_branch


def branch_heads_after(before: Collection[Node], pushed: Sequence[PushedChangeset]) -> set[Node]:
    """One branch's heads once ``pushed`` (the new changesets on it) are in; closed heads count.

    A changeset stops being a head of its branch when a changeset of the same
    branch names it as a parent, as in hg's ``branchmap``.
    """
    with_child = {parent for changeset in pushed for parent in changeset.parents}
    return {h for h in before if h not in with_child} | {c.node for c in pushed if c.node not in with_child}


def branch_refusal(protection: Protection, before: Collection[Node],
                   pushed: Sequence[PushedChangeset]) -> str | None:
    """Why a protection refuses the changesets a push adds to its branch (``before``: its heads), or None.

    A branch the repository does not have yet may be created with one head, as
    a protected bookmark or ref may be created.
    """
    if protection.no_direct_push:
        return "direct pushes are not allowed"
    if any(changeset.closes for changeset in pushed):
        return "closing a head is not allowed"
    if len(branch_heads_after(before, pushed)) > max(len(before), 1):
        return "pushing a new head is not allowed"
    return None


def branches_refusal(protections: Sequence[Protection], heads_before: Mapping[bytes, Collection[Node]],
                     pushed: Iterable[PushedChangeset]) -> str | None:
    """The refusal of the first protected branch (by name) that a push's new changesets break, or None."""
    by_branch: dict[bytes, list[PushedChangeset]] = {}
    for changeset in pushed:
        by_branch.setdefault(changeset.branch, []).append(changeset)
    for branch in sorted(by_branch):
        protection = first_match(protections, _name(branch))
        if protection is None:
            continue
        reason = branch_refusal(protection, heads_before.get(branch, ()), by_branch[branch])
        if reason is not None:
            return f"protected branch {_name(branch)}: {reason}"
    return None


class GuardedTransaction:
    """An ``HgTransaction`` that applies the bookmark and branch protections and audits the outcome.

    Its writes are its own methods (the core's, and one for each of the backend's optional writes,
    ``backends.interfaces.HgTransactionWrites``); the backend's optional reads are handed on.
    """

    def __init__(self, repo: HgRepository, tx: HgTransaction, ctx: SessionContext,
                 protections: Protections | None, hooks: hg_hooks.HgHooks | None = None) -> None:
        self._repo = repo
        self._tx = tx
        self._hooks = hooks
        self._gated = False
        self._opened = False
        self._said_before = b""
        self._said_closing = b""
        self._moved_marks: dict[bytes, tuple[Node | None, Node | None]] = {}
        self._pending: str | None = None
        """The root ``write_pending`` returned, once the commit's gating hooks had it written."""
        self._ctx = ctx
        self._protections = protections
        self._parents: dict[Node, tuple[Node, Node]] = {}
        self._heads_before = repo.heads()
        self._changes: list[audit.Change] = []
        self._refusal: str | None = None
        self._branch_rules = protections.branches if protections is not None else ()
        self._reader: ChangesetReader | None = None
        self._branch_heads: Mapping[bytes, Sequence[Node]] | None = None
        self._branches: dict[Node, tuple[bytes, bool]] = {}
        self._added: list[Node] = []
        self._phases_logged: dict[int, set[Node]] = {}
        """The changesets each phase's audit changes name so far: each once."""
        self._pushkeys: list[dict[str, str]] = []
        """The arguments of each ``pushkey`` hook to run after the commit (one per pushed key)."""
        self._changegroup_args: dict[str, str] | None = None
        """``hookargs`` as the first changegroup found them: what ``changegroup`` and ``incoming`` are told."""
        self.hookargs: dict[str, str] = {}
        """What every hook of this push is told besides its own arguments, as hg's ``tr.hookargs``:
        ``bundle2`` (set by the caller for a bundle2 push)."""

    def _refuse(self, reason: str) -> NoReturn:
        self._refusal = reason
        raise PermissionDenied(reason)

    def add_push_vars(self, pairs: Sequence[tuple[bytes, bytes]]) -> None:
        """``hg push --pushvars KEY=VALUE``: every later hook of the push is told ``HG_USERVAR_KEY``
        where the repository's ``[push] pushvars.server`` is true, as hg's ``bundle2getvars`` does;
        otherwise nothing.  A name or value no environment can hold (empty, ``=``, NUL) is left out."""
        setting = getattr(self._repo, "hgrc_bool", None)  # optional: a backend may have no hgrc
        if setting is None or not setting(b"push", b"pushvars.server", False):
            return
        for key, value in pairs:
            if key and b"=" not in key and b"\0" not in key and b"\0" not in value:
                self.hookargs["USERVAR_" + os.fsdecode(key.upper())] = os.fsdecode(value)

    def add_changegroup(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        if self._branch_rules and self._reader is None:
            self._start_branch_checks()
        self._gate()
        if self._hooks is not None:
            try:
                self._hooks.run("prechangegroup", throw=True, extra=self.hookargs)
            except hg_hooks.HookFailed as exc:
                self._refuse(str(exc))
            finally:  # what it said comes before hg's "adding changesets"
                self._said_before += self._hooks.take_output()
        if self._changegroup_args is None:  # as hg's changegroup.apply copies tr.hookargs: no later ones
            self._changegroup_args = dict(self.hookargs)
        with _disk_refusal_warned(self._ctx):
            result = self._tx.add_changegroup(self._recorded(groups))
        self._added.extend(result.added)
        if self._hooks is not None and result.added and self._hooks.has("pretxnchangegroup"):
            # as hg: once the changegroup is in, before the push's other parts
            self._pending_gate(self._hooks, "pretxnchangegroup", result.added, self.hookargs, now=True)
        return result

    def _start_branch_checks(self) -> None:
        """Note the branch heads before anything is added; fail closed when branches cannot be read."""
        if not isinstance(self._tx, ChangesetReader):
            self._refuse("protected branches cannot be checked by this storage backend; "
                         "ask the server's operator")
        self._reader = self._tx
        self._branch_heads = self._repo.branchmap()

    def _recorded(self, groups: Iterator[RevisionGroup]) -> Iterator[RevisionGroup]:
        for group in groups:
            if group.section is Section.CHANGELOG:
                group = RevisionGroup(group.section, group.path, self._parents_of(group.revisions))
            yield group

    def _parents_of(self, revisions: Iterator[RevisionDelta]) -> Iterator[RevisionDelta]:
        for revision in revisions:
            self._parents[revision.node] = (revision.p1, revision.p2)
            yield revision
            if self._reader is not None:  # asked for the next one: this one is in the transaction
                self._branches[revision.node] = branch_and_close(self._reader.changeset_text(revision.node))

    def set_bookmark(self, name: bytes, old: Node | None, new: Node | None) -> bool:
        self._gate()
        protection = first_match(self._protections.bookmarks, _name(name)) if self._protections else None
        reason = self._bookmark_refusal(protection, old, new) if protection is not None else None
        if reason is not None:
            self._refuse(f'bookmark "{_name(name)}" is protected: {reason}')
        ok = self._tx.set_bookmark(name, old, new)
        self._changes.append(audit.Change(f"bookmark {_name(name)}", _hex(old), _hex(new),
                                          audit.OK if ok else "changed meanwhile"))
        if ok:  # for pretxnclose-bookmark: the first old value, the last new one
            first = self._moved_marks.get(name, (old, new))[0]
            self._moved_marks[name] = (first, new)
        return ok

    def _bookmark_refusal(self, protection: Protection, old: Node | None, new: Node | None) -> str | None:
        if protection.no_direct_push:
            return "direct pushes are not allowed"
        if new is None:
            return "deletion is not allowed" if old is not None else None
        if old is None or old == new or self._descends(new, old):
            return None
        return "moving it backwards or sideways (non-fast-forward) is not allowed"

    def _descends(self, new: Node, old: Node) -> bool:
        """Is ``old`` an ancestor of ``new``, counting the changesets this transaction adds?"""
        pending, seen, existing = [new], {new}, []
        while pending:
            node = pending.pop()
            if node == old:
                return True
            parents = self._parents.get(node)
            if parents is None:
                existing.append(node)
                continue
            for parent in parents:
                if parent != NULL_NODE and parent not in seen:
                    seen.add(parent)
                    pending.append(parent)
        return bool(existing) and not self._repo.missing(existing, [old])

    def prepushkey(self, namespace: bytes, key: bytes, old: bytes, new: bytes, compat: bool) -> None:
        """Before a pushed bookmark (or phase) moves: the repository's ``prepushkey`` hooks, which may
        refuse the push, and later the ``pushkey`` ones, as hg's server runs them.

        ``compat``: a bookmark of a bundle2 ``bookmarks`` part, which hg tells its hooks as a pushkey
        (``HG_PUSHKEYCOMPAT=1``, its ``bookmarks-pushkey-compat``); otherwise a pushkey (a part, or the
        ``pushkey`` command), whose ``pushkey`` hook is also told ``HG_RET``.  Values are as on the wire.
        """
        self._gate()
        if self._hooks is None:
            return
        args = {**self.hookargs, **({"phases_moved": "1"} if self._phases_moved() else {}),  # hg's, by now
                **({"pushkeycompat": "1"} if compat else {}),
                "namespace": hg_hooks.env_text(namespace), "key": hg_hooks.env_text(key),
                "old": hg_hooks.env_text(old), "new": hg_hooks.env_text(new)}
        if self._hooks.has("prepushkey"):
            pending = self._pending_now() if self._added or self._moved_marks else None
            try:  # what it says comes after the changesets' lines, with the other hooks' words
                self._hooks.run("prepushkey", throw=True, nodes=self._added, pending=pending, extra=args)
            except hg_hooks.HookFailed as exc:
                self._refuse(str(exc))
        self._pushkeys.append(args if compat else {**args, "ret": "1"})

    def pushkey_result(self, ok: bool) -> None:
        """The outcome of the last pushkey (not of a compat bookmark): its ``pushkey`` hook's ``HG_RET``."""
        if self._pushkeys and "ret" in self._pushkeys[-1]:
            self._pushkeys[-1]["ret"] = "1" if ok else "0"

    def set_phase(self, phase: int, nodes: Sequence[Node]) -> None:
        self._gate()
        # each changeset once: a publishing repository makes a push's changesets public, and the
        # client's phase part or pushkey then asks the same of the pushed head
        before = [self._phase_of(node) for node in nodes]
        self._tx.set_phase(phase, nodes)
        logged = self._phases_logged.setdefault(phase, set())
        added = set(self._added)
        moved = [node for node, was in zip(nodes, before, strict=True)
                 if node not in logged and (was is None or was > phase or node in added)]
        logged.update(moved)
        if moved:
            self._changes.append(audit.Change(f"phase {PHASE_NAMES.get(phase, phase)}", "",
                                              " ".join(n.hex() for n in moved)))

    def _phase_of(self, node: Node) -> int | None:
        """The changeset's phase as the transaction has it (None where the backend cannot say)."""
        phase_of = getattr(self._tx, "phase_of", None)  # optional: a backend may not have it
        return phase_of(node) if phase_of is not None else None

    def add_obsmarkers(self, markers: Sequence[Marker]) -> int:
        """Pushed obsolescence markers, for a backend that keeps them."""
        self._gate()
        add = getattr(self._tx, "add_obsmarkers", None)
        if add is None:
            raise UnsupportedFeature("this repository's storage keeps no obsolescence markers")
        taken = getattr(self._tx, "new_markers", None)
        already = len(taken) if taken is not None else 0
        new = int(add(markers))
        if self._branch_rules and new:  # the markers that are new (all of them, if the backend does not say)
            self._check_markers(list(taken[already:]) if taken is not None else list(markers))
        if new:
            self._changes.append(audit.Change("obsolescence markers", "", f"{new} new"))
        return new

    def _check_markers(self, markers: Sequence[Marker]) -> None:
        """Refuse a marker that rewrites or prunes a changeset of a protected branch: hiding its head
        moves the branch backwards, as a force-push would (a changeset the server does not have is
        no concern of its rules)."""
        if self._reader is None:
            self._start_branch_checks()
        assert self._reader is not None
        for marker in markers:
            node = Node(marker.prec)
            found = self._branches.get(node)
            if found is None:
                try:
                    found = branch_and_close(self._reader.changeset_text(node))
                except KeyError:
                    continue
            if first_match(self._branch_rules, _name(found[0])) is not None:
                self._refuse(f"protected branch {_name(found[0])}: rewriting or pruning its changesets "
                             "is not allowed")

    def __getattr__(self, name: str) -> Any:
        """The backend transaction's optional read ``name`` (``backends.interfaces.HG_TRANSACTION_READS``),
        as it has it: reading the push so far needs no gate, check or audit.  ``AttributeError``
        where the backend has none (its callers then do as without it) and for any other name.  Each
        was handed on by a method of its own here, so a new optional method went unused until one
        was written."""
        if name in HG_TRANSACTION_READS:
            return getattr(self._tx, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _branch_refusal(self) -> str | None:
        if self._branch_heads is None:
            return None
        pushed = [PushedChangeset(node, self._parents[node], *self._branches[node]) for node in self._added]
        return branches_refusal(self._branch_rules, self._branch_heads, pushed)

    @property
    def opened(self) -> bool:
        """Whether the push got as far as hg opening its transaction (and running ``pretxnopen``):
        a refusal from then on is told "transaction abort!" and "rollback completed", as by hg."""
        return self._opened

    def _gate(self) -> None:
        """Once, when the push first needs its transaction (where hg opens it): refuse the push when
        the repository sets a gating hook hgwire cannot run, then run ``pretxnopen``."""
        if self._gated:
            return
        self._gated = True
        if self._hooks is not None:
            reason = self._hooks.unsupported_gate()
            if reason is not None:
                self._refuse(reason)
            if self._hooks.has("pretxnopen"):
                try:
                    self._hooks.run("pretxnopen", throw=True, bare=True)
                except hg_hooks.HookFailed as exc:
                    self._refuse(str(exc))
                finally:
                    self._said_before += self._hooks.take_output()
        self._opened = True

    def commit(self) -> None:
        reason = self._branch_refusal()
        if reason is not None:
            self._refuse(reason)  # the caller aborts: nothing of the push lands
        closing: Mapping[str, str] = {}
        phase_args: list[dict[str, str]] = []
        self._gate()
        if self._hooks is not None:
            self._pending_gates(self._hooks)
            closing = self._closing_args()  # before the commit: what it moves is then on disk
            if self._hooks.has("txnclose-phase"):
                phase_args = self._phase_args(closing)
        with _disk_refusal_warned(self._ctx):
            self._tx.commit()
        if self._hooks is not None:  # what the pretxn… hooks said: before hg's "added N changesets"
            self._said_closing += self._hooks.take_output()
        after = self._repo.heads()
        if after != self._heads_before:
            self._changes.insert(0, audit.Change("heads", " ".join(n.hex() for n in self._heads_before),
                                                 " ".join(n.hex() for n in after)))
        audit.record(self._ctx, "push", self._changes, audit.OK)
        if self._hooks is not None:
            self._committed_hooks(self._hooks, closing, phase_args)

    def _pending_gates(self, hooks: hg_hooks.HgHooks) -> None:
        """Mercurial's order before the commit (after pretxnchangegroup, run with the changegroup):
        each bookmark, then pretxnclose.

        As in hg, the last two are also told what the transaction moved (``HG_BOOKMARK_MOVED``,
        ``HG_PHASES_MOVED``), and a bookmark's hook the last pushed changeset (``HG_NODE_LAST``).
        """
        closing = self._closing_args()
        if hooks.has("pretxnclose-bookmark"):
            for args in self._bookmark_args(closing):
                self._pending_gate(hooks, "pretxnclose-bookmark", (), args)
        if hooks.has("pretxnclose-phase"):
            for args in self._phase_args(closing):
                self._pending_gate(hooks, "pretxnclose-phase", (), args)
        if hooks.has("pretxnclose"):
            self._pending_gate(hooks, "pretxnclose", self._added, closing)

    def _bookmark_args(self, closing: Mapping[str, str]) -> list[dict[str, str]]:
        """What ``pretxnclose-bookmark`` and ``txnclose-bookmark`` are told, per moved bookmark in name
        order: the transaction's arguments (with the last pushed changeset), the bookmark, its new
        and its old node (empty for a created or deleted one)."""
        last = {"node_last": self._added[-1].hex()} if self._added else {}
        return [{**closing, **last, "bookmark": hg_hooks.env_text(name), "node": _hex(new),
                 "oldnode": _hex(old)}
                for name, (old, new) in sorted(self._moved_marks.items()) if old != new]

    def _phase_args(self, closing: Mapping[str, str]) -> list[dict[str, str]]:
        """What ``pretxnclose-phase`` and ``txnclose-phase`` are told, per changeset whose phase the
        push sets (a new one too, with an empty ``HG_OLDPHASE``), in revision order."""
        changes = getattr(self._tx, "phase_changes", None)  # optional: a backend may not tell
        if changes is None:
            self._refuse("the repository's phase hooks cannot be run by this storage backend, "
                         "so pushes are refused; ask the server's operator")
        last = {"node_last": self._added[-1].hex()} if self._added else {}
        return [{**closing, **last, "node": node.hex(),
                 "oldphase": PHASE_NAMES.get(old, "") if old is not None else "",
                 "phase": PHASE_NAMES.get(new, str(new))}
                for node, old, new in changes()]

    def _closing_args(self) -> dict[str, str]:
        """``hookargs`` and what the transaction moved, as hg's closing hooks get them."""
        args = dict(self.hookargs)
        if any(old != new for old, new in self._moved_marks.values()):
            args["bookmark_moved"] = "1"
        if self._phases_moved():
            args["phases_moved"] = "1"
        return args

    def _phases_moved(self) -> bool:
        """Whether the transaction so far moves phases (hg's ``phases_moved``); optional for a backend."""
        moved = getattr(self._tx, "phases_moved", None)
        return moved is not None and bool(moved())

    def _committed_hooks(self, hooks: hg_hooks.HgHooks, closing: Mapping[str, str],
                         phase_args: Sequence[Mapping[str, str]]) -> None:
        """After the commit, in hg's order: pushkey per pushed key, txnclose-bookmark per moved bookmark,
        txnclose-phase per changeset whose phase the push set (``phase_args``, taken before the commit),
        txnclose, then changegroup once and incoming per changeset (if any were added)."""
        for args in self._pushkeys:
            hooks.run("pushkey", throw=False, nodes=self._added, extra=args)
        for args in self._bookmark_args(closing) if hooks.has("txnclose-bookmark") else ():
            hooks.run("txnclose-bookmark", throw=False, extra=args)
        for phase_arg in phase_args:
            hooks.run("txnclose-phase", throw=False, extra=phase_arg)
        hooks.run("txnclose", throw=False, nodes=self._added, extra=closing)
        if self._added:
            args = self._changegroup_args if self._changegroup_args is not None else self.hookargs
            hooks.run("changegroup", throw=False, nodes=self._added, extra=args)
            for node in self._added:
                hooks.run("incoming", throw=False, nodes=[node], extra=args)

    def _pending_gate(self, hooks: hg_hooks.HgHooks, kind: str, nodes: Sequence[Node],
                      extra: Mapping[str, str], now: bool = False) -> None:
        """Let the ``kind`` hooks read the push as it would commit (``HG_PENDING``) and refuse it;
        ``now``: a gate in the middle of the push (``_pending_now``), not one of the commit's."""
        pending = self._pending_now() if now else self.write_pending()
        if pending is None:
            self._refuse(f"the repository's {kind} hook cannot be run by this storage backend, "
                         "so pushes are refused; ask the server's operator")
        try:
            hooks.run(kind, throw=True, nodes=nodes, pending=pending, extra=extra)
        except hg_hooks.HookFailed as exc:
            self._refuse(str(exc))

    def write_pending(self) -> str | None:
        """Write what the transaction would commit where hg's own readers find it (``HG_PENDING``),
        the backend's ``write_pending``, a disk's refusal warned; once for all the gates of the
        commit, as nothing changes between them."""
        if self._pending is None:
            write_pending = getattr(self._tx, "write_pending", None)
            with _disk_refusal_warned(self._ctx):
                self._pending = write_pending() if write_pending is not None else None
        return self._pending

    def _pending_now(self) -> str | None:
        """The pending files as the transaction is now, for a gate in the middle of the push; the
        commit's gates write them again, as they are then."""
        self._pending = None
        root = self.write_pending()
        self._pending = None
        return root

    def take_output(self) -> tuple[bytes, bytes, bytes]:
        """What the repository's hooks wrote before the changesets were applied, then until the
        commit, then after it, for the client (``protocols.hg_exchange``)."""
        before, self._said_before = self._said_before, b""
        closing, self._said_closing = self._said_closing, b""
        return before, closing, self._hooks.take_output() if self._hooks is not None else b""

    def abort(self) -> None:
        self._tx.abort()
        outcome = f"refused: {self._refusal}" if self._refusal else "aborted"
        audit.record(self._ctx, "push", self._changes, outcome)

    def abort_for(self, reason: str) -> None:
        """Abort, refused for ``reason`` (a push race, a bad bundle, …: what the client is told),
        unless a refusal of this transaction's own came first."""
        self._refusal = self._refusal or reason
        self.abort()


@contextmanager
def _refusal_audited(ctx: SessionContext, refusal: type[HgwireError]) -> Iterator[None]:
    """A push refused before its transaction opened (locked, a disk that cannot hold its bundle): in
    the audit log too, for the operator the client is sent to."""
    try:
        yield
    except refusal as refused:
        audit.record(ctx, "push", [], f"refused: {refused}")
        raise


@contextmanager
def _disk_refusal_warned(ctx: SessionContext) -> Iterator[None]:
    """A push the server's disk refused (``StorageError`` from an ``OSError``): the operator's warning
    names the file and what to do (``errors.warn_disk_refusal``); the client is told the reason."""
    try:
        yield
    except StorageError as exc:
        errors.warn_disk_refusal(ctx.transport, ctx.repo_name, exc, ctx.backend)
        raise


@contextmanager
def _audited_spool(spool: AbstractContextManager[Iterator[bytes]], ctx: SessionContext) -> Iterator[Iterator[bytes]]:
    with ExitStack() as held:
        with _refusal_audited(ctx, StorageError), _disk_refusal_warned(ctx):
            kept = held.enter_context(spool)
        yield kept


def open_transaction(repo: HgRepository, max_text: int | None, wait: LockWait | None) -> HgTransaction:
    """``repo.transaction(max_text, wait)``; a backend's ``transaction`` written before the lock wait
    existed takes ``max_text`` only, and is called so (it waits for its locks as it always did)."""
    try:
        takes_wait = "wait" in inspect.signature(repo.transaction).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin, a C extension's): as declared
        takes_wait = True
    return repo.transaction(max_text, wait) if takes_wait else repo.transaction(max_text)


class GuardedHgRepository:
    """An ``HgRepository`` whose transactions are ``GuardedTransaction``s and whose pushed bundles'
    spooling is audited (the writes, asked only by a push); all else is the backend's."""

    kind: Literal[Kind.HG] = Kind.HG

    def __init__(self, repo: HgRepository, ctx: SessionContext, protections: Protections | None) -> None:
        self._repo = repo
        self._ctx = ctx
        self._protections = protections
        self.name = repo.name

    def transaction(self, max_text: int | None = None, wait: LockWait | None = None) -> HgTransaction:
        scheme = self._ctx.extra.get("scheme", "ssh" if self._ctx.transport.endswith("ssh") else "http")
        hooks = hg_hooks.hooks_of(self._repo, scheme, self._ctx.peer, self._ctx.user)
        with _refusal_audited(self._ctx, HgwireError), _disk_refusal_warned(self._ctx):
            tx = open_transaction(self._repo, max_text, wait)
        try:
            return GuardedTransaction(self._repo, tx, self._ctx, self._protections, hooks)
        except BaseException:  # it reads the repository (its heads): a failure must not keep the lock
            tx.abort()
            raise

    def spool_push(self, chunks: Iterator[bytes]) -> AbstractContextManager[Iterator[bytes]]:
        """The backend's keeping of a pushed bundle until it is whole (``HgPushSpool``), if it has one;
        a disk that cannot keep it refuses the push, which the audit log says."""
        return _audited_spool(hg_exchange.received(self._repo, chunks), self._ctx)

    def requirements(self) -> frozenset[str]:
        return self._repo.requirements()

    def publishing(self) -> bool:
        return self._repo.publishing()

    def heads(self) -> list[Node]:
        return self._repo.heads()

    def known(self, nodes: Sequence[Node]) -> list[bool]:
        return self._repo.known(nodes)

    def branchmap(self) -> Mapping[bytes, Sequence[Node]]:
        return self._repo.branchmap()

    def lookup(self, key: bytes) -> Node:
        return self._repo.lookup(key)

    def listkeys(self, namespace: bytes) -> Mapping[bytes, bytes]:
        return self._repo.listkeys(namespace)

    def bookmarks(self) -> Mapping[bytes, Node]:
        return self._repo.bookmarks()

    def phase_heads(self, heads: Sequence[Node]) -> Sequence[tuple[int, Node]]:
        return self._repo.phase_heads(heads)

    def missing(self, common: Sequence[Node], heads: Sequence[Node]) -> list[Node]:
        return self._repo.missing(common, heads)

    def emit_groups(self, nodes: Sequence[Node], mode: DeltaMode,
                    match: Callable[[bytes], bool] | None = None) -> Iterator[RevisionGroup]:
        return self._repo.emit_groups(nodes, mode, match=match)

    def stream_clone_allowed(self) -> bool:
        return self._repo.stream_clone_allowed()

    def stream_files(self, caches: bool = False, obsmarkers: bool = False) -> tuple[int, int, Iterator[StoreFile]]:
        if obsmarkers:  # only asked of a backend that has markers (``obsmarkers_version``)
            return self._repo.stream_files(caches, obsmarkers=True)  # type: ignore[call-arg]
        return self._repo.stream_files(caches)

    def __getattr__(self, name: str) -> Any:
        """The backend's optional read ``name`` (``backends.interfaces.HG_OPTIONAL_READS``), as it
        has it: the guard is asked only by a command whose permission was checked, and one that may
        read the repository may ask any of them.  ``AttributeError`` where the backend has none (its
        callers then do as without it) and for any other name.  Each was handed on by a method of
        its own here, so a new optional method went unused until one was written."""
        if name in HG_OPTIONAL_READS:
            return getattr(self._repo, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def guard_hg_repository(repo: HgRepository, ctx: SessionContext) -> HgRepository:
    """The repository a session serves: protections applied, writes audited, and the ``--config``
    file's ``[hg] hgrc`` read before the repository's own (a backend with ``base_hgrc``)."""
    read_base_hgrc(repo, ctx.authorizer)
    check_hgrc = getattr(repo, "check_hgrc", None)
    if check_hgrc is not None:  # one hgwire will not read (a FIFO, /dev/zero) is refused before any command
        check_hgrc()
    log_recovery(repo)
    return GuardedHgRepository(repo, ctx, protections_of(ctx))


def log_recovery(repo: object) -> None:
    """Say so when opening ``repo`` rolled back a transaction a killed writer left behind (an ``hg
    commit`` on the server, a push cut short): hg would have refused and asked for ``hg recover``."""
    if getattr(repo, "recovered", False):  # (each open that rolled one back: once per transaction)
        log.warn("{repo}: rolled back an interrupted transaction a killed or crashed writer left "  # noqa: G010
                 "(as 'hg recover' does); the repository is as it was before that write",
                 repo=getattr(repo, "name", "?"))


def read_base_hgrc(repo: object, authorizer: Authorizer | None) -> None:
    """Have ``repo`` (a backend with ``base_hgrc``) read the ``--config`` file's ``[hg] hgrc`` before
    its own, as ``hg serve`` reads the system's: for sessions and for hgweb's pages alike."""
    policy = authorizer.policy if authorizer is not None else None
    base = policy.current.hg_hgrc if policy is not None else None
    if hasattr(repo, "base_hgrc"):  # (None too: a repository opened before may be given again)
        repo.base_hgrc = os.fsencode(base) if base is not None else None
