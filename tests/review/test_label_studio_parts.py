"""The Label Studio bridge's parts that need no server: labeling configs and task payloads
(``review/label_studio/project.py``), what annotations decide (``verdict.py``), what was
published (``ledger.py``)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aiokafka.partitioner import DefaultPartitioner

from driftloop.review.label_studio.ledger import PublishedAnswers, key_partition
from driftloop.review.label_studio.project import labeling_config, request_of, task_payload
from driftloop.review.label_studio.verdict import decide
from driftloop.schemas import Feedback, Interaction, LabelRequest
from driftloop.schemas.settings import Settings


def request(task: str = "s", **seen: object) -> LabelRequest:
    interaction = Interaction(id="i-1", ts=1.0, task=task, model_version="v1",
                              input="2 + 2?", **seen)
    return LabelRequest(id="lr-i-1", ts=2.0, task=task, interaction=interaction,
                        reason="uncertainty", priority=0.7)


def annotation(id: int, value: str | None, stamp: str, **extra: object) -> dict:
    result = [] if value is None else [{"from_name": "answer", "type": "choices",
                                        "value": {"choices": [value]}}]
    return {"id": id, "updated_at": stamp, "result": result, **extra}


def test_labels_with_markup_characters_stay_one_choice_each() -> None:
    settings = Settings(tasks={"s": {"labels": ['say "no"', "<yes> & co"]}})
    root = ET.fromstring(labeling_config(settings, "s"))
    assert [c.get("value") for c in root.iter("Choice")] == ['say "no"', "<yes> & co"]


def test_a_generation_request_is_prefilled_with_the_models_answer() -> None:
    settings = Settings(tasks={"qa": {"kind": "generation"}})
    payload = task_payload(settings, request("qa", output="5"))
    assert payload["data"]["model_answer"] == "5"
    [prediction] = payload["predictions"]
    assert prediction["result"][0]["value"] == {"text": ["5"]}
    assert prediction["score"] == 0.3
    assert "choices" not in payload["data"]
    assert request_of(payload["data"]).interaction.output == "5"


def test_without_configured_labels_each_task_offers_the_labels_the_model_scored() -> None:
    payload = task_payload(Settings(), request(
        prediction="odd", scores={"probabilities": {"odd": 0.6, "even": 0.4}}))
    assert payload["data"]["choices"] == [{"value": "even"}, {"value": "odd"}]
    assert payload["predictions"][0]["result"][0]["value"] == {"choices": ["odd"]}


def test_a_model_answer_outside_the_labels_is_not_prefilled() -> None:
    settings = Settings(tasks={"s": {"labels": ["a", "b"]}})
    payload = task_payload(settings, request(prediction="zzz"))
    assert payload["predictions"][0]["result"] == []


def test_the_latest_ground_truth_decides_and_invalid_or_empty_answers_do_not_count() -> None:
    anns = [annotation(1, "a", "2026-01-01T00:00:01Z", ground_truth=True),
            annotation(2, "b", "2026-01-01T00:00:03Z", ground_truth=True),
            annotation(3, "a", "2026-01-01T00:00:02Z")]
    assert decide(anns).value == "b" and decide(anns).deciding["id"] == 2
    disputed = [annotation(1, "a", "t1"), annotation(2, "zzz", "t2"), annotation(3, None, "t3")]
    assert decide(disputed).conflict == ("a", "zzz")
    assert decide(disputed, valid=[1, 3]).value == "a"  # 2 gave a value the task refuses
    assert decide([annotation(4, None, "t4")]).value is None


def test_the_ledger_keeps_the_highest_revision_whatever_the_reading_order() -> None:
    ledger = PublishedAnswers()

    def answer(revision: int, value: str) -> Feedback:
        return Feedback(id=f"lr.review.{revision}", interaction_id="i", ts=1.0, task="s",
                        kind="label", value=value, source="reviewer",
                        metadata={"label_request_id": "lr", "revision": revision,
                                  "ls_annotation_id": 1})

    for revision, value in ((0, "a"), (2, "c"), (1, "b")):
        ledger.record(answer(revision, value))
    assert (ledger.get("lr").revision, ledger.get("lr").value) == (2, "c")
    # The page's reviewer feedback has no annotation id: not the bridge's to remember.
    page = answer(3, "d").model_copy(update={"metadata": {"label_request_id": "lr"}})
    assert not ledger.record(page) and ledger.get("lr").value == "c"


def test_the_partition_of_a_key_is_the_one_the_publisher_sends_it_to() -> None:
    # The bridge reads back only these partitions of the feedback topic; Publisher's
    # producer places keyed messages with aiokafka's default partitioner.
    partitioner = DefaultPartitioner()
    for key in (b"sentiment", b"qa", b"t", "données".encode()):
        for count in (1, 3, 6):
            assert key_partition(key, count) == partitioner(key, list(range(count)), [])
