"""Soak run (issue 8 acceptance): racing pushes, hostile bytes, slow-loris and load against one hgwire.

Not part of the test suite: like the benchmark it is bounded in time (the
default run takes ≲ 15 minutes, ``--quick`` 2-3) and drives the real ``git``,
``hg`` and ``ssh`` clients against a real ``twistd -n hgwire`` (fs backend,
git://, SSH and HTTP on free 127.0.0.1 ports, an authorized key and an
htpasswd user generated into a temporary directory).

Phases (``--phases``, all by default):

``push``
    A server without ``--config`` (so git:// takes anonymous pushes). N git
    clients spread over git://, SSH and HTTP and N hg clients over SSH and
    HTTP push M commits each to one repository per VCS, all at once. A
    rejected push is retried after integrating the winner (git: ``pull
    --rebase`` or ``pull --no-rebase``; hg: ``pull --rebase`` or ``fetch``,
    i.e. pull + merge + commit), after a random pause (``PAUSE``; the client
    that just won pauses too, or the slowest clients starve). Checked: every
    push a client saw acknowledged is in the final history (0 lost), no
    error but race rejections, every client got pushes through, one hg head
    (only ``main`` in git), and ``git fsck --full`` / ``hg verify`` pass.
    The phase stops at ``--push-seconds``; pushes not made by then are
    reported (a slow, shared machine), not counted as failures.
``hostile``
    The server restarted with a ``--config`` file whose ``[limits]`` are small
    (request_timeout, idle_timeout, max_connections_per_address), so the
    slow-loris defences act in bounded time. On every port, from other
    loopback addresses (127.0.0.2, 127.0.0.3): random bytes, truncated
    pkt-lines/packets/bodies, huge length prefixes, garbage SSH banners,
    requests drip-fed one byte a second, and two waves of idle connections
    past the per-address limit. Meanwhile legitimate clones run from
    127.0.0.1. Checked: every clone during and after succeeds, the connections
    over the limit are refused in both waves (slots are released), no hostile
    connection outlives its bound (``request_timeout`` for an unfinished
    git:// request line or HTTP headers, ``idle_timeout`` for a quiet
    connection, the 120 s SSH login grace for one that drips; + ``SLACK``),
    the repositories verify. Reported: hostile connections closed by the
    server vs still open at the end, per port and attack. The default 140 s
    covers the SSH login grace; shorter runs report SSH drips as still open.
``load``
    K concurrent clients (git and hg clones, fetches and pulls over the three
    transports, git protocol v0 and v2) for S seconds. Checked: 0 errors,
    server RSS (``VmRSS`` from /proc, sampled) peak under ``--max-rss-mib``.

The summary (Markdown) goes to stdout and ``bench/results/soak-latest.md``; a
failed invariant makes the exit status 1.

    .venv/bin/python -m bench.soak                 # make soak
    .venv/bin/python -m bench.soak --quick         # 2-3 minute smoke run
    .venv/bin/python -m bench.soak --phases hostile --attack-seconds 90 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt  # a dependency of hgwire

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import tree_rss_kib
from bench.targets import Daemon, Tools, Unavailable, free_port

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "soak-latest.md"

LOOPBACK = "127.0.0.1"
HOSTILE_SOURCE = "127.0.0.2"  # hostile bytes and slow-loris come from here ...
FLOOD_SOURCE = "127.0.0.3"  # ... and the idle floods from here, so 127.0.0.1's clients keep their slots
USER = "soak"
PASSWORD = "soak-password"
CLIENT_TIMEOUT = 180.0  # seconds, any one client command
GIT_TRANSPORTS = ("git", "ssh", "http")
HG_TRANSPORTS = ("ssh", "http")
COMBOS = (("git", "git"), ("git", "ssh"), ("git", "http"), ("hg", "ssh"), ("hg", "http"))
PORT_KINDS = ("git", "ssh", "http")


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Settings:
    phases: tuple[str, ...]
    git_clients: int
    hg_clients: int
    pushes: int
    push_seconds: float
    request_timeout: float
    idle_timeout: float
    per_address: int
    flood_extra: int
    attack_seconds: float
    wave_seconds: float
    drips: int
    attack_cloners: int
    load_clients: int
    load_seconds: float
    max_rss_mib: int
    served_commits: int
    keep: bool


def parse_args(argv: list[str] | None) -> tuple[Settings, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2-3 minute smoke run (smaller counts and limits)")
    ap.add_argument("--phases", default="push,hostile,load", help="comma-separated: push, hostile, load")
    ap.add_argument("--git-clients", type=int, help="racing git pushers (6; quick: 3)")
    ap.add_argument("--hg-clients", type=int, help="racing hg pushers (6; quick: 3)")
    ap.add_argument("--pushes", type=int, help="pushes per racing client (30; quick: 5)")
    ap.add_argument("--push-seconds", type=float, help="deadline of the push phase (480; quick: 100)")
    ap.add_argument("--request-timeout", type=float, help="[limits] request_timeout (5; quick: 3)")
    ap.add_argument("--idle-timeout", type=float, help="[limits] idle_timeout (20; quick: 10)")
    ap.add_argument("--per-address", type=int, default=32, help="[limits] max_connections_per_address (32)")
    ap.add_argument("--flood-extra", type=int, default=4, help="idle connections past the per-address limit")
    ap.add_argument("--attack-seconds", type=float,
                    help="length of the hostile phase (140, past the SSH login grace; quick: 30; "
                    "at least request + 2 idle timeouts + 8)")
    ap.add_argument("--wave-seconds", type=float, default=10.0, help="seconds between waves of hostile bytes")
    ap.add_argument("--drips", type=int, default=3, help="drip-fed (slow-loris) connections per port")
    ap.add_argument("--attack-cloners", type=int, default=2, help="legitimate cloners during the attack")
    ap.add_argument("--load-clients", type=int, help="concurrent clients in the load phase (20; quick: 8)")
    ap.add_argument("--load-seconds", type=float, help="length of the load phase (60; quick: 20)")
    ap.add_argument("--max-rss-mib", type=int, default=1024, help="the server's RSS must stay under this")
    ap.add_argument("--served-commits", type=int, help="commits of the served repositories (80; quick: 30)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (kept on failure)")
    ap.add_argument("--output", type=Path, default=RESULTS_PATH,
                    help="the summary file (bench/results/soak-latest.md)")
    args = ap.parse_args(argv)
    quick = args.quick

    def pick(value: float | int | None, full: float | int, small: float | int) -> float | int:
        return value if value is not None else (small if quick else full)

    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    unknown = [p for p in phases if p not in ("push", "hostile", "load")]
    if unknown:
        ap.error(f"unknown phase(s): {', '.join(unknown)}")
    idle = float(pick(args.idle_timeout, 20.0, 10.0))
    request = float(pick(args.request_timeout, 5.0, 3.0))
    settings = Settings(
        phases=phases,
        git_clients=int(pick(args.git_clients, 6, 3)),
        hg_clients=int(pick(args.hg_clients, 6, 3)),
        pushes=int(pick(args.pushes, 30, 5)),
        push_seconds=float(pick(args.push_seconds, 480.0, 100.0)),
        request_timeout=request,
        idle_timeout=idle,
        per_address=args.per_address,
        flood_extra=args.flood_extra,
        attack_seconds=max(float(pick(args.attack_seconds, 140.0, 30.0)), request + 2 * idle + 3 + SLACK),
        wave_seconds=args.wave_seconds,
        drips=args.drips,
        attack_cloners=args.attack_cloners,
        load_clients=int(pick(args.load_clients, 20, 8)),
        load_seconds=float(pick(args.load_seconds, 60.0, 20.0)),
        max_rss_mib=args.max_rss_mib,
        served_commits=int(pick(args.served_commits, 80, 30)),
        keep=args.keep,
    )
    return settings, args


# ------------------------------------------------------------------------ commands
def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = CLIENT_TIMEOUT,
        stdin: bytes | None = None) -> tuple[int, str]:
    """Run one command in its own process group; (exit status, output). 124 on timeout."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the client we started, by its own process group
        out, _ = proc.communicate()
        return 124, f"timeout after {timeout:.0f}s: {out.decode(errors='replace')[-300:]}"
    return proc.returncode, out.decode(errors="replace")


