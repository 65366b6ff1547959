"""Issue 7's targets, checked against the result files of one or more ``bench/run.py`` runs.

    .venv/bin/python -m bench.verdict bench/results/20261202T123636Z-full.json [more.json ...]

Prints a markdown table: per target and hgwire server, the figure of every run
given (in the order given) and ``met`` when every run meets the bound, else
``missed in K of N``.  A run that did not measure a figure is left out of its
row (``not measured`` when none did).  Ratios are those ``run.py`` computed:
medians of per-round ratios to the baseline measured in the same round; the
hg server CPU ratio divides the medians of the same run.  The growth target
is read from a growth run (``--cases growth``): the idle RSS from the middle
to the last clone, which leaves out the first clones' warm-up.

A report, not a gate: the exit status is 0 whatever the verdicts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.run import second_half_growth_kib

Run = dict[str, Any]
"""One results file of ``run.py`` as loaded from JSON: ``meta``, ``rows``, ``runs``."""

MIB_PER_MB = 1e6 / (1 << 20)
GROWTH_NOISE_MIB = 1.0
"""Idle RSS moves by up to about a MiB between two idle moments (allocator pools): below it is no growth."""


def _row(run: Run, case: str, target: str) -> dict[str, Any] | None:
    return next((r for r in run["rows"] if r["case"] == case and r["target"] == target), None)


def ratio(run: Run, case: str, target: str) -> float | None:
    row = _row(run, case, target)
    return None if row is None else row["ratio_baseline"]


def cpu_seconds(run: Run, case: str, target: str) -> float | None:
    row = _row(run, case, target)
    return None if row is None else row["server_cpu_s"]


def cpu_ratio(run: Run, case: str, target: str) -> float | None:
    """hgwire's median server CPU over its baseline's, in the same run."""
    row = _row(run, case, target)
    if row is None or row["server_cpu_s"] is None:
        return None
    base = _row(run, case, row["baseline"])
    if base is None or not base["server_cpu_s"]:
        return None
    return float(row["server_cpu_s"]) / float(base["server_cpu_s"])


def errors(run: Run, case: str, target: str) -> float | None:
    row = _row(run, case, target)
    return None if row is None or row["n"] == 0 else float(row["errors"])


def peak_rss_mb(run: Run, case: str, target: str) -> float | None:
    row = _row(run, case, target)
    return None if row is None or row["peak_rss_mib"] is None else row["peak_rss_mib"] / MIB_PER_MB


def second_half_growth_mib(run: Run, case: str, target: str) -> float | None:
    """Idle RSS after the last clone minus after the middle one; None before that was recorded."""
    outcome = next((o for o in run["runs"] if o["case"] == case and o["target"] == target), None)
    if outcome is None:
        return None
    idle = next((m["idle_rss_kib"] for m in outcome["runs"] if m.get("idle_rss_kib")), None)
    if idle is None or len(idle) < 3:
        return None
    return second_half_growth_kib(idle) / 1024


@dataclass(frozen=True)
class Goal:
    """One bound of the issue, for some hgwire servers of one case."""

    label: str
    case: str
    servers: tuple[str, ...]
    measure: Callable[[Run, str, str], float | None]
    bound: float
    unit: str

    def figures(self, runs: Sequence[Run], server: str) -> list[float]:
        values = (self.measure(run, self.case, server) for run in runs)
        return [v for v in values if v is not None]


GIT = ("hgwire-git", "hgwire-git-ssh", "hgwire-git-http")
HG = ("hgwire-hg-http", "hgwire-hg-ssh")

GOALS: tuple[Goal, ...] = (
    Goal("git full clone, wall time × git daemon", "clone", GIT, ratio, 1.1, "×"),
    Goal("git full clone, server CPU s per clone", "clone", GIT, cpu_seconds, 1.5, " s"),
    # not the issue's: its git clone bound held for a SHA-256 repository of the same history
    Goal("git full clone of a SHA-256 repository, wall time × git daemon", "clone-sha256", GIT, ratio, 1.1, "×"),
    Goal("hg full clone, wall time × hg serve", "clone", HG, ratio, 1.0, "×"),
    Goal("hg full clone, server CPU × hg serve's", "clone", HG, cpu_ratio, 0.5, "×"),
    Goal("hg clone --stream, wall time × hg serve", "stream", HG, ratio, 1.0, "×"),
    Goal("git no-op fetch × git daemon", "noop", GIT, ratio, 1.0, "×"),
    Goal("hg no-op pull × hg serve", "noop", HG, ratio, 0.8, "×"),
    Goal("git push of 100 commits × git daemon", "push", GIT, ratio, 1.5, "×"),
    Goal("hg push of 100 changesets × hg serve", "push", HG, ratio, 0.8, "×"),
    Goal("8 concurrent git clones × git daemon", "concurrent", ("hgwire-git",), ratio, 1.2, "×"),
    Goal("8 concurrent hg clones × hg serve", "concurrent", ("hgwire-hg-http",), ratio, 0.7, "×"),
    Goal("8 concurrent clones, failed clients", "concurrent", ("hgwire-git", "hgwire-hg-http"), errors, 0, ""),
    Goal("8 concurrent clones, server peak RSS MB", "concurrent", ("hgwire-git", "hgwire-hg-http"),
         peak_rss_mb, 150, " MB"),
    Goal("100 sequential clones, idle RSS growth MiB (middle → last)", "growth", GIT + HG,
         second_half_growth_mib, GROWTH_NOISE_MIB, " MiB"),
)


def verdict(figures: Sequence[float], bound: float) -> str:
    if not figures:
        return "not measured"
    missed = sum(1 for f in figures if f > bound + 1e-9)
    return "met" if missed == 0 else f"missed in {missed} of {len(figures)}"


_FORMATS = {"×": "{:.2f}", " s": "{:.2f}", "": "{:.0f}", " MB": "{:.0f}", " MiB": "{:+.1f}"}


def _number(value: float, unit: str) -> str:
    return _FORMATS.get(unit, "{:.2f}").format(value)


def table(runs: Sequence[Run], goals: Sequence[Goal] = GOALS) -> list[str]:
    lines = ["| target | bound | hgwire server | per run | verdict |", "|---|---|---|---|---|"]
    for goal in goals:
        for server in goal.servers:
            figures = goal.figures(runs, server)
            shown = ", ".join(_number(f, goal.unit) for f in figures) or "–"
            bound = f"≤ {goal.bound:g}{goal.unit}"
            lines.append(f"| {goal.label} | {bound} | {server} | {shown} | {verdict(figures, goal.bound)} |")
    return lines


def describe(path: Path, run: Run) -> str:
    meta = run["meta"]
    machine = meta.get("machine", {})
    cases = ",".join(meta.get("cases", []))
    return (f"* `{path.name}`: {meta.get('started', '?')}, cases {cases}; {machine.get('cores', '?')} cores "
            f"({machine.get('cpu', '?')}), kernel {machine.get('kernel', '?')}; hgwire "
            f"{str(meta.get('versions', {}).get('hgwire', '?')).split(' ')[0]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files written by bench/run.py")
    args = parser.parse_args(argv)
    runs = [json.loads(p.read_text()) for p in args.results]
    print("\n".join([*(describe(p, r) for p, r in zip(args.results, runs, strict=True)), "", *table(runs)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
