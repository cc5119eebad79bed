"""Measure one incremental update against a Hugging Face ``Trainer`` run from a cold start.

Both train the same LoRA (same rank, targets, learning rate, batch size, epochs) on the same
examples of the same request on the same hardware. The incremental update finds its base
model resident; the baseline loads it (tokenizer, weights, PEFT wrapping) and runs
``Trainer.train()``, which is what a per-request fine-tuning job pays.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...learner.gate.split import split_request
from ...learner.models.adapters import LoraSpec
from ...learner.models.classification import MeanPoolClassifier, classifier_lora_config
from ...learner.models.generation import generator_lora_config
from ...learner.models.prompts import IGNORE_INDEX, get_template
from ...learner.models.resident import default_base_model, load_base_model
from ...learner.registry.version_log import VersionLog
from ...learner.training.loop import TrainConfig
from ...learner.training.update import IncrementalUpdater, UpdateResult
from ...schemas.enums import TaskKind, TriggerKind
from ...schemas.events import TrainingExample, TrainingRequest
from ...schemas.settings import Settings
from ..demo.vader import balanced_sample, read_domain

__all__ = [
    "Timing",
    "bench_request",
    "job_for",
    "time_incremental",
    "time_trainer_cold_process",
    "time_trainer_cold_start",
]


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall time of a run and the training examples it processed."""

    seconds: float
    examples: int

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0


def bench_request(n: int, *, domain: str = "tweets",
                  kind: TaskKind = TaskKind.CLASSIFICATION,
                  request_id: str | None = None, seed: int = 0) -> TrainingRequest:
    """A request of ``n`` balanced real VADER examples (generation: one-word answers)."""
    examples = [{"input": e.text, "target": e.label, "domain": domain}
                for e in balanced_sample(read_domain(domain), n, seed=seed)]
    kind = TaskKind(kind)
    extra: dict[str, Any] = ({"labels": ["negative", "positive"]}
                             if kind is TaskKind.CLASSIFICATION
                             else {"prompt_template_id": "sentiment"})
    return TrainingRequest(id=request_id or f"bench-{kind.value}-{n}-{domain}", ts=time.time(),
                           task=f"bench-{kind.value}", task_kind=kind, trigger=TriggerKind.MANUAL,
                           examples=examples, **extra)


def time_incremental(updater: IncrementalUpdater,
                     request: TrainingRequest) -> tuple[Timing, Timing, UpdateResult]:
    """``(training only, whole update, result)`` with the base model already resident."""
    result = updater.update(request, VersionLog())
    train = Timing(result.train_report.seconds, result.train_report.examples_seen)
    whole = Timing(result.timings["update_seconds"], result.train_report.examples_seen)
    return train, whole, result


