"""``driftloop report``: one HTML page of quality over time, drift, training and versions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..cli import settings_from
from ..ops.report.data import collect_report_data
from ..ops.report.page import render_report
from ..options import bootstrap_servers_option

__all__ = ["report"]


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("driftloop-report.html"), show_default=True,
              help="Where to write the HTML page.")
@click.option("--window", type=int, default=None,
              help="Labels per rolling-accuracy point (default: adapts to the run).")
@bootstrap_servers_option()
@click.pass_context
def report(ctx: click.Context, output: Path, window: int | None) -> None:
    """Read the topics and write one self-contained HTML report.

    Accuracy over time per task (labels joined to interactions), drift alerts, training
    requests and promotions on the same time axis, and the gate metrics of every version.
    """
    settings = settings_from(ctx)
    data = asyncio.run(collect_report_data(settings, window=window))
    source = f"{settings.kafka.bootstrap_servers} · prefix {settings.kafka.topic_prefix or '—'}"
    output.write_text(render_report(data, source=source), encoding="utf-8")
    click.echo(f"wrote {output} ({data.interactions} interactions, {data.labelled} labels, "
               f"{len(data.alerts)} alerts, {len(data.versions)} version events)")
