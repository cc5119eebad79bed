"""driftloop's learner: LoRA training per request, the gate, the artifact store, versions.

Never imports Faust: it talks to the stream side only through ``schemas`` and Kafka.
"""

from __future__ import annotations

from .errors import LearnerError

__all__ = ["LearnerError"]
