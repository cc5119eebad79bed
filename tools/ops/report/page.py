"""Render :class:`~driftloop.tools.ops.report.data.ReportData` as one self-contained HTML page
(inline SVG charts, inline CSS, no script, nothing fetched)."""

from __future__ import annotations

import html
import re
import statistics
from datetime import UTC, datetime

from ....schemas import VersionStatus
from .alerts import AlertAnswer, alert_direction, direction_is_worse
from .charts import accuracy_chart
from .data import ReportData
from .gate import format_value, gate_rows, test_figures
from .lineage import VersionNode, rejection_runs
from .lineage_svg import lineage_svg

__all__ = ["render_report"]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5rem auto;
max-width:1180px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
h2{border-top:2px solid #eee;padding-top:1rem;margin-top:2rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.5rem} .card span{color:#666;font-size:.85rem}
table{border-collapse:collapse;margin:.6rem 0 1.4rem;font-size:.86rem}
table.wide{width:100%}
th,td{border-bottom:1px solid #eee;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#fafafa} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.promoted{color:#2ca02c;font-weight:600} .rejected{color:#7f7f7f;font-weight:600}
.rolled_back{color:#9467bd;font-weight:600} .candidate{color:#1f77b4}
.better{color:#1a7f37;font-weight:600} .worse{color:#cf222e;font-weight:600}
.neutral{color:#555}
figure.chart{margin:.4rem 0 1rem} figure.chart svg{max-width:100%;height:auto}
figure.lineage svg{max-width:none} .scroll{overflow-x:auto}
figcaption{color:#666;font-size:.8rem}
.empty{color:#888;font-style:italic}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.6rem 0}
.why{background:#f6f8fa;border-left:4px solid #9a9a9a;padding:.5rem .8rem;margin:.6rem 0}
details{border:1px solid #eee;border-radius:6px;padding:.3rem .6rem;margin:.35rem 0}
summary{cursor:pointer} .reason{color:#444;font-size:.85rem;white-space:pre-wrap}
.tests{color:#444;font-size:.85rem}
"""

DOMAIN_CAPTION = (
    "Each coloured line is one domain's accuracy over its own latest labels (the true "
    "domain, metadata.source_domain, when the producer names it); shading marks the "
    "stretches of traffic from each domain; grey is all traffic. Dashed lines are drift "
    "alerts, coloured by signal, the triangle pointing the way the signal moved; solid "
    "green lines are promotions, dash-dotted purple ones rollbacks.")
VERSION_CAPTION = (
    "Each line is the accuracy of the labels one model version served: a new version's "
    "line starts where it took over.")
OPEN_LATEST = 6  # gate evidence shown unfolded for the latest versions of a task


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


def _e(text: object) -> str:
    return html.escape(str(text))


def _stat(value: object) -> str:
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() and abs(value) >= 1 else f"{value:.3g}"
    return str(value)


def _alerts_table(answers: list[AlertAnswer], limit: int = 40) -> str:
    if not answers:
        return '<p class="empty">No drift alert for this task.</p>'
    rows = []
    for answer in answers[-limit:]:
        alert = answer.alert
        direction = alert_direction(alert)
        worse = direction_is_worse(alert.signal, direction)
        arrow = {"up": "↑ up", "down": "↓ down", None: "—"}[direction]
        cls = {True: "worse", False: "better", None: "neutral"}[worse]
        stats = ", ".join(f"{k}={_stat(v)}" for k, v in sorted(alert.statistics.items()))
        rows.append(
            f"<tr><td>{_when(alert.ts)}</td><td>{_e(alert.domain)}</td>"
            f"<td>{_e(alert.signal.value)}</td><td class='{cls}'>{arrow}</td>"
            f"<td>{_e(alert.detector)}</td><td>{_e(answer.version_id or 'not yet')}</td>"
            f"<td class='num'>{_duration(answer.latency_s)}</td>"
            f"<td class='reason'>{_e(stats)}</td></tr>")
    more = (f"<p>Showing the latest {limit} of {len(answers)} alerts.</p>"
            if len(answers) > limit else "")
    latencies = [a.latency_s for a in answers if a.latency_s is not None]
    summary = (f"<p>{len(latencies)} of {len(answers)} alerts answered by a promoted version; "
               f"median time from alert to answer {_duration(statistics.median(latencies))}."
               "</p>" if latencies else
               f"<p>None of the {len(answers)} alerts has been answered by a promoted "
               "version yet.</p>")
    return (summary + "<table class='wide alerts'><tr><th>time (UTC)</th><th>domain</th>"
            "<th>signal</th><th>direction</th><th>detector</th><th>answered by</th>"
            f"<th class='num'>after</th><th>statistics</th></tr>{''.join(rows)}</table>{more}")


def _gate_table(node: VersionNode) -> str:
    rows = []
    for row in gate_rows(node.event):
        cls = {True: "better", False: "worse", None: "neutral"}[row.better]
        parent = "—" if row.parent is None else format_value(row.metric, row.parent)
        candidate = "—" if row.candidate is None else format_value(row.metric, row.candidate)
        delta = "" if row.delta is None else (
            f"{row.delta:+,.0f}" if cls == "neutral" and float(row.delta).is_integer()
            else f"{row.delta:+.3f}")
        rows.append(f"<tr><td>{_e(row.metric)}</td><td class='num'>{parent}</td>"
                    f"<td class='num'>{candidate}</td><td class='num {cls}'>{delta}</td></tr>")
    if not rows:
        return '<p class="empty">The event carries no gate metrics.</p>'
    return ("<table class='gate'><tr><th>metric</th><th class='num'>parent</th>"
            "<th class='num'>candidate</th><th class='num'>Δ</th></tr>"
            + "".join(rows) + "</table>")


def _tests_line(node: VersionNode) -> str:
    figures = test_figures(node.event)
    if not figures:
        return ""
    parts = []
    for part, values in figures.items():
        shown = ", ".join(f"{name.replace('_', ' ')} {format_value(name, v)}"
                          for name, v in values.items())
        parts.append(f"<b>{_e(part)}</b>: {_e(shown)}")
    return "<p class='tests'>Paired tests — " + "; ".join(parts) + "</p>"


def _versions(nodes: list[VersionNode]) -> str:
    if not nodes:
        return '<p class="empty">No model version published for this task yet.</p>'
    out = []
    for index, node in enumerate(nodes):
        status = node.status.value
        trigger = node.request.trigger.value if node.request is not None else "—"
        history = " → ".join(s.value for _, s in node.statuses)
        opened = " open" if index >= len(nodes) - OPEN_LATEST else ""
        out.append(
            f"<details class='version-evidence'{opened} data-version='{_e(node.version_id)}'>"
            f"<summary><b>{_e(node.version_id)}</b> · <span class='{status}'>{_e(history)}"
            f"</span> · parent {_e(node.parent or '—')} · trigger {_e(trigger)} · "
            f"{_when(node.first_ts)} · update took {_duration(node.update_latency_s)}"
            f"</summary>{_gate_table(node)}{_tests_line(node)}"
            f"<p class='reason'>{_e(node.event.reason or 'no reason given')}</p></details>")
    latencies = [n.update_latency_s for n in nodes if n.update_latency_s is not None]
    summary = (f"<p>Update latency (training request → gate decision): median "
               f"{_duration(statistics.median(latencies))}, longest "
               f"{_duration(max(latencies))} over {len(latencies)} updates.</p>"
               if latencies else "")
    return summary + "".join(out)


def _why_rejected(nodes: list[VersionNode]) -> str:
    return "".join(
        f"<p class='why'><b>{_clock(run.start)} to {_clock(run.end)}</b>: {_e(run.sentence())}"
        "</p>" for run in rejection_runs(nodes))


def _label_requests(data: ReportData, task: str) -> str:
    counts = data.label_requests.get(task)
    if counts is None:
        return '<p class="empty">No label request for this task.</p>'
    return ("<table class='label-requests'><tr><th class='num'>sent</th>"
            "<th class='num'>answered</th><th class='num'>pending</th>"
            "<th class='num'>median time to answer</th></tr>"
            f"<tr><td class='num'>{counts.sent:,}</td><td class='num'>{counts.answered:,}</td>"
            f"<td class='num'>{counts.pending:,}</td>"
            f"<td class='num'>{_duration(counts.median_answer_s)}</td></tr></table>")


def _replicas(data: ReportData, task: str) -> str:
    replicas = data.replicas.get(task, [])
    if not replicas:
        return '<p class="empty">No serving replica acknowledged a version of this task.</p>'
    head = next((n.version_id for n in reversed(data.lineage.get(task, []))
                 if n.status is VersionStatus.PROMOTED), None)
    rows = []
    for replica in replicas:
        state = replica.latest
        current = state.serving and (head is None or state.version_id == head)
        cls = "better" if current else "worse"
        rows.append(
            f"<tr><td>{_e(state.replica)}</td><td>{_e(state.version_id)}</td>"
            f"<td class='{cls}'>{'serving' if state.serving else 'refused'}</td>"
            f"<td>{_when(state.ts)}</td><td class='num'>{replica.acks:,}</td>"
            f"<td class='num'>{replica.refused:,}</td>"
            f"<td class='num'>{_duration(replica.median_delay_s)}</td>"
            f"<td class='reason'>{_e(state.reason)}</td></tr>")
    return ("<table class='wide replicas'><tr><th>replica</th><th>latest version</th>"
            "<th>state</th><th>acknowledged (UTC)</th><th class='num'>acks</th>"
            "<th class='num'>refused</th><th class='num'>median promotion → ack</th>"
            "<th>reason</th></tr>" + "".join(rows) + "</table>")


def _task_section(data: ReportData, task: str) -> list[str]:
    slug = _slug(task)
    curves = data.curves.get(task)
    alerts = [a for a in data.alerts if a.task == task]
    versions = [v for v in data.versions if v.task == task]
    nodes = data.lineage.get(task, [])
    out = [f"<h2 id='task-{slug}'>Task <code>{_e(task)}</code></h2>", _why_rejected(nodes)]
    if curves is not None:
        out += [
            accuracy_chart(curves.by_domain, chart_id=f"accuracy-by-domain-{slug}",
                           title=f"{task}: accuracy per domain (last {data.window} labels "
                                 "of each domain)",
                           alerts=alerts, versions=versions, overall=curves.overall,
                           spans=curves.spans, caption=DOMAIN_CAPTION),
            accuracy_chart(curves.by_version, chart_id=f"accuracy-by-version-{slug}",
                           title=f"{task}: accuracy per serving version (last {data.window} "
                                 "labels of each version)",
                           alerts=alerts, versions=versions, caption=VERSION_CAPTION)]
    else:
        out.append('<p class="empty">No label joined to an interaction of this task.</p>')
    out += ["<h3>Version lineage</h3>",
            lineage_svg(nodes, chart_id=f"lineage-{slug}")
            or '<p class="empty">No model version published for this task yet.</p>',
            "<h3>Drift alerts and the versions that answered them</h3>",
            _alerts_table([a for a in data.answers if a.alert.task == task]),
            "<h3>Versions and the gate's evidence</h3>", _versions(nodes),
            "<h3>Label requests</h3>", _label_requests(data, task),
            "<h3>Serving replicas</h3>", _replicas(data, task)]
    return out


def _read_notes(data: ReportData) -> str:
    capped = data.capped
    if not capped:
        return ""
    topics = "; ".join(f"{_e(n.topic)}: {n.skipped:,} of {n.in_window:,} not read"
                       for n in capped)
    return (f"<p class='note'>The read was capped at {data.bounds.max_records:,} records per "
            f"topic, so only the latest records of these topics are shown ({topics}). "
            "Narrow the window with --since/--until/--task or raise --max-records.</p>")


def render_report(data: ReportData, *, title: str = "driftloop report",
                  source: str = "") -> str:
    """The whole page as a string."""
    span = data.time_range
    when = f"{_when(span[0])} → {_when(span[1])} UTC" if span else "no events yet"
    promoted = sum(v.status is VersionStatus.PROMOTED for v in data.versions)
    rejected = sum(v.status is VersionStatus.REJECTED for v in data.versions)
    cards = [
        (data.interactions, "interactions"), (data.feedback, "feedback events"),
        (data.labelled, "labels joined"), (len(data.alerts), "drift alerts"),
        (len(data.requests), "training requests"), (promoted, "versions promoted"),
        (rejected, "versions rejected"),
        (sum(c.sent for c in data.label_requests.values()), "label requests"),
        (sum(data.dead_letters.values()), "dead letters"),
    ]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='sub'>{_e(source) + ' · ' if source else ''}{when}<br>"
        f"{_e(data.bounds.describe())}</p>",
        _read_notes(data),
        "<div class='cards'>",
        *(f"<div class='card'><b>{int(n):,}</b><span>{label}</span></div>"
          for n, label in cards),
        "</div>",
    ]
    if not data.tasks:
        out.append("<p class='empty'>Nothing to show: no events on the topics yet.</p>")
    for task in data.tasks:
        out += _task_section(data, task)
    if data.dead_letters:
        out.append("<h2>Dead letters</h2><table><tr><th>source topic</th><th>reason</th>"
                   "<th class='num'>count</th></tr>")
        out += [f"<tr><td>{_e(topic)}</td><td>{_e(reason)}</td>"
                f"<td class='num'>{count:,}</td></tr>"
                for (topic, reason), count in data.dead_letters.most_common()]
        out.append("</table>")
    if data.unreadable:
        out.append("<h2>Records the report could not read</h2><table>")
        out += [f"<tr><td>{_e(topic)}</td><td class='num'>{count:,}</td></tr>"
                for topic, count in sorted(data.unreadable.items())]
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
