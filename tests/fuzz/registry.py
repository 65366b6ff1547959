"""Every fuzz target by name: the smoke test and ``tests.fuzz.run`` both read this table."""

from __future__ import annotations

import importlib

from .harness import Target

MODULES = {
    "pktline": "fuzz_pktline",
    "git_request": "fuzz_git_request",
    "git_upload": "fuzz_git_upload",
    "git_v2": "fuzz_git_v2",
    "git_receive": "fuzz_git_receive",
    "git_proc_receive": "fuzz_git_proc_receive",
    "ssh_exec": "fuzz_ssh_exec",
    "ssh_packets": "fuzz_ssh_packets",
    "hg_ssh": "fuzz_hg_ssh",
    "hg_wire": "fuzz_hg_wire",
    "bundle2": "fuzz_bundle2",
    "changegroup": "fuzz_changegroup",
    "mpatch": "fuzz_mpatch",
    "revlog": "fuzz_revlog",
    "store": "fuzz_store",
    "names": "fuzz_names",
    "hg_http": "fuzz_hg_http",
    "proxy_header": "fuzz_proxy_header",
    "hg_obsmarkers": "fuzz_hg_obsmarkers",
    "git_lfs": "fuzz_git_lfs",
    "git_dotfiles": "fuzz_git_dotfiles",
    "hg_push": "fuzz_hg_push",
    "linediff": "fuzz_linediff",
    "revset": "fuzz_revset",
    "hg_narrow": "fuzz_hg_narrow",
    "git_ingest": "fuzz_git_ingest",
}
"""Target name -> harness module in this package; add a row per parser."""


def load(name: str) -> Target:
    target: Target = importlib.import_module(f"{__package__}.{MODULES[name]}").TARGET
    return target
