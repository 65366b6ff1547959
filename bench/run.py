"""Side-by-side benchmark: hgwire against git daemon, git http-backend, hg serve and ssh.

Real ``git``/``hg`` clients on 127.0.0.1.  For every case all selected targets
are started, then runs alternate A B C A B C ... so that a slow moment of the
(shared, 2-core) machine hits every target alike.  Reported per case and
target: median wall time, min-max, the ratio to the VCS baseline (git daemon,
hg serve) and to the same-transport reference - each the median of the
per-round ratios -, server CPU seconds (median per run), server peak RSS
(summed over the server's process tree, sampled every 50 ms from /proc) and
errors.  Targets that cannot run yet get a "not available: ..." row.

    .venv/bin/python bench/run.py                     # everything (make bench)
    .venv/bin/python bench/run.py --quick             # small corpus smoke run
    .venv/bin/python bench/run.py --targets git-daemon,hgwire-git --cases clone,noop --runs 5
    .venv/bin/python bench/run.py --list

Writes ``bench/results/<UTC time>-<corpus>[-<cases>].md`` and ``.json``; a run of
all the default cases on the full corpus also writes ``latest.md``/``latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import corpus
from bench.procs import PeakSampler, rss_kib
from bench.targets import BASELINE, TARGET_CLASSES, DaemonTarget, Hgwire, Target, Tools, Unavailable

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_DIR = BENCH_DIR / "work"
QUICK_BUDGET_SCALE = 0.25
QUICK_CONCURRENCY = 4


@dataclass(frozen=True)
class Case:
    """One benchmark case."""

    name: str
    repo: str  # corpus role of the served repository
    vcs: tuple[str, ...]
    runs: int  # default measured rounds
    budget: float  # seconds; no round starts that would end past it (one measured round always runs)
    what: str
    timeout: float = 180.0  # per client, seconds (--timeout lowers it)
    targets: tuple[str, ...] = ()  # the default targets when --targets is not given (empty: all)


GIT_READ_TARGETS = ("git-daemon", "git-ssh", "git-http", "hgwire-git", "hgwire-git-ssh", "hgwire-git-http")

CASES: dict[str, Case] = {c.name: c for c in (
    Case("clone", "big", ("git", "hg"), 5, 300, "full clone (git --no-checkout, hg -U), fresh destination"),
    Case("clone-sha256", "big256", ("git",), 5, 150, "full clone (git --no-checkout) of the big history as a "
         "SHA-256 repository", targets=("git-daemon", "git-ssh", "git-http", "hgwire-git", "hgwire-git-ssh",
                                        "hgwire-git-http")),
    # opt-in: a repository as a host's geometric repacking leaves it (several packs, a multi-pack index bitmap)
    Case("clone-midx", "bigmidx", ("git",), 5, 150, "full clone (git --no-checkout) of the big history in three "
         "packs under a multi-pack index with a bitmap", targets=("git-daemon", "git-http", "hgwire-git",
                                                                  "hgwire-git-http")),
    # opt-in: files of many megabytes in history (no largefiles, no LFS): memory is what they measure
    Case("clone-large", "large", ("git", "hg"), 3, 200, "full clone of two commits of large files (a 96 MiB "
         "text, 40 MiB of random bytes, the text changed)", targets=("git-daemon", "git-http", "hgwire-git",
                                                                     "hgwire-git-http", "hg-serve", "hgwire-hg-http",
                                                                     "hgwire-hg-ssh")),
    Case("import-large", "large", ("git", "hg"), 3, 200, "push of those two commits into an empty repository",
         targets=("git-daemon", "hgwire-git", "hg-serve", "hgwire-hg-http", "hgwire-hg-ssh")),
    Case("partial", "big", ("git",), 5, 120, "blobless clone (git clone --filter=blob:none --no-checkout)",
         targets=GIT_READ_TARGETS),
    Case("partial-checkout", "big", ("git",), 5, 150, "blobless clone with its checkout, which fetches the "
         "blobs of the checked-out tree (git clone --filter=blob:none)", targets=GIT_READ_TARGETS),
    Case("noop", "small", ("git", "hg"), 5, 60, "fetch/pull of an up-to-date clone"),
    Case("fetch", "push_src", ("git", "hg"), 5, 120, "fetch/pull of 100 new commits into a copy of a clone of "
         "the big history (the push case's commits; the server's repository as that push leaves it)"),
    Case("push", "big", ("git", "hg"), 3, 150, "push of 100 commits; server repo restored + restarted per run"),
    Case("import", "big", ("git", "hg"), 3, 200, "push of the whole history (every branch and tag, hg: every "
         "bookmark) into an empty repository, as a migration does; server repo made empty + restarted per run"),
    # opt-in: the import as git sends it with its defaults over HTTP, in chunks as it packs (the import
    # case sets a 1 GiB http.postBuffer, so git packs everything before it sends a byte there)
    Case("import-chunked", "big", ("git",), 5, 200, "the git import with git's default http.postBuffer: "
         "over HTTP the pack is sent in chunks while git makes it", targets=("git-daemon", "hgwire-git-http")),
    Case("stream", "big", ("hg",), 5, 60, "hg clone --stream -U"),
    Case("concurrent", "big", ("git", "hg"), 2, 300,
         "N simultaneous full clones; the first round right after a cold start", timeout=150.0,
         targets=("git-daemon", "hg-serve", "hgwire-git", "hgwire-hg-http")),
    Case("web", "big", ("hg",), 5, 120, "hgweb's JSON pages a browser or script reads: logs, changesets, "
         "a file, its history, annotation and diff, the graph, a search (one client, one connection each)",
         targets=("hg-serve", "hgwire-hg-http")),
    # opt-in (not in the default --cases): memory growth over many sequential clones
    Case("growth", "small", ("git", "hg"), 1, 600, "N sequential clones (--growth-clones, 100): server RSS "
         "after the first vs after the last", targets=("git-daemon", "hg-serve", "hgwire-git", "hgwire-git-ssh",
                                                       "hgwire-git-http", "hgwire-hg-ssh", "hgwire-hg-http")),
)}
DEFAULT_CASES = ("clone", "clone-sha256", "partial", "partial-checkout", "noop", "fetch", "push", "import", "stream",
                 "concurrent", "web")
PUSH_CASES = ("push", "import", "import-chunked", "import-large")
"""Cases whose every run starts the server on a repository of its own, which the run writes."""
DEFAULT_TARGETS = list(TARGET_CLASSES)


@dataclass
class Measurement:
    """One timed run of one target."""

    round: int
    warmup: bool
    wall: float
    ok: bool
    failed_clients: int = 0
    error: str = ""
    server_cpu: float | None = None
    peak_rss_kib: int | None = None
    result_bytes: int | None = None
    idle_rss_kib: tuple[int, ...] | None = None  # growth case: after the first, the middle and the last clone


@dataclass
class Outcome:
    """All runs of one target in one case."""

    case: str
    target: str
    vcs: str
    unavailable: str = ""
    runs: list[Measurement] = field(default_factory=list)

    def measured(self) -> list[Measurement]:
        return [m for m in self.runs if m.ok and not m.warmup]

    def errors(self) -> int:
        return sum(max(1, m.failed_clients) for m in self.runs if not m.ok)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ clients
WEB_PAGES = ("json-shortlog", "json-changelog?revcount=200", "json-rev/tip", "json-rev/2500", "json-rev/4000",
             "json-manifest/tip", "json-file/tip/lib/d1/d2/f718.md", "json-filelog/tip/lib/d1/d2/f718.md",
             "json-annotate/tip/lib/d1/d2/f718.md", "json-annotate/tip/tests/f563.txt",
             "json-diff/tip/lib/d1/d2/f718.md", "json-comparison/tip/lib/d1/d2/f718.md", "json-graph?revcount=200",
             "raw-rev/4000", "json-changelog?rev=merge", "json-tags", "json-branches", "json-summary")
"""The web case's pages, in order, over one connection (the corpus's most edited files)."""


class Clients:
    """Builds and runs the git/hg client commands of every case."""

    def __init__(self, tools: Tools, home: Path, timeout: float) -> None:
        self.tools = tools
        self.home = home
        self.timeout = timeout
        home.mkdir(parents=True, exist_ok=True)

    def env(self, target: Target) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"HOME": str(self.home), "HGPLAIN": "1", "HGRCPATH": "", "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_SSH_VARIANT": "ssh"})
        env.pop("GIT_SSH_COMMAND", None)
        env.update(target.client_env())
        return env

    def command(self, kind: str, target: Target, url: str, dest: Path) -> list[str]:
        """kind: clone | partial | partial-checkout | stream | noop | fetch | push | import | probe."""
        if target.vcs == "git":
            git = self.tools.git
            return {
                "clone": [git, "clone", "-q", "--no-checkout", url, str(dest)],
                "partial": [git, "clone", "-q", "--no-checkout", "--filter=blob:none", url, str(dest)],
                "partial-checkout": [git, "clone", "-q", "--filter=blob:none", url, str(dest)],
                "noop": [git, "-C", str(dest), "fetch", "-q", url,
                         "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
                # into a bare copy of the server's repository: its branches move as a mirror's
                "fetch": [git, "-C", str(dest), "fetch", "-q", url, "+refs/heads/*:refs/heads/*",
                          "+refs/tags/*:refs/tags/*"],
                "push": [git, "-C", str(dest), "push", "-q", url, "main:main"],
                # one request body with a length, not chunks: git http-backend behind lighttpd drops a
                # chunked push of this size ("unexpected disconnect while reading sideband packet")
                "import": [git, "-c", "http.postBuffer=1073741824", "-C", str(dest), "push", "-q", url,
                           "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"],
                "import-chunked": [git, "-C", str(dest), "push", "-q", url,
                                   "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"],
                "probe": [git, "ls-remote", url],
            }[kind]
        if kind == "web":
            base = url.rstrip("/")
            curl = shutil.which("curl") or "curl"
            return [curl, "-s", "--fail", *(arg for page in WEB_PAGES for arg in ("-o", os.devnull, f"{base}/{page}"))]
        hg, extra = self.tools.hg, target.hg_args()
        return {
            "clone": [hg, "clone", "-q", "-U", *extra, url, str(dest)],
            "stream": [hg, "clone", "-q", "-U", "--stream", *extra, url, str(dest)],
            "noop": [hg, "-R", str(dest), "pull", "-q", *extra, url],
            "fetch": [hg, "-R", str(dest), "pull", "-q", *extra, url],
            "push": [hg, "-R", str(dest), "push", "-q", "-r", "main", *extra, url],
            "import": [hg, "-R", str(dest), "push", "-q", "--all-bookmarks", *extra, url],
            "probe": [hg, "identify", *extra, url],
        }[kind]

    def spawn(self, cmd: list[str], target: Target) -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=self.env(target), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def finish(self, proc: subprocess.Popen[bytes], deadline: float, timeout: float) -> tuple[bool, str]:
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return False, f"timeout after {timeout:.0f}s"
        text = out.decode(errors="replace").strip()
        if proc.returncode != 0:
            return False, f"rc={proc.returncode}: {_last_lines(text)}"
        return True, ""

    def run(self, cmd: list[str], target: Target) -> tuple[bool, str]:
        return self.finish(self.spawn(cmd, target), time.monotonic() + self.timeout, self.timeout)


def _last_lines(text: str, n: int = 2) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " / ".join(lines[-n:])[:300] or "no output"


# ------------------------------------------------------------------------ sizes
def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def received_bytes(vcs: str, dest: Path) -> int | None:
    """git: the received pack; hg: the clone's store."""
    where = dest / ".git" / "objects" / "pack" if vcs == "git" else dest / ".hg" / "store"
    if not where.is_dir():
        return None
    if vcs == "git":
        return sum(p.stat().st_size for p in where.glob("*.pack"))
    return dir_bytes(where)


