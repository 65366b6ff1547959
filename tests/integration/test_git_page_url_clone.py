"""A URL of one of hgwire's web pages of a git repository (``http://HOST/app.git/file/tip``,
copied from the browser) given to ``git clone``: git is told which repository the page belongs
to and its URL, as hg is (``test_hg_http``), where it was told "repository … not found"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import LOOPBACK, Client, RunningServer


def test_a_page_url_given_to_git_names_the_repository_it_belongs_to(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    policy = tmp_path / "pages-policy.toml"
    policy.write_text('anonymous_read = true\n[[repo]]\npattern = "private/app.git"\nread = ["bob"]\n')
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK], config_file=str(policy))
    for name in ("team/app.git", "private/app.git"):
        client.git("init", "-q", "--bare", "-b", "main", str(server.root / name))
    http = f"http://127.0.0.1:{server.port('http')}"
    git = f"git://127.0.0.1:{server.port('git')}"
    told = {
        f"{http}/team/app.git/file/tip": f"remote: team/app.git/file/tip is a page of repository team/app.git, "
                                         f"not a repository: use {http}/team/app.git",
        f"{http}/team/app/log": f"remote: team/app/log is a page of repository team/app, not a repository: "
                                f"use {http}/team/app",
        f"{git}/team/app.git/rev/tip": f"fatal: remote error: team/app.git/rev/tip is a page of repository "
                                       f"team/app.git, not a repository: use {git}/team/app.git",
    }
    for url, line in told.items():
        said = client.git("ls-remote", url, check=False, timeout=30)
        assert said.returncode == 128 and line in said.stderr.splitlines(), (url, said.stderr)
    for url in (f"{http}/team/app.git/nope", f"{http}/team/nope.git/log", f"{git}/team/nope/file/tip",
                f"{http}/private/app.git/log", f"{git}/private/app.git/log"):  # (bob's alone)
        said = client.git("ls-remote", url, check=False, timeout=30)
        assert said.returncode == 128 and "not found" in said.stderr and "page" not in said.stderr, said.stderr
    assert client.git("ls-remote", f"{http}/team/app.git").returncode == 0
