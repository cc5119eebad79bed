"""Per-domain adapter lineages and cross-domain transfer.

Under a task's ``adapter_per_domain`` setting, every domain of the task has its own lineage
of versions: a request trains the lineage of the domain of its new examples, and the
registry keeps one promoted head per ``(task, domain)``. Each version records its
``domain`` and the domain's embedding centroid: the mean of the base encoder's pooled,
L2-normalised embeddings of the request's new examples (its first 64).

When a request's domain has no head yet, its first adapter starts from the head of the
existing domain whose centroid is closest (cosine distance), instead of from an untrained
adapter. The version records where it started in ``initialised_from``; its
``parent_version`` stays ``None``, because the parent is what a rollback re-promotes and
what the lineage walks back to, and the donor belongs to another domain's lineage.

Why cosine: the centroids are means of unit vectors, so their length only says how much
the domain's texts agree with each other; the direction says what they are about. Measured
on VADER with all-MiniLM-L6-v2 (64 examples per domain, three seeds), movie-review snippets
were closest to NYT editorial snippets (0.43-0.48) and farther from tweets (0.65-0.69) and
Amazon reviews (0.74-0.77): critics' prose next to editorial prose.

Why float16-rounded numbers in the event rather than a side file: the registry is a fold of
the ``model-versions`` log, and choosing a donor must not fetch every head's artifact; 384
numbers (MiniLM) cost about 3 KB of JSON, and float16's ~3 significant digits move a cosine
distance by well under 0.001, far below the gaps between domains above.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...schemas.enums import ExampleOrigin
from ...schemas.events import MAX_EMBEDDING_DIM, ModelVersion, TrainingRequest
from ..errors import CentroidError, MixedDomainError, TrainingRequestError
from ..registry.version_log import DOMAIN_METADATA_KEY, VersionLog

__all__ = [
    "CENTROID_METADATA_KEY",
    "INITIALISED_FROM_METADATA_KEY",
    "DomainStart",
    "centroid_of",
    "closest_domain_head",
    "cosine_distance",
    "embedding_centroid",
    "plan_domain_start",
    "request_domain",
    "unit_embeddings",
]

log = logging.getLogger(__name__)

CENTROID_METADATA_KEY = "domain_centroid"
# Examples a centroid is measured on (the request's first new ones). Measured on VADER: 64
# put every domain's nearest neighbour where a request's full set did, at a quarter of the
# cost of a 256-example request (a forward pass each: ~2 s on a busy CPU core).
CENTROID_EXAMPLES = 64
INITIALISED_FROM_METADATA_KEY = "initialised_from"


def request_domain(request: TrainingRequest) -> str:
    """The domain a request trains: that of its new examples, which must agree.

    Replayed examples may come from any domain (a replay-balanced batch mixes them on
    purpose, against forgetting); they are trained on and gated, but do not choose the
    lineage. A request of replayed examples only takes the domain they share.

    Examples
    --------
    >>> request = TrainingRequest(id="r", ts=0, task="t", trigger="manual", examples=[
    ...     {"input": "a", "target": "x", "domain": "movies"},
    ...     {"input": "b", "target": "y", "domain": "tweets", "origin": "replay"}])
    >>> request_domain(request)
    'movies'
    >>> mixed = TrainingRequest(id="r", ts=0, task="t", trigger="manual", examples=[
    ...     {"input": "a", "target": "x", "domain": "movies"},
    ...     {"input": "b", "target": "y", "domain": "tweets"}])
    >>> request_domain(mixed)
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.MixedDomainError: request r: the task has one adapter per ...
    """
    new = [e for e in request.examples if e.origin is ExampleOrigin.NEW] or request.examples
    domains = sorted({e.domain for e in new})
    if len(domains) != 1:
        counts = {d: sum(e.domain == d for e in new) for d in domains}
        raise MixedDomainError(
            f"request {request.id}: the task has one adapter per domain, but its new examples "
            f"come from {len(domains)} domains {counts}; send one request per domain")
    return domains[0]


def embedding_centroid(model: Any, tokenizer: Any, texts: Sequence[str], *, device: Any = "cpu",
                       max_length: int = 128, batch_size: int = 32) -> list[float]:
    """Mean of the L2-normalised, mask-averaged last hidden states of ``texts``
    (:func:`unit_embeddings`).

    ``model`` is the frozen base model (an encoder, or a causal LM whose backbone is read
    without its LM head); nothing is trained or changed. Rounded through float16.

    Examples
    --------
    >>> import torch
    >>> from transformers import BertConfig, BertModel
    >>> _ = torch.manual_seed(0)
    >>> encoder = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
    ...                                num_attention_heads=2, intermediate_size=8)).eval()
    >>> def tokenizer(texts, **_):
    ...     ids = [[1 + len(w) % 40 for w in t.split()] for t in texts]
    ...     width = max(map(len, ids))
    ...     return {"input_ids": torch.tensor([i + [0] * (width - len(i)) for i in ids]),
    ...             "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i))
    ...                                             for i in ids])}
    >>> centroid = embedding_centroid(encoder, tokenizer, ["a bb", "ccc d ee"])
    >>> len(centroid), round(cosine_distance(centroid, centroid), 6)
    (8, 0.0)
    """
    if not texts:
        raise CentroidError("no texts to take a centroid of")
    total: Any = None
    for unit in unit_embeddings(model, tokenizer, texts, device=device,
                                max_length=max_length, batch_size=batch_size):
        total = unit.sum(dim=0) if total is None else total + unit.sum(dim=0)
    mean = (total / len(texts)).cpu().numpy().astype(np.float16)
    return [float(x) for x in mean]


def unit_embeddings(model: Any, tokenizer: Any, texts: Sequence[str], *, device: Any = "cpu",
                    max_length: int = 128, batch_size: int = 32) -> Iterator[Any]:
    """Each batch's L2-normalised, mask-averaged last hidden states of ``texts``: a
    (batch, hidden) float32 tensor per ``batch_size`` texts, in order, without gradients
    (what a domain centroid is the mean of)."""
    import torch

    backbone = getattr(model, "base_model", model)
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(list(texts[start:start + batch_size]), padding=True,
                            truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            mask = encoded["attention_mask"].to(device)
            hidden = backbone(input_ids=encoded["input_ids"].to(device),
                              attention_mask=mask).last_hidden_state.float()
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            yield torch.nn.functional.normalize(pooled, dim=-1)


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """``1 - cos(a, b)``, in ``[0, 2]``; refuses vectors of other lengths or of zero length.

    >>> cosine_distance([1.0, 0.0], [0.0, 2.0]), round(cosine_distance([1, 1], [2, 2]), 9)
    (1.0, 0.0)
    >>> cosine_distance([1.0, 0.0], [1.0, 0.0, 0.0])
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.CentroidError: centroids of different dimensions (2 and 3) ...
    """
    if len(a) != len(b):
        raise CentroidError(f"centroids of different dimensions ({len(a)} and {len(b)}) "
                            "cannot be compared (another base model?)")
    u, v = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = float(np.linalg.norm(u) * np.linalg.norm(v))
    if not norms > 0:
        raise CentroidError("a zero centroid has no direction")
    return float(np.clip(1.0 - float(u @ v) / norms, 0.0, 2.0))


def centroid_of(version: ModelVersion) -> list[float] | None:
    """The centroid a version recorded, or ``None`` when absent or unusable.

    Versions trained before their task had one adapter per domain carry none.

    >>> event = ModelVersion(version_id="v", ts=0, task="t", base_model="m", sha256="0" * 64,
    ...                      adapter_uri="file:///v", size_bytes=1, status="promoted",
    ...                      metadata={"domain_centroid": [0.5, -0.25]})
    >>> centroid_of(event), centroid_of(event.model_copy(update={"metadata": {}}))
    ([0.5, -0.25], None)
    """
    raw = version.metadata.get(CENTROID_METADATA_KEY)
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_EMBEDDING_DIM:
        return None
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
               for x in raw):
        return None
    return [float(x) for x in raw]


@dataclass(frozen=True, slots=True)
class DonorChoice:
    """The closest other domain's head (if any), and the heads that could not be compared."""

    donor: ModelVersion | None
    distance: float | None
    distances: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    heads: tuple[ModelVersion, ...] = ()
    """Every comparable head of another domain, by domain name."""
    merged: bool = False
    """The start is the average of :attr:`heads` (``domain_start = "merge"``), not the donor."""


