from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backends.filesystem import FilesystemBackend
from backends.interfaces import Backend, Kind
from protocols.errors import NotARepository, RepositoryNotFound, UnsafeName, UnsupportedFeature
from tests.unit.backends.contract import BackendContract


class TestFilesystemBackend(BackendContract):
    def make_backend(self, root: Path) -> Backend:
        return FilesystemBackend(str(root))


def test_created_git_repository_is_bare_name_dot_git(tmp_path: Path) -> None:
    backend = FilesystemBackend(str(tmp_path))
    backend.create("team/app", Kind.GIT)
    assert (tmp_path / "team" / "app.git" / "HEAD").is_file()
    subprocess.run(["git", "--git-dir", str(tmp_path / "team" / "app.git"), "fsck", "--full"], check=True)


def test_repositories_made_by_git_are_seen_without_restart(tmp_path: Path) -> None:
    backend = FilesystemBackend(str(tmp_path))
    assert list(backend.list()) == []
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "later.git")], check=True)
    assert backend.open("later").kind is Kind.GIT
    assert list(backend.list()) == ["later.git"]


def test_repositories_no_client_may_name_are_not_listed(tmp_path: Path) -> None:
    """A listing (the SSH ``info``, the web index) shows only names a client may ask for."""
    for name in ("~tilde.git", "team/~home.git", "tab\tname.git", "ok.git", "team/fine.git"):
        subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / name)], check=True)
    backend = FilesystemBackend(str(tmp_path))
    assert list(backend.list()) == ["ok.git", "team/fine.git"]
    with pytest.raises(UnsafeName, match="~tilde names a home directory"):
        backend.open("~tilde")


def test_names_below_a_directory_are_bounded(tmp_path: Path) -> None:
    """What the access rules ask of a name that reaches a directory: the repositories in it, at
    most ``limit`` of them and ``limit`` directories looked at; None for a repository or nothing."""
    backend = FilesystemBackend(str(tmp_path))
    for n in range(10):
        backend.create(f"team/r{n}", Kind.GIT)
    backend.create("team/deep/er/plans", Kind.HG)
    everything = ["team/deep/er/plans", *(f"team/r{n}.git" for n in range(10))]
    assert sorted(backend.names_below("team", 100) or ()) == everything
    few = backend.names_below("team.git", 4)  # 4 entries read, in the directory's order
    assert few is not None and 1 <= len(few) <= 4 and set(few) <= set(everything)
    big = tmp_path / "big"
    big.mkdir()
    for n in range(5000):  # files are entries too: a directory of many is not read whole
        (big / f"f{n}").write_bytes(b"")
    assert backend.names_below("big", 64) == []
    assert backend.names_below("team/r1", 5) is None
    assert backend.names_below("nothere", 5) is None
    assert backend.names_below("team/r1.git/refs", 5) is None


def test_symlink_out_of_root_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    subprocess.run(["git", "init", "-q", "--bare", str(outside / "secret.git")], check=True)
    root.mkdir()
    os.symlink(outside / "secret.git", root / "secret.git")
    with pytest.raises(UnsafeName):
        FilesystemBackend(str(root)).open("secret")


def test_symlink_inside_root_allowed_once_turned_on(tmp_path: Path) -> None:
    """The service turns aliases on for ``--backend fs`` without rules; a backend made by hand (a
    wrapper's, which may match rules of its own on names) serves none."""
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "real.git")], check=True)
    os.symlink(tmp_path / "real.git", tmp_path / "alias.git")
    backend = FilesystemBackend(str(tmp_path))
    with pytest.raises(UnsafeName, match="leads through a symbolic link"):
        backend.open("alias")
    backend.names_through_links = True
    assert backend.open("alias").kind is Kind.GIT


