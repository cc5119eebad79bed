"""The OpenAI-compatible face of ``driftloop serve``: ``/v1/models``, ``/v1/completions`` and
``/v1/chat/completions``, so a team's own OpenAI client talks to the loop's versions.

``model`` names a task (answered by the version the task is routed to, canaries included,
or zero-shot for a generation task with none yet) or one loaded version id. Every answer is
published as an ``Interaction`` exactly as ``/predict`` publishes it, so the loop learns from
this traffic too; the response's ``driftloop`` field carries the interaction ids a client
sends feedback for. Errors have OpenAI's shape (``{"error": {"message", "type", "param",
"code"}}``). Streaming sends the whole answer as one chunk, then ``[DONE]``: generation here
is not incremental.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ..errors import VersionNotServedError
from .model_host import Prediction
from .request_body import BadRequest, PredictRequest

if TYPE_CHECKING:
    from .http import ServingService

__all__ = ["ApiError", "OpenAIEndpoints", "chat_input"]


class ApiError(Exception):
    """An error answered in OpenAI's shape (``{"error": {"message", "type", "param",
    "code"}}``), which vLLM's endpoints use too."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | int | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.param, self.code = status, kind, param, code

    def response(self) -> web.Response:
        return web.json_response({"error": {"message": str(self), "type": self.kind,
                                            "param": self.param, "code": self.code}},
                                 status=self.status)


def chat_input(messages: Any) -> str:
    """The text a chat request asks about: its last user message (the task's prompt
    template frames it; system messages are the template's business).

    >>> chat_input([{"role": "system", "content": "be nice"},
    ...             {"role": "user", "content": [{"type": "text", "text": "a fine film"}]}])
    'a fine film'
    """
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", param="messages")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content
                                  if isinstance(part, dict) and part.get("type") == "text")
            if isinstance(content, str) and content:
                return content
            break
    raise ApiError(400, "no user message with text content", param="messages")


class OpenAIEndpoints:
    """The ``/v1`` routes of one serving replica."""

    def __init__(self, service: ServingService) -> None:
        self.service = service

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/completions", self._endpoint(self.completions))
        app.router.add_post("/v1/chat/completions", self._endpoint(self.chat))

    # -- what a client may name ---------------------------------------------------------------

    def _tasks(self) -> set[str]:
        service = self.service
        tasks = set(service.subscriber.served())
        tasks |= {t for t in service.settings.tasks if service._zero_shot_ready(t)}
        served_only = service.settings.serving.tasks
        return {t for t in tasks if not served_only or t in served_only}

    def _versions(self) -> dict[str, str]:
        """Loaded version id -> its task (loaded by the subscriber or through the adapter
        API, on a replica that follows model-versions or not)."""
        host = self.service.host
        served_only = self.service.settings.serving.tasks
        return {version: task for task in host.tasks() for version in host.versions(task)
                if not served_only or task in served_only}

    async def models(self, request: web.Request) -> web.Response:
        """Every task (its routed version answers) and every loaded version."""
        now = int(time.time())
        data = [{"id": task, "object": "model", "created": now, "owned_by": "driftloop"}
                for task in sorted(self._tasks())]
        data += [{"id": version, "object": "model", "created": now, "owned_by": "driftloop",
                  "parent": task} for version, task in sorted(self._versions().items())]
        return web.json_response({"object": "list", "data": data})

    # -- answering ---------------------------------------------------------------------------

    def _endpoint(self, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            status = 200
            try:
                try:
                    body = orjson.loads(await request.read())
                except orjson.JSONDecodeError as exc:
                    raise ApiError(400, f"the body is not JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "the body must be a JSON object")
                return await handler(request, body)
            except ApiError as exc:
                status = exc.status
                return exc.response()
            except BadRequest as exc:
                status = exc.status
                return ApiError(exc.status, str(exc)).response()
            except VersionNotServedError as exc:
                status = 503
                return ApiError(503, str(exc), kind="service_unavailable").response()
            finally:
                metrics = self.service.metrics
                metrics.requests.labels(endpoint="openai", code=str(status)).inc()
                metrics.latency.labels(endpoint="openai").observe(time.perf_counter() - started)
        return wrapped

    async def _answer(self, body: dict[str, Any],
                      texts: list[str]) -> tuple[str, list[tuple[str, Prediction]]]:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' must name a task or a version", param="model")
        service = self.service
        if model in self._tasks():
            request = PredictRequest.parse({"task": model, "inputs": texts},
                                           max_inputs=service.settings.serving.max_inputs)
            version, predictions = await service._answer(request)
        elif (task := self._versions().get(model)) is not None:
            request = PredictRequest.parse({"task": task, "inputs": texts},
                                           max_inputs=service.settings.serving.max_inputs)
            version, predictions = model, await service.host.apredict(task, model, texts)
        else:
            raise ApiError(404, f"The model `{model}` does not exist (GET /v1/models lists "
                                 "the tasks and versions served here).", param="model",
                            code="model_not_found")
        return version, service.publish_answers(request, version, predictions)

    async def completions(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(
                isinstance(p, str) and p for p in prompts):
            raise ApiError(400, "'prompt' must be a non-empty string or list of them",
                            param="prompt")
        version, answers = await self._answer(body, prompts)
        choices = [{"index": i, "text": _text(p), "logprobs": None, "finish_reason": "stop"}
                   for i, (_, p) in enumerate(answers)]
        reply = _reply("cmpl", "text_completion", version, answers, choices)
        if body.get("stream"):
            return await _stream(request, [reply])
        return web.json_response(reply)

    async def chat(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        version, answers = await self._answer(body, [chat_input(body.get("messages"))])
        text = _text(answers[0][1])
        if body.get("stream"):
            chunks = [_reply("chatcmpl", "chat.completion.chunk", version, answers, [
                {"index": 0, "delta": {"role": "assistant", "content": text},
                 "finish_reason": None}]),
                _reply("chatcmpl", "chat.completion.chunk", version, answers, [
                    {"index": 0, "delta": {}, "finish_reason": "stop"}])]
            return await _stream(request, chunks)
        choices = [{"index": 0, "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop"}]
        return web.json_response(_reply("chatcmpl", "chat.completion", version, answers,
                                        choices))


def _text(prediction: Prediction) -> str:
    return prediction.output if prediction.output is not None else prediction.label


def _reply(prefix: str, kind: str, version: str, answers: list[tuple[str, Prediction]],
           choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
            "model": version, "choices": choices,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "driftloop": {"model_version": version,
                          "interaction_ids": [event_id for event_id, _ in answers]}}


async def _stream(request: web.Request, chunks: list[dict[str, Any]]) -> web.StreamResponse:
    """Server-sent events, as OpenAI streams: each chunk, then ``[DONE]``."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    for chunk in chunks:
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
