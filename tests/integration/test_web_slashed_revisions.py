"""A revision named with ``/`` (a tag, bookmark or branch ``release/1.0``, a git branch
``feature/x``) on the pages' URLs, as hgweb names it (``release%252F1.0``: its links escape ``/``
twice, and it reads the ``%2F`` left once the path is decoded as ``/``): every page that takes a
revision answers as ``hg serve`` does, for a git repository's refs too."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_archive import _commit, _hg_serve
from tests.integration.test_hg_http import raw

BROWSER = {"Accept": "text/html"}
HG_PAGES = ("rev/{r}", "shortlog/{r}", "log/{r}", "graph/{r}", "file/{r}", "file/{r}/a.txt", "log/{r}/a.txt",
            "annotate/{r}/a.txt", "diff/{r}/a.txt", "comparison/{r}/a.txt", "raw-rev/{r}", "raw-file/{r}/a.txt",
            "raw-file/{r}", "archive/{r}.tar.gz", "json-rev/{r}", "json-shortlog/{r}", "json-file/{r}/a.txt")
"""hgweb's pages of a revision (hgwire's HTML is its own: their status is compared, the others' bytes)."""


def _names_in(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        return tar.getnames()


def test_hg_revisions_with_a_slash_are_as_hg_serve_answers(make_server: Callable[..., RunningServer],
                                                           client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "rel"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = gz\n")
    _commit(client, repo, "one", {"a.txt": b"a\n"}, 1_700_000_000)
    client.hg("tag", "-q", "-R", str(repo), "-u", "t", "-d", "1700000100 0", "-r", "0", "release/1.0")
    client.hg("bookmark", "-q", "-R", str(repo), "-r", "0", "book/mark")
    client.hg("branch", "-q", "-R", str(repo), "feature/x")
    _commit(client, repo, "two", {"a.txt": b"a\nb\n"}, 1_700_000_200)
    port = server.port("http")
    with _hg_serve(client, repo) as reference:
        for name in ("release%252F1.0", "book%252Fmark", "feature%252Fx"):
            for page in HG_PAGES:
                target = page.format(r=name)
                theirs = raw(reference, "GET", "/" + target)
                ours = raw(port, "GET", "/rel/" + target, BROWSER)
                assert theirs.status == 200, (target, theirs.body[:200])
                assert ours.status == 200, (target, ours.body[:200])
                if target.startswith(("raw-", "json-")):
                    assert ours.body == theirs.body, target
        missing = raw(port, "GET", "/rel/rev/no%252Fsuch", BROWSER)
        assert missing.status == 404 and b"'no/such'" in missing.body
        tags = raw(reference, "GET", "/tags").body.decode()
        assert "/rev/release%252F1.0" in tags  # (the link hgweb writes, followed above)
    assert "rel-release-1.0/a.txt" in _names_in(raw(port, "GET", "/rel/archive/release%252F1.0.tar.gz").body)


def _git_repository(client: Client, root: Path) -> tuple[Path, str]:
    work = client.cwd / "slashed"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-q", "-m", "one", cwd=work)
    client.git("checkout", "-q", "-b", "feature/x", cwd=work)
    (work / "a.txt").write_text("a\nx\n")
    client.git("commit", "-q", "-am", "on feature/x", cwd=work)
    client.git("tag", "-a", "-m", "rel", "rel/2", cwd=work)
    bare = root / "slashed.git"
    client.git("clone", "-q", "--bare", "--no-local", str(work), str(bare))
    return bare, client.git("rev-parse", "feature/x", cwd=work).stdout.strip()


def test_git_refs_with_a_slash_are_reached(make_server: Callable[..., RunningServer], client: Client,
                                           tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[git]\narchives = ["gz"]\n')
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    _bare, feature = _git_repository(client, server.root)
    port = server.port("http")
    for name in ("feature%252Fx", "rel%252F2", "heads%252Ffeature%252Fx"):
        for page in ("rev/{r}", "shortlog/{r}", "log/{r}", "graph/{r}", "file/{r}", "file/{r}/a.txt",
                     "log/{r}/a.txt", "annotate/{r}/a.txt", "diff/{r}/a.txt", "raw-file/{r}/a.txt",
                     "archive/{r}.tar.gz", "json-rev/{r}"):
            target = page.format(r=name)
            answer = raw(port, "GET", "/slashed.git/" + target, BROWSER)
            assert answer.status == 200, (target, answer.body[:200])
            if not target.startswith(("raw-file", "archive")):
                assert feature.encode() in answer.body, target
    assert raw(port, "GET", "/slashed.git/raw-file/feature%252Fx/a.txt").body == b"a\nx\n"
    assert "slashed-feature-x/a.txt" in _names_in(raw(port, "GET", "/slashed.git/archive/feature%252Fx.tar.gz").body)
    missing = raw(port, "GET", "/slashed.git/rev/no%252Fsuch", BROWSER)
    assert missing.status == 404 and b"'no/such'" in missing.body
