"""hgweb's archive downloads, ``/NAME/archive/REV.zip`` (``.tar.gz``, ``.tar.bz2``, ``/PATH``): what
hgwire sends equals what the real ``hg archive`` writes for the same revision (every file's bytes,
exec bits, symbolic links, and ``.hg_archival.txt`` with its tags or latest tag, through merges of
differently tagged branches); only types the repository's hgrc allows, only to those who may pull,
never a secret changeset; every refusal is an HTTP status with its reason."""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import re
import socket
import subprocess
import tarfile
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.interfaces import Kind
from tests.conftest import LOOPBACK, VENV_BIN, Client, RunningServer
from tests.integration.test_hg_http import Answer, raw

Tree = dict[str, tuple[str, bytes]]
"""path -> (kind: "file", "exec" or "link", bytes or link target)."""


def _commit(client: Client, repo: Path, message: str, files: dict[str, bytes], date: int) -> None:
    for name, data in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", f"{date} 0", "-m", message)


@pytest.fixture
def served(make_server: Callable[..., RunningServer], client: Client) -> tuple[RunningServer, Path]:
    """A repository with an executable, a symbolic link, a large file, two named branches tagged
    apart and merged, a secret changeset; archives of every type allowed."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "team" / "proj"
    client.hg("init", str(repo))
    _commit(client, repo, "one", {"a.txt": b"a\n", "bin/run.sh": b"#!/bin/sh\necho hi\n",
                                  "big.bin": bytes(range(256)) * 12_000}, 1_700_000_000)
    (repo / "bin" / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("a.txt")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "1700000100 0", "-m", "exec and link")
    client.hg("tag", "-q", "-R", str(repo), "-u", "t", "-d", "1700000200 0", "v1.0")
    client.hg("branch", "-q", "-R", str(repo), "stable")
    _commit(client, repo, "on stable", {"s.txt": b"s\n"}, 1_600_000_000)  # older, but nearer the merge
    client.hg("tag", "-q", "-R", str(repo), "-u", "t", "-d", "1700000400 0", "v1.1")
    client.hg("update", "-q", "-R", str(repo), "default")
    _commit(client, repo, "default 1", {"d.txt": b"d1\n"}, 1_700_000_500)
    _commit(client, repo, "default 2", {"d.txt": b"d2\n"}, 1_700_000_600)
    client.hg("merge", "-q", "-R", str(repo), "stable")
    client.hg("commit", "-q", "-R", str(repo), "-u", "t", "-d", "1700000700 0", "-m", "merge stable")
    _commit(client, repo, "secret", {"secret.txt": b"s\n"}, 1_700_000_800)
    client.hg("phase", "-q", "-R", str(repo), "--secret", "--force", "-r", "tip")
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip, gz bz2\n")
    return server, repo


def _hg_archive(client: Client, repo: Path, rev: str, out: Path) -> Tree:
    client.hg("archive", "-R", str(repo), "-r", rev, "-t", "files", str(out))
    tree: Tree = {}
    for path in sorted(out.rglob("*")):
        name = str(path.relative_to(out))
        if path.is_symlink():
            tree[name] = ("link", str(path.readlink()).encode())
        elif path.is_file():
            tree[name] = ("exec" if path.stat().st_mode & 0o100 else "file", path.read_bytes())
    return tree


def _from_tar(data: bytes, mode: str) -> tuple[list[str], Tree]:
    tree: Tree = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:
        members = tar.getmembers()
        for member in members:
            _top, _, name = member.name.partition("/")
            if member.issym():
                tree[name] = ("link", member.linkname.encode())
            else:
                extracted = tar.extractfile(member)
                assert extracted is not None
                tree[name] = ("exec" if member.mode & 0o100 else "file", extracted.read())
    return sorted({m.name.partition("/")[0] for m in members}), tree


def _from_zip(data: bytes) -> tuple[list[str], Tree]:
    tree: Tree = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        for info in infos:
            _top, _, name = info.filename.partition("/")
            mode = info.external_attr >> 16
            kind = "link" if mode & 0o170000 == 0o120000 else "exec" if mode & 0o100 else "file"
            tree[name] = (kind, archive.read(info))
    return sorted({i.filename.partition("/")[0] for i in infos}), tree


@pytest.mark.parametrize("rev", ["tip", "v1.0", "stable", "3", "default"])
@pytest.mark.parametrize(("extension", "reader"), [
    ("tar.gz", lambda data: _from_tar(data, "r:gz")),
    ("tar.bz2", lambda data: _from_tar(data, "r:bz2")),
    ("zip", _from_zip),
])
def test_an_archive_holds_what_hg_archive_writes(served: tuple[RunningServer, Path], client: Client, tmp_path: Path,
                                                 rev: str, extension: str, reader: Callable[[bytes], tuple[list[str], Tree]]
                                                 ) -> None:
    server, repo = served
    answer = raw(server.port("http"), "GET", f"/team/proj/archive/{rev}.{extension}")
    assert answer.status == 200, answer.body[:200]
    expected = _hg_archive(client, repo, "max(ancestors(" + (rev if rev != "tip" else "default") + ") and not secret())",
                           tmp_path / "ref")
    tops, tree = reader(answer.body)
    assert tree == expected
    node = client.hg("log", "-R", str(repo), "-r", "max(not secret())", "-T", "{node|short}").stdout
    version = node if rev == "tip" else rev
    assert tops == [f"proj-{version}"]
    assert answer.headers["content-disposition"] == f'attachment; filename="proj-{version}.{extension}"'


def test_the_archival_file_follows_hg_through_a_merge_of_two_tags(served: tuple[RunningServer, Path], client: Client,
                                                                   tmp_path: Path) -> None:
    """Every revision's ``.hg_archival.txt``, hg's own for comparison: the tag itself, the distance
    along the longer side, and at the merge the side with fewer changes since its tag."""
    server, repo = served
    revs = client.hg("log", "-R", str(repo), "-r", "not secret()", "-T", "{rev}\n").stdout.split()
    assert len(revs) >= 7
    for rev in revs:
        answer = raw(server.port("http"), "GET", f"/team/proj/archive/{rev}.zip")
        assert answer.status == 200, answer.body
        _tops, tree = _from_zip(answer.body)
        expected = _hg_archive(client, repo, rev, tmp_path / f"ref-{rev}")
        assert tree[".hg_archival.txt"] == expected[".hg_archival.txt"], rev


def test_a_path_limits_the_archive(served: tuple[RunningServer, Path]) -> None:
    server, _repo = served
    answer = raw(server.port("http"), "GET", "/team/proj/archive/tip.tar.gz/bin")
    assert answer.status == 200
    _tops, tree = _from_tar(answer.body, "r:gz")
    assert sorted(tree) == ["bin/run.sh"] and tree["bin/run.sh"][0] == "exec"  # as hg: no .hg_archival.txt


def test_an_archive_is_byte_for_byte_what_hg_serve_sends(served: tuple[RunningServer, Path], client: Client) -> None:
    """Every type at several revisions, with and without a path, is hg serve's very bytes (its
    tar's pax mtime records, its gzip header at level 9, its zip's extended timestamps), so a
    release archive's checksum is the same from hgwire as from hg serve."""
    server, repo = served
    with _hg_serve(client, repo) as port:
        for rev, extension, path in (("tip", ".tar.gz", ""), ("tip", ".zip", ""), ("tip", ".tar.bz2", "/bin"),
                                     ("v1.0", ".tar.gz", "/bin"), ("stable", ".zip", "/s.txt"), ("0", ".tar.gz", ""),
                                     ("0", ".zip", "/.hg_archival.txt")):
            ours = raw(server.port("http"), "GET", f"/team/proj/archive/{rev}{extension}{path}")
            theirs = raw(port, "GET", f"/archive/{rev}{extension}{path}")
            assert ours.status == theirs.status, (rev, extension, path)
            if theirs.status == 200:
                assert ours.body == theirs.body, (rev, extension, path)


