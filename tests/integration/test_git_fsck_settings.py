"""A repository's ``receive.fsck.*`` settings, with real pushes, against git's own receive-pack
(``receive.fsckObjects`` on, as hgwire always checks) pushing to a copy of the same repository.

Legacy history with objects ``git fsck`` calls broken (a commit with a bad time zone, written by an
old tool) is refused by default; ``receive.fsck.badTimezone = ignore`` or a ``receive.fsck.skipList``
naming the commit lets it in.  A tree entry a checkout cannot honour (``.GIT``) is refused by
default, as git's receive-pack (strict with ``receive.fsckObjects``) refuses it, and let in with
``receive.fsck.hasDotgit = warn``; a finding of old tools' history (a zero-padded mode) passes by default
and refuses once ``receive.fsck.zeroPaddedFilemode = error``.  A finding let through as a warning is
told to the client as git's receive-pack tells it (``remote: warning: object …``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.conftest import BACKENDS, LOOPBACK, Client
from tests.integration.test_git_daemon import remote_refs, started_repo


def _object(client: Client, work: Path, kind: str, data: bytes) -> str:
    return subprocess.run(["git", "hash-object", "-t", kind, "-w", "--literally", "--stdin"], cwd=work,
                          input=data, capture_output=True, check=True, env=client.env).stdout.decode().strip()


def _legacy_commit(client: Client, work: Path) -> str:
    """A commit on top of ``HEAD`` whose author's time zone has five digits (``fsck``: badTimezone)."""
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    tree = client.git("rev-parse", "HEAD^{tree}", cwd=work).stdout.strip()
    text = (f"tree {tree}\nparent {head}\nauthor Old Tool <old@example.com> 1000000000 +05300\n"
            f"committer Old Tool <old@example.com> 1000000000 +0530\n\nimported\n").encode()
    return _object(client, work, "commit", text)


def _dotgit_commit(client: Client, work: Path) -> str:
    """A commit whose tree holds a ``.GIT`` directory (``fsck``: hasDotgit, a warning)."""
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    blob = _object(client, work, "blob", b"[core]\n")
    inner = _object(client, work, "tree", b"100644 config\0" + bytes.fromhex(blob))
    tree = _object(client, work, "tree", b"40000 .GIT\0" + bytes.fromhex(inner))
    return client.git("commit-tree", tree, "-p", head, "-m", "sneaky", cwd=work).stdout.strip()


def _push_both(client: Client, work: Path, url: str, copy: Path, commit: str
               ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    ours = client.git("push", url, f"{commit}:refs/heads/main", cwd=work, check=False)
    theirs = client.git("push", f"file://{copy}", f"{commit}:refs/heads/main", cwd=work, check=False)
    return ours, theirs


def warnings_told(stderr: str) -> list[str]:
    """The ``remote: warning: …`` lines of a push (without the prefix and the padding)."""
    return [line.removeprefix("remote: warning: ").strip() for line in stderr.splitlines()
            if line.startswith("remote: warning: ")]


def _tree_of(client: Client, work: Path, commit: str) -> str:
    return client.git("rev-parse", f"{commit}^{{tree}}", cwd=work).stdout.strip()


def _setting(git_dir: Path, key: str, value: str) -> None:
    subprocess.run(["git", "--git-dir", str(git_dir), "config", key, value], check=True)


def server_and_git_copy(make_server: Any, client: Client, name: str) -> tuple[str, Path, Path, Path]:
    """A repository ``name`` on a new server with one pushed commit, and a copy of it for git's own
    receive-pack (``receive.fsckObjects`` on): its URL, the client's clone, the server's git
    directory and the copy."""
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, name, push=True)
    bare = server.root / f"{name}.git"
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    _setting(copy, "receive.fsckObjects", "true")
    return url, work, bare, copy


