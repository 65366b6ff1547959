"""A custom backend that refuses a git push (a read-only mirror in ``begin_pack`` and
``update_refs``, a quota in its sink's ``write``, a full store at ``commit``) with a
``PermissionDenied`` or ``StorageError``: the client is told per ref in git's report, as a hook's
refusal or git's ``receive.maxInputSize`` is, the audit log records it, nothing lands, and the
service goes on.  The session used to end with the message and git's "the remote end hung up
unexpectedly", with no report and no audit event."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.filesystem import FilesystemBackend
from backends.interfaces import Kind, Repository
from gateway import audit
from protocols.errors import PermissionDenied, ReadOnly, StorageError
from tests.conftest import LOOPBACK, Client, RunningServer, log_events

QUOTA = 4096


class _Pass:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


class _Mirrored(_Pass):
    def begin_pack(self) -> Any:
        raise ReadOnly(f"{self._inner.name} is a read-only mirror; push to the primary instead")

    def update_refs(self, updates: Any, atomic: bool, **kwargs: Any) -> Any:
        raise ReadOnly(f"{self._inner.name} is a read-only mirror; push to the primary instead")


class _QuotaSink(_Pass):
    seen = 0

    def write(self, data: bytes, objects: Any = None) -> None:
        self.seen += len(data)
        if self.seen > QUOTA:
            raise PermissionDenied(f"this push is over the repository's quota of {QUOTA} bytes")
        self._inner.write(data, objects)


class _Quota(_Pass):
    def begin_pack(self) -> Any:
        return _QuotaSink(self._inner.begin_pack())


class _FullSink(_Pass):
    def commit(self) -> None:
        raise StorageError("the store is full; try again later")


class _Full(_Pass):
    def begin_pack(self) -> Any:
        return _FullSink(self._inner.begin_pack())


class _Wrapping:
    wrap: Callable[[Any], Any] = _Pass

    def __init__(self, root: str) -> None:
        self.inner = FilesystemBackend(root)

    def open(self, name: str) -> Repository:
        repo = self.inner.open(name)
        return self.wrap(repo) if repo.kind is Kind.GIT else repo

    def create(self, name: str, kind: Kind) -> Repository:
        return self.inner.create(name, kind)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def list(self) -> list[str]:
        return list(self.inner.list())


class Mirror(_Wrapping):
    wrap = _Mirrored


class Quota(_Wrapping):
    wrap = _Quota


class Full(_Wrapping):
    wrap = _Full


def _served(make_server: Callable[..., RunningServer], client: Client, backend: str,
            tmp_path: Path) -> tuple[RunningServer, Path, str]:
    server = make_server(f"tests.integration.test_backend_push_refusals:{backend}", git=[LOOPBACK])
    bare = server.root / "app.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work-app"
    client.git("init", "-q", "-b", "main", str(work))
    (work / "f").write_text("one\n")
    client.git("add", "f", cwd=work)
    client.git("-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "one", cwd=work)
    client.git("push", "-q", str(bare), "main", cwd=work)  # (on disk: the backend is not asked)
    (work / "big").write_bytes(os.urandom(3 * QUOTA))  # (incompressible: the pack passes the quota)
    client.git("add", "big", cwd=work)
    client.git("-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "two", cwd=work)
    before = client.git("--git-dir", str(bare), "rev-parse", "main").stdout
    return server, work, before


@pytest.mark.parametrize("backend, refspec, told", [
    ("Mirror", "main", " ! [remote rejected] main -> main (app.git is a read-only mirror; push to the primary instead)"),
    ("Mirror", ":main", " ! [remote rejected] main (app.git is a read-only mirror; push to the primary instead)"),
    ("Quota", "main", "error: remote unpack failed: this push is over the repository's quota of 4096 bytes"),
    ("Full", "main", " ! [remote rejected] main -> main (the store is full; try again later)"),
])
def test_a_push_the_backend_refuses_is_told_per_ref(make_server: Callable[..., RunningServer], client: Client,
                                                    tmp_path: Path, backend: str, refspec: str, told: str) -> None:
    server, work, before = _served(make_server, client, backend, tmp_path)
    with log_events() as events:
        pushed = client.git("push", server.git_url("app.git"), refspec, cwd=work, check=False)
    assert pushed.returncode == 1
    assert told in pushed.stderr.splitlines(), pushed.stderr
    assert "hung up" not in pushed.stderr, pushed.stderr
    if backend == "Quota":
        assert " ! [remote rejected] main -> main (unpacker error)" in pushed.stderr.splitlines(), pushed.stderr
    assert client.git("--git-dir", str(server.root / "app.git"), "rev-parse", "main").stdout == before
    pushes = [e for e in events if e.get("log_namespace") == audit.AUDIT_NAMESPACE]
    assert len(pushes) == 1, pushes
    listed = client.git("ls-remote", server.git_url("app.git"), cwd=work)  # the service goes on
    assert before.strip() in listed.stdout
