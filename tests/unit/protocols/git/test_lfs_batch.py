"""The Git LFS Batch API as JSON in, JSON out; the LFS routes; the object store's checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.lfs import LfsObjectRefused, LfsStore
from gateway.http import Route, RouteKind, route
from protocols import git_lfs
from protocols.errors import ProtocolError

OID = hashlib.sha256(b"abc").hexdigest()


def _answer(operation: str, objects: list[dict[str, object]], held: dict[str, int]) -> dict[str, object]:
    request = git_lfs.parse_batch(json.dumps({"operation": operation, "objects": objects}).encode())
    body = git_lfs.batch_response(request, held.get, lambda oid: "https://h/r.git/info/lfs/objects/" + oid,
                                  {"Authorization": "Basic x"})
    return json.loads(b"".join(body))


def test_uploads_get_an_action_only_for_what_the_server_lacks() -> None:
    other = "b" * 64
    answer = _answer("upload", [{"oid": OID, "size": 3}, {"oid": other, "size": 5}], {OID: 3})
    first, second = answer["objects"]  # type: ignore[index]
    assert first == {"oid": OID, "size": 3}
    assert second["actions"]["upload"] == {"href": "https://h/r.git/info/lfs/objects/" + other,
                                           "header": {"Authorization": "Basic x"}, "expires_in": 3600}
    assert answer["transfer"] == "basic"


def test_downloads_get_an_action_or_a_404() -> None:
    answer = _answer("download", [{"oid": OID, "size": 3}, {"oid": "c" * 64, "size": 1}, {"oid": "x", "size": 1}],
                     {OID: 3})
    found, missing, bad = answer["objects"]  # type: ignore[misc]
    assert found["actions"]["download"]["href"].endswith(OID)
    assert missing["error"] == {"code": 404, "message": "Object does not exist"}
    assert bad["error"]["code"] == 422


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 422), (b"[]", 422), (b'{"operation": "delete", "objects": []}', 422),
    (b'{"operation": "upload"}', 422), (b'{"operation": "upload", "objects": [{"oid": "a"}]}', 422),
    (b'{"operation": "upload", "objects": [{"oid": "a", "size": -1}]}', 422),
    (b'{"operation": "upload", "objects": [{"oid": "a", "size": true}]}', 422),
    (b'{"operation": "upload", "hash_algo": "sha512", "objects": []}', 409),
    (b'{"operation": "upload", "transfers": ["tus"], "objects": []}', 422),
    (b'{"operation": "upload", "objects": ' + b"[" * 100000 + b"]" * 100000 + b"}", 422),  # too deep
    (b" " * (git_lfs.MAX_BATCH_BODY + 1), 413),
])
def test_malformed_batch_requests_are_refused_with_the_apis_status(body: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as refused:
        git_lfs.parse_batch(body)
    assert refused.value.http_status == status


def test_a_batch_of_a_whole_hg_push_is_answered_a_piece_at_a_time() -> None:
    """hg's client asks about every object of a push in one request (json.dumps' own spacing):
    30,000 objects (three times the old bound) are taken, and the answer comes in pieces of tens of KiB, not one string."""
    oids = [hashlib.sha256(b"%d" % index).hexdigest() for index in range(30_000)]
    body = json.dumps({"objects": [{"oid": oid, "size": 10} for oid in oids], "operation": "upload"}).encode()
    request = git_lfs.parse_batch(body)
    pieces = list(git_lfs.batch_response(request, lambda oid: None, lambda oid: "https://h/r/.git/info/lfs/objects/"
                                         + oid, {"Authorization": "Basic x"}))
    assert len(pieces) > 20 and max(map(len, pieces)) < 128 << 10
    answer = json.loads(b"".join(pieces))
    assert [entry["oid"] for entry in answer["objects"]] == oids
    assert all(entry["actions"]["upload"]["href"].endswith(entry["oid"]) for entry in answer["objects"])


def test_a_batch_over_the_bound_says_what_to_do() -> None:
    with pytest.raises(ProtocolError) as refused:
        git_lfs.parse_batch(b'{"operation": "upload", "objects": [' + b",".join([b"{}"] * 500_001) + b"]}")
    assert refused.value.http_status == 413
    assert str(refused.value) == ("more than 500000 objects in one batch request; send fewer at a time (with hg, "
                                  "push fewer changesets at once: hg push -r REV)")


@given(st.binary(max_size=300))
def test_any_body_is_parsed_or_refused_cleanly(body: bytes) -> None:
    try:
        git_lfs.parse_batch(body)
    except ProtocolError:
        pass


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("POST", "team/app.git/info/lfs/objects/batch", Route(RouteKind.GIT_LFS_BATCH, "team/app.git")),
    ("PUT", "app.git/info/lfs/objects/" + OID, Route(RouteKind.GIT_LFS_OBJECT, "app.git", OID)),
    ("GET", "app.git/info/lfs/objects/" + OID, Route(RouteKind.GIT_LFS_OBJECT, "app.git", OID)),
    ("POST", "app.git/info/lfs/locks/verify", Route(RouteKind.GIT_LFS_LOCKS, "app.git", "locks/verify")),
    ("POST", "team/hgrepo/.git/info/lfs/objects/batch", Route(RouteKind.GIT_LFS_BATCH, "team/hgrepo")),  # hg's lfs
])
def test_lfs_paths_route_to_their_handlers(method: str, path: str, expected: Route) -> None:
    assert route(method, path.split("/"), {}) == expected


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "app.git/info/lfs/objects/batch", 405), ("DELETE", "app.git/info/lfs/objects/" + OID, 405),
    ("GET", "../x/info/lfs/objects/batch", 404), ("GET", "app.git/info/lfs/other", 404),
    ("POST", ".git/info/lfs/objects/batch", 404),
])
def test_other_lfs_paths_are_refused(method: str, path: str, status: int) -> None:
    assert route(method, path.split("/"), {}).status == status


def test_the_store_keeps_only_what_an_upload_says_it_is(tmp_path: Path) -> None:
    store = LfsStore(str(tmp_path))
    for oid, size, data, why in [(OID, 3, [b"abd"], "do not match its hash"), (OID, 2, [b"ab", b"c"], "larger"),
                                 (OID, 4, [b"abc"], "not the 4"), ("../../config", 3, [b"abc"], "SHA-256")]:
        with pytest.raises(LfsObjectRefused, match=why):
            store.put(oid, size, data)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    store.put(OID, 3, [b"a", b"bc"])
    assert store.size(OID) == 3 and store.size("d" * 64) is None and store.size("../x") is None
    found = store.open(OID)
    assert found is not None and found[0] == 3 and b"".join(found[1]) == b"abc"
    assert (tmp_path / "lfs" / "objects" / OID[:2] / OID[2:4] / OID).read_bytes() == b"abc"


def test_tokens_open_only_what_they_were_issued_for() -> None:
    from gateway.auth import Access
    from gateway.git_lfs import check_token, issue_token
    from gateway.http import Unauthorized

    now = 1_700_000_000.0
    key = b"k" * 32
    upload = issue_token("alice", "team/media.git", Access.WRITE, key, now)
    assert check_token(upload, "team/media", Access.WRITE, key, now + 60) == "alice"  # with or without .git
    assert check_token(upload, "team/media.git", Access.READ, key, now) == "alice"  # an upload token reads too
    download = issue_token(None, "team/media.git", Access.READ, key, now)
    assert check_token(download, "team/media.git", Access.READ, key, now) is None  # anonymous
    refusals = [(download, "team/media.git", Access.WRITE, now, "another repository or operation"),
                (upload, "team/other.git", Access.READ, now, "another repository or operation"),
                (upload, "team/media.git", Access.READ, now + 3600, "expired"),
                (upload[:-1] + ("0" if upload[-1] != "0" else "1"), "team/media.git", Access.READ, now, "not one"),
                (upload.replace("hgwire-lfs.", "hgwire-lfs.x"), "team/media.git", Access.READ, now, "not one")]
    for token, repo, access, when, why in refusals:
        with pytest.raises(Unauthorized, match=why):
            check_token(token, repo, access, key, when)
    with pytest.raises(Unauthorized, match="not one"):  # another service's key
        check_token(upload, "team/media.git", Access.READ, b"x" * 32, now)


def test_the_token_key_is_kept_under_the_root_and_shared(tmp_path: Path) -> None:
    """Made once (0600), read by every later service on the root; a broken file: a key of the
    process, logged, not a crash."""
    from gateway.git_lfs import TOKEN_KEY_NAME, load_token_key

    first = load_token_key(str(tmp_path))
    assert len(first) == 32 and load_token_key(str(tmp_path)) == first
    path = tmp_path / TOKEN_KEY_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("not hex\n")
    fallback = load_token_key(str(tmp_path))
    assert len(fallback) == 32 and fallback != first and load_token_key(str(tmp_path)) != fallback
    assert len(load_token_key(str(tmp_path / "missing" / "dir"))) == 32


def test_the_public_url_is_read_from_the_config_file() -> None:
    from gateway.policy import PolicyError, parse_policy

    assert parse_policy('[http]\npublic_url = "https://git.example.com/"\n', "x.toml").public_url == \
        "https://git.example.com"
    assert parse_policy("", "x.toml").public_url is None
    for bad in ('"git.example.com"', '"ftp://x"', '"https://x/ y"'):
        with pytest.raises(PolicyError, match="http.public_url"):
            parse_policy(f"[http]\npublic_url = {bad}\n", "x.toml")
