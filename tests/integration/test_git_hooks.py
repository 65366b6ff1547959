"""A served repository's receive hooks (pre-receive, update, post-receive, post-update), over git://,
SSH and HTTP, against git's own receive-pack on a copy of the same repository (``file://``).

The same pushes must be refused for the same refs with the same reasons, the client must see
the same ``remote:`` lines, and a declined push must leave no pack behind.
"""

from __future__ import annotations

import difflib
import re
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.interfaces import Kind
from gateway import git_hooks
from gateway.git_hooks import HOOK_NAMES
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys
from tests.integration.test_git_daemon import assert_consistent, commit, remote_refs, started_repo
from tests.integration.test_git_transports import TRANSPORTS, TransportServer

HOOKS = {
    "pre-receive": """#!/bin/sh
echo "pre-receive saw:"
while read old new ref; do
  echo "  $ref"
  case "$ref" in *wip*) echo "no wip refs, please" >&2; exit 1;; esac
done
""",
    "update": """#!/bin/sh
if [ "$1" = refs/heads/frozen ]; then echo "$1 is frozen"; exit 1; fi
""",
    "post-receive": """#!/bin/sh
while read old new ref; do echo "$ref $new" >> "$GIT_DIR/received.log"; done
echo "options=${GIT_PUSH_OPTION_COUNT:-none} ${GIT_PUSH_OPTION_0:-}" >> "$GIT_DIR/received.log"
echo "user=${REMOTE_USER:-} addr=${REMOTE_ADDR:-}" > "$GIT_DIR/who.log"
echo "thanks for $(pwd | sed 's,.*/,,')"
""",
    "post-update": """#!/bin/sh
echo "post-update: $*"
""",
}


def _install_hooks(git_dir: Path) -> None:
    hooks = git_dir / "hooks"
    hooks.mkdir(exist_ok=True)
    for name, text in HOOKS.items():
        path = hooks / name
        path.write_text(text)
        path.chmod(0o755)


def _server(make_server: Callable[..., RunningServer], transport: str, client: Client, keys: SshKeys,
             tmp: Path) -> TransportServer:
    if transport == "git":
        server = make_server("fs", git=[LOOPBACK])
        return TransportServer(server, server.git_url)
    return TRANSPORTS[transport](make_server, "fs", client, keys, tmp)


def _remote_lines(stderr: str) -> list[str]:
    return [line.removeprefix("remote: ").rstrip() for line in stderr.splitlines() if line.startswith("remote: ")]


def _rejections(stderr: str) -> list[str]:
    return sorted(line.strip() for line in stderr.splitlines() if "[remote rejected]" in line)


SLEEPER = """#!/bin/sh
echo {said}{redirect}
sleep {seconds} &
echo $! > "{pidfile}"
wait
"""
"""A hook that hangs in a child of its own, whose process id it leaves in ``pidfile``."""


def _stopped(pidfile: Path, seconds: float = 10.0) -> bool:
    """Whether the process whose id ``pidfile`` holds is gone (or only a zombie) within ``seconds``:
    that very process, not any other of the same command line on the machine."""
    pid = pidfile.read_text().strip()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _packs(git_dir: Path) -> set[str]:
    return {p.name for p in (git_dir / "objects" / "pack").glob("*.pack")}


@pytest.mark.parametrize("transport", ["git", "ssh", "http"])
def test_receive_hooks_run_as_git_runs_them(make_server: Any, client: Client, ssh_keys: SshKeys,
                                            tmp_path: Path, transport: str) -> None:
    server = _server(make_server, transport, client, ssh_keys, tmp_path)
    url, work = started_repo(server, client, "hooked", push=True)  # type: ignore[arg-type]
    bare = server.root / "hooked.git"
    copy = client.cwd / "hooked.git"
    client.run("cp", "-a", str(bare), str(copy))
    _install_hooks(bare)
    _install_hooks(copy)
    client.git("--git-dir", str(copy), "config", "receive.advertisePushOptions", "true")  # hgwire's default

    commit(client, work, "b.txt", "b\n", "b")
    for pushes in (["HEAD:main", "HEAD:frozen"], ["HEAD:wip", "HEAD~1:refs/heads/other"], ["HEAD:side"]):
        before = _packs(bare)
        ours = client.git("push", "-o", "ci.skip", url, *pushes, cwd=work, check=False)
        theirs = client.git("-c", "push.pushOption=ci.skip", "push", f"file://{copy}", *pushes, cwd=work,
                            check=False)
        assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
        assert _rejections(ours.stderr) == _rejections(theirs.stderr), (ours.stderr, theirs.stderr)
        assert _remote_lines(ours.stderr) == _remote_lines(theirs.stderr), (ours.stderr, theirs.stderr)
        if "HEAD:wip" in pushes:
            assert "pre-receive hook declined" in ours.stderr
            assert _packs(bare) == before  # a declined push leaves nothing, as git's quarantine
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")
    assert (bare / "received.log").read_text() == (copy / "received.log").read_text()
    assert "options=1 ci.skip" in (bare / "received.log").read_text()
    user = {"git": "", "ssh": "alice", "http": "alice"}[transport]
    assert (bare / "who.log").read_text() == f"user={user} addr=127.0.0.1\n"
    assert_consistent(server, client, "hooked")  # type: ignore[arg-type]


