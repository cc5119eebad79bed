"""The demo's verdict from scores: the final version against the static one, per domain."""

from __future__ import annotations

from driftloop.schemas import ModelVersion, VersionStatus
from driftloop.tools.demo.judge import final_verdict
from driftloop.tools.demo.live import LoopOutcome
from driftloop.tools.demo.progress import ProgressState
from driftloop.tools.demo.shifts import ShiftResult
from driftloop.tools.demo.traffic import DemoData, ServedPrediction, StreamItem
from driftloop.tools.demo.verdict import DomainResult


def version(version_id: str, status: VersionStatus) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task="sentiment", base_model="m",
                        adapter_uri=f"file:///a/{version_id}", sha256="0" * 64, size_bytes=1,
                        status=status)


def item(n: int, domain: str, label: str) -> StreamItem:
    return StreamItem(id=f"{domain}-{n}", domain=domain, text=f"text {n}", label=label)


class TableScorer:
    """Held-out scores from a table; the static model answers ``positive`` to everything."""

    def __init__(self, scores: dict[tuple[str, str], float]) -> None:
        self.scores = scores

    def submit(self, version: ModelVersion, items: list[StreamItem]) -> None:
        pass

    def predict(self, version: ModelVersion, items: list[StreamItem]) -> list[str]:
        return ["positive"] * len(items)

    def score(self, version: ModelVersion, items: list[StreamItem]) -> float:
        return self.scores[(version.version_id, items[0].domain)]


def test_the_verdict_compares_the_last_promoted_version_with_the_static_one() -> None:
    stream = [item(0, "tweets", "positive"), item(1, "tweets", "negative"),
              item(2, "movies", "negative"), item(3, "movies", "negative")]
    data = DemoData(stream=stream, bootstrap=[],
                    heldout={"tweets": [item(9, "tweets", "positive")],
                             "movies": [item(9, "movies", "negative")]})
    v0, v1, v2, v3 = (version("v0", VersionStatus.PROMOTED), version("v1", VersionStatus.PROMOTED),
                      version("v2", VersionStatus.REJECTED), version("v3", VersionStatus.PROMOTED))
    # the static model served the tweets, v1 the first movie, v3 the second
    served = [ServedPrediction(stream[0], "positive", "v0", 1.0),
              ServedPrediction(stream[1], "positive", "v0", 2.0),
              ServedPrediction(stream[2], "positive", "v1", 3.0),
              ServedPrediction(stream[3], "negative", "v3", 4.0)]
    outcome = LoopOutcome(ProgressState(versions=[v0, v1, v2, v3]), served,
                          domain_starts={"tweets": 1.0, "movies": 3.0}, static=v0,
                          feedback_sent=0, noisy_feedback=0, reviewer_answers=0,
                          label_times=[1.5, 2.5, 3.2, 3.5, 3.8])
    scorer = TableScorer({("v0", "tweets"): 0.6, ("v1", "tweets"): 0.8, ("v3", "tweets"): 0.7,
                          ("v0", "movies"): 0.5, ("v1", "movies"): 0.45,
                          ("v3", "movies"): 0.75})

    verdict = final_verdict(scorer, data, outcome)

    assert (verdict.static_version, verdict.final_version) == ("v0", "v3")
    assert (verdict.first_domain_best, verdict.first_domain_best_version) == (0.8, "v1")
    assert verdict.domains == [DomainResult("tweets", 0.6, 0.7, 0.5, 0.5, 2),
                               DomainResult("movies", 0.5, 0.75, 0.5, 0.0, 2)]
    assert (verdict.promoted, verdict.rejected, verdict.shifted) == (2, 1, ["movies"])
    assert round(verdict.forgetting, 2) == 0.1
    # Movies began under v0 (0.5); v1 (0.45) was no better, v3 (0.75) was: three labels came
    # between the start of movies (3.0) and v3's first answer (4.0).
    assert verdict.shifts == [ShiftResult("movies", "v0", 0.5, "v3", 0.75, 3)]
    assert verdict.at_first_shift == 0.5
