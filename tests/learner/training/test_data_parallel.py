"""One update spread over processes (``learner.data_parallel``): real processes, a real
process group (gloo on the CPU, as NCCL would join GPUs), the real MiniLM task model."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from learner_helpers import learner_settings, sentiment_request
from pydantic import ValidationError
from waiting import wait_until

from driftloop.learner.errors import LearnerError, TrainingProcessError
from driftloop.learner.models.adapters import LoraSpec
from driftloop.learner.models.device import ComputeDevice
from driftloop.learner.models.task_model import task_model_for
from driftloop.learner.registry.version_log import VersionLog
from driftloop.learner.service import _out_of_memory
from driftloop.learner.training.data_parallel import RankPool
from driftloop.learner.training.loop import (
    TrainConfig,
    seed_everything,
    train_adapter,
    trainable_parameters,
)
from driftloop.schemas.enums import TaskKind
from driftloop.schemas.events import TrainingExample
from driftloop.schemas.settings import LearnerSettings

pytestmark = pytest.mark.slow

WORDS = ("good", "bad", "great", "awful", "fine", "terrible", "nice", "poor")


def reviews(n: int) -> list[TrainingExample]:
    return [TrainingExample(input=f"this one is {WORDS[i % 8]}, number {i}",
                            target="pos" if i % 2 == 0 else "neg", weight=1.0 + (i % 3))
            for i in range(n)]


def fresh(minilm):  # type: ignore[no-untyped-def]
    """A LoRA classifier on MiniLM with every dropout off (each process draws its own
    masks, so only a model without dropout trains to the same weights)."""
    task = task_model_for(TaskKind.CLASSIFICATION, minilm.tokenizer,
                          ComputeDevice(torch.device("cpu")), labels=("neg", "pos"),
                          template_ref=None, max_length=32, max_new_tokens=8)
    seed_everything(0)
    model = task.build(minilm.fresh_copy(), LoraSpec(8, 16, 0.0), None, dropout=0.0)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return task, model


CPU = ComputeDevice(torch.device("cpu"))


@pytest.fixture
def pool():  # type: ignore[no-untyped-def]
    ranks = RankPool(2, CPU, torch_threads=2)
    yield ranks
    ranks.close()


def test_two_processes_train_what_one_process_trains(minilm, pool) -> None:  # type: ignore[no-untyped-def]
    # 33 training examples in batches of 8: the fifth step has one example, so one process
    # takes a step with nothing of its own. Weighted examples and an L2 pull (added once).
    data = reviews(40)
    train, validation = data[:33], data[33:]
    config = TrainConfig(max_steps=6, eval_every=2, l2_to_parent=0.01)
    task, alone = fresh(minilm)
    one = train_adapter(task, alone, train, validation, config)
    task, spread = fresh(minilm)
    two = pool.train(task, spread, train, validation, config)
    assert two.steps == one.steps == 5 and two.examples_seen == 33 and two.processes == 2
    assert [step for step, _ in two.history] == [step for step, _ in one.history]
    for (_, a), (_, b) in zip(one.history, two.history, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    assert two.train_loss == pytest.approx(one.train_loss, rel=1e-5)
    trained = dict(trainable_parameters(alone))
    start = dict(trainable_parameters(fresh(minilm)[1]))
    moved = 0.0
    for name, p in trainable_parameters(spread):
        assert torch.allclose(p, trained[name], atol=2e-4), name
        moved = max(moved, (p - start[name]).abs().max().item())
    assert moved > 1e-3  # the weights did train (the comparison is not of two starts)
    # The processes stay for the next update, which trains on its own start.
    workers = list(pool._workers)
    task, again = fresh(minilm)
    assert pool.train(task, again, train, validation, config).steps == 5
    assert pool._workers == workers and all(w.is_alive() for w in workers)
    assert all(torch.allclose(p, trained[name], atol=2e-4)
               for name, p in trainable_parameters(again))


def test_a_failing_process_ends_the_pool_with_its_error_and_the_next_update_starts_another(
        minilm, pool) -> None:  # type: ignore[no-untyped-def]
    task, model = fresh(minilm)
    bad = [*reviews(7), TrainingExample(input="who knows", target="maybe")]  # not a label
    with pytest.raises(TrainingProcessError, match="KeyError: 'maybe'") as caught:
        pool.train(task, model, bad, [], TrainConfig(max_steps=1))
    assert not caught.value.out_of_memory and not _out_of_memory(caught.value)
    assert not pool.started  # every process stopped: one may have waited on the other
    assert pool.train(task, model, reviews(8), [], TrainConfig(max_steps=1)).steps == 1


def test_a_killed_process_fails_the_update_as_out_of_memory(minilm, pool) -> None:  # type: ignore[no-untyped-def]
    task, model = fresh(minilm)
    pool.train(task, model, reviews(8), [], TrainConfig(max_steps=1))  # started, idle
    pool._workers[1].kill()  # what the kernel's out-of-memory killer does
    with pytest.raises(TrainingProcessError, match=r"process 1 ended .*signal 9") as caught:
        pool.train(task, model, reviews(8), [], TrainConfig(max_steps=1))
    assert _out_of_memory(caught.value) and not pool.started


def test_a_model_that_cannot_cross_to_the_processes_stops_the_pool_with_a_clear_error(
        minilm, pool) -> None:  # type: ignore[no-untyped-def]
    task, model = fresh(minilm)
    pool.train(task, model, reviews(8), [], TrainConfig(max_steps=1))  # started, idle
    model.register_forward_hook(lambda *args: None)  # a local hook, as checkpointing adds
    with pytest.raises(LearnerError, match=r"learner\.data_parallel = 1"):
        pool.train(task, model, reviews(8), [], TrainConfig(max_steps=1))
    assert not pool.started


POOL_SCRIPT = """
import sys
import torch
from driftloop.learner.models.device import ComputeDevice
from driftloop.learner.training.data_parallel import RankPool

