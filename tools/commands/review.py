"""``driftloop review``: people answer the worker's label requests.

``serve`` runs the built-in review page; ``label-studio`` bridges the requests to a Label
Studio server. Both publish the answers as ``Feedback`` (source ``reviewer``).
"""

from __future__ import annotations

import click

from ..options import bootstrap_servers_option

__all__ = ["review"]


@click.group()
def review() -> None:
    """Send label requests to people; their answers come back as feedback."""


# -- driftloop review serve (the built-in page) ---------------------------------------------


@review.command()
@click.option("--host", default=None, help="Interface to listen on (default: review.host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default: review.port).")
@click.option("--task", "tasks", multiple=True,
              help="Offer only this task's requests (repeatable; default: review.tasks, "
                   "else every task).")
@click.option("--no-auth", is_flag=True,
              help="Serve without a token; allowed on 127.0.0.1 only.")
@bootstrap_servers_option()
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, tasks: tuple[str, ...],
          no_auth: bool) -> None:
    """Serve the review page: people answer label requests with the keyboard.

    Sign in with any user name (it names the reviewer) and the token as password
    (DRIFTLOOP_REVIEW_TOKEN, or [review] token); scripts send 'Authorization: Bearer
    <token>'. Answers are published as feedback once their undo window has passed.
    """
    from ..cli import settings_from

    settings = settings_from(ctx)
    try:
        from aiohttp import web

        from ...review.auth import check_exposure, review_token
        from ...review.page import create_app
    except ModuleNotFoundError as exc:
        if exc.name in ("aiohttp", "prometheus_client"):
            raise click.ClickException(
                f"the review page needs the 'review' extra (module {exc.name!r} is missing): "
                "pip install 'driftloop[review]'") from None
        raise
    host = host or settings.review.host
    port = port or settings.review.port
    check_exposure(host, token=None if no_auth else review_token(settings), no_auth=no_auth)
    chosen = tasks or settings.review.tasks
    shown = "[" + host + "]" if ":" in host else host
    click.echo(f"review page on http://{shown}:{port}/ "
               f"({', '.join(chosen) if chosen else 'every task'}; label-requests on "
               f"{settings.kafka.bootstrap_servers})")
    click.echo("sign in with any user name and the review token as password"
               if not no_auth else "no auth (--no-auth): anyone on this machine can answer")
    web.run_app(create_app(settings, tasks=chosen, no_auth=no_auth), host=host, port=port,
                print=None)


# -- driftloop review label-studio (the bridge) ---------------------------------------------


@review.command("label-studio")
@click.option("--url", default=None,
              help="Label Studio's base URL (default: label_studio.url, http://localhost:8080).")
@click.option("--token", envvar="DRIFTLOOP_LABEL_STUDIO_TOKEN", default=None,
              help="A Label Studio access token (personal access token or legacy API "
                   "token; env DRIFTLOOP_LABEL_STUDIO_TOKEN; default: label_studio.token).")
@click.option("--task", "tasks", multiple=True,
              help="Bridge this task's label requests, one project each (repeatable; "
                   "default: label_studio.tasks).")
@click.option("--poll-interval", type=click.FloatRange(0.0, 3600.0, min_open=True),
              default=None,
              help="Seconds between looks for new answers (default: label_studio."
                   "poll_interval_s, 5).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=6069, show_default=True,
              help="Port of its Prometheus /metrics on --metrics-host; 0 turns it off.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Interface of its /metrics.")
@bootstrap_servers_option()
@click.pass_context
def label_studio(ctx: click.Context, url: str | None, token: str | None,
                 tasks: tuple[str, ...], poll_interval: float | None, metrics_port: int,
                 metrics_host: str) -> None:
    """Bridge label requests to a Label Studio server; publish its annotations as feedback.

    Each task gets a project titled 'driftloop: <task>' (found again on restart); each
    label request becomes a task there, the most urgent served first. Annotations come
    back as Feedback (source reviewer): a changed annotation as a revision, a skipped one
    or two annotators who disagree as nothing (until they agree or one is marked ground
    truth). SIGTERM/SIGINT stop it; nothing half done is committed.
    """
    import asyncio
    import signal

    import pydantic

    from ..cli import settings_from

    settings = settings_from(ctx)
    given = {name: value for name, value in (("url", url), ("token", token), ("tasks", tasks),
                                             ("poll_interval_s", poll_interval))
             if value not in (None, ())}
    try:
        section = settings.label_studio.model_validate(
            {**settings.label_studio.model_dump(), **given})
    except pydantic.ValidationError as exc:
        raise click.UsageError("; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False))) from None
    settings = settings.model_copy(update={"label_studio": section})
    if not section.tasks:
        raise click.UsageError("name the tasks to bridge: --task T (repeatable)")
    if section.token is None:
        raise click.UsageError("no Label Studio token: --token or DRIFTLOOP_LABEL_STUDIO_TOKEN "
                               "(Label Studio: Account & Settings, Personal Access Token)")
    try:
        from ...review.label_studio import LabelStudioBridge
        from ...review.label_studio.metrics import BridgeMetrics
    except ModuleNotFoundError as exc:
        if exc.name in ("aiohttp", "prometheus_client"):
            raise click.ClickException(
                f"the Label Studio bridge needs the 'label-studio' extra (module {exc.name!r} "
                "is missing): pip install 'driftloop[label-studio]'") from None
        raise

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with LabelStudioBridge(settings) as bridge:
            server = None
            if metrics_port:
                try:
                    server = BridgeMetrics(bridge.counts).serve(metrics_host, metrics_port)
                except OSError as exc:  # the bridge works on without its metrics
                    click.echo(f"metrics not served on {metrics_host}:{metrics_port}: {exc}",
                               err=True)
            click.echo(f"bridging {', '.join(section.tasks)} to Label Studio at "
                       f"{section.url} (projects {', '.join(map(str, bridge.projects.values()))})")
            await bridge.run(stop)
            counts = ", ".join(f"{k} {v}" for k, v in sorted(bridge.counts.items())) or "nothing"
            click.echo(f"stopped: {counts}")
            if server is not None:
                server.shutdown()

    asyncio.run(main())
