"""vLLM's runtime adapter API on ``driftloop serve``: ``POST /v1/load_lora_adapter`` and
``POST /v1/unload_lora_adapter``, with vLLM's request bodies, answers and error shapes.

What vLLM serves with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``, a driftloop replica serves
too, so one pusher drives either. A loaded adapter answers under its ``lora_name`` as a
``model`` of the OpenAI endpoints (:mod:`.openai_api`); it does not replace the version a
task is routed to (the subscriber decides that). driftloop needs two things vLLM does not:
the task the adapter belongs to (``task`` in the body, else the replica's one served task),
and a base model the deployment trusts (read from the folder's ``driftloop.json``, checked
by :class:`~driftloop.learner.trust.Trust`). The served version cannot be unloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ..errors import LearnerError
from ..models.adapters import read_metadata
from ..trust import Trust
from .openai_api import ApiError

if TYPE_CHECKING:
    from .http import ServingService

__all__ = ["LoraEndpoints"]


def _error(status: int, message: str, kind: str) -> web.Response:
    """vLLM's error body: OpenAI's shape with the HTTP status as its code."""
    return ApiError(status, message, kind=kind, code=status).response()


class LoraEndpoints:
    """The runtime adapter routes of one serving replica."""

    def __init__(self, service: ServingService) -> None:
        self.service = service
        self.trust = Trust(service.settings)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/load_lora_adapter", self.load)
        app.router.add_post("/v1/unload_lora_adapter", self.unload)

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"the body is not JSON: {exc}", "BadRequestError")
        if not isinstance(body, dict) or not isinstance(body.get("lora_name"), str) \
                or not body["lora_name"]:
            return _error(400, "'lora_name' must be a non-empty string", "BadRequestError")
        return body

    def _task(self, body: dict[str, Any]) -> str | None:
        task = body.get("task")
        if isinstance(task, str) and task:
            return task
        served = self.service.settings.serving.tasks or tuple(self.service.subscriber.served())
        return served[0] if len(served) == 1 else None

    async def load(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name, path = body["lora_name"], body.get("lora_path")
        task = self._task(body)
        if task is None:
            return _error(400, "name the adapter's 'task': this replica serves more than one "
                               "(or none yet)", "BadRequestError")
        if name in self.service.host.versions(task):
            return _error(400, f"The lora adapter '{name}' has already been loaded.",
                          "InvalidUserInput")
        if not isinstance(path, str) or not Path(path).is_dir():
            return _error(400, f"'lora_path' {path!r} is not a folder on this server",
                          "BadRequestError")
        try:
            meta = read_metadata(Path(path))
            self.trust.check_base_model(meta.base_model)
            await self.service.host.aload(task, name, Path(path), meta.base_model)
        except (LearnerError, OSError, ValueError) as exc:
            return _error(400, f"The lora adapter '{name}' could not be loaded: {exc}",
                          "BadRequestError")
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def unload(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name = body["lora_name"]
        host = self.service.host
        task = next((t for t in self._tasks() if name in host.versions(t)), None)
        if task is None:
            return _error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        if name in (self.service.subscriber.serving(task),
                    self.service.subscriber.candidate(task)):
            return _error(400, f"The lora adapter '{name}' answers task {task!r} now; roll "
                               "it back before unloading it", "BadRequestError")
        keep = set(host.versions(task)) - {name}
        await host.aevict(task, keep)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")

    def _tasks(self) -> set[str]:
        service = self.service
        return (set(service.settings.serving.tasks) | set(service.subscriber.served())
                | set(service.host.tasks()))
