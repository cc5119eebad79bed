"""Measure drift detectors on synthetic streams: false alarms when stable, delay when shifted.

River's defaults are not trusted (river #1914, PR #1963): the default of
:class:`~driftloop.streams.detectors.DriftMonitor` was chosen by running this module
(``driftloop worker detectors``) and reading the table it prints. Each candidate runs on

* stable streams of 50,000 events (Gaussian, a confidence-like Beta(8, 2), an
  autocorrelated AR(1) signal and Bernoulli(0.1) error bits): any alert is a false alarm;
* shifted streams: the mean moves by 0.25, 0.5 or 1 standard deviation (or the error rate
  goes from 0.10 to 0.20) after 10,000 events: the delay is counted in events after the
  change, and every alert beyond the first is an extra alert.

Candidates are River detectors fed one event at a time at their defaults (the baseline) and
the same detectors inside a :class:`DriftMonitor` (block means, standardised).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from river import drift
from river.drift import binary

from ....streams.detectors import DriftMonitor

__all__ = ["CANDIDATES", "SCENARIOS", "Measurement", "measure", "render", "river_per_event"]

STREAM_LENGTH = 50_000
CHANGE_AT = 10_000


def _gauss(rng: np.random.Generator, shift: float) -> np.ndarray:
    x = rng.normal(0.0, 1.0, STREAM_LENGTH)
    x[CHANGE_AT:] += shift
    return x


def _beta(rng: np.random.Generator, shift: float) -> np.ndarray:
    x = rng.beta(8.0, 2.0, STREAM_LENGTH)
    x[CHANGE_AT:] -= shift * 0.12  # std of Beta(8, 2) is about 0.12
    return x


def _ar1(rng: np.random.Generator, shift: float) -> np.ndarray:
    noise = rng.normal(0.0, 1.0, STREAM_LENGTH)
    x = np.empty(STREAM_LENGTH)
    x[0] = noise[0]
    for i in range(1, STREAM_LENGTH):
        x[i] = 0.3 * x[i - 1] + noise[i]
    x[CHANGE_AT:] += shift
    return x


def _bits(rng: np.random.Generator, shift: float) -> np.ndarray:
    p = np.full(STREAM_LENGTH, 0.10)
    p[CHANGE_AT:] += 0.10 if shift else 0.0
    return (rng.random(STREAM_LENGTH) < p).astype(np.float64)


# name -> (generator, shift, is_stable)
SCENARIOS: dict[str, tuple[Callable[[np.random.Generator, float], np.ndarray], float, bool]] = {
    "stable gauss": (_gauss, 0.0, True),
    "stable beta": (_beta, 0.0, True),
    "stable ar1": (_ar1, 0.0, True),
    "stable bits": (_bits, 0.0, True),
    "shift 0.25sd": (_gauss, 0.25, False),
    "shift 0.5sd": (_gauss, 0.5, False),
    "shift 1sd": (_gauss, 1.0, False),
    "error 0.1->0.2": (_bits, 1.0, False),
}


def river_per_event(make: Callable[[], object]) -> Callable[[np.ndarray], list[int]]:
    """A runner feeding a fresh River detector one event at a time; it returns the 1-based
    positions at which the detector fired."""
    def run(x: np.ndarray) -> list[int]:
        detector = make()
        hits = []
        for i, value in enumerate(x.tolist()):
            detector.update(value)  # type: ignore[attr-defined]
            if detector.drift_detected:  # type: ignore[attr-defined]
                hits.append(i + 1)
        return hits
    return run


def _monitor(**kwargs: object) -> Callable[[np.ndarray], list[int]]:
    def run(x: np.ndarray) -> list[int]:
        monitor = DriftMonitor(**kwargs)  # type: ignore[arg-type]
        hits: list[int] = []
        # Feed in batches of 500, as the worker does with batch envelopes.
        for start in range(0, x.size, 500):
            hits.extend(d.events_seen for d in monitor.update_many(x[start:start + 500]))
        return hits
    return run


# name -> (runner, binary-only). Binary detectors only see the bit streams.
CANDIDATES: dict[str, tuple[Callable[[np.ndarray], list[int]], bool]] = {
    "river ADWIN default, per event": (river_per_event(drift.ADWIN), False),
    "river PageHinkley default, per event": (river_per_event(drift.PageHinkley), False),
    "river DDM default, per event (bits)": (river_per_event(binary.DDM), True),
    "river HDDM_A default, per event (bits)": (river_per_event(binary.HDDMA), True),
    "monitor ADWIN delta=0.002 clock=1": (_monitor(detector="adwin", params={"clock": 1}),
                                          False),
    "monitor ADWIN delta=1e-5 clock=1": (_monitor(detector="adwin",
                                                  params={"delta": 1e-5, "clock": 1}), False),
    "monitor KSWIN alpha=1e-4": (_monitor(detector="kswin", params={"alpha": 1e-4}), False),
    "monitor PH thr=10 delta=0.5": (_monitor(params={"threshold": 10.0, "delta": 0.5,
                                                     "min_instances": 5, "alpha": 1.0}), False),
    "monitor PH thr=25 delta=0.5": (_monitor(
        detector="page_hinkley", params={"threshold": 25.0, "delta": 0.5,
                                         "min_instances": 5, "alpha": 1.0}), False),
    "monitor CUSUM thr=10 delta=0.5": (_monitor(params={"threshold": 10.0, "delta": 0.5}),
                                       False),
    "monitor CUSUM thr=15 delta=0.5": (_monitor(params={"threshold": 15.0, "delta": 0.5}),
                                       False),
    "monitor CUSUM thr=20 delta=0.5 (default)": (_monitor(), False),
    "monitor CUSUM thr=20, no effect guard": (_monitor(min_effect=0.0), False),
    "monitor PH thr=25, blocks of 32, 30-block warm-up (before)": (_monitor(
        detector="page_hinkley",
        params={"threshold": 25.0, "delta": 0.5, "min_instances": 5, "alpha": 1.0},
        block_size=32, warmup_blocks=30, reference_blocks=30, cooldown_blocks=30,
        min_effect=1.0), False),
}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One candidate on one scenario over ``runs`` seeded streams."""

    candidate: str
    scenario: str
    runs: int
    runs_with_alert: int
    alerts_per_run: float
    median_delay: float | None
    extra_alerts_per_run: float
    seconds: float


