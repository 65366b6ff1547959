"""Listener descriptions hgwire can tell are wrong before Twisted reads them or binds them."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.listen_checks import endpoint_problem, shared_port


@pytest.mark.parametrize(("description", "reason"), [
    ("tcp:9418:interface=::1", "the IPv6 address in interface= is cut at its first colon"),
    ("ssl:8443:interface=fe80::1:privateKey=k.pem", "the IPv6 address in interface= is cut at its first colon"),
    ("tcp:99999", "the port '99999' is not a number from 0 to 65535"),
    ("tcp:port=abc", "the port 'abc' is not a number from 0 to 65535"),
    ("tcp:-1", "the port '-1' is not a number from 0 to 65535"),
    ("tcp:interface=127.0.0.1", "it names no port"),
])
def test_a_wrong_port_or_interface_is_named(description: str, reason: str) -> None:
    problem = endpoint_problem(description)
    assert problem is not None and problem.reason == reason


@pytest.mark.parametrize(("description", "reason", "advice"), [
    ("ssl:8443:privateKey=k.pem:caCertsDir=/etc/ssl/clients", "ssl: has no option caCertsDir=",
     ("to require client certificates signed by your CA, write clientCA=FILE, a file of the CA's PEM "
      "certificates (README, HTTP: HTTPS client certificates)")),
    ("ssl:8443:privateKey=k.pem:verify=yes", "ssl: has no option verify=", None),
    ("ssl:8443:privateKey=k.pem:clientca=ca.pem", "ssl: has no option clientca=", None),
    ("tcp:8080:clientCA=ca.pem", "tcp: has no option clientCA=: client certificates come with TLS",
     "listen on ssl:PORT:privateKey=KEY:certKey=CERT:clientCA=FILE"),
    ("ssl:8443:privateKey=k.pem:certkey=c.pem", "ssl: has no option certkey=",
     ("its options are port, interface, backlog, privateKey, certKey, extraCertChain, dhParameters, sslmethod, "
      "clientCA, clientCRL, clientCertificate; check the spelling")),
    ("tcp:9418:inteface=127.0.0.1", "tcp: has no option inteface=",
     "its options are port, interface, backlog; check the spelling"),
])
def test_an_option_twisted_does_not_take_is_named(description: str, reason: str, advice: str | None) -> None:
    """Twisted refused them as ``_parseSSL() got an unexpected keyword argument 'caCertsDir'`` with
    a traceback; an operator asking for client certificates in another's words is told hgwire's (clientCA=)."""
    problem = endpoint_problem(description)
    assert problem is not None and problem.reason == reason
    assert advice is None or problem.advice == advice


def test_the_escaped_address_is_what_to_write() -> None:
    problem = endpoint_problem("tcp:9418:interface=fe80::1")
    assert problem is not None and problem.advice == r"escape each colon: interface=fe80\:\:1"


@pytest.mark.parametrize("description", [
    "tcp:9418:interface=127.0.0.1", r"tcp:9418:interface=\:\:1", "tcp:0", "tcp:port=8080",
    "ssl:8443:privateKey=k.pem:certKey=c.pem", "unix:/run/hgwire.sock",
    "ssl:8443:privateKey=k.pem:certKey=c.pem:clientCA=ca.pem",
])  # (a systemd: one is checked against the sockets systemd passed: test_systemd_sockets_of_their_domain_pass)
def test_good_descriptions_pass(description: str) -> None:
    assert endpoint_problem(description) is None


@pytest.mark.parametrize(("git", "http", "shared"), [
    (["tcp:9418:interface=127.0.0.1"], ["tcp:9418:interface=127.0.0.1"], True),
    (["tcp:9418"], ["tcp:9418:interface=127.0.0.1"], True),                       # IPv4's wildcard holds it
    ([r"tcp:9418:interface=\:\:"], ["tcp:9418:interface=127.0.0.1"], True),        # :: takes IPv4 too
    (["haproxy:tcp:9418:interface=127.0.0.1"], ["ssl:9418:privateKey=k.pem:interface=127.0.0.1"], True),
    (["ssl:9418:k.pem:c.pem:TLSv1_2_METHOD:127.0.0.1"], ["tcp:9418:127.0.0.1"], True),  # positional interfaces
    (["tcp:9418:interface=127.0.0.1"], ["tcp:9418:interface=127.0.0.2"], False),
    ([r"tcp:9418:interface=\:\:1"], ["tcp:9418:interface=127.0.0.1"], False),
    (["tcp:9418"], ["tcp:8080"], False),
    (["tcp:0:interface=127.0.0.1"], ["tcp:0:interface=127.0.0.1"], False),        # any free port: two of them
    (["unix:/run/a.sock"], ["unix:/run/a.sock"], False),                           # (the second's lock file says)
])
def test_two_listeners_on_one_port_are_named(git: list[str], http: list[str], shared: bool) -> None:
    told = shared_port({"--git": git, "--http": http})
    if not shared:
        assert told is None
        return
    assert told == (f"--git {git[0]} and --http {http[0]} both listen on port 9418: give each listener a port of "
                    "its own")


def test_one_option_given_twice_is_named() -> None:
    assert shared_port({"--ssh": ["tcp:2222", "tcp:2222"]}) == (
        "--ssh tcp:2222 and --ssh tcp:2222 both listen on port 2222: give each listener a port of its own")


@pytest.fixture
def passed_sockets() -> Iterator[Any]:
    """What systemd passes: an IPv6 socket named ``git`` (``ListenStream=9418``), an IPv4 one
    named ``http`` (``ListenStream=127.0.0.1:8080``)."""
    from twisted.python.systemd import ListenFDs

    with socket.socket(socket.AF_INET6) as six, socket.socket(socket.AF_INET) as four:
        six.bind(("::", 0))
        four.bind(("127.0.0.1", 0))
        six.listen()
        four.listen()
        yield ListenFDs([six.fileno(), four.fileno()], ["git", "http"]), six.getsockname()[1]


@pytest.mark.parametrize(("description", "reason", "advice"), [
    ("systemd:domain=INET:name=git", ("the socket systemd passed is INET6 ([::]:{port}), not domain=INET (ListenStream="
                                      "PORT listens on IPv6 and IPv4 both)"), "write domain=INET6"),
    ("systemd:domain=INET6:index=1", "the socket systemd passed is INET (127.0.0.1:{four}), not domain=INET6",
     "write domain=INET"),
    ("systemd:domain=INET:index=2", "systemd passed 2 sockets, so index=2 names none (they are counted from 0)", None),
    ("systemd:domain=INET:name=gti", "systemd passed no socket named gti (it passed git, http)",
     "give name= one of those, FileDescriptorName= of the .socket unit"),
    ("systemd:domain=INET6:index=0:name=git", "it names its socket by neither or both of index= and name=", None),
    ("systemd:domain=IPV6:index=0", "domain=IPV6 is not a socket domain", "write domain=INET6, INET or UNIX"),
    ("systemd:domain=INET6:fd=3", "systemd: has no option fd", None),
])
def test_a_systemd_socket_it_cannot_use_is_named(passed_sockets: Any, description: str, reason: str,
                                                 advice: str | None) -> None:
    """Twisted answered these ``list index out of range`` or ``KeyError: 'gti'`` with a traceback,
    and adopted an IPv6 socket under ``domain=INET`` silently, every client's address garbage."""
    from gateway.listen_checks import _systemd_problem

    sockets, port = passed_sockets
    four = socket.socket(fileno=os.dup(sockets.inheritedDescriptors()[1]))
    with four:
        problem = _systemd_problem(description, sockets)
        assert problem is not None
        assert problem.reason == reason.format(port=port, four=four.getsockname()[1])
    assert advice is None or problem.advice == advice


