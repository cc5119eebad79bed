"""``driftloop bench ...``: every benchmark measures driftloop beside its baseline in one run.

One module per benchmark (registered in :data:`driftloop.tools.commands.bench.BENCHES`):
:mod:`.codec`, :mod:`.worker`, :mod:`.learner` (with :mod:`.trainer_baseline`), :mod:`.serve`,
:mod:`.quality` (drift evaluation, calibration, label efficiency, continual learning) and
:mod:`.faults` (the fault rig and its scenarios).
"""

from __future__ import annotations

__all__: list[str] = []
