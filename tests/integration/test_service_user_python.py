"""``twistd --uid USER hgwire`` started as root, from a Python USER may not read (a pyenv build in
root's home, ``/root`` mode 700).  Everything imported before the switch works; the first module
imported after it failed with a 30-line traceback ending ``ModuleNotFoundError: No module named
'email.policy'``, which says nothing of users or rights.  It is one line now that says what to do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.test_cli import TWISTD


def _readable_by_nobody(path: str) -> bool:
    return subprocess.run(["runuser", "-u", "nobody", "--", "test", "-r", path, "-a", "-x", path],
                          check=False).returncode == 0


def test_a_python_the_service_s_user_may_not_read_is_one_line(tmp_path: os.PathLike[str]) -> None:
    stdlib = os.path.dirname(os.__file__)
    if os.geteuid() != 0 or _readable_by_nobody(stdlib):
        pytest.skip(f"needs root and a Python ({sys.executable}) whose library nobody may not read")
    done = subprocess.run([TWISTD, "-n", "--pidfile=", "--uid", "nobody", "--gid", "nogroup", "hgwire", "--root",
                           f"{tmp_path}/repos", "--git", "tcp:0:interface=127.0.0.1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert (f"nobody, the service's user, may not read Python's own library {stdlib}, so hgwire cannot "
            "run as that user: run twistd from a virtual environment made from a Python every user may "
            "run (/usr/bin/python3 -m venv …)") in said, said
    assert "Traceback" not in said, said
