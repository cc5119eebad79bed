"""The lineage graph: versions left to right in time order, drawn by hand as SVG.

Promoted and rolled-back versions sit on the main row; rejected candidates hang below it on
two alternating rows (so their labels do not collide). An edge joins each version to its
parent; a version whose parent is outside the report's window has a stub edge.
"""

from __future__ import annotations

import html

from ....schemas import VersionStatus
from .lineage import VersionNode

__all__ = ["STATUS_COLOURS", "lineage_svg"]

STATUS_COLOURS = {VersionStatus.PROMOTED: "#2ca02c", VersionStatus.REJECTED: "#9a9a9a",
                  VersionStatus.ROLLED_BACK: "#9467bd", VersionStatus.CANDIDATE: "#1f77b4"}
_STEP, _ROW, _PAD, _R = 100, 46, 30, 9


def _row(node: VersionNode, index: int) -> int:
    if node.status in (VersionStatus.PROMOTED, VersionStatus.ROLLED_BACK):
        return 0
    return 1 + index % 2


def _short(version_id: str, limit: int = 12) -> str:
    return version_id if len(version_id) <= limit else "…" + version_id[-(limit - 1):]


def lineage_svg(nodes: list[VersionNode], *, chart_id: str) -> str:
    """An inline ``<figure>`` with the graph of ``nodes`` (one task's versions).

    >>> from driftloop.schemas import ModelVersion
    >>> from driftloop.tools.ops.report.lineage import build_lineage
    >>> def event(vid, status, ts, parent=None):
    ...     return ModelVersion(version_id=vid, ts=ts, task="t", base_model="m",
    ...                         parent_version=parent, adapter_uri="file:///a",
    ...                         sha256="0" * 64, size_bytes=1, status=status)
    >>> svg = lineage_svg(build_lineage([event("v1", "promoted", 1.0),
    ...                                  event("v2", "rejected", 2.0, "v1")])["t"],
    ...                   chart_id="lineage-t")
    >>> svg.count('<g class="version '), svg.count("<path ")  # two versions, one edge
    (2, 1)
    """
    if not nodes:
        return ""
    place: dict[str, tuple[float, float]] = {}
    rejected = 0
    for index, node in enumerate(nodes):
        row = _row(node, rejected)
        rejected += row > 0
        place[node.version_id] = (_PAD + 20 + index * _STEP, _PAD + 14 + row * _ROW)
    width = _PAD * 2 + 40 + (len(nodes) - 1) * _STEP + 60
    height = _PAD * 2 + 14 + 2 * _ROW + 18
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="version lineage"'
             f' width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'font-family="Helvetica,Arial,sans-serif" font-size="10">']
    for node in nodes:
        x, y = place[node.version_id]
        if node.parent in place:
            px, py = place[node.parent]
            mid = (px + x) / 2
            parts.append(f'<path d="M{px:.0f},{py:.0f} C{mid:.0f},{py:.0f} {mid:.0f},{y:.0f} '
                         f'{x:.0f},{y:.0f}" fill="none" stroke="#c8c8c8" stroke-width="1.5"/>')
        elif node.parent:
            parts.append(f'<line x1="{x - 30:.0f}" y1="{y:.0f}" x2="{x:.0f}" y2="{y:.0f}" '
                         'stroke="#c8c8c8" stroke-dasharray="3,3" stroke-width="1.5"/>')
    for node in nodes:
        x, y = place[node.version_id]
        colour = STATUS_COLOURS.get(node.status, "#1f77b4")
        history = " → ".join(s.value for _, s in node.statuses)
        tip = html.escape(f"{node.version_id} ({history}) parent {node.parent or '—'}")
        ring = (f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{_R + 3}" fill="none" stroke="{colour}"'
                ' stroke-width="1.2" stroke-dasharray="2,2"/>'
                if node.status is VersionStatus.ROLLED_BACK else "")
        parts.append(f'<g class="version {node.status.value}" data-version="'
                     f'{html.escape(node.version_id)}"><title>{tip}</title>{ring}'
                     f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{_R}" fill="{colour}"/>'
                     f'<text x="{x:.0f}" y="{y + _R + 12:.0f}" text-anchor="middle" '
                     f'fill="#333">{html.escape(_short(node.version_id))}</text></g>')
    legend_y = height - 8
    for n, status in enumerate((VersionStatus.PROMOTED, VersionStatus.REJECTED,
                                VersionStatus.ROLLED_BACK)):
        lx = _PAD + n * 110
        parts.append(f'<circle cx="{lx}" cy="{legend_y - 4}" r="5" '
                     f'fill="{STATUS_COLOURS[status]}"/><text x="{lx + 9}" y="{legend_y}" '
                     f'fill="#555">{status.value.replace("_", " ")}</text>')
    parts.append("</svg>")
    return (f'<figure class="chart lineage" id="{html.escape(chart_id)}">'
            f'<div class="scroll">{"".join(parts)}</div>'
            "<figcaption>Version lineage, left to right in time</figcaption></figure>")
