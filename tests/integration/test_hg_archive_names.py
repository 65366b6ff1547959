"""An hg archive of files named beyond ASCII: a zip holds every file under its own bytes, a name
that is not UTF-8 (``caf\\xe9.txt``, written on a Latin-1 system) too, as ``git archive`` writes
one (its bytes, without the UTF-8 flag); the download used to stop after the files before it,
with no central directory (``hg serve`` fails the same way, with a traceback)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.integration.test_hg_http import raw

NAMES = ["café.txt".encode(), "cafe\u0301-nfd.txt".encode(), b"caf\xe9-latin1.txt",
         "répertoire/fichier ü.txt".encode(), b"a b 'q\" x.txt", b"plain.txt"]


def _zip_names(data: bytes) -> dict[bytes, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    # zipfile reads a name without the UTF-8 flag as cp437: encoding it back gives its bytes
    return {(info.filename.encode("utf-8") if info.flag_bits & 0x800 else info.filename.encode("cp437")):
            archive.read(info) for info in archive.infolist()}


def test_a_zip_holds_names_beyond_ascii_and_one_that_is_not_utf8(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server = make_server("fs", http=[LOOPBACK])
    repo = server.root / "names"
    client.hg("init", str(repo))
    for number, name in enumerate(NAMES):
        target = bytes(repo) + b"/" + name
        if b"/" in name:
            (repo / name.split(b"/")[0].decode()).mkdir(exist_ok=True)
        with open(target, "wb") as f:
            f.write(b"%d\n" % number)
    client.hg("commit", "-q", "-A", "-R", str(repo), "-u", "t", "-d", "1700000000 0", "-m", "names")
    (repo / ".hg" / "hgrc").write_text("[web]\nallow-archive = zip gz\n")
    port = server.port("http")

    answer = raw(port, "GET", "/names/archive/tip.zip")
    assert answer.status == 200
    files = _zip_names(answer.body)
    prefix = next(iter(files)).split(b"/")[0] + b"/"
    expected = {prefix + name: b"%d\n" % number for number, name in enumerate(NAMES)}
    assert {name: data for name, data in files.items() if not name.endswith(b".hg_archival.txt")} == expected

    tar = raw(port, "GET", "/names/archive/tip.tar.gz")  # the tar gives the same names
    with tarfile.open(fileobj=io.BytesIO(tar.body), mode="r:gz", encoding="utf-8", errors="surrogateescape") as t:
        assert {m.name.encode("utf-8", "surrogateescape") for m in t.getmembers()} == set(files)