@pytest.mark.parametrize(("target", "status", "reason"), [
    ("/team/proj/archive/nosuch.zip", 404, "unknown revision 'nosuch'"),
    ("/team/proj/archive/tip.zip/no/such/dir", 404, "file(s) not found"),
    ("/team/proj/archive/tip.tar.xz", 404, ""),
    ("/team/other/archive/tip.zip", 404, "not found"),
    ("/team/code.git/archive/tip.zip", 403, "Archive type not allowed"),
])
def test_refusals(served: tuple[RunningServer, Path], target: str, status: int, reason: str) -> None:
    server, _repo = served
    server.backend.create("team/code.git", Kind.GIT)
    answer = raw(server.port("http"), "GET", target)
    assert answer.status == status and reason in answer.body.decode(), (answer.status, answer.body)


def test_a_secret_changeset_is_never_archived(served: tuple[RunningServer, Path], client: Client) -> None:
    server, repo = served
    secret = client.hg("log", "-R", str(repo), "-r", "secret()", "-T", "{node}").stdout
    for key in (secret, secret[:12], client.hg("log", "-R", str(repo), "-r", "secret()", "-T", "{rev}").stdout):
        answer = raw(server.port("http"), "GET", f"/team/proj/archive/{key}.zip")
        assert answer.status == 404, key


