"""``driftloop demo``: the whole loop on real, shifting text, ending with a verdict."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli import settings_from
from ..options import BROKER_META_KEY, bootstrap_servers_option

__all__ = ["demo"]


@click.command()
@click.option("--quick", is_flag=True, help="A smaller stream: under 3 minutes.")
@bootstrap_servers_option(help="Use this broker (default: start or reuse the local one).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder: logs, artifacts, worker data, report "
                   "[default: <data home>/driftloop/demo/<run id>].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the stream, the users and the reviewer.")
@click.option("--task", type=click.Choice(["classify", "generate"]), default="classify",
              show_default=True,
              help="classify: MiniLM with a classification head; generate: SmolLM2-135M-Instruct "
                   "answering under a prompt template (slower: about 10 minutes with --quick).")
@click.pass_context
def demo(ctx: click.Context, quick: bool, workdir: Path | None, seed: int, task: str) -> None:
    """Show the loop: VADER sentiment text moves tweets -> movies -> amazon -> nyt.

    Starts the worker, the learner and the reference service as child processes, trains a
    first (static) model on tweets, then sends the stream through /predict with simulated
    users' delayed, partly wrong labels and a reviewer answering label requests. Drift is
    detected, adapters are trained, gated and hot-swapped. It ends with held-out and live
    accuracy per domain against the static model, the report's path and a verdict line.
    Every child process stops on exit, Ctrl-C or SIGTERM.
    """
    from ..demo.run import run_demo

    run_demo(settings_from(ctx), quick=quick, broker=ctx.meta.get(BROKER_META_KEY),
             workdir=workdir, seed=seed, task=task)
