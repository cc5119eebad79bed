"""``driftloop bench gpu-check``: what a machine with CUDA runs to check the learner's GPU path.

Three parts, in a few minutes:

1. the learner's tests marked ``cuda`` (from a source checkout; skipped without CUDA);
2. throughput: the learner's training loop against a plain PEFT training loop (the same
   examples, model, LoRA, batch size and steps, no early stop), per task kind, as training
   tokens per second and their ratio;
3. mixed precision: one continued update under autocast (bf16, or fp16 where the GPU has no
   bf16) and the same update in full precision must reach the same gate decision, with
   held-out scores within 0.02.

Without CUDA it runs parts 2 and 3 on the CPU (bf16 autocast exists there too) and says so:
the figures are then a CPU's, the decision check is still a real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ...schemas.enums import TaskKind
from ...schemas.events import TrainingRequest
from ...schemas.settings import Settings
from ..cli import settings_from
from ..options import bootstrap_servers_option, json_option, print_json, text_to_stderr

__all__ = ["AutocastAgreement", "autocast_agreement", "gpu_check", "plain_peft_tokens_per_s"]

SCORE_TOLERANCE = 0.02


@dataclass(frozen=True, slots=True)
class AutocastAgreement:
    """One continued update in full precision and under autocast."""

    dtype: str
    full_promoted: bool
    autocast_promoted: bool
    full_score: float
    autocast_score: float

    @property
    def agrees(self) -> bool:
        """The same decision, and held-out scores within :data:`SCORE_TOLERANCE`.

        >>> AutocastAgreement("bfloat16", True, True, 0.80, 0.79).agrees
        True
        >>> AutocastAgreement("bfloat16", True, False, 0.80, 0.80).agrees
        False
        """
        return (self.full_promoted == self.autocast_promoted
                and abs(self.full_score - self.autocast_score) <= SCORE_TOLERANCE)


def autocast_agreement(settings: Settings, *, n: int = 96) -> AutocastAgreement:
    """Train a first version in full precision, then one continued update from it twice: in
    full precision and as the learner runs (under autocast; on CUDA with base weights in
    ``learner.base_dtype``, bf16 by default); compare the two gate decisions."""
    import torch

    from ...learner.models.device import ComputeDevice, select_device
    from ...learner.models.precision import cuda_half_dtype
    from ...learner.models.resident import ResidentModels
    from ...learner.registry.version_log import VersionLog
    from ...learner.training.update import IncrementalUpdater
    from .trainer_baseline import bench_request

    device = select_device(settings.learner.device, settings.learner.torch_threads).device
    dtype = torch.bfloat16 if device.type == "cpu" else cuda_half_dtype()
    models = ResidentModels(capacity=1)
    outcomes = {}
    with tempfile.TemporaryDirectory(prefix="driftloop-gpu-check-") as tmp:
        # No gate pool: the second update must not be gated on the first's held-out texts.
        first_store = settings.model_copy(update={
            "artifacts": settings.artifacts.model_copy(update={"store_url": str(Path(tmp))}),
            "learner": settings.learner.model_copy(update={"gate_pool_size": 0})})
        first = IncrementalUpdater(first_store, models=models,
                                   device=ComputeDevice(device, None))
        parent = first.update(bench_request(n, request_id="gpu-check-first"), VersionLog()).event
        versions = VersionLog().extend([parent])
        own = ResidentModels.for_learner(settings.learner) if device.type == "cuda" else models
        for name, autocast, resident in (("full", None, models), ("autocast", dtype, own)):
            updater = IncrementalUpdater(first_store, models=resident, store=first.store,
                                         device=ComputeDevice(device, autocast))
            request = bench_request(n, domain="movies", request_id=f"gpu-check-{name}", seed=1)
            result = updater.update(request, versions)
            outcomes[name] = (result.decision.promote,
                              _holdout_score(result.event.metrics_after))
    return AutocastAgreement(str(dtype).removeprefix("torch."), outcomes["full"][0],
                             outcomes["autocast"][0], outcomes["full"][1],
                             outcomes["autocast"][1])


def _holdout_score(metrics: dict[str, float]) -> float:
    """The candidate's held-out score from a version's metrics.

    >>> _holdout_score({"holdout_score": 0.8, "holdout_loss": 0.4})
    0.8
    """
    return float(metrics.get("holdout_score", 0.0))


def plain_peft_tokens_per_s(settings: Settings, request: TrainingRequest, steps: int) -> float:
    """Training tokens/s of a plain PEFT loop: ``get_peft_model``, AdamW, ``steps`` batches
    of the request's training part, on the learner's device and autocast."""
    import torch

    from ...learner.gate.split import split_request
    from ...learner.models.device import select_device
    from .trainer_baseline import job_for

    cfg = settings.learner
    device = select_device(cfg.device, cfg.torch_threads)
    split = split_request(request, holdout_fraction=cfg.holdout_fraction,
                          validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    (model, config), rows, collate = job_for(settings, request)(settings, request, split.train)
    from peft import get_peft_model

    torch.manual_seed(cfg.seed)
    model = get_peft_model(model, config).to(device.device)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    batches = [collate(rows[i:i + cfg.batch_size]) for i in range(0, len(rows), cfg.batch_size)]
    tokens = 0
    _sync(device.device)
    started = time.perf_counter()
    for step in range(steps):
        batch = {k: v.to(device.device) for k, v in batches[step % len(batches)].items()}
        with device.autocast():
            out = model(**batch)
        loss = out["loss"] if isinstance(out, dict) else out.loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    _sync(device.device)
    return tokens / (time.perf_counter() - started)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _driftloop_tokens_per_s(settings: Settings, request: TrainingRequest) -> tuple[float, int]:
    """Training tokens/s of the learner's own update (its training phase, early-stop checks
    included), and its steps; tokens counted as the plain loop counts them (the rendered
    rows of the same examples)."""
    from ...learner.registry.version_log import VersionLog
    from ...learner.training.update import IncrementalUpdater
    from .trainer_baseline import job_for

    updater = IncrementalUpdater(settings)
    updater.update(request.model_copy(update={"id": f"{request.id}-warm"}), VersionLog())
    result = updater.update(request, VersionLog())
    _, rows, _ = job_for(settings, request)(settings, request, result.split.train)
    mean_tokens = sum(len(r["input_ids"]) for r in rows) / max(1, len(rows))
    report = result.train_report
    return report.examples_seen * mean_tokens / report.seconds, report.steps


@click.command("gpu-check")
@click.option("--examples", "n", type=click.IntRange(min=16), default=128, show_default=True,
              help="Examples per request (classification; generation uses a quarter).")
@click.option("--tests/--no-tests", default=True, show_default=True,
              help="Run the learner's tests marked cuda first (needs a source checkout).")
@json_option
@bootstrap_servers_option()
@click.pass_context
def gpu_check(ctx: click.Context, n: int, tests: bool, as_json: bool) -> None:
    """The learner's GPU path: cuda tests, tokens/s against plain PEFT, autocast decisions."""
    with text_to_stderr(as_json):
        document = _run(ctx, n, tests)
    if as_json:
        print_json(document)
    if not document["ok"]:
        raise SystemExit(1)


