"""What the reference service accepts: request bodies checked into the events it publishes.

A ``/predict`` body becomes a :class:`PredictRequest` (task, texts, one id per text, domain,
metadata) and each answered text an :class:`~driftloop.schemas.Interaction`; a
``/feedback`` body becomes a :class:`~driftloop.schemas.Feedback`. Anything a client got
wrong is a :class:`BadRequest` (HTTP 400) naming the field, and an event larger than the
topic's consumers accept is :class:`TooLarge` (413), refused before it is published rather
than dead-lettered by the worker.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pydantic

from ...schemas.codec import encode, max_bytes_for
from ...schemas.errors import ValidationError
from ...schemas.events import Event, Feedback, Interaction
from .model_host import Prediction

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["BadRequest", "PredictRequest", "TooLarge", "check_size", "feedback_event",
           "json_object"]


class BadRequest(Exception):
    """A request the client must fix (HTTP 400)."""

    status = 400


class TooLarge(BadRequest):
    """An event the request would publish is larger than the topic's consumers accept."""

    status = 413


@dataclass(frozen=True, slots=True)
class PredictRequest:
    """A checked ``/predict`` body: ``{"task", "input"}`` or ``{"task", "inputs": [...]}``.

    Examples
    --------
    >>> request = PredictRequest.parse({"task": "sentiment", "input": "great", "id": "r1"},
    ...                                max_inputs=4)
    >>> request.texts, request.ids, request.single, request.domain, request.probe
    (['great'], ['r1'], True, 'default', False)
    >>> PredictRequest.parse({"task": "sentiment", "inputs": []}, max_inputs=4)
    Traceback (most recent call last):
    ...
    driftloop.learner.serving.request_body.BadRequest: give 'input' (a non-empty string) or \
'inputs' (a non-empty list of non-empty strings)
    """

    task: str
    texts: list[str]
    ids: list[str]
    domain: str
    """The producer's name for the request's domain: it picks the domain's own version
    under the task's ``adapter_per_domain``."""
    metadata: dict[str, Any]
    single: bool
    probe: bool = False
    """Monitoring traffic: answered, and published marked so the loop never learns from it."""

    @classmethod
    def parse(cls, body: dict[str, Any], *, max_inputs: int) -> PredictRequest:
        """Check ``body``; ids default to fresh ones. Raises :class:`BadRequest`."""
        task = body.get("task")
        if not isinstance(task, str) or not task:
            raise BadRequest("'task' must be a non-empty string")
        single = "input" in body
        texts = [body["input"]] if single else body.get("inputs")
        if not isinstance(texts, list) or not texts or not all(
                isinstance(t, str) and t for t in texts):
            raise BadRequest("give 'input' (a non-empty string) or 'inputs' (a non-empty "
                             "list of non-empty strings)")
        if len(texts) > max_inputs:
            raise BadRequest(f"{len(texts)} inputs; at most {max_inputs} per request")
        ids = body.get("ids") or ([body["id"]] if "id" in body else None)
        if ids is None:
            ids = [uuid.uuid4().hex for _ in texts]
        if not isinstance(ids, list) or len(ids) != len(texts) or not all(
                isinstance(i, str) and i for i in ids):
            raise BadRequest("'id'/'ids' must be non-empty strings, one per input")
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict):
            raise BadRequest("'metadata' must be an object")
        probe = body.get("probe", False)
        if not isinstance(probe, bool):
            raise BadRequest("'probe' must be true or false")
        domain = body.get("domain", "default")
        if not isinstance(domain, str):  # it chooses the version: checked before routing
            raise BadRequest("'domain' must be a string (letters, digits, '.', '_', '-')")
        return cls(task, texts, ids, domain, metadata, single, probe)

    def interaction(self, event_id: str, text: str, prediction: Prediction, *, version: str,
                    replica: str, canary: bool, now: float) -> Interaction:
        """The interaction one answered text publishes (checked for size)."""
        try:
            # A generated answer is its text; it is a class only when the template's
            # choices name one in it. No probabilities or embedding.
            event = Interaction(
                id=event_id, ts=now, task=self.task, domain=self.domain, model_version=version,
                input=text, output=_output(prediction),
                prediction=prediction.label if prediction.classified else None,
                scores={"confidence": prediction.confidence,
                        "probabilities": prediction.probabilities or None},
                embedding=prediction.embedding or None,
                input_embedding=prediction.input_embedding or None,
                metadata={**self.metadata, "replica": replica, "canary": canary},
                probe=self.probe)
        except pydantic.ValidationError as exc:
            raise BadRequest(_first_error(exc)) from None
        check_size(event)
        return event

    def response(self, answers: list[tuple[str, Prediction]], *, version: str,
                 canary: bool) -> dict[str, Any]:
        """The response body: one answer, or the list of them, with the version used."""
        bodies = [{"id": event_id, "output": _output(prediction),
                   "prediction": prediction.label if prediction.classified else None,
                   "confidence": prediction.confidence,
                   "probabilities": prediction.probabilities, "model_version": version}
                  for event_id, prediction in answers]
        if self.single:
            return {**bodies[0], "task": self.task, "canary": canary}
        return {"task": self.task, "model_version": version, "canary": canary,
                "predictions": bodies}


def _output(prediction: Prediction) -> str:
    return prediction.output if prediction.output is not None else prediction.label


def feedback_event(body: dict[str, Any]) -> Feedback:
    """The Feedback a ``/feedback`` body publishes (``id`` and ``ts`` default to a fresh
    id and now), checked for size.

    >>> feedback_event({"interaction_id": "i1", "task": "t", "kind": "label",
    ...                 "value": "positive"}).kind.value
    'label'
    >>> feedback_event({"task": "t"})
    Traceback (most recent call last):
    ...
    driftloop.learner.serving.request_body.BadRequest: interaction_id: Field required
    """
    fields = {"id": uuid.uuid4().hex, "ts": time.time(), **body}
    try:
        event = Feedback(**fields)
    except pydantic.ValidationError as exc:
        raise BadRequest(_first_error(exc)) from None
    check_size(event)
    return event


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's body, which must be one JSON object."""
    # orjson, not the json module: it refuses NaN/Infinity (which no event may carry) and
    # deep nesting (json.loads would raise RecursionError: a 500) with one JSONDecodeError.
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body must be a JSON object: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def check_size(event: Event) -> None:
    """Refuse an event the worker would dead-letter as too large (or cannot encode)."""
    limit = max_bytes_for(type(event))
    try:
        size = len(encode(event))
    except ValidationError as exc:
        raise BadRequest(str(exc)) from None
    if size > limit:
        raise TooLarge(f"the {type(event).__name__} would be {size} bytes; the limit of "
                       f"one event is {limit}")


def _first_error(exc: pydantic.ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in err["loc"]) or "body"
    return f"{where}: {err['msg']}"
