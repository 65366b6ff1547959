"""``fs`` backend: a directory tree of bare git repositories and Mercurial repositories.

Each request resolves its name afresh, so repositories that an operator (or
``git``/``hg`` themselves) create or change while the service runs are seen
at once.  Paths are confined with ``realpath``: a symlink inside ROOT may
point elsewhere inside ROOT, never outside it.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import heapq
import itertools
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import BinaryIO

from dulwich.config import ConfigFile, StackedConfig
from dulwich.file import SharedPerm, adjust_shared_perm
from dulwich.repo import Repo, UnsupportedExtension, UnsupportedVersion

from backends import hg_support
from backends.blobs import made_whole
from backends.git import (
    DEFAULT_BRANCH,
    HEAD,
    OPEN_SETTINGS,
    ConfigValueError,
    DulwichGitRepository,
    RefLock,
    _git_bool,
    _git_int,
    adopt_refs,
    read_config,
    symlink_ref,
    valueless_number,
    written_values,
)
from backends.git_objects import adopt_store
from backends.interfaces import OBJECT_FORMATS, Kind, ObjectFormat, Repository
from backends.names import strip_git_suffix, validate_name
from protocols.errors import (
    HgwireError,
    NotARepository,
    RepositoryNotFound,
    StorageError,
    UnsafeName,
    UnsupportedFeature,
    storage_advice,
)

GIT_SUFFIX = ".git"
CASE_TWIN_SCAN = 10_000
"""Entries of a directory ``case_twin`` reads at most (a root of 10,000 repositories: some 10 ms)."""
ANY_KIND = frozenset(Kind)
HG_ONLY = frozenset({Kind.HG})
REF_LOCK_FILE = "hgwire-refs.lock"
MAX_LIST_DEPTH = 4
SERVED_REMEMBERED = 8192
"""Paths of the repositories opened that ``_SERVED`` remembers, the most recently opened."""

_SERVED: OrderedDict[str, bool] = OrderedDict()
"""Where this process opened repositories (any backend instance: the paths are absolute): a request
that finds nothing there any more lets go of what the process-wide caches keep of the one that was
(``_found_gone``).  A path pushed out of it by ``SERVED_REMEMBERED`` newer ones leaves that to
the caches' own bounds."""
_SERVED_LOCK = threading.Lock()


def _served(path: str) -> None:
    with _SERVED_LOCK:
        _SERVED[path] = True
        _SERVED.move_to_end(path)
        if len(_SERVED) > SERVED_REMEMBERED:
            _SERVED.popitem(last=False)


def _found_gone(path: str) -> None:
    """No repository is at ``path`` now: if one was opened there, let go of what the process keeps
    parsed of it (the hg engine's kept repository, indexes, views..., git's packed refs, pack views,
    bitmaps), held until the caches' bounds pushed it out before: removed or renamed on disk (or
    removed, then made again: the new one's files are read afresh all the same, by their stamps)."""
    with _SERVED_LOCK:
        if not _SERVED.pop(path, False):
            return
    from backends.git import forget_kept

    hg_support.forget_hg(path)
    forget_kept(path)


def detect_kind(path: str) -> Kind | None:
    """Which kind of repository ``path`` is (a bare git dir, a dir with ``.hg/`` or ``.git/``), if any."""
    if os.path.isdir(os.path.join(path, ".hg")):
        return Kind.HG
    if _is_git_dir(path) or _is_git_dir(os.path.join(path, ".git")):
        return Kind.GIT
    return None


def _check_readable(name: str, path: str, kind: Kind | None) -> None:
    """``StorageError`` when the server may not read the repository at ``path`` (its directory, or
    the ``.hg`` or git directory and objects it is made of): not "not a repository" or "not found",
    which is what a directory it cannot look into otherwise looks like."""
    if kind is Kind.HG:
        needed = [path, os.path.join(path, ".hg")]
    elif kind is Kind.GIT:
        git_dir = git_dir_of(path)[0]
        needed = [path, git_dir, os.path.join(git_dir, "objects"), os.path.join(git_dir, "refs")]
    else:
        needed = [path]
    denied = next((directory for directory in needed if not os.access(directory, os.R_OK | os.X_OK)), None)
    if denied is not None:  # (the directory is the operator's to know, in the log: not the client's)
        raise StorageError(f"repository {name} cannot be read by the server ({os.strerror(errno.EACCES)}); "
                           "tell the server's operator") from PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                                                                             denied)


def _has_gitfile(path: str) -> bool:
    """Whether ``path/.git`` is a gitfile (``gitdir: DIR``), which git daemon follows to a git
    directory kept elsewhere: hgwire serves none (it could name a directory outside the root, or
    another repository's under another name's rules), and says so."""
    try:
        with open(os.path.join(path, ".git"), "rb") as gitfile:
            return gitfile.read(8) == b"gitdir: "
    except OSError:  # none, a directory, unreadable: no gitfile to tell of
        return False