def test_systemd_sockets_of_their_domain_pass(passed_sockets: Any) -> None:
    from gateway.listen_checks import _systemd_problem

    sockets, _ = passed_sockets
    assert _systemd_problem("systemd:domain=INET6:name=git", sockets) is None
    assert _systemd_problem("systemd:INET:1", sockets) is None


def test_no_socket_passed_is_told_so() -> None:
    """Started by hand, or by a launcher that sets no LISTEN_FDNAMES (systemd before 227,
    ``systemd-socket-activate`` without ``--fdname``), which Twisted then ignores."""
    from twisted.python.systemd import ListenFDs

    from gateway.listen_checks import _systemd_problem

    problem = _systemd_problem("systemd:domain=INET:index=0", ListenFDs([], ()))
    assert problem is not None and problem.reason.startswith("systemd passed this process no socket")
    assert "--fdname=NAME" in problem.advice and "tcp:PORT" in problem.advice


def test_a_connection_passed_for_a_listening_socket_is_told_so() -> None:
    """``Accept=yes`` (inetd's way, git daemon's ``--inetd``) passes each client's connection:
    Twisted's port tried to accept on it, failing ``EINVAL`` with a traceback thousands of times a
    second (33 MB of log in 6 s) while the client waited."""
    from twisted.python.systemd import ListenFDs

    from gateway.listen_checks import _systemd_problem

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client, listener.accept()[0] as connection:
            problem = _systemd_problem("systemd:domain=INET:name=git", ListenFDs([connection.fileno()], ["git"]))
            assert client.fileno() >= 0
    assert problem is not None and "not a listening socket (Accept=yes" in problem.reason
    assert problem.advice.startswith("set Accept=no")
