"""Starting the service imports what the libraries would otherwise import in the first request."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from gateway.service import FIRST_USE_IMPORTS

ROOT = Path(__file__).resolve().parents[3]


def test_start_imports_the_modules_a_first_request_would() -> None:
    # A fresh interpreter: in this one, other tests have long imported them.
    script = textwrap.dedent(f"""
        import sys
        from backends import load_backend
        from gateway.config import ServiceConfig
        from gateway.service import build_service
        from twisted.internet import reactor

        wanted = {FIRST_USE_IMPORTS!r}
        before = [name for name in wanted if name in sys.modules]
        service = build_service(ServiceConfig(backend=load_backend("memory", "."), root="."))
        service.startService()
        after = [name for name in wanted if name not in sys.modules]
        service.stopService()
        reactor.fireSystemEvent("shutdown")
        print(before, after)
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # None imported before the start (else this test proves nothing), none missing after it.
    assert done.stdout.split("\n")[0] == "[] []"
