"""What a refusal of a name that reaches no repository adds to say what to ask for instead.

A folder of repositories (``git ls-remote git://host/team``) was "team is not a git or Mercurial
repository", a name in the wrong case (``Team/App.git``) "repository Team/App.git not found"; git
daemon says "access denied or repository not exported" to both.  The hint names only repositories
the client may read where it asks; everything here blocks (the backend reads directories)."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterable

from backends import names_in_folder
from backends.hg.keys import BOOLEANS
from backends.interfaces import Kind
from gateway.auth import FOLDER_SCAN_LIMIT, Access
from gateway.channel import SessionContext
from gateway.policy import EXPORT_CHECKED, export_all, exported, read_base_git_config
from gateway.protected import read_base_hgrc
from gateway.repo_use import close_git
from gateway.web_access import check_web_access, upload_pack_enabled
from protocols.errors import HgwireError, NotARepository, RepositoryNotFound


def with_hint(ctx: SessionContext, refused: HgwireError) -> HgwireError:
    """``refused`` (the backend's answer to ``ctx.repo_name``), or the same refusal saying which
    repositories the client may have meant.  None is looked for where no name may be told
    (``_never_named``): no folder is read for a hint that would not be given."""
    if _never_named(ctx):
        return refused
    if isinstance(refused, NotARepository) and (inside := readable_inside(ctx)) is not None:
        return NotARepository(f"{refused} but a folder of them; name one, such as {inside}")
    if isinstance(refused, RepositoryNotFound) and (twin := readable_twin(ctx)) is not None:
        return RepositoryNotFound(f"{refused}; names are case-sensitive: did you mean {twin}?")
    if isinstance(refused, RepositoryNotFound) and ";" not in str(refused) \
            and (near := readable_near(ctx)) is not None:
        return RepositoryNotFound(f"{refused}; did you mean {near}?")
    return refused


HINT_NAMES = 3
"""Repositories a refusal of a folder's name names at most (``readable_inside``)."""


def _never_named(ctx: SessionContext) -> bool:
    """Whether no repository may be named where the client asks: git daemon's and git
    http-backend's transports under ``[git] export_all = false``, where whether one is exported is
    in the repository itself (a hint would name unexported ones).  Asked (``with_hint``) before the
    backend scans any folder, which would be work for nothing."""
    return ctx.transport in EXPORT_CHECKED and not export_all(ctx.authorizer)


def _may_read(ctx: SessionContext, name: str) -> bool:
    """Whether the user may read ``name`` where it asks (blocking: the rules may read files)."""
    if ctx.authorizer is None:
        return True
    try:
        ctx.authorizer.check(ctx.user, name, ctx.transport, Access.READ)
    except HgwireError:
        return False
    return _web_shows(ctx, name)


WEB_TRANSPORTS = frozenset({"hg-http", "git-http"})
"""The transports where a repository's own settings say who may see it: an hg one's ``[web]``
(hgweb's), a git one's ``git-daemon-export-ok`` and ``http.uploadpack`` (git http-backend's)."""


def _web_shows(ctx: SessionContext, name: str) -> bool:
    """Whether the settings of ``name`` itself let the user see it where it asks: over HTTP an hg
    repository's ``[web]`` read lists (``allow_read``, ``deny_read``: hgweb refuses it the
    repository) and ``hidden`` (hgweb's index does not list it), as the index applies them; a
    hint named ``team/closed``, whose hgrc lets only alice read it, to anyone; a git repository
    that git http-backend would not serve (``_git_shown``), which an hg client was told of (blocking:
    opens it)."""
    if ctx.transport not in WEB_TRANSPORTS:
        return True
    try:
        repo = ctx.backend.open(name)
    except (HgwireError, OSError):
        return False
    try:
        if repo.kind is Kind.GIT:
            return _git_shown(ctx, repo)
        if repo.kind is not Kind.HG:
            return True
        read_base_hgrc(repo, ctx.authorizer)  # (the --config file's [hg] hgrc, read before its own)
        settings = getattr(repo, "web_settings", None)
        if settings is not None and BOOLEANS.get(settings().get(b"hidden", b"").strip().lower(), False):
            return False
        check_web_access(repo, ctx.user, None)
    except (HgwireError, OSError):
        return False
    finally:
        close_git(repo)
    return True


def _git_shown(ctx: SessionContext, repo: object) -> bool:
    """Whether a git repository is served over HTTP, as the index tells it (``hg_archive``'s
    ``check_git_readable``, without its log line): exported (``[git] export_all``, or its
    ``git-daemon-export-ok``) and its ``http.uploadpack`` not false."""
    read_base_git_config(ctx.authorizer, repo)
    return exported(ctx.authorizer, repo) and upload_pack_enabled(repo)


def readable_twin(ctx: SessionContext) -> str | None:
    """The repository the missing name reaches but for its letters' case (``Team/App.git`` for
    ``team/app.git``), when the user may read it (a name it may not read is never told); None
    otherwise, or when the backend cannot say (its optional ``case_twin``).  git daemon says
    "access denied or repository not exported" alike for both, with no hint (blocking)."""
    twin_of = getattr(ctx.backend, "case_twin", None)
    if twin_of is None:
        return None
    twin = twin_of(ctx.repo_name)
    return twin if isinstance(twin, str) and _may_read(ctx, twin) else None


def readable_inside(ctx: SessionContext) -> str | None:
    """Up to ``HINT_NAMES`` repositories inside the folder the request names, among the first
    ``FOLDER_SCAN_LIMIT`` the backend finds there, that the user may read (``team/app.git``, or
    ``team/app.git, team/lib.git and more``); None when there are none, or the backend cannot list
    them (its optional ``names_below``): "… is not a git or Mercurial repository" said nothing of
    what to ask instead (blocking)."""
    below = getattr(ctx.backend, "names_below", None)
    if below is None:
        return None
    found = below(ctx.repo_name, FOLDER_SCAN_LIMIT)
    candidates = _own_kind_first(ctx, found or ())
    # (no more than it names looked at past the authorizer: each is opened over HTTP, ``_web_shows``)
    readable = list(itertools.islice((name for name in candidates if _may_read(ctx, name)), HINT_NAMES + 1))
    if not readable:
        return None
    return ", ".join(readable[:HINT_NAMES]) + (" and more" if len(readable) > HINT_NAMES else "")


NEAR_SCAN_LIMIT = 1000
"""Repository names below the asked name's folder looked at at most (``readable_near``), for a
backend without ``folder_entries`` (``CASE_TWIN_SCAN`` entries of the folder itself with it, of
which more than this are compared one letter away only: difflib's ratio is not asked)."""


def readable_near(ctx: SessionContext) -> str | None:
    """The repository in the folder of the missing name whose name is closest to it, a letter
    or two away (``team/exsting.git``: ``team/existing.git``; ``.git`` and case aside), when the
    user may read it; None otherwise.  A mistyped URL was "repository team/exsting.git not found"
    alone, as git daemon, git http-backend and ``hg serve`` say (blocking: lists the folder)."""
    asked = ctx.repo_name.strip("/")
    folder = asked.rpartition("/")[0]
    inside = folder + "/" if folder else ""
    entries = getattr(ctx.backend, "folder_entries", None)  # (optional: the folder's own entries, unchecked)
    listed = entries(inside) if entries is not None else None
    if listed is not None:
        names, checked = listed, False
    else:
        names = [n for n in itertools.islice(names_in_folder(ctx.backend, inside), NEAR_SCAN_LIMIT)
                 if n.rpartition("/")[0] == folder]
        checked = True
    stems: dict[str, list[str]] = {}  # (app of app.git and app, App and app: each name of a stem, not the last)
    for name in _own_kind_first(ctx, names):
        stems.setdefault(_stem(name), []).append(name)
    wanted = _stem(asked)
    close = [n for n in stems if _one_edit(wanted, n)]  # (a short name's one typo is far by ratio: apq/app 0.67)
    if len(stems) <= NEAR_SCAN_LIMIT:  # (difflib weighs each name: 30 ms for 10,000 alike, r0001 … r9999)
        close += difflib.get_close_matches(wanted, stems, n=3, cutoff=NEAR_CUTOFF)
    for near in dict.fromkeys(close):  # (one found both ways is asked of the rules once)
        for name in stems[near]:
            if (checked or _is_repository(ctx, name)) and _may_read(ctx, name):
                return name
    return None


def _is_repository(ctx: SessionContext, name: str) -> bool:
    """Whether ``name`` is itself a repository's name (a folder's entry may be a folder of them)."""
    locate = getattr(ctx.backend, "locate", None)
    try:
        located = locate(name) if locate is not None else None
    except HgwireError:
        return False
    return located is not None and located[0] == name


def _own_kind_first(ctx: SessionContext, names: Iterable[str]) -> list[str]:
    """``names`` in name order, those of the client's kind first: a git client's ``NAME.git``, as
    git repositories are named, an hg client's the others."""
    git = ctx.transport.startswith("git")
    return sorted(names, key=lambda n: (n.endswith(".git") is not git, n))


NEAR_CUTOFF = 0.8
"""difflib's ratio a name must reach to be told as the one meant: ``exsting``/``existing`` is 0.93,
``lbi``/``lib`` 0.67 (but one edit away: ``_one_edit``)."""


def _one_edit(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter changed, added, dropped, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    start = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if len(a) == len(b):
        swapped = len(a) > start + 1 and a[start:start + 2] == b[start:start + 2][::-1]
        return a[start + 1:] == b[start + 1:] or (swapped and a[start + 2:] == b[start + 2:])
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[start + 1:] == shorter[start:]


def _stem(name: str) -> str:
    """What is compared of a name: its last segment, without ``.git``, in lower case (the folder is
    the same for all: compared, it made ``team/lbi`` as close as 0.88 to ``team/lib``)."""
    return name.rpartition("/")[2].removesuffix(".git").lower()
