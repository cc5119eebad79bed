"""Drift of one task, per domain, on four signals: scores, embeddings, the inputs' text and
the error rate.

Embeddings are reduced, for a whole batch at once with numpy, to a few one-dimensional
signals: the cosine distance to a reference centroid learnt during a warm-up, and
``projections`` fixed random projections (seeded by the task's embedding size, so every
worker and every restart uses the same ones). The inputs are reduced the same way: their
version-free embeddings when the events carry them (``Interaction.input_embedding``, the
mean of the base model's input-token embeddings from driftloop's service), else the texts'
hashed byte bigrams (:mod:`.text_features`); neither depends on the served version, so they
keep their reference when a promotion makes the others learn theirs again. Each
signal gets a :class:`~driftloop.streams.detectors.DriftMonitor`; the components of one
signal share a cooldown, so a shift seen by the distance and by three projections raises one
alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..schemas.enums import DriftSignal
from .detectors import Detection, DriftMonitor
from .errors import ConfigurationError
from .text_features import text_features

__all__ = ["DomainDrift", "DriftFinding", "DriftWatch", "projection_matrix"]


@lru_cache(maxsize=16)
def projection_matrix(dim: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` fixed random unit directions in ``dim`` dimensions, as a (dim, count) array."""
    rng = np.random.default_rng([seed, dim, count])
    matrix = rng.normal(size=(dim, count))
    matrix /= np.linalg.norm(matrix, axis=0, keepdims=True)
    matrix.setflags(write=False)
    return matrix


def _family(component: str) -> str:
    """The signal a monitor's component belongs to (the embedding and the input have
    several)."""
    if component == "centroid_distance" or component.startswith("projection_"):
        return DriftSignal.EMBEDDING.value
    if component.startswith("input_"):
        return DriftSignal.INPUT.value
    return component


class _Centroid:
    """A vector signal's reference direction, learnt from its first ``centroid_events``."""

    def __init__(self) -> None:
        self._centroid_sum: np.ndarray | None = None
        self._centroid_n = 0
        self.centroid: np.ndarray | None = None
        self.dim: int | None = None


@dataclass(frozen=True, slots=True)
class DriftFinding:
    """An alert of one signal of one domain, ready to become a ``DriftAlert``."""

    domain: str
    signal: DriftSignal
    component: str
    detection: Detection

    def statistics(self) -> dict[str, float | str]:
        return {**self.detection.statistics(), "component": self.component}