def test_hooks_that_cannot_run_or_hang(make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook that is not executable is ignored (as git does); one that runs too long is stopped
    and refuses the push; core.hooksPath is where hooks are looked for."""
    monkeypatch.setattr(git_hooks, "HOOK_TIMEOUT", 1.0)
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "slow")
    bare = server.root / "slow.git"
    lazy = bare / "hooks" / "pre-receive"
    lazy.parent.mkdir(exist_ok=True)
    lazy.write_text("#!/bin/sh\nexit 1\n")
    lazy.chmod(0o644)
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)  # the non-executable hook does not run

    shared = client.cwd / "shared-hooks"
    shared.mkdir()
    hang = shared / "update"
    pidfile = client.cwd / "update-sleep.pid"
    hang.write_text(SLEEPER.format(said="waiting", redirect="", seconds=30, pidfile=pidfile))
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    client.git("--git-dir", str(bare), "config", "core.hooksPath", str(shared))
    tip = commit(client, work, "b.txt", "b\n", "b")
    slow = client.git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert slow.returncode == 1 and "(hook declined)" in slow.stderr, slow.stderr
    assert "remote: waiting" in slow.stderr and "update hook timed out after 1 s" in slow.stderr
    assert remote_refs(client, "default", url)["refs/heads/main"] != tip
    assert _stopped(pidfile)  # the hook's children were stopped with it (not after 30 s)
    assert_consistent(server, client, "slow")


def test_pushes_waiting_on_hooks_do_not_hold_the_workers(make_server: Any, client: Client) -> None:
    """More pushes wait in a slow update hook than the server has workers, and a clone still works."""
    from gateway import threads

    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "busy", push=True)
    bare = server.root / "busy.git"
    flag = client.cwd / "go"
    waiting = client.cwd / "waiting"
    waiting.mkdir()
    hook = bare / "hooks" / "update"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"""#!/bin/sh
touch "{waiting}/$(echo "$1" | tr / _)"
i=0
while [ ! -e "{flag}" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
""")
    hook.chmod(0o755)
    count = threads.DEFAULT_POOL_SIZE + 2
    pushes = [subprocess.Popen(["git", "push", "-q", url, f"HEAD:refs/heads/b{i}"], cwd=work, env=client.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(count)]
    try:
        deadline = time.monotonic() + 30
        while len(list(waiting.iterdir())) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(waiting.iterdir())) == count  # every push is in its hook
        clone = client.git("clone", "-q", url, str(client.cwd / "meanwhile"), timeout=20)
        assert clone.returncode == 0
    finally:
        flag.touch()
        for push in pushes:
            push.communicate(timeout=30)
    assert all(push.returncode == 0 for push in pushes)
    assert {f"refs/heads/b{i}" for i in range(count)} <= set(remote_refs(client, "default", url))
    assert_consistent(server, client, "busy")


QUARANTINE = ("GIT_QUARANTINE_PATH=", "GIT_OBJECT_DIRECTORY=", "GIT_ALTERNATE_OBJECT_DIRECTORIES=")
ENV_HOOK = """#!/bin/sh
(echo "-- $(basename "$0") $* in $(basename "$(pwd)")"; env | grep -E '^GIT_' | sort) >> "$GIT_DIR/hooks.env"
"""


@pytest.mark.parametrize(("options", "bare"), [((), True), (("ci.skip", "reviewer=bob"), True), ((), False)])
def test_receive_hooks_are_told_what_git_tells_them(make_server: Any, client: Client, options: tuple[str, ...],
                                                    bare: bool) -> None:
    """The same push to hgwire and to git's own receive-pack (``file://``) of a copy: each hook, its
    arguments, ``GIT_DIR``, the push options and the quarantine variables (which hooks are told
    them, and where they point) are the same (not compared: what each process inherits from its
    parent)."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    if bare:
        server.backend.create("told", Kind.GIT)
    else:  # a repository with a working tree: its hooks run in .git all the same
        client.git("init", "-q", "-b", "trunk", str(server.root / "told"))
        client.git("-C", str(server.root / "told"), "config", "receive.denyCurrentBranch", "ignore")
    url = server.git_url("told")
    work = client.cwd / "told"
    client.git("clone", "-q", url, str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("push", "-q", "origin", "HEAD:main", cwd=work)
    ours_dir = server.root / ("told.git" if bare else "told/.git")
    copy = client.cwd / "copy" / ("told.git" if bare else "told")
    client.run("mkdir", "-p", str(copy.parent))
    client.run("cp", "-a", str(ours_dir if bare else ours_dir.parent), str(copy))
    copy_dir = copy if bare else copy / ".git"
    client.git("--git-dir", str(copy_dir), "config", "receive.advertisePushOptions", "true")  # hgwire's default
    for git_dir in (ours_dir, copy_dir):
        for name in HOOK_NAMES:
            (git_dir / "hooks" / name).write_text(ENV_HOOK)
            (git_dir / "hooks" / name).chmod(0o755)
    commit(client, work, "b.txt", "b\n", "b")
    flags = [f"--push-option={o}" for o in options]
    client.git("push", "-q", *flags, url, "HEAD:main", "HEAD:side", cwd=work)
    client.git("push", "-q", *flags, f"file://{copy}", "HEAD:main", "HEAD:side", cwd=work)

    def told(git_dir: Path) -> list[str]:  # what receive-pack sets, not what the process inherits
        lines = (git_dir / "hooks.env").read_text().splitlines()
        kept = [line for line in lines
                if line.startswith(("-- ", "GIT_DIR=", "GIT_EXEC_PATH=", "GIT_PUSH_OPTION_", *QUARANTINE))]
        objects = str(git_dir.resolve() / "objects")
        kept = [line.replace("/./", "/").replace(objects, "<objects>") for line in kept]  # git writes <git dir>/./objects
        return [re.sub(r"tmp_objdir-incoming-\w+", "tmp_objdir-incoming-*", line) for line in kept]

    ours, theirs = told(ours_dir), told(copy_dir)
    assert [line for line in theirs if line.startswith("GIT_DIR=")] == ["GIT_DIR=."] * 9  # 4 receive hooks, 2 ref transactions × 2 states
    assert "GIT_QUARANTINE_PATH=<objects>/tmp_objdir-incoming-*" in theirs  # pre-receive's
    assert ours == theirs, "\n".join(difflib.unified_diff(ours, theirs, lineterm=""))


@pytest.mark.parametrize("refspecs", [["HEAD:refs/heads/other"], ["HEAD:refs/heads/other", "HEAD:refs/tags/t"],
                                      [":refs/heads/side"]])
def test_a_push_of_no_new_objects_is_told_its_quarantine_as_git_tells_it(make_server: Any, client: Client,
                                                                        refspecs: list[str]) -> None:
    """A new branch at a commit the repository has: git's client sends an empty pack, and git's
    receive-pack tells pre-receive of its (empty) quarantine all the same; a push that only deletes
    sends no pack and hears of none.  hgwire told no quarantine to the first; now as git, the
    quarantine removed after."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "same", push=True)
    client.git("push", "-q", url, "HEAD:refs/heads/side", cwd=work)
    ours_dir = server.root / "same.git"
    copy = client.cwd / "copy" / "same.git"
    client.run("mkdir", "-p", str(copy.parent))
    client.run("cp", "-a", str(ours_dir), str(copy))
    for git_dir in (ours_dir, copy):
        (git_dir / "hooks" / "pre-receive").write_text(ENV_HOOK)
        (git_dir / "hooks" / "pre-receive").chmod(0o755)
    client.git("push", "-q", url, *refspecs, cwd=work)
    client.git("push", "-q", f"file://{copy}", *refspecs, cwd=work)

    def told(git_dir: Path) -> list[str]:
        lines = (git_dir / "hooks.env").read_text().splitlines()
        kept = [line.replace("/./", "/").replace(str(git_dir.resolve() / "objects"), "<objects>")
                for line in lines if line.startswith(("-- ", *QUARANTINE))]
        return [re.sub(r"tmp_objdir-incoming-\w+", "tmp_objdir-incoming-*", line) for line in kept]

    ours, theirs = told(ours_dir), told(copy)
    assert any(line.startswith("GIT_QUARANTINE_PATH=") for line in theirs) == (refspecs[0][0] != ":"), theirs
    assert ours == theirs, "\n".join(difflib.unified_diff(ours, theirs, lineterm=""))
    assert not list((ours_dir / "objects").glob("tmp_objdir-incoming-*")), "the quarantine is removed after"


STDIN_HOOK = """#!/bin/sh
{ echo "-- $(basename "$0") $*"; case "$0" in *receive) cat;; esac; } >> "$GIT_DIR/hooks.log"
"""


def test_a_deletion_of_a_ref_that_is_not_there_is_not_told_to_post_receive_or_post_update(
        make_server: Any, client: Client) -> None:
    """As git's receive-pack (``warning: deleting a non-existent ref``): pre-receive and update are
    told of it, post-receive and post-update are not, alone or beside a ref that is made."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "gone", push=True)
    ours_dir = server.root / "gone.git"
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(ours_dir), str(copy))
    for git_dir in (ours_dir, copy):
        for name in ("pre-receive", "update", "post-receive", "post-update"):
            (git_dir / "hooks" / name).write_text(STDIN_HOOK)
            (git_dir / "hooks" / name).chmod(0o755)
    for refspecs in ([":refs/heads/nonexist"], [":refs/heads/nothing", "HEAD:refs/heads/made"]):
        for target in (url, f"file://{copy}"):
            pushed = client.git("push", target, *refspecs, cwd=work, check=False)
            assert pushed.returncode == 0 and "deleting a non-existent ref" in pushed.stderr, pushed.stderr
    ours, theirs = ((d / "hooks.log").read_text().splitlines() for d in (ours_dir, copy))
    assert ours == theirs
    told_after = ours[ours.index("-- post-receive "):]
    assert not any("nonexist" in line or "nothing" in line for line in told_after), ours
    assert any("nonexist" in line for line in ours) and "-- post-update refs/heads/made" in ours
    assert_consistent(server, client, "gone")


TRANSACTION_HOOK = """#!/bin/sh
(echo "== $*"; cat) >> "$GIT_DIR/transactions.log"
echo "told $1"
if [ "$1" = prepared ] && grep -q refs/heads/blocked "$GIT_DIR/transactions.log"; then
  : > "$GIT_DIR/blocked.seen"; sed -i /blocked/d "$GIT_DIR/transactions.log"; exit 1
fi
"""


def _transactions(git_dir: Path) -> list[str]:
    """The hook's log, without git's own packed-refs step: git 2.39's files store also tells the
    hook of the empty packed-refs transaction a deletion opens (an "aborted" with zero ids), which
    is not a ref transaction of the push."""
    blocks = (git_dir / "transactions.log").read_text().split("== ")
    zero = "0" * 40
    kept = [block for block in blocks if block and not all(
        line.startswith(f"{zero} {zero} ") for line in block.splitlines()[1:])]
    (git_dir / "transactions.log").write_text("")
    return kept


def test_reference_transaction_hook_is_told_what_git_tells_it(make_server: Any, client: Client) -> None:
    """The same pushes to hgwire and to git's own receive-pack (``file://``) of a copy: the
    ``reference-transaction`` hook is told the same transactions (one per ref, one for an atomic
    push; "prepared" then "committed"; a ``HEAD`` line with HEAD's branch), with the update hook of
    each ref just before its transaction."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "told", push=True)
    ours = server.root / "told.git"
    theirs = client.cwd / "told-copy.git"
    client.run("cp", "-a", str(ours), str(theirs))
    for git_dir in (ours, theirs):
        (git_dir / "hooks").mkdir(exist_ok=True)
        for name, text in (("reference-transaction", TRANSACTION_HOOK),
                           ("update", '#!/bin/sh\necho "== update $1" >> "$GIT_DIR/transactions.log"\n')):
            (git_dir / "hooks" / name).write_text(text)
            (git_dir / "hooks" / name).chmod(0o755)
        client.git("--git-dir", str(git_dir), "config", "receive.denyDeleteCurrent", "ignore")
    commit(client, work, "b.txt", "b\n", "b")
    pushes = [["HEAD:main", "HEAD:side", "HEAD~1:refs/tags/v1"], ["--atomic", "HEAD~1:refs/heads/x", "HEAD:y"],
              [":side", ":refs/tags/v1"], ["--force", "HEAD~1:main"], [":main"]]
    for push in pushes:
        mine = client.git("push", url, *push, cwd=work, check=False)
        git_s = client.git("push", f"file://{theirs}", *push, cwd=work, check=False)
        assert mine.returncode == git_s.returncode == 0, (mine.stderr, git_s.stderr)
        told, git_told = _transactions(ours), _transactions(theirs)
        assert told == git_told, "\n".join(difflib.unified_diff(told, git_told, lineterm=""))
        assert any("HEAD\n" in block for block in told) == any(p.endswith(":main") for p in push)
        assert "remote: told prepared" in mine.stderr and "remote: told committed" in mine.stderr
    mine_refs, git_refs = remote_refs(client, "default", url), remote_refs(client, "default", f"file://{theirs}")
    mine_refs.pop("HEAD")  # hgwire points HEAD at a remaining branch once main is gone (README *Status*)
    assert mine_refs == git_refs
    assert_consistent(server, client, "told")


def test_reference_transaction_hook_declines_in_prepared(make_server: Any, client: Client) -> None:
    """A non-zero exit in "prepared" declines that transaction: its ref stays, the hook is told
    "aborted", and the other refs of a push without ``--atomic`` go through.  (git's receive-pack
    dies there, "ref updates aborted by hook", and the client loses the rest of the push; hgwire
    answers the declined refs in the protocol instead.)"""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "gate", push=True)
    bare = server.root / "gate.git"
    (bare / "hooks").mkdir(exist_ok=True)
    (bare / "hooks" / "reference-transaction").write_text(TRANSACTION_HOOK)
    (bare / "hooks" / "reference-transaction").chmod(0o755)
    old = remote_refs(client, "default", url)["refs/heads/main"]
    tip = commit(client, work, "b.txt", "b\n", "b")
    before = _packs(bare)
    refused = client.git("push", "--atomic", url, "HEAD:blocked", "HEAD:main", cwd=work, check=False)
    assert refused.returncode == 1
    assert _rejections(refused.stderr) == [
        "! [remote rejected] HEAD -> blocked (reference-transaction hook declined)",
        "! [remote rejected] HEAD -> main (reference-transaction hook declined)"], refused.stderr
    assert (bare / "blocked.seen").exists() and "told aborted" in refused.stderr
    # the hook removed its "prepared" lines of blocked; what stays: the aborted transaction's
    assert _transactions(bare) == [f"prepared\n{old} {tip} refs/heads/main\n{old} {tip} HEAD\n",
                                   f"aborted\n{old} {tip} refs/heads/main\n{'0' * 40} {tip} refs/heads/blocked\n"
                                   f"{old} {tip} HEAD\n"]  # as the client sent them, HEAD's line last as git's
    assert "refs/heads/blocked" not in remote_refs(client, "default", url)
    # as git's receive-pack: the objects left the quarantine after pre-receive, before any ref
    # transaction, and stay (no ref names them; git gc removes them in time)
    assert len(_packs(bare) - before) == 1

    partly = client.git("push", url, "HEAD:blocked", "HEAD:main", cwd=work, check=False)
    assert partly.returncode == 1
    assert _rejections(partly.stderr) == [
        "! [remote rejected] HEAD -> blocked (reference-transaction hook declined)"], partly.stderr
    refs = remote_refs(client, "default", url)
    assert refs["refs/heads/main"] == tip and "refs/heads/blocked" not in refs
    assert_consistent(server, client, "gate")


WAITING_PRE_RECEIVE = """#!/bin/sh
# refs/heads/held-*: say so, wait for the test's word (at most 60 s), then decline
while read old new ref; do
  case "$ref" in refs/heads/held-*)
    touch "$GIT_DIR/waiting-${ref##*/}"
    i=0; while [ ! -e "$GIT_DIR/go" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
    echo "$ref is declined" >&2; exit 1;;
  esac
done
"""


def _with_pre_receive(make_server: Any, client: Client, name: str, hook: str
                      ) -> tuple[RunningServer, str, Path, Path]:
    """A served repository ``name`` whose pre-receive hook is ``hook``: the server, its URL, a working
    clone with a first commit pushed, and its git directory."""
    server = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, name, push=True)
    bare = server.root / f"{name}.git"
    (bare / "hooks" / "pre-receive").write_text(hook)
    (bare / "hooks" / "pre-receive").chmod(0o755)
    return server, url, work, bare


def test_a_hook_runs_git_s_dashed_commands_as_under_git_s_receive_pack(make_server: Any, client: Client) -> None:
    """git's receive-pack puts its own commands' directory first on its hooks' PATH (and names it in
    ``GIT_EXEC_PATH``): an old hook that runs ``git-rev-parse`` works there, and works here."""
    hook = "#!/bin/sh\ngit-rev-parse --git-dir > dashed.out 2>&1 || { echo 'no git-rev-parse' >&2; exit 1; }\n"
    server, url, work, bare = _with_pre_receive(make_server, client, "dashed", hook)
    commit(client, work, "b.txt", "b\n", "b")
    client.git("push", "-q", url, "HEAD:main", cwd=work)
    assert (bare / "dashed.out").read_text().strip() == "."
    assert_consistent(server, client, "dashed")


def _wait_for(path: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("second_declined", [False, True])
def test_two_pushes_of_the_same_objects_one_declined_lose_nothing(
        make_server: Any, client: Client, tmp_path: Path, second_declined: bool) -> None:
    """The same new commit pushed to two branches at once lands the same pack (it is named by its
    objects).  While the first push waits in its pre-receive hook, the second is accepted (or,
    with ``second_declined``, declined too); declining the first must not remove the pack the
    second's branch names (or, when both are declined, must leave no pack behind)."""
    import threading

    server, url, work, bare = _with_pre_receive(make_server, client, "shared", WAITING_PRE_RECEIVE)
    before = _packs(bare)
    tip = commit(client, work, "b.txt", "b\n" * 500, "b")
    first: dict[str, subprocess.CompletedProcess[str]] = {}
    pusher = threading.Thread(target=lambda: first.update(
        result=client.git("push", url, "HEAD:refs/heads/held-1", cwd=work, check=False)))
    pusher.start()
    try:
        _wait_for(bare / "waiting-held-1")
        second_ref = "held-2" if second_declined else "accepted"
        if second_declined:  # it waits too: let both go at once
            second = threading.Thread(target=lambda: first.update(
                second=client.git("push", url, f"HEAD:refs/heads/{second_ref}", cwd=work, check=False)))
            second.start()
            _wait_for(bare / "waiting-held-2")
        else:
            accepted = client.git("push", url, f"HEAD:refs/heads/{second_ref}", cwd=work, check=False)
            assert accepted.returncode == 0, accepted.stderr
    finally:
        (bare / "go").touch()
        pusher.join(120)
        if second_declined:
            second.join(120)
    assert "pre-receive hook declined" in first["result"].stderr
    client.git("--git-dir", str(bare), "fsck", "--full", "--strict")
    refs = remote_refs(client, "default", url)
    if second_declined:
        assert "pre-receive hook declined" in first["second"].stderr
        assert set(refs) == {"HEAD", "refs/heads/main"}
        assert _packs(bare) == before, "two declined pushes leave no pack"
    else:
        assert refs["refs/heads/accepted"] == tip
        assert_consistent(server, client, "shared")


