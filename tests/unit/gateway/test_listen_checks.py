"""Listener descriptions hgwire can tell are wrong before Twisted reads them or binds them."""

from __future__ import annotations

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
    ("ssl:8443:privateKey=k.pem:caCertsDir=/etc/ssl/clients",
     "hgwire's ssl: listeners do not ask clients for certificates (caCertsDir=)",
     ("leave it out; to require client certificates, let a TLS proxy in front check them (README, HTTP: HTTPS "
      "client certificates)")),
    ("ssl:8443:privateKey=k.pem:verify=yes", "hgwire's ssl: listeners do not ask clients for certificates (verify=)",
     None),
    ("ssl:8443:privateKey=k.pem:certkey=c.pem", "ssl: has no option certkey=",
     ("its options are port, interface, backlog, privateKey, certKey, extraCertChain, dhParameters, sslmethod; "
      "check the spelling")),
    ("tcp:9418:inteface=127.0.0.1", "tcp: has no option inteface=",
     "its options are port, interface, backlog; check the spelling"),
])
def test_an_option_twisted_does_not_take_is_named(description: str, reason: str, advice: str | None) -> None:
    """Twisted refused them as ``_parseSSL() got an unexpected keyword argument 'caCertsDir'`` with
    a traceback; an operator asking for client certificates is told hgwire asks for none."""
    problem = endpoint_problem(description)
    assert problem is not None and problem.reason == reason
    assert advice is None or problem.advice == advice


def test_the_escaped_address_is_what_to_write() -> None:
    problem = endpoint_problem("tcp:9418:interface=fe80::1")
    assert problem is not None and problem.advice == r"escape each colon: interface=fe80\:\:1"


@pytest.mark.parametrize("description", [
    "tcp:9418:interface=127.0.0.1", r"tcp:9418:interface=\:\:1", "tcp:0", "tcp:port=8080",
    "ssl:8443:privateKey=k.pem:certKey=c.pem", "unix:/run/hgwire.sock", "systemd:domain=INET:index=0",
])
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