def _is_git_dir(path: str) -> bool:
    return (_head_ok(os.path.join(path, "HEAD"))
            and os.path.isdir(os.path.join(path, "objects"))
            and os.path.isdir(os.path.join(path, "refs")))


def _head_ok(head: str) -> bool:
    """``HEAD`` is a file, or a symbolic link to ``refs/…`` (git's ``validate_headref``: what git
    before 1.4.4 made, and ``core.preferSymlinkRefs``), whether its branch is loose or packed."""
    if os.path.islink(head):
        return symlink_ref(os.fsencode(head)) is not None  # (git takes refs/../x: not so here)
    return os.path.isfile(head)


def git_dir_of(path: str) -> tuple[str, bool]:
    """The git directory of the repository at ``path`` and whether it is bare.

    A repository with a working tree (``NAME/.git/``, as ``git init`` makes one) is served from
    its ``.git`` as git daemon serves it; a ``.git`` that is a file (a worktree or submodule
    pointer) makes no repository here.
    """
    return (path, True) if _is_git_dir(path) else (os.path.join(path, ".git"), False)


class FilesystemBackend:
    """Repositories below ``root``: ``NAME.git`` bare git repos (or ``NAME/.git`` with a working tree),
    ``NAME/.hg`` Mercurial repos."""

    names_through_links = False
    """Whether a name may lead through a symbolic link inside the root (an alias of a repository).
    Off unless the service turns it on, which it does for ``--backend fs`` without ``--config``
    rules: they are matched on the name asked for, so an alias (``ROOT/pub -> private``) would serve
    a repository under another name's rules; and a backend that wraps this one (the README's
    example) may match rules of its own on names, so one it makes keeps aliases off."""

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        # the root's absolute paths (as given, and without links) as a name holds them: "srv/hg/"
        self._root_names = tuple(dict.fromkeys(path.strip("/") + "/" for path in (os.path.abspath(root), self.root)
                                               if path.strip("/")))

    def _checked_ancestors(self, name: str, creating: bool = False) -> None:
        """Refuse a name inside a bare git repository's own files (``g.git/refs/heads/x.lock``: made,
        it would lock that repository's branch; ``g.git/refs/heads/x.git``, refs no clone can fetch),
        and, when ``names_through_links`` is off, one whose directories lead through a symbolic link
        (``_checked_leaf`` looks at the last segment, which differs between a name's candidates).  A
        repository in another's working directory is served, as hgweb serves one (``tools/log``
        inside ``tools``: its files are not the outer repository's).  Only ``creating`` is told
        that the name lies inside a repository: a request for it is answered as for a name nothing
        is at (``g.git/x`` "not found"), so that it tells nobody whom access rules keep from
        ``g.git`` that ``g.git`` exists."""
        segments = name.split("/")
        for depth in range(1, len(segments)):
            ancestor = "/".join(segments[:depth])
            if _is_git_dir(self._confined(ancestor)):
                if not creating:  # as a name nothing is at: it must not tell who may not read it of its ancestor
                    raise RepositoryNotFound(f"repository {name} not found{self._root_hint(name)}")
                raise UnsafeName(f"repository name {name!r} lies inside repository {ancestor!r}")
        if not self.names_through_links and any(
                os.path.islink(os.path.join(self.root, *segments[:depth])) for depth in range(1, len(segments))):
            raise _through_link(name)

    def _checked_leaf(self, candidate: str) -> None:
        if not self.names_through_links and os.path.islink(os.path.join(self.root, candidate)):
            raise _through_link(candidate)

    def _confined(self, relative: str) -> str:
        """The real path of ``relative`` under the root; UnsafeName if it escapes."""
        path = os.path.realpath(os.path.join(self.root, relative))
        if path != self.root and not path.startswith(self.root + os.sep):
            raise UnsafeName(f"repository name {relative!r} leads outside the repository root")
        return path

    def _candidates(self, name: str) -> list[tuple[str, frozenset[Kind]]]:
        """Where a request for ``name`` may find its repository, in order, each with the kinds it
        may find there.  As git's ``enter_repo``: ``name`` and ``name.git`` (each a bare directory
        or one with ``.git/``); and, as hgwire's clone URLs name every git repository ``NAME.git``,
        ``name`` without its ``.git`` (a working tree's ``work.git`` is ``work/.git``), but never
        a name that still ends with ``.git``: ``app.git.git`` does not reach ``app.git``, which git
        daemon and git over ssh refuse too.  A Mercurial repository is reached as it always was."""
        candidates = [(name, ANY_KIND), (name + GIT_SUFFIX, ANY_KIND)]
        if (bare := strip_git_suffix(name)) != name:
            candidates.append((bare, HG_ONLY if bare.endswith(GIT_SUFFIX) else ANY_KIND))
        return candidates

    def _taken(self, name: str) -> bool:
        """Whether a repository a request for ``name`` (or ``name`` without ``.git``) reaches exists:
        a new repository may not take a name that another one answers to."""
        bare = strip_git_suffix(name)
        return any(detect_kind(self._confined(c)) for c in dict.fromkeys([name, bare + GIT_SUFFIX, bare]))

    def _locate(self, raw: str) -> tuple[str, str, Kind]:
        name = validate_name(raw)
        existing_dir = None
        elsewhere = False
        self._checked_ancestors(name)  # (a name's candidates differ in their last segment only)
        for candidate, kinds in self._candidates(name):
            self._checked_leaf(candidate)
            path = self._confined(candidate)
            kind = detect_kind(path)
            if kind in kinds:
                _check_readable(candidate, path, kind)
                return candidate, path, kind
            if kind is None:
                _found_gone(path)
            if kind is None and os.path.isdir(path):
                _check_readable(candidate, path, None)
                if kinds is ANY_KIND:
                    existing_dir = candidate
                    elsewhere = elsewhere or _has_gitfile(path)
        if elsewhere:
            raise UnsupportedFeature(
                "unsupported repository feature: a working tree whose git directory lies elsewhere (its .git is "
                "a file naming it, as git clone --separate-git-dir and git worktree add write); serve the git "
                "directory it names instead, or move that directory back into its .git")
        if existing_dir is not None:
            raise NotARepository(f"{existing_dir} is not a git or Mercurial repository")
        raise RepositoryNotFound(f"repository {name} not found{self._root_hint(name)}")

    def _root_hint(self, name: str) -> str:
        """For a name that starts with the root's own absolute path, what an older setup's URL
        holds (``ssh://host//srv/hg/a`` of hg-ssh, a git-shell's or a git daemon's without
        ``--base-path``): its rest, as the refusal's hint, whether or not a repository is there (so
        the hint tells nobody which names exist, which access rules may hide). Nothing otherwise,
        so the root's path is never told to a client who did not send it."""
        for own in self._root_names:
            rest = name[len(own):] if name.startswith(own) else ""
            try:
                validate_name(rest)
            except HgwireError:  # no rest, or no name this server takes: no hint
                continue
            return f"; this server names repositories by their path under its root: {rest}"
        return ""

    def locate(self, name: str) -> tuple[str, Kind] | None:
        """The stored name and kind of the repository a request for ``name`` reaches (``app`` may
        reach ``app.git``), or None when there is none; ``UnsafeName`` for a name refused."""
        try:
            found, _, kind = self._locate(name)
        except (RepositoryNotFound, NotARepository, UnsupportedFeature):  # (a gitfile's working tree)
            return None
        return found, kind

    def open(self, name: str) -> Repository:
        found, path, kind = self._locate(name)
        return self._open_located(found, path, kind)

    def open_for_reading(self, name: str) -> Repository:
        """``open`` for a request that only reads the repository and sets nothing on it: the name is
        checked and found as by ``open``, and an hg repository opened before for it is given again
        while nothing an open reads has changed on disk (``backends.hg.open_for_reading``)."""
        found, path, kind = self._locate(name)
        if kind is Kind.HG:
            _served(path)
            return hg_support.open_hg_for_reading(path, found)
        return self._open_located(found, path, kind)

    def _open_located(self, found: str, path: str, kind: Kind) -> Repository:
        _served(path)
        if kind is Kind.HG:
            return hg_support.open_hg(path, found)
        git_dir, bare = git_dir_of(path)
        if not bare and os.path.islink(git_dir):
            raise UnsafeName(f"repository {found} has a symlinked .git directory and is not served")
        _refuse_symlinked_stores(git_dir, found)
        served: DulwichGitRepository = DulwichGitRepository(
            found, _open_git(git_dir), lock=_flock(git_dir, lambda: served.shared_perm()), spool_dir=git_dir,
            bare=bare, work_tree=None if bare else path, owns_repo=True)
        return served

    def new_git_object_format(self) -> ObjectFormat:
        """The object format of a git repository ``create`` makes now (``default_object_format``)."""
        return OBJECT_FORMATS[default_object_format()]

    def create(self, name: str, kind: Kind) -> Repository:
        name = validate_name(name)
        if kind is Kind.GIT:
            name = strip_git_suffix(name) + GIT_SUFFIX
        self._checked_ancestors(name, creating=True)
        self._checked_leaf(name)
        if self._taken(name):
            raise FileExistsError(f"repository {name} already exists")
        path = self._confined(name)
        _served(path)
        object_format = default_object_format() if kind is Kind.GIT else None
        try:
            if kind is Kind.HG:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                return hg_support.create_hg(path, name)
            _made_whole(path, lambda directory: _init_git(directory, object_format))
        except FileExistsError:
            raise
        except OSError as exc:  # a full disk, a quota, a read-only root: nothing is left half made
            raise StorageError(f"the server could not create repository {name} ({exc.strerror or exc}); "
                               f"{storage_advice(exc)}") from exc
        created = Repo(path)
        adopt_store(created.object_store)
        adopt_refs(created.refs)
        made: DulwichGitRepository = DulwichGitRepository(
            name, created, lock=_flock(path, lambda: made.shared_perm()), spool_dir=path, owns_repo=True)
        return made

    def exists(self, name: str) -> bool:
        try:
            self._locate(name)
        except (RepositoryNotFound, NotARepository):
            return False
        return True

    def list(self) -> Iterable[str]:
        return sorted(self._walk(self.root, "", 0))

    def case_twin(self, name: str) -> str | None:
        """The repository a request for ``name``, which reaches none, would reach were names not
        case-sensitive (``team/app.git`` for ``Team/App.git``; with or without ``.git`` as the
        request's own name), or None when there is none, or more than one.  Each directory on
        the way is read, ``CASE_TWIN_SCAN`` entries at most: for a "not found"'s hint, which the
        caller gives only where the user may read the name it returns."""
        try:
            segments = validate_name(name).split("/")
        except HgwireError:
            return None
        found = ""
        for depth, segment in enumerate(segments):
            wanted = {segment.casefold()}
            if depth == len(segments) - 1:
                bare = strip_git_suffix(segment).casefold()
                wanted |= {bare, bare + GIT_SUFFIX}
            match = self._entry_like(found, wanted)
            if match is None:
                return None
            found = f"{found}/{match}" if found else match
        return found if found != name and self.exists(found) else None

    def folder_entries(self, folder: str) -> builtins.list[str] | None:
        """The names of the directories directly in ``folder`` (``team/``; ``""``: the root), each one
        that may be a repository or a folder of them, or a name no client may ask for (not looked
        into: ``locate`` says which), ``CASE_TWIN_SCAN`` entries read at most, in name order; None for a
        folder a client may not name, a link, a repository or none.  For a mistyped name's hint,
        which compares them all and asks ``locate`` of the few close ones (``list_folder`` looked
        into 1,000 directories and their folders for it)."""
        path = self.root
        prefix = folder.strip("/")
        if prefix:
            try:
                if validate_name(prefix) != prefix:
                    return None
            except UnsafeName:
                return None
            for depth, segment in enumerate(prefix.split("/"), 1):
                path = os.path.join(path, segment)
                if (depth >= MAX_LIST_DEPTH or os.path.islink(path) or not os.path.isdir(path)
                        or detect_kind(path) is not None):
                    return None
            prefix += "/"
        found: builtins.list[str] = []
        try:
            with os.scandir(path) as scan:
                for entry in itertools.islice(scan, CASE_TWIN_SCAN):
                    if not entry.name.startswith((".", "-")) and entry.is_dir(follow_symlinks=False):
                        found.append(prefix + entry.name)
        except OSError:
            return None
        return sorted(found)

    def _entry_like(self, folder: str, wanted: set[str]) -> str | None:
        """The one directory entry of ``folder`` whose case-folded name is in ``wanted``; None for
        none or several (``app`` and ``App.git`` both: no guess)."""
        matches: builtins.list[str] = []
        try:
            with os.scandir(os.path.join(self.root, folder)) as entries:
                for entry in itertools.islice(entries, CASE_TWIN_SCAN):
                    if entry.name.casefold() in wanted and not entry.name.startswith("."):
                        matches.append(entry.name)
        except OSError:
            return None
        return matches[0] if len(matches) == 1 else None

    def names_below(self, name: str, limit: int) -> builtins.list[str] | None:
        """The names of repositories inside the directory a request for ``name`` reaches when it
        reaches no repository (``team`` holding ``team/plans.git``), at most ``limit`` of them and
        at most ``limit`` directories looked at (a few ``stat`` calls: access rules ask it on the
        event loop, to answer a directory that holds only repositories a user may not read as a
        name nothing is at); None when ``name`` reaches no directory."""
        try:
            name = validate_name(name)
            self._checked_ancestors(name)
            folder = next((c for c, kinds in self._candidates(name) if kinds is ANY_KIND
                           and not os.path.islink(os.path.join(self.root, c))
                           and os.path.isdir(self._confined(c)) and detect_kind(self._confined(c)) is None), None)
        except HgwireError:
            return None
        if folder is None:
            return None
        found: builtins.list[str] = []
        budget = [limit]
        for below in self._walk(self._confined(folder), folder + "/", 0, budget):
            found.append(below)
            if len(found) >= limit:
                break
        return found

    def list_folder(self, folder: str = "", after: str = "") -> Iterator[str]:
        """The names ``list()`` gives that lie below ``folder`` (``team/``; ``""``: the whole root)
        and sort after ``after``, in name order, read as they are asked for: a directory is listed
        when the walk reaches it, an entry whose names all sort before ``after`` is passed over
        without a ``stat``, and one is looked into (is it a repository?) only once it is the next
        in order.  So a caller that stops after so many names (the SSH greeting, a page of the
        index, ``/team/``) reads the directories that hold them, not the whole root.  Nothing for
        a folder a client may not name, a link (as ``list()`` never follows one) or a repository."""
        path, depth = self.root, 0
        prefix = folder.strip("/")
        if prefix:
            try:
                if validate_name(prefix) != prefix:
                    return
            except UnsafeName:
                return
            for segment in prefix.split("/"):
                path = os.path.join(path, segment)
                depth += 1
                if (depth >= MAX_LIST_DEPTH or os.path.islink(path) or not os.path.isdir(path)
                        or detect_kind(path) is not None):
                    return
            prefix += "/"
        yield from self._ordered_walk(path, prefix, depth, after)

    def _ordered_walk(self, path: str, prefix: str, depth: int, after: str) -> Iterator[str]:
        """``_walk``'s names below ``path`` that sort after ``after``, in name order, lazily.

        The names from an entry ``E`` are ``E`` itself (a repository) or ``E/…`` (a folder): each
        entry waits in a heap under ``E``, the least its names can be; once it is the least, it
        is looked into, and a folder goes back under ``E/``, where all its names sort (no name of
        another entry falls among them), to be walked when it is the least again."""
        try:
            with os.scandir(path) as scan:
                entries = [(prefix + entry.name, entry.path) for entry in scan
                           if not entry.name.startswith((".", "-")) and entry.is_dir(follow_symlinks=False)]
        except OSError:
            return
        waiting: builtins.list[tuple[str, bool, str]] = []
        for name, entry_path in entries:
            if after and name + "0" <= after:  # (every name from it, NAME or NAME/…, sorts before NAME0)
                continue
            try:
                validate_name(name)  # a name no client may ask for (``~x``, a control character) is not listed
            except UnsafeName:
                continue
            waiting.append((name, False, entry_path))
        heapq.heapify(waiting)
        while waiting:
            key, is_folder, entry_path = heapq.heappop(waiting)
            if is_folder:
                yield from self._ordered_walk(entry_path, key, depth + 1, after)
            elif detect_kind(entry_path) is not None:
                if key > after:
                    yield key
            elif depth + 1 < MAX_LIST_DEPTH:
                heapq.heappush(waiting, (key + "/", True, entry_path))

    def _walk(self, path: str, prefix: str, depth: int, budget: builtins.list[int] | None = None) -> Iterator[str]:
        """Repository names below ``path``; ``budget``: how many directory entries (files too) may
        still be read, counted down, in the directories' own order (unbounded and by name without one)."""
        try:
            with os.scandir(path) as scan:
                if budget is None:
                    entries = sorted(scan, key=lambda e: e.name)
                else:
                    entries = list(itertools.islice(scan, max(budget[0], 0)))
                    budget[0] -= len(entries)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith((".", "-")) or not entry.is_dir(follow_symlinks=False):
                continue
            name = prefix + entry.name
            try:
                validate_name(name)  # a name no client may ask for (``~x``, a control character) is not listed
            except UnsafeName:
                continue
            if detect_kind(entry.path) is not None:
                yield name
            elif depth + 1 < MAX_LIST_DEPTH:
                yield from self._walk(entry.path, name + "/", depth + 1, budget)


