"""Signed pushes (``git push --signed``) over git://, SSH and HTTP, against git's own receive-pack
pushing to a copy of the same repository (``file://``).

A repository with ``receive.certNonceSeed`` offers ``push-cert``; the client signs a certificate
of its commands (with an SSH key, ``gpg.format = ssh``, or an OpenPGP key) and the
``pre-receive`` and ``post-receive`` hooks are told what the server found: the certificate
(``GIT_PUSH_CERT``, a blob), its signer, key and status, its nonce and whether it is the one
issued.  Each of these must be what git's receive-pack tells its hooks for the same push.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, SshKeys
from tests.integration.test_git_daemon import assert_consistent, commit, remote_refs, started_repo
from tests.integration.test_git_hooks import _server

CERT_HOOK = """#!/bin/sh
{
  echo "-- $(basename "$0")"
  env | grep -E '^GIT_PUSH_CERT' | sort
  if [ -n "$GIT_PUSH_CERT" ]; then echo "cert:"; git cat-file blob "$GIT_PUSH_CERT" | sed '/^-----BEGIN/,$d'; fi
  cat
} >> "$GIT_DIR/cert.log"
"""


def _install(git_dir: Path, signers: Path, gpg: Path | None = None, slop: str | None = None) -> None:
    for name in ("pre-receive", "post-receive"):
        path = git_dir / "hooks" / name
        path.write_text(CERT_HOOK)
        path.chmod(0o755)
    settings = {"receive.certNonceSeed": "a secret of this server", "gpg.ssh.allowedSignersFile": str(signers)}
    if gpg is not None:
        settings["gpg.program"] = str(gpg)
    if slop is not None:
        settings["receive.certNonceSlop"] = slop
    for key, value in settings.items():
        subprocess.run(["git", "--git-dir", str(git_dir), "config", key, value], check=True)


def _told(git_dir: Path) -> list[str]:
    """The hooks' log, without what differs by nature: the nonce (issued per server, per second),
    the URL pushed to and the time of the push."""
    lines = (git_dir / "cert.log").read_text().splitlines()
    out = []
    for line in lines:
        if line.startswith(("GIT_PUSH_CERT=", "GIT_PUSH_CERT_NONCE=")):
            line = line.split("=", 1)[0] + "=<varies>"
        elif line.startswith(("nonce ", "pushee ")):
            line = line.split(" ", 1)[0] + " <varies>"
        elif line.startswith("pusher "):  # the key, then the time of the push
            line = line.rsplit(" ", 2)[0] + " <time>"
        out.append(line)
    (git_dir / "cert.log").write_text("")
    return out


def _ssh_signer(client: Client, name: str, email: str) -> Path:
    key = client.cwd / f"{name}_signing_key"
    client.run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", email, "-f", str(key))
    return key


@pytest.mark.parametrize("transport", ["git", "ssh", "http"])
def test_signed_pushes_are_told_to_the_hooks_as_git_tells_them(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                                tmp_path: Path, transport: str) -> None:
    server = _server(make_server, transport, client, ssh_keys, tmp_path)
    url, work = started_repo(server, client, "signed", push=True)  # type: ignore[arg-type]
    bare = server.root / "signed.git"
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    known = _ssh_signer(client, "known", "alice@example.com")
    stranger = _ssh_signer(client, "stranger", "mallory@example.com")
    signers = client.cwd / "allowed_signers"
    signers.write_text("alice@example.com " + (known.parent / f"{known.name}.pub").read_text())
    # over HTTP the nonce is issued by one request and returned in the next: the slop lets it be OK
    for git_dir in (bare, copy):
        _install(git_dir, signers, slop="60")

    pushes = [(known, ["HEAD:main"], "b"), (stranger, ["HEAD:main", "HEAD:side"], "c"), (known, [":side"], None)]
    for key, refspecs, change in pushes:
        if change is not None:
            commit(client, work, f"{change}.txt", f"{change}\n", change)
        signing = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={key}"]
        ours = client.git(*signing, "push", "--signed", url, *refspecs, cwd=work, check=False)
        theirs = client.git(*signing, "push", "--signed", f"file://{copy}", *refspecs, cwd=work, check=False)
        assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
        told, expected = _told(bare), _told(copy)
        assert told == expected
        assert "GIT_PUSH_CERT_NONCE_STATUS=OK" in told
        assert ("GIT_PUSH_CERT_SIGNER=alice@example.com" in told) == (key == known)
        assert "GIT_PUSH_CERT_STATUS=G" in told
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")
    assert_consistent(server, client, "signed")  # type: ignore[arg-type]


def test_a_stale_or_forged_nonce_is_told_as_git_tells_it(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                         tmp_path: Path) -> None:
    """Over HTTP without ``receive.certNonceSlop`` a nonce issued in an earlier second is "SLOP"
    by that many seconds; a nonce this server never issued is "BAD" (the client is made to sign
    one by a proxy that rewrites the advertisement)."""
    server = _server(make_server, "http", client, ssh_keys, tmp_path)
    url, work = started_repo(server, client, "stale", push=True)  # type: ignore[arg-type]
    bare = server.root / "stale.git"
    key = _ssh_signer(client, "known", "alice@example.com")
    signers = client.cwd / "allowed_signers"
    signers.write_text("alice@example.com " + (key.parent / f"{key.name}.pub").read_text())
    _install(bare, signers)
    commit(client, work, "b.txt", "b\n", "b")
    # a pre-push hook that waits lets the second between the advertisement and the push go by
    (work / ".git" / "hooks" / "pre-push").write_text("#!/bin/sh\nsleep 2\n")
    (work / ".git" / "hooks" / "pre-push").chmod(0o755)
    client.git("-c", "gpg.format=ssh", "-c", f"user.signingKey={key}", "push", "-q", "--signed", url, "HEAD:main",
               cwd=work)
    told = (bare / "cert.log").read_text().splitlines()
    assert "GIT_PUSH_CERT_NONCE_STATUS=SLOP" in told, told
    slop = [line for line in told if line.startswith("GIT_PUSH_CERT_NONCE_SLOP=")]
    assert slop and 2 <= int(slop[0].split("=")[1]) <= 30, told
    assert "GIT_PUSH_CERT_STATUS=G" in told


def test_a_repository_without_a_nonce_seed_takes_no_signed_push(make_server: Any, client: Client) -> None:
    """As git's receive-pack: no ``push-cert`` offered, so ``--signed`` stops at the client, and
    ``--signed=if-asked`` pushes unsigned."""
    from tests.conftest import LOOPBACK

    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "plain", push=True)
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(server.root / "plain.git"), str(copy))
    commit(client, work, "b.txt", "b\n", "b")
    for target in (url, f"file://{copy}"):
        refused = client.git("push", "--signed", target, "HEAD:main", cwd=work, check=False)
        assert refused.returncode != 0
        assert "the receiving end does not support --signed push" in refused.stderr
        client.git("push", "-q", "--signed=if-asked", target, "HEAD:main", cwd=work)
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")


@pytest.mark.skipif(shutil.which("gpg") is None, reason="OpenPGP signing needs gpg (make test installs it)")
def test_openpgp_signed_pushes_are_checked_with_gpg(make_server: Any, client: Client, ssh_keys: SshKeys,
                                                    tmp_path: Path) -> None:
    """An OpenPGP signature is checked with the repository's ``gpg.program``: the hooks are told
    the key id and the user id as git's receive-pack tells them, for a key the server's keyring
    has (``G``) and for one it has not (``E``, the key id only)."""
    from tests.conftest import LOOPBACK

    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "pgp", push=True)
    bare = server.root / "pgp.git"
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    import tempfile

    # gpg-agent's sockets live in the home: a path of pytest's (pytest-1014/popen-gw0/test_…/
    # gnupg-mallory/S.gpg-agent.browser) can pass the 107 bytes a socket's name may have
    short = Path(tempfile.mkdtemp(prefix="gpg", dir="/tmp"))
    homes = {}
    for who in ("alice", "mallory"):
        home = short / who
        home.mkdir(mode=0o700)
        client.run("gpg", "--homedir", str(home), "--batch", "--passphrase", "", "--quick-gen-key",
                   f"{who.title()} <{who}@example.com>", "ed25519", "sign", "never")
        homes[who] = home
    server_home = short / "server"
    server_home.mkdir(mode=0o700)
    exported = client.run("gpg", "--homedir", str(homes["alice"]), "--armor", "--export").stdout
    client.run("gpg", "--homedir", str(server_home), "--batch", "--import", input=exported.encode())
    checker = tmp_path / "gpg-server"
    checker.write_text(f'#!/bin/sh\nexec gpg --homedir "{server_home}" "$@"\n')
    checker.chmod(0o755)
    for git_dir in (bare, copy):
        _install(git_dir, client.cwd / "no-allowed-signers", gpg=checker)
    try:
        for who, change in (("alice", "b"), ("mallory", "c")):
            commit(client, work, f"{change}.txt", f"{change}\n", change)
            signer = tmp_path / f"gpg-{who}"
            signer.write_text(f'#!/bin/sh\nexec gpg --homedir "{homes[who]}" "$@"\n')
            signer.chmod(0o755)
            signing = ["-c", f"gpg.program={signer}", "-c", f"user.signingKey={who}@example.com"]
            client.git(*signing, "push", "-q", "--signed", url, "HEAD:main", cwd=work)
            client.git(*signing, "push", "-q", "--signed", f"file://{copy}", "HEAD:main", cwd=work)
            told, expected = _told(bare), _told(copy)
            assert told == expected
            status = "G" if who == "alice" else "E"
            assert f"GIT_PUSH_CERT_STATUS={status}" in told, told
            assert ("GIT_PUSH_CERT_SIGNER=Alice <alice@example.com>" in told) == (who == "alice"), told
    finally:
        for home in (*homes.values(), server_home):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False,
                           capture_output=True)
        shutil.rmtree(short, ignore_errors=True)
    assert_consistent(server, client, "pgp")
