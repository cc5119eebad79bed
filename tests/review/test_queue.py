"""ReviewQueue: what waits in which order, one entry per interaction, answers held for the
undo window, what is settled, neighbours (``review/queue.py``)."""

from __future__ import annotations

import pytest
from review_samples import label_request

from driftloop.review import (
    AlreadyAnswered,
    InvalidAnswer,
    NothingToUndo,
    ReviewQueue,
    TaskCounts,
    UnknownRequest,
)
from driftloop.schemas import FeedbackSource
from driftloop.schemas.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock: Clock) -> ReviewQueue:
    return ReviewQueue(Settings(), undo_window_s=10.0, memory=50, clock=clock)


def ids(requests) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.id for r in requests]


def test_requests_are_offered_by_priority_then_oldest_per_task(queue: ReviewQueue) -> None:
    for request in (label_request(1, priority=0.2), label_request(2, priority=0.9),
                    label_request(3, priority=0.9, ts=999.0), label_request(4, priority=0.5),
                    label_request(5, priority=0.95, task="toxicity")):
        assert queue.offer(request)
    assert ids(queue.pending("sentiment")) == ["lr-i3", "lr-i2", "lr-i4", "lr-i1"]
    assert queue.next("sentiment").id == "lr-i3"
    assert queue.next().id == "lr-i5"  # across tasks: the highest priority anywhere
    assert queue.next("sentiment", exclude=["lr-i3"]).id == "lr-i2"
    assert queue.pending("sentiment", limit=2) == queue.pending("sentiment")[:2]
    assert queue.next("nothing-here") is None
    assert queue.tasks == ["sentiment", "toxicity"]


def test_a_second_request_for_an_interaction_merges_into_one_entry(queue: ReviewQueue) -> None:
    first = label_request(1, priority=0.4)
    assert queue.offer(first)
    assert not queue.offer(first)  # the same request again (redelivered): nothing new
    lower = label_request(1, priority=0.3, request_id="lr-again-low")
    assert not queue.offer(lower)
    higher = label_request(1, priority=0.8, request_id="lr-again-high")
    assert queue.offer(higher)
    assert ids(queue.pending()) == ["lr-again-high"]  # one entry, the higher priority
    assert queue.settled("lr-i1") and queue.settled("lr-again-low")  # superseded
    assert not queue.settled("lr-again-high")
    assert queue.get("lr-i1").id == "lr-again-high"
    feedback = queue.answer("lr-i1", "negative", reviewer="ann")  # the old id still answers
    assert feedback.id == "lr-again-high.review"
    assert queue.counts()["sentiment"] == TaskCounts(pending=0, held=1, answered=0)


def test_a_request_for_an_interaction_answered_already_is_not_offered(
        queue: ReviewQueue) -> None:
    queue.offer(label_request(1))
    queue.answer("lr-i1", "positive", reviewer="ann")
    assert not queue.offer(label_request(1, request_id="lr-later", priority=0.99))
    assert queue.pending() == []
    assert queue.settled("lr-later")
    with pytest.raises(AlreadyAnswered):
        queue.answer("lr-later", "negative", reviewer="bob")


def test_an_answer_becomes_reviewer_feedback(queue: ReviewQueue) -> None:
    queue.offer(label_request(1))
    feedback = queue.answer("lr-i1", "negative", reviewer="ann")
    assert (feedback.id, feedback.interaction_id, feedback.value, feedback.source) == (
        "lr-i1.review", "i1", "negative", FeedbackSource.REVIEWER)
    assert feedback.metadata["label_request_id"] == "lr-i1"
    assert feedback.metadata["reviewer"] == "ann"


def test_a_bad_label_is_refused_and_the_request_keeps_waiting(queue: ReviewQueue,
                                                               clock: Clock) -> None:
    queue.offer(label_request(1))
    with pytest.raises(InvalidAnswer, match="'maybe' is not a label of task 'sentiment'"):
        queue.answer("lr-i1", "maybe", reviewer="ann")
    with pytest.raises(InvalidAnswer):
        queue.answer("lr-i1", "", reviewer="ann")
    assert ids(queue.pending()) == ["lr-i1"]
    clock.now += 3600
    assert queue.take_due(everything=True) == []
    assert InvalidAnswer.status == 400


