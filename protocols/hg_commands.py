"""The one table of Mercurial wire protocol v1 commands, shared by SSH and HTTP.

Spec: ``mercurial/helptext/internals/wireprotocol.txt`` ("Commands").  Each
row gives the name, the argument spec (``b"nodes *"``: named arguments, ``*``
collects the rest), the permission and the handler.  A command that does not
declare a permission needs ``push`` (fail closed, CVE-2018-1000132), and
``batch`` checks the permission of every sub-command.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from backends.interfaces import (
    NULL_NODE,
    AmbiguousIdentifier,
    FilteredRevision,
    HgRepository,
    LargefileRefused,
    Largefiles,
    LockWait,
    Node,
)
from protocols import client_gone, hg_exchange, hg_wire
from protocols.bundle2 import DEFAULT_LIMITS as DEFAULT_BUNDLE2_LIMITS
from protocols.bundle2 import Bundle2Limits
from protocols.changegroup import ChangegroupLimits
from protocols.errors import (
    ClientGone,
    HgwireError,
    LimitExceeded,
    ProtocolError,
    StorageError,
    UnsupportedFeature,
)
from protocols.hg_responses import BytesResponse, OobError, PushResponse, Response, StreamResponse

Permission = Literal["pull", "push"]
PULL: Permission = "pull"
PUSH: Permission = "push"
STAR = b"*"


class Transport(enum.Enum):
    """Which transport runs a command: a few replies differ (``wireprotoserver.py``)."""

    SSH = "ssh"
    HTTP = "http"


@dataclass(frozen=True, slots=True)
class Args:
    """Bound arguments: the declared ones by name, plus the ``*`` dict of the others."""

    named: Mapping[bytes, bytes]
    extra: Mapping[bytes, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What a handler may know about the connection.

    ``check_permission`` raises ``PermissionDenied`` (the transport's authorizer).
    ``payload`` is the pushed bundle for ``unbundle``, read in the worker thread.
    ``transport_caps`` are the capabilities only this transport adds.
    """

    transport: Transport
    check_permission: Callable[[Permission], None]
    transport_caps: tuple[bytes, ...] = ()
    payload: Iterator[bytes] | None = None
    bundle2_limits: Bundle2Limits = DEFAULT_BUNDLE2_LIMITS
    """Bounds of a pushed bundle2 (the server's ``[limits]``)."""
    changegroup_limits: ChangegroupLimits = ChangegroupLimits()
    """Bounds of a pushed changegroup (the server's ``[limits]``)."""
    lock_wait: LockWait | None = None
    """How a push waits for the repository's lock (the server's ``[limits] hg_lock_timeout``)."""
    gone: Callable[[], bool] = lambda: False
    """Whether the client has closed the connection (asked from the worker between the commands of
    a batch that writes nothing, and in a read command's long loops: ``protocols.client_gone``)."""


Handler = Callable[[HgRepository, Args, CommandContext], Response]


@dataclass(frozen=True, slots=True)
class Command:
    """One row of the command table."""

    name: bytes
    args: tuple[bytes, ...]
    permission: Permission
    handler: Handler
    takes_payload: bool = False
    batchable: bool = False
    payload_name: str = "push"
    """What the payload is called to a person (a connection cut in its middle is logged so)."""

    @property
    def named_args(self) -> tuple[bytes, ...]:
        return tuple(a for a in self.args if a != STAR)

    @property
    def takes_extra(self) -> bool:
        return STAR in self.args


COMMANDS: dict[bytes, Command] = {}