def test_only_the_types_the_hgrc_allows_and_only_to_readers(served: tuple[RunningServer, Path]) -> None:
    server, repo = served
    port = server.port("http")
    (repo / ".hg" / "hgrc").write_text("[web]\nallowzip = true\n")
    assert raw(port, "GET", "/team/proj/archive/tip.zip").status == 200
    refused = raw(port, "GET", "/team/proj/archive/tip.tar.gz")
    assert refused.status == 403 and b"Archive type not allowed" in refused.body
    (repo / ".hg" / "hgrc").write_text("")
    assert raw(port, "GET", "/team/proj/archive/tip.zip").status == 403  # hgweb's default: no archives
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip\ndeny_read = *\n")
    assert raw(port, "GET", "/team/proj/archive/tip.zip").status in (401, 403)
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip\n")
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip\n[ui]\narchivemeta = no\n")
    _tops, bare = _from_zip(raw(port, "GET", "/team/proj/archive/tip.zip").body)
    assert ".hg_archival.txt" not in bare and "a.txt" in bare  # as hg archive with archivemeta off
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip\n")
    head = raw(port, "HEAD", "/team/proj/archive/tip.zip")
    assert head.status == 200 and head.body == b"" and head.headers["content-type"] == "application/zip"
    assert raw(port, "POST", "/team/proj/archive/tip.zip").status == 405