class Trash:
    """Where the runs' clones and copies go instead of being deleted: all of it goes at the end of the run.

    Deleting a few hundred MB slows every file operation for a minute or more
    afterwards on this machine's ext4 (mounted with ``discard``): eight
    concurrent hg clones right after the previous round's eight were deleted
    took 37-44 s with 15-30 s of client system time, against 29-31 s and
    5-6 s with nothing deleted before them.  Whichever target ran after a
    big deletion paid for it.  A rename costs nothing; the run needs about
    6 GB free under ``bench/work`` for the full corpus.
    """

    def __init__(self, where: Path) -> None:
        self.where = where
        self.count = 0

    def put(self, path: Path) -> None:
        if not path.exists():
            return
        self.where.mkdir(parents=True, exist_ok=True)
        self.count += 1
        path.rename(self.where / f"{self.count}-{path.name}")


def copy_tree(src: Path, dst: Path, hardlinks: bool = False, trash: Trash | None = None) -> None:
    """A copy of a repository; ``hardlinks`` only for clients (git and hg break links before writing)."""
    if dst.exists():
        if trash is not None:
            trash.put(dst)
        else:
            shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al" if hardlinks else "-a", str(src), str(dst)], check=True)


# ------------------------------------------------------------------------ the runner
def sits_out(case: Case, target: Target) -> str:
    """Why ``target`` cannot take part in ``case`` at all ("" if it can): its row says so, nothing runs."""
    if case.name == "growth" and not isinstance(target, DaemonTarget):
        return "no resident server to grow (ssh-style reference)"
    if case.name == "web" and target.transport != "http":
        return "hgweb's pages are served over HTTP only"
    return ""


