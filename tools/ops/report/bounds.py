"""What the report reads: a time window, some tasks, and at most so many records per topic.

A report of a month-old deployment must not read a month of traffic into memory: the window
starts the read at the broker's time index, and the cap keeps only the latest records.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ...errors import InvalidTimeBound

__all__ = ["DEFAULT_MAX_RECORDS", "PUBLISH_SLACK_S", "ReportBounds", "parse_time"]

DEFAULT_MAX_RECORDS = 200_000
PUBLISH_SLACK_S = 300.0
"""How long after an event its record may be sent (or how far producer clocks may be off):
the read starts this much before ``since`` and ends this much after ``until`` in record
time, so no event in the window is missed; events are then kept by their own time."""

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, *, now: float | None = None) -> float:
    """Seconds since the epoch from an ISO-8601 time (UTC when it has no offset) or a
    relative one, that long before ``now``: ``90s``, ``30m``, ``2h``, ``1d``, ``1w``.

    >>> parse_time("2h", now=10_000.0)
    2800.0
    >>> parse_time("2026-12-04T15:00:00Z")
    1796396400.0
    >>> parse_time("2026-12-04 16:00:00+01:00")
    1796396400.0
    >>> parse_time("yesterday")
    Traceback (most recent call last):
    ...
    driftloop.tools.errors.InvalidTimeBound: 'yesterday' is not a time: give an ISO-8601 time \
(2026-12-04T15:00:00Z) or a span before now (30m, 2h, 1d)
    """
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2).lower()
        return (time.time() if now is None else now) - amount * _UNITS[unit]
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidTimeBound(
            f"{text!r} is not a time: give an ISO-8601 time (2026-12-04T15:00:00Z) or a "
            "span before now (30m, 2h, 1d)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class ReportBounds:
    """The report's window: event times in ``[since, until]``, events of ``tasks`` (all when
    empty), at most ``max_records`` records read per topic (the latest).

    Examples
    --------
    >>> bounds = ReportBounds(since=100.0, until=200.0, tasks=frozenset({"sentiment"}))
    >>> bounds.holds(150.0, "sentiment"), bounds.holds(250.0, "sentiment")
    (True, False)
    >>> bounds.holds(150.0, "toxicity")
    False
    >>> ReportBounds(since=5.0, until=1.0)
    Traceback (most recent call last):
    ...
    driftloop.tools.errors.InvalidTimeBound: the window ends (1970-01-01 00:00:01 UTC) \
before it starts (1970-01-01 00:00:05 UTC)
    """

    since: float | None = None
    until: float | None = None
    tasks: frozenset[str] = field(default_factory=frozenset)
    max_records: int = DEFAULT_MAX_RECORDS

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise InvalidTimeBound(f"the window ends ({_utc(self.until)}) before it starts "
                                   f"({_utc(self.since)})")
        if self.max_records < 1:
            raise InvalidTimeBound(f"max_records must be at least 1, not {self.max_records}")

    def holds(self, ts: float, task: str) -> bool:
        """Whether an event of ``task`` at ``ts`` is inside the bounds."""
        return (self.in_time(ts)) and (not self.tasks or task in self.tasks)

    def in_time(self, ts: float) -> bool:
        return ((self.since is None or ts >= self.since)
                and (self.until is None or ts <= self.until))

    def wants_key(self, key: bytes | None) -> bool:
        """Records are keyed by task: one of another task is dropped before decoding (an
        unkeyed one is decoded and judged by its events)."""
        return not self.tasks or key is None or key.decode("utf-8", "replace") in self.tasks

    def describe(self) -> str:
        """One line for the page.

        >>> ReportBounds(since=0.0, tasks=frozenset({"b", "a"}), max_records=10).describe()
        'from 1970-01-01 00:00:00 UTC · tasks a, b · at most 10 records per topic'
        """
        parts = []
        if self.since is not None:
            parts.append(f"from {_utc(self.since)}")
        if self.until is not None:
            parts.append(f"until {_utc(self.until)}")
        if self.tasks:
            parts.append("tasks " + ", ".join(sorted(self.tasks)))
        parts.append(f"at most {self.max_records:,} records per topic")
        return " · ".join(parts)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
