"""hgweb's ``[web]`` access lists of an hg repository's hgrc, as its HTTP requests, its pages and
the hints of a refusal (``gateway.name_hints``) apply them."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import NoReturn

from backends.interfaces import HgRepository
from gateway.http import LoginNeeded
from protocols.errors import PermissionDenied
from protocols.hg_commands import PUSH, Permission


def check_web_access(repo: HgRepository, user: str | None, permission: Permission | None) -> None:
    """hgweb's ``checkauthz`` over the repository's ``[web]`` lists and ``allow-pull``, where set;
    ``permission`` None for what hgweb checks as an interface request (its pages, archives and raw
    files: the read lists only, not ``allow-pull``, which gates the wire protocol's commands).

    They narrow what hgwire's own rules allow, never widen it: an unset
    ``allow-push`` (which hgweb reads as "nobody") leaves pushes to those rules.
    """
    lists = getattr(repo, "web_access", None)
    found = lists() if lists is not None else {}

    def member(names: Sequence[str] | None) -> bool:
        if not names:
            return False
        # a name as logins name it: josé however the hgrc composes it (auth.plain_user)
        return list(names) == ["*"] or (user is not None and user in {unicodedata.normalize("NFC", n) for n in names})

    def refuse(what: str) -> NoReturn:
        message = f"{what} not authorized by the repository's [web] settings"
        raise (LoginNeeded(message) if user is None else PermissionDenied(message))

    deny_read, allow_read = found.get("deny_read"), found.get("allow_read")
    if deny_read and (user is None or member(deny_read)):
        refuse("read")
    if allow_read and not member(allow_read):
        refuse("read")
    if permission is None:
        return
    if permission != PUSH:
        allows_pull = getattr(repo, "web_allows_pull", None)
        if allows_pull is not None and not allows_pull():
            refuse("pull")
        return
    deny_push, allow_push = found.get("deny_push"), found.get("allow-push")
    if deny_push and (user is None or member(deny_push)):
        refuse("push")
    if allow_push is not None and not member(allow_push):
        refuse("push")


def upload_pack_enabled(repo: object) -> bool:
    """Whether a git repository's ``http.uploadpack`` lets git http-backend serve its fetches (its
    backend's optional ``http_service_enabled``; a backend without it serves them)."""
    enabled = getattr(repo, "http_service_enabled", None)
    return enabled is None or enabled("git-upload-pack") is not False
