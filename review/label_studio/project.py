"""What a driftloop task looks like in Label Studio: its project's labeling config, and the
Label Studio task each label request becomes.

One project per driftloop task, titled ``<prefix><task>`` so a restarted bridge finds it
again. A classification task asks for one of its labels (``<Choices>``: the task's
configured labels, else per request the labels the model scored, as dynamic choices); a
generation task asks for the right answer (``<TextArea>``), beside the input and the
model's answer.

Each request's model answer is also imported as a Label Studio *prediction*, which does two
things: the reviewer starts from the model's answer (a click to confirm, an edit to
correct), and the project's "Uncertainty sampling" (Label Studio serves the task with the
lowest prediction score first) serves the most urgent request first, since the score is
``1 - priority``. The task data carry the whole label request (``driftloop_request``), so
the bridge never needs anything but Label Studio to turn an annotation into feedback, and
the imported request ids are read back from Label Studio itself.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

import orjson

from ...schemas.codec import decode, to_dict
from ...schemas.enums import FeedbackKind
from ...schemas.events import LabelRequest
from ...schemas.settings import Settings
from ..answers import allowed_labels, answer_kind

__all__ = ["ANSWER_FIELD", "PRIORITY_MODEL_VERSION", "REQUEST_FIELD", "labeling_config",
           "project_fields", "request_of", "task_payload"]

REQUEST_FIELD = "driftloop_request"
"""The task data field holding the whole label request."""

ANSWER_FIELD = "answer"
"""The ``name`` of the control a reviewer answers with (``<Choices>`` or ``<TextArea>``)."""

PRIORITY_MODEL_VERSION = "driftloop-priority"
"""The model version of the imported predictions, and the project's: Label Studio's
uncertainty sampling only orders tasks by predictions of the project's model version."""


def labeling_config(settings: Settings, task: str) -> str:
    """The project's labeling config (Label Studio's XML) for ``task``.

    >>> print(labeling_config(Settings(tasks={"s": {"labels": ["neg", "pos"]}}), "s"))
    <View>
      <Header value="Model answer: $model_answer (confidence $confidence, $reason)"/>
      <Text name="text" value="$text"/>
      <Choices name="answer" toName="text" choice="single" showInline="true" required="true">
        <Choice value="neg"/>
        <Choice value="pos"/>
      </Choices>
    </View>
    >>> 'value="$choices"' in labeling_config(Settings(), "s")  # labels from each request
    True
    >>> "<TextArea" in labeling_config(Settings(tasks={"qa": {"kind": "generation"}}), "qa")
    True
    """
    if answer_kind(settings, task) is FeedbackKind.CORRECTION:
        return "\n".join([
            "<View>",
            '  <Header value="Input"/>',
            '  <Text name="text" value="$text"/>',
            '  <Header value="Model answer ($reason)"/>',
            '  <Text name="model_answer" value="$model_answer"/>',
            '  <Header value="The right answer"/>',
            f'  <TextArea name="{ANSWER_FIELD}" toName="text" editable="true" rows="4" '
            'maxSubmissions="1" required="true"/>',
            "</View>"])
    labels = settings.task(task).labels
    head = [
        "<View>",
        '  <Header value="Model answer: $model_answer (confidence $confidence, $reason)"/>',
        '  <Text name="text" value="$text"/>']
    attrs = f'name="{ANSWER_FIELD}" toName="text" choice="single" showInline="true" ' \
            'required="true"'
    if not labels:
        return "\n".join([*head, f'  <Choices {attrs} value="$choices"/>', "</View>"])
    return "\n".join([*head, f"  <Choices {attrs}>",
                      *(f"    <Choice value={quoteattr(label)}/>" for label in labels),
                      "  </Choices>", "</View>"])


def project_fields(settings: Settings, task: str, title: str) -> dict[str, Any]:
    """The fields of the task's project, as ``POST /api/projects/`` takes them.

    >>> fields = project_fields(Settings(), "s", "driftloop: s")
    >>> fields["sampling"], fields["model_version"], fields["show_skip_button"]
    ('Uncertainty sampling', 'driftloop-priority', True)
    """
    return {"title": title, "label_config": labeling_config(settings, task),
            "description": f"Label requests of driftloop task {task!r}: the answers go back "
                           "to the model as feedback.",
            "sampling": "Uncertainty sampling", "model_version": PRIORITY_MODEL_VERSION,
            "show_skip_button": True, "show_collab_predictions": True}


def task_payload(settings: Settings, request: LabelRequest) -> dict[str, Any]:
    """The Label Studio task (data and the model's answer as prediction) for ``request``.

    >>> from driftloop.schemas import Interaction
    >>> seen = Interaction(id="i-1", ts=1.0, task="s", model_version="v3", input="meh",
    ...                    prediction="pos", scores={"confidence": 0.55})
    >>> request = LabelRequest(id="lr-i-1", ts=2.0, task="s", interaction=seen,
    ...                        reason="margin", priority=0.9)
    >>> payload = task_payload(Settings(tasks={"s": {"labels": ["neg", "pos"]}}), request)
    >>> {k: payload["data"][k] for k in ("text", "model_answer", "request_id", "priority")}
    {'text': 'meh', 'model_answer': 'pos', 'request_id': 'lr-i-1', 'priority': 0.9}
    >>> prediction = payload["predictions"][0]
    >>> prediction["score"], prediction["result"][0]["value"]
    (0.1, {'choices': ['pos']})
    >>> request_of(payload["data"]) == request
    True
    """
    seen = request.interaction
    correction = answer_kind(settings, request.task) is FeedbackKind.CORRECTION
    model_answer = (seen.output if correction else seen.prediction) or seen.output \
        or seen.prediction or ""
    confidence = seen.scores.confidence
    data: dict[str, Any] = {
        "text": seen.input, "model_answer": model_answer,
        "confidence": "unknown" if confidence is None else round(confidence, 4),
        "reason": request.reason.value, "priority": request.priority,
        "request_id": request.id, "interaction_id": seen.id, "domain": request.domain,
        "model_version": seen.model_version, REQUEST_FIELD: to_dict(request)}
    labels = allowed_labels(settings, request)
    if not correction and not settings.task(request.task).labels:
        data["choices"] = [{"value": label} for label in labels]
    payload: dict[str, Any] = {"data": data}
    if correction:
        result = {"type": "textarea", "value": {"text": [model_answer]}} if model_answer \
            else None
    else:
        result = {"type": "choices", "value": {"choices": [model_answer]}} \
            if model_answer in labels else None
    # Without a prefilled answer the prediction still carries the priority for the ordering.
    payload["predictions"] = [{
        "model_version": PRIORITY_MODEL_VERSION, "score": round(1.0 - request.priority, 6),
        "result": [{"from_name": ANSWER_FIELD, "to_name": "text", **result}] if result else []}]
    return payload


def request_of(data: dict[str, Any]) -> LabelRequest:
    """The label request a Label Studio task was imported from (its ``data``)."""
    return decode(orjson.dumps(data[REQUEST_FIELD]), LabelRequest)