def test_a_name_inside_another_repository_is_refused(tmp_path: Path) -> None:
    """Made, ``g.git/refs/heads/main.lock`` would lock that repository's branch for every push, a git
    repository under ``g.git/refs/heads/`` would be refs of it that no client can fetch; nothing is
    made or opened inside a bare git repository's files (a repository in an hg working copy is
    served, as hgweb serves one)."""
    backend = FilesystemBackend(str(tmp_path))
    backend.create("g", Kind.GIT)
    backend.create("h", Kind.HG)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for name, kind in (("g.git/refs/heads/main.lock", Kind.HG), ("g.git/refs/heads/x", Kind.GIT),
                       ("g.git/hooks/pre-receive", Kind.HG), ("g.git/objects/x", Kind.HG)):
        with pytest.raises(UnsafeName, match="lies inside repository"):
            backend.create(name, kind)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert backend.create("h/nested", Kind.HG).kind is Kind.HG
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "g.git" / "refs" / "heads" / "planted.git")],
                   check=True)  # one an operator's tool made: not served either
    with pytest.raises(RepositoryNotFound, match=r"\Arepository g.git/refs/heads/planted not found\Z"):
        backend.open("g.git/refs/heads/planted")  # (as a name nothing is at: it names no other repository)
    assert backend.locate("g.git/x") is None
    assert backend.list() == ["g.git", "h"]  # (h/nested: below a repository, as before, not listed)


def test_with_access_rules_a_name_through_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    """Rules are matched on the name asked for: an alias (``pub -> private``) would serve a
    repository under another name's rules, so with them (``names_through_links`` off) it is refused."""
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "private" / "p.git")], check=True)
    os.symlink(tmp_path / "private", tmp_path / "pub")
    os.symlink(tmp_path / "private" / "p.git", tmp_path / "alias.git")
    backend = FilesystemBackend(str(tmp_path))
    backend.names_through_links = True
    assert backend.open("pub/p").kind is Kind.GIT and backend.open("alias").kind is Kind.GIT
    backend.names_through_links = False
    for name in ("pub/p", "alias", "alias.git"):
        with pytest.raises(UnsafeName, match="leads through a symbolic link"):
            backend.open(name)
    with pytest.raises(UnsafeName, match="leads through a symbolic link"):
        backend.create("pub/new", Kind.GIT)
    assert not (tmp_path / "private" / "new.git").exists()
    assert backend.open("private/p").kind is Kind.GIT


def test_symlinked_object_store_refused(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "a.git")], check=True)
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "b.git")], check=True)
    objects = tmp_path / "b.git" / "objects"
    subprocess.run(["rm", "-rf", str(objects)], check=True)
    os.symlink(tmp_path / "a.git" / "objects", objects)
    with pytest.raises(UnsafeName):
        FilesystemBackend(str(tmp_path)).open("b")


def test_plain_directory_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARepository):
        FilesystemBackend(str(tmp_path)).open("plain")
    with pytest.raises(RepositoryNotFound):
        FilesystemBackend(str(tmp_path)).open("absent")


def test_a_repository_with_a_working_tree_is_served_from_its_git_dir(tmp_path: Path) -> None:
    """As git daemon serves ``NAME/.git``; a ``.git`` file (a worktree's pointer) is refused saying so."""
    subprocess.run(["git", "init", "-q", str(tmp_path / "work")], check=True)
    (tmp_path / "pointer").mkdir()
    (tmp_path / "pointer" / ".git").write_text("gitdir: ../work/.git\n")
    (tmp_path / "linked").mkdir()
    os.symlink(tmp_path / "work" / ".git", tmp_path / "linked" / ".git")
    backend = FilesystemBackend(str(tmp_path))
    repo = backend.open("work")
    assert repo.kind is Kind.GIT and not repo.bare  # type: ignore[union-attr]
    assert "work" in list(backend.list())
    with pytest.raises(UnsupportedFeature, match="git directory lies elsewhere"):
        backend.open("pointer")
    assert backend.locate("pointer") is None
    with pytest.raises(UnsafeName, match="symlinked .git"):
        backend.open("linked")


