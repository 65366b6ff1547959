"""Starting the service imports what the libraries would otherwise import in the first request."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.service import FIRST_USE_IMPORTS

ROOT = Path(__file__).resolve().parents[3]


def test_start_imports_the_modules_a_first_request_would() -> None:
    # A fresh interpreter: in this one, other tests have long imported them.
    script = textwrap.dedent(f"""
        import sys
        from backends import load_backend
        from gateway.config import ServiceConfig
        from gateway.service import build_service
        from twisted.internet import reactor

        wanted = {FIRST_USE_IMPORTS!r}
        before = [name for name in wanted if name in sys.modules]
        service = build_service(ServiceConfig(backend=load_backend("memory", "."), root="."))
        service.startService()
        after = [name for name in wanted if name not in sys.modules]
        service.stopService()
        reactor.fireSystemEvent("shutdown")
        print(before, after)
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # None imported before the start (else this test proves nothing), none missing after it.
    assert done.stdout.split("\n")[0] == "[] []"


class _Limits:
    RLIMIT_NOFILE = 7
    RLIM_INFINITY = -1

    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.limit = (soft, hard)
        self.refuse = refuse

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == self.RLIMIT_NOFILE
        return self.limit

    def setrlimit(self, which: int, limit: tuple[int, int]) -> None:
        if self.refuse:
            raise ValueError("not allowed")
        self.limit = limit


class EPollReactor:
    pass


class SelectReactor:
    pass


class AsyncioSelectorReactor:  # asyncio's selectors use epoll here
    pass


@pytest.mark.parametrize(("soft", "hard", "raised"), [
    (1024, 524288, 65536),     # systemd's defaults
    (1024, 4096, 4096),        # up to the hard limit
    (1024, -1, 65536),         # no hard limit
    (100000, 524288, None),    # already higher: left
    (-1, -1, None),            # unlimited: left
])
def test_the_soft_limit_on_descriptors_is_raised_toward_the_hard_one(soft: int, hard: int, raised: int | None) -> None:
    from gateway.service import raise_descriptor_limit

    limits = _Limits(soft, hard)
    assert raise_descriptor_limit(EPollReactor(), limits) == raised
    assert limits.limit == ((raised, hard) if raised else (soft, hard))


def test_the_limit_is_left_under_the_select_reactor_or_when_refused() -> None:
    from gateway.service import raise_descriptor_limit

    assert raise_descriptor_limit(SelectReactor(), _Limits(1024, 4096)) is None
    assert raise_descriptor_limit(AsyncioSelectorReactor(), _Limits(1024, 4096)) == 4096
    refused = _Limits(1024, 4096, refuse=True)
    assert raise_descriptor_limit(EPollReactor(), refused) is None and refused.limit == (1024, 4096)


