"""A click group whose subcommands are listed in a registry and imported on first use.

``driftloop --help`` and ``driftloop bench --help`` stay fast this way: the learner's and the
benchmarks' torch-heavy modules load only when their command runs.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["LazyGroup", "Registry"]

# name -> (module, attribute, one-line help)
Registry = dict[str, tuple[str, str, str]]


class LazyGroup(click.Group):
    """A group over ``registry``; its help lists the entries under ``section``.

    Examples
    --------
    >>> @click.group(cls=LazyGroup, registry={"echo": ("click", "echo", "Print.")})
    ... def root() -> None: ...
    >>> root.list_commands(click.Context(root)), root.get_command(click.Context(root), "nope")
    (['echo'], None)
    """

    def __init__(self, *args: Any, registry: Registry, section: str = "Commands",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.section = section

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.registry)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.registry:
            return None
        module, attr, _ = self.registry[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.registry[name][2]) for name in self.list_commands(ctx)]
        if rows:  # click's write_dl refuses an empty table
            with formatter.section(self.section):
                formatter.write_dl(rows)
