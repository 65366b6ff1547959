"""Each entry of a delta chain the counting's reader resolves is one step of its own loop: a shallow
clone's first ``git fetch --deepen=1`` (40,000 commits, 94 shallow haves) resolves 7,300 trees
through 77,000 chain entries, each once, and every entry was four more calls (its header, its size,
its inflating, the cache's bookkeeping): a fifth of the reading.  What it reads is what git reads."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_objects
from backends.git_objects import PackObjectReader, store_views
from tests.unit.backends.test_git_fastpack import GIT_ENV

VERSIONS = 60


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, input=data,
                          env=GIT_ENV).stdout


@pytest.fixture(scope="module", params=["ofs", "ref"])
def chained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of 40 files and a file of 40 KB, each changed a little in each of 60 commits, packed
    with deep chains: OFS_DELTA entries, or REF_DELTA ones (``repack.useDeltaBaseOffset`` off)."""
    repo = tmp_path_factory.mktemp(f"chain-{request.param}") / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, env=GIT_ENV)
    script = []
    for n in range(VERSIONS):
        script.append(b"commit refs/heads/main\ncommitter C <c@example.com> %d +0000\ndata 2\nc\n" % (1700000000 + n))
        for f in range(40):
            body = b"file %d version %d\n" % (f, n if f % 7 == n % 7 else 0)
            script.append(b"M 100644 inline dir/f%02d\ndata %d\n%s" % (f, len(body), body))
        large = b"".join(b"line %05d of the large file, version %d\n" % (i, n if i % 97 == 0 else 0)
                         for i in range(1000))
        script.append(b"M 100644 inline large\ndata %d\n%s" % (len(large), large))
    _git(repo, "fast-import", "--quiet", data=b"".join(script))
    offsets = "true" if request.param == "ofs" else "false"
    _git(repo, "-c", "pack.threads=1", "-c", f"repack.useDeltaBaseOffset={offsets}", "repack", "-q", "-a", "-d",
         "-f", "--depth=50", "--window=100")
    return repo


def _everything(repo: Path) -> dict[bytes, tuple[bytes, bytes]]:
    names = _git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
    out = _git(repo, "cat-file", "--batch", data=b"".join(name + b"\n" for name in names))
    found: dict[bytes, tuple[bytes, bytes]] = {}
    at = 0
    for name in names:
        end = out.index(b"\n", at)
        _, kind, size = out[at:end].split()
        found[name] = kind, out[end + 1:end + 1 + int(size)]
        at = end + 2 + int(size)
    return found


def test_each_chain_entry_is_one_step_and_reads_as_git(chained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _everything(chained)
    kinds = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
    calls: Counter[str] = Counter()

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    for name in ("_entry_header", "entry_size", "_inflate_entry"):
        monkeypatch.setattr(git_objects, name, counted(name, getattr(git_objects, name)))
    monkeypatch.setattr(PackObjectReader, "_remember", counted("_remember", PackObjectReader._remember))
    entries: Counter[int] = Counter()
    real_entry = PackObjectReader._entry

    def entry(self: Any, view: Any, mapped: Any, start: int) -> Any:
        found = real_entry(self, view, mapped, start)
        entries[found[0]] += 1
        return found

    monkeypatch.setattr(PackObjectReader, "_entry", entry)
    monkeypatch.setattr(git_objects, "BASE_CACHE_BYTES", 64 << 10)  # (chains resolved again and again)
    store = Repo(str(chained)).object_store
    with PackObjectReader(store, store_views(store)) as reader:
        for name in sorted(expected):
            kind, raw = reader.read(name)
            assert (kind, raw) == (kinds[expected[name][0]], expected[name][1]), name
    deltas = entries[git_objects.OFS_DELTA] + entries[git_objects.REF_DELTA]
    assert deltas > 2 * VERSIONS  # (the trees and the large file: chains)
    whole = sum(entries.values()) - deltas
    assert calls["_entry_header"] == calls["entry_size"] == calls["_inflate_entry"] == 0, calls
    assert calls["_remember"] <= whole, (calls, whole)
