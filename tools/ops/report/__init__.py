"""``driftloop report``: what the topics say about the loop, rendered as one HTML page."""

from __future__ import annotations

from .data import ReportData, build_report_data, collect_report_data
from .page import render_report

__all__ = ["ReportData", "build_report_data", "collect_report_data", "render_report"]
