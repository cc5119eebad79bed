"""Training: one request in, one gated and stored version out.

The update (a short sequence of named steps), the optimizer loop, distillation from a
teacher, and cross-domain transfer of a new domain's starting adapter.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = [
    "Distillation",
    "DomainStart",
    "IncrementalUpdater",
    "TrainConfig",
    "TrainReport",
    "UpdateResult",
    "distillation_for",
    "plan_domain_start",
    "train_adapter",
]

# Re-exported lazily: importing the package must not load torch until a name needs it.
_LAZY = {
    "IncrementalUpdater": "update",
    "UpdateResult": "update",
    "TrainConfig": "loop",
    "TrainReport": "loop",
    "train_adapter": "loop",
    "Distillation": "distill",
    "distillation_for": "distill",
    "DomainStart": "transfer",
    "plan_domain_start": "transfer",
}

__getattr__ = lazy_exports(__name__, _LAZY)
