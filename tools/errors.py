"""Errors of the command-line tools, rooted in :class:`~driftloop.schemas.errors.DriftloopError`."""

from __future__ import annotations

from ..schemas.errors import DriftloopError

__all__ = [
    "BrokerStartError",
    "InvalidTimeBound",
    "JarFetchError",
    "MissingDependencyError",
    "PortInUseError",
    "ToolsError",
    "TopicsError",
]


class ToolsError(DriftloopError):
    """Root of the errors raised by ``driftloop.tools``; the CLI prints them without a trace."""


class MissingDependencyError(ToolsError):
    """A program driftloop needs (java, mvn) is not installed; the message says how to get it."""


class JarFetchError(ToolsError):
    """Maven could not fetch the Kafka jars (no network, no such version); output included."""

    retriable = True


class PortInUseError(ToolsError):
    """The local broker cannot listen: another process holds its port."""


class BrokerStartError(ToolsError):
    """The local broker died or did not answer in time; the message ends with its last log lines.

    ``log_tail`` holds those lines for callers that show them differently.
    """

    retriable = True

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(f"{message}\n--- last lines of the broker log ---\n{log_tail}"
                         if log_tail else message)


class TopicsError(ToolsError):
    """The broker refused to create or describe a driftloop topic."""


class InvalidTimeBound(ToolsError):
    """A ``--since``/``--until`` that is neither an ISO-8601 time nor a relative one (``2h``),
    or a window that ends before it starts."""
