"""Knowledge distillation: train a classification student on a teacher's soft outputs.

A task names a teacher (``TaskSettings.teacher``): a model version from the registry (an
adapter over the same labels, on any base model, e.g. one trained on many clean examples or
on a larger encoder), or a fine-tuned sequence-classification checkpoint (hub name or local
folder). Once per update, before training, the teacher reads the request's training and
validation examples (eval mode, no gradients, on the learner's device); its logits are kept
by input text, in the student's label order, and the teacher is let go. Each training step
then mixes, per example, the cross-entropy on the label with the temperature-scaled KL
divergence to the teacher (Hinton et al., 2015)::

    loss = weight * T**2 * KL(softmax(teacher / T) || softmax(student / T))
           + (1 - weight) * cross_entropy(student, label)

``T**2`` keeps the soft term's gradients the same size whatever the temperature. The
early-stop validation loss uses the same mix; the gate's held-out scores stay on the labels.
The teacher is also scored on the request's held-out examples (``teacher_holdout_score``
in the candidate's metrics), and with ``teacher_tolerance`` set the gate demands that the
student reach the teacher's score minus that tolerance. The version's metadata records the
teacher under ``"distillation"``.

Generation tasks are refused: token-level distillation needs the teacher's and student's
vocabularies to agree token for token and a teacher forward pass per target token; it is
not implemented (:class:`~driftloop.learner.errors.TeacherError`, a dead letter).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...schemas.enums import TaskKind
from ...schemas.events import TrainingExample
from ...schemas.settings import TaskSettings
from ..errors import LearnerError, TeacherError
from ..gate.rule import GateDecision
from ..gate.split import RequestSplit
from ..models.adapters import LoraSpec, read_metadata
from ..models.device import ComputeDevice
from ..models.task_model import TaskModel
from ..registry.version_log import VersionLog

__all__ = ["DistillSpec", "Distillation", "DistillingTask", "KeptTeacher", "Teacher",
           "distillation_for", "distillation_loss", "load_teacher"]

log = logging.getLogger(__name__)
Metrics = dict[str, float]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, *, temperature: float,
                      weight: float) -> torch.Tensor:
    """Per-example loss: ``weight * T^2 * KL(teacher_T || student_T) + (1 - weight) * CE``.

    Examples
    --------
    >>> student = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> labels = torch.tensor([0, 0])
    >>> hard = nn.functional.cross_entropy(student, labels, reduction="none")
    >>> # A teacher that agrees with the student adds nothing; weight 0 is the labels alone.
    >>> torch.allclose(distillation_loss(student, student, labels, temperature=2.0,
    ...                                  weight=0.5), 0.5 * hard)
    True
    >>> # Weight 1 ignores the labels: only disagreeing with the teacher costs.
    >>> distillation_loss(student, student.flip(-1), labels, temperature=1.0, weight=1.0)
    tensor([1.5232, 0.4621])
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    hard = nn.functional.cross_entropy(student_logits, labels, reduction="none")
    if weight == 0.0:
        return hard
    student_log = nn.functional.log_softmax(student_logits / temperature, dim=-1)
    teacher_log = nn.functional.log_softmax(teacher_logits / temperature, dim=-1)
    soft = nn.functional.kl_div(student_log, teacher_log, reduction="none",
                                log_target=True).sum(dim=-1) * temperature ** 2
    return weight * soft + (1.0 - weight) * hard


@dataclass(frozen=True, slots=True)
class DistillSpec:
    """Which teacher, and how much of its soft output the student learns from.

    Examples
    --------
    >>> DistillSpec.from_task(TaskSettings()) is None
    True
    >>> spec = DistillSpec.from_task(TaskSettings(teacher="sentiment-00e7231faa1e079e",
    ...                                           distill_weight=0.8, teacher_tolerance=0.05))
    >>> spec.temperature, spec.weight, spec.tolerance
    (2.0, 0.8, 0.05)
    >>> DistillSpec("t", temperature=0.0)
    Traceback (most recent call last):
    ...
    ValueError: temperature must be > 0, got 0.0
    """

    teacher: str
    temperature: float = 2.0
    weight: float = 0.5
    tolerance: float | None = None

    def __post_init__(self) -> None:
        if not self.teacher or not self.teacher.strip():
            raise ValueError("teacher must name a model version or a model")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if self.tolerance is not None and not 0.0 <= self.tolerance <= 1.0:
            raise ValueError(f"tolerance must be in [0, 1], got {self.tolerance}")

    @classmethod
    def from_task(cls, task: TaskSettings) -> DistillSpec | None:
        """The task's distillation, or None when it names no teacher."""
        if task.teacher is None:
            return None
        return cls(task.teacher, task.distill_temperature, task.distill_weight,
                   task.teacher_tolerance)


