"""``driftloop bench serve``: swap latency and /predict throughput of the reference service.

On a fresh topic prefix of the configured broker, one replica (``driftloop serve``'s app on
a real TCP port, the packaged MiniLM, probe adapters in a temporary store) is measured:

* swap latency: from a ``promoted`` event acknowledged by the broker to the first /predict
  answer made with that version, by a client asking back to back; every swap is a new
  version (a real fetch, sha256 check and PEFT load);
* throughput: /predict requests/s from concurrent clients with the subscriber following
  ``model-versions``, then with it stopped (the same replica, versions frozen), and their
  ratio: what following the log costs the serving path; and with a promotion landing every
  ``--swap-every`` seconds while the clients ask (each a fetch, a check, a load and a swap),
  against the round without: what swapping costs the requests around it;
* with ``--via push``, the same swaps through ``driftloop push`` as well: the replica stops
  following the log (as vLLM does not follow it), a pusher loads each promoted adapter
  through vLLM's runtime adapter API (``/v1/load_lora_adapter``), and the clock stops at the
  first OpenAI ``/v1/completions`` answer from the new version; both latencies are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from functools import partial
from operator import contains
from pathlib import Path
from typing import Any

import click

from ...schemas.enums import VersionStatus
from ...schemas.events import ModelVersion
from ...schemas.settings import Settings
from ..cli import settings_from
from ..kafka.topic_admin import create_topics, delete_topics
from ..options import bootstrap_servers_option, json_option, print_json, text_to_stderr

__all__ = ["serve"]


def _spread(seconds: list[float]) -> str:
    """Median, p95 and max of latencies, in ms.

    >>> _spread([0.1, 0.2, 0.3])
    'median 200 ms, p95 300 ms, max 300 ms'
    """
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms")

TASK = "bench"
LABELS = ("negative", "positive")
TEXTS = ("a quiet film that grows on you", "service was slow and the food cold",
         "exactly what I hoped for", "not worth the money")


async def _throughput(url: str, requests: int, concurrency: int) -> float:
    import aiohttp

    per_client = max(1, requests // concurrency)

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        for i in range(per_client):
            body = {"task": TASK, "input": TEXTS[(n + i) % len(TEXTS)]}
            async with session.post(f"{url}/predict", json=body) as response:
                if response.status != 200:
                    raise click.ClickException(f"/predict answered {response.status}: "
                                               f"{await response.text()}")
                await response.read()

    async with aiohttp.ClientSession() as session:
        await client(session, 0)  # warm-up: first tokenizer and graph costs stay out
        started = time.perf_counter()
        await asyncio.gather(*(client(session, n) for n in range(concurrency)))
        return per_client * concurrency / (time.perf_counter() - started)


async def _swap(url: str, publish: object, event: ModelVersion,
                timeout: float) -> tuple[float, float]:
    """Publish ``event``; ``time.monotonic()`` when the broker acknowledged it and when a
    ``/predict`` answer first named it."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        await publish(event)  # type: ignore[operator]
        published = time.monotonic()
        deadline = published + timeout
        while time.monotonic() < deadline:
            async with session.post(f"{url}/predict",
                                    json={"task": TASK, "input": TEXTS[0]}) as response:
                if (await response.json()).get("model_version") == event.version_id:
                    return published, time.monotonic()
    raise click.ClickException(f"{event.version_id} was not served within {timeout} s")


PHASES = ("delivery", "fetch", "load", "answer")
"""Where a swap's time goes: the event from the broker's acknowledgement to the subscriber
reading it; the adapter's fetch from the store and sha256 check; the host's load (waiting
for the forward pass in flight, reading and copying the weights) up to the swap; from the
swap to the first answer naming the version (the client's next forward pass)."""


def swap_phases(published: float, answered: float, change: Any) -> dict[str, float]:
    """One swap's :data:`PHASES`, in seconds, from the ``ServingChange`` it caused.

    >>> from driftloop.learner.serving.served import ServingChange
    >>> change = ServingChange("t", "v2", "v1", "promoted", event_read_at=10.01,
    ...                        load_seconds=0.02, fetch_seconds=0.005)
    >>> {k: round(v, 3) for k, v in swap_phases(10.0, 10.04, change).items()}
    {'delivery': 0.01, 'fetch': 0.005, 'load': 0.015, 'answer': 0.01}
    """
    swapped = change.event_read_at + change.load_seconds
    return {"delivery": change.event_read_at - published, "fetch": change.fetch_seconds,
            "load": change.load_seconds - change.fetch_seconds, "answer": answered - swapped}


