from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from driftloop.learner.models.retrieval import RetrievalBank
from driftloop.learner.training.arms import new_bank
from driftloop.schemas.events import TrainingExample

# Six positive texts near one axis, six negative ones near the other.
_ROWS = {**{f"good film {i}": [1.0, 0.05 * i] for i in range(6)},
         **{f"bad film {i}": [0.05 * i, 1.0] for i in range(6)}}
_NEGATIVE = {t for t in _ROWS if t.startswith("bad")}
_POSITIVE = set(_ROWS) - _NEGATIVE


class _View:
    """Embeds each text as ``_ROWS`` says; the classifier says "pos" to everything."""

    def embed(self, _tokenizer: Any, texts: list[str], **_kw: Any
              ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor([_ROWS[t] for t in texts]), torch.tensor([[0.4, 0.6]] * len(texts))


_TASK = SimpleNamespace(labels=["neg", "pos"], tokenizer=None,
                        device=SimpleNamespace(device=torch.device("cpu")), max_length=16)


def _examples(texts: set[str] | None = None) -> list[TrainingExample]:
    return [TrainingExample(input=t, target="neg" if t in _NEGATIVE else "pos")
            for t in _ROWS if texts is None or t in texts]


def _bank(examples: list[TrainingExample], **kw: Any) -> RetrievalBank:
    return new_bank(_View(), _TASK, examples, k=1, limit=16, **{"base": None, **kw})


def test_a_fitted_share_is_kept_where_neighbours_are_significantly_better() -> None:
    # The classifier is wrong on all six negative texts: judged on them, neighbours help.
    fitted = _bank(_examples(), weight=None, fit_on=_NEGATIVE)
    assert len(fitted) == 12 and fitted.weight == 0.25
    # Judged on the positive ones, where the classifier is right, they add nothing.
    assert _bank(_examples(), weight=None, fit_on=_POSITIVE).weight == 0.0
    assert _bank(_examples(), weight=None).weight == 0.0  # nothing to fit on
    # Two wins of two are not significant at 0.1 (p = 0.25): no share.
    assert _bank(_examples(), weight=None, fit_on={"bad film 0", "bad film 1"}).weight == 0.0
    assert _bank(_examples(), weight=None, fit_on={"bad film 0", "bad film 1"},
                 alpha=0.3).weight == 0.25
    assert _bank(_examples(), weight=0.5, fit_on=_POSITIVE).weight == 0.5  # a set one is kept


def test_a_grown_bank_fits_on_the_new_rows_it_keeps() -> None:
    base = RetrievalBank(torch.tensor([[0.0, 1.0]] * 3), torch.tensor([0, 0, 0]),
                         num_labels=2, k=1, weight=0.75)
    negatives = _examples(_NEGATIVE)
    grown = _bank(negatives, base=base, weight=None, fit_on=_NEGATIVE)
    assert len(grown) == 9 and grown.labels.tolist() == [0] * 9 and grown.weight == 0.25
    # Cut by the limit, texts no longer in the bank are not fitted on: three wins, p 0.125.
    cut = new_bank(_View(), _TASK, negatives, base=base, k=1, weight=None, limit=3,
                   fit_on=_NEGATIVE)
    assert len(cut) == 3 and cut.weight == 0.0
    assert new_bank(_View(), _TASK, negatives, base=base, k=1, weight=None, limit=4,
                    fit_on=_NEGATIVE).weight == 0.25  # four wins of four: p 0.0625
