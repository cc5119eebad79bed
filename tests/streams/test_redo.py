"""A step is written whole or not at all: cut the changelog after any record, restart, and the
task ends exactly where an uncut run ends.

The changelog is modelled as what the broker keeps of one partition after a kill -9: a prefix
of the records the worker wrote, in order (streams/redo.py says why). Every prefix is tried.
The same step runs under Faust against the real broker in test_agents.py (a kill -9 at random
moments) and in `driftloop bench faults --scenario worker-kill`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from worker_fakes import fake_topics, record

from driftloop.schemas import Feedback, Interaction, Topic
from driftloop.schemas import encode as encode_event
from driftloop.schemas.commands import encode_command, manual_trigger
from driftloop.schemas.settings import Settings
from driftloop.streams.liveness import Liveness
from driftloop.streams.ownership import Ownership
from driftloop.streams.partitioning import task_partition
from driftloop.streams.source_order import SourceOrder
from driftloop.streams.state_codec import dumps, loads
from driftloop.streams.step import Step
from driftloop.streams.tables import WorkerTables

SETTINGS = Settings(worker={"triggers": {"min_examples": 3, "cooldown_s": 0,
                                         "regime_growth": None},
                            "active": {"threshold": 0.7}})
IX, FB = SETTINGS.kafka.topic(Topic.INTERACTIONS), SETTINGS.kafka.topic(Topic.FEEDBACK)
HOME = task_partition("sentiment", 6)


class Changelog(dict):
    """A table whose writes are also kept in order, serialized as Faust sends them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, bytes | None]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.records.append((key, dumps(value)))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.records.append((key, None))
        super().__delitem__(key)

    @classmethod
    def restored(cls, records: list[tuple[str, bytes | None]]) -> Changelog:
        """The table a restarted worker rebuilds from these records (last value wins)."""
        table = cls()
        for key, value in records:
            if value is None:
                dict.pop(table, key, None)
            else:
                dict.__setitem__(table, key, loads(value))
        return table


def worker(table: Changelog) -> Step:
    order = SourceOrder(SETTINGS, group_id="driftloop-worker")
    for topic in (IX, FB):
        order.start(topic, HOME, 0)
    tables = WorkerTables.sharing(SETTINGS, table, dead_counts={})
    return Step(SETTINGS, fake_topics(SETTINGS), tables, Ownership(None, SETTINGS), order,
                Liveness(), consumer_id="worker-1")


def source() -> list[Any]:
    """Interactions and their labels, interleaved so that joins happen on both sides, and a
    manual trigger that sends the buffer (a commit of the buffer) in the middle."""
    def ix(n: int, confidence: float) -> bytes:
        return encode_event(Interaction(id=f"i{n}", ts=n, task="sentiment", model_version="v1",
                                        input=f"text {n}", prediction="pos",
                                        scores={"confidence": confidence}))

    def fb(n: int) -> bytes:
        return encode_event(Feedback(id=f"f{n}", interaction_id=f"i{n}", ts=n + 1,
                                     task="sentiment", kind="label",
                                     value="neg" if n % 3 else "pos"))

    key, body, headers = encode_command(manual_trigger("sentiment", reason="now"))
    records, offsets = [], {IX: 0, FB: 0}

    def add(topic: str, value: bytes, **extra: Any) -> None:
        records.append(record(topic, HOME, offsets[topic], value, **extra))
        offsets[topic] += 1

    for n in range(6):
        add(FB, fb(n)) if n % 2 else add(IX, ix(n, 0.55 + 0.08 * n))
        add(IX, ix(n, 0.55 + 0.08 * n)) if n % 2 else add(FB, fb(n))
        if n == 3:
            add(FB, body, key=key, headers=headers)
    return records


def outcome(step: Step) -> dict[str, Any]:
    tables = step.tables
    state = tables.state("sentiment")
    buffer = tables.buffer("sentiment")
    counters = {k: v for k, v in state.counters.items() if k != "redelivered_skipped"}
    return {"counters": counters, "step": state.step_seq,
            "new": sorted(e.input for e in buffer.new_examples),
            "reservoir": sorted(e.input for e in buffer.reservoir),
            "buckets": sorted(tables.buckets),
            "canary": (dict(tables.canary("sentiment").counters), tables.canary("sentiment").head)}


async def run(step: Step, records: list[Any]) -> None:
    for message in records:
        await step.handle(message)


def test_a_restart_after_a_cut_at_any_record_ends_where_an_uncut_run_ends():
    records = source()
    whole = Changelog()
    uncut = worker(whole)
    asyncio.run(run(uncut, records))
    expected = outcome(uncut)
    assert expected["counters"]["joined"] == 6 and expected["reservoir"]  # the trigger sent
    written = whole.records
    assert len(written) > 2 * len(records)  # a state and its values per step
    for cut in range(len(written) + 1):
        restarted = worker(Changelog.restored(written[:cut]))
        asyncio.run(run(restarted, records))  # redelivered from the start; applied ones skip
        assert outcome(restarted) == expected, f"cut after record {cut} of {len(written)}"


def test_a_step_cut_after_its_state_record_is_finished_on_the_next_read():
    records = source()
    whole = Changelog()
    step = worker(whole)
    asyncio.run(run(step, records[:2]))  # an interaction and its label: joined
    state_at = max(i for i, (key, _) in enumerate(whole.records) if key == "state|sentiment")
    kept = whole.records[:state_at + 1]  # the step's buffer and buckets never arrived
    table = Changelog.restored(kept)
    assert table["buffer|sentiment"].new_count == 0
    restarted = worker(table)
    assert restarted.tables.buffer("sentiment").new_count == 1  # finished from the redo
    assert table["buffer|sentiment"].step_seq == table["state|sentiment"].step_seq
    asyncio.run(run(restarted, records[:2]))  # both redelivered, both skipped
    assert restarted.tables.state("sentiment").counters["joined"] == 1


def test_the_state_is_written_only_after_the_broker_has_the_effects():
    class Acked:
        """A topic whose sends are acknowledged later, as a producer's futures are."""

        def __init__(self, name: str) -> None:
            self.name, self.pending = name, []

        def get_topic_name(self) -> str:
            return self.name

        async def send(self, *, key: bytes, value: bytes, headers: Any = None) -> Any:
            ack = asyncio.get_running_loop().create_future()
            self.pending.append(ack)
            return ack

    async def scenario() -> None:
        step = worker(Changelog())
        topics = {topic: Acked(SETTINGS.kafka.topic(topic)) for topic in Topic}
        step.topics = topics  # type: ignore[assignment]
        low = Interaction(id="i0", ts=0, task="sentiment", model_version="v1", input="text 0",
                          prediction="pos", scores={"confidence": 0.55})
        handling = asyncio.create_task(step.handle(record(IX, HOME, 0, encode_event(low))))
        for _ in range(20):
            await asyncio.sleep(0)  # let the step run up to its wait
        [ack] = topics[Topic.LABEL_REQUESTS].pending
        assert not handling.done() and "sentiment" not in step.tables.states
        ack.set_result(None)
        await handling
        assert "sentiment" in step.tables.states

    asyncio.run(scenario())
