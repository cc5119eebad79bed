"""What the annotations of one Label Studio task say together: one answer, or not yet.

- a skipped annotation (``was_cancelled``) says nothing;
- an annotation marked ground truth decides (the latest updated one, if several are);
- otherwise the annotations must agree: two annotators who disagree leave the request
  unanswered (a *conflict*) until they agree or one is marked ground truth;
- an annotation whose answer is not one the task accepts is left out (the bridge counts
  and logs it; see :func:`annotation_value` and :class:`~driftloop.review.InvalidAnswer`).

Examples
--------
>>> def ann(id, value, **kw):
...     return {"id": id, "updated_at": f"2026-01-01T00:00:0{id}Z", "completed_by": id,
...             "result": [{"from_name": "answer", "type": "choices",
...                         "value": {"choices": [value]}}], **kw}
>>> verdict = decide([ann(1, "pos"), ann(2, "pos")])
>>> verdict.value, [a["id"] for a in verdict.annotations]
('pos', [1, 2])
>>> decide([ann(1, "pos"), ann(2, "neg")]).conflict
('neg', 'pos')
>>> decide([ann(1, "pos"), ann(2, "neg", ground_truth=True)]).value
'neg'
>>> decide([ann(1, "", was_cancelled=True)]).value is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .project import ANSWER_FIELD

__all__ = ["Verdict", "annotation_value", "decide"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer the annotations of a task agree on (``value``, given by ``annotations``),
    or why there is none: ``conflict`` lists the values that disagree; neither means no
    usable annotation yet."""

    value: str | None = None
    annotations: tuple[dict[str, Any], ...] = ()
    conflict: tuple[str, ...] = ()

    @property
    def deciding(self) -> dict[str, Any]:
        """The annotation the answer is credited to: the ground truth, else the latest."""
        return self.annotations[-1]


def annotation_value(annotation: dict[str, Any]) -> str | None:
    """The answer in an annotation's result: the chosen label, or the text written (several
    text boxes joined by newlines); None when the result holds no answer.

    >>> annotation_value({"result": [{"from_name": "answer", "type": "textarea",
    ...                               "value": {"text": ["Paris"]}}]})
    'Paris'
    >>> annotation_value({"result": []}) is None
    True
    """
    for item in annotation.get("result") or ():
        if item.get("from_name") != ANSWER_FIELD:
            continue
        value = item.get("value") or {}
        if value.get("choices"):
            return str(value["choices"][0])
        if value.get("text"):
            texts = value["text"] if isinstance(value["text"], list) else [value["text"]]
            return "\n".join(str(t) for t in texts)
    return None


def decide(annotations: Iterable[dict[str, Any]],
           valid: Iterable[int] | None = None) -> Verdict:
    """The :class:`Verdict` of a task's annotations; with ``valid``, only the annotations
    whose ids are in it count (the others gave an answer the task does not accept)."""
    keep = None if valid is None else set(valid)
    usable = sorted((a for a in annotations
                     if not a.get("was_cancelled") and annotation_value(a) is not None
                     and (keep is None or a["id"] in keep)),
                    key=lambda a: (str(a.get("updated_at", "")), a["id"]))
    if not usable:
        return Verdict()
    truths = [a for a in usable if a.get("ground_truth")]
    if truths:
        return Verdict(annotation_value(truths[-1]), (truths[-1],))
    values = {annotation_value(a) for a in usable}
    if len(values) > 1:
        return Verdict(conflict=tuple(sorted(v for v in values if v is not None)))
    return Verdict(values.pop(), tuple(usable))
