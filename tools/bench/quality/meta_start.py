"""``driftloop bench quality --only meta-start``: where a new domain's first adapter starts.

Few-shot adaptation to a domain the task has not seen, from three starts, on each stream's
domains in turn (leave one domain out):

* ``scratch``: an untrained adapter (what a task without domain transfer does);
* ``nearest``: the adapter of the known domain whose embedding centroid is closest to the
  new domain's labelled texts (the learner's ``domain_transfer``,
  :mod:`driftloop.learner.training.transfer`);
* ``merge``: the average of every known domain's adapter, their dense LoRA updates averaged
  and factorised back to the adapters' rank
  (:func:`~driftloop.learner.training.domain_merge.merge_adapter_folders`). Each known
  adapter trained from the same untrained start on its domain, so the average is one
  Reptile outer step of size one (Nichol et al., 2018): a point a short way from every
  domain seen so far.

Each known domain's adapter trains on ``known`` labelled texts of it; from each start the
learner's trainer (the learner's default settings, as an update of that size would train)
then trains on the first 16, 32 and 64 labelled texts of the new domain, and the result is
scored on the new domain's held-out texts (0 labels: the start itself). VADER has four
domains; TREC questions are split into three (:func:`.questions.read_question_groups`).
"""

from __future__ import annotations

import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ....learner.models.adapters import AdapterMetadata, LoraSpec, save_adapter
from ....learner.models.resident import default_base_model
from ....learner.models.task_model import task_model_for
from ....learner.training.domain_merge import merge_adapter_folders
from ....learner.training.loop import seed_everything, train_adapter
from ....learner.training.transfer import cosine_distance, embedding_centroid
from ....learner.training.update import IncrementalUpdater
from ....schemas.enums import TaskKind
from ....schemas.events import TrainingExample
from ....schemas.settings import Settings
from ...demo.traffic import DEMO_DOMAINS, build_demo_data
from .questions import LABELS as QUESTION_LABELS
from .questions import read_question_groups

__all__ = ["META_STREAMS", "SHOTS", "STARTS", "FewShotTrainer", "MetaStream", "meta_start",
           "summarise_meta"]

SHOTS = (0, 16, 32, 64)
STARTS = ("scratch", "nearest", "merge")


@dataclass(frozen=True, slots=True)
class MetaStream:
    """A stream's domains: labelled texts to learn from and held-out texts, per domain.

    >>> stream = META_STREAMS["questions"](0, pool=16, heldout=8)
    >>> sorted(stream.pools), len(stream.heldout["group-2"]), stream.labels[0]
    (['group-0', 'group-1', 'group-2'], 8, 'description')
    """

    name: str
    labels: tuple[str, ...]
    pools: dict[str, list[TrainingExample]]
    heldout: dict[str, list[TrainingExample]]


def _vader(seed: int, *, pool: int, heldout: int) -> MetaStream:
    data = build_demo_data(per_domain=pool, heldout=heldout, bootstrap=2, seed=seed,
                           domains=DEMO_DOMAINS)
    pools: dict[str, list[TrainingExample]] = {}
    for item in data.stream:
        pools.setdefault(item.domain, []).append(TrainingExample(input=item.text,
                                                                 target=item.label))
    held = {d: [TrainingExample(input=i.text, target=i.label) for i in items]
            for d, items in data.heldout.items()}
    return MetaStream("vader", ("negative", "positive"), pools, held)


def _questions(seed: int, *, pool: int, heldout: int) -> MetaStream:
    rng = random.Random(seed)
    pools, held = {}, {}
    for domain, questions in read_question_groups(3).items():
        examples = [TrainingExample(input=q.text, target=q.label) for q in questions]
        rng.shuffle(examples)
        held[domain], pools[domain] = examples[:heldout], examples[heldout:heldout + pool]
    return MetaStream("questions", QUESTION_LABELS, pools, held)


META_STREAMS: dict[str, Callable[..., MetaStream]] = {"vader": _vader, "questions": _questions}


