"""The demo's verdict: driftloop's versions against the static model, on held-out and live text.

Adapters are loaded the way the service loads them (fetched from the store with their sha256
verified, then :class:`~driftloop.learner.serving.model_host.ModelHost`), so the figures are
those of the published bytes. Three comparisons:

* held-out accuracy per domain of the static model (the bootstrap version) and of the final
  promoted version;
* forgetting: the best held-out accuracy the first domain had over all promoted versions,
  against the final version's;
* live: per domain, the share of the stream the service answered correctly (whatever version
  it served at the time) against the static model's answers to the same texts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...schemas import ModelVersion
from ...schemas.settings import Settings
from .shifts import ShiftResult
from .traffic import ServedPrediction, StreamItem

__all__ = ["DomainResult", "Verdict", "VersionScorer", "accuracy", "render_table"]


def accuracy(predictions: Sequence[str], items: Sequence[StreamItem]) -> float:
    """Share of ``predictions`` equal to the items' labels (0.0 for none).

    >>> accuracy(["positive", "negative"], [StreamItem("a", "t", "x", "positive")] * 2)
    0.5
    """
    if not items:
        return 0.0
    return sum(p == i.label for p, i in zip(predictions, items, strict=True)) / len(items)


class VersionScorer:
    """Load published versions in this process and classify texts with them, off the loop.

    Every job runs on one background thread (torch state is not shared between threads), so
    the demo can score the static model while the stream is still running. Results are
    memoised per version and text set.
    """

    def __init__(self, settings: Settings, task: str, *, torch_threads: int = 1) -> None:
        self.settings = settings
        self.task = task
        self.torch_threads = torch_threads
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftloop-score")
        self._dir = Path(tempfile.mkdtemp(prefix="driftloop-demo-eval-"))
        self._jobs: dict[tuple[str, tuple[str, ...]], Future[list[str]]] = {}
        self._loaded: set[str] = set()
        self._host: Any = None
        self._store: Any = None

    def _setup(self) -> None:
        import torch
        import transformers

        from ...learner.models.resident import ResidentModels
        from ...learner.registry.store import ArtifactStore
        from ...learner.serving.model_host import ModelHost

        torch.set_num_threads(self.torch_threads)
        transformers.utils.logging.disable_progress_bar()
        # the demo's terminal shows progress; library warnings about tokenizer options
        # (SmolLM2's GGUF tokenizer has a few) go nowhere useful there
        transformers.utils.logging.set_verbosity_error()
        artifacts = self.settings.artifacts
        self._store = ArtifactStore(artifacts.store_url, allowed_schemes=artifacts.allowed_schemes,
                                    max_bytes=artifacts.max_artifact_bytes)
        self._host = ModelHost(ResidentModels(capacity=1),
                               max_length=self.settings.learner.max_length)

    def _predict(self, version: ModelVersion, texts: list[str], batch: int) -> list[str]:
        if self._host is None:
            self._setup()
        if version.version_id not in self._loaded:
            # fetch re-hashes the files: what is scored is exactly what was published
            folder = self._store.fetch(version.adapter_uri, version.sha256, self._dir)
            self._host.load(self.task, version.version_id, folder, version.base_model)
            self._loaded.add(version.version_id)
        labels: list[str] = []
        for start in range(0, len(texts), batch):
            chunk = texts[start:start + batch]
            labels += [p.label for p in self._host.predict(self.task, version.version_id, chunk)]
        return labels

    def submit(self, version: ModelVersion, items: Sequence[StreamItem],
               batch: int = 32) -> Future[list[str]]:
        """Queue the labels ``version`` gives ``items`` (the same job is queued once)."""
        key = (version.version_id, tuple(item.id for item in items))
        job = self._jobs.get(key)
        if job is None:
            job = self._jobs[key] = self._thread.submit(
                self._predict, version, [item.text for item in items], batch)
        return job

    def predict(self, version: ModelVersion, items: Sequence[StreamItem]) -> list[str]:
        return self.submit(version, items).result()

    def score(self, version: ModelVersion, items: Sequence[StreamItem]) -> float:
        return accuracy(self.predict(version, items), items)

    def use_threads(self, count: int) -> None:
        """Give later jobs ``count`` torch threads (e.g. once the children have stopped)."""
        import torch

        self._thread.submit(torch.set_num_threads, count).result()

    def close(self) -> None:
        """Drop queued jobs, wait for the running one, release the model (idempotent)."""
        import shutil

        self._thread.shutdown(wait=True, cancel_futures=True)
        if self._host is not None:
            self._host.close()
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class DomainResult:
    """One domain's figures (accuracies in [0, 1])."""

    domain: str
    heldout_static: float
    heldout_final: float
    live_served: float
    live_static: float
    live_events: int


