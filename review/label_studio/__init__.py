"""The Label Studio bridge: label requests become Label Studio tasks, annotations come back
as ``Feedback`` (``driftloop review label-studio``).

One module per idea: :mod:`.client` (the REST API, token auth, retries), :mod:`.project`
(labeling config and task payloads), :mod:`.verdict` (what a task's annotations say
together), :mod:`.ledger` (what was published, read back from Kafka), :mod:`.bridge` (the
two steps), :mod:`.errors`. Needs aiohttp (``pip install 'driftloop[label-studio]'``).
"""

from __future__ import annotations

from .bridge import LabelStudioBridge
from .client import LabelStudioClient
from .errors import (
    LabelStudioAuthError,
    LabelStudioError,
    LabelStudioRequestError,
    LabelStudioUnreachable,
)
from .ledger import PublishedAnswers
from .verdict import Verdict, decide

__all__ = ["LabelStudioAuthError", "LabelStudioBridge", "LabelStudioClient",
           "LabelStudioError", "LabelStudioRequestError", "LabelStudioUnreachable",
           "PublishedAnswers", "Verdict", "decide"]
