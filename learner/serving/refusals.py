"""The versions a serving replica refused, and why.

A version is refused when its artifact cannot be served: missing, corrupt (sha256
mismatch), outside the store, in a format other than PEFT safetensors, or broken for the
loader. A refusal is remembered together with the artifact it named (URI and sha256), so
the same event read again is not retried, while a corrected event (the same version id
republished with its real artifact) is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ...schemas.enums import ServingStatus
from ...schemas.events import ModelVersion, ServingAck

__all__ = ["RefusedVersions", "VersionRefusal"]


@dataclass(frozen=True, slots=True)
class VersionRefusal:
    """A version this replica would not load; it keeps serving ``serving``."""

    task: str
    version_id: str
    reason: str
    serving: str | None

    def ack(self, replica: str) -> ServingAck:
        """``replica``'s acknowledgement: it refused :attr:`version_id`, serves :attr:`serving`.

        >>> VersionRefusal("t", "v2", "sha256 mismatch", "v1").ack("pod-1").status.value
        'refused'
        """
        return ServingAck(ts=time.time(), replica=replica, task=self.task,
                          version_id=self.version_id, status=ServingStatus.REFUSED,
                          reason=self.reason, previous_version=self.serving,
                          metadata={"serving": self.serving})


class RefusedVersions:
    """What a replica refused: the reason by version id, and the artifact refused.

    ``event in refused`` is true when that version was refused *with that artifact*.

    Examples
    --------
    >>> event = ModelVersion(version_id="v1", ts=1.0, task="t", base_model="m",
    ...                      adapter_uri="file:///s/" + "0" * 64, sha256="0" * 64,
    ...                      size_bytes=1, status="promoted")
    >>> refused = RefusedVersions()
    >>> refused.add(event, "sha256 mismatch", serving=None)
    VersionRefusal(task='t', version_id='v1', reason='sha256 mismatch', serving=None)
    >>> event in refused, refused.reasons
    (True, {'v1': 'sha256 mismatch'})
    >>> event.model_copy(update={"sha256": "1" * 64}) in refused  # corrected: tried again
    False
    """

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}
        self._artifacts: dict[str, tuple[str, str]] = {}

    def add(self, event: ModelVersion, reason: str, *, serving: str | None) -> VersionRefusal:
        """Remember that ``event``'s artifact was refused, and why, while the task serves
        ``serving``; return the refusal."""
        self.reasons[event.version_id] = reason
        self._artifacts[event.version_id] = (event.adapter_uri, event.sha256)
        return VersionRefusal(event.task, event.version_id, reason, serving)

    def __contains__(self, event: object) -> bool:
        if not isinstance(event, ModelVersion):
            return False
        return self._artifacts.get(event.version_id) == (event.adapter_uri, event.sha256)
