"""validate_name: any str is a canonical safe name or UnsafeName, and the name stays under the root."""

from __future__ import annotations

import os.path
import unicodedata

from backends.names import validate_name

from .harness import Finding, Target

ROOT = "/srv/repositories"


def run(data: bytes) -> None:
    raw = data.decode("utf-8", "surrogateescape")
    name = validate_name(raw)
    check_safe(name)
    if validate_name(name) != name:
        raise Finding(f"validate_name is not idempotent on {name!r}")


def check_safe(name: str) -> None:
    """The properties every accepted name has (PROTOCOL-NOTES §4)."""
    if ".." in name.split("/") or name.startswith(("-", "/")) or "/-" in name:
        raise Finding(f"accepted option-like or escaping name {name!r}")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name) or "\\" in name:
        raise Finding(f"accepted a control character, lone surrogate or backslash in {name!r}")
    name.encode("utf-8")  # a name must be printable in messages and logs
    joined = os.path.normpath(os.path.join(ROOT, name))
    if os.path.commonpath([ROOT, joined]) != ROOT or joined == ROOT:
        raise Finding(f"{name!r} escapes the root")


def seeds() -> list[bytes]:
    return [b"a/\xc2\x85b", b"/team/app.git", b"team/app", b"a/b/c", b"r.git/", b"../x", b"-oProxyCommand=x", b"a/./b",
            b"caf\xc3\xa9/r", b"a//b", b".hg", b"~user/r", b"a\\b", b"a\x00b"]


TARGET = Target("names", run, seeds, max_size=512)
