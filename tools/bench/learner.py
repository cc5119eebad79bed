"""``driftloop bench learner``: one incremental update vs a Trainer run from a cold start."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ...learner.models.resident import default_base_model
from ...schemas.enums import TaskKind
from ...schemas.settings import Settings
from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json, text_to_stderr
from .memory import MemoryPeak, current_rss, peak_memory

__all__ = ["learner"]


@click.command()
@click.option("--examples", "n", type=click.IntRange(min=8), default=128, show_default=True,
              help="Examples in the request (a quarter is held out for the gate).")
@click.option("--kind", type=click.Choice([kind.value for kind in TaskKind]),
              default=TaskKind.CLASSIFICATION.value, show_default=True,
              help="all-MiniLM-L6-v2 + head, or SmolLM2-135M-Instruct (GGUF) with a template.")
@click.option("--domain", type=click.Choice(["tweets", "movies", "amazon", "nyt"]),
              default="tweets", show_default=True, help="VADER domain the examples come from.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads (default: learner.torch_threads, else torch's choice).")
@click.option("--kafka/--no-kafka", default=True, show_default=True,
              help="Also time request consumed -> version published on the configured broker.")
@click.option("--probes", type=click.IntRange(min=0), default=0, show_default=True,
              help="Give the bench task a challenge suite of this many probes (real texts of "
                   "another domain): the update scores it for both versions, and a "
                   "generation candidate answers its newest learner.prompt_stability_probes "
                   "under every paraphrase of its prompt, as in a running learner.")
@click.option("--burst", type=click.IntRange(min=0), default=0, show_default=True,
              help="Instead: send this many requests of one task and domain at each "
                   "--burst-rate to the learner on the broker, with coalescing and without, "
                   "and show its lag.")
@click.option("--burst-rate", "burst_rates", type=click.FloatRange(min=0.01), multiple=True,
              default=(0.5, 2.0), show_default=True, help="Requests per second of a burst.")
@click.option("--processes", type=click.IntRange(min=0), default=0, show_default=True,
              help="Instead: time the update's training in the learner's process and spread "
                   "over this many processes (learner.data_parallel), alternating, --rounds "
                   "times each.")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Rounds of each arm with --processes.")
@json_option
@bootstrap_servers_option()
@click.pass_context
def learner(ctx: click.Context, n: int, kind: str, domain: str, threads: int | None,
            kafka: bool, probes: int, burst: int, burst_rates: tuple[float, ...],
            processes: int, rounds: int, as_json: bool) -> None:
    """Wall time and examples/s of one update against a cold-start Trainer run."""
    if processes == 1:
        raise click.BadParameter("compare with at least 2 processes", param_hint="--processes")
    with text_to_stderr(as_json):
        document = (_run_burst(ctx, n, threads, burst, burst_rates) if burst
                    else _run_processes(ctx, n, kind, domain, threads, processes, rounds)
                    if processes else _run(ctx, n, kind, domain, threads, kafka, probes))
    if as_json:
        print_json(document)


@contextmanager
def _bench_settings(ctx: click.Context, threads: int | None, *, probes: int = 0,
                    kind: str = TaskKind.CLASSIFICATION.value,
                    domain: str = "tweets") -> Iterator[Settings]:
    """The command's settings with the thread count and a throw-away artifact store; with
    ``probes``, the bench task has a challenge suite of that many real texts."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    base = settings_from(ctx)
    learner_cfg = base.learner.model_copy(
        update={"torch_threads": threads or base.learner.torch_threads})
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-") as store:
        tasks = dict(base.tasks)
        if probes:
            tasks[f"bench-{kind}"] = _probe_task(Path(store), probes, kind, domain)
        yield base.model_copy(update={
            "learner": learner_cfg, "tasks": tasks,
            "artifacts": base.artifacts.model_copy(update={"store_url": store})})