class _LossClassifier(MeanPoolClassifier):
    """The same classifier, returning the loss the way ``Trainer`` expects."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,  # type: ignore[override]
                labels: torch.Tensor | None = None, **_: Any) -> dict[str, torch.Tensor]:
        logits = super().forward(input_ids, attention_mask)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


Batch = dict[str, torch.Tensor]


def job_for(settings: Settings, request: TrainingRequest) -> Callable[..., Any]:
    """The function that builds a baseline's model, rows and collator for the request's kind:
    ``job(settings, request, examples) -> ((model, peft_config), rows, collate)``."""
    kind = settings.task(request.task).kind if request.task in settings.tasks \
        else request.task_kind
    return _generation_job if kind is TaskKind.GENERATION else _classification_job


def _classification_job(settings: Settings, request: TrainingRequest,
                        examples: Sequence[TrainingExample]) -> tuple[Any, list[Any], Any]:
    cfg = settings.learner
    labels = list(request.labels or sorted({e.target for e in request.examples}))
    base = load_base_model(settings.task(request.task).base_model
                           or default_base_model(TaskKind.CLASSIFICATION), TaskKind.CLASSIFICATION)
    torch.manual_seed(cfg.seed)
    model = _LossClassifier(base.model, len(labels), cfg.lora_dropout)
    config = classifier_lora_config(LoraSpec(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout))
    rows = []
    for example in examples:
        encoded = base.tokenizer(example.input, truncation=True, max_length=cfg.max_length)
        rows.append({"input_ids": encoded["input_ids"],
                     "attention_mask": encoded["attention_mask"],
                     "labels": labels.index(example.target)})

    def collate(batch: list[dict[str, Any]]) -> Batch:
        padded = base.tokenizer.pad([{k: r[k] for k in ("input_ids", "attention_mask")}
                                     for r in batch], return_tensors="pt")
        padded["labels"] = torch.tensor([r["labels"] for r in batch])
        return dict(padded)

    return (model, config), rows, collate


def _generation_job(settings: Settings, request: TrainingRequest,
                    examples: Sequence[TrainingExample]) -> tuple[Any, list[Any], Any]:
    cfg = settings.learner
    task = settings.task(request.task)
    template = get_template(request.prompt_template_id or task.prompt_template_id)
    base = load_base_model(task.base_model or default_base_model(TaskKind.GENERATION),
                           TaskKind.GENERATION)
    config = generator_lora_config(LoraSpec(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout))
    # The GGUF loader dequantizes into plain float tensors but keeps its quantizer marker,
    # on which Trainer refuses to train; the weights themselves are ordinary parameters.
    if getattr(base.model, "hf_quantizer", None) is not None:
        base.model.hf_quantizer = None
    if getattr(base.model, "is_quantized", False):
        base.model.is_quantized = False
    rows = [dict(zip(("input_ids", "labels"),
                     template.encode(base.tokenizer, e.input, e.target, cfg.max_length),
                     strict=True)) for e in examples]
    pad = base.tokenizer.pad_token_id

    def collate(batch: list[dict[str, Any]]) -> Batch:
        width = max(len(r["input_ids"]) for r in batch)
        return {
            "input_ids": torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"]))
                                       for r in batch]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"])
                                            + [0] * (width - len(r["input_ids"]))
                                            for r in batch]),
            "labels": torch.tensor([r["labels"] + [IGNORE_INDEX] * (width - len(r["labels"]))
                                    for r in batch]),
        }

    return (base.model, config), rows, collate


def time_trainer_cold_start(settings: Settings, request: TrainingRequest) -> Timing:
    """Load the base model and train with ``transformers.Trainer`` on the same examples."""
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments

    cfg = settings.learner
    steps = TrainConfig(batch_size=cfg.batch_size, epochs=cfg.epochs, max_steps=cfg.max_steps,
                        min_steps=cfg.min_steps)
    split = split_request(request, holdout_fraction=cfg.holdout_fraction,
                          validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    job = job_for(settings, request)
    started = time.perf_counter()
    (model, config), rows, collate = job(settings, request, split.train)
    torch.manual_seed(cfg.seed)
    model = get_peft_model(model, config)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=cfg.batch_size,
            max_steps=steps.steps_for(len(rows)),
            learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
            max_grad_norm=1.0, seed=cfg.seed, report_to=[], save_strategy="no",
            logging_strategy="no", disable_tqdm=True, remove_unused_columns=False,
            use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate)
        trainer.train()
    seconds = time.perf_counter() - started
    return Timing(seconds, trainer.state.global_step * cfg.batch_size)


def time_trainer_cold_process(settings: Settings, request: TrainingRequest) -> Timing:
    """The Trainer baseline in a new Python process: imports, model load and training.

    That is what a fine-tuning job started per request pays; the wall time runs from the
    spawn to the exit.
    """
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({
            "learner": settings.learner.model_dump(mode="json"),
            "tasks": {k: v.model_dump(mode="json") for k, v in settings.tasks.items()},
            "request": request.model_dump(mode="json")}), encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", __name__, str(spec)], capture_output=True,
                              text=True, check=False)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"Trainer baseline failed: {done.stderr[-2000:]}")
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    return Timing(seconds, inner["examples"])


def _main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    settings = Settings(learner=spec["learner"], tasks=spec["tasks"])
    if settings.learner.torch_threads:
        torch.set_num_threads(settings.learner.torch_threads)
    timing = time_trainer_cold_start(settings, TrainingRequest.model_validate(spec["request"]))
    print(json.dumps({"seconds": timing.seconds, "examples": timing.examples}))


if __name__ == "__main__":
    _main(sys.argv[1])
