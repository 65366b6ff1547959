"""A chain of ``MAX_PEEL`` tags of tags: ``peel_many`` (the advertisement of a packed-refs without
``^`` lines) peeled it, where ``peel`` (a loose ref's tag, include-tag's filter) raised "tag chain
longer than 32", one object short; git peels it.  Both now take chains of ``MAX_PEEL`` tags and
refuse longer ones alike; so does every other place that follows a chain of tags (one
``MAX_PEEL``, where five modules had limits of 16, 32 and 64 of their own).  ``MAX_PEEL`` went from 32
to 256: a chain of 40 (git peels it) made every advertisement of its repository fail; a longer chain
than ``MAX_PEEL`` is now listed unpeeled by the advertisement (``peel_many``), the other refs peeled."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from dulwich.repo import Repo

from backends import git_pack
from backends.git_objects import MAX_PEEL
from backends.interfaces import ObjectId
from protocols.errors import ProtocolError
from tests.integration.test_git_deep_tag_chain import write_tag_chain


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-c", "pack.threads=1", *args], cwd=cwd, input=input, check=True,
                          capture_output=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "a",
                               "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
                               "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin"}).stdout


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, list[bytes]]:
    """A packed repository whose tags ``t1``..``t{MAX_PEEL + 1}`` each name the one before, ``t1``
    the commit main: (its path, main, the tags' ids in order)."""
    tmp = tmp_path_factory.mktemp("chain")
    repo = tmp / "c.git"
    git(tmp, "init", "-q", "--bare", str(repo))
    git(repo, "fast-import", "--quiet", input=(
        b"blob\nmark :1\ndata 2\nb\ncommit refs/heads/main\nmark :2\ncommitter a <a@b> 1700000000 +0000\n"
        b"data 2\nc\nM 644 :1 f\n"))
    main = git(repo, "rev-parse", "main").strip()
    tags = [tag.encode() for tag in write_tag_chain(repo, main.decode(), MAX_PEEL + 1)]
    git(repo, "repack", "-adq")
    return repo, main, tags


def _peel_both(repo: Path, oid: bytes) -> tuple[object, object]:
    """What ``peel`` and ``peel_many`` answer for ``oid`` (or the error each raises)."""
    opened = Repo(str(repo))
    try:
        store = opened.object_store
        answers: list[object] = []
        for many in (False, True):
            git_pack._peeled.clear()
            types = git_pack._stored_types(store)
            try:
                if many:
                    answers.append(git_pack.peel_many(store, [ObjectId(oid)], types)[ObjectId(oid)])
                else:
                    answers.append(git_pack.peel(store, ObjectId(oid), types))
            except ProtocolError:
                answers.append(ProtocolError)  # (TagChainTooLong is one)
            finally:
                if types is not None:
                    types.close()
        return answers[0], answers[1]
    finally:
        opened.close()


def test_a_chain_of_max_peel_tags_is_peeled_by_both(chain: tuple[Path, bytes, list[bytes]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo, main, tags = chain
    assert git(repo, "rev-parse", f"{tags[MAX_PEEL - 1].decode()}^{{}}").strip() == main
    assert _peel_both(repo, tags[MAX_PEEL - 1]) == (main, main)


def test_a_longer_chain_is_refused_by_peel_and_left_unpeeled_by_peel_many(chain: tuple[Path, bytes, list[bytes]],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # peel_many (the advertisement's) refused it too, and with it every other ref of the repository
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo, _main, tags = chain
    assert _peel_both(repo, tags[MAX_PEEL]) == (ProtocolError, tags[MAX_PEEL])


def test_the_advertisement_peels_refs_at_each_tag_of_a_chain_and_lists_a_too_long_one_unpeeled(
        chain: tuple[Path, bytes, list[bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a ref at each tag of the chain: those within MAX_PEEL of main are peeled (each tag's end read
    # once), the one past it listed unpeeled and named; the advertisement raised "tag chain longer
    # than 32" before, every other ref unserved
    from backends import load_backend

    monkeypatch.setattr(git_pack, "_peeled", {})
    source, main, tags = chain
    repo = tmp_path / "refs.git"
    shutil.copytree(source, repo)
    refs = {b"refs/tags/t%03d" % n: tag for n, tag in enumerate(tags, 1)}
    git(repo, "update-ref", "--stdin", input=b"".join(b"create %s %s\n" % item for item in refs.items()))
    snapshot = git_pack.snapshot_refs(load_backend("fs", str(tmp_path)).open("refs.git"))  # type: ignore[arg-type]
    assert snapshot.refs[b"refs/heads/main"] == main
    assert snapshot.peeled == {name: main for name in refs if name != b"refs/tags/t%03d" % (MAX_PEEL + 1)}
    assert snapshot.unpeeled == (b"refs/tags/t%03d" % (MAX_PEEL + 1),)


def _each_path(repo: Path, oid: bytes) -> dict[str, object]:
    """What each place that follows a chain of tags makes of ``oid``'s: the commit it ends at, or
    None where it stops short of it (or refuses)."""
    from backends import git_archive, git_fastpack, load_backend
    from backends.git_objects import size_reader
    from backends.git_web import GitPages
    from protocols.git_archive import ArchiveRefused

    opened = Repo(str(repo))
    found: dict[str, object] = {}
    try:
        store = opened.object_store
        git_pack._peeled.clear()
        try:
            found["peel"] = git_pack.peel(store, ObjectId(oid))
        except ProtocolError:
            found["peel"] = None
        git_pack._peeled.clear()
        types = git_pack._stored_types(store)
        try:
            many = git_pack.peel_many(store, [ObjectId(oid)], types)[ObjectId(oid)]
            found["peel_many"] = None if many == oid else many  # (listed unpeeled)
        except ProtocolError:
            found["peel_many"] = None
        finally:
            if types is not None:
                types.close()
        commit = git_pack._commit(store, oid)
        found["commit"] = commit.id if commit is not None else None
        main = git(repo, "rev-parse", "main").strip()
        found["tips"] = main if main in git_pack._tips(store, [oid]) else None
        included = git_pack._included_tags(store, {b"refs/tags/t": ObjectId(oid)}, {main}, set())  # type: ignore[arg-type]
        found["include-tag"] = main if included else None
        with size_reader(store) as reader:
            peeled = git_fastpack._peel(reader, oid, 40)
        found["filter"] = peeled[1] if peeled is not None else None
        try:
            found["archive"] = git_archive._to_tree(store, oid).commit
        except ArchiveRefused:
            found["archive"] = None
    finally:
        opened.close()
    pages = GitPages(load_backend("fs", str(repo.parent)).open(repo.name))  # type: ignore[arg-type]
    try:
        found["web"] = pages.resolve(oid.decode())
    except ProtocolError:
        found["web"] = None
    return found


def test_every_path_follows_max_peel_tags_and_no_more(chain: tuple[Path, bytes, list[bytes]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # each had a limit of its own: an archive or the web page of a chain of 16 tags was refused
    # (404) where a fetch served it, a filtered fetch's and include-tag's stopped at 31 and 32, a
    # fetch's wants were followed through 64
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo, main, tags = chain
    paths = _each_path(repo, tags[MAX_PEEL - 1])
    assert paths == dict.fromkeys(paths, main)
    assert _each_path(repo, tags[MAX_PEEL]) == dict.fromkeys(paths)


def test_every_path_follows_a_chain_of_40_tags(chain: tuple[Path, bytes, list[bytes]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # git peels it (git ls-remote lists deep^{}); with a bound of 32 the advertisement refused the
    # repository and each of the others stopped short (archive 'not a tree object', web 404, ...)
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo, main, tags = chain
    assert git(repo, "rev-parse", f"{tags[39].decode()}^{{}}").strip() == main
    paths = _each_path(repo, tags[39])
    assert paths == dict.fromkeys(paths, main)


def test_refs_at_each_tag_of_a_chain_read_each_tag_once_a_request(chain: tuple[Path, bytes, list[bytes]],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a ref (or a want) at each tag of one chain: each chain was followed anew (with MAX_PEEL tags
    # a ref, a filtered clone of 257 such refs took 1.7 s of server CPU, git daemon 0.36 s)
    monkeypatch.setattr(git_pack, "_peeled", {})
    repo, main, tags = chain
    opened = Repo(str(repo))
    try:
        store = opened.object_store
        looked: list[bytes] = []
        lookup = git_pack._lookup

        def counted_lookup(store: object, oid: bytes) -> object:
            looked.append(oid)
            return lookup(store, oid)  # type: ignore[arg-type]

        monkeypatch.setattr(git_pack, "_lookup", counted_lookup)
        wants = [ObjectId(tag) for tag in reversed(tags)]
        assert git_pack._tips(store, wants) == {*tags, main}
        assert len(looked) <= 3 * len(tags)  # (the chain past MAX_PEEL, the one within it, a lookup a want)
        looked.clear()
        git_pack._named(store, [], wants)
        assert len(looked) <= 3 * len(tags)  # (the chain past MAX_PEEL, the one within it, a lookup a want)
        read: list[bytes] = []
        get_raw = store.get_raw

        def counted_get_raw(oid: bytes) -> tuple[int, bytes]:
            read.append(oid)
            return get_raw(oid)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "get_raw", counted_get_raw)
        ends = git_pack.peel_many(store, wants, None)
        assert ends == {**dict.fromkeys(wants, main), ObjectId(tags[MAX_PEEL]): tags[MAX_PEEL]}
        assert len(read) <= 3 * len(tags)
    finally:
        opened.close()
