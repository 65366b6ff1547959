"""Checks of an HTTP/1.1 request's head that twisted.web's parser does not make (RFC 9112).

twisted.web takes any request target and drops its first byte to make the path
(``path[1:].split(b"/")``): ``GET hgr/a HTTP/1.1`` asked for repository ``gr``, and
``GET http://host/hgr/a`` for one named ``ttp:``.  What the head must be is decided here,
from its bytes, and a head that is not is a ``ProtocolError`` carrying its status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

from protocols.errors import ProtocolError

HOST_HEADER = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
"""A ``Host`` value that looks like one: a name or an address, maybe a port (RFC 9110 §7.2)."""

REQUEST_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
"""A request line's HTTP-version (RFC 9112 §2.3)."""

ABSOLUTE_TARGET = re.compile(rb"(?i:https?)://([^/?#]*)([^#]*)")
"""The absolute-form of a request target (RFC 9112 §3.2.2): ``http://host:port/path?query``."""


def origin_form(method: bytes, target: bytes) -> tuple[bytes, bytes | None]:
    """The request target as the path the server serves, and the authority an absolute-form
    target named (the request's host, whatever its ``Host`` says: RFC 9112 §3.2.2), or None.

    A target is origin-form (``/NAME...``), absolute-form (``http(s)://host/NAME...``, which a
    server must accept, §3.2.2) or ``*`` for ``OPTIONS`` (§3.2.4); anything else is refused
    (400) rather than read as a path whose first byte is dropped.
    """
    if target.startswith(b"/") or (target == b"*" and method == b"OPTIONS"):
        return target, None
    absolute = ABSOLUTE_TARGET.fullmatch(target)
    if absolute is None:
        raise ProtocolError("the request target must be a path that starts with '/' or an http(s):// URL")
    authority, path = absolute.groups()
    if not HOST_HEADER.fullmatch(authority.decode("ascii", "replace")):
        raise ProtocolError("the request target's URL does not name a host (host or host:port, no user)")
    return (path if path.startswith(b"/") else b"/" + path), authority


def check_host(version: bytes, hosts: Sequence[bytes]) -> None:
    """Refuse (400) a request with more than one ``Host``, or an HTTP/1.1 one with none (RFC 9112
    §3.2, as nginx and lighttpd do): which one twisted.web believes (the last) is where the pages'
    clone URLs and Git LFS's actions point, and a cache in front may have believed the other."""
    if len(hosts) > 1:
        raise ProtocolError("the request has more than one Host header; send one")
    if not hosts and version != b"HTTP/1.0":
        raise ProtocolError("an HTTP/1.1 request needs a Host header naming the server; send one")


def check_framing(version: bytes, transfer_encodings: Sequence[bytes]) -> None:
    """Refuse a body framed any way but one ``Transfer-Encoding: chunked`` on HTTP/1.1 (or by
    ``Content-Length`` alone), as nginx does: 501 for a coding this server does not decode, 400 for
    two ``Transfer-Encoding`` lines or one on HTTP/1.0 (RFC 9112 §6.1: its framing is faulty).

    twisted.web decoded chunked whichever other ``Transfer-Encoding`` line came with it
    (``identity``), read ``Content-Length`` beside ``identity`` and took chunked on HTTP/1.0: a
    proxy in front that framed the same bytes the other way passes a second request hidden in the
    first's body (request smuggling).
    """
    if not transfer_encodings:
        return
    if len(transfer_encodings) > 1:
        raise ProtocolError("the request has more than one Transfer-Encoding header; send one")
    if version == b"HTTP/1.0":
        raise ProtocolError("an HTTP/1.0 request may not have a Transfer-Encoding header; send Content-Length")
    if transfer_encodings[0].lower() != b"chunked":
        raise ProtocolError("the request's Transfer-Encoding is not chunked, the only one this server decodes; "
                            "send the body chunked or with Content-Length", http_status=501)


def connection_options(values: Sequence[bytes]) -> frozenset[bytes]:
    """The options of every ``Connection`` line, lower-cased: a comma-separated list of tokens
    (RFC 9110 §7.6.1), where twisted.web split the first line on spaces (``close, foo`` gave the
    token ``close,``, and the connection stayed open)."""
    return frozenset(token.strip(b" \t").lower() for value in values for token in value.split(b",")) - {b""}


