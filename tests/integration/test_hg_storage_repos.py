"""Fixture repositories built by the real ``hg`` CLI, shared by the hg storage tests.

Each repository is built once per session.  ``hg`` runs with a clean
environment (``HGRCPATH=``, ``HGPLAIN=1``, ``HGUSER=test``, a temporary HOME)
so user configuration cannot change what it writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import hg_command_server

HG = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hg")

LONG_DIR = "a-very-long-directory-name-that-goes-on" * 2
LONG_PATH = f"{LONG_DIR}/{LONG_DIR}/and-a-long-file-name-too.TXT"
ESCAPE_NAMES = [
    "UPPER.txt",
    "under_score",
    "aux",
    "con.txt",
    "prn/nul.c",
    "com1",
    "lpt9.x",
    ".hidden",
    " leading-space",
    "trailing-dot.",
    "trailing-space ",
    "foo.i/bar",
    "foo.d/baz",
    "dir.hg/qux",
    "tilde~1",
    "colon:star*q?",
    "hash#percent%",
]


class Hg:
    """Run the real ``hg`` in an isolated environment."""

    def __init__(self, home: Path) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HGRCPATH": "",
            "HGPLAIN": "1",
            "HGUSER": "test",
            "HGENCODING": "utf-8",
            "LANG": "C.UTF-8",
        }
        self.last_stderr = b""

    def __call__(self, cwd: Path | str, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        proc = hg_command_server.subprocess_run([HG, *args], cwd=cwd, env=self.env, input=input)
        self.last_stderr = proc.stderr
        if check and proc.returncode != 0:
            raise AssertionError(f"hg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def index(self, repo: Path, *target: str) -> list[dict[str, str]]:
        """``hg debugindex --debug -T json``: rev, linkrev and full node ids of one revlog."""
        out = self(repo, "debugindex", "--debug", "-T", "json", *target)
        result: list[dict[str, str]] = json.loads(out)
        return result


def _write(repo: Path, name: str, data: bytes) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _commit(hg: Hg, repo: Path, message: str, *extra: str) -> None:
    hg(repo, "commit", "-A", "-q", "-m", message, "-d", "1700000000 -3600", *extra)


def build_rich_repo(hg: Hg, repo: Path, init_args: Sequence[str] = ()) -> Path:
    """A repository exercising everything the engine must read: see the issue's list."""
    hg(repo.parent, "init", *init_args, str(repo))
    _write(repo, "README", b"hello\n")
    _write(repo, "empty", b"")
    _write(repo, "binary.bin", bytes(range(256)) * 40)
    _write(repo, "big.txt", b"".join(b"line %d of a file that will outgrow inline\n" % i for i in range(4000)))
    _write(repo, "caf\u00e9/\u00fcnicode-\u65e5\u672c.txt".encode().decode(), b"non-ascii\n")
    _write(repo, LONG_PATH, b"long path\n")
    for i, name in enumerate(ESCAPE_NAMES):
        _write(repo, name, b"escape %d\n" % i)
    _commit(hg, repo, "initial")
    os.chmod(repo / "README", 0o755)
    os.symlink("README", repo / "link")
    _write(repo, "big.txt", (repo / "big.txt").read_bytes() + b"appended\n")
    _commit(hg, repo, "exec bit and symlink")
    hg(repo, "copy", "README", "README.copy")
    hg(repo, "rename", "binary.bin", "moved.bin")
    _commit(hg, repo, "copy and rename")
    hg(repo, "tag", "-d", "1700000000 0", "v1.0")
    hg(repo, "bookmark", "main-mark")
    hg(repo, "branch", "-q", "feature/\u00e9t\u00e9")
    _write(repo, "feature.txt", b"feature work\n")
    _commit(hg, repo, "on a named branch")
    _write(repo, "feature.txt", b"feature work\nmore\n")
    _commit(hg, repo, "more feature")
    hg(repo, "update", "-q", "default")
    _write(repo, "README", b"hello\nworld\n")
    _commit(hg, repo, "default moves on")
    hg(repo, "merge", "-q", "feature/\u00e9t\u00e9")
    _commit(hg, repo, "merge feature")
    hg(repo, "branch", "-q", "doomed")
    _write(repo, "doomed.txt", b"x\n")
    _commit(hg, repo, "doomed branch")
    _commit(hg, repo, "close doomed", "--close-branch")
    hg(repo, "update", "-q", "default")
    _write(repo, "big.txt", (repo / "big.txt").read_bytes().replace(b"line 7 ", b"LINE 7 "))
    hg(repo, "remove", "empty")
    _commit(hg, repo, "edit big, remove empty")
    hg(repo, "tag", "-d", "1700000000 0", "v2.0")
    hg(repo, "bookmark", "-r", "1", "old-mark")
    hg(repo, "phase", "--public", "-r", ".")
    _write(repo, "draft.txt", b"draft\n")
    _commit(hg, repo, "a draft change")
    hg(repo, "update", "-q", "-r", "v2.0")
    _write(repo, "other-head.txt", b"second head\n")
    _commit(hg, repo, "another head on default")
    _write(repo, "secret.txt", b"secret\n")
    _commit(hg, repo, "a secret change", "--secret")
    return repo