class DomainDrift:
    """The monitors of one (task, domain)."""

    input_features = 0  # a state saved before the input signal existed reads as off

    def __init__(self, monitor: DriftMonitor, *, projections: int, centroid_events: int,
                 seed: int, input_features: int = 0) -> None:
        self._template = monitor
        self.projections = projections
        self.centroid_events = centroid_events
        self.seed = seed
        self.input_features = input_features
        self._inputs = _Centroid()
        self.monitors: dict[str, DriftMonitor] = {}
        self._centroid_sum: np.ndarray | None = None
        self._centroid_n = 0
        self.centroid: np.ndarray | None = None
        self.dim: int | None = None
        self._silent_until: dict[DriftSignal, int] = {}
        self.events = 0
        self.version: str | None = None  # the served version the references describe

    def follow(self, version: str, head: str | None) -> bool:
        """Whether events served by ``version`` feed the monitors.

        The first version seen is the references'. When the task's head (its promoted
        version) takes over, every monitor and the centroid learn their reference again: a
        new adapter moves the scores, the embeddings it computes and the error rate without
        the traffic moving, and a promotion must not look like drift. Events of any other
        version (a canary, the old head while replicas swap) are left out.
        """
        if version == self.version:
            return True
        if self.version is not None and version != head:
            return False
        self.version = version
        for name, monitor in self.monitors.items():
            if _family(name) != DriftSignal.INPUT.value:  # the text is the version's own
                monitor.rereference()
        self._centroid_sum, self._centroid_n, self.centroid = None, 0, None
        return True

    def _monitor(self, name: str) -> DriftMonitor:
        monitor = self.monitors.get(name)
        if monitor is None:
            monitor = self.monitors[name] = self._template.clone()
        return monitor

    def _cooldown_events(self) -> int:
        t = self._template
        return (t.warmup_blocks + t.cooldown_blocks) * t.block_size

    def _feed(self, signal: DriftSignal, component: str, values: np.ndarray,
              findings: list[DriftFinding]) -> None:
        detections = self._monitor(component).update_many(values)
        for detection in detections:
            if self.events < self._silent_until.get(signal, 0):
                continue
            self._silent_until[signal] = self.events + self._cooldown_events()
            findings.append(DriftFinding("", signal, component, detection))
            self._rereference_siblings(component)

    def _rereference_siblings(self, component: str) -> None:
        """One shift, one alert per signal: the components of the signal that alerted (the
        centroid distance and the projections of an embedding) learn the new regime as the
        alerting one does, instead of alerting again on the same shift once the signal's
        cooldown ends because they were slower to cross their threshold."""
        family = _family(component)
        for name, monitor in self.monitors.items():
            if name != component and _family(name) == family:
                monitor.rereference()

    def update(self, *, confidences: np.ndarray | None = None,
               embeddings: np.ndarray | None = None, errors: np.ndarray | None = None,
               texts: list[str] | None = None,
               inputs: np.ndarray | None = None) -> list[DriftFinding]:
        findings: list[DriftFinding] = []
        counted = False
        if confidences is not None and confidences.size:
            self.events += int(confidences.size)
            counted = True
            self._feed(DriftSignal.SCORE, "confidence", confidences, findings)
        if embeddings is not None and embeddings.size:
            if not counted:
                self.events += int(embeddings.shape[0])
                counted = True
            self._vectors(embeddings, findings, DriftSignal.EMBEDDING, self)
        if inputs is not None and not inputs.size:
            inputs = None
        if self.input_features and (texts or inputs is not None):
            vectors = inputs if inputs is not None else \
                text_features(texts or [], self.input_features)
            if not counted:
                self.events += int(vectors.shape[0])
            if self._inputs.dim is not None and vectors.shape[1] != self._inputs.dim:
                self._restart_inputs()  # the producer began (or stopped) sending embeddings
            self._vectors(vectors, findings, DriftSignal.INPUT, self._inputs)
        if errors is not None and errors.size:
            self._feed(DriftSignal.ERROR_RATE, "error_rate", errors, findings)
        return findings

    def _restart_inputs(self) -> None:
        """Learn the input signal from scratch: its vectors changed kind (byte bigrams to
        embeddings, or back), so its centroid and monitors describe nothing comparable."""
        self._inputs = _Centroid()
        for name in [n for n in self.monitors if _family(n) == DriftSignal.INPUT.value]:
            del self.monitors[name]

    def _vectors(self, embeddings: np.ndarray, findings: list[DriftFinding],
                 signal: DriftSignal, state: Any) -> None:
        """Reduce a batch of vectors of ``signal`` to its components and feed them;
        ``state`` keeps the signal's centroid (this object for the embedding)."""
        if signal is DriftSignal.INPUT:
            distance_name, projection_name = "input_distance", "input_projection_"
        else:
            distance_name, projection_name = "centroid_distance", "projection_"
        if state.dim is None:
            state.dim = int(embeddings.shape[1])
        if embeddings.shape[1] != state.dim:
            return  # the decoder enforces the configured size; a changed size is not drift
        # Scaled by the largest component first: the norm of a (valid, finite) embedding of
        # huge values overflows to inf, and the event would count as a zero vector.
        peak = np.abs(embeddings).max(axis=1, keepdims=True)
        scaled = embeddings / np.where(peak > 0, peak, 1.0)
        norms = np.linalg.norm(scaled, axis=1, keepdims=True)
        unit = scaled / np.where(norms > 0, norms, 1.0)
        if state.centroid is None:
            need = self.centroid_events - state._centroid_n
            head = unit[:need]
            state._centroid_sum = head.sum(axis=0) if state._centroid_sum is None \
                else state._centroid_sum + head.sum(axis=0)
            state._centroid_n += head.shape[0]
            if state._centroid_n >= self.centroid_events:
                centroid = state._centroid_sum / state._centroid_n
                state.centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
                state._centroid_sum = None
            unit_for_distance = unit[need:] if state.centroid is not None else unit[:0]
        else:
            unit_for_distance = unit
        if state.centroid is not None and unit_for_distance.shape[0]:
            distance = 1.0 - unit_for_distance @ state.centroid
            self._feed(signal, distance_name, distance, findings)
        if self.projections:
            projected = unit @ projection_matrix(state.dim, self.projections, self.seed)
            for j in range(self.projections):
                self._feed(signal, f"{projection_name}{j}", projected[:, j], findings)


