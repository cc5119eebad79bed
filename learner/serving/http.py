"""The reference inference service (aiohttp): the serving end of the loop.

``POST /predict`` answers with the version the subscriber serves (or the canary candidate
for its share) and publishes an Interaction carrying the embedding and scores;
``POST /feedback`` publishes Feedback; ``GET /healthz`` and ``GET /metrics`` are for the
orchestrator and Prometheus. Versions change under it without a restart.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pydantic
from aiohttp import web
from aiokafka import AIOKafkaProducer

from ...client.kafka import new_producer
from ...schemas.codec import encode, max_bytes_for
from ...schemas.errors import ValidationError
from ...schemas.events import Event, Feedback, Interaction
from ...schemas.settings import Settings
from ...schemas.topics import EVENT_TOPIC_MAX_BYTES, Topic
from ..errors import VersionNotServedError
from ..models.resident import ResidentModels
from .acks import AckPublisher
from .batcher import EventBatcher
from .metrics import CONTENT_TYPE_LATEST, ServingMetrics
from .model_host import ModelHost
from .subscriber import AdapterSubscriber

__all__ = ["ServingService", "create_app", "default_replica_id"]

log = logging.getLogger(__name__)

SERVICE_KEY = web.AppKey("driftloop_serving", "ServingService")


def default_replica_id() -> str:
    """``<hostname>-<pid>``: unique per process on a host, readable in acks."""
    return f"{socket.gethostname()}-{os.getpid()}"


class _BadRequest(Exception):
    status = 400


class _TooLarge(_BadRequest):
    """An event the request would publish is larger than the topic's consumers accept."""

    status = 413


