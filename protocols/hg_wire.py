"""Argument and reply encodings of the Mercurial wire protocol version 1.

Spec: ``mercurial/helptext/internals/wireprotocol.txt`` ("Batch Request
Encoding", "Commands") and ``bundle2.txt`` ("Capabilities").  Everything here
is a pure function over bytes; decoders raise ``ProtocolError`` on bad input.
"""

from __future__ import annotations

import binascii
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence

from backends.interfaces import Node
from protocols.errors import LimitExceeded, ProtocolError

NODE_HEX_LEN = 40
MAX_BATCH_COMMANDS = 10_000
"""hg batches a ``lookup`` per ``hg pull -r REV`` (400 of them for 400 revisions; hg serve sets no
bound), so the bound is the one hgwire sets on other lists: each command is bounded by itself, and
the batch's bytes by the request's."""
MAX_BATCH_REPLY = 128 << 20
"""Bytes of answers one ``batch`` may add up to: its commands are each bounded, but the same one
may come 10,000 times (200 ``listkeys namespace=bookmarks`` of a repository of 100,000 bookmarks, a
7 KB request, made a 980 MB answer and took 2 GB of the server's memory to build it; hg serve's
batch builds its answer whole as well).  A real client's batch is a few ``heads``, ``known`` and
``lookup`` calls."""
MAX_BATCH_PUSHKEYS = 100
"""``pushkey`` commands one ``batch`` may hold: each is a transaction of its own (a repository of
100,000 bookmarks rewrites its 5 MB file for each, 0.14 s of CPU), and hg's client sends each of its
pushkeys in a request of its own, so only a hostile batch holds 10,000 of them (over half an hour
of a worker thread, run to the end after the client is gone)."""

_BATCH_ESCAPES = ((b":", b":c"), (b",", b":o"), (b";", b":s"), (b"=", b":e"))

BOOL_TRUE = b"1"
BOOL_FALSE = b"0"

TRANSPORT_INDEPENDENT_CAPS = (
    b"batch",
    b"branchmap",
    b"getbundle",
    b"known",
    b"lookup",
    b"pushkey",
    b"unbundlehash",
)
UNBUNDLE_CAP = b"unbundle=HG10GZ,HG10BZ,HG10UN"
BUNDLE2_CAP_PREFIX = b"bundle2="
"""The capability (and getbundle ``bundlecaps`` entry) carrying the url-quoted bundle2 caps blob."""

STREAM_IGNORABLE_REQUIREMENTS = frozenset(
    {
        "exp-sparse",
        "shared",
        "relshared",
        "share-safe",
        "dirstate-tracked-key-v1",
        "dirstate-v2",
        "dotencode",
        "exp-very-fragile-and-unsafe-plain-store-encoding",
        "fncache",
        "fileindex-v1",
        "store",
        "persistent-nodemap",
    }
)
"""Requirements a stream clone does not transfer (``requirements.py`` STREAM_IGNORABLE_REQUIREMENTS)."""


def hex_node(node: Node) -> bytes:
    """Return the 40-byte lowercase hex form of a node."""
    return binascii.hexlify(node)


def parse_node(value: bytes) -> Node:
    """Decode one 40-digit hex node; anything else is a protocol error."""
    if len(value) != NODE_HEX_LEN:
        raise ProtocolError(f"a node must be {NODE_HEX_LEN} hex digits, got {len(value)} bytes")
    try:
        return Node(binascii.unhexlify(value))
    except binascii.Error as exc:
        raise ProtocolError("a node must be hex digits") from exc


def encode_nodes(nodes: Iterable[Node], sep: bytes = b" ") -> bytes:
    """Encode nodes as separated hex, as ``wireprototypes.encodelist``."""
    return sep.join(hex_node(n) for n in nodes)


def decode_nodes(value: bytes, sep: bytes = b" ") -> list[Node]:
    """Decode a separated hex node list; the empty string is the empty list."""
    if not value:
        return []
    return [parse_node(v) for v in value.split(sep)]


def decode_list(value: bytes) -> list[bytes]:
    """Decode ``wireprototypes.encodelist`` of values of any length (space-separated hex)."""
    if not value:
        return []
    try:
        return [binascii.unhexlify(v) for v in value.split(b" ")]
    except binascii.Error as exc:
        raise ProtocolError("a list argument must be hex digits") from exc


