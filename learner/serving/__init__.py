"""The serving side: follow ``model-versions``, hot-swap adapters, serve and report back.

Importable without Faust (and without aiohttp, unless :mod:`.http` is imported): a serving
layer embeds :class:`AdapterSubscriber` + :class:`ModelHost`; ``driftloop serve`` runs the
reference HTTP service built on them.
"""

from __future__ import annotations

from .acks import AckPublisher, converged, latest_acks, read_acks
from .batcher import EventBatcher
from .feed import VersionFeed
from .loader import AdapterLoader
from .model_host import ModelHost, Prediction
from .probe import write_generation_probe, write_probe_adapter
from .refusals import RefusedVersions, VersionRefusal
from .served import ServedVersions, ServingChange
from .subscriber import AdapterSubscriber

__all__ = [
    "AckPublisher",
    "AdapterLoader",
    "AdapterSubscriber",
    "EventBatcher",
    "ModelHost",
    "Prediction",
    "RefusedVersions",
    "ServedVersions",
    "ServingChange",
    "VersionFeed",
    "VersionRefusal",
    "converged",
    "latest_acks",
    "read_acks",
    "write_generation_probe",
    "write_probe_adapter",
]
