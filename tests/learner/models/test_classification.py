"""The classifier's evaluation: batched by length, answered in the examples' order."""

from __future__ import annotations

import pytest
import torch

from driftloop.learner.models.adapters import LoraSpec
from driftloop.learner.models.device import select_device
from driftloop.learner.models.task_model import task_model_for
from driftloop.schemas.enums import TaskKind
from driftloop.schemas.events import TrainingExample


def test_length_batches_give_each_example_its_own_result_in_order(minilm) -> None:  # type: ignore[no-untyped-def]
    task = task_model_for(TaskKind.CLASSIFICATION, minilm.tokenizer, select_device("cpu"),
                          labels=["negative", "positive"], template_ref=None, max_length=64,
                          max_new_tokens=8)
    words = "a quiet film that grows on you slowly and then all at once".split()
    # Lengths out of order, so the batches hold other examples than in the request's order.
    examples = [TrainingExample(input=" ".join(words[:n]), target=("negative", "positive")[n % 2])
                for n in (9, 1, 12, 3, 7, 2, 11, 5, 4, 10, 6, 8)]
    with minilm.lent() as weights:
        torch.manual_seed(0)
        model = task.build(weights, LoraSpec(), None)
        task.batch_size = 4
        batched = task.evaluate_each(model, examples)
        task.batch_size = 1
        alone = [task.evaluate_each(model, [example]) for example in examples]
    assert batched.hits == [one.hits[0] for one in alone]
    assert batched.scores == [pytest.approx(one.scores[0], abs=1e-5) for one in alone]
    assert batched.losses == [pytest.approx(one.loss, abs=1e-5) for one in alone]

