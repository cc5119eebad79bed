"""The one Faust app of a worker, built from :class:`~driftloop.schemas.settings.Settings`.

The app id is ``<topic prefix><worker.app_id>``: Faust names its consumer group and its
changelog topics after it, so two deployments sharing a broker under different prefixes
never share state. The broker refuses to auto-create topics; driftloop's own topics come
from ``driftloop topics create`` and Faust declares its changelogs (``topic_allow_declare``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import faust
import mode
from faust.serializers import codecs

from ..schemas.settings import Settings
from .errors import StreamsError
from .state_codec import StateCodec

__all__ = ["STATE_CODEC", "build_app"]

STATE_CODEC = "driftloop-state"
# Training requests and dead letters can be several MiB (examples inline, raw payloads).
MAX_REQUEST_BYTES = 20 * 1024 * 1024

codecs.register(STATE_CODEC, StateCodec())


def _credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    kafka = settings.kafka
    if kafka.security_protocol.startswith("SASL"):
        assert kafka.sasl_password is not None
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=kafka.sasl_password.get_secret_value(),
            mechanism=kafka.sasl_mechanism, ssl_context=kafka.ssl_context())
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(kafka.ssl_context())
    return None


# How long a commit may wait for table writes to leave the producer before the worker
# gives up (crashes, so nothing is committed ahead of the state).
DRAIN_TIMEOUT_S = 120.0


def _drain_fully_before_commit(app: faust.App) -> None:
    """Make the producer flush Faust runs before committing offsets wait for every write.

    faust-streaming's ``ProducerBuffer.flush`` returns after 0.1 s without a message
    leaving the buffer, with writes still queued; the commit that follows can then store
    offsets past table writes that a ``kill -9`` loses (measured: the last message's state
    missing after restart, its offset committed). This flush waits until the buffer is
    empty, or crashes the worker after :data:`DRAIN_TIMEOUT_S`.
    """
    buffer = app.producer.buffer

    async def flush() -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while buffer.size:
            if time.monotonic() > deadline:
                raise StreamsError(f"{buffer.size} table writes not sent after "
                                   f"{DRAIN_TIMEOUT_S:.0f} s: refusing to commit")
            buffer.message_sent.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(buffer.message_sent.wait(), timeout=0.5)
        # The last message taken off the queue is handed to the client on the next turn.
        await asyncio.sleep(0)

    buffer.flush = flush  # type: ignore[method-assign]


def build_app(settings: Settings) -> faust.App:
    """A configured (not started) Faust app; agents are added by
    :func:`driftloop.streams.agents.wire`."""
    worker = settings.worker
    worker.data_dir.mkdir(parents=True, exist_ok=True)
    servers = [f"kafka://{s.strip()}" for s in settings.kafka.bootstrap_servers.split(",")]
    app = faust.App(
        f"{settings.kafka.topic_prefix}{worker.app_id}",
        broker=servers,
        broker_credentials=_credentials(settings),
        broker_client_id=settings.kafka.client_id,
        broker_commit_interval=worker.commit_interval_s,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_s / 3),
        store=worker.store,
        datadir=str(worker.data_dir),
        web_enabled=True,
        web_host=worker.web_host,
        web_port=worker.web_port,
        web_bind=worker.web_host,
        topic_allow_declare=True,
        # The leader-election topic is one more topic to create and nothing here needs it.
        topic_disable_leader=True,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=MAX_REQUEST_BYTES,
        consumer_max_fetch_size=MAX_REQUEST_BYTES,
        stream_wait_empty=True,
        autodiscover=False,
        # A crashed agent stops the worker (non-zero exit) instead of leaving a process
        # that looks alive and consumes nothing: the supervisor restarts it, state resumes.
        agent_supervisor=mode.CrashingSupervisor,
        logging_config=None,
    )
    _drain_fully_before_commit(app)
    return app