QUARANTINE_PROBE = """#!/bin/sh
# reads the pushed tip as a hook's git command does, then waits for the test's word (at most 60 s)
while read old new ref; do
  if git cat-file -e "$new"; then echo "pre-receive reads $new" >&2; fi
  touch "$GIT_DIR/waiting"
  i=0; while [ ! -e "$GIT_DIR/go" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  case "$ref" in refs/heads/declined) echo "$ref is declined" >&2; exit 1;; esac
done
"""


@pytest.mark.parametrize("branch", ["accepted", "declined"])
def test_a_waiting_push_is_seen_only_by_its_own_hook(make_server: Any, client: Client, branch: str) -> None:
    """As git's receive-pack quarantine: while a push waits in its pre-receive hook, the hook's git
    commands read the pushed objects, but no other process does (a git command in the repository,
    another server on the same directory), so nothing can come to depend on objects that may yet
    be refused.  Accepted, they move into the store; declined, they go, and the store's packs are
    as they were."""
    import threading

    server, url, work, bare = _with_pre_receive(make_server, client, "waiting", QUARANTINE_PROBE)
    before = _packs(bare)
    tip = commit(client, work, "b.txt", "b\n" * 500, "b")
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    pusher = threading.Thread(target=lambda: done.update(
        result=client.git("push", url, f"HEAD:refs/heads/{branch}", cwd=work, check=False)))
    pusher.start()
    try:
        _wait_for(bare / "waiting")
        outside = client.git("--git-dir", str(bare), "cat-file", "-e", tip, check=False)
        assert outside.returncode != 0, "a waiting push's objects are not in the store"
        assert _packs(bare) == before
        assert len(list((bare / "objects").glob("tmp_objdir-incoming-*"))) == 1
    finally:
        (bare / "go").touch()
        pusher.join(120)
    pushed = done["result"]
    assert f"pre-receive reads {tip}" in pushed.stderr, pushed.stderr
    assert not list((bare / "objects").glob("tmp_objdir-incoming-*")), "the quarantine goes either way"
    client.git("--git-dir", str(bare), "fsck", "--full", "--strict")
    after = client.git("--git-dir", str(bare), "cat-file", "-e", tip, check=False)
    if branch == "declined":
        assert pushed.returncode == 1 and "pre-receive hook declined" in pushed.stderr
        assert after.returncode != 0 and _packs(bare) == before
    else:
        assert pushed.returncode == 0, pushed.stderr
        assert after.returncode == 0 and remote_refs(client, "default", url)[f"refs/heads/{branch}"] == tip
        assert_consistent(server, client, "waiting")


