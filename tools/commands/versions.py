"""``driftloop versions``: the registry on ``model-versions``: list, show, promote, rollback."""

from __future__ import annotations

import asyncio
import time

import click
import orjson

from ...learner.registry.version_log import VersionLog
from ...learner.topics.versions import publish_with_new_producer, read_version_log
from ...schemas.codec import to_dict
from ...schemas.enums import VersionStatus
from ...schemas.settings import Settings
from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json, yes_option

__all__ = ["versions"]


def _read(settings: Settings) -> VersionLog:
    return asyncio.run(read_version_log(settings))


@click.group()
def versions() -> None:
    """Model versions: the append-only log on the model-versions topic."""


@versions.command("list")
@click.option("--task", default=None, help="Only this task's versions.")
@json_option
@bootstrap_servers_option()
@click.pass_context
def list_versions(ctx: click.Context, task: str | None, as_json: bool) -> None:
    """One line per version: id, task, status, parent, held-out score before -> after."""
    registry = _read(settings_from(ctx))
    rows = []
    for v in registry.versions(task):
        head = registry.head(v.task)
        rows.append({"version_id": v.version_id, "task": v.task, "status": v.status.value,
                     "parent_version": v.parent_version,
                     "head": head is not None and head.version_id == v.version_id,
                     "holdout_before": v.metrics_before.get("holdout_score"),
                     "holdout_after": v.metrics_after.get("holdout_score")})
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no versions")
        return
    for row in rows:
        before, after = row["holdout_before"], row["holdout_after"]
        score = f"{before:.3f} -> {after:.3f}" if before is not None and after is not None else "-"
        click.echo(f"{'*' if row['head'] else ' '} {row['version_id']:<34} {row['task']:<16} "
                   f"{row['status']:<11} parent={row['parent_version'] or '-':<34} "
                   f"holdout {score}")


@versions.command()
@click.argument("version_id")
@json_option
@bootstrap_servers_option()
@click.pass_context
def show(ctx: click.Context, version_id: str, as_json: bool) -> None:
    """The latest event of a version and its lineage (oldest first)."""
    registry = _read(settings_from(ctx))
    data = to_dict(registry.get(version_id))
    data["lineage"] = [v.version_id for v in registry.lineage(version_id)]
    if as_json:
        print_json(data)
        return
    width = max(len(key) for key in data)
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = orjson.dumps(value).decode() if value else "-"
        click.echo(f"{key:<{width}}  {'-' if value is None else value}")


@versions.command()
@click.argument("version_id")
@click.option("--reason", default="promoted by an operator", help="Recorded on the event.")
@yes_option
@bootstrap_servers_option()
@click.pass_context
def promote(ctx: click.Context, version_id: str, reason: str, yes: bool) -> None:
    """Make a version its task's head (publishes a promoted status event); every serving
    replica switches to it. Asks first unless --yes."""
    settings = settings_from(ctx)
    registry = _read(settings)
    event = registry.status_event(version_id, VersionStatus.PROMOTED, ts=time.time(),
                                  reason=reason)
    head = registry.head(event.task)
    if not yes:
        click.confirm(f"promote {version_id} for task {event.task} (head now "
                      f"{head.version_id if head else 'none'})?", abort=True)
    asyncio.run(publish_with_new_producer(settings, [event]))
    click.echo(f"promoted {version_id}")


@versions.command()
@click.option("--task", required=True, help="The task whose head goes back to its parent.")
@yes_option
@bootstrap_servers_option()
@click.pass_context
def rollback(ctx: click.Context, task: str, yes: bool) -> None:
    """Roll a task's head back to its parent (rolled_back, then the parent promoted again).
    Asks first unless --yes."""
    settings = settings_from(ctx)
    events = _read(settings).rollback_events(task, ts=time.time())
    if not yes:
        click.confirm(f"roll {task} back from {events[0].version_id} to "
                      f"{events[1].version_id}?", abort=True)
    asyncio.run(publish_with_new_producer(settings, events))
    click.echo(f"rolled back {events[0].version_id}; head is now {events[1].version_id}")
