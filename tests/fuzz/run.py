"""Run fuzz targets for a long time: ``python -m tests.fuzz.run --target NAME --inputs 1000000``.

Engines:

- ``mutate`` (default): the harness's structured edits of recorded seeds, drawn
  from a seeded ``random.Random``; tens of thousands of inputs per second for
  the cheap parsers.
- ``hypothesis``: the smoke test's strategy for ``--inputs`` examples (slower).
- ``atheris``: coverage-guided libFuzzer, when the optional ``atheris``
  package is installed; the seeds form its starting corpus (one target per
  process: libFuzzer exits when done).

Every input goes through ``harness.check``: only hgwire's typed errors may
escape.  Unexpected exceptions are counted, the first input of each distinct
(type, place) is saved under ``--artifacts`` (default: $TMPDIR/hgwire-fuzz), and the exit status is 1 if
there was any.  The report is one line per target: inputs, seconds,
inputs/s, unexpected exceptions.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from .harness import Finding, Target, check, mutate, strategy
from .registry import MODULES, load

MEMORY_LIMIT = 4 << 30
"""Address-space cap, so a bomb shows up as MemoryError (a finding), not as the OOM killer."""


@dataclass
class Report:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    unexpected: int = 0
    findings: dict[str, Path] = field(default_factory=dict)

    def line(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        return (f"{self.target:12} inputs={self.inputs} seconds={self.seconds:.1f} inputs/s={rate:.0f} "
                f"unexpected={self.unexpected} distinct={len(self.findings)}")


def _signature(finding: Finding) -> str:
    """Exception type and innermost hgwire frame: one artifact per distinct bug, not per input."""
    cause = finding.__cause__ or finding
    frames = [f for f in traceback.extract_tb(cause.__traceback__) if "/tests/fuzz/" not in f.filename]
    place = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "harness"
    return f"{type(cause).__name__}@{place}"


def _record(report: Report, finding: Finding, data: bytes, artifacts: Path) -> None:
    report.unexpected += 1
    signature = _signature(finding)
    if signature in report.findings:
        return
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{report.target}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
    path.write_bytes(data)
    report.findings[signature] = path
    print(f"  finding {signature}: {finding} -> {path}", file=sys.stderr, flush=True)


def _one(target: Target, data: bytes, report: Report, artifacts: Path) -> None:
    report.inputs += 1
    try:
        check(target, data)
    except Finding as finding:
        _record(report, finding, data, artifacts)


def run_mutate(target: Target, inputs: int, seed: int, report: Report, artifacts: Path) -> None:
    rng = Random(seed)
    seeds = list(target.seeds())
    for data in seeds:
        _one(target, data, report, artifacts)
    for _ in range(inputs - len(seeds)):
        _one(target, mutate(rng, seeds, target.max_size), report, artifacts)


def run_hypothesis(target: Target, inputs: int, seed: int, report: Report, artifacts: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    @hypothesis_seed(seed)
    @settings(max_examples=inputs, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy(target))
    def fuzz(data: bytes) -> None:
        _one(target, data, report, artifacts)

    fuzz()


def run_atheris(target: Target, inputs: int, seed: int, report: Report, artifacts: Path) -> None:
    """libFuzzer on coverage of every loaded module; it ends the process, so the report is printed here."""
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # optional extra

    corpus = artifacts / f"corpus-{target.name}"
    corpus.mkdir(parents=True, exist_ok=True)
    for data in target.seeds():
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    start = time.monotonic()

    def one_input(data: bytes) -> None:
        _one(target, data, report, artifacts)
        if report.inputs == inputs:
            report.seconds = time.monotonic() - start
            print(report.line(), flush=True)

    atheris.instrument_all()
    atheris.Setup([sys.argv[0], f"-seed={seed + 1}", f"-runs={inputs}", f"-max_len={target.max_size}",
                   "-print_final_stats=0", str(corpus)], one_input)
    atheris.Fuzz()


ENGINES: dict[str, Callable[[Target, int, int, Report, Path], None]] = {
    "mutate": run_mutate,
    "hypothesis": run_hypothesis,
    "atheris": run_atheris,
}


def fuzz_target(name: str, engine: str, inputs: int, seed: int, artifacts: Path) -> Report:
    target = load(name)
    report = Report(name)
    start = time.monotonic()
    ENGINES[engine](target, inputs, seed, report, artifacts)
    report.seconds = time.monotonic() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", choices=[*sorted(MODULES), "all"], required=True)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="mutate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--artifacts", type=Path, default=Path(tempfile.gettempdir()) / "hgwire-fuzz")
    args = parser.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    sys.setrecursionlimit(10_000)
    names = sorted(MODULES) if "all" in args.target else args.target
    reports = []
    for name in names:
        report = fuzz_target(name, args.engine, args.inputs, args.seed, args.artifacts)
        print(report.line(), flush=True)
        reports.append(report)
    return 1 if any(r.unexpected for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
