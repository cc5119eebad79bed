"""What sites offer a federated round: decoded site adapters, refusals, a round's inputs.

A site offers a promoted adapter on ``site-adapters`` (a reference, its sha256 and example
count, never examples). A round takes each site's latest offer for the task; the offers
that pass the aggregator's checks, with their verified local files, are the round's
:class:`SiteInputs`, and the round's id derives from them alone, so the same offers always
make the same round (and the same version id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...schemas.enums import TaskKind
from ...schemas.events import SiteAdapter

__all__ = ["Offer", "Refusal", "SiteInputs", "latest_offers", "round_id_for"]


@dataclass(frozen=True, slots=True)
class Offer:
    """A decoded site adapter and where it was read (``topic[partition]@offset``)."""

    adapter: SiteAdapter
    where: str = ""
    partition: int = -1
    offset: int = -1
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An offer left out of the merge and why."""

    offer: Offer
    reason: str


@dataclass(slots=True)
class SiteInputs:
    """The offers that passed every check, their local files and the refused ones."""

    task: str
    kind: TaskKind
    base_model: str
    accepted: list[Offer] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def round_id(self) -> str:
        return round_id_for(self.task, [o.adapter for o in self.accepted])


def latest_offers(offers: Sequence[Offer], task: str) -> list[Offer]:
    """Each site's latest offer for ``task`` (by timestamp, then order read), by site name.

    >>> def offer(site, ts, version):
    ...     return Offer(SiteAdapter(ts=ts, site=site, task="t", version_id=version,
    ...         base_model="m", adapter_uri="file:///s/" + "0" * 64, sha256="0" * 64,
    ...         size_bytes=1, examples=10, lora_r=8, lora_alpha=16))
    >>> [o.adapter.version_id for o in latest_offers(
    ...     [offer("b", 1.0, "b1"), offer("a", 2.0, "a1"), offer("b", 3.0, "b2")], "t")]
    ['a1', 'b2']
    """
    latest: dict[str, Offer] = {}
    for offer in offers:
        if offer.adapter.task != task:
            continue
        known = latest.get(offer.adapter.site)
        if known is None or offer.adapter.ts >= known.adapter.ts:
            latest[offer.adapter.site] = offer
    return [latest[site] for site in sorted(latest)]


def round_id_for(task: str, adapters: Sequence[SiteAdapter]) -> str:
    """A round's id: the same offers (site, sha256, count) always give the same id.

    >>> a = SiteAdapter(ts=1.0, site="a", task="t", version_id="v", base_model="m",
    ...     adapter_uri="file:///s/" + "0" * 64, sha256="0" * 64, size_bytes=1,
    ...     examples=10, lora_r=8, lora_alpha=16)
    >>> round_id_for("t", [a]) == round_id_for("t", [a.model_copy(update={"ts": 9.0})])
    True
    """
    parts = sorted(f"{a.site}\0{a.sha256}\0{a.examples}" for a in adapters)
    digest = hashlib.sha256("\n".join([task, *parts]).encode()).hexdigest()
    return f"federated-{digest[:16]}"
