"""Coalescing a backlog of training requests: what merges, in which order, within which bound."""

from __future__ import annotations

import pytest

from driftloop.learner.coalesce import (
    coalesce,
    coalesce_key,
    covered_requests,
)
from driftloop.learner.registry.version_log import SUPERSEDED_METADATA_KEY
from driftloop.schemas.codec import encode
from driftloop.schemas.events import ModelVersion, TrainingRequest


def request(request_id: str, *texts: str, domain: str = "movies", task: str = "t",
            **fields: object) -> TrainingRequest:
    return TrainingRequest(id=request_id, ts=1.0, task=task, trigger="drift", examples=[
        {"input": text, "target": "positive", "domain": domain} for text in texts], **fields)


def test_the_newest_keeps_its_examples_and_takes_the_older_ones_it_lacks() -> None:
    merged = coalesce([request("r1", "a", "b"), request("r2", "b", "c"),
                       request("r3", "c", "d")], max_bytes=2**20)
    assert merged.request.id == "r3"
    assert [e.input for e in merged.request.examples] == ["c", "d", "b", "a"]  # newest first
    assert merged.superseded == ("r1", "r2")
    assert merged.request.metadata[SUPERSEDED_METADATA_KEY] == ["r1", "r2"]
    assert (merged.examples_added, merged.examples_dropped) == (2, 0)


def test_the_byte_bound_drops_the_oldest_examples_first() -> None:
    newest = request("r2", "n" * 100)
    bound = len(encode(newest)) + 256 + 200  # room for one more example, not two
    merged = coalesce([request("r1", "o" * 100, "p" * 100), newest], max_bytes=bound)
    assert len(encode(merged.request)) <= bound
    assert merged.examples_added == 1 and merged.examples_dropped == 1
    assert [e.input[0] for e in merged.request.examples] == ["n", "o"]


def test_requests_that_differ_in_what_they_train_never_share_a_key() -> None:
    key = coalesce_key(request("r", "a"))
    assert key == coalesce_key(request("s", "b"))
    assert key != coalesce_key(request("s", "b", domain="nyt"))
    assert key != coalesce_key(request("s", "b", task="other"))
    assert key != coalesce_key(request("s", "b", parent_version="t-v1"))
    assert key != coalesce_key(request("s", "b", labels=["negative", "positive"]))
    mixed = TrainingRequest(id="m", ts=1.0, task="t", trigger="drift", examples=[
        {"input": "a", "target": "x", "domain": "movies"},
        {"input": "b", "target": "x", "domain": "nyt"}])
    assert coalesce_key(mixed) is None  # trained as it is


def test_nothing_to_coalesce_is_a_clear_error_and_one_request_stays_itself() -> None:
    with pytest.raises(ValueError, match="nothing"):
        coalesce([], max_bytes=2**20)
    alone = request("r", "a")
    assert coalesce([alone], max_bytes=2**20).request is alone


def test_a_version_covers_its_own_request_and_those_it_superseded() -> None:
    def version(request_id: str, superseded: object = None) -> ModelVersion:
        metadata = {} if superseded is None else {SUPERSEDED_METADATA_KEY: superseded}
        return ModelVersion(version_id=f"t-{request_id}", task="t", base_model="m",
                            adapter_uri="file:///a", sha256="0" * 64, size_bytes=1,
                            status="promoted", training_request_id=request_id, ts=1.0,
                            metadata=metadata)

    covered = covered_requests([version("r3", ["r1", "r2"]), version("r4"),
                                version("r5", "not a list")])
    assert covered == {("t", i) for i in ("r1", "r2", "r3", "r4", "r5")}  # per task
