"""docker-compose.yml stays runnable: every service command is a real `driftloop` entry point.

There is no Docker engine here, so the file is checked the way compose would read it.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml

from driftloop.tools.cli import cli

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def resolve(argv: list[str]) -> click.Command:
    """Walk the CLI like click does and return the command ``argv`` names.

    Whatever follows the last (sub)command must parse as its options and arguments: a word
    the command does not take fails here as it would in the container.
    """
    command: click.Command = cli
    ctx = click.Context(cli, info_name="driftloop")
    rest = list(argv)
    while rest and not rest[0].startswith("-") and isinstance(command, click.Group):
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            raise AssertionError(f"'driftloop {' '.join(argv)}': no command {rest[0]!r}")
        command, ctx = sub, click.Context(sub, info_name=rest[0], parent=ctx)
        rest = rest[1:]
    try:
        command.parse_args(click.Context(command, info_name="check", parent=ctx.parent),
                           list(rest))
    except click.UsageError as exc:
        raise AssertionError(f"'driftloop {' '.join(argv)}': {exc.format_message()}") from None
    return command


def driftloop_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, service in SERVICES.items():
        image = service.get("image", "")
        if image.startswith("driftloop"):
            found.append((name, list(service["command"])))
        healthcheck = service.get("healthcheck", {}).get("test", [])
        if healthcheck[:2] == ["CMD", "driftloop"]:
            found.append((f"{name} healthcheck", healthcheck[2:]))
    return found


@pytest.mark.parametrize(("service", "argv"), driftloop_commands(), ids=lambda v: str(v))
def test_service_command_is_a_driftloop_entry_point(service: str, argv: list[str]) -> None:
    command = resolve(argv)
    if isinstance(command, click.Group):
        assert command.invoke_without_command, f"{service}: {argv} needs a subcommand"


def test_every_driftloop_service_uses_the_image_with_the_console_script() -> None:
    dockerfile = (ROOT / SERVICES["worker"]["build"]["dockerfile"]).read_text()
    assert 'ENTRYPOINT ["driftloop"]' in dockerfile
    for name in ("topics", "worker", "learner"):
        assert SERVICES[name]["image"] == "driftloop:local", name


def test_kafka_is_a_single_node_kraft_3_9_with_a_health_check() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:3.9.")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "test" in kafka["healthcheck"]
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= 16 * 1024 * 1024


def test_startup_order_and_gpu_reservation_in_its_own_file() -> None:
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("worker", "learner"):
        assert SERVICES[name]["depends_on"]["topics"]["condition"] == \
            "service_completed_successfully"
        assert "healthcheck" in SERVICES[name]
    # A host without the NVIDIA runtime must be able to start the default file.
    assert "deploy" not in SERVICES["learner"]
    gpu = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())["services"]
    devices = gpu["learner"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"


def test_kafka_data_is_in_its_named_volume() -> None:
    kafka = SERVICES["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in kafka["volumes"]}
    assert mounts.get(log_dirs) in COMPOSE["volumes"], (log_dirs, mounts)


@pytest.mark.parametrize("name", ["worker", "serve"])
def test_scalable_services_take_no_fixed_host_port_and_listen_beyond_localhost(
        name: str) -> None:
    service = SERVICES[name]
    for port in service.get("ports", []):
        assert ":" not in str(port), f"{name}: fixed host port {port} stops --scale"
    env = service.get("environment", {})
    command = service["command"]
    listens = (env.get("DRIFTLOOP_WORKER__WEB_HOST") if name == "worker"
               else command[command.index("--host") + 1])
    assert listens == "0.0.0.0", name


def test_the_push_sidecar_is_optional_and_stages_adapters_in_the_shared_volume() -> None:
    push = SERVICES["push"]
    assert push["profiles"] == ["push"]  # not started by a plain `docker compose up`
    staging = push["command"][push["command"].index("--staging") + 1]
    mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in push["volumes"]}
    assert any(staging.startswith(path) for path in mounts), (staging, mounts)
