"""driftloop report: the numbers it computes, and a page rendered from events on a real broker."""

from __future__ import annotations

import asyncio
import random

import pytest
from click.testing import CliRunner
from kafka_helpers import produce

from driftloop.schemas import (
    DeadLetter,
    DriftAlert,
    Feedback,
    Interaction,
    ModelVersion,
    Topic,
    TrainingExample,
    TrainingRequest,
    encode,
    encode_batch,
)
from driftloop.schemas.settings import Settings
from driftloop.tools.cli import cli
from driftloop.tools.ops.report.data import build_report_data, collect_report_data
from driftloop.tools.ops.report.page import render_report

T0 = 1_800_000_000.0


def stream(n: int, *, switch_at: int, seed: int = 7) -> tuple[list[Interaction], list[Feedback]]:
    """Interactions whose accuracy drops from ~90% to ~50% when the domain changes."""
    rng = random.Random(seed)
    seen, said = [], []
    for i in range(n):
        domain = "tweets" if i < switch_at else "movies"
        truth = rng.choice(["pos", "neg"])
        right = rng.random() < (0.9 if i < switch_at else 0.5)
        guess = truth if right else ("neg" if truth == "pos" else "pos")
        seen.append(Interaction(id=f"i{i}", ts=T0 + i, task="sentiment", domain=domain,
                                model_version="v0", input=f"text {i}", prediction=guess,
                                scores={"confidence": 0.8}))
        said.append(Feedback(id=f"f{i}", interaction_id=f"i{i}", ts=T0 + i + 0.5,
                             task="sentiment", kind="label", value=truth))
    return seen, said


def version(vid: str, status: str, ts: float, parent: str | None = None,
            request: str | None = None) -> ModelVersion:
    return ModelVersion(version_id=vid, ts=ts, task="sentiment", base_model="minilm",
                        parent_version=parent, adapter_uri=f"file:///store/{vid}",
                        sha256="b" * 64, size_bytes=100, status=status,
                        training_request_id=request,
                        metrics_before={"holdout_accuracy": 0.5},
                        metrics_after={"holdout_accuracy": 0.8 if status == "promoted" else 0.4},
                        reason="candidate better on holdout" if status == "promoted" else
                        "worse on holdout")


def loop_events() -> tuple[list[DriftAlert], list[TrainingRequest], list[ModelVersion]]:
    alert = DriftAlert(id="a1", ts=T0 + 420, task="sentiment", domain="movies", signal="score",
                       detector="adwin", statistics={"delay": 20.0, "mean_after": 0.41})
    request = TrainingRequest(id="r1", ts=T0 + 430, task="sentiment", trigger="drift",
                              examples=[TrainingExample(input="x", target="pos")])
    versions = [version("v1", "promoted", T0 + 470, "v0", "r1"),
                version("v2", "rejected", T0 + 520, "v1", "r2")]
    return [alert], [request], versions


def test_accuracy_follows_the_labels_and_domains_are_spans() -> None:
    seen, said = stream(800, switch_at=400)
    duplicate = said[0]
    unjoined = Feedback(id="lost", interaction_id="nowhere", ts=T0, task="sentiment",
                        kind="label", value="pos")
    data = build_report_data(seen, [*said, duplicate, unjoined], window=100)
    points = data.accuracy["sentiment"]
    assert data.labelled == 800  # the duplicate and the unjoined feedback are not counted
    assert len(points) == 800 - 49  # points start once half a window (50) is seen
    assert data.feedback == 802
    last_tweet = next(p for p in points if p.ts == T0 + 399)
    assert last_tweet.accuracy > 0.8 and last_tweet.domain == "tweets"
    assert points[-1].accuracy < 0.65
    assert [d for d, _, _ in data.domain_spans["sentiment"]] == ["tweets", "movies"]


def test_corrections_count_as_errors_and_ratings_do_not_count() -> None:
    seen, _ = stream(3, switch_at=3)
    said = [Feedback(id="c", interaction_id="i0", ts=T0, task="sentiment", kind="correction",
                     value="fixed"),
            Feedback(id="r", interaction_id="i1", ts=T0, task="sentiment", kind="rating",
                     value=5)]
    data = build_report_data(seen, said, window=1)
    assert [p.accuracy for p in data.accuracy["sentiment"]] == [0.0]


def test_page_marks_every_loop_event_and_escapes_text() -> None:
    seen, said = stream(600, switch_at=400)
    alerts, requests, versions = loop_events()
    letters = [DeadLetter(ts=T0, source_topic="interactions", partition=0, offset=3,
                          reason="invalid_json", error="<script>", payload_b64="",
                          payload_size=0)]
    page = render_report(build_report_data(seen, said, alerts, requests, versions, letters),
                         source="<b>broker</b>")
    assert page.count("<svg") == 1
    for needle in ("drift alert", "training request", "version promoted", "version rejected",
                   "v1", "v2", "holdout_accuracy: 0.500 → 0.800", "(+0.300)", "(-0.100)",
                   "adwin", "invalid_json", "tweets", "movies"):
        assert needle in page, needle
    assert "<b>broker</b>" not in page and "&lt;b&gt;broker&lt;/b&gt;" in page


def test_an_empty_deployment_renders_a_page_that_says_so() -> None:
    page = render_report(build_report_data([], []))
    assert "no events on the topics yet" in page.lower()


@pytest.mark.kafka
def test_report_from_events_on_the_broker(kafka_settings: Settings, tmp_path,
                                          monkeypatch) -> None:
    seen, said = stream(500, switch_at=300)
    alerts, requests, versions = loop_events()

    async def publish() -> None:
        await produce(kafka_settings, Topic.INTERACTIONS,
                      [encode_batch(seen[i:i + 100]) for i in range(0, 500, 100)])
        await produce(kafka_settings, Topic.FEEDBACK, [encode(f) for f in said] + [b"not json"])
        await produce(kafka_settings, Topic.DRIFT_ALERTS, [encode(a) for a in alerts])
        await produce(kafka_settings, Topic.TRAINING_REQUESTS, [encode(r) for r in requests])
        await produce(kafka_settings, Topic.MODEL_VERSIONS, [encode(v) for v in versions])

    asyncio.run(publish())
    data = asyncio.run(collect_report_data(kafka_settings))
    assert (data.interactions, data.labelled, len(data.alerts)) == (500, 500, 1)
    assert [v.version_id for v in data.versions] == ["v1", "v2"]
    assert data.unreadable == {kafka_settings.kafka.topic(Topic.FEEDBACK): 1}

    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS",
                       kafka_settings.kafka.bootstrap_servers)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__TOPIC_PREFIX", kafka_settings.kafka.topic_prefix)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "500 interactions, 500 labels, 1 alerts, 2 version events" in result.output
    page = out.read_text()
    assert "version promoted" in page and "Records the report could not read" in page


@pytest.mark.kafka
def test_worker_commands_on_the_feedback_topic_are_not_counted_unreadable(
        kafka_settings: Settings) -> None:
    from driftloop.schemas.commands import manual_trigger
    from driftloop.streams.control import send_commands

    _, said = stream(20, switch_at=10)

    async def publish() -> None:
        await produce(kafka_settings, Topic.FEEDBACK, [encode(f) for f in said])
        await send_commands(kafka_settings, [manual_trigger("sentiment", reason="test")])

    asyncio.run(publish())
    data = asyncio.run(collect_report_data(kafka_settings))
    assert data.feedback == 20 and not data.unreadable