CHECKOUT_HOOK = """#!/bin/sh
echo "checking out $1"
echo "args=$# dir=$GIT_DIR tree=$GIT_WORK_TREE pwd=$(pwd)" >> "$GIT_WORK_TREE/../$(basename "$GIT_WORK_TREE").log"
if [ -e "$GIT_WORK_TREE/refuse" ]; then echo "not now"; exit 1; fi
git read-tree -u -m "$1"
"""


def test_push_to_checkout_hook_updates_the_tree_as_git_runs_it(make_server: Any, client: Client) -> None:
    """With ``receive.denyCurrentBranch = updateInstead`` and a ``push-to-checkout`` hook, the hook
    takes over the tree's update: it runs with the new commit, ``GIT_DIR`` and
    ``GIT_WORK_TREE`` as git's own receive-pack runs it (the same push to a copy: in the git
    directory, both absolute), even in a dirty tree; its refusal refuses the update with git's words."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    work = server.root / "site"
    client.git("init", "-q", "-b", "main", str(work))
    commit(client, work, "a.txt", "a\n", "a")
    client.git("config", "receive.denyCurrentBranch", "updateInstead", cwd=work)
    (work / ".git" / "hooks" / "push-to-checkout").write_text(CHECKOUT_HOOK)
    (work / ".git" / "hooks" / "push-to-checkout").chmod(0o755)
    (work / "untracked.txt").write_text("mine\n")
    copy = client.cwd / "copy"
    copy.mkdir()
    client.run("cp", "-a", str(work), str(copy / "site"))
    clone = client.cwd / "site-clone"
    client.git("clone", "-q", server.git_url("site"), str(clone))
    tip = commit(client, clone, "b.txt", "b\n", "b")
    ours = client.git("push", "origin", "HEAD:main", cwd=clone)
    theirs = client.git("push", f"file://{copy / 'site'}", "HEAD:main", cwd=clone)
    # git's receive-pack lets this hook write to its own standard error (shown over ssh and file://,
    # lost over git:// and HTTP); hgwire sends it on the side band as for its other hooks
    assert _remote_lines(ours.stderr) == [f"checking out {tip}"], ours.stderr
    assert f"checking out {tip}\n" in theirs.stderr, theirs.stderr
    for tree in (work, copy / "site"):
        assert client.git("rev-parse", "main", cwd=tree).stdout.strip() == tip
        assert (tree / "b.txt").read_text() == "b\n" and (tree / "untracked.txt").exists()
    told = [(root / "site.log").read_text().replace(str(root), "<root>").replace("/. ", " ")  # git: <git dir>/.
            for root in (server.root, copy)]
    assert told[0] == told[1] == "args=1 dir=<root>/site/.git tree=<root>/site pwd=<root>/site/.git\n", told

    for tree in (work, copy / "site"):
        (tree / "refuse").write_text("")
    commit(client, clone, "c.txt", "c\n", "c")
    ours = client.git("push", "origin", "HEAD:main", cwd=clone, check=False)
    theirs = client.git("push", f"file://{copy / 'site'}", "HEAD:main", cwd=clone, check=False)
    assert ours.returncode == theirs.returncode == 1
    assert _rejections(ours.stderr) == _rejections(theirs.stderr) == [
        "! [remote rejected] HEAD -> main (push-to-checkout hook declined)"], ours.stderr
    assert "not now" in _remote_lines(ours.stderr) and "not now\n" in theirs.stderr
    assert client.git("rev-parse", "main", cwd=work).stdout.strip() == tip and not (work / "c.txt").exists()
    client.git("--git-dir", str(work / ".git"), "fsck", "--full")


PROC_RECEIVE_HOOK = r"""#!/usr/bin/env python3
import os, subprocess, sys