def closest_domain_head(versions: VersionLog, task: str, domain: str,
                        centroid: Sequence[float], *, base_model: str) -> DonorChoice:
    """The promoted head of another domain of ``task`` whose centroid is closest.

    Only heads over the same base model can be continued. A head with no centroid (an old
    version) or one of another dimension is skipped and named in ``skipped`` with the
    reason, rather than failing the new domain's request over another domain's record.
    Ties go to the domain whose name sorts first (deterministic).

    Examples
    --------
    >>> def head(v, domain, centroid):
    ...     return ModelVersion(version_id=v, ts=0, task="t", base_model="m", sha256="0" * 64,
    ...                         adapter_uri="file:///" + v, size_bytes=1, status="promoted",
    ...                         metadata={"domain": domain, "domain_centroid": centroid})
    >>> log = VersionLog().extend([head("a1", "tweets", [1.0, 0.0]),
    ...                            head("b1", "nyt", [0.6, 0.8]), head("c1", "old", None)])
    >>> choice = closest_domain_head(log, "t", "movies", [0.5, 0.9], base_model="m")
    >>> choice.donor.version_id, round(choice.distance, 3), choice.skipped
    ('b1', 0.009, {'c1': 'no domain centroid recorded'})
    """
    best: tuple[float, str] | None = None
    distances: dict[str, float] = {}
    skipped: dict[str, str] = {}
    comparable: list[ModelVersion] = []
    heads = versions.domain_heads(task)
    for other in sorted(heads):
        head = heads[other]
        if other == domain:
            continue
        if head.base_model != base_model:
            skipped[head.version_id] = f"base model {head.base_model}, not {base_model}"
            continue
        theirs = centroid_of(head)
        if theirs is None:
            skipped[head.version_id] = "no domain centroid recorded"
            continue
        try:
            distance = cosine_distance(centroid, theirs)
        except CentroidError as exc:
            skipped[head.version_id] = str(exc)
            continue
        distances[other] = round(distance, 6)
        comparable.append(head)
        if best is None or distance < best[0]:
            best = (distance, other)
    if skipped:
        log.warning("task %s, new domain %s: heads not compared: %s", task, domain, skipped)
    if best is None:
        return DonorChoice(None, None, distances, skipped)
    return DonorChoice(heads[best[1]], best[0], distances, skipped, tuple(comparable))


