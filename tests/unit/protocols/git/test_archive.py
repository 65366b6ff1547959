"""git-upload-archive: argument parsing, refusals, framing against real git's bytes, and the archive backend.

Transcript (git 2.39.5, ``git archive --remote=r --exec=<tee> --format=tgz
--prefix=x/ -9 HEAD`` against ``git upload-archive r``): the client sends
``REQUEST_TGZ`` below; the server answers ``0008ACK\\n0000``, then one band-1
line per write (``00fb\\x01...``) and ``0000``.  Real git ACKs before it looks
at the arguments and reports a bad one as ``\\x02fatal: ...`` on band 2 plus
``\\x03git upload-archive: archiver died with error`` on band 3 (``GIT_BAD_REF``);
hgwire checks the arguments before it acknowledges, and reports a refusal the
same way after the ACK (the client prints ``remote: fatal: <reason>``, status 1).
"""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob, Commit, Tag, Tree

from backends import git_archive as backend
from backends.interfaces import ObjectId
from protocols import git_archive
from protocols.errors import LimitExceeded, ProtocolError
from protocols.git_archive import ArchiveOptions, ArchiveRefused, ArchiveRequest, Pathspec, wants_list
from protocols.pktline import Signal

REQUEST_TGZ = (b"001aargument --format=tgz\n0019argument --prefix=x/\n0010argument -9\n"
               b"0012argument HEAD\n0000")
REQUEST_ZIP = b"001aargument --format=zip\n0012argument HEAD\n0000"  # from --output=o.zip
REQUEST_SPLIT = (b"0016argument --format\n0011argument tar\n0016argument --prefix\n0010argument p/\n"
                 b"0012argument HEAD\n0000")  # from --format tar --prefix p/ HEAD
GIT_ACK = b"0008ACK\n0000"
GIT_BAD_REF = (b"0020\x02fatal: no such ref: nosuch\n"
               b"0031\x03git upload-archive: archiver died with error")


def _request(data: bytes) -> ArchiveRequest | Signal:
    core = git_archive.UploadArchive()
    core.receive_data(data)
    return core.next_event()


