"""``driftloop bench faults``: inject faults into a running deployment, then account for it.

The rig (:mod:`.rig`: a broker of its own, the components as processes, traffic), the
scenarios (:mod:`.scenarios`) and the command that runs them (:mod:`.run`).
"""

from __future__ import annotations

__all__: list[str] = []
