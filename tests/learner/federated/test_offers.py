"""Site offers: each site's latest offer for a task, and a round id that depends on the offers."""

from __future__ import annotations

from driftloop.learner.federated.offers import Offer, SiteInputs, latest_offers, round_id_for
from driftloop.schemas.enums import TaskKind
from driftloop.schemas.events import SiteAdapter


def adapter(site: str, ts: float, version: str, *, task: str = "t", sha: str = "0",
            examples: int = 10) -> SiteAdapter:
    return SiteAdapter(ts=ts, site=site, task=task, version_id=version, base_model="m",
                       adapter_uri="file:///s/" + sha * 64, sha256=sha * 64, size_bytes=1,
                       examples=examples, lora_r=8, lora_alpha=16)


def test_each_site_s_latest_offer_of_the_task_by_site_name() -> None:
    offers = [Offer(adapter("b", 1.0, "b1")), Offer(adapter("a", 2.0, "a1")),
              Offer(adapter("b", 3.0, "b2")), Offer(adapter("a", 9.0, "x1", task="other")),
              Offer(adapter("a", 2.0, "a2"))]  # same timestamp: the one read later wins
    assert [o.adapter.version_id for o in latest_offers(offers, "t")] == ["a2", "b2"]
    assert [o.adapter.version_id for o in latest_offers(offers, "other")] == ["x1"]
    assert latest_offers(offers, "none") == []


def test_the_round_id_depends_on_sites_artifacts_and_counts_only() -> None:
    a, b = adapter("a", 1.0, "a1", sha="1"), adapter("b", 2.0, "b1", sha="2")
    rid = round_id_for("t", [a, b])
    assert rid.startswith("federated-") and len(rid) == len("federated-") + 16
    assert round_id_for("t", [b, a]) == rid  # order does not matter
    assert round_id_for("t", [a.model_copy(update={"ts": 5.0, "version_id": "v9"}), b]) == rid
    assert round_id_for("t", [a.model_copy(update={"examples": 11}), b]) != rid
    assert round_id_for("t", [adapter("a", 1.0, "a1", sha="3"), b]) != rid
    assert round_id_for("u", [a, b]) != rid


def test_site_inputs_name_their_round_by_the_accepted_offers() -> None:
    a, b = adapter("a", 1.0, "a1", sha="1"), adapter("b", 2.0, "b1", sha="2")
    inputs = SiteInputs("t", TaskKind.CLASSIFICATION, "m", accepted=[Offer(a), Offer(b)])
    assert inputs.round_id == round_id_for("t", [a, b])
    assert inputs.folders == [] and inputs.refused == []
