"""SSH binary packets under OpenSSH's AEAD ciphers and encrypt-then-MAC MACs: seal, and open incrementally.

RFC 4253 §6 frames a packet as ``uint32 packet_length || byte padding_length ||
payload || padding`` and, in its original form, encrypts the length with the
rest and MACs the plaintext, so a reader must decrypt bytes it cannot yet
trust.  The three constructions here keep the length readable on its own and
authenticate every byte before any of it is decrypted:

- ``chacha20-poly1305@openssh.com`` (OpenSSH ``PROTOCOL.chacha20poly1305``): 64
  bytes of key, the first 32 (K_2) for the packet, the last 32 (K_1) for the
  length.  ChaCha20 runs with the 64-bit nonce = the sequence number
  (big-endian) and a 64-bit block counter: block 0 under K_1 encrypts the
  length, block 0 under K_2 gives the Poly1305 key, blocks 1… under K_2
  encrypt the packet.  The 16-byte tag covers the encrypted length and the
  encrypted packet.
- ``aes128-gcm@openssh.com`` / ``aes256-gcm@openssh.com`` (RFC 5647 as OpenSSH
  ``PROTOCOL`` §1.6 implements it): the length is sent in clear as the
  associated data; the 12-byte nonce is the derived IV, whose last 8 bytes are
  an invocation counter incremented (modulo 2^64) after every packet.
- ``hmac-sha2-256-etm@openssh.com`` / ``hmac-sha2-512-etm@openssh.com`` with an
  ``aes*-ctr`` cipher (OpenSSH ``PROTOCOL`` §1.5): the length in clear, the
  packet encrypted by one CTR keystream per direction, and
  ``HMAC(key, uint32 sequence_number || packet_length || ciphertext)`` after it.

For all three the padding makes ``packet_length`` (the length field itself not
counted) a multiple of the cipher's block size (8 for ChaCha20, 16 for AES) with
at least ``MIN_PADDING`` bytes, which is what OpenSSH checks; the negotiated MAC
is ignored under an AEAD cipher.

A codec serves one direction (each has its own keys).  ``seal(seq, payload)``
returns the bytes for the wire.  Reading is incremental and bounded:
``needed(seq, buffered)`` says how many bytes the next packet takes — 4 until its
length is readable, then the whole packet — and refuses a length over
``MAX_PACKET_LENGTH`` before a byte more is buffered; ``open(seq, packet)``
verifies the tag in constant time, then decrypts, and returns the payload or
raises ``IntegrityError``.

Unlike the other cores this module computes with ``cryptography``: a codec is
pure computation on bytes (no I/O, no clock), and Twisted Conch requires the
package anyway.  The padding bytes come from ``random`` (``os.urandom`` unless
a test gives its own).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305

from protocols.errors import IntegrityError, ProtocolError

CHACHA20_POLY1305 = b"chacha20-poly1305@openssh.com"
AES128_GCM = b"aes128-gcm@openssh.com"
AES256_GCM = b"aes256-gcm@openssh.com"
AES128_CTR = b"aes128-ctr"
AES192_CTR = b"aes192-ctr"
AES256_CTR = b"aes256-ctr"
HMAC_SHA2_256_ETM = b"hmac-sha2-256-etm@openssh.com"
HMAC_SHA2_512_ETM = b"hmac-sha2-512-etm@openssh.com"
HMAC_SHA2_256 = b"hmac-sha2-256"
HMAC_SHA2_512 = b"hmac-sha2-512"

LENGTH_SIZE = 4
"""The ``uint32 packet_length`` field: what a reader needs before it knows a packet's size."""

MIN_PADDING = 4
"""RFC 4253 §6: "There MUST be at least four bytes of padding"."""

MAX_PACKET_LENGTH = 256 * 1024
"""The largest ``packet_length`` accepted: OpenSSH's own PACKET_MAX_SIZE.  RFC 4253 §6.1 asks for 35000
bytes; hgwire's channels take 32 KiB of data per packet."""

TAG_SIZE = 16
"""The Poly1305 and GCM tag."""

CHACHA_KEY_SIZE = 64
CHACHA_BLOCK_SIZE = 8
GCM_IV_SIZE = 12
AES_BLOCK_SIZE = 16

_SEQUENCE_MASK = 0xFFFFFFFF
"""Sequence numbers are uint32 and wrap (RFC 4253 §6.4); the caller's counter may run past 2^32."""

Random = Callable[[int], bytes]


class PacketCodec(Protocol):
    """The framing of one direction of an SSH connection under one set of keys."""

    def seal(self, seq: int, payload: bytes) -> bytes:
        """Pad, encrypt and authenticate ``payload`` (message number and data) as packet ``seq``."""
        ...

    def needed(self, seq: int, buffered: bytes) -> int:
        """The bytes packet ``seq`` takes on the wire, as far as ``buffered`` (its start) tells."""
        ...

    def open(self, seq: int, packet: bytes) -> bytes:
        """Verify packet ``seq`` (exactly ``needed`` bytes), then decrypt it and return its payload."""
        ...


