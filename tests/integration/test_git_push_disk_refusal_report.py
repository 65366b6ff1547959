"""Two pushes the server's disk refuses, reported as git's receive-pack reports them, with the
operator's one warning (``tests/integration/test_disk_refusal_warning.py``'s injection):

- a push whose quarantine cannot be made (``objects/`` not writable by the service's user): each
  ref is ``! [remote rejected] … (unpacker error)`` after ``error: … unpack failed: …``, over
  git://, SSH and HTTP.  Before, the session ended with a protocol error and git said "the remote
  end hung up unexpectedly";
- a ref file the disk cannot write (``failed to update ref: No space left on device``): the ref's
  result as before, and now the warning naming the file, which never reached the service.
"""

from __future__ import annotations

import errno
import os
import urllib.parse
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, SshKeys, ssh_server_settings
from tests.integration.test_disk_refusal_warning import _warnings
from tests.integration.test_full_disk import _full, _UnflushableFile
from tests.integration.test_git_daemon import remote_refs, started_repo

PASSWORD = "pw"


def _server(make_server: Any, keys: SshKeys, tmp: Path) -> Any:
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode() + "\n")
    return make_server("fs", git=[LOOPBACK], http=[LOOPBACK], htpasswd=str(htpasswd), allow_push_over_http=True,
                       **ssh_server_settings(keys))


def _url(server: Any, keys: SshKeys, client: Client, transport: str, name: str) -> str:
    client.env["GIT_SSH_COMMAND"] = keys.command(server.port("ssh"))
    urls: dict[str, str] = {"git": server.git_url(name),
                           "ssh": f"ssh://git@127.0.0.1:{server.port('ssh')}/{name}",
                           "http": f"http://alice:{urllib.parse.quote(PASSWORD)}@127.0.0.1:{server.port('http')}/{name}"}
    return urls[transport]


@pytest.mark.parametrize("transport", ["git", "ssh", "http"])
def test_a_git_push_whose_quarantine_cannot_be_made_is_reported_per_ref(
        make_server: Any, client: Client, ssh_keys: SshKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        transport: str) -> None:
    from backends import git_ingest

    server = _server(make_server, ssh_keys, tmp_path)
    _, work = started_repo(server, client, "locked", push=True)
    bare = server.root / "locked.git"
    objects = bare / "objects"
    url = _url(server, ssh_keys, client, transport, "locked.git")
    (work / "b.txt").write_text("b\n")
    client.git("add", "b.txt", cwd=work)
    client.git("commit", "-qm", "b", cwd=work)
    before = remote_refs(client, "default", url)

    def not_writable(self: Any, store: Any) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(objects / "tmp_objdir-incoming-x"))

    with _warnings() as warned, monkeypatch.context() as patched:
        patched.setattr(git_ingest.Quarantine, "__init__", not_writable)
        refused = client.git("push", url, "HEAD:main", "HEAD:refs/heads/other", cwd=work, check=False)
        server.settled(("git", "ssh", "http"))
    lines = refused.stderr.splitlines()
    assert refused.returncode != 0
    assert "hung up" not in refused.stderr, refused.stderr
    assert any("unpack failed: the server could not store the pushed pack (Permission denied)" in line
               for line in lines), refused.stderr
    assert " ! [remote rejected] HEAD -> main (unpacker error)" in lines, refused.stderr
    assert " ! [remote rejected] HEAD -> other (unpacker error)" in lines, refused.stderr
    assert str(objects) not in refused.stderr  # the client is not shown the server's paths
    ours = [w for w in warned if "push to locked.git" in w]
    assert len(ours) == 1 and ours[0].endswith(
        "push to locked.git: the server's disk refused a write, so the push was refused: "
        f"{objects}: Permission denied; give the service's user write rights there"), warned
    assert remote_refs(client, "default", url) == before
    client.git("--git-dir", str(bare), "fsck", "--full")
    client.git("push", "-q", url, "HEAD:main", cwd=work)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # (as test_full_disk's)
def test_a_ref_the_disk_cannot_write_names_its_file_in_one_warning(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import dulwich.file

    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "refs", push=True)
    bare = server.root / "refs.git"
    before = remote_refs(client, "default", url)
    original_init = dulwich.file._GitFile.__init__

    def on_a_full_disk(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._file = _UnflushableFile(self._file)
        for method in self.PROXY_METHODS:
            setattr(self, method, getattr(self._file, method))

    with _warnings() as warned, monkeypatch.context() as patched:
        patched.setattr(dulwich.file._GitFile, "__init__", on_a_full_disk)
        patched.setattr(os, "pwrite", _full)  # the ref lock's holder note
        refused = client.git("push", url, "HEAD:refs/heads/topic", "HEAD:refs/heads/topic2", cwd=work, check=False)
        server.settled()
    assert refused.returncode != 0
    assert "topic (failed to update ref: No space left on device)" in refused.stderr, refused.stderr
    assert [w for w in warned if "push to refs.git" in w] == [(
        "git-daemon push to refs.git: the server's disk refused a write, so the push was refused: "
        f"{bare / 'refs' / 'heads' / 'topic'}: No space left on device; free space on that file system")], warned
    assert remote_refs(client, "default", url) == before
    client.git("--git-dir", str(bare), "fsck", "--full")
