"""``driftloop bench quality``: does the loop learn well? Offline, no broker.

Drift detection scored on streams with known change points (:mod:`.drift_eval`), detector
calibration (:mod:`.calibrate`), label efficiency of active learning
(:mod:`.label_efficiency`, on :mod:`.embedding`) and continual learning under live conditions
(:mod:`.live_bench`: the live loop of :mod:`.live_loop` on the streams of
:mod:`.live_streams`, measured by :mod:`.live_metrics`).
"""

from __future__ import annotations

__all__: list[str] = []
