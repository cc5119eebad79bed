"""driftloop's learner: LoRA training per request, the gate, the artifact store, versions.

Never imports Faust: it talks to the stream side only through ``schemas`` and Kafka.
The main names are re-exported lazily: ``from driftloop.learner import VersionLog`` stays
cheap for the command line, and torch loads only when a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import LearnerError

__all__ = [
    "ArtifactStore",
    "ChallengeSuite",
    "GateRule",
    "IncrementalUpdater",
    "LearnerError",
    "LearnerService",
    "ParaphraseSet",
    "PromptTemplate",
    "ResidentModels",
    "VersionLog",
]

_LAZY = {
    "ArtifactStore": "store",
    "ChallengeSuite": "challenges",
    "GateRule": "gate",
    "IncrementalUpdater": "update",
    "LearnerService": "service",
    "ParaphraseSet": "paraphrases",
    "PromptTemplate": "prompts",
    "ResidentModels": "models",
    "VersionLog": "registry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
