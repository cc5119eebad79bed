"""ReplayBuffer: ratio, balance, curriculum, dedup, byte bounds, reservoir sampling."""

from __future__ import annotations

import pickle
from collections import Counter

from driftloop.schemas.enums import ExampleOrigin
from driftloop.streams.buffer import LabeledExample, ReplayBuffer


def ex(i: int, target: str = "pos", domain: str = "a", difficulty: float | None = None,
       size: int = 10) -> LabeledExample:
    return LabeledExample(f"{i:04d}" + "x" * size, target, domain=domain, difficulty=difficulty)


def test_replay_ratio_holds_and_shrinks_with_few_new_examples():
    buffer = ReplayBuffer(capacity=500, seed=1)
    buffer.extend(ex(i) for i in range(400))
    buffer.commit()
    buffer.extend(ex(i) for i in range(400, 700))
    batch = buffer.build_batch(size=100, replay_ratio=0.3)
    assert Counter(e.origin.value for e in batch) == {"new": 70, "replay": 30}
    small = ReplayBuffer(capacity=500, seed=1)
    small.extend(ex(i) for i in range(400))
    small.commit()
    small.extend(ex(i) for i in range(400, 410))  # 10 new: ratio 0.3 -> 4 replayed
    assert Counter(e.origin.value for e in small.build_batch(size=100, replay_ratio=0.3)) == \
        {"new": 10, "replay": 4}


def test_balance_over_classes_and_domains():
    buffer = ReplayBuffer(seed=2)
    buffer.extend(ex(i, "pos", "a") for i in range(90))
    buffer.extend(ex(100 + i, "neg", "b") for i in range(10))
    batch = buffer.build_batch(size=20, replay_ratio=0.0)
    assert Counter((e.target, e.domain) for e in batch) == {("pos", "a"): 10, ("neg", "b"): 10}
    unbalanced = buffer.build_batch(size=20, replay_ratio=0.0, balance=False)
    assert Counter(e.target for e in unbalanced)["pos"] > 10


def test_curriculum_orders_easy_to_hard():
    buffer = ReplayBuffer(seed=3)
    buffer.extend(ex(i, difficulty=d) for i, d in enumerate([0.9, 0.1, None, 0.4]))
    batch = buffer.build_batch(size=4, replay_ratio=0.0)
    assert [e.difficulty for e in batch] == [0.1, 0.4, None, 0.9]


def test_content_dedup_across_new_and_reservoir():
    buffer = ReplayBuffer(seed=4)
    assert buffer.add(ex(1)) and not buffer.add(ex(1))
    buffer.commit()
    assert not buffer.add(ex(1))
    assert buffer.add(ex(1, target="neg"))  # same input, other label: other content


def test_byte_bounds_of_buffer_and_batch():
    buffer = ReplayBuffer(capacity=1000, max_bytes=20_000, seed=5)
    buffer.extend(ex(i, size=200) for i in range(300))
    assert buffer.size_bytes <= 20_000 and buffer.new_count < 300
    batch = buffer.build_batch(size=256, replay_ratio=0.0, max_bytes=3_000)
    assert sum(len(e.input) + len(e.target) + 160 for e in batch) <= 3_000