CREATING_PREFIX = ".tmp-create-"
"""A repository being made: hidden (not listed, not a valid name) until it is renamed into place."""
STALE_CREATING_SECONDS = 24 * 3600


def _made_whole(path: str, make: Callable[[str], None]) -> None:
    """``blobs.made_whole`` of a repository directory, once the leftovers of a day ago are gone."""
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    _sweep_creating(parent)
    made_whole(path, make, CREATING_PREFIX)


def _sweep_creating(parent: str) -> None:
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(CREATING_PREFIX):
            with suppress(OSError):
                if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_CREATING_SECONDS:
                    shutil.rmtree(entry.path)


def default_object_format() -> str:
    """The object format of a git repository made here (a push to a new name): ``GIT_DEFAULT_HASH``
    in the service's environment, as ``git init`` reads it, else SHA-1.

    As git (``hash_algo_by_name``): ``sha1`` or ``sha256`` exactly, in lower case; any other value,
    an empty one among them, is refused (``git init`` dies: "unknown hash algorithm 'SHA256'")."""
    name = os.environ.get("GIT_DEFAULT_HASH")
    if name is None:
        return "sha1"
    if name not in OBJECT_FORMATS:
        raise StorageError(f"GIT_DEFAULT_HASH in the server's environment is {name[:20]!r}, which git does not "
                           "know, so no git repository can be made; set it to sha1 or sha256 (lower case) or unset it")
    return name


