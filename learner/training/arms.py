"""Two candidates per classification update: retrieval first, fine-tune second.

With ``learner.retrieval`` an update builds, beside the trained (LoRA) candidate, a
retrieval candidate: the parent's adapter unchanged, its answers mixed with the votes of the
nearest labelled texts (:mod:`driftloop.learner.models.retrieval`): the request's training
texts embedded by the parent's encoder, added to the parent's own bank. It costs one forward
pass over the request and no training. The trained candidate carries a bank of the request's
texts under its own encoder (the parent's bank was made by another encoder).

How much the neighbours weigh (``learner.retrieval_weight``) is fitted per candidate unless
set: the share from :data:`~driftloop.learner.models.retrieval.WEIGHT_GRID` that answers
most of a set of the request's texts right, each voted on by the rest of the bank (leave one
out), mixed with the answers of a classifier that was not trained on them (the parent on the
request's new texts, the trained candidate on its early-stop texts); it is kept only when
the mix beats the classifier alone there by McNemar's exact test at ``gate_alpha``. A
retrieval candidate whose share comes to 0 is not built, and the update's one candidate
faces the gate at its whole level; a trained candidate whose share is 0 keeps no bank. The
fixed share of the first version of this arm (0.5) helped TREC questions, whose topics
neighbours tell well, and hurt VADER sentiment, whose neighbours share topics more than
sentiment; a share that each stream's texts choose is the one setting for both.

Both face the parent at the gate, each at half the gate's level (two shots: a union bound
keeps the update's false-promotion rate at ``gate_alpha``). The one that passes is the
update's version; when both pass (or neither does), the cheaper, retrieval, unless the
trained one is significantly better than it on the recent slice (McNemar's exact test at
the gate's level): the prompt-first rule of fine-tuning against prompt engineering. The
version's ``metadata.arm`` says which one it is and ``metadata.arms`` both scores and the
test. (First written with retrieval always put before the gate unless the trained candidate
was significantly better than it: traced on VADER seed 5 it promoted nothing, since a
retrieval candidate rarely shows a significant gain over a parent that has a bank, and
a trained one that would have passed was never judged.)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ...schemas.events import TrainingExample
from ..gate.evidence import Metrics, Outcomes
from ..gate.paired import PairedComparison, compare
from ..models.adapters import AdapterMetadata, read_metadata, save_on_parent_weights
from ..models.classification import HEAD_MODULE
from ..models.retrieval import BANK_FILE, RetrievalBank, RetrievalClassifier
from ..models.task_model import TaskModel

__all__ = [
    "RETRIEVAL_KEY",
    "ArmChoice",
    "bank_of",
    "choose_arm",
    "new_bank",
    "retrieval_view",
    "save_retrieval_candidate",
]

RETRIEVAL_KEY = "retrieval"
"""The ``driftloop.json`` entry (under ``extra``) describing an adapter's bank."""


@dataclass(frozen=True, slots=True)
class ArmChoice:
    """Which candidate the update puts before the gate, and the test that chose it."""

    arm: str
    comparison: PairedComparison
    cheap: str = "retrieval"
    """The arm that costs no training (``retrieval`` or ``prompt``)."""

    def metadata(self, cheap: Metrics, trained: Metrics) -> dict[str, Any]:
        return {"arm": self.arm, "arms": {
            f"{self.cheap}_holdout_score": cheap.get("holdout_score"),
            "lora_holdout_score": trained.get("holdout_score"),
            f"lora_over_{self.cheap}": self.comparison.describe()}}


def retrieval_view(model: Any, bank: RetrievalBank | None) -> RetrievalClassifier:
    """``model`` (a classification PEFT model) answering with ``bank``'s votes mixed in."""
    return RetrievalClassifier(model, getattr(model.base_model.model, HEAD_MODULE), bank)


def bank_of(folder: Path | None, task_model: TaskModel) -> RetrievalBank | None:
    """The bank an adapter folder carries, or None (no folder, or a folder without one)."""
    if folder is None:
        return None
    settings = read_metadata(folder).extra.get(RETRIEVAL_KEY)
    return RetrievalBank.load(folder, settings, len(task_model.labels))