def read():
    size = int(sys.stdin.buffer.read(4), 16)
    return None if size == 0 else sys.stdin.buffer.read(size - 4).rstrip(b"\n")

def lines():
    out = []
    while (line := read()) is not None:
        out.append(line)
    return out

def write(*packets):
    for data in packets:
        sys.stdout.buffer.write(b"0000" if data is None else b"%04x" % (len(data) + 4) + data)
    sys.stdout.buffer.flush()

mode_file = os.path.join(os.environ["GIT_DIR"], "hook-mode")
mode = open(mode_file).read().strip() if os.path.exists(mode_file) else ""
version = lines()
write(b"version=2" if mode == "version2" else b"version=1\0push-options", None)
commands = [line.split(b" ") for line in lines()]
options = lines() if b"push-options" in version[0] else []
with open(os.path.join(os.environ["GIT_DIR"], "proc-receive.log"), "ab") as log:
    log.write(b"version: " + version[0].replace(b"\0", b" | ") + b"\n")
    log.write(b"".join(b"command: " + b" ".join(c) + b"\n" for c in commands))
    log.write(b"".join(b"option: " + o + b"\n" for o in options))
print(f"proc-receive: {len(commands)} commands", file=sys.stderr)
for old, new, ref in commands:
    if ref.endswith(b"/refused"):
        write(b"ng " + ref + b" not today")
    elif ref.endswith(b"/through"):
        write(b"ok " + ref, b"option fall-through")
    elif ref.endswith(b"/silent"):
        pass
    else:
        subprocess.run(["git", "update-ref", "refs/pull/1/head", new.decode()], check=True)
        write(b"ok " + ref, b"option refname refs/pull/1/head", b"option old-oid " + old, b"option new-oid " + new)
