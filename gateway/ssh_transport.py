"""Conch's SSH server transport offering OpenSSH's algorithms: AEAD ciphers, encrypt-then-MAC, strict KEX.

What is offered, in order of preference:

- ciphers ``CIPHERS``: chacha20-poly1305@openssh.com, aes128-gcm@openssh.com,
  aes256-gcm@openssh.com, then aes128/192/256-ctr;
- MACs ``MACS``: hmac-sha2-256-etm@openssh.com, hmac-sha2-512-etm@openssh.com,
  then hmac-sha2-256 and hmac-sha2-512 (encrypt-and-MAC, for older clients);
- key exchanges ``KEX_ALGORITHMS``: the hybrid ML-KEM one where ``cryptography``
  has ML-KEM, curve25519 and the NIST curves.  Group exchange is off (no
  moduli); CBC, 3DES, MD5, SHA-1 and the SHA-1 Diffie-Hellman groups are gone.

Conch frames RFC 4253's encrypt-and-MAC packets itself; the AEAD and etm
packets are framed by ``protocols.ssh_packets``.  ``PacketCiphers`` holds the
codec of each direction that uses an algorithm of ours, and
``AlgorithmTransport.sendPacket``/``getPacket`` use it when there is one and
Conch's own framing otherwise.  Both share Conch's sequence counters, its key
exchange state (messages held back during a key exchange) and its zlib
compression (``zlib@openssh.com`` here, delayed until login; the inflater is bounded), and the keys change where Conch
changes them: when the client's NEWKEYS arrives (Conch sends nothing between its
own NEWKEYS and the client's).

Strict key exchange (OpenSSH ``PROTOCOL`` "strict key exchange extension", the
counter to the Terrapin prefix truncation of CVE-2023-48795, which applies to
chacha20-poly1305 and etm MACs): the server's first KEXINIT names
``kex-strict-s-v00@openssh.com``; when the client's first KEXINIT names
``kex-strict-c-v00@openssh.com``, that KEXINIT must have been the client's first
packet, only key exchange messages are accepted until the first NEWKEYS, and
each side's sequence number restarts at 0 after every NEWKEYS it sends or
receives.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from twisted.conch.ssh import transport, userauth
from twisted.conch.ssh.common import getNS

from gateway.logs import SafeLogger
from protocols import ssh_packets
from protocols.errors import IntegrityError, ProtocolError
from protocols.ssh_packets import MAX_PACKET_LENGTH, PacketCodec, codec_for

log = SafeLogger()

CIPHERS = (
    ssh_packets.CHACHA20_POLY1305, ssh_packets.AES128_GCM, ssh_packets.AES256_GCM,
    ssh_packets.AES128_CTR, ssh_packets.AES192_CTR, ssh_packets.AES256_CTR,
)
MACS = (
    ssh_packets.HMAC_SHA2_256_ETM, ssh_packets.HMAC_SHA2_512_ETM,
    ssh_packets.HMAC_SHA2_256, ssh_packets.HMAC_SHA2_512,
)
KEX_ALGORITHMS = (
    b"mlkem768x25519-sha256", b"curve25519-sha256", b"curve25519-sha256@libssh.org",
    b"ecdh-sha2-nistp256", b"ecdh-sha2-nistp384", b"ecdh-sha2-nistp521",
)

USER_SIGNATURE_ALGORITHMS = (
    b"ssh-ed25519", b"sk-ssh-ed25519@openssh.com",
    b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521", b"sk-ecdsa-sha2-nistp256@openssh.com",
    b"rsa-sha2-512", b"rsa-sha2-256",
)
"""What ``server-sig-algs`` (RFC 8308) names: the signatures a user's key (or certificate, by its
key's algorithm) may log in with, whatever the host keys are.  No ``ssh-rsa`` (RSA with SHA-1),
as OpenSSH's sshd since 8.8: an RSA key or certificate logs in with rsa-sha2-256/512."""
SHA1_USER_ALGORITHMS = frozenset({b"ssh-rsa", b"ssh-rsa-cert-v01@openssh.com"})
"""Public key algorithms that sign with SHA-1: refused for a login, never offered for a host key."""
MALFORMED_BEFORE_LOGIN = (struct.error, TypeError, ValueError, IndexError, KeyError, AttributeError)
"""What Conch's message parsers raise for a message cut short or sent out of order (a key exchange
reply before KEXINIT): before login, the connection is closed with a protocol error and one log line
(each was an "Unhandled Error" traceback: 300 hostile connections wrote 440 KB of log)."""
STRICT_KEX_CLIENT = b"kex-strict-c-v00@openssh.com"
STRICT_KEX_SERVER = b"kex-strict-s-v00@openssh.com"

