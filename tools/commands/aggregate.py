"""``driftloop aggregate``: one federated round for a task (merge site adapters, gate, publish)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..cli import settings_from
from ..options import bootstrap_servers_option

__all__ = ["aggregate"]


@click.command()
@click.option("--task", required=True, help="The task whose site adapters are merged.")
@click.option("--eval-set", "eval_set", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The aggregator's own labelled JSONL set ({input, target, domain}) the "
                   "merge is gated on; never examples copied from a site.")
@click.option("--min-sites", type=click.IntRange(min=1), default=2, show_default=True,
              help="Fewest accepted site adapters worth a merge.")
@bootstrap_servers_option()
@click.pass_context
def aggregate(ctx: click.Context, task: str, eval_set: Path, min_sites: int) -> None:
    """Merge each site's latest adapter of TASK from site-adapters, gate and publish it.

    Site adapters must share the task's base model and the federation's LoRA shape
    (learner.lora_r, learner.lora_alpha); others go to dead-letters with the reason. The
    merge averages the sites' LoRA updates weighted by their example counts, is gated
    against the promoted head on --eval-set and appended to model-versions.
    """
    settings = settings_from(ctx)
    # Imported here: torch and transformers take seconds, `driftloop --help` should not.
    from ...learner.federated.eval_set import load_eval_set
    from ...learner.federated.round import run_round

    examples = load_eval_set(eval_set)
    outcome = asyncio.run(run_round(settings, task, examples, min_sites=min_sites))
    for reason in outcome.refused:
        click.echo(f"refused: {reason}", err=True)
    event = outcome.event
    assert event is not None
    if outcome.already_published:
        click.echo(f"{event.version_id} already published ({event.status.value}): "
                   "no new site adapters since")
        return
    sites = ", ".join(f"{s['site']} x{s['weight']:.2f}"
                      for s in event.metadata["federated"]["sites"])
    click.echo(f"{event.version_id} {event.status.value} from {sites}: {event.reason}")
