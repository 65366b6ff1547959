"""Typed contracts between the gateway and storage.

These are ``typing.Protocol`` classes: a backend conforms structurally and
needs no registration.  Backend methods block; the gateway calls them only
from its worker pool (``gateway.threads.run_blocking``).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NewType, Protocol, cast

from protocols.errors import StorageError

if TYPE_CHECKING:  # dulwich is a library of the git repositories, not of this leaf module
    from dulwich.object_store import BaseObjectStore

ObjectId = NewType("ObjectId", bytes)
"""A git object id as lowercase hex bytes: 40 of a SHA-1 repository, 64 of a SHA-256 one."""

Node = NewType("Node", bytes)
"""A Mercurial node id as 20 raw bytes."""

ZERO_ID = ObjectId(b"0" * 40)
NULL_NODE = Node(b"\0" * 20)


@dataclass(frozen=True, slots=True)
class LockWait:
    """How a write waits for its repository's locks while someone else holds them
    (``HgRepository.transaction``)."""

    timeout: float | None = None
    """Seconds in all before the write is refused (the server's ``[limits] hg_lock_timeout``);
    None: the backend's own default."""
    notify: Callable[[str], None] | None = None
    """Told, on the waiting thread, what hg tells a writer that waits (``lock.trylock``): ``waiting
    for lock on repository NAME held by process '123' on host 'HOST'`` once the wait passes a second,
    then ``got lock after N seconds``.  None: a backend says nothing."""


@dataclass(frozen=True, slots=True)
class ObjectFormat:
    """A git repository's object format (``extensions.objectformat``): the hash that names its
    objects and checks its packs and indexes.  Ids are hex in the protocol and in our ``ObjectId``,
    raw (``raw_len`` bytes) inside packs, trees and indexes."""

    name: str
    """As the protocol's ``object-format=`` names it: ``sha1`` or ``sha256``."""
    raw_len: int

    @property
    def hex_len(self) -> int:
        return 2 * self.raw_len

    @property
    def zero(self) -> ObjectId:
        """The id that means "none" (a ref created or deleted, an empty repository's advertisement)."""
        return ObjectId(b"0" * (2 * self.raw_len))

    def hasher(self, data: bytes = b"") -> hashlib._Hash:
        return hashlib.new(self.name, data)


SHA1_FORMAT = ObjectFormat("sha1", 20)
SHA256_FORMAT = ObjectFormat("sha256", 32)
OBJECT_FORMATS = {f.name: f for f in (SHA1_FORMAT, SHA256_FORMAT)}
HEX_ID_LENGTHS = frozenset(f.hex_len for f in OBJECT_FORMATS.values())
"""The lengths of an id in hex, of any format (a ref file's content is one of them)."""


def is_zero_id(oid: bytes) -> bool:
    """Whether ``oid`` is the zero id of its length (create/delete in a push command)."""
    return bool(oid) and not oid.strip(b"0")


def object_format_of(holder: object) -> ObjectFormat:
    """The ``object_format`` of a git repository of ours (optional on a backend) or of a dulwich
    repository or object store (dulwich's own format object, read by its name); SHA-1 without one."""
    found = getattr(holder, "object_format", None)
    if isinstance(found, ObjectFormat):
        return found
    return OBJECT_FORMATS.get(getattr(found, "name", "sha1"), SHA1_FORMAT)


class Kind(enum.Enum):
    """Which version control system a repository belongs to."""

    GIT = "git"
    HG = "hg"


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """One ``old new ref`` command of a git push; ZERO_ID means create/delete."""

    ref: bytes
    old: ObjectId
    new: ObjectId
    via: bytes | None = None
    """The symbolic ref the client named, when the gateway gives its command as its target's
    (``ref``): a backend keeping git's ref files locks and logs it too, as git's refs code does;
    another may ignore it."""


@dataclass(frozen=True, slots=True)
class RefResult:
    """Outcome of one ref update: ``reason`` is None for ``ok``, else the ``ng`` text.  ``reports``:
    where a ``proc-receive`` hook put an accepted command (report-status-v2 tells the client).
    ``target``: for a symbolic ref, the ref its update moved (the gateway sets it, for the log).
    ``cause``: for a refusal whose ``reason`` is git's word for a whole transaction (``atomic
    transaction failed``), what failed it at this ref (for the log; the client is told it as a
    ``remote: error:`` line)."""

    ref: bytes
    reason: str | None = None
    reports: tuple[RefReport, ...] = ()
    target: bytes | None = None
    cause: str | None = None


MISSING_OBJECTS = "missing necessary objects"
"""git's receive-pack's reason for an update whose history the repository does not hold whole."""
SHALLOW_UPDATE = "shallow update not allowed"
"""git's reason for that update when the push came from a shallow clone (its history stops short)."""

ATOMIC_FAILURE = "atomic push failure"
"""git's receive-pack's reason for the other refs of an atomic push one of whose refs is refused
(by the backend's checks or hgwire's own rules)."""


@dataclass(frozen=True, slots=True)
class RefReport:
    """One ``ok`` of a ``proc-receive`` hook: the ref it updated instead, its old and new ids, and
    whether that was a forced update (each None/False when the hook did not say)."""

    refname: bytes | None = None
    old: bytes | None = None
    new: bytes | None = None
    forced: bool = False


class PackedObject(NamedTuple):
    """One object of a pushed pack, as the gateway's scan of the stream found it.

    ``base``: the absolute offset of an OFS_DELTA's base, the 20-byte id of a
    REF_DELTA's base, else None.  ``sha``: the 20-byte id of a whole object
    (types 1-4), None for a delta.  ``crc32``: of the object's bytes in the
    pack, header included (what a version 2 index records).  ``text``: what the
    scan inflated, when it hands it on (a delta's data, a commit, tree or tag;
    never a blob), for the sink to use instead of inflating the object again.
    A named tuple: the scan makes one per object (a frozen dataclass cost three
    times as much to make); two records of one object compare equal whether or
    not they carry its text.
    """

    offset: int
    data_offset: int
    end: int
    type_num: int
    size: int
    base: int | bytes | None
    crc32: int
    sha: bytes | None
    text: bytes | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedObject) and self[:8] == other[:8]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self[:8])

    def __repr__(self) -> str:
        return (f"PackedObject(offset={self.offset}, data_offset={self.data_offset}, end={self.end}, "
                f"type_num={self.type_num}, size={self.size}, base={self.base!r}, crc32={self.crc32}, "
                f"sha={self.sha!r})")


