"""Every setting driftloop's processes read, validated once at start.

Settings live beside the contracts because they are one: ``streams`` and ``learner`` share
nothing else, and must agree on the broker, the topic names and the artifact store.
One module per section family: :mod:`.kafka` (the broker), :mod:`.artifacts` (the adapter
store), :mod:`.tasks`, :mod:`.worker`, :mod:`.learner`, :mod:`.serving`, :mod:`.review`
(the review page), :mod:`.trust` (what may be loaded) and :mod:`.loading` (the
:class:`Settings` object and :func:`load_settings`: TOML file and environment).
:mod:`.label_studio` holds the Label Studio bridge's section.
"""

from __future__ import annotations

from ..errors import SettingsError
from .artifacts import ArtifactSettings
from .kafka import KafkaSettings
from .label_studio import LabelStudioSettings
from .learner import LearnerSettings
from .loading import CONFIG_ENV, DEFAULT_CONFIG_FILE, Settings, load_settings
from .review import ReviewSettings
from .serving import ServingSettings
from .tasks import TaskSettings
from .trust import TrustSettings
from .worker import (
    ABTestSettings,
    ActiveSettings,
    BufferSettings,
    DriftSettings,
    JoinSettings,
    TriggerSettings,
    WorkerSettings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "ABTestSettings",
    "ActiveSettings",
    "ArtifactSettings",
    "BufferSettings",
    "DriftSettings",
    "JoinSettings",
    "KafkaSettings",
    "LabelStudioSettings",
    "LearnerSettings",
    "ReviewSettings",
    "ServingSettings",
    "Settings",
    "SettingsError",
    "TaskSettings",
    "TriggerSettings",
    "TrustSettings",
    "WorkerSettings",
    "load_settings",
]
