"""WorkerTables: fresh values from the settings, the per-domain setting on every read, and join
windows rebuilt from their buckets."""

from __future__ import annotations

from worker_fakes import dict_tables

from driftloop.schemas.settings import Settings


def test_missing_values_are_fresh_and_built_from_the_settings():
    settings = Settings(worker={"buffer": {"capacity": 7}, "ab_test": {"min_samples": 3}})
    tables = dict_tables(settings)
    assert tables.state("t").task == "t" and tables.buffer("t").capacity == 7
    assert tables.canary("t").min_samples == 3
    assert tables.states == tables.buffers == tables.canaries == {}  # reads never write
    assert len(tables.all()) == 5


def test_a_stored_state_follows_the_tasks_per_domain_setting():
    tables = dict_tables(Settings(tasks={"t": {"adapter_per_domain": True}}))
    state = tables.state("t")
    state.training.adapter_per_domain = False  # as persisted before the setting was turned on
    tables.states["t"] = state
    assert tables.state("t").training.adapter_per_domain is True
    assert tables.state("u").training.adapter_per_domain is False


def test_a_join_window_is_rebuilt_from_its_buckets_after_a_revocation():
    tables = dict_tables(Settings())
    join = tables.join("t")
    join.add_interactions("ix:0:0", [{"id": "i1", "ts": 1.0}])
    changed, _ = join.take_changes()
    tables.buckets.update({f"t|{key}": bucket for key, bucket in changed.items()})
    tables.buckets["u|ix:0:1"] = changed["ix:0:0"]  # another task's bucket
    tables.forget_joins()
    rebuilt = tables.join("t")
    assert rebuilt is not join
    pairs = rebuilt.add_feedback("fb:0:0", [{"id": "f1", "interaction_id": "i1", "ts": 2.0,
                                              "kind": "label", "value": "pos",
                                              "source": "user"}])
    assert [p.interaction["id"] for p in pairs] == ["i1"]
