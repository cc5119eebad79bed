"""One update spread over several processes (the GPUs of a box), data parallel, with accelerate.

With ``learner.data_parallel`` above 1 (or 0: one process per visible CUDA device) the
optimizer loop of an update runs in that many processes (a :class:`RankPool`), each on its
own device (``cuda:<rank>``; the CPU when there is no GPU, which is how the tests run it).
Every process takes the same seeded example order (:func:`~.loop._picks`), trains on its
slice of each step's batch (:class:`Shard`), and the gradients are summed over the
processes before clipping and the optimizer step, so every process takes the same step and
the update is the one a single process would have trained (to float rounding; the LoRA
dropout masks are drawn per process, so with dropout it is a different draw of the same
update). Validation losses are summed the same way, so early stop decides the same in every
process.

The processes are started once, with ``spawn`` (CUDA cannot be forked once the learner has
used it), when the learner boots (:meth:`RankPool.start`) or else at the first such update,
and kept for the next updates: starting one costs seconds of imports. accelerate's
:class:`~accelerate.Accelerator` joins them in a process group (NCCL on GPUs, gloo on the
CPU) and gives each its device. Each update hands them the task model and the model to
train, not loaded again: their tensors travel as CUDA IPC handles or shared memory, so the
frozen base weights are not copied per process on the same device; each process clones only
the weights it trains. Rank 0 sends the trained weights back, the learner loads them into
its own model, and the gate, the store and the version event are the learner's as before. A
process that fails or dies ends the pool (the others may be waiting on it in a collective);
the next update starts it again.

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

import gc
import io
import logging
import os
import pickle
import queue
import socket
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch

from ...schemas.events import TrainingExample
from ..errors import LearnerError, TrainingProcessError
from ..models.device import ComputeDevice

__all__ = ["RankPool", "Shard", "check_devices", "data_parallel_processes"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""How often the learner looks at its processes while they train (are they alive?)."""
EXIT_SECONDS = 10.0
"""Longest wait for a process whose pipe broke to be seen to have ended."""


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


def check_devices(processes: int, device: ComputeDevice, *,
                  cuda_devices: int | None = None) -> None:
    """Refuse more processes than GPUs when training on CUDA (one process per GPU; on the
    CPU any number may share the cores).

    >>> check_devices(2, ComputeDevice(torch.device("cpu")))
    >>> try:
    ...     check_devices(2, ComputeDevice(torch.device("cuda")), cuda_devices=1)
    ... except TrainingProcessError as err:
    ...     print(str(err).split(", and ")[1])
    this machine shows 1 CUDA devices (0 asks for one per device)
    """
    if device.type != "cuda" or processes < 2:
        return
    if cuda_devices is None:
        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if processes > cuda_devices:
        raise TrainingProcessError(
            f"learner.data_parallel asks for {processes} processes, one per GPU, and this "
            f"machine shows {cuda_devices} CUDA devices (0 asks for one per device)")


