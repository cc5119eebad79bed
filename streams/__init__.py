"""driftloop's stream side: the Faust worker, drift detectors, buffers, triggers.

Never imports torch, transformers or peft: workers scale out on CPUs. The names below load
without Faust; the worker itself is :mod:`.worker` (the app and its wiring, :mod:`.agents`),
built from pieces with one job each: :mod:`.step` (apply one record, write the state),
:mod:`.tables`, :mod:`.source_order`, :mod:`.ownership`, :mod:`.watchdog`, :mod:`.liveness`
and :mod:`.relay`.

>>> from driftloop.streams import DriftMonitor, ReplayBuffer, TriggerGate
"""

from __future__ import annotations

from .active import ActiveSampler
from .buffer import LabeledExample, ReplayBuffer
from .canary import CanaryComparison
from .detectors import DriftMonitor
from .drift import DriftWatch
from .errors import StreamsError
from .join import JoinWindow
from .pairing import OutcomePairing
from .pipeline import TaskState
from .quality import QualityTracker
from .requests import TrainingRequests
from .sprt import PairedSPRT
from .triggers import TriggerGate

__all__ = [
    "ActiveSampler",
    "CanaryComparison",
    "DriftMonitor",
    "DriftWatch",
    "JoinWindow",
    "LabeledExample",
    "OutcomePairing",
    "PairedSPRT",
    "QualityTracker",
    "ReplayBuffer",
    "StreamsError",
    "TaskState",
    "TrainingRequests",
    "TriggerGate",
]
