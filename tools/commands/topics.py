"""``driftloop topics create|list|delete``: the driftloop topics on the configured broker."""

from __future__ import annotations

import click

from ...schemas.settings import Settings
from ...schemas.topics import TOPIC_SPECS
from ..cli import settings_from
from ..kafka.topic_admin import create_topics, delete_topics, list_topics, topic_names
from ..options import bootstrap_servers_option, json_option, print_json, yes_option

__all__ = ["topics"]

_PREFIX_HELP = "Topic prefix (overrides kafka.topic_prefix from the settings)."


def _settings(ctx: click.Context, prefix: str | None) -> Settings:
    # Merged over the TOML file and DRIFTLOOP_* variables, and validated like them.
    return settings_from(ctx) if prefix is None else settings_from(
        ctx, kafka={"topic_prefix": prefix})


@click.group()
def topics() -> None:
    """Create and list driftloop's topics (names, partitions and configs from TOPIC_SPECS)."""


@topics.command()
@click.option("--prefix", default=None, help=_PREFIX_HELP)
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="Partitions of every new topic (default: each topic's own count).")
@bootstrap_servers_option()
@click.pass_context
def create(ctx: click.Context, prefix: str | None, partitions: int | None) -> None:
    """Create the missing driftloop topics.

    Existing topics are reported and left as they are (their configs are not changed).
    """
    settings = _settings(ctx, prefix)
    created = create_topics(settings, partitions=partitions)
    existing = [name for name in topic_names(settings) if name not in created]
    where = settings.kafka.bootstrap_servers
    if created:
        click.echo(f"created {len(created)} topics on {where}: {', '.join(created)}")
    if existing:
        click.echo(f"already present on {where}: {', '.join(existing)}")


@topics.command(name="list")
@click.option("--prefix", default=None, help=_PREFIX_HELP)
@click.option("--all", "all_topics", is_flag=True, help="Every topic on the broker.")
@json_option
@bootstrap_servers_option()
@click.pass_context
def list_(ctx: click.Context, prefix: str | None, all_topics: bool, as_json: bool) -> None:
    """List the topics under the prefix.

    Driftloop topics that are missing are named on stderr; ``--json`` prints
    ``{"present": [...], "missing": [...]}``.
    """
    settings = _settings(ctx, prefix)
    present = list_topics(settings, all_topics=all_topics)
    missing = [name for name in topic_names(settings) if name not in present]
    if as_json:
        print_json({"present": present, "missing": missing})
        return
    for name in present:
        click.echo(name)
    if missing:
        click.echo(f"missing ({len(missing)} of {len(TOPIC_SPECS)}; run `driftloop topics "
                   f"create`): {', '.join(missing)}", err=True)


@topics.command()
@click.option("--prefix", default=None, help=_PREFIX_HELP)
@yes_option
@bootstrap_servers_option()
@click.pass_context
def delete(ctx: click.Context, prefix: str | None, yes: bool) -> None:
    """Delete the topics under the prefix.

    Without a prefix only the driftloop topics (TOPIC_SPECS) go. Their messages are gone for good:
    meant for dev and test brokers.
    """
    settings = _settings(ctx, prefix)
    where = settings.kafka.bootstrap_servers
    what = (f"every topic under {settings.kafka.topic_prefix!r}" if settings.kafka.topic_prefix
            else "the driftloop topics")
    if not yes:
        click.confirm(f"delete {what} on {where}, with their messages?", abort=True)
    deleted = delete_topics(settings)
    if deleted:
        click.echo(f"deleted {len(deleted)} topics on {where}: {', '.join(deleted)}")
    else:
        click.echo(f"nothing to delete on {where}")