write(None)
sys.exit(1 if mode == "exit1" else 0)
"""

POST_RECEIVE_LOG = """#!/bin/sh
cat >> "$GIT_DIR/post-receive.log"
"""


def _review_repo(make_server: Any, client: Client, mode: str | None = "") -> tuple[str, Path, Path, Path]:
    """A repository with ``receive.procReceiveRefs = refs/for`` and its hooks (none when ``mode`` is
    None), and a copy for git's own receive-pack: its URL, the clone, the git dir and the copy."""
    server: RunningServer = make_server("fs", git=[LOOPBACK])
    url, work = started_repo(server, client, "review", push=True)
    bare = server.root / "review.git"
    client.git("--git-dir", str(bare), "config", "receive.procReceiveRefs", "refs/for")
    hooks = [("proc-receive", PROC_RECEIVE_HOOK), ("post-receive", POST_RECEIVE_LOG)]
    if mode == "update-declines":
        hooks.append(("update", '#!/bin/sh\n[ "$1" != refs/heads/main ]\n'))
    for name, text in hooks:
        if mode is not None or name != "proc-receive":
            (bare / "hooks" / name).write_text(text)
            (bare / "hooks" / name).chmod(0o755)
    (bare / "hook-mode").write_text(mode or "")
    copy = client.cwd / "copy.git"
    client.run("cp", "-a", str(bare), str(copy))
    client.git("--git-dir", str(copy), "config", "receive.advertisePushOptions", "true")  # hgwire's default
    return url, work, bare, copy


