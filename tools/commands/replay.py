"""``driftloop replay``: copy a topic slice into a pipeline or backfill topic, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime

import click
from tqdm import tqdm

from ...schemas.topics import Topic
from ..cli import settings_from
from ..ops.replay import ReplayError, ReplaySpec, run_replay
from ..options import bootstrap_servers_option

__all__ = ["parse_time_ms", "replay"]


def parse_time_ms(text: str) -> int:
    """ISO 8601 (``2026-11-21T10:00:00Z``; no zone means UTC) or epoch milliseconds.

    >>> parse_time_ms("1970-01-01T00:00:01Z"), parse_time_ms("1500")
    (1000, 1500)
    """
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"expected ISO 8601 or epoch milliseconds, got {text!r}") \
            from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _full_name(name: str, prefix: str) -> str:
    """driftloop topic names get the configured prefix; any other name is taken as given."""
    return f"{prefix}{name}" if name in {t.value for t in Topic} else name


@click.command()
@click.option("--source", required=True, help="Topic to read (driftloop names get the prefix).")
@click.option("--target", required=True, help="Topic to write into (must exist).")
@click.option("--partition", "partitions", type=int, multiple=True,
              help="Source partition to copy (repeatable; default: all).")
@click.option("--from-offset", type=int, default=None, help="First offset to copy.")
@click.option("--to-offset", type=int, default=None, help="Stop before this offset.")
@click.option("--since", default=None, help="First record time (ISO 8601 or epoch ms).")
@click.option("--until", default=None, help="Stop before this record time (ISO 8601 or epoch ms).")
@click.option("--rate", type=float, default=None, help="At most this many records a second.")
@click.option("--dry-run", is_flag=True, help="Only count the records that would be copied.")
@click.option("--restart", is_flag=True, help="Forget the recorded position and start over.")
@click.option("--into-source", is_flag=True, help="Allow writing into the source topic itself.")
@bootstrap_servers_option()
@click.pass_context
def replay(ctx: click.Context, source: str, target: str, partitions: tuple[int, ...],
           from_offset: int | None, to_offset: int | None, since: str | None,
           until: str | None, rate: float | None, dry_run: bool, restart: bool,
           into_source: bool) -> None:
    """Copy records of SOURCE into TARGET, keeping keys, headers and timestamps.

    Each chunk and the replay's position are committed in one transaction, so a stopped or
    killed replay, started again with the same options, continues without duplicates
    (readers of TARGET see each record once with isolation.level=read_committed).
    """
    settings = settings_from(ctx)
    prefix = settings.kafka.topic_prefix
    try:
        spec = ReplaySpec(
            source=_full_name(source, prefix), target=_full_name(target, prefix),
            partitions=tuple(sorted(set(partitions))) or None,
            from_offset=from_offset, to_offset=to_offset,
            since_ms=parse_time_ms(since) if since else None,
            until_ms=parse_time_ms(until) if until else None,
            allow_same_topic=into_source,
        )
    except ReplayError as exc:
        raise click.UsageError(str(exc)) from None
    if rate is not None and rate <= 0:
        raise click.BadParameter("must be positive", param_hint="--rate")

    bar = tqdm(total=0, unit="rec", desc="counting" if dry_run else "replaying",
               dynamic_ncols=True, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        result = await run_replay(settings, spec, dry_run=dry_run, rate=rate,
                                  restart=restart, progress=progress, stop=stop)
        bar.close()
        verb = "would copy" if dry_run else "copied"
        resumed = " (resumed)" if result.resumed else ""
        click.echo(f"{verb} {result.copied} records from {spec.source} to {spec.target}"
                   f"{resumed}, {result.skipped} out of range, in {result.seconds:.1f} s "
                   f"[job {result.job_id}]")
        if result.expired:
            click.echo(f"{result.expired} offsets in range were deleted by the retention of "
                       f"{spec.source} before they could be copied", err=True)
        if stop.is_set():
            click.echo("stopped early: run the same command again to continue", err=True)
            ctx.exit(130)

    asyncio.run(main())
