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

__all__ = ["versions"]


def _read(settings: Settings) -> VersionLog:
    return asyncio.run(read_version_log(settings))


@click.group()
def versions() -> None:
    """Model versions: the append-only log on the model-versions topic."""


@versions.command("list")
@click.option("--task", default=None, help="Only this task's versions.")
@click.pass_context
def list_versions(ctx: click.Context, task: str | None) -> None:
    """One line per version: id, task, status, parent, held-out score before -> after."""
    registry = _read(settings_from(ctx))
    rows = registry.versions(task)
    if not rows:
        click.echo("no versions")
        return
    for v in rows:
        head = registry.head(v.task)
        mark = "*" if head is not None and head.version_id == v.version_id else " "
        before = v.metrics_before.get("holdout_score")
        after = v.metrics_after.get("holdout_score")
        score = f"{before:.3f} -> {after:.3f}" if before is not None and after is not None else "-"
        click.echo(f"{mark} {v.version_id:<34} {v.task:<16} {v.status.value:<11} "
                   f"parent={v.parent_version or '-':<34} holdout {score}")


@versions.command()
@click.argument("version_id")
@click.pass_context
def show(ctx: click.Context, version_id: str) -> None:
    """The latest event of a version, and its lineage, as JSON."""
    registry = _read(settings_from(ctx))
    data = to_dict(registry.get(version_id))
    data["lineage"] = [v.version_id for v in registry.lineage(version_id)]
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@versions.command()
@click.argument("version_id")
@click.option("--reason", default="promoted by an operator", help="Recorded on the event.")
@click.pass_context
def promote(ctx: click.Context, version_id: str, reason: str) -> None:
    """Make a version its task's head (publishes a promoted status event)."""
    settings = settings_from(ctx)
    event = _read(settings).status_event(version_id, VersionStatus.PROMOTED, ts=time.time(),
                                         reason=reason)
    asyncio.run(publish_with_new_producer(settings, [event]))
    click.echo(f"promoted {version_id}")


@versions.command()
@click.argument("task")
@click.pass_context
def rollback(ctx: click.Context, task: str) -> None:
    """Roll a task's head back to its parent (rolled_back, then the parent promoted again)."""
    settings = settings_from(ctx)
    events = _read(settings).rollback_events(task, ts=time.time())
    asyncio.run(publish_with_new_producer(settings, events))
    click.echo(f"rolled back {events[0].version_id}; head is now {events[1].version_id}")