def test_a_name_with_a_second_git_suffix_reaches_nothing(tmp_path: Path) -> None:
    """git's ``enter_repo`` finds NAME, NAME/.git, NAME.git or NAME.git/.git; hgwire also takes
    ``NAME.git`` for a repository stored as ``NAME`` (its clone URLs end in ``.git``), but
    ``app.git.git`` reached ``app.git``, which git daemon and git over ssh refuse."""
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "app.git")], check=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "work")], check=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "tree.git")], check=True)
    backend = FilesystemBackend(str(tmp_path))
    backend.create("hgrepo", Kind.HG)
    backend.create("hg.git", Kind.HG)
    reached = {"app": "app.git", "app.git": "app.git", "work": "work", "work.git": "work", "tree": "tree.git",
               "tree.git": "tree.git", "hgrepo": "hgrepo", "hgrepo.git": "hgrepo", "hg.git.git": "hg.git"}
    for name, stored in reached.items():
        assert backend.locate(name) == (stored, Kind.HG if stored.startswith("hg") else Kind.GIT), name
        assert backend.open(name).name == stored
    for name in ("app.git.git", "tree.git.git", "app.git.git.git"):
        assert backend.locate(name) is None and not backend.exists(name), name
        with pytest.raises(RepositoryNotFound, match=f"repository {name} not found"):
            backend.open(name)
    with pytest.raises(FileExistsError):  # a name another repository answers to is not taken
        backend.create("app.git.git", Kind.GIT)


def test_hg_repository_recognised(tmp_path: Path) -> None:
    (tmp_path / "hgrepo" / ".hg").mkdir(parents=True)
    assert list(FilesystemBackend(str(tmp_path)).list()) == ["hgrepo"]


@pytest.mark.parametrize(("setup", "message"), [
    (["init", "-q", "--bare", "--object-format=sha256"], "sha512 object ids"),
    (["-c", "init.defaultObjectFormat=sha1", "init", "-q", "--bare"], "git extension 'weird'"),
    (["init", "-q", "--bare"], "a shallow repository"),
    (["init", "-q", "--bare"], "reftable refs .* 'git refs migrate --ref-format=files'"),
])
def test_repositories_hgwire_cannot_serve_are_refused_by_name(tmp_path: Path, setup: list[str], message: str) -> None:
    """An object format git does not know (which dulwich would read as SHA-1) and an unknown
    extension are refused by name; so is a shallow repository, and one whose refs are in a
    reftable (dulwich opens it; hgwire's refs would read it as empty and write loose refs beside)."""
    path = tmp_path / "r.git"
    subprocess.run(["git", *setup, str(path)], check=True)
    if "sha512" in message:
        subprocess.run(["git", "-C", str(path), "config", "extensions.objectformat", "sha512"], check=True)
    if "shallow" in message:  # what clone --depth leaves: the commits whose parents it lacks
        (path / "shallow").write_text("1" * 40 + "\n")
    if "reftable" in message:  # what git 2.45's init --ref-format=reftable writes in the config
        subprocess.run(["git", "-C", str(path), "config", "core.repositoryformatversion", "1"], check=True)
        subprocess.run(["git", "-C", str(path), "config", "extensions.refStorage", "reftable"], check=True)
        (path / "reftable").mkdir()
    if "weird" in message:
        subprocess.run(["git", "-C", str(path), "config", "core.repositoryformatversion", "1"], check=True)
        subprocess.run(["git", "-C", str(path), "config", "extensions.weird", "x"], check=True)
    with pytest.raises(UnsupportedFeature, match=message):
        FilesystemBackend(str(tmp_path)).open("r")


