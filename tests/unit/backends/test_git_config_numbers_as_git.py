"""Numbers and booleans of a git config read as git 2.39 reads them (``git config --int`` /
``--bool``: C's ``strtoimax`` of base 0 and a unit; a number's range is its setting's, not
checked here, a boolean's is git's ``int``): ``0x100000`` is hexadecimal and ``010`` octal there,
so ``receive.maxInputSize = 0x100000`` refused every push ("bad numeric config value") where git
takes 1 MiB, and ``1_000`` (Python's digit grouping) was read where git refuses it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backends.git import ConfigValueError, _git_bool, _git_int

FORMS = ["0", "1", "10", "-3", "+7", "010", "08", "0x10", "0X1f", "0x", "0x1k", "1k", "2M", "3g", "1_000",
         "1__0", "k", "", "1kb", " 12", "-0x10", "2g", "8g", "9223372036854775807", "0b101", "1e3", "１２"]


def _git(tmp_path: Path, kind: str, value: str) -> str | None:
    config = tmp_path / "config"
    config.write_text(f'[core]\n\tx = "{value}"\n', encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "config", "--file", str(config), kind, "core.x"], capture_output=True,
                          text=True, env=env, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.mark.parametrize("form", FORMS)
def test_a_number_is_read_as_git_reads_it(tmp_path: Path, form: str) -> None:
    theirs = _git(tmp_path, "--int", form)
    try:
        ours: str | None = str(_git_int(form.encode(), "core.x", 0))
    except ConfigValueError:
        ours = None
    assert ours == theirs, (form, theirs)


EDGES = ["12 ", "1k ", "-2147483648", "-2147483647", "2147483647", "2147483648", "-2g", "-1g", "1g",
         " true", "true ", " 0"]
"""A boolean's ``int`` ends as git's ``git_parse_signed`` ends it (``-2147483648`` and ``-2g`` are
out of its range: it takes as much below 0 as above), and a quoted value's trailing space is not a
unit git knows."""


@pytest.mark.parametrize("form", EDGES)
def test_a_numbers_edges_are_read_as_git_reads_them(tmp_path: Path, form: str) -> None:
    test_a_number_is_read_as_git_reads_it(tmp_path, form)
    test_a_boolean_is_read_as_git_reads_it(tmp_path, form)


@pytest.mark.parametrize("form", [*FORMS, "true", "Yes", "off", "NO", "8589934592g"])
def test_a_boolean_is_read_as_git_reads_it(tmp_path: Path, form: str) -> None:
    theirs = _git(tmp_path, "--bool", form)
    try:
        ours: str | None = "true" if _git_bool(form.encode(), "core.x") else "false"
    except ConfigValueError:
        ours = None
    assert ours == theirs, (form, theirs)
