"""A Mercurial repository's ``[hooks]``, run for a push and for a pull as ``hg serve`` runs them
(``hg help config.hooks``).

Run for a push, in hg's order: ``pretxnopen`` when the push first needs its transaction (told
only ``HG_TXNNAME`` and ``HG_TXNID``, as hg tells it); ``prechangegroup`` (before a pushed changegroup
is applied; a non-zero exit refuses the push, as it does for every hook named before the commit); ``pretxnchangegroup`` once it is in; ``prepushkey`` for each pushed
bookmark (``HG_NAMESPACE``, ``HG_KEY``, ``HG_OLD``, ``HG_NEW``, and ``HG_PUSHKEYCOMPAT=1`` for the
bookmarks of a bundle2 ``bookmarks`` part, as hg's ``bookmarks-pushkey-compat``) or pushed key;
then before the commit ``pretxnclose-bookmark`` once per moved bookmark (``HG_BOOKMARK``,
``HG_NODE``, ``HG_OLDNODE``, empty for a created or deleted one, and ``HG_NODE_LAST`` the last
pushed changeset), ``pretxnclose-phase`` once per changeset whose phase the push sets (``HG_NODE``,
``HG_OLDPHASE``, empty for a new one, ``HG_PHASE``) and ``pretxnclose``.  All but the first run with ``HG_PENDING`` when there is
something pending (the backend writes ``00changelog.i.a``, ``phaseroots.pending`` and
``bookmarks.pending`` so that the hook's own ``hg`` sees the push) and refuse it with a non-zero
exit.  After the commit: ``pushkey`` per pushed key (with ``HG_RET`` for a pushkey),
``txnclose-bookmark`` per moved bookmark and ``txnclose-phase`` per changeset (told as their
``pretxnclose-`` twins), ``txnclose``,
``changegroup`` (once, with ``HG_NODE`` the first added changeset and ``HG_NODE_LAST`` the last)
and ``incoming`` (once per added changeset).  Each is a shell command run in the repository's root
with ``HG_HOOKTYPE``, ``HG_HOOKNAME``, ``HG_SOURCE=serve``, ``HG_URL=remote:<ssh|http>:<address>``
(``:<user>`` for HTTP), ``REMOTE_USER`` (the pushing user, as hgweb under a web server tells it), ``HG_TXNID``, ``HGPLAIN=1`` (empty for a hook whose ``<name>:run-with-plain``
is false), the nodes, and what hg's ``tr.hookargs`` add
(``GuardedTransaction.hookargs``: ``HG_BUNDLE2=1`` for every hook of a bundle2 push;
``HG_PHASES_MOVED`` from ``prepushkey`` on, ``HG_BOOKMARK_MOVED`` from ``pretxnclose-bookmark``
on); what it writes reaches the client as ``remote:`` lines, and a post-commit hook that fails is
reported as hg reports it ("warning: changegroup.x hook exited with status 1").  Hooks of one type
run in Mercurial's order: ``priority.<name>`` first, then as the hgrc sets them.  A test compares
every push hook's environment with ``hg serve``'s.

Run for a pull or clone whose answer sends changesets (``changegroup.makestream``:
not a stream clone, not a pull with nothing to send): ``preoutgoing`` before the
answer starts (a non-zero exit refuses it: the client gets hg's ``error:abort``,
"abort: preoutgoing.x hook exited with status 1") and ``outgoing`` once it is
sent (``HG_NODE`` the first changeset sent; a failure is a warning), with
``HG_HOOKTYPE``, ``HG_HOOKNAME``, ``HG_SOURCE=serve`` and ``HGPLAIN=1`` (no
``HG_URL``, no transaction: hg gives neither).  ``PullHooks`` runs them per client
request, around the answer, so an answer shared with identical concurrent
clones or kept by ``[clone_cache]`` still runs them once for every client.
Their output goes to the client as ``remote:`` lines over SSH; over HTTP hg has
no channel for it, and hgwire logs it.

Run for each namespace a command lists (``localrepo.listkeys``: the ``listkeys``
command, alone or batched, which a push's discovery sends, and a bundle2
getbundle's ``listkeys`` parts, which every pull and clone asks for):
``prelistkeys`` then ``listkeys``, before the answer, told ``HG_NAMESPACE`` (and
``listkeys`` ``HG_VALUES``, the listed keys as hg writes a dict), ``HG_HOOKTYPE``,
``HG_HOOKNAME`` and ``HGPLAIN``, nothing else.  A failing ``prelistkeys`` refuses
the answer: a getbundle with hg's ``error:abort`` ("abort: prelistkeys.x hook exited
with status 1"), a ``listkeys`` over SSH by ending the session with hg's abort (as
hg serve does), over HTTP with hg's out-of-band error (where hg serve fails with
500).  A failing ``listkeys`` is a warning.

Run before an inline clone bundle is sent (``get_cached_bundle_inline``):
``pretransmit-inline-clone-bundle``, told ``HG_CLONEBUNDLEPATH`` (the path the
client asked for), ``HG_HOOKTYPE``, ``HG_HOOKNAME`` and ``HGPLAIN``; a non-zero
exit refuses the bundle as a failing ``prelistkeys`` refuses a ``listkeys``.

Not run: ``python:`` hooks (hgwire does not run Mercurial).  So that no check an operator relies on
is skipped, a push to a repository that sets a ``python:`` gate is refused with a sentence naming it,
and so is a pull that sets a ``python:`` ``preoutgoing``, and every command that lists keys (clones,
pulls, a push's discovery) where a ``python:`` ``prelistkeys`` is set.

Blocking (the caller is on ``gateway.threads.run_for_hooks``); each hook runs at most ``git_hooks.HOOK_TIMEOUT``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote

from backends.hg.keys import BOOLEANS
from backends.interfaces import HgRepository, Node
from gateway import git_hooks
from gateway.channel import peer_host
from gateway.logs import SafeLogger
from gateway.sd_notify import SYSTEMD_VARIABLES
from protocols.hg_commands import Listing
from protocols.hg_responses import OobError, Outgoing, Response, StreamResponse

log = SafeLogger()

RUN = ("pretxnopen", "prechangegroup", "pretxnchangegroup", "prepushkey", "pretxnclose-bookmark", "pretxnclose-phase",
       "pretxnclose", "changegroup", "incoming", "txnclose", "txnclose-bookmark", "txnclose-phase", "pushkey")
OUTGOING = ("preoutgoing", "outgoing")
"""The hooks around the changesets an answer sends (``changegroup.makestream``)."""
LISTKEYS = ("prelistkeys", "listkeys")
"""The hooks around each namespace an answer lists (``localrepo.listkeys``)."""
INLINE_BUNDLE = "pretransmit-inline-clone-bundle"
"""The hook before an inline clone bundle is sent (``get_cached_bundle_inline``)."""
ONE_NODE = ("incoming", "outgoing")
"""Hooks given ``HG_NODE`` only, no ``HG_NODE_LAST``."""
GATES = ("pretxnopen", "prechangegroup", "pretxnchangegroup", "prepushkey", "pretxnclose-bookmark", "pretxnclose-phase",
         "pretxnclose")
"""The gating hooks hgwire runs (a ``python:`` one cannot be: the push is refused)."""


class HookFailed(Exception):
    """A gating hook refused (or could not run): the message is hg's sentence for it."""


