"""Option values a new operator gives by mistake, each refused in one line that says what to give,
exit status 1, before anything is made."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.test_cli import TWISTD


def test_an_empty_root_is_told_so(tmp_path: Path) -> None:
    """``--root=`` (or ``--root "$REPOS"`` with the variable unset) said "--root  cannot be made (No
    such file or directory)", naming nothing."""
    result = subprocess.run([TWISTD, "-n", "--pidfile=", "hgwire", "--root=", "--git", "tcp:0:interface=127.0.0.1"],
                            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert output == ("twistd hgwire: --root is empty; give the directory of the repositories (made if missing), "
                      "e.g. --root /srv/repos"), output
    assert not list(tmp_path.iterdir())
