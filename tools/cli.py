"""The ``driftloop`` command: one group, each subcommand in its own module.

Subcommands are registered in :data:`COMMANDS` by import path so ``driftloop --help`` stays
fast (no torch import) and each module owns its options.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import click
from aiokafka.errors import KafkaConnectionError, KafkaError

from ..schemas.errors import DriftloopError
from ..schemas.settings import Settings, load_settings
from .lazy_group import LazyGroup, Registry
from .options import BROKER_META_KEY, bootstrap_servers_option

__all__ = ["COMMANDS", "main"]

# name -> (module, attribute, one-line help). Lazily imported, so adding the learner's
# torch-heavy commands does not slow down `driftloop kafka status`.
COMMANDS: Registry = {
    "kafka": ("driftloop.tools.commands.kafka", "kafka", "Run a local single-node Kafka (KRaft)."),
    "topics": ("driftloop.tools.commands.topics", "topics", "Create and list driftloop topics."),
    "config": ("driftloop.tools.commands.config", "config", "Show the effective settings."),
    "replay": ("driftloop.tools.commands.replay", "replay",
               "Copy a topic slice into another topic, exactly once, resumable."),
    "status": ("driftloop.tools.commands.status", "status",
               "Topics, consumer lag, and the promoted version per task."),
    "report": ("driftloop.tools.commands.report", "report",
               "Write an HTML report: quality over time, drift, training, versions."),
    "bench": ("driftloop.tools.commands.bench", "bench",
              "Benchmarks: driftloop beside its baseline."),
    "worker": ("driftloop.tools.commands.worker", "worker", "Run the Faust stream worker."),
    "learner": ("driftloop.tools.commands.learner", "learner", "Train and gate LoRA adapters."),
    "aggregate": ("driftloop.tools.commands.aggregate", "aggregate",
                  "Merge site adapters (federated), gate and publish the merge."),
    "versions": ("driftloop.tools.commands.versions", "versions",
                 "List, promote, roll back versions."),
    "serve": ("driftloop.tools.commands.serve", "serve",
              "Reference inference service that hot-swaps promoted adapters."),
    "push": ("driftloop.tools.commands.push", "push",
             "Push promoted adapters into vLLM (or any server with its adapter API)."),
    "review": ("driftloop.tools.commands.review", "review",
               "Label requests to people (a built-in page, Label Studio); answers as feedback."),
    "demo": ("driftloop.tools.commands.demo", "demo",
             "The whole loop on real shifting text, with a verdict against a static model."),
}


@click.group(cls=LazyGroup, registry=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              envvar="DRIFTLOOP_CONFIG", help="TOML settings file (default: ./driftloop.toml).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@bootstrap_servers_option()
@click.version_option(package_name="driftloop", prog_name="driftloop",
                      message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """driftloop: keep a deployed model fresh from its Kafka streams.

    Interactions and feedback come in; drift and quality are watched; LoRA adapters are
    trained, gated and published as new model versions that serving layers hot-swap.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_normal_noise()
    ctx.obj = {"config_path": config_path}


class _Demote(logging.Filter):
    """Turns a client library's ERROR about a normal, retried condition into INFO."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and self.marker in record.getMessage():
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


class _Throttle(logging.Filter):
    """Lets one record per ``seconds`` through for each message that contains ``marker``.

    >>> throttle = _Throttle("Unable connect", seconds=10.0, clock=iter([0.0, 1.0, 11.0]).__next__)
    >>> record = logging.LogRecord("aiokafka", logging.ERROR, "", 0, "Unable connect to node 1",
    ...                            None, None)
    >>> [throttle.filter(record) for _ in range(3)]
    [True, False, True]
    """

    def __init__(self, marker: str, *, seconds: float,
                 clock: Any = None) -> None:
        super().__init__()
        self.marker, self.seconds = marker, seconds
        self.clock = clock or time.monotonic
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.marker not in message:
            return True
        now = self.clock()
        if now - self._last.get(message, -self.seconds) < self.seconds:
            return False
        self._last[message] = now
        return True


def quiet_normal_noise() -> None:
    """No ERROR line and no progress bar for a normal start of a long-running process.

    aiokafka logs the group coordinator's absence on a fresh broker as an ERROR although it
    retries and succeeds (the coordinator is elected a moment later), and repeats its failed
    connects hundreds of times a second while a broker is down; Hugging Face draws progress
    bars that fill daemon logs with carriage returns.
    """
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(
        _Demote("GroupCoordinatorNotAvailableError"))
    # While a broker is down aiokafka logs each failed connect, about 300 lines a second:
    # one per node every 10 s says the same.
    logging.getLogger("aiokafka").addFilter(_Throttle("Unable connect to node", seconds=10.0))
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read by transformers too
    if "transformers" in sys.modules:  # already imported: tell it directly
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """Load the settings named by the group's ``--config``, with ``--bootstrap-servers``
    (of the group or the command) over the file's and the environment's broker."""
    root = ctx.find_root()
    config_path = (root.obj or {}).get("config_path")
    broker = ctx.meta.get(BROKER_META_KEY)
    if broker:
        overrides["kafka"] = {**overrides.get("kafka", {}), "bootstrap_servers": broker}
    return load_settings(config_path, **overrides)


# Top-level modules of each extra (pyproject.toml); the base install is the client.
_EXTRAS = {"torch": "learner", "transformers": "learner", "peft": "learner", "gguf": "learner",
           "accelerate": "learner", "fsspec": "learner", "faust": "worker", "mode": "worker",
           "river": "worker",
           "aiohttp": "serve", "prometheus_client": "serve", "matplotlib": "ops",
           "tqdm": "ops"}


def extra_for(module: str) -> str | None:
    """The extra that installs ``module`` (None: not one of an extra's).

    >>> extra_for("torch.nn"), extra_for("faust"), extra_for("json")
    ('learner', 'worker', None)
    """
    return _EXTRAS.get(module.split(".")[0])


def main(argv: list[str] | None = None) -> None:
    """Console entry point: driftloop errors print as one line and exit with their
    ``exit_status`` (1; 3 when the learner cannot load a base model)."""
    try:
        cli.main(args=argv, prog_name="driftloop", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DriftloopError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_status)
    except KafkaError as exc:  # broker unreachable, not authorised, ...: one line, no trace
        # A wrong SASL password also ends here; the client's log line above says which.
        hint = (" (is the broker running? driftloop kafka status; do kafka.security_protocol "
                "and the sasl_* settings match its listener?)") \
            if isinstance(exc, KafkaConnectionError) else ""
        click.echo(f"error: kafka: {exc}{hint}", err=True)
        sys.exit(1)
    except ModuleNotFoundError as exc:
        extra = extra_for(exc.name or "")
        if extra is None:
            raise
        click.echo(f"error: this command needs the {extra!r} extra (module {exc.name!r} is "
                   f"missing): pip install 'driftloop[{extra}]'", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
