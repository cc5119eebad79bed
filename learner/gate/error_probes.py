"""Challenge probes from real errors: the interactions people corrected.

The worker joins feedback to its interaction and ships, with each training example, what the
deployed model answered (``model_answer``) and which feedback gave the target
(``feedback_kind``). An example whose answer differs from its target (a ``correction``, or a
``label`` other than the prediction) is a real error: after the version trained from the
request is published, the learner appends it to the task's challenge suite, so every later
candidate is gated on it too.

Probes are deduplicated by normalised input (case, spacing and surrounding punctuation do not
make a new probe, and the first expected answer stays), capped per suite (the oldest probes
stay: a gate's standard does not move under an operator's feet), and carry their source.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...schemas.enums import FeedbackKind
from ...schemas.events import TrainingExample, TrainingRequest
from ...schemas.settings import Settings
from ..models.prompts import normalize_answer
from .challenges import ChallengeCase, ChallengeSuite, ChallengeSuiteError

__all__ = ["ERROR_TAG", "SuiteGrowth", "grow_after_publish", "grow_from_request", "grow_suite",
           "normalize_input", "probes_from_request", "was_wrong"]

log = logging.getLogger(__name__)

# The tag of probes from real errors; the gate reports their score as ``challenge.<tag>``.
ERROR_TAG = "from-correction"


def normalize_input(text: str) -> str:
    """The form two probe inputs are compared in: one probe per normalised input.

    >>> normalize_input("  Not BAD at\\tall!! ") == normalize_input("not bad at all")
    True
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return normalize_answer(" ".join(folded.split()))


def was_wrong(example: TrainingExample) -> bool:
    """Whether the deployed model got the example's interaction wrong.

    Known answer: it differs from the target (after :func:`normalize_answer`). Unknown
    answer: only a correction says the model was wrong.

    >>> was_wrong(TrainingExample(input="meh", target="negative", model_answer="Positive."))
    True
    >>> was_wrong(TrainingExample(input="meh", target="negative", model_answer="negative"))
    False
    >>> was_wrong(TrainingExample(input="meh", target="a better answer",
    ...                           feedback_kind="correction"))
    True
    """
    if example.model_answer is not None:
        return normalize_answer(example.model_answer) != normalize_answer(example.target)
    return example.feedback_kind is FeedbackKind.CORRECTION


def probes_from_request(request: TrainingRequest) -> list[ChallengeCase]:
    """The request's examples the deployed model got wrong, as challenge cases.

    >>> request = TrainingRequest(id="tr-1", ts=1.0, task="sentiment", trigger="manual",
    ...     examples=[{"input": "not good", "target": "negative", "model_answer": "positive",
    ...                "feedback_kind": "label", "interaction_id": "i-7"},
    ...               {"input": "great", "target": "positive", "model_answer": "positive"}])
    >>> [(p.input, p.expected, p.tags, p.source["interaction_id"])
    ...  for p in probes_from_request(request)]
    [('not good', 'negative', ('from-correction',), 'i-7')]
    """
    return [ChallengeCase(e.input, e.target, (ERROR_TAG,), source=_source(e, request))
            for e in request.examples if was_wrong(e)]


def _source(example: TrainingExample, request: TrainingRequest) -> dict[str, str | None]:
    return {"interaction_id": example.interaction_id, "training_request_id": request.id,
            "model_answer": example.model_answer, "domain": example.domain,
            "feedback_kind": example.feedback_kind.value if example.feedback_kind else None}


@dataclass(frozen=True, slots=True)
class SuiteGrowth:
    """What one growth step did: probes added, and probes turned away and why."""

    added: tuple[ChallengeCase, ...] = ()
    duplicates: int = 0
    over_cap: int = 0