class DriftWatch:
    """The drift monitors of one task, per domain.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> watch = DriftWatch(projections=2, centroid_events=500)
    >>> base = rng.normal(size=(6_000, 8)) + 3.0
    >>> watch.update("news", embeddings=base)
    []
    >>> shifted = rng.normal(size=(6_000, 8)) + np.array([3, 3, 3, 3, -3, -3, 3, 3])
    >>> [(f.signal.value, f.domain) for f in watch.update("news", embeddings=shifted)]
    [('embedding', 'news')]
    """

    input_features = 0  # a state saved before the input signal existed reads as off

    def __init__(self, *, monitor: DriftMonitor | None = None, projections: int = 4,
                 centroid_events: int = 1000, seed: int = 0, input_features: int = 0) -> None:
        if not isinstance(projections, int) or projections < 0:
            raise ConfigurationError(f"projections must be an integer >= 0, got {projections!r}")
        if not isinstance(centroid_events, int) or centroid_events < 1:
            raise ConfigurationError(
                f"centroid_events must be a positive integer, got {centroid_events!r}")
        if not isinstance(input_features, int) or input_features < 0:
            raise ConfigurationError(
                f"input_features must be an integer >= 0, got {input_features!r}")
        self.monitor = monitor if monitor is not None else DriftMonitor()
        self.input_features = input_features
        self.projections = projections
        self.centroid_events = centroid_events
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self.domains: dict[str, DomainDrift] = {}

    def domain(self, name: str) -> DomainDrift:
        state = self.domains.get(name)
        if state is None:
            state = self.domains[name] = DomainDrift(
                self.monitor, projections=self.projections,
                centroid_events=self.centroid_events, seed=self.seed,
                input_features=self.input_features)
        return state

    def update(self, domain: str, *, confidences: np.ndarray | None = None,
               embeddings: np.ndarray | None = None, errors: np.ndarray | None = None,
               texts: list[str] | None = None, inputs: np.ndarray | None = None,
               version: str | None = None,
               head: str | None = None) -> list[DriftFinding]:
        """Feed one domain's signals of a batch; return the alerts they raised.

        With ``version`` (the model version that served the events) the domain's monitors
        follow the task's ``head``: see :meth:`DomainDrift.follow`. ``inputs`` (the events'
        version-free input embeddings, one row each) or else ``texts`` (the inputs) feed the
        input signal when ``input_features`` is set.
        """
        state = self.domain(domain)
        if version is not None and not state.follow(version, head):
            return []
        findings = state.update(confidences=confidences, embeddings=embeddings, errors=errors,
                                texts=texts, inputs=inputs)
        return [DriftFinding(domain, f.signal, f.component, f.detection) for f in findings]

    def clone(self) -> DriftWatch:
        return DriftWatch(**self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {"monitor": self.monitor.clone(), "projections": self.projections,
                "centroid_events": self.centroid_events, "seed": self.seed,
                "input_features": self.input_features}
