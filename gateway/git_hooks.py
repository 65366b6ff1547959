"""A git repository's receive hooks, run as git's receive-pack runs them (githooks(5)).

``pre-receive`` gets one ``<old> <new> <ref>`` line per ref update on its
standard input; a non-zero exit refuses them all ("pre-receive hook
declined").  ``update`` runs once per ref with the ref, old and new ids as
arguments; a non-zero exit refuses that ref ("hook declined").  After the refs
moved, ``post-receive`` gets the same lines for the updates that succeeded and
``post-update`` their names as arguments; their exit status is ignored.
``reference-transaction`` is told each ref transaction (one per ref update, one
for all of an atomic push) as "prepared" once its refs are locked and checked
(a non-zero exit declines it), then "committed" or "aborted".  ``push-to-checkout``
(``receive.denyCurrentBranch = updateInstead``) is given the new commit of the checked-out branch
and updates the working tree itself (a non-zero exit refuses the update).  ``proc-receive``
takes the commands of ``receive.procReceiveRefs`` over its pkt-line protocol
(``protocols.git_proc_receive``) and says what became of each.

A hook is the executable file of that name in the repository's ``hooks``
directory, or in ``core.hooksPath`` when the config sets it (relative to the
directory hooks run in).  Hooks run in the git directory (also of a repository with a
working tree), with ``GIT_DIR=.``, as git's receive-pack runs them, for ``pre-receive`` and ``post-receive`` the push options in ``GIT_PUSH_OPTION_COUNT``
(0 without any) and ``GIT_PUSH_OPTION_<n>``, as git's receive-pack tells them, and
``REMOTE_USER`` / ``REMOTE_ADDR`` when hgwire knows them.  After a signed push (``git push --signed``)
``pre-receive`` and ``post-receive`` are told its certificate as git's receive-pack tells them:
``GIT_PUSH_CERT`` (the certificate, stored as a blob), ``GIT_PUSH_CERT_SIGNER``, ``_KEY``,
``_STATUS`` (``G`` for a good signature, …), ``GIT_PUSH_CERT_NONCE``, ``_NONCE_STATUS`` and, for
a nonce a few seconds old, ``_NONCE_SLOP`` (the signature is checked only when one of them is there).  What a hook writes (standard output and error together) is kept for the
client, who sees it as ``remote:`` lines.

Blocking: run in the worker pool.  A hook that runs longer than ``HOOK_TIMEOUT``
seconds is killed and counts as a refusal.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO

from backends.interfaces import HookLocation, PushCertSettings, RefUpdate
from gateway import git_signatures
from gateway.logs import SafeLogger
from gateway.sd_notify import SYSTEMD_VARIABLES
from protocols import git_proc_receive, git_push_cert, pktline
from protocols.errors import ProtocolError
from protocols.git_receive import SYMREF_DEPTH

log = SafeLogger()

HOOK_TIMEOUT = 300.0
"""Seconds a hook may run before it is killed (the client waits for it, as with git)."""
HOOK_NAMES = ("pre-receive", "proc-receive", "update", "reference-transaction", "push-to-checkout", "post-receive",
              "post-update")
QUARANTINE_VARIABLES = ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")
"""Set for a hook only by the push's ``object_env``: never passed on from the server's environment."""
MAX_OUTPUT = 1 << 20
"""Bytes of one push's hook output kept for the client; the rest is cut with a note."""
TOLD_OPTIONS = ("pre-receive", "post-receive")
"""The hooks git's receive-pack tells the push options (``run_receive_hook``); ``update`` and
``post-update`` are not told them."""


