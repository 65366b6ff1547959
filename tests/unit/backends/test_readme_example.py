"""The example backend in the README loads through ``--backend module:factory`` and works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from backends import BackendLoadError, load_backend
from backends.interfaces import Kind
from protocols.errors import PermissionDenied, RepositoryNotFound, UnsafeName

README = Path(__file__).resolve().parents[3] / "README.md"


def _example_source() -> str:
    text = README.read_text()
    match = re.search(r"<!-- example-backend -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its example backend"
    return match.group(1)


@pytest.fixture
def example_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "example_backend.py").write_text(_example_source())
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "example_backend"
    sys.modules.pop("example_backend", None)


def test_example_is_about_twenty_lines() -> None:
    lines = [l for l in _example_source().splitlines() if l.strip()]
    assert len(lines) <= 25


def test_example_backend_serves_public_repositories_only(example_module: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    subprocess.run(["git", "init", "-q", "--bare", str(root / "public" / "app.git")], check=True)
    subprocess.run(["git", "init", "-q", "--bare", str(root / "private" / "secret.git")], check=True)
    backend = load_backend(f"{example_module}:make_backend", str(root))
    assert backend.open("app").kind is Kind.GIT
    assert backend.open("app.git").kind is Kind.GIT
    assert list(backend.list()) == ["app.git"]
    with pytest.raises(RepositoryNotFound, match="^repository private/secret not found$"):
        backend.open("private/secret")  # named as the client named it, not by where it is looked for
    for hostile in ("", "/", "../private/secret", "-x"):
        with pytest.raises(UnsafeName):
            backend.open(hostile)
    with pytest.raises(PermissionDenied):
        backend.create("new", Kind.GIT)


def test_bad_backend_specs_are_clear_errors() -> None:
    for spec in ("nope", "no.such.module:factory", "os:no_such_attr", "os:sep", "os.path:join", "os:getcwd"):
        with pytest.raises(BackendLoadError):
            load_backend(spec, "/tmp")