def test_files_kept_apart_are_archived_as_hg_serve_with_the_extensions_archives_them(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """A file whose blob is in the ``lfs`` store, and a ``largefiles`` standin, are archived with
    their real bytes under their own names, as ``hg archive`` with the extensions writes them; a
    blob missing from the server refuses the archive with the reason, before any byte."""
    server = make_server("fs", http=[LOOPBACK])
    port = server.port("http")
    lfs = ("--config", "extensions.lfs=", "--config", 'lfs.track=size(">1KB")')
    repo = server.root / "lfsproj"
    client.hg(*lfs, "init", str(repo))
    (repo / "small.txt").write_bytes(b"small\n")
    (repo / "large.bin").write_bytes(bytes(range(256)) * 64)
    client.hg(*lfs, "commit", "-q", "-A", "-R", str(repo), "-u", "t", "-m", "lfs")
    (repo / ".hg" / "hgrc").write_text("[extensions]\nlfs =\n[web]\nallow-archive = zip gz\n")
    expected = _hg_archive(client, repo, "tip", tmp_path / "lfs-ref")  # the extension is on in its hgrc
    assert expected["large.bin"] == ("file", bytes(range(256)) * 64)
    assert _from_zip(raw(port, "GET", "/lfsproj/archive/tip.zip").body)[1] == expected
    assert _from_tar(raw(port, "GET", "/lfsproj/archive/tip.tar.gz").body, "r:gz")[1] == expected
    blob = raw(port, "GET", "/lfsproj/raw-file/tip/large.bin")  # as hg serve with the extension reads it
    assert blob.status == 200 and blob.body == bytes(range(256)) * 64 and blob.headers["content-length"] == "16384"
    listing = raw(port, "GET", "/lfsproj/raw-file/tip").body
    assert listing == b"\n-rw-r--r-- 16384 large.bin\n-rw-r--r-- 6 small.txt\n\n\n"  # the blob's size, not the pointer's

    large = ("--config", "extensions.largefiles=")
    big = server.root / "bigproj"
    client.hg(*large, "init", str(big))
    (big / "notes.txt").write_bytes(b"notes\n")
    (big / "data").mkdir()
    (big / "data" / "blob.bin").write_bytes(b"\x00\x01" * 150_000)  # three of the store's read chunks
    client.hg(*large, "add", "-q", "-R", str(big), str(big / "notes.txt"))
    client.hg(*large, "add", "-q", "--large", "-R", str(big), str(big / "data" / "blob.bin"))
    client.hg(*large, "commit", "-q", "-R", str(big), "-u", "t", "-m", "large")
    (big / ".hg" / "hgrc").write_text("[extensions]\nlargefiles =\n[web]\nallow-archive = zip bz2\n")
    expected = _hg_archive(client, big, "tip", tmp_path / "large-ref")
    assert expected["data/blob.bin"] == ("file", b"\x00\x01" * 150_000) and ".hglf/data/blob.bin" not in expected
    assert _from_zip(raw(port, "GET", "/bigproj/archive/tip.zip").body)[1] == expected
    assert _from_tar(raw(port, "GET", "/bigproj/archive/tip.tar.bz2").body, "r:bz2")[1] == expected
    assert sorted(_from_zip(raw(port, "GET", "/bigproj/archive/tip.zip/data").body)[1]) == ["data/blob.bin"]

    for blob in (repo / ".hg" / "store" / "lfs" / "objects").rglob("*"):
        if blob.is_file():
            blob.unlink()
    refused = raw(port, "GET", "/lfsproj/archive/tip.zip")
    assert refused.status == 403 and b"large.bin is kept in LFS and its blob is not on this server" in refused.body
    assert raw(port, "GET", "/lfsproj/raw-file/tip/large.bin").status == 403
    small = raw(port, "GET", "/lfsproj/archive/tip.zip/small.txt")  # what the server has is served
    assert small.status == 200 and _from_zip(small.body)[1]["small.txt"] == ("file", b"small\n")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _hg_serve(client: Client, repo: Path, *options: str) -> Iterator[int]:
    """The real ``hg serve`` of ``repo`` (with ``options``, ``--config`` ones say) on a free port,
    once it answers; stopped afterwards."""
    port = _free_port()
    reference = subprocess.Popen([os.path.join(VENV_BIN, "hg"), "serve", "-R", str(repo), "-a", "127.0.0.1",
                                  "-p", str(port), *options], env=client.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                raw(port, "GET", "/json-tags")
                break
            except OSError:
                assert time.monotonic() < deadline, "hg serve did not start"
                time.sleep(0.1)
        yield port
    finally:
        reference.terminate()
        reference.wait(timeout=30)


def test_raw_files_and_listings_are_what_hg_serve_answers(served: tuple[RunningServer, Path], client: Client) -> None:
    """hgweb's ``raw-file``, side by side with the real ``hg serve`` on the same repository: a file's
    bytes (``application/binary``, its name inline), a symbolic link's target, a directory's and the
    root's listings; an unknown path or revision (with hgweb's words), and the secret changeset, are 404."""
    server, repo = served
    with _hg_serve(client, repo) as port:
        for target in ("tip/a.txt", "tip/link", "v1.0/bin/run.sh", "stable/s.txt", "3/big.bin", "tip", "tip/bin",
                       "v1.0/", "default/bin/"):
            ours = raw(server.port("http"), "GET", f"/team/proj/raw-file/{target}")
            theirs = raw(port, "GET", f"/raw-file/{target}")
            assert (ours.status, ours.body) == (theirs.status, theirs.body), target
            for header in ("content-disposition",):
                assert ours.headers.get(header) == theirs.headers.get(header), target
            assert ours.headers["content-type"].split(";")[0] == theirs.headers["content-type"].split(";")[0]
        for target in ("raw-file/tip/no/such", "raw-file/nosuch/a.txt", "file/tip/nope?style=raw",
                       "file/nosuch/a.txt?style=raw"):  # the raw style's errors too: "\nerror: ...\n"
            ours = raw(server.port("http"), "GET", f"/team/proj/{target}")
            theirs = raw(port, "GET", f"/{target}")
            assert (ours.status, ours.body) == (404, theirs.body), target
    secret = client.hg("log", "-R", str(repo), "-r", "secret()", "-T", "{node}").stdout
    assert raw(server.port("http"), "GET", f"/team/proj/raw-file/{secret}/secret.txt").status == 404
    head = raw(server.port("http"), "HEAD", "/team/proj/raw-file/tip/a.txt")
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == "2"


def test_a_path_given_as_the_file_argument_is_taken_as_hg_serve_takes_it(served: tuple[RunningServer, Path],
                                                                          client: Client) -> None:
    """hgweb takes a page's path from ``?file=PATH`` when its URL names none after the revision
    (``/NAME/archive/tip.zip?file=src``): hgwire sent the whole revision's archive, the root's
    listing for a raw file, the changeset's pages for a file's; now hg serve's answer, byte for byte."""
    server, repo = served
    with _hg_serve(client, repo) as port:
        for target in ("archive/tip.tar.gz?file=bin", "archive/v1.0.zip?file=bin/run.sh",
                       "archive/tip.zip?file=no/such", "archive/tip.zip/bin?file=a.txt",
                       "raw-file/tip?file=a.txt", "raw-file/v1.0?file=bin", "raw-file/tip/a.txt?file=d.txt",
                       "raw-file/tip?file=no/such", "file/tip?file=bin&style=raw",
                       "annotate/tip?file=d.txt&style=json", "filelog/tip?file=d.txt&style=json",
                       "comparison/tip?file=d.txt&style=json", "diff/tip?file=d.txt&style=raw"):
            ours = raw(server.port("http"), "GET", f"/team/proj/{target}")
            theirs = raw(port, "GET", f"/{target}")
            assert ours.status == theirs.status, (target, ours.status, theirs.status)
            if theirs.status == 200:
                assert ours.body == theirs.body, target


def test_archives_are_made_a_few_at_a_time_and_every_slot_comes_back(
        make_server: Callable[..., RunningServer], client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """One slot, nobody may wait: while a download stalls (its client reads nothing), another is
    answered 503 with the reason; once that client goes, the slot is free again, and after refusals,
    HEADs and a finished download every slot is back."""
    from twisted.internet import defer

    from gateway import hg_archive

    slots = defer.DeferredSemaphore(1)
    monkeypatch.setattr(hg_archive, "_SLOTS", slots)
    monkeypatch.setattr(hg_archive, "MAX_WAITING_ARCHIVES", 0)
    server = make_server("fs", http=[LOOPBACK])
    port = server.port("http")
    repo = server.root / "heavy"
    client.hg("init", str(repo))
    (repo / "noise.bin").write_bytes(os.urandom(48 << 20))  # more than the socket buffers hold
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-m", "noise")
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip\n")

    stalled = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    stalled.request("GET", "/heavy/archive/tip.zip")
    assert stalled.getresponse().status == 200  # its headers; the body is left unread
    busy = raw(port, "GET", "/heavy/archive/tip.zip")
    assert busy.status == 503 and b"too many archives are being made right now" in busy.body
    stalled.close()
    deadline = time.monotonic() + 30
    while slots.tokens != 1:
        assert time.monotonic() < deadline, "the stalled download kept its slot"
        time.sleep(0.05)
    assert raw(port, "GET", "/heavy/archive/nosuch.zip").status == 404
    assert raw(port, "HEAD", "/heavy/archive/tip.zip").status == 200
    whole = raw(port, "GET", "/heavy/archive/tip.zip")
    assert whole.status == 200 and len(_from_zip(whole.body)[1]["noise.bin"][1]) == 48 << 20
    assert slots.tokens == 1


def test_the_json_pages_are_what_hg_serve_writes(served: tuple[RunningServer, Path], client: Client) -> None:
    """``json-tags``, ``json-bookmarks`` and ``json-branches`` side by side with the real ``hg serve``:
    byte for byte, with a local tag, a tag name that needs escaping, bookmarks (one on the secret
    changeset, one divergent), a closed branch and a merged one."""
    server, repo = served
    hg = ("-R", str(repo))
    client.hg("update", "-q", *hg, "-r", "max(not secret())")  # a tag committed on the secret head would be secret too
    client.hg("tag", "-q", "-f", *hg, "-u", "t", "-d", "1700000900 0", "-r", "0", "caf\u00e9-<1>")
    client.hg("tag", "-q", *hg, "--local", "-r", "1", "mine")
    client.hg("bookmark", "-q", *hg, "-r", "0", "first")
    client.hg("bookmark", "-q", *hg, "-r", "stable", "release")
    client.hg("bookmark", "-q", *hg, "-r", "stable", "release@default")
    client.hg("bookmark", "-q", *hg, "-r", "secret()", "hidden-work")
    client.hg("update", "-q", *hg, "-r", "3")
    client.hg("branch", "-q", *hg, "closing")
    _commit(client, repo, "to be closed", {"c.txt": b"c\n"}, 1_700_001_000)
    client.hg("commit", "-q", *hg, "-u", "t", "-d", "1700001100 0", "--close-branch", "-m", "closed")
    with _hg_serve(client, repo) as port:
        for page in ("json-tags", "json-bookmarks", "json-branches"):
            ours = raw(server.port("http"), "GET", f"/team/proj/{page}")
            theirs = raw(port, "GET", f"/{page}")
            assert ours.status == theirs.status == 200
            assert ours.body == theirs.body, page
            assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/json"
    assert b"hidden-work" not in raw(server.port("http"), "GET", "/team/proj/json-bookmarks").body
    assert b"\\u003c1\\u003e" in raw(server.port("http"), "GET", "/team/proj/json-tags").body
    assert raw(server.port("http"), "POST", "/team/proj/json-tags").status == 405


def _patches_repo(client: Client, repo: Path) -> None:
    """Changes of every shape a plain diff shows: two hunks in one file, hunks joined by their
    context, a removal, an addition without a last newline, a change among repeated lines, a
    named branch and its merge, a binary file, time zones east and west."""
    client.hg("init", str(repo))
    numbered = b"".join(b"line %d\n" % i for i in range(1, 31))
    _commit(client, repo, "start", {"f.txt": numbered, "g.txt": b"gone soon\n", "r.txt": b"a\nb\n" * 3},
            1_700_000_000)
    edited = numbered.replace(b"line 2\n", b"line two\n").replace(b"line 25\n", b"line 25\nline 25b\n")
    edited = edited.replace(b"line 9\n", b"line nine\n").replace(b"line 14\n", b"")
    client.hg("rm", "-q", "-R", str(repo), str(repo / "g.txt"))
    (repo / "f.txt").write_bytes(edited)
    (repo / "h.txt").write_bytes(b"no newline at the end")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "Ann <ann@example.com>", "-d", "1700000100 -3600",
              "-m", "edits\n\nwith a body")
    _commit(client, repo, "repeated", {"r.txt": b"a\nb\n" * 4}, 1_700_000_200)
    client.hg("branch", "-q", "-R", str(repo), "side")
    _commit(client, repo, "on side", {"f.txt": edited + b"side end\n"}, 1_700_000_300)
    client.hg("update", "-q", "-R", str(repo), "default")
    _commit(client, repo, "on default", {"h.txt": b"no newline at the end\nnow one\n"}, 1_700_000_400)
    client.hg("merge", "-q", "-R", str(repo), "side")
    client.hg("commit", "-q", "-R", str(repo), "-u", "t", "-d", "1700000500 7200", "-m", "merge side")
    _commit(client, repo, "binary", {"b.bin": b"\0\1\2"}, 1_700_000_600)
    client.hg("copy", "-q", "-R", str(repo), str(repo / "f.txt"), str(repo / "copied.txt"))
    _commit(client, repo, "a copy, and a text that starts as hg's metadata does",
            {"esc.txt": b"\x01\nstarts with the escape\n"}, 1_700_000_700)


def test_raw_rev_is_the_patch_hg_serve_sends_and_it_imports_exactly(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``raw-rev`` side by side with the real ``hg serve`` (every changeset's bytes equal, merge and
    binary included), and each patch of a non-binary changeset, given to ``hg import --exact`` on its
    first parent, makes the very same changeset (its node id is checked by hg)."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "patches"
    _patches_repo(client, repo)
    count = len(client.hg("log", "-R", str(repo), "-T", "{rev}\n").stdout.split())
    with _hg_serve(client, repo) as port:
        patches = {}
        for rev in range(count):
            ours = raw(server.port("http"), "GET", f"/patches/raw-rev/{rev}")
            theirs = raw(port, "GET", f"/raw-rev/{rev}")
            assert ours.status == theirs.status == 200
            assert ours.body == theirs.body, rev
            assert ours.headers["content-type"].lower() == theirs.headers["content-type"].lower()
            patches[rev] = ours.body
        assert raw(server.port("http"), "GET", "/patches/raw-rev/nosuch").status == 404
        for listing in ("tip", "0", "tip/copied.txt", "tip/esc.txt"):  # sizes of a copy and of an escaped text too
            ours = raw(server.port("http"), "GET", f"/patches/raw-file/{listing}")
            assert ours.body == raw(port, "GET", f"/raw-file/{listing}").body, listing
        from backends.hg import web

        with pytest.MonkeyPatch.context() as patch_limit:
            patch_limit.setattr(web, "MAX_PATCH_TEXT", 100)  # the first changeset's files hold more
            refused = raw(server.port("http"), "GET", "/patches/raw-rev/0")
        assert refused.status == 403 and b"its diff is not served; clone the repository" in refused.body
    for rev in (1, 2, 4):  # two hunks, a removal, no last newline; repeated lines; a time zone east (a plain diff
        # cannot carry a copy: hg serve's own patch of the copy does not import exactly either)
        parent = client.hg("log", "-R", str(repo), "-r", f"p1({rev})", "-T", "{node}").stdout
        target = tmp_path / f"import-{rev}"
        client.hg("clone", "-q", "-r", parent, str(repo), str(target))
        patch = tmp_path / f"{rev}.patch"
        patch.write_bytes(patches[rev])
        client.hg("import", "-q", "--exact", "-R", str(target), str(patch))
        node = client.hg("log", "-R", str(repo), "-r", str(rev), "-T", "{node}").stdout
        assert client.hg("log", "-R", str(target), "-r", "tip", "-T", "{node}").stdout == node


def test_hg_import_of_a_changeset_page_applies_its_patch_as_from_hg_serve(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """``hg import http://HOST/NAME/rev/REV`` (a changeset's page, as a browser shows it): hgweb
    answers hg's User-Agent with the raw style, the patch; hgwire sent the HTML page, and hg said
    "no diffs found".  Other clients still get the page."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "patches"
    _patches_repo(client, repo)
    agent = {"User-Agent": "mercurial/proto-1.0 (Mercurial 7.2.4)"}
    with _hg_serve(client, repo) as port:
        for target in ("rev/1", "rev/2?style=json", "rev/tip"):
            ours = raw(server.port("http"), "GET", f"/patches/{target}", agent)
            theirs = raw(port, "GET", f"/{target}", agent)
            assert (ours.status, ours.body) == (theirs.status, theirs.body), target
    assert raw(server.port("http"), "GET", "/patches/rev/1").body.lstrip().startswith(b"<!DOCTYPE html>")
    parent = client.hg("log", "-R", str(repo), "-r", "p1(1)", "-T", "{node}").stdout
    target = tmp_path / "import"
    client.hg("clone", "-q", "-r", parent, str(repo), str(target))
    client.hg("import", "-q", "--exact", "-R", str(target), f"http://127.0.0.1:{server.port('http')}/patches/rev/1")
    node = client.hg("log", "-R", str(repo), "-r", "1", "-T", "{node}").stdout
    assert client.hg("log", "-R", str(target), "-r", "tip", "-T", "{node}").stdout == node


def test_the_hgrc_s_web_name_names_archives_feeds_and_the_index_as_hg_serve(
        served: tuple[RunningServer, Path], client: Client, tmp_path: Path) -> None:
    """``[web] name`` of the repository's hgrc is the name hgweb gives it: an archive's top
    directory and file name are hg serve's (alone and under ``--web-conf``), byte for byte, and so
    are the feeds' titles and the index's name, whose link stays the repository's path."""
    server, repo = served
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip, gz bz2\nname = nice-a\n")
    web_conf = tmp_path / "web.conf"
    web_conf.write_text(f"[paths]\nteam/proj = {repo}\n")
    ours = raw(server.port("http"), "GET", "/team/proj/archive/tip.tar.gz")
    for options, prefix in (((), ""), (("--web-conf", str(web_conf)), "/team/proj")):
        with _hg_serve(client, repo, *options) as port:
            theirs = raw(port, "GET", f"{prefix}/archive/tip.tar.gz")
            assert theirs.status == ours.status == 200, options
            assert _file_name(ours) == _file_name(theirs), options  # hg serve leaves it unquoted
            assert ours.body == theirs.body, options
            if options:
                index = raw(port, "GET", "/?style=json").body
    assert _file_name(ours).startswith("nice-a-") and _from_tar(ours.body, "r:gz")[0] == [_file_name(ours)[:-7]]
    assert b'"name": "nice-a"' in index
    ours_index = raw(server.port("http"), "GET", "/?style=json").body
    assert b'"name": "nice-a"' in ours_index and b'"name": "team/proj"' not in ours_index
    assert b'/team/proj">nice-a</a>' in raw(server.port("http"), "GET", "/", {"Accept": "text/html"}).body
    assert b"<title>nice-a Changelog</title>" in raw(server.port("http"), "GET", "/team/proj/atom-log").body
    assert b"<title>nice-a: tags</title>" in raw(server.port("http"), "GET", "/team/proj/rss-tags").body
    assert b"<title>nice-a: summary</title>" in raw(server.port("http"), "GET", "/team/proj",
                                                     {"Accept": "text/html"}).body


def _file_name(answer: Answer) -> str:
    """The file name of an archive's ``Content-Disposition``, quoted or not."""
    return str(answer.headers["content-disposition"].partition("filename=")[2].strip('"'))


def test_a_raw_file_s_name_beyond_ascii_is_given_as_rfc_6266_says(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """``café.txt`` of either kind is ``filename*=UTF-8''caf%C3%A9.txt`` (browsers save it by that)
    with an ASCII ``filename="caf_.txt"`` for ``curl -J``; a name that is not UTF-8 has U+FFFD there,
    and a quote, ``;`` or newline never leaves the quoted string.  An ASCII name stays as hgweb's."""
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "names"
    client.hg("init", str(repo))
    for name in ("café.txt".encode(), b"caf\xe9.txt", b'q"u;o\\te.txt', b"plain.txt"):
        with open(bytes(repo) + b"/" + name, "wb") as f:
            f.write(b"x\n")
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "1700000000 0", "-m", "names")
    work = client.cwd / "names-work"
    client.git("init", "-q", "-b", "main", str(work))
    for name in ("café.txt".encode(), b"nl\nx.txt"):
        with open(bytes(work) + b"/" + name, "wb") as f:
            f.write(b"x\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-qm", "names", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(server.root / "names.git"))

    def disposition(path: str) -> str:
        answer = raw(server.port("http"), "GET", path)
        assert answer.status == 200 and answer.body == b"x\n", path
        return str(answer.headers["content-disposition"])

    def saved_as(header: str) -> str:  # as a browser reads it: filename* over filename (RFC 6266 §4.3)
        extended = re.search(r"; filename\*=UTF-8''([^;\s]+)$", header)
        assert extended is not None, header
        return urllib.parse.unquote(extended[1], errors="strict")

    for path in ("/names/raw-file/tip/caf%C3%A9.txt", "/names.git/raw-file/main/caf%C3%A9.txt"):
        header = disposition(path)
        assert header == "inline; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt", path
        assert saved_as(header) == "café.txt"
    assert saved_as(disposition("/names/raw-file/tip/caf%E9.txt")) == "caf\ufffd.txt"
    assert disposition("/names/raw-file/tip/q%22u%3Bo%5Cte.txt") == 'inline; filename="q\\"u;o\\\\te.txt"'
    header = disposition("/names.git/raw-file/main/nl%0Ax.txt")
    assert "\n" not in header and saved_as(header) == "nl\nx.txt"
    assert header.startswith('inline; filename="nl_x.txt"; ')
    assert disposition("/names/raw-file/tip/plain.txt") == 'inline; filename="plain.txt"'


def _tag_and_again(port: int, path: str) -> str:
    """The ``ETag`` a raw file or archive is sent with, checked by asking again with it (GET and
    HEAD: 304, no body) and with another (200)."""
    first = raw(port, "GET", path)
    assert first.status == 200, (path, first.status)
    tag = first.headers["etag"]
    for method in ("GET", "HEAD"):
        again = raw(port, method, path, {"If-None-Match": tag})
        assert (again.status, again.body, again.headers.get("etag")) == (304, b"", tag), (method, path)
    assert raw(port, "GET", path, {"If-None-Match": '"other", W/"else"'}).status == 200
    return tag


def test_raw_files_and_archives_carry_an_etag_of_what_is_served(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """A raw file's ``ETag`` is its file's id (hg's file node, git's blob id), so ``tip`` keeps it
    while the file is unchanged and changes with it; a listing's and an archive's follow their
    bytes (an archive's ``.hg_archival.txt`` too: a new tag of the archived changeset changes it).
    hg serve tags both with the repository's modification time: every push changed them."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[git]\narchives = ["zip"]\n')
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy))
    port = server.port("http")
    repo = server.root / "tagged"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip\n")
    _commit(client, repo, "one", {"a.txt": b"a\n", "d/b.txt": b"b\n"}, 1700000000)
    manifest = client.hg("manifest", "--debug", "-R", str(repo), "-r", "tip").stdout.splitlines()
    node = next(line.split()[0] for line in manifest if line.endswith(" a.txt"))  # hg's file node
    a_tag = _tag_and_again(port, "/tagged/raw-file/tip/a.txt")
    assert a_tag == f'"{node}"'
    listing = _tag_and_again(port, "/tagged/raw-file/tip/d")
    archive = _tag_and_again(port, "/tagged/archive/tip.zip")
    first = _tag_and_again(port, "/tagged/archive/0.zip")
    assert archive.startswith('W/"') and first.startswith('W/"')
    _commit(client, repo, "two", {"d/c.txt": b"c\n"}, 1700000100)  # a.txt unchanged, d changed
    assert _tag_and_again(port, "/tagged/raw-file/tip/a.txt") == a_tag
    assert raw(port, "GET", "/tagged/raw-file/tip/a.txt", {"If-None-Match": a_tag}).status == 304
    assert _tag_and_again(port, "/tagged/raw-file/tip/d") != listing
    assert _tag_and_again(port, "/tagged/archive/tip.zip") != archive  # tip moved: what it names is new
    assert _tag_and_again(port, "/tagged/archive/0.zip") == first
    client.hg("tag", "-q", "-R", str(repo), "-r", "0", "-u", "t", "-d", "1700000200 0", "v0")
    assert _tag_and_again(port, "/tagged/archive/0.zip") != first  # its .hg_archival.txt names v0 now
    _commit(client, repo, "three", {"a.txt": b"A\n"}, 1700000300)
    changed = raw(port, "GET", "/tagged/raw-file/tip/a.txt", {"If-None-Match": a_tag})
    assert changed.status == 200 and changed.body == b"A\n" and changed.headers["etag"] != a_tag

    work = tmp_path / "gitwork"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-qm", "one", cwd=work)
    client.git("clone", "-q", "--bare", str(work), str(server.root / "tagged.git"))
    blob = client.git("rev-parse", "HEAD:a.txt", cwd=work).stdout.strip()
    assert _tag_and_again(port, "/tagged.git/raw-file/main/a.txt") == f'"{blob}"'
    git_archive = _tag_and_again(port, "/tagged.git/archive/main.zip")
    (work / "b.txt").write_text("b\n")
    client.git("add", "-A", cwd=work)
    client.git("commit", "-qm", "two", cwd=work)
    client.git("push", "-q", str(server.root / "tagged.git"), "main", cwd=work)
    assert _tag_and_again(port, "/tagged.git/raw-file/main/a.txt") == f'"{blob}"'
    assert _tag_and_again(port, "/tagged.git/archive/main.zip") != git_archive
