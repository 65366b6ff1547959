"""A ``hideRefs`` line without ``=`` (``[transfer] hideRefs``): git's upload-pack and receive-pack
refuse the config ("missing value for 'transfer.hiderefs'"), each for the sections it reads
(``uploadpack`` a fetch's, ``receive`` a push's, ``transfer`` both); hgwire took it as a ref
prefix ``true`` and served the fetch and the push.  It now refuses them as git does, saying why."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Client, RunningServer
from tests.integration.test_git_daemon import commit
from tests.integration.test_git_hiderefs_repeated_sections import pull_refs_repository


@pytest.mark.parametrize("version", ["0", "2"])
@pytest.mark.parametrize("section", ["transfer", "uploadpack", "receive"])
def test_a_valueless_hiderefs_is_refused_as_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, section: str, version: str) -> None:
    server, bare, work = pull_refs_repository(make_server, client, "bare")
    with open(bare / "config", "a") as f:
        f.write(f"[{section}]\n\thideRefs\n")
    line = (bare / "config").read_text().count("\n")
    says = (f"the repository's git config sets '{section}.hiderefs' without a value (line {line} of config), "
            "which git refuses as a bad config variable; tell the server's operator")
    commit(client, work, "b.txt", "b\n", "second")
    for service, refused in (("fetch", section != "receive"), ("push", section != "uploadpack")):
        for url in (f"file://{bare}", server.git_url("bare")):
            if service == "fetch":
                done = client.git("-c", f"protocol.version={version}", "ls-remote", url, check=False)
            else:
                done = client.git("-c", f"protocol.version={version}", "push", url, f"main:refs/heads/{url[:3]}",
                                  cwd=work, check=False)
            assert (done.returncode != 0) == refused, (service, url, done.stderr)
            if refused and url.startswith("file:"):
                assert f"missing value for '{section}.hiderefs'" in done.stderr, done.stderr
            elif refused:
                assert says in done.stderr, done.stderr


def test_a_valueless_hiderefs_on_its_headers_line_is_refused_too(
        make_server: Callable[..., RunningServer], client: Client) -> None:
    """``[transfer] hideRefs`` (the setting after the header, on its line): git reads it as the line
    above, and refuses it; hgwire took it as the ref prefix ``true`` and served the fetch."""
    server, bare, _ = pull_refs_repository(make_server, client, "bare")
    with open(bare / "config", "a") as f:
        f.write("[transfer] hideRefs\n")
    line = (bare / "config").read_text().count("\n")
    done = client.git("ls-remote", f"file://{bare}", check=False)
    assert done.returncode != 0 and "missing value for 'transfer.hiderefs'" in done.stderr, done.stderr
    done = client.git("ls-remote", server.git_url("bare"), check=False)
    assert done.returncode != 0, done.stdout
    assert (f"the repository's git config sets 'transfer.hiderefs' without a value (line {line} of config), "
            "which git refuses as a bad config variable; tell the server's operator") in done.stderr, done.stderr
