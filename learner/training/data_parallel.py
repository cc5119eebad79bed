"""One update spread over several processes (the GPUs of a box), data parallel, with accelerate.

With ``learner.data_parallel`` above 1 (or 0: one process per visible CUDA device) the
optimizer loop of an update runs in that many processes started for it, each on its own
device (``cuda:<rank>``; the CPU when there is no GPU, which is how the tests run it). Every
process takes the same seeded example order (:func:`~.loop._picks`), trains on its slice of
each step's batch (:class:`Shard`), and the gradients are summed over the processes before
clipping and the optimizer step, so every process takes the same step and the update is
the one a single process would have trained (to float rounding; the LoRA dropout masks are
drawn per process, so with dropout it is a different draw of the same update).
Validation losses are summed the same way, so early stop decides the same in every process.

The processes are started with ``spawn`` (CUDA cannot be forked once the learner has used
it); accelerate's :class:`~accelerate.Accelerator` joins them in a process group (NCCL on
GPUs, gloo on the CPU) and gives each its device. The task model and the model to train are
handed over, not loaded again: their tensors travel as CUDA IPC handles or shared memory, so
the frozen base weights are not copied per process on the same device; each process clones
only the trainable weights. Rank 0 writes the trained weights and its report to a file the
learner loads back into its own model; the gate, the store and the version event are the
learner's as before.

Examples
--------
>>> Shard(rank=1, world=3).part(["a", "b", "c", "d", "e"])
['b', 'e']
>>> data_parallel_processes(1, cuda_devices=4), data_parallel_processes(0, cuda_devices=4)
(1, 4)
>>> data_parallel_processes(0, cuda_devices=0)  # no GPU: one process
1
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...schemas.events import TrainingExample
from ..errors import TrainingProcessError
from ..models.device import ComputeDevice

__all__ = ["Shard", "data_parallel_processes", "train_data_parallel"]

log = logging.getLogger(__name__)

RESULT_FILE = "rank0.pt"


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's part of a data-parallel update: rank ``rank`` of ``world``.

    >>> [Shard(rank, 2).part([10, 11, 12]) for rank in (0, 1)]
    [[10, 12], [11]]
    """

    rank: int
    world: int

    def part(self, items: Sequence[Any]) -> list[Any]:
        """Every ``world``-th item from ``rank`` on (the slices of all ranks cover each
        item once)."""
        return list(items[self.rank::self.world])

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over every process (the same result in each)."""
        from accelerate.utils import reduce

        return reduce(tensor, reduction="sum")

    def sum_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Sum the gradients of ``params`` over every process, in one flat buffer (a
        parameter without a gradient in this process counts as zeros)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        total = self.sum(torch.cat([g.reshape(-1) for g in grads]))
        offset = 0
        for p, g in zip(params, grads, strict=True):
            p.grad = total[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()


def data_parallel_processes(setting: int, *, cuda_devices: int | None = None) -> int:
    """Processes an update spreads over for ``learner.data_parallel``: the setting when it
    is above 0, else one per visible CUDA device (1 without a GPU)."""
    if setting > 0:
        return setting
    if cuda_devices is None:
        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return max(cuda_devices, 1)


def train_data_parallel(task: Any, model: Any, train: Sequence[TrainingExample],
                        validation: Sequence[TrainingExample], config: Any, *,
                        processes: int, torch_threads: int | None = None) -> Any:
    """Train ``model``'s trainable weights in place on ``train``, spread over ``processes``
    processes; return rank 0's :class:`~.loop.TrainReport`.

    ``torch_threads`` is the learner's thread budget, shared among processes on the CPU.
    A process that fails (an exception, a signal, the out-of-memory killer) fails the update
    with :class:`~driftloop.learner.errors.TrainingProcessError`, which carries its
    traceback's tail and whether it ran out of memory.
    """
    from torch.multiprocessing import start_processes
    from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException

    from .loop import TrainReport, trainable_parameters

    if processes < 2:
        raise ValueError(f"a data-parallel update needs at least 2 processes, got {processes}")
    cuda = task.device.type == "cuda"
    if cuda and processes > torch.cuda.device_count():
        raise TrainingProcessError(
            f"learner.data_parallel asks for {processes} processes, one per GPU, and this "
            f"machine shows {torch.cuda.device_count()} CUDA devices")
    threads = max(1, (torch_threads or torch.get_num_threads()) // processes)
    params = trainable_parameters(model)
    with tempfile.TemporaryDirectory(prefix="driftloop-dp-") as folder:
        result = Path(folder) / RESULT_FILE
        job = _Job(task, model, list(train), list(validation), config, str(result),
                   _free_port(), threads)
        log.info("training on %d examples in %d processes (%s)", len(train), processes,
                 "one per GPU" if cuda else f"CPU, {threads} threads each")
        started = time.perf_counter()
        try:
            start_processes(_rank_main, args=(processes, job), nprocs=processes, join=True,
                            start_method="spawn")
        except ProcessRaisedException as exc:
            text = str(exc)
            raise TrainingProcessError(
                f"a data-parallel training process failed: {_tail(text)}",
                out_of_memory="OutOfMemoryError" in text or "out of memory" in text) from None
        except ProcessExitedException as exc:
            raise TrainingProcessError(
                f"a data-parallel training process ended with exit code {exc.exit_code}"
                + (f" (signal {exc.signal_name})" if exc.signal_name else ""),
                out_of_memory=exc.signal_name == "SIGKILL") from None
        saved = torch.load(result, map_location="cpu", weights_only=False)
    weights: dict[str, torch.Tensor] = saved["weights"]
    with torch.no_grad():
        for name, p in params:
            p.copy_(weights[name].to(p.device))
    # The update's training time is the wall time with the processes' start and hand-over.
    report = TrainReport(**{**saved["report"], "processes": processes,
                            "seconds": time.perf_counter() - started})
    model.eval()
    return report


@dataclass(frozen=True, slots=True)
class _Job:
    """What every process of one update receives (pickled by ``spawn``)."""

    task: Any
    model: Any
    train: list[TrainingExample]
    validation: list[TrainingExample]
    config: Any
    result: str
    port: int
    threads: int


def _rank_main(rank: int, world: int, job: _Job) -> None:
    """One process of the update: join the group, train its slices, rank 0 saves the result."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(job.port), "OMP_NUM_THREADS": str(job.threads)})
    from accelerate import Accelerator

    from .loop import train_adapter, trainable_parameters

    accelerator = Accelerator(cpu=job.task.device.type == "cpu")
    torch.set_num_threads(job.threads)
    device = accelerator.device
    task = _on_device(job.task, device)
    model = job.model.to(device)
    for _, p in trainable_parameters(model):  # private weights; the frozen base is shared
        p.data = p.data.clone()
    report = train_adapter(task, model, job.train, job.validation, job.config,
                           shard=Shard(rank, world))
    if rank == 0:
        weights = {name: p.detach().cpu() for name, p in trainable_parameters(model)}
        fields = {name: getattr(report, name) for name in report.__dataclass_fields__}
        torch.save({"weights": weights, "report": fields}, job.result)
    accelerator.wait_for_everyone()
    accelerator.end_training()


def _on_device(task: Any, device: torch.device) -> Any:
    """``task`` with its batches made on ``device`` (the same object when they already are)."""
    current: ComputeDevice = task.device
    if current.device == device:
        return task
    task.device = ComputeDevice(device, current.autocast_dtype)  # this process's copy
    return task


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(text: str, lines: int = 6) -> str:
    """The last lines of a process's traceback (the error and where it came from)."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(line.strip() for line in kept[-lines:])