class Runner:
    def __init__(self, args: argparse.Namespace, corpus_dir: Path, work: Path, tools: Tools) -> None:
        self.args = args
        self.corpus_dir = corpus_dir
        self.work = work
        self.tools = tools
        self.clients = Clients(tools, work / "home", args.timeout or 180.0)
        self.timeout = args.timeout or 180.0  # per client in the current case
        self.unavailable: dict[str, str] = {}  # target -> reason, remembered across cases
        self.trash = Trash(work / "trash")
        self.pushed_heads: dict[tuple[str, str], str] = {}  # (vcs, case) -> head of the push source

    # -- roots -----------------------------------------------------------------------------
    def repo_name(self, vcs: str, role: str) -> str:
        return corpus.REPOS[vcs][role]

    def read_root(self, target: Target, extra_roles: tuple[str, ...] = ()) -> Path:
        """A private copy of the read-only repositories for one target (servers may write caches);
        ``extra_roles``: more of the corpus's repositories, copied when first asked for."""
        root = self.work / target.name / "root"
        roles = ("big", "small", "big256") if target.vcs == "git" else ("big", "small")
        for role in (*roles, *extra_roles):
            name = self.repo_name(target.vcs, role)
            if not (root / name).exists():
                copy_tree(self.corpus_dir / name, root / name)
        if target.vcs == "git":  # git's upload-pack refuses filters without it (hgwire serves them anyway)
            config = root / self.repo_name("git", "big") / "config"
            subprocess.run([self.tools.git, "config", "-f", str(config), "uploadpack.allowFilter", "true"], check=True)
        return root

    # -- one target's lifecycle -------------------------------------------------------------
    def start(self, target: Target, root: Path, repo: str) -> None:
        """Start and probe (one cheap read) so the server is warm and known to work."""
        target.start(root, repo)
        ok, err = self.clients.run(self.clients.command("probe", target, target.url(repo), Path()), target)
        if not ok:
            target.stop()
            raise Unavailable(f"probe `{'git ls-remote' if target.vcs == 'git' else 'hg identify'}` "
                              f"failed: {err}")

    def measure(self, target: Target, cmds: Sequence[list[str]], timeout: float
                ) -> tuple[float, list[str], float | None, int]:
        """Run ``cmds`` at once; return wall, errors, server CPU and peak RSS."""
        # Every round starts with the previous rounds' writes on disk: eight clones leave
        # about 300 MB of dirty pages, whose writeback would otherwise land in the next round.
        os.sync()
        cpu0 = target.cpu_mark()
        procs: list[subprocess.Popen[bytes]] = []
        sampler = PeakSampler(lambda: target.server_pids([p.pid for p in procs]))
        t0 = time.monotonic()
        procs.extend(self.clients.spawn(cmd, target) for cmd in cmds)
        sampler.start()
        deadline = t0 + timeout
        results = [self.clients.finish(p, deadline, timeout) for p in procs]
        wall = time.monotonic() - t0
        peak = sampler.stop()
        target.settle()
        cpu1 = target.cpu_mark()
        cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        return wall, [err for ok, err in results if not ok], cpu, peak

    # -- cases ---------------------------------------------------------------------------------
    def run_case(self, case: Case, names: list[str]) -> list[Outcome]:
        self.timeout = min(self.args.timeout or case.timeout, case.timeout)
        targets = [TARGET_CLASSES[n](self.tools, self.work) for n in names]
        targets = [t for t in targets if t.vcs in case.vcs and (t.cases is None or case.name in t.cases)]
        outcomes = {t.name: Outcome(case.name, t.name, t.vcs, self.unavailable.get(t.name, "")) for t in targets}
        targets = [t for t in targets if t.name not in self.unavailable]
        live: list[Target] = []
        try:
            for t in targets:
                reason = sits_out(case, t)
                if reason:
                    outcomes[t.name].unavailable = reason
            targets = [t for t in targets if not sits_out(case, t)]
            if case.name not in PUSH_CASES:
                live = self.start_all(case, targets, outcomes)
            rounds = self.args.warmup + self.rounds(case)
            budget = case.budget * self.args.budget_scale * (QUICK_BUDGET_SCALE if self.args.quick else 1.0)
            t0 = time.monotonic()
            cost: dict[str, float] = {}  # target -> seconds its last run took, overhead included
            for rnd in range(rounds):
                candidates = [t for t in (targets if case.name in PUSH_CASES else live)
                              if self.keeps_running(outcomes[t.name])]
                elapsed = time.monotonic() - t0
                if not candidates:
                    break
                if rnd > self.args.warmup and elapsed + sum(cost.get(t.name, 0.0) for t in candidates) > budget:
                    log(f"{case.name}: stopping after {rnd - self.args.warmup} measured round(s): another "
                        f"round would pass the case's {budget:.0f}s budget")
                    break
                for target in candidates:
                    started = time.monotonic()
                    out = outcomes[target.name]
                    m = self.one_run(case, target, rnd, out)
                    cost[target.name] = time.monotonic() - started
                    if m is not None:
                        out.runs.append(m)
                        self.report(case, target, m)
        finally:
            for t in targets:
                t.stop()
        return list(outcomes.values())

    @staticmethod
    def keeps_running(out: Outcome) -> bool:
        """False once a target is unavailable, timed out, or failed twice: more rounds tell nothing new."""
        failed = [m for m in out.runs if not m.ok]
        return not out.unavailable and len(failed) < 2 and not any("timeout after" in m.error for m in failed)

    def rounds(self, case: Case) -> int:
        runs = self.args.runs or case.runs
        if self.args.quick:
            runs = min(runs, 1 if case.name == "concurrent" else 2)
        return runs

    def start_all(self, case: Case, targets: list[Target], outcomes: dict[str, Outcome]) -> list[Target]:
        """Start (and probe) every target in parallel; return those that run, in order."""
        with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
            failures = list(pool.map(lambda t: self.start_one(case, t), targets))
        live = []
        for t, failure in zip(targets, failures, strict=True):
            if failure:
                outcomes[t.name].unavailable = self.unavailable[t.name] = failure
                log(f"{case.name}: {t.name} not available: {failure}")
            else:
                live.append(t)
        return live

    def start_one(self, case: Case, t: Target) -> str:
        """Start, probe and prepare one target for a read case; the reason if it cannot run."""
        repo = self.repo_name(t.vcs, case.repo)
        try:
            self.start(t, self.read_root(t, (case.repo,) if case.repo in ("push_src", "bigmidx", "large") else ()),
                       repo)
            if case.name == "noop":
                self.noop_setup(t, repo)
            if case.name == "concurrent" and isinstance(t, DaemonTarget):
                t.stop()  # the measured round starts right after a cold start
                t.start(self.read_root(t), repo)
        except Unavailable as exc:
            t.stop()
            return str(exc)
        return ""

    def noop_setup(self, target: Target, repo: str) -> None:
        dest = self.work / target.name / "noop-clone"
        self.trash.put(dest)
        ok, err = self.clients.run(self.clients.command("clone", target, target.url(repo), dest), target)
        if not ok:
            raise Unavailable(f"setup clone for the no-op case failed: {err}")

    def one_run(self, case: Case, target: Target, rnd: int, out: Outcome) -> Measurement | None:
        warm = rnd < self.args.warmup
        if case.name in PUSH_CASES:
            return self.push_run(target, rnd, warm, out, case.name)
        repo = self.repo_name(target.vcs, case.repo)
        url = target.url(repo)
        if case.name == "noop":
            dest = self.work / target.name / "noop-clone"
            return self.timed(target, [self.clients.command("noop", target, url, dest)], rnd, warm)
        if case.name == "fetch":
            return self.fetch_run(target, url, rnd, warm)
        if case.name == "growth":
            return self.growth_run(target, url, rnd, warm)
        if case.name == "web":
            return self.timed(target, [self.clients.command("web", target, url, Path())], rnd, warm)
        n = self.args.concurrency if case.name == "concurrent" else 1
        kind = case.name if case.name in ("stream", "partial", "partial-checkout") else "clone"
        dests = [self.work / target.name / f"dest-{rnd}-{i}" for i in range(n)]
        try:
            m = self.timed(target, [self.clients.command(kind, target, url, d) for d in dests], rnd, warm)
            if m.ok:
                m.result_bytes = received_bytes(target.vcs, dests[0])
            return m
        finally:
            for d in dests:
                self.trash.put(d)

    def fetch_run(self, target: Target, url: str, rnd: int, warm: bool) -> Measurement:
        """A fresh copy of the big history fetches the server's push source (100 commits more); the
        copy's ``main`` must then be the push source's."""
        dest = self.work / target.name / "fetch-clone"
        copy_tree(self.corpus_dir / self.repo_name(target.vcs, "big"), dest, hardlinks=True, trash=self.trash)
        try:
            m = self.timed(target, [self.clients.command("fetch", target, url, dest)], rnd, warm)
            if m.ok:
                key = (target.vcs, "fetch")
                if key not in self.pushed_heads:
                    self.pushed_heads[key] = self.head(target.vcs, self.corpus_dir / self.repo_name(target.vcs,
                                                                                                    "push_src"))
                if not self.pushed_heads[key] or self.head(target.vcs, dest) != self.pushed_heads[key]:
                    m.ok, m.error = False, "the fetch reported success but main is not the server's"
            return m
        finally:
            self.trash.put(dest)

    def growth_run(self, target: Target, url: str, rnd: int, warm: bool) -> Measurement:
        """Sequential clones; idle server RSS after the first, the middle and the last one.

        The first clones fill caches and the allocator's pools; a leak shows as
        growth from the middle clone to the last.
        """
        walls: list[float] = []
        errors: list[str] = []
        idle: list[int] = []
        dest = self.work / target.name / "growth-clone"
        for i in range(self.args.growth_clones):
            self.trash.put(dest)
            wall, errs, _, _ = self.measure(target, [self.clients.command("clone", target, url, dest)], self.timeout)
            walls.append(wall)
            errors.extend(errs)
            if i in (0, (self.args.growth_clones - 1) // 2, self.args.growth_clones - 1):
                idle.append(sum(rss_kib(p) for p in target.server_pids(())))
        self.trash.put(dest)
        m = Measurement(rnd, warm, statistics.median(walls), not errors, len(errors),
                        " | ".join(sorted(set(errors)))[:500])
        m.idle_rss_kib = tuple(idle)
        return m

    def timed(self, target: Target, cmds: list[list[str]], rnd: int, warm: bool) -> Measurement:
        wall, errors, cpu, peak = self.measure(target, cmds, self.timeout)
        m = Measurement(rnd, warm, wall, not errors, len(errors), " | ".join(sorted(set(errors)))[:500],
                        cpu, peak or None)
        return m

    def push_run(self, target: Target, rnd: int, warm: bool, out: Outcome, kind: str = "push") -> Measurement | None:
        """Restore the server repo and the client from pristine copies, restart, push, verify.

        ``import``: the server's repository is made empty and the client is the big history itself.
        """
        repo = self.repo_name(target.vcs, CASES[kind].repo)
        base = self.work / target.name / kind
        root, client = base / "root", base / "client"
        if kind in ("import", "import-chunked", "import-large"):
            if (root / repo).exists():
                self.trash.put(root / repo)
            root.mkdir(parents=True, exist_ok=True)
            init = ([self.tools.git, "init", "-q", "--bare", str(root / repo)] if target.vcs == "git"
                    else [self.tools.hg, "init", str(root / repo)])
            subprocess.run(init, check=True, env={**os.environ, "HGRCPATH": "", "GIT_CONFIG_NOSYSTEM": "1"})
            source = self.corpus_dir / repo
        else:
            copy_tree(self.corpus_dir / repo, root / repo, trash=self.trash)
            source = self.corpus_dir / self.repo_name(target.vcs, "push_src")
        copy_tree(source, client, hardlinks=True, trash=self.trash)
        try:
            try:
                self.start(target, root, repo)
            except Unavailable as exc:
                if rnd == 0:
                    out.unavailable = self.unavailable[target.name] = str(exc)
                    log(f"push: {target.name} not available: {exc}")
                    return None
                return Measurement(rnd, warm, 0.0, False, 1, f"start: {exc}")
            cmd = self.clients.command("import" if kind == "import-large" else kind, target,
                                       target.url(repo, write=True), client)
            m = self.timed(target, [cmd], rnd, warm)
            target.stop()
            if m.ok and not self.push_landed(target.vcs, root / repo, client, kind):
                m.ok, m.error = False, "push reported success but the server's main is not the pushed head"
            return m
        finally:
            target.stop()
            self.trash.put(base)

    def head(self, vcs: str, repo: Path) -> str:
        """The node of ``main`` in ``repo`` ("" if none)."""
        env = {**os.environ, "HGPLAIN": "1", "HGRCPATH": "", "GIT_CONFIG_NOSYSTEM": "1"}
        cmd = ([self.tools.git, "-C", str(repo), "rev-parse", "--verify", "-q", "refs/heads/main"] if vcs == "git"
               else [self.tools.hg, "-R", str(repo), "log", "-r", "main", "-T", "{node}"])
        return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env).stdout.strip()

    def push_landed(self, vcs: str, server_repo: Path, client: Path, kind: str = "push") -> bool:
        """The server's ``main`` is the client's (git: the ref; hg: the bookmark moved with the push)."""
        if (vcs, kind) not in self.pushed_heads:
            self.pushed_heads[vcs, kind] = self.head(vcs, client)
        return self.head(vcs, server_repo) == self.pushed_heads[vcs, kind] != ""

    def report(self, case: Case, target: Target, m: Measurement) -> None:
        rss = f" rss={m.peak_rss_kib / 1024:.0f}MiB" if m.peak_rss_kib else ""
        cpu = f" cpu={m.server_cpu:.2f}s" if m.server_cpu is not None else ""
        status = "ok" if m.ok else f"ERROR {m.error[:200]}"
        log(f"{case.name:10s} {target.name:16s} round {m.round}{' (warmup)' if m.warmup else ''}: "
            f"{m.wall:7.3f}s{cpu}{rss} {status}")