class ServingService:
    """One replica: model host, adapter subscriber, event publishers and metrics.

    Parameters
    ----------
    settings
        Kafka, artifacts and ``serving`` settings.
    models
        Resident base models (shared between replicas in one process, e.g. tests).
    subscribe
        Follow ``model-versions``; False serves only versions loaded by hand (a baseline).

    Examples
    --------
    >>> service = ServingService(Settings(serving={"replica_id": "pod-1"}))
    >>> service.replica, service.subscriber.serving("sentiment")
    ('pod-1', None)
    >>> service.host.close()
    """

    def __init__(self, settings: Settings, *, models: ResidentModels | None = None,
                 subscribe: bool = True) -> None:
        self.settings = settings
        self.replica = settings.serving.replica_id or default_replica_id()
        self.subscribe = subscribe
        self.metrics = ServingMetrics()
        self.host = ModelHost(models or ResidentModels(capacity=settings.learner.resident_models),
                              max_length=settings.learner.max_length,
                              max_batch=settings.serving.max_batch,
                              max_new_tokens=settings.learner.max_new_tokens)
        self.producer: AIOKafkaProducer | None = None
        self.subscriber = AdapterSubscriber(settings, self.host, replica=self.replica,
                                            on_serving=[self.metrics.on_serving],
                                            on_refused=[self.metrics.on_refused])
        self.interactions = self._batcher(Topic.INTERACTIONS)
        self.feedback = self._batcher(Topic.FEEDBACK)

    def _batcher(self, topic: Topic) -> EventBatcher:
        name = self.settings.kafka.topic(topic)
        return EventBatcher(producer=None, topic=name,
                            max_events=self.settings.serving.batch_max_events,
                            linger=self.settings.serving.batch_linger_ms / 1000,
                            on_sent=lambda events, messages: self.metrics.sent(name, events,
                                                                               messages))

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Kafka and start following versions; on failure release what started."""
        self.producer = new_producer(self.settings, max_request_size=EVENT_TOPIC_MAX_BYTES,
                                     linger_ms=0)
        try:
            await self.producer.start()
            for batcher in (self.interactions, self.feedback):
                batcher.producer = self.producer
                await batcher.start()
            self.subscriber.acks = AckPublisher(producer=self.producer, settings=self.settings,
                                                replica=self.replica)
            if self.subscribe:
                await self.subscriber.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop following versions, send queued events, close the producer (idempotent)."""
        await self.subscriber.stop()
        for batcher in (self.interactions, self.feedback):
            await batcher.stop()
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.stop()
        self.host.close()

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def app(self) -> web.Application:
        """The aiohttp application; starting it starts the service, cleanup stops it."""
        # Larger bodies get 413 from aiohttp before any of them is read into memory.
        app = web.Application(client_max_size=self.settings.serving.max_request_bytes)
        app[SERVICE_KEY] = self
        app.cleanup_ctx.append(self._lifespan)
        app.router.add_post("/predict", self._endpoint("predict", self.predict))
        app.router.add_post("/feedback", self._endpoint("feedback", self.post_feedback))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.render_metrics)
        return app

    # -- endpoints ---------------------------------------------------------------------

    def _endpoint(self, name: str, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                body = await _json_object(request)
                status, payload = await handler(body)
            except _BadRequest as exc:
                status, payload = exc.status, {"error": str(exc)}
            except VersionNotServedError as exc:
                status, payload = 503, {"error": str(exc)}
            self.metrics.requests.labels(endpoint=name, code=str(status)).inc()
            self.metrics.latency.labels(endpoint=name).observe(time.perf_counter() - started)
            return web.json_response(payload, status=status)
        return wrapped

    async def predict(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer ``{"task", "input"}`` (or ``"inputs": [...]``) and publish interactions."""
        task = body.get("task")
        if not isinstance(task, str) or not task:
            raise _BadRequest("'task' must be a non-empty string")
        single = "input" in body
        texts = [body["input"]] if single else body.get("inputs")
        if not isinstance(texts, list) or not texts or not all(
                isinstance(t, str) and t for t in texts):
            raise _BadRequest("give 'input' (a non-empty string) or 'inputs' (a non-empty "
                              "list of non-empty strings)")
        if len(texts) > self.settings.serving.max_inputs:
            raise _BadRequest(f"{len(texts)} inputs; at most {self.settings.serving.max_inputs} "
                              "per request")
        ids = body.get("ids") or ([body["id"]] if "id" in body else None)
        if ids is None:
            ids = [uuid.uuid4().hex for _ in texts]
        if not isinstance(ids, list) or len(ids) != len(texts) or not all(
                isinstance(i, str) and i for i in ids):
            raise _BadRequest("'id'/'ids' must be non-empty strings, one per input")
        domain = body.get("domain", "default")
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict):
            raise _BadRequest("'metadata' must be an object")
        if self.settings.serving.tasks and task not in self.settings.serving.tasks:
            raise VersionNotServedError(f"task {task!r} is not served by this replica")
        version = self.subscriber.route(task, ids[0])
        if version is None:
            raise VersionNotServedError(f"task {task!r} has no promoted version yet")
        try:
            predictions = await self.host.apredict(task, version, texts)
        except VersionNotServedError:
            # Unloaded while this request waited (a swap evicted it): answer with what the
            # task is routed to now rather than fail the request.
            rerouted = self.subscriber.route(task, ids[0])
            if rerouted is None or rerouted == version:
                raise
            version = rerouted
            predictions = await self.host.apredict(task, version, texts)
        canary = version != self.subscriber.serving(task)
        self.metrics.predictions.labels(task=task, version=version,
                                        canary=str(canary).lower()).inc(len(texts))
        now = time.time()
        answers = []
        for event_id, text, prediction in zip(ids, texts, predictions, strict=True):
            try:
                # A generated answer is its text; it is a class only when the template's
                # choices name one in it. No probabilities or embedding.
                output = prediction.output if prediction.output is not None else prediction.label
                event = Interaction(
                    id=event_id, ts=now, task=task, domain=domain, model_version=version,
                    input=text, output=output,
                    prediction=prediction.label if prediction.classified else None,
                    scores={"confidence": prediction.confidence,
                            "probabilities": prediction.probabilities or None},
                    embedding=prediction.embedding or None,
                    metadata={**metadata, "replica": self.replica, "canary": canary})
            except pydantic.ValidationError as exc:
                raise _BadRequest(_first_error(exc)) from None
            _check_size(event)
            self.interactions.submit(event)
            answers.append({"id": event_id, "output": output,
                            "prediction": prediction.label if prediction.classified else None,
                            "confidence": prediction.confidence,
                            "probabilities": prediction.probabilities,
                            "model_version": version})
        if single:
            return 200, {**answers[0], "task": task, "canary": canary}
        return 200, {"task": task, "model_version": version, "canary": canary,
                     "predictions": answers}

    async def post_feedback(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Publish one Feedback (``id`` and ``ts`` default to a fresh id and now)."""
        fields = {"id": uuid.uuid4().hex, "ts": time.time(), **body}
        try:
            event = Feedback(**fields)
        except pydantic.ValidationError as exc:
            raise _BadRequest(_first_error(exc)) from None
        _check_size(event)
        self.feedback.submit(event)
        return 202, {"id": event.id}

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the subscriber and publishers run; the served versions in the body."""
        problems = []
        if self.subscribe and not self.subscriber.running:
            problems.append("subscriber stopped")
        problems += [f"{b.topic} publisher stopped" for b in (self.interactions, self.feedback)
                     if not b.running]
        body = {"status": "ok" if not problems else "failing", "problems": problems,
                "replica": self.replica, "caught_up": self.subscriber.caught_up,
                "serving": self.subscriber.served(),
                "candidates": self.subscriber.candidates(),
                "refused": sorted(self.subscriber.refused)}
        return web.json_response(body, status=200 if not problems else 503)

    async def render_metrics(self, request: web.Request) -> web.Response:
        self.metrics.served.clear()
        for task, version in self.subscriber.served().items():
            self.metrics.served.labels(task=task, version=version).set(1)
        response = web.Response(body=self.metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response


async def _json_object(request: web.Request) -> dict[str, Any]:
    # orjson, not the json module: it refuses NaN/Infinity (which no event may carry) and
    # deep nesting (json.loads would raise RecursionError: a 500) with one JSONDecodeError.
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(f"the body must be a JSON object: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


def _check_size(event: Event) -> None:
    """Refuse an event the worker would dead-letter as too large (or cannot encode)."""
    limit = max_bytes_for(type(event))
    try:
        size = len(encode(event))
    except ValidationError as exc:
        raise _BadRequest(str(exc)) from None
    if size > limit:
        raise _TooLarge(f"the {type(event).__name__} would be {size} bytes; the limit of "
                        f"one event is {limit}")


def _first_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in err["loc"]) or "body"
    return f"{where}: {err['msg']}"


def create_app(settings: Settings, *, models: ResidentModels | None = None,
               subscribe: bool = True) -> web.Application:
    """The aiohttp app of one replica (``driftloop serve`` runs it)."""
    return ServingService(settings, models=models, subscribe=subscribe).app()