@dataclass(slots=True)
class Teacher:
    """A loaded teacher: a model that maps texts to logits over its own ``labels``.

    ``model`` is called with ``input_ids`` and ``attention_mask`` and returns logits (a
    driftloop classification adapter) or an output with ``.logits`` (a transformers
    sequence-classification model).
    """

    ref: str
    labels: tuple[str, ...]
    model: Any
    tokenizer: Any
    device: ComputeDevice
    max_length: int = 128
    batch_size: int = 32
    lineage: dict[str, Any] = field(default_factory=dict)

    def columns_for(self, labels: Sequence[str]) -> list[int]:
        """The teacher's logit column of each student label (the same set is required)."""
        if set(labels) != set(self.labels) or len(labels) != len(self.labels):
            raise TeacherError(f"teacher {self.ref} predicts labels {list(self.labels)}; the "
                               f"student's are {list(labels)} (they must be the same set)")
        return [self.labels.index(label) for label in labels]

    @torch.no_grad()
    def logits(self, texts: Sequence[str], labels: Sequence[str]) -> torch.Tensor:
        """Float32 logits of ``texts`` with columns in the order of ``labels``."""
        columns = torch.tensor(self.columns_for(labels), device=self.device.device)
        self.model.eval()
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            encoded = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True,
                                     truncation=True, max_length=self.max_length,
                                     return_tensors="pt")
            with self.device.autocast():
                out = self.model(input_ids=encoded["input_ids"].to(self.device.device),
                                 attention_mask=encoded["attention_mask"].to(self.device.device))
            chunks.append(getattr(out, "logits", out).float().index_select(-1, columns))
        return torch.cat(chunks) if chunks else torch.empty(0, len(labels))

    def predict(self, texts: Sequence[str], labels: Sequence[str]) -> list[str]:
        """The teacher's label of each text (a second check of model-written variants)."""
        if not texts:
            return []
        return [labels[i] for i in self.logits(texts, labels).argmax(dim=-1).tolist()]

    def score(self, examples: Sequence[TrainingExample],
              labels: Sequence[str]) -> tuple[float, float]:
        """``(accuracy, mean cross-entropy)`` of the teacher on labelled examples."""
        logits = self.logits([e.input for e in examples], labels)
        index = {label: i for i, label in enumerate(labels)}
        target = torch.tensor([index[e.target] for e in examples], device=logits.device)
        accuracy = (logits.argmax(dim=-1) == target).float().mean().item()
        loss = nn.functional.cross_entropy(logits, target).item()
        return accuracy, loss


def load_teacher(ref: str, versions: VersionLog, *, models: Any, store: Any,
                 device: ComputeDevice, workdir: Path, max_length: int = 128) -> Teacher:
    """The teacher ``ref`` names: a registry version first, else a classification model.

    A version's adapter is fetched and verified like a parent's, and built on its own base
    model (from ``models``, the resident LRU). Anything else goes to
    ``AutoModelForSequenceClassification``, whose ``id2label`` gives the labels. Raises
    :class:`TeacherError` when it is neither.
    """
    if ref in versions:
        return _version_teacher(ref, versions, models, store, device, workdir, max_length)
    return _model_teacher(ref, device, max_length)


class KeptTeacher:
    """One update's teachers, loaded once: the task's ``synthetic_teacher`` checks the
    variants, then its ``teacher`` gives soft targets, and when both name the same model
    the second use takes the first's (a registry teacher is a fetch, a check and a copy of
    its base model). At most one is kept: another ref lets the previous one go first.

    >>> kept = KeptTeacher(None, models=None, store=None, workdir=Path("."))
    >>> kept.ref is None
    True
    """

    def __init__(self, versions: VersionLog | None, *, models: Any, store: Any,
                 workdir: Path) -> None:
        self.versions, self.models, self.store, self.workdir = versions, models, store, workdir
        self.ref: str | None = None
        self._teacher: Teacher | None = None
        self._max_length: int | None = None

    def load(self, ref: str, *, device: ComputeDevice, max_length: int) -> Teacher:
        """The teacher ``ref`` names (:func:`load_teacher`), the kept one when it is that."""
        if self._teacher is not None and (self.ref, self._max_length) == (ref, max_length):
            return self._teacher
        self.release()
        assert self.versions is not None
        self._teacher = load_teacher(ref, self.versions, models=self.models, store=self.store,
                                     device=device, workdir=self.workdir,
                                     max_length=max_length)
        self.ref, self._max_length = ref, max_length
        return self._teacher

    def release(self) -> None:
        """Let the kept teacher go (its memory is freed once no one else holds it)."""
        self._teacher, self.ref, self._max_length = None, None, None


