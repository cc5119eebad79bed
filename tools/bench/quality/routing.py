"""``bench quality --only routing``: can one text's vector tell which domain it comes from?

A task with one adapter per domain serves a request that names its domain with that domain's
head. Traffic that does not name it could be routed per text to the head whose domain
centroid is nearest. This measures the best case of that routing: every domain's centroid
known (the mean of its first 64 stream texts, as the learner's ``domain_centroid``), each
held-out text sent to the nearest centroid by cosine, for the two version-free vectors a
replica has of a text:

- ``encoder``: the base encoder's mask-averaged, L2-normalised last hidden state (what the
  learner's centroids are made of; a forward pass);
- ``token_means``: the mean of the base model's input-token embeddings (what an
  interaction's ``input_embedding`` carries; a table lookup).

Beside the accuracy, how far texts lie from their own domain's centroid (90th percentile)
against the nearest other domain's (10th percentile): a new domain could be told apart
by a distance threshold only where the first is below the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ....learner.models.resident import ResidentModels, default_base_model
from ....learner.models.token_means import input_embeddings
from ....learner.training.transfer import unit_embeddings
from ....schemas.enums import TaskKind
from .live_streams import STREAMS

__all__ = ["CENTROID_TEXTS", "routing_accuracy", "summarise_routing"]

CENTROID_TEXTS = 64  # the learner's CENTROID_EXAMPLES
VECTORS = ("encoder", "token_means")
MAX_LENGTH = 128  # the learner's default max_length


def routing_accuracy(stream_name: str, *, seed: int, heldout: int = 200,
                     models: ResidentModels | None = None) -> dict[str, Any]:
    """Per vector kind: the share of each domain's held-out texts whose nearest centroid is
    their own domain's, and the two distance percentiles."""
    import numpy as np

    stream = STREAMS[stream_name](per_domain=400, heldout=heldout, bootstrap=128, seed=seed)
    base = (models or ResidentModels()).get(default_base_model(TaskKind.CLASSIFICATION),
                                            TaskKind.CLASSIFICATION)
    domains = [d for d, _, _ in stream.data.boundaries()]
    out: dict[str, Any] = {"stream": stream_name, "seed": seed}
    for kind in VECTORS:
        centroids = []
        for domain in domains:
            texts = [i.text for i in stream.data.stream if i.domain == domain]
            mean = _vectors(base, texts[:CENTROID_TEXTS], kind).mean(axis=0)
            centroids.append(mean / np.linalg.norm(mean))
        table = np.stack(centroids)
        accuracy, own, other = {}, [], []
        for j, domain in enumerate(domains):
            similarity = _vectors(base, [i.text for i in stream.data.heldout[domain]],
                                  kind) @ table.T
            accuracy[domain] = round(float((similarity.argmax(axis=1) == j).mean()), 4)
            own += list(1 - similarity[:, j])
            other += list(1 - np.delete(similarity, j, axis=1).max(axis=1))
        out[kind] = {"accuracy": accuracy,
                     "mean_accuracy": round(sum(accuracy.values()) / len(accuracy), 4),
                     "own_distance_p90": round(float(np.percentile(own, 90)), 4),
                     "other_distance_p10": round(float(np.percentile(other, 10)), 4)}
    return out


def _vectors(base: Any, texts: Sequence[str], kind: str, *, batch: int = 64) -> Any:
    """An (n, dim) array of the texts' unit vectors of ``kind``: the learner's centroid
    pooling (:func:`~driftloop.learner.training.transfer.unit_embeddings`) or an
    interaction's input embedding (:func:`~driftloop.learner.models.token_means.input_embeddings`)
    normalised."""
    import numpy as np
    import torch

    if kind == "encoder":
        return torch.cat(list(unit_embeddings(base.model, base.tokenizer, texts,
                                              max_length=MAX_LENGTH, batch_size=batch))).numpy()
    rows = []
    for start in range(0, len(texts), batch):
        means = torch.tensor(input_embeddings(base.model, base.tokenizer,
                                              texts[start:start + batch], max_length=MAX_LENGTH))
        rows.append(torch.nn.functional.normalize(means.float(), dim=-1).numpy())
    return np.concatenate(rows)


def summarise_routing(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per stream and vector kind: mean [min, max] over seeds of the mean accuracy, and the
    mean distance percentiles.

    >>> def run(seed, accuracy):
    ...     kind = {"mean_accuracy": accuracy, "own_distance_p90": 0.8,
    ...             "other_distance_p10": 0.6}
    ...     return {"stream": "vader", "seed": seed, "encoder": kind, "token_means": kind}
    >>> summarise_routing([run(0, 0.84), run(1, 0.86)])["vader"]["encoder"]["accuracy"]
    {'mean': 0.85, 'min': 0.84, 'max': 0.86}
    """
    out: dict[str, Any] = {}
    for stream in sorted({r["stream"] for r in runs}):
        mine = [r for r in runs if r["stream"] == stream]
        out[stream] = {}
        for kind in VECTORS:
            accuracy = [r[kind]["mean_accuracy"] for r in mine]
            out[stream][kind] = {
                "seeds": len(mine),
                "accuracy": {"mean": round(sum(accuracy) / len(accuracy), 4),
                             "min": min(accuracy), "max": max(accuracy)},
                "own_distance_p90": round(sum(r[kind]["own_distance_p90"] for r in mine)
                                          / len(mine), 4),
                "other_distance_p10": round(sum(r[kind]["other_distance_p10"] for r in mine)
                                            / len(mine), 4)}
    return out