async def _swap_via_push(url: str, publish: object, event: ModelVersion,
                         timeout: float) -> float:
    """Publish ``event``; seconds until ``/v1/completions`` answers with that version."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        await publish(event)  # type: ignore[operator]
        published = time.perf_counter()
        deadline = published + timeout
        body = {"model": event.version_id, "prompt": TEXTS[0]}
        while time.perf_counter() < deadline:
            async with session.post(f"{url}/v1/completions", json=body) as response:
                if response.status == 200:
                    return time.perf_counter() - published
    raise click.ClickException(f"{event.version_id} was not pushed within {timeout} s")


async def _push_swaps(settings: Settings, service: Any, url: str, publish: Any,
                      versions: list[ModelVersion], staging: Path) -> list[float]:
    """The replica stops following the log; a pusher loads each version into it."""
    from ...client.kafka import new_producer
    from ...learner.serving.acks import AckPublisher
    from ...learner.serving.push import PushHost
    from ...learner.serving.subscriber import AdapterSubscriber

    await service.subscriber.stop()
    # The pusher starts from an empty target, as on a fresh vLLM: what the subscriber
    # loaded goes (its catch-up would otherwise find the head already loaded).
    await service.host.aevict(TASK, set())
    # Every pushed version is kept: the stopped subscriber still routes the task to the last
    # one it served, and the target refuses to unload a version that answers its task.
    pusher_settings = settings.model_copy(update={"serving": settings.serving.model_copy(
        update={"replica_id": "bench-push", "keep_versions": len(versions) + 1})})
    async with new_producer(pusher_settings) as producer:
        pusher = AdapterSubscriber(
            pusher_settings, PushHost(url, staging), replica="bench-push",
            acks=AckPublisher(producer=producer, settings=pusher_settings, replica="bench-push"))
        async with pusher:
            await pusher.wait_caught_up(120)
            return [await _swap_via_push(url, publish, event, 60.0) for event in versions]


async def _bench(settings: Settings, workdir: Path, requests: int, concurrency: int,
                 swaps: int, port: int, rounds: int, via_push: bool,
                 swap_every: float) -> dict[str, Any]:
    from aiohttp import web

    from ...client.kafka import new_producer
    from ...learner.models.resident import ResidentModels, default_base_model
    from ...learner.registry.store import ArtifactStore
    from ...learner.serving.http import ServingService
    from ...learner.serving.probe import write_probe_adapter
    from ...learner.topics.versions import publish_versions
    from ...schemas.enums import TaskKind

    models = ResidentModels(capacity=1)
    base = models.get(default_base_model(TaskKind.CLASSIFICATION), TaskKind.CLASSIFICATION)
    store = ArtifactStore(settings.artifacts.store_url)
    stored = [store.put(write_probe_adapter(base, workdir / label, version_id=label,
                                            labels=LABELS, favour=label, seed=i))
              for i, label in enumerate(LABELS)]

    def version(i: int, parent: str | None) -> ModelVersion:
        artifact = stored[i % 2]
        return ModelVersion(version_id=f"v{i}", ts=time.time(), task=TASK,
                            base_model=base.model_id, parent_version=parent,
                            adapter_uri=artifact.uri, sha256=artifact.sha256,
                            size_bytes=artifact.size_bytes,
                            status=VersionStatus.PROMOTED)

    async with new_producer(settings, linger_ms=0) as producer:

        async def publish(event: ModelVersion) -> None:
            await publish_versions(producer, settings, [event])

        service = ServingService(settings, models=models)
        runner = web.AppRunner(service.app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        try:
            await publish(version(0, None))
            await service.subscriber.wait_caught_up(120)
            deadline = time.monotonic() + 120
            while service.subscriber.serving(TASK) != "v0":
                if time.monotonic() > deadline:
                    raise click.ClickException("the first version was not served within 120 s")
                await asyncio.sleep(0.05)
            changes: dict[str, Any] = {}
            told = asyncio.Condition()

            async def note(change: Any) -> None:  # after the swap, its ack and evictions
                async with told:
                    changes[change.version_id] = change
                    told.notify_all()

            service.subscriber.on_serving.append(note)
            latencies, phases = [], []
            for i in range(1, swaps + 1):
                event = version(i, f"v{i - 1}")
                published, answered = await _swap(url, publish, event, 30.0)
                latencies.append(answered - published)
                async with told:
                    await asyncio.wait_for(told.wait_for(partial(contains, changes,
                                                                 event.version_id)), 30.0)
                phases.append(swap_phases(published, answered, changes[event.version_id]))
            following, frozen, swapping = [], [], []
            promoted = iter(range(1000, 1_000_000))  # versions promoted during rounds

            async def keep_promoting(stop: asyncio.Event) -> int:
                count = 0
                while not stop.is_set():
                    i = next(promoted)
                    await publish(version(i, f"v{i - 1}"))
                    count += 1
                    with contextlib.suppress(TimeoutError):  # the load's pace, not a sync
                        await asyncio.wait_for(stop.wait(), swap_every)
                return count

            for _ in range(rounds):  # alternated, so load from elsewhere hits both sides alike
                following.append(await _throughput(url, requests, concurrency))
                stop = asyncio.Event()
                promoting = asyncio.create_task(keep_promoting(stop))
                swapping.append(await _throughput(url, requests, concurrency))
                stop.set()
                await promoting
                await service.subscriber.stop()
                frozen.append(await _throughput(url, requests, concurrency))
                await service.subscriber.start()
                await service.subscriber.wait_caught_up(120)
            pushed: list[float] = []
            if via_push:
                pushed = await _push_swaps(
                    settings, service, url, publish,
                    [version(i, f"v{i - 1}") for i in range(swaps + 1, 2 * swaps + 1)],
                    workdir / "push")
            return {"latencies": latencies, "phases": phases, "following": following,
                    "frozen": frozen,
                    "swapping": swapping, "pushed": pushed}
        finally:
            await runner.cleanup()


@click.command()
@click.option("--requests", default=400, show_default=True, help="/predict calls per side.")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent clients.")
@click.option("--swaps", default=8, show_default=True, help="Promotions to time.")
@click.option("--port", default=18080, show_default=True, help="Port of the measured replica.")
@click.option("--rounds", default=3, show_default=True,
              help="Alternated throughput rounds per side (medians are reported).")
@click.option("--torch-threads", default=2, show_default=True, help="torch threads.")
@click.option("--swap-every", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds between promotions in the throughput rounds during swaps.")
@click.option("--via", type=click.Choice(["subscriber", "push"]), default="subscriber",
              show_default=True,
              help="push: also time the same swaps through driftloop push and vLLM's runtime "
                   "adapter API (printed beside the subscriber's).")
@json_option
@bootstrap_servers_option()
@click.pass_context
def serve(ctx: click.Context, requests: int, concurrency: int, swaps: int, port: int,
          rounds: int, torch_threads: int, swap_every: float, via: str, as_json: bool) -> None:
    """Swap latency (promoted event -> first answer with it) and /predict requests/s with and
    without the subscriber following model-versions."""
    with text_to_stderr(as_json):
        result = _run(ctx, requests, concurrency, swaps, port, rounds, torch_threads, via,
                      swap_every)
    if as_json:
        print_json(result)


def _run(ctx: click.Context, requests: int, concurrency: int, swaps: int, port: int,
         rounds: int, torch_threads: int, via: str, swap_every: float) -> dict[str, Any]:
    import torch

    torch.set_num_threads(torch_threads)
    base = settings_from(ctx)
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-serve-") as tmp:
        workdir = Path(tmp)
        kafka = base.kafka.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}."})
        settings = Settings(
            kafka=kafka.model_dump(), artifacts={"store_url": str(workdir / "store")},
            serving={"replica_id": "bench", "tasks": [TASK], "cache_dir": workdir / "cache"})
        create_topics(settings)
        try:
            result = asyncio.run(_bench(settings, workdir, requests, concurrency, swaps, port,
                                        rounds, via == "push", swap_every))
        finally:
            delete_topics(settings)
    following = statistics.median(result["following"])
    frozen = statistics.median(result["frozen"])
    click.echo(f"swap latency over {swaps} promotions (event acked -> first answer): "
               + _spread(result["latencies"]) + " (the replica's subscriber, /predict)")
    for phase in PHASES:
        click.echo(f"  {phase:9} " + _spread([p[phase] for p in result["phases"]]))
    if result["pushed"]:
        click.echo(f"swap latency over {swaps} promotions (event acked -> first answer): "
                   + _spread(result["pushed"])
                   + " (driftloop push, /v1/load_lora_adapter, /v1/completions)")
    rounds_text = ", ".join(f"{f:.1f}/{s:.1f}" for f, s in zip(result["following"],
                                                               result["frozen"], strict=True))
    click.echo(f"/predict with the subscriber following:  {following:10.1f} requests/s")
    click.echo(f"/predict with the subscriber stopped:    {frozen:10.1f} requests/s")
    click.echo(f"ratio following/stopped:                 {following / frozen:10.2f}  "
               f"(medians of {rounds} alternated rounds: {rounds_text}; "
               f"{concurrency} clients, {requests} requests each)")
    swapping = statistics.median(result["swapping"])
    swap_rounds = ", ".join(f"{w:.1f}/{f:.1f}" for w, f in zip(result["swapping"],
                                                               result["following"], strict=True))
    click.echo(f"/predict while a promotion lands every {swap_every * 1000:.0f} ms: "
               f"{swapping:10.1f} requests/s")
    click.echo(f"ratio during swaps/without:              {swapping / following:10.2f}  "
               f"(rounds: {swap_rounds})")
    return {"swaps": swaps, "rounds": rounds, "concurrency": concurrency, "requests": requests,
            "swap_latencies_s": result["latencies"], "push_swap_latencies_s": result["pushed"],
            "swap_phases_s": result["phases"],
            "following_requests_per_s": result["following"],
            "stopped_requests_per_s": result["frozen"],
            "ratio_following_to_stopped": following / frozen,
            "swapping_requests_per_s": result["swapping"], "swap_every_s": swap_every,
            "ratio_swapping_to_following": swapping / following}
