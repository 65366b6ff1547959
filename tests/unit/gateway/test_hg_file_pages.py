"""A Mercurial repository's file pages for browsers (``/NAME/file/REV[/PATH]``) are rendered from
what json-file and json-manifest are written from, not from those pages' JSON parsed back (a
directory of 100,000 files was 10 MB of JSON written and parsed again: 2.5 s, 300 MB), and are
the pages that JSON would make, whatever the names and lines hold."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from backends.hg import archive, open_repository
from backends.hg import web as hg_web
from backends.hg.repository import HgRepo
from backends.lru import LruCache
from gateway import hg_web as pages
from protocols import hg_web_html as html
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
URL = "http://example.test/r"
NAMES = [b"plain.txt", b'a <b> & "q" \\.txt', "café \U0001d11e.txt".encode(), b"caf\xe9.txt", b"tool",
         b"link", b"bin.dat", b"d/e/f/deep.txt", b"d/e/f/g/deeper.txt", b"d/x.txt", b"only/one/chain/leaf.txt"]
"""Names to escape and to link by their bytes (one not UTF-8), flags (an executable, a link), a
binary file, and directories holding one directory alone (hgweb's ``emptydirs``)."""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> HgRepo:
    path = tmp_path_factory.mktemp("pages") / "r"
    path.mkdir()
    for name in NAMES:
        target = os.path.join(bytes(path), name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if name == b"link":
            os.symlink(b"plain.txt", target)
            continue
        with open(target, "wb") as f:
            f.write(b"\0\1\2" if name == b"bin.dat" else b'<1> & "two"\nbad \xdd byte\n' + "\U0001d11e\n".encode() + name)
    os.chmod(os.path.join(bytes(path), b"tool"), 0o755)
    run = [os.path.join(VENV_BIN, "hg"), "-R", str(path)]
    hg_command_server.subprocess_run([*run, "init"], cwd=path, env=ENV, check=True)
    hg_command_server.subprocess_run([*run, "commit", "-q", "-A", "-m", "files"], cwd=path, env=ENV, check=True)
    return open_repository(str(path), "r")


def _from_json(repo: HgRepo, path: bytes) -> bytes:
    """The page as it was made: the JSON page's data parsed back."""
    shown = path.decode("utf-8", "surrogateescape")
    data: dict[str, Any] = json.loads(hg_web.page(repo, f"json-file/tip/{shown}" if path else "json-manifest/tip"))
    return html.file("r", URL, data) if "lines" in data else html.directory("r", URL, data)


@pytest.mark.parametrize("path", [b"", b"d", b"d/e", b"d/e/f", b"only", *NAMES])
def test_a_file_page_is_rendered_without_json(repo: HgRepo, path: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _from_json(repo, path)

    def no_json(_text: str | bytes) -> Any:
        raise AssertionError("a file page was parsed from JSON")

    monkeypatch.setattr(json, "loads", no_json)
    segments = ["file", "tip", *path.decode("utf-8", "surrogateescape").split("/")] if path else ["file", "tip"]
    assert pages.render(pages.HgPages(repo), "r", URL, segments) == expected


@pytest.mark.parametrize("path", [b"d/x.txt", b"plain.txt", b"only/one/chain/leaf.txt"])
def test_a_file_page_does_not_parse_a_manifest_too_large_to_keep(repo: HgRepo, path: bytes,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest too large to be kept parsed (over 50,000 files) was parsed whole for each page
    of one of its files (50 ms of CPU, where hg serve took 10); the file is found in its text."""
    expected = _from_json(repo, path)
    monkeypatch.setattr(archive, "_MANIFESTS", LruCache(0))  # keeps nothing, as for a large manifest

    def parsed(_text: bytes) -> Any:
        raise AssertionError("a whole manifest was parsed for the page of one file")

    monkeypatch.setattr(archive, "manifest_entries", parsed)
    segments = ["file", "tip", *path.decode().split("/")]
    assert pages.render(pages.HgPages(repo), "r", URL, segments) == expected
    with pytest.raises(AssertionError):  # a directory is still listed from the parsed manifest
        pages.render(pages.HgPages(repo), "r", URL, ["file", "tip", "d"])