def _pkt(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


def test_transcript_request_parses() -> None:
    request = _request(REQUEST_TGZ)
    assert request == ArchiveRequest(("--format=tgz", "--prefix=x/", "-9", "HEAD"))
    assert isinstance(request, ArchiveRequest)
    assert git_archive.parse_arguments(request.arguments) == ArchiveOptions("tgz", "x/", 9, "HEAD")


def test_zip_request_from_output_name() -> None:
    request = _request(REQUEST_ZIP)
    assert isinstance(request, ArchiveRequest)
    assert git_archive.parse_arguments(request.arguments) == ArchiveOptions("zip", "", None, "HEAD")


def test_split_options_request() -> None:
    request = _request(REQUEST_SPLIT)
    assert isinstance(request, ArchiveRequest)
    assert git_archive.parse_arguments(request.arguments) == ArchiveOptions("tar", "p/", None, "HEAD")


def test_byte_by_byte_then_paused() -> None:
    core = git_archive.UploadArchive()
    events = []
    for i in range(len(REQUEST_TGZ)):
        core.receive_data(REQUEST_TGZ[i:i + 1])
        events.append(core.next_event())
    assert events[:-1] == [Signal.NEED_DATA] * (len(REQUEST_TGZ) - 1)
    assert isinstance(events[-1], ArchiveRequest)
    assert core.next_event() is Signal.PAUSED


def test_framing_matches_git() -> None:
    assert git_archive.ack() == GIT_ACK
    assert git_archive.data(b"x" * 247) == b"00fc\x01" + b"x" * 247
    assert git_archive.end() == b"0000"
    assert git_archive.data(b"") == b""
    big = git_archive.data(b"y" * 70000)
    assert big.startswith(b"fff0\x01") and big[65520:65525] == b"%04x\x01" % (70000 - 65515 + 5)


def test_a_failure_is_framed_as_gits_archiver_death() -> None:
    """git's upload-archive, whose archiver died: its ``fatal:`` line on band 2, its own line on band 3."""
    assert git_archive.failed(b"no such ref: nosuch") == GIT_BAD_REF
    long = git_archive.failed(b"x\ny" * 40000)
    assert long.startswith(b"fff0\x02fatal: x y") and long.count(b"\n") == 1 and long.endswith(git_archive.ARCHIVER_DIED)


@pytest.mark.parametrize(("arguments", "expected"), [
    (("HEAD",), ArchiveOptions("tar", "", None, "HEAD")),
    (("--format=tar.gz", "-0", "main"), ArchiveOptions("tgz", "", 0, "main")),
    (("--format=zip", "--prefix=a/b/", "-1", "v1.0"), ArchiveOptions("zip", "a/b/", 1, "v1.0")),
    (("--format=tar", "--format=zip", "refs/heads/x"), ArchiveOptions("zip", "", None, "refs/heads/x")),
    (("--format", "tgz", "--prefix", "p/", "HEAD"), ArchiveOptions("tgz", "p/", None, "HEAD")),
    (("--prefix", "-9", "HEAD"), ArchiveOptions("tar", "-9", None, "HEAD")),
    (("--prefix=", "0123456789abcdef0123456789abcdef01234567",),
     ArchiveOptions("tar", "", None, "0123456789abcdef0123456789abcdef01234567")),
])
def test_accepted(arguments: tuple[str, ...], expected: ArchiveOptions) -> None:
    assert git_archive.parse_arguments(arguments) == expected


def _spec(text: str, pattern: bool = False, exclude: bool = False, icase: bool = False) -> Pathspec:
    return Pathspec(text, pattern, exclude, icase)


@pytest.mark.parametrize(("arguments", "pathspecs"), [
    (("HEAD", "src"), (_spec("src"),)),
    (("HEAD", "--", "docs/", "./README"), (_spec("docs"), _spec("README"))),
    (("HEAD", ".//src//"), (_spec("src"),)),
    (("HEAD", "*.md", "d?/[ab]"), (_spec("*.md", True), _spec("d?/[ab]", True))),
    (("HEAD", ":(literal)a*b"), (_spec("a*b"),)),
    (("HEAD", ":!tests", ":^*.o", ":(exclude,top)x"),
     (_spec("tests", exclude=True), _spec("*.o", True, exclude=True), _spec("x", exclude=True))),
    (("HEAD", ":/src", ":(top)lib"), (_spec("src"), _spec("lib"))),
    (("HEAD", ":(icase)ReadMe"), (_spec("readme", icase=True),)),
    (("HEAD", ".", "src"), ()),  # '.' is the whole tree: the other inclusions add nothing
    (("HEAD", ".", ":!src"), (_spec("src", exclude=True),)),
    (("HEAD", "--", "-x"), (_spec("-x"),)),  # after '--' a name may start with '-'
    # normalised as git normalises them (they were refused, "not a plain path")
    (("HEAD", "a/./b", "a//c", "d/../e", "f/.", "*/../g*"), (_spec("a/b"), _spec("a/c"), _spec("e"), _spec("f"),
                                                          _spec("g*", True))),
    (("HEAD", "src/.."), ()),  # the whole tree
])
def test_pathspecs(arguments: tuple[str, ...], pathspecs: tuple[Pathspec, ...]) -> None:
    options = git_archive.parse_arguments(arguments)
    assert options.treeish == "HEAD" and options.pathspecs == pathspecs


@pytest.mark.parametrize(("arguments", "verbose"), [
    (("HEAD",), False), (("-v", "HEAD"), True), (("HEAD", "--verbose"), True), (("HEAD", "--", "-v"), False)])
def test_verbose_is_taken_as_git_takes_it(arguments: tuple[str, ...], verbose: bool) -> None:
    """``-v``/``--verbose`` (git's upload-archive takes it: its archiver names each entry on
    stderr, which reaches the client on band 2); it was refused, "option not allowed: -v"."""
    assert git_archive.parse_arguments(arguments).verbose is verbose


def test_noted_paths_go_on_band_2_whole_lines_in_each_packet() -> None:
    paths = [b"docs/", b"docs/a.md"] + [b"x" * 40000, b"y" * 40000]
    framed = git_archive.noted(paths)
    packets = []
    while framed:
        size = int(framed[:4], 16)
        packets.append(framed[4:size])
        framed = framed[size:]
    assert all(p[:1] == b"\x02" and p.endswith(b"\n") for p in packets)
    assert b"".join(p[1:] for p in packets) == b"".join(path + b"\n" for path in paths)
    assert len(packets) == 2 and git_archive.noted([]) == b""


@pytest.mark.parametrize(("treeish", "expected"), [
    ("HEAD:src", "HEAD:src"), ("v1:src/deep/", "v1:src/deep"), ("main:", "main:")])
def test_treeish_with_a_path(treeish: str, expected: str) -> None:
    assert git_archive.parse_arguments((treeish,)).treeish == expected


def test_options_after_the_treeish() -> None:
    assert git_archive.parse_arguments(("HEAD", "src", "--prefix=p/", "--format", "zip", "-1")) == \
        ArchiveOptions("zip", "p/", 1, "HEAD", (_spec("src"),))


@pytest.mark.parametrize(("spec", "path", "directory", "selected"), [
    (_spec("docs"), "docs", True, True),
    (_spec("docs"), "docs/a", False, True),
    (_spec("docs"), "docsx", False, False),
    (_spec("docs/a"), "docs", True, False),
    (_spec("d*/a", True), "docs/a", False, True),
    (_spec("d*", True), "docs/sub/b", False, True),  # wildcards cross '/'
    (_spec("doc?", True), "docs", True, False),  # a pattern selects files, not directories
    (_spec("doc?", True), "docs/a", False, False),
    (_spec("readme", icase=True), "README", False, True),
])
def test_pathspec_matching(spec: Pathspec, path: str, directory: bool, selected: bool) -> None:
    assert spec.matches(path, directory) is selected


@pytest.mark.parametrize(("spec", "directory", "walk"), [
    (_spec("docs/sub/b"), "docs", True),
    (_spec("docs/sub/b"), "docs/sub", True),
    (_spec("docs/sub/b"), "src", False),
    (_spec("docs"), "docs/sub", True),
    (_spec("docs/*.md", True), "docs", True),
    (_spec("docs/*.md", True), "docs/deep", True),
    (_spec("docs/*.md", True), "src", False),
    (_spec("*.md", True), "anything", True),
])
def test_pathspec_walk(spec: Pathspec, directory: str, walk: bool) -> None:
    assert spec.may_select_below(directory) is walk


@pytest.mark.parametrize(("arguments", "message"), [
    (("--remote=ssh://x/y", "HEAD"), "option not allowed: --remote"),
    (("--exec=/bin/sh", "HEAD"), "option not allowed: --exec"),
    (("--output=/etc/passwd", "HEAD"), "option not allowed: --output"),
    (("-o", "/tmp/x", "HEAD"), "option not allowed: -o"),
    (("--add-file=/etc/passwd", "HEAD"), "option not allowed: --add-file"),
    (("--list",), "option not allowed: --list"),  # (the session answers it first: wants_list)
    (("--format=tar", "-9", "HEAD"), "Argument not supported for format 'tar': -9"),  # git's words, all of these
    (("--format=zip", "-10", "HEAD"), "Argument not supported for format 'zip': -10"),
    (("HEAD", ""), "empty string is not a valid pathspec. please use . instead if you meant to match all paths"),
    (("--format=7z", "HEAD"), "unknown archive format '7z'"),
    (("--prefix=../", "HEAD"), ("refusing prefix '../': it would put files outside the directory the archive is "
                               "extracted in; use a relative prefix without '..', such as 'project-1.0/'")),
    (("--prefix=/abs/", "HEAD"), "refusing prefix '/abs/': it would put files outside the directory"),
    (("--prefix=a/../../b/", "HEAD"), "refusing prefix 'a/../../b/'"),
    ((), "no tree-ish given"),
    (("--prefix",), "option '--prefix' needs a value"),
    (("--format", "7z", "HEAD"), "unknown archive format '7z'"),
    (("--format=tar",), "no tree-ish given"),
    (("--",), "no tree-ish given"),
    (("HEAD", "--exec=x"), "option not allowed: --exec"),  # git-archive takes options after the tree-ish
    (("HEAD", "../x"), "pathspec '../x' is outside the repository"),
    (("HEAD", "/etc/passwd"), "pathspec '/etc/passwd' is outside the repository"),
    (("HEAD", "a/../../x"), "pathspec 'a/../../x' is outside the repository"),
    (("HEAD", "a\\*"), "has a character this server does not accept"),
    (("HEAD", "a\0b"), "has a character this server does not accept"),
    (("HEAD", ":(glob)**/x"), "pathspec magic 'glob' is not supported"),
    (("HEAD", ":(attr:x)y"), "pathspec magic 'attr:x' is not supported"),
    (("HEAD", ":(exclude"), "unclosed magic"),
    (("HEAD", ":!."), "pathspec ':!.' did not match any files"),  # git's words
    (("HEAD", ":(exclude)"), "pathspec ':(exclude)' did not match any files"),
    (("HEAD", ":!src/.."), "pathspec ':!src/..' did not match any files"),
    ((":src",), "must be a ref name"),
    (("HEAD~1:src",), "must be a ref name"),
    (("HEAD:../x",), "'../x' is not a plain path"),
    (("HEAD:a//b",), "not a plain path"),
    (("HEAD~1",), "must be a ref name"),
    (("main@{1}",), "must be a ref name"),
    (("main^{tree}",), "must be a ref name"),
])
def test_refused(arguments: tuple[str, ...], message: str) -> None:
    with pytest.raises(ArchiveRefused, match=re.escape(message)):
        git_archive.parse_arguments(arguments)


def test_too_many_arguments() -> None:
    core = git_archive.UploadArchive()
    core.receive_data(b"".join(_pkt(b"argument -9\n") for _ in range(git_archive.MAX_ARGUMENTS + 1)))
    with pytest.raises(LimitExceeded, match="more than 64 archive arguments"):
        core.next_event()


def test_argument_too_long() -> None:
    with pytest.raises(LimitExceeded, match="longer than 4096"):
        _request(_pkt(b"argument --prefix=" + b"a" * 4096 + b"\n"))


@pytest.mark.parametrize(("data", "message"), [
    (_pkt(b"want 0123\n"), "expected an 'argument' line"),
    (b"0001", "expected an 'argument' line"),
    (_pkt(b"argument \xff\n") + b"0000", "not UTF-8"),
    (b"zzzz", "bad pkt-line length"),
])
def test_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        _request(data)


def test_eof_before_flush() -> None:
    core = git_archive.UploadArchive()
    core.receive_data(_pkt(b"argument HEAD\n"))
    core.receive_data(b"")
    with pytest.raises(ProtocolError, match="closed the connection before the end"):
        core.next_event()


# -- the backend -------------------------------------------------------------------------------


class _Repo:
    def __init__(self, store: MemoryObjectStore, refs: Mapping[bytes, ObjectId]) -> None:
        self.object_store = store
        self._refs = refs

    def refs(self) -> Mapping[bytes, ObjectId]:
        return self._refs


@pytest.fixture
def repo() -> tuple[_Repo, dict[str, bytes]]:
    store = MemoryObjectStore()
    hello, big, hidden = Blob.from_string(b"hello\n"), Blob.from_string(b"z" * 200_000), Blob.from_string(b"s")
    sub = Tree()
    sub.add(b"big", 0o100755, big.id)
    tree = Tree()
    tree.add(b"README", 0o100644, hello.id)
    tree.add(b"dir", 0o040000, sub.id)
    secret_tree = Tree()
    secret_tree.add(b"secret", 0o100644, hidden.id)
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = b"A <a@b>"
    commit.author_time = commit.commit_time = 1_700_000_000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"m\n"
    tag = Tag()
    tag.object, tag.name, tag.tagger, tag.message = (Commit, commit.id), b"v1", b"A <a@b>", b"t\n"
    tag.tag_time, tag.tag_timezone = 1_700_000_001, 0
    for obj in (hello, big, hidden, sub, tree, secret_tree, commit, tag):
        store.add_object(obj)
    refs = {b"HEAD": ObjectId(commit.id), b"refs/heads/main": ObjectId(commit.id), b"refs/tags/v1": ObjectId(tag.id)}
    ids: dict[str, bytes] = {"commit": commit.id, "tag": tag.id, "tree": tree.id, "unreachable": secret_tree.id, "blob": hello.id}
    return _Repo(store, refs), ids


def _archive(repo: _Repo, options: ArchiveOptions) -> list[bytes]:
    source = backend.resolve(repo, options.treeish, options.pathspecs)  # type: ignore[arg-type]
    return list(backend.archive_chunks(repo.object_store, source, options))


def _names(repo: _Repo, kind: str, *arguments: str) -> list[str]:
    data = b"".join(_archive(repo, git_archive.parse_arguments((f"--format={kind}", "HEAD", *arguments))))
    if kind == "zip":  # the files: directory entries aside
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [name for name in archive.namelist() if not name.endswith("/")]
    if not any(data[1024:]):  # git's pax header (the commit id) and no entry: tarfile cannot read it, tar(1) can
        return []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name for m in tar.getmembers() if not m.isdir()]


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize(("arguments", "names"), [
    (("dir",), ["dir/big"]),
    (("README", "dir/big"), ["README", "dir/big"]),
    (("dir", "dir/big"), ["dir/big"]),  # both match: neither is reported as matching nothing
    (("*g",), ["dir/big"]),
    (("[R]*",), ["README"]),
    ((":!dir",), ["README"]),
    ((".", ":!README"), ["dir/big"]),
    (("dir", ":!*big"), []),  # each selects something alone, nothing together: an empty archive, as git's
    (("*g", ":!dir"), []),
])
def test_pathspecs_select(repo: tuple[_Repo, dict[str, bytes]], kind: str, arguments: tuple[str, ...],
                          names: list[str]) -> None:
    assert _names(repo[0], kind, *arguments) == names