def test_unknown_and_twice_answered_requests_are_refused(queue: ReviewQueue) -> None:
    with pytest.raises(UnknownRequest) as unknown:
        queue.answer("lr-nope", "negative", reviewer="ann")
    assert unknown.value.status == 404
    queue.offer(label_request(1))
    queue.answer("lr-i1", "negative", reviewer="ann")
    with pytest.raises(AlreadyAnswered, match="by ann") as twice:
        queue.answer("lr-i1", "positive", reviewer="bob")
    assert twice.value.status == 409


def test_answers_are_held_for_the_undo_window_then_due(queue: ReviewQueue,
                                                      clock: Clock) -> None:
    for n in (1, 2):
        queue.offer(label_request(n))
    queue.answer("lr-i1", "negative", reviewer="ann")
    clock.now += 4
    queue.answer("lr-i2", "positive", reviewer="ann")
    assert queue.next_due() == pytest.approx(110.0)
    clock.now += 5.9
    assert queue.take_due() == []
    clock.now += 0.2
    [due] = queue.take_due()
    assert due.request.id == "lr-i1" and due.feedback.value == "negative"
    assert not queue.settled("lr-i1")  # handed out, not acknowledged
    queue.mark_published(["lr-i1"])
    assert queue.settled("lr-i1") and not queue.settled("lr-i2")
    assert queue.counts()["sentiment"] == TaskCounts(pending=0, held=1, answered=1)
    assert [h.request.id for h in queue.take_due(everything=True)] == ["lr-i2"]
    assert queue.next_due() is None


def test_undo_takes_back_the_reviewers_latest_held_answer(queue: ReviewQueue,
                                                         clock: Clock) -> None:
    for n in (1, 2, 3):
        queue.offer(label_request(n, priority=0.1 * n))
    queue.answer("lr-i3", "negative", reviewer="ann")
    queue.answer("lr-i2", "negative", reviewer="ann")
    queue.answer("lr-i1", "positive", reviewer="bob")
    assert queue.undo("ann").id == "lr-i2"  # ann's latest, not bob's
    assert queue.next().id == "lr-i2"  # offered again
    assert queue.undo("ann").id == "lr-i3"
    assert ids(queue.pending()) == ["lr-i3", "lr-i2"]
    with pytest.raises(NothingToUndo, match="ann has no answer to undo"):
        queue.undo("ann")
    clock.now += 10
    assert [h.request.id for h in queue.take_due()] == ["lr-i1"]
    with pytest.raises(NothingToUndo, match="published already and stands") as late:
        queue.undo("bob")
    assert late.value.status == 409
    assert queue.undo_window_s == 10.0


def test_an_undone_request_can_be_answered_again_and_is_one_answer(queue: ReviewQueue,
                                                                   clock: Clock) -> None:
    queue.offer(label_request(1))
    queue.answer("lr-i1", "negative", reviewer="ann")
    queue.undo("ann")
    queue.answer("lr-i1", "positive", reviewer="ann")
    clock.now += 11
    [due] = queue.take_due()
    assert (due.feedback.id, due.feedback.value) == ("lr-i1.review", "positive")


def test_without_an_undo_window_answers_are_due_at_once(clock: Clock) -> None:
    queue = ReviewQueue(Settings(), undo_window_s=0, clock=clock)
    queue.offer(label_request(1))
    queue.answer("lr-i1", "negative", reviewer="ann")
    assert [h.request.id for h in queue.take_due()] == ["lr-i1"]


def test_answers_learnt_from_the_feedback_topic_are_not_offered(queue: ReviewQueue,
                                                                clock: Clock) -> None:
    queue.offer(label_request(1))
    queue.offer(label_request(2))
    queue.offer(label_request(3))
    queue.learn_answered("lr-i1", task="sentiment", interaction_id="i1")
    queue.learn_answered("lr-elsewhere", task="sentiment", interaction_id="i2")  # same i2
    queue.learn_answered("lr-i9", task="sentiment", interaction_id="i9")  # before its request
    assert ids(queue.pending()) == ["lr-i3"]
    assert queue.settled("lr-i1") and queue.settled("lr-i2")
    assert not queue.offer(label_request(9))
    assert not queue.offer(label_request(1))
    with pytest.raises(AlreadyAnswered):
        queue.answer("lr-i1", "negative", reviewer="ann")
    # Answered elsewhere while held here: the request stays one label.
    queue.answer("lr-i3", "negative", reviewer="ann")
    queue.learn_answered("lr-i3", task="sentiment", interaction_id="i3")
    clock.now += 60
    assert queue.take_due(everything=True) == []
    assert queue.counts()["sentiment"] == TaskCounts(pending=0, held=0, answered=4)


