"""``driftloop bench quality --only prompt-arm``: prompt first, fine-tune second, measured.

A generation task (SmolLM2-135M-Instruct with LoRA, each stream's labels as one-word
answers under a template that names them) gets a first version from ``known`` labels of
the stream's first domain. Then the traffic shifts: ``updates`` requests of ``per_update``
labels each of the second domain go through the learner's real update and gate, twice from
the same first version:

* ``lora``: the defaults (a trained candidate only);
* ``prompt``: ``learner.prompt_arm`` on (a prompt candidate beside it, :mod:`~driftloop.
  learner.training.prompt_arm`).

Per update the part records which arm the update put before the gate and whether it was
promoted, the seconds of the prompt search and of training, and the exact-match accuracy of
the version served afterwards on the new domain's held-out texts (rendered as serving
renders it, worked examples and all).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ....learner.models.prompts import PromptTemplate, register
from ....learner.registry.version_log import VersionLog
from ....schemas.events import ModelVersion, TrainingExample, TrainingRequest
from ....schemas.settings import Settings
from .meta_start import META_STREAMS

__all__ = ["ARMS", "TEMPLATES", "prompt_arms", "summarise_prompt_arms"]

ARMS = ("lora", "prompt")
TASK = "bench-prompt"
TEMPLATES = {
    "vader": "sentiment@1",
    "questions": register(PromptTemplate(
        "question-topic", 1,
        "What does this question ask for? Answer with one word: description, entity, "
        "human, location or number.", "Question: {input}",
        choices=("description", "entity", "human", "location", "number"))).ref,
}


def _settings(store: Path, template: str, *, arm: str,
              torch_threads: int | None) -> Settings:
    # A deployment per arm: the arms share a store (and the first version), not gate pools.
    return Settings(artifacts={"store_url": str(store)}, deployment=f"bench-{arm}",
                    tasks={TASK: {"kind": "generation", "prompt_template_id": template}},
                    learner={"torch_threads": torch_threads, "prompt_arm": arm == "prompt"})


def _request(request_id: str, examples: Sequence[TrainingExample],
             parent: str | None) -> TrainingRequest:
    return TrainingRequest(id=request_id, ts=time.time(), task=TASK, task_kind="generation",
                           trigger="manual", parent_version=parent, examples=list(examples))


def _served_accuracy(updater: Any, version: ModelVersion,
                     heldout: Sequence[TrainingExample]) -> float:
    """Exact match of a version on held-out texts, under its prompt policy if it has one."""
    from ....learner.models.adapters import LoraSpec
    from ....learner.models.prompt_policy import PromptPolicy
    from ....learner.models.task_model import task_model_for
    from ....learner.training.prompt_arm import prompted
    from ....schemas.enums import TaskKind

    cfg = updater.settings.learner
    with tempfile.TemporaryDirectory() as tmp:
        folder = updater.store.fetch(version.adapter_uri, version.sha256, Path(tmp))
        base = updater.models.get(version.base_model, TaskKind.GENERATION)
        task = task_model_for(TaskKind.GENERATION, base.tokenizer, updater.device,
                              template_ref=version.prompt_template_id,
                              max_length=cfg.max_length, max_new_tokens=cfg.max_new_tokens)
        with base.lent() as weights:  # clean again on exit
            model = task.build(weights, LoraSpec(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout),
                               folder)
            view = prompted(task, PromptPolicy.load(folder), model)
            hits = view.score_answers(model, [e.input for e in heldout],
                                      [e.target for e in heldout])
    return sum(hits) / len(hits)


def prompt_arms(stream_name: str, *, seed: int, known: int = 32, per_update: int = 24,
                updates: int = 2, heldout: int = 60,
                torch_threads: int | None = None) -> dict[str, Any]:
    """One stream, one seed: each arm's updates after the shift (see the module)."""
    from ....learner.models.resident import ResidentModels
    from ....learner.training.update import IncrementalUpdater

    stream = META_STREAMS[stream_name](seed, pool=max(known, per_update * updates),
                                       heldout=heldout)
    first, shifted = list(stream.pools)[:2]
    template = TEMPLATES[stream_name]
    models = ResidentModels(capacity=1)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="driftloop-prompt-arms-") as tmp:
        store = Path(tmp) / "store"
        learners = {arm: IncrementalUpdater(_settings(store, template, arm=arm,
                                                      torch_threads=torch_threads),
                                            models=models) for arm in ARMS}
        # The first version under a deployment of its own: neither arm's gate pool holds
        # its held-out texts, so both judge their updates on the same evidence.
        first_learner = IncrementalUpdater(_settings(store, template, arm="first",
                                                     torch_threads=torch_threads),
                                           models=models)
        start = first_learner.update(_request("first", stream.pools[first][:known], None),
                                     VersionLog()).event  # no parent: no prompt arm yet
        before = _served_accuracy(first_learner, start, stream.heldout[shifted])
        for arm, updater in learners.items():
            log = VersionLog().apply(start)
            served = start
            steps: list[dict[str, Any]] = [{"labels": 0, "served": round(before, 4)}]
            for i in range(updates):
                labels = stream.pools[shifted][i * per_update:(i + 1) * per_update]
                result = updater.update(_request(f"{arm}-{i}", labels, served.version_id), log)
                for event in result.events:
                    log.apply(event)
                if result.decision.promote:
                    served = result.event
                steps.append({
                    "labels": (i + 1) * per_update,
                    "arm": result.event.metadata.get("arm", "lora"),
                    "promoted": result.decision.promote,
                    "prompt_seconds": round(result.timings.get("prompt_arm_seconds", 0.0), 2),
                    "train_seconds": round(result.timings.get("train_seconds", 0.0), 2),
                    "update_seconds": round(result.timings.get("update_seconds", 0.0), 2),
                    "served": round(_served_accuracy(updater, served, stream.heldout[shifted]),
                                    4)})
            runs[arm] = steps
    return {"stream": stream_name, "seed": seed, "known": known, "per_update": per_update,
            "from": first, "to": shifted, "template": template, "arms": runs}