def test_reservoir_is_a_uniform_sample_of_everything_committed():
    hits = Counter()
    for seed in range(40):
        buffer = ReplayBuffer(capacity=10, seed=seed)
        for start in range(0, 100, 20):
            buffer.extend(ex(i) for i in range(start, start + 20))
            buffer.commit()
        assert len(buffer.reservoir) == 10
        hits.update(int(e.input[:4]) // 50 for e in buffer.reservoir)
    # First and second half of the stream are equally represented (200 draws in all).
    assert abs(hits[0] - hits[1]) < 60


def test_an_example_pickled_before_a_field_was_added_reads_back_with_its_default():
    # Buffers live in changelogs: a worker upgraded over old state must read it.
    old = LabeledExample.__new__(LabeledExample)
    old.__setstate__(["text", "pos", "tweets", 1.0, None, "i-1"])  # six fields, as once
    assert (old.interaction_id, old.model_answer, old.feedback_kind) == ("i-1", None, None)
    assert old.to_training(ExampleOrigin.NEW).model_answer is None
    new = LabeledExample("text", "pos", model_answer="neg", feedback_kind="label")
    assert pickle.loads(pickle.dumps(new)) == new
    assert new.size_bytes == LabeledExample("text", "pos").size_bytes + len("neg")


def test_a_batch_of_one_domain_has_only_its_new_examples_and_replays_every_domain():
    buffer = ReplayBuffer(seed=6)
    buffer.extend(ex(i, domain="a" if i % 2 else "b") for i in range(40))
    buffer.commit()  # a reservoir of both domains
    buffer.extend(ex(100 + i, domain="a") for i in range(10))
    buffer.extend(ex(200 + i, domain="b") for i in range(6))
    assert buffer.new_domain_counts() == {"a": 10, "b": 6}
    before = buffer.build_batch(size=64, replay_ratio=0.5, domain="b")
    assert buffer.new_count == 16  # building changes nothing
    assert {e.domain for e in before if e.origin is ExampleOrigin.NEW} == {"b"}
    assert Counter(e.origin.value for e in before) == {"new": 6, "replay": 6}
    assert {e.domain for e in before if e.origin is ExampleOrigin.REPLAY} == {"a", "b"}
    assert buffer.build_batch(size=64, replay_ratio=0.5, domain="b") == before  # stable draw
    buffer.commit("b")
    assert buffer.new_domain_counts() == {"a": 10} and len(buffer.reservoir) == 46
    assert buffer.build_batch(size=64, replay_ratio=0.0, domain="b") == []
    buffer.commit("a")
    assert buffer.new_count == 0 and len(buffer.reservoir) == 56


def test_a_domain_commit_keeps_the_reservoir_and_bytes_bounded():
    buffer = ReplayBuffer(capacity=20, max_bytes=12_000, seed=7)
    for step in range(10):
        buffer.extend(ex(step * 100 + i, domain=f"d{i % 3}", size=100) for i in range(30))
        buffer.commit(f"d{step % 3}")
        assert len(buffer.reservoir) <= 20 and buffer.size_bytes <= 12_000
    # Recomputed from what is held: the running byte count did not drift.
    held = list(buffer.reservoir) + list(buffer.new_examples)
    assert buffer.size_bytes == sum(e.size_bytes for e in held)


def test_a_domain_that_is_not_a_string_is_refused():
    import pytest

    from driftloop.streams.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="domain"):
        ReplayBuffer().build_batch(domain=3)  # type: ignore[arg-type]



def test_a_revised_answer_replaces_the_example_of_its_interaction_new_or_kept():
    # A reviewer who changes their label publishes a revision: the buffer must not keep
    # both targets for one input, whether the first one is still new or already kept.
    buffer = ReplayBuffer(capacity=10, seed=2)
    buffer.add(LabeledExample("meh", "pos", interaction_id="i-1"))
    buffer.add(LabeledExample("fine", "pos", interaction_id="i-2"))
    buffer.commit()  # both now in the reservoir
    buffer.add(LabeledExample("bad", "pos", interaction_id="i-3"))
    bytes_before = buffer.size_bytes

    assert buffer.revise(LabeledExample("meh", "neg", interaction_id="i-1", revision=1))
    assert buffer.revise(LabeledExample("bad", "neg", interaction_id="i-3", revision=1))
    held = {(e.interaction_id, e.target, e.revision)
            for e in (*buffer.reservoir, *buffer.new_examples)}
    assert held == {("i-1", "neg", 1), ("i-2", "pos", 0), ("i-3", "neg", 1)}
    assert buffer.size_bytes == bytes_before  # same sizes in, same sizes out
    # The old target of i-1 is no longer a known content: adding it back is a new example.
    assert LabeledExample("meh", "pos").content_hash not in {
        e.content_hash for e in buffer.reservoir}


