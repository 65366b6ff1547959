"""Seeded stress of one hgwire over git://, SSH and HTTP, with real git and hg clients in threads.

Not part of the test suite (it takes minutes, and a busy host): run by hand, e.g.
``.venv/bin/python bench/stress.py 3 4 10 6`` (seed, rounds, threads, operations per thread);
``STRESS_EVOLVE=1`` adds hg-evolve amends and prunes (and server-side prunes and phase moves) on a
non-publishing repository (even seeds), ``STRESS_CONFIG=1`` a ``--config`` with tiny kept budgets
(``hg_kept_repositories_bytes``, ``git_kept_refs_bytes``) and kept clone answers (git:// is then
read-only), ``STRESS_RECENT=1`` what recent changes touched (the served git repository's config sets
``pack.windowMemory = 256m``, ``core.packedGitLimit``, ``pack.deltaCacheSize`` and a
``core.bigFileThreshold`` below its pushed files; pushes through the symbolic ref ``refs/heads/sym`` ->
main; repositories named in the wrong case and a folder named, each told the name it may have meant;
SSH keys forced to ``hg -R h serve --stdio``, ``hg-ssh --read-only h team/lib``, ``git-shell -c
"$SSH_ORIGINAL_COMMAND"`` and ``gitolite-shell``), ``STRESS_BASE`` the first of the 22 ports it uses (54800), ``STRESS_DIR`` where it works
(/tmp/hgwire-stress-SEED, removed first), ``STRESS_OPS`` only these client operations (names without
``op_``, comma-separated: ``hg_bookmarks,repo_churn``).  Exit status 1 when it found something (each
finding is printed as ``FINDING:``); the last line counts what ran.

Each round: THREADS threads of random client operations (pushes, fetches, clones, shallow clones
and deepens, ls-remote, idle raw v0 fetches, clients killed mid-transfer; bookmarks made, moved and
deleted with ``push -B``; git pushes of 30-300 refs made, moved and deleted in one push each, checked
by ls-remote over another transport; HTTP requests cut at the socket with their body half sent or
their answer half read, SSH sessions killed mid-answer; repositories made, deleted under a clone and
made again under the same name) against one git and one hg repository, while server-side operations
(git gc / pack-refs / repack -adb / 200 refs made or deleted by update-ref, hg commit / strip / phase /
phase --force --draft / bookmark moves and deletions, and with evolve prune / debugobsolete) run
between requests.  Every client result is checked (git fsck --full / hg verify of the client's
copy); after the round, with nothing running, every transport's answer is compared with git daemon's
/ hg serve's and with a fresh hgwire process's on the same repositories, the server repositories
are fsck'ed / verified, and the server's log is read for tracebacks and internal errors.  A clone or
pull told a head is "no longer on the server" (stripped or made obsolete after its ``heads``) is
counted, not a finding.

usage: stress.py SEED [ROUNDS] [THREADS] [OPS_PER_THREAD]
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 1
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 6
OPS = int(sys.argv[4]) if len(sys.argv) > 4 else 6
CONFIG = bool(os.environ.get("STRESS_CONFIG"))
"""Tiny kept budgets and kept clone answers (a --config file: git:// is then read-only)."""
PUSH_T = ["ssh", "http"] if CONFIG else ["git", "ssh", "http"]
EVOLVE = bool(os.environ.get("STRESS_EVOLVE"))
RECENT = bool(os.environ.get("STRESS_RECENT"))
"""Served git config sizes, pushes through a symbolic ref, name hints, forced-command SSH keys."""
REPO = Path(__file__).resolve().parent.parent
W = Path(os.environ.get("STRESS_DIR", f"/tmp/hgwire-stress-{SEED}"))
VENV = REPO / ".venv" / "bin"
HG = str(VENV / "hg")
BASE = int(os.environ.get("STRESS_BASE", "54800"))
P_GIT, P_SSH, P_HTTP = BASE, BASE + 1, BASE + 2
F_GIT, F_SSH, F_HTTP = BASE + 10, BASE + 11, BASE + 12
P_DAEMON, P_HGSERVE = BASE + 20, BASE + 21

findings: list[str] = []
flock = threading.Lock()
procs: list[subprocess.Popen[bytes]] = []


def finding(msg: str) -> None:
    with flock:
        findings.append(msg)
    print("FINDING:", msg[:3000], flush=True)


def env() -> dict[str, str]:
    e = {
        "PATH": f"{VENV}:/usr/local/bin:/usr/bin:/bin", "HOME": str(W / "home"), "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "C", "GIT_COMMITTER_EMAIL": "c@x",
        "HGRCPATH": str(W / "hgrc"), "HGPLAIN": "1", "HGUSER": "T <t@x>", "HGENCODING": "utf-8",
        "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "pack.threads", "GIT_CONFIG_VALUE_0": "1",
        "GIT_SSH_COMMAND": SSH,
    }
    return e


SSH = ""


def run(*args: object, cwd: Path | None = None, check: bool = True, timeout: float = 300,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=ENV, capture_output=True, text=True,
                       timeout=timeout, input=input, check=False)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(map(str, args))} ({cwd}) -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r


