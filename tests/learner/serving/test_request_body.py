"""Request bodies of the reference service, checked without a server, a broker or a model."""

from __future__ import annotations

import pytest

from driftloop.learner.serving import Prediction
from driftloop.learner.serving.request_body import (
    BadRequest,
    PredictRequest,
    TooLarge,
    check_size,
    feedback_event,
)
from driftloop.schemas import Interaction

POSITIVE = Prediction("positive", 0.9, {"negative": 0.1, "positive": 0.9}, [0.5] * 4, "v1",
                      input_embedding=[0.25] * 3)
GENERATED = Prediction("a long answer", None, {}, [], "v1", output="a long answer",
                       classified=False, input_embedding=[0.125] * 3)


@pytest.mark.parametrize("body, reason", [
    ({"input": "x"}, "'task'"),
    ({"task": ""}, "'task'"),
    ({"task": "t"}, "'input'"),
    ({"task": "t", "inputs": ["a", 3]}, "'inputs'"),
    ({"task": "t", "input": ""}, "'input'"),
    ({"task": "t", "inputs": ["a", "b", "c"]}, "at most 2"),
    ({"task": "t", "input": "a", "ids": ["1", "2"]}, "one per input"),
    ({"task": "t", "input": "a", "id": 7}, "one per input"),
    ({"task": "t", "input": "a", "metadata": 3}, "'metadata'"),
])
def test_a_bad_predict_body_names_what_is_wrong(body: dict, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as raised:
        PredictRequest.parse(body, max_inputs=2)
    assert raised.value.status == 400


def test_ids_default_to_fresh_ones_one_per_input() -> None:
    request = PredictRequest.parse({"task": "t", "inputs": ["a", "b"]}, max_inputs=2)
    assert not request.single and request.texts == ["a", "b"]
    assert len(set(request.ids)) == 2 and all(len(i) == 32 for i in request.ids)
    given = PredictRequest.parse({"task": "t", "inputs": ["a", "b"], "ids": ["x", "y"],
                                  "domain": "news", "metadata": {"k": 1}}, max_inputs=2)
    assert (given.ids, given.domain, given.metadata) == (["x", "y"], "news", {"k": 1})


def test_the_interaction_carries_the_answer_scores_and_where_it_came_from() -> None:
    request = PredictRequest.parse({"task": "t", "input": "great", "id": "r1",
                                    "metadata": {"k": 1}}, max_inputs=2)
    event = request.interaction("r1", "great", POSITIVE, version="v1", replica="pod-1",
                                canary=True, now=5.0)
    assert isinstance(event, Interaction)
    assert (event.id, event.ts, event.task, event.model_version, event.output,
            event.prediction) == ("r1", 5.0, "t", "v1", "positive", "positive")
    assert event.scores.confidence == 0.9 and event.embedding == [0.5] * 4
    assert event.input_embedding == [0.25] * 3  # the worker's version-free input signal
    assert event.metadata == {"k": 1, "replica": "pod-1", "canary": True}
    generated = request.interaction("r1", "great", GENERATED, version="v1", replica="pod-1",
                                    canary=False, now=5.0)
    assert generated.output == "a long answer" and generated.prediction is None
    assert generated.embedding is None and generated.input_embedding == [0.125] * 3


def test_a_domain_the_contract_refuses_is_a_bad_request() -> None:
    for domain in (9 ** 99, {"a": 1}, ["news"]):  # it picks a version: checked at parsing
        with pytest.raises(BadRequest, match="'domain' must be a string"):
            PredictRequest.parse({"task": "t", "input": "x", "domain": domain}, max_inputs=1)
    request = PredictRequest.parse({"task": "t", "input": "x", "domain": "two words"},
                                   max_inputs=1)
    with pytest.raises(BadRequest, match="domain"):
        request.interaction("r1", "x", POSITIVE, version="v1", replica="p", canary=False,
                            now=1.0)


def test_the_response_is_one_answer_or_the_list() -> None:
    single = PredictRequest.parse({"task": "t", "input": "x"}, max_inputs=2)
    body = single.response([("r1", POSITIVE)], version="v1", canary=False)
    assert body == {"id": "r1", "output": "positive", "prediction": "positive",
                    "confidence": 0.9, "probabilities": POSITIVE.probabilities,
                    "model_version": "v1", "task": "t", "canary": False}
    batch = PredictRequest.parse({"task": "t", "inputs": ["x", "y"]}, max_inputs=2)
    body = batch.response([("r1", POSITIVE), ("r2", GENERATED)], version="v1", canary=True)
    assert (body["task"], body["model_version"], body["canary"]) == ("t", "v1", True)
    assert [(a["id"], a["output"], a["prediction"]) for a in body["predictions"]] == [
        ("r1", "positive", "positive"), ("r2", "a long answer", None)]


def test_feedback_defaults_its_id_and_time_and_names_a_bad_field() -> None:
    event = feedback_event({"interaction_id": "i1", "task": "t", "kind": "label",
                            "value": "positive"})
    assert len(event.id) == 32 and event.ts > 0
    assert feedback_event({"id": "f1", "ts": 2.0, "interaction_id": "i1", "task": "t",
                           "kind": "label", "value": "positive"}).id == "f1"
    with pytest.raises(BadRequest, match="value"):
        feedback_event({"interaction_id": "i1", "task": "t", "kind": "rating",
                        "value": "five"})


def test_an_event_over_its_topic_limit_is_too_large() -> None:
    huge = Interaction(id="i", ts=1.0, task="t", model_version="v1", input="x" * 10_000_000,
                       prediction="positive")
    with pytest.raises(TooLarge, match="limit of one event") as raised:
        check_size(huge)
    assert raised.value.status == 413
    check_size(Interaction(id="i", ts=1.0, task="t", model_version="v1", input="x",
                           prediction="positive"))


def test_probe_traffic_is_answered_and_published_marked() -> None:
    request = PredictRequest.parse({"task": "t", "input": "ping", "probe": True}, max_inputs=2)
    event = request.interaction("i1", "ping", POSITIVE, version="v1", replica="r",
                                canary=False, now=1.0)
    assert request.probe and event.probe
    plain = PredictRequest.parse({"task": "t", "input": "hello"}, max_inputs=2)
    assert not plain.interaction("i2", "hello", POSITIVE, version="v1", replica="r",
                                 canary=False, now=1.0).probe
    with pytest.raises(BadRequest, match="'probe' must be true or false"):
        PredictRequest.parse({"task": "t", "input": "x", "probe": "yes"}, max_inputs=2)
