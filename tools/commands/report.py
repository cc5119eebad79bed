"""``driftloop report``: one HTML page of quality over time, drift, training and versions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..cli import settings_from
from ..errors import InvalidTimeBound
from ..ops.report import ReportBounds, collect_report_data, parse_time, render_report
from ..ops.report.bounds import DEFAULT_MAX_RECORDS
from ..options import bootstrap_servers_option

__all__ = ["report"]


class _Time(click.ParamType):
    """An ISO-8601 time or a span before now (``30m``, ``2h``, ``1d``), as epoch seconds."""

    name = "time"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_time(str(value))
        except InvalidTimeBound as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("driftloop-report.html"), show_default=True,
              help="Where to write the HTML page.")
@click.option("--since", type=_Time(), default=None,
              help="Only events at or after this time: ISO-8601 (2026-12-04T15:00:00Z, UTC "
                   "when no offset) or a span before now (30m, 2h, 1d).")
@click.option("--until", type=_Time(), default=None,
              help="Only events at or before this time (same forms as --since).")
@click.option("--task", "tasks", multiple=True,
              help="Only this task (repeat for several; default: every task).")
@click.option("--max-records", type=click.IntRange(min=1), default=DEFAULT_MAX_RECORDS,
              show_default=True,
              help="Records read per topic at most (the latest); the page says when the cap "
                   "cut the read.")
@click.option("--window", type=click.IntRange(min=1), default=None,
              help="Labels per rolling-accuracy point (default: adapts to the run).")
@bootstrap_servers_option()
@click.pass_context
def report(ctx: click.Context, output: Path, since: float | None, until: float | None,
           tasks: tuple[str, ...], max_records: int, window: int | None) -> None:
    """Read the topics and write one self-contained HTML report.

    Per task: accuracy over time per domain and per serving version with drift alerts
    marked by signal and direction, the versions' lineage, each gate's evidence, the time
    from each alert to the version that answered it, update latency, label requests and
    the serving replicas' acknowledgements.
    """
    try:
        bounds = ReportBounds(since=since, until=until, tasks=frozenset(tasks),
                              max_records=max_records)
    except InvalidTimeBound as exc:
        raise click.UsageError(str(exc), ctx) from None
    settings = settings_from(ctx)
    data = asyncio.run(collect_report_data(settings, window=window, bounds=bounds))
    source = f"{settings.kafka.bootstrap_servers} · prefix {settings.kafka.topic_prefix or '—'}"
    output.write_text(render_report(data, source=source), encoding="utf-8")
    capped = "".join(f"; capped: {n.topic} ({n.skipped} older records not read)"
                     for n in data.capped)
    click.echo(f"wrote {output} ({data.interactions} interactions, {data.labelled} labels, "
               f"{len(data.alerts)} alerts, {len(data.versions)} version events{capped})")
