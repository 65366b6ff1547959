"""git's ``--pretty=format:`` placeholders for one commit, as ``export-subst`` needs them.

Understood: ``%H %h %T %t %P %p`` (ids, abbreviated to 7 digits), ``%an %ae``
and ``%cn %ce`` (names, emails), the dates ``%ad %aD %at %ai %aI %as`` and their
``%c`` twins, ``%s %b %B`` (subject, body, raw message), ``%e`` (encoding),
``%n``, ``%%`` and ``%x<hex>``, checked against ``git log --format``.
Anything else is left as written: ``%d``/``%D`` (the ref names git adds) among it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from dulwich.objects import Commit

ABBREV = 7
_PLACEHOLDER = re.compile(rb"%(x[0-9a-fA-F]{2}|[ac][a-zA-Z]|.)", re.DOTALL)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def pretty(commit: Commit, fmt: bytes) -> bytes:
    """``fmt`` with its placeholders replaced by ``commit``'s details (git's ``format:``)."""
    return _PLACEHOLDER.sub(lambda m: _expand(commit, m.group(1), m.group(0)), fmt)


def _expand(commit: Commit, code: bytes, literal: bytes) -> bytes:
    simple = _simple(commit, code)
    if simple is not None:
        return simple
    if len(code) == 2 and code[:1] in b"ac":
        who, when, offset = ((commit.author, commit.author_time, commit.author_timezone) if code[:1] == b"a"
                             else (commit.committer, commit.commit_time, commit.commit_timezone))
        return _person(who, when, offset, code[1:]) or literal
    return literal


def _simple(commit: Commit, code: bytes) -> bytes | None:
    if code == b"H":
        return bytes(commit.id)
    if code == b"h":
        return bytes(commit.id)[:ABBREV]
    if code == b"T":
        return bytes(commit.tree)
    if code == b"t":
        return bytes(commit.tree)[:ABBREV]
    if code == b"P":
        return b" ".join(bytes(p) for p in commit.parents)
    if code == b"p":
        return b" ".join(bytes(p)[:ABBREV] for p in commit.parents)
    if code in (b"s", b"b", b"B"):
        message = bytes(commit.message)
        subject, body = _split_message(message)
        return {b"s": subject, b"b": body, b"B": message}[code]
    if code == b"e":
        return bytes(commit.encoding or b"")
    if code == b"n":
        return b"\n"
    if code == b"%":
        return b"%"
    if code[:1] == b"x" and len(code) == 3:
        return bytes([int(code[1:], 16)])
    return None


def _person(ident: bytes, when: int, offset: int, what: bytes) -> bytes | None:
    name, _, rest = ident.partition(b" <")
    email = rest.rstrip(b">")
    if what == b"n":
        return name
    if what == b"e":
        return email
    if what == b"t":
        return b"%d" % when
    moment = datetime.fromtimestamp(when, timezone(timedelta(seconds=offset)))
    zone = _zone(offset)
    if what == b"d":  # git's default date format
        return (f"{_DAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day} "
                f"{moment:%H:%M:%S} {moment.year} {zone}").encode()
    if what == b"D":  # RFC 2822
        return (f"{_DAYS[moment.weekday()]}, {moment.day} {_MONTHS[moment.month - 1]} {moment.year} "
                f"{moment:%H:%M:%S} {zone}").encode()
    if what == b"i":
        return f"{moment:%Y-%m-%d %H:%M:%S} {zone}".encode()
    if what == b"I":
        return f"{moment:%Y-%m-%dT%H:%M:%S}{zone[:3]}:{zone[3:]}".encode()
    if what == b"s":
        return f"{moment:%Y-%m-%d}".encode()
    return None


def _zone(offset: int) -> str:
    sign = "-" if offset < 0 else "+"
    minutes = abs(offset) // 60
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _split_message(message: bytes) -> tuple[bytes, bytes]:
    """git's subject (the first paragraph, its lines joined by spaces) and body (the rest)."""
    lines = message.split(b"\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    subject = b" ".join(line.strip() for line in lines[start:end])
    rest = end
    while rest < len(lines) and not lines[rest].strip():
        rest += 1
    return subject, b"\n".join(lines[rest:])