@dataclass(frozen=True, slots=True)
class DomainStart:
    """Where a per-domain request starts: its lineage's head, another domain's, or nothing.

    ``parent`` is the lineage parent (``ModelVersion.parent_version``); ``start`` is the
    version whose adapter training continues from (the parent, or the donor of a transfer).
    """

    domain: str
    centroid: list[float]
    parent: ModelVersion | None
    choice: DonorChoice | None = None
    seconds: float = 0.0

    @property
    def start(self) -> ModelVersion | None:
        """The one version training continues from (None: from scratch or an average)."""
        if self.parent is not None or self.choice is None:
            return self.parent
        return None if self.choice.merged else self.choice.donor

    def nearest_only(self) -> DomainStart:
        """This start with the closest head alone instead of an average (heads that cannot
        be averaged)."""
        if self.choice is None:
            return self
        return replace(self, choice=replace(self.choice, merged=False))

    @property
    def merged_from(self) -> tuple[ModelVersion, ...]:
        """The heads whose average the adapter starts from (empty: one donor or none)."""
        if self.parent is not None or self.choice is None or not self.choice.merged:
            return ()
        return self.choice.heads

    def metadata(self) -> dict[str, Any]:
        """What the version event records: domain, centroid and, for a first version, its
        ``initialised_from`` (``version_id`` and ``domain`` ``None`` when from scratch or
        from an average; ``method`` says which, ``merged_from`` names the heads averaged)."""
        data: dict[str, Any] = {DOMAIN_METADATA_KEY: self.domain,
                                CENTROID_METADATA_KEY: self.centroid}
        if self.choice is not None:
            donor = self.choice.donor
            merged = self.merged_from
            if merged:
                donor = None
            data[INITIALISED_FROM_METADATA_KEY] = {
                "method": "merge" if merged else "nearest" if donor else "scratch",
                "merged_from": [{"version_id": h.version_id,
                                 "domain": h.metadata.get(DOMAIN_METADATA_KEY)}
                                for h in merged],
                "version_id": donor.version_id if donor else None,
                "domain": donor.metadata.get(DOMAIN_METADATA_KEY) if donor else None,
                "distance": (round(self.choice.distance, 6)
                             if self.choice.distance is not None and donor else None),
                "metric": "cosine",
                "distances": self.choice.distances,
                "skipped": self.choice.skipped,
            }
        return data


