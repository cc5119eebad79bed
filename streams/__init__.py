"""driftloop's stream side: the Faust worker, drift detectors, buffers, triggers.

Never imports torch, transformers or peft: workers scale out on CPUs.
"""

from __future__ import annotations

from .errors import StreamsError

__all__ = ["StreamsError"]
