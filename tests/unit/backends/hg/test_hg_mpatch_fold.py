"""A delta chain folded into one list of hunks builds the text the chain builds link by link."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.hg import mpatch, open_repository
from backends.hg.revlog import Revlog
from protocols.errors import StorageError
from tests import hg_command_server
from tests.conftest import VENV_BIN

ENV = {**os.environ, "HGRCPATH": "", "HGPLAIN": "1", "HGUSER": "t <t@example.com>"}
ALWAYS_FOLD = 1 << 30
"""Links folded for each build of the text (``mpatch._run_length``): the whole chain, or one."""
NEVER_FOLD = 1


@st.composite
def delta_over(draw: st.DrawFn, text: bytes) -> tuple[bytes, bytes]:
    """A random valid delta over ``text`` (hunks at any byte, empty ones too) and what it makes."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    if len(cuts) % 2:
        cuts.append(len(text))
    hunks, made, pos = [], [], 0
    for start, end in zip(cuts[::2], cuts[1::2]):
        data = draw(st.binary(max_size=12))
        hunks.append(struct.pack(">lll", start, end, len(data)) + data)
        made.append(text[pos:start] + data)
        pos = end
    made.append(text[pos:])
    return b"".join(hunks), b"".join(made)


@st.composite
def chains(draw: st.DrawFn) -> tuple[bytes, list[bytes], list[bytes]]:
    """A base, a chain of 0-24 deltas over it, and the text after each."""
    base = draw(st.binary(max_size=120))
    deltas, texts, text = [], [], base
    for _ in range(draw(st.integers(0, 24))):
        delta, text = draw(delta_over(text))
        deltas.append(delta)
        texts.append(text)
    return base, deltas, texts


@given(chains())
def test_a_folded_chain_builds_what_applying_it_link_by_link_builds(chain: tuple[bytes, list[bytes], list[bytes]]) -> None:
    base, deltas, texts = chain
    expected = texts[-1] if texts else base
    for every_link in range(len(deltas) + 1):  # the chain cut anywhere, folded in runs of any length
        want = texts[every_link - 1] if every_link else base
        for run in (NEVER_FOLD, 2, 3, 5, ALWAYS_FOLD):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(mpatch, "_run_length", lambda chain, copies, run=run: run)
                assert mpatch.patches(base, deltas[:every_link]) == want
    assert mpatch.apply(base, mpatch.compose(deltas, len(base))) == expected


def test_a_long_chain_of_a_large_text_is_built_a_few_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 links over 1 MiB: applied link by link they copied 200 MiB (45 ms of CPU); folded in
    runs, the text is joined a few times (2 ms)."""
    base = bytes(range(256)) * 4096
    deltas, text = [], base
    for link in range(200):
        at = (link * 5003) % (len(text) - 64)
        data = b"link %d\n" % link
        deltas.append(struct.pack(">lll", at, at + 10, len(data)) + data)
        text = text[:at] + data + text[at + 10 :]
    joined: list[int] = []
    real = mpatch._applied

    def counting(whole: bytes, hunks: mpatch.Hunks, lo: int, hi: int) -> bytes:
        joined.append(len(whole))
        return real(whole, hunks, lo, hi)

    monkeypatch.setattr(mpatch, "_applied", counting)
    assert mpatch.patches(base, deltas) == text
    assert 1 <= len(joined) <= 8, len(joined)


DAMAGED = [
    (struct.pack(">lll", 0, 100, 0), "hunk ends past the end of the text"),
    (struct.pack(">lll", 2, 3, 0) + struct.pack(">lll", 1, 2, 0), "hunk out of order or out of bounds"),
    (struct.pack(">lll", 5, 3, 0), "hunk out of order or out of bounds"),
    (struct.pack(">lll", -1, 2, 0), "hunk out of order or out of bounds"),
    (struct.pack(">lll", 0, 1, 10) + b"x", "hunk out of order or out of bounds"),
    (b"\0\0\0", "truncated hunk header"),
]


@pytest.mark.parametrize("fold", [ALWAYS_FOLD, NEVER_FOLD])
@pytest.mark.parametrize(("damaged", "message"), DAMAGED)
def test_a_damaged_link_anywhere_in_a_chain_is_refused_as_before(
        monkeypatch: pytest.MonkeyPatch, fold: int, damaged: bytes, message: str) -> None:
    monkeypatch.setattr(mpatch, "_run_length", lambda chain, copies: fold)
    good = struct.pack(">lll", 0, 1, 1) + b"A"
    for at in range(3):
        chain = [good] * 3
        chain.insert(at, damaged)
        with pytest.raises(StorageError, match=message):
            mpatch.patches(b"0123456789", chain)


@pytest.mark.parametrize("fold", [ALWAYS_FOLD, NEVER_FOLD])
def test_a_folded_chain_over_the_size_bound_is_refused_with_its_size(monkeypatch: pytest.MonkeyPatch,
                                                                     fold: int) -> None:
    monkeypatch.setattr(mpatch, "_run_length", lambda chain, copies: fold)
    grow = struct.pack(">lll", 0, 0, 4) + b"abcd"
    shrink = struct.pack(">lll", 0, 8, 0)
    assert mpatch.patches(b"xy", [grow, grow, shrink], max_size=10) == b"xy"
    with pytest.raises(mpatch.TextTooLarge) as refused:
        mpatch.patches(b"xy", [grow, grow, grow, shrink], max_size=10)
    assert refused.value.size == 14


@pytest.fixture(scope="module")
def hg_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store hg wrote: a file edited in 150 changesets (one chain, a delta each) and a manifest
    of 150 files."""
    path = tmp_path_factory.mktemp("fold") / "r"
    hg = os.path.join(VENV_BIN, "hg")
    hg_command_server.subprocess_run([hg, "init", str(path)], cwd=path.parent, env=ENV, check=True)
    hg_command_server.subprocess_run([hg, "-R", str(path), "debugbuilddag", "-m", "-n", "+150"], cwd=path,
                                     env=ENV, check=True)
    return path


