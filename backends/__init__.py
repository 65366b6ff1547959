"""Storage backends: ``load_backend`` turns ``--backend`` into a Backend."""

from __future__ import annotations

import importlib
import inspect
import traceback
from collections.abc import Callable

from backends.interfaces import Backend
from protocols.errors import HgwireError

BUILTIN = {
    "fs": ("backends.filesystem", "FilesystemBackend"),
    "memory": ("backends.memory", "MemoryBackend"),
}
REQUIRED_METHODS = ("open", "create", "exists", "list")
SELF_EXPLAINED = (ValueError, OSError, HgwireError)
"""What a factory raises to say what is wrong (a setting, a file); anything else is a bug in it,
told with the line that raised it."""


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
    if not _takes_one_argument(factory):
        raise BackendLoadError(f"backend factory {spec!r} must take the root directory as its one argument")
    try:
        backend = factory(root)
    except Exception as exc:  # the operator reads one line naming the backend, not a traceback
        raise BackendLoadError(f"cannot start backend {spec!r}: {_told(exc)}") from exc
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(backend, m, None))]
    if missing:
        raise BackendLoadError(f"backend {spec!r} lacks {', '.join(missing)}; see the README's backend section")
    return backend  # type: ignore[no-any-return]


def _takes_one_argument(factory: Callable[..., object]) -> bool:
    """Whether ``factory(root)`` is a call the factory accepts (asked before calling it, so that a
    ``TypeError`` from inside the factory is not mistaken for a factory that takes no root)."""
    try:
        inspect.signature(factory).bind("root")
    except TypeError:
        return False
    except ValueError:  # no signature to read (some built-ins): the call itself tells
        return True
    return True


def _told(exc: Exception) -> str:
    """``Type: message`` of what a factory raised, and where a bug in it was raised."""
    message = " ".join(str(exc).split())  # one line, whatever the message holds
    told = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    raised = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SELF_EXPLAINED) or not raised:
        return told
    return f"{told} (raised at {raised[-1].filename}:{raised[-1].lineno}, in {raised[-1].name})"