def summarise_prompt_arms(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per stream and arm: held-out accuracy after the shift by labels (mean [min, max]
    over seeds), how often the prompt candidate was the update's version and was promoted,
    and the mean seconds of the prompt search and of the whole update.

    >>> step = {"labels": 8, "arm": "prompt", "promoted": True, "prompt_seconds": 2.0,
    ...         "train_seconds": 5.0, "update_seconds": 9.0, "served": 0.7}
    >>> run = {"stream": "s", "arms": {"lora": [{"labels": 0, "served": 0.5},
    ...                                         {**step, "arm": "lora", "served": 0.6}],
    ...                                "prompt": [{"labels": 0, "served": 0.5}, step]}}
    >>> summary = summarise_prompt_arms([run])["s"]
    >>> summary["served"]["prompt"]["8"], summary["prompt_chosen"], summary["prompt_promoted"]
    ({'mean': 0.7, 'min': 0.7, 'max': 0.7}, 1.0, 1.0)
    """
    out: dict[str, Any] = {}
    for stream in sorted({r["stream"] for r in runs}):
        mine = [r for r in runs if r["stream"] == stream]
        labels = [step["labels"] for step in mine[0]["arms"]["lora"]]

        def spread(values: list[float]) -> dict[str, float]:
            return {"mean": round(statistics.fmean(values), 4),
                    "min": round(min(values), 4), "max": round(max(values), 4)}

        served = {arm: {str(n): spread([r["arms"][arm][i]["served"] for r in mine])
                        for i, n in enumerate(labels)} for arm in ARMS}
        updates = {arm: [s for r in mine for s in r["arms"][arm][1:]] for arm in ARMS}
        chosen = [s["arm"] == "prompt" for s in updates["prompt"]]
        promoted = [s["promoted"] for s in updates["prompt"] if s["arm"] == "prompt"]
        out[stream] = {
            "seeds": len(mine), "labels": labels, "served": served,
            "prompt_chosen": round(sum(chosen) / len(chosen), 4) if chosen else 0.0,
            "prompt_promoted": round(sum(promoted) / len(promoted), 4) if promoted else 0.0,
            "promoted": {arm: sum(s["promoted"] for s in updates[arm]) for arm in ARMS},
            "seconds": {arm: {key: round(statistics.fmean(s[key] for s in updates[arm]), 2)
                              for key in ("prompt_seconds", "train_seconds",
                                          "update_seconds")} for arm in ARMS}}
    return out
