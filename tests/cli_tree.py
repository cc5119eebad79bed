"""The ``driftloop`` command tree, walked: every group and command with its path."""

from __future__ import annotations

import click

from driftloop.tools.cli import cli


def every_command() -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command and subcommand, found by walking the groups (bench's included)."""
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path[-1] if path else "driftloop")
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{' '.join(path)} lists {name} but cannot load it"
                walk(sub, (*path, name))

    walk(cli, ())
    return found


def every_command_path() -> list[tuple[str, ...]]:
    """The path of every command and subcommand (``()`` is ``driftloop`` itself)."""
    return [path for path, _command in every_command()]
