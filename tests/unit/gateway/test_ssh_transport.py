"""The SSH transport's algorithm lists, its AEAD/etm framing inside Conch, and strict key exchange.

The real OpenSSH client (tests/integration/test_ssh_algorithms.py) shows that
the handshakes, rekeys and transfers work; these tests feed the transport what
a well-behaved client never sends: packets out of order, a forged tag.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh import connection, factory, keys, transport, userauth
from twisted.conch.ssh.common import NS, getNS
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gateway.limits import ConnectionLimits, GuardedFactory
from gateway.ssh import HgwireServerTransport
from gateway.ssh_transport import AlgorithmTransport, PacketCiphers
from protocols.ssh_packets import AesGcm, ChaChaPoly, EncryptThenMac, PacketCodec

CLIENT_VERSION = b"SSH-2.0-OpenSSH_9.2p1 test\r\n"
STRICT_CLIENT = b"curve25519-sha256,ext-info-c,kex-strict-c-v00@openssh.com"
PLAIN_CLIENT = b"curve25519-sha256,ext-info-c"


class _Factory(factory.SSHFactory):
    protocol = AlgorithmTransport

    def __init__(self) -> None:
        key = keys.Key(ed25519.Ed25519PrivateKey.generate())
        self.privateKeys = {b"ssh-ed25519": key}
        self.publicKeys = {b"ssh-ed25519": key.public()}

    def getPrimes(self) -> None:
        return None


def connect() -> tuple[AlgorithmTransport, StringTransport]:
    ssh_factory = _Factory()
    ssh_factory.startFactory()
    proto = ssh_factory.buildProtocol(None)
    assert isinstance(proto, AlgorithmTransport)
    wire = StringTransport()
    proto.makeConnection(wire)
    return proto, wire


def plain(payload: bytes) -> bytes:
    """A packet before the first NEWKEYS (RFC 4253 §6: block size 8, the length field counted)."""
    padding = 8 - (5 + len(payload)) % 8
    padding += 8 if padding < 4 else 0
    return struct.pack(">IB", 1 + len(payload) + padding, padding) + payload + bytes(padding)


def read_plain(data: bytes) -> list[bytes]:
    payloads = []
    while data:
        length, padding = struct.unpack(">IB", data[:5])
        payloads.append(data[5:4 + length - padding])
        data = data[4 + length:]
    return payloads


def kexinit(kex: bytes, cipher: bytes = b"chacha20-poly1305@openssh.com",
            mac: bytes = b"hmac-sha2-256-etm@openssh.com", compression: bytes = b"none") -> bytes:
    lists = [kex, b"ssh-ed25519", cipher, cipher, mac, mac, compression, compression, b"", b""]
    return bytes((transport.MSG_KEXINIT,)) + bytes(16) + b"".join(NS(names) for names in lists) + bytes(5)


def server_packets(wire: StringTransport) -> list[bytes]:
    """The server's packets so far, while no keys are in use."""
    return read_plain(wire.value().split(b"\r\n", 1)[1])


def disconnect_of(payload: bytes) -> tuple[int, bytes]:
    assert payload[0] == transport.MSG_DISCONNECT
    (reason,) = struct.unpack(">L", payload[1:5])
    return reason, getNS(payload[5:])[0]


def test_the_first_kexinit_offers_openssh_algorithms_and_strict_kex() -> None:
    _, wire = connect()
    (first,) = server_packets(wire)
    assert first[0] == transport.MSG_KEXINIT
    names = [names.split(b",") for names in getNS(first[17:], 10)[:10]]
    assert names[2] == names[3] == [b"chacha20-poly1305@openssh.com", b"aes128-gcm@openssh.com",
                                    b"aes256-gcm@openssh.com", b"aes128-ctr", b"aes192-ctr", b"aes256-ctr"]
    assert names[4] == names[5] == [b"hmac-sha2-256-etm@openssh.com", b"hmac-sha2-512-etm@openssh.com",
                                    b"hmac-sha2-256", b"hmac-sha2-512"]
    assert names[0][-2:] == [b"kex-strict-s-v00@openssh.com", b"ext-info-s"]
    assert b"curve25519-sha256" in names[0]
    assert not [name for name in names[0] if b"sha1" in name or b"group14" in name or b"exchange" in name]


def test_hgwire_serves_with_this_transport() -> None:
    assert issubclass(HgwireServerTransport, AlgorithmTransport)