def measure(candidates: Iterable[str] | None = None, *, runs: int = 10,
            seed: int = 0) -> list[Measurement]:
    """Run each candidate on every scenario it applies to, ``runs`` seeds each."""
    results = []
    for name in candidates or CANDIDATES:
        runner, binary_only = CANDIDATES[name]
        for scenario, (make, shift, stable) in SCENARIOS.items():
            if binary_only and make is not _bits:
                continue
            started = time.perf_counter()
            with_alert, alerts, delays, extra = 0, 0, [], 0
            for run in range(runs):
                hits = runner(make(np.random.default_rng([seed, run]), shift))
                alerts += len(hits)
                if stable:
                    with_alert += bool(hits)
                    continue
                after = [h for h in hits if h > CHANGE_AT]
                with_alert += bool(after)
                if after:
                    delays.append(after[0] - CHANGE_AT)
                    extra += len(after) - 1
            results.append(Measurement(
                candidate=name, scenario=scenario, runs=runs, runs_with_alert=with_alert,
                alerts_per_run=alerts / runs,
                median_delay=statistics.median(delays) if delays else None,
                extra_alerts_per_run=extra / runs,
                seconds=time.perf_counter() - started))
    return results


def render(results: list[Measurement]) -> str:
    """A plain-text table: stable rows show false alarms, shifted rows show the delay."""
    lines = [f"{'candidate':42} {'scenario':16} {'alerted':>8} {'alerts/run':>10} "
             f"{'delay':>8} {'extra/run':>9}"]
    for m in results:
        delay = "-" if m.median_delay is None else f"{m.median_delay:.0f}"
        lines.append(f"{m.candidate:42} {m.scenario:16} {m.runs_with_alert:>4}/{m.runs:<3} "
                     f"{m.alerts_per_run:>10.2f} {delay:>8} {m.extra_alerts_per_run:>9.2f}")
    return "\n".join(lines)