class PackSink(Protocol):
    """Receives a pushed pack as a stream; nothing is visible before ``commit``.

    A sink may also hold ``warnings`` (a sequence of str): after ``commit``, the findings of its
    checks the repository lets through as warnings, in git's words (``object <id>: <msg-id>:
    <message>``); the client is told them as ``warning: …`` lines, as git's receive-pack does.
    """

    def write(self, data: bytes, objects: Sequence[PackedObject] | None = None) -> None:
        """The next bytes of the pack; ``objects``: those that end in them, as the gateway scanned them.

        The gateway has checked each object's structure, sizes and the pack's
        checksum; a sink may use the records (and skip a scan of its own) or
        ignore them.  None: the caller did not scan, the sink must.
        """
        ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class GitRepository(Protocol):
    """What upload-pack and receive-pack need from a git repository.

    Optional: ``daemon_export_ok() -> bool``, whether git daemon would serve it without
    ``--export-all`` (on disk: ``git-daemon-export-ok`` in its git directory); with ``[git]
    export_all = false`` git:// and HTTP serve only repositories that answer True.
    ``object_format``: an ``ObjectFormat`` (read with ``object_format_of``; SHA-1 when absent).
    ``close()``: called once the request that opened the repository is done with it (its session,
    its steps in the pool, the pack it streams: ``gateway.repo_use``), to let go of open files.
    ``repack_candidate(pack_limit, bitmap_objects)``, ``bitmap_candidate(min_objects)``,
    ``commit_graph_wanted()``, ``reverse_index_wanted()`` and ``pack_refs()``: what
    ``gateway.maintenance`` asks of a repository on disk.
    """

    kind: Literal[Kind.GIT]
    name: str

    @property
    def object_store(self) -> BaseObjectStore: ...

    def refs(self) -> Mapping[bytes, ObjectId]:
        """All refs (``HEAD`` included when it resolves) mapped to their object ids."""
        ...

    def symrefs(self) -> Mapping[bytes, bytes]:
        """Every symbolic ref, e.g. ``{b"HEAD": b"refs/heads/main"}`` (also when HEAD is unborn).

        A backend may also offer ``refs_and_symrefs()``: both from one read of its refs (used for
        every advertisement when present), ``symref_targets(names)``: the symbolic refs among
        ``names`` and the chains they start, reading those refs alone (used for a push's commands), and ``known_peeled()``: object id -> the object it
        peels to (itself for one known to be no annotated tag), for those it knows without
        reading them (the filesystem backend: what ``packed-refs`` records)."""
        ...

    def begin_pack(self) -> PackSink: ...

    def update_refs(self, updates: Sequence[RefUpdate], atomic: bool) -> Sequence[RefResult]:
        """Apply compare-and-swap ref updates; with ``atomic`` all or none.

        Called once per push after its pack (if any) was committed, also with no updates when
        every ref was refused before it: objects the push added that no ref names may go then.
        A repository with ``hook_location`` whose hooks exist is called with a keyword argument
        more, ``hooks`` (``ReceiveHooks``), to run around its updates: a wrapper passes it on."""
        ...


class LargefileRefused(ValueError):
    """An upload to a largefiles store refused (a wrong hash, too large): the message says why."""


class Largefiles(Protocol):
    """The store of hg's ``largefiles`` extension (an optional ``largefiles()`` of a Mercurial
    repository, None where it serves none): files kept apart from history, each under its SHA-1 in
    lower-case hex."""

    def has(self, sha: bytes) -> bool: ...

    def open(self, sha: bytes) -> tuple[int, Iterator[bytes]] | None:
        """Its size and bytes; None when it is not here."""
        ...

    def put(self, sha: bytes, data: Iterable[bytes]) -> None:
        """Keep an upload once its bytes hash to ``sha``; raises ``LargefileRefused`` (nothing kept)."""
        ...