def test_a_strict_client_must_send_kexinit_first() -> None:
    proto, wire = connect()
    proto.dataReceived(CLIENT_VERSION + plain(bytes((transport.MSG_IGNORE,)) + NS(b"")) + plain(
        kexinit(STRICT_CLIENT)))
    reason, text = disconnect_of(server_packets(wire)[-1])
    assert reason == transport.DISCONNECT_PROTOCOL_ERROR
    assert b"KEXINIT was not the first packet" in text
    assert wire.disconnecting


@pytest.mark.parametrize("message", [transport.MSG_IGNORE, transport.MSG_DEBUG, transport.MSG_SERVICE_REQUEST,
                                     transport.MSG_KEXINIT])
def test_a_strict_client_sends_only_key_exchange_messages_until_newkeys(message: int) -> None:
    proto, wire = connect()
    proto.dataReceived(CLIENT_VERSION + plain(kexinit(STRICT_CLIENT)) + plain(bytes((message,)) + NS(b"x")))
    reason, text = disconnect_of(server_packets(wire)[-1])
    assert (reason, text) == (transport.DISCONNECT_PROTOCOL_ERROR,
                              b"strict KEX violation: unexpected message %d during the key exchange" % message)


def test_a_client_without_strict_kex_keeps_rfc_4253_rules() -> None:
    proto, wire = connect()
    proto.dataReceived(CLIENT_VERSION + plain(bytes((transport.MSG_IGNORE,)) + NS(b"")) + plain(
        kexinit(PLAIN_CLIENT)) + plain(bytes((transport.MSG_IGNORE,)) + NS(b"")))
    assert len(server_packets(wire)) == 1  # its KEXINIT, nothing else
    assert not wire.disconnecting
    assert proto._strict_kex is False


class _HgwireFactory(_Factory):
    protocol = HgwireServerTransport


