"""Security-key (``sk-``) logins: a signature must say the key was touched, as sshd requires."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh import common, keys
from twisted.cred.credentials import SSHPrivateKey
from twisted.cred.error import UnauthorizedLogin

from gateway.ssh import AuthorizedKeyChecker

APPLICATION = b"ssh:"
ALGORITHM = b"sk-ssh-ed25519@openssh.com"


def _signed_login(flags: int) -> SSHPrivateKey:
    """What Twisted's userauth hands the checker for a login signed by a software stand-in for a
    FIDO token (OpenSSH ``PROTOCOL.u2f``): the signed data wrapped with the application, the flags
    and the counter, the wire signature with the flags and the counter after it."""
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = common.NS(ALGORITHM) + common.NS(public) + common.NS(APPLICATION)
    request = b"the session's login request"
    counter = struct.pack(">I", 7)
    signed = (hashlib.sha256(APPLICATION).digest() + bytes([flags]) + counter + hashlib.sha256(request).digest())
    signature = common.NS(ALGORITHM) + common.NS(private.sign(signed)) + bytes([flags]) + counter
    assert keys.Key.fromString(blob).isSecurityKey()
    return SSHPrivateKey(b"git", ALGORITHM, blob, signed, signature)


def test_a_touched_security_key_logs_in() -> None:
    assert AuthorizedKeyChecker(None)._verify(("erin", None), _signed_login(0x01)) == b"erin"


@pytest.mark.parametrize("flags", [0x00, 0x04])
def test_a_security_key_signature_without_user_presence_is_refused(flags: int) -> None:
    """sshd accepts one only for a key whose line says ``no-touch-required`` (which hgwire skips)."""
    with pytest.raises(UnauthorizedLogin, match="without user presence"):
        AuthorizedKeyChecker(None)._verify(("erin", None), _signed_login(flags))
