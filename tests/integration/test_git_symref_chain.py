"""HEAD naming a symbolic ref (``HEAD -> refs/heads/alias -> refs/heads/main``, an alias left by a
rename) is advertised as the branch it leads to in the end, as git resolves it: a clone checks out
``main``, not a branch called ``alias``."""

from __future__ import annotations

import pytest

from tests.conftest import Client, RunningServer
from tests.integration.test_git_bad_input import seed


@pytest.mark.parametrize("version", ["0", "2"])
def test_head_through_a_symbolic_ref_names_its_final_branch(server: RunningServer, client: Client,
                                                          version: str) -> None:
    seed(server, client)
    refs = server.backend.open("good").dulwich_repo.refs
    refs.set_symbolic_ref(b"refs/heads/alias", b"refs/heads/main")
    refs.set_symbolic_ref(b"HEAD", b"refs/heads/alias")
    listed = client.git("-c", f"protocol.version={version}", "ls-remote", "--symref", server.git_url("good")).stdout
    assert "ref: refs/heads/main\tHEAD" in listed, listed
    clone = client.cwd / f"clone-v{version}"
    client.git("-c", f"protocol.version={version}", "clone", "-q", server.git_url("good"), str(clone))
    assert client.git("symbolic-ref", "HEAD", cwd=clone).stdout.strip() == "refs/heads/main"
