"""``driftloop worker``: run the stream worker; ``worker trigger``: ask for training now;
``worker detectors``: the measurements behind the drift detector defaults."""

from __future__ import annotations

import asyncio

import click

from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json

__all__ = ["worker"]


@click.group(invoke_without_command=True)
@click.option("--loglevel", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
              help="Log level of the Faust worker and driftloop's stream code.")
@bootstrap_servers_option()
@click.pass_context
def worker(ctx: click.Context, loglevel: str) -> None:
    """Run the Faust worker (several can run in one consumer group).

    It reads interactions and feedback, writes drift-alerts, label-requests,
    training-requests and dead-letters, and serves /metrics and /health on the web port.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ...streams.worker import run_worker

    run_worker(settings_from(ctx), loglevel=loglevel)


@worker.command()
@click.option("--task", required=True, help="The task to train.")
@click.option("--reason", default="", help="Recorded in the training request.")
@bootstrap_servers_option()
@click.pass_context
def trigger(ctx: click.Context, task: str, reason: str) -> None:
    """Ask the worker that owns TASK for a training request now (a manual trigger)."""
    from ...schemas.commands import manual_trigger
    from ...streams.control import send_commands

    command = manual_trigger(task, reason=reason)
    asyncio.run(send_commands(settings_from(ctx), [command]))
    click.echo(f"sent {command.kind} {command.id} for task {task}")


@worker.command()
@click.option("--runs", default=10, show_default=True, help="Seeded streams per scenario.")
@json_option
def detectors(runs: int, as_json: bool) -> None:
    """Measure the drift detector candidates: false alarms (stable) and delay (shifted)."""
    import dataclasses

    from ..bench.quality.calibrate import measure, render

    results = measure(runs=runs)
    if as_json:
        print_json([dataclasses.asdict(result) for result in results])
    else:
        click.echo(render(results))