def _statuses(stderr: str) -> list[str]:
    return sorted(line.strip() for line in stderr.splitlines() if "->" in line)


def test_proc_receive_hook_takes_the_commands_of_proc_receive_refs_as_git_hands_them(
        make_server: Any, client: Client) -> None:
    """``receive.procReceiveRefs = refs/for``: those commands go to the ``proc-receive`` hook over
    its pkt-line protocol (version, commands, push options) instead of being made; what it reports
    (an alternate ref, a refusal, a fall-through, silence) reaches the client and ``post-receive``
    as from git's own receive-pack pushing to a copy, and the other refs move as usual."""
    url, work, bare, copy = _review_repo(make_server, client)
    tip = commit(client, work, "b.txt", "b\n", "b")
    specs = ["HEAD:refs/for/main/topic", "HEAD:refs/for/main/refused", "HEAD:refs/for/main/through",
             "HEAD:refs/for/main/silent", "HEAD:main"]
    ours = client.git("push", "--push-option=reviewer=bob", url, *specs, cwd=work, check=False)
    theirs = client.git("push", "--push-option=reviewer=bob", f"file://{copy}", *specs, cwd=work, check=False)
    statuses = _statuses
    assert ours.returncode == theirs.returncode == 1
    assert statuses(ours.stderr) == statuses(theirs.stderr), (ours.stderr, theirs.stderr)
    assert "HEAD -> refs/pull/1/head" in ours.stderr or "refs/pull/1/head" in ours.stderr, ours.stderr
    assert "proc-receive: 4 commands" in _remote_lines(ours.stderr)
    for name in ("proc-receive.log", "post-receive.log"):
        assert (bare / name).read_text() == (copy / name).read_text(), name
    refs = remote_refs(client, "default", url)
    assert refs == remote_refs(client, "default", f"file://{copy}")
    assert refs["refs/pull/1/head"] == refs["refs/for/main/through"] == refs["refs/heads/main"] == tip
    assert "refs/for/main/topic" not in refs and "refs/for/main/refused" not in refs
    client.git("--git-dir", str(bare), "fsck", "--full")


