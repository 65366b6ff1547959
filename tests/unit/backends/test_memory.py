from __future__ import annotations

from pathlib import Path

from backends.interfaces import Backend
from backends.memory import MemoryBackend
from tests.unit.backends.contract import BackendContract


class TestMemoryBackend(BackendContract):
    def make_backend(self, root: Path) -> Backend:
        return MemoryBackend(str(root))