class InlineBundleFile(Protocol):
    """An open inline clone bundle (an optional ``open_inline_clone_bundle(path)`` of a Mercurial
    repository, beside ``inline_clone_bundle_size(path)``): ``size``, then its bytes by iterating;
    ``close`` releases it unread."""

    size: int

    def __iter__(self) -> Iterator[bytes]: ...

    def __next__(self) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HookLocation:
    """Where a git repository's receive hooks are and run: ``hooks_dir``, the directory they run
    in (the git directory, as git's receive-pack runs them) and the git directory.

    ``object_env()``: environment variables a hook's git commands need, at the moment it runs, to
    read the push's objects (git's quarantine variables while they wait; none once they are in
    the store)."""

    hooks_dir: str
    cwd: str
    git_dir: str
    object_env: Callable[[], Mapping[str, str]] = dict
    store_blob: Callable[[bytes], ObjectId] | None = None
    """Write a blob into the repository's object store and return its id (a signed push's
    certificate, which git's receive-pack stores for the hooks); None: not offered."""


@dataclass(frozen=True, slots=True)
class PushCertSettings:
    """A git repository's settings for signed pushes (``git push --signed``), as git's receive-pack
    reads them: present only when ``receive.certNonceSeed`` is set.

    ``programs`` maps a signature format (``openpgp``, ``x509``, ``ssh``) to the program that
    checks it (``gpg.program`` / ``gpg.<format>.program``); relative file names are the git
    directory's (``cwd``), where they are read."""

    seed: bytes
    slop: int = 0
    """``receive.certNonceSlop``: seconds a stateless (HTTP) push's nonce may be off and still be OK."""
    programs: Mapping[str, str] = field(default_factory=dict)
    allowed_signers: str | None = None
    """``gpg.ssh.allowedSignersFile``; without it no SSH signature can be checked."""
    revocation_file: str | None = None
    """``gpg.ssh.revocationFile``."""
    cwd: str | None = None
    """Where the checking programs run (the git directory)."""


FILTER_NAMES = ("blob:none", "blob:limit", "tree", "sparse:oid", "object:type", "combine")
"""The partial-clone filters by the names git's ``uploadpackfilter.<filter>`` settings give them."""


@dataclass(frozen=True, slots=True)
class FilterRules:
    """``uploadpackfilter.*`` of a git repository's config: which partial-clone filters a fetch may
    name, as git's upload-pack reads them (every one by default)."""

    allow_others: bool = True
    """``uploadpackfilter.allow``: whether a filter its own ``allow`` does not name is taken."""
    allowed: tuple[tuple[str, bool], ...] = ()
    """``uploadpackfilter.<filter>.allow`` by git's name of the filter (``blob:none``,
    ``blob:limit``, ``tree``, ``object:type``, ``combine``); a ``tree.maxDepth`` allows ``tree``."""
    tree_max_depth: int | None = None
    """``uploadpackfilter.tree.maxDepth``: the deepest ``tree:<depth>`` taken; None: any."""

    def allows(self, name: str) -> bool:
        """Whether the filter git names ``name`` may be asked for."""
        return dict(self.allowed).get(name, self.allow_others)


@dataclass(frozen=True, slots=True)
class UploadSettings:
    """What a git repository's config says of fetches, as git's upload-pack reads it (a backend's
    optional ``upload_settings()``; these defaults without it)."""

    allow_filter: bool = True
    """``uploadpack.allowFilter``: partial clones are served unless it is ``false`` (git's default
    is off: hgwire serves them by default, as hosting services do)."""
    unborn: str = "advertise"
    """``lsrefs.unborn``: ``advertise`` (protocol v2 names an unborn HEAD's branch, and says so),
    ``allow`` (names it when asked, without saying so), ``ignore`` (never)."""
    unborn_refusal: str | None = None
    """Why git would refuse a protocol v2 request for ``lsrefs.unborn`` (a value git does not read,
    ``unborn`` then its default); git reads it only for v2's capability advertisement and
    ``ls-refs``, so v0 serves it (``gateway.git_session.v2_upload_settings``)."""
    allow_ref_in_want: bool = False
    """``uploadpack.allowRefInWant``: protocol v2 fetches may name refs (``want-ref``); off by
    default, as in git."""
    advertise_session_id: bool = False
    """``transfer.advertiseSID``: the server offers a ``session-id`` of its own and logs the one the
    client sends back; off by default, as in git."""
    filter_rules: FilterRules = FilterRules()
    """``uploadpackfilter.*``: the filters a fetch may name (a filter refused has the fetch refused
    in git's words, before anything is counted)."""
    hidden_tips_reach_shallows: bool = False
    """``uploadpack.allowTipSHA1InWant``, ``allowReachableSHA1InWant`` or ``allowAnySHA1InWant``
    true: a hidden ref's tip counts among those that reach a client's shallow commits, which
    ``git fetch --deepen`` deepens (hgwire serves a want of any object whatever they say)."""
    use_bitmaps: bool = True
    """``pack.useBitmaps``: a pack's (or multi-pack index's) bitmap counts the objects a fetch
    sends unless it is ``false``, when git's pack-objects walks the history instead -- which
    changes what some filters send (``tree:0`` beside a tag of a tree)."""


