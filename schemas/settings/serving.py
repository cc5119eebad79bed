"""The serving side's settings (``[serving]``): the adapter subscriber and ``driftloop serve``.

Examples
--------
>>> ServingSettings(tasks=["sentiment"], canary_fraction=0.1).tasks
('sentiment',)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from .section import Section, data_home

__all__ = ["ServingSettings"]


class ServingSettings(Section):
    """The serving side: the adapter subscriber and the reference service (``driftloop serve``)."""

    host: str = Field("127.0.0.1", description="interface the HTTP service listens on")
    port: int = Field(8080, gt=0, lt=65536, description="port of /predict, /feedback, /metrics")
    replica_id: str | None = Field(
        None, min_length=1, max_length=256,
        description="name of this replica in acknowledgements; None = <hostname>-<pid>")
    tasks: tuple[str, ...] = Field(
        (), description="tasks this replica serves; empty = every task on model-versions")
    zero_shot: bool = Field(
        True, description="a generation task ([tasks.<name>] kind = generation) with no version "
                          "yet answers with its base model under its prompt template")
    keep_versions: int = Field(
        3, gt=0, description="adapters kept loaded per task (the serving one + instant rollbacks)")
    canary_fraction: float = Field(
        0.0, ge=0.0, le=1.0,
        description="share of requests answered by the newest candidate version (0 = off)")
    cache_dir: Path = Field(default_factory=lambda: data_home() / "serving",
                            description="local copies of verified adapters")
    torch_threads: int | None = Field(None, gt=0)
    max_inputs: int = Field(64, gt=0, description="texts accepted in one /predict request")
    max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024,
        description="largest HTTP request body (a larger one gets 413 before it is read)")
    max_batch: int = Field(
        32, gt=0, description="texts in one forward pass (waiting requests are batched)")
    batch_max_events: int = Field(
        256, gt=0, description="interactions or feedback carried by one batch envelope")
    batch_linger_ms: float = Field(
        5.0, ge=0.0, description="wait for more events before sending a batch (under load)")
    poll_wait_ms: int = Field(
        100, gt=0, description="longest broker wait of the subscriber's fetch (bounds swap delay)")
