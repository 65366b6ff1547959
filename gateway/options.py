"""Check and complete the parsed command line (the plugin stays glue)."""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import MutableMapping, Sequence
from typing import Any

from backends import BackendLoadError, load_backend
from gateway.config import ServiceConfig
from gateway.listen_checks import shared_port
from gateway.logs import SafeLogger
from gateway.policy import load_policy
from gateway.service import LISTENERS, NotImplementedYet, factory_maker, implemented
from gateway.start_locks import Held, claim_log_file, claim_pid_file, drop_pid_file_claim
from gateway.threads import MAX_POOL_SIZE

log = SafeLogger()

MAX_SHUTDOWN_GRACE = 86400
"""A day: a longer wait for open connections would look like a hung stop."""


def check_options(options: MutableMapping[str, Any]) -> None:
    """Fill default listeners, refuse what is not implemented, create the root; ValueError if wrong."""
    check_pid_file(options)
    check_log_file(options)
    try:
        workers = int(options["workers"])
    except (TypeError, ValueError):
        workers = 0
    if not 1 <= workers <= MAX_POOL_SIZE:
        raise ValueError(f"--workers must be a whole number from 1 to {MAX_POOL_SIZE}, not {options['workers']!r}")
    options["workers"] = workers
    try:
        grace = float(options.get("shutdown-grace", ServiceConfig.shutdown_grace))
    except (TypeError, ValueError):
        grace = -1.0
    if not 0 <= grace <= MAX_SHUTDOWN_GRACE:
        raise ValueError(f"--shutdown-grace must be a number of seconds from 0 to {MAX_SHUTDOWN_GRACE}, "
                         f"not {options.get('shutdown-grace')!r}")
    options["shutdown-grace"] = grace
    options["log-size"] = byte_count(options.get("log-size") or 0, "--log-size")
    given = options.get("log-keep") or 0
    try:
        number = int(given)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise ValueError(f"--log-keep must be a whole number, 0 or more, not {given!r}")
    options["log-keep"] = number
    _refuse_switched_off(options)
    shared = shared_port({row.option: options[kind] for kind, row in LISTENERS.items()})
    if shared:  # told before either binds: the second's "Address already in use" named no culprit
        raise ValueError(shared)
    serves_ssh = bool(options.get("ssh")) or not any(options[kind] for kind in LISTENERS)  # given, or a default
    if options.get("host-cert") and not serves_ssh:
        raise ValueError("--host-cert is for the SSH listener: add --ssh ENDPOINT, or leave the certificate out")
    _warn_unused_files(options)
    options["file-owner"] = file_owner(options)
    if options["backend"] == "fs" or serves_ssh:  # the repositories, or the host key kept in the root
        _make_root(options["root"], options["file-owner"])
    if serves_ssh:
        _check_host_keys(options)
    if options.get("config"):
        load_policy(options["config"])  # PolicyError (a ValueError) names the file, the key and the fix
    try:
        options["backend-instance"] = load_backend(options["backend"], options["root"])
    except BackendLoadError as exc:
        raise ValueError(str(exc)) from None
    if not any(options[kind] for kind in LISTENERS):
        for kind, row in LISTENERS.items():
            if implemented(kind):
                options[kind] = [f"tcp:{row.default_port}:interface=127.0.0.1"]
    for kind in LISTENERS:
        if options[kind]:
            try:
                factory_maker(kind)
            except NotImplementedYet as exc:
                raise ValueError(str(exc)) from None


def misspelt_option(args: Sequence[str], long_options: Sequence[str]) -> str | None:
    """What is wrong with the first long option of ``args`` that is not one of ``long_options``
    (getopt's list: ``root=`` takes a value) in full, with the options it may have meant; None if
    every one is.  getopt takes a unique prefix as the option it begins: ``--htp tcp:8080`` (for
    ``--http``) was ``--htpasswd tcp:8080``, and the service started on the default ports, a
    password file of that name missing; ``--rot x`` was refused under the whole usage text, with no
    hint."""
    names = {option.removesuffix("="): option.endswith("=") for option in long_options}
    rest = iter(args)
    for arg in rest:
        if arg == "--" or not arg.startswith("-"):
            return None  # (twistd's plugin options end at the first argument that is no option)
        if not arg.startswith("--"):
            continue  # (-r ROOT: a short option's value, if any, is not looked at)
        name, equals, _value = arg[2:].partition("=")
        if name in names:
            if names[name] and not equals:
                next(rest, None)  # its value, the next argument
            continue
        meant = [f"--{n}" for n in dict.fromkeys([*(n for n in names if n.startswith(name) and name),
                                                  *difflib.get_close_matches(name, list(names), n=2)])]
        return (f"--{name} is not an option of hgwire" + (f"; did you mean {' or '.join(meant)}?" if meant else "")
                + " (twistd hgwire --help lists them)")
    return None


