"""Events shaped like the demo's, for the report's tests: one ``sentiment`` task served
under the ``live`` domain with the true domain in ``metadata.source_domain``, four domains
in turn, drift alerts, promoted, rejected and rolled-back versions, label requests answered
by the simulated reviewer, and two serving replicas' acknowledgements."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from driftloop.schemas import (
    DriftAlert,
    Feedback,
    Interaction,
    LabelRequest,
    ModelVersion,
    ServingAck,
    TrainingExample,
    TrainingRequest,
)

TASK = "sentiment"
DOMAINS = ("tweets", "movies", "products", "news")
PER_DOMAIN = 240
STEP_S = 3.0


@dataclass
class DemoRun:
    interactions: list[Interaction] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    alerts: list[DriftAlert] = field(default_factory=list)
    requests: list[TrainingRequest] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    label_requests: list[LabelRequest] = field(default_factory=list)
    acks: list[ServingAck] = field(default_factory=list)


def _version(vid: str, status: str, ts: float, parent: str | None, request: str,
             score: tuple[float, float], reason: str) -> ModelVersion:
    before, after = score
    return ModelVersion(
        version_id=vid, ts=ts, task=TASK, base_model="minilm", parent_version=parent,
        adapter_uri=f"file:///store/{vid}", sha256="b" * 64, size_bytes=4096, status=status,
        training_request_id=request,
        metrics_before={"holdout_score": before, "holdout_loss": 1.1 - before,
                        "holdout_count": 120.0, "replay_score": 0.86, "replay_count": 60.0},
        metrics_after={"holdout_score": after, "holdout_loss": 1.1 - after,
                       "holdout_count": 120.0, "replay_score": 0.84, "replay_count": 60.0,
                       "holdout_effect": after - before, "holdout_p_better": 0.004
                       if after > before + 0.05 else 0.41, "holdout_p_worse": 0.9},
        reason=reason)


def _rejected_reason(before: float, after: float) -> str:
    return (f"recent: {after:.3f} vs {before:.3f} on 120: {after - before:+.3f} "
            f"[-0.050, +0.080], 9 won 7 lost, p(better)=0.41 >= 0.05: not shown better; "
            "older: 0.840 vs 0.860 on 60: -0.020 [-0.1, +0.06], 2 won 3 lost, "
            "p(better)=0.8, p(worse)=0.5")


def demo_run(t0: float, *, seed: int = 3) -> DemoRun:
    """About 48 minutes of traffic from ``t0``: accuracy drops at each new domain and
    recovers once a version trained on it is promoted."""
    rng = random.Random(seed)
    run = DemoRun()
    # (domain index, offset in the domain) -> what happens; the version served changes
    plan = {  # version id: (promoted at interaction n, parent)
        "sentiment-v1": 240 + 60, "sentiment-v5": 480 + 140, "sentiment-v6": 720 + 120}
    head, served_from = "sentiment-v0", {}
    for vid, n in plan.items():
        served_from[n] = vid
    rolled_back_at = 720 + 40  # v5 rolled back early in `news`, v1 serves again
    accuracy = {"sentiment-v0": {"tweets": 0.92, "movies": 0.55, "products": 0.5,
                                 "news": 0.6},
                "sentiment-v1": {"movies": 0.86, "products": 0.56, "news": 0.58},
                "sentiment-v5": {"products": 0.84, "news": 0.5},
                "sentiment-v6": {"news": 0.85}}
    for n in range(PER_DOMAIN * len(DOMAINS)):
        if n in served_from:
            head = served_from[n]
        if n == rolled_back_at:
            head = "sentiment-v1"
        domain = DOMAINS[n // PER_DOMAIN]
        ts = t0 + n * STEP_S
        truth = rng.choice(["positive", "negative"])
        rate = accuracy[head].get(domain, 0.6)
        guess = truth if rng.random() < rate else ("negative" if truth == "positive"
                                                   else "positive")
        seen = Interaction(id=f"i{n}", ts=ts, task=TASK, domain="live", model_version=head,
                           input=f"text {n}", prediction=guess,
                           scores={"confidence": 0.8},
                           metadata={"source_domain": domain})
        run.interactions.append(seen)
        if n % 10 == 7:  # active learning asks a person, the simulated reviewer answers
            request = LabelRequest(id=f"lr-{n}", ts=ts + 1, task=TASK, interaction=seen,
                                   reason="margin", priority=0.7)
            run.label_requests.append(request)
            if n % 20 == 7:
                run.feedback.append(Feedback(
                    id=f"r{n}", interaction_id=seen.id, ts=ts + 30, task=TASK, kind="label",
                    value=truth, source="reviewer", metadata={"label_request_id": request.id}))
                continue
        run.feedback.append(Feedback(id=f"f{n}", interaction_id=seen.id, ts=ts + 2,
                                     task=TASK, kind="label", value=truth))

    def at(n: int) -> float:
        return t0 + n * STEP_S

    run.alerts = [
        DriftAlert(id="drift-1", ts=at(240 + 25), task=TASK, domain="live", signal="error_rate",
                   detector="adwin", statistics={"mean_before": 0.1, "mean_after": 0.42,
                                                 "events_seen": 265.0}),
        DriftAlert(id="drift-2", ts=at(240 + 20), task=TASK, domain="live", signal="embedding",
                   detector="cusum", statistics={"effect_z": 4.2, "component": "proj-3"}),
        DriftAlert(id="drift-3", ts=at(480 + 30), task=TASK, domain="live", signal="score",
                   detector="cusum", statistics={"reference_mean": 0.81,
                                                 "current_mean": 0.62, "effect_z": -3.1}),
        DriftAlert(id="drift-4", ts=at(720 + 30), task=TASK, domain="live", signal="error_rate",
                   detector="adwin", statistics={"mean_before": 0.16, "mean_after": 0.45}),
    ]
    steps = [  # version, status, at interaction n, parent, (before, after)
        ("sentiment-v1", "promoted", 240 + 60, "sentiment-v0", (0.55, 0.84)),
        ("sentiment-v2", "rejected", 480 + 50, "sentiment-v1", (0.56, 0.58)),
        ("sentiment-v3", "rejected", 480 + 80, "sentiment-v1", (0.56, 0.55)),
        ("sentiment-v4", "rejected", 480 + 110, "sentiment-v1", (0.57, 0.6)),
        ("sentiment-v5", "promoted", 480 + 140, "sentiment-v1", (0.57, 0.83)),
        ("sentiment-v6", "promoted", 720 + 120, "sentiment-v1", (0.58, 0.85)),
    ]
    for k, (vid, status, n, parent, score) in enumerate(steps, start=1):
        request = TrainingRequest(id=f"tr-{k}", ts=at(n) - 45.0, task=TASK, trigger="drift",
                                  parent_version=parent,
                                  examples=[TrainingExample(input="x", target="positive")])
        run.requests.append(request)
        reason = ("recent: better on 120, p(better)=0.004 < 0.05: better"
                  if status == "promoted" else _rejected_reason(*score))
        run.versions.append(_version(vid, status, at(n), parent, request.id, score, reason))
        if status == "promoted":
            for replica, delay in (("pod-a", 2.5), ("pod-b", 6.0)):
                run.acks.append(ServingAck(ts=at(n) + delay, replica=replica, task=TASK,
                                           version_id=vid, status="serving"))
    v5 = next(v for v in run.versions if v.version_id == "sentiment-v5")
    run.versions.append(v5.with_status("rolled_back", ts=at(rolled_back_at),
                                       reason="error rate on news above the threshold"))
    run.acks.append(ServingAck(ts=at(rolled_back_at) + 3, replica="pod-b", task=TASK,
                               version_id="sentiment-v1", status="serving"))
    run.versions.sort(key=lambda v: v.ts)
    return run