KEX_METHOD_MESSAGES = range(30, 50)
"""RFC 4250 §4.1.2: the message numbers of the key exchange method (ECDH_INIT, KEXDH_INIT, GEX...)."""

DELAYED_ZLIB = b"zlib@openssh.com"
COMPRESSIONS = (b"none", DELAYED_ZLIB)
"""OpenSSH's compressions since 7.4: ``zlib@openssh.com`` starts once the user has logged in (after
the server's USERAUTH_SUCCESS), so nobody can make the server inflate before authenticating; plain
``zlib``, from the key exchange on, is not offered."""

REKEY_BYTES = 1 << 30
"""Packet bytes either way after which the server starts a new key exchange, as OpenSSH's sshd does
by default (its limit for chacha20-poly1305; OpenSSH clients rekey at the same point themselves, a
client that never does is rekeyed all the same)."""

INITIAL_KEX_MESSAGES = frozenset({transport.MSG_DISCONNECT, transport.MSG_NEWKEYS, *KEX_METHOD_MESSAGES})
"""What a strict client may send between its first KEXINIT and its first NEWKEYS (no IGNORE, no DEBUG)."""


class BoundedInflater:
    """zlib's inflater for one direction that refuses a packet inflating past ``MAX_PACKET_LENGTH``.

    Only a logged-in user's packets are inflated (``DELAYED_ZLIB``), but without a bound a few
    KiB of compressed zeros would still become gigabytes in memory.
    """

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj()

    def decompress(self, data: bytes) -> bytes:
        payload = self._inflater.decompress(data, MAX_PACKET_LENGTH + 1)
        if len(payload) > MAX_PACKET_LENGTH or self._inflater.unconsumed_tail:
            raise zlib.error(f"a packet inflates past {MAX_PACKET_LENGTH} bytes")
        return payload


def implicit_macs(kexinit: bytes, ciphers: list[bytes], macs: list[bytes]) -> list[bytes]:
    """The client's first MAC of each direction that has none in common with ``macs``, when the
    cipher it will get in both directions is an AEAD one, whose MAC is implicit (as sshd, which does
    not negotiate a MAC then): Conch would refuse the client for want of a MAC it does not use.
    Nothing otherwise, so a non-AEAD cipher never goes without a MAC."""
    try:
        lists = [names.split(b",") for names in getNS(kexinit[16:], 10)[:-1]]
    except (IndexError, ValueError, struct.error):  # a malformed KEXINIT: Conch's own parse refuses it
        return []
    enc_cs, enc_sc, mac_cs, mac_sc = lists[2], lists[3], lists[4], lists[5]

    def chosen(client: list[bytes], server: list[bytes]) -> bytes | None:
        return next((name for name in client if name in server), None)

    if not all(chosen(enc, ciphers) in ssh_packets.AEAD_CIPHERS for enc in (enc_cs, enc_sc)):
        return []
    return list(dict.fromkeys(client[0] for client in (mac_cs, mac_sc)
                              if client and client[0] and chosen(client, macs) is None))


class PacketCiphers(transport.SSHCiphers):
    """Conch's ``SSHCiphers``, plus the codec of each direction that an algorithm of ours frames.

    For a name Conch does not know (an AEAD cipher, an etm MAC) it builds its
    null cipher or MAC, which that direction never uses.
    """

    sealer: PacketCodec | None = None
    opener: PacketCodec | None = None

    def setKeys(self, outIV: bytes, outKey: bytes, inIV: bytes, inKey: bytes, outInteg: bytes,
                inInteg: bytes) -> None:
        super().setKeys(outIV, outKey, inIV, inKey, outInteg, inInteg)
        self.sealer = codec_for(self.outCipType, self.outMACType, outIV, outKey, outInteg)
        self.opener = codec_for(self.inCipType, self.inMACType, inIV, inKey, inInteg)
        for codec, mac in ((self.sealer, self.outMACType), (self.opener, self.inMACType)):
            if codec is None and mac not in self.macMap:  # never a cipher without integrity
                raise ValueError(f"MAC {mac!r} is neither implicit in an AEAD cipher nor one Conch computes")

    def _getCipher(self, cip: bytes, iv: bytes, key: bytes) -> Any:
        return super()._getCipher(cip if cip in self.cipherMap else b"none", iv, key)

    def _getMAC(self, mac: bytes, key: bytes) -> Any:
        return super()._getMAC(mac if mac in self.macMap else b"none", key)


