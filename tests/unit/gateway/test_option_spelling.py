"""An option of ``twistd hgwire`` is taken only as it is spelt in full, a misspelt one refused in
one line naming the options it may have meant.

getopt takes a unique prefix as the option it begins: ``--htp tcp:8080`` (``--http`` mistyped) was
``--htpasswd tcp:8080``, and the service started on its default ports; ``--rot x`` was refused below
the whole usage text, with no hint."""

from __future__ import annotations

import pytest

from gateway.options import misspelt_option


def _twistd(*argv: str) -> None:
    """``twistd -n hgwire ARGV`` as twistd parses it (no pid file, no service made)."""
    from twisted.scripts._twistd_unix import ServerOptions

    ServerOptions().parseOptions(["--pidfile=", "-n", "hgwire", *argv])  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(("argv", "said"), [
    (["--htp", "tcp:8080"], "--htp is not an option of hgwire; did you mean --htpasswd or --http?"),
    (["--rot", "x"], "--rot is not an option of hgwire; did you mean --root?"),
    (["--readonly"], "--readonly is not an option of hgwire; did you mean --read-only?"),
    (["--root=x", "--zzz"], "--zzz is not an option of hgwire (twistd hgwire --help lists them)"),
])
def test_a_misspelt_or_shortened_option_is_refused_naming_what_was_meant(argv: list[str], said: str) -> None:
    with pytest.raises(SystemExit) as refused:
        _twistd(*argv)
    assert str(refused.value).startswith(f"twistd hgwire: {said}"), refused.value


def test_options_in_full_and_their_values_pass() -> None:
    longs = ["root=", "http=", "read-only", "version"]
    assert misspelt_option(["--root", "--odd-name", "--http=tcp:0", "--read-only", "-r", "x"], longs) is None
    assert misspelt_option(["--root=x", "--", "--whatever"], longs) is None
    assert misspelt_option(["--re", "x"], longs) == ("--re is not an option of hgwire; did you mean --read-only? "
                                                     "(twistd hgwire --help lists them)")


@pytest.mark.parametrize("word", ["none", "off", ""])
def test_a_listener_switched_off_by_a_word_says_how_it_is_done(word: str) -> None:
    """``--ssh none`` failed at the start: "cannot listen on none: Unknown endpoint type: 'none'"."""
    with pytest.raises(SystemExit) as refused:
        _twistd("--git", "tcp:0:interface=127.0.0.1", "--ssh", word)
    assert str(refused.value) == (f"twistd hgwire: --ssh {word!r} is not an endpoint: to serve no such listener, "
                                  "leave --ssh out and name only the listeners to serve (any --git, --ssh or "
                                  "--http replaces all the default ones)")
