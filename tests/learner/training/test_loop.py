"""The training loop on a tiny torch model: fast, and every rule observable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from driftloop.learner.errors import TrainingRequestError
from driftloop.learner.models.device import ComputeDevice
from driftloop.learner.training.loop import TrainConfig, train_adapter
from driftloop.schemas.events import TrainingExample


class LinearTask:
    """Inputs are numbers as text; the target is the class of their sign."""

    device = ComputeDevice(torch.device("cpu"))

    def batch(self, examples):  # type: ignore[no-untyped-def]
        return {"x": torch.tensor([[float(e.input)] for e in examples]),
                "labels": torch.tensor([int(e.target) for e in examples]),
                "weights": torch.tensor([e.weight for e in examples])}

    def example_losses(self, model, batch):  # type: ignore[no-untyped-def]
        return nn.functional.cross_entropy(model(batch["x"]), batch["labels"], reduction="none")


def examples(n: int, *, flip: bool = False, start: int = 0) -> list[TrainingExample]:
    values = [(-1) ** i * (1 + (start + i) % 7) for i in range(n)]
    return [TrainingExample(input=str(v), target=str(int((v > 0) != flip))) for v in values]


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(1, 2)


def weights(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def test_training_learns_and_reports() -> None:
    m = model()
    report = train_adapter(LinearTask(), m, examples(64), [], TrainConfig(batch_size=8,
                                                                           learning_rate=0.1))
    assert report.steps == 8 and report.examples_seen == 64 and report.stopped == "budget"
    with torch.no_grad():
        assert m(torch.tensor([[5.0], [-5.0]])).argmax(-1).tolist() == [1, 0]


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    runs = []
    for seed in (0, 0, 1):
        m = model()
        train_adapter(LinearTask(), m, examples(40), [],
                      TrainConfig(batch_size=4, max_steps=5, seed=seed, learning_rate=0.1))
        runs.append(weights(m))
    assert all(a.equal(b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not all(a.equal(b) for a, b in zip(runs[0], runs[2], strict=True))


def test_early_stop_keeps_the_best_trained_weights_never_the_start() -> None:
    m = model()
    start = weights(m)
    config = TrainConfig(batch_size=4, eval_every=1, patience=2, learning_rate=0.5)
    # Validation labels contradict training: every step makes validation worse.
    report = train_adapter(LinearTask(), m, examples(64), examples(8, flip=True, start=3),
                           config)
    assert report.stopped == "early_stop" and report.steps == 3
    assert report.history[0][1] < report.best_validation_loss  # the start was better...
    one_step = model()
    train_adapter(LinearTask(), one_step, examples(64), [], TrainConfig(
        batch_size=4, learning_rate=0.5, max_steps=1))
    # ... yet the update keeps its best trained weights (after step 1), not its parent's.
    assert all(a.equal(b) for a, b in zip(weights(m), weights(one_step), strict=True))
    assert not all(a.equal(b) for a, b in zip(weights(m), start, strict=True))


def test_a_step_floor_passes_over_a_small_request_again_and_holds_off_early_stop() -> None:
    floor = train_adapter(LinearTask(), model(), examples(16), [],
                          TrainConfig(batch_size=8, learning_rate=0.1, min_steps=10))
    assert floor.steps == 10 and floor.examples_seen == 80  # five passes over 16
    capped = train_adapter(LinearTask(), model(), examples(16), [],
                           TrainConfig(batch_size=8, min_steps=10, max_steps=6))
    assert capped.steps == 6
    # Validation that every step makes worse: early stop ends after two bad checks, but
    # not before the floor, and keeps the weights of the first check at or after it.
    m = model()
    config = TrainConfig(batch_size=4, eval_every=1, patience=2, learning_rate=0.5,
                         min_steps=5)
    report = train_adapter(LinearTask(), m, examples(64), examples(8, flip=True, start=3),
                           config)
    assert report.stopped == "early_stop" and report.steps == 7
    assert [step for step, _ in report.history] == [0, 5, 6, 7]
    five = model()
    train_adapter(LinearTask(), five, examples(64), [], TrainConfig(
        batch_size=4, learning_rate=0.5, max_steps=5))
    assert all(a.equal(b) for a, b in zip(weights(m), weights(five), strict=True))


def test_l2_pull_keeps_weights_near_the_parent() -> None:
    moved = []
    for pull in (0.0, 10.0):
        m = model()
        start = weights(m)
        train_adapter(LinearTask(), m, examples(64), [],
                      TrainConfig(batch_size=8, learning_rate=0.1, weight_decay=0.0,
                                  l2_to_parent=pull))
        moved.append(sum((a - b).norm().item() for a, b in zip(weights(m), start, strict=True)))
    assert moved[1] < moved[0] / 2


def test_interpolation_keeps_that_share_of_the_trained_change() -> None:
    start, trained, half = weights(model()), model(), model()
    config = TrainConfig(batch_size=8, learning_rate=0.1)
    train_adapter(LinearTask(), trained, examples(64), [], config)
    train_adapter(LinearTask(), half, examples(64), [],
                  TrainConfig(batch_size=8, learning_rate=0.1, interpolation=0.5))
    for s, t, h in zip(start, weights(trained), weights(half), strict=True):
        assert torch.allclose(h, s + 0.5 * (t - s), atol=1e-6)
    assert not all(a.equal(b) for a, b in zip(weights(half), start, strict=True))


def test_warmup_starts_with_a_fraction_of_the_learning_rate() -> None:
    # Adam's first step moves each weight by about the learning rate, whatever its gradient:
    # with a warm-up of 3 steps the first step uses a quarter of it.
    moved = []
    for warmup in (0, 3):
        m = model()
        start = weights(m)
        train_adapter(LinearTask(), m, examples(8), [],
                      TrainConfig(batch_size=8, max_steps=1, learning_rate=0.1,
                                  weight_decay=0.0, warmup_steps=warmup))
        moved.append(max((a - b).abs().max().item() for a, b in zip(weights(m), start,
                                                                     strict=True)))
    assert moved[0] == pytest.approx(0.1, rel=0.01)
    assert moved[1] == pytest.approx(0.1 / 4, rel=0.01)


def test_averaging_returns_the_moving_average_of_the_trained_weights() -> None:
    # Record the weights after each step of a plain run; with averaging the update returns
    # their exponential moving average, started at the first trained weights (not the start).
    decay, steps = 0.5, 4
    path = []
    for k in range(1, steps + 1):
        m = model()
        train_adapter(LinearTask(), m, examples(32), [],
                      TrainConfig(batch_size=8, max_steps=k, learning_rate=0.1))
        path.append(weights(m))
    expected = path[0]
    for later in path[1:]:
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, later, strict=True)]
    averaged = model()
    train_adapter(LinearTask(), averaged, examples(32), [],
                  TrainConfig(batch_size=8, max_steps=steps, learning_rate=0.1,
                              averaging=decay))
    for got, want in zip(weights(averaged), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    assert not all(a.equal(b) for a, b in zip(weights(averaged), path[-1], strict=True))


def test_averaging_is_what_early_stop_measures_and_keeps() -> None:
    m = model()
    config = TrainConfig(batch_size=4, eval_every=2, patience=2, learning_rate=0.5,
                         averaging=0.9)
    report = train_adapter(LinearTask(), m, examples(64), examples(8, start=3), config)
    assert report.best_validation_loss == min(loss for _, loss in report.history[1:])
    # The weights returned give the best loss measured: the average's, swapped back each time.
    from driftloop.learner.training.loop import _validation_loss
    assert _validation_loss(LinearTask(), m, examples(8, start=3), 4) == pytest.approx(
        report.best_validation_loss, rel=1e-6)


def test_example_weights_scale_the_loss() -> None:
    heavy = [e.model_copy(update={"weight": 100.0}) if e.target == "1" else e
             for e in examples(32)]
    m = model()
    train_adapter(LinearTask(), m, heavy, [], TrainConfig(batch_size=8, max_steps=2,
                                                         learning_rate=0.05))
    with torch.no_grad():
        assert m(torch.tensor([[1.0]])).argmax(-1).item() == 1


def test_curriculum_trains_the_first_epoch_easy_to_hard() -> None:
    class Recording(LinearTask):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def batch(self, examples):  # type: ignore[no-untyped-def]
            self.seen += [e.input for e in examples]
            return super().batch(examples)

    train = [e.model_copy(update={"difficulty": (i * 7 % 16) / 16}) for i, e in
             enumerate(examples(16))]
    easy_to_hard = [e.input for e in sorted(train, key=lambda e: e.difficulty)]
    orders = {}
    for curriculum in (True, False):
        task = Recording()
        train_adapter(task, model(), train, [], TrainConfig(batch_size=4, epochs=2,
                                                            curriculum=curriculum))
        orders[curriculum] = task.seen
    assert orders[True][:16] == easy_to_hard  # the first epoch easy to hard
    assert orders[True][16:] != easy_to_hard and sorted(orders[True][16:]) == sorted(easy_to_hard)
    assert orders[False][:16] != easy_to_hard  # off: a seeded random order


def test_nothing_to_train() -> None:
    with pytest.raises(TrainingRequestError, match="no training examples"):
        train_adapter(LinearTask(), model(), [], [], TrainConfig())
    frozen = model().requires_grad_(False)
    with pytest.raises(TrainingRequestError, match="no trainable parameters"):
        train_adapter(LinearTask(), frozen, examples(4), [], TrainConfig())


@pytest.mark.parametrize(("field", "value"), [("learning_rate", 0.0), ("batch_size", 0),
                                              ("max_steps", 0), ("patience", 0),
                                              ("weight_decay", -1.0), ("l2_to_parent", -0.1),
                                              ("interpolation", 0.0), ("interpolation", 1.5),
                                              ("warmup_steps", -1), ("averaging", 1.0),
                                              ("averaging", -0.1)])
def test_bad_config(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_a_chosen_share_of_the_change_is_the_one_the_validation_slice_prefers() -> None:
    parent = model()
    train_adapter(LinearTask(), parent, examples(64), [], TrainConfig(learning_rate=0.1))
    start = weights(parent)
    # Training on flipped labels moves away from what the validation slice says is right:
    # the smallest share offered is kept, and the weights are that share of the change.
    config = TrainConfig(batch_size=8, max_steps=8, learning_rate=0.1, eval_every=8,
                         interpolation_choices=(0.25, 0.5))  # one check: the last step
    whole = model()
    whole.load_state_dict(parent.state_dict())
    train_adapter(LinearTask(), whole, examples(64, flip=True), [],
                  TrainConfig(batch_size=8, max_steps=8, learning_rate=0.1))
    chosen = model()
    chosen.load_state_dict(parent.state_dict())
    report = train_adapter(LinearTask(), chosen, examples(64, flip=True),
                           examples(16, start=3), config)
    assert report.interpolation == 0.25
    for s, w, c in zip(start, weights(whole), weights(chosen), strict=True):
        assert torch.allclose(c, s + 0.25 * (w - s), atol=1e-6)
    # Training on the right labels again: the whole change is kept.
    again = model()
    again.load_state_dict(parent.state_dict())
    assert train_adapter(LinearTask(), again, examples(64), examples(16, start=3),
                         config).interpolation == 1.0
    with pytest.raises(ValueError, match="interpolation_choices"):
        TrainConfig(interpolation_choices=(0.0,))
