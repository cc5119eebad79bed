"""Drift alerts for the report: which way the signal moved, and how long until a new
promoted version answered each alert."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ....schemas import DriftAlert, DriftSignal, ModelVersion, VersionStatus

__all__ = ["AlertAnswer", "alert_direction", "answer_alerts", "direction_is_worse"]

# (before, after) statistic pairs the detectors write, most specific first
_MEAN_PAIRS = (("mean_before", "mean_after"), ("reference_mean", "current_mean"))


def alert_direction(alert: DriftAlert) -> str | None:
    """``"up"`` or ``"down"``: which way the watched signal moved (None when the
    statistics do not say; an embedding or input shift has a size, not a direction).

    >>> alert = DriftAlert(id="d", ts=0.0, task="t", signal="error_rate", detector="adwin",
    ...                    statistics={"mean_before": 0.1, "mean_after": 0.3})
    >>> alert_direction(alert)
    'up'
    >>> alert_direction(alert.model_copy(update={"statistics": {"effect_z": -2.5}}))
    'down'
    """
    stats = alert.statistics
    named = stats.get("direction")
    if isinstance(named, str) and named.lower() in ("up", "down"):
        return named.lower()
    for before, after in _MEAN_PAIRS:
        old, new = stats.get(before), stats.get(after)
        if isinstance(old, (int, float)) and isinstance(new, (int, float)) and old != new:
            return "up" if new > old else "down"
    effect = stats.get("effect_z")
    if isinstance(effect, (int, float)) and effect and alert.signal not in (
            DriftSignal.EMBEDDING, DriftSignal.INPUT):
        return "up" if effect > 0 else "down"
    return None


def direction_is_worse(signal: DriftSignal, direction: str | None) -> bool | None:
    """Whether the move is bad news: more errors, or less confidence (None: no direction,
    or a signal whose moves are neither, such as an embedding shift).

    >>> worse = direction_is_worse
    >>> worse(DriftSignal.ERROR_RATE, "up"), worse(DriftSignal.SCORE, "up")
    (True, False)
    """
    if direction is None:
        return None
    if signal is DriftSignal.ERROR_RATE:
        return direction == "up"
    if signal is DriftSignal.SCORE:
        return direction == "down"
    return None


@dataclass(frozen=True, slots=True)
class AlertAnswer:
    """An alert and the first version of its task promoted after it (None: not answered yet)."""

    alert: DriftAlert
    version_id: str | None = None
    latency_s: float | None = None


def answer_alerts(alerts: Iterable[DriftAlert],
                  versions: Iterable[ModelVersion]) -> list[AlertAnswer]:
    """Each alert with the next promotion of its task, in alert time order.

    >>> def promoted(vid, ts):
    ...     return ModelVersion(version_id=vid, ts=ts, task="t", base_model="m",
    ...                         adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
    ...                         status="promoted")
    >>> alerts = [DriftAlert(id=f"d{n}", ts=ts, task="t", signal="score", detector="adwin")
    ...           for n, ts in enumerate([10.0, 50.0, 90.0])]
    >>> [(a.version_id, a.latency_s) for a in answer_alerts(alerts, [promoted("v1", 70.0)])]
    [('v1', 60.0), ('v1', 20.0), (None, None)]
    """
    promotions: dict[str, list[ModelVersion]] = {}
    for version in sorted(versions, key=lambda v: v.ts):
        if version.status is VersionStatus.PROMOTED:
            promotions.setdefault(version.task, []).append(version)
    answers = []
    for alert in sorted(alerts, key=lambda a: a.ts):
        after = next((v for v in promotions.get(alert.task, []) if v.ts >= alert.ts), None)
        answers.append(AlertAnswer(alert) if after is None else
                       AlertAnswer(alert, after.version_id, after.ts - alert.ts))
    return answers
