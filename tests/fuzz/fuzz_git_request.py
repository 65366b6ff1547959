"""git:// first line, GIT_PROTOCOL / Git-Protocol values, request paths."""

from __future__ import annotations

from protocols.git_request import decode_repo_path, parse_daemon_request, parse_git_protocol, protocol_version

from .harness import Finding, Target


def run(data: bytes) -> None:
    selector, body = data[:1], data[1:]
    if selector == b"p":
        params = parse_git_protocol(body)
        if protocol_version(params) not in (0, 1, 2):
            raise Finding("protocol_version outside the known versions")
    elif selector == b"r":
        name = decode_repo_path(body)
        if not isinstance(name, str):
            raise Finding("decode_repo_path returned a non-str")
    else:
        request = parse_daemon_request(body)
        if request.protocol_version not in (0, 1, 2):
            raise Finding("protocol_version outside the known versions")


def seeds() -> list[bytes]:
    return [
        b"dgit-upload-pack /team/app.git\0host=example.com:9418\0\0version=2\0",
        b"dgit-receive-pack /r.git\0host=h\0",
        b"dgit-upload-archive /a/b/c.git\0",
        b"dgit-upload-pack /r.git\n",
        b"pversion=2:object-format=sha1",
        b"pversion=1",
        b"r/team/app.git",
    ]


TARGET = Target("git_request", run, seeds, max_size=16384)