OFF_WORDS = frozenset({"", "none", "off", "no", "false", "0", "disable", "disabled"})
"""What an operator writes for a listener to switch it off (``--ssh none``): no endpoint."""


def _refuse_switched_off(options: MutableMapping[str, Any]) -> None:
    """ValueError for ``--ssh none`` and the like, saying how a listener is switched off: it failed
    at the start with "cannot listen on none: Unknown endpoint type: 'none'; check the endpoint
    description", which did not tell that leaving the option out does it."""
    for row in LISTENERS.values():
        for endpoint in options[row.option.removeprefix("--")]:
            if endpoint.strip().lower() in OFF_WORDS:
                raise ValueError(f"{row.option} {endpoint!r} is not an endpoint: to serve no such listener, leave "
                                 f"{row.option} out and name only the listeners to serve (any --git, --ssh or --http "
                                 "replaces all the default ones)")


SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
"""A size's suffix → bytes (logrotate's ``size 10M``, in its powers of 1,024; a trailing ``B`` or
``iB`` is read too, as in ``10MB`` or ``10MiB``)."""


def byte_count(given: object, option: str) -> int:
    """``given`` (``10000000``, ``10M``, ``512k``, ``1GiB``) as a number of bytes; ValueError naming
    ``option`` if it is none."""
    text = str(given).strip().upper().replace("_", "")
    for tail in ("IB", "B"):
        if text.endswith(tail) and text[:-len(tail)][-1:] in ("K", "M", "G"):
            text = text[:-len(tail)]
            break
    suffix = text[-1:] if text[-1:] in ("K", "M", "G") else ""
    digits = text[:len(text) - len(suffix)].strip()
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"{option} must be a whole number of bytes, 0 or more, optionally with K, M or G "
                         f"(10M), not {given!r}")
    return int(digits) * SIZE_SUFFIXES[suffix]


LISTENER_FILES = {"htpasswd": "http", "authorized-keys": "ssh", "host-key": "ssh"}
"""A file option → the listener that reads it; without that listener it does nothing."""


def _warn_unused_files(options: MutableMapping[str, Any]) -> None:
    """Warn of a file option given without the listener that reads it (listeners given, that one
    not): the operator likely meant that listener, and nothing else would say it is missing."""
    if not any(options[kind] for kind in LISTENERS):  # the defaults run every listener
        return
    for name, kind in LISTENER_FILES.items():
        if options.get(name) and not options[kind]:
            log.warn("--{name} has no effect without an {option} listener: add {option} ENDPOINT, or leave "  # noqa: G010
                     "--{name} out", name=name, option=LISTENERS[kind].option)


def check_pid_file(options: MutableMapping[str, Any]) -> None:
    """twistd's ``--pidfile`` left by a run that did not stop cleanly: ValueError, in one line, when
    it names a live process, saying whether that is hgwire (stop it) or another program that has its
    number now (remove the file); twistd's own refusal, next, was five lines that said neither.  A
    file naming this very process (a container's PID 1 again) is stale for certain: it is removed,
    where twistd refused to start for ever."""
    parent = getattr(options, "parent", None)
    pid_file = parent.get("pidfile") if parent is not None else None
    if not pid_file:
        return
    path = os.path.abspath(pid_file)
    try:
        claim_pid_file(path)  # two starts racing on one file both found it free: twistd writes it seconds later
    except Held as held:
        raise ValueError(_held_pid_file(path, held.holder)) from None
    except OSError as exc:
        raise ValueError(f"--pidfile {path} cannot be written ({exc.strerror}): name a file in a directory "
                         "hgwire's user may write, or give --pidfile= for none") from None
    try:
        _check_pid_number(path)
    except ValueError:
        drop_pid_file_claim()
        raise


def twistd_log_path(parent: Any) -> str | None:
    """The file twistd writes its log to, as its ``UnixAppLogger`` chooses it: none under
    ``--syslog``, ``--logger``, ``--logfile -`` or ``-n`` without ``--logfile``; ``twistd.log``
    for a daemon without one."""
    if parent is None or parent.get("syslog") or parent.get("logger"):
        return None
    name = parent.get("logfile") or ""
    if name == "-" or (parent.get("nodaemon") and not name):
        return None
    return os.path.abspath(name or "twistd.log")


def check_log_file(options: MutableMapping[str, Any]) -> None:
    """Claim twistd's ``--logfile`` for this service: ValueError when another hgwire writes it (each
    would rotate the other's file away, ``gateway.start_locks``) or it cannot be opened."""
    path = twistd_log_path(getattr(options, "parent", None))
    if path is None:
        return
    try:
        claimed = claim_log_file(path)
    except OSError as exc:
        raise ValueError(f"--logfile {path} cannot be opened ({exc.strerror}): make its directory and let "
                         "hgwire's user write there, or name another file") from None
    if not claimed:
        raise ValueError(f"--logfile {path} is written by another hgwire already, and each would rotate the "
                         "other's file away: give each service a --logfile of its own, or stop the other first")