def new_bank(view: RetrievalClassifier, task_model: Any, examples: Sequence[TrainingExample],
             *, base: RetrievalBank | None, k: int, weight: float | None, limit: int,
             fit_on: Collection[str] = (), alpha: float = 0.1) -> RetrievalBank:
    """``base`` (made by the same encoder) and ``examples`` embedded by ``view``'s model, the
    newest ``limit`` kept.

    ``weight`` None: the neighbours' share is fitted (:meth:`RetrievalBank.fitted`) on the
    texts of ``fit_on`` among ``examples`` (texts ``view``'s model was not trained on), each
    voted on by the rest of the bank, and kept only when the mixed answers are better than
    the classifier's alone there by McNemar's exact test at ``alpha``; else it is 0.
    """
    texts = list(dict.fromkeys(e.input for e in examples))
    target = {e.input: e.target for e in examples}
    index = {label: i for i, label in enumerate(task_model.labels)}
    rows, probabilities = view.embed(task_model.tokenizer, texts,
                                     device=task_model.device.device,
                                     max_length=task_model.max_length)
    labels = torch.tensor([index[target[t]] for t in texts], dtype=torch.long)
    if base is None:
        bank = RetrievalBank(rows[-limit:], labels[-limit:], len(task_model.labels), k=k,
                             weight=weight or 0.0)
    else:
        bank = base.extend(rows, labels, limit=limit)
        bank = bank if weight is None else replace(bank, weight=weight)
    if weight is not None:
        return bank
    first = len(bank) - len(texts)  # the bank's row of texts[0] (the newest rows are last)
    fit = [i for i, text in enumerate(texts) if text in fit_on and first + i >= 0]
    fit_rows = torch.tensor(fit, dtype=torch.long) + first
    bank = bank.fitted(probabilities[fit], fit_rows)
    if bank.weight > 0.0:
        gain = compare(*bank.hits(probabilities[fit], fit_rows, (bank.weight, 0.0)))
        if not gain.p_better < alpha:
            bank = replace(bank, weight=0.0)
    return bank


def choose_arm(trained: Outcomes, retrieval: Outcomes, alpha: float, *,
               passed: tuple[bool, bool] = (True, True), cheap: str = "retrieval"
               ) -> ArmChoice:
    """The candidate that passed its gate (``passed``: the trained one's, the cheap one's:
    retrieval, or a prompt, :mod:`.prompt_arm`); when both or neither did, the cheap one,
    unless the trained candidate is significantly better than it on the recent slice.

    >>> from driftloop.learner.models.task_model import Evaluation
    >>> e = lambda hits: {"holdout": Evaluation(hits, 0.5, [float(h) for h in hits])}
    >>> choose_arm(e([True] * 12), e([False] * 12), 0.1).arm
    'lora'
    >>> choose_arm(e([True] * 12), e([True] * 10 + [False] * 2), 0.1).arm  # 2 of 2: p 0.25
    'retrieval'
    >>> choose_arm(e([True] * 12), e([True] * 10 + [False] * 2), 0.1, passed=(True, False)).arm
    'lora'
    """
    comparison = compare(trained["holdout"].hits, retrieval["holdout"].hits,
                         candidate_scores=trained["holdout"].scores,
                         parent_scores=retrieval["holdout"].scores)
    if passed[0] != passed[1]:
        return ArmChoice("lora" if passed[0] else cheap, comparison, cheap)
    better = comparison.p_better < alpha and comparison.effect > 0
    return ArmChoice("lora" if better else cheap, comparison, cheap)


def save_retrieval_candidate(parent: Path, folder: Path, metadata: AdapterMetadata,
                             bank: RetrievalBank) -> Path:
    """The parent's adapter files (weights untouched) with ``metadata`` and ``bank``."""
    return save_on_parent_weights(parent, folder, metadata, replaced=(BANK_FILE,),
                                  write=bank.save)
