"""The demo's first version: the static model, trained on the first domain and served.

Everything after it (drift, updates, the verdict) is measured against this version, so the
run cannot start without it: the request is sent again, in another order, when the gate
rejects it, and the demo waits until the service answers with it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ...client.kafka import new_producer
from ...schemas import (
    ModelVersion,
    Topic,
    TrainingExample,
    TrainingRequest,
    TriggerKind,
    VersionStatus,
    encode,
)
from ...schemas.settings import Settings
from ...schemas.topics import TRAINING_REQUEST_MAX_BYTES
from .processes import ChildProcesses, DemoChildError, wait_until
from .profile import LABELS, TASK
from .progress import ProgressState
from .traffic import DemoData

__all__ = ["BOOTSTRAP_ATTEMPTS", "DECIDED", "bootstrap_until_promoted", "decided",
           "send_bootstrap_request"]


async def send_bootstrap_request(settings: Settings, data: DemoData, request_id: str,
                                 seed: int) -> TrainingRequest:
    """Ask the learner for the static model: the bootstrap examples, shuffled by ``seed``."""
    examples = list(data.bootstrap)
    # another order, another start (the gate's holdout is chosen by content: the same texts)
    random.Random(seed).shuffle(examples)
    request = TrainingRequest(
        id=request_id, ts=time.time(), task=TASK, trigger=TriggerKind.MANUAL,
        reason="demo bootstrap: the static model", labels=list(LABELS),
        examples=[TrainingExample(input=i.text, target=i.label, domain=i.domain,
                                  interaction_id=i.id) for i in examples])
    async with new_producer(settings, max_request_size=TRAINING_REQUEST_MAX_BYTES) as producer:
        await producer.send_and_wait(settings.kafka.topic(Topic.TRAINING_REQUESTS),
                                     encode(request), key=TASK.encode())
    return request


# The learner's two verdicts on a request.
DECIDED = (VersionStatus.PROMOTED, VersionStatus.REJECTED)


def decided(state: ProgressState, request_id: str) -> ModelVersion | None:
    """The learner's verdict (promoted or rejected version) on one request, if any yet."""
    for version in state.versions:
        if version.training_request_id == request_id and version.status in DECIDED:
            return version
    return None


BOOTSTRAP_ATTEMPTS = 3


async def bootstrap_until_promoted(settings: Settings, data: DemoData, run_id: str,
                                   state: ProgressState, children: ChildProcesses,
                                   say: Callable[[str], None]) -> ModelVersion:
    """Train the static model; ask again (another shuffle) when the gate rejects it.

    The first version's gate compares it with an untrained head on a holdout of ~40 texts,
    and a tie is a rejection: seen once in six quick runs.
    """
    for attempt in range(1, BOOTSTRAP_ATTEMPTS + 1):
        request = await send_bootstrap_request(settings, data, f"{run_id}-bootstrap-{attempt}",
                                               attempt)
        say(f"bootstrap: {len(request.examples)} {data.bootstrap[0].domain} examples sent "
            "to the learner ...")
        request_id = request.id
        await wait_until(lambda: decided(state, request_id) is not None, timeout=300,  # noqa: B023
                         what="the learner's answer to the bootstrap", check=children.check)
        version = decided(state, request_id)
        assert version is not None
        if version.status is VersionStatus.PROMOTED:
            version_id = version.version_id
            await wait_until(lambda: state.served(version_id), timeout=120,  # noqa: B023
                             what="the service serving the bootstrap version",
                             check=children.check)
            return version
        say(f"bootstrap {version.version_id} rejected by the gate ({version.reason}); again")
    raise DemoChildError(f"the learner rejected {BOOTSTRAP_ATTEMPTS} bootstrap versions")