def pad(payload: bytes, block_size: int, random: Random) -> bytes:
    """``padding_length || payload || padding``, a multiple of ``block_size`` long, with ≥ 4 bytes of padding.

    The length field is not counted, as OpenSSH counts for AEAD and etm (its
    ``aadlen``): with it counted (RFC 4253's plain rule) OpenSSH refuses the
    packet with "padding error".
    """
    padding = block_size - (1 + len(payload)) % block_size
    if padding < MIN_PADDING:
        padding += block_size
    return bytes((padding,)) + payload + random(padding)


def unpad(packet: bytes) -> bytes:
    """The payload of a decrypted ``padding_length || payload || padding``; refuse a bad padding length."""
    padding = packet[0]
    if padding < MIN_PADDING or padding > len(packet) - 2:
        raise ProtocolError(f"padding length {padding} does not fit a packet of {len(packet)} bytes")
    return packet[1:len(packet) - padding]


def check_length(length: int, block_size: int) -> None:
    """Refuse a ``packet_length`` over the bound or not a whole number of blocks, before reading further."""
    if length > MAX_PACKET_LENGTH:
        raise ProtocolError(f"packet length {length} is over the limit of {MAX_PACKET_LENGTH} bytes")
    if length < block_size or length % block_size:
        raise ProtocolError(f"packet length {length} is not a whole number of {block_size}-byte blocks")


def _check_size(codec: PacketCodec, seq: int, packet: bytes) -> None:
    if len(packet) != codec.needed(seq, packet):
        raise ProtocolError(f"a packet of {len(packet)} bytes does not match its length field")


class ChaChaPoly:
    """``chacha20-poly1305@openssh.com``."""

    block_size = CHACHA_BLOCK_SIZE

    def __init__(self, key: bytes, random: Random = os.urandom) -> None:
        if len(key) != CHACHA_KEY_SIZE:
            raise ValueError(f"chacha20-poly1305 takes {CHACHA_KEY_SIZE} bytes of key, not {len(key)}")
        # one ChaCha20 context per key (K_2 for the packet, K_1 for its length), moved to each
        # packet's nonce: a new context costs ten times as much as ``reset_nonce``
        self._packet = Cipher(algorithms.ChaCha20(key[:32], bytes(16)), mode=None).encryptor()
        self._length = Cipher(algorithms.ChaCha20(key[32:], bytes(16)), mode=None).encryptor()
        self._random = random

    @staticmethod
    def _keystream(context: CipherContext, seq: int) -> CipherContext:
        """``context`` at block 0 with the nonce ``seq``: cryptography's 16-byte nonce is the 64-bit
        little-endian block counter followed by the 64-bit nonce, ChaCha20's original layout."""
        context.reset_nonce(bytes(8) + struct.pack(">Q", seq & _SEQUENCE_MASK))
        return context

    def _packet_stream(self, seq: int) -> tuple[Poly1305, CipherContext]:
        """The Poly1305 of the packet (keyed by block 0 under K_2) and the keystream, now at block 1."""
        stream = self._keystream(self._packet, seq)
        return Poly1305(stream.update(bytes(64))[:32]), stream

    def seal(self, seq: int, payload: bytes) -> bytes:
        packet = pad(payload, self.block_size, self._random)
        length = self._keystream(self._length, seq).update(struct.pack(">L", len(packet)))
        poly, stream = self._packet_stream(seq)
        encrypted = stream.update(packet)
        poly.update(length)
        poly.update(encrypted)
        return b"".join((length, encrypted, poly.finalize()))

    def needed(self, seq: int, buffered: bytes) -> int:
        if len(buffered) < LENGTH_SIZE:
            return LENGTH_SIZE
        # asked again as the packet's bytes arrive: moving a kept context costs about 2 µs, no cache needed
        length = int.from_bytes(self._keystream(self._length, seq).update(bytes(buffered[:LENGTH_SIZE])), "big")
        check_length(length, self.block_size)
        return LENGTH_SIZE + length + TAG_SIZE

    def open(self, seq: int, packet: bytes) -> bytes:
        _check_size(self, seq, packet)
        view = memoryview(packet)
        poly, stream = self._packet_stream(seq)
        poly.update(view[:-TAG_SIZE])
        if not hmac.compare_digest(poly.finalize(), view[-TAG_SIZE:]):
            raise IntegrityError("a packet's Poly1305 tag does not verify")
        return unpad(stream.update(view[LENGTH_SIZE:-TAG_SIZE]))


