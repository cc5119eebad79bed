"""Serving fixtures: probe adapters made once per session from the resident MiniLM.

A probe is a real PEFT adapter written by the learner's save path whose head favours one
label, so ``/predict`` tells which version answered (see ``learner/serving/probe.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import LABELS

from driftloop.learner.serving import write_probe_adapter


@pytest.fixture(scope="session")
def probes(minilm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Adapter folders by name: ``neg`` and ``pos`` favour a label; ``neg2`` is another
    negative one (different weights, so a different sha256)."""
    root = tmp_path_factory.mktemp("probes")
    made = {}
    for name, favour, seed in (("neg", "negative", 1), ("pos", "positive", 2),
                               ("neg2", "negative", 3)):
        made[name] = write_probe_adapter(minilm, root / name, version_id=name, labels=LABELS,
                                         favour=favour, seed=seed)
    return made
