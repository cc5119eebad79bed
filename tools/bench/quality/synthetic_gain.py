"""``driftloop bench quality --only synthetic``: do model-written variants pay after a shift?

A first version learns the stream's first domain from ``known`` labels (the static model of
the live bench). For each later domain and each number of its labels (16, 32, 64), two
updates start from that version, with the learner's trainer at its defaults:

* ``real``: the labels alone;
* ``synthetic``: the labels and the variants
  :func:`~driftloop.learner.training.synthesis.synthesize` keeps of them (written by the
  default generation base model, SmolLM2-135M-Instruct; each kept only when the first
  version gives it the label asked for), at most ``share`` of the training part, as an
  update with ``learner.synthetic_share`` does;
* ``teacher``: the labels and those of the same variants that a teacher also labels as
  asked (a task's ``synthetic_teacher``). The stand-in for a stronger model a team has: an
  adapter trained from the first version on ``teacher_labels`` (256) of the domain's labels,
  its held-out accuracy reported beside. (The teacher filters the variants the share kept;
  in an update it reads them before the share's cut, which rarely binds here.)
* ``probes``: as ``teacher``, with the labels the first version answers wrong put first as
  sources and their variants checked by the teacher alone (the first version fails their
  source): what a task's ``synthetic_probes`` does with the challenge probes grown from
  real errors, which are exactly such labels (interactions people corrected).

All are scored on the domain's held-out texts: the gain is at the same number of human
labels. The runs also count the variants asked, kept and dropped by reason, and the
seconds writing them took.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from functools import partial
from typing import Any

from ....learner.models.resident import default_base_model
from ....learner.training.synthesis import SynthesisPlan, TextWriter, synthesize
from ....schemas.enums import TaskKind
from .meta_start import META_STREAMS, FewShotTrainer

__all__ = ["ARMS", "SHOTS", "summarise_synthetic", "synthetic_gain"]

SHOTS = (16, 32, 64)
ARMS = ("real", "synthetic", "teacher", "probes")


def synthetic_gain(stream_name: str, *, seed: int, known: int = 128, heldout: int = 200,
                   shots: Sequence[int] = SHOTS, share: float = 0.3,
                   teacher_labels: int = 256,
                   torch_threads: int | None = None) -> dict[str, Any]:
    """One stream, one seed: held-out accuracy on each later domain per arm and labels."""
    stream = META_STREAMS[stream_name](seed, pool=max(known, *shots, teacher_labels),
                                       heldout=heldout)
    first, *later = list(stream.pools)
    plan = SynthesisPlan(share=share, below=max(shots) + 1)
    results: dict[str, dict[str, dict[int, float]]] = {}
    teachers: dict[str, float] = {}
    counts = {"asked": 0, "kept": 0, "dropped": {}, "seconds": 0.0, "teacher_kept": 0,
              "probes": 0, "probes_trained": 0}
    with FewShotTrainer(stream.labels, torch_threads=torch_threads) as trainer:
        start = trainer.folder / "first"
        static = trainer.train(None, stream.pools[first][:known], start)
        writer_base = trainer.learner.models.get(default_base_model(TaskKind.GENERATION),
                                                 TaskKind.GENERATION)
        writer = TextWriter(writer_base.model, writer_base.tokenizer,
                            trainer.learner.device.device)
        first_answers = partial(trainer.task_model.predict, static)
        for domain in later:
            teacher = trainer.train(start, stream.pools[domain][:teacher_labels])
            teachers[domain] = trainer.accuracy(teacher, stream.heldout[domain])
            teacher_answers = partial(trainer.task_model.predict, teacher)
            heldout_texts = [e.input for e in stream.heldout[domain]]
            curves: dict[str, dict[int, float]] = {arm: {} for arm in ARMS}
            for seen in shots:
                few = stream.pools[domain][:seen]
                written = synthesize(few, plan=plan, writer=writer, labels=stream.labels,
                                     answer=first_answers, known=heldout_texts, seed=seed)
                counts["asked"] += written.asked
                counts["kept"] += len(written.examples)
                counts["seconds"] += written.seconds
                for reason, n in written.dropped.items():
                    counts["dropped"][reason] = counts["dropped"].get(reason, 0) + n
                said = (teacher_answers([e.input for e in written.examples])
                        if written.examples else [])
                checked = [e for e, label in zip(written.examples, said, strict=True)
                           if label == e.target]
                counts["teacher_kept"] += len(checked)
                failed = [e for e, label in zip(few, first_answers([e.input for e in few]),
                                                strict=True) if label != e.target]
                from_probes = synthesize(few, plan=plan, writer=writer, labels=stream.labels,
                                         answer=first_answers, known=heldout_texts, seed=seed,
                                         teacher=teacher_answers, probes=failed)
                counts["probes"] += len(failed)
                counts["probes_trained"] += len(from_probes.trained_probes)
                counts["seconds"] += from_probes.seconds
                for arm, examples in (("real", few), ("synthetic", few + written.examples),
                                      ("teacher", few + checked),
                                      ("probes", few + from_probes.examples)):
                    model = trainer.train(start, examples)
                    curves[arm][seen] = trainer.accuracy(model, stream.heldout[domain])
            results[domain] = curves
    counts["seconds"] = round(counts["seconds"], 2)
    return {"stream": stream_name, "seed": seed, "known": known, "shots": list(shots),
            "share": share, "teacher_labels": teacher_labels, "teachers": teachers,
            "domains": results, "variants": counts}


def summarise_synthetic(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per stream, arm and labels: mean accuracy over seeds and later domains with its
    spread (the lowest and highest seed mean), the gain, and the variants kept.

    >>> run = {"stream": "s", "shots": [16], "teachers": {"b": 0.8},
    ...        "variants": {"asked": 10, "kept": 4, "teacher_kept": 2},
    ...        "domains": {"b": {"real": {16: 0.6}, "synthetic": {16: 0.65},
    ...                          "teacher": {16: 0.7}, "probes": {16: 0.75}}}}
    >>> summary = summarise_synthetic([run])["s"]
    >>> summary["gain"]["16"], summary["kept_share"], summary["teacher_kept_share"]
    ({'mean': 0.05, 'min': 0.05, 'max': 0.05}, 0.4, 0.5)
    >>> summary["teacher_gain"]["16"]["mean"], summary["teacher_accuracy"]["mean"]
    (0.1, 0.8)
    >>> summary["probes_gain"]["16"]["mean"]
    0.15

    Runs written before an arm existed are summarised on the arms they have.
    """
    out: dict[str, Any] = {}
    for stream in sorted({r["stream"] for r in runs}):
        mine = [r for r in runs if r["stream"] == stream]

        def per_seed(run: dict[str, Any], arm: str, seen: int) -> float:
            # JSON turns the keys into strings: a report read back has those.
            return statistics.fmean(c[arm].get(seen, c[arm].get(str(seen)))
                                    for c in run["domains"].values())

        def spread(values: list[float]) -> dict[str, float]:
            return {"mean": round(statistics.fmean(values), 4),
                    "min": round(min(values), 4), "max": round(max(values), 4)}

        arms = [arm for arm in ARMS
                if all(arm in c for r in mine for c in r["domains"].values())]
        table = {arm: {str(k): spread([per_seed(r, arm, k) for r in mine])
                       for k in mine[0]["shots"]} for arm in arms}
        gains = {arm: {str(k): spread([per_seed(r, arm, k) - per_seed(r, "real", k)
                                       for r in mine]) for k in mine[0]["shots"]}
                 for arm in arms if arm != "real"}
        asked = sum(r["variants"]["asked"] for r in mine)
        kept = sum(r["variants"]["kept"] for r in mine)
        checked = sum(r["variants"]["teacher_kept"] for r in mine)
        out[stream] = {"seeds": len(mine), "shots": mine[0]["shots"], "arms": table,
                       "gain": gains["synthetic"], "teacher_gain": gains["teacher"],
                       "teacher_accuracy": spread([statistics.fmean(r["teachers"].values())
                                                   for r in mine]),
                       "kept_share": round(kept / asked, 4) if asked else 0.0,
                       "teacher_kept_share": round(checked / kept, 4) if kept else 0.0,
                       "variants_kept": kept,
                       "writing_seconds": round(sum(r["variants"].get("seconds", 0.0)
                                                    for r in mine), 2)}
        if "probes" in gains:
            out[stream] |= {"probes_gain": gains["probes"],
                            "probes": sum(r["variants"].get("probes", 0) for r in mine),
                            "probes_trained": sum(r["variants"].get("probes_trained", 0)
                                                  for r in mine)}
    return out

