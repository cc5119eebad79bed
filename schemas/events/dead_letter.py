"""A record driftloop could not process, kept whole: nothing is dropped silently.

Examples
--------
>>> DeadLetter(ts=6.0, source_topic="feedback", partition=1, offset=7, reason="invalid_command",
...            error="command must be a JSON object", payload_b64="W10=", payload_size=2).reason
<DeadLetterReason.INVALID_COMMAND: 'invalid_command'>
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..enums import DeadLetterReason
from ..fields import Base64, Count, Flag, Name, Text, Timestamp, WholeNumber
from .base import Event

__all__ = ["DeadLetter"]


class DeadLetter(Event):
    """A record driftloop could not process, kept whole so nothing is dropped silently.

    ``payload_b64`` holds the raw bytes (base64), cut to a bound; ``payload_size`` is the
    size before the cut. ``event_index`` locates a bad event inside a batch envelope.

    Examples
    --------
    >>> from driftloop.schemas import DeadLetter
    >>> DeadLetter(ts=6.0, source_topic="interactions", partition=0, offset=42,
    ...            reason="invalid_json", error="payload is not valid JSON",
    ...            payload_b64="e30=", payload_size=2).offset
    42
    """

    schema_name: Literal["driftloop.dead_letter"]
    ts: Timestamp
    source_topic: Name
    partition: Annotated[WholeNumber, Field(ge=-1)]
    offset: Annotated[WholeNumber, Field(ge=-1)]
    event_index: Count | None = None
    reason: DeadLetterReason
    error: Text
    payload_b64: Base64
    payload_size: Count
    truncated: Flag = False
    key_b64: Base64 | None = None
    consumer: Name | None = None