def decode_pairs(value: bytes) -> list[tuple[Node, Node]]:
    """Decode the ``between`` argument: space-separated ``a-b`` hex pairs."""
    pairs: list[tuple[Node, Node]] = []
    for item in value.split(b" ") if value else []:
        nodes = decode_nodes(item, b"-")
        if len(nodes) != 2:
            raise ProtocolError("a between pair must be two nodes joined by '-'")
        pairs.append((nodes[0], nodes[1]))
    return pairs


def decode_bool(value: bytes) -> bool:
    """Decode a getbundle boolean as hg does: ``0`` and the empty string are false, anything else true."""
    return value not in (BOOL_FALSE, b"")


def decode_csv(value: bytes) -> list[bytes]:
    """Decode a comma-separated list; the empty string is the empty list."""
    return value.split(b",") if value else []


def decode_scsv(value: bytes) -> set[bytes]:
    """Decode a comma-separated set (getbundle ``bundlecaps``)."""
    return set(decode_csv(value))


def escape_batch(value: bytes) -> bytes:
    """Escape ``: , ; =`` for a batch request or reply (``:c :o :s :e``)."""
    for plain, escaped in _BATCH_ESCAPES:
        value = value.replace(plain, escaped)
    return value


def unescape_batch(value: bytes) -> bytes:
    """Undo ``escape_batch``; ``:c`` goes last so ``:ce`` stays ``:e`` literally."""
    for plain, escaped in reversed(_BATCH_ESCAPES):
        value = value.replace(escaped, plain)
    return value