@pytest.mark.parametrize(("mode", "specs", "flags"), [
    ("", ["HEAD:refs/for/main/refused", "HEAD:main"], ["--atomic"]),  # the others: "fail to run proc-receive hook"
    ("", ["HEAD:refs/for/main/topic", "HEAD:main"], ["--atomic"]),
    (None, ["HEAD:refs/for/main/topic", "HEAD:main"], []),  # no hook to run
    ("version2", ["HEAD:refs/for/main/topic", "HEAD:main"], []),
    ("exit1", ["HEAD:refs/for/main/topic", "HEAD:refs/for/main/silent", "HEAD:main"], ["--atomic"]),
    ("update-declines", ["HEAD:refs/for/main/topic", "HEAD:main"], ["--atomic"]),
])
def test_proc_receive_failures_are_reported_as_git_reports_them(make_server: Any, client: Client, mode: str | None,
                                                                specs: list[str], flags: list[str]) -> None:
    url, work, bare, copy = _review_repo(make_server, client, mode)
    commit(client, work, "b.txt", "b\n", "b")
    ours = client.git("push", *flags, url, *specs, cwd=work, check=False)
    theirs = client.git("push", *flags, f"file://{copy}", *specs, cwd=work, check=False)
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
    assert _statuses(ours.stderr) == _statuses(theirs.stderr), (ours.stderr, theirs.stderr)
    assert remote_refs(client, "default", url) == remote_refs(client, "default", f"file://{copy}")
    client.git("--git-dir", str(bare), "fsck", "--full")


def test_a_proc_receive_hook_that_hangs_is_stopped_and_its_commands_refused(
        make_server: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_hooks, "HOOK_TIMEOUT", 1.0)
    url, work, bare, _ = _review_repo(make_server, client)
    pidfile = client.cwd / "proc-receive-sleep.pid"
    (bare / "hooks" / "proc-receive").write_text(SLEEPER.format(said="thinking", redirect=" >&2", seconds=31,
                                                                pidfile=pidfile))
    tip = commit(client, work, "b.txt", "b\n", "b")
    pushed = client.git("push", url, "HEAD:refs/for/main/topic", "HEAD:main", cwd=work, check=False)
    assert pushed.returncode == 1
    statuses = _statuses(pushed.stderr)
    assert statuses[0] == "! [remote rejected] HEAD -> refs/for/main/topic (fail to run proc-receive hook)"
    assert statuses[1].endswith(f"..{tip[:7]}  HEAD -> main"), pushed.stderr
    assert "remote: thinking" in pushed.stderr and "proc-receive hook timed out after 1 s" in pushed.stderr
    assert remote_refs(client, "default", url)["refs/heads/main"] == tip  # the other ref moved
    assert _stopped(pidfile)
