"""Fast checks of the benchmark harness (bench/): never runs the benchmark itself."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.gen_corpus import GENERATOR_VERSION, CorpusSpec, write_extension, write_history
from bench.run import CASES, Measurement, Outcome, Runner, markdown_table, paired_ratio, parse_args, summarize
from bench.targets import TARGET_CLASSES, Tools, _minsec

TINY = CorpusSpec(commits=30, files=12, binaries=1, seed=3)


def generate(spec: CorpusSpec) -> bytes:
    out = io.BytesIO()
    write_history(spec, out)
    return out.getvalue()


def test_generator_is_deterministic() -> None:
    assert generate(TINY) == generate(TINY)
    assert generate(TINY) != generate(CorpusSpec(30, 12, 1, seed=4))


def test_generator_output_is_pinned() -> None:
    """A change of these digests changes every corpus: bump GENERATOR_VERSION with them."""
    ext = io.BytesIO()
    write_extension(5, ext)
    assert GENERATOR_VERSION == 1
    assert hashlib.sha256(generate(TINY)).hexdigest() == (
        "e1a051d657b78615eb621d79f7158207e1aa858f39a91e2ecf06783e45b2f9e3")
    assert hashlib.sha256(ext.getvalue()).hexdigest() == (
        "4b6e2f964dd5412f633e0b139315423ac658e9811a4a3833bafd256d125d1216")


def test_extension_is_deterministic() -> None:
    a, b = io.BytesIO(), io.BytesIO()
    write_extension(5, a)
    write_extension(5, b)
    assert a.getvalue() == b.getvalue()
    assert a.getvalue().count(b"commit refs/heads/main\n") == 5


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_fast_import_gives_the_same_commit_ids(tmp_path: Path) -> None:
    def import_into(name: str) -> str:
        repo = tmp_path / name
        subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
        subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=generate(TINY), check=True)
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "refs/heads/main"],
                              capture_output=True, text=True, check=True).stdout.strip()

    first = import_into("a.git")
    assert first == import_into("b.git")
    count = subprocess.run(["git", "-C", str(tmp_path / "a.git"), "rev-list", "--all", "--count"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert int(count) == TINY.commits


def outcome(case: str, target: str, walls: list[float], unavailable: str = "") -> Outcome:
    o = Outcome(case, target, TARGET_CLASSES[target].vcs, unavailable)
    o.runs = [Measurement(i, False, w, True, server_cpu=0.5, peak_rss_kib=2048) for i, w in enumerate(walls)]
    return o


def test_ratios_are_medians_of_same_round_ratios() -> None:
    base = outcome("clone", "git-daemon", [1.0, 2.0, 4.0])
    mine = outcome("clone", "hgwire-git", [2.0, 2.0, 4.0])
    assert paired_ratio(mine, base) == 1.0  # ratios 2, 1, 1
    rows = summarize([base, mine, outcome("clone", "hgwire-git-http", [], "--http is not implemented yet")])
    assert [r["ratio_baseline"] for r in rows[:2]] == [1.0, 1.0]
    table = markdown_table(rows)
    assert "not available: --http is not implemented yet" in table
    assert "| clone | hgwire-git | 3 | 2.000 |" in table


def test_web_case_names_its_non_http_targets_and_runs_none_of_them(tmp_path: Path) -> None:
    # `--cases web --targets hg-serve,hg-ssh,...`: the ssh targets were started and curl was pointed at
    # their ssh URLs, each row "2 errors, rc=1: no output"; they now sit out with a reason
    runner = Runner(parse_args(["--cases", "web"]), tmp_path / "corpus", tmp_path / "work",
                    Tools(git="/nonexistent/git", hg="/nonexistent/hg", twistd="/nonexistent/twistd", lighttpd=None))
    outcomes = runner.run_case(CASES["web"], ["hg-ssh", "hg-sshd", "hgwire-hg-ssh"])
    assert [(o.target, o.unavailable, o.runs) for o in outcomes] == [
        (name, "hgweb's pages are served over HTTP only", []) for name in ("hg-ssh", "hg-sshd", "hgwire-hg-ssh")]
    rows = summarize(outcomes)
    assert all("not available: hgweb's pages are served over HTTP only" in markdown_table([r]) for r in rows)


def test_fake_ssh_times_are_parsed() -> None:
    assert _minsec("1m2.500000s") == 62.5
    assert _minsec("0m0.04s") == pytest.approx(0.04)


def _result(rows: list[dict[str, object]], runs: list[dict[str, object]] | None = None) -> dict[str, object]:
    full = [{"n": 3, "errors": 0, "ratio_baseline": None, "server_cpu_s": None, "peak_rss_mib": None,
             "baseline": "hg-serve" if "hg" in str(r["target"]) else "git-daemon", **r} for r in rows]
    return {"meta": {}, "rows": full, "runs": runs or []}


def test_verdict_reads_every_run_and_names_the_misses() -> None:
    from bench.verdict import GOALS, table, verdict

    first = _result([{"case": "clone", "target": "hgwire-git", "ratio_baseline": 1.05},
                     {"case": "clone", "target": "hg-serve", "server_cpu_s": 2.0},
                     {"case": "clone", "target": "hgwire-hg-ssh", "server_cpu_s": 1.2}])
    second = _result([{"case": "clone", "target": "hgwire-git", "ratio_baseline": 1.2},
                      {"case": "clone", "target": "hg-serve", "server_cpu_s": 2.0},
                      {"case": "clone", "target": "hgwire-hg-ssh", "server_cpu_s": 0.8}])
    lines = table([first, second])
    assert "| git full clone, wall time × git daemon | ≤ 1.1× | hgwire-git | 1.05, 1.20 | missed in 1 of 2 |" in lines
    # the hg CPU bound divides by hg serve's CPU of the same run: 0.6 then 0.4
    assert "| hg full clone, server CPU × hg serve's | ≤ 0.5× | hgwire-hg-ssh | 0.60, 0.40 | missed in 1 of 2 |" in lines
    assert "| hg no-op pull × hg serve | ≤ 0.8× | hgwire-hg-http | – | not measured |" in lines
    assert len(lines) == 2 + sum(len(goal.servers) for goal in GOALS)
    assert verdict([0.8, 0.8], 0.8) == "met"


def test_verdict_growth_is_the_second_half_and_needs_three_readings() -> None:
    from bench.verdict import second_half_growth_mib

    def growth(idle: list[int]) -> dict[str, object]:
        return _result([], [{"case": "growth", "target": "hgwire-git",
                             "runs": [{"idle_rss_kib": idle}]}])

    assert second_half_growth_mib(growth([50_000, 54_000, 54_512]), "growth", "hgwire-git") == 0.5
    assert second_half_growth_mib(growth([50_000, 54_000]), "growth", "hgwire-git") is None  # first → last only
    assert second_half_growth_mib(growth([50_000, 54_000, 54_512]), "growth", "hgwire-hg-ssh") is None