class ReceiveHooks(Protocol):
    """The receive hooks of one push (``gateway.git_hooks``): ``update_refs`` of a repository that
    has a ``hook_location`` calls them around its ref updates when the gateway passes them.

    Optional: ``transaction_hook()``, the ``reference_transaction(state, updates, head) -> bool``
    callable to tell each ref transaction to, or None (looked up with ``getattr``); and
    ``push_to_checkout(new, work_tree) -> bool | None`` for ``receive.denyCurrentBranch =
    updateInstead`` (None: no such hook, the backend updates a clean tree itself); and
    ``proc_receive(updates, atomic) -> (reports | None, ok)`` for the commands of
    ``receive.procReceiveRefs`` (``protocols.git_proc_receive``)."""

    def pre_receive(self, updates: Sequence[RefUpdate]) -> bool: ...

    def update(self, update: RefUpdate) -> bool: ...

    def post_receive(self, updates: Sequence[RefUpdate]) -> None: ...


class Section(enum.Enum):
    """Which revlog a group of revisions belongs to, in changegroup order."""

    CHANGELOG = "changelog"
    MANIFEST = "manifest"
    FILE = "file"


class TextPieces:
    """A full text as the delta against the empty text, its bytes read a piece at a time.

    What a backend may give as a large revision's ``RevisionDelta.delta``: the
    changegroup writer sends the pieces as they come, so a revision of hundreds of
    megabytes is never held whole (a 111 MB file held about 280 MB per clone).  The
    changegroup decoder gives a large pushed text so too, ``held`` as it came off the
    wire, which a storage transaction takes as it is (``text()``) instead of applying a
    delta to the empty text (a copy).
    ``len()`` is the delta's length (its hunk header and the text); iterating reads the
    text (``pieces()``, called once per iteration) and raises ``StorageError`` if it is
    not ``size`` bytes; ``join()`` gives the delta as bytes for those that need it whole.
    """

    __slots__ = ("_held", "_pieces", "size")

    def __init__(self, size: int, pieces: Callable[[], Iterator[bytes]]) -> None:
        self.size = size
        self._pieces = pieces
        self._held: bytes | bytearray | None = None

    @classmethod
    def held(cls, text: bytes | bytearray) -> TextPieces:
        """A text already in memory (a pushed one, as it came off the wire): ``text()`` gives it
        as it is, no copy."""
        pieces = cls(len(text), lambda: iter((cast(bytes, text),)))
        pieces._held = text
        return pieces

    def text(self) -> bytes | bytearray:
        """The text itself (the delta less its hunk header): the held one, or the pieces joined."""
        return self._held if self._held is not None else b"".join(self._checked())

    def __len__(self) -> int:
        return FULL_HUNK.size + self.size

    def __iter__(self) -> Iterator[bytes]:
        yield FULL_HUNK.pack(0, 0, self.size)
        yield from self._checked()

    def _checked(self) -> Iterator[bytes]:
        """The pieces, refused (``StorageError``) as soon as they are not ``size`` bytes."""
        read = 0
        for piece in self._pieces():
            read += len(piece)
            if read > self.size:
                raise StorageError(f"a stored text is longer than its {self.size} bytes")
            yield piece
        if read != self.size:
            raise StorageError(f"a stored text is {read} bytes, not {self.size}")

    def join(self) -> bytes:
        return b"".join(self)


FULL_HUNK = struct.Struct(">lll")
"""The hunk header of a delta against the empty text: (0, 0, the text's length)."""


def delta_bytes(delta: bytes | TextPieces) -> bytes:
    """A ``RevisionDelta.delta`` as bytes (a ``TextPieces`` read whole)."""
    return delta if isinstance(delta, bytes) else delta.join()


class RevisionDelta(NamedTuple):
    """One revision as a changegroup carries it.

    ``base`` is the node the ``delta`` (mpatch format) applies to; NULL_NODE
    means the delta applies to the empty text (a full text), and may then be a
    ``TextPieces`` (read as it is sent).  ``flags`` are the
    revlog flags of cg03 (0 for ordinary revisions).  A named tuple: a clone
    makes one per revision sent (25,000 for the bench corpus), and a frozen
    dataclass takes 1 µs to make, a tuple a fifth of that.
    """

    node: Node
    p1: Node
    p2: Node
    linknode: Node
    base: Node
    delta: bytes | TextPieces
    flags: int = 0


@dataclass(frozen=True, slots=True)
class RevisionGroup:
    """The revisions of one revlog: ``path`` is the file path for Section.FILE, else b""."""

    section: Section
    path: bytes
    revisions: Iterator[RevisionDelta]


