"""One drift detector on one 1-D signal, with warm-up, hysteresis and cooldown.

River's detectors at their defaults are scale-dependent (Page-Hinkley's ``threshold`` is in the
units of the signal) and noisy on per-event inputs (river #1914, PR #1963). The monitor makes
one parameter set work for every signal of every task, whatever detector it drives (a
:class:`~driftloop.streams.cusum.StandardCUSUM` by default, River's ADWIN, KSWIN or
Page-Hinkley on request):

* it averages the signal over blocks of ``block_size`` events (vectorised with numpy), so
  the Python per-call cost of River is paid once per block and the noise shrinks by
  ``sqrt(block_size)``;
* during ``warmup_blocks`` it learns the reference mean and spread of the block means, and
  afterwards feeds the detector the standardised value ``z = (block_mean - mean) / std``;
  the reference keeps learning, ``effect_blocks`` behind, until it holds
  ``reference_blocks`` blocks, so a short warm-up serves short streams and long ones still
  get a precise reference; while a shift shows, the blocks waiting are held out of it;
* an alert needs the detector to fire *and* the mean ``z`` of the last ``effect_blocks``
  blocks to be at least ``min_effect`` (hysteresis: small wobbles do not alert);
* after an alert the reference is re-learnt on the new regime (one shift raises one alert)
  and no alert can follow for ``cooldown_blocks`` blocks.

The default detector and parameters come from measurements (``driftloop worker detectors``,
:mod:`driftloop.tools.bench.quality.calibrate`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import drift

from .cusum import StandardCUSUM
from .errors import ConfigurationError

__all__ = ["DETECTORS", "Detection", "DriftMonitor", "Reference", "block_means"]

_QUIET_STRETCH = 256  # blocks judged at once by the quiet path (see _quiet_blocks)

# name -> River class. Only detectors of real-valued inputs: the monitor feeds standardised
# block means (the error-rate signal included), never single bits.
DETECTORS: dict[str, type] = {
    "cusum": StandardCUSUM,
    "adwin": drift.ADWIN,
    "page_hinkley": drift.PageHinkley,
    "kswin": drift.KSWIN,
}

# Chosen from the measurements in tools/bench/quality/calibrate.py (see that module's docstring).
DEFAULT_DETECTOR = "cusum"
DEFAULT_PARAMS: Mapping[str, Any] = {"threshold": 20.0, "delta": 0.5}


@dataclass(frozen=True, slots=True)
class Detection:
    """An alert of a :class:`DriftMonitor`: where in the stream and how large the shift is."""

    events_seen: int
    blocks_seen: int
    effect: float
    reference_mean: float
    reference_std: float
    current_mean: float
    detector: str

    def statistics(self) -> dict[str, float | str]:
        """The figures a ``DriftAlert`` carries."""
        return {
            "effect_z": round(self.effect, 6),
            "reference_mean": self.reference_mean,
            "reference_std": self.reference_std,
            "current_mean": self.current_mean,
            "blocks_seen": float(self.blocks_seen),
        }


class DriftMonitor:
    """Watch one real-valued signal for a change of its mean.

    Parameters
    ----------
    detector
        One of :data:`DETECTORS`.
    params
        Keyword arguments of the detector (``None``: the measured defaults for the CUSUM,
        River's defaults for the others).
    block_size
        Events averaged into one detector input.
    warmup_blocks
        Blocks used to learn the reference mean and spread before any alert is possible
        (also after every alert and every :meth:`rereference`).
    reference_blocks
        Most blocks the reference learns from: after the warm-up it keeps adding blocks
        ``effect_blocks`` behind the newest, up to this many (at least ``warmup_blocks``).
    min_effect
        Smallest mean ``|z|`` over the last ``effect_blocks`` blocks for an alert.
    effect_blocks
        How many recent blocks the effect is averaged over.
    cooldown_blocks
        Blocks after an alert during which no new alert is raised.
    seed
        Seed of detectors that draw random numbers (KSWIN).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> monitor = DriftMonitor()
    >>> before = monitor.update_many(rng.normal(0.0, 1.0, 5_000))
    >>> after = monitor.update_many(rng.normal(1.0, 1.0, 5_000))
    >>> len(before), len(after)
    (0, 1)
    >>> after[0].effect > 2.0
    True
    """

    def __init__(
        self,
        *,
        detector: str = DEFAULT_DETECTOR,
        params: Mapping[str, Any] | None = None,
        block_size: int = 16,
        warmup_blocks: int = 10,
        reference_blocks: int = 100,
        min_effect: float = 0.75,
        effect_blocks: int = 4,
        cooldown_blocks: int = 10,
        seed: int = 0,
    ) -> None:
        if detector not in DETECTORS:
            raise ConfigurationError(
                f"unknown detector {detector!r}; valid: {', '.join(sorted(DETECTORS))}")
        for name, value, low in (("block_size", block_size, 1), ("warmup_blocks", warmup_blocks, 2),
                                 ("effect_blocks", effect_blocks, 1),
                                 ("cooldown_blocks", cooldown_blocks, 0)):
            if not isinstance(value, int) or value < low:
                raise ConfigurationError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(reference_blocks, int) or reference_blocks < warmup_blocks:
            raise ConfigurationError(f"reference_blocks must be an integer >= warmup_blocks "
                                     f"({warmup_blocks}), got {reference_blocks!r}")
        if not math.isfinite(min_effect) or min_effect < 0:
            raise ConfigurationError(f"min_effect must be a finite number >= 0, got {min_effect!r}")
        self.detector = detector
        if params is None:
            params = DEFAULT_PARAMS if detector == DEFAULT_DETECTOR else {}
        self.params = dict(params)
        self.block_size = block_size
        self.warmup_blocks = warmup_blocks
        self.reference_blocks = reference_blocks
        self.min_effect = float(min_effect)
        self.effect_blocks = effect_blocks
        self.cooldown_blocks = cooldown_blocks
        self.seed = seed
        try:
            self._new_detector()
        except TypeError as exc:
            raise ConfigurationError(f"invalid params for {detector}: {exc}") from None
        self._reset()

    def _new_detector(self) -> Any:
        params = dict(self.params)
        if self.detector == "kswin":
            params.setdefault("seed", self.seed)
        return DETECTORS[self.detector](**params)

    def _reset(self) -> None:
        self._river = self._new_detector()
        self._partial_sum = 0.0
        self._partial_count = 0
        self._events = 0
        self._blocks = 0
        self._alerts = 0
        self._rewarm()
        self._silent_until = 0
        self._last: list[Detection] = []

    def _rewarm(self) -> None:
        self._ref = Reference(warmup=self.warmup_blocks, most=self.reference_blocks,
                              lag=self.effect_blocks)
        self._recent: deque[float] = deque(maxlen=self.effect_blocks)

    def rereference(self) -> DriftMonitor:
        """Forget the reference and learn it again from the next blocks (the served model
        changed: its scores and embeddings move without the world moving)."""
        self._river = self._new_detector()
        self._partial_sum, self._partial_count = 0.0, 0
        self._rewarm()
        return self

    # -- read-only results -------------------------------------------------------------
    @property
    def events_seen(self) -> int:
        return self._events

    @property
    def alerts(self) -> int:
        """Alerts raised since construction."""
        return self._alerts

    @property
    def warming_up(self) -> bool:
        return self._ref.warming_up

    @property
    def drift_detected(self) -> bool:
        """Whether the last update raised an alert."""
        return bool(self._last)

    @property
    def reference(self) -> tuple[float, float]:
        """Mean and standard deviation of the block means the monitor compares against."""
        return self._ref.mean, self._ref.std()

    # -- updates -----------------------------------------------------------------------
    def update(self, x: float) -> DriftMonitor:
        """Add one value; ``drift_detected`` tells whether it completed an alerting block."""
        self.update_many(np.asarray([x], dtype=np.float64))
        return self

    def update_many(self, values: np.ndarray | list[float]) -> list[Detection]:
        """Add many values at once (the batch path); return the alerts they raised."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        arr = arr[np.isfinite(arr)]
        self._last = []
        if arr.size == 0:
            return self._last
        self._events += int(arr.size)
        done, self._partial_sum, self._partial_count = block_means(
            arr, self.block_size, self._partial_sum, self._partial_count)
        index = 0
        while index < len(done):
            index += self._quiet_blocks(done, index)
            if index == len(done):
                break
            mean, after = done[index]
            detection = self._block(mean, self._events - after)
            if detection is not None:
                self._last.append(detection)
            index += 1
        return self._last

    def _quiet_blocks(self, done: list[tuple[float, int]], start: int) -> int:
        """Judge the blocks of ``done`` from ``start`` on at once while nothing can change
        but the detector's sums: the reference is full (it learns nothing more) and the
        CUSUM takes them without alerting. Returns how many it judged; :meth:`_block` judges
        the next one (one that alerts, or any block of another detector). The arithmetic is
        :meth:`_block`'s, so the monitor ends in the same state either way."""
        river, ref = self._river, self._ref
        if (not isinstance(river, StandardCUSUM) or river.drift_detected
                or ref.n < ref.most or ref.warming_up):
            return 0
        mean, spread = ref.mean, ref.std()
        # A bounded stretch: a stream that alerts every few blocks costs no more than now.
        z = [(block - mean) / spread for block, _ in done[start:start + _QUIET_STRETCH]]
        taken = river.update_quiet(z)
        self._recent.extend(z[:taken])
        self._blocks += taken
        return taken

    def _block(self, mean: float, events_at: int) -> Detection | None:
        self._blocks += 1
        if self._ref.warming_up:
            self._ref.learn(mean)
            return None
        ref_std = self._ref.std()
        z = (mean - self._ref.mean) / ref_std
        self._recent.append(z)
        effect = sum(self._recent) / len(self._recent)
        # While an effect shows, the blocks waiting to join the reference may be the new
        # regime's: they must not teach it that the shift is normal before River decides.
        self._ref.follow(mean, keep=abs(effect) < self.min_effect)
        self._river.update(z)
        if not self._river.drift_detected or self._blocks < self._silent_until:
            return None
        if abs(effect) < self.min_effect:
            return None
        detection = Detection(
            events_seen=events_at, blocks_seen=self._blocks, effect=effect,
            reference_mean=self._ref.mean, reference_std=ref_std, current_mean=mean,
            detector=self.detector)
        self._alerts += 1
        self._silent_until = self._blocks + self.cooldown_blocks
        self._river = self._new_detector()
        self._rewarm()
        return detection

    # -- contract helpers ----------------------------------------------------------------
    def clone(self) -> DriftMonitor:
        """A fresh monitor with the same parameters and no state."""
        return DriftMonitor(**self.get_params())

    def get_params(self) -> dict[str, Any]:
        return {
            "detector": self.detector, "params": dict(self.params),
            "block_size": self.block_size, "warmup_blocks": self.warmup_blocks,
            "reference_blocks": self.reference_blocks,
            "min_effect": self.min_effect, "effect_blocks": self.effect_blocks,
            "cooldown_blocks": self.cooldown_blocks, "seed": self.seed,
        }

    def __repr__(self) -> str:
        return (f"DriftMonitor(detector={self.detector!r}, params={self.params!r}, "
                f"block_size={self.block_size}, events_seen={self._events})")


class Reference:
    """The mean and spread of the block means a monitor compares against.

    It learns from the first ``warmup`` blocks, then keeps learning ``lag`` blocks behind
    the newest until it holds ``most``: a short warm-up serves short streams and a long one
    still gets a precise reference. The monitor holds back the blocks that wait while a
    shift shows, so a shift never becomes the reference before the detector decides.

    >>> ref = Reference(warmup=2, most=4, lag=1)
    >>> for x in (1.0, 3.0):
    ...     ref.learn(x)
    >>> ref.warming_up, ref.follow(5.0, keep=True), ref.follow(7.0, keep=True), ref.mean
    (False, False, True, 3.0)
    >>> ref.follow(9.0, keep=False), ref.n  # 7.0 left the queue while a shift showed
    (False, 3)
    """

    def __init__(self, *, warmup: int, most: int, lag: int) -> None:
        self.warmup, self.most, self.lag = warmup, most, lag
        self.n, self.mean, self._m2 = 0, 0.0, 0.0
        self._lagged: deque[float] = deque()

    @property
    def warming_up(self) -> bool:
        return self.n < self.warmup

    def follow(self, value: float, *, keep: bool) -> bool:
        """Queue a judged block mean; the one ``lag`` blocks older joins the reference when
        ``keep`` (and there is room). True when a block joined."""
        if self.n >= self.most:
            return False
        self._lagged.append(value)
        if len(self._lagged) <= self.lag:
            return False
        oldest = self._lagged.popleft()
        if keep:
            self.learn(oldest)
        return keep

    def learn(self, value: float) -> None:  # Welford's running mean and squared deviations
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (value - self.mean)

    def std(self) -> float:
        var = self._m2 / (self.n - 1) if self.n > 1 else 0.0
        # A flat warm-up (a constant signal) must not make every later wobble infinite.
        return max(math.sqrt(var), 1e-6 * max(1.0, abs(self.mean)))


def block_means(values: np.ndarray, size: int, partial_sum: float, partial_count: int
                ) -> tuple[list[tuple[float, int]], float, int]:
    """Average ``values`` into blocks of ``size``, the first one completing a partial block
    (``partial_count`` values summing to ``partial_sum``).

    Returns each completed block's mean with how many of ``values`` come after it (for the
    position of an alert), and the new partial block (sum, count). Vectorised: the per-call
    cost of River is paid once per block, not once per value.

    >>> block_means(np.arange(5.0), 2, 1.0, 1)
    ([(0.5, 4), (1.5, 2), (3.5, 0)], 0.0, 0)
    >>> block_means(np.arange(2.0), 4, 1.0, 1)
    ([], 2.0, 3)
    """
    need = size - partial_count
    if values.size < need:
        return [], partial_sum + float(values.sum()), partial_count + int(values.size)
    first = (partial_sum + float(values[:need].sum())) / size
    rest = values[need:]
    full = rest.size // size
    # sum / size is what ndarray.mean computes, without its Python wrapper (a call per
    # monitor and batch on the worker's hot path).
    means = (rest[: full * size].reshape(full, size).sum(axis=1) / size).tolist()
    tail = rest[full * size:]
    # Values that belong to blocks not yet consumed, for the alert's position.
    after = range(full * size + tail.size, -1, -size)
    return list(zip([first, *means], after, strict=True)), float(tail.sum()), int(tail.size)
