"""The one hostile-name check for repository names.

Every transport hands the name it received (``/team/app.git``, ``team/app``)
to ``validate_name`` before anything touches storage.  A name is a relative
path of plain segments; anything that could escape the root, be read as a
command-line option, or reach inside a repository's own metadata is refused.
"""

from __future__ import annotations

from protocols.errors import NAMES_ARE_UTF8, NO_REPOSITORY_NAMED, HomePathRefused, UnsafeName, home_path_user

MAX_NAME_LENGTH = 255
MAX_SEGMENTS = 16


def validate_name(raw: str) -> str:
    """Return the canonical form of a repository name or raise UnsafeName.

    Leading and trailing slashes are dropped (git sends ``/r.git`` over git://
    and ``'/r.git'`` over ssh:// but ``'r.git'`` for scp-style URLs).  The
    rest must be segments that are not empty, ``.``/``..``, hidden (``.hg``,
    ``.git``, ``.ssh``) or option-like (leading ``-``: CVE-2017-9462,
    CVE-2017-1000117), and contain no NUL, control character or backslash.
    """
    if len(raw) > MAX_NAME_LENGTH:
        raise UnsafeName(f"repository name is longer than {MAX_NAME_LENGTH} characters")
    if any("\udc80" <= ch <= "\udcff" for ch in raw):  # bytes that were not UTF-8 (surrogateescape)
        raise UnsafeName(NAMES_ARE_UTF8)
    if any(_is_control(ch) for ch in raw):
        raise UnsafeName("repository name contains a control character or is not valid Unicode")
    if "\\" in raw:
        raise UnsafeName("repository name contains a backslash")
    if raw.startswith("-"):
        raise UnsafeName(f"repository name {raw!r} starts with '-'")
    name = raw.strip("/")
    segments = name.split("/")
    if name in ("", "."):  # hg sends "." for ssh://host with no path
        raise UnsafeName(NO_REPOSITORY_NAMED)
    if segments[0].startswith("~"):  # a home directory to git and hg (git daemon's --user-path)
        raise HomePathRefused(home_path_user(segments[0]))
    if len(segments) > MAX_SEGMENTS:
        raise UnsafeName(f"repository name has more than {MAX_SEGMENTS} path segments")
    for segment in segments:
        _check_segment(segment, raw)
    return name


def _is_control(ch: str) -> bool:
    """C0, DEL and C1 controls (U+0085 is a line break to some readers), and lone surrogates
    (bytes that were not UTF-8, which no path or message can encode)."""
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000


def _check_segment(segment: str, raw: str) -> None:
    if segment == "":
        raise UnsafeName(f"repository name {raw!r} contains an empty path segment")
    if segment in (".", ".."):
        raise UnsafeName(f"repository name {raw!r} contains a '{segment}' segment")
    if segment.startswith("."):
        raise UnsafeName(f"repository name {raw!r} contains a hidden segment {segment!r}")
    if segment.startswith("-"):
        raise UnsafeName(f"repository name {raw!r} contains a segment starting with '-'")
    if segment.startswith("~"):
        raise UnsafeName(f"repository name {raw!r} contains a segment starting with '~'")


def strip_git_suffix(name: str) -> str:
    """``team/app.git`` -> ``team/app``; other names unchanged."""
    return name[: -len(".git")] if name.endswith(".git") and len(name) > 4 else name
