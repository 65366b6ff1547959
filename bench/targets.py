"""The servers under test ("targets"): hgwire on each transport and the references.

Every target answers the same questions: start on 127.0.0.1 serving a root
directory, the URL of a repository, the client's extra environment and
arguments, which processes are the server (for RSS), and the server CPU time
spent between two points.  A target that cannot run (a listener hgwire does not
have yet, lighttpd not installed, a probe clone that fails) raises
``Unavailable`` with the reason, and the runner prints a "not available" row.

References (what hgwire is measured against, in the same run):

===================  =========================================================
``git-daemon``       ``git daemon`` (git://), the git baseline
``git-ssh``          ``git-upload-pack``/``receive-pack`` behind ``fakessh.sh``
``git-http``         ``git http-backend`` as CGI behind lighttpd
``hg-serve``         ``hg serve`` (HTTP), the Mercurial baseline
``hg-ssh``           ``hg serve --stdio`` behind ``fakessh.sh``
``hg-local``         no server: the client pulls from or pushes to the path
``git-sshd``         ``git-upload-pack``/``receive-pack`` behind OpenSSH's sshd
``hg-sshd``          ``hg serve --stdio`` behind OpenSSH's sshd
===================  =========================================================

``hg-local`` is a floor, not a server: what the hg client itself costs for a
no-op pull or a push when no wire protocol is involved at all (the push also
does the server's writing, in the client's process).  It runs in those two
cases only (a local clone would hardlink the store).

The fake ssh runs the remote command locally: the reference ssh numbers have
no handshake or encryption, while hgwire's ssh targets go through a real
OpenSSH client and hgwire's Conch server (key auth), so they pay both.  The
``*-sshd`` references are what an operator runs today: a private ``sshd``
(key auth, its own config, a free port) that execs the client's command, so
they pay the handshake and encryption too.  They need ``sshd``
(``apt-get install openssh-server``; it is started only for the bench) and
are "not available" without it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import git_executable, hg_executable
from bench.procs import marked_subtrees, subtree, ticks_to_seconds, tree_cpu_ticks

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
FAKESSH = BENCH_DIR / "fakessh.sh"
LOOPBACK = "127.0.0.1"
BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password"
START_TIMEOUT = 30.0


class Unavailable(Exception):
    """This target cannot be measured here (yet); the message says why."""


@dataclass(frozen=True)
class Tools:
    """Executables the targets and clients use."""

    git: str
    hg: str
    twistd: str
    lighttpd: str | None
    sshd: str | None = None

    @classmethod
    def find(cls) -> Tools:
        venv_twistd = PROJECT_DIR / ".venv" / "bin" / "twistd"
        return cls(git=git_executable(), hg=hg_executable(),
                   twistd=str(venv_twistd) if venv_twistd.exists() else (shutil.which("twistd") or "twistd"),
                   lighttpd=_system_tool("lighttpd"), sshd=_system_tool("sshd"))


def _system_tool(name: str) -> str | None:
    """``name`` on PATH or in the sbin directories (often not on a user's PATH)."""
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text[-lines:])


class Daemon:
    """A server process in its own session, stopped by its process group id."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int, timeout: float = START_TIMEOUT) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable(f"server exited (rc={self.proc.returncode}): {tail(self.log) or 'no output'}")
            try:
                socket.create_connection((LOOPBACK, port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise Unavailable(f"server did not accept on port {port} within {timeout:.0f}s: {tail(self.log)}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


class Target(ABC):
    """One server under test."""

    name: str = ""
    vcs: str = ""  # "git" | "hg"
    transport: str = ""  # "git" | "ssh" | "http"
    hgwire: bool = False
    reference: str | None = None  # the same-transport reference (for hgwire targets)
    cases: tuple[str, ...] | None = None  # the cases this target runs in (None: all of its VCS)
    via: str = ""  # how it is served, for --list

    def __init__(self, tools: Tools, work: Path) -> None:
        self.tools = tools
        self.work = work / self.name
        self.root: Path | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @abstractmethod
    def start(self, root: Path, repo: str) -> None:
        """Serve ``repo`` (a directory under ``root``); raise ``Unavailable`` if that cannot be."""

    def stop(self) -> None:
        """Stop the server (no-op for ssh-style targets)."""

    # -- addressing -----------------------------------------------------------------------
    @abstractmethod
    def url(self, repo: str, write: bool = False) -> str:
        """The URL a client uses for ``repo``; ``write`` for a push (may carry credentials)."""

    def client_env(self) -> dict[str, str]:
        return {}

    def hg_args(self) -> list[str]:
        """Extra arguments for hg commands talking to this target."""
        return []

    # -- measuring -------------------------------------------------------------------------
    @abstractmethod
    def server_pids(self, client_pids: Iterable[int]) -> set[int]:
        """The server's processes right now (for RSS sampling)."""

    @abstractmethod
    def cpu_mark(self) -> float | None:
        """Server CPU seconds so far (a counter: the runner takes differences)."""

    def settle(self, timeout: float = 3.0) -> None:
        """Wait until per-request server processes are gone (so their CPU is reaped)."""