def test_a_late_or_redelivered_revision_never_undoes_a_newer_one():
    buffer = ReplayBuffer()
    buffer.add(LabeledExample("meh", "pos", interaction_id="i-1"))
    assert buffer.revise(LabeledExample("meh", "neg", interaction_id="i-1", revision=2))
    assert not buffer.revise(LabeledExample("meh", "neu", interaction_id="i-1", revision=1))
    assert not buffer.revise(LabeledExample("meh", "neg", interaction_id="i-1", revision=2))
    assert [(e.target, e.revision) for e in buffer.new_examples] == [("neg", 2)]


def test_a_revision_is_journaled_and_replays_to_the_same_buffer():
    one, two = ReplayBuffer(capacity=3, seed=4), ReplayBuffer(capacity=3, seed=4)
    for i in range(5):
        one.add(LabeledExample(f"t{i}", "pos", interaction_id=f"i{i}"))
    one.commit()
    one.revise(LabeledExample("t1", "neg", interaction_id="i1", revision=1))
    one.revise(LabeledExample("t4", "neg", interaction_id="i4", revision=1))
    journal = one.take_journal()
    assert [kind for kind, _ in journal][-2:] == ["revise", "revise"]
    two.replay(journal)
    assert two.reservoir == one.reservoir and two.new_examples == one.new_examples
    assert two.size_bytes == one.size_bytes


def test_a_buffer_pickled_before_revisions_existed_takes_them():
    # The examples of a changelog written before the revision field read as revision 0.
    old = LabeledExample.__new__(LabeledExample)
    old.__setstate__(["meh", "pos", "default", 1.0, None, "i-1", "pos", "label", 0])
    buffer = ReplayBuffer()
    buffer.add(old)
    restored = pickle.loads(pickle.dumps(buffer))
    assert restored.revise(LabeledExample("meh", "neg", interaction_id="i-1", revision=1))
    assert [(e.target, e.revision) for e in restored.new_examples] == [("neg", 1)]


def test_carried_examples_are_sent_again_as_new_until_a_promotion_settles_them():
    buffer = ReplayBuffer(capacity=100, seed=1)
    for i in range(4):
        buffer.add(ex(i))
    buffer.carry()
    assert buffer.new_count == 0 and len(buffer.carried_examples) == 4
    assert not buffer.add(ex(2))  # still known content: not new twice
    buffer.add(ex(9))
    batch = buffer.build_batch(size=16, replay_ratio=0.0)
    assert sorted(e.input[:4] for e in batch) == ["0000", "0001", "0002", "0003", "0009"]
    assert all(e.origin is ExampleOrigin.NEW for e in batch)
    buffer.carry()
    buffer.settle()
    assert buffer.carried_examples == () and len(buffer.reservoir) == 5
    assert all(e.origin is ExampleOrigin.REPLAY
               for e in buffer.build_batch(size=16, replay_ratio=0.5))
    assert buffer.build_batch(size=16, replay_ratio=0.5) == []  # nothing new: no batch


def test_carrying_is_bounded_journaled_and_revisable():
    one, two = ReplayBuffer(capacity=3, max_new=2, seed=4), ReplayBuffer(capacity=3, max_new=2,
                                                                       seed=4)
    for i in range(3):
        one.add(LabeledExample(f"t{i}", "pos", interaction_id=f"i{i}"))
        one.carry()  # beyond max_new the oldest sent example goes to the reservoir
    assert [e.input for e in one.carried_examples] == ["t1", "t2"]
    assert [e.input for e in one.reservoir] == ["t0"]
    assert one.revise(LabeledExample("t2", "neg", interaction_id="i2", revision=1))
    assert [e.input for e in one.carried_examples] == ["t1"]  # the revision is new again
    assert [(e.input, e.target) for e in one.new_examples] == [("t2", "neg")]
    one.settle()
    journal = one.take_journal()
    assert [kind for kind, _ in journal] == ["add", "carry"] * 3 + ["revise", "settle"]
    two.replay(journal)
    assert two.reservoir == one.reservoir and two.new_examples == one.new_examples
    assert two.carried_examples == one.carried_examples and two.size_bytes == one.size_bytes
    # A buffer pickled before carrying existed reads back with nothing carried.
    old = pickle.loads(pickle.dumps(ReplayBuffer()))
    del old.__dict__["_carried"]
    restored = pickle.loads(pickle.dumps(old))
    assert restored.carried_examples == ()
