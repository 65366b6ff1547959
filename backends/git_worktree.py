"""``receive.denyCurrentBranch = updateInstead``: a push to the branch a working tree has checked out
updates that tree, as git's receive-pack does (push-to-deploy).

Without a ``push-to-checkout`` hook, the tree must be clean: its files as the index says
(``diff-files``) and the index as HEAD says (``diff-index --cached``); then ``read-tree -u -m``
moves the index and the files to the pushed commit.  Each failure refuses the update with git's own
words, and the ref stays.  These are git's plumbing commands, run by a ``git`` binary as git's own
receive-pack runs them (``backends.git_maintenance`` delegates repacks the same way); without one
installed the update is refused with a sentence that says so.

Blocking: called from ``update_refs`` in the worker pool, under the repository's lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess

WORKTREE_TIMEOUT = 300.0
"""Seconds each of git's commands may take on the working tree before the update is refused."""

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
"""The id of the empty tree: what the index is compared with before the branch's first commit."""

NO_WORKTREE = "denyCurrentBranch = updateInstead needs a worktree"
"""git's words when the repository has no working tree to update."""

NO_GIT = ("denyCurrentBranch = updateInstead needs git installed on the server to update the working tree; "
          "install git there or set receive.denyCurrentBranch to refuse")


def worktree_environment(git_dir: str, work_tree: str) -> dict[str, str]:
    """The server's environment without its own ``GIT_*`` settings, with the repository's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env["GIT_DIR"] = os.path.abspath(git_dir)
    env["GIT_WORK_TREE"] = os.path.abspath(work_tree)
    return env


def push_to_deploy(git_dir: str, work_tree: str, new: str, head_is_born: bool, git: str | None = None) -> str | None:
    """Move a clean working tree (and its index) to ``new``; None when done, else git's reason."""
    binary = git or shutil.which("git")
    if binary is None:
        return NO_GIT
    env = worktree_environment(git_dir, work_tree)
    steps = (
        (("update-index", "-q", "--ignore-submodules", "--refresh"), "Up-to-date check failed"),
        (("diff-files", "--quiet", "--ignore-submodules", "--"), "Working directory has unstaged changes"),
        (("diff-index", "--quiet", "--cached", "--ignore-submodules", "HEAD" if head_is_born else EMPTY_TREE, "--"),
         "Working directory has staged changes"),
        (("read-tree", "-u", "-m", new), "Could not update working tree to new HEAD"),
    )
    for args, refusal in steps:
        try:
            done = subprocess.run([binary, *args], cwd=work_tree, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=WORKTREE_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return refusal
        if done.returncode != 0:
            return refusal
    return None