def command(
    name: bytes,
    spec: bytes = b"",
    permission: Permission = PUSH,
    takes_payload: bool = False,
    batchable: bool = False,
    payload_name: str = "push",
) -> Callable[[Handler], Handler]:
    """Declare a table row; the default permission is ``push`` so a forgotten one fails closed."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, tuple(spec.split()), permission, handler, takes_payload, batchable,
                                 payload_name)
        return handler

    return register


def bind_args(cmd: Command, flat: Mapping[bytes, bytes]) -> Args:
    """Split flat arguments (HTTP, batch) by the spec; a missing one aborts, one the command does
    not take is dropped, as hg's server drops it (a newer client may send more)."""
    named = {k: v for k, v in flat.items() if k in cmd.named_args}
    extra = {k: v for k, v in flat.items() if k not in cmd.named_args} if cmd.takes_extra else {}
    missing = [a for a in cmd.named_args if a not in named]
    if missing:
        raise ProtocolError(
            f"missing argument {missing[0].decode('utf-8', 'replace')} for {cmd.name.decode('utf-8', 'replace')}"
        )
    return Args(named, extra)


def dispatch(repo: HgRepository, name: bytes, args: Args, ctx: CommandContext) -> Response:
    """Run one command: unknown ones get the empty string, as ``_runsshserver`` answers."""
    cmd = COMMANDS.get(name)
    if cmd is None:
        return BytesResponse(b"")
    ctx.check_permission(cmd.permission)
    if cmd.permission != PULL or cmd.takes_payload:  # a write finishes or rolls back, as hg's do
        return cmd.handler(repo, args, ctx)
    with client_gone.watching(ctx.gone):  # a read's long loops stop once nobody waits for it
        return cmd.handler(repo, args, ctx)


def capabilities_string(repo: HgRepository, ctx: CommandContext) -> bytes:
    """The capability string of this repository over this transport."""
    prefers = getattr(repo, "stream_preferred", None)  # optional: a backend may not have it
    caps = ctx.transport_caps + (NARROW_CAP,)
    if clonebundles_manifest(repo) is not None:
        caps += CLONE_BUNDLES_CAPS
    if largefiles_of(repo) is not None:
        caps += (LARGEFILES_CAP,)
    lfs = getattr(repo, "lfs", None)  # optional: hg's lfs extension, where the repository serves it
    if lfs is not None and lfs() is not None:
        required = getattr(repo, "lfs_required", None)
        caps += (b"lfs", b"lfs-serve") if required is not None and required() else (b"lfs",)
    topics = getattr(repo, "topic_publish_mode", None)  # optional: hg-evolve's topics, where served
    mode = topics() if topics is not None else None
    if mode is not None:
        caps += (b"topics", b"ext-topics-publish=" + mode, b"_exttopics_heads")
    discovery = getattr(repo, "obsmarker_discovery_caps", None)  # optional: hg-evolve's marker discovery
    if discovery is not None:
        caps += discovery()
    bundle2 = tuple((key, tuple(values)) for key, values in hg_exchange.server_bundle2_caps(repo).items())
    return _capabilities_text(bundle2, frozenset(repo.requirements()), caps, repo.stream_clone_allowed(),
                              bool(prefers()) if prefers is not None else False)


@functools.lru_cache(maxsize=64)
def _capabilities_text(bundle2: tuple[tuple[bytes, tuple[bytes, ...]], ...], requirements: frozenset[str],
                       caps: tuple[bytes, ...], stream: bool, stream_preferred: bool) -> bytes:
    """``hg_wire.format_capabilities`` of what it depends on, kept: every poll, pull and push asks
    for the capabilities first, and the same few strings were encoded, quoted and sorted again
    each time (a tenth of a millisecond of a poll's 4.8 of server CPU)."""
    return hg_wire.format_capabilities(dict(bundle2), requirements, caps, stream, stream_preferred)


NARROW_CAP = b"exp-narrow-1"
"""Narrow clones are served (``wireprototypes.NARROWCAP``): what hg serve advertises with its
``narrow`` extension on; ellipsis (shallow) ones, ``exp-ellipses-*``, are not."""

CLONE_BUNDLES_CAPS = (b"clonebundles", b"clonebundles_manifest")
"""Advertised while the repository has a clone bundles manifest, as hg's ``clonebundles`` extension."""


def clonebundles_manifest(repo: HgRepository) -> bytes | None:
    """The repository's clone bundles manifest (``HgRepo.clonebundles_manifest``), None without one."""
    manifest = getattr(repo, "clonebundles_manifest", None)  # optional: a backend may not have it
    return manifest() if manifest is not None else None


