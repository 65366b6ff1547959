"""What git's receive-pack tells a pusher beside ``! [remote rejected]``: which setting refused a
ref and how to change it (``remote: error: denying non-fast-forward …``, the long advice when the
setting is unset) and its warnings (``deleting a non-existent ref``), compared line for line with
git's own receive-pack pushing to a copy of the same repository."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import LOOPBACK, Client, RunningServer


def _remote_lines(stderr: str) -> list[str]:
    return [line.rstrip() for line in stderr.splitlines() if line.startswith(("remote:", " ! ", " - "))]


def _history(client: Client, work: Path) -> None:
    client.git("init", "-q", "-b", "main", str(work))
    for message in ("a", "b", "c"):
        client.git("commit", "-q", "--allow-empty", "-m", message, cwd=work)


@pytest.mark.parametrize(("config", "refspec"), [
    ({"receive.denyNonFastForwards": "true"}, "+main~2:refs/heads/feature"),
    ({"receive.denyDeletes": "true"}, ":refs/heads/feature"),
    ({}, ":refs/heads/main"),  # the current branch, the setting unset: git's advice
    ({"receive.denyDeleteCurrent": "refuse"}, ":refs/heads/main"),
    ({"receive.denyDeleteCurrent": "warn"}, ":refs/heads/main"),
    ({}, ":refs/tags/nope"),  # a deletion of nothing: a warning
])
def test_a_bare_repository_s_refusals_say_what_git_says(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
        config: dict[str, str], refspec: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = tmp_path / "work"
    _history(client, work)
    bare = server.root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main", "main:refs/heads/feature", cwd=work)
    for key, value in config.items():
        client.git("--git-dir", str(bare), "config", key, value)
    _pre_receive_that_prints(bare)
    copy = tmp_path / "copy.git"
    shutil.copytree(bare, copy, symlinks=True)
    ours = client.git("push", server.git_url("r"), refspec, cwd=work, check=False)
    theirs = client.git("push", f"file://{copy}", refspec, cwd=work, check=False)
    assert ours.returncode == theirs.returncode
    assert _remote_lines(ours.stderr) == _remote_lines(theirs.stderr), ours.stderr
    assert any(line.startswith("remote:") for line in _remote_lines(theirs.stderr))  # (something to compare)
    # git runs pre-receive before the receive.* settings refuse (hgwire refused first, and it never ran)
    assert (bare / "told").read_text() == (copy / "told").read_text() != ""
    client.git("--git-dir", str(bare), "fsck", "--full")


@pytest.mark.parametrize("setting", [None, "refuse", "warn"])
def test_a_checked_out_branch_s_refusal_says_what_git_says(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, setting: str | None) -> None:
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "site"
    _history(client, repo)
    if setting is not None:
        client.git("config", "receive.denyCurrentBranch", setting, cwd=repo)
    _pre_receive_that_prints(repo / ".git")
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    work = tmp_path / "work"
    client.git("clone", "-q", str(copy), str(work))
    client.git("commit", "-q", "--allow-empty", "-m", "d", cwd=work)
    ours = client.git("push", server.git_url("site"), "HEAD:main", cwd=work, check=False)
    theirs = client.git("push", f"file://{copy}", "HEAD:main", cwd=work, check=False)
    assert ours.returncode == theirs.returncode
    assert _remote_lines(ours.stderr) == _remote_lines(theirs.stderr), ours.stderr
    assert (repo / ".git" / "told").read_text() == (copy / ".git" / "told").read_text() != ""


def _pre_receive_that_prints(git_dir: Path) -> None:
    """A pre-receive hook that keeps what it is told (in ``told``) and says it ran."""
    hook = git_dir / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >> told\necho pre-receive ran >&2\n")
    hook.chmod(0o755)


@pytest.mark.parametrize(("config", "options", "refspecs"), [
    ({}, [], ["main^{tree}:refs/heads/tree"]),
    ({}, [], ["main:refs/heads/fine", "main:a:refs/heads/blob"]),
    ({}, ["--atomic"], ["main^{tree}:refs/heads/tree", "main:refs/heads/fine", "main:a:refs/heads/blob"]),
    ({"receive.denyNonFastForwards": "true"}, ["-f"], ["main^{tree}:refs/heads/feature"]),
])
def test_a_branch_naming_a_tree_or_blob_is_refused_as_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
        config: dict[str, str], options: list[str], refspecs: list[str]) -> None:
    """git's refs code refuses it once the hooks ran (pre-receive is told of it): ``remote: error:
    cannot update ref '…': trying to write non-commit object …`` and ``failed to update ref``
    (every ref ``atomic transaction failed`` in an atomic push); with ``denyNonFastForwards``
    over an existing branch, ``bad ref``, once pre-receive ran too.  hgwire refused it before the
    hooks, in words of its own, and with ``denyNonFastForwards`` before pre-receive."""
    server = make_server("fs", git=[LOOPBACK])
    work = tmp_path / "work"
    _history(client, work)
    (work / "a").write_text("a\n")
    client.git("add", "a", cwd=work)
    client.git("commit", "-q", "-m", "a", cwd=work)
    bare = server.root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main", "main:refs/heads/feature", cwd=work)
    for key, value in config.items():
        client.git("--git-dir", str(bare), "config", key, value)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >> told\necho pre-receive ran >&2\n")  # (its words come before git's error line)
    hook.chmod(0o755)
    copy = tmp_path / "copy.git"
    shutil.copytree(bare, copy, symlinks=True)
    ours = client.git("push", *options, server.git_url("r"), *refspecs, cwd=work, check=False)
    theirs = client.git("push", *options, f"file://{copy}", *refspecs, cwd=work, check=False)
    assert ours.returncode == theirs.returncode == 1
    assert _remote_lines(ours.stderr) == _remote_lines(theirs.stderr), ours.stderr
    assert (bare / "told").read_text() == (copy / "told").read_text()  # the hook heard of them
    assert client.git("--git-dir", str(bare), "for-each-ref").stdout == \
        client.git("--git-dir", str(copy), "for-each-ref").stdout


@pytest.mark.parametrize("hook", [None, "accepts", "declines"])
@pytest.mark.parametrize(("options", "refspecs"), [
    ([], ["main:refs/x"]),  # a name of one level under refs/: git's "funny refname"
    ([], ["main:refs/heads/fine", "main:refs/y"]),
    ([], ["main:refs/hidden/x", "main:refs/z"]),  # receive.hideRefs: refused before pre-receive, which hears of it
    (["--atomic"], ["main:refs/heads/fine", "main:refs/y"]),
])
def test_a_refused_name_is_refused_after_pre_receive_as_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path,
        hook: str | None, options: list[str], refspecs: list[str]) -> None:
    """git's receive-pack tells pre-receive every command (a hidden ref's too) and refuses a funny
    name as it updates the ref, after the hook: the hook's output, then ``remote: error: refusing
    to create funny ref 'refs/x' remotely``, then the ref ``(funny refname)``, or ``(pre-receive
    hook declined)`` when the hook declined.  hgwire refused such names before the hook, which never
    heard of them, without git's line, and ``funny refname`` even when the hook declined."""
    server = make_server("fs", git=[LOOPBACK])
    work = tmp_path / "work"
    _history(client, work)
    bare = server.root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main", cwd=work)
    client.git("--git-dir", str(bare), "config", "receive.hideRefs", "refs/hidden")
    if hook is not None:
        script = bare / "hooks" / "pre-receive"
        script.write_text("#!/bin/sh\necho pre-receive saw:\ntee -a told\n"
                          + ("exit 1\n" if hook == "declines" else ""))
        script.chmod(0o755)
    copy = tmp_path / "copy.git"
    shutil.copytree(bare, copy, symlinks=True)
    ours = client.git("push", *options, server.git_url("r"), *refspecs, cwd=work, check=False)
    theirs = client.git("push", *options, f"file://{copy}", *refspecs, cwd=work, check=False)
    assert ours.returncode == theirs.returncode == 1
    assert _remote_lines(ours.stderr) == _remote_lines(theirs.stderr), ours.stderr
    if hook is not None:
        assert (bare / "told").read_text() == (copy / "told").read_text() != ""
    assert client.git("--git-dir", str(bare), "for-each-ref").stdout == \
        client.git("--git-dir", str(copy), "for-each-ref").stdout



