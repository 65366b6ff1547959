"""Narrow clones: which files a client of hg's ``narrow`` extension tracks.

A narrow client names the files it wants with include and exclude patterns,
``path:DIR`` (a file or a directory and everything under it) and
``rootfilesin:DIR`` (the files directly in a directory), sent as getbundle's
``includepats``/``excludepats`` (with ``narrow=1``) and ``narrow_widen``'s
``oldincludes``/``newincludes``...  The server sends every changeset and
every (flat) manifest, and the revisions of the matching files only.

What matches is what hg 7's ``narrowspec.match`` says: nothing without an
include; with only ``path:`` patterns the nearest pattern above a file decides
(hg's ``shape`` tree: an include inside an exclude inside an include counts);
otherwise a file matches an include and no exclude.  Patterns are checked as
hg's ``narrowspec`` checks them (only those two kinds, no ``.``, ``..`` or
empty component, no newline, no surrounding white space) and bounded in
number and length: every one is untrusted input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from protocols.errors import ProtocolError

PATH = b"path:"
ROOTFILESIN = b"rootfilesin:"
VALID_PREFIXES = (PATH, ROOTFILESIN)
MAX_PATTERNS = 10_000
"""Patterns in one list; a narrow spec lists a few directories, a generated one hundreds."""
MAX_PATTERN_LENGTH = 4096
"""Bytes in one pattern (a path in a repository is shorter)."""


class InvalidPattern(ProtocolError):
    """A narrow pattern hg itself would refuse; the message and hint are hg's."""


def parse_patterns(values: Iterable[bytes]) -> frozenset[bytes]:
    """The patterns of one list (already split on commas), each checked; empty entries dropped
    (hg's ``filter(bool, ...)``: ``''.split(',')`` gives one)."""
    patterns: set[bytes] = set()
    for count, pattern in enumerate(values, 1):
        if count > MAX_PATTERNS:
            raise ProtocolError(f"more than {MAX_PATTERNS} narrow patterns in one list")
        if pattern:
            patterns.add(check_pattern(pattern))
    return frozenset(patterns)


def check_pattern(pattern: bytes) -> bytes:
    """``pattern`` itself when hg would take it (``narrowspec.validatepatterns`` and the checks of
    ``_validatepattern``); ``InvalidPattern`` in hg's words otherwise.  A trailing ``/`` is dropped,
    as hg's normalisation drops it."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"narrow pattern longer than {MAX_PATTERN_LENGTH} bytes")
    if not pattern.startswith(VALID_PREFIXES):
        error = InvalidPattern(f"invalid prefix on narrow pattern: {pattern.decode('utf-8', 'replace')}")
        error.hint = "narrow patterns must begin with one of the following: path:, rootfilesin:"
        raise error
    kind, _, path = pattern.partition(b":")
    path = path.rstrip(b"/")
    if len((path + b"x").splitlines()) > 1:
        raise InvalidPattern("newlines are not allowed in narrowspec paths")
    if path.strip() != path:
        raise InvalidPattern("leading or trailing whitespace is not allowed in narrowspec paths")
    components = path.split(b"/")
    if b"." in components or b".." in components:
        raise InvalidPattern('"." and ".." are not allowed in narrowspec paths')
    if path and b"" in components:
        raise InvalidPattern("empty path components are not allowed in narrowspec paths")
    return kind + b":" + path


@dataclass(frozen=True, slots=True)
class NarrowSpec:
    """A narrow client's include and exclude patterns (checked, as ``parse_patterns`` gives them)."""

    includes: frozenset[bytes]
    excludes: frozenset[bytes] = frozenset()

    @property
    def empty(self) -> bool:
        """The client gets no manifest, as hg's ``visitdir(b"")`` of the matcher says: no include
        (hg's ``nevermatcher``); with ``path:`` patterns only, every include excluded as well;
        otherwise the whole tree excluded (``path:``)."""
        if not self.includes:
            return True
        if self._paths_only:
            return not self.includes - self.excludes
        return PATH in self.excludes

    @property
    def _paths_only(self) -> bool:
        return all(p.startswith(PATH) for p in self.includes | self.excludes)

    def matcher(self) -> PathMatcher:
        """A matcher of file paths (``matcher()(b"dir/file")``), built once for many paths."""
        return PathMatcher(self)


class PathMatcher:
    """``NarrowSpec``'s question for one path at a time: set lookups along the path's directories."""

    def __init__(self, spec: NarrowSpec) -> None:
        self._never = not spec.includes
        self._nearest = spec._paths_only
        inc_paths, inc_dirs = _split(spec.includes)
        exc_paths, exc_dirs = _split(spec.excludes)
        if self._nearest:
            # hg's ShardTreeNode.from_patterns: a path both included and excluded is excluded, and
            # the root is included only when an include names it.
            self._inc = inc_paths - exc_paths
            self._exc = exc_paths
        self._inc_paths, self._inc_dirs = inc_paths, inc_dirs
        self._exc_paths, self._exc_dirs = exc_paths, exc_dirs

    def __call__(self, path: bytes) -> bool:
        if self._never:
            return False
        if self._nearest:
            for prefix in _prefixes(path):
                if prefix in self._exc:
                    return False
                if prefix in self._inc:
                    return True
            return False
        return (_matches(path, self._inc_paths, self._inc_dirs)
                and not _matches(path, self._exc_paths, self._exc_dirs))


def _split(patterns: frozenset[bytes]) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """The paths of the ``path:`` patterns and the directories of the ``rootfilesin:`` ones."""
    paths = frozenset(p[len(PATH):] for p in patterns if p.startswith(PATH))
    dirs = frozenset(p[len(ROOTFILESIN):] for p in patterns if p.startswith(ROOTFILESIN))
    return paths, dirs


def _prefixes(path: bytes) -> Iterator[bytes]:
    """``path``, then each directory above it, nearest first, ending with the root ``b""``."""
    yield path
    end = path.rfind(b"/")
    while end > 0:
        yield path[:end]
        end = path.rfind(b"/", 0, end)
    if path:
        yield b""


def _matches(path: bytes, paths: frozenset[bytes], dirs: frozenset[bytes]) -> bool:
    """A ``path:`` pattern names the path or a directory above it, or a ``rootfilesin:`` pattern
    names its own directory."""
    slash = path.rfind(b"/")
    if dirs and (path[:slash] if slash >= 0 else b"") in dirs:
        return True
    return bool(paths) and any(prefix in paths for prefix in _prefixes(path))


def narrow_spec(includes: Iterable[bytes], excludes: Iterable[bytes]) -> NarrowSpec:
    """The spec of two pattern lists (split on commas, unchecked)."""
    return NarrowSpec(parse_patterns(includes), parse_patterns(excludes))
