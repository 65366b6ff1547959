"""A raw directory listing (hgweb's raw style, for hg and git repositories): a git tree's name with
a newline or another control byte cannot forge a line of it."""

from __future__ import annotations

from backends.hg.archive import raw_listing


def test_a_name_s_control_bytes_are_escaped_in_the_listing() -> None:
    listing = raw_listing([b"d\nx"], [(b"", 3, b"x\n-rw-r--r-- 5 fake"), (b"x", 1, b"run.sh"), (b"", 2, b"a.txt")])
    text = b"".join(listing.chunks)
    assert text == (b"\ndrwxr-xr-x d\\x0ax\n-rw-r--r-- 3 x\\x0a-rw-r--r-- 5 fake\n-rwxr-xr-x 1 run.sh\n"
                    b"-rw-r--r-- 2 a.txt\n\n\n")
    assert text.count(b"\n-rw") == 3
