"""One run's play of the stream, on stand-in learner and serving parts (no model loads).

The real parts (MiniLM training and serving) are exercised by test_bench_quality; here the
run's own logic is checked: batches within a domain, labels learnt only after they are
scored, updates on the schedule, the head moved only by a promotion, the retraining
reference always served, held-out scores at every domain's end.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from driftloop.schemas import ModelVersion, TrainingRequest, VersionStatus
from driftloop.tools.bench.quality.stream_runs import TASK, play_run
from driftloop.tools.demo.traffic import DemoData, StreamItem


def item(domain: str, n: int) -> StreamItem:
    return StreamItem(id=f"{domain}-{n}", domain=domain, text=f"{domain} text {n}",
                      label=("negative", "positive")[n % 2])


def version(version_id: str, status: VersionStatus, request_id: str | None = None,
            parent: str | None = None) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task=TASK, base_model="m",
                        adapter_uri=f"file:///a/{version_id}", sha256="0" * 64, size_bytes=1,
                        training_request_id=request_id, parent_version=parent, status=status)


class StandInParts:
    """LoopParts' interface: every answer right, every update promoted or rejected."""

    bootstrap_holdout = ()

    def __init__(self, gate_says: VersionStatus) -> None:
        self.gate_says = gate_says
        pool = SimpleNamespace(admit=lambda examples: None)
        self.updater = SimpleNamespace(clear_gate_pool=lambda task: None,
                                       gate_pool=lambda task: pool)
        self.retrainer = object()
        self.trained: list[tuple[bool, TrainingRequest]] = []
        self.loaded: list[str] = []
        self.batches: list[tuple[str, set[str]]] = []
        self.scored: list[str] = []

    def serve(self, run: str, event: ModelVersion) -> tuple[float, float]:
        self.loaded.append(event.version_id)
        return 0.5, 0.25

    def predict(self, run: str, version_id: str, items: list[StreamItem],
                batch: int) -> list[tuple[str, float]]:
        assert len(items) <= batch
        self.batches.append((version_id, {i.domain for i in items}))
        return [(i.label, 0.9) for i in items]

    def train(self, updater: object, request: TrainingRequest,
              versions: object) -> tuple[object, float, float]:
        self.trained.append((updater is self.retrainer, request))
        event = version(f"v-{request.id}", self.gate_says, request.id, request.parent_version)
        return SimpleNamespace(event=event,
                               train_report=SimpleNamespace(examples_seen=len(request.examples))
                               ), 2.0, 1.0

    def heldout(self, run: str, version_id: str, data: DemoData,
                batch: int) -> dict[str, float]:
        self.scored.append(version_id)
        return {domain: 1.0 for domain in data.heldout}


DATA = DemoData(stream=[item("tweets", n) for n in range(20)] + [item("movies", n)
                                                                  for n in range(20)],
                heldout={"tweets": [item("tweets", 99)], "movies": [item("movies", 99)]},
                bootstrap=[item("tweets", 100 + n) for n in range(8)])
BOOTSTRAP = version("v0", VersionStatus.PROMOTED)


def play(name: str, gate_says: VersionStatus = VersionStatus.PROMOTED
         ) -> tuple[StandInParts, object, list[int]]:
    parts, progress = StandInParts(gate_says), []
    result = play_run(parts, name, name, DATA, BOOTSTRAP, every_examples=8, batch_events=6,
                      progress=progress.append)
    return parts, result, progress


def test_without_updates_the_bootstrap_serves_the_whole_stream_in_domain_batches() -> None:
    parts, result, progress = play("none")
    assert parts.trained == [] and parts.loaded == ["v0"] and result.updates == 0
    assert all(len(domains) == 1 and v == "v0" for v, domains in parts.batches)
    assert progress == [6, 6, 6, 2, 6, 6, 6, 2]  # a batch never straddles two domains
    assert result.correct == [True] * 40
    assert result.domains == [i.domain for i in DATA.stream]
    assert list(result.after_domain) == ["tweets", "movies"] and parts.scored == ["v0", "v0"]


@pytest.mark.parametrize("gate_says", [VersionStatus.PROMOTED, VersionStatus.REJECTED])
def test_a_driftloop_run_trains_on_the_schedule_and_serves_only_what_its_gate_promotes(
        gate_says: VersionStatus) -> None:
    parts, result, _ = play("replay", gate_says)
    assert result.updates == len(parts.trained) >= 2
    assert not any(retrained for retrained, _ in parts.trained)
    first = parts.trained[0][1]
    assert first.id == "replay-000" and first.parent_version == "v0"
    promoted = gate_says is VersionStatus.PROMOTED
    assert result.promoted == (result.updates if promoted else 0)
    assert len(parts.loaded) == 1 + result.promoted
    if promoted:  # each update trains on the head its predecessor made
        assert [r.parent_version for _, r in parts.trained[1:]] == [
            f"v-{r.id}" for _, r in parts.trained[:-1]]
        assert parts.scored[-1] == parts.loaded[-1]
    else:
        assert {r.parent_version for _, r in parts.trained} == {"v0"}
    assert result.update_seconds == 0.5 * len(parts.loaded) + 2.0 * result.updates


def test_the_retraining_reference_learns_every_label_seen_and_always_serves() -> None:
    parts, result, _ = play("retrain", VersionStatus.REJECTED)
    assert all(retrained for retrained, _ in parts.trained)
    sizes = [len(r.examples) for _, r in parts.trained]
    assert sizes == sorted(sizes) and sizes[0] > len(DATA.bootstrap)  # the bootstrap included
    assert all(r.parent_version is None for _, r in parts.trained)
    assert result.promoted == result.updates and parts.loaded[-1] == f"v-{parts.trained[-1][1].id}"