class DeltaMode(enum.Enum):
    """Which bases an emitted delta may use.

    PREVIOUS: the previous revision of the group, or p1 for the first (cg01).
    ANY: any revision sent earlier in the group or known to the client (cg02/03),
    so stored deltas can be reused as they are.
    """

    PREVIOUS = "previous"
    ANY = "any"


class AmbiguousIdentifier(KeyError):
    """``HgRepository.lookup``: a hex prefix that more than one changeset starts with (hidden ones
    count too, as in hg's ``resolvehexnodeidprefix``)."""


class FilteredRevision(KeyError):
    """``HgRepository.lookup``: a key naming a changeset a server hides (secret, or obsolete): hg's
    "filtered revision 'KEY' (not in 'served' subset)"."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What applying a changegroup did: nodes added and the head count before/after.

    ``file_revisions``: file revisions actually added (those the repository had
    are not; None: not counted, every one sent counts); ``closing_heads``: new
    heads that close their branch (hg leaves them out of its ``(+N heads)``).
    """

    added: Sequence[Node]
    heads_before: int
    heads_after: int
    file_revisions: int | None = None
    closing_heads: int = 0


@dataclass(frozen=True, slots=True)
class StoreFile:
    """One store file of a stream clone: its store-relative path and a reader of ``size`` bytes.

    ``path`` is the path *before* store encoding (``data/Dir/File.i``, hg's
    ``unencoded_path``), as stream_out and stream2 send it; the client encodes it.
    ``cache``: a file of ``.hg/cache`` (``path`` is its name there), which only
    stream v2 carries, after the store.
    """

    path: bytes
    size: int
    chunks: Iterator[bytes]
    cache: bool = False


class HgTransaction(Protocol):
    """A write transaction: all of it lands on ``commit`` or none of it does."""

    def add_changegroup(self, groups: Iterator[RevisionGroup]) -> IngestResult:
        """Append the groups (changelog, manifest, then files), verifying every node hash."""
        ...

    def set_bookmark(self, name: bytes, old: Node | None, new: Node | None) -> bool:
        """Compare-and-swap one bookmark; None as ``new`` deletes, None as ``old`` means absent.  A
        ``new`` changeset the repository does not have (this transaction's included) raises
        ``ProtocolError``: no bookmark is stored that names a missing changeset."""
        ...

    def set_phase(self, phase: int, nodes: Sequence[Node]) -> None:
        """Move the nodes (and their ancestors, for lower phases) to ``phase`` (0 public, 1 draft)."""
        ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class HgRepository(Protocol):
    """What the Mercurial wire protocol needs; the engine in ``backends/hg`` provides it.

    Nodes are 20 raw bytes; the wire layer does all hex encoding.
    """

    kind: Literal[Kind.HG]
    name: str

    def requirements(self) -> frozenset[str]: ...

    def publishing(self) -> bool: ...

    def heads(self) -> list[Node]:
        """Heads of the changelog in revision order (the ``heads`` command)."""
        ...

    def known(self, nodes: Sequence[Node]) -> list[bool]: ...

    def branchmap(self) -> Mapping[bytes, Sequence[Node]]:
        """Branch name (bytes, UTF-8 as stored) -> its heads, open and closed."""
        ...

    def lookup(self, key: bytes) -> Node:
        """Resolve a revision spec as hg's ``lookup`` does; raise KeyError if unknown."""
        ...

    def listkeys(self, namespace: bytes) -> Mapping[bytes, bytes]:
        """The pushkey namespaces: ``namespaces``, ``bookmarks`` (name -> hex), ``phases``."""
        ...

    def bookmarks(self) -> Mapping[bytes, Node]:
        """The bookmarks a client sees: none on a secret changeset, none divergent (``name@path``)."""
        ...

    def phase_heads(self, heads: Sequence[Node]) -> Sequence[tuple[int, Node]]:
        """(phase, node) pairs describing the phases of ``::heads`` (bundle2 ``phase-heads``).  A
        publishing repository names every one of ``heads`` public, unread, as hg's server does, so
        also a head stripped after the client read it; otherwise such a head is left out."""
        ...

    def missing(self, common: Sequence[Node], heads: Sequence[Node]) -> list[Node]:
        """Changesets in ``::heads - ::common`` in topological (revision) order."""
        ...

    def emit_groups(self, nodes: Sequence[Node], mode: DeltaMode,
                    match: Callable[[bytes], bool] | None = None) -> Iterator[RevisionGroup]:
        """Stream the changegroup content for ``nodes`` (as returned by ``missing``).

        ``match``: only the files whose path it takes are wanted (a narrow clone); a backend may
        still yield others (the caller drops them), but need not read them.
        """
        ...

    def transaction(self, max_text: int | None = None, wait: LockWait | None = None) -> HgTransaction:
        """Take the store lock and start a write transaction.

        ``max_text``: the largest revision text a pushed delta may rebuild
        (the server's ``[limits] max_delta_result``); None leaves the engine's own bound.
        ``wait``: how to wait for a lock someone else holds; None: the backend's own way.
        """
        ...

    def stream_clone_allowed(self) -> bool:
        """False while a changeset is secret (or archived or internal): pulls hide it, and a copy
        of the store would not.  ``streamreqs`` is then not advertised, so clients clone normally."""
        ...

    def stream_files(self, caches: bool = False) -> tuple[int, int, Iterator[StoreFile]]:
        """A consistent snapshot of the store for stream clone: (file count, byte count, files).

        As hg's server: the phase roots only for a repository that is not
        publishing (a publishing server's clone is all public), and
        ``UnsupportedFeature`` unless ``stream_clone_allowed()`` in the snapshot.
        ``caches``: also the caches worth copying (branch heads, tags, branch of each revision),
        whose absence makes a client rebuild them by reading every changeset.
        """
        ...