def _version_teacher(ref: str, versions: VersionLog, models: Any, store: Any,
                     device: ComputeDevice, workdir: Path, max_length: int) -> Teacher:
    from ..models.classification import ClassificationTask

    version = versions.get(ref)
    folder = store.fetch(version.adapter_uri, version.sha256, workdir / "teacher")
    meta = read_metadata(folder)
    if meta.task_kind is not TaskKind.CLASSIFICATION:
        raise TeacherError(f"teacher {ref} is a {meta.task_kind} adapter; distillation needs "
                           "a classification teacher")
    base = models.get(version.base_model, TaskKind.CLASSIFICATION)
    task = ClassificationTask(base.tokenizer, meta.labels, device, max_length=max_length)
    # The LoRA shape comes from the adapter's own config; the spec only fills a fresh one.
    model = task.build(base.fresh_copy(), LoraSpec(), folder)
    for param in model.parameters():
        param.requires_grad_(False)
    lineage = {"teacher_version": ref, "teacher_task": version.task,
               "teacher_base_model": version.base_model, "teacher_sha256": version.sha256,
               "teacher_status": version.status.value}
    return Teacher(ref, meta.labels, model, base.tokenizer, device, max_length, lineage=lineage)


def _model_teacher(ref: str, device: ComputeDevice, max_length: int) -> Teacher:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..models.resident import resolve_base_model

    try:
        name, gguf_file = resolve_base_model(ref)
        if gguf_file is not None:
            raise TeacherError(f"teacher {ref}: a GGUF file is not a classification model")
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForSequenceClassification.from_pretrained(name)
    except TeacherError:
        raise
    except (OSError, ValueError, LearnerError) as exc:
        raise TeacherError(f"teacher {ref!r} is neither a model version in the registry nor a "
                           f"loadable sequence-classification model: {exc}") from exc
    id2label = getattr(model.config, "id2label", None) or {}
    labels = tuple(str(id2label[i]) for i in sorted(id2label))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device.device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return Teacher(ref, labels, model, tokenizer, device, max_length,
                   lineage={"teacher_model": ref})