@pytest.mark.parametrize(("arguments", "message"), [
    (("nope",), "pathspec 'nope' did not match any files"),
    (("README", "dir/nope"), "pathspec 'dir/nope' did not match any files"),
    (("*.c",), r"pathspec '\*.c' did not match any files"),
    ((":(icase)NOPE",), r"pathspec ':\(icase\)NOPE' did not match"),
    ((":!*",), r"pathspec ':!\*' did not match any files"),  # an exclusion alone leaving no file
    (("nope", ":!dir"), "pathspec 'nope' did not match any files"),
    ((":!*", "nope"), r"pathspec ':!\*' did not match any files"),  # the first, in the order given
])
def test_pathspec_matching_nothing(repo: tuple[_Repo, dict[str, bytes]], arguments: tuple[str, ...],
                                   message: str) -> None:
    options = git_archive.parse_arguments(("HEAD", *arguments))
    with pytest.raises(ArchiveRefused, match=message):
        backend.resolve(repo[0], options.treeish, options.pathspecs)  # type: ignore[arg-type]


def test_treeish_path_is_a_subtree(repo: tuple[_Repo, dict[str, bytes]]) -> None:
    options = git_archive.parse_arguments(("v1:dir",))
    with tarfile.open(fileobj=io.BytesIO(b"".join(_archive(repo[0], options)))) as tar:
        assert tar.getnames() == ["big"]


