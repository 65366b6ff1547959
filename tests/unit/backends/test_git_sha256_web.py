"""A SHA-256 repository's pages and archives (and the same from a SHA-1 one): ids of the
repository's length in and out, archives byte for byte ``git archive``'s, ``$Format:%H$`` as
``git log`` prints it."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends import git_archive, load_backend
from backends.git_pretty import pretty
from backends.git_web import GitPages
from backends.interfaces import GitRepository
from protocols.errors import ProtocolError
from protocols.git_archive import ArchiveRefused, parse_arguments
from tests.unit.backends.test_git_fastpack import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs a git binary")

@dataclass(frozen=True)
class Served:
    object_format: str
    work: Path
    repo: GitRepository


@pytest.fixture(scope="module", params=["sha1", "sha256"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    object_format: str = request.param
    root = tmp_path_factory.mktemp(f"web-{object_format}")
    work = root / "work"
    work.mkdir()
    git(work, "init", "-q", f"--object-format={object_format}", "-b", "main")
    (work / ".gitattributes").write_text("subst.txt export-subst\n")
    (work / "subst.txt").write_text("$Format:%H %h %T %t %P %p$\n")
    (work / "src").mkdir()
    (work / "src" / "main.py").write_text("print('hi')\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    git(work, "tag", "-a", "v1", "-m", "version 1")
    long_dir = work / ("d" * 90) / ("e" * 60)  # cut into the header's prefix and name
    long_dir.mkdir(parents=True)
    (long_dir / "f.txt").write_text("deep\n")
    (work / ("g" * 120)).write_text("a name too long: a pax header named by the blob's id\n")
    (work / "src" / "main.py").write_text("print('hello')\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "second")
    git(root, "clone", "-q", "--bare", "--no-local", str(work), str(root / "r.git"))
    repo = load_backend("fs", str(root)).open("r.git")
    yield Served(object_format, work, repo)  # type: ignore[arg-type]
    repo.dulwich_repo.close()  # type: ignore[union-attr]


@pytest.fixture
def hex_len(served: Served) -> int:
    """Digits of a full id: 40, or 64 in SHA-256."""
    return 64 if served.object_format == "sha256" else 40


def ours(served: Served, *args: str, allow_unreachable: bool = False) -> bytes:
    options = parse_arguments(args)
    source = git_archive.resolve(served.repo, options.treeish, options.pathspecs, allow_unreachable=allow_unreachable)
    return b"".join(git_archive.archive_chunks(served.repo.object_store, source, options))


@pytest.mark.parametrize("args", [
    ("--format=tar", "HEAD"),
    ("--format=tar", "--prefix=release-1.0/", "v1"),
    ("--format=tar", "HEAD", "src"),
    ("--format=zip", "HEAD"),
    ("--format=zip", "--prefix=p/", "main", "src"),
])
def test_archives_are_git_archive_s(served: Served, args: tuple[str, ...]) -> None:
    assert ours(served, *args) == git(served.work, "archive", *args)


def test_an_archive_by_full_id(served: Served, hex_len: int) -> None:
    head = git(served.work, "rev-parse", "HEAD").strip().decode()
    assert len(head) == hex_len
    with pytest.raises(ArchiveRefused, match="no such ref"):  # as git's upload-archive, by default
        ours(served, "--format=tar", head)
    archived = ours(served, "--format=tar", head, allow_unreachable=True)  # uploadArchive.allowUnreachable
    assert archived == git(served.work, "archive", "--format=tar", head)
    with pytest.raises(ArchiveRefused):  # an id of the other length is no id here
        ours(served, "--format=tar", head[:40] if hex_len == 64 else head + "0" * 24, allow_unreachable=True)


def test_export_subst_prints_the_format_s_ids(served: Served, hex_len: int) -> None:
    with tarfile.open(fileobj=io.BytesIO(ours(served, "--format=tar", "HEAD"))) as tar:
        member = tar.extractfile("subst.txt")
        assert member is not None
        text = member.read()
    expected = git(served.work, "log", "-1", "--format=%H %h %T %t %P %p")
    assert text == expected and len(text.split()[0]) == hex_len
    dulwich_repo = served.repo.dulwich_repo  # type: ignore[attr-defined]
    commit = dulwich_repo[dulwich_repo.head()]
    assert pretty(commit, b"%H/%T/%P") == git(served.work, "log", "-1", "--format=%H/%T/%P").strip()


def test_pages_take_and_give_ids_of_the_format(served: Served, hex_len: int) -> None:
    pages = GitPages(served.repo)
    head = git(served.work, "rev-parse", "HEAD").strip()
    first = git(served.work, "rev-parse", "HEAD~1").strip()
    assert pages.resolve(head.decode()) == head == pages.resolve("main") == pages.resolve("tip")
    assert pages.resolve("v1") == first
    for digits in (7, 12, 39, 40, hex_len - 1):
        assert pages.resolve(first[:digits].decode()) == first
    with pytest.raises(ProtocolError):
        pages.resolve(first[:6].decode())  # too short to be taken
    with pytest.raises(ProtocolError):
        pages.resolve(first.decode() + "0")  # longer than an id
    log = pages.log("main", 10)
    assert [e["node"].encode() for e in log] == [head, first]
    assert log[0]["parents"] == [first.decode()]
    change = pages.changeset(head.decode())
    assert change["node"] == head.decode() and {f["file"] for f in change["files"]} >= {"src/main.py"}
    assert pages.tree(first.decode(), "src")["files"][0]["size"] == len("print('hi')\n")
    assert [c["node"].encode() for c in pages.graph("main", 10)["changesets"]] == [head, first]
    when, zone = git(served.work, "log", "-1", "--format=%ct %ci").split()[::3]
    west = (int(zone[1:3]) * 3600 + int(zone[3:]) * 60) * (1 if zone.startswith(b"-") else -1)
    assert pages.last_change() == [float(when), west]  # the index's date: the newest tip's commit


def test_a_web_archive_is_git_archive_s(served: Served) -> None:
    pages = GitPages(served.repo)
    made = pages.archive("r.git", "main", "gz", "", ("gz", "zip"))
    data = b"".join(made.chunks())
    head = git(served.work, "rev-parse", "HEAD").strip().decode()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.pax_headers.get("comment") == head  # what git get-tar-commit-id reads
        names = tar.getnames()
    assert f"r-main/{'g' * 120}" in names and "r-main/src/main.py" in names
