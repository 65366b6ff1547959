"""SSH exec command lines and env requests: a route with a safe path, or a typed refusal."""

from __future__ import annotations

from protocols.ssh_exec import check_env, parse_exec

from .harness import Finding, Target


def run(data: bytes) -> None:
    if data[:1] == b"e":
        name, _, value = data[1:].partition(b"=")
        check_env(name, value)
        return
    request = parse_exec(data)
    if not request.path or request.path.startswith("-"):
        raise Finding(f"parse_exec accepted the path {request.path!r}")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in request.path):
        raise Finding(f"parse_exec accepted a control character in {request.path!r}")


def seeds() -> list[bytes]:
    return [
        b"git-upload-pack '/team/app.git'",
        b"git-receive-pack '/it'\\''s.git'",
        b"git upload-pack '/a\\!b.git'",
        b"git-upload-archive '/r.git'",
        b"hg -R team/app serve --stdio",
        b"hg --repository 'team/my app' serve --stdio --hidden",
        b"hg init team/new",
        b"eGIT_PROTOCOL=version=2",
    ]


TARGET = Target("ssh_exec", run, seeds)
