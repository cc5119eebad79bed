"""``driftloop bench quality``: does the loop learn well? Offline, no broker.

Drift detection scored on streams with known change points (:mod:`.drift_eval`), detector
calibration (:mod:`.calibrate`), label efficiency of active learning
(:mod:`.label_efficiency`) and continual learning across domains (:mod:`.continual`).
"""

from __future__ import annotations

__all__: list[str] = []