@pytest.mark.parametrize("how", ["ignore", "skipList"])
def test_legacy_history_is_let_in_by_the_repositorys_fsck_settings(make_server: Any, client: Client,
                                                                   how: str) -> None:
    url, work, bare, copy = server_and_git_copy(make_server, client, "legacy")
    commit = _legacy_commit(client, work)
    before = remote_refs(client, "default", url)

    ours, theirs = _push_both(client, work, url, copy, commit)
    assert ours.returncode == theirs.returncode != 0, (ours.stderr, theirs.stderr)
    assert "badTimezone" in ours.stderr and "badTimezone" in theirs.stderr, (ours.stderr, theirs.stderr)
    assert remote_refs(client, "default", url) == before  # nothing moved

    for git_dir in (bare, copy):
        if how == "ignore":
            _setting(git_dir, "receive.fsck.badTimezone", "ignore")
        else:
            (git_dir / "legacy-objects").write_text(f"# imported from the old system\n{commit}  # bad zone\n")
            _setting(git_dir, "receive.fsck.skipList", "legacy-objects")  # relative: the git directory's
    ours, theirs = _push_both(client, work, url, copy, commit)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")
    client.git("-c", "fsck.badTimezone=ignore", "--git-dir", str(bare), "fsck", "--full")


def _zero_padded_commit(client: Client, work: Path) -> str:
    """A commit whose tree writes a mode as ``0100644`` (``fsck``: zeroPaddedFilemode, a warning)."""
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    blob = _object(client, work, "blob", b"old tool\n")
    tree = _object(client, work, "tree", b"0100644 old.txt\0" + bytes.fromhex(blob))
    return client.git("commit-tree", tree, "-p", head, "-m", "imported", cwd=work).stdout.strip()


@pytest.mark.parametrize(("make", "msg_id", "by_default"), [
    (_dotgit_commit, "hasDotgit", "refused"),
    (_zero_padded_commit, "zeroPaddedFilemode", "taken"),
])
def test_tree_findings_by_default_and_as_the_settings_say(make_server: Any, client: Client, make: Any,
                                                          msg_id: str, by_default: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "strict", push=True)
    bare = server.root / "strict.git"
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    _setting(copy, "receive.fsckObjects", "true")
    commit = make(client, work)
    before = remote_refs(client, "default", url)
    if by_default == "refused":  # as git's receive-pack refuses it
        ours, theirs = _push_both(client, work, url, copy, commit)
        assert ours.returncode == theirs.returncode != 0, (ours.stderr, theirs.stderr)
        assert msg_id in ours.stderr and msg_id in theirs.stderr, (ours.stderr, theirs.stderr)
        assert remote_refs(client, "default", url) == before
    else:  # old tools' history: taken by hgwire (git's strict receive-pack would refuse it), here by
        # another repository of the server, so that this one still lacks the objects
        other_url, _ = started_repo(server, client, "other", push=True)
        taken = client.git("push", other_url, f"{commit}:refs/heads/taken", cwd=work)
        told = f"object {_tree_of(client, work, commit)}: {msg_id}: contains zero-padded file modes"
        assert warnings_told(taken.stderr) == [told], taken.stderr
        client.git("-c", f"fsck.{msg_id}=ignore", "--git-dir", str(server.root / "other.git"), "fsck", "--full")
    for git_dir in (bare, copy):
        _setting(git_dir, f"receive.fsck.{msg_id}", "error")
    ours, theirs = _push_both(client, work, url, copy, commit)
    assert ours.returncode == theirs.returncode != 0, (ours.stderr, theirs.stderr)
    assert msg_id in ours.stderr and msg_id in theirs.stderr, (ours.stderr, theirs.stderr)
    for git_dir in (bare, copy):
        _setting(git_dir, f"receive.fsck.{msg_id}", "warn")
    ours, theirs = _push_both(client, work, url, copy, commit)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert warnings_told(ours.stderr) == warnings_told(theirs.stderr) != [], (ours.stderr, theirs.stderr)
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")
    client.git("-c", f"fsck.{msg_id}=ignore", "--git-dir", str(bare), "fsck", "--full")


