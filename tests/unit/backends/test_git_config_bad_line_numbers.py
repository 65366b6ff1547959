"""The line a config file's refusal names ("bad config line N in file config") is the one git
names: that of the byte git's parser stops at.  A value continued over lines was named by the
line its setting began on, so the person told to fix line 2 looked for a fault on line 4."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from backends.git_dotfiles import ConfigSyntaxError, config_entries

FORMS = [
    b"[s]\n\tk = a\\\n\\q\n",
    b"[s]\n\tk = a\\\nb\\\nc\\q\n",
    b"[s]\n\tk = \"x\\\ny\n",
    b"[s]\n\tk = \"abc\n\tj = 1\n",
    b"[s]\n\tk\\\n = 1\n",
    b"[s \"a\n",
    b"[s]\n\tok = 1\n\tk = a\\\n  b\\\n  c\n\tbad key = 1\n",
    b"[s]\n\tk = 1\n[t \"u\" ]\n",
]


def _git_line(tmp_path: Path, data: bytes) -> int:
    config = tmp_path / "config"
    config.write_bytes(data)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "config", "--list", "--file", str(config)], capture_output=True, env=env,
                          check=False)
    found = re.search(rb"bad config line (\d+)", done.stderr)
    assert done.returncode != 0 and found is not None, done.stderr
    return int(found.group(1))


@pytest.mark.parametrize("data", FORMS)
def test_the_line_named_is_the_one_git_names(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ConfigSyntaxError) as refused:
        for _ in config_entries(data):
            pass
    assert refused.value.line == _git_line(tmp_path, data)
