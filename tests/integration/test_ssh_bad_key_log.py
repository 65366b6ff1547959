"""A public key that does not parse, offered with an algorithm name of the client's choosing: the
log must not carry that name's control characters (a forged line, a terminal escape) nor read it
as a format (``{log_source...}`` pulling the server's objects into the line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twisted.logger import formatEvent

from tests.integration.test_ssh_server import SshSetup, setup  # noqa: F401 - a fixture

CLIENT = r"""
import sys
from twisted.internet import defer, protocol, reactor
from twisted.conch.ssh import common, connection, transport, userauth

algorithm = sys.argv[2].encode("utf-8")

class Auth(userauth.SSHUserAuthClient):
    def serviceStarted(self):
        self.transport.sendPacket(userauth.MSG_USERAUTH_REQUEST, common.NS(b"alice") + common.NS(b"ssh-connection")
                                  + common.NS(b"publickey") + b"\x00" + common.NS(algorithm) + common.NS(b"not a key"))

    def ssh_USERAUTH_FAILURE(self, packet):
        print("refused")
        reactor.stop()

class Client(transport.SSHClientTransport):
    def verifyHostKey(self, key, fingerprint):
        return defer.succeed(True)

    def connectionSecure(self):
        self.requestService(Auth(b"alice", connection.SSHConnection()))

factory = protocol.ClientFactory()
factory.protocol = Client
reactor.connectTCP("127.0.0.1", int(sys.argv[1]), factory)
reactor.callLater(20, reactor.stop)
reactor.run()
"""


def test_an_unparsable_key_writes_no_client_control_character_or_format_into_the_log(
        setup: SshSetup, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    forged = "ssh-rsa\r\n[hgwire.audit] forged\x1b[2J{log_source.transport}"
    done = subprocess.run([sys.executable, str(script), str(setup.server.port("ssh")), forged],
                          capture_output=True, timeout=60, check=False)
    assert b"refused" in done.stdout, done.stderr
    texts = [formatEvent(event) or "" for event in list(setup.events)]
    told = [text for text in texts if "forged" in text]
    assert told, texts
    for text in told:
        assert "\n" not in text and "\r" not in text and "\x1b" not in text, text
        assert "{log_source.transport}" in text and "Transport" not in text, text
