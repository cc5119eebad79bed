"""``driftloop bench quality``: does the loop learn well? Offline, no broker.

Three parts, each driving driftloop's own code directly and printing it beside a baseline:

1. drift detection (:mod:`driftloop.tools.bench.quality.drift_eval`): the worker's monitors vs
   River's ADWIN on the confidence alone, on seeded streams with known change points and on stable
   streams: delay, misses, extra alerts and false alarms per 100,000 events;
2. continual learning under live conditions (:mod:`driftloop.tools.bench.quality.live_bench`):
   the worker's task state, the learner and serving with driftloop's default settings, noisy
   late labels, a reviewer, domains the producers do not name; on VADER sentiment and TREC
   question topics, over several seeds, against the static bootstrap version and full
   retraining: shifts answered, held-out and live accuracy, forgetting, false promotions,
   examples trained;
3. active learning (:mod:`driftloop.tools.bench.quality.label_efficiency`): held-out accuracy
   per label asked, the worker's uncertainty sampler vs random picks with the same budget;
4. only when asked (``--only meta-start``; :mod:`driftloop.tools.bench.quality.meta_start`):
   few-shot accuracy on a domain the task has not seen, from an untrained adapter, from the
   nearest known domain's and from the average of every known domain's;
5. only when asked (``--only synthetic``; :mod:`driftloop.tools.bench.quality.synthetic_gain`):
   accuracy on a later domain after 16, 32 and 64 of its labels, with and without the
   variants a generation model writes of them (data from prompts);
6. only when asked (``--only prompt-arm``; :mod:`driftloop.tools.bench.quality.prompt_arms`):
   a generation task's updates after a shift with and without a prompt candidate beside the
   trained one: how often the prompt was the version, its cost, the served accuracy;
7. only when asked (``--only named-domains``): the continual part again with producers that
   name each event's domain and the task's ``adapter_per_domain`` on, each domain served by
   its own lineage's head (the bound that routing unnamed traffic by regime could reach);
8. only when asked (``--only routing``; :mod:`driftloop.tools.bench.quality.routing`): how
   often one text's vector picks its own domain by the nearest domain centroid;
9. only when asked (``--only errors-suite``): the continual part again with the task keeping
   a challenge suite grown from the run's real errors (the interactions its users labelled
   against the served answer), which every later candidate is gated on.

``--json`` prints every figure (curves and per-stream delays included) as one JSON document
on stdout, the tables going to stderr; ``-o FILE`` writes it to a file after every part.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ...options import json_option, output_option, print_json, text_to_stderr

__all__ = ["SECTIONS", "quality"]

SECTIONS = ("drift", "continual", "active", "meta-start", "synthetic", "prompt-arm",
            "named-domains", "routing", "errors-suite")
DEFAULT_SECTIONS = SECTIONS[:3]


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="", dynamic_ncols=True, disable=None, leave=False,
                file=sys.stderr)


def _drift(quick: bool, seed: int) -> dict[str, Any]:
    from .drift_eval import SCENARIOS, evaluate
    from .drift_eval import scenarios as make_scenarios

    scenarios = make_scenarios(20_000) if quick else SCENARIOS
    runs = 2 if quick else 10
    started = time.perf_counter()
    with _bar(runs * len(scenarios), "drift streams") as bar:
        scores = evaluate(scenarios, runs=runs, seed=seed, progress=bar.update)
    return {"runs_per_scenario": runs,
            "scenarios": {name: {"kind": s.kind, "signal": s.signal, "length": s.length,
                                 "changes": list(s.changes), "ramp": s.ramp,
                                 "strength": s.strength, "ar1": s.ar1}
                          for name, s in scenarios.items()},
            "scores": [s.to_dict() for s in scores],
            "seconds": round(time.perf_counter() - started, 2)}


def _active_data(embedder: Any, quick: bool, seed: int) -> tuple[Any, ...]:
    """Movie-review texts the bootstrap (tweets) version never saw, embedded by it."""
    import numpy as np

    from ...demo.traffic import LABELS
    from ...demo.vader import read_domain

    examples = read_domain("movies")
    random.Random(f"active-{seed}").shuffle(examples)
    n_stream, n_test = (400, 100) if quick else (2_000, 400)
    stream, test = examples[:n_stream], examples[n_stream:n_stream + n_test]
    with _bar(n_stream + n_test, "embedding") as bar:
        xs, xt = (_embedded(embedder, [e.text for e in part], bar) for part in (stream, test))
    ys = np.asarray([LABELS.index(e.label) for e in stream])
    yt = np.asarray([LABELS.index(e.label) for e in test])
    return xs, ys, xt, yt


def _embedded(embedder: Any, texts: list[str], bar: Any) -> Any:
    import numpy as np

    parts = []
    for start in range(0, len(texts), 200):
        parts.append(embedder.embed(texts[start:start + 200]))
        bar.update(len(parts[-1]))
    return np.vstack(parts)


def _active(embedder: Any, quick: bool, seed: int) -> dict[str, Any]:
    from ....schemas.settings import WorkerSettings
    from .label_efficiency import label_curves

    started = time.perf_counter()
    xs, ys, xt, yt = _active_data(embedder, quick, seed)
    checkpoints = [10, 20, 30] if quick else [10, 20, 40, 80, 160]
    repeats = 2 if quick else 5
    settings = WorkerSettings().active
    with _bar(2 * repeats, "active learning") as bar:
        curves = label_curves(xs, ys, xt, yt, checkpoints=checkpoints, repeats=repeats,
                              seed=seed, progress=bar.update, batch_events=100,
                              budget_per_batch=10, active=settings)
    return {"domain": "movies", "stream_events": len(xs), "test_examples": len(xt),
            "batch_events": 100, "budget_per_batch": 10, "strategy": settings.strategy,
            "threshold": settings.threshold, "classifier": "softmax head on frozen "
            "embeddings of the bootstrap version",
            "curves": [c.to_dict() for c in curves],
            "seconds": round(time.perf_counter() - started, 2)}


@contextmanager
def _embedder(seed: int, threads: int | None) -> Iterator[Any]:
    """A first version's embeddings (what serving reports), freed after."""
    _offline()
    from .embedding import BootstrapEmbedder

    embedder = BootstrapEmbedder(seed=seed, torch_threads=threads)
    try:
        yield embedder
    finally:
        embedder.close()


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _each_run(seeds: range, streams: tuple[str, ...], what: str,
              run: Callable[[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """``run(stream, seed)`` for every stream and seed, with a progress bar."""
    runs = []
    with _bar(len(seeds) * len(streams), what) as bar:
        for stream in streams:
            for seed in seeds:
                bar.set_postfix_str(f"{stream} seed {seed}")
                runs.append(run(stream, seed))
                bar.update(1)
    return runs


def _continual(quick: bool, seeds: range, streams: tuple[str, ...],
               threads: int | None, *, named: bool = False,
               suite: bool = False) -> dict[str, Any]:
    """The live loop at the defaults; ``named``: producers name each event's domain and the
    task keeps an adapter per domain (the one setting changed); ``suite``: the task keeps a
    challenge suite grown from the run's real errors."""
    _offline()
    from .live_bench import LiveSizes, run_live, summarise
    from .live_loop import TASK, LiveConditions

    sizes = LiveSizes.named(quick=quick)
    conditions = LiveConditions(named_domains=named)
    overrides = {"tasks": {TASK: {"adapter_per_domain": True}}} if named else None
    started = time.perf_counter()
    runs = _each_run(seeds, streams, "live-loop runs", lambda stream, seed: run_live(
        stream, seed=seed, sizes=sizes, torch_threads=threads, conditions=conditions,
        overrides=overrides, challenge_suite=suite))
    settings = ("driftloop's defaults, adapter_per_domain = true, domains named"
                if named else "driftloop's defaults")
    return {"sizes": {"per_domain": sizes.per_domain, "heldout": sizes.heldout,
                      "bootstrap": sizes.bootstrap},
            "settings": settings + (", a challenge suite grown from real errors"
                                    if suite else ""),
            "runs": runs, "summary": summarise(runs),
            "seconds": round(time.perf_counter() - started, 2)}


def _routing(quick: bool, seeds: range, streams: tuple[str, ...]) -> dict[str, Any]:
    """Nearest-centroid routing of single texts, each stream and seed."""
    _offline()
    from ....learner.models.resident import ResidentModels
    from .routing import routing_accuracy, summarise_routing

    models = ResidentModels()
    heldout = 80 if quick else 200
    started = time.perf_counter()
    runs = _each_run(seeds, streams, "routing runs", lambda stream, seed: routing_accuracy(
        stream, seed=seed, heldout=heldout, models=models))
    return {"heldout": heldout, "runs": runs, "summary": summarise_routing(runs),
            "seconds": round(time.perf_counter() - started, 2)}


def _routing_table(section: dict[str, Any]) -> list[str]:
    lines = [f"routing one text to its domain by the nearest domain centroid (64 texts each), "
             f"{section['heldout']} held-out texts per domain; mean [min, max] over seeds"]
    for stream, kinds in section["summary"].items():
        for kind, s in kinds.items():
            a = s["accuracy"]
            lines.append(f"{stream:10} {kind:12} accuracy {a['mean']:.3f} [{a['min']:.3f}, "
                         f"{a['max']:.3f}]; distance to own centroid p90 "
                         f"{s['own_distance_p90']:.3f}, to the nearest other p10 "
                         f"{s['other_distance_p10']:.3f}")
    return lines


def _few_shot(part: str, quick: bool, seeds: range, streams: tuple[str, ...],
              threads: int | None) -> dict[str, Any]:
    """A part that learns a new domain from a few labels (``meta-start`` or ``synthetic``):
    each stream and seed run, and the summary."""
    _offline()
    from .meta_start import meta_start, summarise_meta
    from .synthetic_gain import summarise_synthetic, synthetic_gain

    run, summarise = {"meta-start": (meta_start, summarise_meta),
                      "synthetic": (synthetic_gain, summarise_synthetic)}[part]
    known, heldout = (32, 80) if quick else (128, 200)
    started = time.perf_counter()
    runs = _each_run(seeds, streams, f"{part} runs", lambda stream, seed: run(
        stream, seed=seed, known=known, heldout=heldout, torch_threads=threads))
    return {"known": known, "heldout": heldout, "runs": runs, "summary": summarise(runs),
            "seconds": round(time.perf_counter() - started, 2)}


def _prompt_arm(quick: bool, seeds: range, streams: tuple[str, ...],
                threads: int | None) -> dict[str, Any]:
    """A generation task's updates after a shift, with and without the prompt arm."""
    _offline()
    from .prompt_arms import prompt_arms, summarise_prompt_arms

    sizes = ({"known": 16, "per_update": 12, "updates": 1, "heldout": 24} if quick
             else {"known": 32, "per_update": 24, "updates": 2, "heldout": 60})
    started = time.perf_counter()
    runs = _each_run(seeds, streams, "prompt-arm runs", lambda stream, seed: prompt_arms(
        stream, seed=seed, torch_threads=threads, **sizes))
    return {**sizes, "runs": runs, "summary": summarise_prompt_arms(runs),
            "seconds": round(time.perf_counter() - started, 2)}


# -- tables ------------------------------------------------------------------------------

def _drift_table(section: dict[str, Any]) -> list[str]:
    scores = section["scores"]
    candidates = list(dict.fromkeys(s["candidate"] for s in scores))
    head = f"{'scenario':26}" + "".join(f" | {c[:34]:>34}" for c in candidates)
    sub = f"{'':26}" + f" | {'found':>7} {'delay':>7} {'extra':>6} {'FA/100k':>10}" * len(
        candidates)
    lines = [f"drift detection: {section['runs_per_scenario']} seeded streams per scenario; "
             "delay = median events from the change to the alert; FA/100k = false alarms per "
             "100,000 events before any change (stable: the whole stream)", head, sub]
    for scenario in dict.fromkeys(s["scenario"] for s in scores):
        row = f"{scenario:26}"
        for candidate in candidates:
            s = next(x for x in scores if x["scenario"] == scenario and x["candidate"] == candidate)
            found = f"{s['detected']}/{s['changes']}" if s["changes"] else "-"
            delay = "-" if s["median_delay_events"] is None else f"{s['median_delay_events']:.0f}"
            extra = f"{s['extra_alerts']}" if s["changes"] else "-"
            row += f" | {found:>7} {delay:>7} {extra:>6} {s['false_alarms_per_100k']:>10.1f}"
        lines.append(row)
    return lines


def _continual_table(section: dict[str, Any]) -> list[str]:
    sizes = section["sizes"]
    lines = [f"continual learning under live conditions, {section['settings']}: "
             f"{sizes['per_domain']} events per domain, {sizes['heldout']} held-out texts per "
             f"domain, a {sizes['bootstrap']}-example bootstrap; mean [min, max] over seeds"]
    for stream, s in section["summary"].items():
        lines.append(f"{stream}: {s['seeds']} seeds, {s['shifts']} shifts, a better version "
                     f"served within 240 labels after {s['shifts_better_within_240_labels']}, "
                     f"before the next shift (or the end) after "
                     f"{s.get('shifts_better_within_the_domain', '?')}")
        if "shifts_reachable_within_240_labels" in s:
            lines.append(f"  within reach: an update of the served version on the shift's "
                         f"first 240 labels beat it after "
                         f"{s['shifts_reachable_within_240_labels']} of {s['shifts']} shifts; "
                         f"the loop answered {s['reachable_shifts_answered']} of those")
        if s.get("candidates_within_240_labels"):
            lines.append("  candidates decided within 240 labels of a shift: " + ", ".join(
                f"{n} {why}" for why, n in s["candidates_within_240_labels"].items()))
        for key, label in (("static_shifted", "held-out, shifted domains: static"),
                           ("final_shifted", "                          driftloop"),
                           ("retrain_shifted", "                          full retraining"),
                           ("robust_static_shifted",
                            "perturbed held-out, shifted: static"),
                           ("robust_final_shifted", "                            driftloop"),
                           ("as_written_static_shifted",
                            "paraphrased held-out: static, as written"),
                           ("robust_paraphrase_static_shifted",
                            "                      static, paraphrased"),
                           ("as_written_final_shifted",
                            "                      driftloop, as written"),
                           ("robust_paraphrase_final_shifted",
                            "                      driftloop, paraphrased"),
                           ("forgetting_first", "forgetting of the first domain"),
                           ("static_live_shifted", "served live, shifted domains: static"),
                           ("live_shifted", "                              driftloop"),
                           ("promotions", "promotions"), ("false_promotions",
                                                          "false promotions (> 1 point worse)"),
                           ("requests", "training requests"),
                           ("worst_slice_change",
                            "worst slice's change per gated candidate"),
                           ("arm_retrieval", "candidates: retrieval arm"),
                           ("arm_retrieval_promoted", "            promoted"),
                           ("arm_lora", "            LoRA arm"),
                           ("arm_lora_promoted", "            promoted"),
                           ("challenge_suite_size", "challenge suite from real errors"),
                           ("alerts_far_from_shifts", "alerts far from any shift"),
                           ("examples_trained", "examples trained: driftloop"),
                           ("retrain_examples_at_requests",
                            "                  full retraining at its requests"),
                           ("examples_trained_on", "examples trained on: driftloop"),
                           ("retrain_trained_on_at_requests",
                            "                     full retraining at its requests")):
            if key in s:
                v = s[key]
                lines.append(f"  {label:45} {v['mean']:>9.3f} [{v['min']:.3f}, {v['max']:.3f}]")
    return lines


def _meta_table(section: dict[str, Any]) -> list[str]:
    return _few_shot_table(
        f"a new domain's first adapter ({section['known']} labels per known domain, each "
        f"domain left out in turn): held-out accuracy by labels of the new domain; mean "
        f"[min, max] over seeds", section,
        lambda s: "", lambda s: [(start, row, False) for start, row in s["starts"].items()])


def _synthetic_table(section: dict[str, Any]) -> list[str]:
    return _few_shot_table(
        f"data from prompts: held-out accuracy on a later domain by its labels, from a first "
        f"version of {section['known']} labels, without and with model-written variants of "
        f"those labels; mean [min, max] over seeds", section,
        lambda s: (f", {s['variants_kept']} variants kept, {100 * s['kept_share']:.0f}% of "
                   f"those asked, {s['writing_seconds']:.0f} s writing; the teacher "
                   f"({s['teacher_accuracy']['mean']:.3f} held-out) agreed with "
                   f"{100 * s['teacher_kept_share']:.0f}% of those kept"
                   + (f"; {s['probes_trained']} of {s['probes']} labels the first version "
                      "answered wrong had a variant kept (probes)" if "probes" in s else "")),
        lambda s: [*((arm, row, False) for arm, row in s["arms"].items()),
                   ("gain", s["gain"], True), ("teacher-gain", s["teacher_gain"], True),
                   *((("probes-gain", s["probes_gain"], True),) if "probes_gain" in s
                     else ())])


def _prompt_arm_table(section: dict[str, Any]) -> list[str]:
    lines = [f"prompt first, fine-tune second (generation, SmolLM2): a first version of "
             f"{section['known']} labels, then {section['updates']} updates of "
             f"{section['per_update']} labels of the next domain; exact match of the served "
             f"version on its held-out texts by labels, mean [min, max] over seeds"]
    for stream, s in section["summary"].items():
        lines.append(f"{stream} ({s['seeds']} seeds; the prompt candidate was the update's "
                     f"version in {100 * s['prompt_chosen']:.0f}% of updates, promoted in "
                     f"{100 * s['prompt_promoted']:.0f}% of those)"
                     + "".join(f" {n:>19}" for n in s["labels"]))
        for arm, row in s["served"].items():
            cost = s["seconds"][arm]
            lines.append(f"  {arm:8}" + "".join(
                f" {row[str(n)]['mean']:.3f} [{row[str(n)]['min']:.2f},{row[str(n)]['max']:.2f}]"
                for n in s["labels"])
                + f"   {s['promoted'][arm]} promoted; per update {cost['update_seconds']:.0f} s "
                  f"(prompt search {cost['prompt_seconds']:.0f} s, training "
                  f"{cost['train_seconds']:.0f} s)")
    return lines


def _few_shot_table(title: str, section: dict[str, Any], about: Callable[[Any], str],
                    rows: Callable[[Any], list[tuple[str, Any, bool]]]) -> list[str]:
    """A few-shot part's table: per stream, one line per row, mean [min, max] per number
    of labels (``signed`` rows are differences)."""
    lines = [title]
    for stream, s in section["summary"].items():
        shots = s["shots"]
        lines.append(f"{stream} ({s['seeds']} seeds{about(s)})"
                     + "".join(f" {k:>19}" for k in shots))
        for name, row, signed in rows(s):
            sign = "+" if signed else ""
            lines.append(f"  {name:12}" + "".join(
                f" {row[str(k)]['mean']:{sign}.3f} [{row[str(k)]['min']:{sign}.2f},"
                f"{row[str(k)]['max']:{sign}.2f}]" for k in shots))
    return lines


def _active_table(section: dict[str, Any]) -> list[str]:
    curves = {c["sampler"]: c for c in section["curves"]}
    labels = sorted(set.intersection(*(set(c["labels"]) for c in curves.values())))
    lines = [f"active learning on {section['stream_events']} {section['domain']} texts "
             f"({section['budget_per_batch']} labels per {section['batch_events']} events, "
             f"{section['strategy']} >= {section['threshold']}); held-out accuracy by labels "
             f"asked, {curves['random']['repeats']} orderings",
             f"{'labels':12}" + "".join(f" {k:>7}" for k in labels)]
    for name, curve in curves.items():
        acc = dict(zip(curve["labels"], curve["accuracy"], strict=True))
        lines.append(f"{name:12}" + "".join(f" {acc[k]:>7.3f}" for k in labels))
    if {"uncertainty", "random"} <= set(curves):
        u = dict(zip(curves["uncertainty"]["labels"], curves["uncertainty"]["accuracy"],
                     strict=True))
        r = dict(zip(curves["random"]["labels"], curves["random"]["accuracy"], strict=True))
        lines.append(f"{'difference':12}" + "".join(f" {u[k] - r[k]:>+7.3f}" for k in labels))
    return lines


@click.command()
@click.option("--quick", is_flag=True, help="A small version (a few minutes on 2 cores).")
@json_option
@output_option
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="First seed.")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Seeds of the continual part (default 5; 1 with --quick).")
@click.option("--stream", "streams", type=click.Choice(["vader", "questions"]), multiple=True,
              help="Streams of the continual part (repeatable; default: both).")
@click.option("--only", "only", type=click.Choice(SECTIONS), multiple=True,
              help="Run only these parts (repeatable; default: the first three).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads (default: torch's choice).")
def quality(quick: bool, as_json: bool, output: Path | None, seed: int, seeds: int | None,
            streams: tuple[str, ...], only: tuple[str, ...], threads: int | None) -> None:
    """Drift detection delay and false alarms, forgetting, label efficiency (offline)."""
    with text_to_stderr(as_json):
        report = _run(quick, output, seed, seeds, streams, only, threads)
    if as_json:
        print_json(report)


def _run(quick: bool, json_path: Path | None, seed: int, seeds: int | None,
         streams: tuple[str, ...], only: tuple[str, ...], threads: int | None) -> dict[str, Any]:
    chosen = set(only or DEFAULT_SECTIONS)
    started = time.perf_counter()
    report: dict[str, Any] = {"quick": quick, "seed": seed,
                              "load_average_at_start": list(os.getloadavg())}

    def save() -> None:
        # After every part, so a long run that stops late still leaves its figures.
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(report, indent=1), encoding="utf-8")

    def part(key: str, section: dict[str, Any], table: list[str]) -> None:
        report[key] = section
        save()
        click.echo("\n" + "\n".join(table))

    both = streams or ("vader", "questions")
    live_seeds = range(seed, seed + (seeds or (1 if quick else 5)))  # the live loop's parts
    if "drift" in chosen:
        section = _drift(quick, seed)
        part("drift", section, _drift_table(section))
    if "continual" in chosen:
        section = _continual(quick, live_seeds, both, threads)
        part("continual", section, _continual_table(section))
    if "named-domains" in chosen:
        section = _continual(quick, live_seeds, both, threads, named=True)
        part("named_domains", section, _continual_table(section))
    if "errors-suite" in chosen:
        section = _continual(quick, live_seeds, both, threads, suite=True)
        part("errors_suite", section, _continual_table(section))
    if "routing" in chosen:
        section = _routing(quick, range(seed, seed + (seeds or (1 if quick else 3))), both)
        part("routing", section, _routing_table(section))
    if "active" in chosen:
        with _embedder(seed, threads) as embedder:
            section = _active(embedder, quick, seed)
        part("active", section, _active_table(section))
    if "meta-start" in chosen:
        count = seeds or (1 if quick else 3)
        section = _few_shot("meta-start", quick, range(seed, seed + count), both, threads)
        part("meta_start", section, _meta_table(section))
    if "synthetic" in chosen:
        count = seeds or (1 if quick else 3)
        section = _few_shot("synthetic", quick, range(seed, seed + count), both, threads)
        part("synthetic", section, _synthetic_table(section))
    if "prompt-arm" in chosen:
        count = seeds or (1 if quick else 2)
        section = _prompt_arm(quick, range(seed, seed + count), both, threads)
        part("prompt_arm", section, _prompt_arm_table(section))
    report["load_average_at_end"] = list(os.getloadavg())
    report["seconds"] = round(time.perf_counter() - started, 2)
    save()
    click.echo(f"\ntotal {report['seconds']:.0f} s (load average at start "
               f"{report['load_average_at_start'][0]:.1f}, at end "
               f"{report['load_average_at_end'][0]:.1f})")
    if json_path is not None:
        click.echo(f"figures written to {json_path}")
    return report
