"""Render :class:`~driftloop.tools.ops.report.data.ReportData` as one self-contained HTML page.

Charts are matplotlib figures inlined as SVG: the page needs no network and no JavaScript,
so it can be mailed, archived or opened from a CI artifact.
"""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # never a window: the report is rendered on servers and in CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from ....schemas import ModelVersion, VersionStatus
from .data import ReportData

__all__ = ["render_report"]

MARKERS = {  # what is drawn on the time axis, and how
    "drift": ("#d62728", "--", "drift alert"),
    "request": ("#ff7f0e", ":", "training request"),
    VersionStatus.PROMOTED: ("#2ca02c", "-", "version promoted"),
    VersionStatus.REJECTED: ("#7f7f7f", "-.", "version rejected"),
    VersionStatus.ROLLED_BACK: ("#9467bd", "-", "rolled back"),
}
DOMAIN_COLOURS = ["#e8f1fa", "#fdf1e3", "#eaf6ea", "#f6e9f3", "#f2f2f2", "#fff8d6"]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1100px;
color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.5rem} .card span{color:#666;font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1.6rem;font-size:.88rem}
th,td{border-bottom:1px solid #eee;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#fafafa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.promoted{color:#2ca02c;font-weight:600} .rejected{color:#7f7f7f;font-weight:600}
.rolled_back{color:#9467bd;font-weight:600} .candidate{color:#1f77b4}
.up{color:#2ca02c} .down{color:#d62728} svg{max-width:100%;height:auto}
.empty{color:#888;font-style:italic}
"""


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _chart(data: ReportData, task: str) -> str:
    points = data.accuracy.get(task, [])
    fig, ax = plt.subplots(figsize=(11, 3.8), dpi=100)
    colours: dict[str, str] = {}
    for domain, start, end in data.domain_spans.get(task, []):
        colour = colours.setdefault(domain, DOMAIN_COLOURS[len(colours) % len(DOMAIN_COLOURS)])
        ax.axvspan(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC),
                   color=colour, zorder=0)
        ax.text(datetime.fromtimestamp(start, UTC), 1.02, f" {domain}", fontsize=8,
                color="#555", va="bottom", transform=ax.get_xaxis_transform())
    if points:
        ax.plot([datetime.fromtimestamp(p.ts, UTC) for p in points],
                [p.accuracy for p in points], color="#1f77b4", linewidth=1.6,
                label=f"accuracy (last {data.window} labels)")
    used: set[str] = set()

    def mark(ts: float, kind: object) -> None:
        colour, style, label = MARKERS[kind]  # type: ignore[index]
        ax.axvline(datetime.fromtimestamp(ts, UTC), color=colour, linestyle=style,
                   linewidth=1.1, label=None if label in used else label, zorder=3)
        used.add(label)

    for alert in data.alerts:
        if alert.task == task:
            mark(alert.ts, "drift")
    for request in data.requests:
        if request.task == task:
            mark(request.ts, "request")
    for version in data.versions:
        if version.task == task and version.status in MARKERS:
            mark(version.ts, version.status)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("accuracy")
    ax.grid(axis="y", color="#eee")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8, ncol=6,
                  frameon=False)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _metric_cells(version: ModelVersion) -> str:
    names = sorted(set(version.metrics_before) | set(version.metrics_after))
    if not names:
        return '<td class="empty">no metrics</td>'
    parts = []
    for name in names:
        before, after = version.metrics_before.get(name), version.metrics_after.get(name)
        if before is not None and after is not None:
            delta = after - before
            cls = "up" if delta > 0 else "down" if delta < 0 else ""
            parts.append(f"{html.escape(name)}: {before:.3f} → {after:.3f} "
                         f'<span class="{cls}">({delta:+.3f})</span>')
        else:
            value = after if after is not None else before
            parts.append(f"{html.escape(name)}: {value:.3f}")
    return "<td>" + "<br>".join(parts) + "</td>"


def _versions_table(data: ReportData, task: str) -> str:
    triggers = {r.id: r.trigger.value for r in data.requests}
    rows = []
    for version in data.versions:
        if version.task != task:
            continue
        status = version.status.value
        rows.append(
            f"<tr><td>{_when(version.ts)}</td><td>{html.escape(version.version_id)}</td>"
            f"<td>{html.escape(version.parent_version or '—')}</td>"
            f'<td class="{status}">{status}</td>'
            f"<td>{html.escape(triggers.get(version.training_request_id or '', '—'))}</td>"
            f"{_metric_cells(version)}<td>{html.escape(version.reason)}</td></tr>")
    if not rows:
        return '<p class="empty">No model version published for this task yet.</p>'
    return ("<table><tr><th>time (UTC)</th><th>version</th><th>parent</th><th>status</th>"
            "<th>trigger</th><th>gate metrics (parent → candidate)</th><th>reason</th></tr>"
            + "".join(rows) + "</table>")


def _alerts_table(data: ReportData, task: str, limit: int = 50) -> str:
    alerts = [a for a in data.alerts if a.task == task]
    if not alerts:
        return '<p class="empty">No drift alert for this task.</p>'
    rows = "".join(
        f"<tr><td>{_when(a.ts)}</td><td>{html.escape(a.domain)}</td><td>{a.signal.value}</td>"
        f"<td>{html.escape(a.detector)}</td><td>"
        + html.escape(", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in sorted(a.statistics.items())))
        + "</td></tr>" for a in alerts[:limit])
    more = f"<p>… and {len(alerts) - limit} more.</p>" if len(alerts) > limit else ""
    return ("<table><tr><th>time (UTC)</th><th>domain</th><th>signal</th><th>detector</th>"
            f"<th>statistics</th></tr>{rows}</table>{more}")


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
        (rejected, "versions rejected"), (sum(data.dead_letters.values()), "dead letters"),
    ]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='sub'>{html.escape(source)} · {when}</p>",
        "<div class='cards'>",
        *(f"<div class='card'><b>{n}</b><span>{label}</span></div>" for n, label in cards),
        "</div>",
    ]
    if not data.tasks:
        out.append("<p class='empty'>Nothing to show: no events on the topics yet.</p>")
    for task in data.tasks:
        out += [f"<h2>Task <code>{html.escape(task)}</code></h2>", _chart(data, task),
                "<h3>Versions and the gate</h3>", _versions_table(data, task),
                "<h3>Drift alerts</h3>", _alerts_table(data, task)]
    if data.dead_letters:
        out.append("<h2>Dead letters</h2><table><tr><th>source topic</th><th>reason</th>"
                   "<th>count</th></tr>")
        out += [f"<tr><td>{html.escape(topic)}</td><td>{html.escape(reason)}</td>"
                f"<td class='num'>{count}</td></tr>"
                for (topic, reason), count in data.dead_letters.most_common()]
        out.append("</table>")
    if data.unreadable:
        out.append("<h2>Records the report could not read</h2><table>")
        out += [f"<tr><td>{html.escape(topic)}</td><td class='num'>{count}</td></tr>"
                for topic, count in sorted(data.unreadable.items())]
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