def check(cmd: list[str], env: dict[str, str], cwd: Path | None = None, stdin: bytes | None = None) -> str:
    rc, out = run(cmd, env, cwd, stdin=stdin)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}): {out.strip()[-500:]}")
    return out


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[:200]


# ------------------------------------------------------------------------ the environment
class Environment:
    """The temporary directory: keys, htpasswd, policy file, client config, repositories."""

    def __init__(self, base: Path, tools: Tools, settings: Settings) -> None:
        self.base = base
        self.tools = tools
        self.settings = settings
        self.root = base / "root"
        self.home = base / "home"
        self.key = base / "id_ed25519"
        self.authorized_keys = base / "authorized_keys"
        self.host_key = base / "host_key"
        self.htpasswd = base / "htpasswd"
        self.policy = base / "policy.toml"
        self.hgrc = base / "hgrc"
        self.clients = base / "clients"

    @property
    def ssh_command(self) -> str:
        ssh = shutil.which("ssh") or "ssh"
        return (f"{ssh} -F /dev/null -i {self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")

    def client_env(self) -> dict[str, str]:
        return {
            "PATH": str(PROJECT_DIR / ".venv" / "bin") + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LC_ALL": "C",
            "TMPDIR": str(self.base / "tmp"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSH_COMMAND": self.ssh_command,
            "GIT_SSH_VARIANT": "ssh",
            "GIT_AUTHOR_NAME": "Soak",
            "GIT_AUTHOR_EMAIL": "soak@example.com",
            "GIT_COMMITTER_NAME": "Soak",
            "GIT_COMMITTER_EMAIL": "soak@example.com",
            "HGRCPATH": str(self.hgrc),
            "HGPLAIN": "1",
            "HGENCODING": "utf-8",
        }

    def server_env(self) -> dict[str, str]:
        return {**os.environ, "HGPLAIN": "1", "HGRCPATH": "", "TMPDIR": str(self.base / "tmp")}

    def prepare(self) -> None:
        for d in (self.root, self.home, self.clients, self.base / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        env = self.client_env()
        check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", USER, "-f", str(self.key)], env)
        public = Path(f"{self.key}.pub").read_text().split()
        self.authorized_keys.write_text(f"{public[0]} {public[1]} {USER}\n")
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        self.htpasswd.write_text(f"{USER}:{hashed}\n")
        s = self.settings
        self.policy.write_text(
            "anonymous_read = true\n\n"
            "[[repo]]\n"
            'pattern = "*"\n'
            f'write = ["{USER}"]\n\n'
            "[limits]\n"
            f"request_timeout = {s.request_timeout}\n"
            f"idle_timeout = {s.idle_timeout}\n"
            f"max_connections_per_address = {s.per_address}\n"
        )
        self.hgrc.write_text(
            "[ui]\n"
            f"username = Soak <soak@example.com>\n"
            f"ssh = {self.ssh_command}\n"
            "interactive = false\n"
            "merge = internal:fail\n"
            "[extensions]\n"
            "rebase =\n"
            "fetch =\n"
        )
        (self.home / ".gitconfig").write_text(
            "[init]\n\tdefaultBranch = main\n"
            "[user]\n\tname = Soak\n\temail = soak@example.com\n"
            "[gc]\n\tauto = 0\n"
            "[advice]\n\tdetachedHead = false\n\tskippedCherryPicks = false\n"
        )
        self._seed(env)

    def _seed(self, env: dict[str, str]) -> None:
        """The race repositories (one commit) and the read-only ``served`` pair."""
        git, hg = self.tools.git, self.tools.hg
        for name, commits in (("race.git", [[("README", b"soak race repository\n")]]),
                              ("served.git", list(served_history(self.settings.served_commits)))):
            repo = self.root / name
            check([git, "init", "-q", "--bare", "-b", "main", str(repo)], env)
            check([git, "-C", str(repo), "fast-import", "--quiet"], env, stdin=fast_import_stream(commits))
            check([git, "-C", str(repo), "repack", "-adq"], env)
        for src, dest in (("race.git", "race"), ("served.git", "served")):
            check([hg, "--config", "extensions.convert=", "convert", "-q", str(self.root / src),
                   str(self.root / dest)], env)
            check([hg, "-R", str(self.root / dest), "phase", "-q", "--public", "-r", "all()"], env)


def served_history(commits: int) -> Iterator[list[tuple[str, bytes]]]:
    """Deterministic commits of a few text files each, and one incompressible 256 KiB file."""
    rng = random.Random(8)
    letters = b"abcdefghijklmnopqrstuvwxyz"
    words = [bytes(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(500)]
    for n in range(commits):
        files = []
        for k in range(3):
            lines = [b" ".join(rng.choice(words) for _ in range(10)) for _ in range(60)]
            files.append((f"src/d{n % 7}/f{n:03d}_{k}.txt", b"\n".join(lines) + b"\n"))
        if n == commits // 2:
            files.append(("assets/blob.bin", rng.randbytes(256 * 1024)))
        yield files


def fast_import_stream(commits: list[list[tuple[str, bytes]]]) -> bytes:
    out = bytearray()
    for n, files in enumerate(commits):
        when = 1_767_225_600 + 60 * n
        message = f"commit {n}\n".encode()
        out += b"commit refs/heads/main\n"
        out += f"author Soak <soak@example.com> {when} +0000\n".encode()
        out += f"committer Soak <soak@example.com> {when} +0000\n".encode()
        out += b"data %d\n%s\n" % (len(message), message)
        for path, content in files:
            out += b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(content), content)
    return bytes(out)


# ------------------------------------------------------------------------ the server
class Server:
    """``twistd -n hgwire`` with git://, SSH and HTTP listeners on free 127.0.0.1 ports."""

    served_git = "served.git"

    def __init__(self, env: Environment, name: str, policy: bool) -> None:
        self.env = env
        self.name = name
        self.policy = policy
        self.ports = {kind: 0 for kind in PORT_KINDS}
        self.daemon: Daemon | None = None
        self.log = env.base / f"server-{name}.log"

    def start(self) -> None:
        self.ports = {kind: free_port() for kind in PORT_KINDS}
        argv = [self.env.tools.twistd, "-n", "--pidfile=", "hgwire", "--root", str(self.env.root),
                "--backend", "fs", "--host-key", str(self.env.host_key),
                "--authorized-keys", str(self.env.authorized_keys), "--htpasswd", str(self.env.htpasswd),
                "--allow-push-over-http"]
        for kind, port in self.ports.items():
            argv += [f"--{kind}", f"tcp:{port}:interface={LOOPBACK}"]
        if self.policy:
            argv += ["--config", str(self.env.policy)]
        self.daemon = Daemon(argv, self.log, self.env.server_env())
        self.daemon.start(self.ports["http"])
        for kind in ("git", "ssh"):
            _wait_port(self.ports[kind])
        log(f"server {self.name}: pid {self.pid}, git {self.ports['git']}, ssh {self.ports['ssh']}, "
            f"http {self.ports['http']}{' (with --config limits)' if self.policy else ''}")

    @property
    def pid(self) -> int | None:
        return self.daemon.pid if self.daemon is not None else None

    def alive(self) -> bool:
        return self.pid is not None

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def url(self, vcs: str, transport: str, repo: str, write: bool = False) -> str:
        name = f"{repo}.git" if vcs == "git" else repo
        port = self.ports[transport]
        if transport == "git":
            return f"git://{LOOPBACK}:{port}/{name}"
        if transport == "ssh":
            return f"ssh://{USER}@{LOOPBACK}:{port}/{name}"
        credentials = f"{USER}:{PASSWORD}@" if write else ""
        return f"http://{credentials}{LOOPBACK}:{port}/{name}"


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"nothing accepts on port {port}")


class RssSampler(threading.Thread):
    """Samples the server's RSS (KiB, summed over its process tree) every ``interval`` seconds."""

    def __init__(self, pid: Callable[[], int | None], interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="soak-rss")
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pid = self.pid()
            if pid is not None:
                self.samples.append((time.monotonic(), tree_rss_kib(pid)))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max((kib for t, kib in self.samples if since <= t <= until), default=0)


# ------------------------------------------------------------------------ verification
def verify(env: Environment, repos: list[str]) -> dict[str, str]:
    """``git fsck --full`` / ``hg verify`` of each repository: name -> "" (sound) or the error."""
    cenv = env.client_env()
    problems: dict[str, str] = {}
    for name in repos:
        path = env.root / name
        if name.endswith(".git"):
            rc, out = run([env.tools.git, "-C", str(path), "fsck", "--full", "--no-progress"], cenv)
        else:
            rc, out = run([env.tools.hg, "-R", str(path), "verify", "-q"], cenv)
        problems[name] = "" if rc == 0 else f"rc={rc}: {last_line(out)}"
        log(f"verify {name}: {'ok' if rc == 0 else problems[name]}")
    return problems


# ------------------------------------------------------------------------ phase 1: racing pushes
@dataclass
class PushClient:
    """One racing pusher's figures."""

    vcs: str
    transport: str
    index: int
    integrate: str  # rebase | merge
    commits: int = 0  # commits made (logical pushes attempted)
    attempts: int = 0  # push commands run
    acked: int = 0  # logical pushes acknowledged
    rejected: int = 0  # push commands refused because another client won the race
    errors: list[str] = field(default_factory=list)  # anything else that failed
    acked_ids: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # messages of the commits acknowledged
    gave_up: str = ""
    finished: float = 0.0  # time.monotonic() when the client stopped
    reject_reasons: Counter[str] = field(default_factory=Counter)  # the client's last line, per rejection


GIT_REJECTED = ("[rejected]", "[remote rejected]")
HG_REJECTED = ("new remote head", "changed while pushing", "push failed", "push race", "unsynced")
MAX_TRIES = 60
PAUSE = {"git": 2.0, "hg": 4.0}
"""Seconds (at most, uniformly drawn) a pusher waits after an accepted push before its next commit, and
after a rejected one before it integrates: without it the client that just won is always first again
and the slowest clients starve (optimistic concurrency is not fair)."""


def _rejection(out: str, markers: tuple[str, ...]) -> str:
    """The line of a rejection that says why (node ids and ports dropped, so that reasons group)."""
    line = next((ln for ln in out.splitlines() if any(m in ln for m in markers)), last_line(out))
    return re.sub(r"[0-9a-f]{12,40}|:[0-9]{4,5}/", "…", line.strip())[:120]


def pause(c: PushClient, rng: random.Random) -> None:
    time.sleep(rng.uniform(0.0, PAUSE[c.vcs]))


def git_head(work: Path, git: str, env: dict[str, str]) -> str:
    return check([git, "-C", str(work), "rev-parse", "HEAD"], env).strip()


def hg_dot(work: Path, hg: str, env: dict[str, str]) -> str:
    """The working directory's parent: the first 20 bytes of a v1 dirstate, else ``hg log -r .``."""
    if b"dirstate-v2" not in (work / ".hg" / "requires").read_bytes():
        return (work / ".hg" / "dirstate").read_bytes()[:20].hex()
    return check([hg, "-R", str(work), "log", "-r", ".", "-T", "{node}"], env).strip()


def race_git(server: Server, env: Environment, c: PushClient, pushes: int, deadline: float) -> None:
    git, cenv = env.tools.git, env.client_env()
    rng = random.Random(c.index)
    work = env.clients / f"race-git-{c.index}"
    url = server.url("git", c.transport, "race", write=True)
    rc, out = run([git, "clone", "-q", url, str(work)], cenv)
    if rc != 0:
        c.gave_up = f"clone failed: {last_line(out)}"
        return
    for n in range(pushes):
        (work / f"c{c.index}").mkdir(exist_ok=True)
        (work / f"c{c.index}" / f"n{n:03d}.txt").write_text(f"git client {c.index} push {n}\n")
        message = f"soak git c{c.index} n{n}"
        check([git, "-C", str(work), "add", "-A"], cenv)
        check([git, "-C", str(work), "commit", "-q", "-m", message], cenv)
        c.commits += 1
        for _ in range(MAX_TRIES):
            if time.monotonic() > deadline:
                c.gave_up = f"phase deadline at push {n}"
                return
            c.attempts += 1
            rc, out = run([git, "-C", str(work), "push", "-q", "origin", "HEAD:main"], cenv)
            if _settle(c, rc == 0, out, GIT_REJECTED, lambda: git_head(work, git, cenv), message, rng):
                break
            how = "--rebase" if c.integrate == "rebase" else "--no-rebase"
            rc, out = run([git, "-C", str(work), "pull", "-q", how, "--no-edit", "origin", "main"], cenv)
            if rc != 0:
                c.errors.append(f"pull {how}: {last_line(out)}")
                run([git, "-C", str(work), "rebase", "--abort"], cenv)
                run([git, "-C", str(work), "merge", "--abort"], cenv)
        else:
            c.gave_up = f"push {n} not accepted after {MAX_TRIES} tries"
            return


def _settle(c: PushClient, ok: bool, out: str, rejected: tuple[str, ...], pushed_id: Callable[[], str],
            message: str, rng: random.Random) -> bool:
    """Count one push attempt of a racing client and pause; True when it was acknowledged."""
    if ok:
        c.acked += 1
        c.acked_ids.append(pushed_id())
        c.messages.append(message)
    elif any(marker in out for marker in rejected):
        c.rejected += 1
        c.reject_reasons[_rejection(out, rejected)] += 1
    else:
        c.errors.append(f"push: {last_line(out)}")
    pause(c, rng)
    return ok


def race_hg(server: Server, env: Environment, c: PushClient, pushes: int, deadline: float) -> None:
    hg, cenv = env.tools.hg, env.client_env()
    rng = random.Random(100 + c.index)
    work = env.clients / f"race-hg-{c.index}"
    url = server.url("hg", c.transport, "race", write=True)
    rc, out = run([hg, "clone", "-q", url, str(work)], cenv)
    if rc != 0:
        c.gave_up = f"clone failed: {last_line(out)}"
        return
    r = ["-R", str(work)]
    for n in range(pushes):
        (work / f"c{c.index}").mkdir(exist_ok=True)
        (work / f"c{c.index}" / f"n{n:03d}.txt").write_text(f"hg client {c.index} push {n}\n")
        message = f"soak hg c{c.index} n{n}"
        check([hg, *r, "commit", "-q", "-A", "-m", message], cenv)
        c.commits += 1
        for _ in range(MAX_TRIES):
            if time.monotonic() > deadline:
                c.gave_up = f"phase deadline at push {n}"
                return
            c.attempts += 1
            rc, out = run([hg, *r, "push", "-q", "-r", ".", url], cenv)
            ok = rc == 0 or (rc == 1 and "no changes found" in out)  # 1: already there (delivered before)
            if _settle(c, ok, out, HG_REJECTED, lambda: hg_dot(work, hg, cenv), message, rng):
                break
            if c.integrate == "rebase":
                rc, out = run([hg, *r, "pull", "-q", "--rebase", url], cenv)
                if rc != 0:
                    c.errors.append(f"pull --rebase: {last_line(out)}")
                    run([hg, *r, "rebase", "--abort"], cenv)
                continue
            # hg fetch: pull, merge the new head with ours and commit the merge, in one process
            rc, out = run([hg, *r, "fetch", "-q", "-m", f"merge c{c.index} n{n}", url], cenv)
            if rc != 0:
                c.errors.append(f"fetch: {last_line(out)}")
                run([hg, *r, "update", "-q", "-C", "."], cenv)
        else:
            c.gave_up = f"push {n} not accepted after {MAX_TRIES} tries"
            return


@dataclass
class PushReport:
    vcs: str
    clients: list[PushClient]
    lost: list[str] = field(default_factory=list)  # acknowledged ids missing from the final history
    missing_messages: int = 0  # acknowledged commits whose message is not in the final history
    final_commits: int = 0
    heads: int = 0
    corrupt: str = ""
    wall: float = 0.0  # until its last client stopped

    def total(self, attr: str) -> int:
        return sum(getattr(c, attr) for c in self.clients)


def phase_push(env: Environment, s: Settings) -> tuple[list[PushReport], float]:
    server = Server(env, "push", policy=False)
    server.start()
    t0 = time.monotonic()
    deadline = t0 + s.push_seconds
    clients = [PushClient("git", GIT_TRANSPORTS[i % 3], i, "rebase" if i % 2 == 0 else "merge")
               for i in range(s.git_clients)]
    clients += [PushClient("hg", HG_TRANSPORTS[i % 2], i, "rebase" if (i // 2) % 2 == 0 else "merge")
                for i in range(s.hg_clients)]
    threads = []
    for c in clients:
        fn = race_git if c.vcs == "git" else race_hg
        threads.append(threading.Thread(target=_guarded, args=(fn, server, env, c, s.pushes, deadline),
                                        name=f"race-{c.vcs}-{c.index}", daemon=True))
    log(f"push: {s.git_clients} git + {s.hg_clients} hg clients x {s.pushes} pushes, racing")
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1.0, deadline + 2 * CLIENT_TIMEOUT - time.monotonic()))
        wall = time.monotonic() - t0
        alive = server.alive()
    finally:
        server.stop()
    reports = []
    cenv = env.client_env()
    for vcs, repo in (("git", "race.git"), ("hg", "race")):
        rep = PushReport(vcs, [c for c in clients if c.vcs == vcs])
        rep.wall = max((c.finished for c in rep.clients), default=t0) - t0
        path = str(env.root / repo)
        if vcs == "git":
            history = check([env.tools.git, "-C", path, "log", "--format=%H %s", "main"], cenv).splitlines()
            refs = check([env.tools.git, "-C", path, "for-each-ref", "--format=%(refname)"], cenv).split()
            rep.heads = len(refs)
        else:
            history = check([env.tools.hg, "-R", path, "log", "-T", "{node} {desc|firstline}\\n"],
                            cenv).splitlines()
            rep.heads = len(check([env.tools.hg, "-R", path, "heads", "-T", "{node}\\n"], cenv).split())
        ids = {line.split(" ", 1)[0] for line in history}
        messages = {line.split(" ", 1)[1] for line in history if " " in line}
        rep.final_commits = len(ids)
        rep.lost = [i for c in rep.clients for i in c.acked_ids if i not in ids]
        rep.missing_messages = sum(1 for c in rep.clients for m in c.messages if m not in messages)
        rep.corrupt = verify(env, [repo])[repo]
        reports.append(rep)
        log(f"push {vcs}: {rep.total('commits')} commits, {rep.total('attempts')} push commands, "
            f"{rep.total('acked')} acknowledged, {rep.total('rejected')} rejected (race), "
            f"{sum(len(c.errors) for c in rep.clients)} other errors, {len(rep.lost)} lost; "
            f"{rep.final_commits} commits in the final history, heads/refs {rep.heads}")
        for c in rep.clients:
            if c.gave_up or c.errors:
                log(f"  {vcs} client {c.index} ({c.transport}): gave up: {c.gave_up or '-'}; "
                    f"errors: {c.errors[:3]}")
    if not alive:
        log(f"push: the server was not running at the end: {server.log}")
    return reports, wall


def _guarded(fn: Callable[..., None], server: Server, env: Environment, c: PushClient, *rest: object) -> None:
    try:
        fn(server, env, c, *rest)
    except Exception as exc:  # a client set-up step failed: that client's figures say so
        c.gave_up = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        c.finished = time.monotonic()


# ------------------------------------------------------------------------ phase 2: hostile
@dataclass
class Hostile:
    """One hostile connection and what became of it."""

    port: str  # git | ssh | http
    attack: str
    opened: bool = False
    bound: float = 0.0  # seconds within which the server should close it (see ``Attack.bound``)
    closed_by_server: bool = False
    close_after: float = 0.0
    open_for: float = 0.0  # still open at the end: for how long
    reply: bytes = b""
    error: str = ""

    @property
    def overdue(self) -> bool:
        """Open past its bound (closed late, or still open at the end)."""
        lasted = self.close_after if self.closed_by_server else self.open_for
        return self.opened and lasted > self.bound + SLACK


@dataclass(frozen=True)
class Attack:
    port: str
    name: str
    payload: bytes = b""  # sent at once
    drip: bytes = b""  # then sent one byte a second (filler ``a`` forever after it)
    bound: str = "idle"  # the limit that must close it: "request" (request_timeout), "idle", "login" (SSH)


SLACK = 5.0
"""Seconds a hostile connection may outlive its bound (timer rounding, a loaded machine)."""

SSH_LOGIN_GRACE = 120.0
"""``gateway.ssh.LOGIN_GRACE_SECONDS``: an SSH connection must be logged in this long after it opened."""


def bound_seconds(bound: str, s: Settings) -> float:
    return {"request": s.request_timeout, "idle": s.idle_timeout, "login": SSH_LOGIN_GRACE}[bound]


def attacks(served_git: str) -> list[Attack]:
    """The hostile connections of one wave (drips and floods are separate)."""
    want = b"want " + b"1" * 40 + b"\n"
    request = b"git-upload-pack /" + served_git.encode() + b"\0host=soak\0"
    pkt_request = b"%04x" % (len(request) + 4) + request
    post = (b"POST /" + served_git.encode() + b"/git-upload-pack HTTP/1.1\r\nHost: soak\r\n"
            b"Content-Type: application/x-git-upload-pack-request\r\n")
    return [
        Attack("git", "random bytes", os.urandom(65536)),
        Attack("git", "truncated pkt-line", pkt_request[: len(pkt_request) // 2]),
        Attack("git", "huge length prefix", b"ffff" + os.urandom(8192)),
        Attack("git", "non-hex length", b"zz\x00\xff" + b"A" * 100),
        Attack("git", "truncated want after request", pkt_request + b"0032" + want[:20]),
        Attack("ssh", "random bytes", os.urandom(65536)),
        Attack("ssh", "garbage banner lines", b"HELLO SOAK\r\n" * 20),
        Attack("ssh", "http on the ssh port", b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"),
        Attack("ssh", "bad version", b"SSH-1.5-soak\r\n"),
        Attack("ssh", "huge packet length", b"SSH-2.0-soak\r\n" + b"\x7f\xff\xff\xff" + os.urandom(64)),
        Attack("ssh", "truncated packet", b"SSH-2.0-soak\r\n" + b"\x00\x00\x01\x00" + os.urandom(16)),
        Attack("http", "random bytes", os.urandom(65536)),
        Attack("http", "huge content-length", post + b"Content-Length: 99999999999999\r\n\r\n" + b"0" * 100),
        Attack("http", "truncated body", post + b"Content-Length: 1000\r\n\r\n" + b"0032" + want),
        Attack("http", "huge pkt-line in body", post + b"Content-Length: 12\r\n\r\nffff" + b"x" * 8),
        Attack("http", "garbage hg command", b"GET /served?cmd=%00%ff%fe HTTP/1.1\r\nHost: soak\r\n"
               b"X-HgArg-1: " + b"\xff" * 300 + b"\r\n\r\n"),
    ]


def drips(served_git: str) -> list[Attack]:
    request = b"git-upload-pack /" + served_git.encode() + b"\0host=soak\0"
    return [
        Attack("git", "drip-fed request line", drip=b"%04x" % (len(request) + 4) + request, bound="request"),
        Attack("ssh", "drip-fed banner", drip=b"SSH-2.0-", bound="login"),
        Attack("ssh", "drip-fed key exchange", payload=b"SSH-2.0-soak\r\n", drip=b"\x00\x00\x01\x00",
               bound="login"),
        Attack("http", "drip-fed headers",
               drip=b"GET /" + served_git.encode() + b"/info/refs?service=git-upload-pack HTTP/1.1\r\n"
               b"Host: soak\r\nX-Slow: ", bound="request"),
    ]


async def hostile(h: Hostile, port: int, source: str, attack: Attack, end_at: float,
                  opened: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(LOOPBACK, port, local_addr=(source, 0)), 10)
    except (OSError, asyncio.TimeoutError) as exc:
        h.error = f"connect: {exc}"
        return
    finally:
        if opened is not None:
            opened.set()
    h.opened = True
    t0 = loop.time()

    async def read() -> None:
        try:
            while data := await reader.read(65536):
                if len(h.reply) < 256:
                    h.reply += data[: 256 - len(h.reply)]
        except OSError:
            pass

    async def write() -> None:
        try:
            if attack.payload:
                writer.write(attack.payload)
                await writer.drain()
            if attack.drip:
                n = 0
                while True:
                    writer.write(attack.drip[n:n + 1] if n < len(attack.drip) else b"a")
                    await writer.drain()
                    n += 1
                    await asyncio.sleep(1.0)
        except OSError:
            pass

    reading = asyncio.create_task(read())
    writing = asyncio.create_task(write())
    await asyncio.wait({reading}, timeout=max(0.0, end_at - loop.time()))
    if reading.done():
        h.closed_by_server = True
        h.close_after = loop.time() - t0
    else:
        h.open_for = loop.time() - t0
    for task in (reading, writing):
        task.cancel()
    await asyncio.gather(reading, writing, return_exceptions=True)
    writer.transport.abort()


REFUSAL_MARKS = {"git": b"ERR ", "http": b" 503 ", "ssh": b"hgwire: "}


@dataclass
class Flood:
    port: str
    wave: int
    sent: int = 0
    refused: int = 0
    accepted: int = 0


async def attack_all(server: Server, s: Settings, results: list[Hostile], floods: list[Flood]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    end_at = start + s.attack_seconds
    tasks: list[asyncio.Task[None]] = []

    def launch(a: Attack, source: str, until: float) -> Hostile:
        h = Hostile(a.port, a.name, bound=bound_seconds(a.bound, s))
        results.append(h)
        tasks.append(asyncio.create_task(hostile(h, server.ports[a.port], source, a, until)))
        return h

    async def flood(wave: int) -> None:
        for kind in PORT_KINDS:
            f = Flood(kind, wave)
            floods.append(f)
            conns = []
            for _ in range(s.per_address + s.flood_extra):
                idle = Attack(kind, "", bound="idle" if kind == "ssh" else "request")
                h = Hostile(kind, f"idle flood (wave {wave})", bound=bound_seconds(idle.bound, s))
                results.append(h)
                opened = asyncio.Event()
                conn = hostile(h, server.ports[kind], FLOOD_SOURCE, idle, end_at, opened)
                tasks.append(asyncio.create_task(conn))
                await opened.wait()  # in order: the last ones are the ones over the limit
                conns.append(h)
            await asyncio.sleep(s.request_timeout / 2)
            f.sent = sum(1 for h in conns if h.opened)
            f.refused = sum(1 for h in conns if REFUSAL_MARKS[kind] in h.reply)
            f.accepted = f.sent - f.refused

    await flood(1)
    for a in drips(server.served_git):
        for _ in range(s.drips):
            launch(a, HOSTILE_SOURCE, end_at)
    second_flood = start + s.request_timeout + s.idle_timeout + 2
    next_wave = loop.time()
    flooded_again = False
    last_wave = end_at - s.idle_timeout - SLACK  # every wave's connections are due before the end
    while loop.time() < end_at - 1:
        if next_wave <= loop.time() <= last_wave:
            for a in attacks(server.served_git):
                launch(a, HOSTILE_SOURCE, end_at)
            next_wave += s.wave_seconds
        if not flooded_again and loop.time() >= second_flood:
            flooded_again = True
            await flood(2)
        await asyncio.sleep(0.25)
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class CloneCounts:
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, ok: bool, what: str, out: str) -> None:
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
                self.errors.append(f"{what}: {last_line(out)}")


def clone(server: Server, env: Environment, vcs: str, transport: str, repo: str, dest: Path
          ) -> tuple[bool, str]:
    url = server.url(vcs, transport, repo)
    if vcs == "git":
        cmd = [env.tools.git, "clone", "-q", "--no-checkout", url, str(dest)]
    else:
        cmd = [env.tools.hg, "clone", "-q", "-U", url, str(dest)]
    rc, out = run(cmd, env.client_env())
    shutil.rmtree(dest, ignore_errors=True)
    return rc == 0, out


@dataclass
class HostileReport:
    connections: list[Hostile]
    floods: list[Flood]
    during: CloneCounts
    after: CloneCounts
    alive: bool
    wall: float


def phase_hostile(server: Server, env: Environment, s: Settings) -> HostileReport:
    results: list[Hostile] = []
    floods: list[Flood] = []
    during, after = CloneCounts(), CloneCounts()
    stop = threading.Event()

    def cloner(k: int) -> None:
        n = k
        while not stop.is_set():
            vcs, transport = COMBOS[n % len(COMBOS)]
            ok, out = clone(server, env, vcs, transport, "served", env.clients / f"attack-{k}")
            during.add(ok, f"{vcs} over {transport}", out)
            n += 1

    log(f"hostile: {s.attack_seconds:.0f}s of hostile bytes, drips and idle floods on every port, "
        f"{s.attack_cloners} legitimate cloners")
    t0 = time.monotonic()
    cloners = [threading.Thread(target=cloner, args=(k,), daemon=True) for k in range(s.attack_cloners)]
    for t in cloners:
        t.start()
    asyncio.run(attack_all(server, s, results, floods))
    stop.set()
    for t in cloners:
        t.join(CLIENT_TIMEOUT + 5)
    wall = time.monotonic() - t0
    for vcs, transport in COMBOS:
        for repo in ("served", "race"):
            ok, out = clone(server, env, vcs, transport, repo, env.clients / "after")
            after.add(ok, f"{vcs} over {transport} ({repo})", out)
    alive = server.alive()
    closed = sum(1 for h in results if h.closed_by_server)
    log(f"hostile: {sum(h.opened for h in results)} connections, {closed} closed by the server; "
        f"clones during {during.ok} ok / {during.failed} failed, after {after.ok} ok / {after.failed} failed")
    return HostileReport(results, floods, during, after, alive, wall)


# ------------------------------------------------------------------------ phase 3: load
@dataclass
class LoadReport:
    ops: CloneCounts
    by_kind: dict[str, int]
    rss_start: int
    rss_peak: int
    rss_end: int
    rss_first_half: int
    rss_second_half: int
    wall: float
    alive: bool


def phase_load(server: Server, env: Environment, s: Settings, sampler: RssSampler) -> LoadReport:
    ops = CloneCounts()
    by_kind: dict[str, int] = {}
    lock = threading.Lock()
    t0 = time.monotonic()
    deadline = t0 + s.load_seconds
    rss_start = tree_rss_kib(server.pid) if server.pid else 0

    def client(k: int) -> None:
        vcs, transport = COMBOS[k % len(COMBOS)]
        repo = "served" if (k // len(COMBOS)) % 2 == 0 else "race"
        extra = ("-c", f"protocol.version={2 if k % 2 == 0 else 0}") if vcs == "git" else ()
        dest = env.clients / f"load-{k}"
        n = 0
        while time.monotonic() < deadline:
            if n % 4 == 0 or not dest.exists():  # (re)clone, then three fetches/pulls
                shutil.rmtree(dest, ignore_errors=True)
                url = server.url(vcs, transport, repo)
                if vcs == "git":
                    cmd = [env.tools.git, *extra, "clone", "-q", "--no-checkout", url, str(dest)]
                else:
                    cmd = [env.tools.hg, "clone", "-q", "-U", url, str(dest)]
                kind = f"{vcs} clone"
            elif vcs == "git":
                cmd = [env.tools.git, *extra, "-C", str(dest), "fetch", "-q", "origin"]
                kind = "git fetch"
            else:
                cmd = [env.tools.hg, "-R", str(dest), "pull", "-q"]
                kind = "hg pull"
            rc, out = run(cmd, env.client_env())
            with lock:
                ops.add(rc == 0, f"{kind} over {transport} ({repo})", out)
                by_kind[f"{kind} over {transport}"] = by_kind.get(f"{kind} over {transport}", 0) + 1
            if rc != 0:
                shutil.rmtree(dest, ignore_errors=True)
            n += 1

    log(f"load: {s.load_clients} concurrent clients for {s.load_seconds:.0f}s")
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(s.load_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline + CLIENT_TIMEOUT - time.monotonic()))
    t1 = time.monotonic()
    time.sleep(2.0)  # let the server settle before the end figure
    rss_end = tree_rss_kib(server.pid) if server.pid else 0
    mid = t0 + s.load_seconds / 2
    log(f"load: {ops.ok} ok / {ops.failed} failed operations")
    return LoadReport(ops, by_kind, rss_start, sampler.peak(t0, t1 + 2), rss_end, sampler.peak(t0, mid),
                      sampler.peak(mid, t1), t1 - t0, server.alive())


# ------------------------------------------------------------------------ the summary
@dataclass
class Invariant:
    what: str
    ok: bool
    detail: str = ""


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def summarize(s: Settings, pushes: list[PushReport] | None, push_wall: float, hostile_r: HostileReport | None,
              load: LoadReport | None, corrupt: dict[str, str], rss_overall: int, wall: float, aborted: str
              ) -> tuple[str, list[Invariant]]:
    rows: list[tuple[str, str]] = []
    inv: list[Invariant] = [Invariant("the run completed", not aborted, aborted.replace("|", "/"))]
    if pushes is not None:
        for rep in pushes:
            errors = [e for c in rep.clients for e in c.errors]
            gave_up = [f"client {c.index} ({c.transport}): {c.gave_up}" for c in rep.clients if c.gave_up]
            idle = [f"client {c.index} ({c.transport})" for c in rep.clients if c.acked == 0]
            transports = ", ".join(sorted({c.transport for c in rep.clients}))
            reasons: Counter[str] = Counter()
            for c in rep.clients:
                reasons.update(c.reject_reasons)
            rows += [
                (f"{rep.vcs} pushes attempted / acknowledged / lost",
                 f"{rep.total('commits')} / {rep.total('acked')} / {len(rep.lost) + rep.missing_messages}"),
                (f"{rep.vcs} push race", f"{len(rep.clients)} clients over {transports}, "
                 f"{rep.total('attempts')} push commands, {rep.total('rejected')} rejected by the race, "
                 "retried ("
                 + "; ".join(f"{n}× `{r}`" for r, n in reasons.most_common(3)) + f"), {rep.wall:.0f} s"),
                (f"{rep.vcs} push/pull errors other than race rejections", str(len(errors))
                 + (f" (first: `{errors[0]}`)" if errors else "")),
                (f"{rep.vcs} clients that stopped early", "; ".join(gave_up) or "none"),
                (f"{rep.vcs} final history", f"{rep.final_commits} commits, "
                 f"{rep.heads} {'refs' if rep.vcs == 'git' else 'heads'}"),
            ]
            inv.append(Invariant(f"{rep.vcs}: 0 acknowledged pushes lost",
                                 not rep.lost and not rep.missing_messages,
                                 f"{len(rep.lost)} ids, {rep.missing_messages} messages missing"))
            inv.append(Invariant(f"{rep.vcs}: no push/pull error but race rejections", not errors,
                                 "; ".join(errors[:3])))
            inv.append(Invariant(f"{rep.vcs}: every racing client got pushes acknowledged", not idle,
                                 "; ".join(idle)))
            inv.append(Invariant(f"{rep.vcs}: race repository verifies", not rep.corrupt, rep.corrupt))
            inv.append(Invariant(f"{rep.vcs}: one head (hg) / only main (git)", rep.heads == 1,
                                 str(rep.heads)))
        rows.append(("push phase wall", f"{push_wall:.0f} s"))
    if hostile_r is not None:
        conns = [h for h in hostile_r.connections if h.opened]
        closed = sum(1 for h in conns if h.closed_by_server)
        failed_connect = sum(1 for h in hostile_r.connections if not h.opened)
        overdue = [h for h in conns if h.overdue]
        rows += [
            ("hostile connections sent", f"{len(conns)}" + (f" (+{failed_connect} not connected)"
                                                              if failed_connect else "")),
            ("hostile connections closed by the server", str(closed)),
            ("hostile connections still open at the end", f"{len(conns) - closed} "
             f"({_open_detail(conns)})" if len(conns) > closed else "0"),
            (f"hostile connections open past their bound (+{SLACK:g} s)", str(len(overdue))),
            ("idle floods: refused over the per-address limit",
             ", ".join(f"{f.port} wave {f.wave}: {f.refused}/{f.sent} refused" for f in hostile_r.floods)),
            ("clones during the attack ok / failed", f"{hostile_r.during.ok} / {hostile_r.during.failed}"),
            ("clones after the attack ok / failed", f"{hostile_r.after.ok} / {hostile_r.after.failed}"),
            ("hostile phase wall", f"{hostile_r.wall:.0f} s"),
        ]
        inv.append(Invariant("server alive after the attack", hostile_r.alive))
        inv.append(Invariant("no hostile connection open past its bound (request/idle timeout, "
                             "SSH login grace)", not overdue, _open_detail(overdue, all_of_them=True)))
        inv.append(Invariant("clones during the attack all succeed",
                             hostile_r.during.failed == 0 and hostile_r.during.ok > 0,
                             "; ".join(hostile_r.during.errors[:3])))
        inv.append(Invariant("clones after the attack all succeed", hostile_r.after.failed == 0,
                             "; ".join(hostile_r.after.errors[:3])))
        bad_floods = [f for f in hostile_r.floods if f.refused < s.flood_extra or f.accepted > s.per_address]
        inv.append(Invariant("per-address limit refuses the excess in every flood wave (slots released)",
                             not bad_floods, ", ".join(f"{f.port} wave {f.wave}: {f.refused} refused, "
                                                       f"{f.accepted} accepted" for f in bad_floods)))
    if load is not None:
        rows += [
            ("load ops ok / failed", f"{load.ops.ok} / {load.ops.failed} ({s.load_clients} clients, "
             f"{load.wall:.0f} s)"),
            ("load ops by kind", ", ".join(f"{k}: {n}" for k, n in sorted(load.by_kind.items()))),
            ("server RSS before / peak / end of load",
             f"{mib(load.rss_start)} / {mib(load.rss_peak)} / {mib(load.rss_end)}"),
            ("server RSS peak, first / second half of load",
             f"{mib(load.rss_first_half)} / {mib(load.rss_second_half)}"),
        ]
        inv.append(Invariant("load: 0 failed operations", load.ops.failed == 0 and load.ops.ok > 0,
                             "; ".join(load.ops.errors[:3])))
        inv.append(Invariant(f"server RSS peak under {s.max_rss_mib} MiB",
                             load.rss_peak < s.max_rss_mib * 1024, mib(load.rss_peak)))
        inv.append(Invariant("server alive after the load", load.alive))
    if corrupt:
        bad = {k: v for k, v in corrupt.items() if v}
        rows.append(("corrupt repositories (fsck/verify)", f"{len(bad)} of {len(corrupt)}"
                     + (f": {', '.join(bad)}" if bad else "")))
        inv.append(Invariant("every repository verifies after attack and load", not bad,
                             "; ".join(f"{k}: {v}" for k, v in bad.items())))
    if rss_overall:
        rows.append(("server RSS peak over the hostile and load phases", mib(rss_overall)))
    rows.append(("wall time", f"{wall:.0f} s"))
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "| invariant | result |", "|---|---|"]
    for i in inv:
        lines.append(f"| {i.what} | {'ok' if i.ok else 'FAILED' + (': ' + i.detail if i.detail else '')} |")
    if hostile_r is not None:
        lines += ["", "| port | attack | sent | closed by server | still open | bound s | close after s "
                  "(median, max) | open past bound | first reply |", "|---|---|---|---|---|---|---|---|---|"]
        groups: dict[tuple[str, str], list[Hostile]] = {}
        for h in hostile_r.connections:
            groups.setdefault((h.port, h.attack), []).append(h)
        for (port, attack), hs in groups.items():
            opened = [h for h in hs if h.opened]
            closed_hs = sorted(h.close_after for h in opened if h.closed_by_server)
            median = f"{closed_hs[len(closed_hs) // 2]:.1f}, {closed_hs[-1]:.1f}" if closed_hs else "–"
            refused = [h.reply for h in opened if REFUSAL_MARKS[port] in h.reply]  # floods: show the refusal
            reply = next(iter(refused), next((h.reply for h in opened if h.reply), b""))
            bound = f"{hs[0].bound:g}"
            late = sum(1 for h in opened if h.overdue)
            lines.append(f"| {port} | {attack} | {len(opened)} | {len(closed_hs)} | "
                         f"{len(opened) - len(closed_hs)} | {bound} | {median} | {late} | {_show(reply)} |")
    return "\n".join(lines) + "\n", inv


def _open_detail(conns: list[Hostile], all_of_them: bool = False) -> str:
    counts: dict[str, int] = {}
    for h in conns:
        if all_of_them or not h.closed_by_server:
            counts[f"{h.port} {h.attack}"] = counts.get(f"{h.port} {h.attack}", 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def _show(reply: bytes) -> str:
    text = reply[:60].decode("ascii", errors="replace")
    text = "".join(ch if ch.isprintable() and ch != "|" else "·" for ch in text)
    return f"`{text}`" if text else "–"


def source_version() -> str:
    """The hgwire commit the server runs (taken when the run starts: commits may land meanwhile)."""
    here = dict(os.environ)
    rc, head = run(["git", "-C", str(PROJECT_DIR), "log", "-1", "--format=%h %cI"], here, timeout=30)
    rc2, dirty = run(["git", "-C", str(PROJECT_DIR), "status", "--porcelain", "--untracked-files=no"], here,
                     timeout=30)
    commit = head.strip() if rc == 0 else "?"
    if rc2 == 0 and dirty.strip():
        commit += " + uncommitted changes"
    if os.environ.get("PYTHONPATH"):
        commit += f" (the server imports from PYTHONPATH={os.environ['PYTHONPATH']} first)"
    return commit


def header(s: Settings, tools: Tools, args: argparse.Namespace, started: str, load_start: str,
           commit: str) -> str:
    def version(cmd: list[str]) -> str:
        rc, out = run(cmd, dict(os.environ), timeout=30)
        return out.strip().splitlines()[0] if rc == 0 and out.strip() else "?"

    load_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "\n".join([
        f"# hgwire soak run ({'quick' if args.quick else 'full'})",
        "",
        f"* started {started}; `{' '.join(['python -m bench.soak', *sys.argv[1:]])}`",
        f"* machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"load average {load_start} → {load_end}",
        f"* clients: {version([tools.git, '--version'])}, {version([tools.hg, '--version'])}, "
        f"{version(['ssh', '-V'])}; hgwire at {commit}",
        f"* push race: {s.git_clients} git clients (git://, SSH, HTTP) and {s.hg_clients} hg clients "
        f"(SSH, HTTP) × {s.pushes} pushes; server without --config (git:// pushes anonymously)",
        f"* attack: {s.attack_seconds:.0f} s, `[limits]` request_timeout = {s.request_timeout:g}, "
        f"idle_timeout = {s.idle_timeout:g}, max_connections_per_address = {s.per_address}; hostile from "
        f"{HOSTILE_SOURCE}, idle floods ({s.per_address} + {s.flood_extra} per port, two waves) from "
        f"{FLOOD_SOURCE}, clients from {LOOPBACK}",
        f"* load: {s.load_clients} clients × {s.load_seconds:.0f} s (git clone/fetch v0+v2, hg clone/pull; "
        "git://, SSH, HTTP); RSS = VmRSS of the twistd process tree every 0.25 s",
        "",
        "",
    ])


# ------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    s, args = parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    t0 = time.monotonic()
    tools = Tools.find()
    commit = source_version()
    base = Path(tempfile.mkdtemp(prefix="hgwire-soak-"))
    env = Environment(base, tools, s)
    pushes: list[PushReport] | None = None
    push_wall = 0.0
    hostile_report: HostileReport | None = None
    corrupt: dict[str, str] = {}
    load: LoadReport | None = None
    rss_overall = 0
    server: Server | None = None
    sampler: RssSampler | None = None
    aborted = ""
    try:
        log(f"work directory {base}")
        env.prepare()
        if "push" in s.phases:
            pushes, push_wall = phase_push(env, s)
        if "hostile" in s.phases or "load" in s.phases:
            server = Server(env, "limits", policy=True)
            server.start()
            sampler = RssSampler(lambda: server.pid if server else None)
            sampler.start()
            if "hostile" in s.phases:
                hostile_report = phase_hostile(server, env, s)
            if "load" in s.phases:
                load = phase_load(server, env, s, sampler)
            sampler.stop()
            rss_overall = sampler.peak()
            server.stop()
            corrupt = verify(env, ["served.git", "served", "race.git", "race"])
    except KeyboardInterrupt:
        aborted = "interrupted"
        log("interrupted: partial figures follow")
    except Exception as exc:  # set-up or harness failure: report what ran, and fail
        aborted = f"{type(exc).__name__}: {str(exc)[:400]}"
        log(f"the run stopped: {aborted}")
        traceback.print_exc()
    finally:
        if sampler is not None:
            sampler.stop()
        if server is not None:
            server.stop()
    wall = time.monotonic() - t0
    table, invariants = summarize(s, pushes, push_wall, hostile_report, load, corrupt, rss_overall, wall,
                                  aborted)
    text = header(s, tools, args, started, load_start, commit) + table
    failed = [i for i in invariants if not i.ok]
    text += "\n" + (f"**{len(failed)} invariant(s) FAILED**" if failed else "**all invariants hold**") + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"summary written to {args.output}")
    if failed or s.keep:
        log(f"kept {base} (server logs: {', '.join(str(p) for p in base.glob('server-*.log'))})")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
