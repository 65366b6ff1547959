"""A large blob's ``raw-file``: stored whole in a pack, it is inflated a piece at a time as it is
sent, whatever its size (it was read whole: 645 MB of server RSS for a 200 MB blob); stored as a
delta it is read whole, and one over ``MAX_RAW_FILE`` is refused before anything is read."""

from __future__ import annotations

import binascii
import random
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from backends import git_fastpack, git_web
from backends.git_objects import PIECE_STEP, CorruptPack, blob_pieces
from backends.git_packindex import read_index
from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_git_daemon import commit, started_repo


def _text(size: int) -> str:
    rng = random.Random(4)
    lines = []
    total = 0
    while total < size:
        lines.append(f"{len(lines)} {rng.choice(['red', 'green', 'blue']) * 5}\n")
        total += len(lines[-1])
    return "".join(lines)


def _large_history(server: RunningServer, client: Client) -> tuple[bytes, bytes, bytes]:
    """A repository ``big`` with a 3 MB random file and a 2 MB text changed once (so that git's
    pack keeps one of its two versions as a delta); the noise, and the text before and after."""
    _url, work = started_repo(server, client, "big", push=True)
    noise = random.Random(8).randbytes(3 * PIECE_STEP + 11)
    (work / "noise.bin").write_bytes(noise)
    client.git("add", "noise.bin", cwd=work)
    before = _text(2 * PIECE_STEP)
    commit(client, work, "text.txt", before, "large files")
    after = before[:PIECE_STEP] + "a changed line\n" + before[PIECE_STEP:]
    commit(client, work, "text.txt", after, "a change")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    return noise, before.encode(), after.encode()