@functools.cache
def git_exec_path() -> str | None:
    """Where git keeps its own commands (``git --exec-path``: ``/usr/lib/git-core``), which git's
    receive-pack names in its hooks' ``GIT_EXEC_PATH`` and puts first on their ``PATH``, so that a
    hook can run ``git-rev-list``-style dashed commands; None without a git to ask."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run([git, "--exec-path"], capture_output=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return os.fsdecode(out.strip()) or None


@dataclass(frozen=True, slots=True)
class SignedPush:
    """A signed push's certificate and what checking it needs: the nonce the server issued for
    the repository at ``path`` (whose objects are named by ``algorithm``, the nonce's hash), and
    whether that was in another request (smart HTTP)."""

    cert: bytes
    settings: PushCertSettings
    nonce: bytes
    path: bytes
    algorithm: str
    stateless: bool = False


@dataclass(frozen=True, slots=True)
class PushContext:
    """Who pushes, from where, with which push options: what hooks see in their environment."""

    user: str | None = None
    address: str | None = None
    options: Sequence[bytes] | None = None
    """The push options, or None when the client did not ask for the ``push-options`` capability."""
    signed: SignedPush | None = None


@dataclass(slots=True)
class GitHooks:
    """The hooks of one repository for one push, and what they wrote (``backends.interfaces.ReceiveHooks``)."""

    location: HookLocation
    context: PushContext = PushContext()
    output: list[bytes] = field(default_factory=list)
    _kept: int = 0
    _cert_told: dict[str, str] | None = None
    _after_pre_receive: int = 0
    """How many pieces of ``output`` the hooks up to pre-receive wrote."""

    def pre_receive(self, updates: Sequence[RefUpdate]) -> bool:
        """True when there is no pre-receive hook or it accepts every update."""
        status = self._run("pre-receive", (), _lines(updates))
        self._after_pre_receive = len(self.output)
        return status in (None, 0)

    def update(self, update: RefUpdate) -> bool:
        """True when there is no update hook or it accepts this ref's update."""
        args = (update.ref.decode("utf-8", "surrogateescape"), update.old.decode(), update.new.decode())
        if self._run("update", args, b"") in (None, 0):
            return True
        self._keep(b"error: hook declined to update %s\n" % update.ref)  # receive-pack's own line
        return False

    def transaction_hook(self) -> Callable[[str, Sequence[RefUpdate], bytes | None], bool] | None:
        """``reference_transaction`` when the repository has that hook, else None (nothing to tell)."""
        return self.reference_transaction if self._find("reference-transaction") is not None else None

    def reference_transaction(self, state: str, updates: Sequence[RefUpdate], head: bytes | None,
                              symrefs: Mapping[bytes, bytes] | None = None) -> bool:
        """Tell the ``reference-transaction`` hook a ref transaction's ``state`` ("prepared",
        "committed" or "aborted") with one ``<old> <new> <ref>`` line per update, as git's ref
        store tells it: the updates in order, then the ones it adds as it goes through them (and
        through those it added): a ``HEAD`` line for the branch HEAD names, and for an update of a
        symbolic ref (``symrefs``: a push's command named one) the same update of its target.
        True when there is no such hook or it lets a prepared transaction through."""
        told = list(updates)
        for update in told:  # grows as it goes, as git's store splits its updates
            if update.ref == head:
                told.append(replace(update, ref=b"HEAD"))
            if symrefs and update.ref in symrefs and len(told) < len(updates) * (SYMREF_DEPTH + 2):  # no loop
                told.append(replace(update, ref=symrefs[update.ref]))
        return self._run("reference-transaction", (state,), _lines(told)) in (None, 0)

    def push_to_checkout(self, new: bytes, work_tree: str) -> bool | None:
        """Run the ``push-to-checkout`` hook for a push to the checked-out branch of a working tree
        (``receive.denyCurrentBranch = updateInstead``): in the git directory as the other hooks,
        given the new commit, with ``GIT_DIR`` and ``GIT_WORK_TREE`` absolute, as git's receive-pack
        runs it.  None when the repository has no such hook (the backend then updates a clean tree
        itself), else whether it accepted; the hook is the one to update the tree."""
        if self._find("push-to-checkout") is None:
            return None
        env = {"GIT_DIR": os.path.abspath(self.location.git_dir), "GIT_WORK_TREE": os.path.abspath(work_tree)}
        return self._run("push-to-checkout", (new.decode("ascii"),), b"", env=env) == 0

    def proc_receive(self, updates: Sequence[RefUpdate], atomic: bool
                     ) -> tuple[list[git_proc_receive.Report] | None, bool]:
        """Hand ``updates`` (the commands ``receive.procReceiveRefs`` matches) to the ``proc-receive``
        hook, as git's receive-pack does: its reports (None when it never got to them: no such
        hook, no version, no answer) and whether all went well (a refusal, a line it could not
        take, a failing exit all say no).  Its standard error and git's words for each fault
        reach the client."""
        path = self._find("proc-receive")
        if path is None:
            self._keep(b"error: cannot find hook 'proc-receive'\n")
            return None, False
        try:
            status, out, reports, errors = run_proc_receive(path, self.location.cwd, self._env(False), updates,
                                                            atomic, self.context.options)
        except OSError as exc:
            self._keep(f"error: cannot run proc-receive hook: {exc.strerror or exc}\n".encode())
            return None, False
        self._keep(out)
        if errors:
            self._keep(b"error: " + "\n".join(errors).encode("utf-8", "replace") + b"\n")
        if status is None:
            self._keep(f"error: proc-receive hook timed out after {HOOK_TIMEOUT:g} s and was stopped\n".encode())
        sent = {u.ref for u in updates}
        answered = {r.ref for r in reports or ()}
        ok = status == 0 and not errors and reports is not None and answered >= sent and all(
            r.reason is None for r in reports)
        return reports, ok

    def post_receive(self, updates: Sequence[RefUpdate]) -> None:
        if updates:
            self._run("post-receive", (), _lines(updates))
            self._run("post-update", tuple(u.ref.decode("utf-8", "surrogateescape") for u in updates), b"")

    def take_output(self, told: bytes = b"") -> bytes:
        """What the hooks wrote, with ``told`` (receive-pack's own ``error:`` lines about the refs,
        which git prints as it updates them) after what pre-receive wrote, as git has them."""
        cut = self._after_pre_receive
        out = b"".join(self.output[:cut]) + told + b"".join(self.output[cut:])
        self.output, self._kept, self._after_pre_receive = [], 0, 0
        return out

    def present(self) -> bool:
        """Whether any receive hook is there to run."""
        return any([self._find(name) is not None for name in HOOK_NAMES])  # each one looked at, and logged

    def _find(self, name: str) -> str | None:
        path = os.path.join(self.location.hooks_dir, name)
        if not os.path.isfile(path):
            return None
        if not os.access(path, os.X_OK):
            log.warn("hook {hook} in {hooks_dir} is not executable and was ignored", hook=name,
                     hooks_dir=self.location.hooks_dir)
            return None
        return path

    def _run(self, name: str, args: Iterable[str], stdin: bytes, env: dict[str, str] | None = None) -> int | None:
        """Run a hook (``env`` over its environment); its exit status, None when there is none, -1
        when it could not run or timed out."""
        path = self._find(name)
        if path is None:
            return None
        try:
            told = name in TOLD_OPTIONS
            cert = self._cert_variables() if told else {}
            status, out = run_hook_process([path, *args], self.location.cwd,
                                           {**self._env(told), **cert, **(env or {})}, stdin)
        except OSError as exc:
            self._keep(f"error: cannot run {name} hook: {exc.strerror or exc}\n".encode())
            log.error("cannot run hook {hook}: {error}", hook=path, error=str(exc))
            return -1
        self._keep(out)
        if status is None:
            self._keep(f"error: {name} hook timed out after {HOOK_TIMEOUT:g} s and was stopped\n".encode())
            log.error("hook {hook} timed out after {seconds} s", hook=path, seconds=HOOK_TIMEOUT)
            return -1
        if status:
            log.info("hook {hook} exited with {status}", hook=path, status=status)
        return status

    def _cert_variables(self) -> dict[str, str]:
        """``GIT_PUSH_CERT*`` of a signed push, worked out once (the certificate stored, its
        signature checked, its nonce compared), as git's receive-pack does before the first hook
        that is told them; nothing for an unsigned push."""
        signed = self.context.signed
        if signed is None or self.location.store_blob is None:
            return {}
        if self._cert_told is None:
            try:
                blob = self.location.store_blob(signed.cert).decode("ascii")
            except OSError as exc:  # git goes on without the certificate's variables
                log.error("cannot store a signed push's certificate: {error}", error=exc.strerror or str(exc))
                self._cert_told = {}
                return {}
            payload, _ = git_push_cert.split(signed.cert)
            signature = git_signatures.check(signed.cert, signed.settings)
            nonce = git_push_cert.check_nonce(payload, signed.nonce, signed.settings.seed, signed.path,
                                              signed.stateless, signed.settings.slop, algorithm=signed.algorithm)
            told = {"GIT_PUSH_CERT": blob, "GIT_PUSH_CERT_SIGNER": signature.signer or "",
                    "GIT_PUSH_CERT_KEY": signature.key or "", "GIT_PUSH_CERT_STATUS": signature.result}
            if nonce.nonce is not None:
                told["GIT_PUSH_CERT_NONCE"] = nonce.nonce.decode("ascii", "replace")
                told["GIT_PUSH_CERT_NONCE_STATUS"] = nonce.status
                if nonce.slop is not None:
                    told["GIT_PUSH_CERT_NONCE_SLOP"] = str(nonce.slop)
            self._cert_told = {k: v.replace("\0", "") for k, v in told.items()}
        return self._cert_told

    def _env(self, told_options: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_PUSH_OPTION_", "GIT_PUSH_CERT"))}
        # as git's receive-pack: relative to where the hook runs (the git directory, so ".")
        env["GIT_DIR"] = os.path.relpath(self.location.git_dir, self.location.cwd)
        for key in ("REMOTE_USER", "REMOTE_ADDR", *QUARANTINE_VARIABLES, *SYSTEMD_VARIABLES):
            env.pop(key, None)
        env.update(self.location.object_env())  # a push's objects waiting in quarantine, as git tells
        exec_path = env.get("GIT_EXEC_PATH") or git_exec_path()
        if exec_path:  # as git's receive-pack: its own commands first on the hooks' PATH
            env["GIT_EXEC_PATH"] = exec_path
            path = env.get("PATH", os.defpath).split(os.pathsep)
            if path[0] != exec_path:
                env["PATH"] = os.pathsep.join([exec_path, *path])
        if self.context.user:
            env["REMOTE_USER"] = os.fsdecode(self.context.user.encode("utf-8"))  # UTF-8 whatever the locale, as http-backend's
        if self.context.address:
            env["REMOTE_ADDR"] = self.context.address
        if told_options:  # as git's run_receive_hook: a count (0 without options) and each option
            options = self.context.options or ()
            env["GIT_PUSH_OPTION_COUNT"] = str(len(options))
            for i, option in enumerate(options):
                env[f"GIT_PUSH_OPTION_{i}"] = option.decode("utf-8", "surrogateescape")
        return env

    def _keep(self, data: bytes) -> None:
        room = MAX_OUTPUT - self._kept
        if not data or room < 0:
            return
        if len(data) > room:
            data = data[:room] + b"\n[hook output cut at 1 MiB]\n"
            room = -1
        self.output.append(data)
        self._kept = MAX_OUTPUT + 1 if room < 0 else self._kept + len(data)


def _lines(updates: Sequence[RefUpdate]) -> bytes:
    return b"".join(b"%s %s %s\n" % (u.old, u.new, u.ref) for u in updates)


HOOK_STOP_WAIT = 5.0
"""Seconds a hook stopped by the service's shutdown gets between SIGTERM and SIGKILL."""

_running: dict[subprocess.Popen[bytes], tuple[str, float]] = {}
"""The hook processes running now: what each runs and since when (``time.monotonic``)."""
_running_lock = threading.Lock()


def _track(proc: subprocess.Popen[bytes], args: list[str] | str) -> None:
    import time

    with _running_lock:
        _running[proc] = (args if isinstance(args, str) else args[0], time.monotonic())


def _untrack(proc: subprocess.Popen[bytes]) -> None:
    with _running_lock:
        _running.pop(proc, None)


def running_hooks() -> list[tuple[str, float]]:
    """What each hook process running now runs, and for how many seconds it has run."""
    import time

    now = time.monotonic()
    with _running_lock:
        return [(what, now - since) for what, since in _running.values()]


def stop_running_hooks() -> list[tuple[str, float]]:
    """Stop every hook process running now (the service stops past its grace): SIGTERM to its
    process group, SIGKILL ``HOOK_STOP_WAIT`` seconds later if it is still there.  A hook so stopped
    fails as a killed hook does: a pre-receive or update hook refuses its push, which wrote nothing;
    a post-receive hook's work is cut.  What each ran, and for how long."""
    stopped = running_hooks()
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            continue
        timer = threading.Timer(HOOK_STOP_WAIT, _kill_if_running, (proc,))
        timer.daemon = True
        timer.start()
    return stopped


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        _kill_group(proc)


def run_hook_process(args: list[str] | str, cwd: str, env: dict[str, str], stdin: bytes | None
                     ) -> tuple[int | None, bytes]:
    """Run one hook (a shell command when ``args`` is a string) in a session of its own, standard
    output and error together: its exit status and output, or None and the output so far when it
    ran past ``HOOK_TIMEOUT`` and was killed with its process group.  ``OSError`` if it cannot start."""
    proc = subprocess.Popen(  # the operator's own hook
        args, shell=isinstance(args, str), cwd=cwd, env=env,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    _track(proc, args)
    try:
        out, _ = proc.communicate(stdin, timeout=HOOK_TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        return None, out
    finally:
        _untrack(proc)
    return proc.returncode, out


def run_proc_receive(path: str, cwd: str, env: dict[str, str], updates: Sequence[RefUpdate], atomic: bool,
                     options: Sequence[bytes] | None
                     ) -> tuple[int | None, bytes, list[git_proc_receive.Report] | None, list[str]]:
    """Speak to a ``proc-receive`` hook: its exit status (None when it ran past ``HOOK_TIMEOUT``),
    what it wrote to standard error, its reports (None when it gave none) and git's words for
    each fault."""
    proc = subprocess.Popen([path], cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    _track(proc, path)
    timed_out: list[bool] = []

    def stop() -> None:
        timed_out.append(True)
        _kill_group(proc)

    timer = threading.Timer(HOOK_TIMEOUT, stop)
    timer.start()
    written: list[bytes] = []

    def drain() -> None:  # its standard error, kept up to MAX_OUTPUT, read to the end so it never blocks
        kept = 0
        assert proc.stderr is not None
        while chunk := proc.stderr.read(65536):
            if kept < MAX_OUTPUT:
                written.append(chunk[:MAX_OUTPUT - kept])
                kept += len(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    reports: list[git_proc_receive.Report] | None = None
    errors: list[str] = []
    assert proc.stdin is not None and proc.stdout is not None
    lines = _PktLines(proc.stdout)
    stage = "fail to negotiate version with proc-receive hook"
    try:
        proc.stdin.write(git_proc_receive.version_request(atomic, options is not None))
        proc.stdin.flush()
        version = lines.until_flush()
        if version is None:
            raise ProtocolError(stage)
        features = git_proc_receive.parse_version(version)
        stage = "fail to write commands to proc-receive hook"
        sent = [(u.old, u.new, u.ref) for u in updates]
        proc.stdin.write(git_proc_receive.commands_request(sent, options if b"push-options" in features else None))
        proc.stdin.flush()
        report = lines.until_flush()
        if report is None:
            errors.append("proc-receive exited abnormally")
        else:
            reports, errors = git_proc_receive.parse_report(report, [u.ref for u in updates])
    except (BrokenPipeError, ConnectionResetError):
        errors.append(stage)
    except ProtocolError as exc:
        errors.append(str(exc))
    finally:
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        status = proc.wait()
        _untrack(proc)
        timer.cancel()
        reader.join()
    said = b"".join(written)
    if timed_out:
        return None, said, reports, errors
    return status, said, reports, errors


class _PktLines:
    """pkt-lines read from a hook's standard output, up to each flush (bounded)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def until_flush(self) -> list[bytes] | None:
        """The lines up to the next flush; None when the hook closed its output first."""
        lines: list[bytes] = []
        while len(lines) < git_proc_receive.MAX_REPORT_LINES:
            head = self._stream.read(4)
            if len(head) < 4:
                return None
            length = pktline.parse_length(head)
            if length == 0:
                return lines
            if length < 4:
                raise ProtocolError("proc-receive sent a bad pkt-line")
            payload = self._stream.read(length - 4)
            if len(payload) < length - 4:
                return None
            lines.append(payload.removesuffix(b"\n"))
        raise ProtocolError("proc-receive sent too many lines")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
