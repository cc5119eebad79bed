"""``driftloop learner``: run the LoRA learner (one process per GPU, one consumer group)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json

__all__ = ["learner"]


@click.group(invoke_without_command=True)
@click.option("--max-requests", type=click.IntRange(min=1), default=None,
              help="Exit after handling this many training requests.")
@bootstrap_servers_option()
@click.pass_context
def learner(ctx: click.Context, max_requests: int | None) -> None:
    """Consume training-requests, train and gate LoRA adapters, publish model-versions.

    Stops gracefully on SIGTERM/SIGINT after the request in hand; its offset is committed
    only once the version it produced is published. `driftloop learner health` checks a
    running learner's heartbeat; `driftloop learner bootstrap` gives a new task its first
    version from a file of labelled examples.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(ctx)
    # Imported here: torch and transformers take seconds, `driftloop --help` should not.
    from ...learner.service import LearnerService, install_signal_handlers

    async def main() -> None:
        service = LearnerService(settings, max_requests=max_requests)
        install_signal_handlers(service)
        stats = await service.run()
        click.echo(f"published {len(stats.published)}, skipped {len(stats.skipped)}, "
                   f"dead letters {stats.dead_letters}")

    asyncio.run(main())


@learner.command()
@click.option("--max-age", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds a heartbeat stays fresh.")
@json_option
@bootstrap_servers_option()
@click.pass_context
def health(ctx: click.Context, max_age: float, as_json: bool) -> None:
    """Exit 0 if the learner's heartbeat is fresh, 1 otherwise (for health checks)."""
    from ...learner.heartbeat import HEARTBEAT_FILE, read_heartbeat

    path = settings_from(ctx).learner.cache_dir / HEARTBEAT_FILE
    beat = read_heartbeat(path)
    age = None if beat is None else time.time() - float(beat["ts"])  # type: ignore[arg-type]
    healthy = age is not None and age <= max_age
    if as_json:
        print_json({"healthy": healthy, "heartbeat_age_s": age, "max_age_s": max_age,
                    "pid": None if beat is None else beat.get("pid"),
                    "handled": None if beat is None else beat.get("handled", 0)})
    elif beat is None:
        click.echo(f"unhealthy: no heartbeat at {path} (is the learner running?)", err=True)
    elif not healthy:
        click.echo(f"unhealthy: last heartbeat {age:.0f} s ago (pid {beat.get('pid')})",
                   err=True)
    else:
        click.echo(f"healthy: heartbeat {age:.1f} s ago, pid {beat.get('pid')}, "
                   f"{beat.get('handled', 0)} requests handled")
    if not healthy:
        ctx.exit(1)


@learner.command()
@click.option("--task", required=True, help="The task to give its first version.")
@click.option("--from", "source", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Labelled examples: JSON Lines (input, target[, domain, weight]) or CSV "
                   "with input/text and target/label columns.")
@bootstrap_servers_option()
@click.pass_context
def bootstrap(ctx: click.Context, task: str, source: Path) -> None:
    """Train and publish a task's first version from labelled examples (the cold start).

    The learner's own update trains, gates and stores it, and its version goes on
    model-versions, where serving picks it up. A task that already has a promoted version
    is refused: from then on the loop trains it. Running the same file twice names the
    same version.
    """
    settings = settings_from(ctx)
    from ...learner.registry.version_log import VersionLog
    from ...learner.topics.versions import publish_with_new_producer, read_version_log
    from ...learner.training.bootstrap import bootstrap_request, read_examples
    from ...learner.training.update import IncrementalUpdater

    examples = read_examples(source)
    versions: VersionLog = asyncio.run(read_version_log(settings))
    head = versions.head(task)
    if head is not None:
        raise click.ClickException(f"task {task!r} already serves {head.version_id}: the loop "
                                   "trains it from here (driftloop worker trigger --task "
                                   f"{task} asks for an update now)")
    labels = settings.tasks[task].labels if task in settings.tasks else ()
    request = bootstrap_request(task, examples, labels=labels)
    click.echo(f"training the first version of {task} on {len(examples)} examples", err=True)
    result = IncrementalUpdater(settings).update(request, versions)
    asyncio.run(publish_with_new_producer(settings, result.events))
    event = result.event
    click.echo(f"{event.version_id} {event.status.value}: {event.reason}")
    if not result.decision.promote:
        ctx.exit(1)