def _run(ctx: click.Context, n: int, tests: bool) -> dict[str, Any]:
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from .trainer_baseline import bench_request

    cuda = torch.cuda.is_available()
    click.echo(f"CUDA: {torch.cuda.get_device_name(0) if cuda else 'none (CPU figures)'}")
    document: dict[str, Any] = {"cuda": cuda, "ok": True}
    root = Path(__file__).resolve().parents[2] / "tests" / "learner"
    if tests and cuda and root.is_dir():
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", str(root)],
                             check=False)
        document["cuda_tests_exit_status"] = run.returncode
        document["ok"] &= run.returncode == 0
        click.echo(f"cuda tests: exit status {run.returncode}")
    elif tests:
        click.echo("cuda tests: skipped (" + ("no CUDA" if not cuda else "no source checkout")
                   + ")")
    base = settings_from(ctx)
    with tempfile.TemporaryDirectory(prefix="driftloop-gpu-check-") as store:
        settings = base.model_copy(update={
            "artifacts": base.artifacts.model_copy(update={"store_url": store})})
        rows = []
        for kind, count in ((TaskKind.CLASSIFICATION, n), (TaskKind.GENERATION, max(16, n // 4))):
            request = bench_request(count, kind=kind, request_id=f"gpu-check-{kind.value}",
                                    seed=2)
            ours, steps = _driftloop_tokens_per_s(settings, request)
            plain = plain_peft_tokens_per_s(settings, request, steps)
            rows.append({"kind": kind.value, "driftloop_tokens_per_s": round(ours, 1),
                         "plain_peft_tokens_per_s": round(plain, 1),
                         "ratio": round(ours / plain, 3), "steps": steps})
            click.echo(f"{kind.value:15} driftloop {ours:10.1f} tokens/s, plain PEFT loop "
                       f"{plain:10.1f} tokens/s: ratio {ours / plain:.2f} (goal >= 1.0)")
        document["throughput"] = rows
        agreement = autocast_agreement(settings)
        document["autocast"] = {"dtype": agreement.dtype, "agrees": agreement.agrees,
                                "full": [agreement.full_promoted, agreement.full_score],
                                "autocast": [agreement.autocast_promoted,
                                             agreement.autocast_score]}
        document["ok"] &= agreement.agrees
        click.echo(f"autocast {agreement.dtype}: promoted {agreement.autocast_promoted}, "
                   f"held-out {agreement.autocast_score:.3f}; full precision: promoted "
                   f"{agreement.full_promoted}, held-out {agreement.full_score:.3f}: "
                   + ("the same decision" if agreement.agrees else "DIFFERENT"))
    return document
