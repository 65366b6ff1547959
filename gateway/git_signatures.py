"""Check a signed push's certificate with the program its signature needs, as git's receive-pack does.

OpenPGP signatures go to ``gpg --keyid-format=long --status-fd=1 --verify <sig> -``
(X.509 ones to ``gpgsm``), the signed text on standard input, and the status
lines say the verdict (``protocols.git_push_cert.parse_gpg_status``).  SSH
signatures need ``gpg.ssh.allowedSignersFile``: ``ssh-keygen -Y find-principals``
names who may have signed, ``-Y verify`` checks each until one holds, and a key
no allowed signer names is still checked (``-Y check-novalidate``) so the hooks
learn it is good but unknown.  The programs are the repository's
(``backends.interfaces.PushCertSettings``) and run with the server's
environment (its ``GNUPGHOME``), in the git directory.

Blocking: run on the threads that run hooks, and only when a hook is there to be
told the result, as git does it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile

from backends.interfaces import PushCertSettings
from gateway.errors import TMPDIR_ADVICE
from gateway.logs import SafeLogger
from protocols import git_push_cert
from protocols.git_push_cert import NO_SIGNATURE, SignatureCheck

log = SafeLogger()

CHECK_TIMEOUT = 60.0
"""Seconds one run of a checking program may take; then it is stopped and nothing is known."""


def check(cert: bytes, settings: PushCertSettings) -> SignatureCheck:
    """What the certificate's signature says: git's letter, the key and the signer."""
    payload, signature = git_push_cert.split(cert)
    fmt = git_push_cert.signature_format(signature)
    if fmt is None:  # no signature at all (git's own client always signs)
        return NO_SIGNATURE
    program = settings.programs.get(fmt, "")
    sig = None
    try:
        sig = tempfile.NamedTemporaryFile(prefix=".git_vtag_tmp")  # noqa: SIM115 -- closed below
        sig.write(signature)
        sig.flush()
    except OSError as exc:  # a full or unwritable TMPDIR: the checker has nothing to read
        log.warn("a signed push's signature was not checked: it could not be written to the temporary "  # noqa: G010
                 "directory {tmpdir} ({reason}); " + TMPDIR_ADVICE,
                 tmpdir=tempfile.gettempdir(), reason=exc.strerror or str(exc))
        if sig is not None:
            with contextlib.suppress(OSError):
                sig.close()
        return NO_SIGNATURE
    with sig:
        if fmt == "ssh":
            return _check_ssh(program, sig.name, payload, settings)
        args = [program, *(["--keyid-format=long"] if fmt == "openpgp" else []), "--status-fd=1", "--verify",
                sig.name, "-"]
        ran = _run(args, payload, settings.cwd)
        return git_push_cert.parse_gpg_status(ran[1]) if ran is not None else NO_SIGNATURE


def _check_ssh(program: str, sig: str, payload: bytes, settings: PushCertSettings) -> SignatureCheck:
    allowed = settings.allowed_signers
    if allowed is None:
        log.warn("a signed push's SSH signature was not checked: gpg.ssh.allowedSignersFile needs to be "  # noqa: G010
                 "configured and exist for ssh signature verification")
        return NO_SIGNATURE
    found = _run([program, "-Y", "find-principals", "-f", allowed, "-s", sig], None, settings.cwd)
    if found is None or (found[0] and b"usage:" in found[2]):
        return NO_SIGNATURE
    status, principals, found_err = found
    out, err = b"", b""
    if status or not principals.strip():  # no allowed signer: still say whether the key signed it
        ran = _run([program, "-Y", "check-novalidate", "-n", "git", "-s", sig], payload, settings.cwd)
        if ran is not None:
            _, out, err = ran
    else:
        revocation = settings.revocation_file
        if revocation is not None and not os.path.exists(revocation):
            log.warn("ssh signing revocation file configured but not found: {path}", path=revocation)  # noqa: G010
            revocation = None
        for line in principals.split(b"\n"):
            principal = line.removesuffix(b"\r")
            if not principal:
                continue
            args = [program, "-Y", "verify", "-n", "git", "-f", allowed,
                    "-I", principal.decode("utf-8", "surrogateescape"), "-s", sig]
            ran = _run(args + (["-r", revocation] if revocation else []), payload, settings.cwd)
            if ran is None:
                break
            status, out, err = ran
            if status == 0 and out.startswith(b"Good"):
                break
    output = _strip_lines(out) + found_err + err
    return git_push_cert.parse_ssh_output(output)


def _strip_lines(text: bytes) -> bytes:
    """Blank lines around, and spaces at the ends of lines, removed (git's ``strbuf_stripspace``)."""
    lines = [line.rstrip() for line in text.split(b"\n")]
    kept = b"\n".join(lines).strip(b"\n")
    return kept + b"\n" if kept else b""


def _run(args: list[str], stdin: bytes | None, cwd: str | None) -> tuple[int, bytes, bytes] | None:
    """Exit status, standard output and error of a checking program; None when it could not run."""
    try:
        done = subprocess.run(args, input=stdin if stdin is not None else b"", capture_output=True, cwd=cwd,
                              timeout=CHECK_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        log.error("checking a signed push with {program} took over {seconds} s and was stopped", program=args[0],
                  seconds=CHECK_TIMEOUT)
        return None
    except OSError as exc:
        log.error("cannot run {program} to check a signed push: {error}", program=args[0],
                  error=exc.strerror or str(exc))
        return None
    return done.returncode, done.stdout, done.stderr
