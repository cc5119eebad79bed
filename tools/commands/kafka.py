"""``driftloop kafka start|stop|status|logs``: a local single-node broker for development.

The broker keeps running after ``start`` returns; ``stop`` (from any shell) finds it through
the pid file in ``--home``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import click

from ..kafka.local_broker import LocalKafka, default_home
from ..options import json_option, print_json

__all__ = ["kafka"]


def _broker(home: Path | None, port: int, controller_port: int) -> LocalKafka:
    return LocalKafka(home=home or default_home(), port=port, controller_port=controller_port,
                      progress=lambda line: click.echo(line, err=True))


def broker_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options naming a broker, shared by every ``kafka`` subcommand."""
    command = click.option(
        "--controller-port", type=click.IntRange(1, 65535), default=9093, show_default=True,
        help="KRaft controller listener on 127.0.0.1.")(command)
    command = click.option(
        "--port", type=click.IntRange(1, 65535), default=9092, show_default=True,
        help="Client (PLAINTEXT) listener on 127.0.0.1.")(command)
    return click.option(
        "--home", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Broker folder: config, data, kafka.log, kafka.pid "
             "[default: $XDG_DATA_HOME/driftloop/kafka or ~/.local/share/driftloop/kafka]",
    )(command)


@click.group()
def kafka() -> None:
    """A local single-node Apache Kafka (KRaft) from Maven Central's jars.

    The first start downloads the jars once with Maven into
    $DRIFTLOOP_CACHE_DIR/kafka (default ~/.cache/driftloop/kafka); java 17+ and mvn are needed.
    """


@kafka.command()
@click.option("--timeout", type=click.FloatRange(min=1), default=60, show_default=True,
              help="Seconds to wait for the broker to answer.")
@broker_options
def start(home: Path | None, port: int, controller_port: int, timeout: float) -> None:
    """Start the broker (or confirm it runs) and wait until it answers."""
    broker = _broker(home, port, controller_port)
    before = broker.status()
    if before.running and before.answering:
        click.echo(f"{before.describe()}, already running")
        return
    began = time.monotonic()
    status = broker.start(timeout=timeout)
    click.echo(f"{status.describe()}, ready in {time.monotonic() - began:.1f} s "
               f"(log: {broker.log_file})")


@kafka.command()
@click.option("--timeout", type=click.FloatRange(min=1), default=30, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
@broker_options
def stop(home: Path | None, port: int, controller_port: int, timeout: float) -> None:
    """Stop the broker gracefully.

    SIGTERM lets it close its logs cleanly; SIGKILL follows after --timeout seconds.
    """
    broker = _broker(home, port, controller_port)
    pid = broker.status().pid
    if broker.stop(timeout=timeout):
        click.echo(f"kafka stopped (was pid {pid})")
    else:
        click.echo(f"kafka was not running ({broker.bootstrap_servers})")


@kafka.command()
@broker_options
@json_option
def status(home: Path | None, port: int, controller_port: int, as_json: bool) -> None:
    """Say whether the broker runs and answers.

    Exit status 0 when it answers, 1 when it does not (usable in scripts).
    """
    broker = _broker(home, port, controller_port)
    current = broker.status()
    if as_json:
        print_json({**dataclasses.asdict(current), "home": str(broker.home)})
    else:
        click.echo(current.describe())
    if not current.answering:
        raise SystemExit(1)


@kafka.command()
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many lines from the end of kafka.log.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@broker_options
def logs(home: Path | None, port: int, controller_port: int, lines: int, follow: bool) -> None:
    """Print the end of the broker log."""
    broker = _broker(home, port, controller_port)
    if not broker.log_file.exists():
        raise click.ClickException(f"no broker log yet at {broker.log_file}")
    click.echo(broker.logs(lines), nl=False)
    if follow:
        with open(broker.log_file, encoding="utf-8", errors="replace") as handle:
            handle.seek(0, os.SEEK_END)
            while True:
                line = handle.readline()
                if line:
                    click.echo(line, nl=False)
                else:
                    time.sleep(0.5)  # tailing a file: there is no event to wait on
