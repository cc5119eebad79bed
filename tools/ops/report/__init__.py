"""``driftloop report``: what the topics say about the loop, rendered as one HTML page."""

from __future__ import annotations

from .bounds import ReportBounds, parse_time
from .data import ReportData, build_report_data
from .page import render_report
from .reading import collect_report_data

__all__ = ["ReportBounds", "ReportData", "build_report_data", "collect_report_data",
           "parse_time", "render_report"]
