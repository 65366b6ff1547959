"""Settings git 2.39's own services read otherwise than hgwire did, each checked beside git's answer
(``file://``, protocol v0, where git's upload-pack reads its config as it starts) for ``ls-remote``,
a clone and a push:

- a number git's receive-pack or upload-pack reads through its config callback, written twice, the
  first value one git cannot read (``12q``) and the last a good one: git dies at the first, hgwire
  judged the last alone and served the request (``core.filesRefLockTimeout``, which git reads
  last-only, is served by both), and the same for the booleans they so read
  (``receive.denyDeletes = maybe`` then ``= true``);
- ``receive.unpackLimit`` and ``transfer.unpackLimit`` past a C ``int`` (git refuses every push;
  hgwire read neither), ``pack.threads = -1`` (git's pack-objects dies, a clone fails; hgwire served
  it), ``extensions.refStorage = files`` in format version 1 (git 2.39 does not know it and refuses
  the repository; hgwire served it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, Client, RunningServer
from tests.git_config_twins import served_and_twin


def _answers(client: Client, server: RunningServer, settings: list[tuple[str, str]]) -> dict[str, list[str | None]]:
    """The served repository and its twin set with ``settings`` (``git config --add`` each): for git
    (``file://``) and hgwire, the stderr of each of ``ls-remote``, a clone and a push it refused
    (None for one it answered)."""

    def configure(bare: Path) -> None:
        for key, value in settings:
            client.git("config", "--add", key, value, cwd=bare)

    work, _bare, twin = served_and_twin(client, server, configure)
    found: dict[str, list[str | None]] = {}
    for tag, url in (("git", f"file://{twin}"), ("ours", server.git_url("v"))):
        runs = (client.git("-c", "protocol.version=0", "ls-remote", url, check=False),
                client.git("-c", "protocol.version=0", "clone", "-q", url, str(client.cwd / f"c-{tag}"), check=False),
                client.git("-c", "protocol.version=0", "push", url, "main:refs/heads/new", cwd=work, check=False))
        found[tag] = [run.stderr if run.returncode else None for run in runs]
    return found


@pytest.mark.parametrize(("key", "refused"), [
    ("receive.keepAlive", (False, False, True)),
    ("receive.certNonceSlop", (False, False, True)),
    ("receive.maxInputSize", (False, False, True)),
    ("uploadpack.keepAlive", (True, True, False)),
    ("uploadpackfilter.tree.maxDepth", (True, True, False)),
    ("core.filesRefLockTimeout", (False, False, False)),
])
def test_a_bad_value_before_a_good_one_is_refused_where_git_reads_each(
        make_server: Callable[..., RunningServer], client: Client, key: str, refused: tuple[bool, ...]) -> None:
    server = make_server("fs", git=[LOOPBACK])
    found = _answers(client, server, [(key, "12q"), (key, "5")])
    assert tuple(run is not None for run in found["git"]) == refused, found["git"]
    assert tuple(run is not None for run in found["ours"]) == refused, found["ours"]
    for run in filter(None, found["ours"]):
        assert f"bad numeric config value '12q' for '{key.lower()}'" in run, run


@pytest.mark.parametrize(("key", "bad", "refused"), [
    ("receive.denyDeletes", "maybe", (False, False, True)),
    ("receive.denyCurrentBranch", "maybe", (False, False, True)),
    ("receive.denyCurrentBranch", "warn", (False, False, False)),  # (a word it takes)
    ("transfer.fsckObjects", "maybe", (False, False, True)),
    ("transfer.advertiseSID", "maybe", (True, True, True)),
    ("uploadpack.allowFilter", "maybe", (True, True, False)),
    ("uploadpackfilter.allow", "maybe", (True, True, False)),
    ("pack.useBitmaps", "maybe", (False, True, False)),  # (git's pack-objects reads them: a clone)
    ("pack.writeReverseIndex", "maybe", (False, True, False)),
    ("core.logAllRefUpdates", "maybe", (False, True, True)),  # (pack-objects and receive-pack)
    ("core.logAllRefUpdates", "Always", (False, False, False)),  # (a word it takes)
])
def test_a_bad_boolean_before_a_good_one_is_refused_where_git_reads_each(
        make_server: Callable[..., RunningServer], client: Client, key: str, bad: str,
        refused: tuple[bool, ...]) -> None:
    """The same for booleans git's receive-pack or upload-pack reads through its config callback:
    hgwire judged the last value of some (``receive.denyDeletes``), none of the others."""
    server = make_server("fs", git=[LOOPBACK])
    found = _answers(client, server, [(key, bad), (key, "true")])
    assert tuple(run is not None for run in found["git"]) == refused, found["git"]
    assert tuple(run is not None for run in found["ours"]) == refused, found["ours"]
    for run in filter(None, found["ours"]):
        assert f"bad boolean config value '{bad}' for '{key.lower()}'" in run, run


@pytest.mark.parametrize(("settings", "refused", "says"), [
    ([("receive.unpackLimit", "4294967296")], (False, False, True),
     "bad numeric config value '4294967296' for 'receive.unpacklimit' (git reads it from -2147483647 to 2147483647)"),
    ([("transfer.unpackLimit", "4294967296")], (False, False, True),
     "bad numeric config value '4294967296' for 'transfer.unpacklimit'"),
    ([("pack.threads", "-1")], (False, True, False),
     "bad config value '-1' for 'pack.threads' (git's pack-objects refuses a number of threads below 0)"),
    ([("core.repositoryFormatVersion", "1"), ("extensions.refStorage", "files")], (True, True, True),
     "git extension 'refstorage', which git 2.39 does not know and refuses too"),
])
def test_a_setting_git_refuses_is_refused_as_git_refuses_it(
        make_server: Callable[..., RunningServer], client: Client, settings: list[tuple[str, str]],
        refused: tuple[bool, ...], says: str) -> None:
    server = make_server("fs", git=[LOOPBACK])
    found = _answers(client, server, settings)
    assert tuple(run is not None for run in found["git"]) == refused, found["git"]
    assert tuple(run is not None for run in found["ours"]) == refused, found["ours"]
    for run in filter(None, found["ours"]):
        assert says in run, run


@pytest.mark.parametrize("value", ["2", "0x10", "no"])
def test_a_number_for_log_all_ref_updates_is_read_as_git_reads_it(
        make_server: Callable[..., RunningServer], client: Client, value: str) -> None:
    """``core.logAllRefUpdates = 2`` is git's boolean true (any number but 0): git's receive-pack
    keeps a reflog of the pushed branch; hgwire took only ``1`` for true and kept none."""
    server = make_server("fs", git=[LOOPBACK])
    work, bare, twin = served_and_twin(
        client, server, lambda bare: client.git("config", "core.logAllRefUpdates", value, cwd=bare))
    for url in (f"file://{twin}", server.git_url("v")):
        client.git("push", url, "main:refs/heads/new", cwd=work)
    assert (bare / "logs/refs/heads/new").exists() == (twin / "logs/refs/heads/new").exists() == (value != "no")
    client.git("fsck", "--full", cwd=bare)


@pytest.mark.parametrize(("key", "bad", "says"), [
    ("uploadpack.keepAlive", "12q", "bad numeric config value '12q' for 'uploadpack.keepalive'"),
    ("uploadpack.allowFilter", "maybe", "bad boolean config value 'maybe' for 'uploadpack.allowfilter'"),
])
@pytest.mark.parametrize("transport", ["git", "http"])
def test_protocol_v2_ls_remote_is_answered_and_its_fetch_refused_as_git_does(
        make_server: Callable[..., RunningServer], client: Client, key: str, bad: str, says: str,
        transport: str) -> None:
    """In protocol v2 (git's default) git's ``ls-refs`` reads none of upload-pack's start settings:
    ``ls-remote`` is answered, and its ``fetch`` command, which reads each value, dies.  hgwire
    judged them as the session opened and refused ``ls-remote`` too."""
    server = make_server("fs", git=[LOOPBACK], http=[LOOPBACK])

    def configure(bare: Path) -> None:
        client.git("config", "--add", key, bad, cwd=bare)
        client.git("config", "--add", key, "1", cwd=bare)

    _work, _bare, twin = served_and_twin(client, server, configure)
    for tag, url in (("git", f"file://{twin}"), ("ours", server.url(transport, "v.git"))):
        listed = client.git("-c", "protocol.version=2", "ls-remote", url, check=False)
        assert listed.returncode == 0 and "refs/heads/main" in listed.stdout, (tag, listed.stderr)
        cloned = client.git("-c", "protocol.version=2", "clone", "-q", url, str(client.cwd / f"c-{tag}"), check=False)
        assert cloned.returncode != 0, (tag, cloned.stderr)
        assert tag == "git" or says in cloned.stderr, cloned.stderr