def request_line_version(line: bytes) -> bytes:
    """The request line as this server reads it: a later HTTP/1 minor version (``HTTP/1.2``) as
    ``HTTP/1.1`` (RFC 9110 §2.5: a recipient processes it as the highest minor version it has),
    another major version refused with 505; a line without a version, as it is (twisted.web's 400).
    """
    head, sep, version = line.rpartition(b" ")
    match = REQUEST_VERSION.fullmatch(version)
    if not sep or match is None:
        return line
    major, minor = match.groups()
    if major != b"1":
        raise ProtocolError(f"this server speaks HTTP/1.1, not {version.decode()}; send the request "
                            "in HTTP/1.1", http_status=505)
    return head + b" HTTP/1.1" if minor > b"1" else line


def request_line_target(line: bytes) -> bytes:
    """The request line with the bytes of its request target past ASCII percent-encoded.

    libgit2 (pygit2, and the tools built on it) puts a repository name's UTF-8 bytes in the
    request line as they are (``GET /\xc3\xbcn\xc3\xaf.git/info/refs``), where git's own client,
    JGit and browsers send ``/%C3%BCn%C3%AF.git``.  RFC 9112 allows only ASCII there and
    twisted.web answers 400 to anything else; lighttpd and nginx in front of git http-backend
    read such bytes as their percent-encoding, and so does this server now: the same name as if
    the client had encoded it, checked as every name is.  Spaces and control characters are left
    alone (refused, as nginx and Apache refuse them).
    """
    first, last = line.find(b" "), line.rfind(b" ")
    if first < 0 or last <= first:
        return line
    target = line[first + 1:last]
    if target.isascii():
        return line
    encoded = b"".join(b"%%%02X" % byte if byte >= 0x80 else bytes((byte,)) for byte in target)
    return line[:first + 1] + encoded + line[last:]


BARE_LF = ("a line of the request ends in LF alone; HTTP/1.1 ends each line of the request line, the headers "
           "and a chunked body's framing in CRLF (\\r\\n): send CRLF")
"""Why a request with a bare LF is refused (400), at once."""


def line_ends_in_bare_lf(pending: bytes | bytearray) -> bool:
    """Whether the line that ``pending`` begins with ends in LF alone, not CRLF: its first LF has
    no CR before it.

    RFC 9112 §2.2 lets a recipient take a bare LF as a line's end; hgwire refuses it (400, as
    lighttpd in front of git http-backend does) rather than waiting, as it did, for a CRLF that
    never comes until ``request_timeout``.  Taking it as a line's end is what it does not do: a
    proxy in front that passes a bare LF on inside what it reads as one header or trailer line
    would frame the request one way and hgwire another (a header it did not see, ``Content-Length``
    say, or a trailer section ended where it did not end it), the next request on that connection
    read as part of this one.  Refusing it and closing leaves nothing to read another way.
    """
    end = pending.find(b"\n")
    return end == 0 or (end > 0 and pending[end - 1] != 0x0D)


MAX_REASON = 200
"""The longest status-line reason phrase sent (hg prints it: ``abort: HTTP Error 404: <phrase>``)."""


def reason_phrase(message: str) -> bytes:
    """The message as a status-line reason: printable ASCII, one line, bounded (whole characters).

    A printable character outside ASCII is sent percent-encoded (its UTF-8 bytes: ``é`` as
    ``%C3%A9``), as a URL holds it: hg prints the reason and nothing else of an HTTP error, and a
    ``?`` in its place told nothing (a hint naming ``équipe/thé`` said ``?quipe/th?``); the name so
    told can be pasted into the URL.  Any other character is ``?``.
    """
    pieces: list[str] = []
    size = 0
    for char in message.replace("\n", " "):
        piece = char if " " <= char <= "~" else quote(char, safe="") if char.isprintable() else "?"
        size += len(piece)
        if size > MAX_REASON:
            break
        pieces.append(piece)
    return "".join(pieces).encode("ascii")