@pytest.mark.parametrize(("version", "extensions", "refused"), [
    ("0", {"weird": "x", "noop": "true"}, None),          # git ignores extensions in version 0
    ("0", {"preciousObjects": "true"}, None),
    ("0", {"objectFormat": "sha1"}, "extensions.objectformat in a repository of format version 0"),
    ("0", {"noop-v1": "true"}, "version 0"),
    ("1", {"noop": "true", "noop-v1": "true", "worktreeConfig": "true"}, None),
    ("1", {"preciousObjects": "yes"}, None),
    # what git 2.45's explicit --ref-format=files writes, and later gits' extensions: git 2.39 knows none
    ("1", {"refStorage": "files"}, ("git extension 'refstorage', which git 2.39 does not know .* remove "
                                    "extensions.refstorage from the repository's config")),
    ("1", {"refStorage": "files", "objectFormat": "sha1"}, "git extension 'refstorage'"),
    ("1", {"relativeWorktrees": "true"}, "git extension 'relativeworktrees'"),
    ("0", {"refStorage": "files", "relativeWorktrees": "true", "compatObjectFormat": "sha256"}, None),  # (ignored)
    ("1", {"refStorage": "reftable"}, "reftable refs"),
    ("1", {"partialClone": "origin"}, "a partial clone .* 'git clone --mirror' without --filter"),
    ("0", {"partialClone": "origin"}, "a partial clone"),
    ("1", {"weird": "x"}, "git extension 'weird'"),
    ("1", {"compatObjectFormat": "sha256"}, "git extension 'compatobjectformat'"),  # (git 2.39: lowercased)
])
def test_extensions_are_judged_as_git_judges_them(
        tmp_path: Path, version: str, extensions: dict[str, str], refused: str | None) -> None:
    """A repository git serves is served whatever extensions git knows and hgwire has no use for
    (dulwich alone refused all but three), and those git ignores in format version 0; one git
    refuses is refused, with why; a partial clone (objects missing) is refused with what to do."""
    path = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    with (path / "config").open("a") as config:
        config.write("[extensions]\n" + "".join(f"\t{name} = {value}\n" for name, value in extensions.items()))
    subprocess.run(["git", "config", "--file", str(path / "config"), "core.repositoryformatversion", version],
                   check=True)
    backend = FilesystemBackend(str(tmp_path))
    if refused is not None:
        with pytest.raises(UnsupportedFeature, match=refused):
            backend.open("r")
        return
    repo = backend.open("r")
    assert repo.kind is Kind.GIT and b"HEAD" in repo.symrefs()  # type: ignore[attr-defined]
    assert repo.dulwich_repo.precious_objects is ("preciousObjects" in extensions)  # type: ignore[attr-defined]
    assert (path / "config").read_text().count("[extensions]") == 1  # the config file is left as it was