def hg(*args: object, cwd: Path | None = None, check: bool = True,
       timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run(HG, *args, cwd=cwd, check=check, timeout=timeout)


PROC_EXITED: Callable[[], bool] = lambda: False


def wait_port(port: int, t: float = 60) -> None:
    end = time.time() + t
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if PROC_EXITED():
                break
            time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


def start_hgwire(git: int, ssh: int, http: int, tag: str) -> subprocess.Popen[bytes]:
    log = open(W / f"hgwire-{tag}.log", "ab")  # noqa: SIM115 - the server's, for its life
    p = subprocess.Popen(
        [str(VENV / "twistd"), "-n", "--pidfile", "", "hgwire", "--root", str(W / "root"),
         "--git", f"tcp:{git}:interface=127.0.0.1", "--ssh", f"tcp:{ssh}:interface=127.0.0.1",
         "--http", f"tcp:{http}:interface=127.0.0.1", "--host-key", str(W / "hostkey"),
         "--authorized-keys", str(W / "authorized_keys"), "--htpasswd", str(W / "htpasswd"),
         "--allow-push-over-http", "--shutdown-grace", "0", "--workers", "4",
         *(["--config", str(W / "conf.toml")] if CONFIG else [])],
        env={**ENV, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT, cwd=str(W))
    procs.append(p)
    global PROC_EXITED
    PROC_EXITED = lambda: p.poll() is not None
    try:
        for port in (git, ssh, http):
            wait_port(port)
    except RuntimeError:
        stop(p)
        if getattr(start_hgwire, "tries", 0) > 30:
            raise
        start_hgwire.tries = getattr(start_hgwire, "tries", 0) + 1  # type: ignore[attr-defined]
        # (a client's ephemeral port was ours, 32768-60999 holding STRESS_BASE's: a connection of
        # another process on the host, or its TIME_WAIT, may keep it for 60 s; try again for 90)
        time.sleep(3)
        return start_hgwire(git, ssh, http, tag)
    start_hgwire.tries = 0  # type: ignore[attr-defined]
    return p


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def urls(kind: str, repo: str, fresh: bool = False) -> dict[str, str]:
    g, s, h = (F_GIT, F_SSH, F_HTTP) if fresh else (P_GIT, P_SSH, P_HTTP)
    if kind == "git":
        return {"git": f"git://127.0.0.1:{g}/{repo}", "ssh": f"ssh://alice@127.0.0.1:{s}/{repo}",
                "http": f"http://alice:pw@127.0.0.1:{h}/{repo}"}
    return {"ssh": f"ssh://alice@127.0.0.1:{s}/{repo}", "http": f"http://alice:pw@127.0.0.1:{h}/{repo}"}


GREPO = "g.git"
HREPO = "h"
ENV: dict[str, str] = {}
counter = iter(range(10**9))
clock = threading.Lock()
counts: dict[str, int] = {}


def count(what: str) -> None:
    with clock:
        counts[what] = counts.get(what, 0) + 1


def uniq() -> int:
    with clock:
        return next(counter)


# ---------------------------------------------------------------- set-up

def setup() -> None:
    global SSH, ENV
    if W.exists():
        shutil.rmtree(W)
    (W / "home").mkdir(parents=True)
    (W / "root").mkdir()
    (W / "hgrc").write_text("[extensions]\nstrip =\n" + ("evolve =\n[experimental]\nevolution = all\n" if EVOLVE else ""))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(W / "key")], check=True)
    (W / "authorized_keys").write_text((W / "key.pub").read_text())
    if RECENT:  # keys sshd would force to one command: hgwire honours each as its README says
        for name, option in FORCED.items():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(W / f"key-{name}")],
                           check=True)
            kind, blob = (W / f"key-{name}.pub").read_text().split()[:2]
            with open(W / "authorized_keys", "a") as f:
                f.write(f'{option},no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty {kind} {blob} {name}\n')
    (W / "conf.toml").write_text('[[repo]]\npattern = "*"\nwrite = ["alice"]\n\n[limits]\n'
                                 "hg_kept_repositories_bytes = 100000\ngit_kept_refs_bytes = 60000\n\n"
                                 "[clone_cache]\nmax_bytes = 100000000\nmax_age = 60\n")
    import bcrypt
    (W / "htpasswd").write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode() + "\n")
    SSH = (f"/usr/bin/ssh -F /dev/null -i {W / 'key'} -o IdentitiesOnly=yes -o BatchMode=yes "
           "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
    ENV = env()
    (W / "hgrc").write_text((W / "hgrc").read_text() + f"[ui]\nssh = {SSH}\n")
    run("git", "config", "--global", "init.defaultBranch", "main")
    rnd = random.Random(SEED)
    # git: a history with branches and many tags, refs packed (a kept packed-refs parse)
    g = W / "root" / GREPO
    run("git", "init", "-q", "--bare", g)
    run("git", "config", "receive.denyCurrentBranch", "ignore", cwd=g)
    seedw = W / "gseed"
    run("git", "init", "-q", seedw)
    for i in range(60):
        (seedw / f"f{i % 7}.txt").write_text(f"{i}\n" + "x" * rnd.randrange(10, 4000))
        run("git", "add", "-A", cwd=seedw)
        run("git", "commit", "-qm", f"c{i}", cwd=seedw)
        if i % 3 == 0:
            run("git", "tag", "-a", "-m", f"t{i}", f"v{i}", cwd=seedw)
        if i % 10 == 5:
            run("git", "branch", f"b{i}", cwd=seedw)
    run("git", "push", "-q", g, "--all", cwd=seedw)
    run("git", "push", "-q", g, "--tags", cwd=seedw)
    commits = run("git", "rev-list", "--all", cwd=g).stdout.split()
    # 600 lightweight tags and 100 refs/pull/N: a packed-refs of over RUN_MIN_REFS (512) refs, kept
    # parsed and spliced into advertisements (RefRun), kept refs after 5 s (KEEP_REFS_AFTER)
    run("git", "update-ref", "--stdin", cwd=g, input="".join(
        f"create refs/tags/l{i:03d} {commits[i % len(commits)]}\n" for i in range(600)) + "".join(
        f"create refs/pull/{i}/head {commits[(i * 7) % len(commits)]}\n" for i in range(100)))
    run("git", "gc", "-q", cwd=g)
    run("git", "repack", "-adbq", cwd=g)
    STABLE.update(line for line in run("git", "ls-remote", g).stdout.splitlines() if "refs/tags/" in line)
    if RECENT:
        for key, value in [("pack.windowMemory", "256m"), ("core.packedGitLimit", "512m"),
                           ("pack.deltaCacheSize", "256m"), ("core.deltaBaseCacheLimit", "96m"),
                           ("core.bigFileThreshold", rnd.choice(["1k", "2k", "100k", "1m"]))]:
            run("git", "config", key, value, cwd=g)
        run("git", "symbolic-ref", "refs/heads/sym", "refs/heads/main", cwd=g)
        # a folder of repositories, named whole by the name hints
        run("git", "init", "-q", "--bare", W / "root" / "team" / "app.git")
        hg("init", W / "root" / "team" / "lib")
    # hg: two branches, a bookmark
    h = W / "root" / HREPO
    hg("init", h)
    (h / ".hg" / "hgrc").write_text("[phases]\npublish = %s\n" % ("True" if SEED % 2 else "False")
                                    + ("[extensions]\nevolve =\n[experimental]\nevolution = all\n" if EVOLVE else ""))
    for i in range(40):
        if i == 20:
            hg("branch", "-q", "other", cwd=h)
        if i == 30:
            hg("update", "-q", "default", cwd=h)
        (h / f"f{i % 5}").write_text(f"{i}\n" + "y" * rnd.randrange(10, 3000))
        hg("commit", "-qAm", f"h{i}", cwd=h)
    hg("bookmark", "bm", cwd=h)
    hg("phase", "--public", "-r", "0:25", cwd=h)


# ---------------------------------------------------------------- client operations

def git_fsck(path: Path, what: str) -> None:
    r = run("git", "fsck", "--full", "--no-dangling", cwd=path, check=False)
    if r.returncode or "error" in r.stderr.lower() or "missing" in r.stderr.lower():
        finding(f"{what}: client fsck failed: {r.stderr[-1500:]}")


BENIGN_PUSH = ("rejected", "fetch first", "non-fast-forward", "failed to lock", "cannot lock ref",
               "is at ", "but expected", "stale info", "incorrect old value")


def op_git_push(rnd: random.Random, me: int) -> None:
    t = rnd.choice(["git", "ssh", "http"])
    u = urls("git", GREPO)[t]
    d = W / "c" / f"gp{uniq()}"
    run("git", "clone", "-q", "--no-tags", "-b", "main", u, d)
    count(f"git clone {t}")
    git_fsck(d, f"git clone {t}")
    target = rnd.choice(["main", f"t{me}", f"t{me}", "b5", f"new{uniq()}"] + (["sym", "sym"] if RECENT else []))
    if target not in ("main", "sym"):
        r = run("git", "ls-remote", u, f"refs/heads/{target}", cwd=d)
        if r.stdout.strip():
            run("git", "fetch", "-q", u, f"refs/heads/{target}:refs/remotes/origin/{target}", cwd=d)
            run("git", "checkout", "-q", "-B", target, f"origin/{target}", cwd=d)
        else:
            run("git", "checkout", "-q", "-b", target, cwd=d)
    for i in range(rnd.randrange(1, 4)):
        (d / f"p{me}.txt").write_text(f"{me} {uniq()} {i}\n" * rnd.randrange(1, 200))
        run("git", "add", "-A", cwd=d)
        run("git", "commit", "-qm", f"push {me}", cwd=d)
    if rnd.random() < 0.2:
        run("git", "tag", "-a", "-m", "t", f"pt{uniq()}", cwd=d)
    t2 = rnd.choice(PUSH_T)
    if rnd.random() < 0.2:  # killed mid-push
        big = d / f"big{me}"
        big.write_bytes(os.urandom(rnd.randrange(1, 4) << 20))
        run("git", "add", "-A", cwd=d)
        run("git", "commit", "-qm", "big", cwd=d)
        p = subprocess.Popen(["git", "push", urls("git", GREPO)[t2], f"HEAD:refs/heads/{target}"], cwd=d, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rnd.random() * 1.5)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        count(f"git push killed {t2}")
        shutil.rmtree(d, ignore_errors=True)
        return
    r = run("git", "push", "--follow-tags", urls("git", GREPO)[t2], f"HEAD:refs/heads/{target}", cwd=d, check=False)
    count(f"git push {t2}")
    if r.returncode and not any(b in r.stderr for b in BENIGN_PUSH):
        finding(f"git push over {t2} to {target}: {r.returncode} {r.stderr[-1500:]}")
    if rnd.random() < 0.15 and target.startswith("new"):
        r = run("git", "push", urls("git", GREPO)[t2], f":refs/heads/{target}", cwd=d, check=False)
        if r.returncode and not any(b in r.stderr for b in BENIGN_PUSH):
            finding(f"git delete over {t2}: {r.stderr[-1500:]}")
    shutil.rmtree(d, ignore_errors=True)


def op_git_fetch(rnd: random.Random, me: int) -> None:
    t = rnd.choice(["git", "ssh", "http"])
    u = urls("git", GREPO)[t]
    d = W / "c" / f"gf{uniq()}"
    shape = rnd.choice(["full", "depth1", "depth1-nsb", "bare-mirror"])
    version = rnd.choice(["0", "2"])
    pre = ["git", "-c", f"protocol.version={version}"]
    if shape == "full":
        run(*pre, "clone", "-q", u, d)
    elif shape == "bare-mirror":
        run(*pre, "clone", "-q", "--mirror", u, d)
    else:
        args = ["--depth", "1"] + (["--no-single-branch"] if shape == "depth1-nsb" else [])
        run(*pre, "clone", "-q", *args, u, d)
        for _ in range(rnd.randrange(1, 3)):
            t2 = rnd.choice(["git", "ssh", "http"])
            r = run(*pre, "fetch", "-q", "--deepen=1", urls("git", GREPO)[t2], cwd=d, check=False)
            count(f"git deepen v{version} {t2}")
            if r.returncode:
                finding(f"git fetch --deepen=1 v{version} over {t2} ({shape}): {r.stderr[-1500:]}")
    count(f"git clone {shape} v{version} {t}")
    git_fsck(d, f"git clone {shape} v{version} {t}")
    # a later fetch of what moved meanwhile
    t3 = rnd.choice(["git", "ssh", "http"])
    r = run(*pre, "fetch", "-q", urls("git", GREPO)[t3], "+refs/heads/*:refs/remotes/x/*", "+refs/tags/*:refs/tags/*",
            cwd=d, check=False)
    count(f"git fetch v{version} {t3}")
    if r.returncode:
        finding(f"git fetch v{version} over {t3} after {shape}: {r.stderr[-1500:]}")
    git_fsck(d, f"git fetch v{version} over {t3} after {shape}")
    shutil.rmtree(d, ignore_errors=True)


def op_git_killed(rnd: random.Random, me: int) -> None:
    t = rnd.choice(["git", "ssh", "http"])
    d = W / "c" / f"gk{uniq()}"
    p = subprocess.Popen(["git", "-c", f"protocol.version={rnd.choice('02')}", "clone", "-q", urls("git", GREPO)[t], str(d)],
                         env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(rnd.random() * 0.6)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    count(f"git killed {t}")
    shutil.rmtree(d, ignore_errors=True)


def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


def read_pkt(f: Any) -> bytes | None:
    n = f.read(4)
    if len(n) < 4:
        raise EOFError("short")
    size = int(n, 16)
    if size == 0:
        return None
    data: bytes = f.read(size - 4)
    return data


def op_git_idle_v0(rnd: random.Random, me: int) -> None:
    """A git:// v0 upload-pack that waits between the advertisement and its wants (KEEP_REFS_AFTER,
    5 s), wants one advertised tip, and checks the pack it gets."""
    s = socket.create_connection(("127.0.0.1", P_GIT), 30)
    s.settimeout(120)
    f = s.makefile("rwb")
    f.write(pkt(b"git-upload-pack /%s\0host=127.0.0.1\0" % GREPO.encode()))
    f.flush()
    refs = []
    while (line := read_pkt(f)) is not None:
        if b"\0" in line:
            line = line.split(b"\0", 1)[0]
        oid, name = line.rstrip(b"\n").split(b" ", 1)
        refs.append((name, oid))
    wait = rnd.choice([0, 0.5, 5.5, 6.5])
    time.sleep(wait)
    if rnd.random() < 0.25:  # gone without a word
        s.close()
        count("git idle v0 dropped")
        return
    wants = rnd.sample(refs, min(len(refs), rnd.randrange(1, 4)))
    out = b""
    for i, (name, oid) in enumerate(wants):
        out += pkt(b"want %s%s\n" % (oid, b" side-band-64k ofs-delta" if i == 0 else b""))
    out += b"0000" + pkt(b"done\n")
    f.write(out)
    f.flush()
    line = read_pkt(f)
    if line is None or not line.startswith(b"NAK"):
        finding(f"idle v0 fetch ({wait} s) of {wants}: got {line!r} instead of NAK")
        s.close()
        return
    pack = bytearray()
    while (line := read_pkt(f)) is not None:
        band = line[0]
        if band == 1:
            pack += line[1:]
        elif band == 3:
            finding(f"idle v0 fetch ({wait} s): error {line[1:]!r}")
            s.close()
            return
    s.close()
    d = W / "c" / f"gi{uniq()}"
    run("git", "init", "-q", "--bare", d)
    r = subprocess.run(["git", "index-pack", "--stdin"], cwd=d, env=ENV, input=bytes(pack), capture_output=True,
                       check=False)
    if r.returncode:
        finding(f"idle v0 fetch ({wait} s): pack unreadable {r.stderr[-500:]!r}")
        return
    for name, oid in wants:
        r2 = run("git", "rev-list", "--objects", oid.decode(), cwd=d, check=False)
        if r2.returncode:
            finding(f"idle v0 fetch ({wait} s): {name!r} {oid!r} not complete: {r2.stderr[-500:]}")
    count(f"git idle v0 {wait}")
    shutil.rmtree(d, ignore_errors=True)


def hg_verify(path: Path, what: str) -> None:
    r = hg("verify", "-q", cwd=path, check=False)
    if r.returncode:
        finding(f"{what}: client hg verify failed: {r.stdout[-800:]} {r.stderr[-800:]}")


HEAD_GONE = "is no longer on the server"
"""hgwire's answer to a getbundle whose head a strip or a marker took away after the client's ``heads``."""

BENIGN_HG = ("push creates new remote head", "creates new remote head", "abort: push creates new",
             "remote has heads that are not known locally", "unsynced", "new remote heads",
             "remote repository changed while pushing", "push race", "orphan changeset", "content-divergent", "phase-divergent")


def hg_push_raced(r: subprocess.CompletedProcess[str], rewrites: int) -> bool:
    """A push refused for a reason a concurrent push or server-side change explains: a forced push
    whose parent a strip on the server took after the client's discovery, or a bookmark moved onto
    a changeset the client found on the server and a strip took since, included."""
    if any(b in r.stderr + r.stdout for b in BENIGN_HG):
        return True
    if (" is unknown" in r.stderr or "which is unknown to the server" in r.stderr) and _rewrites() != rewrites:
        count("hg push raced (parent stripped)")
        return True
    return False


def hg_clone(url: str, d: Path, what: str, *args: str) -> bool:
    """Clone; False (counted) when a strip or a marker took a head away after the clone's ``heads``."""
    r = hg("clone", "-q", *args, url, d, check=False)
    count(what)
    if r.returncode and HEAD_GONE in r.stderr:
        count(f"{what} raced (head gone)")
        return False
    if r.returncode:
        raise RuntimeError(f"hg clone {url} -> {r.returncode}\n{r.stderr[-3000:]}")
    return True


def op_hg_push(rnd: random.Random, me: int) -> None:
    rewrites = _rewrites()
    t = rnd.choice(["ssh", "http"])
    d = W / "c" / f"hp{uniq()}"
    if not hg_clone(urls("hg", HREPO)[t], d, f"hg clone {t}"):
        return
    hg_verify(d, f"hg clone {t}")
    br = rnd.choice(["default", "other", f"br{me}"])
    r = hg("update", "-q", br, cwd=d, check=False)
    if r.returncode:
        hg("update", "-q", "default", cwd=d)
        hg("branch", "-q", "-f", br, cwd=d)
    for i in range(rnd.randrange(1, 5)):
        (d / f"q{me}").write_text(f"{me} {uniq()} {i}\n" * rnd.randrange(1, 200))
        hg("commit", "-qAm", f"push {me}", cwd=d)
    if rnd.random() < 0.3:
        hg("bookmark", "-f", f"bk{me}", cwd=d)
    t2 = rnd.choice(["ssh", "http"])
    if rnd.random() < 0.2:  # killed mid-push
        (d / f"big{me}").write_bytes(os.urandom(rnd.randrange(1, 4) << 20))
        hg("commit", "-qAm", "big", cwd=d)
        p = subprocess.Popen([HG, "push", "-f", urls("hg", HREPO)[t2]], cwd=d, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rnd.random() * 2)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        count(f"hg push killed {t2}")
        shutil.rmtree(d, ignore_errors=True)
        return
    args = ["push", "-q", "--new-branch", urls("hg", HREPO)[t2]]
    if rnd.random() < 0.3:
        args += ["-B", f"bk{me}"] if f"bk{me}" in hg("bookmarks", "-T", "{bookmark}\n", cwd=d).stdout.split() else []
    r = hg(*args, cwd=d, check=False)
    count(f"hg push {t2}")
    if r.returncode not in (0, 1) and not hg_push_raced(r, rewrites):
        finding(f"hg push over {t2}: {r.returncode} {r.stdout[-800:]} {r.stderr[-1500:]}")
    shutil.rmtree(d, ignore_errors=True)


def op_hg_pull(rnd: random.Random, me: int) -> None:
    t = rnd.choice(["ssh", "http"])
    d = W / "c" / f"hl{uniq()}"
    r = hg("clone", "-q", "-U", urls("hg", HREPO)[t], d, check=False)
    count(f"hg clone {t}")
    if r.returncode:
        if HEAD_GONE in r.stderr:
            count(f"hg clone raced (head gone) {t}")
        else:
            finding(f"hg clone over {t}: {r.stderr[-1500:]}")
        return
    hg_verify(d, f"hg clone {t}")
    for _ in range(rnd.randrange(1, 3)):
        t2 = rnd.choice(["ssh", "http"])
        r = hg("pull", "-q", urls("hg", HREPO)[t2], cwd=d, check=False)
        count(f"hg pull {t2}")
        if r.returncode and HEAD_GONE in r.stderr:
            count(f"hg pull raced (head gone) {t2}")
        elif r.returncode:
            finding(f"hg pull over {t2}: {r.stderr[-1500:]}")
        if "locally missing" in r.stdout + r.stderr:  # a bookmark pushed after this pull's heads (as hg serve)
            count(f"hg pull bookmark ahead {t2}")
    hg_verify(d, f"hg pull {t}")
    shutil.rmtree(d, ignore_errors=True)


def op_hg_killed(rnd: random.Random, me: int) -> None:
    t = rnd.choice(["ssh", "http"])
    d = W / "c" / f"hk{uniq()}"
    p = subprocess.Popen([HG, "clone", "-q", "-U", urls("hg", HREPO)[t], str(d)], env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(rnd.random() * 1.0)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    count(f"hg killed {t}")
    shutil.rmtree(d, ignore_errors=True)


STABLE: set[str] = set()


def op_git_lsremote(rnd: random.Random, me: int) -> None:
    """ls-remote (v0 or v2) over any transport: the tags made at the start, never changed, are all
    there with their peeled lines, and main, HEAD and b15..b55 too (they may move, never go)."""
    t = rnd.choice(["git", "ssh", "http"])
    version = rnd.choice("02")
    for _ in range(rnd.randrange(1, 6)):
        r = run("git", "-c", f"protocol.version={version}", "ls-remote", urls("git", GREPO)[t], check=False)
        count(f"git ls-remote v{version} {t}")
        if r.returncode:
            finding(f"ls-remote v{version} over {t}: {r.stderr[-1500:]}")
            return
        lines = set(r.stdout.splitlines())
        names = {line.split("\t")[1] for line in lines}
        missing = STABLE - lines
        gone = {n for n in ("HEAD", "refs/heads/main", "refs/heads/b15", "refs/heads/b25", "refs/heads/b35",
                            "refs/heads/b45", "refs/heads/b55") if n not in names}
        if missing or gone:
            finding(f"ls-remote v{version} over {t}: lacks {sorted(missing)[:6]} {sorted(gone)}")


def op_hg_evolve(rnd: random.Random, me: int) -> None:
    """Amend or prune a draft head and push the markers (and the successor) with -f."""
    rewrites = _rewrites()
    t = rnd.choice(["ssh", "http"])
    d = W / "c" / f"he{uniq()}"
    if not hg_clone(urls("hg", HREPO)[t], d, f"hg clone {t}"):
        return
    drafts = hg("log", "-r", "heads(draft())", "-T", "{node}\n", cwd=d).stdout.split()
    if not drafts:
        return
    x = rnd.choice(drafts)
    hg("update", "-q", "-r", x, cwd=d)
    how = rnd.choice(["amend", "amend", "prune"])
    if how == "amend":
        (d / f"e{me}").write_text(f"{uniq()}\n")
        r = hg("commit", "-qA", "--amend", "-m", f"amended {uniq()}", cwd=d, check=False)
    else:
        hg("update", "-q", "-r", "p1()", cwd=d, check=False)
        r = hg("prune", "-q", "-r", x, cwd=d, check=False)
    if r.returncode:
        print(f"(evolve {how} failed: {r.stderr[-300:]})", flush=True)
        return
    t2 = rnd.choice(["ssh", "http"])
    marked = []
    if rnd.random() < 0.3:  # the successor (or the pruned one's parent) bookmarked, in the same push
        hg("bookmark", "-q", "-f", f"ev{me}", cwd=d)
        marked = ["-B", f"ev{me}"]
    r = hg("push", "-q", "-f", "-r", ".", *marked, urls("hg", HREPO)[t2], cwd=d, check=False)
    count(f"hg evolve {how} push {t2}{' -B' if marked else ''}")
    if r.returncode not in (0, 1) and not hg_push_raced(r, rewrites):
        finding(f"hg evolve {how} push over {t2}: {r.returncode} {r.stdout[-800:]} {r.stderr[-1500:]}")
    hg_verify(d, f"hg evolve {how}")
    shutil.rmtree(d, ignore_errors=True)


def _rewrites() -> int:
    """How many strips, markers and amends (which move bookmarks) have run so far, on the server or pushed."""
    with clock:
        return sum(n for what, n in counts.items() if what.startswith(
            ("server hg-strip", "server hg-obsolete", "server hg-debugobsolete", "hg evolve")))


def op_hg_bookmarks(rnd: random.Random, me: int) -> None:
    """A bookmark of this thread's own made, moved or deleted and pushed with -B while others pull;
    the server's listkeys over the other transport then has it where the push put it (unless a
    strip on the server moved it meanwhile)."""
    rewrites = _rewrites()
    t, t2 = rnd.choice(["ssh", "http"]), rnd.choice(["ssh", "http"])
    d = W / "c" / f"hb{uniq()}"
    if not hg_clone(urls("hg", HREPO)[t], d, f"hg clone {t}"):
        return
    name = f"bk{me}-{rnd.randrange(3)}"
    have = hg("bookmarks", "-T", "{bookmark}\n", cwd=d).stdout.split()
    action = rnd.choice(["create", "move", "delete"]) if name in have else "create"
    if action == "delete":
        hg("bookmark", "-q", "-d", name, cwd=d)
    elif action == "move":
        hg("bookmark", "-q", "-f", "-r", rnd.choice(hg("log", "-r", "head()", "-T", "{node}\n", cwd=d).stdout.split()),
           name, cwd=d)
    else:
        hg("update", "-q", rnd.choice(["default", "other"]), cwd=d)
        (d / f"b{me}").write_text(f"{uniq()}\n")
        hg("commit", "-qAm", f"bookmark {me}", cwd=d)
        hg("bookmark", "-q", "-f", name, cwd=d)
    r = hg("push", "-q", "-B", name, urls("hg", HREPO)[t2], cwd=d, check=False)  # (no -f: a race is told)
    count(f"hg bookmark {action} push {t2}")
    if r.returncode not in (0, 1) and not hg_push_raced(r, rewrites):
        finding(f"hg bookmark {action} push over {t2}: {r.returncode} {r.stdout[-800:]} {r.stderr[-1500:]}")
    elif r.returncode in (0, 1):
        want = "" if action == "delete" else hg("log", "-r", name, "-T", "{node}", cwd=d).stdout
        t3 = rnd.choice(["ssh", "http"])
        keys = hg("debugpushkey", urls("hg", HREPO)[t3], "bookmarks", cwd=d, check=False).stdout
        got = dict(line.split("\t", 1) for line in keys.splitlines() if "\t" in line).get(name, "")
        if got != want and _rewrites() == rewrites:
            finding(f"hg bookmark {action} pushed over {t2}: listkeys over {t3} has {name} at {got!r}, not {want!r}")
    shutil.rmtree(d, ignore_errors=True)


def op_git_many_refs(rnd: random.Random, me: int) -> None:
    """30-300 refs of a namespace of this push's own (branches and tags) made in one push, half of them
    moved in a second, all deleted in a third (--atomic or not), while pack-refs --all and gc run on
    the server: after each push every transport's ls-remote of the namespace is what it pushed."""
    t = rnd.choice(PUSH_T)
    u = urls("git", GREPO)[t]
    d = W / "c" / f"gm{uniq()}"
    run("git", "clone", "-q", "--bare", "--no-tags", "-b", "main", u, d)
    commits = run("git", "rev-list", "--max-count=40", "main", cwd=d).stdout.split()
    ns = f"many{me}-{uniq()}"
    n = rnd.randrange(30, 300)
    refs = {f"refs/heads/{ns}/{i}": rnd.choice(commits) for i in range(n)}
    refs.update({f"refs/tags/{ns}-{i}": rnd.choice(commits) for i in range(rnd.randrange(0, n // 3))})
    atomic = ["--atomic"] if rnd.random() < 0.5 else []
    specs = [f"+refs/heads/{ns}/*:refs/heads/{ns}/*", f"+refs/tags/{ns}-*:refs/tags/{ns}-*"]
    for step in ("create", "move", "delete"):
        if step == "move":
            for ref in rnd.sample(sorted(refs), len(refs) // 2):
                refs[ref] = rnd.choice(commits)
        if step == "delete":
            args = [f":{ref}" for ref in sorted(refs)]
            refs = {}
        else:
            run("git", "update-ref", "--stdin", cwd=d, input="".join(f"update {r} {o}\n" for r, o in refs.items()))
            args = specs
        r = run("git", "push", "-q", *atomic, u, *args, cwd=d, check=False)
        count(f"git many refs {step} {t}{' atomic' if atomic else ''}")
        if r.returncode:
            finding(f"git push of {len(args)} refspecs ({step}, {ns}) over {t}: {r.stderr[-1500:]}")
            break
        t2 = rnd.choice(["git", "ssh", "http"])
        seen = run("git", "ls-remote", urls("git", GREPO)[t2], f"refs/heads/{ns}/*", f"refs/tags/{ns}-*",
                   check=False).stdout
        got = {line.split("\t")[1]: line.split("\t")[0] for line in seen.splitlines() if "^{}" not in line}
        if got != refs:
            diff = sorted(set(got.items()) ^ set(refs.items()))
            finding(f"git many refs {step} ({ns}, pushed over {t}): ls-remote over {t2} differs in {len(diff)}: {diff[:6]}")
            break
    shutil.rmtree(d, ignore_errors=True)


def _http_cut(head: bytes, body: bytes, send: int, read: int) -> int:
    """Send ``head`` and the first ``send`` bytes of ``body`` over HTTP, read at most ``read`` bytes, close."""
    s = socket.create_connection(("127.0.0.1", P_HTTP), 30)
    s.settimeout(30)
    try:
        s.sendall(head + body[:send])
        got = 0
        while got < read:
            data = s.recv(min(65536, read - got))
            if not data:
                break
            got += len(data)
        return got
    except OSError:
        return -1
    finally:
        s.close()


def op_http_cut(rnd: random.Random, me: int) -> None:
    """HTTP requests cut midway at the socket: a git upload-pack POST whose body stops short or whose
    pack is left half read, an hg getbundle half read, an hg push (unbundle) body half sent."""
    oid = rnd.choice([line.split()[0] for line in STABLE])
    what = rnd.choice(["git-body", "git-pack", "hg-bundle", "hg-push"])
    if what.startswith("git"):
        body = pkt(b"want %s side-band-64k ofs-delta\n" % oid.encode()) + b"0000" + pkt(b"done\n")
        head = (b"POST /%s/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request"
                b"\r\nContent-Length: %d\r\n\r\n" % (GREPO.encode(), len(body)))
        send = rnd.randrange(0, len(body)) if what == "git-body" else len(body)
    elif what == "hg-bundle":
        heads = run(HG, "identify", "-r", "tip", "-T", "{node}", f"http://127.0.0.1:{P_HTTP}/{HREPO}", check=False).stdout.split()
        arg = b"bundlecaps=HG20&cg=1&common=" + b"0" * 40 + b"&heads=" + (heads[0].encode() if heads else b"0" * 40)
        head = b"GET /%s?cmd=getbundle HTTP/1.1\r\nHost: x\r\nX-HgArg-1: %s\r\nX-HgProto-1: 0.1 0.2\r\n\r\n" % (
            HREPO.encode(), arg)
        body, send = b"", 0
    else:
        body = b"HG20" + os.urandom(rnd.randrange(100, 5000))
        head = (b"POST /%s?cmd=unbundle HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6cHc=\r\n"
                b"Content-Type: application/mercurial-0.1\r\nX-HgArg-1: heads=666f726365\r\n"
                b"Content-Length: %d\r\n\r\n" % (HREPO.encode(), len(body) + 1000))
        send = len(body)
    _http_cut(head, body, send, rnd.choice([0, 10, 300, 5000]))
    count(f"http cut {what}")


def op_ssh_cut(rnd: random.Random, me: int) -> None:
    """An SSH git-upload-pack or hg serve --stdio session cut after part of its answer (ssh killed)."""
    git = rnd.random() < 0.5
    cmd = f"git-upload-pack '{GREPO}'" if git else f"hg -R {HREPO} serve --stdio"
    p = subprocess.Popen([*SSH.split(), "-p", str(P_SSH), "alice@127.0.0.1", cmd], env=ENV, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    assert p.stdin is not None and p.stdout is not None
    try:
        if git:
            oid = rnd.choice([line.split()[0] for line in STABLE]).encode()
            p.stdin.write(pkt(b"want %s side-band-64k ofs-delta\n" % oid) + b"0000" + pkt(b"done\n"))
        else:
            p.stdin.write(b"hello\nbetween\npairs 81\n" + b"0" * 40 + b"-" + b"0" * 40 + b"heads\n")
            if rnd.random() < 0.7:  # (with bundle2's changegroup versions: the whole history, not an empty HG20)
                caps = b"HG20,bundle2=HG20%0Achangegroup%3D01%2C02"
                p.stdin.write(b"getbundle\n* 3\nbundlecaps %d\n%scg 1\n1common 40\n" % (len(caps), caps) + b"0" * 40)
        p.stdin.flush()
        # at most this much of the answer, and never past its end: the session stays open (stdin is), so a
        # blocking read of more than the server has to say waited for its idle_timeout (600 s)
        want, end = rnd.choice([1, 100, 2000, 20000]), time.monotonic() + 5
        fd = p.stdout.fileno()
        while want > 0 and time.monotonic() < end:
            if select.select([fd], [], [], max(0.0, end - time.monotonic()))[0]:
                data = os.read(fd, want)
                if not data:
                    break
                want -= len(data)
    except OSError:
        pass
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    count(f"ssh cut {'git' if git else 'hg'}")


def op_repo_churn(rnd: random.Random, me: int) -> None:
    """A repository made on the server, pushed to and cloned, deleted while a clone of it runs, asked
    for once gone, made again with other content under the same name and cloned over every transport:
    the new content each time, and one clear sentence (no internal error) for the one gone."""
    kind = rnd.choice(["git", "hg"])
    name = f"tmp{me}-{uniq()}" + (".git" if kind == "git" else "")
    path = W / "root" / name
    transports = list(urls(kind, name))
    for generation in range(2):
        if kind == "git":
            run("git", "init", "-q", "--bare", path)
        else:
            hg("init", path)
        src = W / "c" / f"rc{uniq()}"
        (run("git", "init", "-q", src) if kind == "git" else hg("init", src))
        (src / "f").write_text(f"{name} {generation} {uniq()}\n")
        if kind == "git":
            run("git", "add", "-A", cwd=src)
            run("git", "commit", "-qm", f"g{generation}", cwd=src)
            tip = run("git", "rev-parse", "HEAD", cwd=src).stdout.strip()
            run("git", "push", "-q", urls(kind, name)[rnd.choice(PUSH_T)], "HEAD:refs/heads/main", cwd=src)
        else:
            hg("commit", "-qAm", f"g{generation}", cwd=src)
            tip = hg("log", "-r", "tip", "-T", "{node}", cwd=src).stdout
            hg("push", "-q", urls(kind, name)[rnd.choice(transports)], cwd=src)
        for t in transports:
            got = (run("git", "ls-remote", urls(kind, name)[t], "refs/heads/main", check=False).stdout.split()[:1]
                   if kind == "git" else hg("identify", "-r", "tip", "-T", "{node}", urls(kind, name)[t],
                                            check=False).stdout.split()[:1])
            count(f"churn {kind} read {t}")
            if got != [tip]:
                finding(f"churn: {name} made again (generation {generation}) reads {got} over {t}, not {tip}")
        shutil.rmtree(src, ignore_errors=True)
        t = rnd.choice(transports)
        dest = W / "c" / f"rd{uniq()}"
        args = ["git", "clone", "-q", urls(kind, name)[t], str(dest)] if kind == "git" else [
            HG, "clone", "-q", urls(kind, name)[t], str(dest)]
        p = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rnd.random() * 0.5)
        shutil.rmtree(path)
        _, err = p.communicate(timeout=300)
        count(f"churn {kind} deleted under a clone {t}")
        if "internal error" in err or "Traceback" in err:
            finding(f"churn: a clone of {name} over {t} deleted meanwhile: {err[-800:]}")
        shutil.rmtree(dest, ignore_errors=True)
        t = rnd.choice(transports)
        r = (run("git", "ls-remote", urls(kind, name)[t], check=False) if kind == "git"
             else hg("identify", urls(kind, name)[t], check=False))
        count(f"churn {kind} gone {t}")
        if not r.returncode or "internal error" in r.stderr or "not found" not in r.stderr.lower() + r.stdout.lower():
            finding(f"churn: {name} deleted, over {t}: {r.returncode} {r.stdout[-300:]} {r.stderr[-800:]}")


FORCED = {"bob": 'command="hg -R h serve --stdio"', "carol": 'command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\""',
          "dave": 'command="/home/git/gitolite/src/gitolite-shell dave"', "erin": 'command="hg-ssh --read-only h team/lib"'}
"""STRESS_RECENT's forced-command keys: bob reaches h alone with hg, carol runs git only, dave is
gitolite's, erin's hg-ssh line reads h and team/lib."""


def _ssh_as(name: str) -> str:
    return SSH.replace(str(W / "key"), str(W / f"key-{name}"))


def op_name_hints(rnd: random.Random, me: int) -> None:
    """A repository named in the wrong case, or a folder of them, over any transport: refused, and
    told the name it may have meant (as it stands while pushes, gc and churn run)."""
    kind = rnd.choice(["git", "hg", "folder"])
    if kind == "git":
        t = rnd.choice(["git", "ssh", "http"])
        r = run("git", "ls-remote", urls("git", "G.git")[t], check=False)
        want = "did you mean g.git?"
    elif kind == "hg":
        t = rnd.choice(["ssh", "http"])
        r = hg("identify", urls("hg", "H")[t], check=False)
        want = "did you mean h?"
    else:
        t = rnd.choice(["git", "ssh", "http"])
        r = run("git", "ls-remote", urls("git", "team")[t], check=False)
        want = "team/app.git"
    count(f"name hint {kind} {t}")
    if not r.returncode or want not in r.stderr or "internal error" in r.stderr:
        finding(f"name hint {kind} over {t}: {r.returncode} {r.stdout[-300:]} {r.stderr[-800:]}")


def op_forced_ssh(rnd: random.Random, me: int) -> None:
    """The forced-command keys: bob's hg -R h serve --stdio clones and pushes h, is told the one name
    for another and refused git; erin's hg-ssh --read-only clones and is refused a push; carol's
    git-shell and dave's gitolite-shell clone and push g.git, and carol is refused hg."""
    who = rnd.choice(list(FORCED))
    ssh = _ssh_as(who)
    base = f"ssh://{who}@127.0.0.1:{P_SSH}"
    d = W / "c" / f"fs{uniq()}"
    if who == "bob":
        r = hg("--config", f"ui.ssh={ssh}", "clone", "-q", f"{base}/h", d, check=False)
        count("forced hg clone")
        if r.returncode and HEAD_GONE not in r.stderr:
            finding(f"forced hg key: clone of h: {r.stderr[-800:]}")
        elif not r.returncode:
            hg_verify(d, "forced hg clone")
            if not CONFIG and rnd.random() < 0.5:  # (--config: alice alone writes)
                rewrites = _rewrites()
                hg("update", "-q", "default", cwd=d)
                (d / "bob").write_text(f"{uniq()}\n")
                hg("commit", "-qAm", "bob", cwd=d)
                r = hg("--config", f"ui.ssh={ssh}", "push", "-q", f"{base}/h", cwd=d, check=False)
                count("forced hg push")
                if r.returncode not in (0, 1) and not hg_push_raced(r, rewrites):
                    finding(f"forced hg key: push to h: {r.returncode} {r.stdout[-500:]} {r.stderr[-800:]}")
        other = rnd.choice(["team/lib", "H", "g.git"])
        r = hg("--config", f"ui.ssh={ssh}", "identify", f"{base}/{other}", check=False)
        count("forced hg other")
        if not r.returncode or "use ssh://" not in r.stderr or "internal error" in r.stderr:
            finding(f"forced hg key: {other}: {r.returncode} {r.stdout[-300:]} {r.stderr[-800:]}")
        r = subprocess.run(["git", "ls-remote", f"{base}/g.git"], env={**ENV, "GIT_SSH_COMMAND": ssh},
                           capture_output=True, text=True, timeout=300, check=False)
        count("forced hg git")
        if not r.returncode or "may only run Mercurial" not in r.stderr:
            finding(f"forced hg key: git ls-remote: {r.returncode} {r.stdout[-300:]} {r.stderr[-800:]}")
    elif who == "erin":
        r = hg("--config", f"ui.ssh={ssh}", "clone", "-q", f"{base}/{rnd.choice(['h', 'team/lib'])}", d, check=False)
        count("hg-ssh clone")
        if r.returncode and HEAD_GONE not in r.stderr:
            finding(f"hg-ssh key: clone: {r.stderr[-800:]}")
        elif not r.returncode:
            hg_verify(d, "hg-ssh clone")
            (d / "erin").write_text(f"{uniq()}\n")
            hg("commit", "-qAm", "erin", cwd=d)
            # (no -q: hg shows the server's "remote:" lines as status, which -q hides; -f: a new head
            # is the server's to refuse, not hg's discovery; --config: erin may not write anyway)
            r = hg("--config", f"ui.ssh={ssh}", "push", "-f", "--new-branch", cwd=d, check=False)
            count("hg-ssh push")
            said = r.stdout + r.stderr
            if not r.returncode or not ("may only read" in said or CONFIG and "erin may not push" in said):
                finding(f"hg-ssh --read-only key: push: {r.returncode} {r.stdout[-300:]} {r.stderr[-800:]}")
    else:
        e = {**ENV, "GIT_SSH_COMMAND": ssh}
        r = subprocess.run(["git", "clone", "-q", f"{base}/g.git", str(d)], env=e, capture_output=True, text=True,
                           timeout=300, check=False)
        count(f"forced git clone {who}")
        if r.returncode:
            finding(f"forced key {who}: git clone: {r.stderr[-800:]}")
        else:
            git_fsck(d, f"forced git clone {who}")
        if not r.returncode and not CONFIG and rnd.random() < 0.5:  # (--config: alice alone writes)
            run("git", "commit", "-q", "--allow-empty", "-m", who, cwd=d)
            r = subprocess.run(["git", "push", "-q", "origin", f"HEAD:refs/heads/{who}{me}"], cwd=d,
                               env={**ENV, "GIT_SSH_COMMAND": ssh}, capture_output=True, text=True, timeout=300,
                               check=False)
            count(f"forced git push {who}")
            if r.returncode and not any(b in r.stderr for b in BENIGN_PUSH):
                finding(f"forced key {who}: git push: {r.returncode} {r.stderr[-800:]}")
        if who == "carol":
            r = hg("--config", f"ui.ssh={ssh}", "identify", f"{base}/h", check=False)
            count("forced git-shell hg")
            if not r.returncode or "may only run git" not in r.stderr:
                finding(f"git-shell key: hg identify: {r.returncode} {r.stdout[-300:]} {r.stderr[-800:]}")
    shutil.rmtree(d, ignore_errors=True)


CLIENT_OPS = [(op_hg_evolve, 3 if EVOLVE else 0), (op_git_lsremote, 2), (op_git_push, 3), (op_git_fetch, 3), (op_git_killed, 1), (op_git_idle_v0, 2),
              (op_hg_push, 3), (op_hg_pull, 3), (op_hg_killed, 1), (op_hg_bookmarks, 2), (op_git_many_refs, 2),
              (op_http_cut, 2), (op_ssh_cut, 1), (op_repo_churn, 1),
              (op_name_hints, 2 if RECENT else 0), (op_forced_ssh, 2 if RECENT else 0)]
if os.environ.get("STRESS_OPS"):  # only these (names without op_, comma-separated)
    CLIENT_OPS = [(op, w) for op, w in CLIENT_OPS if op.__name__[3:] in os.environ["STRESS_OPS"].split(",")]


# ---------------------------------------------------------------- server-side operations

def server_op(rnd: random.Random) -> None:
    g = W / "root" / GREPO
    h = W / "root" / HREPO
    what = rnd.choice(["gc", "pack-refs", "pack-refs", "repack", "git-refs", "hg-commit", "hg-strip", "hg-phase",
                       "hg-commit", "hg-bookmark", "hg-draft", "none"]
                      + (["hg-obsolete", "hg-debugobsolete"] if EVOLVE else []))
    count(f"server {what}")
    if what == "gc":
        r = run("git", "gc", "-q", cwd=g, check=False)
    elif what == "pack-refs":
        r = run("git", "pack-refs", "--all", cwd=g, check=False)
    elif what == "repack":
        r = run("git", "repack", "-adbq", cwd=g, check=False)
    elif what == "hg-commit":
        hg("update", "-qC", "default", cwd=h, check=False)
        (h / "srv").write_text(f"{uniq()}\n")
        r = hg("commit", "-qAm", "server", cwd=h, check=False)
    elif what == "hg-strip":
        tip = hg("log", "-r", "max(draft() or (tip and not public()))", "-T", "{rev}", cwd=h, check=False).stdout.strip()
        if not tip:
            return
        r = hg("strip", "-q", "--no-backup", "-r", tip, cwd=h, check=False)
    elif what == "git-refs":  # 200 refs made in one transaction, or those made before deleted
        made = run("git", "for-each-ref", "--format=%(refname)", "refs/heads/srv/", cwd=g).stdout.split()
        tip = run("git", "rev-parse", "main", cwd=g).stdout.strip()
        r = run("git", "update-ref", "--stdin", cwd=g, check=False, input="".join(
            f"delete {ref}\n" for ref in made) if made else "".join(f"create refs/heads/srv/{i} {tip}\n" for i in range(200)))
    elif what == "hg-bookmark":
        r = (hg("bookmark", "-q", "-d", "srvbm", cwd=h, check=False) if rnd.random() < 0.3 else
             hg("bookmark", "-q", "-f", "-r", f"limit(head(), 1, {rnd.randrange(3)})", "srvbm", cwd=h,
                check=False))
    elif what == "hg-debugobsolete":
        node = hg("log", "-r", "max(draft() and head() and not bookmark())", "-T", "{node}", cwd=h, check=False).stdout
        if not node:
            return
        r = hg("debugobsolete", node, cwd=h, check=False)
    elif what == "hg-obsolete":
        r = hg("prune", "-q", "-r", "max(draft() and head())", cwd=h, check=False)
    elif what == "hg-draft":
        r = hg("phase", "--force", "--draft", "-r", "max(public() and not ancestors(bm))", cwd=h, check=False)
    elif what == "hg-phase":
        r = hg("phase", "--public", "-r", "limit(draft(), 2)", cwd=h, check=False)
    else:
        return
    if r.returncode and "lock" not in r.stderr and "no changes" not in r.stdout + r.stderr \
            and "nothing changed" not in r.stdout + r.stderr and "no revisions specified" not in r.stderr \
            and "does not exist" not in r.stderr and "empty revision" not in r.stderr:
        print(f"(server {what} failed: {r.stderr[-300:]})", flush=True)


# ---------------------------------------------------------------- comparisons at rest

def git_refs_of(url: str, version: str) -> str:
    r = run("git", "-c", f"protocol.version={version}", "ls-remote", url, check=False)
    return r.stdout if not r.returncode else f"ERROR {r.stderr}"


def hg_state(url: str, d: Path) -> str:
    if d.exists():
        shutil.rmtree(d)
    r = hg("clone", "-q", "-U", url, d, check=False)
    if r.returncode:
        return f"ERROR {r.stderr}"
    log = hg("log", "-T", "{node} {phase} {branch} {join(bookmarks, ',')}\n", cwd=d).stdout
    heads = hg("heads", "-T", "{node}\n", cwd=d, check=False).stdout
    branches = hg("branches", "-c", "-T", "{branch} {node}\n", cwd=d, check=False).stdout
    return "\n".join(sorted(log.splitlines())) + "\n--\n" + heads + "\n--\n" + branches


def compare(rnd: random.Random, r: int) -> None:
    g = W / "root" / GREPO
    h = W / "root" / HREPO
    f = run("git", "fsck", "--full", "--no-dangling", cwd=g, check=False)
    if f.returncode:
        finding(f"round {r}: server git fsck: {f.stderr[-1500:]}")
    v = hg("verify", "-q", cwd=h, check=False)
    if v.returncode:
        finding(f"round {r}: server hg verify: {v.stdout[-1500:]} {v.stderr[-800:]}")
    if RECENT:  # pushes through it moved main, and it still leads there
        sym = run("git", "symbolic-ref", "refs/heads/sym", cwd=g, check=False)
        if sym.stdout.strip() != "refs/heads/main":
            finding(f"round {r}: refs/heads/sym is no longer a symbolic ref to main: {sym.stdout} {sym.stderr[-300:]}")
    fresh = start_hgwire(F_GIT, F_SSH, F_HTTP, f"fresh{r}")
    try:
        for version in ("0", "2"):
            ref = git_refs_of(f"git://127.0.0.1:{P_DAEMON}/{GREPO}", version)
            local = git_refs_of(str(g), version)
            if ref != local:
                finding(f"round {r}: git daemon and local differ?")
            for name, u in list(urls("git", GREPO).items()) + [("fresh-" + k, v) for k, v in urls("git", GREPO, True).items()]:
                got = git_refs_of(u, version)
                count("compare git ls-remote")
                if got != ref:
                    finding(f"round {r}: git ls-remote v{version} over {name} differs from git daemon:\n"
                            + "\n".join(sorted(set(got.splitlines()) ^ set(ref.splitlines())))[:2000])
        # a persistent mirror per transport, fetched each round, compared with the reference refs
        for t, u in urls("git", GREPO).items():
            m = W / f"mirror-{t}"
            if not m.exists():
                run("git", "clone", "-q", "--mirror", u, m)
            else:
                rr = run("git", "fetch", "-q", "--prune", u, "+refs/*:refs/*", cwd=m, check=False)
                if rr.returncode:
                    finding(f"round {r}: mirror fetch over {t}: {rr.stderr[-1500:]}")
            git_fsck(m, f"round {r} mirror {t}")
            mine = run("git", "for-each-ref", "--format=%(objectname) %(refname)", cwd=m).stdout
            theirs = run("git", "for-each-ref", "--format=%(objectname) %(refname)", cwd=g).stdout
            count("compare git mirror")
            if mine != theirs:
                finding(f"round {r}: mirror over {t} differs from the server's refs:\n"
                        + "\n".join(sorted(set(mine.splitlines()) ^ set(theirs.splitlines())))[:2000])
        ref = hg_state(f"http://127.0.0.1:{P_HGSERVE}/", W / "cmp-ref")
        for name, u in list(urls("hg", HREPO).items()) + [("fresh-" + k, v) for k, v in urls("hg", HREPO, True).items()]:
            got = hg_state(u, W / f"cmp-{name}")
            count("compare hg clone")
            if got != ref:
                a, b = set(got.splitlines()), set(ref.splitlines())
                finding(f"round {r}: hg clone over {name} differs from hg serve's: hgwire-only {sorted(a - b)[:10]}"
                        f" hg-serve-only {sorted(b - a)[:10]}")
        # persistent hg clones pulled each round: they hold every node the server has, same phases
        refnodes = {line.split()[0]: line.split()[1] for line in ref.split("\n--\n")[0].splitlines() if line.strip()}
        for t, u in urls("hg", HREPO).items():
            m = W / f"hgmirror-{t}"
            if not m.exists():
                hg("clone", "-q", "-U", u, m)
            else:
                rr = hg("pull", "-q", u, cwd=m, check=False)
                if rr.returncode:
                    finding(f"round {r}: hg pull of the kept clone over {t}: {rr.stderr[-1500:]}")
            hg_verify(m, f"round {r} hgmirror {t}")
            phases = {a.split()[0]: a.split()[1] for a in hg("log", "-T", "{node} {phase}\n", cwd=m).stdout.splitlines()}
            missing = set(refnodes) - set(phases)
            count("compare hg kept clone")
            if missing:
                finding(f"round {r}: kept hg clone over {t} lacks {sorted(missing)[:5]} after its pull")
            diff = [n for n in refnodes if n in phases and refnodes[n] == "public" and phases[n] != "public"]
            if diff:
                finding(f"round {r}: kept hg clone over {t}: public on the server, not here: {diff[:5]}")
    finally:
        stop(fresh)


# ---------------------------------------------------------------- the server's log

LOG_SEEN = [0]
LOG_ALARMS = ("Traceback (most recent call last)", "Unhandled Error", "Unhandled error", "internal error")


def check_log(r: int) -> None:
    """What the main server logged since the last look: a traceback or an internal error is a finding."""
    with open(W / "hgwire-main.log", "rb") as f:
        f.seek(LOG_SEEN[0])
        new = f.read().decode("utf-8", "replace")
        LOG_SEEN[0] = f.tell()
    lines = new.splitlines()
    for i, line in enumerate(lines):
        if any(alarm in line for alarm in LOG_ALARMS):
            finding(f"round {r}: the server logged: " + "\n".join(lines[max(0, i - 2):i + 25]))
            break
    count("log checks")


# ---------------------------------------------------------------- main

def worker(me: int, rnd: random.Random, stop_at: float) -> None:
    ops = [op for op, weight in CLIENT_OPS for _ in range(weight)]
    for _ in range(OPS):
        op = rnd.choice(ops)
        try:
            op(rnd, me)
        except Exception as exc:  # noqa: BLE001
            finding(f"thread {me} {op.__name__}: {type(exc).__name__}: {str(exc)[-2500:]}")


def server_worker(rnd: random.Random, done: threading.Event) -> None:
    while not done.is_set():
        try:
            server_op(rnd)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        done.wait(rnd.random() * 3)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # (the servers stopped in main's finally)
    setup()
    (W / "c").mkdir()
    try:
        main_server = start_hgwire(P_GIT, P_SSH, P_HTTP, "main")
        procs.append(subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={W / 'root'}",
                                       "--listen=127.0.0.1", f"--port={P_DAEMON}", str(W / "root")], env=ENV,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([HG, "serve", "-R", str(W / "root" / HREPO), "-a", "127.0.0.1", "-p",
                                       str(P_HGSERVE)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(P_DAEMON)
        wait_port(P_HGSERVE)
        master = random.Random(SEED)
        compare(master, -1)
        for r in range(ROUNDS):
            t0 = time.time()
            done = threading.Event()
            srv = threading.Thread(target=server_worker, args=(random.Random(master.random()), done))
            threads = [threading.Thread(target=worker, args=(i, random.Random(master.random()), 0)) for i in range(THREADS)]
            srv.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            done.set()
            srv.join()
            compare(master, r)
            check_log(r)
            print(f"round {r} done in {time.time() - t0:.0f} s; findings so far {len(findings)}", flush=True)
            if main_server.poll() is not None:
                finding("the server died")
                break
    finally:
        for p in procs:
            stop(p)
    print("counts:", sorted(counts.items()))
    print(f"seed {SEED}: {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
