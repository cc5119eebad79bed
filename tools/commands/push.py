"""``driftloop push``: hot-swap promoted adapters into another server (vLLM, or a driftloop
replica) through vLLM's runtime adapter API."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from urllib.parse import urlsplit

import click

from ..cli import settings_from
from ..options import bootstrap_servers_option
from .serve import _with_serving

__all__ = ["push"]


@click.command()
@click.option("--target", required=True,
              help="Base URL of a server with vLLM's runtime adapter API (vLLM started with "
                   "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, or driftloop serve).")
@click.option("--staging", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder the target reads adapters from: the same machine or a shared "
                   "volume (default: <serving.cache_dir>/push).")
@click.option("--task", "tasks", multiple=True, help="Push only this task (repeatable).")
@click.option("--replica-id", default=None,
              help="Name in acknowledgements (default: push-<target host>-<port>).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=6068, show_default=True,
              help="Port of its Prometheus /metrics (swaps, swap time, refused versions); 0 "
                   "turns it off.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Interface of its /metrics (0.0.0.0 in a container).")
@bootstrap_servers_option()
@click.pass_context
def push(ctx: click.Context, target: str, staging: Path | None, tasks: tuple[str, ...],
         replica_id: str | None, metrics_port: int, metrics_host: str) -> None:
    """Follow model-versions and load each promoted adapter into --target, verified.

    Each adapter's sha256 (and trusted base model, and signature when the deployment signs)
    is checked before the target sees it; it is loaded under its version id, which clients
    name as the OpenAI `model`; versions no longer kept (serving.keep_versions, a rollback)
    are unloaded. A ServingAck per version goes to serving-acks under --replica-id.
    SIGTERM/SIGINT stop it; the target keeps what it has loaded.
    """
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{target!r} is not an http(s) URL", param_hint="--target")
    name = replica_id or f"push-{parts.hostname}-{parts.port or 80}"
    settings = _with_serving(settings_from(ctx), replica_id=name, tasks=tasks)
    folder = staging or settings.serving.cache_dir / "push"
    folder.mkdir(parents=True, exist_ok=True)

    from ...client.kafka import new_producer
    from ...learner.metrics import serve_registry
    from ...learner.serving.acks import AckPublisher
    from ...learner.serving.metrics import ServingMetrics
    from ...learner.serving.push import PushHost
    from ...learner.serving.subscriber import AdapterSubscriber

    metrics = ServingMetrics()
    server = serve_registry(metrics.registry, metrics_host, metrics_port,
                            "push") if metrics_port else None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with new_producer(settings) as producer:
            subscriber = AdapterSubscriber(
                settings, PushHost(target, folder), replica=name,
                acks=AckPublisher(producer=producer, settings=settings, replica=name),
                on_serving=[metrics.on_serving], on_refused=[metrics.on_refused])
            async with subscriber:
                click.echo(f"pushing promoted adapters to {target} as {name}")
                await stop.wait()

    try:
        asyncio.run(main())
    finally:
        if server is not None:
            server.shutdown()
