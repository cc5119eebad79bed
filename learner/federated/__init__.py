"""Federated adapters: sites offer promoted adapters, one round merges, gates and publishes.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = [
    "FederatedAggregator",
    "FederatedResult",
    "GateScorer",
    "Offer",
    "RoundOutcome",
    "SiteInputs",
    "load_eval_set",
    "merge_lora_states",
    "run_round",
]

# Re-exported lazily: importing the package must not load torch until a name needs it.
_LAZY = {
    "FederatedAggregator": "aggregator",
    "FederatedResult": "aggregator",
    "RoundOutcome": "round",
    "run_round": "round",
    "merge_lora_states": "lora_merge",
    "load_eval_set": "eval_set",
    "Offer": "offers",
    "SiteInputs": "offers",
    "GateScorer": "scoring",
}

__getattr__ = lazy_exports(__name__, _LAZY)
