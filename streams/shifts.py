"""A task's shifts: its drift monitors' alerts, and new domain names, as ``DriftAlert`` events.

The monitors (:class:`~driftloop.streams.drift.DriftWatch`) follow the task's served head
version, so a promotion re-learns their references instead of alerting; events served by a
canary or by the old head during a swap are left out. A domain name the task has not seen
is a shift the producer named: it alerts at once, without a detector. Alert ids come from the
task's sequence (``drift-<task>-<seq>``), so a replayed state raises the same ids.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

from ..schemas.enums import DriftSignal
from ..schemas.events import DriftAlert, Interaction
from .drift import DriftWatch

__all__ = ["ShiftAlerts"]


def _embeddings(group: list[Interaction]) -> np.ndarray | None:
    """The group's embeddings as one (n, d) array; None without any, or of mixed sizes (no
    size configured for the task): not drift."""
    return _rows([e.embedding for e in group if e.embedding is not None])


def _input_embeddings(group: list[Interaction]) -> np.ndarray | None:
    """The group's version-free input embeddings when every event carries one of one size
    (else its texts' byte bigrams stand for the inputs, all of them alike)."""
    vectors = [e.input_embedding for e in group if e.input_embedding is not None]
    return _rows(vectors) if len(vectors) == len(group) else None


def _rows(vectors: list[list[float]]) -> np.ndarray | None:
    """One (n, d) array of vectors of one size d; None for none or mixed sizes.

    >>> _rows([[1.0, 2.0], [3.0, 4.0]]).tolist(), _rows([[1.0], [2.0, 3.0]]), _rows([])
    ([[1.0, 2.0], [3.0, 4.0]], None, None)
    >>> _rows([["a", "b"]]) is None
    True
    """
    if not vectors:
        return None
    sizes = set(map(len, vectors))
    if len(sizes) != 1:
        return None
    size = sizes.pop()
    if size == 0:
        return None
    # A third faster than np.asarray on a list of lists (once per batch on the hot path).
    try:
        flat = np.fromiter(chain.from_iterable(vectors), dtype=np.float64,
                           count=len(vectors) * size)
    except (TypeError, ValueError):  # not numbers (the decoder lets none through): not drift
        return None
    return flat.reshape(len(vectors), size)


class ShiftAlerts:
    """The alerts of one task's drift monitors and of new domain names.

    Examples
    --------
    >>> shifts = ShiftAlerts("sentiment", DriftWatch())
    >>> alert = shifts.new_domain("movies", "v1", known=1, now=5.0)
    >>> alert.id, alert.signal.value, alert.detector
    ('drift-sentiment-000001', 'domain', 'new_domain')
    """

    def __init__(self, task: str, drift: DriftWatch) -> None:
        self.task = task
        self.drift = drift
        self.alert_seq = 0

    def on_interactions(self, domain: str, group: list[Interaction], confidences: np.ndarray,
                        *, head: str | None, now: float) -> list[DriftAlert]:
        """Feed one domain's interactions of a batch, per serving version."""
        alerts = []
        versions = {event.model_version for event in group}
        for version in sorted(versions):  # one, but for a canary's share of the traffic
            if len(versions) > 1:
                picked = [i for i, event in enumerate(group) if event.model_version == version]
                part, part_conf = [group[i] for i in picked], confidences[picked]
            else:
                part, part_conf = group, confidences
            inputs = _input_embeddings(part) if self.drift.input_features else None
            findings = self.drift.update(
                domain, confidences=part_conf[np.isfinite(part_conf)],
                embeddings=_embeddings(part), inputs=inputs,
                texts=[event.input for event in part]
                if self.drift.input_features and inputs is None else None,
                version=version, head=head)
            alerts += self._alerts(findings, version, now)
        return alerts

    def on_errors(self, domain: str, version: str, errors: np.ndarray, *, head: str | None,
                  now: float) -> list[DriftAlert]:
        """Feed the error bits (1: wrong) of one domain's joined labels served by ``version``."""
        findings = self.drift.update(domain, errors=errors, version=version, head=head)
        return self._alerts(findings, version, now)

    def new_domain(self, domain: str, version: str, *, known: int, now: float) -> DriftAlert:
        """A domain name the task has not seen, after ``known`` others."""
        return self._numbered(DriftAlert(
            id="drift", ts=now, task=self.task, domain=domain, signal=DriftSignal.DOMAIN,
            detector="new_domain", model_version=version, events_seen=0,
            statistics={"known_domains": float(known)}))

    def _alerts(self, findings: list[Any], version: str | None,
                now: float) -> list[DriftAlert]:
        return [self._numbered(DriftAlert(
            id="drift", ts=now, task=self.task, domain=f.domain, signal=f.signal,
            detector=f.detection.detector, model_version=version,
            events_seen=self.drift.domain(f.domain).events, statistics=f.statistics()))
            for f in findings]

    def _numbered(self, alert: DriftAlert) -> DriftAlert:
        self.alert_seq += 1
        return alert.model_copy(update={"id": f"drift-{self.task}-{self.alert_seq:06d}"})
