"""A write the server's disk refused tells the person what to do: wait for what may pass (a full
disk, a quota), not for what lasts until the operator acts (a permission, a read-only mount)."""

from __future__ import annotations

import errno

import pytest

from backends.blobs import NotStored
from backends.hg.writer import not_stored
from protocols.errors import storage_advice


@pytest.mark.parametrize(("code", "advice"), [
    (errno.ENOSPC, "try again later or tell the server's operator"),
    (errno.EDQUOT, "try again later or tell the server's operator"),
    (errno.EIO, "try again later or tell the server's operator"),
    (errno.EACCES, "tell the server's operator"),
    (errno.EPERM, "tell the server's operator"),
    (errno.EROFS, "tell the server's operator"),
])
def test_only_a_refusal_that_may_pass_says_to_try_again(code: int, advice: str) -> None:
    refused = OSError(code, "refused")
    assert storage_advice(refused) == advice
    assert str(NotStored(refused)).endswith(f"nothing was kept, {advice}")
    assert str(not_stored(refused)).endswith(f"nothing was changed, {advice}")