def _get(url: str) -> tuple[int, bytes, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, answer.read(), answer.headers["Content-Length"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), None


def _blob_id(repo: Path, spec: str, client: Client) -> bytes:
    return client.git("--git-dir", str(repo), "rev-parse", spec).stdout.strip().encode()


def _objects_read(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The ids of the objects the web pages read from now on."""
    read: list[bytes] = []
    original = git_web.GitPages._object

    def recording(self: git_web.GitPages, oid: bytes) -> Any:
        read.append(oid)
        return original(self, oid)

    monkeypatch.setattr(git_web.GitPages, "_object", recording)
    return read


def test_large_blobs_are_sent_whole_and_a_pack_s_whole_one_a_piece_at_a_time(
        make_server: Any, client: Client) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    noise, before, after = _large_history(server, client)
    base = server.url("http", "big.git/raw-file/")
    repo = server.root / "big.git"
    first = _blob_id(repo, "main~1", client).decode()
    for spec, expected in (("main/noise.bin", noise), ("main/text.txt", after), (f"{first}/text.txt", before)):
        status, body, length = _get(base + spec)
        assert (status, length) == (200, str(len(expected))), spec
        assert body == expected, spec
    store = Repo(str(repo)).object_store
    whole = blob_pieces(store, _blob_id(repo, "main:noise.bin", client))
    assert whole is not None and whole[0] == len(noise)
    got = list(whole[1])
    assert b"".join(got) == noise and max(map(len, got)) <= PIECE_STEP
    stored = [blob_pieces(store, _blob_id(repo, spec, client)) for spec in ("main:text.txt", "main~1:text.txt")]
    assert sum(p is None for p in stored) == 1  # git keeps one version as a delta of the other
    for p in stored:
        if p is not None:
            p[1].close()  # (its reader let go)


def test_a_blob_too_large_to_read_whole_is_refused_before_it_is_read(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    noise, _before, _after = _large_history(server, client)
    repo = server.root / "big.git"
    store = Repo(str(repo)).object_store
    delta_spec = next(spec for spec in ("main:text.txt", "main~1:text.txt")
                      if blob_pieces(store, _blob_id(repo, spec, client)) is None)
    monkeypatch.setattr(git_web, "MAX_RAW_FILE", PIECE_STEP)
    read = _objects_read(monkeypatch)
    base = server.url("http", "big.git/raw-file/")
    commit_id = _blob_id(repo, delta_spec.partition(":")[0], client).decode()
    status, body, _length = _get(base + commit_id + "/text.txt")
    assert status >= 400 and b"clone the repository" in body
    assert _blob_id(repo, delta_spec, client) not in read
    status, body, _length = _get(base + "main/noise.bin")  # stored whole: any size
    assert status == 200 and body == noise


def test_a_tree_s_listing_reads_none_of_its_blobs(make_server: Any, client: Client,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``raw-file`` of a directory gives each file's size from its pack entry's headers, as the
    file page does: it inflated every blob (a directory of 100,000 small files: 2.4 s of CPU, 0.5 s now)."""
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    noise, _before, after = _large_history(server, client)
    repo = server.root / "big.git"
    client.git("--git-dir", str(repo), "fsck", "--full")
    read = _objects_read(monkeypatch)
    status, body, _length = _get(server.url("http", "big.git/raw-file/main/"))
    assert (status, body) == (200, b"\n-rw-r--r-- 2 a.txt\n-rw-r--r-- %d noise.bin\n-rw-r--r-- %d text.txt\n\n\n"
                              % (len(noise), len(after)))
    assert not {_blob_id(repo, f"main:{name}", client) for name in ("noise.bin", "text.txt")} & set(read)


@pytest.mark.parametrize("damage", ["bytes", "size"])
def test_a_damaged_blob_entry_is_a_corrupt_pack_when_read(make_server: Any, client: Client, tmp_path: Path,
                                                          damage: str) -> None:
    """Bytes of its zlib stream overwritten, or a size in its header one less than it inflates to."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    noise, _before, _after = _large_history(server, client)
    copy = tmp_path / "copy.git"
    shutil.copytree(server.root / "big.git", copy)
    oid = _blob_id(copy, "main:noise.bin", client)
    piece = noise[PIECE_STEP:PIECE_STEP + 64]  # stored as it is: zlib keeps random bytes verbatim
    pack = next(p for p in (copy / "objects" / "pack").glob("*.pack") if piece in p.read_bytes())
    data = bytearray(pack.read_bytes())
    if damage == "bytes":
        at = data.find(piece)
        data[at:at + 64] = bytes(64)
    else:
        view = read_index(str(pack.with_suffix(".idx")), str(pack))
        offset = view.offsets[view.position(binascii.unhexlify(oid))]
        assert data[offset] & 0x0F == len(noise) & 0x0F == 0x0B
        data[offset] -= 1
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    whole = blob_pieces(Repo(str(copy)).object_store, oid)
    assert whole is not None
    with pytest.raises(CorruptPack):
        b"".join(whole[1])


def test_pages_refuse_a_file_too_large_for_them_before_reading_it(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file, annotate and diff pages (and their JSON) of a file over their limits are refused
    from the sizes in its pack entry's headers: no such blob is read (a 200 MB one was read whole,
    up to 1 GB of server RSS and 5.7 s, to be refused)."""
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    _large_history(server, client)
    repo = server.root / "big.git"
    large = {_blob_id(repo, spec, client) for spec in ("main:noise.bin", "main:text.txt", "main~1:text.txt")}
    monkeypatch.setattr(git_web, "MAX_FILE_TEXT", PIECE_STEP)
    monkeypatch.setattr(git_web, "MAX_PATCH_TEXT", PIECE_STEP)
    read = _objects_read(monkeypatch)
    base = server.url("http", "big.git/")
    for page in ("file/main/noise.bin", "json-file/main/text.txt", "annotate/main/text.txt",
                 "json-annotate/main/noise.bin", "rev/main", "json-rev/main", "diff/main/text.txt"):
        status, body, _length = _get(base + page)
        assert status == 403 and b"clone the repository" in body, (page, status, body[:200])
    assert large.isdisjoint(read)
    status, body, _length = _get(base + "file/main/a.txt")  # a small one is shown as before
    assert status == 200 and b"a" in body


@pytest.mark.parametrize("proto", ["git", "http"])
def test_a_fetch_of_a_large_object_sent_whole_hands_it_out_a_chunk_at_a_time(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch, proto: str) -> None:
    """A 3 MB blob the server holds loose goes out whole (resolved, compressed): the fetch's pack
    reached the transport as one write that size; it goes out a chunk at a time and fsck passes."""
    server: RunningServer = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])
    _noise, _before, _after = _large_history(server, client)
    work = client.cwd / "big"
    client.git("pull", "-q", "origin", "main", cwd=work)
    repo = server.root / "big.git"
    loose = client.cwd / "loose.bin"
    loose.write_bytes(random.Random(9).randbytes(3 << 20))
    blob = client.git("--git-dir", str(repo), "hash-object", "-w", str(loose)).stdout.strip()
    listing = client.git("--git-dir", str(repo), "ls-tree", "main").stdout + f"100644 blob {blob}\tloose.bin\n"
    tree = client.git("--git-dir", str(repo), "mktree", input=listing.encode()).stdout.strip()
    tip = client.git("--git-dir", str(repo), "commit-tree", tree, "-p", "main", "-m", "loose").stdout.strip()
    client.git("--git-dir", str(repo), "update-ref", "refs/heads/main", tip)
    largest: list[int] = []
    original = git_fastpack.write_pack

    def recording(*args: Any, **kw: Any) -> Any:
        for chunk in original(*args, **kw):
            largest.append(len(chunk))
            yield chunk

    monkeypatch.setattr(git_fastpack, "write_pack", recording)
    client.git("fetch", "-q", server.url(proto, "big.git") if proto == "http" else server.git_url("big"),
               "main", cwd=work)
    assert client.git("rev-parse", "FETCH_HEAD", cwd=work).stdout.strip() == tip
    client.git("fsck", "--full", "--strict", cwd=work)
    assert largest and max(largest) <= git_fastpack.DEFAULT_CHUNK_SIZE
