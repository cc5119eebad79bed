"""The reference inference service (aiohttp): the serving end of the loop.

``POST /predict`` answers with the version the subscriber serves (or the canary candidate
for its share) and publishes an Interaction carrying the embedding and scores;
``POST /feedback`` publishes Feedback; ``GET /healthz`` and ``GET /metrics`` are for the
orchestrator and Prometheus; ``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions``
speak OpenAI's API (:mod:`.openai_api`), and ``/v1/load_lora_adapter`` and
``/v1/unload_lora_adapter`` vLLM's runtime adapter API (:mod:`.lora_api`). Versions change
under it without a restart.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from ...client.kafka import new_producer
from ...schemas.enums import TaskKind
from ...schemas.settings import Settings
from ...schemas.topics import EVENT_TOPIC_MAX_BYTES, Topic
from ..errors import VersionNotServedError
from ..models.resident import ResidentModels, default_base_model
from .acks import AckPublisher
from .batcher import EventBatcher
from .lora_api import LoraEndpoints
from .metrics import CONTENT_TYPE_LATEST, ServingMetrics
from .model_host import ModelHost, Prediction, zero_shot_version
from .openai_api import OpenAIEndpoints
from .request_body import BadRequest, PredictRequest, feedback_event, json_object
from .subscriber import AdapterSubscriber

__all__ = ["ServingService", "create_app", "default_replica_id"]

log = logging.getLogger(__name__)

SERVICE_KEY = web.AppKey("driftloop_serving", "ServingService")


def default_replica_id() -> str:
    """``<hostname>-<pid>``: unique per process on a host, readable in acks."""
    return f"{socket.gethostname()}-{os.getpid()}"


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
        models = models or ResidentModels.for_learner(settings.learner)
        self.host = ModelHost(models, max_length=settings.learner.max_length,
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
        OpenAIEndpoints(self).add_routes(app)  # /v1/models, /v1/(chat/)completions
        LoraEndpoints(self).add_routes(app)  # vLLM's /v1/load_lora_adapter, unload
        return app

    # -- endpoints ---------------------------------------------------------------------

    def _endpoint(self, name: str, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                body = await json_object(request)
                status, payload = await handler(body)
            except BadRequest as exc:
                status, payload = exc.status, {"error": str(exc)}
            except VersionNotServedError as exc:
                status, payload = 503, {"error": str(exc)}
            self.metrics.requests.labels(endpoint=name, code=str(status)).inc()
            self.metrics.latency.labels(endpoint=name).observe(time.perf_counter() - started)
            return web.json_response(payload, status=status)
        return wrapped

    async def predict(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer ``{"task", "input"}`` (or ``"inputs": [...]``) and publish interactions."""
        request = PredictRequest.parse(body, max_inputs=self.settings.serving.max_inputs)
        version, predictions = await self._answer(request)
        answered = self.publish_answers(request, version, predictions)
        canary = version != self.subscriber.serving(request.task, request.domain)
        return 200, request.response(answered, version=version, canary=canary)

    def publish_answers(self, request: PredictRequest, version: str,
                        predictions: list[Prediction]) -> list[tuple[str, Prediction]]:
        """Count the answers and publish each as an Interaction; ``(id, answer)`` pairs."""
        canary = version != self.subscriber.serving(request.task, request.domain)
        self.metrics.predictions.labels(task=request.task, version=version,
                                        canary=str(canary).lower()).inc(len(request.texts))
        now = time.time()
        answered = []
        for event_id, text, prediction in zip(request.ids, request.texts, predictions,
                                              strict=True):
            self.interactions.submit(request.interaction(
                event_id, text, prediction, version=version, replica=self.replica,
                canary=canary, now=now))
            answered.append((event_id, prediction))
        return answered

    async def _answer(self, request: PredictRequest) -> tuple[str, list[Prediction]]:
        """The version the request is routed to, and its predictions."""
        task = request.task
        if self.settings.serving.tasks and task not in self.settings.serving.tasks:
            raise VersionNotServedError(f"task {task!r} is not served by this replica")
        version = self.subscriber.route(task, request.ids[0], request.domain)
        if version is None and self._zero_shot_ready(task):
            spec = self.settings.tasks[task]
            base = spec.base_model or default_base_model(TaskKind.GENERATION)
            return zero_shot_version(task), await self.host.azero_shot(
                task, base, spec.prompt_template_id, request.texts)
        if version is None:
            raise VersionNotServedError(
                f"task {task!r} has no promoted version yet: train a first one from labelled "
                f"examples with `driftloop learner bootstrap --task {task} --from FILE` "
                f"(JSONL or CSV of input and target), or let the loop's first update publish "
                f"it" + ("; a task configured here with kind = \"generation\" answers with its "
                        "base model until then" if self.settings.serving.zero_shot else ""))
        # Routed to the serving version: the pass runs with the one serving when it runs,
        # so a request that waited through a swap is answered by the new version.
        follow = ((lambda: self.subscriber.serving(task, request.domain))
                  if version == self.subscriber.serving(task, request.domain) else None)
        try:
            predictions = await self.host.apredict(task, version, request.texts, follow=follow)
            return (predictions[0].version_id if predictions else version), predictions
        except VersionNotServedError:
            # Unloaded while this request waited (a swap evicted it): answer with what the
            # task is routed to now rather than fail the request.
            rerouted = self.subscriber.route(task, request.ids[0], request.domain)
            if rerouted is None or rerouted == version:
                raise
            return rerouted, await self.host.apredict(task, rerouted, request.texts)

    def _zero_shot_ready(self, task: str) -> bool:
        """A prompted generation task configured here answers with its base model until its
        first version is served (``serving.zero_shot``); a classifier has no zero-shot head."""
        spec = self.settings.tasks.get(task)
        return (self.settings.serving.zero_shot and spec is not None
                and TaskKind(spec.kind) is TaskKind.GENERATION)

    async def post_feedback(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Publish one Feedback (``id`` and ``ts`` default to a fresh id and now)."""
        event = feedback_event(body)
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
                "domains": {task: domains for task in self.subscriber.served()
                            if (domains := self.subscriber.domains(task))},
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


def create_app(settings: Settings, *, models: ResidentModels | None = None,
               subscribe: bool = True) -> web.Application:
    """The aiohttp app of one replica (``driftloop serve`` runs it)."""
    return ServingService(settings, models=models, subscribe=subscribe).app()
