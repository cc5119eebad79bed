"""The gate: what a candidate is judged on, and the rule that judges it.

The request's split (train, validation, held-out), the pool of earlier held-out examples,
challenge suites and the probes grown from real errors, paraphrases and prompt stability,
and the promotion rule.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = [
    "ChallengeCase",
    "ChallengeSuite",
    "GateDecision",
    "GatePool",
    "GatePoolFile",
    "GateRule",
    "ParaphraseSet",
    "RequestSplit",
    "TaskGatePools",
    "score_for_gate",
    "split_request",
    "stability_metrics",
]

# Re-exported lazily: importing the package must not load torch until a name needs it.
_LAZY = {
    "GateDecision": "rule",
    "GateRule": "rule",
    "GatePool": "pool",
    "GatePoolFile": "pool_file",
    "TaskGatePools": "pool_file",
    "RequestSplit": "split",
    "split_request": "split",
    "ChallengeCase": "challenges",
    "ChallengeSuite": "challenges",
    "ParaphraseSet": "paraphrases",
    "stability_metrics": "stability",
    "score_for_gate": "evidence",
}

__getattr__ = lazy_exports(__name__, _LAZY)