@dataclass(slots=True)
class Verdict:
    """Everything the demo concludes; ``line()`` is the one-line summary."""

    domains: list[DomainResult]
    first_domain_best: float
    first_domain_best_version: str
    static_version: str
    final_version: str
    promoted: int
    rejected: int
    alerts: int
    shifted: list[str] = field(default_factory=list)
    shifts: list[ShiftResult] = field(default_factory=list)
    at_first_shift: float | None = None
    """Held-out accuracy on the shifted domains of the version serving at the first shift:
    what updates on the first domain alone gained."""

    def _shifted(self, attr: str, weighted: bool) -> float:
        rows = [d for d in self.domains if d.domain in self.shifted]
        weights = [d.live_events if weighted else 1 for d in rows]
        total = sum(weights)
        return sum(getattr(d, attr) * w for d, w in zip(rows, weights, strict=True)) / total \
            if total else 0.0

    @property
    def shifted_final(self) -> float:
        """Held-out accuracy of the final version on the domains after the first (mean)."""
        return self._shifted("heldout_final", weighted=False)

    @property
    def shifted_static(self) -> float:
        """Held-out accuracy of the static model on the same domains."""
        return self._shifted("heldout_static", weighted=False)

    @property
    def live_served(self) -> float:
        """Share of the shifted live traffic the served versions answered correctly."""
        return self._shifted("live_served", weighted=True)

    @property
    def live_static(self) -> float:
        """The static model's accuracy on the same live texts."""
        return self._shifted("live_static", weighted=True)

    @property
    def forgetting(self) -> float:
        return self.first_domain_best - self.domains[0].heldout_final

    def line(self) -> str:
        """The verdict.

        >>> rows = [DomainResult("tweets", .8, .79, .8, .8, 10),
        ...         DomainResult("movies", .6, .7, .68, .6, 10)]
        >>> shift = ShiftResult("movies", "v2", .64, "v3", .7, 120)
        >>> print(Verdict(rows, .82, "v2", "v1", "v3", 3, 1, 2, ["movies"], [shift],
        ...               .64).line())  # doctest: +NORMALIZE_WHITESPACE
        verdict: driftloop 0.70 vs static 0.60 on shifted domains (movies; held-out), +0.04
        from updates before the first shift and +0.06 after it; served live 0.68 vs static
        0.60; tweets best 0.82 now 0.79 (forgetting 0.03); 3 updates promoted, 1 rejected, 2
        drift alerts; a better version served after 1 of 1 shift
        """
        first = self.domains[0]
        split = "" if self.at_first_shift is None else (
            f", {self.at_first_shift - self.shifted_static:+.2f} from updates before the first "
            f"shift and {self.shifted_final - self.at_first_shift:+.2f} after it")
        answered = sum(s.better is not None for s in self.shifts)
        return (f"verdict: driftloop {self.shifted_final:.2f} vs static {self.shifted_static:.2f}"
                f" on shifted domains ({', '.join(self.shifted)}; held-out){split}; served live "
                f"{self.live_served:.2f} vs static {self.live_static:.2f}; {first.domain} best "
                f"{self.first_domain_best:.2f} now {first.heldout_final:.2f} (forgetting "
                f"{self.forgetting:.2f}); {_count(self.promoted, 'update')} promoted, "
                f"{self.rejected} rejected, {_count(self.alerts, 'drift alert')}"
                + (f"; a better version served after {answered} of "
                   f"{_count(len(self.shifts), 'shift')}" if self.shifts else ""))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def live_results(served: Sequence[ServedPrediction], static_answers: Sequence[str],
                 domain: str) -> tuple[float, float, int]:
    """``(served accuracy, static accuracy, events)`` of one domain's live traffic."""
    pairs = [(s, a) for s, a in zip(served, static_answers, strict=True) if s.item.domain == domain]
    if not pairs:
        return 0.0, 0.0, 0
    served_ok = sum(s.correct for s, _ in pairs) / len(pairs)
    static_ok = sum(a == s.item.label for s, a in pairs) / len(pairs)
    return served_ok, static_ok, len(pairs)


def render_table(verdict: Verdict) -> str:
    """The per-domain table printed above the verdict line.

    >>> rows = [DomainResult("tweets", .8, .79, .8, .8, 10)]
    >>> print(render_table(Verdict(rows, .82, "v2", "v1", "v1", 1, 0, 0)))
    domain     held-out static  held-out final  live served  live static  live events
    tweets               0.80            0.79         0.80         0.80           10
    """
    lines = [f"{'domain':10} {'held-out static':>15} {'held-out final':>15} {'live served':>12} "
             f"{'live static':>12} {'live events':>12}"]
    for d in verdict.domains:
        lines.append(f"{d.domain:10} {d.heldout_static:15.2f} {d.heldout_final:15.2f} "
                     f"{d.live_served:12.2f} {d.live_static:12.2f} {d.live_events:12d}")
    return "\n".join(lines)