def _probe_task(folder: Path, probes: int, kind: str, domain: str) -> Any:
    """The bench task's settings with a challenge suite of ``probes`` balanced texts from
    another VADER domain than the examples' (a running task's suite grows from real errors)."""
    import orjson

    from ...schemas.settings import TaskSettings
    from ..demo.vader import balanced_sample, read_domain

    other = "nyt" if domain != "nyt" else "movies"
    path = folder / "bench-probes.jsonl"
    path.write_bytes(b"".join(
        orjson.dumps({"input": e.text, "expected": e.label, "id": f"probe-{i}"}) + b"\n"
        for i, e in enumerate(balanced_sample(read_domain(other), probes, seed=1))))
    return TaskSettings(kind=TaskKind(kind), challenge_suite=path,
                        prompt_template_id=("sentiment" if kind == TaskKind.GENERATION.value
                                            else None))


def _run_burst(ctx: click.Context, n: int, threads: int | None, burst: int,
               rates: tuple[float, ...]) -> dict[str, Any]:
    with _bench_settings(ctx, threads) as settings:
        from ...learner.training.update import IncrementalUpdater
        from .learner_burst import run_burst
        from .trainer_baseline import bench_request, time_incremental

        updater = IncrementalUpdater(settings)
        # The base model resident first, as in a running learner.
        _, warm, _ = time_incremental(updater, bench_request(n, request_id="bench-warm-up"))
        runs = run_burst(settings, updater, burst, rates, n)
    click.echo(f"{burst} requests of {n} examples each, one task and domain (the warm-up "
               f"update, base model load included, took {warm.seconds:.2f} s)")
    click.echo(f"{'rate/s':>7} {'coalesce':>8} {'updates':>8} {'superseded':>10} "
               f"{'max lag':>8} {'drain s':>8} {'stale p50 s':>12} {'stale max s':>12}")
    rows = [run.summary() for run in runs]
    for row in rows:
        click.echo(f"{row['rate_per_s']:7.2f} {row['coalesce_max']:8d} {row['updates']:8d} "
                   f"{row['superseded']:10d} {row['max_lag']:8d} {row['drain_s']:8.2f} "
                   f"{row['staleness_p50_s']:12.2f} {row['staleness_max_s']:12.2f}")
    return {"burst": burst, "examples": n, "warm_up_update_s": warm.seconds, "runs": rows}


def _run_processes(ctx: click.Context, n: int, kind: str, domain: str, threads: int | None,
                   processes: int, rounds: int) -> dict[str, Any]:
    """The same request trained in one process and spread over ``processes``, alternating:
    the training phase's wall time, median and range (the processes start in the first
    round and are kept, as in a running learner)."""
    from statistics import median

    with _bench_settings(ctx, threads, kind=kind, domain=domain) as settings:
        from ...learner.registry.version_log import VersionLog
        from ...learner.training.update import IncrementalUpdater
        from .trainer_baseline import bench_request

        alone = IncrementalUpdater(settings.model_copy(update={
            "learner": settings.learner.model_copy(update={"data_parallel": 1})}))
        spread = IncrementalUpdater(settings.model_copy(update={
            "learner": settings.learner.model_copy(update={"data_parallel": processes})}),
            models=alone.models, device=alone.device)
        seconds: dict[str, list[float]] = {"one": [], "spread": []}
        steps = 0
        try:
            alone.update(bench_request(n, domain=domain, kind=kind,
                                       request_id="bench-warm-up"), VersionLog())
            for round_ in range(rounds):
                for arm, updater in (("one", alone), ("spread", spread)):
                    request = bench_request(n, domain=domain, kind=kind,
                                            request_id=f"bench-{arm}-{round_}")
                    result = updater.update(request, VersionLog())
                    seconds[arm].append(result.train_report.seconds)
                    steps = result.train_report.steps
        finally:
            spread.close()
    ratios = [a / b for a, b in zip(seconds["one"], seconds["spread"], strict=True)]
    click.echo(f"training of one {kind} update ({n} examples, {steps} steps), {rounds} rounds, "
               f"device {alone.device.type}")
    for arm, label in (("one", "in the learner's process"),
                       ("spread", f"over {processes} processes (kept; round 1 starts them)")):
        values = seconds[arm]
        click.echo(f"  {label:42} median {median(values):6.2f} s "
                   f"[{min(values):.2f}, {max(values):.2f}]")
    click.echo(f"ratio one process / spread: median {median(ratios):.2f} "
               f"[{min(ratios):.2f}, {max(ratios):.2f}]")
    return {"kind": kind, "examples": n, "steps": steps, "processes": processes,
            "device": alone.device.type, "rounds": rounds, "seconds": seconds,
            "ratio_one_to_spread": {"median": median(ratios), "min": min(ratios),
                                    "max": max(ratios)}}


