"""Errors of the command-line tools, rooted in :class:`~driftloop.schemas.errors.DriftloopError`."""

from __future__ import annotations

from ..schemas.errors import DriftloopError

__all__ = ["MissingDependencyError", "ToolsError"]


class ToolsError(DriftloopError):
    """Root of the errors raised by ``driftloop.tools``; the CLI prints them without a trace."""


class MissingDependencyError(ToolsError):
    """A program driftloop needs (java, mvn) is not installed; the message says how to get it."""
