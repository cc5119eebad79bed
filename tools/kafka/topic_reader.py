"""Read a topic from its beginning to its end offsets as of now (a snapshot), for operators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ...client.kafka import read_to_end_offsets
from ...schemas.settings import Settings
from ..errors import ToolsError

__all__ = ["RawRecord", "read_snapshot"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read: where it was and what it held."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


async def read_snapshot(settings: Settings, topic: str, *, timeout: float = 120.0,
                        missing_ok: bool = True) -> list[RawRecord]:
    """Every committed record of ``topic`` up to the end offsets at call time.

    A topic that does not exist yields ``[]`` when ``missing_ok`` (a report of a fresh
    deployment), else raises :class:`ToolsError`.
    """
    try:
        records = await read_to_end_offsets(settings, topic, timeout=timeout)
    except TimeoutError as exc:
        raise ToolsError(str(exc)) from None
    if records is None:
        if missing_ok:
            return []
        raise ToolsError(f"topic {topic} does not exist")
    return [RawRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                      tuple(r.headers or ())) for r in records]


def decode_all(records: list[RawRecord], decode: Callable[[bytes], list[T]],
               on_error: Callable[[RawRecord, Exception], None]) -> list[T]:
    """Decode every record with ``decode`` (one record -> several events for batches)."""
    out: list[T] = []
    for record in records:
        try:
            out.extend(decode(record.value or b""))
        except ValueError as exc:  # driftloop's ValidationError is a ValueError
            on_error(record, exc)
    return out
