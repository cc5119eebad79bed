"""``driftloop bench quality --section live``: the live loop, default settings, many seeds.

Each run plays one stream (:mod:`.live_streams`) through :class:`~.live_loop.LiveLoop` with
driftloop's default settings (only the task's labels and the artifact store are given),
under the conditions of a live deployment (noisy, late user labels; a reviewer answering
label requests; domains the producers do not name), then measures it
(:func:`~.live_metrics.live_metrics`) against the bootstrap version served throughout
(static) and against full retraining on every label the run received. Robust accuracy: the
static and the final version on the shifted domains' held-out texts under the gate's
label-keeping perturbations (:mod:`driftloop.learner.gate.perturb`), and on paraphrases of
``LiveSizes.paraphrased`` of them written once per run by the default generation base model
(the gate's ``paraphrase`` kind), beside the same versions on those texts as written. Under
the task's ``adapter_per_domain`` the final version of each shifted domain is the head that
serves it (the paraphrase figure takes the latest promoted head for all).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ....learner.gate.challenges import ChallengeSuite
from ....schemas.enums import TriggerKind
from ....schemas.events import TrainingExample, TrainingRequest
from ....schemas.settings import Settings
from ...demo.traffic import StreamItem
from .live_loop import TASK, LiveConditions, LiveLoop
from .live_metrics import SHIFT_LABELS, labels_by, live_metrics, server, serving_at
from .live_streams import STREAMS

__all__ = ["LiveSizes", "run_live", "summarise"]


@dataclass(frozen=True, slots=True)
class LiveSizes:
    """How long a stream is played (events per domain) and scored (held-out per domain).

    >>> LiveSizes.named(quick=True).per_domain, LiveSizes().heldout
    (160, 200)
    """

    per_domain: int = 400
    heldout: int = 200
    bootstrap: int = 128
    paraphrased: int = 32
    """Held-out texts of the shifted domains rewritten for the paraphrase robustness figure
    (0: none)."""

    @classmethod
    def named(cls, *, quick: bool) -> LiveSizes:
        return (cls(per_domain=160, heldout=80, bootstrap=64, paraphrased=8) if quick
                else cls())


def live_settings(labels: Sequence[str], store: Path, *, torch_threads: int | None,
                  overrides: dict[str, Any] | None = None,
                  challenge_suite: Path | None = None) -> Settings:
    """driftloop's defaults, with the bench task's labels and a store of the run's own
    (``challenge_suite``: an empty suite there, grown from the run's real errors)."""
    task: dict[str, Any] = {"labels": list(labels)}
    if challenge_suite is not None:
        challenge_suite.write_text("", encoding="utf-8")
        task["challenge_suite"] = str(challenge_suite)
    fields: dict[str, Any] = {"artifacts": {"store_url": str(store)},
                              "tasks": {TASK: task},
                              "learner": {"torch_threads": torch_threads}}
    for section, values in (overrides or {}).items():
        if section == "tasks":  # a task's settings beside its labels, not instead of them
            values = {task: {**fields["tasks"].get(task, {}), **given}
                      for task, given in values.items()}
        fields[section] = {**fields.get(section, {}), **values}
    return Settings(**fields)


def run_live(stream_name: str, *, seed: int, sizes: LiveSizes,
             conditions: LiveConditions | None = None, torch_threads: int | None = None,
             overrides: dict[str, Any] | None = None, retrain: bool = True,
             reachable: bool = True, challenge_suite: bool = False) -> dict[str, Any]:
    """One stream, one seed: the run's figures (see :func:`live_metrics`; with ``reachable``,
    :func:`_reachable`'s too; with ``challenge_suite``, the task keeps a suite grown from
    the run's real errors and the figures say how large it grew)."""
    started = time.perf_counter()
    stream = STREAMS[stream_name](per_domain=sizes.per_domain, heldout=sizes.heldout,
                                  bootstrap=sizes.bootstrap, seed=seed)
    with tempfile.TemporaryDirectory(prefix="driftloop-live-") as tmp:
        suite = Path(tmp) / "challenge-suite.jsonl" if challenge_suite else None
        settings = live_settings(stream.labels, Path(tmp), torch_threads=torch_threads,
                                 overrides=overrides, challenge_suite=suite)
        loop = LiveLoop(stream.data, stream.labels, settings, conditions or LiveConditions(),
                        seed=seed)
        record = loop.run(_request("bootstrap", stream.labels,
                                   [(i.text, i.label, i.domain) for i in stream.data.bootstrap]))
        static = record.versions[0].event.version_id
        static_host = _static_host(loop, static)
        static_served = _answers(static_host, "static", static, loop.data.stream)
        figures = live_metrics(record, stream.data.boundaries(), record.label_marks,
                               static_served, alpha=settings.learner.gate_alpha,
                               evidence=settings.learner.gate_evidence)
        final = [v for v in record.versions if v.promoted][-1].event.version_id
        shifted = [d for d, _, _ in stream.data.boundaries()[1:]]
        held = [item for d in shifted for item in loop.data.heldout[d]]
        finals: dict[str, list[Any]] = {}  # each shifted domain's final server, its texts
        for d in shifted:
            version = server(record.versions, record.domain_names.get(d, d)).event.version_id
            finals.setdefault(version, []).extend(loop.data.heldout[d])
        robust = [(_robust(loop.host, TASK, v, items), len(items)) for v, items in finals.items()]
        figures |= {"robust_static_shifted": _robust(static_host, "static", static, held),
                    "robust_final_shifted": round(sum(a * n for a, n in robust)
                                                  / sum(n for _, n in robust), 4)}
        if sizes.paraphrased:
            figures |= _paraphrased(loop, held[::max(1, len(held) // sizes.paraphrased)]
                                    [:sizes.paraphrased], seed,
                                    {"static": (static_host, "static", static),
                                     "final": (loop.host, TASK, final)})
        if suite is not None:
            figures["challenge_suite_size"] = len(ChallengeSuite.load(suite))
        if retrain:
            figures |= _full_retraining(loop, stream.labels, record)
        if reachable:
            figures |= _reachable(loop, stream.labels, record)
    return {"stream": stream_name, "seed": seed, "seconds": round(time.perf_counter() - started),
            **figures}


def _request(request_id: str, labels: Sequence[str],
             examples: Sequence[tuple[str, str, str]]) -> TrainingRequest:
    return TrainingRequest(
        id=request_id, ts=0.0, task=TASK, trigger=TriggerKind.MANUAL, labels=list(labels),
        examples=[TrainingExample(input=t, target=y, domain=d) for t, y, d in examples])


def _static_host(loop: LiveLoop, static: str) -> Any:
    """A model host serving the bootstrap version alone (task ``static``)."""
    from ....learner.serving.model_host import ModelHost

    event = loop.versions.get(static)
    host = ModelHost(loop.updater.models)
    folder = loop.updater.store.fetch(event.adapter_uri, event.sha256, loop.workdir / "static")
    host.load("static", static, folder, event.base_model)
    return host


def _answers(host: Any, task: str, version: str, items: Sequence[Any]) -> list[bool]:
    """Whether ``version`` answers each item (``.text``, ``.label``) right."""
    answers = []
    for start in range(0, len(items), 64):
        chunk = items[start:start + 64]
        answers += [a.label == item.label
                    for a, item in zip(host.predict(task, version, [i.text for i in chunk]),
                                       chunk, strict=True)]
    return answers


def _robust(host: Any, task: str, version: str, items: Sequence[Any]) -> float:
    """Accuracy on ``items`` under every label-keeping perturbation (each text once per
    kind that applies to it)."""
    from ....learner.gate.perturb import PERTURBATIONS, robustness_suite

    kinds = [k for k in PERTURBATIONS if k != "negation"]  # a label change needs a task map
    suite = robustness_suite([TrainingExample(input=i.text, target=i.label) for i in items],
                             kinds, limit=len(items))
    perturbed = [StreamItem(f"{kind}-{i}", "perturbed", e.input, e.target)
                 for i, (kind, e) in enumerate(suite)]
    hits = _answers(host, task, version, perturbed)
    return round(sum(hits) / len(hits), 4) if hits else 0.0


def _paraphrased(loop: LiveLoop, items: Sequence[Any], seed: int,
                 versions: dict[str, tuple[Any, str, str]]) -> dict[str, Any]:
    """Each version's accuracy on ``items`` as written and on their paraphrases by the
    default generation base model (the items it left unusable or copied are left out of
    both), and how many were scored."""
    from ....learner.models.prompts import variant_key
    from ....learner.models.resident import default_base_model
    from ....learner.training.synthesis import TextWriter, paraphraser
    from ....schemas.enums import TaskKind

    base = loop.updater.models.get(default_base_model(TaskKind.GENERATION), TaskKind.GENERATION)
    with base.lent() as weights:
        rewrite = paraphraser(TextWriter(weights, base.tokenizer, loop.updater.device.device),
                              seed=seed)
        written = rewrite([item.text for item in items])
    pairs = [(item, StreamItem(f"paraphrase-{i}", "perturbed", text, item.label))
             for i, (item, text) in enumerate(zip(items, written, strict=True))
             if text is not None and variant_key(text) != variant_key(item.text)]
    figures: dict[str, Any] = {"paraphrased": len(pairs)}
    for name, (host, task, version) in versions.items():
        for key, chosen in ((f"as_written_{name}_shifted", [a for a, _ in pairs]),
                            (f"robust_paraphrase_{name}_shifted", [b for _, b in pairs])):
            hits = _answers(host, task, version, chosen)
            figures[key] = round(sum(hits) / len(hits), 4) if hits else 0.0
    return figures


def _full_retraining(loop: LiveLoop, labels: Sequence[str], record: Any) -> dict[str, Any]:
    """A fresh adapter on the bootstrap and every label the run received (one pass per
    example, the learner's other settings), scored on the shifted domains' held-out texts;
    and what full retraining at each of the run's request points would have trained on."""
    retrainer = _updater_beside(loop, max_steps=100_000, holdout_fraction=0.05,
                                gate_pool_size=0, one_lineage=True)
    examples = [(i.text, i.label, i.domain) for i in loop.data.bootstrap] + record.labelled
    from ....learner.registry.version_log import VersionLog

    result = retrainer.update(_request("full-retraining", labels, examples), VersionLog())
    event = result.event
    folder = loop.updater.store.fetch(event.adapter_uri, event.sha256, loop.workdir / "full")
    loop.host.load(TASK, event.version_id, folder, event.base_model)
    scores = loop.score(event.version_id)
    shifted = [d for d, _, _ in loop.data.boundaries()[1:]]
    cumulative = sum(len(loop.data.bootstrap) + labels_by(record.label_marks, at)
                     for at, *_ in record.requests[1:])
    # Full retraining trains on all but its own held-out and early-stop slices: the same
    # share of what it would have been sent at each request point.
    share = event.metadata["examples"]["train"] / len(examples)
    return {"retrain_shifted": round(sum(scores[d] for d in shifted) / len(shifted), 4),
            "retrain_examples_at_requests": cumulative,
            "retrain_trained_on_at_requests": round(cumulative * share)}


def _reachable(loop: LiveLoop, labels: Sequence[str], record: Any, *,
               budget: int = SHIFT_LABELS) -> dict[str, Any]:
    """Whether a better version was within reach after each shift: the version served at
    the shift, updated once on the first ``budget`` labels the run received after it (its
    own noisy labels, all at once, the learner's settings, whatever the gate decides), and
    both scored on the new domain's held-out texts (``gate``: what the gate made of that
    update, on its own held-out share). A shift this update does not improve is
    one this learner's update could not answer with those labels (a stronger update might);
    one it improves and the loop did not answer is the loop's to answer.
    """
    from ....learner.registry.version_log import VersionLog

    updater = _updater_beside(loop, gate_pool_size=0, one_lineage=True)  # one update of it
    outcomes = []
    for i, (domain, start, _) in enumerate(loop.data.boundaries()[1:]):
        served = serving_at(record.versions, start, loop.conditions.domain_of(domain))
        first = labels_by(record.label_marks, start)
        examples = [(text, label, loop.conditions.domain_of(true_domain))
                    for text, label, true_domain in record.labelled[first:first + budget]]
        before = served.heldout[domain]  # scored on every domain when it was promoted
        after, gate = before, None
        if examples:
            event = updater.update(_request(f"reachable-{i}", labels, examples),
                                   VersionLog().apply(served.event)).event
            hits = _answers_of(loop, event, loop.data.heldout[domain], f"reachable-{i}")
            after, gate = sum(hits) / len(hits), event.status.value
        outcomes.append({"to": domain, "labels": len(examples), "served": round(before, 4),
                         "updated": round(after, 4), "gate": gate})
    return {"reachable": outcomes}


def _updater_beside(loop: LiveLoop, *, one_lineage: bool = False, **learner: Any) -> Any:
    """An updater of the run's settings with ``learner`` changed, on the loop's resident
    models, store and device (its own parent caches and gate pools); ``one_lineage``: one
    adapter for every domain, whatever the task's ``adapter_per_domain`` (full retraining)."""
    from ....learner.training.update import IncrementalUpdater

    update: dict[str, Any] = {"learner": loop.settings.learner.model_copy(update=learner)}
    if one_lineage:
        task = loop.settings.task(TASK).model_copy(update={"adapter_per_domain": False})
        update["tasks"] = {**loop.settings.tasks, TASK: task}
    settings = loop.settings.model_copy(update=update)
    return IncrementalUpdater(settings, models=loop.updater.models, store=loop.updater.store,
                              device=loop.updater.device)


def _answers_of(loop: LiveLoop, event: Any, items: Sequence[Any], folder: str) -> list[bool]:
    """:func:`_answers` of a stored version: loaded beside the loop's head, then evicted."""
    path = loop.updater.store.fetch(event.adapter_uri, event.sha256, loop.workdir / folder)
    loop.host.load(TASK, event.version_id, path, event.base_model)
    try:
        return _answers(loop.host, TASK, event.version_id, items)
    finally:
        loop.host.evict(TASK, loop.served_versions())


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread (min, max) of each figure over seeds, per stream; shift counts."""
    out: dict[str, Any] = {}
    for stream in sorted({r["stream"] for r in runs}):
        mine = [r for r in runs if r["stream"] == stream]
        shifts = [s for r in mine for s in r["shifts"]]
        answered = [s for s in shifts if s["labels_until_better"] is not None]
        served = [s for s in answered if s["labels_until_better"] <= SHIFT_LABELS]
        figures: dict[str, Any] = {"seeds": len(mine), "shifts": len(shifts),
                                   "shifts_better_within_240_labels": len(served),
                                   "shifts_better_within_the_domain": len(answered)}
        reach = [(s, r) for run in mine if "reachable" in run
                 for s, r in zip(run["shifts"], run["reachable"], strict=True)]
        if reach:
            reachable = [(s, r) for s, r in reach if r["updated"] > r["served"]]
            figures |= {"shifts_reachable_within_240_labels": len(reachable),
                        "reachable_shifts_answered": sum(
                            s["labels_until_better"] is not None
                            and s["labels_until_better"] <= SHIFT_LABELS
                            for s, _ in reachable)}
        verdicts = Counter(c["verdict"] for s in shifts for c in s.get("candidates", ()))
        figures["candidates_within_240_labels"] = dict(sorted(verdicts.items()))
        for key in ("static_shifted", "final_shifted", "retrain_shifted", "forgetting_first",
                    "robust_static_shifted", "robust_final_shifted", "paraphrased",
                    "as_written_static_shifted", "robust_paraphrase_static_shifted",
                    "as_written_final_shifted", "robust_paraphrase_final_shifted",
                    "live_shifted", "static_live_shifted", "promotions", "false_promotions",
                    "requests", "alerts", "alerts_far_from_shifts", "examples_trained",
                    "retrain_examples_at_requests", "examples_trained_on",
                    "retrain_trained_on_at_requests", "update_seconds", "arm_retrieval",
                    "arm_retrieval_promoted", "arm_lora", "arm_lora_promoted",
                    "worst_slice_change", "challenge_suite_size"):
            values = [r[key] for r in mine if key in r]
            if values:
                figures[key] = {"mean": round(sum(values) / len(values), 4),
                                "min": min(values), "max": max(values)}
        out[stream] = figures
    return out