def _run(ctx: click.Context, n: int, kind: str, domain: str, threads: int | None,
         kafka: bool, probes: int = 0) -> dict[str, Any]:
    with _bench_settings(ctx, threads, probes=probes, kind=kind, domain=domain) as settings:
        from ...learner.training.update import IncrementalUpdater
        from .trainer_baseline import (
            bench_request,
            time_incremental,
            time_trainer_cold_process,
            time_trainer_cold_start,
        )

        updater = IncrementalUpdater(settings)
        request = bench_request(n, domain=domain, kind=kind)
        updater.models.get(default_base_model(TaskKind(kind)), kind)
        loaded = current_rss()  # the learner with its base model, before any update
        # A running learner has served requests before: one warm-up, then the measured one.
        time_incremental(updater, bench_request(n, domain=domain, kind=kind,
                                                request_id="bench-warm-up"))
        with peak_memory() as memory:  # the steady state: the base resident, warmed up
            train, whole, result = time_incremental(updater, request)
        base = updater.models.get(result.event.base_model, kind)
        weights = sum(p.numel() * p.element_size() for p in base.model.parameters())
        cold_in_process = time_trainer_cold_start(settings, request)
        cold = time_trainer_cold_process(settings, request)
        latency = _kafka_latency(settings, updater, n, kind, domain) if kafka else None

    import torch

    split = result.split
    click.echo(f"one update of {result.event.base_model} + LoRA r={settings.learner.lora_r} on "
               f"{len(split.train)} train examples ({domain}), {result.train_report.steps} steps, "
               f"device {updater.device.type}, torch threads {torch.get_num_threads()}")
    rows = [("driftloop, training only (resident model)", train),
            ("driftloop, whole update (score, train, gate, store)", whole),
            ("HF Trainer, load + train (imports warm)", cold_in_process),
            ("HF Trainer, cold process (imports + load + train)", cold)]
    click.echo(f"{'':54} {'wall s':>8} {'examples/s':>11}")
    for name, timing in rows:
        click.echo(f"{name:54} {timing.seconds:8.2f} {timing.examples_per_second:11.1f}")
    click.echo(f"ratio Trainer cold process / driftloop whole update: "
               f"{cold.seconds / whole.seconds:.2f}x; "
               f"Trainer load + train / driftloop training: "
               f"{cold_in_process.seconds / train.seconds:.2f}x")
    click.echo(f"gate: {result.event.status.value} ({result.event.reason})")
    timings = result.timings
    phases = {key.removesuffix("_seconds"): round(value, 3) for key, value in timings.items()}
    click.echo("phases of the update (s): " + ", ".join(f"{k} {v:.2f}"
                                                     for k, v in phases.items()))
    after = result.event.metrics_after
    if probes:
        stability = after.get("prompt_stability")
        click.echo(f"challenge suite: {probes} probes scored for both versions"
                   + (f"; prompt stability {stability:.3f} on "
                      f"{after['prompt_stability_count']:.0f} probes x "
                      f"{after['prompt_stability_variants']:.0f} wordings"
                      if stability is not None else ""))
    click.echo(_memory_line(memory, weights, loaded))
    if latency is not None:
        click.echo(f"request consumed -> version published (Kafka): {latency:.2f} s")
    elif kafka:
        click.echo("request consumed -> version published: broker not reachable, skipped")
    return {"base_model": result.event.base_model, "kind": kind, "domain": domain,
            "train_examples": len(split.train), "steps": result.train_report.steps,
            "device": updater.device.type, "torch_threads": torch.get_num_threads(),
            "seconds": {"training": train.seconds, "whole_update": whole.seconds,
                        "trainer_load_and_train": cold_in_process.seconds,
                        "trainer_cold_process": cold.seconds},
            "ratio_cold_process_to_whole_update": cold.seconds / whole.seconds,
            "ratio_load_and_train_to_training": cold_in_process.seconds / train.seconds,
            "gate": result.event.status.value, "consumed_to_published_s": latency,
            "probes": probes, "phases_s": phases,
            "prompt_stability": after.get("prompt_stability"),
            "memory_bytes": {"base_weights": weights, "base_model_loaded": loaded,
                             "resident_before_update": memory.before,
                             "peak_during_update": memory.peak,
                             "cuda_before_update": memory.cuda_before,
                             "cuda_peak_during_update": memory.cuda_peak},
            "ratio_peak_to_resident": memory.ratio}