class DaemonTarget(Target):
    """A target with a long-running server process listening on a TCP port."""

    def __init__(self, tools: Tools, work: Path) -> None:
        super().__init__(tools, work)
        self.daemon: Daemon | None = None
        self.port = 0
        self._idle: set[int] = set()

    @abstractmethod
    def argv(self, root: Path, repo: str) -> list[str]:
        """The server command line (must stay in the foreground)."""

    def prepare(self, root: Path, repo: str) -> None:
        """Anything to create before the first start (keys, config files)."""

    def server_env(self) -> dict[str, str] | None:
        return None

    def start(self, root: Path, repo: str) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.prepare(root, repo)
        self.port = free_port()
        self.daemon = Daemon(self.argv(root, repo), self.work / "server.log", self.server_env())
        self.daemon.start(self.port)
        self._idle = set(self.server_pids(()))

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def server_pids(self, client_pids: Iterable[int]) -> set[int]:
        pid = self.daemon.pid if self.daemon else None
        return set(subtree(pid)) if pid else set()

    def cpu_mark(self) -> float | None:
        pid = self.daemon.pid if self.daemon else None
        return ticks_to_seconds(tree_cpu_ticks(pid)) if pid else None

    def settle(self, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.server_pids(())) > len(self._idle):
            time.sleep(0.02)


class FakeSshTarget(Target):
    """The server runs below the client, through ``fakessh.sh`` (which reports its CPU)."""

    transport, via = "ssh", "fake ssh"

    def __init__(self, tools: Tools, work: Path) -> None:
        super().__init__(tools, work)
        self.stats = self.work / "fakessh-stats"

    def start(self, root: Path, repo: str) -> None:
        self.root = root
        self.stats.mkdir(parents=True, exist_ok=True)

    def server_pids(self, client_pids: Iterable[int]) -> set[int]:
        return marked_subtrees(client_pids, str(FAKESSH))

    def cpu_mark(self) -> float | None:
        total = 0.0
        for f in self.stats.glob("s.*"):
            lines = f.read_text().splitlines()
            if len(lines) >= 2:  # line 2: reaped children "XmY.YYYs XmY.YYYs"
                total += sum(_minsec(v) for v in lines[1].split())
        return total

    def stats_env(self) -> dict[str, str]:
        return {"FAKESSH_STATS": str(self.stats / "s")}


def _minsec(value: str) -> float:
    minutes, _, seconds = value.rstrip("s").partition("m")
    return int(minutes) * 60 + float(seconds)


# ------------------------------------------------------------------------ references
class GitDaemon(DaemonTarget):
    name, vcs, transport = "git-daemon", "git", "git"

    def argv(self, root: Path, repo: str) -> list[str]:
        return [self.tools.git, "daemon", "--reuseaddr", f"--listen={LOOPBACK}", f"--port={self.port}",
                "--export-all", f"--base-path={root}", "--enable=receive-pack", str(root)]

    def url(self, repo: str, write: bool = False) -> str:
        return f"git://{LOOPBACK}:{self.port}/{repo}"


class GitSsh(FakeSshTarget):
    name, vcs = "git-ssh", "git"

    def url(self, repo: str, write: bool = False) -> str:
        return f"localhost:{self.root}/{repo}"

    def client_env(self) -> dict[str, str]:
        return {"GIT_SSH_COMMAND": str(FAKESSH), "GIT_SSH_VARIANT": "ssh", **self.stats_env()}


LIGHTTPD_CONF = """\
server.document-root = "{root}"
server.bind = "{host}"
server.port = {port}
server.errorlog = "{work}/lighttpd.err"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
server.max-request-size = 0
server.stream-response-body = 2
server.stream-request-body = 2
alias.url = ("/git/" => "{backend}/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = (
    "GIT_PROJECT_ROOT" => "{root}",
    "GIT_HTTP_EXPORT_ALL" => "1",
    "GIT_CONFIG_COUNT" => "1",
    "GIT_CONFIG_KEY_0" => "http.receivepack",
    "GIT_CONFIG_VALUE_0" => "true"
  )
}}
"""


