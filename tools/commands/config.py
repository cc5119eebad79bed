"""``driftloop config``: print the effective settings, secrets masked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import click
import orjson

from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json

__all__ = ["config", "toml_lines"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else orjson.dumps(name).decode()


def toml_lines(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Settings as TOML dotted keys, one per line; an unset value is a comment.

    >>> print("\\n".join(toml_lines({"kafka": {"bootstrap_servers": "b:9092", "ca": None},
    ...                              "paths": {"a/b": "c"}, "tasks": ["x"], "on": True})))
    kafka.bootstrap_servers = "b:9092"
    # kafka.ca is not set
    paths."a/b" = "c"
    tasks = ["x"]
    on = true
    """
    for name, value in values.items():
        key = f"{prefix}{_key(str(name))}"
        if isinstance(value, dict):
            yield from toml_lines(value, prefix=f"{key}.")
        elif value is None:
            yield f"# {key} is not set"
        else:
            yield f"{key} = {orjson.dumps(value).decode()}"


@click.command()
@json_option
@bootstrap_servers_option()
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """Print the effective settings (TOML file + DRIFTLOOP_* env), secrets masked.

    The text form is TOML (dotted keys), so it can start a driftloop.toml.
    """
    values = settings_from(ctx).safe_dict()
    if as_json:
        print_json(values)
        return
    for line in toml_lines(values):
        click.echo(line)
