"""``driftloop status``: topics, end offsets, consumer lag, promoted version per task."""

from __future__ import annotations

import asyncio

import click

from ..cli import settings_from
from ..ops.status import Status, collect_status
from ..options import bootstrap_servers_option, json_option, print_json

__all__ = ["render_status", "status"]


def render_status(status: Status, *, max_lag: int = 10_000) -> str:
    """The status as an aligned plain-text report for a terminal, problems last."""
    lines = [f"broker {status.bootstrap_servers}   prefix {status.topic_prefix or '(none)'}", ""]
    width = max((len(t.name) for t in status.topics), default=10)
    lines.append(f"{'topic':<{width}}  partitions  records")
    for topic in status.topics:
        lines.append(f"{topic.name:<{width}}  {topic.partitions:>10}  {topic.records:>7}")
    for name in status.missing_topics:
        lines.append(f"{name:<{width}}  missing (run: driftloop topics create)")
    lines += ["", "consumer group lag"]
    for group in status.groups:
        if not group.exists:
            lines.append(f"  {group.role:<8} {group.group}: no committed offsets yet")
            continue
        detail = ", ".join(f"{topic} {lag}" for topic, lag in sorted(group.lag.items()))
        members = "" if group.members is None else f", {group.members} running"
        lines.append(f"  {group.role:<8} {group.group}: {group.total} behind ({detail}){members}")
    lines += ["", f"model versions: {status.versions}"]
    if status.registry_error:
        lines.append(f"  registry unreadable: {status.registry_error}")
    for task, version in sorted(status.promoted.items()):
        states = status.replicas.get(task, [])
        serving = [s for s in states if s.serving and s.version_id == version]
        summary = (f"served by {len(serving)}/{len(states)} replicas"
                   + (" (converged)" if status.converged(task) else "")) if states else \
            "no serving replica has acknowledged it"
        lines.append(f"  {task}: promoted {version}, {summary}")
        for state in states:
            what = "serves" if state.serving else "refused"
            why = f" ({state.reason})" if state.reason and not state.serving else ""
            lines.append(f"    {state.replica}: {what} {state.version_id}{why}")
    if not status.promoted and not status.registry_error:
        lines.append("  no promoted version yet")
    if status.reviews:
        lines += ["", "label requests      sent  answered  pending  median time to answer"]
        for task, counts in sorted(status.reviews.items()):
            median = ("-" if counts.median_answer_s is None
                      else f"{counts.median_answer_s:.0f} s")
            lines.append(f"  {task:<16}{counts.sent:>6}{counts.answered:>10}"
                         f"{counts.pending:>9}  {median}")
    problems = status.problems(max_lag=max_lag)
    lines += ["", f"problems: {len(problems)}" if problems else "problems: none"]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


@click.command()
@json_option
@click.option("--max-lag", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="Records a worker or learner group may be behind before it is a problem.")
@bootstrap_servers_option()
@click.pass_context
def status(ctx: click.Context, as_json: bool, max_lag: int) -> None:
    """Topics, partitions, end offsets, worker and learner lag, promoted version per task.

    Exits 1 when something needs an operator (a missing topic, a component down or lagging
    past --max-lag, an unreadable registry), so a probe or a script can act on it.
    """
    result = asyncio.run(collect_status(settings_from(ctx)))
    problems = result.problems(max_lag=max_lag)
    if as_json:
        print_json({**result.to_dict(), "problems": problems})  # partition ids are ints
    else:
        click.echo(render_status(result, max_lag=max_lag))
    if problems:
        ctx.exit(1)
