"""``driftloop bench ...``: each benchmark measures driftloop beside its baseline, same run.

Benchmarks live in their own modules, registered in :data:`BENCHES` and imported on use.
"""

from __future__ import annotations

import click

from ..lazy_group import LazyGroup, Registry

__all__ = ["BENCHES", "bench"]

BENCHES: Registry = {
    "codec": ("driftloop.tools.bench.codec", "codec", "Event decode vs orjson.loads alone."),
    "worker": ("driftloop.tools.bench.worker", "worker", "Worker full path vs raw aiokafka loop."),
    "serve": ("driftloop.tools.bench.serve", "serve",
              "Swap latency; /predict req/s with vs without the subscriber."),
    "learner": ("driftloop.tools.bench.learner", "learner", "Incremental update vs cold Trainer."),
    "freshness": ("driftloop.tools.bench.freshness", "freshness",
                  "Trigger -> first answer by the promoted version, in phases."),
    "gpu-check": ("driftloop.tools.bench.gpu_check", "gpu_check",
                  "The learner on CUDA: cuda tests, tokens/s vs plain PEFT, autocast decisions."),
    "quality": ("driftloop.tools.bench.quality.run", "quality",
                "Drift delay and false alarms, forgetting, label efficiency (offline)."),
    "faults": ("driftloop.tools.bench.faults.run", "faults",
               "Kill and restart components and the broker; nothing lost, nothing twice."),
}


@click.group(cls=LazyGroup, registry=BENCHES, section="Benchmarks")
def bench() -> None:
    """Measure driftloop against its baseline on this machine and print the ratio."""
