"""hg's list settings (``[web] allow-push = "alice" bob``, ``allow-archive``, ``labels``...) are read
as hg's ``ui.configlist`` reads them: a table of tricky values with the answers hg 7.2 gave for
them, and a few thousand random ones side by side with the installed hg's own ``ui.configlist``."""

from __future__ import annotations

import json
import os
import random
import subprocess

import pytest

from backends.hg.keys import MAX_OPEN_QUOTES, config_list
from tests.conftest import VENV_BIN

TABLE = [
    (b"", []),
    (b" , ,", []),
    (b"alice bob", [b"alice", b"bob"]),
    (b"alice, bob,carol\tdave\nerin", [b"alice", b"bob", b"carol", b"dave", b"erin"]),
    (b'"alice" bob', [b"alice", b"bob"]),
    (b'"alice", "bob"', [b"alice", b"bob"]),
    (b'this,is "a small" ,test', [b"this", b"is", b"a small", b"test"]),
    (b'what about comma "in, a,value"', [b"what", b"about", b"comma", b"in, a,value"]),
    (b'"a \\"quoted\\" name"', [b'a "quoted" name']),
    (b'a"b', [b'a"b']),
    (b'a\\"b', [b'a"b']),
    (b'"a"b', [b"a", b"b"]),
    (b'"a"\tb', [b"a", b"", b"b"]),
    (b'""', [b"", b""]),
    (b'"" a', [b"", b"a"]),
    (b'"', [b'"']),
    (b'"a b', [b'"a', b"b"]),
    (b'"a \\"b', [b'"a', b'"b']),
    (b'"a" "', [b'a"']),
    (b'x "a,b" , "c d"', [b"x", b"a,b", b"c d"]),
]


@pytest.mark.parametrize(("value", "items"), TABLE)
def test_values_are_read_as_hg_reads_them(value: bytes, items: list[bytes]) -> None:
    assert config_list(value) == items


def _hg_configlist(values: list[bytes]) -> list[list[bytes]]:
    """hg's own ``ui.configlist`` of each value, from the hg of the test environment."""
    script = ("import json, sys\nfrom mercurial import ui\nu = ui.ui()\nout = []\n"
              "for n, v in enumerate(json.load(sys.stdin)):\n"
              "    u.setconfig(b't', b'k%d' % n, v.encode('latin-1'))\n"
              "    out.append([i.decode('latin-1') for i in u.configlist(b't', b'k%d' % n)])\n"
              "json.dump(out, sys.stdout)\n")
    done = subprocess.run([os.path.join(VENV_BIN, "python"), "-c", script], input=json.dumps(
        [v.decode("latin-1") for v in values]), capture_output=True, text=True, check=True, timeout=120)
    return [[item.encode("latin-1") for item in items] for items in json.loads(done.stdout)]


def test_the_table_and_random_values_are_what_hg_itself_reads() -> None:
    pieces = [b"a", b"bc", b'"', b"\\", b",", b" ", b"\t", b"\n", b"\r", b"\x0b", b'""', b'\\"', b', "', b"\xc3\xa9"]
    rng = random.Random(7)
    values = [value for value, _ in TABLE] + [
        b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 16))) for _ in range(4000)]
    for value, theirs in zip(values, _hg_configlist(values), strict=True):
        assert config_list(value) == theirs, value


def _nested(depth: int) -> bytes:
    """A value whose quotes are left open one inside another's text ``depth`` deep."""
    return b'"' + b"".join(b"x " + b"\\" * k + b'"' for k in range(1, depth))


def test_quotes_left_open_one_inside_another_are_read_as_hg_then_bounded() -> None:
    value = _nested(50)
    assert config_list(value) == _hg_configlist([value])[0] and len(config_list(value)) == 50
    deep = config_list(_nested(300))  # hg recurses once for each (and fails near a thousand)
    assert len(deep) == MAX_OPEN_QUOTES + 1 and deep[:49] == config_list(value)[:49]