def test_keepalives_do_not_keep_a_connection_from_its_idle_timeout() -> None:
    """A client's ignore messages (PuTTY's keepalives) and global requests (OpenSSH's
    ``ServerAliveInterval``, answered with a failure) every 100 s kept a connection open for ever
    under an idle_timeout of 600 s; a login or channel message still counts as activity."""
    clock = Clock()
    bounds = ConnectionLimits(idle_timeout=600.0)
    guarded = GuardedFactory("ssh", _HgwireFactory(), lambda: bounds, clock)
    guarded.wrappedFactory.startFactory()
    proto = guarded.buildProtocol(IPv4Address("TCP", "10.0.0.1", 5000))
    wire = StringTransport()
    proto.makeConnection(wire)
    server = proto.wrappedProtocol
    assert isinstance(server, HgwireServerTransport)
    try:
        proto.dataReceived(CLIENT_VERSION + plain(kexinit(PLAIN_CLIENT)))
        clock.advance(300)
        proto.dataReceived(plain(bytes((userauth.MSG_USERAUTH_REQUEST,)) + NS(b"alice")))  # counts
        keepalives = [plain(bytes((transport.MSG_IGNORE,)) + NS(b"")),
                      plain(bytes((connection.MSG_GLOBAL_REQUEST,)) + NS(b"keepalive@openssh.com") + b"\x01")]
        for second in range(100, 600, 100):
            clock.advance(100)
            proto.dataReceived(keepalives[second // 100 % 2])
        assert not any(packet[0] == transport.MSG_DISCONNECT for packet in server_packets(wire))
        clock.advance(100)  # 600 s after the login message
        reason, text = disconnect_of(server_packets(wire)[-1])
        assert (reason, text) == (transport.DISCONNECT_BY_APPLICATION,
                                  b"the connection was idle for 600 s (the server's idle_timeout); connect again")
    finally:
        server._cancel_login_deadline()


MATERIAL = {letter: bytes(range(n, n + 128)) for n, letter in zip(range(0, 120, 20), "ABCDEF", strict=True)}
"""Derived key material as RFC 4253 §7.2 names it (A/B: IVs, C/D: keys, E/F: integrity; client to server first)."""

SUITES: dict[str, tuple[bytes, bytes, type]] = {
    "chacha20-poly1305": (b"chacha20-poly1305@openssh.com", b"hmac-sha2-256", ChaChaPoly),
    "aes256-gcm": (b"aes256-gcm@openssh.com", b"hmac-sha2-256-etm@openssh.com", AesGcm),
    "aes128-ctr-etm": (b"aes128-ctr", b"hmac-sha2-256-etm@openssh.com", EncryptThenMac),
}


def client_codecs(suite: str) -> tuple[PacketCodec, PacketCodec]:
    """The client's sealer (client to server keys) and opener (server to client keys) for ``suite``."""
    kind = SUITES[suite][2]
    if kind is ChaChaPoly:
        return ChaChaPoly(MATERIAL["C"][:64]), ChaChaPoly(MATERIAL["D"][:64])
    if kind is AesGcm:
        return AesGcm(MATERIAL["C"][:32], MATERIAL["A"][:12]), AesGcm(MATERIAL["D"][:32], MATERIAL["B"][:12])
    return (EncryptThenMac(MATERIAL["C"][:16], MATERIAL["A"], MATERIAL["E"], "sha256"),
            EncryptThenMac(MATERIAL["D"][:16], MATERIAL["B"], MATERIAL["F"], "sha256"))


def server_ciphers(suite: str) -> PacketCiphers:
    cipher, mac, _ = SUITES[suite]
    ciphers = PacketCiphers(cipher, cipher, mac, mac)
    m = MATERIAL
    ciphers.setKeys(m["B"], m["D"], m["A"], m["C"], m["F"], m["E"])  # the server's out is server to client
    return ciphers


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_keys_change_at_newkeys_and_strict_kex_restarts_the_sequence_numbers(suite: str) -> None:
    proto, wire = connect()
    proto.dataReceived(CLIENT_VERSION + plain(kexinit(STRICT_CLIENT, SUITES[suite][0], SUITES[suite][1])))
    assert isinstance(proto.nextEncryptions, PacketCiphers)
    proto.nextEncryptions = server_ciphers(suite)  # what the key exchange would derive
    proto.sendPacket(transport.MSG_NEWKEYS, b"")
    assert proto.outgoingPacketSequence == 0
    proto.dataReceived(plain(bytes((transport.MSG_NEWKEYS,))))
    assert proto.incomingPacketSequence == 0
    assert [p[0] for p in server_packets(wire)] == [transport.MSG_KEXINIT, transport.MSG_NEWKEYS]

    sealer, opener = client_codecs(suite)
    wire.clear()
    proto.dataReceived(sealer.seal(0, bytes((transport.MSG_IGNORE,)) + NS(b"under the new keys")))
    assert not wire.disconnecting and proto.incomingPacketSequence == 1
    proto.sendPacket(transport.MSG_IGNORE, NS(b"from the server"))
    answer = wire.value()
    assert opener.open(0, answer[:opener.needed(0, answer)]) == bytes((transport.MSG_IGNORE,)) + NS(
        b"from the server")


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_a_forged_packet_is_a_mac_error_and_nothing_after_it_is_read(suite: str) -> None:
    proto, wire = connect()
    proto.dataReceived(CLIENT_VERSION)
    proto.currentEncryptions = server_ciphers(suite)
    proto._keyExchangeState = proto._KEY_EXCHANGE_NONE
    sealer, opener = client_codecs(suite)
    good = sealer.seal(0, bytes((transport.MSG_IGNORE,)) + NS(b"fine"))
    forged = bytearray(sealer.seal(1, bytes((transport.MSG_SERVICE_REQUEST,)) + NS(b"ssh-userauth")))
    forged[-1] ^= 1
    wire.clear()
    proto.dataReceived(good + bytes(forged) + sealer.seal(2, bytes((transport.MSG_IGNORE,)) + NS(b"late")))
    answer = wire.value()
    reason, text = disconnect_of(opener.open(1, answer[:opener.needed(1, answer)]))  # the server's KEXINIT was 0
    assert reason == transport.DISCONNECT_MAC_ERROR
    assert b"does not verify" in text
    assert wire.disconnecting
    assert proto.incomingPacketSequence == 1 and proto.buf == b""


def test_conch_frames_what_is_not_ours() -> None:
    ciphers = PacketCiphers(b"aes128-ctr", b"aes256-ctr", b"hmac-sha2-256", b"hmac-sha2-512")
    ciphers.setKeys(*(MATERIAL[letter] for letter in "BDACFE"))
    assert ciphers.sealer is None and ciphers.opener is None
    assert ciphers.encBlockSize == 16 and ciphers.verifyDigestSize == 64


def conch_framed(ciphers: transport.SSHCiphers, seq: int, payload: bytes) -> bytes:
    """RFC 4253 §6 encrypt-and-MAC, as a client sends it under aes*-ctr and hmac-sha2-*."""
    padding = 16 - (5 + len(payload)) % 16
    padding += 16 if padding < 4 else 0
    packet = struct.pack(">IB", 1 + len(payload) + padding, padding) + payload + bytes(padding)
    return ciphers.encrypt(packet) + ciphers.makeMAC(seq, packet)  # type: ignore[no-any-return]


def test_only_delayed_zlib_is_offered_and_plain_zlib_is_refused() -> None:
    """As sshd since OpenSSH 7.4: ``zlib@openssh.com``, which starts after login, and not ``zlib``,
    which would have the server inflate what anyone sends before they log in."""
    proto, wire = connect()
    offered = list(getNS(server_packets(wire)[0][17:], 10)[6:8])
    assert offered == [b"none,zlib@openssh.com"] * 2
    proto.dataReceived(CLIENT_VERSION + plain(kexinit(STRICT_CLIENT, compression=b"zlib")))
    assert wire.disconnecting


@pytest.mark.parametrize("suite", ["chacha20-poly1305", "aes128-ctr-hmac-sha2-256"])
def test_zlib_is_inflated_within_bounds(suite: str) -> None:
    cipher, mac = ((b"chacha20-poly1305@openssh.com", b"hmac-sha2-256") if suite == "chacha20-poly1305"
                   else (b"aes128-ctr", b"hmac-sha2-256"))
    proto, wire = connect()
    proto.dataReceived(CLIENT_VERSION + plain(kexinit(STRICT_CLIENT, cipher, mac, b"zlib@openssh.com")))
    ciphers = PacketCiphers(cipher, cipher, mac, mac)
    m = MATERIAL
    ciphers.setKeys(m["B"], m["D"], m["A"], m["C"], m["F"], m["E"])
    proto.nextEncryptions = ciphers
    proto.sendPacket(transport.MSG_NEWKEYS, b"")
    proto.dataReceived(plain(bytes((transport.MSG_NEWKEYS,))))
    assert proto.incomingCompression is None and proto.outgoingCompression is None  # not before login
    proto.sendPacket(userauth.MSG_USERAUTH_SUCCESS, b"")
    assert proto.incomingCompression is not None and proto.outgoingCompression is not None
    if suite == "chacha20-poly1305":
        seal = ChaChaPoly(MATERIAL["C"][:64]).seal
    else:
        client = transport.SSHCiphers(cipher, cipher, mac, mac)
        client.setKeys(m["A"], m["C"], m["B"], m["D"], m["E"], m["F"])

        def seal(seq: int, payload: bytes) -> bytes:
            return conch_framed(client, seq, payload)

    deflater = zlib.compressobj()

    def deflated(payload: bytes) -> bytes:
        return deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)

    wire.clear()
    proto.dataReceived(seal(0, deflated(bytes((transport.MSG_IGNORE,)) + NS(bytes(100_000)))))
    assert not wire.disconnecting and proto.incomingPacketSequence == 1
    proto.dataReceived(seal(1, deflated(bytes((transport.MSG_IGNORE,)) + NS(bytes(10_000_000)))))
    assert wire.disconnecting
    assert proto.incomingPacketSequence == 1


@pytest.mark.parametrize(("cipher", "mac", "lent"), [
    (b"chacha20-poly1305@openssh.com", b"umac-64-etm@openssh.com", [b"umac-64-etm@openssh.com"]),
    (b"aes128-gcm@openssh.com,aes128-ctr", b"hmac-md5,hmac-sha1", [b"hmac-md5"]),
    (b"chacha20-poly1305@openssh.com", b"umac-64@openssh.com,hmac-sha2-256", []),  # one in common
    (b"aes128-ctr,chacha20-poly1305@openssh.com", b"umac-64-etm@openssh.com", []),  # ctr would go MAC-less
    (b"aes128-ctr", b"hmac-md5", []),
])
def test_a_mac_is_lent_only_where_the_cipher_is_aead_both_ways(cipher: bytes, mac: bytes, lent: list[bytes]) -> None:
    from gateway.ssh_transport import CIPHERS, MACS, implicit_macs

    assert implicit_macs(kexinit(b"curve25519-sha256", cipher, mac)[1:], list(CIPHERS), list(MACS)) == lent
    assert implicit_macs(b"\x00" * 20, list(CIPHERS), list(MACS)) == []  # malformed: Conch refuses it


def test_a_cipher_without_a_codec_never_goes_without_a_mac() -> None:
    ciphers = PacketCiphers(b"aes128-ctr", b"aes128-ctr", b"umac-64@openssh.com", b"umac-64@openssh.com")
    with pytest.raises(ValueError, match="neither implicit"):
        ciphers.setKeys(bytes(16), bytes(16), bytes(16), bytes(16), bytes(32), bytes(32))