def test_a_partial_clone_git_made_is_refused_by_name(tmp_path: Path) -> None:
    """``git clone --bare --filter=blob:none`` (git 2.28 and later) marks its remote
    (``remote.origin.promisor``) and writes no ``extensions.partialClone``: it lacks objects all the
    same (a clone of it failed half way with "internal error"), so it is refused with what to do."""
    source = tmp_path / "src"
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    (source / "f").write_text("x\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a",
           "GIT_COMMITTER_EMAIL": "a@x"}
    subprocess.run(["git", "-C", str(source), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(source), "commit", "-qm", "one"], check=True, env=env)
    subprocess.run(["git", "-C", str(source), "config", "uploadpack.allowFilter", "true"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", "--filter=blob:none", f"file://{source}", str(tmp_path / "pc.git")],
                   check=True, env=env)
    with pytest.raises(UnsupportedFeature, match=r"a partial clone \(remote.origin.promisor: .*without --filter"):
        FilesystemBackend(str(tmp_path)).open("pc")
    subprocess.run(["git", "-C", str(tmp_path / "pc.git"), "config", "remote.origin.promisor", "false"], check=True)
    assert FilesystemBackend(str(tmp_path)).open("pc").kind is Kind.GIT


def test_inline_clone_bundles_are_regular_files_under_the_bundle_root_only(tmp_path: Path) -> None:
    """``peer-bundle-cache://<path>`` names ``.hg/<[server] peer-bundle-cache-root>/<path>`` (hg's
    default ``bundle-cache``), links followed but never out of it; nothing else is ever opened."""
    backend = FilesystemBackend(str(tmp_path))
    repo = backend.create("r", Kind.HG)
    dot_hg = tmp_path / "r" / ".hg"
    cache = dot_hg / "bundle-cache"
    (cache / "sub").mkdir(parents=True)
    (cache / "full.hg").write_bytes(b"HG20" + bytes(100_000))
    (cache / "sub" / "part.hg").write_bytes(b"HG20")
    os.symlink(cache / "full.hg", cache / "alias.hg")
    os.symlink(dot_hg / "requires", cache / "out.hg")
    (tmp_path / "r" / "secret").write_bytes(b"not a bundle")
    size = repo.inline_clone_bundle_size  # type: ignore[attr-defined]
    assert size(b"full.hg") == size(b"alias.hg") == 100_004 and size(b"sub/part.hg") == 4
    for path in (b"out.hg", b"../requires", b"sub/../../requires", b"/etc/passwd", b"sub", b"", b"a\0b",
                 b"./full.hg", b"sub//part.hg", b"missing.hg", b"../../secret"):
        assert size(path) is None, path
        assert repo.open_inline_clone_bundle(path) is None, path  # type: ignore[attr-defined]
    bundle = repo.open_inline_clone_bundle(b"full.hg")  # type: ignore[attr-defined]
    assert bundle.size == 100_004 and b"".join(bundle) == b"HG20" + bytes(100_000)
    unread = repo.open_inline_clone_bundle(b"full.hg")  # type: ignore[attr-defined]
    unread.close()
    unread.close()
    (dot_hg / "hgrc").write_text("[server]\npeer-bundle-cache-root = bundles\n")
    assert size(b"full.hg") is None
    (dot_hg / "bundles").mkdir()
    (dot_hg / "bundles" / "full.hg").write_bytes(b"HG20")
    assert size(b"full.hg") == 4


def test_a_repository_is_created_without_reading_the_user_s_git_config(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``twistd -u`` the process's ``HOME`` is still root's, its ``.gitconfig`` unreadable:
    creating a repository read it (for ``init.defaultBranch``) and failed "Permission denied"."""
    home = tmp_path / "home"
    (home / ".gitconfig").mkdir(parents=True)  # unreadable as a file, whoever runs the test
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    repo = FilesystemBackend(str(tmp_path / "root")).create("made", Kind.GIT)
    assert repo.kind is Kind.GIT and dict(repo.symrefs())[b"HEAD"] == b"refs/heads/main"  # type: ignore[attr-defined]


def test_list_folder_gives_what_list_gives_in_the_same_order(tmp_path: Path) -> None:
    """``list_folder(folder, after)``: the names of ``list()`` below ``folder`` after ``after``, in
    name order (``a-b/…`` and ``a.git`` sort before ``a/…``), read lazily; a link is followed by
    neither, a hidden or unnameable directory is listed by neither."""
    root = tmp_path / "root"
    for name in ("a.git", "a-b/x.git", "a/x.git", "a b/c.git", "a/b/c/d.git", "a/b/c/d/e.git", "b/a/c.git",
                 "b/a-c/d.git", "b/a.git", "b/a!/x.git", "é/x.git", "z/.hidden/x.git", "-z.git", "~u.git",
                 "q/~u.git", "n/1/2/3.git", "n/1.git/x.git"):
        subprocess.run(["git", "init", "-q", "--bare", str(root / name)], check=True)
    for name in ("c", "a/y", "b/a.b"):
        (root / name / ".hg").mkdir(parents=True)
    os.symlink(root / "a", root / "alias")
    os.symlink(root / "b" / "a.git", root / "b" / "same.git")
    backend = FilesystemBackend(str(root))
    backend.names_through_links = True
    everything = list(backend.list())
    assert list(backend.list_folder()) == everything and "a/b/c/d/e.git" not in everything
    for after in ["", *everything, "a", "a/", "a-", "b/a", "b/a/", "zz", "n/1"]:
        assert list(backend.list_folder("", after)) == [n for n in everything if n > after], after
    for folder in ("a", "b/", "b/a", "n/1", "a/b/c", "alias", "z/.hidden", "q", "a.git", "nothere", "a/b/c/d"):
        below = folder.strip("/") + "/"
        assert list(backend.list_folder(folder)) == [n for n in everything if n.startswith(below)], folder
    assert list(backend.list_folder("b", "b/a.git")) == ["b/a/c.git"]
