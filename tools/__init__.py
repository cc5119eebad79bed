"""The ``driftloop`` command line: local Kafka, topics, worker, learner, demo, operators."""

from __future__ import annotations

from .errors import ToolsError

__all__ = ["ToolsError"]
