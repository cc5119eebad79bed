"""driftloop's learner: LoRA training per request, the gate, the artifact store, versions.

Rooms by role: :mod:`.models` (base models, adapters, task models, prompts),
:mod:`.training` (the update and its strategies), :mod:`.gate` (what a candidate is judged
on), :mod:`.registry` (version log, artifact store), :mod:`.topics` (its Kafka topics),
:mod:`.federated` and :mod:`.serving`; the process itself is :mod:`.service`.

Never imports Faust: it talks to the stream side only through ``schemas`` and Kafka.
The main names are re-exported lazily: ``from driftloop.learner import VersionLog`` stays
cheap for the command line, and torch loads only when a name that needs it is used.
"""

from __future__ import annotations

from .errors import LearnerError
from .lazy import lazy_exports

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
    "ArtifactStore": "registry",
    "ChallengeSuite": "gate",
    "GateRule": "gate",
    "IncrementalUpdater": "training",
    "LearnerService": "service",
    "ParaphraseSet": "gate",
    "PromptTemplate": "models",
    "ResidentModels": "models",
    "VersionLog": "registry",
}

__getattr__ = lazy_exports(__name__, _LAZY)
