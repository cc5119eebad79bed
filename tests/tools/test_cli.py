"""The ``driftloop`` command line: every command's help, and the kafka/topics commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_tree import every_command_path
from click.testing import CliRunner

from driftloop.schemas.settings import Settings
from driftloop.schemas.topics import TOPIC_SPECS
from driftloop.tools.cli import COMMANDS, cli, main
from driftloop.tools.commands.bench import BENCHES
from driftloop.tools.kafka.topic_admin import topic_names


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_help_lists_every_registered_command() -> None:
    code, output = run("--help")
    assert code == 0
    for name, (_module, _attr, help_text) in COMMANDS.items():
        assert name in output
        assert help_text.split()[0] in output


def test_bench_help_lists_every_registered_benchmark() -> None:
    code, output = run("bench", "--help")
    assert code == 0
    for name in BENCHES:
        assert name in output


@pytest.mark.parametrize("path", every_command_path(), ids=lambda p: " ".join(p) or "driftloop")
def test_every_command_has_working_help(path: tuple[str, ...]) -> None:
    code, output = run(*path, "--help")
    assert code == 0, output
    assert "Usage:" in output


def test_the_walk_covers_the_kafka_and_topics_subcommands() -> None:
    paths = set(every_command_path())
    for sub in ("start", "stop", "status", "logs"):
        assert ("kafka", sub) in paths
    assert {("topics", "create"), ("topics", "list"), ("topics", "delete")} <= paths
    assert {(name,) for name in COMMANDS} <= paths


# -- kafka ------------------------------------------------------------------------------------

def broker_args(kafka_broker) -> list[str]:
    return ["--home", str(kafka_broker.home), "--port", str(kafka_broker.port),
            "--controller-port", str(kafka_broker.controller_port)]


@pytest.mark.kafka
def test_kafka_status_start_and_logs_on_a_running_broker(kafka_broker) -> None:
    pid = kafka_broker.status().pid
    code, output = run("kafka", "status", *broker_args(kafka_broker))
    assert (code, output) == (0, f"kafka running on {kafka_broker.bootstrap_servers} "
                                 f"(pid {pid})\n")
    code, output = run("kafka", "status", "--json", *broker_args(kafka_broker))
    assert code == 0 and json.loads(output) | {"home": None} == {
        "running": True, "pid": pid, "bootstrap": kafka_broker.bootstrap_servers,
        "answering": True, "home": None}
    code, output = run("kafka", "start", *broker_args(kafka_broker))
    assert code == 0
    assert "already running" in output and f"(pid {pid})" in output
    code, output = run("kafka", "logs", "-n", "5", *broker_args(kafka_broker))
    assert code == 0
    assert len(output.splitlines()) == 5


def test_kafka_status_and_stop_when_nothing_runs(tmp_path: Path, unused_port) -> None:
    args = ["--home", str(tmp_path), "--port", str(unused_port)]
    code, output = run("kafka", "status", *args)
    assert (code, output) == (1, f"kafka not running (127.0.0.1:{unused_port})\n")
    code, output = run("kafka", "stop", *args)
    assert (code, output) == (0, f"kafka was not running (127.0.0.1:{unused_port})\n")
    code, output = run("kafka", "logs", *args)
    assert code == 1
    assert "no broker log yet" in output


def test_kafka_home_defaults_to_xdg_data_home(tmp_path: Path, unused_port) -> None:
    run("kafka", "stop", "--port", str(unused_port), env={"XDG_DATA_HOME": str(tmp_path)})
    _code, output = run("kafka", "logs", env={"XDG_DATA_HOME": str(tmp_path)})
    assert str(tmp_path / "driftloop" / "kafka" / "kafka.log") in output


def test_kafka_refuses_a_bad_port() -> None:
    code, output = run("kafka", "status", "--port", "70000")
    assert code == 2
    assert "70000" in output


# -- topics -----------------------------------------------------------------------------------

@pytest.mark.kafka
def test_topics_create_then_list_under_a_prefix(kafka_broker, tmp_path: Path) -> None:
    env = {"DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
           "DRIFTLOOP_CONFIG": ""}
    prefix = f"cli{tmp_path.name[-6:].replace('_', '')}."
    code, output = run("topics", "create", "--prefix", prefix, "--partitions", "1", env=env)
    assert code == 0, output
    servers = kafka_broker.bootstrap_servers
    assert output.startswith(f"created {len(TOPIC_SPECS)} topics on {servers}: ")
    code, output = run("topics", "create", "--prefix", prefix, env=env)
    assert code == 0
    assert output.startswith("already present on ")
    code, output = run("topics", "list", "--prefix", prefix, env=env)
    assert code == 0
    expected = sorted(topic_names(Settings(kafka={"topic_prefix": prefix})))
    assert output.splitlines() == expected
    code, output = run("topics", "list", "--prefix", prefix, "--json", env=env)
    assert code == 0 and json.loads(output) == {"present": expected, "missing": []}

    result = CliRunner().invoke(cli, ["topics", "delete", "--prefix", prefix], env=env,
                                input="n\n")
    assert result.exit_code == 1  # declined: aborted, nothing deleted
    assert run("topics", "list", "--prefix", prefix, env=env)[1].splitlines() == expected
    code, output = run("topics", "delete", "--prefix", prefix, "--yes", env=env)
    assert code == 0
    assert output.startswith(f"deleted {len(TOPIC_SPECS)} topics on {servers}: ")
    assert run("topics", "delete", "--prefix", prefix, "--yes", env=env)[1].startswith(
        "nothing to delete")


@pytest.mark.kafka
def test_topics_list_names_what_is_missing(kafka_broker) -> None:
    env = {"DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
           "DRIFTLOOP_CONFIG": ""}
    result = CliRunner().invoke(cli, ["topics", "list", "--prefix", "nobody-uses-this."],
                                env=env)
    assert result.exit_code == 0
    assert result.stdout == ""
    n = len(TOPIC_SPECS)
    assert f"missing ({n} of {n}; run `driftloop topics create`)" in result.stderr


def test_a_bad_prefix_is_a_one_line_error(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DRIFTLOOP_CONFIG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["topics", "create", "--prefix", "no spaces"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid settings")
    assert "kafka.topic_prefix" in err
    assert len(err.strip().splitlines()) == 1


def test_an_unreachable_broker_is_a_one_line_error(capsys, monkeypatch, unused_port) -> None:
    monkeypatch.delenv("DRIFTLOOP_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{unused_port}")
    with pytest.raises(SystemExit) as exit_info:
        main(["topics", "list"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith(
        f"error: cannot list topics on 127.0.0.1:{unused_port}")
