"""Errors of the stream side, rooted in :class:`~driftloop.schemas.errors.DriftloopError`."""

from __future__ import annotations

from ..schemas.errors import DriftloopError

__all__ = ["StreamsError"]


class StreamsError(DriftloopError):
    """Root of the errors raised by ``driftloop.streams``."""
