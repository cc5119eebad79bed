"""The report's computations one by one, on events shaped like the demo's: the per-domain
and per-version split, the direction of deltas and alerts, the lineage and its runs of
rejections, alert-to-version and update latencies, label requests, acks and the bounds."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from report_samples import DOMAINS, STEP_S, TASK, demo_run

from driftloop.schemas import DriftAlert, Feedback, Interaction, ModelVersion, VersionStatus
from driftloop.tools.cli import cli
from driftloop.tools.errors import InvalidTimeBound
from driftloop.tools.kafka.topic_reader import keep_latest
from driftloop.tools.ops.report import ReportBounds, build_report_data, parse_time, render_report
from driftloop.tools.ops.report.alerts import alert_direction, direction_is_worse
from driftloop.tools.ops.report.gate import GateRow, format_value, gate_rows
from driftloop.tools.ops.report.lineage import reason_gists, rejection_runs

T0 = 1_790_000_000.0


def at(n: int) -> float:
    return T0 + n * STEP_S


@pytest.fixture(scope="module")
def run():  # type: ignore[no-untyped-def]
    return demo_run(T0)


def build(run, **kwargs):  # type: ignore[no-untyped-def]
    return build_report_data(run.interactions, run.feedback, run.alerts, run.requests,
                             run.versions, label_requests=run.label_requests, acks=run.acks,
                             **kwargs)


def test_domains_come_from_the_metadata_not_the_served_domain(run) -> None:  # type: ignore[no-untyped-def]
    curves = build(run, window=40).curves[TASK]
    assert set(curves.by_domain) == set(DOMAINS)  # not one "live" band
    assert [d for d, _, _ in curves.spans] == list(DOMAINS)
    tweets, movies = curves.by_domain["tweets"], curves.by_domain["movies"]
    assert tweets[-1].accuracy > 0.8
    # movies before v1 was promoted (interaction 300) are served by v0 and mostly wrong
    early_movies = [p for p in movies if p.ts < at(300)]
    assert early_movies and min(p.accuracy for p in early_movies) < 0.65
    assert all(p.domain == "movies" for p in movies)


def test_an_interaction_without_a_source_domain_keeps_its_own() -> None:
    seen = [Interaction(id=f"i{n}", ts=T0 + n, task="t", domain="shop", model_version="v0",
                        input="x", prediction="a") for n in range(4)]
    said = [Feedback(id=f"f{n}", interaction_id=f"i{n}", ts=T0 + n, task="t", kind="label",
                     value="a") for n in range(4)]
    assert list(build_report_data(seen, said, window=2).curves["t"].by_domain) == ["shop"]


def test_each_version_gets_the_curve_of_the_labels_it_served(run) -> None:  # type: ignore[no-untyped-def]
    by_version = build(run, window=40).curves[TASK].by_version
    assert list(by_version) == ["sentiment-v0", "sentiment-v1", "sentiment-v5",
                                "sentiment-v6"]
    assert all(p.model_version == "sentiment-v6" for p in by_version["sentiment-v6"])
    assert by_version["sentiment-v6"][-1].accuracy > 0.7  # trained on news
    assert by_version["sentiment-v0"][-1].accuracy < 0.7  # still serving when movies came


@pytest.mark.parametrize(("metric", "before", "after", "better"), [
    ("holdout_loss", 0.7, 0.5, True), ("holdout_loss", 0.5, 0.7, False),
    ("holdout_score", 0.6, 0.8, True), ("replay_score", 0.9, 0.8, False),
    ("macro_f1", 0.5, 0.6, True), ("error_rate", 0.1, 0.2, False),
    ("p95_latency_seconds", 0.3, 0.2, True), ("holdout_count", 100.0, 120.0, None),
    ("holdout_score", 0.8, 0.8, None)])
def test_a_delta_is_better_by_the_metric_s_direction(metric: str, before: float, after: float,
                                                     better: bool | None) -> None:
    assert GateRow(metric, before, after).better is better


def test_the_gate_table_colours_a_lower_loss_green_and_prints_counts_as_integers(
        run) -> None:  # type: ignore[no-untyped-def]
    page = render_report(build(run, window=40))
    v1 = page.index("data-version='sentiment-v1'")
    table = page[v1:page.index("</table>", v1)]
    loss = table[table.index("holdout_loss"):]
    loss = loss[:loss.index("</tr>")]
    assert "class='num better'>-0.290" in loss  # lower loss: better, green
    replay = table[table.index("replay_score"):]
    assert "class='num worse'>-0.020" in replay[:replay.index("</tr>")]
    count = table[table.index("holdout_count"):]
    assert ">120<" in count[:count.index("</tr>")] and "120.0" not in table
    assert format_value("holdout_count", 120.0) == "120"
    v1_event = next(v for v in run.versions if v.version_id == "sentiment-v1")
    assert "holdout_p_better" not in {r.metric for r in gate_rows(v1_event)}
    assert "p better 0.004" in page  # the paired test's figures, apart from the table


def test_the_lineage_follows_parents_and_the_last_status(run) -> None:  # type: ignore[no-untyped-def]
    nodes = build(run).lineage[TASK]
    assert [(n.version_id, n.parent, n.status) for n in nodes] == [
        ("sentiment-v1", "sentiment-v0", VersionStatus.PROMOTED),
        ("sentiment-v2", "sentiment-v1", VersionStatus.REJECTED),
        ("sentiment-v3", "sentiment-v1", VersionStatus.REJECTED),
        ("sentiment-v4", "sentiment-v1", VersionStatus.REJECTED),
        ("sentiment-v5", "sentiment-v1", VersionStatus.ROLLED_BACK),
        ("sentiment-v6", "sentiment-v1", VersionStatus.PROMOTED)]
    v5 = nodes[4]
    assert [s for _, s in v5.statuses] == [VersionStatus.PROMOTED, VersionStatus.ROLLED_BACK]
    assert v5.decided_ts == at(480 + 140)  # the gate's decision, not the rollback
    page = render_report(build(run))
    assert page.count('<g class="version ') == 6
    assert page.count('<g class="version rolled_back"') == 1


def test_a_run_of_rejections_is_explained_by_its_grouped_causes(run) -> None:  # type: ignore[no-untyped-def]
    runs = rejection_runs(build(run).lineage[TASK])
    assert len(runs) == 1
    assert runs[0].versions == ("sentiment-v2", "sentiment-v3", "sentiment-v4")
    assert runs[0].causes == (("recent: not shown better", 3),)
    assert "3 candidates in a row were rejected: recent: not shown better (3 of 3)" in (
        render_report(build(run)))
    assert reason_gists("replay: 0.700 < 0.900 - 0.05 (forgetting)") == ["replay: forgetting"]
    assert reason_gists("holdout: 0.800 > 0.700") == []  # a passing clause is no cause


def test_alerts_have_a_direction_and_the_version_that_answered_them(run) -> None:  # type: ignore[no-untyped-def]
    data = build(run)
    answers = {a.alert.id: a for a in data.answers}
    assert (answers["drift-1"].version_id, answers["drift-1"].latency_s) == (
        "sentiment-v1", pytest.approx(at(300) - at(265)))
    assert answers["drift-3"].version_id == "sentiment-v5"  # the rejected ones do not answer
    assert answers["drift-3"].latency_s == pytest.approx(at(620) - at(510))
    directions = {a.id: alert_direction(a) for a in run.alerts}
    assert directions == {"drift-1": "up", "drift-2": None, "drift-3": "down",
                          "drift-4": "up"}
    alert = run.alerts[0]
    assert direction_is_worse(alert.signal, "up") is True
    late = DriftAlert(id="late", ts=at(2000), task=TASK, signal="score", detector="adwin")
    assert build_report_data([], [], [late], [], run.versions).answers[0].version_id is None


def test_update_latency_is_from_the_request_to_the_gate_s_decision(run) -> None:  # type: ignore[no-untyped-def]
    nodes = build(run).lineage[TASK]
    assert [n.update_latency_s for n in nodes] == [pytest.approx(45.0)] * 6
    assert "median 45 s" in render_report(build(run))


def test_label_requests_and_the_reviewer_s_answers_are_counted(run) -> None:  # type: ignore[no-untyped-def]
    counts = build(run).label_requests[TASK]
    assert (counts.sent, counts.answered, counts.pending) == (96, 48, 48)
    assert counts.median_answer_s == pytest.approx(29.0)


def test_serving_acks_per_replica(run) -> None:  # type: ignore[no-untyped-def]
    replicas = {r.latest.replica: r for r in build(run).replicas[TASK]}
    assert replicas["pod-a"].acks == 3 and replicas["pod-b"].acks == 4
    assert replicas["pod-a"].latest.version_id == "sentiment-v6"
    assert replicas["pod-a"].median_delay_s == pytest.approx(2.5)
    assert replicas["pod-b"].median_delay_s == pytest.approx(6.0)


def test_events_outside_the_window_or_of_other_tasks_are_not_counted(run) -> None:  # type: ignore[no-untyped-def]
    other = Interaction(id="o1", ts=at(500), task="toxicity", model_version="v0", input="x")
    bounds = ReportBounds(since=at(240), until=at(479), tasks=frozenset({TASK}))
    data = build_report_data([*run.interactions, other], run.feedback, run.alerts,
                             run.requests, run.versions, label_requests=run.label_requests,
                             acks=run.acks, bounds=bounds)
    assert data.interactions == 240  # movies only
    assert set(data.curves[TASK].by_domain) == {"movies"}
    assert [a.id for a in data.alerts] == ["drift-2", "drift-1"]
    assert [v.version_id for v in data.versions] == ["sentiment-v1"]
    assert data.label_requests[TASK].sent == 24
    assert data.tasks == [TASK]
    assert "toxicity" not in render_report(data)


def test_time_bounds_parse_iso_and_relative_forms() -> None:
    assert parse_time("30m", now=10_000.0) == 8_200.0
    assert parse_time("1d", now=100_000.0) == 100_000.0 - 86_400
    assert parse_time("2026-12-04T15:00:00") == parse_time("2026-12-04T15:00:00+00:00")
    with pytest.raises(InvalidTimeBound, match="not a time"):
        parse_time("2 fortnights")
    with pytest.raises(InvalidTimeBound, match="ends"):
        ReportBounds(since=parse_time("1h"), until=parse_time("2h"))


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last tuesday"], "'last tuesday' is not a time"),
    (["--since", "1h", "--until", "2h"], "ends"),
    (["--max-records", "0"], "--max-records"),
])
def test_bad_bounds_are_usage_errors(args: list[str], message: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["report", "-o", str(tmp_path / "r.html"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "r.html").exists()


def test_the_cap_keeps_the_latest_records_shared_over_partitions() -> None:
    assert keep_latest({0: 1000, 1: 1000, 2: 1000}, 300) == {0: 100, 1: 100, 2: 100}
    assert keep_latest({0: 20, 1: 1000}, 300) == {0: 20, 1: 280}
    assert sum(keep_latest({0: 7, 1: 9, 2: 400}, 50).values()) == 50


def test_an_empty_window_still_renders() -> None:
    now = time.time()
    page = render_report(build_report_data([], [], bounds=ReportBounds(since=now - 60)))
    assert "no events on the topics yet" in page.lower() and "from " in page


def test_a_version_with_no_metrics_says_so() -> None:
    bare = ModelVersion(version_id="v1", ts=T0, task="t", base_model="m",
                        adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
                        status="promoted")
    assert "no gate metrics" in render_report(build_report_data([], [], versions=[bare]))
