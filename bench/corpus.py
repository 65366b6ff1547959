"""Build (once) and cache the benchmark corpora under ``bench/corpus/<set>/``.

A corpus set holds six repositories, the same history in git and Mercurial:

=====================  =====================================================
``big.git``            the big history (5,000 commits for the ``full`` set)
``small.git``          50 commits, 20 files (the no-op fetch/pull case)
``big-plus100.git``    ``big.git`` + 100 linear commits on ``main`` (push source)
``big-hg`` ...         the same three as Mercurial repositories (``hg convert``,
                       all changesets public except the 100 to push)
``big-sha256.git``     ``big.git``'s history in a SHA-256 repository (made from
                       ``big.git`` with ``fast-export``/``fast-import``; built when
                       missing, so a set built before it gains it without a rebuild)
``big-midx.git``       ``big.git``'s history in three packs under a multi-pack
                       index with a bitmap, as a host's geometric repacking
                       leaves it (built when missing, like the SHA-256 copy)
``large.git``,         two commits of large files (a 96 MiB text, 40 MiB of
``large-hg``           random bytes; then the text changed in its middle), for
                       the opt-in ``clone-large``/``import-large`` cases; built
                       only when one of them runs (``ensure_large``)
=====================  =====================================================

The set is rebuilt only when its recipe (``SETS``, ``RECIPE_VERSION``)
or the generator's ``GENERATOR_VERSION`` changes; a ``.stamp`` file records
the recipe.  Usage::

    python3 -m bench.corpus [--set full|quick] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gen_corpus import GENERATOR_VERSION, CorpusSpec, write_extension, write_history

BENCH_DIR = Path(__file__).resolve().parent
CORPUS_DIR = BENCH_DIR / "corpus"
PUSH_COMMITS = 100
RECIPE_VERSION = 1


@dataclass(frozen=True)
class CorpusSet:
    """One named set of corpora."""

    name: str
    big: CorpusSpec
    small: CorpusSpec
    push_commits: int = PUSH_COMMITS


SETS: dict[str, CorpusSet] = {
    # the corpus of the issue-7 anchors: 5,000 commits, 1,507 files, 32 MB pack
    "full": CorpusSet("full", CorpusSpec(5000, 1500, 6, 42), CorpusSpec(50, 20, 0, 7)),
    # a smoke-test corpus that builds in seconds
    "quick": CorpusSet("quick", CorpusSpec(300, 120, 1, 42), CorpusSpec(50, 20, 0, 7)),
}

# role -> repository directory name, per VCS
REPOS: dict[str, dict[str, str]] = {
    "git": {"big": "big.git", "small": "small.git", "push_src": "big-plus100.git", "big256": "big-sha256.git",
            "bigmidx": "big-midx.git", "large": "large.git"},
    "hg": {"big": "big-hg", "small": "small-hg", "push_src": "big-plus100-hg", "large": "large-hg"},
}

LARGE_TEXT = 96 << 20
LARGE_NOISE = 40 << 20


def tool_env(home: Path) -> dict[str, str]:
    """An environment that ignores the user's and the system's git/hg configuration."""
    env = dict(os.environ)
    env.update({"HGPLAIN": "1", "HGRCPATH": "", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(home),
                "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    return env


def hg_executable() -> str:
    """The venv's hg (the client the project tests with), else hg on PATH."""
    venv_hg = BENCH_DIR.parent / ".venv" / "bin" / "hg"
    return os.environ.get("HG") or (str(venv_hg) if venv_hg.exists() else "hg")


def git_executable() -> str:
    return os.environ.get("GIT") or shutil.which("git") or "/usr/bin/git"


def recipe(cs: CorpusSet) -> dict[str, object]:
    return {"version": RECIPE_VERSION, "set": asdict(cs), "generator": GENERATOR_VERSION}


def is_current(cs: CorpusSet, where: Path) -> bool:
    stamp = where / ".stamp"
    try:
        return bool(json.loads(stamp.read_text())["recipe"] == recipe(cs))
    except (OSError, ValueError, KeyError):
        return False


def _import(spec_or_count: CorpusSpec | int, repo: Path, env: dict[str, str], seed: int = 42) -> None:
    """Pipe a generated fast-import stream into ``git fast-import`` in ``repo``."""
    proc = subprocess.Popen([git_executable(), "-C", str(repo), "fast-import", "--quiet"],
                            stdin=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    try:
        if isinstance(spec_or_count, CorpusSpec):
            write_history(spec_or_count, proc.stdin)
        else:
            write_extension(spec_or_count, proc.stdin, seed=seed)
    finally:
        proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"git fast-import failed in {repo}")


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, env=env, cwd=cwd, check=True)


def _git_repo(spec: CorpusSpec, repo: Path, env: dict[str, str]) -> None:
    git = git_executable()
    _run([git, "init", "-q", "--bare", "-b", "main", str(repo)], env)
    _import(spec, repo, env)
    _run([git, "-C", str(repo), "repack", "-adf", "-q"], env)  # one pack (+ bitmap: bare repo)