def test_a_low_hard_limit_on_descriptors_is_warned_of(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hard limit of 64 (``prlimit --nofile=64:64``) stays 64 once raised: the operator is told it
    is below what the listeners' ``max_connections`` need, and what to raise."""
    from twisted.logger import globalLogPublisher

    from gateway.service import descriptors_needed, warn_low_descriptor_limit

    seen: list[dict[str, object]] = []
    globalLogPublisher.addObserver(seen.append)  # type: ignore[arg-type]
    try:
        assert warn_low_descriptor_limit(descriptors_needed(2, 1000), _Limits(64, 64))
        assert not warn_low_descriptor_limit(descriptors_needed(2, 1000), _Limits(65536, 524288))
        assert not warn_low_descriptor_limit(descriptors_needed(2, 1000), _Limits(-1, -1))
    finally:
        globalLogPublisher.removeObserver(seen.append)  # type: ignore[arg-type]
    warned = [e for e in seen if "limit on open descriptors" in str(e.get("log_format"))]
    assert len(warned) == 1 and warned[0]["limit"] == 64 and warned[0]["needed"] == 2256
    assert "LimitNOFILE" in str(warned[0]["log_format"])


@pytest.mark.parametrize(("value", "unknown"), [
    (None, False), ("sha1", False), ("sha256", False),
    ("SHA256", True), ("sha512", True), ("", True), (" sha256", True),  # git init: "unknown hash algorithm"
])
def test_an_unknown_git_default_hash_is_warned_of_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           value: str | None, unknown: bool) -> None:
    """``GIT_DEFAULT_HASH`` is read as ``git init`` reads it (lower case, nothing around it): a value
    git does not know refuses every push that would make a repository, so under
    ``--create-on-push`` the operator is told once at start, in one sentence saying what to set."""
    from twisted.logger import globalLogPublisher

    from backends import load_backend
    from backends.filesystem import default_object_format
    from gateway.service import warn_unknown_default_hash
    from protocols.errors import StorageError

    if value is None:
        monkeypatch.delenv("GIT_DEFAULT_HASH", raising=False)
    else:
        monkeypatch.setenv("GIT_DEFAULT_HASH", value)
    seen: list[dict[str, object]] = []
    globalLogPublisher.addObserver(seen.append)  # type: ignore[arg-type]
    try:
        assert warn_unknown_default_hash(load_backend("fs", str(tmp_path))) is unknown
        assert not warn_unknown_default_hash(load_backend("memory", str(tmp_path)))  # (SHA-1 whatever it says)
    finally:
        globalLogPublisher.removeObserver(seen.append)  # type: ignore[arg-type]
    warned = [str(e.get("why")) for e in seen if "GIT_DEFAULT_HASH" in str(e.get("why"))]
    if unknown:
        assert warned == [(f"GIT_DEFAULT_HASH in the server's environment is {value!r}, which git does not know, "
                          "so no git repository can be made; set it to sha1 or sha256 (lower case) or unset it")]
        with pytest.raises(StorageError):
            default_object_format()
    else:
        assert warned == [] and default_object_format() == (value or "sha1")


def test_files_the_service_s_user_cannot_read_are_warned_of_at_start(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """Under ``twistd --uid git``, an ``--htpasswd`` or ``--authorized-keys`` file only root may
    read passed the start (read as root) and then refused every login ("the server cannot read its
    password file"), the operator hearing of it from the first user.  Once running as the service's
    user, each file it reads again and cannot is warned of, with what that stops."""
    from twisted.logger import globalLogPublisher

    from backends import load_backend
    from gateway import service as service_module
    from gateway.config import ServiceConfig

    files = {name: tmp_path / name for name in ("htpasswd", "keys", "rules.toml", "key.pem", "cert.pem", "ok")}
    for path in files.values():
        path.write_text("")
    denied = {str(files[name]) for name in ("htpasswd", "keys", "key.pem")}
    real_access = os.access

    def access(path: str, mode: int, **kwargs: object) -> bool:  # the service's user, not root
        return str(path) not in denied and real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    config = ServiceConfig(backend=load_backend("memory", str(tmp_path)), root=str(tmp_path),
                           htpasswd=str(files["htpasswd"]), authorized_keys=str(files["keys"]),
                           config_file=str(files["rules.toml"]),
                           http=[f"ssl:0:privateKey={files['key.pem']}:certKey={files['cert.pem']}", "tcp:0"])
    seen: list[dict[str, object]] = []
    globalLogPublisher.addObserver(seen.append)  # type: ignore[arg-type]
    try:
        service_module.warn_unreadable_files(config)
    finally:
        globalLogPublisher.removeObserver(seen.append)  # type: ignore[arg-type]
    warned = {str(e["what"]): str(e["consequence"]) for e in seen if "cannot be read by the service's user" in
              str(e.get("log_format"))}
    assert warned == {
        f"--htpasswd {files['htpasswd']}": "nobody can log in over HTTP",
        f"--authorized-keys {files['keys']}": "nobody can log in over SSH",
        f"{files['key.pem']} of ssl:0:privateKey={files['key.pem']}:certKey={files['cert.pem']}":
            "a SIGHUP cannot read a renewed certificate (the one in use serves on)",
    }, warned
