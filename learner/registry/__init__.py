"""The registry: the version log folded from ``model-versions`` and the artifact store.
"""

from __future__ import annotations

from .store import ArtifactStore, StoredArtifact
from .version_log import VersionLog, version_id_for

__all__ = [
    "ArtifactStore",
    "StoredArtifact",
    "VersionLog",
    "version_id_for",
]
