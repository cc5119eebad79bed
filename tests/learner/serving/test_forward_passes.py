"""ForwardPassQueue: waiting requests share a pass per task and version, up to max_batch."""

from __future__ import annotations

import asyncio

import pytest
from waiting import wait_until_async

from driftloop.learner.serving.forward_passes import ForwardPassQueue


class Passes:
    """A fake forward pass that records what it was asked and can fail for one version."""

    def __init__(self, failing: str | None = None) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []
        self.failing = failing

    async def __call__(self, task: str, version_id: str, texts: list[str]) -> list[str]:
        self.calls.append((task, version_id, list(texts)))
        await asyncio.sleep(0)
        if version_id == self.failing:
            raise RuntimeError(f"{version_id} is broken")
        return [f"{version_id}:{text}" for text in texts]


async def test_requests_share_a_pass_per_task_and_version_and_get_their_own_answers() -> None:
    passes = Passes()
    queue = ForwardPassQueue(passes, max_batch=3)
    calls = [("t", "v1", ["a"]), ("t", "v2", ["b"]), ("t", "v1", ["c", "d"]),
             ("u", "v1", ["e"]), ("t", "v1", ["f"])]
    answers = await asyncio.gather(*(queue.submit(*call) for call in calls))
    assert answers == [[f"{v}:{x}" for x in texts] for _, v, texts in calls]
    # The oldest request's task and version first, as many beside it as fit in max_batch.
    assert passes.calls == [("t", "v1", ["a", "c", "d"]), ("t", "v2", ["b"]),
                            ("u", "v1", ["e"]), ("t", "v1", ["f"])]
    assert queue.batches == 4


async def test_a_request_larger_than_max_batch_goes_alone() -> None:
    passes = Passes()
    queue = ForwardPassQueue(passes, max_batch=2)
    big, small = await asyncio.gather(queue.submit("t", "v1", ["a", "b", "c"]),
                                      queue.submit("t", "v1", ["d"]))
    assert big == ["v1:a", "v1:b", "v1:c"] and small == ["v1:d"]
    assert [len(texts) for *_, texts in passes.calls] == [3, 1]


async def test_a_failed_pass_fails_its_requests_only() -> None:
    queue = ForwardPassQueue(Passes(failing="bad"), max_batch=8)
    results = await asyncio.gather(queue.submit("t", "bad", ["a"]),
                                   queue.submit("t", "good", ["b"]),
                                   queue.submit("t", "bad", ["c"]), return_exceptions=True)
    assert [str(r) if isinstance(r, Exception) else r for r in results] == [
        "bad is broken", ["good:b"], "bad is broken"]
    assert queue.batches == 1


async def test_a_client_gone_away_does_not_stop_the_others() -> None:
    queue = ForwardPassQueue(Passes(), max_batch=8)
    gone = asyncio.ensure_future(queue.submit("t", "v1", ["a"]))
    stays = asyncio.ensure_future(queue.submit("t", "v1", ["b"]))
    await asyncio.sleep(0)
    gone.cancel()
    assert await stays == ["v1:b"]
    assert gone.cancelled()


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        ForwardPassQueue(Passes(), max_batch=0)


async def test_a_pass_that_follows_the_serving_version_runs_with_the_one_serving_then() -> None:
    serving = {"t": "v1"}
    calls: list[tuple[str, str, list[str]]] = []

    async def run(task: str, version_id: str, texts: list[str], follow=None) -> list[str]:  # type: ignore[no-untyped-def]
        calls.append((task, version_id, list(texts)))
        await asyncio.sleep(0)
        version = (follow() or version_id) if follow is not None else version_id
        return [f"{version}:{text}" for text in texts]

    queue = ForwardPassQueue(run, max_batch=8)
    first = asyncio.ensure_future(queue.submit("t", "v1", ["a"], follow=lambda: serving["t"]))
    await wait_until_async(lambda: calls, 5, "the first pass", interval=0)
    followers = [asyncio.ensure_future(queue.submit("t", "v1", [x],
                                                    follow=lambda: serving["t"]))
                 for x in ("b", "c")]
    pinned = asyncio.ensure_future(queue.submit("t", "v1", ["d"]))  # a canary's, say: stays
    serving["t"] = "v2"  # the swap, while they wait
    answers = await asyncio.gather(first, *followers, pinned)
    assert answers == [["v2:a"], ["v2:b"], ["v2:c"], ["v1:d"]]
    # Followers and pinned requests never share a pass, even under one version name.
    assert calls == [("t", "v1", ["a"]), ("t", "v1", ["b", "c"]), ("t", "v1", ["d"])]
