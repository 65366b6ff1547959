"""What the process keeps parsed of a repository between requests, once that repository is removed,
renamed or replaced on disk.

A removed (or renamed) repository's kept data (hg: the kept repository, its store's indexes, views,
branches, tags, manifests...; git: its packed refs, pack views, multi-pack layout, bitmaps) was held
until newer data pushed it out of the caches' bounds; it now goes when a request finds the
repository gone.  A repository removed and made again under its name (``rm -rf``, then ``hg init``
or ``git init``) is served from its own files, never from what was kept of its predecessor."""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

from backends import git as git_backend
from backends import git_fastpack, git_midx, git_packindex
from backends.hg import kept, revlog
from backends.lru import naming_under
from tests.conftest import LOOPBACK, Client, RunningServer, SshKeys, ssh_server_settings
from tests.integration.test_hg_ssh import HgSsh


def _hg_kept_under(path: Path) -> list[object]:
    """The keys of everything the hg engine keeps of the repository at ``path``, in every cache."""
    match = naming_under(os.path.realpath(path))
    with kept.KEPT.lock:
        pooled = [key for _, key in kept.KEPT._order if match(key)]
    return pooled + [key for key in revlog._APPENDS._entries if match(key)]


def _git_kept_under(path: Path) -> dict[str, list[object]]:
    match = naming_under(os.path.realpath(path))
    kept_now: dict[str, list[object]] = {
        "packed refs": list(git_backend._PACKED_REFS._entries),
        "pack views": list(git_packindex._CACHE._views._values),
        "multi-pack layouts": list(git_midx._CACHE._layouts._values),
        "bitmaps": list(git_fastpack._BITMAPS._entries)}
    return {what: [key for key in keys if match(key)] for what, keys in kept_now.items()}


def _held_open_under(path: Path) -> list[str]:
    """Descriptors and maps of this process on files under ``path``."""
    root = os.path.realpath(path)
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(root):
            held.append(target)
    with open("/proc/self/maps") as maps:
        held.extend(line.strip() for line in maps if root in line)
    return held