class GitHttp(DaemonTarget):
    """``git http-backend`` (CGI) behind lighttpd, like a typical smart-HTTP deployment."""

    name, vcs, transport = "git-http", "git", "http"

    def prepare(self, root: Path, repo: str) -> None:
        if not self.tools.lighttpd:
            raise Unavailable("lighttpd is not installed (apt-get install lighttpd)")

    def argv(self, root: Path, repo: str) -> list[str]:
        exec_path = subprocess.run([self.tools.git, "--exec-path"], capture_output=True, text=True,
                                   check=True).stdout.strip()
        conf = self.work / "lighttpd.conf"
        conf.write_text(LIGHTTPD_CONF.format(root=root, host=LOOPBACK, port=self.port, work=self.work,
                                             backend=f"{exec_path}/git-http-backend"))
        assert self.tools.lighttpd is not None
        return [self.tools.lighttpd, "-D", "-f", str(conf)]

    def url(self, repo: str, write: bool = False) -> str:
        return f"http://{LOOPBACK}:{self.port}/git/{repo}"


class HgServe(DaemonTarget):
    """``hg serve`` of one repository (it serves one repository per process)."""

    name, vcs, transport = "hg-serve", "hg", "http"

    def argv(self, root: Path, repo: str) -> list[str]:
        return [self.tools.hg, "serve", "-R", str(root / repo), "-a", LOOPBACK, "-p", str(self.port),
                "--config", "web.push_ssl=false", "--config", "web.allow-push=*",
                "--accesslog", str(self.work / "access.log"), "--errorlog", str(self.work / "error.log")]

    def server_env(self) -> dict[str, str]:
        return {**os.environ, "HGPLAIN": "1", "HGRCPATH": ""}

    def url(self, repo: str, write: bool = False) -> str:
        return f"http://{LOOPBACK}:{self.port}/"


class HgSsh(FakeSshTarget):
    name, vcs = "hg-ssh", "hg"

    def url(self, repo: str, write: bool = False) -> str:
        return f"ssh://localhost/{self.root}/{repo}"

    def hg_args(self) -> list[str]:
        return ["--ssh", str(FAKESSH), "--remotecmd", self.tools.hg]

    def client_env(self) -> dict[str, str]:
        return self.stats_env()


SSHD_CONFIG = """\
ListenAddress {host}
Port {port}
HostKey {work}/host_key
AuthorizedKeysFile {work}/authorized_keys
PidFile none
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
UseDNS no
AcceptEnv GIT_PROTOCOL
SetEnv HGPLAIN=1 HGRCPATH= HOME={work}/home
LogLevel ERROR
"""


class Sshd(DaemonTarget):
    """The client's command run by OpenSSH's ``sshd`` (a private one: own config, keys and port)."""

    transport, via = "ssh", "OpenSSH sshd"

    def prepare(self, root: Path, repo: str) -> None:
        if not self.tools.sshd:
            raise Unavailable("sshd is not installed (apt-get install openssh-server)")
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            # sshd run as root insists on its privilege separation directory, which the
            # package's service unit creates at boot (not in a container without systemd)
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        _keypair(self.work / "host_key", "host")
        public = _keypair(self.work / "id_ed25519", BENCH_USER)
        (self.work / "authorized_keys").write_text(public)

    def argv(self, root: Path, repo: str) -> list[str]:
        conf = self.work / "sshd_config"
        # HOME: the login shell would otherwise run the account's own dotfiles (a bashrc
        # sourced for every ssh command), which a hosting account would not have
        (self.work / "home").mkdir(exist_ok=True)
        conf.write_text(SSHD_CONFIG.format(host=LOOPBACK, port=self.port, work=self.work))
        assert self.tools.sshd is not None
        return [self.tools.sshd, "-D", "-e", "-f", str(conf)]

    def ssh_command(self) -> str:
        return _ssh_command(self.work / "id_ed25519")

    def url(self, repo: str, write: bool = False) -> str:
        assert self.root is not None
        # an absolute path: git reads ssh://HOST/abs as /abs, hg needs ssh://HOST//abs
        slash = "/" if self.vcs == "hg" else ""
        return f"ssh://{getpass.getuser()}@{LOOPBACK}:{self.port}{slash}{self.root.resolve()}/{repo}"


class GitSshd(Sshd):
    name, vcs = "git-sshd", "git"

    def client_env(self) -> dict[str, str]:
        return {"GIT_SSH_COMMAND": self.ssh_command(), "GIT_SSH_VARIANT": "ssh"}


class HgSshd(Sshd):
    name, vcs = "hg-sshd", "hg"

    def hg_args(self) -> list[str]:
        return ["--ssh", self.ssh_command(), "--remotecmd", self.tools.hg]


