"""hg-evolve's ``evolve`` and ``topic`` extensions on the real client against hgwire over SSH and HTTP,
where the repository's hgrc enables them as a team's server does (``[extensions] topic =``,
``[experimental] evolution = all``, ``[phases] publish = False``).  What the server answers is
compared with what ``hg serve`` with the extensions answers (Mercurial's own lookup, run on a copy).

The tests need hg-evolve importable by the Python that runs ``hg`` (the ``test`` extra installs it);
without it they are skipped, saying so."""

# ruff: noqa: F811  (the htpasswd fixture, imported from test_hg_http, is each test's parameter)
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, SshKeys
from tests.integration.test_hg_hooks import _served
from tests.integration.test_hg_http import htpasswd  # noqa: F401 - a fixture


def _hg_evolve_dir() -> str | None:
    """The directory holding ``hgext3rd/topic`` and ``hgext3rd/evolve``, or None without hg-evolve."""
    try:
        spec = importlib.util.find_spec("hgext3rd.topic")
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("hgext3rd.evolve") is None:
        return None
    return str(Path(next(iter(spec.submodule_search_locations))).parent.parent)


HG_EVOLVE = _hg_evolve_dir()
pytestmark = pytest.mark.skipif(HG_EVOLVE is None, reason="hg-evolve is not installed where hg runs "
                                "(pip install hg-evolve, as the test extra does): no evolve or topic client to test with")

EXTENSIONS = ("--config", "extensions.evolve=", "--config", "extensions.topic=")
SERVER_HGRC = ("[extensions]\nevolve =\ntopic =\n[experimental]\nevolution = all\n"
               "[phases]\npublish = False\n")


def _with_evolve(client: Client) -> None:
    """Let the client's hg import hg-evolve (the directory is already on its path in the test venv)."""
    assert HG_EVOLVE is not None
    paths = [HG_EVOLVE, *filter(None, client.env.get("PYTHONPATH", "").split(os.pathsep))]
    client.env["PYTHONPATH"] = os.pathsep.join(paths)


def _setup(kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
           htpasswd: Path, hgrc: str) -> tuple[Any, Callable[[str], str], Path]:
    _with_evolve(client)
    peer, url, server = _served(kind, make_server, client, ssh_keys, htpasswd)
    repo = server.root / "team"
    client.hg("init", str(repo))
    (repo / ".hg" / "hgrc").write_text(hgrc)
    return peer, url, repo


def _commit(client: Client, work: Path, name: str) -> str:
    (work / name).write_text(f"{name}\n")
    client.hg(*EXTENSIONS, "commit", "-q", "-A", "-R", str(work), "-m", name)
    return client.hg(*EXTENSIONS, "log", "-R", str(work), "-r", ".", "-T", "{node}").stdout


def _pushed_topic(peer: Any, client: Client, url: Callable[[str], str], tmp_path: Path) -> tuple[Path, str, str]:
    """A clone with a public base and two drafts on topic ``feat`` pushed; the base and feat's head."""
    work = tmp_path / "work"
    peer.hg(*EXTENSIONS, "clone", "-q", url("team"), str(work))
    base = _commit(client, work, "base")
    peer.hg(*EXTENSIONS, "push", "-q", "--publish", "-R", str(work), url("team"))
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "feat")
    _commit(client, work, "f1")
    head = _commit(client, work, "f2")
    client.hg(*EXTENSIONS, "topic", "-q", "-R", str(work), "--clear")
    peer.hg(*EXTENSIONS, "push", "-q", "-R", str(work), url("team"))
    return work, base, head


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_a_topic_names_its_newest_changeset_for_pull_and_clone(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """``hg pull -r TOPIC`` and ``hg clone -r TOPIC`` (hg's ``lookup``) were told "unknown revision"
    where ``hg serve`` with the topic extension gives the topic's newest draft."""
    peer, url, repo = _setup(kind, make_server, client, ssh_keys, htpasswd, SERVER_HGRC)
    work, base, head = _pushed_topic(peer, client, url, tmp_path)
    # hg serve with the extension (Mercurial's own lookup, on a copy: the same names)
    assert client.hg(*EXTENSIONS, "id", "--debug", "-i", "-R", str(repo), "-r", "feat").stdout.strip() == head

    assert peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team")).stdout.strip() == head[:12]
    clone = tmp_path / "clone"
    peer.hg(*EXTENSIONS, "clone", "-q", "-U", "-r", "feat", url("team"), str(clone))
    assert client.hg(*EXTENSIONS, "log", "-R", str(clone), "-T", "{phase} {topic} {desc}\n").stdout.splitlines() == [
        "draft feat f2", "draft feat f1", "public  base"]
    late = tmp_path / "late"
    peer.hg(*EXTENSIONS, "clone", "-q", "-U", "-r", base, url("team"), str(late))
    pulled = peer.hg(*EXTENSIONS, "pull", "-r", "feat", "-R", str(late), url("team"))
    assert "added 2 changesets" in pulled.stdout
    # a bookmark (and a tag, a branch) of that name comes first, as in hg's namespaces
    client.hg("bookmark", "-R", str(repo), "-r", base, "feat")
    assert peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team")).stdout.split()[0] == base[:12]
    client.hg("bookmark", "-R", str(repo), "-d", "feat")
    # published, the changesets have no topic any more: the name is unknown, as with hg serve
    peer.hg(*EXTENSIONS, "push", "-q", "--publish", "-R", str(work), url("team"), check=False)
    gone = peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team"), check=False)
    mine = client.hg(*EXTENSIONS, "id", "-R", str(repo), "-r", "feat", check=False)
    assert gone.returncode == mine.returncode == 255
    assert "unknown revision 'feat'" in gone.stderr and "unknown revision 'feat'" in mine.stderr


@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_without_the_topic_extension_a_topic_is_no_name(
        kind: str, make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys,
        htpasswd: Path, tmp_path: Path) -> None:
    """As ``hg serve`` without the extension: a topic's changesets are plain drafts, its name unknown."""
    hgrc = "[experimental]\nevolution = all\n[phases]\npublish = False\n"
    peer, url, _ = _setup(kind, make_server, client, ssh_keys, htpasswd, hgrc)
    _pushed_topic(peer, client, url, tmp_path)
    done = peer.hg(*EXTENSIONS, "id", "-r", "feat", url("team"), check=False)
    assert done.returncode == 255 and "unknown revision 'feat'" in done.stderr
