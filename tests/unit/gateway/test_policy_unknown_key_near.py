"""An unknown key in the ``--config`` file (``wirte = [...]`` in a ``[[repo]]`` rule) listed the keys
allowed there but not the one meant; it now says "did you mean write?" first when one is near
(difflib's closeness, as ``twistd hgwire --wirte`` is told of ``--write``), and nothing when none is."""

from __future__ import annotations

import pytest

from gateway.policy import PolicyError, parse_policy


@pytest.mark.parametrize(("text", "said"), [
    ('[[repo]]\npattern = "*"\nwirte = ["alice"]\n', "repo[0].wirte: unknown key (did you mean write?); the keys"),
    ('[[repo]]\npattern = "*"\nreed = []\n', "repo[0].reed: unknown key (did you mean read?); the keys"),
    ("[git]\nexport_al = true\n", "git.export_al: unknown key (did you mean export_all?); the keys"),
    ("colour = 1\n", "colour: unknown key; the keys allowed here are anonymous_read,"),
    ("[hg]\n" + "x" * 10_000 + " = 1\n", "unknown key; the keys allowed here are hgrc"),
])
def test_an_unknown_key_is_told_the_near_one(text: str, said: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, "x.toml")
    assert said in str(refused.value)