def _every_text(revlog: Revlog) -> list[bytes]:
    """Every revision's text, each from its whole chain (read newest first: no cached text is on
    the chain of an older revision), checked against its node's hash."""
    return [revlog.revision(rev, verify=True) for rev in reversed(range(len(revlog)))]


@pytest.mark.parametrize("which", ["mf", "manifest"])
def test_every_revision_of_a_store_hg_wrote_reads_the_same_folded(
        hg_store: Path, monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    def revlog() -> Revlog:
        repo = open_repository(str(hg_store), "r")
        return repo.manifestlog() if which == "manifest" else repo.filelog(b"mf")

    monkeypatch.setattr(mpatch, "_run_length", lambda chain, copies: NEVER_FOLD)
    link_by_link = _every_text(revlog())
    monkeypatch.setattr(mpatch, "_run_length", lambda chain, copies: ALWAYS_FOLD)
    longest = max(len(revlog().delta_chain(rev)[0]) for rev in range(len(revlog())))
    assert longest > 50, longest  # (hg stored long chains: the fold had work to do)
    assert _every_text(revlog()) == link_by_link


def test_a_chain_of_a_short_text_is_applied_link_by_link() -> None:
    """1,000 links (2 hunks each) over 5 KB copy 5 MB link by link, less than folding costs (1.6 ms
    against 2); over 2 MiB, 2 GB."""
    assert mpatch._run_length(2000, 1000 * 5000) == 1
    assert mpatch._run_length(2000, 1000 * (2 << 20)) > 16


def test_a_long_hunk_cut_by_many_later_hunks_is_not_copied_at_each_cut() -> None:
    """A link inserting 2 MiB, the next cutting into it at 10,000 places: each cut copied the
    rest of the inserted bytes (10 GB, 0.65 s of CPU where applying the links one by one takes
    0.04 s); the rest is kept as a view of the bytes it was cut from."""
    inserted = bytes(range(256)) * 8192
    first = struct.pack(">lll", 0, 0, len(inserted)) + inserted
    step = len(inserted) // 10_000
    second = b"".join(struct.pack(">lll", k * step, k * step + 1, 1) + b"x" for k in range(10_000))
    hunks, cuts, _copies = mpatch._checked_chain([first, second], 0, mpatch.MAX_TEXT_SIZE)
    datas = mpatch._folded(hunks, cuts, 0, 2)[2]
    assert isinstance(datas[-1], memoryview), type(datas[-1])  # (the rest of the inserted bytes, uncopied)
    text = bytearray(inserted)
    for k in range(10_000):
        text[k * step] = ord("x")
    assert mpatch.patches(b"", [first, second]) == bytes(text)