def _held_pid_file(path: str, holder: int | None) -> str:
    """What to say when another start holds the pid file's lock: hgwire runs (its number is in the
    file), or it is starting (not yet written)."""
    with contextlib.suppress(OSError, ValueError):
        with open(path, "rb") as f:
            pid = int(f.read(64).strip())
        os.kill(pid, 0)
        return (f"hgwire already runs as process {pid} with --pidfile {path}: stop it first "
                f"(kill {pid}), or give this one a --pidfile of its own")
    who = f"process {holder}" if holder is not None else "another process"
    stop = f" (kill {holder})" if holder is not None else ""
    return (f"another hgwire, {who}, is starting with --pidfile {path}: let it start, or stop it{stop}, "
            "or give this one a --pidfile of its own")


def _check_pid_number(path: str) -> None:
    """The number a pid file left holds: ValueError when it is a live process's (see ``check_pid_file``)."""
    try:
        with open(path, "rb") as f:
            text = f.read(64)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"--pidfile {path} cannot be read ({exc.strerror}); check its rights, or name "
                         "another file") from None
    try:
        pid = int(text.strip())
    except ValueError:
        held = f"it holds {text[:20]!r}" if text.strip() else "it is empty"
        raise ValueError(f"--pidfile {path} holds no process number ({held}): remove it and start again") from None
    if pid == os.getpid():
        os.remove(path)
        log.info("removed --pidfile {path}: it named this very process ({pid}), left by an earlier run",
                 path=path, pid=pid)
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # twistd removes it ("Removing stale pidfile")
    except PermissionError:
        pass  # another user's: alive
    words = _command_words(pid)
    command = " ".join(words)[:200] if words else None
    if _runs_hgwire(words):
        raise ValueError(f"hgwire already runs as process {pid} with --pidfile {path}: stop it first "
                         f"(kill {pid}), or give this one a --pidfile of its own")
    raise ValueError(f"--pidfile {path} names process {pid} ({command or 'a program this user may not see'}), "
                     "which is not hgwire: the file is left from a run that did not stop cleanly and its number "
                     f"is another program's now; remove {path} and start again")


def _runs_hgwire(words: list[str]) -> bool:
    """Whether a command line's words are twistd's running hgwire: ``hgwire`` a word of its own (the
    subcommand), not a part of a path (``/opt/hgwire/venv/bin/twistd web`` is another twistd)."""
    return "hgwire" in words and any("twistd" in os.path.basename(word) for word in words)


def _command_words(pid: int) -> list[str]:
    """The command line of process ``pid`` (Linux's ``/proc``), none when it cannot be read.  (Its
    first 200 characters alone were looked at: a twistd with long --logfile and --pidfile paths
    before ``hgwire`` was not hgwire, and the operator told to remove the file of a running one.)"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(65536)
    except OSError:
        return []
    return [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]


def file_owner(options: MutableMapping[str, Any]) -> tuple[int, int] | None:
    """The uid and gid twistd switches to once the service has started as root (``twistd --uid U
    [--gid G] hgwire …``; without ``--gid``, U's own group, as twistd picks it): what hgwire makes
    before then is given to them.  None when this process is not root or stays so.  twistd has
    parsed its own options, before the plugin's name, when the plugin's are checked."""
    parent = getattr(options, "parent", None)
    if parent is None:
        return None
    uid = parent.get("uid")
    if uid is None or not hasattr(os, "geteuid") or os.geteuid() != 0 or uid == 0:
        return None
    gid = parent.get("gid")
    if gid is None:
        import pwd

        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:  # twistd itself will refuse the switch
            return None
    return int(uid), int(gid)


def _check_host_keys(options: MutableMapping[str, Any]) -> None:
    """The SSH host keys load (a single missing one is made): a bad one is a usage error, not a traceback."""
    from twisted.conch.error import ConchError

    from gateway.ssh import host_key_paths, load_host_keys

    try:
        load_host_keys(host_key_paths(options.get("host-key"), options["root"]), options.get("file-owner"))
    except ConchError as exc:
        raise ValueError(str(exc.args[0] if exc.args else exc)) from None


def _make_root(root: str, owner: tuple[int, int] | None = None) -> None:
    """ROOT, made when missing (given to ``owner``, the user the service switches to)."""
    if not root.strip():  # (``--root=``, or a variable left unset: "--root  cannot be made (No such file…)")
        raise ValueError("--root is empty; give the directory of the repositories (made if missing), "
                         "e.g. --root /srv/repos")
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValueError(f"--root {root} is not a directory; give the directory of the repositories (made if missing)")
    try:
        existed = os.path.isdir(root)
        os.makedirs(root, exist_ok=True)
        if owner is not None and not existed:
            os.chown(root, *owner)
    except OSError as exc:
        raise ValueError(f"--root {root} cannot be made ({exc.strerror or exc}); "
                         "give a directory hgwire's user may write") from None
