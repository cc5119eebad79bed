"""Errors of the stream side, rooted in :class:`~driftloop.schemas.errors.DriftloopError`."""

from __future__ import annotations

from ..schemas.errors import DriftloopError

__all__ = ["ConfigurationError", "StateError", "StreamsError"]


class StreamsError(DriftloopError):
    """Root of the errors raised by ``driftloop.streams``."""


class ConfigurationError(StreamsError, ValueError):
    """A detector, policy or buffer was built with invalid arguments; the message lists the
    valid choices. Raised at construction, never in the middle of a stream."""


class StateError(StreamsError):
    """Persisted stream state (a table value) cannot be restored: wrong type or version."""