class AlgorithmTransport(transport.SSHServerTransport):
    """``SSHServerTransport`` with hgwire's algorithm lists, AEAD and etm framing, and strict KEX."""

    # Conch's own attributes: lists, which the factory and sendKexInit replace per connection.
    supportedCiphers = list(CIPHERS)  # noqa: RUF012
    supportedMACs = list(MACS)  # noqa: RUF012
    supportedCompressions = list(COMPRESSIONS)  # noqa: RUF012
    supportedKeyExchanges = [  # noqa: RUF012
        k for k in KEX_ALGORITHMS if k in transport.SSHServerTransport.supportedKeyExchanges]

    _strict_kex: bool | None = None
    """Whether the client asked for strict KEX; None until its first KEXINIT."""
    _initial_kex_done = False
    _lent: list[bytes] = []  # noqa: RUF012 - replaced, never changed in place
    """MACs ``ssh_KEXINIT`` adds for one exchange (``implicit_macs``), never offered by ``sendKexInit``."""
    _since_keys = 0
    """Packet bytes sent and received since the keys last changed (``REKEY_BYTES``)."""
    _logged_in = False
    """Whether USERAUTH_SUCCESS went out: delayed compression (``DELAYED_ZLIB``) is on from then."""

    # --- strict key exchange

    def sendExtInfo(self, extensions: list[tuple[bytes, bytes]]) -> None:
        """Conch's ``server-sig-algs`` names its host keys' algorithms: with only an ed25519 host key
        (the default), an OpenSSH client found no algorithm for an RSA user key and never offered
        it ("no mutual signature algorithm"), so RSA keys and certificates could not log in.  It
        names the algorithms user keys are checked with (``USER_SIGNATURE_ALGORITHMS``)."""
        super().sendExtInfo([(name, b",".join(USER_SIGNATURE_ALGORITHMS) if name == b"server-sig-algs" else value)
                             for name, value in extensions])

    def sendKexInit(self) -> None:
        """Name ``kex-strict-s-v00@openssh.com`` in the first KEXINIT only, and never negotiate it;
        never name a MAC ``ssh_KEXINIT`` lent for one exchange."""
        offered, macs = self.supportedKeyExchanges, self.supportedMACs
        if self.sessionID is None:
            self.supportedKeyExchanges = [*offered, STRICT_KEX_SERVER]
        self.supportedMACs = [mac for mac in macs if mac not in self._lent]
        try:
            super().sendKexInit()
        finally:
            self.supportedKeyExchanges, self.supportedMACs = offered, macs

    def ssh_KEXINIT(self, packet: bytes) -> None:
        offered = self.supportedMACs
        self._lent = implicit_macs(packet, self.supportedCiphers, offered)
        self.supportedMACs = [*offered, *self._lent]  # Conch wants a MAC in common even where it is unused
        try:
            super().ssh_KEXINIT(packet)
        finally:
            self.supportedMACs, self._lent = offered, []
        chosen = self.nextEncryptions
        self.nextEncryptions = PacketCiphers(chosen.outCipType, chosen.inCipType, chosen.outMACType,
                                             chosen.inMACType)
        if self._strict_kex is None:
            self._strict_kex = STRICT_KEX_CLIENT in getNS(packet[16:])[0].split(b",")
            if self._strict_kex and self.incomingPacketSequence != 1:  # Conch counted the KEXINIT already
                self._refuse(transport.DISCONNECT_PROTOCOL_ERROR,
                             "strict KEX violation: KEXINIT was not the first packet")

    def dispatchMessage(self, messageNum: int, payload: bytes) -> None:
        if self._strict_kex and not self._initial_kex_done and messageNum not in INITIAL_KEX_MESSAGES:
            self._refuse(transport.DISCONNECT_PROTOCOL_ERROR,
                         f"strict KEX violation: unexpected message {messageNum} during the key exchange")
            return
        if hasattr(self, "avatar"):  # logged in: an error past here is hgwire's to see, traceback and all
            super().dispatchMessage(messageNum, payload)
            return
        try:
            super().dispatchMessage(messageNum, payload)
        except MALFORMED_BEFORE_LOGIN as exc:  # Conch's parsers fail on a short or out-of-order message
            self._refuse(transport.DISCONNECT_PROTOCOL_ERROR,
                         f"malformed or unexpected message {messageNum} before login ({type(exc).__name__})")

    def ssh_NEWKEYS(self, packet: bytes) -> None:
        super().ssh_NEWKEYS(packet)
        self._initial_kex_done = True
        if self._strict_kex:
            self.incomingPacketSequence = 0

    def _newKeys(self) -> None:
        self._since_keys = 0
        self._start_compression()  # before Conch sends what the key exchange held back, with the new keys
        super()._newKeys()

    def _start_compression(self) -> None:
        """New compression contexts for the negotiated compression, as each NEWKEYS starts them (so
        does sshd); ``DELAYED_ZLIB`` only once the user has logged in, none otherwise.  The inflater
        is bounded (``BoundedInflater``)."""
        on = self._logged_in
        self.outgoingCompression = zlib.compressobj(6) if on and self.outgoingCompressionType == DELAYED_ZLIB else None
        inflater = BoundedInflater() if on and self.incomingCompressionType == DELAYED_ZLIB else None
        # Conch types the attribute as zlib's own inflater, and calls only its decompress()
        self.incomingCompression = inflater  # type: ignore[assignment]

    # --- packets

    def sendPacket(self, messageType: int, payload: bytes) -> None:
        if not self._allowedKeyExchangeMessageType(messageType):
            self._rekey_if_due(len(payload))  # before the packet, which then waits for the new keys
        sealer = self._sealer()
        held = self._held_by_key_exchange(messageType)  # queued now, sent again after NEWKEYS
        if sealer is None or held:
            super().sendPacket(messageType, payload)  # Conch's framing, or its queue during a key exchange
        else:
            data = self._compress(bytes((messageType,)) + payload)
            assert self.transport is not None, "packets are sent on a connection"
            self.transport.write(sealer.seal(self.outgoingPacketSequence, data))
            self.outgoingPacketSequence += 1
        if messageType == transport.MSG_NEWKEYS and self._strict_kex:
            self.outgoingPacketSequence = 0
        if messageType == userauth.MSG_USERAUTH_SUCCESS and not held and not self._logged_in:  # zlib@openssh.com after it
            self._logged_in = True
            self._start_compression()
        if not held:
            self._since_keys += len(payload)

    def _count(self, size: int) -> None:
        """Count a received packet's bytes, and start a key exchange if they reach ``REKEY_BYTES``."""
        self._since_keys += size
        self._rekey_if_due(0)

    def _rekey_if_due(self, size: int) -> None:
        """Start a key exchange if the bytes since the keys changed, with ``size`` more, reach
        ``REKEY_BYTES`` (data waits in Conch's queue meanwhile, as during one the client starts).

        As sshd, a packet going out that would cross the limit starts the exchange before it, and
        waits for the new keys: a rekey started after the packet crossing it, when that was the
        session's CHANNEL_CLOSE, sent a KEXINIT the exiting client never finished."""
        if (self._since_keys + size >= REKEY_BYTES and self._initial_kex_done
                and self._keyExchangeState == self._KEY_EXCHANGE_NONE):
            self._since_keys = 0
            log.debug("SSH rekey started by the server for {peer}", peer=self._peer_host())
            self.sendKexInit()

    def getPacket(self) -> bytes | None:
        opener = self._opener()
        if opener is None:
            framed: bytes | None = super().getPacket()  # Conch's framing
            if framed is not None:
                self._count(len(framed))
            return framed
        seq = self.incomingPacketSequence
        try:
            size = opener.needed(seq, self.buf)
            if len(self.buf) < size:
                return None
            packet, self.buf = self.buf[:size], self.buf[size:]
            payload = self._decompress(opener.open(seq, packet))
            self._count(len(payload))
        except IntegrityError as error:
            self._refuse(transport.DISCONNECT_MAC_ERROR, str(error))
            return None
        except ProtocolError as error:
            self._refuse(transport.DISCONNECT_PROTOCOL_ERROR, str(error))
            return None
        except zlib.error as error:
            self._refuse(transport.DISCONNECT_COMPRESSION_ERROR, f"compression error: {error}")
            return None
        self.incomingPacketSequence += 1
        return payload

    def _sealer(self) -> PacketCodec | None:
        ciphers = self.currentEncryptions
        return ciphers.sealer if isinstance(ciphers, PacketCiphers) else None

    def _opener(self) -> PacketCodec | None:
        ciphers = self.currentEncryptions
        return ciphers.opener if isinstance(ciphers, PacketCiphers) else None

    def _held_by_key_exchange(self, messageType: int) -> bool:
        """Conch's rule: during a key exchange only transport messages go out, the rest wait for NEWKEYS."""
        exchanging = self._keyExchangeState != self._KEY_EXCHANGE_NONE
        return exchanging and not self._allowedKeyExchangeMessageType(messageType)

    def _compress(self, payload: bytes) -> bytes:
        compressor = self.outgoingCompression
        if compressor is None:
            return payload
        return compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)

    def _decompress(self, payload: bytes) -> bytes:
        inflater = self.incomingCompression
        return payload if inflater is None else inflater.decompress(payload)

    def _refuse(self, reason: int, description: str) -> None:
        """Disconnect with ``reason`` and read nothing more of what the client sent."""
        log.info("SSH connection from {peer} closed: {reason}", peer=self._peer_host(), reason=description)
        self.buf = b""
        self.sendDisconnect(reason, description.encode("utf-8"))

    def _peer_host(self) -> str:
        return str(getattr(self.transport.getPeer(), "host", "?")) if self.transport is not None else "?"