if __name__ == "__main__":
    pool = RankPool(2, ComputeDevice(torch.device("cpu")), torch_threads=2)
    pool.start()
    print(*[worker.pid for worker in pool._workers], flush=True)
    sys.stdin.read()
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_processes_end_when_the_learner_is_killed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    learner = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in learner.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) == 2 and all(map(running, pids))
    finally:
        learner.kill()  # SIGKILL: no atexit, no daemon clean-up
        learner.wait()
    wait_until(lambda: not any(map(running, pids)), 60,
               "the data-parallel processes gone after their learner was killed",
               seen=lambda: f"running: {[pid for pid in pids if running(pid)]}")


def test_the_learner_spreads_an_update_and_publishes_it(
        tmp_path, resident_models, caplog) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.training.update import IncrementalUpdater

    settings = learner_settings(str(tmp_path / "store"), data_parallel=2, torch_threads=2)
    updater = IncrementalUpdater(settings, models=resident_models)
    try:
        assert updater.start_processes()  # at boot, as the learner does
        booted = list(updater._ranks._workers)  # type: ignore[union-attr]
        assert len(booted) == 2
        with caplog.at_level(logging.INFO, logger="driftloop.learner.training.data_parallel"):
            result = updater.update(sentiment_request("dp-1", n=64), VersionLog())
        assert updater._ranks._workers == booted  # type: ignore[union-attr]  # no second start
    finally:
        updater.close()
    assert "in 2 processes" in caplog.text
    event = result.event
    assert event.metadata["steps"] > 0 and event.metadata["train_processes"] == 2
    folder = updater.store.fetch(event.adapter_uri, event.sha256, tmp_path / "fetched")
    assert (folder / "adapter_config.json").is_file()


def test_gradient_checkpointing_trains_in_the_learners_process_and_says_so(
        tmp_path, resident_models, caplog) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.training.update import IncrementalUpdater

    settings = learner_settings(str(tmp_path / "store"), data_parallel=2,
                                gradient_checkpointing=True)
    updater = IncrementalUpdater(settings, models=resident_models)
    try:
        assert not updater.start_processes()
        with caplog.at_level(logging.WARNING, logger="driftloop.learner.training.update"):
            result = updater.update(sentiment_request("dp-gc", n=32), VersionLog())
        assert updater._ranks is None  # no process was started
    finally:
        updater.close()
    assert "without gradient checkpointing" in caplog.text
    assert result.event.metadata["train_processes"] == 1


def test_more_processes_than_gpus_stop_the_learner_at_start(tmp_path, resident_models) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.training.update import IncrementalUpdater

    settings = learner_settings(str(tmp_path / "store"), data_parallel=2)
    gpu = ComputeDevice(torch.device("cuda"))  # a GPU learner on a box showing fewer GPUs
    with pytest.raises(TrainingProcessError, match="2 processes, one per GPU"):
        IncrementalUpdater(settings, models=resident_models, device=gpu)
    IncrementalUpdater(settings, models=resident_models, device=CPU).close()  # CPU: any number


def test_settings_refuse_processes_for_a_quantized_base() -> None:
    assert LearnerSettings(data_parallel=0).data_parallel == 0
    with pytest.raises(ValidationError, match="base_quantization"):
        LearnerSettings(data_parallel=2, base_quantization="4bit")
    assert _out_of_memory(TrainingProcessError("rank 1 killed", out_of_memory=True))
