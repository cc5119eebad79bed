"""Loading a published version into a replica's :class:`~.model_host.ModelHost`, or saying
why it cannot be.

The adapter is fetched from the content-addressed store, its sha256 verified against the
event, and loaded under its version name; the verified local copy is deleted once the
weights are in memory. Only PEFT safetensors adapters are served, never pickles. Whatever
stops a version from loading (a missing or corrupt artifact, another format, a safetensors
file the loader chokes on) becomes a refusal reason, never an exception that would stop
the replica from following versions.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...schemas.events import ModelVersion
from ...schemas.settings import Settings
from ..errors import LearnerError, UnservableAdapterError
from ..registry.store import ArtifactStore
from ..trust import Trust
from .adapter_host import AdapterHost

__all__ = ["SUPPORTED_FORMATS", "AdapterLoader", "LoadResult", "serving_store"]

log = logging.getLogger(__name__)

SUPPORTED_FORMATS = frozenset({"peft-lora-safetensors"})


@dataclass(frozen=True, slots=True)
class LoadResult:
    """How a load went: the seconds it took (fetch and verification included), or why the
    version was refused."""

    seconds: float = 0.0
    refused: str | None = None
    fetch_seconds: float = 0.0
    """Of :attr:`seconds`, the fetch from the store and the sha256 check."""


class AdapterLoader:
    """Loads versions into a host and unloads the ones no longer kept.

    Examples
    --------
    >>> import asyncio, tempfile
    >>> from driftloop.learner.models.resident import ResidentModels
    >>> from driftloop.learner.serving.model_host import ModelHost
    >>> host = ModelHost(ResidentModels(capacity=1))
    >>> loader = AdapterLoader(ArtifactStore(tempfile.mkdtemp()), host)
    >>> event = ModelVersion(version_id="v1", ts=1.0, task="t", base_model="m",
    ...                      adapter_uri="file:///s/" + "0" * 64, sha256="0" * 64,
    ...                      size_bytes=1, status="promoted", format="pytorch-pickle")
    >>> asyncio.run(loader.load(event)).refused
    "format 'pytorch-pickle' is not one of ['peft-lora-safetensors']"
    >>> host.close()
    """

    def __init__(self, store: ArtifactStore, host: AdapterHost, *,
                 trust: Trust | None = None) -> None:
        self.store = store
        self.host = host
        self.trust = trust
        """The deployment's trust policy; None loads any base model (a library user's own
        checks)."""
        self._host_takes_then = "then" in inspect.signature(host.aload).parameters

    async def load(self, event: ModelVersion, *,
                   then: Callable[[], None] | None = None) -> LoadResult:
        """Make ``event``'s adapter servable (no-op when loaded already), or refuse it.

        ``then`` is handed to a host whose ``aload`` takes it (:class:`.ModelHost` runs it on
        its thread right after the load); the caller does its work again afterwards anyway,
        which must be harmless (a second promote of the same version is).
        """
        try:
            return await self._load(event, then)
        except (LearnerError, OSError) as exc:
            return LoadResult(refused=str(exc))
        except Exception as exc:
            # A verified artifact that still breaks the loader (safetensors with a bad
            # header, a config PEFT chokes on): refuse it, never stop following versions.
            log.exception("%s: loading %s failed", event.task, event.version_id)
            return LoadResult(refused=f"{type(exc).__name__}: {exc}")

    async def _load(self, event: ModelVersion, then: Callable[[], None] | None) -> LoadResult:
        if event.version_id in self.host.versions(event.task):
            return LoadResult()
        if self.trust is not None:
            self.trust.check_version(event)  # before any byte is fetched or loaded
        if event.format not in SUPPORTED_FORMATS:
            raise UnservableAdapterError(f"format {event.format!r} is not one of "
                                         f"{sorted(SUPPORTED_FORMATS)}")
        started = time.perf_counter()
        folder = await asyncio.to_thread(self.store.fetch, event.adapter_uri, event.sha256)
        fetched = time.perf_counter()
        try:
            if then is not None and self._host_takes_then:
                await self.host.aload(event.task, event.version_id, folder, event.base_model,
                                      then=then)  # type: ignore[call-arg]
            else:
                await self.host.aload(event.task, event.version_id, folder, event.base_model)
        finally:
            # The weights are in memory now; the verified copy is not needed any more.
            shutil.rmtree(folder.parent, ignore_errors=True)
        return LoadResult(seconds=time.perf_counter() - started, fetch_seconds=fetched - started)

    async def keep_only(self, task: str, keep: set[str]) -> list[str]:
        """Unload every version of ``task`` outside ``keep``; return the ones unloaded."""
        dropped = await self.host.aevict(task, keep)
        if dropped:
            log.info("%s: unloaded %s", task, ", ".join(dropped))
        return dropped


def serving_store(settings: Settings) -> ArtifactStore:
    """The artifact store a replica fetches from, with its local cache folder created."""
    cache_dir: Path = settings.serving.cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    return ArtifactStore(settings.artifacts.store_url,
                         allowed_schemes=settings.artifacts.allowed_schemes,
                         max_bytes=settings.artifacts.max_artifact_bytes, cache_dir=cache_dir)