def grow_suite(path: Path | str, probes: Iterable[ChallengeCase], *, cap: int) -> SuiteGrowth:
    """Append new probes to the suite at ``path``: deduplicated, at most ``cap`` in the suite.

    ``cap`` bounds the cases tagged :data:`ERROR_TAG` in the whole suite (hand-written cases do
    not count); once reached, nothing more is added. A probe whose normalised input is already
    in the suite (hand-written or not, or earlier in ``probes``) is a duplicate.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "suite.jsonl"
    >>> probes = [ChallengeCase(text, "negative", (ERROR_TAG,))
    ...           for text in ("Not good.", "not good", "meh", "awful")]
    >>> growth = grow_suite(path, probes, cap=2)
    >>> [p.input for p in growth.added], growth.duplicates, growth.over_cap
    (['Not good.', 'meh'], 1, 1)
    >>> grow_suite(path, probes, cap=2).added  # a replay adds nothing twice
    ()
    >>> grow_suite(path, probes, cap=-1)
    Traceback (most recent call last):
    ...
    ValueError: cap must be >= 0, got -1
    """
    if cap < 0:
        raise ValueError(f"cap must be >= 0, got {cap}")
    path = Path(path)
    suite = ChallengeSuite.load(path) if path.is_file() else ChallengeSuite()
    seen = {normalize_input(case.input) for case in suite}
    room = cap - sum(1 for case in suite if ERROR_TAG in case.tags)
    chosen: list[ChallengeCase] = []
    duplicates = over_cap = 0
    for probe in probes:
        key = normalize_input(probe.input)
        if key in seen:
            duplicates += 1
        elif len(chosen) >= room:
            over_cap += 1
        else:
            seen.add(key)
            chosen.append(probe)
    if chosen:
        ChallengeSuite.append(path, chosen)
    return SuiteGrowth(tuple(chosen), duplicates, over_cap)


def grow_from_request(settings: Settings, request: TrainingRequest) -> SuiteGrowth | None:
    """Grow the task's suite from the request's real errors (None: the task has no suite).

    Called after the request's version is published, and again when a re-read request is
    skipped as already published (a crash between publishing and growing loses nothing;
    duplicates are not added twice). A suite that cannot be read or written is logged as an
    error and left as it is: the version is out, and the learner must go on.
    """
    task = settings.task(request.task)
    if task.challenge_suite is None:
        return None
    probes = probes_from_request(request)
    if not probes:
        return SuiteGrowth()
    try:
        growth = grow_suite(task.challenge_suite, probes, cap=task.challenge_error_cap)
    except (ChallengeSuiteError, OSError):
        log.exception("challenge suite %s did not grow by the %d real error(s) of %s",
                      task.challenge_suite, len(probes), request.id)
        return None
    log.info("challenge suite %s: %d probe(s) from real errors of %s added, %d duplicate(s), "
             "%d over the cap of %d", task.challenge_suite, len(growth.added), request.id,
             growth.duplicates, growth.over_cap, task.challenge_error_cap)
    return growth


def grow_after_publish(settings: Settings, request: TrainingRequest,
                       additions: Iterable[ChallengeCase] = ()) -> SuiteGrowth | None:
    """Everything a published update adds to its task's suite: ``additions`` (the held-out
    examples a promoted version's parent got wrong, ``challenge_growth``), then the
    request's real errors (:func:`grow_from_request`, any status).

    After publishing, not before: a crash in between must not change what a replay is gated
    on. A replay adds nothing twice (cases are keyed by content).

    Examples
    --------
    >>> import tempfile
    >>> from driftloop.schemas.settings import Settings
    >>> suite = Path(tempfile.mkdtemp()) / "suite.jsonl"
    >>> settings = Settings(tasks={"t": {"challenge_suite": suite}})
    >>> request = TrainingRequest(id="tr-1", ts=1.0, task="t", trigger="manual", examples=[
    ...     {"input": "not good", "target": "negative", "model_answer": "positive"}])
    >>> growth = grow_after_publish(settings, request,
    ...                             [ChallengeCase("dull", "negative", ("held-out",))])
    >>> [case.input for case in ChallengeSuite.load(suite)], len(growth.added)
    (['dull', 'not good'], 1)
    """
    path = settings.task(request.task).challenge_suite
    cases = list(additions)
    if cases and path is not None:
        added = ChallengeSuite.append(path, cases)
        log.info("challenge suite %s grew by %d held-out case(s) the parent got wrong", path,
                 added)
    return grow_from_request(settings, request)
