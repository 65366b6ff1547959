"""A pushed git pack indexed into a disk repository (``git_ingest.PackIngest`` in a quarantine),
from objects the fuzzer edits before they are deflated: a commit's, tree's or tag's bytes, a
delta's instructions and its base.  Whatever the objects, only a typed refusal leaves (hgwire's
errors, dulwich's ``ObjectFormatException`` and ``ApplyDeltaError``), a refused pack leaves the
repository as it was, and an accepted one has an index git's ``verify-pack`` agrees with; checking
a tree against its delta base where it differs gives the answer, warnings and links of checking it
whole.

Input: objects separated by ``SEP``, each a kind byte (``c`` commit, ``t`` tree, ``b`` blob,
``g`` tag, ``o`` OFS_DELTA, ``r`` REF_DELTA), for a delta a base byte (an OFS_DELTA: how many
objects back; a REF_DELTA: below 0x80 one of the objects the repository holds, else an earlier
whole object of the pack), then the object's bytes.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

from dulwich.errors import ApplyDeltaError, ObjectFormatException
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.pack import PackData
from dulwich.repo import Repo

from backends import git_ingest
from backends.git_fastpack import encode_entry_header, encode_ofs
from protocols.errors import HgwireError

from .harness import Finding, Target

SEP = b"\0--\0"
KINDS = {ord("c"): 1, ord("t"): 2, ord("b"): 3, ord("g"): 4, ord("o"): 6, ord("r"): 7}
_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_place: list[tuple[Path, list[bytes]]] = []


def _git(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000",
           "GIT_AUTHOR_NAME": "F", "GIT_AUTHOR_EMAIL": "f@example.com", "GIT_COMMITTER_NAME": "F",
           "GIT_COMMITTER_EMAIL": "f@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=True, env=env).stdout


def _history() -> tuple[Path, list[bytes]]:
    """A small history (work tree, bare server holding its first commit); the server's object ids.
    A directory of 30 files, one changed by each commit, gives trees that git packs as deltas."""
    if not _place:
        base = Path(tempfile.mkdtemp(prefix="hgwire-fuzz-ingest-"))
        atexit.register(shutil.rmtree, base, True)
        work, server = base / "work", base / "server.git"
        _git(base, "init", "-q", "-b", "main", str(work))
        for i in range(4):
            (work / "d").mkdir(exist_ok=True)
            (work / "a.txt").write_bytes(b"line %d\n" % i * 40 + b"common tail\n" * 20)
            (work / "d" / "b.txt").write_bytes(b"nested %d\n" % i)
            (work / ".gitmodules").write_bytes(b'[submodule "s"]\n\tpath = s\n\turl = https://example.com/s\n')
            (work / "many").mkdir(exist_ok=True)  # a tree large enough for git to store its versions as deltas
            for n in range(30):
                (work / "many" / f"f{n:02d}").write_bytes(b"file %d, version %d\n" % (n, i if n == i else 0))
            _git(work, "add", "-A")
            _git(work, "commit", "-q", "-m", f"c{i}")
            if i == 0:
                _git(base, "clone", "-q", "--bare", str(work), str(server))
        _git(work, "tag", "-a", "-m", "t", "v1")
        stored = _git(server, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
        _place.append((server, [bytes.fromhex(sha.decode()) for sha in stored]))
    return _place[0]


def build_pack(data: bytes, stored: list[bytes]) -> bytes:
    """The pack the input describes (objects that make no sense are skipped, not refused)."""
    body, offsets, ids = bytearray(), [], []
    records = [r for r in data.split(SEP) if r][:64]
    kept = 0
    for record in records:
        kind = KINDS.get(record[0])
        if kind is None:
            continue
        payload, base_bytes = record[1:], b""
        sha = None
        if kind in (6, 7):
            if len(record) < 2:
                continue
            back, payload = record[1], record[2:]
            if kind == 6:
                if not 0 < back <= kept:
                    continue
                base_bytes = encode_ofs(12 + len(body) - offsets[kept - back])
            else:
                wholes = [i for i in ids if i is not None]
                if back < 0x80 or not wholes:
                    base_bytes = stored[back % len(stored)] if stored else b"\0" * 20
                else:
                    base_bytes = wholes[(back - 0x80) % len(wholes)]
        else:
            sha = hashlib.sha1(_NAMES[kind] + b" %d\0" % len(payload) + payload).digest()
        offsets.append(12 + len(body))
        ids.append(sha)
        chunk = encode_entry_header(kind, len(payload)) + base_bytes + zlib.compress(payload)
        body += chunk
        kept += 1
    pack = b"PACK" + (2).to_bytes(4, "big") + kept.to_bytes(4, "big") + bytes(body)
    return pack + hashlib.sha1(pack).digest()


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in (path / "objects").rglob("*"))


def run(data: bytes) -> None:
    server, stored = _history()
    pack = build_pack(data, stored)
    before = _listing(server)
    outcome = _ingest(server, pack, verify=True)
    whole = _ingest(server, pack, verify=False, in_place=False)
    if whole != outcome:
        raise Finding(f"checking trees against their delta bases changes {_difference(outcome, whole)}")
    if _listing(server) != before:
        raise Finding("an ingest left something in the repository's object directory")


def _difference(ours: tuple[str, list[str], object], whole: tuple[str, list[str], object]) -> str:
    if ours[0] != whole[0]:
        return f"the answer: {ours[0][:200]!r} against {whole[0][:200]!r}"
    if ours[1] != whole[1]:
        return f"the warnings: {ours[1][:3]!r} against {whole[1][:3]!r}"
    mine, theirs = ours[2], whole[2]
    if isinstance(mine, set) and isinstance(theirs, set):
        return f"the links: {sorted(mine - theirs)[:3]!r} more, {sorted(theirs - mine)[:3]!r} fewer"
    return f"the links: {type(mine).__name__} against {type(theirs).__name__}"


def _ingest(server: Path, pack: bytes, verify: bool, in_place: bool = True) -> tuple[str, list[str], object]:
    """Ingest ``pack`` into a quarantine of ``server`` (dropped after): the answer, the warnings told
    and the links noted; ``in_place=False`` checks every tree whole (the reference)."""
    store = Repo(str(server)).object_store
    quarantine = git_ingest.Quarantine(store)
    links = git_ingest.PushLinks()
    held = git_ingest._checked_in_place
    if not in_place:
        git_ingest._checked_in_place = lambda *args: None
    try:
        landed = git_ingest.PackIngest(store, links, quarantine)
        try:
            landed.write(pack)
            result = landed.commit()
        except (git_ingest.FsckError, HgwireError) as exc:  # (an FsckError is an ObjectFormatException)
            return f"refused: {type(exc).__name__}: {exc}", landed.warnings.shown(), links.linked()
        except (ObjectFormatException, ApplyDeltaError) as exc:
            return f"refused by dulwich: {type(exc).__name__}: {exc}", landed.warnings.shown(), links.linked()
        finally:
            landed.abort()
        if verify and result is not None:
            checked = subprocess.run(["git", "verify-pack", str(result._idx_path)], capture_output=True, check=False)
            if checked.returncode != 0:
                raise Finding(f"git verify-pack refuses an accepted pack: {checked.stderr[-300:]!r}")
        return "accepted", landed.warnings.shown(), links.linked()
    finally:
        git_ingest._checked_in_place = held
        quarantine.drop()


def seeds() -> list[bytes]:
    """The history's later commits as git packs them (deltas against earlier objects of the pack
    and, thin, against the repository's), in the input's form."""
    server, stored = _history()
    work = server.parent / "work"
    out = []
    for thin in (False, True):
        revs = b"main\n^main~3\n" if thin else b"main\nv1\n"
        flags = ["--thin"] if thin else []
        raw = _git(work, "pack-objects", "--stdout", "--revs", "--delta-base-offset", *flags, data=revs)
        out.append(_records(raw, stored))
    return out


def _records(raw: bytes, stored: list[bytes]) -> bytes:
    """A git pack in the input's form (whole objects and deltas as they are stored)."""
    path = Path(tempfile.mkdtemp(prefix="hgwire-fuzz-seed-")) / "p.pack"
    path.write_bytes(raw)
    try:
        data = PackData(str(path), object_format=DEFAULT_OBJECT_FORMAT)
        records, index_of = [], {}
        for at, obj in enumerate(data.iter_unpacked()):
            index_of[obj.offset] = at
            payload = b"".join(obj.decomp_chunks)
            kind = obj.pack_type_num
            if kind == 6:
                records.append(b"o" + bytes([at - index_of[obj.offset - obj.delta_base]]) + payload)
            elif kind == 7:
                records.append(b"r" + bytes([stored.index(obj.delta_base) % 0x80]) + payload)
            else:
                records.append(b"?ctbg"[kind:kind + 1] + payload)
        data.close()
    finally:
        shutil.rmtree(path.parent, True)
    return SEP.join(records)


TARGET = Target("git_ingest", run, seeds, max_size=65536)