def test_a_broken_skip_list_refuses_the_push_saying_so(make_server: Any, client: Client) -> None:
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "broken", push=True)
    bare = server.root / "broken.git"
    before = remote_refs(client, "default", url)
    (bare / "skip").write_text("not-an-id\n")
    _setting(bare, "receive.fsck.skipList", "skip")
    commit = _legacy_commit(client, work)
    refused = client.git("push", url, f"{commit}:refs/heads/main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "invalid object name 'not-an-id' in receive.fsck.skipList" in refused.stderr, refused.stderr
    _setting(bare, "receive.fsck.skipList", "missing-file")
    refused = client.git("push", url, f"{commit}:refs/heads/main", cwd=work, check=False)
    assert "could not open receive.fsck.skipList 'missing-file'" in refused.stderr, refused.stderr
    assert remote_refs(client, "default", url) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_warning_is_told_over_http_on_every_backend(make_server: Any, client: Client, tmp_path: Path,
                                                      backend: str) -> None:
    """Old tools' history pushed over smart HTTP: taken, each finding told once per object
    (``remote: warning: …``, band 2 of the push's answer), as git's http-backend does."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    server = make_server(backend, http=[LOOPBACK], htpasswd=str(htpasswd), create_on_push=True)
    url = f"http://alice:s3cret@127.0.0.1:{server.port('http')}/old.git"
    work = client.cwd / "old"
    client.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    client.git("add", "a.txt", cwd=work)
    client.git("commit", "-qm", "a", cwd=work)
    commit = _zero_padded_commit(client, work)
    nul = _object(client, work, "commit", client.git("cat-file", "commit", commit, cwd=work).stdout.encode()
                  .replace(b"imported", b"imported\0by an old tool"))
    pushed = client.git("push", url, f"{nul}:refs/heads/main", cwd=work)
    assert sorted(warnings_told(pushed.stderr)) == sorted([
        f"object {_tree_of(client, work, commit)}: zeroPaddedFilemode: contains zero-padded file modes",
        f"object {nul}: nulInCommit: NUL byte in the commit object body",
    ]), pushed.stderr
    assert client.git("ls-remote", url, "refs/heads/main").stdout.split()[0] == nul
    again = client.git("push", url, f"{nul}:refs/heads/again", cwd=work)
    assert warnings_told(again.stderr) == [], "nothing new was pushed, nothing is checked again"


def test_what_git_calls_info_is_told_as_git_s_receive_pack_tells_it(make_server: Any, client: Client) -> None:
    """A tag without a tagger (as old tools wrote them), and a ``.gitignore`` that is a symbolic
    link: taken, and told as warnings line for line as git's strict receive-pack tells them."""
    url, work, _bare, copy = server_and_git_copy(make_server, client, "info")
    head = client.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    link = _object(client, work, "blob", b"elsewhere/ignore")
    tree = _object(client, work, "tree", b"120000 .gitignore\0" + bytes.fromhex(link))
    commit = client.git("commit-tree", tree, "-p", head, "-m", "a linked .gitignore", cwd=work).stdout.strip()
    tag = _object(client, work, "tag", f"object {commit}\ntype commit\ntag v0.1\n\nno tagger\n".encode())
    client.git("update-ref", "refs/tags/v0.1", tag, cwd=work)
    pushed = [client.git("push", target, f"{commit}:refs/heads/main", "refs/tags/v0.1", cwd=work)
              for target in (url, f"file://{copy}")]
    ours, theirs = (sorted(warnings_told(p.stderr)) for p in pushed)
    assert ours == theirs == sorted([f"object {tree}: gitignoreSymlink: .gitignore is a symlink",
                                     f"object {tag}: missingTaggerEntry: invalid format - expected 'tagger' line"]), \
        (pushed[0].stderr, pushed[1].stderr)
