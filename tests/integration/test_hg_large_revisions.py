"""Files of many megabytes in an hg repository (no largefiles): a revision stored whole is sent a
piece at a time as it is read, never held whole by the server, and a pushed one is stored once
split, compressed in steps; clients get every byte, and ``hg verify`` holds on both sides."""

from __future__ import annotations

import json
import random
import struct
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import backends.hg as hgstore
from backends.hg import archive as hg_archive
from backends.hg import web as hg_web
from backends.hg.revlog import FLAG_INLINE, MAX_INLINE, TEXT_STEP, Revlog
from backends.hg.vfs import FsVfs
from backends.interfaces import DeltaMode, RevisionGroup, TextPieces, delta_bytes
from protocols.changegroup import ChangegroupDecoder, StreamReader, encode_changegroup
from tests.conftest import Client
from tests.integration.test_full_disk import _hg_over_http

TEXT_SIZE = 9 * TEXT_STEP + 4321


def _text(size: int) -> bytes:
    rng = random.Random(5)
    lines = []
    total = 0
    while total < size:
        line = b"%d %s\n" % (len(lines), rng.choice([b"one", b"two", b"three"]) * 4)
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def _big_history(client: Client, work: Path) -> tuple[bytes, bytes, bytes]:
    """Two changesets in ``work``: a 9 MB text and a 3 MB random file, then the text changed in
    its middle (a delta).  The two texts and the random bytes."""
    text = _text(TEXT_SIZE)
    noise = random.Random(9).randbytes(3 * TEXT_STEP + 7)
    (work / "big.txt").write_bytes(text)
    (work / "noise.bin").write_bytes(noise)
    client.hg("commit", "-q", "-A", "-m", "big", "-u", "u", cwd=work)
    changed = text[: TEXT_SIZE // 2] + b"a line in the middle\n" + text[TEXT_SIZE // 2:]
    (work / "big.txt").write_bytes(changed)
    client.hg("commit", "-q", "-m", "changed", "-u", "u", cwd=work)
    return text, changed, noise


def test_a_repository_of_large_files_is_pushed_and_cloned_whole_over_http(
        make_server: Any, client: Client, tmp_path: Path) -> None:
    server, url, work = _hg_over_http(make_server, client, tmp_path)
    text, changed, noise = _big_history(client, work)
    client.hg("push", "-q", url, cwd=work)
    repo = server.root / "h"
    client.hg("verify", "-q", cwd=repo)
    data = repo / ".hg" / "store" / "data"
    for name in ("big.txt", "noise.bin"):  # split before their first revision was written, not after
        (header,) = struct.unpack(">I", (data / f"{name}.i").read_bytes()[:4])
        assert not header & FLAG_INLINE
    assert (data / "big.txt.d").stat().st_size < TEXT_SIZE // 3  # compressed (in steps)
    assert (data / "noise.bin.d").stat().st_size == len(noise) + 1  # stored as it is ("u")
    clone = tmp_path / "clone"
    client.hg("clone", "-q", url.replace("alice:pw@", ""), str(clone))
    client.hg("verify", "-q", cwd=clone)
    assert (clone / "big.txt").read_bytes() == changed
    assert (clone / "noise.bin").read_bytes() == noise
    client.hg("cat", "-r", "1", "-o", str(tmp_path / "first.txt"), "big.txt", cwd=clone)
    assert (tmp_path / "first.txt").read_bytes() == text


def test_a_clone_s_changegroup_carries_a_large_stored_text_in_pieces(client: Client, tmp_path: Path) -> None:
    work = tmp_path / "work"
    client.hg("init", str(work))
    _big_history(client, work)
    repo = hgstore.open_repository(str(work), "work")
    nodes = repo.missing([], repo.heads())
    streamed = [rev.delta for group in repo.emit_groups(nodes, DeltaMode.ANY) for rev in group.revisions
                if isinstance(rev.delta, TextPieces)]
    assert [len(delta) for delta in streamed] == [12 + TEXT_SIZE, 12 + 3 * TEXT_STEP + 7]
    pieces = list(encode_changegroup(repo.emit_groups(nodes, DeltaMode.ANY), b"03"))
    assert max(map(len, pieces)) <= TEXT_STEP
    groups = [RevisionGroup(g.section, g.path, iter([r._replace(delta=delta_bytes(r.delta)) for r in g.revisions]))
              for g in repo.emit_groups(nodes, DeltaMode.ANY)]
    whole = b"".join(encode_changegroup(iter(groups), b"03"))
    assert b"".join(pieces) == whole
    decoded = {g.path: [r.node for r in g.revisions]
               for g in ChangegroupDecoder(StreamReader(iter(pieces)), b"03").groups()}
    assert len(decoded[b"big.txt"]) == 2 and len(decoded[b"noise.bin"]) == 1


def test_a_large_first_revision_goes_to_its_data_file_once(client: Client, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A new filelog starts inline; its first revision past the inline limit makes it split before
    the revision is written, not written into the index and then read back out of it."""
    work = tmp_path / "work"
    client.hg("init", str(work))
    _big_history(client, work)
    source = hgstore.open_repository(str(work), "work")
    target = hgstore.create_repository(str(tmp_path / "copy"), "copy")
    read_whole: list[tuple[bytes, int]] = []
    original = FsVfs.read

    def recording_read(self: FsVfs, path: bytes) -> bytes:
        data = original(self, path)
        read_whole.append((path, len(data)))
        return data

    monkeypatch.setattr(FsVfs, "read", recording_read)
    tx = target.transaction()
    tx.add_changegroup(source.emit_groups(source.missing([], source.heads()), DeltaMode.ANY))
    tx.commit()
    assert [(path, size) for path, size in read_whole if size > MAX_INLINE] == []
    client.hg("verify", "-q", cwd=tmp_path / "copy")


def _large_file_and_its_copy(make_server: Any, client: Client, tmp_path: Path) -> tuple[Any, Path, bytes]:
    """A server whose repository ``h`` got a 9 MB text, then a copy of it (``hg cp``): the server,
    the local repository and the text."""
    server, url, work = _hg_over_http(make_server, client, tmp_path)
    text = _text(TEXT_SIZE)
    (work / "big.txt").write_bytes(text)
    client.hg("commit", "-q", "-A", "-m", "big", "-u", "u", cwd=work)
    client.hg("cp", "big.txt", "copy.txt", cwd=work)
    client.hg("commit", "-q", "-m", "copied", "-u", "u", cwd=work)
    client.hg("push", "-q", url, cwd=work)
    return server, work, text


def test_a_large_file_s_raw_download_is_read_as_it_is_sent(make_server: Any, client: Client,
                                                            tmp_path: Path) -> None:
    """hgweb's ``raw-file`` of a large file: every byte, a piece at a time from the store; a copy's
    text (copy metadata first) is given without its metadata, as before."""
    server, _work, text = _large_file_and_its_copy(make_server, client, tmp_path)
    base = f"http://127.0.0.1:{server.port('http')}/h/raw-file/tip/"
    for name in ("big.txt", "copy.txt"):
        with urllib.request.urlopen(base + name, timeout=60) as answer:
            assert answer.headers["Content-Length"] == str(TEXT_SIZE)
            assert answer.read() == text
    repo = hgstore.open_repository(str(server.root / "h"), "h")
    found = hg_archive.raw_file(repo, "tip", "big.txt")
    assert found.size == TEXT_SIZE
    assert max(map(len, found.chunks)) <= TEXT_STEP


def test_web_pages_of_large_files_read_no_whole_text_they_do_not_show(
        make_server: Any, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing's sizes and a file's copy source come from the first piece of a large text, and a
    diff too large to show is refused before its texts are read; what they say is as before."""
    server, work, _content = _large_file_and_its_copy(make_server, client, tmp_path)
    read: list[bytes] = []
    revision = Revlog.revision

    def recording(self: Revlog, rev: int, *args: Any, **kwargs: Any) -> bytes:
        read.append(self.index_path)
        return revision(self, rev, *args, **kwargs)

    monkeypatch.setattr(Revlog, "revision", recording)
    monkeypatch.setattr(hg_web, "MAX_PATCH_TEXT", 1 << 20)
    base = f"http://127.0.0.1:{server.port('http')}/h/"

    def page(name: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(base + name, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    status, manifest = page("json-manifest/tip")
    assert status == 200
    assert {f["basename"]: int(f["size"]) for f in manifest["files"]} == {
        "a.txt": 2, "big.txt": TEXT_SIZE, "copy.txt": TEXT_SIZE}
    status, log = page("json-filelog/tip/copy.txt")
    assert status == 200 and [len(e["parents"]) for e in log["entries"]] == [1]
    made_big = client.hg("log", "-r", "1", "-T", "{node}", cwd=work).stdout
    assert log["entries"][0]["parents"] == [made_big]  # the copy's source: big.txt's changeset
    for name in ("json-rev/tip", "json-rev/1", "rev/tip"):
        status, body = page(name)
        assert status == 403 and b"its diff is not served" in body, name
    assert [path for path in read if b"big" in path or b"copy" in path] == []
