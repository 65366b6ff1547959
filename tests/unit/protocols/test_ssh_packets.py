"""SSH packets under chacha20-poly1305, AES-GCM and encrypt-then-MAC: byte transcripts, bounds, tampering.

The expected packets are built here step by step from the specifications
(OpenSSH PROTOCOL.chacha20poly1305, RFC 5647 as OpenSSH PROTOCOL §1.6, OpenSSH
PROTOCOL §1.5) with ``cryptography``'s primitives and ``hmac``, never through
the codecs; the primitives themselves are pinned to RFC 8439 and the GCM
specification's vectors first, so a wrong nonce layout cannot pass its own test.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305
from hypothesis import given
from hypothesis import strategies as st

from protocols import ssh_packets
from protocols.errors import IntegrityError, ProtocolError
from protocols.ssh_packets import (
    MAX_PACKET_LENGTH,
    AesGcm,
    ChaChaPoly,
    EncryptThenMac,
    PacketCodec,
    codec_for,
)

KEY64 = bytes(range(0x40, 0x80))
AES_KEY = bytes(range(0x10, 0x30))
IV = bytes(range(0xC0, 0xD0))
MAC_KEY = bytes(range(0x80, 0xC0))


def filler(n: int) -> bytes:
    """Padding bytes a test can predict (the codecs' default is os.urandom)."""
    return bytes(range(0xE0, 0xE0 + n))


def chacha20(key: bytes, counter: int, nonce: bytes, data: bytes) -> bytes:
    """ChaCha20 with a 64-bit block counter and a 64-bit nonce (state words 12-13 and 14-15)."""
    return Cipher(algorithms.ChaCha20(key, counter.to_bytes(8, "little") + nonce), mode=None).encryptor().update(data)


# --- the primitives, pinned to their published vectors ----------------------------------------

def test_cryptography_chacha20_nonce_is_state_words_12_to_15_rfc8439_2_3_2() -> None:
    # RFC 8439 §2.3.2: key 00..1f, block count 1, nonce 00:00:00:09:00:00:00:4a:00:00:00:00
    nonce16 = (1).to_bytes(4, "little") + bytes.fromhex("000000090000004a00000000")
    block = Cipher(algorithms.ChaCha20(bytes(range(32)), nonce16), mode=None).encryptor().update(bytes(64))
    assert block == bytes.fromhex(
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e")


def test_poly1305_key_with_a_64_bit_counter_and_nonce_rfc8439_2_6_2() -> None:
    # RFC 8439 §2.6.2's nonce 00000000 00010203 04050607 is counter 0 and the 64-bit nonce
    # 0001020304050607: exactly how OpenSSH keys Poly1305 for sequence number 0x0001020304050607.
    key = chacha20(bytes(range(0x80, 0xA0)), 0, bytes.fromhex("0001020304050607"), bytes(32))
    assert key == bytes.fromhex("8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646")


def test_poly1305_rfc8439_2_5_2() -> None:
    key = bytes.fromhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    tag = Poly1305.generate_tag(key, b"Cryptographic Forum Research Group")
    assert tag == bytes.fromhex("a8061dc1305136c6c22b8baf0c0127a9")


def test_aes_gcm_test_case_2() -> None:
    # McGrew & Viega, "The Galois/Counter Mode of Operation", test case 2
    sealed = AESGCM(bytes(16)).encrypt(bytes(12), bytes(16), None)
    assert sealed == bytes.fromhex("0388dace60b6a392f328c2b971b2fe78" "ab6e47d42cec13bdf53a67b21257bddf")


# --- known-answer packets ---------------------------------------------------------------------

def chacha_packet(key: bytes, seq: int, payload: bytes, padding: bytes, declared: int | None = None) -> bytes:
    """PROTOCOL.chacha20poly1305, step by step (``declared``: a padding_length byte that lies)."""
    k_2, k_1 = key[:32], key[32:]
    nonce = struct.pack(">Q", seq)
    packet = bytes((len(padding) if declared is None else declared,)) + payload + padding
    length = chacha20(k_1, 0, nonce, struct.pack(">I", len(packet)))
    poly_key = chacha20(k_2, 0, nonce, bytes(32))
    encrypted = chacha20(k_2, 1, nonce, packet)
    return length + encrypted + Poly1305.generate_tag(poly_key, length + encrypted)


def gcm_packet(key: bytes, iv: bytes, invocation: int, payload: bytes, padding: bytes) -> bytes:
    """RFC 5647 §7.1 as OpenSSH sends it: the length in clear as AAD, IV = fixed || invocation counter."""
    packet = bytes((len(padding),)) + payload + padding
    length = struct.pack(">I", len(packet))
    counter = (int.from_bytes(iv[4:12], "big") + invocation) % 2**64
    return length + AESGCM(key).encrypt(iv[:4] + counter.to_bytes(8, "big"), packet, length)


def etm_packets(key: bytes, iv: bytes, mac_key: bytes, digest: str,
                packets: list[tuple[int, bytes, bytes]]) -> list[bytes]:
    """OpenSSH PROTOCOL §1.5: one CTR keystream, mac = HMAC(uint32 seq || packet_length || ciphertext)."""
    stream = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    size = hashlib.new(digest).digest_size
    out = []
    for seq, payload, padding in packets:
        packet = bytes((len(padding),)) + payload + padding
        sealed = struct.pack(">I", len(packet)) + stream.update(packet)
        out.append(sealed + hmac.new(mac_key[:size], struct.pack(">I", seq) + sealed, digest).digest())
    return out


# (payload size, padding the rule asks for): block 8 for ChaCha20, 16 for AES; the length field not counted
CHACHA_PADDING = [(1, 6), (3, 4), (4, 11), (11, 4), (12, 11), (32777, 6)]
AES_PADDING = [(1, 14), (11, 4), (12, 19), (27, 4), (32777, 6)]


@pytest.mark.parametrize(("size", "padding"), CHACHA_PADDING)
def test_chacha20_poly1305_known_answer(size: int, padding: int) -> None:
    payload = (b"^" + bytes(range(256)) * 200)[:size]
    codec = ChaChaPoly(KEY64, random=filler)
    for seq in (0, 3, 0x01020304):
        assert codec.seal(seq, payload) == chacha_packet(KEY64, seq, payload, filler(padding))


def test_chacha20_poly1305_sequence_numbers_wrap_at_2_32() -> None:
    codec = ChaChaPoly(KEY64, random=filler)
    assert codec.seal(2**32 + 7, b"^hello") == chacha_packet(KEY64, 7, b"^hello", filler(9))


@pytest.mark.parametrize(("size", "padding"), AES_PADDING)
@pytest.mark.parametrize("key_size", [16, 32])
def test_aes_gcm_known_answer_and_invocation_counter(size: int, padding: int, key_size: int) -> None:
    payload = b"^" * size
    key = AES_KEY[:key_size]
    codec = AesGcm(key, IV[:12], random=filler)
    for invocation in range(3):  # the nonce moves with each packet, whatever the sequence number says
        assert codec.seal(100, payload) == gcm_packet(key, IV[:12], invocation, payload, filler(padding))


def test_aes_gcm_invocation_counter_wraps_within_its_8_bytes() -> None:
    iv = bytes.fromhex("01020304" "ffffffffffffffff")
    codec = AesGcm(AES_KEY[:16], iv, random=filler)
    assert codec.seal(0, b"^a") == gcm_packet(AES_KEY[:16], iv, 0, b"^a", filler(13))
    assert codec.seal(1, b"^a") == gcm_packet(AES_KEY[:16], bytes.fromhex("01020304" + "00" * 8), 0, b"^a",
                                              filler(13))


@pytest.mark.parametrize(("key_size", "digest"), [(16, "sha256"), (32, "sha512"), (24, "sha256")])
def test_encrypt_then_mac_known_answer(key_size: int, digest: str) -> None:
    # five packets in one keystream, the sequence number wrapping from 2^32 - 1 to 0 on the way
    sizes = [(seq, b"^" * size, filler(padding)) for seq, (size, padding) in zip(
        [2**32 - 2, 2**32 - 1, 0, 1, 2], AES_PADDING, strict=True)]
    codec = EncryptThenMac(AES_KEY[:key_size], IV, MAC_KEY, digest, random=filler)
    sealed = [codec.seal(2**32 - 2 + n, payload) for n, (_, payload, _) in enumerate(sizes)]
    assert sealed == etm_packets(AES_KEY[:key_size], IV, MAC_KEY, digest, sizes)


# --- opening: round trips, truncation, tampering, bounds --------------------------------------

CodecPair = Callable[[], PacketCodec]

CODECS: dict[str, CodecPair] = {
    "chacha20-poly1305": lambda: ChaChaPoly(KEY64),
    "aes128-gcm": lambda: AesGcm(AES_KEY[:16], IV[:12]),
    "aes256-gcm": lambda: AesGcm(AES_KEY, IV[:12]),
    "aes128-ctr-hmac-sha2-256-etm": lambda: EncryptThenMac(AES_KEY[:16], IV, MAC_KEY, "sha256"),
    "aes256-ctr-hmac-sha2-512-etm": lambda: EncryptThenMac(AES_KEY, IV, MAC_KEY, "sha512"),
}
"""A fresh codec with the test keys: one seals, another (the peer's) opens."""

codec_names = pytest.mark.parametrize("name", sorted(CODECS))


def read_all(opener: PacketCodec, data: bytes, seq: int = 0) -> list[bytes]:
    """What the transport does with its buffer: ask how much the next packet needs, open it when it is in."""
    payloads = []
    while len(data) >= (size := opener.needed(seq, data)):
        payloads.append(opener.open(seq, data[:size]))
        data, seq = data[size:], seq + 1
    assert not data, "bytes left after the last packet"
    return payloads


@codec_names
def test_round_trip(name: str) -> None:
    payloads = [bytes((94,)) + bytes(n) for n in (0, 1, 2, 7, 8, 15, 16, 100, 32768 + 8)]
    sealer = CODECS[name]()
    wire = b"".join(sealer.seal(seq, payload) for seq, payload in enumerate(payloads, 5))
    assert read_all(CODECS[name](), wire, 5) == payloads


@codec_names
def test_every_truncation_waits_for_more_and_is_not_opened(name: str) -> None:
    packet = CODECS[name]().seal(9, b"^" + bytes(range(40)))
    opener = CODECS[name]()
    assert opener.needed(9, packet) == len(packet)
    assert opener.needed(9, packet + b"next packet") == len(packet)
    for cut in range(len(packet)):
        assert opener.needed(9, packet[:cut]) > cut
        with pytest.raises(ProtocolError):
            opener.open(9, packet[:cut])
    assert opener.open(9, packet) == b"^" + bytes(range(40))


def refused(opener: PacketCodec, seq: int, data: bytes) -> bool:
    """Whether a reader refuses ``data``, given the bytes its (maybe altered) length asks for."""
    try:
        size = opener.needed(seq, data)
        opener.open(seq, (data + bytes(max(0, size - len(data))))[:size])
    except ProtocolError:
        return True
    return False


@codec_names
def test_a_flipped_bit_anywhere_is_refused(name: str) -> None:
    packet = CODECS[name]().seal(3, b"^" + bytes(range(20)))
    for bit in range(len(packet) * 8):
        altered = bytearray(packet)
        altered[bit // 8] ^= 1 << (bit % 8)
        assert refused(CODECS[name](), 3, bytes(altered)), f"bit {bit} flipped went through"


@codec_names
def test_a_flipped_bit_after_the_length_fails_integrity(name: str) -> None:
    packet = CODECS[name]().seal(3, b"^payload")
    for offset in (4, len(packet) // 2, len(packet) - 1):  # the packet, its end, the tag or MAC
        altered = bytearray(packet)
        altered[offset] ^= 0x80
        with pytest.raises(IntegrityError):
            CODECS[name]().open(3, bytes(altered))


@pytest.mark.parametrize("name", [name for name in sorted(CODECS) if not name.endswith("gcm")])
def test_the_wrong_sequence_number_is_refused(name: str) -> None:
    # (GCM's nonce is its own invocation counter, not the sequence number)
    packet = CODECS[name]().seal(3, b"^payload")
    assert refused(CODECS[name](), 4, packet)


@codec_names
def test_a_refused_packet_changes_no_state(name: str) -> None:
    # the tag is checked before anything is decrypted: the CTR keystream and the GCM counter do not move
    sealer = CODECS[name]()
    first, second = sealer.seal(0, b"^one"), sealer.seal(1, b"^two")
    opener = CODECS[name]()
    altered = first[:-1] + bytes((first[-1] ^ 1,))
    with pytest.raises(IntegrityError):
        opener.open(0, altered)
    assert read_all(opener, first + second) == [b"^one", b"^two"]


def encrypted_length(name: str, seq: int, length: int) -> bytes:
    """The 4 bytes a peer sends to announce ``length``."""
    if name == "chacha20-poly1305":
        return chacha20(KEY64[32:], 0, struct.pack(">Q", seq), struct.pack(">I", length))
    return struct.pack(">I", length)


@codec_names
def test_an_oversized_length_is_refused_from_its_4_bytes(name: str) -> None:
    opener = CODECS[name]()
    over = MAX_PACKET_LENGTH + 16
    with pytest.raises(ProtocolError, match="over the limit"):
        opener.needed(6, encrypted_length(name, 6, over))
    with pytest.raises(ProtocolError, match="over the limit"):
        opener.needed(6, encrypted_length(name, 6, 0xFFFFFFF0))
    assert opener.needed(6, encrypted_length(name, 6, MAX_PACKET_LENGTH)) > MAX_PACKET_LENGTH


@codec_names
@pytest.mark.parametrize("length", [0, 1, 4, 12, 17])
def test_a_length_that_is_not_whole_blocks_is_refused(name: str, length: int) -> None:
    with pytest.raises(ProtocolError, match="blocks"):
        CODECS[name]().needed(1, encrypted_length(name, 1, length))


@pytest.mark.parametrize(("payload", "padding", "declared"), [
    (b"^abc", filler(3), None),  # under RFC 4253's minimum of 4
    (b"", filler(15), None),  # no message number left
    (b"^abcdefghij", filler(4), 200),  # more than the packet holds
])
def test_a_bad_padding_length_is_refused_after_the_tag(payload: bytes, padding: bytes, declared: int | None
                                                       ) -> None:
    packet = chacha_packet(KEY64, 2, payload, padding, declared)
    with pytest.raises(ProtocolError, match="padding length") as refusal:
        ChaChaPoly(KEY64).open(2, packet)
    assert not isinstance(refusal.value, IntegrityError)


@given(
    name=st.sampled_from(sorted(CODECS)),
    payloads=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    first_seq=st.integers(min_value=0, max_value=2**32 + 5),
)
def test_sealed_packets_read_back_in_any_chunking(name: str, payloads: list[bytes], cuts: list[int],
                                                  first_seq: int) -> None:
    sealer = CODECS[name]()
    wire = b"".join(sealer.seal(seq, payload) for seq, payload in enumerate(payloads, first_seq))
    points = sorted({min(cut, len(wire)) for cut in cuts} | {len(wire)})
    opener, buffered, seq, received, start = CODECS[name](), b"", first_seq, [], 0
    for point in points:
        buffered += wire[start:point]
        start = point
        while len(buffered) >= (size := opener.needed(seq, buffered)):
            received.append(opener.open(seq, buffered[:size]))
            buffered, seq = buffered[size:], seq + 1
    assert received == payloads
    assert buffered == b""


# --- the table of names -----------------------------------------------------------------------

MATERIAL = bytes(range(128))


@pytest.mark.parametrize(("cipher", "mac", "kind"), [
    (b"chacha20-poly1305@openssh.com", b"hmac-sha2-256", ChaChaPoly),
    (b"aes128-gcm@openssh.com", b"hmac-sha2-512-etm@openssh.com", AesGcm),
    (b"aes256-gcm@openssh.com", b"hmac-sha2-256", AesGcm),
    (b"aes128-ctr", b"hmac-sha2-256-etm@openssh.com", EncryptThenMac),
    (b"aes192-ctr", b"hmac-sha2-512-etm@openssh.com", EncryptThenMac),
    (b"aes256-ctr", b"hmac-sha2-512-etm@openssh.com", EncryptThenMac),
])
def test_codec_for_our_names(cipher: bytes, mac: bytes, kind: type) -> None:
    assert isinstance(codec_for(cipher, mac, MATERIAL, MATERIAL, MATERIAL), kind)


def test_codec_for_names_conch_frames_itself() -> None:
    assert codec_for(b"aes128-ctr", b"hmac-sha2-256", MATERIAL, MATERIAL, MATERIAL) is None
    assert codec_for(b"none", b"none", b"", b"", b"") is None


def test_an_etm_mac_needs_a_ctr_cipher() -> None:
    with pytest.raises(ValueError, match="aes-ctr"):
        codec_for(b"aes128-cbc", b"hmac-sha2-256-etm@openssh.com", MATERIAL, MATERIAL, MATERIAL)


def test_codec_for_uses_the_key_exchange_material_as_openssh_does() -> None:
    # chacha takes the first 64 bytes of the derived key; GCM the first 12 bytes of the derived IV
    chacha = codec_for(ssh_packets.CHACHA20_POLY1305, b"", MATERIAL, MATERIAL, MATERIAL)
    assert chacha is not None
    assert read_all(ChaChaPoly(MATERIAL[:64]), chacha.seal(0, b"^x")) == [b"^x"]
    gcm = codec_for(ssh_packets.AES256_GCM, b"", MATERIAL, MATERIAL, MATERIAL)
    assert gcm is not None
    assert read_all(AesGcm(MATERIAL[:32], MATERIAL[:12]), gcm.seal(0, b"^x")) == [b"^x"]
    etm = codec_for(ssh_packets.AES192_CTR, ssh_packets.HMAC_SHA2_512_ETM, MATERIAL, MATERIAL, MATERIAL)
    assert etm is not None
    assert read_all(EncryptThenMac(MATERIAL[:24], MATERIAL[:16], MATERIAL[:64], "sha512"),
                    etm.seal(0, b"^x")) == [b"^x"]