# ------------------------------------------------------------------------ summary
def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def paired_ratio(a: Outcome, b: Outcome | None) -> float | None:
    """Median over rounds of a.wall / b.wall, same round only."""
    if b is None or not a.measured():
        return None
    walls = {m.round: m.wall for m in b.measured()}
    ratios = [m.wall / walls[m.round] for m in a.measured() if walls.get(m.round)]
    return median(ratios)


def second_half_growth_kib(idle: Sequence[int]) -> int:
    """Idle RSS after the last clone minus after the middle one (the growth case's readings)."""
    return idle[-1] - idle[len(idle) // 2]


def summarize(outcomes: list[Outcome]) -> list[dict[str, object]]:
    by_key = {(o.case, o.target): o for o in outcomes}
    rows: list[dict[str, object]] = []
    for o in outcomes:
        cls = TARGET_CLASSES[o.target]
        walls = [m.wall for m in o.measured()]
        cpus = [m.server_cpu for m in o.measured() if m.server_cpu is not None]
        rss = [m.peak_rss_kib for m in o.measured() if m.peak_rss_kib]
        sizes = [m.result_bytes for m in o.measured() if m.result_bytes]
        baseline = BASELINE[o.vcs]
        errors = [m.error for m in o.runs if not m.ok]
        growth = [m.idle_rss_kib for m in o.runs if m.idle_rss_kib]
        note = errors[0][:160] if errors else ""
        if growth:
            idle = growth[0]
            steps = " → ".join(f"{kib / 1024:.0f}" for kib in idle)
            note = (f"idle RSS after clone 1 → middle → last: {steps} MiB (second half "
                    f"{second_half_growth_kib(idle) / 1024:+.1f}); {note}").rstrip("; ")
        rows.append({
            "case": o.case, "target": o.target, "vcs": o.vcs, "n": len(walls),
            "median_s": median(walls), "min_s": min(walls, default=None), "max_s": max(walls, default=None),
            "baseline": baseline, "ratio_baseline": paired_ratio(o, by_key.get((o.case, baseline))),
            "reference": cls.reference,
            "ratio_reference": paired_ratio(o, by_key.get((o.case, cls.reference))) if cls.reference else None,
            "server_cpu_s": median(cpus), "peak_rss_mib": max(rss) / 1024 if rss else None,
            "result_mb": sizes[0] / 1e6 if sizes else None, "errors": o.errors(),
            "note": f"not available: {o.unavailable}" if o.unavailable else note,
        })
    return rows


def _f(x: object, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(rows: list[dict[str, object]]) -> str:
    lines = [("| case | target | n | median s | min–max s | × baseline | × same-transport ref | "
             "server CPU s | server peak RSS MiB | MB | errors | note |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if str(r["note"]).startswith("not available"):
            lines.append(f"| {r['case']} | {r['target']} | – | – | – | – | – | – | – | – | – | {r['note']} |")
            continue
        base = f"{_f(r['ratio_baseline'], 2)}× ({r['baseline']})" if r["ratio_baseline"] is not None else "–"
        ref = (f"{_f(r['ratio_reference'], 2)}× ({r['reference']})"
               if r["ratio_reference"] is not None else "–")
        note = str(r["note"]).replace("|", "/")
        spread = f"{_f(r['min_s'])}–{_f(r['max_s'])}" if r["n"] else "–"
        lines.append(
            f"| {r['case']} | {r['target']} | {r['n']} | {_f(r['median_s'])} | "
            f"{spread} | {base} | {ref} | {_f(r['server_cpu_s'], 2)} | "
            f"{_f(r['peak_rss_mib'], 0)} | {_f(r['result_mb'], 1)} | {r['errors']} | {note} |")
    return "\n".join(lines)


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {"cpu": model, "cores": os.cpu_count(), "mem_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def versions(tools: Tools) -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return {"git": out([tools.git, "--version"]),
            "hg": out([tools.hg, "version", "-q"]),
            "hgwire": out(["git", "-C", str(BENCH_DIR.parent), "log", "-1", "--format=%h %cI %s"])[:90],
            "lighttpd": out([tools.lighttpd, "-v"]) if tools.lighttpd else "not installed"}


def header(meta: dict[str, object]) -> str:
    m = meta["machine"]
    v = meta["versions"]
    c = meta["corpus"]
    assert isinstance(m, dict) and isinstance(v, dict) and isinstance(c, dict)
    return "\n".join([
        f"# hgwire benchmark, {meta['finished']}",
        "",
        (f"* machine: {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB, Linux {m['kernel']}, "
        f"load average {meta['loadavg_start']} → {meta['loadavg_end']}"),
        (f"* clients/references: {v['git']}, {v['hg']}, {str(v['lighttpd']).split(' - ')[0]}; "
        f"hgwire at {v['hgwire']}"),
        (f"* corpus `{meta['corpus_set']}`: git pack {c.get('big_git_pack_mb')} MB "
        f"(bitmap: {c.get('big_git_bitmap')}), hg store {c.get('big_hg_store_mb')} MB; "
        f"rounds alternate targets, warm-up {meta['warmup']}, concurrency {meta['concurrency']}"),
        ("* ratios: median of per-round ratios (same round); CPU: server process tree (fake-ssh "
        "references: the remote command's own CPU); RSS: summed over the server's processes, peak of "
        "50 ms samples; MB: received git pack / hg store of the clone"),
        ("* reference ssh = local fake ssh (no handshake, no crypto); *-sshd = the command run by "
        "OpenSSH's sshd; hgwire ssh = OpenSSH client + key auth + encryption"),
        *([f"* hgwire --config: `{meta['hgwire_config']}`"]
          if meta.get("hgwire_config") else []),
        "",
        "",
    ])


def write_results(rows: list[dict[str, object]], outcomes: list[Outcome], meta: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    cases = meta["cases"]
    all_cases = isinstance(cases, list) and tuple(cases) == DEFAULT_CASES
    complete = all_cases and meta["corpus_set"] == "full" and not meta.get("hgwire_config")
    stem = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{meta['corpus_set']}"
    if not all_cases and isinstance(cases, list):
        stem += "-" + "-".join(str(c) for c in cases)
    if meta.get("hgwire_config"):
        stem += "-config"
    text = header(meta) + markdown_table(rows) + "\n"
    payload = {"meta": meta, "rows": rows, "runs": [asdict(o) for o in outcomes]}
    # latest.* is the last full-corpus run of every default case (the table the README points to)
    for name in (stem, "latest") if complete else (stem,):
        (RESULTS_DIR / f"{name}.md").write_text(text)
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return RESULTS_DIR / f"{stem}.md"


# ------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", help="comma-separated (see --list); default: all (concurrent: the baselines "
                    "and hgwire-git, hgwire-hg-http)")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES),
                    help=f"comma-separated of: {', '.join(CASES)} (default: all but growth)")
    ap.add_argument("--growth-clones", type=int, default=100, help="clones in the growth case")
    ap.add_argument("--runs", type=int, default=0, help="measured rounds per case (default: per case)")
    ap.add_argument("--warmup", type=int, default=0, help="unmeasured rounds first (servers are probed anyway)")
    ap.add_argument("--concurrency", type=int, default=0, help="clients in the concurrent case (8; --quick: 4)")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="per client command, seconds (default: 180; concurrent: 150)")
    ap.add_argument("--budget-scale", type=float, default=1.0, help="scale every case's time budget")
    ap.add_argument("--quick", action="store_true", help="small corpus, at most 2 rounds: a smoke run")
    ap.add_argument("--corpus", choices=sorted(corpus.SETS), help="corpus set (default: full; quick with --quick)")
    ap.add_argument("--hgwire-config", type=Path, default=None,
                    help="a --config file for every hgwire server (e.g. one with [clone_cache]); with one, "
                    "git:// is read-only and writes need rules, so use it with the clone, stream and "
                    "concurrent cases")
    ap.add_argument("--list", action="store_true", help="list targets and cases, then exit")
    return ap.parse_args(argv)


def pick(spec: str, known: Sequence[str], what: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def list_all() -> None:
    for name, cls in TARGET_CLASSES.items():
        ref = f", compared with {cls.reference}" if cls.reference else ""
        via = f" ({cls.via})" if cls.via else ""
        print(f"target {name:16s} {cls.vcs} over {cls.transport}{via}{ref}")
    for case in CASES.values():
        print(f"case   {case.name:16s} {'/'.join(case.vcs)}: {case.what} ({case.runs} rounds)")


def main(argv: list[str] | None = None, on_outcomes: Callable[[list[Outcome]], None] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_all()
        return 0
    args.concurrency = args.concurrency or (QUICK_CONCURRENCY if args.quick else 8)
    targets = pick(args.targets, list(TARGET_CLASSES), "target") if args.targets else []
    cases = pick(args.cases, list(CASES), "case")
    set_name = args.corpus or ("quick" if args.quick else "full")
    corpus_dir = corpus.ensure(set_name)
    if any(CASES[name].repo == "large" for name in cases):  # (opt-in: built only when asked for)
        corpus.ensure_large(corpus_dir)
    work = WORK_DIR / "last"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tools = Tools.find()
    meta: dict[str, object] = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
        "versions": versions(tools), "corpus_set": set_name, "corpus": corpus.describe(corpus_dir),
        "targets": targets or "default (per case)", "cases": cases, "runs": args.runs, "warmup": args.warmup,
        "concurrency": args.concurrency, "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    if args.hgwire_config is not None:
        Hgwire.config = args.hgwire_config.resolve()
        settings = (line.split("#")[0].strip() for line in args.hgwire_config.read_text().splitlines())
        meta["hgwire_config"] = "; ".join(line for line in settings if line)
    runner = Runner(args, corpus_dir, work, tools)
    outcomes: list[Outcome] = []
    try:
        for name in cases:
            log(f"== case {name}")
            outcomes.extend(runner.run_case(CASES[name], targets or list(CASES[name].targets or DEFAULT_TARGETS)))
    except KeyboardInterrupt:
        log("interrupted: partial results follow")
    finally:
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        meta["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        rows = summarize(outcomes)
        path = write_results(rows, outcomes, meta)
        print(header(meta) + markdown_table(rows))
        log(f"results: {path} (and .json)")
        shutil.rmtree(work, ignore_errors=True)
    if on_outcomes:
        on_outcomes(outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
