"""``[experimental] server.allow-hidden-access`` names users as logins name them (NFC), as the hgrc's
``[web]`` lists are read (``hg_http.check_web_access``): ``josé`` however the file composes it."""

from __future__ import annotations

from pathlib import Path

from backends.hg import create_repository, open_repository


def test_a_user_the_hgrc_names_decomposed_is_granted_hidden_access(tmp_path: Path) -> None:
    path = str(tmp_path / "r")
    create_repository(path, "r")
    (tmp_path / "r" / ".hg" / "hgrc").write_text("[experimental]\nserver.allow-hidden-access = bob, jose\u0301\n",
                                                 encoding="utf-8")
    repo = open_repository(path, "r")
    assert repo.allows_hidden_access("jos\u00e9")  # the login, composed (auth.plain_user)
    assert repo.allows_hidden_access("bob") and not repo.allows_hidden_access("jose")
    assert not repo.allows_hidden_access(None)
