"""``driftloop learner``: run the LoRA learner (one process per GPU, one consumer group)."""

from __future__ import annotations

import asyncio

import click

from .cli import settings_from

__all__ = ["learner"]


@click.command()
@click.option("--max-requests", type=click.IntRange(min=1), default=None,
              help="Exit after handling this many training requests.")
@click.pass_context
def learner(ctx: click.Context, max_requests: int | None) -> None:
    """Consume training-requests, train and gate LoRA adapters, publish model-versions.

    Stops gracefully on SIGTERM/SIGINT after the request in hand; its offset is committed
    only once the version it produced is published.
    """
    settings = settings_from(ctx)
    # Imported here: torch and transformers take seconds, `driftloop --help` should not.
    from ..learner.service import LearnerService, install_signal_handlers

    async def main() -> None:
        service = LearnerService(settings, max_requests=max_requests)
        install_signal_handlers(service)
        stats = await service.run()
        click.echo(f"published {len(stats.published)}, skipped {len(stats.skipped)}, "
                   f"dead letters {stats.dead_letters}")

    asyncio.run(main())
