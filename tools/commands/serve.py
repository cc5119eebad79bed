"""``driftloop serve``: the reference inference service; ``serve acks``: who serves what."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from ...schemas.enums import ServingStatus
from ...schemas.settings import Settings
from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json

__all__ = ["serve"]


def _with_serving(settings: Settings, **changes: Any) -> Settings:
    given = {name: value for name, value in changes.items() if value not in (None, ())}
    serving = settings.serving.model_validate({**settings.serving.model_dump(), **given})
    return settings.model_copy(update={"serving": serving})


@click.group(invoke_without_command=True)
@click.option("--host", default=None, help="Interface to listen on (default: serving.host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default: serving.port).")
@click.option("--replica-id", default=None, help="Name in acknowledgements (default: host-pid).")
@click.option("--task", "tasks", multiple=True, help="Serve only this task (repeatable).")
@click.option("--canary-fraction", type=click.FloatRange(0.0, 1.0), default=None,
              help="Share of requests answered by the newest candidate version.")
@bootstrap_servers_option()
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, replica_id: str | None,
          tasks: tuple[str, ...], canary_fraction: float | None) -> None:
    """Serve /predict, /feedback, /healthz and /metrics, hot-swapping promoted adapters.

    Follows model-versions from the beginning (a new replica converges to the promoted
    version), publishes an Interaction per prediction and an acknowledgement per version it
    starts serving. SIGTERM/SIGINT stop it after in-flight requests, queued events sent.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = _with_serving(settings_from(ctx), host=host, port=port, replica_id=replica_id,
                             tasks=tasks, canary_fraction=canary_fraction)
    # Imported here: torch and transformers take seconds, `driftloop --help` should not.
    import torch
    from aiohttp import web

    from ...learner.serving.http import create_app

    if settings.serving.torch_threads:
        torch.set_num_threads(settings.serving.torch_threads)
    click.echo(f"serving on http://{settings.serving.host}:{settings.serving.port} "
               f"(model-versions on {settings.kafka.bootstrap_servers})")
    web.run_app(create_app(settings), host=settings.serving.host, port=settings.serving.port,
                print=None)


@serve.command()
@json_option
@bootstrap_servers_option()
@click.pass_context
def acks(ctx: click.Context, as_json: bool) -> None:
    """Each replica's latest acknowledgement per task, beside the promoted version."""
    from ...learner.serving.acks import read_acks
    from ...learner.topics.versions import read_version_log

    settings = settings_from(ctx)

    skipped: list[str] = []

    async def collect() -> tuple[Any, Any]:
        return await read_acks(settings, skipped=skipped), await read_version_log(settings)

    latest, versions = asyncio.run(collect())
    if skipped:
        click.echo(f"{len(skipped)} unreadable record(s) skipped, the first: {skipped[0]}",
                   err=True)
    rows = []
    for (replica, task), ack in sorted(latest.items()):
        head = versions.head(task)
        promoted = head.version_id if head else None
        rows.append({"task": task, "replica": replica, "status": ack.status.value,
                     "version_id": ack.version_id, "promoted": promoted, "reason": ack.reason,
                     "converged": ack.status is ServingStatus.SERVING
                     and ack.version_id == promoted})
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no acknowledgements yet")
    for row in rows:
        mark = "ok" if row["converged"] else "BEHIND"
        click.echo(f"{row['task']:20} {row['replica']:28} {row['status']:8} "
                   f"{row['version_id']:28} promoted={row['promoted'] or '-'} {mark}"
                   + (f" ({row['reason']})" if row["reason"] else ""))
