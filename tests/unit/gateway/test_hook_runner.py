"""``gateway.git_hooks``: what a hook gets (arguments, input, environment) and what is kept of its output."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.interfaces import ZERO_ID, HookLocation, ObjectId, RefUpdate
from gateway import git_hooks, hg_hooks

OLD = ObjectId(b"1" * 40)
NEW = ObjectId(b"2" * 40)


def _hooks(tmp_path: Path, scripts: dict[str, str], **context: object) -> git_hooks.GitHooks:
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    for name, text in scripts.items():
        path = hooks_dir / name
        path.write_text("#!/bin/sh\n" + text)
        path.chmod(0o755)
    location = HookLocation(str(hooks_dir), str(tmp_path), str(tmp_path))
    return git_hooks.GitHooks(location, git_hooks.PushContext(**context))  # type: ignore[arg-type]


def test_the_hooks_see_what_git_gives_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_PUSH_OPTION_7", "from the server's own environment")
    monkeypatch.setenv("REMOTE_USER", "whoever started the server")
    hooks = _hooks(tmp_path, {
        "pre-receive": 'cat; echo "dir=$GIT_DIR user=${REMOTE_USER:-} addr=${REMOTE_ADDR:-}"\n'
                       'echo "options=$GIT_PUSH_OPTION_COUNT ${GIT_PUSH_OPTION_0:-} ${GIT_PUSH_OPTION_7:-}"\n',
        "update": 'echo "update $*"; test "$1" != refs/heads/no\n',
        "post-receive": "cat\n",
        "post-update": 'echo "post-update $*"\n',
    }, user="alice", address="10.0.0.1", options=(b"ci.skip",))
    updates = [RefUpdate(b"refs/heads/main", OLD, NEW), RefUpdate(b"refs/heads/no", ZERO_ID, NEW)]
    assert hooks.pre_receive(updates)
    assert hooks.update(updates[0]) and not hooks.update(updates[1])
    hooks.post_receive(updates[:1])
    assert hooks.take_output().decode().splitlines() == [
        f"{'1' * 40} {'2' * 40} refs/heads/main", f"{'0' * 40} {'2' * 40} refs/heads/no",
        "dir=. user=alice addr=10.0.0.1", "options=1 ci.skip ",  # GIT_DIR relative, as git's
        f"update refs/heads/main {'1' * 40} {'2' * 40}", f"update refs/heads/no {'0' * 40} {'2' * 40}",
        "error: hook declined to update refs/heads/no",
        f"{'1' * 40} {'2' * 40} refs/heads/main", "post-update refs/heads/main"]
    assert hooks.take_output() == b""


def test_no_push_options_without_the_capability(tmp_path: Path) -> None:
    """As git's receive-pack: a count of 0 for pre-receive and post-receive, nothing for update."""
    told = 'echo "$(basename $0) count=${GIT_PUSH_OPTION_COUNT-unset}"\n'
    hooks = _hooks(tmp_path, {"pre-receive": told, "update": told, "post-receive": told})
    update = RefUpdate(b"refs/heads/main", OLD, NEW)
    assert hooks.pre_receive([update]) and hooks.update(update)
    hooks.post_receive([update])
    assert hooks.take_output() == b"pre-receive count=0\nupdate count=unset\npost-receive count=0\n"


def test_a_signed_push_is_told_to_pre_receive_and_post_receive_once_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As git's receive-pack: the certificate is stored and checked once, before the first hook
    told it; ``update`` is not told; what the server's own environment says is never passed on."""
    from backends.interfaces import PushCertSettings
    from protocols import git_push_cert

    monkeypatch.setenv("GIT_PUSH_CERT_STATUS", "G")
    stored: list[bytes] = []

    def store(data: bytes) -> ObjectId:
        stored.append(data)
        return ObjectId(b"c" * 40)

    told = 'echo "$(basename $0) ${GIT_PUSH_CERT:-none} ${GIT_PUSH_CERT_STATUS:-none} ${GIT_PUSH_CERT_NONCE_STATUS:-}"\n'
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    for name in ("pre-receive", "update", "post-receive"):
        (hooks_dir / name).write_text("#!/bin/sh\n" + told)
        (hooks_dir / name).chmod(0o755)
    settings = PushCertSettings(seed=b"seed")
    nonce = git_push_cert.nonce(b"seed", b"repo", 1700000000, algorithm="sha1")
    cert = b"certificate version 0.1\nnonce " + nonce + b"\n\n" + OLD + b" " + NEW + b" refs/heads/main\n"
    signed = git_hooks.SignedPush(cert, settings, nonce, b"repo", "sha1")
    location = HookLocation(str(hooks_dir), str(tmp_path), str(tmp_path), store_blob=store)
    hooks = git_hooks.GitHooks(location, git_hooks.PushContext(signed=signed))
    update = RefUpdate(b"refs/heads/main", OLD, NEW)
    assert hooks.pre_receive([update]) and hooks.update(update)
    hooks.post_receive([update])
    cert_id = "c" * 40
    assert hooks.take_output().decode().splitlines() == [
        f"pre-receive {cert_id} N OK", "update none none ", f"post-receive {cert_id} N OK"]  # unsigned: N
    assert stored == [cert]
    unsigned = git_hooks.GitHooks(location, git_hooks.PushContext())
    assert unsigned.pre_receive([update])
    assert unsigned.take_output() == b"pre-receive none none \n"


def test_missing_and_non_executable_hooks_accept(tmp_path: Path) -> None:
    hooks = _hooks(tmp_path, {})
    (tmp_path / "hooks" / "pre-receive").write_text("#!/bin/sh\nexit 1\n")  # mode 644: ignored, as by git
    update = RefUpdate(b"refs/heads/main", OLD, NEW)
    assert hooks.pre_receive([update]) and hooks.update(update)
    assert hooks.take_output() == b""


def test_a_hook_that_cannot_start_refuses(tmp_path: Path) -> None:
    hooks = _hooks(tmp_path, {})
    broken = tmp_path / "hooks" / "pre-receive"
    broken.write_text("#!/no/such/interpreter\n")
    broken.chmod(0o755)
    assert not hooks.pre_receive([RefUpdate(b"refs/heads/main", OLD, NEW)])
    assert b"cannot run pre-receive hook" in hooks.take_output()


def test_output_is_kept_up_to_a_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_hooks, "MAX_OUTPUT", 1000)
    hooks = _hooks(tmp_path, {"update": "head -c 5000 /dev/zero | tr '\\0' x\n"})
    update = RefUpdate(b"refs/heads/main", OLD, NEW)
    assert hooks.update(update) and hooks.update(update)
    out = hooks.take_output()
    assert out.startswith(b"x" * 1000) and out.count(b"x") == 1000 and out.endswith(b"[hook output cut at 1 MiB]\n")


def test_listkeys_values_are_written_as_hg_writes_a_dict_into_a_hook_environment() -> None:
    """``stringutil.pprint``: sorted, single quotes, bytes escaped as ``codecs.escape_encode`` does."""
    assert hg_hooks.format_values({}) == "{}"
    values = {b"publishing": b"True", b"0" * 40: b"1"}
    assert hg_hooks.format_values(values) == "{'" + "0" * 40 + "': '1', 'publishing': 'True'}"
    odd = {b"it's\\\t\n\r\x00\x7f\xc3\xa9": b""}
    assert hg_hooks.format_values(odd) == "{'it\\'s\\\\\\t\\n\\r\\x00\\x7f\\xc3\\xa9': ''}"
    assert hg_hooks.env_text(b"a\x00b\xc3\xa9") == "a\\x00bé"