class RefusesPush(Protocol):
    """Optional for a ``GitRepository`` or an ``HgRepository``: whether it takes no push at all.

    ``refuses_push`` returns None when pushes are welcome, or one sentence saying why they are
    not and what to do (``"app.git is a read-only mirror; push to git.example.com instead"``).
    hgwire asks it, in the pool, once the repository is open and before a push starts: git's
    receive-pack is then not advertised (git://, SSH, ``info/refs?service=git-receive-pack``),
    hg's ``unbundle`` is refused before the bundle is sent, and Git LFS uploads are refused, each
    as ``--read-only`` refuses them, with this sentence; fetches go on.  Without it a backend can
    refuse only once the client has sent its pack (``begin_pack``, ``update_refs``, ``transaction``).
    """

    def refuses_push(self) -> str | None: ...


class StateStamped(Protocol):
    """Optional for an ``HgRepository``: a stamp of its visible state.

    ``state_stamp`` returns bytes that change whenever what a pull can see
    changes (changesets, phases, bookmarks, publishing), or None if it cannot
    tell.  With it, identical concurrent clones share one generation of their
    bundle (``gateway.shared_streams``); without it each clone makes its own.
    """

    def state_stamp(self) -> bytes | None: ...


class HgPushSpool(Protocol):
    """Optional for an ``HgRepository``: where a pushed bundle waits until the client has sent all of it.

    ``spool_push`` reads ``chunks`` to their end, keeps them (on disk: bounded memory) and gives
    them back, to be applied, inside the ``with``; a disk that cannot hold them raises
    ``StorageError``.  The push's ``transaction`` (and its lock) starts only then, as ``hg serve``
    takes its locks: a slow or stalled client holds up no other push.  Without it a push is applied
    as it arrives, the repository locked meanwhile.
    """

    def spool_push(self, chunks: Iterator[bytes]) -> AbstractContextManager[Iterator[bytes]]: ...


class HgObsolescence(Protocol):
    """Optional for an ``HgRepository`` (and ``obsolescence_summary``/``add_obsmarkers`` for its
    transactions, ``HgTransactionReads``/``HgTransactionWrites``): obsolescence markers
    (``protocols.hg_obsmarkers.Marker``).  Without these methods a repository has no markers,
    advertises no ``obsmarkers``, and refuses pushed ones.

    The repository's other answers already leave out the changesets its markers hide.
    """

    def obsolescence_enabled(self, option: bytes) -> bool:
        """``createmarkers`` (pushed markers are taken) or ``exchange`` (markers are advertised)."""
        ...

    def obsmarkers_exchange(self) -> bool: ...

    def obsmarkers_version(self) -> int | None:
        """The stored markers' format (0 or 1), None without markers (a stream clone copies them)."""
        ...

    def obsmarkers_for(self, heads: Sequence[Node] | None) -> tuple[int, list[Any]]:
        """(stored format, markers relevant to ``::heads``, sorted); every visible head if None."""
        ...


