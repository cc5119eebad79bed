"""Every ``driftloop`` command follows the same conventions (``driftloop.tools.options``).

The tree is walked, so a new command is checked without being named here; only the lists of
commands that print data and that change what is served are written out, so that losing
``--json`` or ``--yes`` from one of them fails.
"""

from __future__ import annotations

import inspect
import re
import sys

import click
import pytest
from cli_tree import every_command
from click.testing import CliRunner

from driftloop.tools.cli import cli
from driftloop.tools.options import BOOTSTRAP_ENV

COMMANDS = every_command()
IDS = [" ".join(path) or "driftloop" for path, _ in COMMANDS]

# Commands whose output is data a script reads: each takes --json (stdout, one document).
PRINTS_DATA = {
    ("status",), ("config",), ("kafka", "status"), ("topics", "list"), ("versions", "list"),
    ("versions", "show"), ("serve", "acks"), ("learner", "health"), ("worker", "detectors"),
    *(("bench", name) for name in ("codec", "faults", "learner", "quality", "serve", "worker",
                                   "gpu-check")),
}
# Commands that change what replicas serve or delete data: each asks first unless --yes/-y.
ASKS_FIRST = {("versions", "promote"), ("versions", "rollback"), ("topics", "delete")}
# The local broker's own commands name it by --port (they start and stop it).
LOCAL_BROKER = "kafka"
LONG_NAME = re.compile(r"^--[a-z0-9]+(-[a-z0-9]+)*$")


def _options(command: click.Command) -> dict[str, click.Option]:
    return {name: param for param in command.params if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)}


def _talks_to_kafka(command: click.Command) -> bool:
    """The command loads the settings from its context (that is where the broker comes from)."""
    if command.callback is None:
        return False
    function = inspect.unwrap(command.callback)
    if "ctx" not in inspect.signature(function).parameters:
        return False
    return "settings_from" in inspect.getsource(sys.modules[function.__module__])


def test_the_walk_finds_the_listed_commands() -> None:
    paths = {path for path, _ in COMMANDS}
    assert PRINTS_DATA | ASKS_FIRST <= paths, (PRINTS_DATA | ASKS_FIRST) - paths


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_and_option_says_what_it_does(path: tuple[str, ...],
                                                     command: click.Command) -> None:
    assert (command.help or command.short_help or "").strip(), f"{path}: no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{path} {param.opts}: no help text"
            for name in (*param.opts, *param.secondary_opts):
                assert name.startswith("--") is False or LONG_NAME.match(name), \
                    f"{path} {name}: long options are lower-case words joined by hyphens"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_a_task_is_always_named_with_task(path: tuple[str, ...], command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Argument):
            assert "task" not in (param.name or ""), f"{path}: a task is --task, not positional"
        elif "task" in (param.name or "") and param.name != "kind":
            assert param.opts == ["--task"], f"{path} {param.opts}: spell it --task"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_json_is_a_stdout_flag_where_a_command_prints_data(path: tuple[str, ...],
                                                           command: click.Command) -> None:
    option = _options(command).get("--json")
    if path in PRINTS_DATA:
        assert option is not None, f"{path} prints data and has no --json"
    if option is not None:
        assert option.is_flag, f"{path}: --json is a flag (a file is -o/--output)"
        assert option.name == "as_json"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_commands_that_change_what_is_served_ask_first(path: tuple[str, ...],
                                                        command: click.Command) -> None:
    options = _options(command)
    if path in ASKS_FIRST:
        assert "--yes" in options and "-y" in options, f"{path} must ask, or take --yes/-y"
    elif "--yes" in options:
        pytest.fail(f"{path} takes --yes: list it in ASKS_FIRST")


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_that_talks_to_kafka_takes_the_broker(path: tuple[str, ...],
                                                           command: click.Command) -> None:
    if not _talks_to_kafka(command) or path[:1] == (LOCAL_BROKER,):
        return
    option = _options(command).get("--bootstrap-servers")
    assert option is not None, f"{path} reads the settings and has no --bootstrap-servers"
    assert option.envvar == BOOTSTRAP_ENV and option.show_envvar
    shown = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200).output
    assert f"env var: {BOOTSTRAP_ENV}" in shown, shown


def test_the_broker_option_reaches_the_settings_from_the_group_or_the_command() -> None:
    env = {BOOTSTRAP_ENV: "from-env:9092"}
    for args in (["--bootstrap-servers", "b:1", "config", "--json"],
                 ["config", "--bootstrap-servers", "b:1", "--json"],
                 ["--bootstrap-servers", "a:2", "config", "--bootstrap-servers", "b:1",
                  "--json"]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 0, result.output
        assert '"bootstrap_servers": "b:1"' in result.stdout, (args, result.stdout)
    from_env = CliRunner().invoke(cli, ["config", "--json"], env=env)
    assert '"bootstrap_servers": "from-env:9092"' in from_env.stdout
    bad = CliRunner().invoke(cli, ["config", "--bootstrap-servers", "nohost"])
    assert bad.exit_code != 0 and "bootstrap_servers" in str(bad.exception)


def test_version_names_the_package() -> None:
    from importlib.metadata import version

    shown = CliRunner().invoke(cli, ["--version"])
    assert shown.exit_code == 0 and shown.output == f"driftloop {version('driftloop')}\n"