class AesGcm:
    """``aes128-gcm@openssh.com`` and ``aes256-gcm@openssh.com`` (the key's size chooses)."""

    block_size = AES_BLOCK_SIZE

    def __init__(self, key: bytes, iv: bytes, random: Random = os.urandom) -> None:
        if len(iv) != GCM_IV_SIZE:
            raise ValueError(f"AES-GCM takes a {GCM_IV_SIZE}-byte IV, not {len(iv)}")
        self._aead = AESGCM(key)
        self._fixed = iv[:4]
        self._invocation = int.from_bytes(iv[4:], "big")
        self._random = random

    def _nonce(self) -> bytes:
        return self._fixed + self._invocation.to_bytes(8, "big")

    def _advance(self) -> None:
        self._invocation = (self._invocation + 1) & 0xFFFFFFFFFFFFFFFF

    def seal(self, seq: int, payload: bytes) -> bytes:
        packet = pad(payload, self.block_size, self._random)
        length = struct.pack(">L", len(packet))
        sealed = self._aead.encrypt(self._nonce(), packet, length)
        self._advance()
        return length + sealed

    def needed(self, seq: int, buffered: bytes) -> int:
        if len(buffered) < LENGTH_SIZE:
            return LENGTH_SIZE
        length = int.from_bytes(buffered[:LENGTH_SIZE], "big")
        check_length(length, self.block_size)
        return LENGTH_SIZE + length + TAG_SIZE

    def open(self, seq: int, packet: bytes) -> bytes:
        _check_size(self, seq, packet)
        try:  # AESGCM verifies the tag before it releases any plaintext
            plain = self._aead.decrypt(self._nonce(), packet[LENGTH_SIZE:], packet[:LENGTH_SIZE])
        except InvalidTag:
            raise IntegrityError("a packet's GCM tag does not verify") from None
        self._advance()
        return unpad(plain)


class EncryptThenMac:
    """An ``aes*-ctr`` cipher with ``hmac-sha2-*-etm@openssh.com``."""

    block_size = AES_BLOCK_SIZE

    def __init__(self, key: bytes, iv: bytes, mac_key: bytes, digest: str, random: Random = os.urandom) -> None:
        # CTR encrypts and decrypts alike: one running keystream serves either direction.
        self._stream = Cipher(algorithms.AES(key), modes.CTR(iv[:AES_BLOCK_SIZE])).encryptor()
        self._mac_size = hashlib.new(digest).digest_size
        self._mac_key = mac_key[:self._mac_size]  # RFC 6668: the key is as long as the digest
        self._digest = digest
        self._random = random

    def _mac(self, seq: int, data: bytes | memoryview) -> bytes:
        mac = hmac.new(self._mac_key, struct.pack(">L", seq & _SEQUENCE_MASK), self._digest)
        mac.update(data)
        return mac.digest()

    def seal(self, seq: int, payload: bytes) -> bytes:
        packet = pad(payload, self.block_size, self._random)
        sealed = struct.pack(">L", len(packet)) + self._stream.update(packet)
        return sealed + self._mac(seq, sealed)

    def needed(self, seq: int, buffered: bytes) -> int:
        if len(buffered) < LENGTH_SIZE:
            return LENGTH_SIZE
        length = int.from_bytes(buffered[:LENGTH_SIZE], "big")
        check_length(length, self.block_size)
        return LENGTH_SIZE + length + self._mac_size

    def open(self, seq: int, packet: bytes) -> bytes:
        _check_size(self, seq, packet)
        view = memoryview(packet)
        if not hmac.compare_digest(self._mac(seq, view[:-self._mac_size]), view[-self._mac_size:]):
            raise IntegrityError("a packet's MAC does not verify")
        return unpad(self._stream.update(view[LENGTH_SIZE:-self._mac_size]))


AEAD_CIPHERS: dict[bytes, Callable[[bytes, bytes], PacketCodec]] = {
    CHACHA20_POLY1305: lambda key, iv: ChaChaPoly(key[:CHACHA_KEY_SIZE]),
    AES128_GCM: lambda key, iv: AesGcm(key[:16], iv[:GCM_IV_SIZE]),
    AES256_GCM: lambda key, iv: AesGcm(key[:32], iv[:GCM_IV_SIZE]),
}
"""Cipher name → codec from (key, IV) material of the key exchange; the MAC negotiated beside them is ignored."""

CTR_KEY_SIZES: dict[bytes, int] = {AES128_CTR: 16, AES192_CTR: 24, AES256_CTR: 32}
"""The ciphers an etm MAC frames with."""

ETM_MACS: dict[bytes, str] = {HMAC_SHA2_256_ETM: "sha256", HMAC_SHA2_512_ETM: "sha512"}
"""Encrypt-then-MAC name → hashlib digest."""


def codec_for(cipher: bytes, mac: bytes, iv: bytes, key: bytes, integrity: bytes) -> PacketCodec | None:
    """The codec of one direction from its negotiated names and derived keys (RFC 4253 §7.2).

    ``None`` when neither name is one of this module's: Conch frames RFC 4253's
    own encrypt-and-MAC packets itself.
    """
    aead = AEAD_CIPHERS.get(cipher)
    if aead is not None:
        return aead(key, iv)
    digest = ETM_MACS.get(mac)
    if digest is None:
        return None
    if cipher not in CTR_KEY_SIZES:
        raise ValueError(f"{mac.decode()} is only framed with an aes-ctr cipher, not {cipher.decode()}")
    return EncryptThenMac(key[:CTR_KEY_SIZES[cipher]], iv, integrity, digest)
