"""``driftloop push``: hot-swap promoted adapters into another server (vLLM, or a driftloop
replica) through vLLM's runtime adapter API."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from urllib.parse import urlsplit

import click

from ..cli import settings_from
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
@click.pass_context
def push(ctx: click.Context, target: str, staging: Path | None, tasks: tuple[str, ...],
         replica_id: str | None) -> None:
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
    from ...learner.serving.acks import AckPublisher
    from ...learner.serving.push import PushHost
    from ...learner.serving.subscriber import AdapterSubscriber

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with new_producer(settings) as producer:
            subscriber = AdapterSubscriber(
                settings, PushHost(target, folder), replica=name,
                acks=AckPublisher(producer=producer, settings=settings, replica=name))
            async with subscriber:
                click.echo(f"pushing promoted adapters to {target} as {name}")
                await stop.wait()

    asyncio.run(main())
