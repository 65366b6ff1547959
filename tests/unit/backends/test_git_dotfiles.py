"""backends.git_dotfiles: names a file system opens as ``.gitmodules``, git's config syntax and URL
normalisation (each against the real ``git``), and the checks of a push's dotfiles."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backends import git_dotfiles
from backends.git_dotfiles import (
    ConfigSyntaxError,
    DotFiles,
    config_entries,
    is_hfs_dotfile,
    is_ntfs_dotfile,
    submodule_name_ok,
    submodule_url_ok,
    url_normalize,
)

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_CONFIG_GLOBAL": "/dev/null"}


def _entries_and_error(data: bytes) -> tuple[list[tuple[bytes, bytes | None]], bool]:
    found = []
    try:
        for name, value in config_entries(data):
            found.append((name.split(b"\0")[0], None if value is None else value.split(b"\0")[0]))
    except ConfigSyntaxError:
        return found, True
    return found, False


def _git_config_list(data: bytes) -> tuple[list[tuple[bytes, bytes | None]], bool]:
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        done = subprocess.run(["git", "config", "-f", f.name, "--list", "-z"], capture_output=True, env=ENV,
                              check=False)
    assert done.returncode in (0, 128), done.stderr
    found: list[tuple[bytes, bytes | None]] = []
    for item in done.stdout.split(b"\0")[:-1]:
        name, newline, value = item.partition(b"\n")
        found.append((name, value if newline else None))
    return found, done.returncode == 128


CONFIG_PIECES = st.sampled_from([
    b"[submodule \"a\"]", b"[submodule.x]", b"[Sub \"q\\\"z\\\\\"]", b"[s \"", b"[]", b"[a b]", b"[ \"x\"]",
    b"url", b"Path", b"k-1", b"1k", b"=", b" = ", b"\"", b"\\", b"\\n", b"\\t", b"\\x", b"\\\n", b"\\\r\n",
    b"#c", b";c", b" ", b"\t", b"\r", b"\r\n", b"\n", b"\n", b"\n", b"value", b"-v", b"a b", b"\xef\xbb\xbf",
    b"\xef", b".", b"]", b"[", b"..", b"%0a",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(CONFIG_PIECES, max_size=16).map(b"".join))
@example(b"[submodule \"x\"]\n\turl = \"a b\" # c\n\tpath=p ; q\n")
@example(b"[a]k\n")
@example(b"k = \"unterminated\n")
@example(b"\xef\xbb\xbf[a] b = c d  \n")
@example(b"[a.B.c]\nkey\n[x \"y\"] z = 1 \\\n 2")
def test_config_entries_are_what_git_reads(data: bytes) -> None:
    assert _entries_and_error(data) == _git_config_list(data)


URL_PIECES = st.sampled_from([
    b"http://", b"https://", b"ftp://", b"HTTP://", b"x+y://", b"1a://", b"example.com", b"EXAMPLE.com", b"h",
    b":", b":80", b":0", b":65536", b":test", b":", b"@", b"user", b"u:p@", b"/", b"/", b"..", b".", b"%",
    b"%0a", b"%0A", b"%zz", b"%41", b"?", b"#", b"[", b"]", b"[::1]", b" ", b"\n", b"a", b"_", b"~", b"-",
])


def _git_normalizes(url: bytes) -> bool:
    done = subprocess.run(["git", "config", "--get-urlmatch", "http.sslverify", url], capture_output=True,
                          env=ENV, check=False)
    assert done.returncode in (1, 128), done.stderr
    return done.returncode == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(URL_PIECES, min_size=1, max_size=10).map(b"".join).filter(lambda u: b"\0" not in u))
@example(b"http://example.com:test/foo.git")
@example(b"https:///example.com/foo.git")
@example(b"http://a/b/../../c")
@example(b"http://[::1]:80/x")
@example(b"http://ex%0aample.com/")
@example(b"http://example.com:/x")
def test_url_normalize_refuses_what_git_refuses(url: bytes) -> None:
    if not url.lower().startswith((b"http://", b"https://", b"ftp://")):
        url = b"http://" + url
    assert (url_normalize(url) is not None) == _git_normalizes(url), url


@pytest.mark.parametrize(("url", "ok"), [
    # git's own list (t7450): the first three pass, the rest are refused
    (b"./bar/baz/foo.git", True), (b"https://example.com/foo.git", True),
    (b"http://example.com:80/deeper/foo.git", True),
    (b"-a./foo", False), (b"../../..//test/foo.git", False), (b"../../../../../:localhost:8080/foo.git", False),
    (b"..\\../.\\../:example.com/foo.git", False), (b"./%0ahost=example.com/foo.git", False),
    (b"https://one.example.com/evil?%0ahost=two.example.com", False), (b"https:///example.com/foo.git", False),
    (b"http://example.com:test/foo.git", False), (b"https::example.com/foo.git", False),
    (b"http:::example.com/foo.git", False),
    (b"git://example.com:1234/repo%0a.git", False), (b"git://example.com/repo.git", True),
    (b"ssh://host/-oProxyCommand=x", True), (b"host:path", True), (b"../sibling.git", True),
])
def test_submodule_urls(url: bytes, ok: bool) -> None:
    assert submodule_url_ok(url) is ok


@pytest.mark.parametrize(("name", "ok"), [
    (b"valid", True), (b"valid/with/paths", True), (b"", False), (b"../foo", False), (b"/../foo", False),
    (b"..\\foo", False), (b"\\..\\foo", False), (b"foo/..", False), (b"foo/../", False), (b"foo\\..", False),
    (b"foo\\..\\", False), (b"foo/../bar", False), (b"foo..bar", True), (b"...", True),
])
def test_submodule_names(name: bytes, ok: bool) -> None:
    assert submodule_name_ok(name) is ok


@pytest.mark.parametrize(("name", "hfs", "ntfs"), [
    (b".gitmodules", True, True), (b".GitModules", True, True), (b".gitmodules/", True, False),
    (".git\u200cmodules".encode(), True, False), ("\ufeff.gitmodules".encode(), True, False),
    (b".gitmodules\xff", True, False), (b".gitmodules .", False, True), (b".gitmodules:$DATA", False, True),
    (b"GITMOD~1", False, True), (b"gitmod~4", False, True), (b"gitmod~5", False, False),
    (b"GI7EBA~1", False, True), (b"gi7eb~12", False, True), (b"gi7eba~9", False, True), (b"~1234567", False, True),
    (b"gi7eba~a", False, False), (b"gi7ebax~1", False, False),
    (b".gitmodulesx", False, False), (b"gitmodules", False, False), (b"x.gitmodules", False, False),
])
def test_names_a_file_system_opens_as_gitmodules(name: bytes, hfs: bool, ntfs: bool) -> None:
    assert is_hfs_dotfile(name, "gitmodules") is hfs
    assert is_ntfs_dotfile(name, b"gitmodules", b"gi7eba") is ntfs


def _tree(*entries: tuple[bytes, bytes]) -> list[tuple[bytes, int, bytes]]:
    """Tree entries as parsed: (name, mode, hex id), each id its own."""
    return [(name, int(mode, 8), (bytes([i]) * 20).hex().encode()) for i, (mode, name) in enumerate(entries)]


class Reports:
    def __init__(self) -> None:
        self.seen: list[tuple[bytes | None, str, str]] = []

    def of(self, oid: bytes | None) -> git_dotfiles.Report:
        return lambda msg_id, message: self.seen.append((oid, msg_id, message))


def test_a_tree_notes_its_dotfiles_and_reports_a_gitmodules_link() -> None:
    dotfiles, reports = DotFiles(), Reports()
    entries = _tree((b"100644", b".gitattributes"), (b"100644", b"GITMOD~1"), (b"100644", b"a\\.gitmodules"),
                         (b"120000", b".gitignore"), (b"120000", b".mailmap"), (b"100644", b"README"))
    dotfiles.tree(entries, reports.of(b"tree"))
    assert dotfiles.gitmodules == {entries[1][2], entries[2][2]}
    assert dotfiles.gitattributes == {entries[0][2]}
    assert [r[1] for r in reports.seen] == ["gitignoreSymlink", "mailmapSymlink"]
    entries = _tree((b"120000", b".gitmodules"),)
    dotfiles.tree(entries, reports.of(b"tree"))
    assert reports.seen[-1] == (b"tree", "gitmodulesSymlink", ".gitmodules is a symbolic link")
    plain = DotFiles()
    entries = _tree((b"100644", b"Makefile"), (b"40000", b"src"))
    plain.tree(entries, reports.of(b"tree"))
    assert not plain.gitmodules and not plain.gitattributes


@pytest.mark.parametrize(("text", "findings"), [
    (b"[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n", []),
    (b"[submodule \"../../modules/evil\"]\n\tpath = x\n", ["gitmodulesName"]),
    (b"[submodule.x]\n\turl = -upload-pack=touch\n", ["gitmodulesUrl"]),
    (b"[submodule \"x\"]\n\tpath = --recurse\n", ["gitmodulesPath"]),
    (b"[submodule \"x\"]\n\tupdate = !rm -rf /\n", ["gitmodulesUpdate"]),
    (b"[submodule \"x\"]\n\turl = \"./%0ahost=evil\"\n", ["gitmodulesUrl"]),
    (b"[submodule \"x\"]\n\turl = -x\n\tbroken \"\n", ["gitmodulesUrl", "gitmodulesParse"]),
    (b"[submodule \"x\"\n", ["gitmodulesParse"]),
    (b"[submodule]\n\turl = -x\n", []),  # no subsection: not about a submodule
    (b"[other \"..\"]\n\turl = -x\n", []),
])
def test_gitmodules_settings(text: bytes, findings: list[str]) -> None:
    reports = Reports()
    git_dotfiles.check_gitmodules(text, reports.of(b"blob"))
    assert [r[1] for r in reports.seen] == findings


def test_finish_reads_each_file_once_and_reports_against_it() -> None:
    dotfiles, reports = DotFiles(), Reports()
    good, evil, tree, gone, long_lines = b"1" * 40, b"2" * 40, b"3" * 40, b"4" * 40, b"5" * 40
    dotfiles.gitmodules.update({good, evil, tree, gone})
    dotfiles.gitattributes.update({long_lines, good})
    objects = {good: (3, b"[submodule \"a\"]\npath = a\n"), evil: (3, b"[submodule \"..\"]\npath = a\n"),
               tree: (2, b""), long_lines: (3, b"*.c text\n" + b"x" * 2048 + b"\n")}
    dotfiles.finish(lambda oid: objects[oid], reports.of)
    assert [(oid, msg_id) for oid, msg_id, _ in reports.seen] == [
        (evil, "gitmodulesName"), (tree, "gitmodulesBlob"), (gone, "gitmodulesMissing"),
        (long_lines, "gitattributesLineLength")]


def test_a_file_over_its_bound_is_refused_unread() -> None:
    dotfiles, reports = DotFiles(), Reports()
    dotfiles.gitmodules.add(b"1" * 40)
    dotfiles.finish(lambda oid: (3, b"#" * (git_dotfiles.MAX_GITMODULES + 1)), reports.of)
    assert [r[1] for r in reports.seen] == ["gitmodulesLarge"]


def test_git_agrees_on_a_gitmodules_name_check(tmp_path: Path) -> None:
    """``git fsck`` on a repository holding the same file finds the same thing."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=ENV)
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=tmp_path, input=b"[submodule \"../x\"]\npath=a\n",
                          capture_output=True, check=True, env=ENV).stdout.strip()
    tree = subprocess.run(["git", "mktree"], cwd=tmp_path, input=b"100644 blob " + blob + b"\t.gitmodules\n",
                          capture_output=True, check=True, env=ENV).stdout.strip()
    subprocess.run(["git", "update-ref", "refs/heads/x",
                    subprocess.run(["git", "commit-tree", "-m", "m", tree.decode()], cwd=tmp_path, capture_output=True,
                                   check=True, env={**ENV, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
                                                    "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
                                   ).stdout.strip().decode()], cwd=tmp_path, check=True, env=ENV)
    fsck = subprocess.run(["git", "fsck"], cwd=tmp_path, capture_output=True, env=ENV, check=False)
    assert b"gitmodulesName" in fsck.stderr + fsck.stdout
    reports = Reports()
    dotfiles = DotFiles()
    dotfiles.tree([(b".gitmodules", 0o100644, blob)], reports.of(tree))
    dotfiles.finish(lambda oid: (3, b"[submodule \"../x\"]\npath=a\n"), reports.of)
    assert [r[1] for r in reports.seen] == ["gitmodulesName"]
