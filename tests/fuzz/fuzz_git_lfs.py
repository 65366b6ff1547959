"""Git LFS batch and lock requests and push certificates: parsed and answered, or refused with a
``ProtocolError`` (for the LFS API) or a ``ValueError`` (a certificate without its empty line)."""

from __future__ import annotations

import json

from protocols import git_lfs, git_lfs_transfer, git_push_cert
from protocols.errors import ProtocolError

from .harness import Finding, Target


def run(data: bytes) -> None:
    if data[:1] == b"c":
        _cert(data[1:])
        return
    if data[:1] == b"l":
        _locks(data[1:])
        return
    if data[:1] == b"t":
        _transfer(data[1:])
        return
    try:
        request = git_lfs.parse_batch(data)
    except ProtocolError as refused:
        if refused.http_status not in (409, 413, 422):
            raise Finding(f"a refusal with status {refused.http_status}") from None
        return
    answer = json.loads(b"".join(git_lfs.batch_response(request, lambda oid: 3 if oid.startswith("a") else None,
                                                        lambda oid: "https://h/o/" + oid, {})))
    if len(answer["objects"]) != len(request.objects):
        raise Finding("the answer does not list every object asked about")
    for obj in answer["objects"]:
        href = obj.get("actions", {}).get(request.operation, {}).get("href", "")
        if href and not git_lfs.valid_oid(href.rsplit("/", 1)[1]):
            raise Finding(f"an action for an object name that is not a SHA-256: {href[:80]!r}")


def _transfer(stream: bytes) -> None:
    reader = git_lfs_transfer.TransferReader()
    events = reader.feed(stream) + reader.feed(b"")
    if any(isinstance(event, git_lfs_transfer.Refused) for event in events[:-1]):
        raise Finding("events after a refusal")
    for event in events:
        if isinstance(event, git_lfs_transfer.Message) and event.command == "batch":
            try:
                git_lfs_transfer.batch_objects(event.lines)
            except ProtocolError:
                pass


def _locks(body: bytes) -> None:
    for parse in (git_lfs.parse_lock_create, git_lfs.parse_lock_verify, git_lfs.parse_unlock):
        try:
            parsed = parse(body)
        except ProtocolError as refused:
            if refused.http_status not in (413, 422):
                raise Finding(f"a lock request refused with status {refused.http_status}") from None
            continue
        if parse is git_lfs.parse_lock_create and (".." in str(parsed).split("/") or str(parsed).startswith("/")):
            raise Finding(f"a lock path that leaves the repository: {parsed!r}")


def _cert(cert: bytes) -> None:
    payload, signature = git_push_cert.split(cert)
    if payload + signature != cert:
        raise Finding("the certificate does not split into its own bytes")
    try:
        git_push_cert.command_lines(cert)
    except ValueError:
        pass
    git_push_cert.push_options(payload)
    git_push_cert.check_nonce(payload, b"1-a", b"seed", b"repo", True, 5, algorithm="sha1")
    git_push_cert.parse_gpg_status(cert)
    git_push_cert.parse_ssh_output(cert)


def seeds() -> list[bytes]:
    oid = "a" * 64
    return [
        json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": 3}]}).encode(),
        json.dumps({"operation": "download", "transfers": ["basic"], "objects": [{"oid": "b" * 64, "size": 1}],
                    "ref": {"name": "refs/heads/main"}}).encode(),
        b'{"operation": "upload", "hash_algo": "sha256", "objects": []}',
        b"c" + b"certificate version 0.1\npusher k 1 +0000\nnonce 1-a\npush-option x\n\n"
        + b"0" * 40 + b" " + b"1" * 40 + b" refs/heads/main\n-----BEGIN SSH SIGNATURE-----\nAA\n",
        b'l{"path": "dir/a.psd", "ref": {"name": "refs/heads/main"}, "force": true, "limit": 5}',
        b"t000eversion 1\n0000000abatch\n0012transfer=ssh\n0001" + b"%04x" % (4 + 67) + b"a" * 64 + b" 5\n0000"
        + b"0018put-object abcdef\n000bsize=5\n000100096hello0000",
        b"c[GNUPG:] GOODSIG 0123456789ABCDEF A <a@x>\n[GNUPG:] TRUST_FULLY 0 pgp\n",
    ]


TARGET = Target("git_lfs", run, seeds, max_size=4096)
