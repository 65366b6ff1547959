"""Micro-benchmark: full-clone pack generation on the benchmark corpus, server side only.

Compares, on one repository (every branch and tag wanted, no haves: a full
clone), the CPU seconds, wall seconds and peak RSS of:

* ``fast``            ``backends.git_fastpack`` (bitmap counting + verbatim reuse), cold process
* ``fast-warm``       the same, second clone in the same process (index views cached, as in a server)
* ``fast-nobitmap``   the same on a copy of the repository without its ``.bitmap``
* ``hgwire-generic``  ``backends.git_pack.generate_pack`` (the generic path it falls back to)
* ``dulwich``         dulwich's ``generate_pack_data`` + ``write_pack_data``
* ``git``             ``git pack-objects --revs --stdout --delta-base-offset`` (bitmap used)
* ``git-nobitmap``    the same with ``--no-use-bitmap-index``

``--fetch`` adds the incremental case after a push: a copy of the repository
plus 100 commits on ``main`` in a second, unbitmapped pack (the state a push
leaves), fetched by a client that has the old ``main`` (wants new ``main``,
haves old ``main``, thin pack) with ``fast``, ``git`` and ``hgwire-generic``.

Each measurement runs in a fresh child process (so peak RSS and CPU belong to
that method alone; for ``git`` the numbers are the git child's).  The pack is
consumed chunk by chunk and thrown away, as a socket would.

    python3 bench/micro_git_pack.py                       # builds the corpus if needed (~30 s)
    python3 bench/micro_git_pack.py --repo path/to/big.git --runs 5 --methods fast,git
    python3 bench/micro_git_pack.py --verify              # also index-pack + fsck the fast pack
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GEN_CANDIDATES = (ROOT / "bench" / "gen_corpus.py", Path("/work/shared/bench/gen_corpus.py"))
DEFAULT_WORK = Path(tempfile.gettempdir()) / "hgwire-micro-git-pack"
METHODS = ("fast", "fast-warm", "fast-nobitmap", "git", "git-nobitmap", "hgwire-generic", "dulwich")
SLOW = {"hgwire-generic", "dulwich"}


# -- corpus ------------------------------------------------------------------------------


def build_corpus(work: Path) -> Path:
    """5,000 commits from the shared generator, fast-import, ``git repack -adf`` (writes a bitmap)."""
    repo = work / "big.git"
    if (repo / "objects" / "pack").is_dir() and any((repo / "objects" / "pack").glob("*.bitmap")):
        return repo
    gen = next((g for g in GEN_CANDIDATES if g.exists()), None)
    if gen is None:
        raise SystemExit("no gen_corpus.py found; pass --repo")
    shutil.rmtree(repo, ignore_errors=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    stream = subprocess.run([sys.executable, str(gen), "--commits", "5000", "--files", "1500",
                             "--binaries", "6", "--seed", "42"], check=True, capture_output=True).stdout
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", "-C", str(repo), "repack", "-adfq", "--write-bitmap-index"], check=True)
    return repo


def without_bitmap(repo: Path, work: Path) -> Path:
    """A copy of ``repo`` sharing its pack files (hard links) but with no ``.bitmap``."""
    copy = work / "nobitmap.git"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repo, copy, copy_function=os.link, ignore=shutil.ignore_patterns("*.bitmap"))
    return copy


def with_pushed_commits(repo: Path, work: Path, count: int = 100) -> Path:
    """A copy of ``repo`` plus ``count`` commits on main, packed separately (no bitmap for them)."""
    copy = work / f"plus{count}.git"
    if (copy / "objects" / "pack").is_dir() and len(list((copy / "objects" / "pack").glob("*.pack"))) == 2:
        return copy
    gen = next((g for g in GEN_CANDIDATES if g.exists()), None)
    if gen is None:
        raise SystemExit("no gen_corpus.py found for --fetch")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repo, copy, copy_function=os.link)
    stream = subprocess.run([sys.executable, str(gen), "--extend", str(count), "--from-ref", "refs/heads/main"],
                            check=True, capture_output=True).stdout
    subprocess.run(["git", "-C", str(copy), "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", "-C", str(copy), "repack", "-dq"], check=True)
    return copy


def fetch_request(repo: Path, count: int = 100) -> tuple[list[bytes], list[bytes]]:
    def rev(spec: str) -> bytes:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", spec], check=True,
                              capture_output=True).stdout.strip()

    return [rev("main")], [rev(f"main~{count}")]


def all_wants(repo: Path) -> list[bytes]:
    out = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(objectname)"],
                         check=True, capture_output=True).stdout
    return sorted(set(out.split()))


# -- one measurement (child process) -----------------------------------------------------


def _drain(chunks: Iterator[bytes]) -> tuple[int, int]:
    size = count = 0
    for chunk in chunks:
        size += len(chunk)
        count += 1
    return size, count


def run_child(method: str, repo: Path, fetch: bool = False) -> dict[str, float | int | str]:
    from dulwich.repo import Repo

    wants, haves = fetch_request(repo) if fetch else (all_wants(repo), [])
    store = Repo(str(repo)).object_store
    refs = Repo(str(repo)).get_refs()
    if method == "fast-warm":  # a server has served a clone before: index views are cached
        from backends.git_fastpack import generate_pack_fast

        warm = generate_pack_fast(store, wants, haves, thin_pack=True, include_tag=True, refs=refs)
        assert warm is not None
        _drain(warm)
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    counted = start_cpu
    chunks = 0
    if method in ("fast", "fast-warm", "fast-nobitmap"):
        from backends.git_fastpack import generate_pack_fast

        stream = generate_pack_fast(store, wants, haves, ofs_delta=True, thin_pack=True, include_tag=True,
                                    refs=refs)
        assert stream is not None, "the fast path declined"
        counted = time.process_time()
        size, chunks = _drain(stream)
    elif method == "hgwire-generic":
        from backends import git_pack

        plan = git_pack.PackPlan(tuple(wants), tuple(haves), git_pack.ShallowPlan(), True, True, True)  # type: ignore[arg-type]
        size, chunks = _drain(git_pack.generate_pack(store, plan, refs))  # type: ignore[arg-type]
    elif method == "dulwich":
        from dulwich.object_format import DEFAULT_OBJECT_FORMAT
        from dulwich.pack import write_pack_data

        count, records = store.generate_pack_data(haves, wants, ofs_delta=True)  # type: ignore[arg-type]
        counted = time.process_time()
        written = [0]

        def sink(data: bytes) -> None:
            written[0] += len(data)

        write_pack_data(sink, records, DEFAULT_OBJECT_FORMAT, num_records=count)
        size = written[0]
    else:
        raise SystemExit(f"unknown method {method}")
    cpu = time.process_time() - start_cpu
    return {"method": method, "cpu_s": round(cpu, 3), "count_cpu_s": round(counted - start_cpu, 3),
            "wall_s": round(time.perf_counter() - start_wall, 3), "bytes": size, "chunks": chunks,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def run_git(method: str, repo: Path, fetch: bool = False) -> dict[str, float | int | str]:
    args = ["git", "-C", str(repo), "pack-objects", "--revs", "--stdout", "--delta-base-offset", "-q"]
    if method == "git-nobitmap":
        args.append("--no-use-bitmap-index")
    if fetch:
        new, old = fetch_request(repo)
        args.append("--thin")
        wants = new[0] + b"\n^" + old[0] + b"\n"
    else:
        wants = b"\n".join(all_wants(repo)) + b"\n"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as sink:
        subprocess.run(args, input=wants, stdout=sink, check=True)
        size = sink.tell()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"method": method, "cpu_s": round(cpu, 3), "count_cpu_s": 0.0,
            "wall_s": round(time.perf_counter() - start, 3), "bytes": size, "chunks": 0,
            "peak_rss_mib": round(after.ru_maxrss / 1024, 1)}


def baseline_rss() -> float:
    """Peak RSS of a child that only imports dulwich and opens the repository."""
    code = ("import resource, dulwich.repo, backends.git_fastpack, backends.git_pack;"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return float(out.stdout)


def measure(method: str, repo: Path, fetch: bool = False) -> dict[str, float | int | str]:
    if method.startswith("git"):
        # a fresh interpreter per run keeps RUSAGE_CHILDREN's maxrss to this git alone
        cmd = [sys.executable, __file__, "--child-git", method, "--repo", str(repo)]
    else:
        cmd = [sys.executable, __file__, "--child", method, "--repo", str(repo)]
    out = subprocess.run(cmd + (["--fetch"] if fetch else []), cwd=ROOT, check=False, capture_output=True)
    if out.returncode:
        error = out.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return {"method": method, "error": error[0][:200]}
    result: dict[str, float | int | str] = json.loads(out.stdout)
    return result


# -- verification ------------------------------------------------------------------------


def verify(repo: Path, work: Path) -> str:
    """Feed the fast pack to ``git index-pack`` in a fresh repository and ``git fsck --full`` it."""
    from dulwich.repo import Repo

    from backends.git_fastpack import generate_pack_fast

    client = work / "verify.git"
    shutil.rmtree(client, ignore_errors=True)
    subprocess.run(["git", "init", "-q", "--bare", str(client)], check=True)
    wants = all_wants(repo)
    dul = Repo(str(repo))
    stream = generate_pack_fast(dul.object_store, wants, [], refs=dul.get_refs(), include_tag=True)
    assert stream is not None
    proc = subprocess.Popen(["git", "-C", str(client), "index-pack", "--stdin", "--fix-thin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    for chunk in stream:
        proc.stdin.write(chunk)
    proc.stdin.close()
    pack_id = proc.stdout.read().decode().split()[-1]
    if proc.wait():
        return "index-pack FAILED"
    refs = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(objectname) %(refname)"],
                          check=True, capture_output=True).stdout.decode().splitlines()
    for line in refs:
        sha, ref = line.split()
        subprocess.run(["git", "-C", str(client), "update-ref", ref, sha], check=True)
    fsck = subprocess.run(["git", "-C", str(client), "fsck", "--full", "--no-dangling"], capture_output=True,
                          check=False)
    expected = subprocess.run(["git", "-C", str(repo), "rev-list", "--objects", "--all"],
                              check=True, capture_output=True).stdout.count(b"\n")
    got = subprocess.run(["git", "-C", str(client), "count-objects", "-v"], check=True,
                         capture_output=True).stdout.decode()
    in_pack = next(line.split()[1] for line in got.splitlines() if line.startswith("in-pack"))
    status = "ok" if fsck.returncode == 0 else "FSCK FAILED: " + fsck.stderr.decode()[:500]
    return f"index-pack ok (pack {pack_id}), fsck --full {status}; {in_pack} objects, rev-list --all {expected}"


# -- driver ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, help="a bare repository (default: build the 5,000-commit corpus)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--runs", type=int, default=3, help="runs of the fast methods and git (median shown)")
    parser.add_argument("--slow-runs", type=int, default=1, help="runs of the generic dulwich paths")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--fetch", action="store_true", help="also the fetch-after-push case")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-git", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.repo, args.fetch)))
        return
    if args.child_git:
        print(json.dumps(run_git(args.child_git, args.repo, args.fetch)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    repo = args.repo.resolve() if args.repo else build_corpus(args.work)
    nobitmap = without_bitmap(repo, args.work)
    size = sum(p.stat().st_size for p in (repo / "objects" / "pack").glob("*.pack"))
    print(f"# micro_git_pack: full-clone pack generation, {repo} "
          f"({len(all_wants(repo))} ref tips, {size / 1e6:.1f} MB of packs)")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"python {sys.version.split()[0]}, baseline child RSS {baseline_rss():.0f} MiB (imports only)")
    if args.verify:
        print("# verify:", verify(repo, args.work))
    rows = []
    for method in args.methods.split(","):
        target = nobitmap if method.endswith("nobitmap") else repo
        runs = [measure(method, target) for _ in range(args.slow_runs if method in SLOW else args.runs)]
        rows.append(summarise(method, runs))
    print_table(rows)
    if args.fetch:
        pushed = with_pushed_commits(repo, args.work)
        print(f"\n# fetch after a push of 100 commits ({pushed}): wants new main, haves old main, thin")
        fetch_rows = []
        for method in ("fast", "fast-warm", "git", "hgwire-generic"):
            runs = [measure(method, pushed, fetch=True) for _ in range(args.slow_runs if method in SLOW else args.runs)]
            failed = [r for r in runs if "error" in r]
            if failed:
                print(f"# {method}: FAILED: {failed[0]['error']}")
                continue
            fetch_rows.append(summarise(method, runs))
        print_table(fetch_rows)
        rows += fetch_rows
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


@dataclass(frozen=True)
class Row:
    method: str
    runs: int
    cpu_s: float
    cpu_min: float
    cpu_max: float
    count_cpu_s: float
    wall_s: float
    peak_rss_mib: float
    bytes: int


def summarise(method: str, runs: list[dict[str, float | int | str]]) -> Row:
    def values(key: str) -> list[float]:
        return [float(r[key]) for r in runs]

    return Row(method, len(runs), statistics.median(values("cpu_s")), min(values("cpu_s")),
               max(values("cpu_s")), statistics.median(values("count_cpu_s")),
               statistics.median(values("wall_s")), statistics.median(values("peak_rss_mib")),
               int(statistics.median(values("bytes"))))


def print_table(rows: list[Row]) -> None:
    git_cpu = next((r.cpu_s for r in rows if r.method == "git"), None)
    print("| method | runs | CPU s (median) | CPU min-max | of which counting | wall s | peak RSS MiB "
          "| pack MB | CPU vs git |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r.cpu_s / git_cpu:.2f}x" if git_cpu else "-"
        print(f"| {r.method} | {r.runs} | {r.cpu_s:.3f} | {r.cpu_min:.3f}-{r.cpu_max:.3f} | {r.count_cpu_s:.3f} "
              f"| {r.wall_s:.3f} | {r.peak_rss_mib:.0f} | {r.bytes / 1e6:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
