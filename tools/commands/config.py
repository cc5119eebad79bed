"""``driftloop config``: print the effective settings, secrets masked."""

from __future__ import annotations

import click
import orjson

from ..cli import settings_from

__all__ = ["config"]


@click.command()
@click.pass_context
def config(ctx: click.Context) -> None:
    """Print the effective settings as JSON (TOML file + DRIFTLOOP_* env), secrets masked."""
    settings = settings_from(ctx)
    click.echo(orjson.dumps(settings.safe_dict(), option=orjson.OPT_INDENT_2).decode())