@pytest.mark.parametrize(("treeish", "message"), [
    ("HEAD:nope", "not a valid object name: HEAD:nope"),
    ("HEAD:dir/big/x", "not a valid object name"),
    ("HEAD:README", "not a tree object: [0-9a-f]{40}$"),  # git's words
    ("nosuch:dir", "no such ref: nosuch"),
])
def test_treeish_path_refused(repo: tuple[_Repo, dict[str, bytes]], treeish: str, message: str) -> None:
    with pytest.raises(ArchiveRefused, match=message):
        backend.resolve(repo[0], git_archive.parse_arguments((treeish,)).treeish)  # type: ignore[arg-type]


def test_pathspecs_leave_the_store_alone(repo: tuple[_Repo, dict[str, bytes]]) -> None:
    """The filtered trees live in the answer only; the repository gets no new object."""
    before = set(repo[0].object_store)
    _names(repo[0], "tar", "README")
    assert set(repo[0].object_store) == before


@pytest.mark.parametrize("name", ["HEAD", "main", "heads/main", "refs/heads/main", "v1", "tags/v1"])
def test_resolve_names(repo: tuple[_Repo, dict[str, bytes]], name: str) -> None:
    source = backend.resolve(repo[0], name)  # type: ignore[arg-type]
    assert source == backend.ArchiveSource(repo[1]["tree"], 1_700_000_000, commit=repo[1]["commit"])