class DistillingTask:
    """A classification task whose training loss mixes labels with a teacher's soft targets.

    Wraps the student's task: batches carry the teacher's logits of each example (computed
    beforehand, looked up by input text), :meth:`example_losses` applies
    :func:`distillation_loss`; evaluation and every other attribute are the student's.

    Examples
    --------
    >>> class Student:  # the two methods the trainer needs, on a toy model
    ...     labels, device = ("neg", "pos"), ComputeDevice(torch.device("cpu"))
    ...     def batch(self, examples):
    ...         return {"input_ids": torch.tensor([[len(e.input)] for e in examples]),
    ...                 "attention_mask": torch.ones(len(examples), 1),
    ...                 "labels": torch.tensor([self.labels.index(e.target) for e in examples]),
    ...                 "weights": torch.ones(len(examples))}
    >>> model = lambda input_ids, attention_mask: torch.zeros(len(input_ids), 2)
    >>> soft = {"good": torch.tensor([-2.0, 2.0]), "bad": torch.tensor([2.0, -2.0])}
    >>> task = DistillingTask(Student(), soft, temperature=1.0, weight=1.0)
    >>> examples = [TrainingExample(input="good", target="neg")]
    >>> task.example_losses(model, task.batch(examples))  # the teacher's view, not the label's
    tensor([0.6031])
    >>> task.labels
    ('neg', 'pos')
    """

    def __init__(self, student: TaskModel, soft_targets: dict[str, torch.Tensor], *,
                 temperature: float, weight: float) -> None:
        self.student = student
        self.soft_targets = soft_targets
        self.temperature = temperature
        self.weight = weight

    def __getattr__(self, name: str) -> Any:
        return getattr(self.student, name)

    def batch(self, examples: Sequence[TrainingExample]) -> dict[str, torch.Tensor]:
        batch = self.student.batch(examples)
        missing = [e.input for e in examples if e.input not in self.soft_targets]
        if missing:
            raise KeyError(f"no teacher output for {len(missing)} example(s), e.g. "
                           f"{missing[0][:80]!r}")
        batch["teacher_logits"] = torch.stack([self.soft_targets[e.input] for e in examples])
        return batch

    def example_losses(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.student.device.autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return distillation_loss(logits.float(), batch["teacher_logits"], batch["labels"],
                                 temperature=self.temperature, weight=self.weight)


@dataclass(slots=True)
class Distillation:
    """What one update does with its teacher (``spec`` None: no teacher, everything a no-op).

    Examples
    --------
    >>> off = Distillation()
    >>> task = object()
    >>> off.wrap(task) is task, off.metrics, off.lineage
    (True, {}, {})
    >>> on = Distillation(DistillSpec("v-teacher", tolerance=0.05),
    ...                   metrics={"teacher_holdout_score": 0.9})
    >>> decision = on.gate(GateDecision(True, ("holdout: 0.800 > 0.500",)),
    ...                    {"holdout_score": 0.8})
    >>> decision.promote, decision.reasons[-1]
    (False, 'teacher: 0.800 < 0.900 - 0.05 (teacher v-teacher)')
    """

    spec: DistillSpec | None = None
    soft_targets: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)

    def wrap(self, task: TaskModel) -> TaskModel:
        """The task to train with: the student's, with the teacher's targets mixed in."""
        if self.spec is None:
            return task
        return DistillingTask(task, self.soft_targets, temperature=self.spec.temperature,
                              weight=self.spec.weight)

    def gate(self, decision: GateDecision, after: Metrics) -> GateDecision:
        """The gate's decision, plus the comparison with the teacher on the same holdout."""
        teacher = self.metrics.get("teacher_holdout_score")
        if self.spec is None or teacher is None:
            return decision
        student = after["holdout_score"]
        tolerance = self.spec.tolerance
        promote = decision.promote
        if tolerance is None:
            reason = f"teacher: {student:.3f} vs {teacher:.3f} (not required)"
        elif student < teacher - tolerance - 1e-9:
            promote = False
            reason = (f"teacher: {student:.3f} < {teacher:.3f} - {tolerance:.3g} "
                      f"(teacher {self.spec.teacher})")
        else:
            reason = f"teacher: {student:.3f} within {tolerance:.3g} of {teacher:.3f}"
        return GateDecision(promote, (*decision.reasons, reason))


def distillation_for(task: TaskSettings, kind: TaskKind, split: RequestSplit, student: TaskModel,
                     versions: VersionLog, *, models: Any, store: Any,
                     workdir: Path, kept: KeptTeacher | None = None) -> Distillation:
    """Load the task's teacher, take its soft targets and holdout scores, let it go.

    ``student`` is the update's task model (its labels, device and token budget are the
    teacher's too). Without a teacher this returns ``Distillation()``, which changes nothing.
    ``kept``: the update's teacher already loaded (by synthesis), used when it is this one.
    """
    spec = DistillSpec.from_task(task)
    if spec is None:
        return Distillation()
    if kind is not TaskKind.CLASSIFICATION:
        raise TeacherError(f"teacher {spec.teacher}: distillation is implemented for "
                           f"classification tasks only, not {kind} (token-level distillation "
                           "is not)")
    started = time.perf_counter()
    kept = kept or KeptTeacher(versions, models=models, store=store, workdir=workdir)
    teacher = kept.load(spec.teacher, device=student.device, max_length=student.max_length)
    kept.release()
    labels = tuple(student.labels)
    texts = list(dict.fromkeys(e.input for e in (*split.train, *split.validation)))
    logits = teacher.logits(texts, labels)
    soft_targets = dict(zip(texts, logits, strict=True))
    metrics: Metrics = {}
    for part, examples in (("holdout", split.holdout_new), ("replay", split.holdout_replay)):
        if examples:
            metrics[f"teacher_{part}_score"], metrics[f"teacher_{part}_loss"] = teacher.score(
                examples, labels)
    seconds = time.perf_counter() - started
    lineage = {"distillation": {
        "teacher": spec.teacher, **teacher.lineage, "temperature": spec.temperature,
        "weight": spec.weight, "tolerance": spec.tolerance, "soft_targets": len(texts),
        "teacher_seconds": round(seconds, 4)}}
    log.info("teacher %s: soft targets of %d examples, holdout score %s, in %.2f s",
             spec.teacher, len(texts), metrics.get("teacher_holdout_score"), seconds)
    del teacher
    return Distillation(spec, soft_targets, metrics, lineage)