def plan_domain_start(request: TrainingRequest, versions: VersionLog, *, domain: str,
                      parent: ModelVersion | None, base: Any, transfer: bool, device: Any,
                      max_length: int, merge: bool = False) -> DomainStart:
    """Measure the request's centroid and, for a domain without a head, choose its donor.

    ``parent`` is what the request names or the domain's head (``None``: a new domain).
    A parent the request names must belong to its domain, or to no domain (a version from
    before the task had one adapter per domain, whose lineage the domain then continues).
    With ``transfer`` off, a new domain starts from scratch, recorded as such; with
    ``merge``, from the average of every other domain's head when there are two or more
    (:mod:`.domain_merge`), else from the closest.
    """
    theirs = parent.metadata.get(DOMAIN_METADATA_KEY) if parent is not None else None
    if parent is not None and isinstance(theirs, str) and theirs != domain:
        raise TrainingRequestError(
            f"request {request.id}: parent {parent.version_id} belongs to domain {theirs!r}, "
            f"not {domain!r}; leave parent_version out to continue the domain's own head")
    started = time.perf_counter()
    new = [e for e in request.examples if e.origin is ExampleOrigin.NEW] or request.examples
    texts = [e.input for e in new[:CENTROID_EXAMPLES]]
    centroid = embedding_centroid(base.model, base.tokenizer, texts,
                                  device=device, max_length=max_length)
    choice = None
    if parent is None:
        choice = (closest_domain_head(versions, request.task, domain, centroid,
                                      base_model=base.model_id)
                  if transfer else DonorChoice(None, None, {}, {}))
        if merge and len(choice.heads) >= 2:
            choice = replace(choice, merged=True)
            log.info("request %s: new domain %s of task %s starts from the average of %s",
                     request.id, domain, request.task,
                     ", ".join(h.version_id for h in choice.heads))
        elif choice.donor is not None:
            log.info("request %s: new domain %s of task %s starts from %s (domain %s, cosine "
                     "distance %.3f)", request.id, domain, request.task, choice.donor.version_id,
                     choice.donor.metadata.get(DOMAIN_METADATA_KEY), choice.distance)
        else:
            log.info("request %s: new domain %s of task %s starts from scratch", request.id,
                     domain, request.task)
    return DomainStart(domain, centroid, parent, choice, time.perf_counter() - started)