def _through_link(name: str) -> UnsafeName:
    return UnsafeName(f"repository name {name!r} leads through a symbolic link; with access rules "
                      "(--config) a repository is served by its own name only")


def _init_git(directory: str, object_format: str | None = None) -> None:
    """A new bare repository, its HEAD on ``main``.  No user's config is read (dulwich reads the
    process's ``$HOME/.gitconfig`` for ``init.defaultBranch`` otherwise: under ``twistd -u``, ``HOME``
    is still root's, unreadable, and every create failed "Permission denied")."""
    repo = Repo.init_bare(directory, object_format=None if object_format in (None, "sha1") else object_format,
                          config=StackedConfig([]), default_branch=DEFAULT_BRANCH.removeprefix(b"refs/heads/"))
    try:
        # dulwich writes ``core.logAllRefUpdates = true``, which ``git init --bare`` leaves unset
        # (false in a bare repository): every push then kept a reflog of each branch and of HEAD,
        # which also keeps a rewritten history's old objects (a purged secret) from ``git gc``.
        config = repo.get_config()
        if config.has_section((b"core",)) and b"logallrefupdates" in config[(b"core",)]:
            config.remove((b"core",), b"logallrefupdates")
            config.write_to_path()
        repo.refs.set_symbolic_ref(HEAD, DEFAULT_BRANCH)
    finally:
        repo.close()