def build_small_repo(hg: Hg, repo: Path, init_args: Sequence[str] = ()) -> Path:
    """A few commits with a revlog that splits, a binary file and a merge."""
    hg(repo.parent, "init", *init_args, str(repo))
    _write(repo, "big.txt", b"".join(b"%d some text to compress\n" % i for i in range(9000)))
    _write(repo, "bin", bytes(range(256)) * 8)
    _commit(hg, repo, "one")
    _write(repo, "big.txt", (repo / "big.txt").read_bytes() + b"more\n")
    _commit(hg, repo, "two")
    hg(repo, "update", "-q", "0")
    _write(repo, "bin", bytes(range(255, -1, -1)) * 8)
    _commit(hg, repo, "three")
    hg(repo, "merge", "-q", "1")
    _commit(hg, repo, "merge")
    return repo


def build_legacy_repo(hg: Hg, repo: Path) -> Path:
    """Without generaldelta: delta chains are runs of consecutive revisions."""
    args = ["--config", "format.usegeneraldelta=false", "--config", "format.sparse-revlog=false"]
    hg(repo.parent, "init", *args, str(repo))
    for i in range(6):
        _write(repo, "f.txt", b"".join(b"row %d\n" % j for j in range(50 * (i + 1))))
        _commit(hg, repo, f"legacy {i}")
    assert b"generaldelta" not in (repo / ".hg" / "store" / "requires").read_bytes()
    return repo


_BUILT: dict[str, Path] = {}
"""Repositories built this session.  Every test module imports these fixtures,
which makes one fixture definition per module; this cache keeps it to one
build per session, and the three builds run side by side."""


def _built(name: str, hg: Hg, factory: pytest.TempPathFactory) -> Path:
    if not _BUILT:
        zlib = ["--config", "format.revlog-compression=zlib"]
        builds: dict[str, Callable[[], Path]] = {
            "zstd": lambda: build_rich_repo(hg, factory.mktemp("src") / "zstd"),
            "zlib": lambda: build_small_repo(hg, factory.mktemp("src") / "zlib", zlib),
            "legacy": lambda: build_legacy_repo(hg, factory.mktemp("src") / "legacy"),
        }
        with ThreadPoolExecutor(len(builds)) as pool:
            futures = {key: pool.submit(fn) for key, fn in builds.items()}
            _BUILT.update({key: future.result() for key, future in futures.items()})
    return _BUILT[name]


_HOME: list[Hg] = []


@pytest.fixture(scope="session")
def hg_cli(tmp_path_factory: pytest.TempPathFactory) -> Hg:
    if not _HOME:
        _HOME.append(Hg(tmp_path_factory.mktemp("hg-home")))
    return _HOME[0]


@pytest.fixture(scope="session")
def zstd_repo(hg_cli: Hg, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built("zstd", hg_cli, tmp_path_factory)


@pytest.fixture(scope="session")
def zlib_repo(hg_cli: Hg, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built("zlib", hg_cli, tmp_path_factory)


@pytest.fixture(scope="session")
def legacy_repo(hg_cli: Hg, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built("legacy", hg_cli, tmp_path_factory)


@pytest.fixture(params=["zstd", "zlib", "legacy"])
def source_repo(request: pytest.FixtureRequest) -> Iterator[Path]:
    yield request.getfixturevalue(f"{request.param}_repo")


__all__ = ["HG", "Hg", "build_rich_repo", "hg_cli", "legacy_repo", "source_repo", "zlib_repo", "zstd_repo"]