def _keypair(key: Path, comment: str) -> str:
    """An ed25519 key pair at ``key`` (made once); its public line."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                       check=True, stdin=subprocess.DEVNULL)
    return key.with_name(key.name + ".pub").read_text()


def _ssh_command(key: Path) -> str:
    return (f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")


class HgLocal(Target):
    """The floor: ``hg pull``/``hg push`` with a filesystem path, no server process at all."""

    name, vcs, transport = "hg-local", "hg", "local"
    cases = ("noop", "fetch", "push", "import")

    def start(self, root: Path, repo: str) -> None:
        if not (root / repo / ".hg").is_dir():
            raise Unavailable(f"no Mercurial repository at {root / repo}")
        self.root = root

    def url(self, repo: str, write: bool = False) -> str:
        assert self.root is not None
        return str(self.root / repo)

    def server_pids(self, client_pids: Iterable[int]) -> set[int]:
        return set()

    def cpu_mark(self) -> float | None:
        return None


# ------------------------------------------------------------------------ hgwire
class Hgwire(DaemonTarget):
    """``twistd -n hgwire`` with one listener; ssh uses real key auth, http push uses Basic auth."""

    hgwire, via = True, "hgwire"
    config: Path | None = None
    """``--config`` for every hgwire server (``run.py --hgwire-config``); git:// is read-only with one."""

    def argv(self, root: Path, repo: str) -> list[str]:
        listen = f"tcp:{self.port}:interface={LOOPBACK}"
        argv = [self.tools.twistd, "-n", "--pidfile=", "hgwire", "--root", str(root),
                f"--{self.transport}", listen]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        if self.transport == "ssh":
            argv += ["--host-key", str(self.work / "host_key"),
                     "--authorized-keys", str(self.work / "authorized_keys")]
        if self.transport == "http":
            if (self.work / "htpasswd").exists():
                argv += ["--htpasswd", str(self.work / "htpasswd")]
            if self.vcs == "hg":
                argv += ["--allow-push-over-http"]
        return argv

    def server_env(self) -> dict[str, str]:
        return {**os.environ, "HGPLAIN": "1", "HGRCPATH": ""}

    def prepare(self, root: Path, repo: str) -> None:
        if self.transport == "ssh":
            self._ssh_keys()
        if self.transport == "http":
            self._htpasswd()

    def _ssh_keys(self) -> None:
        public = _keypair(self.work / "id_ed25519", BENCH_USER).split()
        (self.work / "authorized_keys").write_text(f"{public[0]} {public[1]} {BENCH_USER}\n")

    def _htpasswd(self) -> None:
        path = self.work / "htpasswd"
        if path.exists():
            return
        try:
            import bcrypt
        except ImportError:
            return  # pushes over http will then be refused and show up as errors
        # the cheapest bcrypt cost: the references authenticate nobody
        hashed = bcrypt.hashpw(BENCH_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        path.write_text(f"{BENCH_USER}:{hashed}\n")

    def ssh_command(self) -> str:
        return _ssh_command(self.work / "id_ed25519")

    def url(self, repo: str, write: bool = False) -> str:
        if self.transport == "git":
            return f"git://{LOOPBACK}:{self.port}/{repo}"
        if self.transport == "ssh":
            return f"ssh://{BENCH_USER}@{LOOPBACK}:{self.port}/{repo}"
        credentials = f"{BENCH_USER}:{BENCH_PASSWORD}@" if write else ""
        return f"http://{credentials}{LOOPBACK}:{self.port}/{repo}"

    def client_env(self) -> dict[str, str]:
        if self.transport == "ssh" and self.vcs == "git":
            return {"GIT_SSH_COMMAND": self.ssh_command(), "GIT_SSH_VARIANT": "ssh"}
        return {}

    def hg_args(self) -> list[str]:
        return ["--ssh", self.ssh_command()] if self.transport == "ssh" else []


def _hgwire(name: str, vcs: str, transport: str, reference: str) -> type[Hgwire]:
    return type(name.replace("-", "_"), (Hgwire,),
                {"name": name, "vcs": vcs, "transport": transport, "reference": reference})


TARGET_CLASSES: dict[str, type[Target]] = {cls.name: cls for cls in (
    GitDaemon, GitSsh, GitHttp, HgServe, HgSsh, HgLocal, GitSshd, HgSshd,
    _hgwire("hgwire-git", "git", "git", "git-daemon"),
    _hgwire("hgwire-git-ssh", "git", "ssh", "git-ssh"),
    _hgwire("hgwire-git-http", "git", "http", "git-http"),
    _hgwire("hgwire-hg-ssh", "hg", "ssh", "hg-ssh"),
    _hgwire("hgwire-hg-http", "hg", "http", "hg-serve"),
)}
BASELINE = {"git": "git-daemon", "hg": "hg-serve"}