class HgOptionalReads(Protocol):
    """Optional for an ``HgRepository``: what else it may say of itself, each only reading it.

    Each is asked where hgwire needs it, and a backend without it is taken as the line below its
    name says.  A session's repository is guarded (``gateway.protected``): the guard hands on
    every method ``HG_OPTIONAL_READS`` names, as the backend has it or not, once the session may
    read the repository (the command's permission, checked first); a method declared here is so
    reached through the guard with no code of its own there.
    """

    def tags_file_nodes(self, heads: Sequence[Node]) -> Sequence[tuple[Node, Node]]:
        """(head, its ``.hgtags`` file node) for the heads that have one (bundle2
        ``hgtagsfnodes``); without it the client reads their manifests itself."""
        ...

    def hgrc_section(self, section: bytes) -> Mapping[bytes, bytes]:
        """One section of the repository's hgrc; without it, none."""
        ...

    def web_access(self) -> Mapping[str, Sequence[str] | None]:
        """hgweb's access lists (``allow_read``, ``deny_read``, ``allow-push``, ``deny_push``),
        which only narrow hgwire's own rules; without it, none."""
        ...

    def web_allows_pull(self) -> bool:
        """``[web] allow-pull``; without it, pulls are allowed."""
        ...

    def hook_config(self) -> tuple[str, list[tuple[bytes, bytes]]] | None:
        """The directory hooks run in and the hgrc's ``[hooks]``; without it, no hooks."""
        ...

    def stream_turned_on(self) -> bool:
        """``[server] uncompressed``; without it, stream clones are on."""
        ...

    def stream_preferred(self) -> bool:
        """``[server] preferuncompressed``; without it, off."""
        ...

    def full_bundle_disabled(self) -> bool:
        """``[server] disablefullbundle``; without it, off."""
        ...

    def obsmarkers_outside(self, heads: Sequence[Node] | None, common: Sequence[Node],
                           extra: Sequence[Node]) -> tuple[int, list[Any]]:
        """Markers relevant to ``::heads - ::common`` and to ``extra`` (hg-evolve's discovery);
        without it, ``obsmarkers_for(heads)``'s."""
        ...

    def obsmarker_discovery_caps(self) -> Sequence[bytes]:
        """The capabilities of hg-evolve's marker discovery it serves; without it, none."""
        ...

    def obsmarker_range_hashes(self, ranges: Sequence[tuple[Node, int]]) -> Sequence[bytes]:
        """hg-evolve's hashes of stable ranges (asked only where its caps advertise them)."""
        ...

    def take_after_answer(self) -> Callable[[], None] | None:
        """Work left for after an answer is sent (a cache to write), taken once; without it, none."""
        ...

    def topic_publish_mode(self) -> bytes | None:
        """hg-evolve's ``ext-topics-publish`` mode where it serves topics; without it, no topics."""
        ...

    def serves_topics(self) -> bool:
        """Whether it serves hg-evolve's topics; without it, no."""
        ...

    def topic_branchmap(self) -> Mapping[bytes, Sequence[Node]] | None:
        """The topic-aware branch map; without it (or None), the plain one."""
        ...

    def gates_topic_changesets(self) -> bool:
        """``topic.server-gate-topic-changesets``; without it, off."""
        ...

    def heads_without_topics(self) -> list[Node]:
        """The heads, the topics' drafts left out (``heads`` where topics are gated)."""
        ...

    def topic_server_mode(self) -> bytes | None:
        """``topic-mode.server``; without it, none."""
        ...

    def allows_publishing(self) -> bool:
        """``topic.allow-publish``; without it, yes."""
        ...

    def publishes_bare_drafts(self) -> bool:
        """``topic.publish-bare-branch``; without it, no."""
        ...

    def rejects_bare_drafts(self) -> bool:
        """``topic-mode.server = enforce``; without it, no."""
        ...

    def rejects_topic_namespaces(self) -> bool:
        """``tns-reject-push``; without it, no."""
        ...

    def single_head_rules(self) -> list[Any]:
        """Its one-head-per-branch checks of a push; without it, none."""
        ...

    def clonebundles_manifest(self) -> bytes | None:
        """Its clone bundles manifest; without it (or None), ``clonebundles`` is not advertised."""
        ...

    def inline_clone_bundle_size(self, path: bytes) -> int | None:
        """The size of the inline clone bundle ``path``; without it, none is kept."""
        ...

    def open_inline_clone_bundle(self, path: bytes) -> InlineBundleFile | None:
        """The inline clone bundle ``path``, open; without it, none is kept."""
        ...

    def largefiles(self) -> Largefiles | None:
        """The store of hg's largefiles extension where it serves it; without it, none."""
        ...

    def largefiles_required(self) -> bool:
        """Its ``largefiles`` requirement; without it, no."""
        ...

    def lfs(self) -> Any:
        """The blob store of hg's lfs extension where it serves it; without it, none."""
        ...

    def lfs_required(self) -> bool:
        """Its ``lfs`` requirement; without it, no."""
        ...


class HgTransactionReads(Protocol):
    """Optional for an ``HgTransaction``: what it may say of the push so far, each only reading it.

    Each is asked where hgwire needs it, and a transaction without it is taken as the line below its
    name says.  A session's transaction is guarded (``gateway.protected.GuardedTransaction``): the
    guard hands on every method ``HG_TRANSACTION_READS`` names, as the backend has it or not; a
    method declared here is so reached through the guard with no code of its own there.
    """

    def phase_of(self, node: Node) -> int | None:
        """The changeset's phase in the transaction so far, None for one it does not hold; without
        it, not known (a pushkey may then name only what the repository shows)."""
        ...

    def changeset_text(self, node: Node) -> bytes:
        """The changelog text of ``node``, one the transaction added too (once its revision is in);
        without it, protected branches refuse every push, which they cannot check."""
        ...

    def phases_moved(self) -> bool:
        """Whether the commit moves phases (hg's ``HG_PHASES_MOVED``); without it, no."""
        ...

    def phase_changes(self) -> list[tuple[Node, int | None, int]]:
        """Each changeset whose phase the transaction sets, in revision order, with its phase before
        (None for a new one) and after; without it, none are told, and phase hooks refuse the push."""
        ...

    def obsolescence_summary(self) -> tuple[int, int, int, int, int]:
        """New markers, changesets they obsoleted, new orphans, phase- and content-divergent
        changesets, as hg's server says them when a push commits; without it, all 0."""
        ...

    def bare_new_drafts(self) -> list[Node]:
        """The new drafts that carry no topic (hg-evolve's ``topic-mode.server``,
        ``topic.publish-bare-branch``); without it, none."""
        ...

    def new_drafts_with_namespace(self) -> list[Node]:
        """The new drafts that name a topic namespace (``tns-reject-push``); without it, none."""
        ...

    def branch_heads_now(self, rule: Any) -> list[tuple[bytes, list[tuple[Node, bool]]]]:
        """Each branch's heads as the push leaves them, as one of the repository's
        ``single_head_rules`` looks at them; without it, those rules are not checked."""
        ...