LARGEFILES_CAP = b"largefiles=serve"
"""Advertised where the repository serves hg's ``largefiles`` extension (``hgext/largefiles/proto.py``)."""
LARGEFILES_REQUIRED = (b"\nThis repository uses the largefiles extension.\n\nPlease enable it in your Mercurial "
                       b"config file.\n")
"""What a client without the extension is told when it asks a largefiles repository for its heads
(hg's words; a client with it asks ``lheads`` instead)."""


def largefiles_of(repo: HgRepository) -> Largefiles | None:
    """The repository's largefiles store (``HgRepo.largefiles``), None where it serves none."""
    store = getattr(repo, "largefiles", None)  # optional: a backend may not have it
    return store() if store is not None else None


def _largefiles_required(repo: HgRepository) -> bool:
    required = getattr(repo, "largefiles_required", None)
    return bool(required()) if required is not None else False


# ------------------------------------------------------------------ handlers


@command(b"hello", permission=PULL)
def _hello(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    return BytesResponse(b"capabilities: " + capabilities_string(repo, ctx) + b"\n")


@command(b"capabilities", permission=PULL)
def _capabilities(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    return BytesResponse(capabilities_string(repo, ctx))


@command(b"between", b"pairs", permission=PULL, batchable=True)
def _between(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """Answer the null pair (hg 7 sends only that one, in its SSH handshake) with an empty line; any
    other pair is the legacy tree discovery of Mercurial before 1.9, refused as ``branches`` is
    (an empty answer would be wrong data).
    """
    pairs = hg_wire.decode_pairs(args.named[b"pairs"])
    if any(pair != (NULL_NODE, NULL_NODE) for pair in pairs):
        raise UnsupportedFeature("the legacy 'between' command is answered for the null pair only; "
                                 "use Mercurial 1.9 or later")
    return BytesResponse(hg_wire.format_between([] for _ in pairs))


@command(b"branches", b"nodes", permission=PULL, batchable=True)
def _branches(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    raise UnsupportedFeature("the legacy 'branches' command is not supported; use Mercurial 1.9 or later")


@command(b"heads", permission=PULL, batchable=True)
def _heads(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    if _largefiles_required(repo) and largefiles_of(repo) is not None:
        return OobError(LARGEFILES_REQUIRED)
    gated = getattr(repo, "gates_topic_changesets", None)  # optional: hg-evolve's topics, where served
    without = getattr(repo, "heads_without_topics", None)
    if gated is not None and without is not None and gated():
        return BytesResponse(hg_wire.format_heads(without() or [NULL_NODE]))
    return BytesResponse(hg_wire.format_heads(hg_exchange.wire_heads(repo)))


@command(b"_exttopics_heads", permission=PULL, batchable=True)
def _exttopics_heads(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """hg-evolve's ``heads`` for a client with the topic extension: every head, also where
    ``topic.server-gate-topic-changesets`` hides the topics' from ``heads`` (unknown, as ``lheads``,
    where topics are not served)."""
    serves = getattr(repo, "serves_topics", None)
    if serves is None or not serves():
        return BytesResponse(b"")
    return BytesResponse(hg_wire.format_heads(hg_exchange.wire_heads(repo)))


@command(b"lheads", permission=PULL, batchable=True)
def _lheads(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """``heads`` for a client with the largefiles extension (unknown where no largefiles are served)."""
    if largefiles_of(repo) is None:
        return BytesResponse(b"")
    return BytesResponse(hg_wire.format_heads(hg_exchange.wire_heads(repo)))


@command(b"statlfile", b"sha", permission=PULL, batchable=True)
def _statlfile(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """``0`` when the largefile is here, ``2`` when it is not; ``1`` (hg's word for a damaged one)
    only where a ``getlfile`` found it corrupt and it is unchanged since: it is not hashed here, as
    hg serve does not hash it (a client's ``hg verify --large`` then says "contents differ")."""
    store = largefiles_of(repo)
    if store is None:
        return BytesResponse(b"")
    sha = args.named[b"sha"]
    if not store.has(sha):
        return BytesResponse(b"2\n")
    known_corrupt = getattr(store, "known_corrupt", None)  # (optional: a backend's own store may not check)
    return BytesResponse(b"1\n" if known_corrupt is not None and known_corrupt(sha) else b"0\n")


@command(b"getlfile", b"sha", permission=PULL)
def _getlfile(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """The largefile: its length on a line, then its bytes (``streamreslegacy``).

    One that is not here (gone since the client's ``statlfile``) gets the extension's sentence,
    which aborts hg serve's command: over SSH the session ends with it (the client shows
    ``remote: abort: …``), over HTTP it is a 500 that says it.  One whose bytes no longer hash to
    its name (the store's ``open_checked``) is refused so too, before its first byte, where hg
    serve sends it as it is and the client finds it corrupt.
    """
    store = largefiles_of(repo)
    sha = args.named[b"sha"]
    try:
        found = None if store is None else getattr(store, "open_checked", store.open)(sha)
    except StorageError as exc:  # a corrupt one (the gateway logs where it lies)
        if ctx.transport is Transport.SSH:
            return StreamResponse(_Aborting(exc), prefer_uncompressed=True)
        raise
    if found is None:
        message = f"requested largefile {sha[:80].decode('ascii', 'replace')} not present in cache"
        if ctx.transport is Transport.SSH:
            return StreamResponse(_Aborting(message), prefer_uncompressed=True)
        raise HgwireError(message)
    size, chunks = found
    return StreamResponse(_Prefixed(b"%d\n" % size, chunks), prefer_uncompressed=True)


@command(b"putlfile", b"sha", permission=PUSH, takes_payload=True, payload_name="largefile upload")
def _putlfile(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """Keep an uploaded largefile once it hashes to its name: ``0``, else ``1`` with hg's warning."""
    store = largefiles_of(repo)
    sha = args.named[b"sha"]
    if ctx.payload is None:
        raise ProtocolError("putlfile needs the file's bytes")
    if store is None:
        return _lfile_refused("largefiles: this repository does not serve largefiles; ask its operator to "
                              "enable the extension in its hgrc")
    try:
        store.put(sha, ctx.payload)
    except LargefileRefused as exc:
        return _lfile_refused(f"largefiles: failed to put {sha[:80].decode('ascii', 'replace')} into store: {exc}")
    return PushResponse(0)


def _lfile_refused(message: str) -> PushResponse:
    """``putlfile``'s refusal: ``1`` and hg's warning line, ``message`` kept for the server's log (a
    refused upload is logged "refused: …", not "pushed")."""
    return PushResponse(1, message.encode("utf-8", "replace") + b"\n", refused=message)


@command(b"known", b"nodes *", permission=PULL, batchable=True)
def _known(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    nodes = hg_wire.decode_nodes(args.named[b"nodes"])
    return BytesResponse(hg_wire.format_known(hg_exchange.known_nodes(repo, nodes)))


MAX_STABLE_RANGES = 1000
"""The most stable ranges one ``evoext_obshashrange_v1`` may ask about (hg-evolve's client asks
100, then 200 at a time; an 8 MiB argument would carry 170,000)."""


@command(b"evoext_obshashrange_v1", b"ranges", permission=PULL, batchable=True)
def _evoext_obshashrange_v1(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """hg-evolve's discovery of obsolescence markers: the hash of the markers relevant to each
    stable range asked (a head node and the count of its stable-sorted ancestors left out, each
    ``>I`` after the node, hex, space-separated), hex, in the order asked (unknown where the
    repository does not serve the discovery, as an unknown command)."""
    hashes = getattr(repo, "obsmarker_range_hashes", None)
    discovery = getattr(repo, "obsmarker_discovery_caps", None)
    if hashes is None or discovery is None or b"_evoext_obshashrange_v1" not in discovery():
        return BytesResponse(b"")
    ranges = []
    items = hg_wire.decode_list(args.named[b"ranges"])
    if len(items) > MAX_STABLE_RANGES:
        raise LimitExceeded(f"evoext_obshashrange_v1 answers at most {MAX_STABLE_RANGES} ranges at a time "
                            "(hg-evolve's discovery asks 200); ask about fewer in each request")
    for item in items:
        if len(item) != 24:
            raise ProtocolError("a stable range is a 20-byte node and a 4-byte index")
        ranges.append((Node(item[:20]), int.from_bytes(item[20:], "big")))
    return BytesResponse(hg_wire.encode_nodes(Node(h) for h in hashes(ranges)))


@command(b"debugwireargs", b"one two *", permission=PULL)
def _debugwireargs(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """``hg debugwireargs URL ONE TWO [--three X] [--four Y]``: the arguments as the server got
    them, ``None`` for those not sent (``five`` never is), as hg's own answer; others are ignored."""
    values = [args.named[b"one"], args.named[b"two"],
              *(args.extra.get(name, b"None") for name in (b"three", b"four")), b"None"]
    return BytesResponse(b" ".join(values))


@command(b"branchmap", permission=PULL, batchable=True)
def _branchmap(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    return BytesResponse(hg_wire.format_branchmap(hg_exchange.served_branchmap(repo)))


@command(b"lookup", b"key", permission=PULL, batchable=True)
def _lookup(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    key = args.named[b"key"]
    try:
        return BytesResponse(hg_wire.format_lookup(repo.lookup(key)))
    except AmbiguousIdentifier:  # hg's own words, from its changelog's lookup
        return BytesResponse(hg_wire.format_lookup(None, b"00changelog@" + key + b": ambiguous identifier"))
    except FilteredRevision:
        return BytesResponse(hg_wire.format_lookup(None, b"filtered revision '" + key + b"' (not in 'served' subset)"))
    except KeyError:
        return BytesResponse(hg_wire.format_lookup(None, b"unknown revision '" + key + b"'"))


@command(b"listkeys", b"namespace", permission=PULL, batchable=True)
def _listkeys(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    return BytesResponse(hg_wire.format_listkeys(repo.listkeys(args.named[b"namespace"])))


@command(b"pushkey", b"namespace key old new", permission=PUSH, batchable=True)
def _pushkey(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    a = args.named
    ok, output = hg_exchange.pushkey_reported(repo, a[b"namespace"], a[b"key"], a[b"old"], a[b"new"])
    if ctx.transport is Transport.HTTP:  # after the result, as hg's client reads it ("remote: " lines)
        return BytesResponse(hg_wire.format_pushkey(ok, output))
    return BytesResponse(hg_wire.format_pushkey(ok), output=output)  # over SSH: its stderr


@command(b"protocaps", b"caps", permission=PULL)
def _protocaps(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """Acknowledge; the SSH connection state (``SshV1Server.protocaps``) keeps the caps."""
    return BytesResponse(b"OK")


@command(b"clonebundles", permission=PULL)
def _clonebundles(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    return BytesResponse(hg_wire.format_clonebundles(clonebundles_manifest(repo) or b"", legacy=True))


@command(b"clonebundles_manifest", b"*", permission=PULL)
def _clonebundles_manifest(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    size = getattr(repo, "inline_clone_bundle_size", None)  # optional: a backend may keep no bundles
    inline = (lambda path: size(path) is not None) if size is not None else None
    return BytesResponse(hg_wire.format_clonebundles(clonebundles_manifest(repo) or b"", legacy=False,
                                                     inline=inline))


@command(b"get_cached_bundle_inline", b"path", permission=PULL)
def _get_cached_bundle_inline(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """A clone bundle of the repository's own (``peer-bundle-cache://<path>`` in the manifest), as
    hg's ``clonebundles`` extension sends it: its length as a uvarint, then its bytes, uncompressed.

    One that is not there (or whose path would leave the bundle root) gets hg serve's sentence:
    over SSH the session ends with it, as hg serve's does (a stream answer has no error framing);
    over HTTP it is hg's out-of-band error, where hg serve fails with 500.
    """
    path = args.named[b"path"]
    opener = getattr(repo, "open_inline_clone_bundle", None)  # optional: a backend may keep no bundles
    bundle = opener(path) if opener is not None else None
    if bundle is None:
        message = f"clonebundle {path.decode('utf-8', 'replace')} does not exist"
        if ctx.transport is Transport.HTTP:
            return OobError(message.encode("utf-8", "replace") + b"\n")
        return StreamResponse(_Aborting(message), prefer_uncompressed=True)
    return StreamResponse(_Prefixed(hg_exchange.uvarint(bundle.size), bundle), prefer_uncompressed=True)


class _Prefixed:
    """``head``, then what ``rest`` yields; ``close`` closes ``rest`` (an open file) even unread."""

    def __init__(self, head: bytes, rest: Iterator[bytes]) -> None:
        self._head: bytes | None = head
        self._rest = rest

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._head is not None:
            head, self._head = self._head, None
            return head
        return next(self._rest)

    def close(self) -> None:
        close = getattr(self._rest, "close", None)
        if close is not None:
            close()


class _Aborting:
    """A stream answer that ends the session with hg's abort before its first byte (SSH): the
    message, or the error itself."""

    def __init__(self, message: str | HgwireError) -> None:
        self._error = message if isinstance(message, HgwireError) else HgwireError(message)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        raise self._error


@command(b"getbundle", b"*", permission=PULL)
def _getbundle(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    request = hg_exchange.parse_getbundle_args(args.extra)
    share_key = hg_exchange.clone_share_key(repo, args.extra, request)  # before the state is read
    chunks, outgoing = hg_exchange.getbundle(repo, request)
    return StreamResponse(chunks, prefer_uncompressed=request.stream, share_key=share_key,
                          compressible_bundle=not request.stream, outgoing=outgoing)


@command(b"narrow_widen", b"oldincludes oldexcludes newincludes newexcludes commonheads cgversion known ellipses",
         permission=PULL)
def _narrow_widen(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """What a narrow clone lacks for the files it now includes (``hg tracked --addinclude``)."""
    return StreamResponse(hg_exchange.narrow_widen(repo, args.named))


@dataclass(frozen=True, slots=True)
class Listing:
    """What a command's answer lists with ``localrepo.listkeys``, which runs the repository's
    ``prelistkeys`` hook before and its ``listkeys`` hook after each namespace, and the inline clone
    bundle it sends, which its ``pretransmit-inline-clone-bundle`` hook is told of first."""

    namespaces: tuple[bytes, ...] = ()
    bundle2: bool = False
    """The answer is a bundle2 (a getbundle of a bundle2 client): a refusal is an ``error:abort`` part."""
    inline_bundle: bytes | None = None
    """The path of the clone bundle the answer sends (``get_cached_bundle_inline``), which hg's
    ``pretransmit-inline-clone-bundle`` hook is told first."""


def listing_of(name: bytes, args: Args) -> Listing:
    """The namespaces ``listkeys``, a batch's ``listkeys`` calls or a bundle2 getbundle's
    ``listkeys`` argument list, in order, or the clone bundle ``get_cached_bundle_inline`` sends;
    an argument the command itself refuses lists nothing."""
    try:
        if name == b"listkeys":
            return Listing((args.named[b"namespace"],))
        if name == b"get_cached_bundle_inline":
            return Listing(inline_bundle=args.named[b"path"])
        if name == b"batch":
            listed = [bind_args(COMMANDS[b"listkeys"], flat).named[b"namespace"]
                      for sub, flat in hg_wire.parse_batch(args.named[b"cmds"]) if sub == b"listkeys"]
            return Listing(tuple(listed))
        if name == b"getbundle":
            request = hg_exchange.parse_getbundle_args(args.extra)
            if request.bundle2_caps() is not None:
                return Listing(request.listkeys, bundle2=True)
    except (HgwireError, KeyError):
        pass
    return Listing()


def refused_pull(bundle2: bool, message: str, transport: Transport) -> Response:
    """The answer to a command that a ``preoutgoing``, ``prelistkeys`` or
    ``pretransmit-inline-clone-bundle`` hook refused, as hg serve
    gives it: an ``error:abort`` part for a bundle2 getbundle (``wireprotov1server.getbundle``), else
    HTTP's out-of-band error (where hg serve fails with 500); hg serve over SSH aborts the session
    (``HgwireError``)."""
    if bundle2:
        return StreamResponse(hg_exchange.abort_bundle(message), prefer_uncompressed=True)
    if transport is Transport.HTTP:
        return OobError(message.encode("utf-8", "replace") + b"\n")
    raise HgwireError(message)


@command(b"stream_out", permission=PULL)
def _stream_out(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    return StreamResponse(hg_exchange.stream_out_v1(repo), prefer_uncompressed=True)


@command(b"changegroup", b"roots", permission=PULL)
def _changegroup(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    raise UnsupportedFeature("the legacy 'changegroup' command is not supported; use Mercurial 1.9 or later")


@command(b"changegroupsubset", b"bases heads", permission=PULL)
def _changegroupsubset(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    raise UnsupportedFeature(
        "the legacy 'changegroupsubset' command is not supported; use Mercurial 1.9 or later"
    )


@command(b"unbundle", b"heads", permission=PUSH, takes_payload=True)  # (a narrow clone's patterns: dropped)
def _unbundle(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    if ctx.payload is None:
        raise ProtocolError("unbundle needs a pushed bundle")
    # exchange.unbundle: over HTTP the server output travels in bundle2 ``output`` parts.
    return hg_exchange.unbundle(
        repo, args.named[b"heads"], ctx.payload, capture_output=ctx.transport is Transport.HTTP,
        limits=ctx.bundle2_limits, cg_limits=ctx.changegroup_limits, wait=ctx.lock_wait,
        answer_failures=ctx.transport is Transport.SSH,  # HTTP's answer to a failure is its 500
    )


@command(b"batch", b"cmds *", permission=PULL)
def _batch(repo: HgRepository, args: Args, ctx: CommandContext) -> Response:
    """Run batched commands; each one's permission is checked (CVE-2018-1000132)."""
    results: list[bytes] = []
    output = []
    size = 0
    calls = hg_wire.parse_batch(args.named[b"cmds"])
    if sum(name == b"pushkey" for name, _ in calls) > hg_wire.MAX_BATCH_PUSHKEYS:
        raise LimitExceeded(f"a batch may hold at most {hg_wire.MAX_BATCH_PUSHKEYS} pushkey commands; "
                            "send them in several batches")
    writes = any(name == b"pushkey" for name, _ in calls)  # (finished as it started: never cut)
    for name, flat in calls:
        cmd = COMMANDS.get(name)
        if cmd is None or not cmd.batchable:
            raise ProtocolError(f"command {name.decode('ascii', 'replace')} cannot be batched")
        ctx.check_permission(cmd.permission)
        if not writes and ctx.gone():
            raise ClientGone(f"the client closed the connection; {len(calls) - len(results)} commands of its "
                             "batch were not run")
        try:
            with client_gone.watching(None if writes else ctx.gone):
                response = cmd.handler(repo, bind_args(cmd, flat), ctx)
        except UnsupportedFeature as exc:
            return OobError(exc.message.encode("utf-8"))
        if not isinstance(response, BytesResponse):
            return response
        escaped = hg_wire.escape_batch(response.data)
        size += len(escaped) + 1
        if size > hg_wire.MAX_BATCH_REPLY:
            raise LimitExceeded(f"the answers of this batch add up to more than {hg_wire.MAX_BATCH_REPLY >> 20} MiB; "
                                "send its commands in smaller batches")
        results.append(escaped)
        output.append(response.output)
    return BytesResponse(b";".join(results), output=b"".join(output))
