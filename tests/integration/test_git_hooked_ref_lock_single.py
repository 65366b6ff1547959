"""A push without ``--atomic`` into a repository with a ``reference-transaction`` hook: git 2.39
makes each ref's transaction under that ref's lock, the hook told "prepared" once it is held, so a
``git update-ref`` of the ref run meanwhile (here from the hook itself) is refused "cannot lock ref"
and the push's update is made.  hgwire told the hook "prepared" before taking the lock: the other
process moved the ref and the push's own update was refused ("another push moved it meanwhile").
Checked beside git's own receive-pack (``file://``)."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Client, RunningServer
from tests.integration.test_git_atomic_hooked_ref_locks import hooked_pair, racing_hook

RACING_HOOK = racing_hook("refs/heads/a")


def test_one_ref_s_transaction_is_prepared_under_its_lock_as_git_s(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    server, served, twin, work, (_first, second, _third) = hooked_pair(make_server, client, RACING_HOOK, ("a",))

    for url, git_dir in ((f"file://{twin}", twin), (server.git_url("ours/r"), served)):
        pushed = client.git("push", "--porcelain", url, f"{second}:refs/heads/a", cwd=work, check=False)
        top = git_dir.parent
        rc, err = (top / "moved.rc").read_text().strip(), (top / "moved.err").read_text()
        assert rc != "0" and "cannot lock ref 'refs/heads/a'" in err, (url, rc, err)
        assert pushed.returncode == 0, (url, pushed.stdout + pushed.stderr)
        assert client.git("--git-dir", str(git_dir), "rev-parse", "refs/heads/a").stdout.strip() == second
        assert not list(git_dir.glob("refs/**/*.lock"))
        client.git("--git-dir", str(git_dir), "fsck", "--full")
