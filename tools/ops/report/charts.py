"""The report's charts: matplotlib figures inlined as SVG (no network, no JavaScript), so
the page can be mailed, archived or opened from a CI artifact.

Two charts per task share one time axis: accuracy per (true) domain and accuracy per
serving version. Drift alerts are vertical lines coloured by signal, with a triangle at
the top pointing the way the signal moved; promotions and rollbacks are marked too.
"""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # never a window: the report is rendered on servers and in CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from ....schemas import DriftAlert, DriftSignal, ModelVersion, VersionStatus
from .accuracy import AccuracyPoint
from .alerts import alert_direction

__all__ = ["SIGNAL_COLOURS", "accuracy_chart"]

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#d62728"]
SIGNAL_COLOURS = {DriftSignal.ERROR_RATE: "#d62728", DriftSignal.SCORE: "#ff7f0e",
                  DriftSignal.EMBEDDING: "#8c564b", DriftSignal.INPUT: "#bcbd22",
                  DriftSignal.DOMAIN: "#17becf"}
VERSION_MARKS = {VersionStatus.PROMOTED: ("#2ca02c", "-", "version promoted"),
                 VersionStatus.ROLLED_BACK: ("#9467bd", "-.", "version rolled back")}
ARROWS = {"up": ("^", "↑"), "down": ("v", "↓"), None: ("D", "")}


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


MAX_POINTS = 1500
"""Points drawn per line at most: a curve of 200,000 labels is thinned to this many evenly
spaced points (the page stays a few hundred kilobytes; the eye sees no difference)."""


def thin(points: list[AccuracyPoint], limit: int = MAX_POINTS) -> list[AccuracyPoint]:
    """Every k-th point, the last one kept, so at most about ``limit`` remain.

    >>> pts = [AccuracyPoint(float(n), 1.0, "d", "v") for n in range(10_000)]
    >>> kept = thin(pts, 100)
    >>> len(kept) <= 101, kept[-1].ts
    (True, 9999.0)
    """
    if len(points) <= limit:
        return points
    step = -(-len(points) // limit)
    kept = points[::step]
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]


def _broken(points: list[AccuracyPoint], gap: float) -> tuple[list, list]:
    """x and y with a gap (None) wherever the series paused longer than ``gap`` seconds: a
    domain that comes back later is not joined across the stretch it was absent."""
    points = thin(points)
    xs: list = []
    ys: list = []
    for before, point in zip([None, *points], points, strict=False):
        if before is not None and point.ts - before.ts > gap:
            xs.append(_when((before.ts + point.ts) / 2))
            ys.append(None)
        xs.append(_when(point.ts))
        ys.append(point.accuracy)
    return xs, [float("nan") if y is None else y for y in ys]


def _mark_events(ax: Axes, alerts: list[DriftAlert], versions: list[ModelVersion]) -> None:
    used: set[str] = set()
    for alert in alerts:
        direction = alert_direction(alert)
        marker, arrow = ARROWS[direction]
        colour = SIGNAL_COLOURS.get(alert.signal, "#d62728")
        label = f"drift: {alert.signal.value.replace('_', ' ')} {arrow}".strip()
        ax.axvline(_when(alert.ts), color=colour, linestyle="--", linewidth=0.9, alpha=0.8,
                   zorder=3)
        ax.plot([_when(alert.ts)], [1.0], marker=marker, color=colour, markersize=7,
                linestyle="none", clip_on=False, zorder=5,
                label=None if label in used else label)
        used.add(label)
    for version in versions:
        if version.status in VERSION_MARKS:
            colour, style, label = VERSION_MARKS[version.status]
            ax.axvline(_when(version.ts), color=colour, linestyle=style, linewidth=1.4,
                       zorder=4, label=None if label in used else label)
            used.add(label)


def accuracy_chart(series: dict[str, list[AccuracyPoint]], *, chart_id: str, title: str,
                   alerts: list[DriftAlert], versions: list[ModelVersion],
                   overall: list[AccuracyPoint] | None = None,
                   spans: list[tuple[str, float, float]] = (), caption: str = "") -> str:
    """One chart as an inline ``<figure>`` holding an SVG: a line per series, the overall
    curve in grey behind them, domain stretches shaded, alerts and promotions marked.

    >>> points = [AccuracyPoint(float(n), 0.9, "tweets", "v0") for n in range(5)]
    >>> alert = DriftAlert(id="d", ts=2.0, task="t", signal="error_rate", detector="adwin",
    ...                    statistics={"mean_before": 0.1, "mean_after": 0.4})
    >>> figure = accuracy_chart({"tweets": points}, chart_id="c", title="accuracy",
    ...                         alerts=[alert], versions=[])
    >>> figure.startswith('<figure class="chart" id="c"><svg'), "drift: error rate ↑" in figure
    (True, True)
    """
    with plt.rc_context({"svg.fonttype": "none"}):  # text stays text: searchable, smaller
        return _draw(series, chart_id=chart_id, title=title, alerts=alerts,
                     versions=versions, overall=overall, spans=spans, caption=caption)


def _draw(series: dict[str, list[AccuracyPoint]], *, chart_id: str, title: str,
          alerts: list[DriftAlert], versions: list[ModelVersion],
          overall: list[AccuracyPoint] | None,
          spans: list[tuple[str, float, float]], caption: str) -> str:
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=100)
    stamps = [p.ts for points in series.values() for p in points]
    stamps += [a.ts for a in alerts] + [v.ts for v in versions]
    gap = max(1.0, (max(stamps) - min(stamps)) * 0.03) if stamps else 1.0
    shades = {name: PALETTE[n % len(PALETTE)] for n, name in enumerate(series)}
    for domain, start, end in spans:
        if domain in shades:
            ax.axvspan(_when(start), _when(end), color=shades[domain], alpha=0.07, zorder=0)
    if overall:
        xs, ys = _broken(overall, gap)
        ax.plot(xs, ys, color="#bbbbbb", linewidth=2.4, label="all traffic", zorder=1)
    for name, points in series.items():
        if points:
            xs, ys = _broken(points, gap)
            ax.plot(xs, ys, color=shades[name], linewidth=1.7, label=name, zorder=2)
    _mark_events(ax, alerts, versions)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("accuracy")
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="y", color="#eee")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(title)}" ', 1)
    return (f'<figure class="chart" id="{html.escape(chart_id)}">{svg}'
            f"<figcaption>{html.escape(caption or title)}</figcaption></figure>")
