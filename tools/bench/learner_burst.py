"""``driftloop bench learner --burst N``: the learner's lag under a burst of training requests.

A producer sends ``N`` requests of one task and domain at a fixed rate to the real learner
service on a throw-away topic prefix; the learner runs with coalescing (``learner.coalesce_max``
as configured) and without (1), one after the other on the same resident model. Sampled
every 50 ms: the lag (requests sent and not yet handled), and for every request the time
from its sending to the publication of the version that trained its examples (its own, or
the newer request's that superseded it).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BurstRun", "run_burst"]

_SAMPLE_S = 0.05
_DEADLINE_S = 900.0


@dataclass(slots=True)
class BurstRun:
    """One burst against one learner setting."""

    coalesce_max: int
    rate: float
    requests: int
    updates: int = 0
    superseded: int = 0
    max_lag: int = 0
    drain_seconds: float = 0.0
    """From the last request sent to the last one handled."""
    staleness: list[float] = field(default_factory=list)
    """Per request: sent -> the version that trained its examples published (seconds)."""

    def summary(self) -> dict[str, Any]:
        """The figures a table row shows.

        >>> BurstRun(8, 2.0, 3, updates=1, superseded=2, max_lag=3, drain_seconds=4.0,
        ...          staleness=[5.0, 4.5, 4.0]).summary()["staleness_p50_s"]
        4.5
        """
        ordered = sorted(self.staleness)
        return {"coalesce_max": self.coalesce_max, "rate_per_s": self.rate,
                "requests": self.requests, "updates": self.updates,
                "superseded": self.superseded, "max_lag": self.max_lag,
                "drain_s": round(self.drain_seconds, 2),
                "staleness_p50_s": round(statistics.median(ordered), 2) if ordered else None,
                "staleness_max_s": round(ordered[-1], 2) if ordered else None}


async def _burst(settings: Any, updater: Any, n: int, rate: float, coalesce_max: int,
                 examples: int) -> BurstRun:
    from ...client.kafka import new_producer
    from ...learner.registry.version_log import trained_requests
    from ...learner.service import LearnerService
    from ...schemas.codec import encode
    from ...schemas.topics import Topic
    from ..kafka.topic_admin import acreate_topics, adelete_topics
    from .trainer_baseline import bench_request

    prefix = f"{settings.kafka.topic_prefix}burst-{uuid.uuid4().hex[:8]}."
    bench = settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"topic_prefix": prefix}),
        "learner": settings.learner.model_copy(update={
            "group_id": f"{prefix}learner", "coalesce_max": coalesce_max,
            "metrics_port": None})})
    await asyncio.wait_for(acreate_topics(bench), 60)
    run = BurstRun(coalesce_max, rate, n)
    sent: dict[str, float] = {}
    try:
        service = LearnerService(bench, updater=updater, max_requests=n)
        learner = asyncio.create_task(service.run())
        seen = 0

        def sample() -> None:
            nonlocal seen
            now = time.perf_counter()
            run.max_lag = max(run.max_lag, len(sent) - service.stats.handled)
            for event in service.stats.published[seen:]:
                run.staleness.extend(now - sent[i] for i in trained_requests(event)
                                     if i in sent)
            seen = len(service.stats.published)

        async with new_producer(bench) as producer:
            topic = bench.kafka.topic(Topic.TRAINING_REQUESTS)
            next_at = time.perf_counter()
            for i in range(n):
                request = bench_request(examples, request_id=f"burst-{i:03d}", seed=i)
                await producer.send_and_wait(topic, encode(request),
                                             key=request.task.encode())
                sent[request.id] = time.perf_counter()
                next_at += 1.0 / rate
                while time.perf_counter() < next_at:  # the load's own pace, sampled meanwhile
                    sample()
                    await asyncio.sleep(min(_SAMPLE_S, max(0.0, next_at - time.perf_counter())))
        last_sent = time.perf_counter()
        deadline = last_sent + _DEADLINE_S
        while not learner.done():
            sample()
            if time.perf_counter() > deadline:
                service.stop()
                raise TimeoutError(f"the learner handled {service.stats.handled} of {n} "
                                   f"requests in {_DEADLINE_S:.0f} s")
            await asyncio.sleep(_SAMPLE_S)
        stats = await learner
        sample()
        run.drain_seconds = time.perf_counter() - last_sent
        run.updates = len(stats.published)
        run.superseded = len(stats.superseded)
        return run
    finally:
        await adelete_topics(bench)


def run_burst(settings: Any, updater: Any, n: int, rates: tuple[float, ...],
              examples: int) -> list[BurstRun]:
    """Each rate with coalescing as configured, then without; alternated per rate."""
    configured = settings.learner.coalesce_max

    async def all_runs() -> list[BurstRun]:
        runs = []
        for rate in rates:
            for limit in (configured, 1):
                runs.append(await _burst(settings, updater, n, rate, limit, examples))
        return runs

    return asyncio.run(all_runs())
