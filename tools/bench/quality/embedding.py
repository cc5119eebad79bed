"""Sentence embeddings as serving reports them: a first version's pooled encoder output.

The active-learning part of ``bench quality`` fits its heads on these (what the worker's
sampler sees with each interaction). The version is trained with the learner's own update
on a balanced sample of tweets, with driftloop's default settings.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ....schemas.enums import TriggerKind
from ....schemas.events import TrainingExample, TrainingRequest
from ...demo.traffic import LABELS
from ...demo.vader import balanced_sample, read_domain
from .live_bench import live_settings
from .live_loop import TASK

__all__ = ["BootstrapEmbedder"]


class BootstrapEmbedder:
    """Embed texts with a version trained on ``bootstrap`` tweets (seeded); ``close()`` frees
    the model and the store."""

    def __init__(self, *, seed: int = 0, bootstrap: int = 128,
                 torch_threads: int | None = None) -> None:
        from ....learner.registry.version_log import VersionLog
        from ....learner.serving.model_host import ModelHost
        from ....learner.training.update import IncrementalUpdater

        self._store = Path(tempfile.mkdtemp(prefix="driftloop-embedder-"))
        updater = IncrementalUpdater(live_settings(LABELS, self._store,
                                                   torch_threads=torch_threads))
        examples = [TrainingExample(input=e.text, target=e.label, domain=e.domain)
                    for e in balanced_sample(read_domain("tweets"), bootstrap, seed=seed)]
        event = updater.update(TrainingRequest(
            id=f"embedder-{seed}", ts=0.0, task=TASK, trigger=TriggerKind.MANUAL,
            labels=list(LABELS), examples=examples), VersionLog()).event
        self.host = ModelHost(updater.models)
        folder = updater.store.fetch(event.adapter_uri, event.sha256, self._store / "fetched")
        self.host.load(TASK, event.version_id, folder, event.base_model)
        self.version = event.version_id

    def embed(self, texts: Sequence[str], *, batch: int = 64) -> Any:
        """An (n, dim) float32 array of the texts' pooled embeddings."""
        import numpy as np

        rows: list[list[float]] = []
        for start in range(0, len(texts), batch):
            rows += [p.embedding for p in self.host.predict(
                TASK, self.version, list(texts[start:start + batch]))]
        return np.asarray(rows, dtype=np.float32)

    def close(self) -> None:
        self.host.close()
        shutil.rmtree(self._store, ignore_errors=True)
