"""A repository whose ``.hg/hgrc`` includes what is no regular file, or holds more than hgwire
reads, is refused with a sentence saying so: an include of a FIFO no one writes held a worker for
ever (as ``hg`` itself waits for ever), one of ``/dev/zero`` read a megabyte of zeros at every
setting asked (``hg`` grows until memory runs out), and a huge ``.hg/hgrc`` was read whole and
parsed a dozen times a request (16 MiB: over 40 s a request); an include of a directory, which
``hg`` refuses ("cannot include X (Is a directory)"), was skipped.  ``/dev/null`` reads as empty
and a missing include is skipped, as by hg."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from backends.hg import create_repository, open_repository
from backends.hg.repository import MAX_HGRC, MAX_LOCAL_FILE
from protocols.errors import StorageError

NOT_SERVED = "where hgwire reads only regular files, so it does not serve the repository; tell the server's operator"


def with_hgrc(tmp_path: Path, text: str, name: str = "r") -> Path:
    path = tmp_path / name
    create_repository(str(path), name)
    (path / ".hg" / "hgrc").write_text(text)
    return path


def refusal(path: Path) -> str:
    repo = open_repository(str(path), path.name)
    with pytest.raises(StorageError) as refused:  # (any setting a request asks for)
        repo.publishing()
    with pytest.raises(StorageError) as again:  # (what a request's open asks first)
        repo.check_hgrc()
    assert str(again.value) == str(refused.value)
    return str(refused.value)


def refused_with_a_writer(path: Path, fifo: Path) -> str:
    """``refusal(path)`` while a thread writes settings into ``fifo``: before, the read waited for
    it, read what it wrote and served the repository (and without it waited for ever)."""

    def writer() -> None:
        with contextlib.suppress(OSError), open(fifo, "w") as f:
            f.write("[phases]\npublish = False\n")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        return refusal(path)
    finally:  # (a reader for the writer, if the read never opened the FIFO)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(timeout=60)
        os.close(fd)


def test_an_include_of_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = with_hgrc(tmp_path, f"%include {fifo}\n")
    assert refused_with_a_writer(path, fifo) == f"the repository's hgrc includes {fifo}, a FIFO, {NOT_SERVED}"


def test_an_hgrc_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r"
    create_repository(str(path), "r")
    fifo = path / ".hg" / "hgrc"
    os.mkfifo(fifo)  # (a symlink to /dev/zero is refused the same way: before, it grew the process for ever)
    assert refused_with_a_writer(path, fifo) == f"the repository's hgrc {fifo} is a FIFO, {NOT_SERVED}"


def test_an_include_of_dev_zero_is_refused(tmp_path: Path) -> None:
    assert refusal(with_hgrc(tmp_path, "%include /dev/zero\n")) == (
        f"the repository's hgrc includes /dev/zero, a character device, {NOT_SERVED}")


@pytest.mark.parametrize("where", ["hgrc", "include", "halves"])
def test_more_than_the_bound_is_refused(tmp_path: Path, where: str) -> None:
    filler = "# comment\n"
    if where == "hgrc":
        path = with_hgrc(tmp_path, filler * (MAX_HGRC // len(filler) + 1))
    else:
        half = filler * (MAX_HGRC // len(filler) // 2 + 1)
        big = filler * (MAX_HGRC // len(filler) + 1)
        (tmp_path / "one.rc").write_text(big if where == "include" else half)
        (tmp_path / "two.rc").write_text(half)
        includes = "%include ../../one.rc\n" + ("%include ../../two.rc\n" if where == "halves" else "")
        path = with_hgrc(tmp_path, includes)  # (relative ones: against .hg, as hg reads them)
    said = refusal(path)
    assert said.startswith("the repository's hgrc and the files it includes hold more than 1 MiB ("), said
    assert said.endswith(", more than hgwire reads, so it does not serve the repository; "
                         "tell the server's operator"), said


def test_an_include_of_a_directory_is_refused_as_hg_refuses_it(tmp_path: Path) -> None:
    path = with_hgrc(tmp_path, "%include conf\n")
    (path / ".hg" / "conf").mkdir()
    assert refusal(path) == (f"the repository's hgrc includes {path / '.hg' / 'conf'}, which cannot be read "
                             "(Is a directory), so hgwire does not serve the repository, as hg would not; "
                             "tell the server's operator")


def test_dev_null_and_missing_includes_are_read_as_hg_reads_them(tmp_path: Path) -> None:
    (tmp_path / "pub.rc").write_text("[phases]\npublish = False\n%include missing.rc\n")
    path = with_hgrc(tmp_path, f"%include /dev/null\n%include {tmp_path / 'nowhere.rc'}\n%include ../../pub.rc\n")
    repo = open_repository(str(path), "r")
    repo.check_hgrc()
    assert not repo.publishing()
    base = tmp_path / "base.rc"  # the operator's [hg] hgrc, read before the repository's own
    base.write_text("[web]\nname = from the base\n")
    repo.base_hgrc = os.fsencode(base)
    assert repo.web_name("r") == "from the base"
    os.unlink(base)
    os.mkfifo(base)
    with pytest.raises(StorageError, match=f"includes {base}, a FIFO, where hgwire reads only regular files"):
        repo.check_hgrc()


@pytest.mark.parametrize("name", ["localtags", "merge/state2"])
def test_a_local_file_that_is_a_fifo_is_refused(tmp_path: Path, name: str) -> None:
    """``.hg/localtags`` (``hg tag --local``, or an editor) and a merge's state are read whole by
    hg too: a FIFO there held a worker for ever (the tags page, a pull's hidden changesets)."""
    path = tmp_path / "r"
    create_repository(str(path), "r")
    fifo = path / ".hg" / name
    fifo.parent.mkdir(exist_ok=True)
    os.mkfifo(fifo)

    def writer() -> None:  # (before: the read waited for it, and read what it wrote)
        with contextlib.suppress(OSError), open(fifo, "w") as f:
            f.write("")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    repo = open_repository(str(path), "r")
    try:
        with pytest.raises(StorageError) as refused:
            repo.tags() if name == "localtags" else repo.pinned_revs()
    finally:  # (a reader for the writer, if the read never opened the FIFO)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(timeout=60)
        os.close(fd)
    assert str(refused.value) == f"the repository's {fifo} is a FIFO, {NOT_SERVED}"


def test_localtags_past_the_bound_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r"
    create_repository(str(path), "r")
    line = "0" * 40 + " a-local-tag\n"
    (path / ".hg" / "localtags").write_text(line * (MAX_LOCAL_FILE // len(line) + 1))
    with pytest.raises(StorageError) as refused:
        open_repository(str(path), "r").tags()
    assert str(refused.value) == (f"the repository's {path / '.hg' / 'localtags'} holds more than 16 MiB, more than "
                                  "hgwire reads, so it does not serve the repository; tell the server's operator")