def _refuse_symlinked_stores(path: str, name: str) -> None:
    """A symlinked ``objects``/``refs`` would let one repository write into another."""
    for sub in ("objects", "refs"):
        if os.path.islink(os.path.join(path, sub)):
            raise UnsafeName(f"repository {name} has a symlinked {sub} directory and is not served")


def _flock(path: str, shared: Callable[[], SharedPerm | None]) -> RefLock:
    """The repository's ref-update lock: an flock on ``hgwire-refs.lock``.

    The kernel drops the flock of a holder that dies, but not the ``NAME.lock``
    files its ref updates were writing (dulwich's ``GitFile`` takes them as git
    does), and one left behind by a killed server makes every later update of
    that ref fail.  So the holder writes its pid into the lock file and empties
    it on release: a non-empty file on acquisition means the last holder died
    holding the lock, and the ref ``.lock`` files not older than its pid are
    its leftovers.  ``shared``: the modes ``core.sharedRepository`` asks of the
    file, which every user who pushes to the repository must be able to lock.
    """
    lock_path = os.path.join(path, REF_LOCK_FILE)

    @contextmanager
    def held() -> Iterator[None]:
        fd, writable = _open_ref_lock(lock_path, shared())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if writable:
                last_holder = os.fstat(fd)
                if last_holder.st_size:
                    _remove_ref_locks(path, since_ns=last_holder.st_mtime_ns)
                try:
                    os.pwrite(fd, b"%d\n" % os.getpid(), 0)
                except OSError:  # a full disk: the flock still holds (only a crash's leftovers go unseen),
                    pass  # and each ref's update says what fails
            try:
                yield
            finally:
                if writable:
                    os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    return held


