"""The light side of driftloop: what a producer or a serving team needs, without torch or Faust.

:mod:`.kafka` builds the Kafka clients every driftloop process uses from one
:class:`~driftloop.schemas.settings.Settings`, and reads topic metadata and whole topics;
:mod:`.publisher` sends a service's interactions and feedback keyed by task, in batch
envelopes. ``pip install driftloop`` (no extras) is enough for both.
It sits below ``streams``, ``learner`` and ``tools``, above ``schemas``.
"""

from __future__ import annotations

from .kafka import (
    admin_client,
    new_consumer,
    new_producer,
    read_to_end_offsets,
    topic_partitions,
)
from .publisher import Publisher, PublishError, envelopes

__all__ = ["PublishError", "Publisher", "admin_client", "envelopes", "new_consumer",
           "new_producer", "read_to_end_offsets", "topic_partitions"]
