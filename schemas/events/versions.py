"""Adapter versions and what becomes of them: the registry's entries, the serving replicas'
acknowledgements, and a site's promoted adapter offered to the federation.

Examples
--------
>>> ack = ServingAck(ts=7.0, replica="pod-1", task="sentiment", version_id="v4",
...                  status="serving", previous_version="v3")
>>> ack.status, ack.previous_version
(<ServingStatus.SERVING: 'serving'>, 'v3')
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..enums import ServingStatus, VersionStatus
from ..fields import (
    Count,
    Name,
    Number,
    Sha256,
    Signature,
    Slug,
    Text,
    Timestamp,
    Uri,
    WholeNumber,
)
from .base import Event, Metadata, Metrics

__all__ = ["ModelVersion", "ServingAck", "SiteAdapter"]


class ModelVersion(Event):
    """One entry of the registry: an adapter version and its status (append-only log).

    Examples
    --------
    >>> from driftloop.schemas import ModelVersion
    >>> ModelVersion(version_id="v1", ts=5.0, task="sentiment", base_model="minilm",
    ...              adapter_uri="file:///a/v1", sha256="0" * 64, size_bytes=1024,
    ...              status="candidate").status
    <VersionStatus.CANDIDATE: 'candidate'>
    """

    schema_name: Literal["driftloop.model_version"]
    version_id: Name
    ts: Timestamp
    task: Slug
    base_model: Name
    parent_version: Name | None = None
    adapter_uri: Uri
    sha256: Sha256
    size_bytes: Count
    format: Name = "peft-lora-safetensors"
    training_request_id: Name | None = None
    labels: list[Name] | None = None
    """Classification: the labels in the order of the head's outputs."""
    max_length: Count | None = None
    """Tokens per input the adapter was trained and is served with."""
    prompt_template_id: Name | None = None
    metrics_before: Metrics = Field(default_factory=dict)
    metrics_after: Metrics = Field(default_factory=dict)
    status: VersionStatus
    reason: Text = ""
    metadata: Metadata = Field(default_factory=dict)
    signature: Signature | None = None
    """``hmac-sha256:<hex>`` over the event's other fields, when the deployment signs
    (``trust.signing_key``; see :mod:`driftloop.learner.trust`)."""

    def with_status(self, status: VersionStatus | str, *, ts: float,
                    reason: str = "") -> ModelVersion:
        """A copy of this event with a new status, time and reason (promote, reject, roll
        back): the artifact, lineage and metrics stay those of the version.

        >>> event = ModelVersion(version_id="v2", ts=5.0, task="t", base_model="m",
        ...                      adapter_uri="file:///a/v2", sha256="0" * 64, size_bytes=1,
        ...                      status="candidate")
        >>> promoted = event.with_status("promoted", ts=9.0, reason="won its A/B test")
        >>> promoted.status.value, promoted.ts, promoted.sha256 == event.sha256
        ('promoted', 9.0, True)
        """
        return self.model_copy(update={"status": VersionStatus(status), "ts": ts,
                                       "reason": reason, "signature": None})


class ServingAck(Event):
    """A serving replica's acknowledgement: it now serves a version, or it refused one.

    Keyed by replica and task on the compacted ``serving-acks`` topic, so the latest ack of
    every replica shows whether all of them converged on the promoted version. An ack of a
    domain's own head (a task with an adapter per domain) names the domain in
    ``metadata.domain`` (:attr:`domain`) and is keyed by replica, task and domain.

    Examples
    --------
    >>> from driftloop.schemas import ServingAck
    >>> ServingAck(ts=7.0, replica="pod-1", task="sentiment", version_id="v4",
    ...            status="refused", reason="sha256 mismatch").status
    <ServingStatus.REFUSED: 'refused'>
    """

    schema_name: Literal["driftloop.serving_ack"]
    ts: Timestamp
    replica: Name
    task: Slug
    version_id: Name
    status: ServingStatus
    reason: Text = ""
    previous_version: Name | None = None
    metadata: Metadata = Field(default_factory=dict)

    @property
    def domain(self) -> str | None:
        """The domain whose own head this ack is about; None: the task's version.

        >>> from driftloop.schemas import ServingAck
        >>> ack = ServingAck(ts=7.0, replica="pod-1", task="t", version_id="v4",
        ...                  status="serving", metadata={"domain": "movies"})
        >>> ack.domain, ack.model_copy(update={"metadata": {}}).domain
        ('movies', None)
        """
        domain = self.metadata.get("domain")
        return domain if isinstance(domain, str) else None


class SiteAdapter(Event):
    """A site's promoted adapter offered to the federation: a reference and a count, no data.

    Learners at separate sites publish these to ``site-adapters``; the aggregator
    (``driftloop aggregate``) merges adapters of one task, base model and LoRA shape,
    weighting each by ``examples``. No training example ever travels on this topic.

    Examples
    --------
    >>> from driftloop.schemas import SiteAdapter
    >>> SiteAdapter(ts=8.0, site="eu-1", task="sentiment", version_id="sentiment-1a",
    ...             base_model="minilm", adapter_uri="file:///a/" + "0" * 64, sha256="0" * 64,
    ...             size_bytes=4096, examples=512, lora_r=8, lora_alpha=16,
    ...             target_modules=["query", "value"]).examples
    512
    """

    schema_name: Literal["driftloop.site_adapter"]
    ts: Timestamp
    site: Name
    task: Slug
    version_id: Name
    base_model: Name
    adapter_uri: Uri
    sha256: Sha256
    size_bytes: Count
    format: Name = "peft-lora-safetensors"
    examples: Count
    lora_r: Annotated[WholeNumber, Field(ge=1)]
    lora_alpha: Annotated[Number, Field(gt=0)]
    target_modules: list[Name] = Field(default_factory=list)
    labels: list[Text] | None = None
    metrics: Metrics = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)
