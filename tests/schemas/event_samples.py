"""One fully populated event of each type, unknown fields included (shared by the tests)."""

from __future__ import annotations

import base64

from driftloop.schemas import (
    DeadLetter,
    DriftAlert,
    Event,
    Feedback,
    Interaction,
    LabelRequest,
    ModelVersion,
    ServingAck,
    SiteAdapter,
    TrainingRequest,
)

INTERACTION = Interaction(
    id="i-1", ts=1_700_000_000.25, task="sentiment", domain="tweets", model_version="v3",
    input="the plot was thin but the acting carried it", output="positive",
    prediction="positive", label="positive", embedding=[0.125, -0.5, 0.75, 1.0],
    scores={"confidence": 0.81, "probabilities": {"positive": 0.81, "negative": 0.19},
            "logit": 1.45},
    metadata={"request_id": "r-9", "latency_ms": 12.5, "tags": ["a", "b"], "gone": None},
    served_by="pod-7", trace=None,
)

FULL: list[Event] = [
    INTERACTION,
    Feedback(id="f-1", interaction_id="i-1", ts=1_700_000_001.0, task="sentiment",
             kind="rating", value=4, source="reviewer", metadata={"queue": "q1"},
             reviewer_id="r-2"),
    LabelRequest(id="l-1", ts=1_700_000_002.0, task="sentiment", domain="tweets",
                 interaction=INTERACTION, reason="margin", priority=0.9, score=0.04,
                 queue="default"),
    DriftAlert(id="d-1", ts=1_700_000_003.0, task="sentiment", domain="tweets",
               signal="embedding", detector="ADWIN", model_version="v3", events_seen=5000,
               statistics={"delta": 0.002, "window": 412, "note": "mean shift"},
               severity="high"),
    TrainingRequest(
        id="tr-1", ts=1_700_000_004.0, task="sentiment", task_kind="classification",
        trigger="drift", reason="d-1", parent_version="v3", prompt_template_id="p-1",
        labels=["negative", "positive"], metadata={"alert": "d-1"},
        examples=[{"input": "awful", "target": "negative", "origin": "replay",
                   "difficulty": 0.2, "weight": 0.5, "domain": "tweets",
                   "interaction_id": "i-0", "teacher_logits": [0.1, 0.9],
                   "model_answer": "positive", "feedback_kind": "label", "regime": 2,
                   "slices": {"language": "en", "tier": "gold"}},
                  {"input": "fine film", "target": "positive"}],
        examples_ref={"uri": "file:///srv/artifacts/examples/" + "ef" * 32 + ".jsonl",
                      "sha256": "ef" * 32, "count": 4096, "size_bytes": 1_048_576},
        budget_s=60),
    ModelVersion(
        version_id="v4", ts=1_700_000_005.0, task="sentiment", base_model="minilm",
        parent_version="v3", adapter_uri="file:///srv/artifacts/ab/abcd", sha256="ab" * 32,
        size_bytes=1_234_567, format="peft-lora-safetensors", training_request_id="tr-1",
        prompt_template_id="p-1", metrics_before={"accuracy": 0.71},
        metrics_after={"accuracy": 0.84}, status="candidate", reason="gate pending",
        metadata={"site": "eu"}, ab_group="b"),
    ServingAck(ts=1_700_000_007.0, replica="pod-7", task="sentiment", version_id="v4",
               status="serving", reason="promoted", previous_version="v3",
               metadata={"load_ms": 84.0}, zone="eu-1"),
    SiteAdapter(
        ts=1_700_000_008.0, site="eu-1", task="sentiment", version_id="sentiment-1a",
        base_model="minilm", adapter_uri="file:///srv/artifacts/" + "cd" * 32, sha256="cd" * 32,
        size_bytes=4096, examples=512, lora_r=8, lora_alpha=16.0,
        target_modules=["query", "value"], labels=["negative", "positive"],
        metrics={"holdout_score": 0.84}, metadata={"round": 1}, region="eu"),
    DeadLetter(
        ts=1_700_000_006.0, source_topic="interactions", partition=2, offset=41,
        event_index=3, reason="invalid_json", error="payload is not valid JSON",
        payload_b64=base64.b64encode(b"{not json").decode(), payload_size=9, truncated=False,
        key_b64=base64.b64encode(b"sentiment").decode(), consumer="driftloop-worker",
        retries=0),
]