@pytest.mark.parametrize("which", ["commit", "tag", "unreachable", "tree", "blob"])
def test_resolve_refuses_ids_as_git_upload_archive_does_by_default(repo: tuple[_Repo, dict[str, bytes]],
                                                                   which: str) -> None:
    """Not even a ref's own commit or tag: git's archive looks the name up as a ref (``dwim_ref``)."""
    with pytest.raises(ArchiveRefused, match="no such ref"):
        backend.resolve(repo[0], repo[1][which].decode())  # type: ignore[arg-type]


@pytest.mark.parametrize(("which", "tree"), [("commit", "tree"), ("tag", "tree"), ("tree", "tree"),
                                             ("unreachable", "unreachable")])
def test_resolve_takes_any_id_with_allow_unreachable(repo: tuple[_Repo, dict[str, bytes]], which: str,
                                                     tree: str) -> None:
    """``uploadArchive.allowUnreachable``: the id of any object of the repository that names a tree."""
    source = backend.resolve(repo[0], repo[1][which].decode(), allow_unreachable=True)  # type: ignore[arg-type]
    assert source.tree == repo[1][tree]


@pytest.mark.parametrize(("name", "message"), [("blob", "not a tree object: [0-9a-f]{40}$"),
                                               ("nosuch", "not a valid object name"),
                                               ("a" * 40, "not a valid object name")])
