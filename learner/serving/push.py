"""``driftloop push``: promoted adapters pushed into another server through vLLM's runtime
adapter API, so vLLM itself (``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) or a driftloop replica
hot-swaps what the loop promotes.

:class:`PushHost` is an :class:`~.adapter_host.AdapterHost`: the adapter subscriber follows
``model-versions``, fetches and verifies each adapter (sha256, trusted base model, signature)
and hands the verified folder to :meth:`PushHost.aload`, which copies it to ``staging`` (a
folder the target can read: the same machine or a shared volume) and asks the target to load
it under the version id; versions no longer kept (``serving.keep_versions``; a rollback) are
unloaded. The subscriber publishes a ``ServingAck`` per target like any replica.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import aiohttp

from ..errors import ServingError

__all__ = ["PushHost"]

log = logging.getLogger(__name__)


class PushHost:
    """Loads and unloads adapters in a server that speaks vLLM's runtime adapter API.

    Parameters
    ----------
    target
        The server's base URL (``http://host:port``).
    staging
        Where verified adapter folders are copied for the target to read.
    timeout
        Seconds a load or unload request may take.

    Examples
    --------
    >>> import tempfile
    >>> host = PushHost("http://127.0.0.1:8000", Path(tempfile.mkdtemp()))
    >>> host.versions("sentiment"), host.target
    ([], 'http://127.0.0.1:8000')
    """

    def __init__(self, target: str, staging: Path, *, timeout: float = 120.0) -> None:
        self.target = target.rstrip("/")
        self.staging = staging
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._loaded: dict[str, list[str]] = {}

    def versions(self, task: str) -> list[str]:
        return list(self._loaded.get(task, []))

    async def _post(self, path: str, body: dict[str, str]) -> str:
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            async with session.post(f"{self.target}{path}", json=body) as response:
                text = await response.text()
                if response.status != 200:
                    raise ServingError(f"{self.target}{path} answered {response.status}: "
                                       f"{text[:500]}")
                return text

    async def aload(self, task: str, version_id: str, folder: Path,
                    base_model_id: str) -> float:
        started = time.perf_counter()
        staged = self.staging / version_id
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(folder, staged)  # the subscriber deletes its verified copy
        try:
            await self._post("/v1/load_lora_adapter", {"lora_name": version_id,
                                                       "lora_path": str(staged),
                                                       "task": task})
        except (aiohttp.ClientError, TimeoutError) as exc:
            shutil.rmtree(staged, ignore_errors=True)
            raise ServingError(f"{self.target}: loading {version_id} failed: {exc}") from exc
        except ServingError:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        self._loaded.setdefault(task, []).append(version_id)
        log.info("%s: %s loaded into %s", task, version_id, self.target)
        return time.perf_counter() - started

    async def aevict(self, task: str, keep: set[str]) -> list[str]:
        dropped = [v for v in self._loaded.get(task, []) if v not in keep]
        for version_id in dropped:
            try:
                await self._post("/v1/unload_lora_adapter", {"lora_name": version_id})
            except (ServingError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("%s: unloading %s from %s failed: %s", task, version_id,
                            self.target, exc)
                continue
            self._loaded[task].remove(version_id)
            shutil.rmtree(self.staging / version_id, ignore_errors=True)
        return [v for v in dropped if v not in self._loaded.get(task, [])]