def _open_ref_lock(lock_path: str, perm: SharedPerm | None) -> tuple[int, bool]:
    """The ref-update lock file opened for writing (made as git makes a file, ``0666`` less the
    umask, then given ``core.sharedRepository``'s modes, ``perm``, when this user owns it: one left too
    narrow by an older hgwire is widened), and whether it was.  Another user's file this one may
    not write (made before the repository was shared) is opened for reading: an flock holds on
    that too, only the pid that finds a crash's leftovers is then neither written nor read."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError as exc:
        try:
            return os.open(lock_path, os.O_RDONLY), False
        except OSError:
            raise _lock_refused(exc) from exc
    except OSError as exc:  # a read-only disk
        raise _lock_refused(exc) from exc
    try:
        adjust_shared_perm(lock_path, perm)
    except OSError:  # another user's file (only its owner may change its modes): the lock holds as it is
        pass
    return fd, True


def _lock_refused(exc: OSError) -> StorageError:
    return StorageError(f"the server could not lock the repository's refs ({exc.strerror or exc}); "
                        f"nothing was changed, {storage_advice(exc)}")


def _remove_ref_locks(path: str, since_ns: int) -> None:
    """Remove ``HEAD.lock``, ``packed-refs.lock`` and ``refs/**.lock`` modified at ``since_ns`` or later."""
    candidates = [os.path.join(path, "HEAD.lock"), os.path.join(path, "packed-refs.lock")]
    for dirpath, _, files in os.walk(os.path.join(path, "refs")):
        candidates.extend(os.path.join(dirpath, name) for name in files if name.endswith(".lock"))
    for lock in candidates:
        try:
            if os.lstat(lock).st_mtime_ns >= since_ns:
                os.unlink(lock)
        except FileNotFoundError:
            pass


_V0_EXTENSIONS = frozenset({b"noop", b"preciousobjects", b"partialclone", b"worktreeconfig"})
"""The extensions git reads in a repository of format version 0 (it ignores any other there)."""
_V1_EXTENSIONS = frozenset({b"noop-v1", b"objectformat"})
"""Those git 2.39 reads in version 1 only (it refuses a version 0 repository that has one); any
other it does not know, ignored in version 0 and refused in version 1 ("unknown repository
extension found": ``refStorage``, ``compatObjectFormat``, ``relativeWorktrees`` and
``submodulePathConfig`` came with later gits)."""
_IGNORED_EXTENSIONS = frozenset({b"noop", b"noop-v1", b"worktreeconfig", b"preciousobjects"})
"""Those that change nothing hgwire reads or writes (working trees; ``preciousObjects`` forbids
deleting objects, which only the maintenance repack does: ``DulwichGitRepository`` does not run it)."""


class _ServedRepo(Repo):
    """dulwich's ``Repo``, opened past the extensions git knows and hgwire has no use for.

    dulwich refuses every extension but three, so a repository git serves was refused for an
    explicit ``extensions.refStorage = files``, ``preciousObjects`` (the base of a host's forks),
    ``noop`` or, in format version 0, any extension at all (git ignores them there).  The
    extensions are judged as git's ``check_repository_format`` judges them (``_judge_extensions``)
    before dulwich reads the config; it is shown the config without those hgwire may ignore.
    """

    precious_objects = False

    refusals: Mapping[str, tuple[str, str]] = {}
    """What git would refuse of the repository for its config, by service (``_open_values_for_dulwich``)."""

    opened_config: ConfigFile | None = None
    """The config the open read (without the extensions hgwire ignores), until a session takes it."""

    def __init__(self, path: str) -> None:
        self._judging = True
        try:
            super().__init__(path)
        finally:
            self._judging = False

    def get_named_file(self, path: str | bytes, basedir: str | None = None) -> BinaryIO | None:
        """dulwich's, but for ``info/grafts``, which dulwich parses as it opens the repository and
        no step of hgwire's uses: a comment, a blank line or a line of ids git skips there (git
        reads them all) made the repository unservable ("the repository holds an object the server
        cannot read (Invalid graftpoint b'#')").  The web pages read the file as git does
        (``DulwichGitRepository.grafts``)."""
        if getattr(self, "_judging", False) and os.fsdecode(path) == os.path.join("info", "grafts"):
            return None
        return super().get_named_file(path, basedir)

    def get_config(self) -> ConfigFile:
        """dulwich's, its files read as ``ConfigReads`` reads them (regular files, a bounded size)."""
        path = os.path.join(self.commondir(), "config")
        try:
            config: ConfigFile = read_config(path, condition_matchers=self._get_config_condition_matchers())
        except FileNotFoundError:
            config = ConfigFile()
            config.path = path
        except ValueError as exc:  # dulwich's parse of it, or of a file it includes, failed: git refuses it too
            why = " ".join(str(exc).split())[:120]
            raise StorageError(f"the repository's git config cannot be read ({why}); "
                               "tell the server's operator") from None
        if getattr(self, "_judging", False):
            self.refusals = _open_values_for_dulwich(config)
            self.precious_objects, ignored = _judge_extensions(config)
            for name in ignored:
                with suppress(KeyError):
                    config.remove((b"extensions",), name)
            self.opened_config = config
        return config

    def take_opened_config(self) -> ConfigFile | None:
        """The config the open read, once (None after): a request's settings are read from it, where
        each git request parsed the file three times (the open, its object format, its settings)."""
        config, self.opened_config = self.opened_config, None
        return config


def _judge_extensions(config: ConfigFile) -> tuple[bool, list[bytes]]:
    """Whether the repository's objects are precious, and the extensions its config names that
    dulwich need not see; ``UnsupportedFeature`` (saying why, and what to do) for a repository
    git would refuse or hgwire cannot serve."""
    try:
        version = int(config.get((b"core",), b"repositoryformatversion"))
    except (KeyError, ValueError):
        version = 0  # dulwich refuses a version it cannot read, and any but 0 and 1
    values: dict[bytes, bytes] = {}
    names: dict[bytes, list[bytes]] = {}
    for name, value in config.items((b"extensions",)):
        values[name.lower()] = value if isinstance(value, bytes) else b"true"
        names.setdefault(name.lower(), []).append(name)
    ignored: list[bytes] = []
    if version == 0:
        v1_only = sorted(set(values) & _V1_EXTENSIONS)
        if v1_only:
            raise UnsupportedFeature(f"unsupported repository feature: extensions.{v1_only[0].decode()} in a "
                                     "repository of format version 0, which git refuses too; set "
                                     "core.repositoryformatversion to 1 in its config to serve it")
        for name in set(values) - _V0_EXTENSIONS:  # git ignores them: so does hgwire
            ignored += names[name]
    storage = values.get(b"refstorage") if version else None
    if storage is not None and storage != b"files":
        raise UnsupportedFeature("unsupported repository feature: reftable refs (extensions.refStorage = "
                                 f"{storage.decode('utf-8', 'replace')[:40]}); convert them with "
                                 "'git refs migrate --ref-format=files' to serve it")
    unknown = sorted(set(values) - _V0_EXTENSIONS - _V1_EXTENSIONS) if version else []
    if unknown:  # (git 2.39 refuses them: dulwich would name only some)
        shown = unknown[0].decode("utf-8", "replace")[:40]
        raise UnsupportedFeature(f"unsupported repository feature: git extension '{shown}', which git 2.39 does "
                                 "not know and refuses too (\"unknown repository extension found\"); remove "
                                 f"extensions.{shown} from the repository's config to serve it")
    promisor = values.get(b"partialclone") and b"extensions.partialClone"
    for section in config.sections():  # git since 2.28 marks the remote instead: remote.<name>.promisor
        with suppress(KeyError):
            if not promisor and len(section) == 2 and section[0].lower() == b"remote" \
                    and _config_true(config.get(section, b"promisor")):
                promisor = b"remote.%s.promisor" % section[1]
    if promisor:
        raise UnsupportedFeature(f"unsupported repository feature: a partial clone ({promisor.decode('utf-8', 'replace')[:80]}"
                                 ": objects it lacks are fetched from its promisor remote on demand); serve a "
                                 "whole copy of it, such as one made by 'git clone --mirror' without --filter")
    for name in set(values) & _IGNORED_EXTENSIONS:
        ignored += names[name]
    precious = _config_true(values.get(b"preciousobjects"))
    return precious, ignored


def _config_true(value: bytes | None) -> bool:
    """A boolean extension as git reads it; a value git would not read counts as set (a repository
    whose objects may be precious keeps them)."""
    return value is not None and value.strip().lower() not in (b"false", b"no", b"off", b"0", b"")


def _open_values_for_dulwich(config: ConfigFile) -> dict[str, tuple[str, str]]:
    """The settings of ``OPEN_SETTINGS`` set in ``config`` made ``true``/``false`` or plain
    integers as git reads them, before dulwich's open reads them (it takes no other form: a
    repository whose config said ``core.commitGraph = no`` or ``core.bigFileThreshold = 512m`` was
    served to nobody, each client told "internal error"); one with a value git would not read (any
    of its values where git's config callback meets each, ``last_only`` false: two
    ``core.bigFileThreshold`` lines, the first ``12q``, refuse a push as git's does) is
    dropped from what dulwich's open reads and refuses what git refuses (``refused_by``), in git's
    words: the repository (``StorageError``) when every service refuses it, else what each refused
    service is told, by key (``_ServedRepo.refusals``)."""
    refusals: dict[str, tuple[str, str]] = {}
    for (section, name), setting in OPEN_SETTINGS.items():
        values = written_values(config, section, name)
        if not values:
            continue
        key = f"{section.decode()}.{name.decode()}"
        try:
            for value, valueless in values[-1:] if setting.last_only else values:  # (git dies at the first it cannot read)
                read = str(_git_int(valueless_number(value, valueless), key, 0)).encode() if setting.number else \
                    (b"true" if _git_bool(value, key) else b"false")
            config.set((section,), name, read)
        except ConfigValueError as exc:
            if {"upload-pack", "receive-pack"} <= set(setting.refused_by):
                raise StorageError(str(exc)) from None
            refusals.update({service: (key, str(exc)) for service in setting.refused_by if service not in refusals})
            with suppress(KeyError):
                config.remove((section,), name)
    return refusals


def _open_git(path: str) -> Repo:
    """The repository, if hgwire can serve it: whole history, SHA-1 or SHA-256 objects, no extension
    it does not know."""
    try:
        repo = _ServedRepo(path)
    except UnsupportedExtension as exc:
        raise UnsupportedFeature(f"unsupported repository feature: git extension '{exc.extension}'") from None
    except UnsupportedVersion as exc:
        raise UnsupportedFeature(f"unsupported repository feature: repositoryformatversion {exc.version}") from None
    try:
        shallow = os.path.getsize(os.path.join(path, "shallow")) > 0
    except FileNotFoundError:
        shallow = False
    if shallow:  # the walks of upload-pack would reach parents the repository does not have
        repo.close()
        raise UnsupportedFeature("unsupported repository feature: a shallow repository (its history was cut, "
                                 "as by clone --depth); run 'git fetch --unshallow' in it to serve it")
    config = repo.opened_config if repo.opened_config is not None else repo.get_config()
    try:  # dulwich reads a value it does not know as SHA-1: git refuses the repository
        name = config.get((b"extensions",), b"objectformat").decode("utf-8", "replace").lower()
    except KeyError:
        name = "sha1"
    adopt_store(repo.object_store)
    adopt_refs(repo.refs)
    if name not in OBJECT_FORMATS or name != getattr(getattr(repo, "object_format", None), "name", "sha1"):
        repo.close()
        raise UnsupportedFeature(f"unsupported repository feature: {name} object ids "
                                 "(extensions.objectformat; this server serves SHA-1 and SHA-256 repositories)")
    return repo
