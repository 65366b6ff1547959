"""A tag object whose first line names its object in capital hex (``git hash-object -t tag --literally``;
``git fsck`` says nothing of it), named by a packed-refs without ``^`` lines: git reads the id in
either case (its ``get_oid_hex``) and serves the repository.  hgwire advertised the ``^{}`` line in
capitals, and every v0 clone, and a fetch of main that follows the tag, failed "remote: internal
error" (dulwich's walk of the tag looked the capital id up and found a checksum mismatch).  Clones
and fetches over git:// and HTTP, v0 and v2, now give what ``git-upload-pack`` over file:// gives.  ``git archive --remote``
of the tag was refused "not a tree object", where git daemon sends it, and its web page was not found."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw


def _capital_tag_repo(client: Client, repo: Path, stored: str) -> tuple[str, str]:
    """A bare repository with main, an ordinary tag v1 and the tag ``caps`` of main written in capital
    hex, its refs packed without peeled lines, its objects ``stored`` loose, packed but the tag,
    packed, or packed with a bitmap: (main's id, the capital tag's id)."""
    client.git("init", "-q", "--bare", str(repo))
    client.git("fast-import", "--quiet", cwd=repo, input=(
        b"blob\nmark :1\ndata 2\nb\ncommit refs/heads/main\nmark :2\ncommitter a <a@b> 1700000000 +0000\n"
        b"data 2\nc\nM 644 :1 f\ntag v1\nfrom :2\ntagger a <a@b> 1700000000 +0000\ndata 2\nt\n"))
    main = client.git("rev-parse", "main", cwd=repo).stdout.strip()
    if stored == "tag-loose":
        client.git("repack", "-adq", cwd=repo)
    caps = client.git("hash-object", "-w", "-t", "tag", "--literally", "--stdin", cwd=repo, input=(
        f"object {main.upper()}\ntype commit\ntag caps\ntagger a <a@b> 1700000000 +0000\n\ncaps\n"
    ).encode()).stdout.strip()
    if stored in ("packed", "bitmapped"):
        client.git("repack", "-adq", *(["-b"] if stored == "bitmapped" else []), cwd=repo)
    client.git("pack-refs", "--all", cwd=repo)
    lines = [line for line in (repo / "packed-refs").read_text().splitlines() if not line.startswith(("#", "^"))]
    lines.append(f"{caps} refs/tags/caps")
    (repo / "packed-refs").write_text("".join(line + "\n" for line in sorted(lines, key=lambda x: x.split()[1])))
    return main, caps


def _objects(client: Client, repo: Path) -> list[str]:
    listed = client.git("cat-file", "--batch-all-objects", "--batch-check", cwd=repo).stdout
    return sorted(listed.splitlines())


@pytest.mark.parametrize("stored", ["loose", "tag-loose", "packed", "bitmapped"])
@pytest.mark.parametrize("kind", ["git", "http"])
@pytest.mark.parametrize("version", ["0", "2"])
def test_a_tag_naming_its_object_in_capitals_is_cloned_and_fetched_as_git_serves_it(
        make_server: Callable[..., RunningServer], client: Client, version: str, kind: str,
        stored: str) -> None:
    server = make_server("fs", **{kind: [LOOPBACK]})
    repo = server.root / "caps.git"
    main, caps = _capital_tag_repo(client, repo, stored)
    url = server.url(kind, "caps.git")
    proto = ("-c", f"protocol.version={version}")

    traced = client.git(*proto, "ls-remote", url, env={"GIT_TRACE_PACKET": "1"})
    assert main.upper() not in traced.stderr  # (git's ls-remote prints the id in lower case either way)
    listed = traced.stdout
    reference = client.git(*proto, "ls-remote", f"file://{repo}").stdout
    assert sorted(listed.splitlines()) == sorted(reference.splitlines())
    assert f"{main}\trefs/tags/caps^{{}}" in listed.splitlines() or version == "2"

    ours, theirs = client.cwd / "ours", client.cwd / "theirs"
    client.git(*proto, "clone", "-q", "--mirror", url, str(ours))
    client.git(*proto, "clone", "-q", "--mirror", f"file://{repo}", str(theirs))
    assert client.git("show-ref", cwd=ours).stdout == client.git("show-ref", cwd=theirs).stdout
    assert _objects(client, ours) == _objects(client, theirs)
    client.git("fsck", "--full", cwd=ours)

    fetched = client.cwd / "fetched"
    client.git("init", "-q", str(fetched))
    client.git(*proto, "fetch", "-q", url, "refs/heads/main:refs/remotes/o/main", cwd=fetched)
    assert client.git("rev-parse", "o/main", cwd=fetched).stdout.strip() == main
    tags = client.git("show-ref", "--tags", cwd=fetched).stdout
    assert f"{caps} refs/tags/caps" in tags and "refs/tags/v1" in tags
    client.git("fsck", "--full", cwd=fetched)

    partial = client.cwd / "partial"  # (a filter the generic path serves, dulwich's walk)
    client.git(*proto, "clone", "-q", "--bare", "--filter=tree:1", url, str(partial))
    assert client.git("show-ref", cwd=partial).stdout == client.git("show-ref", cwd=theirs).stdout
    client.git("fsck", "--full", cwd=partial)


def _tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_an_archive_of_a_tag_naming_its_object_in_capitals_is_sent_as_git_sends_it(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "caps.git"
    _capital_tag_repo(client, repo, "loose")
    client.git("config", "daemon.uploadarch", "true", cwd=repo)
    served = subprocess.run(["git", "archive", f"--remote={server.git_url('caps.git')}", "caps"], env=client.env,
                            cwd=client.cwd, capture_output=True, timeout=60, check=False)
    assert served.returncode == 0, served.stderr
    local = subprocess.run(["git", "archive", "caps"], env=client.env, cwd=repo, capture_output=True, check=True)
    assert _tar_files(served.stdout) == _tar_files(local.stdout) == {"f": b"b\n"}


def test_the_web_page_of_a_tag_naming_its_object_in_capitals_shows_its_commit(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    main, _caps = _capital_tag_repo(client, server.root / "caps.git", "loose")
    page = raw(server.port("http"), "GET", "/caps.git/rev/caps", {"Accept": "text/html"})
    assert page.status == 200 and main in page.body.decode()
