"""What the page shows of a request and which keys answer it (``review/views.py``)."""

from __future__ import annotations

from review_samples import label_request

from driftloop.review import ReviewQueue
from driftloop.review.views import request_view, shortcuts
from driftloop.schemas import FeedbackKind
from driftloop.schemas.settings import Settings


def test_numbers_go_to_the_first_nine_labels_and_letters_only_where_unique() -> None:
    labels = [f"label{n}" for n in range(10)] + ["Urgent", "#tag", "Other"]
    keys = shortcuts(labels)
    assert [keys[f"label{n}"] for n in range(9)] == [[str(n + 1)] for n in range(9)]
    assert keys["label9"] == []  # tenth: no number, and "l" is shared
    assert keys["Urgent"] == []  # u undoes
    assert keys["#tag"] == []
    assert keys["Other"] == ["o"]  # past nine: its letter only
    assert shortcuts(["yes", "no"]) == {"yes": ["1", "y"], "no": ["2", "n"]}


def test_a_classification_request_shows_the_models_answer_labels_and_neighbours() -> None:
    queue = ReviewQueue(Settings(tasks={"sentiment": {"labels": ["neg", "neu", "pos"]}}))
    queue.offer(label_request(1, embedding=[1.0, 0.0]))
    queue.offer(label_request(2, embedding=[0.8, 0.2]))
    view = request_view(queue, queue.get("lr-i1"), neighbours=1)
    assert view["labels"] == ["neg", "neu", "pos"]  # the task's labels win
    assert view["shortcuts"] == {"neg": ["1"], "neu": ["2"], "pos": ["3", "p"]}
    assert view["model"]["confidence"] == 0.52
    assert [n["request_id"] for n in view["neighbours"]] == ["lr-i2"]
    assert view["kind"] == FeedbackKind.LABEL.value


def test_a_generation_request_asks_for_a_correction() -> None:
    settings = Settings(tasks={"qa": {"kind": "generation"}})
    queue = ReviewQueue(settings, undo_window_s=0)
    request = label_request(1, task="qa")
    queue.offer(request)
    view = request_view(queue, request)
    assert (view["kind"], view["labels"], view["shortcuts"]) == ("correction", [], {})
    feedback = queue.answer("lr-i1", "The right answer, written out.", reviewer="ann")
    assert feedback.kind is FeedbackKind.CORRECTION
    assert feedback.value == "The right answer, written out."
