"""A repository whose git config includes what is no regular file, or more than hgwire reads, is
refused with a sentence saying so, where its open read the file whole for ever (``/dev/zero``: the
process grew 2.5 GB in 20 s) or waited for ever (a FIFO no one writes); ``/dev/null`` reads as
empty, as git reads it, and the other repositories are served."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from pathlib import Path

import pytest

from backends.filesystem import FilesystemBackend
from backends.git import MAX_CONFIG_BYTES, DulwichGitRepository, read_base_config
from protocols.errors import StorageError

GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def including(root: Path, name: str, *paths: str) -> None:
    """A bare repository ``name`` under ``root`` whose config includes ``paths``."""
    repo = root / f"{name}.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, env=GIT_ENV)
    with open(repo / "config", "a") as f:
        f.writelines(f"[include]\n\tpath = {path}\n" for path in paths)


def refusal(backend: FilesystemBackend, name: str) -> str:
    with pytest.raises(StorageError) as refused:
        backend.open(name)
    return str(refused.value)


def test_an_include_of_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    including(root, "fifo", str(fifo))

    def writer() -> None:  # (before: the open read what it wrote, and served the repository)
        with contextlib.suppress(OSError), open(fifo, "wb") as f:
            f.write(b"[core]\n\tbare = true\n")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        said = refusal(FilesystemBackend(str(root)), "fifo")
    finally:  # (a reader for the writer, if the open never opened the FIFO)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(timeout=60)
        os.close(fd)
    assert said == (f"the repository's git config includes {fifo}, a FIFO, where hgwire reads only regular "
                    "files, so it does not serve the repository; tell the server's operator")


def test_an_include_past_the_bound_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (tmp_path / "big.inc").write_bytes(b"# comment\n" * (MAX_CONFIG_BYTES // 10 + 1))
    for half in ("half1.inc", "half2.inc"):
        (tmp_path / half).write_bytes(b"# comment\n" * (MAX_CONFIG_BYTES // 20 + 1))
    (tmp_path / "small.inc").write_bytes(b"[transfer]\n\thideRefs = refs/pull\n")
    including(root, "big", str(tmp_path / "big.inc"))
    including(root, "halves", str(tmp_path / "half1.inc"), str(tmp_path / "small.inc"), str(tmp_path / "half2.inc"))
    including(root, "small", str(tmp_path / "small.inc"), os.devnull)
    backend = FilesystemBackend(str(root))
    for name in ("big", "halves"):  # (one bound for the config and all it includes)
        said = refusal(backend, name)
        assert said.startswith("the repository's git config and the files it includes hold more than 8 MiB ("), said
        assert said.endswith(", more than hgwire reads, so it does not serve the repository; "
                             "tell the server's operator"), said
    served = backend.open("small")
    assert isinstance(served, DulwichGitRepository)
    try:
        assert served.hidden_refs("upload-pack")(b"refs/pull/7/head")
    finally:
        served.close()


def test_an_include_of_a_device_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    including(root, "zero", "/dev/zero")
    assert refusal(FilesystemBackend(str(root)), "zero") == (
        "the repository's git config includes /dev/zero, a character device, where hgwire reads only "
        "regular files, so it does not serve the repository; tell the server's operator")


def test_a_base_config_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "gitconfig"
    os.mkfifo(fifo)
    with pytest.raises(StorageError) as refused:
        read_base_config(str(fifo))
    assert str(refused.value).startswith(f"the server's git config {fifo} is a FIFO, where hgwire reads only")
