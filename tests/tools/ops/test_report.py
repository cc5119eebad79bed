"""driftloop report: the numbers it computes, and a page rendered from events on a real broker."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

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
from driftloop.tools.ops.report import build_report_data, collect_report_data, render_report

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
    assert [d for d, _, _ in data.curves["sentiment"].spans] == ["tweets", "movies"]


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
    assert page.count('<figure class="chart"') == 2 and page.count("<svg") == 3  # + lineage
    for needle in ("drift: score", "version promoted", "v1", "v2", "holdout_accuracy",
                   "+0.300", "-0.100", "adwin", "invalid_json", "tweets", "movies"):
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


async def _send_at(settings: Settings, topic: Topic, items: list[tuple[str, float]]) -> None:
    """Records with the given keys and record times (seconds): an old topic in a moment."""
    from driftloop.client.kafka import new_producer

    async with new_producer(settings, linger_ms=0) as producer:
        name = settings.kafka.topic(topic)
        sent = [await producer.send(name, f"record {n}".encode(), key=key.encode(),
                                    timestamp_ms=int(ts * 1000))
                for n, (key, ts) in enumerate(items)]
        await asyncio.gather(*sent)


@pytest.mark.kafka
async def test_a_window_starts_at_the_time_index_and_the_cap_keeps_the_latest(
        kafka_settings: Settings) -> None:
    from driftloop.tools.kafka.topic_reader import read_window

    now = time.time()
    old = [("sentiment", now - 3 * 86400 + n) for n in range(30)]
    new = [("sentiment" if n % 2 else "toxicity", now - 600 + n) for n in range(20)]
    await _send_at(kafka_settings, Topic.TRAINING_REQUESTS, old + new)
    name = kafka_settings.kafka.topic(Topic.TRAINING_REQUESTS)

    everything = await read_window(kafka_settings, name)
    assert (len(everything.records), everything.in_window, everything.capped) == (50, 50, False)
    recent = await read_window(kafka_settings, name, since_ms=int((now - 86400) * 1000))
    assert recent.in_window == 20  # the 30 old records were never fetched
    assert sorted(r.timestamp_ms for r in recent.records) == [int(ts * 1000) for _, ts in new]
    older = await read_window(kafka_settings, name, until_ms=int((now - 86400) * 1000))
    assert len(older.records) == 30
    capped = await read_window(kafka_settings, name, max_records=8,
                               keep=lambda r: r.key == b"sentiment")
    assert capped.capped and capped.in_window == 50 and capped.skipped == 42
    assert all(r.key == b"sentiment" for r in capped.records)
    assert all(r.timestamp_ms >= int((now - 600) * 1000) for r in capped.records)  # latest
    missing = await read_window(kafka_settings, "no-such-topic-here")
    assert (missing.records, missing.in_window) == ([], 0)


@pytest.mark.kafka
def test_the_command_reads_only_the_window_and_the_tasks_asked_for(
        kafka_settings: Settings, tmp_path, monkeypatch) -> None:
    from report_samples import TASK, demo_run

    t0 = time.time() - 3 * 3600
    run = demo_run(t0)
    other = [Interaction(id=f"tox{n}", ts=t0 + 2000 + n, task="toxicity", model_version="v0",
                         input="x", prediction="ok") for n in range(50)]

    async def publish() -> None:
        await produce(kafka_settings, Topic.INTERACTIONS,
                      [encode_batch(run.interactions[i:i + 120])
                       for i in range(0, len(run.interactions), 120)], key=TASK)
        await produce(kafka_settings, Topic.INTERACTIONS, [encode_batch(other)],
                      key="toxicity")
        await produce(kafka_settings, Topic.FEEDBACK, [encode_batch(run.feedback)], key=TASK)
        await produce(kafka_settings, Topic.DRIFT_ALERTS, [encode(a) for a in run.alerts],
                      key=TASK)
        await produce(kafka_settings, Topic.MODEL_VERSIONS, [encode(v) for v in run.versions],
                      key=TASK)

    asyncio.run(publish())
    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS",
                       kafka_settings.kafka.bootstrap_servers)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__TOPIC_PREFIX", kafka_settings.kafka.topic_prefix)
    # The `news` domain starts at event 720 (3 s apart): between two events, so the ISO
    # string's microsecond rounding cannot move the bound past one.
    since = datetime.fromtimestamp(t0 + 720 * 3.0 - 1.5, UTC).isoformat()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "-o", str(out), "--since", since,
                                      "--task", TASK], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "240 interactions, 240 labels, 1 alerts, 2 version events" in result.output
    page = out.read_text()
    assert "toxicity" not in page and "accuracy-by-domain-sentiment" in page
    assert "tweets" not in page and "news" in page

    capped = CliRunner().invoke(cli, ["report", "-o", str(out), "--max-records", "3"],
                                catch_exceptions=False)
    assert capped.exit_code == 0, capped.output
    assert "capped" in capped.output
    assert "The read was capped at 3 records per topic" in out.read_text()
