"""What the adapter subscriber drives: anything that loads a verified adapter folder as a
version of a task, and evicts the versions no longer kept.

Two implementations ship: :class:`~.model_host.ModelHost` (driftloop's PyTorch host inside
``driftloop serve``) and :class:`~.push.PushHost` (``driftloop push``: another server, vLLM or
a driftloop replica, through vLLM's runtime adapter API). A third is a class with these
three methods; the subscriber fetches and verifies each adapter (sha256, trust) before
``aload`` and deletes its copy afterwards, so a host that reads the folder later must copy it.

Examples
--------
A host that only records what it was told (the shape of a third implementation):

>>> import asyncio
>>> from pathlib import Path
>>> class Recording:
...     def __init__(self): self.loaded = {}
...     def versions(self, task): return list(self.loaded.get(task, []))
...     async def aload(self, task, version_id, folder, base_model_id):
...         self.loaded.setdefault(task, []).append(version_id); return 0.0
...     async def aevict(self, task, keep):
...         gone = [v for v in self.loaded.get(task, []) if v not in keep]
...         self.loaded[task] = [v for v in self.loaded.get(task, []) if v in keep]
...         return gone
>>> host: AdapterHost = Recording()
>>> asyncio.run(host.aload("t", "v1", Path("/tmp/v1"), "m")), host.versions("t")
(0.0, ['v1'])
>>> isinstance(host, AdapterHost)
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["AdapterHost"]


@runtime_checkable
class AdapterHost(Protocol):
    """Loads verified adapter folders as versions of tasks; evicts what is not kept."""

    def versions(self, task: str) -> list[str]:
        """Versions of ``task`` loaded now, oldest first."""
        ...

    async def aload(self, task: str, version_id: str, folder: Path,
                    base_model_id: str) -> float:
        """Load ``folder`` (verified) as ``version_id`` of ``task``; the seconds it took."""
        ...

    async def aevict(self, task: str, keep: set[str]) -> list[str]:
        """Unload every version of ``task`` outside ``keep``; the ones unloaded."""
        ...