def _page(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


PAGES = ("log", "shortlog", "graph", "rev/tip", "file/tip", "file/tip/f", "annotate/tip/f", "tags", "branches")


def _hg_history(client: Client, repo: Path, label: str, count: int = 3) -> list[str]:
    """``count`` changesets of files whose sizes do not depend on ``label`` (3 letters), their nodes."""
    client.hg("init", str(repo))
    for n in range(count):
        (repo / "f").write_text(f"{label} {n}\n")
        (repo / f"g{n}").write_text(f"{label}\n")
        client.hg("commit", "-q", "-A", "-R", str(repo), "-m", f"{label} {n}")
    client.hg("tag", "-R", str(repo), f"{label}-tag")
    return client.hg("log", "-R", str(repo), "-T", "{node}\n").stdout.split()


def _read_everything(client: Client, url: str, tmp_path: Path, label: str) -> None:
    """What a user's requests make the server keep: an id, a clone, the web pages."""
    client.hg("id", url)
    client.hg("clone", "-q", url, str(tmp_path / f"clone-{label}"))
    for page in PAGES:
        assert _page(f"{url}/{page}")[0] == 200, page


def test_a_removed_or_renamed_hg_repository_lets_go_of_its_kept_data(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", http=[LOOPBACK])
    gone, moved, stays = (server.root / name for name in ("gone", "moved", "stays"))
    for repo in (gone, moved, stays):
        _hg_history(client, repo, "old")
        _read_everything(client, server.url("http", repo.name), tmp_path, repo.name)
    for repo in (gone, moved, stays):
        assert len(_hg_kept_under(repo)) >= 8, _hg_kept_under(repo)

    shutil.rmtree(gone)
    os.rename(moved, server.root / "elsewhere")
    assert _hg_kept_under(gone) and _hg_kept_under(moved), "held until a request finds them gone"
    assert client.hg("id", server.url("http", "gone"), check=False).returncode != 0
    assert _page(server.url("http", "moved") + "/log")[0] == 404
    assert _hg_kept_under(gone) == [] and _hg_kept_under(moved) == []
    assert len(_hg_kept_under(stays)) >= 8, "another repository's data stays"
    assert client.hg("id", server.url("http", "elsewhere")).stdout.strip()


def test_a_replaced_hg_repository_is_served_from_its_own_files(
        make_server: Callable[..., RunningServer], client: Client, ssh_keys: SshKeys, tmp_path: Path) -> None:
    """Replaced with no request in between (nothing found it gone): by ``rm -rf`` and ``hg init``, and
    by a rename of another repository of the same shape (as many changesets, files of the same
    sizes: its index files the same sizes too) over it."""
    server = make_server("fs", http=[LOOPBACK], **ssh_server_settings(ssh_keys))
    ssh = HgSsh(server, client, ssh_keys.command(server.port("ssh")))
    repo = server.root / "r"
    url = server.url("http", "r")
    old = _hg_history(client, repo, "old")
    _read_everything(client, url, tmp_path, "old")
    assert ssh.hg("id", "-r", "tip", ssh.url("r")).stdout.split()[0] == old[0][:12]
    assert len(_hg_kept_under(repo)) >= 8

    for label, replace in (("new", lambda: shutil.rmtree(repo)),
                           ("mov", lambda: _hg_history(client, tmp_path / "made", "mov"))):
        replace()
        if label == "new":
            new = _hg_history(client, repo, "new")
        else:
            new = client.hg("log", "-R", str(tmp_path / "made"), "-T", "{node}\n").stdout.split()
            shutil.rmtree(repo)
            os.rename(tmp_path / "made", repo)
        assert client.hg("id", "-r", "tip", url).stdout.split()[0] == new[0][:12]
        assert ssh.hg("id", "-r", "tip", ssh.url("r")).stdout.split()[0] == new[0][:12]
        clone = tmp_path / f"clone-{label}"
        client.hg("clone", "-q", url, str(clone))
        assert client.hg("log", "-R", str(clone), "-T", "{node}\n").stdout.split() == new
        incoming = client.hg("incoming", "-q", "--force", "-R", str(tmp_path / "clone-old"), url,
                             "-T", "{node}\n").stdout.split()
        assert sorted(incoming) == sorted(new)
        for page in PAGES:
            status, text = _page(f"{url}/{page}")
            assert status == 200, page
            assert not any(node[:12] in text for node in old), f"{page} shows the old repository's changesets"
        assert f"{label} 2" in _page(f"{url}/raw-file/tip/f")[1]
        assert any(node[:12] in _page(f"{url}/log")[1] for node in new)
        old = new


def test_a_removed_git_repository_lets_go_of_its_kept_data_and_holds_no_file(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", git=[LOOPBACK])
    work = tmp_path / "work"
    client.git("init", "-q", str(work))
    for n in range(3):
        (work / "a").write_text(f"{n}\n")
        client.git("-C", str(work), "add", "a")
        client.git("-C", str(work), "commit", "-qm", f"c{n}")
        client.git("-C", str(work), "tag", f"v{n}")
    repos = [server.root / "gone.git", server.root / "stays.git"]
    for repo in repos:
        client.git("clone", "-q", "--bare", str(work), str(repo))
        client.git("-C", str(repo), "repack", "-adb")
        client.git("-C", str(repo), "multi-pack-index", "write", "--bitmap")
        client.git("-C", str(repo), "pack-refs", "--all")
        client.git("clone", "-q", server.git_url(repo.name), str(tmp_path / f"clone-{repo.name}"))
        client.git("clone", "-q", server.git_url(repo.name), str(tmp_path / f"again-{repo.name}"))
    for repo in repos:
        found = _git_kept_under(repo)
        assert found["packed refs"] and found["pack views"] and found["multi-pack layouts"], found
        assert found["bitmaps"], found

    shutil.rmtree(repos[0])
    assert any(_git_kept_under(repos[0]).values()), "held until a request finds it gone"
    refused = client.git("clone", "-q", server.git_url("gone.git"), str(tmp_path / "refused"), check=False)
    assert refused.returncode != 0
    assert not any(_git_kept_under(repos[0]).values()), _git_kept_under(repos[0])
    assert _git_kept_under(repos[1])["pack views"], "another repository's data stays"
    assert _held_open_under(server.root) == [], "no pack, index or bitmap stays open or mapped"


def test_a_replaced_git_repository_is_served_from_its_own_files(
        make_server: Callable[..., RunningServer], client: Client, tmp_path: Path) -> None:
    server = make_server("fs", git=[LOOPBACK])
    repo = server.root / "r.git"
    heads = []
    for label in ("old", "new"):
        work = tmp_path / f"work-{label}"
        client.git("init", "-q", str(work))
        (work / "a").write_text(f"{label}\n")
        client.git("-C", str(work), "add", "a")
        client.git("-C", str(work), "commit", "-qm", label)
        heads.append(client.git("-C", str(work), "rev-parse", "HEAD").stdout.strip())
        shutil.rmtree(repo, ignore_errors=True)  # (the second time: no request in between)
        client.git("clone", "-q", "--bare", str(work), str(repo))
        client.git("-C", str(repo), "repack", "-adb")
        client.git("-C", str(repo), "pack-refs", "--all")
        clone = tmp_path / f"clone-{label}"
        client.git("clone", "-q", server.git_url("r.git"), str(clone))
        assert client.git("-C", str(clone), "log", "--format=%H").stdout.split() == [heads[-1]]
    assert _held_open_under(server.root) == []