def parse_batch(cmds: bytes) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Parse a batch ``cmds`` value ``op a=1,b=2;op2 ...`` into (name, args) pairs."""
    items = cmds.split(b";")
    if len(items) > MAX_BATCH_COMMANDS:
        raise LimitExceeded(f"a batch may hold at most {MAX_BATCH_COMMANDS} commands")
    return [_parse_batch_item(item) for item in items]


def _parse_batch_item(item: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    name, sep, rest = item.partition(b" ")
    if not name or not sep:
        raise ProtocolError("a batched command must be 'name args'")
    args: dict[bytes, bytes] = {}
    for pair in rest.split(b",") if rest else []:
        key, eq, value = pair.partition(b"=")
        if not eq or b"=" in value:
            raise ProtocolError("a batched argument must be 'name=value'")
        args[unescape_batch(key)] = unescape_batch(value)
    return name, args


def format_batch_reply(results: Iterable[bytes]) -> bytes:
    """Join the escaped results of a batch with ``;``."""
    return b";".join(escape_batch(r) for r in results)


def format_heads(heads: Sequence[Node]) -> bytes:
    """The ``heads`` reply: space-separated hex plus a newline."""
    return encode_nodes(heads) + b"\n"


def format_known(flags: Iterable[bool]) -> bytes:
    """The ``known`` reply: one ``0``/``1`` per queried node."""
    return b"".join(BOOL_TRUE if f else BOOL_FALSE for f in flags)


def format_between(lists: Iterable[Sequence[Node]]) -> bytes:
    """The ``between`` reply: one line of hex nodes per pair."""
    return b"".join(encode_nodes(nodes) + b"\n" for nodes in lists)


def url_quote(value: bytes) -> bytes:
    """Quote as Mercurial's ``urlreq.quote`` (Python's default, ``/`` kept)."""
    return urllib.parse.quote_from_bytes(value).encode("ascii")


def url_unquote(value: bytes) -> bytes:
    return urllib.parse.unquote_to_bytes(value)


INLINE_CLONE_BUNDLE_SCHEME = b"peer-bundle-cache://"
"""Clone bundles the server itself sends (``get_cached_bundle_inline``)."""


def inline_bundle_path(line: bytes) -> bytes | None:
    """The path a manifest line's ``peer-bundle-cache://<path>`` URL names (what the client asks
    ``get_cached_bundle_inline`` for), or None for a line of another URL."""
    url = line.split(None, 1)[0] if line.strip() else b""
    return url[len(INLINE_CLONE_BUNDLE_SCHEME):] if url.startswith(INLINE_CLONE_BUNDLE_SCHEME) else None


def format_clonebundles(manifest: bytes, legacy: bool, inline: Callable[[bytes], bool] | None = None) -> bytes:
    """The reply of ``clonebundles_manifest`` (``legacy``: of ``clonebundles``) for a manifest file.

    One line per entry, as hg's ``bundle_cache.get_manifest_lines``.  Inline
    (``peer-bundle-cache://``) entries stay only where ``inline(path)`` says the
    server has that bundle to send (so no client is sent to a missing one);
    the ``legacy`` command leaves them out, as hg's, and also what clients
    before it cannot read: entries whose ``BUNDLESPEC`` carries a
    ``store-fingerprint``.
    """
    lines = []
    for line in manifest.splitlines():
        path = inline_bundle_path(line)
        if path is not None and (legacy or inline is None or not inline(path)):
            continue
        if legacy and _has_store_fingerprint(line):
            continue
        lines.append(line + b"\n")
    return b"".join(lines)


def _has_store_fingerprint(line: bytes) -> bool:
    for attr in line.split()[1:]:
        key, eq, value = attr.partition(b"=")
        if not eq or url_unquote(key) != b"BUNDLESPEC":
            continue
        for param in url_unquote(value).split(b";")[1:]:
            name, _, _ = param.partition(b"=")
            if url_unquote(name) == b"store-fingerprint":
                return True
    return False


def format_branchmap(branchmap: Mapping[bytes, Sequence[Node]]) -> bytes:
    """The ``branchmap`` reply: ``urlquote(branch) hex hex...`` lines joined by newlines."""
    return b"\n".join(url_quote(name) + b" " + encode_nodes(heads) for name, heads in branchmap.items())


def format_lookup(node: Node | None, error: bytes = b"") -> bytes:
    """The ``lookup`` reply: ``1 <hex>\\n`` or ``0 <error>\\n``."""
    if node is None:
        return b"0 " + error + b"\n"
    return b"1 " + hex_node(node) + b"\n"


def format_listkeys(keys: Mapping[bytes, bytes]) -> bytes:
    """The ``listkeys`` reply: sorted ``key\\tvalue`` lines (``pushkey.encodekeys``)."""
    return b"\n".join(map(b"\t".join, sorted(keys.items())))


def format_pushkey(ok: bool, output: bytes = b"") -> bytes:
    """The ``pushkey`` reply: ``<0|1>\\n<output>``."""
    return (BOOL_TRUE if ok else BOOL_FALSE) + b"\n" + output


def encode_bundle2_caps(caps: Mapping[bytes, Sequence[bytes]]) -> bytes:
    """Encode bundle2 capabilities: sorted ``key`` or ``key=v1,v2`` lines, each part url-quoted."""
    lines = []
    for key in sorted(caps):
        values = caps[key]
        line = url_quote(key)
        if values:
            line += b"=" + b",".join(url_quote(v) for v in values)
        lines.append(line)
    return b"\n".join(lines)


def decode_bundle2_caps(blob: bytes) -> dict[bytes, list[bytes]]:
    """Decode a bundle2 capabilities blob (the inverse of ``encode_bundle2_caps``)."""
    caps: dict[bytes, list[bytes]] = {}
    for line in blob.splitlines():
        if not line:
            continue
        key, eq, values = line.partition(b"=")
        caps[url_unquote(key)] = [url_unquote(v) for v in values.split(b",")] if eq else []
    return caps


def stream_requirements(requirements: Iterable[str]) -> list[bytes]:
    """The requirements a stream clone transfers, sorted, as ``streamreqs=`` lists them."""
    return sorted(r.encode("ascii") for r in requirements if r not in STREAM_IGNORABLE_REQUIREMENTS)


def format_capabilities(
    bundle2_caps: Mapping[bytes, Sequence[bytes]],
    requirements: Iterable[str],
    transport_caps: Iterable[bytes],
    stream: bool = True,
    stream_preferred: bool = False,
) -> bytes:
    """Build the sorted, space-separated capability string (``capabilities`` / ``hello``).

    Without ``stream`` there is no ``streamreqs=``: ``hg clone --stream`` then
    warns that the server has stream clones disabled and clones normally.
    ``stream_preferred`` (``[server] preferuncompressed``) makes a plain ``hg clone`` stream.
    """
    caps = list(TRANSPORT_INDEPENDENT_CAPS)
    if stream:
        caps.append(b"streamreqs=" + b",".join(stream_requirements(requirements)))
        if stream_preferred:
            caps.append(b"stream-preferred")
    caps.append(UNBUNDLE_CAP)
    caps.append(BUNDLE2_CAP_PREFIX + url_quote(encode_bundle2_caps(bundle2_caps)))
    caps.extend(transport_caps)
    return b" ".join(sorted(caps))
