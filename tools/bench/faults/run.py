"""``driftloop bench faults``: inject faults into a running deployment, then account for it.

Each scenario (see :mod:`driftloop.tools.bench.faults.scenarios`) runs the real worker, learner and
service on a Kafka broker of the bench's own (it must be able to restart it), then prints per
scenario: events produced, processed, dead-lettered, lost (must be 0), duplicate versions
(must be 0) and recovery time. The baseline is the fault-free expectation: zero lost, zero
duplicates. The command exits with status 1 when any scenario's accounting fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import click

from ...cli import settings_from
from ...ops.accounting import Ledger
from ...options import (
    bootstrap_servers_option,
    json_option,
    output_option,
    print_json,
    text_to_stderr,
)
from .disk import DiskUnavailable
from .rig import FaultRig
from .scenarios import DISK_SCENARIOS, SCENARIOS, FaultPlan, ScenarioResult, run_scenario

__all__ = ["faults", "format_table", "run_faults"]

_COLUMNS = (("scenario", 24), ("faults", 6), ("produced", 9), ("processed", 9),
            ("dead_lettered", 13), ("lost", 5), ("double_counted", 14),
            ("labels_lost", 11), ("labels_twice", 12),
            ("training_requests", 17),
            ("unanswered_requests", 19), ("duplicate_versions", 18), ("recovery_s_max", 14),
            ("ok", 3))


def format_table(results: list[ScenarioResult]) -> str:
    """The per-scenario table.

    >>> from driftloop.tools.ops.accounting import Ledger
    >>> row = ScenarioResult("worker-kill", Ledger(produced={"interactions": 5},
    ...                      processed={"interactions": 5}), faults=3, recovery_s=[4.0, 6.5])
    >>> format_table([row]).splitlines()[1].split()
    ['worker-kill', '3', '5', '5', '0', '0', '0', '0', '0', '0', '0', '0', '6.5', 'yes']
    """
    lines = [" ".join(name.replace("_", " ").ljust(width) for name, width in _COLUMNS).rstrip()]
    for result in results:
        row = result.row()
        cells = []
        for name, width in _COLUMNS:
            value = row[name]
            if name == "ok":
                text = "-" if result.not_run else "yes" if value else "NO"
            elif value is None:
                text = "-"
            else:
                text = str(value)
            cells.append(text.ljust(width) if name == "scenario" else text.rjust(width))
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


def run_faults(rig: FaultRig, names: list[str], plan: FaultPlan) -> list[ScenarioResult]:
    """Run the scenarios in order, each on a fresh broker of its own, always stopped."""
    results = []
    for name in names:
        try:
            rig.start_broker(name, disk_bytes=DISK_SCENARIOS.get(name))
        except DiskUnavailable as exc:
            rig.stop_broker()
            rig.say(f"{name}: not run: {exc}")
            results.append(ScenarioResult(name, Ledger(), 0, not_run=str(exc)))
            continue
        rig.say(f"{name}: a Kafka broker of its own at {rig.kafka.bootstrap_servers}")
        try:
            results.append(asyncio.run(run_scenario(rig, name, plan)))
        finally:
            rig.stop_broker()
    return results


@click.command()
@click.option("--scenario", "scenarios", multiple=True, type=click.Choice(list(SCENARIOS)),
              help="Run only these scenarios (repeatable; default: all).")
@click.option("--quick", is_flag=True, help="Smaller streams and fewer faults (the test's size).")
@click.option("--seed", default=0, show_default=True, help="Seed of the fault schedule.")
@click.option("--kills", type=click.IntRange(min=1),
              help="Worker kills of the worker-kill scenario (the stream grows with them).")
@click.option("--write-gap", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Seconds the worker pauses after each state record (a test hook), so "
                   "kills land in the middle of a step's writes.")
@json_option
@output_option
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the broker data and process logs here (default: a temporary folder).")
@bootstrap_servers_option()
@click.pass_context
def faults(ctx: click.Context, scenarios: tuple[str, ...], quick: bool, seed: int,
           kills: int | None, write_gap: float, as_json: bool, output: Path | None,
           workdir: Path | None) -> None:
    """Kill the worker and learner, restart the broker; count produced, lost, duplicated."""
    with text_to_stderr(as_json):
        plan, results = _run(ctx, scenarios, quick, seed, kills, write_gap, workdir)
    document = {"plan": dataclasses.asdict(plan), "results": [r.row() for r in results]}
    if output is not None:
        output.write_text(json.dumps(document, indent=2))
        click.echo(f"wrote {output}", err=as_json)
    if as_json:
        print_json(document)
    if not all(r.ok for r in results):
        sys.exit(1)


def _run(ctx: click.Context, scenarios: tuple[str, ...], quick: bool, seed: int,
         kills: int | None, write_gap: float,
         workdir: Path | None) -> tuple[FaultPlan, list[ScenarioResult]]:
    base = settings_from(ctx)
    plan = dataclasses.replace(FaultPlan.named(quick, seed), write_gap_s=write_gap)
    if kills is not None:
        plan = plan.with_kills(kills)
    # The bench's own producer retries through the broker outage it causes; aiokafka logs
    # every failed reconnect of that at ERROR. The components log to their own files.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    names = list(scenarios) or list(SCENARIOS)
    began = time.monotonic()

    def say(text: str) -> None:
        click.echo(f"[{time.monotonic() - began:5.0f} s] {text}")

    with tempfile.TemporaryDirectory(prefix="driftloop-faults-") as tmp:
        folder = (workdir or Path(tmp)).absolute()
        results = run_faults(FaultRig(base, folder, say=say), names, plan)
        if workdir is not None:
            say(f"logs and broker data kept in {folder}")
    click.echo(format_table(results))
    for result in results:
        if result.not_run:
            click.echo(f"{result.name}: not run: {result.not_run}")
        for problem in result.ledger.problems():
            click.echo(f"{result.name}: {problem}")
    return plan, results