def _sha256_copy(src: Path, dest: Path, env: dict[str, str]) -> None:
    """``src``'s history (branches, tags) in a new SHA-256 repository ``dest``, packed as ``_git_repo`` packs."""
    git = git_executable()
    _run([git, "init", "-q", "--bare", "--object-format=sha256", "-b", "main", str(dest)], env)
    export = subprocess.Popen([git, "-C", str(src), "fast-export", "--all", "--signed-tags=strip"],
                              stdout=subprocess.PIPE, env=env)
    imported = subprocess.run([git, "-C", str(dest), "fast-import", "--quiet"], stdin=export.stdout, env=env,
                              check=False)
    assert export.stdout is not None
    export.stdout.close()
    if export.wait() != 0 or imported.returncode != 0:
        raise RuntimeError(f"copying {src} into the SHA-256 repository {dest} failed")
    _run([git, "-C", str(dest), "repack", "-adf", "-q"], env)


def _ensure_sha256(where: Path) -> None:
    """Add the SHA-256 copy of the big git repository to a built set that lacks it."""
    _ensure_copy(where, "big256", "SHA-256", _sha256_copy)


def _ensure_copy(where: Path, role: str, what: str, make: Callable[[Path, Path, dict[str, str]], None]) -> None:
    """Add ``role``'s repository, ``make(big.git, dest, env)``, to a built set that lacks it (built
    beside its place, then renamed there)."""
    dest = where / REPOS["git"][role]
    if dest.exists():
        return
    _log(f"{where.name}: git {dest.name} ({what})")
    home = where / f".home-{role}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    tmp = where / (dest.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    make(where / REPOS["git"]["big"], tmp, tool_env(home))
    shutil.rmtree(home)
    tmp.rename(dest)


MIDX_SPLITS = ("main~400", "main~100")
"""Where ``big-midx.git``'s packs split the history: what ``main~400`` reaches (the preferred pack,
nine tenths of the objects), then up to ``main~100``, then the rest (every branch and tag)."""


def _midx_copy(src: Path, dest: Path, env: dict[str, str]) -> None:
    """``src`` (refs and all) with its objects in three packs (``MIDX_SPLITS``) under a multi-pack index
    with a bitmap, as ``git repack --geometric=2 -d --write-midx --write-bitmap-index`` leaves a
    repository that took pushes."""
    git = git_executable()
    shutil.copytree(src, dest)
    pack_dir = dest / "objects" / "pack"
    for old in pack_dir.iterdir():
        old.unlink()
    refs = subprocess.run([git, "-C", str(src), "for-each-ref", "--format=%(objectname)"], env=env, check=True,
                          capture_output=True).stdout.decode().split()
    before: list[str] = []
    names = []
    for tips in ([MIDX_SPLITS[0]], [MIDX_SPLITS[1]], refs):
        revs = "".join(f"{tip}\n" for tip in tips) + "".join(f"^{tip}\n" for tip in before)
        made = subprocess.run([git, "-C", str(src), "pack-objects", "-q", "--revs", "--delta-base-offset",
                               str(pack_dir / "pack")], input=revs.encode(), env=env, check=True, capture_output=True)
        names.append(f"pack-{made.stdout.decode().strip()}.idx")
        before.extend(tips)
    _run([git, "-C", str(dest), "multi-pack-index", "write", "--bitmap", f"--preferred-pack={names[0]}"], env)


def _ensure_midx(where: Path) -> None:
    """Add the multi-pack index copy of the big git repository to a built set that lacks it."""
    _ensure_copy(where, "bigmidx", "three packs, a multi-pack index bitmap", _midx_copy)


def _large_files(seed: int = 11) -> tuple[bytes, bytes]:
    """The large-file history's first text and its random file (deterministic)."""
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta"]
    lines: list[bytes] = []
    size = 0
    while size < LARGE_TEXT:
        line = b"%d %s %s %s\n" % (len(lines), rng.choice(words), rng.choice(words), rng.choice(words))
        lines.append(line)
        size += len(line)
    return b"".join(lines)[:LARGE_TEXT], rng.randbytes(LARGE_NOISE)


