"""Per-slice accuracy of parent and candidate on the gate's held-out texts (bias tracking).

A candidate can raise the mean and lose a slice: a domain the new regime crowds out, or
short texts when the new traffic is long. The gate already has each version's answer on
every held-out text (recent and older, :mod:`.evidence`); grouping them by slice costs
nothing. Slices are the text's domain, its length bucket (by words) and any slice its
producer named in the interaction's metadata under the task's ``slice_keys`` (language,
customer tier); a slice with fewer than ``min_examples`` texts is not reported (its accuracy
moves by noise).

Metrics: ``slice.<name>`` is the version's accuracy on the slice and
``slice.<name>_count`` its size, for parent (``metrics_before``) and candidate
(``metrics_after``) alike; :class:`~.rule.GateRule` names the worst slice in its reasons and,
with ``slice_tolerance``, refuses a candidate whose worst slice fell by more.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...schemas.events import TrainingExample

__all__ = ["LENGTH_BUCKETS", "slice_metrics", "slices_of"]

LENGTH_BUCKETS: tuple[tuple[int, str], ...] = ((10, "short"), (40, "medium"))
"""Upper bounds in words of the length buckets; longer texts are ``long``."""


def slices_of(example: TrainingExample) -> tuple[str, ...]:
    """The slices a held-out text belongs to: its domain, its length bucket and the slices
    its producer named (the task's ``slice_keys``, carried on the example by the worker).

    >>> slices_of(TrainingExample(input="so good", target="positive", domain="tweets"))
    ('domain=tweets', 'length=short')
    >>> slices_of(TrainingExample(input="gut", target="positive", slices={"language": "de"}))
    ('domain=default', 'length=short', 'language=de')
    """
    words = len(example.input.split())
    length = next((name for bound, name in LENGTH_BUCKETS if words <= bound), "long")
    named = tuple(f"{key}={value}" for key, value in sorted(example.slices.items())
                  if key not in ("domain", "length"))
    return (f"domain={example.domain}", f"length={length}", *named)


def slice_metrics(examples: Sequence[TrainingExample], hits: Sequence[bool], *,
                  min_examples: int = 20) -> dict[str, float]:
    """Accuracy and size of every slice with at least ``min_examples`` of ``examples``
    (``hits``: one version's answers on them, in order).

    >>> held = [TrainingExample(input="ok", target="a", domain=d) for d in "xxxy"]
    >>> slice_metrics(held, [True, True, False, True], min_examples=2)
    ... # doctest: +NORMALIZE_WHITESPACE
    {'slice.domain=x': 0.6666666666666666, 'slice.domain=x_count': 3.0,
     'slice.length=short': 0.75, 'slice.length=short_count': 4.0}
    """
    if len(examples) != len(hits):
        raise ValueError(f"{len(hits)} answers for {len(examples)} examples")
    groups: dict[str, list[bool]] = {}
    for example, hit in zip(examples, hits, strict=True):
        for name in slices_of(example):
            groups.setdefault(name, []).append(bool(hit))
    metrics: dict[str, float] = {}
    for name, group in sorted(groups.items()):
        if len(group) >= min_examples:
            metrics[f"slice.{name}"] = sum(group) / len(group)
            metrics[f"slice.{name}_count"] = float(len(group))
    return metrics
