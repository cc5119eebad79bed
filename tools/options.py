"""The options every ``driftloop`` command spells the same way.

- ``--bootstrap-servers`` (env ``DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS``) on the root group and on
  every command that talks to Kafka: ``driftloop status --bootstrap-servers b:9092`` and
  ``driftloop --bootstrap-servers b:9092 status`` mean the same;
- ``--json`` on every command that prints data: one JSON document on stdout, text for people
  (progress included) on stderr; a benchmark also writes that document to ``-o/--output FILE``;
- ``--yes``/``-y`` on every command that changes what is served or deletes something;
- a task is always ``--task`` (repeatable where a command takes several), never positional.

``tests/tools/test_cli_conventions.py`` walks the command tree and checks each rule.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from click.core import ParameterSource

__all__ = ["BOOTSTRAP_ENV", "BROKER_META_KEY", "bootstrap_servers_option", "json_option",
           "output_option", "print_json", "text_to_stderr", "yes_option"]

BOOTSTRAP_ENV = "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS"
BROKER_META_KEY = "driftloop.bootstrap_servers"


def _remember_broker(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # ctx.meta is shared by the whole command chain, so the group's and the command's option
    # land in one place. One typed on the command line wins over the environment, and the
    # command's over the group's (it is parsed last).
    typed = ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE
    if value and (typed or BROKER_META_KEY not in ctx.meta):
        ctx.meta[BROKER_META_KEY] = value


def bootstrap_servers_option(
        help: str = "Kafka brokers (default: kafka.bootstrap_servers of the settings).",
) -> Any:
    """The ``--bootstrap-servers`` option; :func:`~driftloop.tools.cli.settings_from` reads it.

    >>> @click.command()
    ... @bootstrap_servers_option()
    ... @click.pass_context
    ... def where(ctx): click.echo(ctx.meta[BROKER_META_KEY])
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(where, ["--bootstrap-servers", "b:9092"]).output
    'b:9092\\n'
    """
    return click.option("--bootstrap-servers", metavar="HOST:PORT[,...]", envvar=BOOTSTRAP_ENV,
                        show_envvar=True, expose_value=False, callback=_remember_broker,
                        help=help)

json_option = click.option(
    "--json", "as_json", is_flag=True,
    help="Print one JSON document on stdout (text for people goes to stderr).")

output_option = click.option(
    "-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Also write the JSON document to this file.")

yes_option = click.option("--yes", "-y", is_flag=True,
                          help="Do not ask for confirmation (scripts, CI).")


@contextlib.contextmanager
def text_to_stderr(enabled: bool) -> Iterator[None]:
    """While ``enabled``, what a command echoes for people goes to stderr, keeping stdout
    for the JSON document printed after the block.

    >>> import io
    >>> err, sys.stderr = sys.stderr, io.StringIO()
    >>> with text_to_stderr(True):
    ...     click.echo("progress")
    >>> sys.stderr.getvalue(), setattr(sys, "stderr", err)
    ('progress\\n', None)
    """
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def print_json(data: Any) -> None:
    """One indented JSON document on stdout (numpy numbers and non-string keys allowed).

    >>> print_json({"rounds": 3, 1: [0.5]})
    {
      "rounds": 3,
      "1": [
        0.5
      ]
    }
    """
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    click.echo(orjson.dumps(data, option=options, default=str).decode())