def ensure_large(where: Path) -> None:
    """Add the large-file repositories (``large.git``, ``large-hg``) to a built set that lacks them:
    a 96 MiB text and 40 MiB of random bytes committed, then the text changed in its middle; git's
    packed (``repack -adf``), hg's public with a ``main`` bookmark, both on ``main``."""
    git_dest, hg_dest = where / REPOS["git"]["large"], where / REPOS["hg"]["large"]
    if git_dest.exists() and hg_dest.exists():
        return
    _log(f"{where.name}: large.git and large-hg (a 96 MiB text, 40 MiB of random bytes)")
    home = where / ".home-large"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    env = {**tool_env(home), "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    git, hg = git_executable(), hg_executable()
    text, noise = _large_files()
    changed = text[:len(text) // 2] + b"a line changed in the middle\n" + text[len(text) // 2:]
    for dest in (git_dest, hg_dest):
        shutil.rmtree(dest.with_name(dest.name + ".building"), ignore_errors=True)
    work = home / "work"
    gtmp, htmp = git_dest.with_name(git_dest.name + ".building"), hg_dest.with_name(hg_dest.name + ".building")
    _run([git, "init", "-q", "-b", "main", str(work)], env)
    _run([hg, "init", str(htmp)], env)
    for step, content in enumerate((text, changed)):
        (work / "large.txt").write_bytes(content)
        (htmp / "large.txt").write_bytes(content)
        if step == 0:
            (work / "noise.bin").write_bytes(noise)
            (htmp / "noise.bin").write_bytes(noise)
        message = "large files" if step == 0 else "the large text changed"
        _run([git, "-C", str(work), "add", "-A"], env)
        _run([git, "-C", str(work), "-c", "user.name=bench", "-c", "user.email=bench@example.com",
              "commit", "-q", "-m", message], env)
        _run([hg, "-R", str(htmp), "commit", "-q", "-A", "-u", "bench <bench@example.com>", "-d", "1767225600 0",
              "-m", message], env)
    _run([git, "clone", "-q", "--bare", str(work), str(gtmp)], env)
    _run([git, "-C", str(gtmp), "repack", "-adf", "-q"], env)
    _run([hg, "-R", str(htmp), "bookmark", "main"], env)
    _run([hg, "-R", str(htmp), "phase", "-p", "-r", "all()"], env)
    _run([hg, "-R", str(htmp), "update", "-q", "null"], env)
    for leftover in ("large.txt", "noise.bin"):
        (htmp / leftover).unlink(missing_ok=True)
    shutil.rmtree(home)
    for tmp, dest in ((gtmp, git_dest), (htmp, hg_dest)):
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)


def _hg_convert(src: Path, dest: Path, env: dict[str, str]) -> None:
    _run([hg_executable(), "--config", "extensions.convert=", "convert", "-q", str(src), str(dest)], env)


def _log(msg: str) -> None:
    print(f"[corpus] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def build(cs: CorpusSet, where: Path) -> None:
    """Build every repository of ``cs`` into ``where`` (which must not exist)."""
    where.mkdir(parents=True)
    home = where / ".home"
    home.mkdir()
    env = tool_env(home)
    hg, git = hg_executable(), git_executable()
    g, h = REPOS["git"], REPOS["hg"]
    _log(f"{cs.name}: git {g['big']} ({cs.big.commits} commits)")
    _git_repo(cs.big, where / g["big"], env)
    _git_repo(cs.small, where / g["small"], env)
    _log(f"{cs.name}: git {g['push_src']} (+{cs.push_commits} commits)")
    _run([git, "clone", "-q", "--bare", str(where / g["big"]), str(where / g["push_src"])], env)
    _import(cs.push_commits, where / g["push_src"], env, seed=cs.big.seed)
    _log(f"{cs.name}: hg convert (the slow part)")
    _hg_convert(where / g["big"], where / h["big"], env)
    _hg_convert(where / g["small"], where / h["small"], env)
    for name in (h["big"], h["small"]):
        _run([hg, "-R", str(where / name), "phase", "-p", "-r", "all()"], env)
    # the push source: a copy of big-hg converted incrementally (same hashes for the shared part)
    _run(["cp", "-a", str(where / h["big"]), str(where / h["push_src"])], env)
    _hg_convert(where / g["push_src"], where / h["push_src"], env)
    shutil.rmtree(home)
    (where / ".stamp").write_text(json.dumps({"recipe": recipe(cs), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                          time.gmtime())}))
    _log(f"{cs.name}: done in {where}")


def ensure(name: str, force: bool = False, base: Path = CORPUS_DIR) -> Path:
    """The directory of corpus set ``name``, built first if missing or stale."""
    cs = SETS[name]
    where = base / name
    if force or not is_current(cs, where):
        tmp = base / f"{name}.building"
        shutil.rmtree(tmp, ignore_errors=True)
        build(cs, tmp)
        shutil.rmtree(where, ignore_errors=True)
        tmp.rename(where)
    _ensure_sha256(where)
    _ensure_midx(where)
    return where


def describe(where: Path) -> dict[str, object]:
    """A few facts about a built set (for the results header)."""
    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    pack_dir = where / REPOS["git"]["big"] / "objects" / "pack"
    return {
        "big_git_pack_mb": round(sum(p.stat().st_size for p in pack_dir.glob("*.pack")) / 1e6, 1),
        "big_git_bitmap": any(pack_dir.glob("*.bitmap")),
        "big_hg_store_mb": round(size(where / REPOS["hg"]["big"] / ".hg" / "store") / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=sorted(SETS), default="full")
    ap.add_argument("--force", action="store_true", help="rebuild even if the cached set is current")
    a = ap.parse_args(argv)
    where = ensure(a.set, a.force)
    print(where)
    print(json.dumps(describe(where)))


if __name__ == "__main__":
    main()
