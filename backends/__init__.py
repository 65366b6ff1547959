"""Storage backends: ``load_backend`` turns ``--backend`` into a Backend."""

from __future__ import annotations

import difflib
import importlib
import inspect
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence

from backends.interfaces import Backend, Kind, Repository
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
        dotted, _, last = spec.rpartition(".")
        if dotted and last and last != "py" and ":" not in spec:  # a dotted path to the factory (Twisted's namedAny)
            raise BackendLoadError(f"--backend parts the module from its factory with a colon "
                                   f"(package.module:factory): did you mean {dotted}:{last}?")
        raise BackendLoadError(f"--backend must be fs, memory or package.module:factory, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a module that fails to import is told in one line, as a factory that raises
        raise BackendLoadError(f"cannot load backend {spec!r}: {_import_failure(exc, module_name)}") from exc
    try:
        factory = getattr(module, attr)
    except AttributeError as exc:
        close = difflib.get_close_matches(attr, [n for n in dir(module) if not n.startswith("_")], n=1)
        hint = f"; did you mean {module_name}:{close[0]}?" if close else ""
        raise BackendLoadError(f"cannot load backend {spec!r}: {exc}{hint}") from exc
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
    misfit = [f"{method}({', '.join(args)})" for method, args in CALLED_AS.items()
              if callable(getattr(backend, method, None)) and not _takes(getattr(backend, method), args)]
    if misfit:
        raise BackendLoadError(f"backend {spec!r} cannot be called as hgwire calls it: {', '.join(misfit)}; "
                               "see the README's backend section")
    return backend  # type: ignore[no-any-return]


CALLED_AS: dict[str, tuple[str, ...]] = {
    "open": ("name",), "create": ("name", "kind"), "exists": ("name",), "list": (), "locate": ("name",),
    "list_folder": ("folder", "after"),
}
"""How hgwire calls a backend's methods (``locate`` and ``list_folder`` when there are): a method that
cannot take those arguments is told at the start, not as a ``TypeError`` in every request."""


def names_in_folder(backend: object, folder: str = "", after: str = "",
                    starts: Sequence[str] | None = None) -> Iterable[str]:
    """The repository names below ``folder`` (``team/``; ``""``: all) that sort after ``after``, in
    name order (blocking): the backend's optional ``list_folder``, which reads only as far as the
    caller goes (``fs``), or else its whole ``list()``, filtered and sorted.  ``starts`` (in name
    order, none the start of another: ``Authorizer.readable_starts``): only the names that begin
    with one of them, and only the folders those lie in are listed."""
    folder = folder.strip("/") + "/" if folder.strip("/") else ""
    listing = getattr(backend, "list_folder", None)
    if not callable(listing):
        return sorted(name for name in backend.list()  # type: ignore[attr-defined]
                      if name.startswith(folder) and name > after
                      and (starts is None or name.startswith(tuple(starts))))
    if starts is None:
        return listing(folder, after)  # type: ignore[no-any-return]
    return _names_starting(listing, folder, after, starts)


def _names_starting(listing: Callable[[str, str], Iterable[str]], folder: str, after: str,
                    starts: Sequence[str]) -> Iterator[str]:
    """``list_folder``'s names below ``folder`` after ``after`` that begin with one of ``starts``:
    each start's names follow the previous one's (none is the start of another), so each is read
    from the folder it lies in (``team17/`` of ``team17/app``), from just before it, until a name
    no longer begins with it."""
    for start in starts:
        if start.startswith(folder):
            within = start
        elif folder.startswith(start):
            within = folder
        else:
            continue
        # (every name that begins with ``within`` sorts after this, and those before it are passed over)
        since = max(after, within[:-1] + chr(ord(within[-1]) - 1) + "\U0010ffff") if within else after
        for name in listing(within[:within.rfind("/") + 1], since):
            if name < within:
                continue
            if not name.startswith(within):
                break
            yield name


def _takes(method: Callable[..., object], args: tuple[str, ...]) -> bool:
    try:
        inspect.signature(method).bind(*args)
    except TypeError:
        return False
    except ValueError:  # no signature to read: the call itself tells
        return True
    return True


def returned_repository(found: object, call: str) -> Repository:
    """What a backend's ``open``/``create`` returned (``call``: ``open('NAME')``), once it is a
    repository, an object whose ``kind`` is a ``Kind``; a ``TypeError`` saying so otherwise, which
    the operator reads as the last line of its traceback (it was an ``AttributeError`` on ``kind``
    deep in the gateway, which read as hgwire's bug).  The client is told "internal error"."""
    if isinstance(getattr(found, "kind", None), Kind):
        return found  # type: ignore[return-value]
    raise TypeError(f"the backend's {call} returned {type(found).__name__}, not a repository (an object whose kind is "
                    "Kind.GIT or Kind.HG, as backends/interfaces.py describes): fix the backend")


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


def _import_failure(exc: Exception, module_name: str) -> str:
    """Why ``module_name`` did not import: that it is not found (with what to check), or what its own
    code raised (a dependency it imports that is missing, a syntax error, an exception at module
    level) with the file and line, which a bare message would hide (a missing dependency read as
    the backend's own module missing; a syntax error was a traceback of twistd's option parsing)."""
    if isinstance(exc, ModuleNotFoundError) and exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")):
        hint = "name a module by its dotted path (package.module), not a file" if (
            "/" in module_name or module_name.endswith(".py")) else \
            "check its spelling and that its directory is on PYTHONPATH (twistd does not look in the current directory)"
        return f"{exc}; {hint}"
    message = " ".join(str(exc).split())
    told = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename:  # (its message would name the file again)
        return f"{type(exc).__name__}: {exc.msg} (at {exc.filename}:{exc.lineno})"
    raised = [frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.startswith("<frozen")]
    if raised:
        return f"{told} (raised at {raised[-1].filename}:{raised[-1].lineno}, in {raised[-1].name})"
    return told