class HgTransactionWrites(Protocol):
    """Optional for an ``HgTransaction``: what else it may write.  A session's guard never hands one
    on: it has a method of its own for each, which gates, checks, audits and warns of a disk's
    refusal as the push needs, then asks the backend's.

    ``new_markers`` (a sequence), where it has ``add_obsmarkers``: the markers it took so far, which
    branch protections check; without it, every pushed marker is checked.
    """

    def add_obsmarkers(self, markers: Sequence[Any]) -> int:
        """Take the pushed markers it does not have; return how many were new.  Without it, a push
        with markers is refused."""
        ...

    def write_pending(self) -> str | None:
        """Write what the commit would make readable to ``hg`` run with ``HG_PENDING`` set to the
        root returned (the ``pretxn…`` hooks); None where it cannot.  Without it, a repository with
        such hooks refuses pushes."""
        ...


def _methods(*protocols: type) -> frozenset[str]:
    return frozenset(name for protocol in protocols for name, value in vars(protocol).items()
                     if callable(value) and not name.startswith("_"))


HG_OPTIONAL_READS = _methods(RefusesPush, StateStamped, HgObsolescence, HgOptionalReads)
"""The optional methods of an ``HgRepository`` that only read it, all a session's guard hands on.
The optional ones that write are ``HgPushSpool.spool_push`` (a pushed bundle kept on disk, asked
only by a push, which needs the right to push) and ``HgObsolescence``'s transaction methods; the
guard wraps each of them itself."""


HG_TRANSACTION_READS = _methods(HgTransactionReads)
"""The optional methods of an ``HgTransaction`` that only read it, all a session's guard hands on;
``HgTransactionWrites`` are those it wraps."""

Repository = GitRepository | HgRepository


class Backend(Protocol):
    """A store of named repositories; names are validated by the backend.

    Optional: ``new_git_object_format() -> ObjectFormat``, the object format of a git repository
    ``create`` would make now (when absent: what ``GIT_DEFAULT_HASH`` says, as ``fs`` makes): a push to a name still to be made
    (``--create-on-push``) is answered as that empty repository until its commands arrive.
    ``new_git_keeps_lfs() -> bool``: whether such a repository would keep Git LFS objects (its
    ``lfs()`` gives a store); when False, a new repository's LFS upload is refused before anything
    is made (without it, the repository is made and then asked).
    ``locate(name) -> tuple[str, Kind] | None``: the stored name and kind of the repository a
    request for ``name`` reaches (``app`` may reach ``app.git``), None when there is none: access
    rules are matched on every name of a repository (without it, on the name asked for only).
    ``list_folder(folder, after) -> Iterable[str]``: the names ``list()`` gives that start with
    ``folder`` (``team/``, or ``""``) and sort after ``after``, in name order, read lazily: the SSH
    greeting and the index pages stop once they have what they show (without it, ``list()`` whole).
    """

    def open(self, name: str) -> Repository:
        """Return the repository; raise RepositoryNotFound, NotARepository or UnsafeName."""
        ...

    def create(self, name: str, kind: Kind) -> Repository: ...

    def exists(self, name: str) -> bool: ...

    def list(self) -> Iterable[str]: ...


__all__ = [
    "ATOMIC_FAILURE",
    "HEX_ID_LENGTHS",
    "HG_OPTIONAL_READS",
    "HG_TRANSACTION_READS",
    "MISSING_OBJECTS",
    "NULL_NODE",
    "OBJECT_FORMATS",
    "SHA1_FORMAT",
    "SHA256_FORMAT",
    "SHALLOW_UPDATE",
    "ZERO_ID",
    "AmbiguousIdentifier",
    "Backend",
    "DeltaMode",
    "FilteredRevision",
    "GitRepository",
    "HgOptionalReads",
    "HgRepository",
    "HgTransaction",
    "HgTransactionReads",
    "HgTransactionWrites",
    "IngestResult",
    "Iterator",
    "Kind",
    "LargefileRefused",
    "Largefiles",
    "Node",
    "ObjectFormat",
    "ObjectId",
    "PackSink",
    "PackedObject",
    "PushCertSettings",
    "RefReport",
    "RefResult",
    "RefUpdate",
    "Repository",
    "RevisionDelta",
    "RevisionGroup",
    "Section",
    "StateStamped",
    "StoreFile",
    "UploadSettings",
    "is_zero_id",
    "object_format_of",
]
