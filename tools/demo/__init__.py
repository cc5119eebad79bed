"""``driftloop demo``: the whole loop on the VADER stream, with a verdict against a static model.

The run (:mod:`.run`) reads as its steps: the profile and the children's settings
(:mod:`.profile`), the first, static version (:mod:`.bootstrap`), the loop (:mod:`.live`,
talking to the children through :mod:`.endpoints`) and the final judgement (:mod:`.judge`,
:mod:`.verdict`). Beside them: the traffic and simulated people (:mod:`.traffic`), the child
processes (:mod:`.processes`), the progress line (:mod:`.progress`) and the VADER loader
(:mod:`.vader`).
"""

from __future__ import annotations

from ...learner.lazy import lazy_exports

__all__ = ["DemoProfile", "DemoResult", "Verdict", "read_domain", "run_demo"]

# Re-exported lazily: the verdict loads torch, the command line should not.
_LAZY = {"DemoProfile": "profile", "DemoResult": "run", "run_demo": "run", "Verdict": "verdict",
         "read_domain": "vader"}

__getattr__ = lazy_exports(__name__, _LAZY)
