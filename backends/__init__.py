"""Storage backends: ``load_backend`` turns ``--backend`` into a Backend."""

from __future__ import annotations

import importlib

from backends.interfaces import Backend
from protocols.errors import HgwireError

BUILTIN = {
    "fs": ("backends.filesystem", "FilesystemBackend"),
    "memory": ("backends.memory", "MemoryBackend"),
}
REQUIRED_METHODS = ("open", "create", "exists", "list")


class BackendLoadError(HgwireError):
    """``--backend`` names something that cannot be loaded or is not a backend."""


def load_backend(spec: str, root: str) -> Backend:
    """``fs`` | ``memory`` | ``package.module:factory`` -> ``factory(root)``."""
    module_name, _, attr = (":".join(BUILTIN[spec]) if spec in BUILTIN else spec).partition(":")
    if not module_name or not attr:
        raise BackendLoadError(f"--backend must be fs, memory or package.module:factory, not {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendLoadError(f"cannot load backend {spec!r}: {exc}") from exc
    if not callable(factory):
        raise BackendLoadError(f"backend factory {spec!r} is not callable")
    try:
        backend = factory(root)
    except TypeError as exc:
        raise BackendLoadError(f"backend factory {spec!r} must take the root directory: {exc}") from exc
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(backend, m, None))]
    if missing:
        raise BackendLoadError(f"backend {spec!r} lacks {', '.join(missing)}; see the README's backend section")
    return backend  # type: ignore[no-any-return]
