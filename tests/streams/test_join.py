"""JoinWindow: both orders, duplicates, expiry by event time and by size, persistence."""

from __future__ import annotations

from driftloop.streams.join import JoinWindow


def ix(i: int, ts: float) -> dict:
    return {"id": f"i{i}", "ts": ts}


def fb(i: int, ts: float, n: int = 0) -> dict:
    return {"id": f"f{i}-{n}", "interaction_id": f"i{i}", "ts": ts}


def test_both_orders_and_several_feedback_per_interaction():
    join = JoinWindow(window_seconds=100)
    assert join.add_interactions("a", [ix(1, 0)]) == []
    assert len(join.add_feedback("b", [fb(1, 1), fb(1, 2, n=1)])) == 2
    assert join.add_feedback("c", [fb(2, 3)]) == []
    assert [p.feedback["id"] for p in join.add_interactions("d", [ix(2, 4)])] == ["f2-0"]
    assert join.waiting_feedback == 0


def test_expiry_by_event_time_drops_old_buckets():
    join = JoinWindow(window_seconds=10)
    join.add_interactions("old", [ix(1, 0)])
    join.add_feedback("waiting", [fb(9, 1)])
    join.add_interactions("new", [ix(2, 50)])
    # The interactions read passed the waiting label by a window: its interaction is not
    # coming. i1 stays until the feedback read passes it (a label for it may be queued).
    assert join.waiting_feedback == 0 and join.get("i1") and join.get("i2")
    join.add_feedback("later", [fb(2, 50)])
    assert join.get("i1") is None and join.get("i2")
    changed, deleted = join.take_changes()
    assert {"old", "waiting"} <= deleted and "new" in changed


def test_interactions_running_ahead_do_not_expire_what_queued_feedback_needs():
    # After a restart the interactions' backlog can be read far ahead of the feedback's:
    # interactions expire by the feedback's progress, so late labels still join.
    join = JoinWindow(window_seconds=100)
    join.add_interactions("a", [ix(1, 0)])
    join.add_feedback("b", [fb(1, 1)])
    join.add_interactions("c", [ix(2, 150)])  # 150 s ahead of the feedback's event time
    assert join.get("i1") is not None
    assert len(join.add_feedback("d", [fb(1, 2, n=1)])) == 1  # a late label still joins
    join.add_interactions("e", [ix(3, 10_000)])  # however far ahead the interactions run
    assert join.get("i1") is not None
    join.add_feedback("f", [fb(3, 150)])  # the feedback read passes i1 by a window: it goes
    assert join.get("i1") is None and join.get("i3") is not None


def test_before_the_first_label_is_read_no_interaction_expires_by_time():
    # A worker under load read 10,000 interactions (10,000 s of event time) before the first
    # feedback message: expiring interactions by their own progress lost every old label.
    join = JoinWindow(window_seconds=100)
    for n in range(100):
        join.add_interactions(f"ix:{n}", [ix(100 * n + k, 100 * n + k) for k in range(100)])
    assert join.interactions == 10_000
    assert len(join.add_feedback("fb:0", [fb(5, 6), fb(42, 43)])) == 2
    # once the feedback read shows its progress, what it has passed by a window goes
    join.add_feedback("fb:1", [fb(9_000, 9_001)])
    assert join.get("i5") is None and join.get("i9000") is not None


def test_without_feedback_the_entry_bound_holds():
    join = JoinWindow(window_seconds=10, max_entries=500)
    for n in range(20):
        join.add_interactions(f"ix:{n}", [ix(100 * n + k, 100 * n + k) for k in range(100)])
    assert join.interactions == 500 and join.get("i1999") is not None


def test_feedback_whose_interaction_never_comes_expires_by_the_interactions_progress():
    join = JoinWindow(window_seconds=100)
    join.add_feedback("a", [fb(7, 0)])  # labels an interaction that was never sent
    join.add_interactions("b", [ix(1, 50)])
    assert join.waiting_feedback == 1
    join.add_interactions("c", [ix(2, 120)])
    assert join.waiting_feedback == 0 and join.take_expired_feedback()


def test_a_restored_window_holds_both_sides_at_the_state_s_event_time():
    join = JoinWindow(window_seconds=100)
    join.add_interactions("a", [ix(1, 0)])
    changed, _ = join.take_changes()
    again = JoinWindow(window_seconds=100)
    again.restore(changed.items())
    again.add_interactions("b", [ix(2, 150)])  # the interactions' backlog comes first
    assert len(again.add_feedback("c", [fb(1, 1)])) == 1


def test_a_restored_window_keeps_interactions_until_the_feedback_read_shows_progress():
    # Before the kill the interactions were read far ahead of their labels, which all joined
    # (no waiting feedback was kept): the state alone does not say where the feedback was.
    join = JoinWindow(window_seconds=100)
    join.add_interactions("a", [ix(0, 0), ix(1, 0)])
    assert len(join.add_feedback("x", [fb(0, 1)])) == 1  # joined: nothing of it is kept
    join.add_interactions("b", [ix(2, 1_000)])
    assert join.get("i1") is not None  # i1's label is still queued on the feedback topic
    changed, _ = join.take_changes()
    again = JoinWindow(window_seconds=100)
    again.restore(changed.items())
    again.add_interactions("c", [ix(3, 1_050)])
    assert len(again.add_feedback("d", [fb(1, 1)])) == 1  # its label was still queued


def test_size_bound():
    join = JoinWindow(window_seconds=1e9, max_entries=100)
    for k in range(50):
        join.add_interactions(f"b{k}", [ix(k * 10 + j, k) for j in range(10)])
    assert join.interactions <= 100


def test_restore_rebuilds_indexes_from_buckets():
    join = JoinWindow(window_seconds=100)
    join.add_interactions("a", [ix(1, 0)])
    join.add_feedback("b", [fb(2, 1)])
    changed, _ = join.take_changes()
    again = JoinWindow(window_seconds=100)
    again.restore(changed.items())
    assert again.get("i1") is not None and again.waiting_feedback == 1
    assert len(again.add_interactions("c", [ix(2, 2)])) == 1


def test_duplicate_interaction_keeps_the_first_copy():
    join = JoinWindow()
    join.add_interactions("a", [{"id": "i1", "ts": 0, "v": 1}])
    join.add_interactions("b", [{"id": "i1", "ts": 1, "v": 2}])
    assert join.get("i1")["v"] == 1