class FewShotTrainer:
    """The learner's trainer, base model and task model for one stream's labels, with a
    scratch store: trains adapters from a start as an update of that size would.

    Used as a context manager (the scratch folder goes on exit)."""

    def __init__(self, labels: Sequence[str], *, torch_threads: int | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="driftloop-fewshot-")
        self.folder = Path(self._tmp.name)
        self.settings = Settings(artifacts={"store_url": str(self.folder / "store")},
                                 learner={"torch_threads": torch_threads})
        self.learner = IncrementalUpdater(self.settings)
        self.labels = tuple(labels)
        self.base_model = default_base_model(TaskKind.CLASSIFICATION)
        self.base = self.learner.models.get(self.base_model, TaskKind.CLASSIFICATION)
        self.task_model = task_model_for(TaskKind.CLASSIFICATION, self.base.tokenizer,
                                         self.learner.device, labels=self.labels,
                                         max_length=self.settings.learner.max_length)
        cfg = self.settings.learner
        self.spec = LoraSpec(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)

    def __enter__(self) -> FewShotTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def train(self, start: Path | None, examples: Sequence[TrainingExample],
              folder: Path | None = None) -> Any:
        """An adapter from ``start`` (None: untrained) trained on ``examples``, saved to
        ``folder`` when given."""
        seed_everything(self.settings.learner.seed)  # the untrained head's and LoRA's init
        model = self.task_model.build(self.base.fresh_copy(), self.spec, start)
        config = self.learner.train_config_for(first=start is None)
        if examples:
            train_adapter(self.task_model, model, list(examples), [], config)
        if folder is not None:
            save_adapter(model, folder, AdapterMetadata(
                TaskKind.CLASSIFICATION, self.base_model, folder.name, self.labels, None))
        return model

    def accuracy(self, model: Any, examples: Sequence[TrainingExample]) -> float:
        return self.task_model.evaluate_each(model, examples).accuracy


def meta_start(stream_name: str, *, seed: int, known: int = 128, heldout: int = 200,
               shots: Sequence[int] = SHOTS, torch_threads: int | None = None
               ) -> dict[str, Any]:
    """One stream, one seed: accuracy on each left-out domain per start and labels seen
    (``shots``: how many labels of the new domain, 0 for the start as it is)."""
    stream = META_STREAMS[stream_name](seed, pool=max(known, *shots), heldout=heldout)
    with FewShotTrainer(stream.labels, torch_threads=torch_threads) as trainer:
        tmp = trainer.folder

        def centroid(examples: Sequence[TrainingExample]) -> list[float]:
            return embedding_centroid(trainer.base.model, trainer.base.tokenizer,
                                      [e.input for e in examples],
                                      device=trainer.learner.device.device,
                                      max_length=trainer.settings.learner.max_length)

        for domain in stream.pools:  # each known domain's adapter, from the same start
            trainer.train(None, stream.pools[domain][:known], tmp / f"known-{domain}")
        centroids = {d: centroid(stream.pools[d][:known]) for d in stream.pools}
        results: dict[str, dict[str, dict[int, float]]] = {}
        for new in stream.pools:
            others = [d for d in stream.pools if d != new]
            merged = merge_adapter_folders([tmp / f"known-{d}" for d in others],
                                           tmp / f"merge-{new}")
            curves: dict[str, dict[int, float]] = {s: {} for s in STARTS}
            for seen in shots:
                few = stream.pools[new][:seen]
                # The donor is chosen on what the learner would have: the new texts so far.
                here = centroid(few or stream.pools[new][:16])
                nearest = min(others, key=lambda d: cosine_distance(here, centroids[d]))
                starts = {"scratch": None, "nearest": tmp / f"known-{nearest}",
                          "merge": merged}
                for name, start in starts.items():
                    curves[name][seen] = trainer.accuracy(trainer.train(start, few),
                                                          stream.heldout[new])
            results[new] = curves
    return {"stream": stream_name, "seed": seed, "known": known, "shots": list(shots),
            "domains": results}


def summarise_meta(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per stream, start and labels seen: mean accuracy over seeds and left-out domains,
    with its spread (the lowest and highest seed mean).

    >>> run = {"stream": "s", "shots": [0, 16], "domains": {
    ...     d: {s: {0: 0.5, 16: acc} for s in STARTS} for d, acc in (("a", 0.6), ("b", 0.8))}}
    >>> summarise_meta([run])["s"]["starts"]["merge"]["16"]
    {'mean': 0.7, 'min': 0.7, 'max': 0.7}
    """
    out: dict[str, Any] = {}
    for stream in sorted({r["stream"] for r in runs}):
        mine = [r for r in runs if r["stream"] == stream]
        table: dict[str, dict[str, Any]] = {}
        for start in STARTS:
            row = {}
            for seen in mine[0]["shots"]:
                # JSON turns the keys into strings: a report read back has those.
                per_seed = [statistics.fmean(c[start].get(seen, c[start].get(str(seen)))
                                             for c in r["domains"].values()) for r in mine]
                row[str(seen)] = {"mean": round(statistics.fmean(per_seed), 4),
                                  "min": round(min(per_seed), 4),
                                  "max": round(max(per_seed), 4)}
            table[start] = row
        out[stream] = {"seeds": len(mine), "shots": mine[0]["shots"], "starts": table}
    return out