def test_an_atomic_push_refused_before_its_transaction_tells_the_transaction_hook_nothing(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    """An atomic push forcing a protected ref is refused whole after pre-receive, before any ref transaction is prepared: as git's, whose transaction
    is dropped unprepared, the ``reference-transaction`` hook hears of nothing.  hgwire told it
    ``prepared`` (of no ref) and then neither ``committed`` nor ``aborted``, so a hook holding
    something from ``prepared`` to the end (a lock, a replication) held it for ever."""
    policy = tmp_path / "atomic-policy.toml"
    policy.write_text('[[repo]]\npattern = "r.git"\nread = ["*"]\nwrite = ["*"]\n'
                      'protected_refs = ["refs/heads/main"]\n')
    htpasswd = tmp_path / "atomic-htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'secret', bcrypt.gensalt(rounds=4)).decode()}\n")
    server = make_server("fs", http=[LOOPBACK], config_file=str(policy), htpasswd=str(htpasswd),
                         allow_push_over_http=True)
    work = tmp_path / "work"
    _history(client, work)
    bare = server.root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main~1:refs/heads/main", cwd=work)
    (bare / "hooks" / "reference-transaction").write_text(f'#!/bin/sh\necho "$1" >> {bare / "told"}\n')
    (bare / "hooks" / "reference-transaction").chmod(0o755)
    url = f"http://alice:secret@127.0.0.1:{server.port('http')}/r.git"
    refused = client.git("push", "--atomic", url, "main:refs/heads/fine", "+main~2:refs/heads/main",
                         cwd=work, check=False)
    assert refused.returncode == 1 and "protected" in refused.stderr, refused.stderr
    assert not (bare / "told").exists(), (bare / "told").read_text()
    client.git("push", url, "main:refs/heads/fine", cwd=work)  # (the hook is run: a transaction is told)
    assert (bare / "told").read_text() == "prepared\ncommitted\n"


