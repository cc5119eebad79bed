"""``driftloop bench ...``: each benchmark measures driftloop beside its baseline, same run.

Benchmarks live in their own modules, registered in :data:`BENCHES` and imported on use.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["BENCHES", "bench"]

# name -> (module, attribute, one-line help)
BENCHES: dict[str, tuple[str, str, str]] = {
    "codec": ("driftloop.tools.bench_codec", "codec", "Event decode vs orjson.loads alone."),
    "worker": ("driftloop.tools.bench_worker", "worker", "Worker full path vs raw aiokafka loop."),
    "serve": ("driftloop.tools.bench_serve", "serve",
              "Swap latency; /predict req/s with vs without the subscriber."),
    "learner": ("driftloop.tools.bench_learner", "learner", "Incremental update vs cold Trainer."),
}


class _LazyBenchGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in BENCHES:
            return None
        module, attr, _ = BENCHES[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, BENCHES[name][2]) for name in self.list_commands(ctx)]
        if rows:  # click's write_dl refuses an empty table
            with formatter.section("Benchmarks"):
                formatter.write_dl(rows)


@click.group(cls=_LazyBenchGroup)
def bench() -> None:
    """Measure driftloop against its baseline on this machine and print the ratio."""
