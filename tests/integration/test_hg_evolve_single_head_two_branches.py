"""hg-evolve's ``enforce-single-head`` and core hg's ``single-head-per-branch`` on a push that touches
two branches, on the real evolve-enabled client against hgwire over SSH, compared with hg's own
``hg serve --stdio`` (a fake ssh) on a copy with the same hgrc (test_hg_evolve_push_rules' way, in a
module of its own so that ``--dist loadfile`` gives it a test process of its own: some 80 s on a
2-core CI host, the longest half of that module).

hgwire's hg client runs in processes forked from hg's chg server (``ForkedClient`` of
test_hg_evolve_topics: the real client code, over the real ssh); the evolve area's tests with a client
process of its own are test_hg_evolve_topics'
``test_a_topic_names_its_newest_changeset_for_pull_and_clone``.

Skipped, saying so, where hg-evolve is not importable by the Python that runs ``hg``."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_evolve_push_rules import (
    SINGLE_HEAD,
    _both,
    _files,
    _pair,
    _refused_alike,
    _verified,
)
from tests.integration.test_hg_evolve_topics import (
    EXTENSIONS,
    HG_EVOLVE,
    SERVER_HGRC,
    _commit,
    _phases,
    _remote_lines,
    client,  # noqa: F401 - a fixture (local commands in an evolve-loaded command server)
)
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve or topic client to test with")


@pytest.mark.parametrize("setting", SINGLE_HEAD, ids=["evolve", "core"])
def test_single_head_settings_on_a_push_touching_two_branches(
        setting: tuple[str, str, str], make_server: Callable[..., RunningServer], client: Client,
        ssh_keys: SshKeys, htpasswd: Path, tmp_path: Path) -> None:
    """The checks look at the pushed changesets and the heads of the branches they touch, not every
    changeset: a push growing ``default`` and ``stable`` is taken; one leaving a second head on
    either is refused naming that branch; a branch the push does not touch that already had two heads (before the setting)
    refuses any push, as for hg serve."""
    line, words, hint = setting
    hgrc = SERVER_HGRC + "[experimental]\n" + line
    peer, url, repo, reference, work = _pair("ssh", make_server, client, ssh_keys, htpasswd, tmp_path, hgrc)
    base = client.hg(*EXTENSIONS, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout
    client.hg(*EXTENSIONS, "branch", "-q", "-R", str(work), "stable")
    s1 = _commit(client, work, "s1")
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), base)
    _commit(client, work, "d1")
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "--new-branch")
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    assert _remote_lines(pushed) == _remote_lines(expected)

    d2 = _commit(client, work, "d2")  # default and stable grow: one head each
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), s1)
    s2 = _commit(client, work, "s2")
    pushed, expected = _both(peer, client, url, tmp_path, work, reference)
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    assert _remote_lines(pushed) == _remote_lines(expected)
    _verified(client, repo)

    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), s1)
    s3 = _commit(client, work, "s3")  # a second head of stable, default growing beside it
    client.hg(*EXTENSIONS, "update", "-q", "-R", str(work), d2)
    _commit(client, work, "d3")
    before = _files(repo)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f")
    _refused_alike(pushed, expected, words.format(name="stable"), hint.format(a=s2[:12], b=s3[:12]))
    assert _remote_lines(pushed) == _remote_lines(expected)
    assert _files(repo) == before

    assert _phases(client, repo) == _phases(client, reference)

    for target in (repo, reference):  # stable's two heads taken without the setting, then it is set
        (target / ".hg" / "hgrc").write_text(SERVER_HGRC)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-f", "-r", s3)
    assert pushed.returncode == expected.returncode == 0, pushed.stdout + pushed.stderr
    for target in (repo, reference):
        (target / ".hg" / "hgrc").write_text(hgrc)
    before = _files(repo)
    pushed, expected = _both(peer, client, url, tmp_path, work, reference, "-r", "desc(d3)")
    _refused_alike(pushed, expected, words.format(name="stable"), hint.format(a=s2[:12], b=s3[:12]))
    assert _remote_lines(pushed) == _remote_lines(expected)
    assert _files(repo) == before
    assert _phases(client, repo) == _phases(client, reference)
    _verified(client, repo, reference)