def _memory_line(memory: MemoryPeak, weights: int, loaded: int | None) -> str:
    """The update's peak memory against the learner's resident size, in MB.

    >>> line = _memory_line(MemoryPeak(before=500 * 2**20, peak=550 * 2**20), 90 * 2**20,
    ...                     400 * 2**20)
    >>> line.endswith("peak during it 550 MB (1.10x before, 1.38x loaded)")
    True
    """
    mb = 2**20
    if memory.before is None or memory.peak is None or memory.ratio is None or not loaded:
        return f"memory: not measured here (no /proc); base weights {weights / mb:.0f} MB"
    line = (f"memory: base model loaded {loaded / mb:.0f} MB (its weights {weights / mb:.0f} "
            f"MB), before the update {memory.before / mb:.0f} MB, peak during it "
            f"{memory.peak / mb:.0f} MB ({memory.ratio:.2f}x before, "
            f"{memory.peak / loaded:.2f}x loaded)")
    if memory.cuda_before is not None and memory.cuda_peak is not None:
        line += (f"; CUDA allocated {memory.cuda_before / mb:.0f} MB, peak "
                 f"{memory.cuda_peak / mb:.0f} MB")
    return line


def _kafka_latency(settings, updater, n: int, kind: str, domain: str) -> float | None:  # type: ignore[no-untyped-def]
    """Run the learner service on a throw-away topic prefix for one request."""
    from ...client.kafka import new_producer
    from ...learner.service import LearnerService
    from ...schemas.codec import encode
    from ...schemas.topics import Topic
    from ..kafka.topic_admin import acreate_topics, adelete_topics
    from .trainer_baseline import bench_request

    prefix = f"{settings.kafka.topic_prefix}bench-{uuid.uuid4().hex[:8]}."
    bench = settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"topic_prefix": prefix}),
        "learner": settings.learner.model_copy(update={"group_id": f"{prefix}learner"})})

    async def run() -> float | None:
        from aiokafka.errors import KafkaConnectionError

        try:
            await asyncio.wait_for(acreate_topics(bench), 60)
        except (KafkaConnectionError, TimeoutError, OSError):
            return None
        try:
            async with new_producer(bench) as producer:
                request = bench_request(n, domain=domain, kind=kind,
                                        request_id=f"bench-{uuid.uuid4()}")
                await producer.send_and_wait(bench.kafka.topic(Topic.TRAINING_REQUESTS),
                                             encode(request), key=request.task.encode())
            stats = await LearnerService(bench, updater=updater, max_requests=1).run()
            return stats.latencies[0] if stats.latencies else None
        finally:
            await adelete_topics(bench)

    return asyncio.run(run())