@pytest.mark.parametrize("refspecs", [
    ["main:refs/y", "main:refs/heads/fine"],  # a funny name first: no update hook runs
    ["main:refs/heads/no", "main:refs/heads/fine"],  # the hook declines the first: the second's never runs
    ["main:refs/heads/fine", "main:refs/y"],  # the first's runs, then the name is refused
    ["+main~2:refs/heads/main", "main:refs/heads/fine"],  # receive.denyNonFastForwards
])
def test_an_atomic_push_runs_no_update_hook_past_its_first_refused_command(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path, refspecs: list[str]) -> None:
    """git's receive-pack makes an atomic push's commands one by one into its transaction, each
    checked (its name, the receive.* settings) and then given to the update hook, and stops at the
    first refused: the update hook never hears of the commands after it, which no push makes.
    hgwire ran it for every command still standing (a hook that starts a build or sends mail for
    each ref did it for refs never updated)."""
    server = make_server("fs", git=[LOOPBACK])
    work = tmp_path / "work"
    _history(client, work)
    bare = server.root / "r.git"
    client.git("init", "-q", "--bare", "-b", "main", str(bare))
    client.git("push", "-q", str(bare), "main", cwd=work)
    client.git("--git-dir", str(bare), "config", "receive.denyNonFastForwards", "true")
    copy = tmp_path / "copy.git"
    shutil.copytree(bare, copy, symlinks=True)
    for git_dir in (bare, copy):
        script = git_dir / "hooks" / "update"
        script.write_text(f'#!/bin/sh\necho "$1" >> {git_dir / "told"}\ntest "$1" != refs/heads/no\n')
        script.chmod(0o755)
    ours = client.git("push", "--atomic", server.git_url("r"), *refspecs, cwd=work, check=False)
    theirs = client.git("push", "--atomic", f"file://{copy}", *refspecs, cwd=work, check=False)
    assert ours.returncode == theirs.returncode == 1
    told = [(git_dir / "told").read_text() if (git_dir / "told").exists() else "" for git_dir in (bare, copy)]
    assert told[0] == told[1], told
    assert client.git("--git-dir", str(bare), "for-each-ref").stdout == \
        client.git("--git-dir", str(copy), "for-each-ref").stdout