def test_resolve_with_allow_unreachable_refuses_what_names_no_tree(repo: tuple[_Repo, dict[str, bytes]], name: str,
                                                                   message: str) -> None:
    treeish = repo[1][name].decode() if name in repo[1] else name
    with pytest.raises(ArchiveRefused, match=message):
        backend.resolve(repo[0], treeish, allow_unreachable=True)  # type: ignore[arg-type]


def test_resolve_unknown_name(repo: tuple[_Repo, dict[str, bytes]]) -> None:
    with pytest.raises(ArchiveRefused, match="no such ref: nosuch"):
        backend.resolve(repo[0], "nosuch")  # type: ignore[arg-type]


def test_tar_streams_file_by_file(repo: tuple[_Repo, dict[str, bytes]]) -> None:
    chunks = _archive(repo[0], ArchiveOptions("tar", "p/", None, "HEAD"))
    assert len(chunks) >= 3
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.getnames() == ["p", "p/README", "p/dir", "p/dir/big"]
        assert tar.getmember("p/dir/big").mode == 0o775 and tar.getmember("p/dir").isdir()
        assert tar.pax_headers["comment"] == repo[1]["commit"].decode()
        assert tar.getmember("p/README").mtime == 1_700_000_000


def test_tgz_level_and_determinism(repo: tuple[_Repo, dict[str, bytes]]) -> None:
    fast = b"".join(_archive(repo[0], ArchiveOptions("tgz", "", 1, "v1")))
    best = b"".join(_archive(repo[0], ArchiveOptions("tgz", "", 9, "v1")))
    assert best == b"".join(_archive(repo[0], ArchiveOptions("tgz", "", 9, "v1")))
    with tarfile.open(fileobj=io.BytesIO(best), mode="r:gz") as tar:
        assert tar.extractfile("dir/big").read() == b"z" * 200_000  # type: ignore[union-attr]
    assert len(fast) >= len(best)


@pytest.mark.parametrize("level", [None, 0, 9])
def test_zip(repo: tuple[_Repo, dict[str, bytes]], level: int | None) -> None:
    chunks = _archive(repo[0], ArchiveOptions("zip", "x/", level, "main"))
    assert len(chunks) >= 3
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["x/", "x/README", "x/dir/", "x/dir/big"]
        assert archive.comment == repo[1]["commit"]
        assert archive.read("x/dir/big") == b"z" * 200_000
        assert archive.getinfo("x/dir/big").external_attr >> 16 == 0o100755
        assert archive.getinfo("x/README").external_attr == 0  # a plain file: no Unix mode, as from git
        assert archive.getinfo("x/README").date_time == (2023, 11, 14, 22, 13, 20)


