"""Checking a signed push's signature (``gateway.git_signatures``) when its temporary file cannot be
written: nothing is known ("N"), as when no checker can run, and the push goes on."""

from __future__ import annotations

import errno
import os
import tempfile
from typing import Any

import pytest

from backends.interfaces import PushCertSettings
from gateway import git_signatures
from protocols.git_push_cert import NO_SIGNATURE

CERT = (b"certificate version 0.1\npusher alice 1700000000 +0000\npushee x\nnonce 1-abc\n\n"
        b"0000000000000000000000000000000000000000 1111111111111111111111111111111111111111 refs/heads/main\n"
        b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n")


def test_a_signature_the_temporary_directory_cannot_hold_is_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(git_signatures, "_run", lambda *a, **k: ran.append(a))

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", full)
    settings = PushCertSettings(seed=b"s", programs={"ssh": "ssh-keygen"}, allowed_signers="/nonexistent")
    assert git_signatures.check(CERT, settings) == NO_SIGNATURE
    assert ran == []  # no checker was run on a file that is not there