def test_its_own_answer_read_back_changes_nothing(queue: ReviewQueue, clock: Clock) -> None:
    queue.offer(label_request(1))
    queue.answer("lr-i1", "negative", reviewer="ann")
    clock.now += 10
    queue.take_due()
    queue.learn_answered("lr-i1", task="sentiment", interaction_id="i1")  # before the ack
    queue.mark_published(["lr-i1"])
    assert queue.settled("lr-i1")
    assert queue.counts()["sentiment"] == TaskCounts(pending=0, held=0, answered=1)


def test_forget_drops_waiting_requests_and_keeps_answers(queue: ReviewQueue) -> None:
    for n in (1, 2):
        queue.offer(label_request(n))
    queue.answer("lr-i1", "negative", reviewer="ann")
    queue.forget(["lr-i1", "lr-i2"])
    assert queue.pending() == []
    assert queue.undo("ann").id == "lr-i1"
    assert queue.offer(label_request(2))  # offered again when it comes back


def test_neighbours_are_the_closest_requests_of_the_task_by_cosine(queue: ReviewQueue) -> None:
    queue.offer(label_request(1, embedding=[1.0, 0.0, 0.0]))
    queue.offer(label_request(2, embedding=[0.9, 0.1, 0.0]))
    queue.offer(label_request(3, embedding=[0.0, 1.0, 0.0]))
    queue.offer(label_request(4, embedding=[-1.0, 0.0, 0.0]))
    queue.offer(label_request(5, embedding=[1.0, 0.0]))  # another dimension: never compared
    queue.offer(label_request(6, embedding=[1.0, 0.0, 0.0], task="toxicity"))
    queue.offer(label_request(7))  # no embedding
    queue.answer("lr-i2", "negative", reviewer="ann")
    near = queue.neighbours("lr-i1", 3)
    assert [(n.request_id, n.label) for n in near] == [
        ("lr-i2", "negative"), ("lr-i3", None), ("lr-i4", None)]
    assert near[0].similarity == pytest.approx(0.9 / (0.81 + 0.01) ** 0.5)
    assert near[0].text == "review text number 2"
    assert near[2].similarity == pytest.approx(-1.0)
    assert len(queue.neighbours("lr-i1", 1)) == 1
    assert queue.neighbours("lr-i7") == [] and queue.neighbours("lr-unknown") == []
    assert queue.neighbours("lr-i1", 0) == []
    queue.undo("ann")  # an undone answer is no labelled neighbour any more
    assert [(n.request_id, n.label) for n in queue.neighbours("lr-i1", 1)] == [("lr-i2", None)]


def test_generation_requests_find_neighbours_by_their_input_embedding(
        queue: ReviewQueue) -> None:
    # driftloop's service sends a generation answer's version-free vector as its input
    # embedding and no model embedding: neighbours are found by it.
    queue.offer(label_request(1, input_embedding=[1.0, 0.0]))
    queue.offer(label_request(2, input_embedding=[0.8, 0.6]))
    queue.offer(label_request(3, input_embedding=[0.0, 1.0]))
    near = queue.neighbours("lr-i1", 2)
    assert [n.request_id for n in near] == ["lr-i2", "lr-i3"]
    assert near[0].similarity == pytest.approx(0.8)


def test_labelled_neighbours_are_bounded_by_memory(clock: Clock) -> None:
    queue = ReviewQueue(Settings(), undo_window_s=0, memory=2, clock=clock)
    for n in range(1, 6):
        queue.offer(label_request(n, embedding=[1.0, 0.1 * n]))
    for n in range(2, 6):
        queue.answer(f"lr-i{n}", "negative", reviewer="ann")
    assert {n.request_id for n in queue.neighbours("lr-i1", 10)} == {"lr-i4", "lr-i5"}


def test_settings_give_the_defaults_and_bad_arguments_fail_at_construction() -> None:
    settings = Settings(review={"undo_window_s": 2.5, "memory": 7})
    queue = ReviewQueue(settings)
    assert (queue.undo_window_s, queue.memory) == (2.5, 7)
    with pytest.raises(ValueError, match="undo_window_s"):
        ReviewQueue(settings, undo_window_s=-1)
    with pytest.raises(ValueError, match="memory"):
        ReviewQueue(settings, memory=0)
