"""The largefiles store and its wire commands: uploads kept only under their own hash, names that are
only hashes, downloads with their length first, and a repository that serves none answering as
``hg serve`` without the extension."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from backends import load_backend
from backends.hg import largefiles
from backends.interfaces import Kind
from gateway.hg_session import push_outcome
from protocols import hg_commands
from protocols.errors import HgwireError
from protocols.hg_commands import Args, CommandContext, Transport
from protocols.hg_responses import BytesResponse, OobError, PushResponse, StreamResponse

DATA = b"a big file\n" * 1000
SHA = hashlib.sha1(DATA).hexdigest().encode()


def _repo(tmp_path: Path, hgrc: str = "[extensions]\nlargefiles =\n"):  # type: ignore[no-untyped-def]
    backend = load_backend("fs", str(tmp_path))
    backend.create("r", Kind.HG)
    (tmp_path / "r" / ".hg" / "hgrc").write_text(hgrc)
    return backend.open("r")


def _run(repo: object, name: bytes, payload: list[bytes] | None = None, **args: bytes) -> object:
    ctx = CommandContext(Transport.SSH, lambda permission: None, payload=iter(payload) if payload else None)
    return hg_commands.dispatch(repo, name, Args({k.encode(): v for k, v in args.items()}), ctx)  # type: ignore[arg-type]


def test_an_upload_is_kept_under_its_hash_and_served_back(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert _run(repo, b"statlfile", sha=SHA) == BytesResponse(b"2\n")
    assert _run(repo, b"putlfile", [DATA[:5000], DATA[5000:]], sha=SHA) == PushResponse(0)
    assert _run(repo, b"statlfile", sha=SHA) == BytesResponse(b"0\n")
    got = _run(repo, b"getlfile", sha=SHA)
    assert isinstance(got, StreamResponse)
    assert b"".join(got.chunks) == b"%d\n" % len(DATA) + DATA
    assert (tmp_path / "r" / ".hg" / "largefiles" / SHA.decode()).read_bytes() == DATA
    assert b"largefiles=serve" in hg_commands.capabilities_string(repo, CommandContext(Transport.SSH, print))


@pytest.mark.parametrize("sha", [hashlib.sha1(b"other").hexdigest().encode(), b"../../hgrc", SHA.upper(), b""])
def test_an_upload_that_is_not_what_its_name_says_leaves_nothing(tmp_path: Path, sha: bytes) -> None:
    repo = _repo(tmp_path)
    answer = _run(repo, b"putlfile", [DATA], sha=sha)
    assert isinstance(answer, PushResponse) and answer.result == 1
    assert answer.output.startswith(b"largefiles: failed to put ")
    assert push_outcome(answer) == "refused: " + answer.output.decode().rstrip("\n")  # not "pushed"
    store = tmp_path / "r" / ".hg" / "largefiles"
    assert not store.exists() or list(store.iterdir()) == []
    assert _run(repo, b"statlfile", sha=sha) == BytesResponse(b"2\n")
    answer = _run(repo, b"getlfile", sha=sha)  # over SSH hg serve's session ends with its abort
    assert isinstance(answer, StreamResponse)
    with pytest.raises(HgwireError, match="not present in cache"):
        next(iter(answer.chunks))


def test_an_upload_over_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(largefiles, "MAX_LARGEFILE", 100)
    answer = _run(_repo(tmp_path), b"putlfile", [DATA], sha=SHA)
    assert isinstance(answer, PushResponse) and answer.result == 1 and b"larger than" in answer.output
    assert push_outcome(answer).startswith("refused: largefiles: failed to put ")


def test_a_repository_without_the_extension_serves_no_largefiles(tmp_path: Path) -> None:
    repo = _repo(tmp_path, hgrc="[extensions]\nlargefiles = !\n")
    assert _run(repo, b"statlfile", sha=SHA) == BytesResponse(b"")  # an unknown command, as hg says
    assert _run(repo, b"lheads") == BytesResponse(b"")
    answer = _run(repo, b"putlfile", [DATA], sha=SHA)
    assert isinstance(answer, PushResponse) and answer.result == 1
    assert push_outcome(answer) == "refused: " + answer.output.decode().rstrip("\n")
    assert "does not serve largefiles" in push_outcome(answer)
    assert not (tmp_path / "r" / ".hg" / "largefiles").exists()
    assert b"largefiles" not in hg_commands.capabilities_string(repo, CommandContext(Transport.SSH, print))
    memory = load_backend("memory", str(tmp_path / "m"))
    assert _run(memory.create("m", Kind.HG), b"statlfile", sha=SHA) == BytesResponse(b"")  # disk only


def test_heads_tell_a_client_without_the_extension_to_enable_it(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert isinstance(_run(repo, b"heads"), BytesResponse)
    repo.require_largefiles()
    assert "largefiles" in (tmp_path / "r" / ".hg" / "store" / "requires").read_text().split()
    assert _run(repo, b"heads") == OobError(hg_commands.LARGEFILES_REQUIRED)
    assert _run(repo, b"lheads") == BytesResponse(b"0" * 40 + b"\n")
    reopened = load_backend("fs", str(tmp_path)).open("r")
    assert reopened.largefiles_required()  # type: ignore[attr-defined]
