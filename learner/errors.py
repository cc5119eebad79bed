"""Errors of the learner, rooted in :class:`~driftloop.schemas.errors.DriftloopError`."""

from __future__ import annotations

from ..schemas.errors import DriftloopError

__all__ = ["LearnerError"]


class LearnerError(DriftloopError):
    """Root of the errors raised by ``driftloop.learner``."""