@pytest.mark.parametrize(("pattern", "path", "matched"), [
    (("docs", "**"), ("docs", "a.txt"), True),
    (("docs", "**"), ("docs",), False),  # a trailing /** is what is below, not the directory
    (("**", "b.txt"), ("docs", "x", "b.txt"), True),
    (("**", "b.txt"), ("b.txt",), True),
    (("a", "**", "z"), ("a", "z"), True),
    (("a", "*", "z"), ("a", "b", "c", "z"), False),  # '*' stays within a directory
])
def test_export_ignore_path_patterns(pattern: tuple[str, ...], path: tuple[str, ...], matched: bool) -> None:
    assert backend._glob_segments(pattern, path) is matched


def test_export_ignore_patterns_of_a_pushed_file_cannot_take_forever() -> None:
    pattern = ("**",) * 30 + ("nope",)
    path = ("d",) * 200 + ("file",)
    assert backend._glob_segments(pattern, path) is False  # memoized: instant, not 200**30 steps


def test_too_many_export_ignore_rules_refuse_the_archive(repo: tuple[_Repo, dict[str, bytes]]) -> None:
    store = repo[0].object_store
    rules = Blob.from_string(b"".join(b"x%d export-ignore\n" % n for n in range(backend.MAX_ATTRIBUTE_RULES + 1)))
    tree = store[repo[1]["tree"]]
    tree.add(b".gitattributes", 0o100644, rules.id)
    store.add_object(rules)
    store.add_object(tree)
    source = backend.ArchiveSource(tree.id, 0)
    with pytest.raises(ArchiveRefused, match="export-ignore and export-subst rules"):
        list(backend.archive_chunks(store, source, ArchiveOptions("tar", "", None, "HEAD")))


def test_a_list_request_is_seen_before_any_double_dash() -> None:
    assert wants_list(("--list",)) and wants_list(("--format=zip", "-l", "HEAD"))
    assert not wants_list(("HEAD", "--", "--list")) and not wants_list(("HEAD",))


def test_an_archive_reads_its_blobs_without_hashing_them_again(
        repo: tuple[_Repo, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """dulwich's ``store[id]`` hashed every blob it read to check its id, about a fifth of the
    server's CPU for an archive of 1,500 files; the archive reads them as git's does, unhashed,
    and its bytes are the same."""
    r, _ = repo
    options = git_archive.parse_arguments(("--format=tar", "HEAD"))
    expected = b"".join(_archive(r, options))

    class Stored(MemoryObjectStore):  # raw texts as a pack gives them (dulwich's memory store copies, hashing)
        def get_raw(self, name: Any) -> tuple[int, bytes]:
            found = self._data[name]
            return found.type_num, found.as_raw_string()

    stored = Stored()
    for obj in r.object_store._data.values():
        stored.add_object(obj)
    r = _Repo(stored, r.refs())
    hashed: list[bytes] = []
    real = Blob.sha

    def counting(self: Blob) -> object:
        hashed.append(b"blob")
        return real(self)

    monkeypatch.setattr(Blob, "sha", counting)
    assert b"".join(_archive(r, options)) == expected
    assert hashed == []


def test_archive_bytes_are_framed_in_few_pkt_lines() -> None:
    """A tar comes as three small chunks a file (header, file, padding), and each was framed and
    written alone: 4,800 pkt-lines and transport writes for 1,500 files.  They are gathered to
    256 KiB first; a ``--verbose`` path still comes before the data written after it."""
    from gateway.git_session import ARCHIVE_GATHER, _archive_framed

    chunks = [b"h" * 512, b"f" * 300, b"\0" * 212] * 1500
    framed = b"".join(_archive_framed(iter(chunks), []))
    assert framed.count(b"\x01") >= 1
    pkts, data, at = 0, b"", 0
    while at < len(framed):
        size = int(framed[at:at + 4], 16)
        assert framed[at + 4] == 1
        data += framed[at + 5:at + size]
        pkts, at = pkts + 1, at + size
    assert data == b"".join(chunks)
    assert pkts <= len(data) // ARCHIVE_GATHER * 5 + 5  # (65515-byte pkt-lines of 256 KiB pieces)
    paths: list[bytes] = []

    def noting() -> Iterator[bytes]:
        yield b"a" * 10
        paths.append(b"x")
        yield b"b" * 10

    verbose = b"".join(_archive_framed(noting(), paths))
    assert verbose.index(b"a" * 10) < verbose.index(b"\x02x\n") < verbose.index(b"b" * 10)
