"""Operators' work on a running deployment: replay, status, the accounting check, the report."""

from __future__ import annotations

from .accounting import Ledger, take_ledger
from .replay import ReplayResult, ReplaySpec, run_replay
from .status import Status, collect_status

__all__ = [
    "Ledger",
    "ReplayResult",
    "ReplaySpec",
    "Status",
    "collect_status",
    "run_replay",
    "take_ledger",
]
