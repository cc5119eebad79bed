"""``driftloop bench worker``: the worker's full path beside a raw aiokafka loop, same topic.

Both read the same batch envelopes of interactions (16-dim embeddings, confidences, inputs of
a few words) from one fresh topic prefix on the configured broker. The traffic is steady: its
embeddings, confidences and texts are drawn from one distribution throughout, so the worker
meets the steady state (each round prints the drift alerts it raised; an input signal that
moved with every event once made it alert on almost every message, each alert a send the
step waits for):

* raw: an ``AIOKafkaConsumer.getmany`` loop that decodes every message with
  ``decode_batch`` (what any consumer of the contract must do, and nothing more);
* worker: ``driftloop worker`` in a subprocess doing everything (Faust, decode, dead
  letters, join window, drift monitors, active learning, table writes with changelogs),
  timed from its first to its last handled event as seen on its ``/metrics`` page.

The two alternate for ``--rounds`` rounds. Prints every round's rates and ratio, then the
median rates and the median ratio with its spread over the rounds (lowest to highest).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import click
import numpy as np

from ...client.kafka import new_consumer, new_producer
from ...schemas import Interaction, decode_batch, encode_batch
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..cli import settings_from
from ..kafka.topic_admin import create_topics
from ..ops.accounting import metric
from ..options import bootstrap_servers_option, json_option, print_json, text_to_stderr
from .faults.rig import metrics_text

__all__ = ["worker"]


_WORDS = ("the", "service", "was", "slow", "quick", "food", "great", "cold", "staff", "price",
          "not", "worth", "it", "again", "would", "order", "never", "very", "good", "bad")


def _events(n: int, dim: int, seed: int = 0) -> list[Interaction]:
    """Steady traffic: every field drawn from the same distribution for the whole run.

    >>> [e.input for e in _events(2, 4)]
    ['service very the not service food', 'price staff staff the the was']
    """
    rng = np.random.default_rng(seed)
    vectors = (rng.normal(size=(n, dim)) * 0.5 + 1.0).round(5)
    conf = rng.beta(8, 2, n)
    words = rng.integers(len(_WORDS), size=(n, 6))
    return [Interaction(id=f"b-{i}", ts=1_700_000_000.0 + i, task="bench", domain="d",
                        model_version="v1", input=" ".join(_WORDS[w] for w in words[i]),
                        prediction="pos", scores={"confidence": float(conf[i])},
                        embedding=vectors[i].tolist())
            for i in range(n)]


async def _produce(settings: Settings, messages: list[bytes]) -> None:
    async with new_producer(settings, linger_ms=5,
                            max_request_size=20 * 1024 * 1024) as producer:
        topic = settings.kafka.topic(Topic.INTERACTIONS)
        pending = [await producer.send(topic, m, key=b"bench") for m in messages]
        await asyncio.gather(*pending)


async def _raw(settings: Settings, total: int) -> float:
    consumer = new_consumer(settings, settings.kafka.topic(Topic.INTERACTIONS),
                            auto_offset_reset="earliest", fetch_max_bytes=64 * 1024 * 1024,
                            max_partition_fetch_bytes=32 * 1024 * 1024)
    async with consumer:
        seen, started = 0, None
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    if started is None:
                        started = time.perf_counter()
                    seen += len(decode_batch(record.value, Interaction))
        assert started is not None
        return total / (time.perf_counter() - started)


def _metric(port: int, name: str, **labels: str) -> float:
    """A counter of the worker's ``/metrics`` page, summed over the samples with ``labels``;
    -1 when the page does not answer."""
    text = metrics_text(port)
    return -1.0 if text is None else metric(text, name, **labels)


def _worker(settings: Settings, total: int, data_dir: Path, timeout: float,
            app_id: str) -> tuple[float, int]:
    """The worker's events/s over ``total`` events, and the drift alerts it raised."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # A fresh app id per run: a new consumer group (reads from the start) and new changelogs.
    env = {**os.environ, **settings.kafka.child_env(),
           "DRIFTLOOP_WORKER__APP_ID": app_id,
           "DRIFTLOOP_WORKER__WEB_PORT": str(port),
           "DRIFTLOOP_WORKER__DATA_DIR": str(data_dir)}
    command = [str(Path(sys.executable).parent / "driftloop"), "worker"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        started = None
        while time.monotonic() < deadline:
            done = _metric(port, "driftloop_worker_events_total", kind="interactions")
            if done > 0 and started is None:
                started, first = time.perf_counter(), done
            if done >= total:
                assert started is not None
                # The first scrape saw ``first`` events already handled: count from there.
                rate = (total - first) / max(time.perf_counter() - started, 1e-9)
                return rate, int(_metric(port, "driftloop_drift_alerts_total"))
            time.sleep(0.05)
        raise click.ClickException(f"the worker did not handle {total} events in {timeout} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@click.command()
@click.option("--events", default=200_000, show_default=True, help="Events to send.")
@click.option("--batch", default=500, show_default=True, help="Events per Kafka message.")
@click.option("--dim", default=16, show_default=True, help="Embedding dimensions.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds for each side.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1),
              help="Alternate raw and worker runs this many times.")
@json_option
@bootstrap_servers_option()
@click.pass_context
def worker(ctx: click.Context, events: int, batch: int, dim: int, timeout: float,
           rounds: int, as_json: bool) -> None:
    """Events/s of the worker's full path and of a raw aiokafka loop, and their ratio.

    Both sides run ``--rounds`` times, alternating, so both meet the same conditions; each
    round's ratio is printed, then the median ratio and the spread (lowest, highest).
    """
    with text_to_stderr(as_json):
        document = _run(ctx, events, batch, dim, timeout, rounds)
    if as_json:
        print_json(document)


def _run(ctx: click.Context, events: int, batch: int, dim: int, timeout: float,
         rounds: int) -> dict[str, Any]:
    base = settings_from(ctx)
    settings = Settings(kafka={**base.kafka.model_dump(),
                               "topic_prefix": f"bench{uuid.uuid4().hex[:8]}."},
                        worker=base.worker.model_dump())
    create_topics(settings)
    click.echo(f"sending {events} events in batches of {batch} to "
               f"{settings.kafka.topic(Topic.INTERACTIONS)} ...")
    interactions = _events(events, dim)
    messages = [encode_batch(interactions[i:i + batch]) for i in range(0, events, batch)]
    asyncio.run(_produce(settings, messages))
    raws, fulls, alerts = [], [], []
    run_id = uuid.uuid4().hex[:8]
    for round_no in range(1, rounds + 1):
        raws.append(asyncio.run(_raw(settings, events)))
        with tempfile.TemporaryDirectory(prefix="driftloop-bench-") as tmp:
            rate, raised = _worker(settings, events, Path(tmp), timeout,
                                   f"driftloop-bench-{run_id}-{round_no}")
        fulls.append(rate)
        alerts.append(raised)
        click.echo(f"round {round_no}/{rounds}: raw {raws[-1]:,.0f} events/s, "
                   f"worker {fulls[-1]:,.0f} events/s ({fulls[-1] / raws[-1]:.2f}), "
                   f"{raised} drift alerts")
    ratios = [full / raw for raw, full in zip(raws, fulls, strict=True)]
    raw, full = statistics.median(raws), statistics.median(fulls)
    ratio = statistics.median(ratios)
    click.echo(f"raw aiokafka getmany + decode_batch: {raw:12,.0f} events/s (median)")
    click.echo(f"driftloop worker (full path):        {full:12,.0f} events/s (median)")
    click.echo(f"ratio worker/raw:                    {ratio:12.2f}  median of {rounds} rounds, "
               f"spread {min(ratios):.2f}-{max(ratios):.2f}")
    return {"events": events, "batch": batch, "dim": dim, "rounds": rounds,
            "raw_events_per_s": raws, "worker_events_per_s": fulls, "ratios": ratios,
            "worker_drift_alerts": alerts,
            "median_ratio": ratio, "min_ratio": min(ratios), "max_ratio": max(ratios)}