class RankPool:
    """The processes data-parallel updates train in, started once and kept.

    >>> pool = RankPool(2, ComputeDevice(torch.device("cpu")), torch_threads=2)
    >>> pool.processes, pool.started  # nothing runs before the first update
    (2, False)
    >>> RankPool(1, ComputeDevice(torch.device("cpu")))
    Traceback (most recent call last):
    ...
    ValueError: a data-parallel update needs at least 2 processes, got 1
    """

    def __init__(self, processes: int, device: ComputeDevice, *,
                 torch_threads: int | None = None) -> None:
        if processes < 2:
            raise ValueError(f"a data-parallel update needs at least 2 processes, got {processes}")
        self.processes = processes
        self.device = device
        self.threads = max(1, (torch_threads or torch.get_num_threads()) // processes)
        self._workers: list[Any] = []
        self._jobs: list[Any] = []
        self._results: Any = None

    @property
    def started(self) -> bool:
        return bool(self._workers)

    def train(self, task: Any, model: Any, train: Sequence[TrainingExample],
              validation: Sequence[TrainingExample], config: Any) -> Any:
        """Train ``model``'s trainable weights in place on ``train``, spread over the
        processes (started when none run); return rank 0's :class:`~.loop.TrainReport`,
        timed from the hand-over to the weights loaded back.

        A process that fails (an exception, a signal, the out-of-memory killer) ends the
        pool and the update with :class:`~driftloop.learner.errors.TrainingProcessError`,
        which carries its traceback's tail and whether it ran out of memory.
        """
        from .loop import TrainReport, trainable_parameters

        started = time.perf_counter()
        self.start()
        log.info("training on %d examples in %d processes (%s)", len(train), self.processes,
                 "one per GPU" if self.device.type == "cuda"
                 else f"CPU, {self.threads} threads each")
        job = _Job(task, model, list(train), list(validation), config)
        try:
            for jobs in self._jobs:
                jobs.put(job)
        except OSError as exc:  # a broken pipe: the process that reads it is gone or going
            # Its pipe closes as it dies, a moment before it can be reaped as ended.
            deadline = time.monotonic() + EXIT_SECONDS
            while self._ended() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            self._check_alive()
            self.close()
            raise TrainingProcessError(
                f"a data-parallel training process cannot be reached: {exc}") from exc
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            self.close()  # a process that got the job waits for its peers: stop them all
            raise LearnerError(
                f"the update cannot be handed to data-parallel processes: {exc} (set "
                "learner.data_parallel = 1 to train in the learner's process)") from exc
        done: dict[int, bytes | None] = {}
        while len(done) < self.processes:
            try:
                kind, rank, payload = self._results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._check_alive()
                continue
            if kind == "error":
                self._fail(rank, payload)
            done[rank] = payload
        saved = torch.load(io.BytesIO(done[0] or b""), map_location="cpu", weights_only=False)
        weights: dict[str, torch.Tensor] = saved["weights"]
        with torch.no_grad():
            for name, p in trainable_parameters(model):
                p.copy_(weights[name].to(p.device))
        model.eval()
        return TrainReport(**{**saved["report"], "processes": self.processes,
                              "seconds": time.perf_counter() - started})

    def close(self) -> None:
        """Stop the processes (at once: one may wait on another that failed)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        self._jobs, self._results = [], None

    def start(self) -> None:
        """Start the processes when none run (each imports torch and joins the group in the
        background; the first job waits for them). A learner calls it at boot."""
        if self._workers:
            return
        cuda = self.device.type == "cuda"
        check_devices(self.processes, self.device)
        context = torch.multiprocessing.get_context("spawn")
        self._jobs = [context.SimpleQueue() for _ in range(self.processes)]
        self._results = context.Queue()
        group = _Group(self.processes, _free_port(), self.threads, cpu=not cuda)
        for rank in range(self.processes):
            worker = context.Process(target=_serve_rank, name=f"driftloop-rank-{rank}",
                                     args=(rank, group, self._jobs[rank], self._results),
                                     daemon=True)
            worker.start()
            self._workers.append(worker)
        for jobs in self._jobs:  # only the process reads: a write to a dead one fails at once
            jobs._reader.close()

    def _check_alive(self) -> None:
        """Raise when a process has ended: with its error when it sent one last."""
        died = self._ended()
        if died is None:
            return
        try:
            kind, rank, payload = self._results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            kind = None
        if kind == "error":  # its last word
            self._fail(rank, payload)
        self.close()
        raise died

    def _fail(self, rank: int, traceback_text: str) -> NoReturn:
        """Stop every process and raise process ``rank``'s error; a peer that died without a
        word is named first, as the likelier cause."""
        died = self._ended(besides=rank)
        self.close()
        if died is not None:
            raise died from _failed(rank, traceback_text)
        raise _failed(rank, traceback_text)

    def _ended(self, *, besides: int | None = None) -> TrainingProcessError | None:
        """The error of the first process (but ``besides``) that has ended, if any."""
        for rank, worker in enumerate(self._workers):
            if rank != besides and not worker.is_alive():
                code = worker.exitcode
                signal = -code if code is not None and code < 0 else None
                return TrainingProcessError(
                    f"data-parallel training process {rank} ended with exit code {code}"
                    + (f" (signal {signal})" if signal else ""), out_of_memory=signal == 9)
        return None


@dataclass(frozen=True, slots=True)
class _Group:
    """What every process needs to join the group, once."""

    world: int
    port: int
    threads: int
    cpu: bool


@dataclass(frozen=True, slots=True)
class _Job:
    """One update, as every process receives it (pickled: tensors shared, not copied)."""

    task: Any
    model: Any
    train: list[TrainingExample]
    validation: list[TrainingExample]
    config: Any


def _serve_rank(rank: int, group: _Group, jobs: Any, results: Any) -> None:
    """One process of the pool: join the group, then train each job's slices until told to
    stop (``None``) or the learner is gone; rank 0 sends the trained weights back. An error
    is reported and ends the process (the others may be stuck waiting on it)."""
    jobs._writer.close()  # the learner writes alone: its death ends the queue (EOFError)
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank),
                       "WORLD_SIZE": str(group.world), "LOCAL_WORLD_SIZE": str(group.world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(group.port),
                       "OMP_NUM_THREADS": str(group.threads)})
    try:
        from accelerate import Accelerator

        from .loop import train_adapter, trainable_parameters

        accelerator = Accelerator(cpu=group.cpu)
        torch.set_num_threads(group.threads)
    except BaseException:
        results.put(("error", rank, traceback.format_exc()))
        return
    while (job := _next_job(jobs)) is not None:
        try:
            task = _on_device(job.task, accelerator.device)
            model = job.model.to(accelerator.device)
            for _, p in trainable_parameters(model):  # private weights; the base is shared
                p.data = p.data.clone()
            report = train_adapter(task, model, job.train, job.validation, job.config,
                                   shard=Shard(rank, group.world))
            payload = None
            if rank == 0:
                buffer = io.BytesIO()
                torch.save({"weights": {name: p.detach().cpu()
                                        for name, p in trainable_parameters(model)},
                            "report": {name: getattr(report, name)
                                       for name in report.__dataclass_fields__}}, buffer)
                payload = buffer.getvalue()
            del job, task, model
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            results.put(("done", rank, payload))
        except BaseException:
            results.put(("error", rank, traceback.format_exc()))
            return


def _next_job(jobs: Any) -> _Job | None:
    """The next update, or None when told to stop or when the learner that started this
    process has died (a process it cannot reach would hold its device for ever)."""
    try:
        job: _Job | None = jobs.get()
    except EOFError:
        return None
    return job


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


def _failed(rank: int, text: str) -> TrainingProcessError:
    return TrainingProcessError(
        f"data-parallel training process {rank} failed: {_tail(text)}",
        out_of_memory="OutOfMemoryError" in text or "out of memory" in text)


def _tail(text: str, lines: int = 6) -> str:
    """The last lines of a process's traceback (the error and where it came from)."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(line.strip() for line in kept[-lines:])
