from __future__ import annotations

from pathlib import Path

import pytest
import torch

from driftloop.learner.errors import AdapterFormatError
from driftloop.learner.models.retrieval import BANK_FILE, RetrievalBank, RetrievalClassifier


def _bank(**kw: object) -> RetrievalBank:
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    return RetrievalBank(embeddings, torch.tensor([0, 0, 1, 1]), num_labels=2, **kw)  # type: ignore[arg-type]


def test_neighbours_vote_by_similarity_and_mix_with_the_classifier() -> None:
    bank = _bank(k=2, weight=0.5)
    votes = bank.votes(torch.tensor([[1.0, 0.05], [0.05, 1.0]]))
    assert torch.allclose(votes.sum(dim=-1), torch.ones(2))
    assert votes[0, 0] > 0.99 and votes[1, 1] > 0.99
    mixed = bank.mix(torch.tensor([[0.2, 0.8]]), torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(mixed, torch.tensor([[0.6, 0.4]]), atol=1e-3)
    assert torch.equal(_bank(weight=0.0).mix(torch.tensor([[0.2, 0.8]]),
                                             torch.tensor([[1.0, 0.0]])),
                       torch.tensor([[0.2, 0.8]]))


def test_an_empty_bank_votes_uniformly_and_a_bank_keeps_its_newest() -> None:
    empty = RetrievalBank(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), num_labels=2)
    assert empty.votes(torch.ones(1, 2)).tolist() == [[0.5, 0.5]]
    grown = _bank().extend(torch.tensor([[5.0, 5.0]]), torch.tensor([1]), limit=3)
    assert len(grown) == 3 and grown.labels.tolist() == [1, 1, 1]
    assert torch.allclose(grown.embeddings.norm(dim=-1), torch.ones(3))


def test_a_bank_round_trips_through_its_file(tmp_path: Path) -> None:
    bank = _bank(k=3, weight=0.25)
    bank.save(tmp_path)
    loaded = RetrievalBank.load(tmp_path, bank.settings(), 2)
    assert loaded is not None and loaded.settings() == bank.settings()
    assert torch.allclose(loaded.embeddings, bank.embeddings, atol=1e-6)  # as scored
    assert torch.equal(loaded.labels, bank.labels)
    assert RetrievalBank.load(tmp_path / "none", None, 2) is None


@pytest.mark.parametrize("damage", ["garbage", "missing", "labels"])
def test_a_damaged_bank_is_an_adapter_format_error(tmp_path: Path, damage: str) -> None:
    bank = _bank()
    settings = bank.settings()
    if damage == "garbage":
        (tmp_path / BANK_FILE).write_bytes(b"not safetensors")
    elif damage == "labels":  # indices outside the label set
        bank.save(tmp_path)
        settings = {**settings}
        with pytest.raises(AdapterFormatError, match="retrieval bank"):
            RetrievalBank.load(tmp_path, settings, 1)
        return
    with pytest.raises(AdapterFormatError, match="retrieval bank"):
        RetrievalBank.load(tmp_path, settings, 2)


def test_bad_banks_are_refused() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        RetrievalBank(torch.zeros(3), torch.zeros(3, dtype=torch.long), num_labels=2)
    with pytest.raises(ValueError, match="weight"):
        _bank(weight=1.5)
    with pytest.raises(ValueError, match="label indices"):
        RetrievalBank(torch.ones(1, 2), torch.tensor([2]), num_labels=2)


class _Classifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(2, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(input_ids.float())


def test_a_retrieval_view_answers_with_log_probabilities_of_the_mix() -> None:
    model = _Classifier()
    view = RetrievalClassifier(model, model.head, _bank(k=1, weight=1.0))
    out = view(input_ids=torch.tensor([[0.0, 1.0]]), attention_mask=torch.ones(1, 2))
    assert torch.allclose(out.exp().sum(dim=-1), torch.ones(1))
    assert out.argmax(dim=-1).item() == 1  # the neighbour's label, whatever the head says
    view.close()
    plain = RetrievalClassifier(model, model.head, None)
    logits = plain(input_ids=torch.tensor([[0.0, 1.0]]), attention_mask=torch.ones(1, 2))
    assert torch.equal(logits, model(torch.tensor([[0.0, 1.0]]), torch.ones(1, 2)))


def test_a_text_in_the_bank_can_be_kept_from_voting_on_itself() -> None:
    bank = _bank(k=1)
    assert bank.votes(bank.embeddings[:1]).argmax().item() == 0
    # Left out, its nearest other text (row 1, the same label) votes instead: never itself.
    alone = RetrievalBank(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]),
                          num_labels=2, k=1)
    assert alone.votes(alone.embeddings, exclude=torch.tensor([0, -1])).tolist() == [
        [0.0, 1.0], [0.0, 1.0]]


def test_the_fitted_weight_is_the_smallest_that_gets_most_texts_right() -> None:
    bank = _bank(k=1)
    wrong = torch.tensor([[0.3, 0.7]] * 2 + [[0.7, 0.3]] * 2)  # a model wrong on all four
    assert bank.fitted(wrong, torch.arange(4)).weight == 0.5  # 0.25 still loses to 0.7
    right = torch.tensor([[0.9, 0.1]] * 2 + [[0.1, 0.9]] * 2)
    assert bank.fitted(right, torch.arange(4)).weight == 0.0  # neighbours add nothing
    assert bank.fitted(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)).weight == 0.0
    # Each text is judged without its own vote: a lone text of its label gets the other's.
    odd = RetrievalBank(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 0.9]]),
                        torch.tensor([0, 1, 1]), num_labels=2, k=1)
    assert odd.fitted(torch.tensor([[0.4, 0.6]]), torch.tensor([0])).weight == 0.0