@dataclass(frozen=True, slots=True)
class HgHook:
    name: str
    """``changegroup.notify``: the hgrc name."""
    command: str
    plain: bool = True
    """``HGPLAIN=1`` (else empty): its ``<name>:run-with-plain`` setting, true unless set otherwise."""

    @property
    def kind(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(slots=True)
class HgHooks:
    """The hooks of one repository for one push, and what they wrote."""

    root: str
    hooks: Sequence[HgHook]
    url: str | None
    """``HG_URL``; None for a pull, whose hooks hg does not tell it."""
    txnid: str | None = field(default_factory=lambda: "TXN:" + secrets.token_hex(20))
    """``HG_TXNID``; None for a pull, which has no transaction."""
    output: list[bytes] = field(default_factory=list)
    user: str | None = None
    """The pushing user, told as ``REMOTE_USER`` (in UTF-8), as hgweb run as a CGI under a web
    server that checked the password tells its hooks (a pushlog reads it); None: not told."""

    def unsupported_gate(self) -> str | None:
        """Why a push must be refused because a gating hook cannot be run, or None."""
        return self._unrunnable("pushes", lambda hook: hook.kind in GATES and _is_python(hook))

    def unsupported_pull_gate(self) -> str | None:
        """Why an answer must be refused because a ``python:`` ``preoutgoing``, ``prelistkeys`` or
        ``pretransmit-inline-clone-bundle`` hook cannot be run, or None (``pull_hooks_of`` keeps only
        the hooks the answer runs)."""
        for gate, what in (("preoutgoing", "pulls"), ("prelistkeys", "clones, pulls and pushes"),
                           (INLINE_BUNDLE, "inline clone bundles")):
            reason = self._unrunnable(what, partial(_is_python_of, gate))
            if reason is not None:
                return reason
        return None

    def _unrunnable(self, what: str, cannot_run: Callable[[HgHook], bool]) -> str | None:
        for hook in self.hooks:
            if cannot_run(hook):
                return (f"the repository's {hook.name} hook cannot be run by this server, so {what} are "
                        "refused; ask the server's operator")
        return None

    def has(self, kind: str) -> bool:
        return any(hook.kind == kind for hook in self.hooks)

    def run(self, kind: str, throw: bool, nodes: Sequence[Node] = (), pending: str | None = None,
            extra: Mapping[str, str] | None = None, bare: bool = False) -> None:
        """Run every hook of ``kind``; with ``throw`` the first failure raises ``HookFailed``.
        ``bare``: told only the transaction (``pretxnopen``: hg gives it no source, no URL)."""
        for hook in self.hooks:
            if hook.kind != kind:
                continue
            if _is_python(hook):
                log.warn("{hook} in {root} is a python hook, which hgwire does not run", hook=hook.name,
                         root=self.root)
                continue
            status = self._run(hook, nodes, pending, extra, bare)
            if status == 0:
                continue
            sentence = (f"{hook.name} hook timed out after {git_hooks.HOOK_TIMEOUT:g} s" if status is None
                        else f"{hook.name} hook exited with status {status}" if status > 0
                        else f"{hook.name} hook killed")
            if throw:
                raise HookFailed(sentence)
            self.output.append(f"warning: {sentence}\n".encode())

    def take_output(self) -> bytes:
        out, self.output = b"".join(self.output), []
        return out

    def _run(self, hook: HgHook, nodes: Sequence[Node], pending: str | None = None,
             extra: Mapping[str, str] | None = None, bare: bool = False) -> int | None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HG_") and k != "REMOTE_USER" and k not in SYSTEMD_VARIABLES}
        env.update(HG_HOOKTYPE=hook.kind, HG_HOOKNAME=hook.name, HGPLAIN="1" if hook.plain else "")
        if self.user:
            env["REMOTE_USER"] = os.fsdecode(self.user.encode("utf-8"))  # UTF-8 whatever the locale
        if not bare:
            env["HG_SOURCE"] = "serve"
            if self.url is not None:
                env["HG_URL"] = self.url
        if self.txnid is not None:
            env.update(HG_TXNID=self.txnid, HG_TXNNAME="serve")
        if nodes:
            env["HG_NODE"] = nodes[0].hex()
            if hook.kind not in ONE_NODE:
                env["HG_NODE_LAST"] = nodes[-1].hex()
        if pending is not None:
            env["HG_PENDING"] = pending
        env.update({f"HG_{key.upper()}": value for key, value in (extra or {}).items()})
        try:
            status, out = git_hooks.run_hook_process(hook.command, self.root, env, None)
        except OSError as exc:
            self.output.append(f"{hook.name} hook could not start: {exc.strerror or exc}\n".encode())
            return 127
        self._keep(out)
        if status is None:
            log.error("hook {hook} in {root} timed out", hook=hook.name, root=self.root)
        return status

    def _keep(self, data: bytes) -> None:
        kept = sum(map(len, self.output))
        if data and kept < git_hooks.MAX_OUTPUT:
            self.output.append(data[: git_hooks.MAX_OUTPUT - kept])


def _is_python(hook: HgHook) -> bool:
    return hook.command.lstrip().startswith("python:")


def _is_python_of(kind: str, hook: HgHook) -> bool:
    return hook.kind == kind and _is_python(hook)


def _configured(repo: HgRepository, kinds: Sequence[str]) -> tuple[str, list[HgHook]] | None:
    """The directory hooks run in and the repository's hooks of ``kinds`` in Mercurial's order,
    or None when it has none (or keeps no hgrc: a memory repository)."""
    config = getattr(repo, "hook_config", None)
    found = config() if config is not None else None
    if found is None:
        return None
    root, settings = found
    priorities: dict[bytes, int] = {}
    for name, value in settings:
        if name.startswith(b"priority."):
            try:
                priorities[name[len(b"priority."):]] = int(value)
            except ValueError:
                continue
    # ``name:option`` (``run-with-plain``) is a hook's setting, not a hook (hook._hookitems)
    options = {name: value.strip() for name, value in settings if b":" in name}
    listed = [(name, value) for name, value in settings
              if not name.startswith((b"priority.", b"tonative.")) and b":" not in name and value.strip()]
    ordered = sorted(enumerate(listed), key=lambda item: (-priorities.get(item[1][0], 0), item[0]))
    hooks = [HgHook(name.decode("utf-8", "replace"), value.decode("utf-8", "surrogateescape"),
                    _run_with_plain(options.get(name + b":run-with-plain")))
             for _, (name, value) in ordered
             if name.split(b".", 1)[0].decode("ascii", "replace") in kinds]
    return (root, hooks) if hooks else None


def _run_with_plain(value: bytes | None) -> bool:
    """hg's ``<name>:run-with-plain``: true by default; ``auto`` follows the server's own ``HGPLAIN``
    (as ``ui.plain()``); a value that is no boolean keeps the default."""
    if value is None:
        return True
    if value.lower() == b"auto":
        return "HGPLAIN" in os.environ or "HGPLAINEXCEPT" in os.environ
    parsed = BOOLEANS.get(value.lower())
    return True if parsed is None else parsed


def hooks_of(repo: HgRepository, scheme: str, peer: str, user: str | None) -> HgHooks | None:
    """The repository's push hooks, or None when it has none (or keeps no hgrc: a memory repository)."""
    found = _configured(repo, RUN)
    if found is None:
        return None
    root, hooks = found
    host = peer_host(peer) or peer
    url = f"remote:{scheme}:{quote(host)}" + (f":{quote(user or '')}" if scheme != "ssh" else "")  # as hg serve's
    return HgHooks(root, hooks, url, user=user)


@dataclass(slots=True)
class PullHooks:
    """The pull hooks of one command's answer: ``pretransmit-inline-clone-bundle`` before the inline
    clone bundle it sends, ``preoutgoing`` and ``outgoing`` around the changesets it sends,
    ``prelistkeys`` and ``listkeys`` around each namespace it lists.

    Run per request, around the answer: an answer shared with an identical
    concurrent clone, or kept by ``[clone_cache]``, still runs them for each
    client.  Blocking: call them on ``gateway.threads.run_for_hooks``.
    """

    hooks: HgHooks
    repo: HgRepository
    outgoing: Outgoing | None
    listing: Listing

    @property
    def bundle2(self) -> bool:
        """The answer is a bundle2: a refusal is an ``error:abort`` part (``hg_commands.refused_pull``)."""
        return self.outgoing.bundle2 if self.outgoing is not None else self.listing.bundle2

    def before(self) -> str | None:
        """Before the answer, in hg's order: ``pretransmit-inline-clone-bundle`` (a command of its own),
        ``preoutgoing`` (the changegroup part is made first), then
        ``prelistkeys`` and ``listkeys`` for each namespace in turn (``HG_VALUES`` what it lists; a
        failing ``listkeys`` is a warning).  Why the answer is refused (hg's sentence), or None."""
        reason = self.hooks.unsupported_pull_gate()
        if reason is not None:
            return reason
        try:
            if self.listing.inline_bundle is not None:  # told only the path (hg's hook.hook call)
                told = {"clonebundlepath": env_text(self.listing.inline_bundle)}
                self.hooks.run(INLINE_BUNDLE, throw=True, bare=True, extra=told)
            if self.outgoing is not None:
                self.hooks.run("preoutgoing", throw=True)
            for namespace in self.listing.namespaces:  # hg tells them no source and no URL
                told = {"namespace": env_text(namespace)}
                self.hooks.run("prelistkeys", throw=True, bare=True, extra=told)
                if self.hooks.has("listkeys"):
                    told["values"] = format_values(self.repo.listkeys(namespace))
                    self.hooks.run("listkeys", throw=False, bare=True, extra=told)
        except HookFailed as exc:
            return str(exc)
        return None

    def after(self) -> None:
        """Once the answer is sent: ``outgoing``; a failure is a warning (hg's ``throw=False``)."""
        if self.outgoing is not None:
            self.hooks.run("outgoing", throw=False, nodes=[self.outgoing.first])

    def take_output(self) -> bytes:
        return self.hooks.take_output()


def pull_hooks_of(repo: HgRepository, response: Response, listing: Listing) -> PullHooks | None:
    """The hooks to run around ``response``: None unless it sends changesets or lists keys and the
    repository has hooks for that.  Blocking (reads the hgrc)."""
    outgoing = response.outgoing if isinstance(response, StreamResponse) else None
    kinds = ((OUTGOING if outgoing is not None else ()) + (LISTKEYS if listing.namespaces else ())
             + ((INLINE_BUNDLE,) if listing.inline_bundle is not None else ()))
    if not kinds or isinstance(response, OobError):
        return None
    found = _configured(repo, kinds)
    if found is None:
        return None
    root, hooks = found
    return PullHooks(HgHooks(root, hooks, url=None, txnid=None), repo, outgoing, listing)


def format_values(values: Mapping[bytes, bytes]) -> str:
    """``HG_VALUES`` as hg writes a dict into a hook's environment (``stringutil.pprint``): sorted,
    ``{'key': 'value', ...}``, each string escaped as Python escapes bytes, quotes included."""
    return "{" + ", ".join(f"'{_escaped(k)}': '{_escaped(v)}'" for k, v in sorted(values.items())) + "}"


_ESCAPES = {0x5C: "\\\\", 0x27: "\\'", 0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escaped(data: bytes) -> str:
    return "".join(_ESCAPES.get(b) or (chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}") for b in data)


def env_text(raw: bytes) -> str:
    """A client's value as a hook's environment carries it: UTF-8 (undecodable bytes kept as they
    are), a NUL as ``\\x00`` (an environment cannot hold one)."""
    return raw.replace(b"\0", b"\\x00").decode("utf-8", "surrogateescape")
