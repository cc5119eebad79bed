"""The stream worker's settings: the join, drift monitors, active learning, buffers, triggers
and the A/B test, one section each under ``[worker]``.

Examples
--------
>>> worker = WorkerSettings(triggers={"every_s": 600}, drift={"detector": "adwin"})
>>> worker.triggers.every_s, worker.drift.detector, worker.buffer.batch_size
(600.0, 'adwin', 256)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..fields import Slug
from .section import Section, data_home

__all__ = [
    "ABTestSettings",
    "ActiveSettings",
    "BufferSettings",
    "DriftSettings",
    "JoinSettings",
    "TriggerSettings",
    "WorkerSettings",
]


class JoinSettings(Section):
    """How feedback meets its interaction."""

    window_s: float = Field(3600.0, gt=0, description="event-time window of the join")
    max_entries: int = Field(200_000, gt=0,
                             description="interactions + waiting feedback kept per task")


class DriftSettings(Section):
    """Drift monitors (chosen by measurement: `driftloop worker detectors`)."""

    detector: Literal["cusum", "page_hinkley", "adwin", "kswin"] = "cusum"
    threshold: float = Field(20.0, gt=0, description="CUSUM (or Page-Hinkley) threshold on "
                                                     "z-scores")
    delta: float = Field(0.5, ge=0, description="CUSUM (or Page-Hinkley) allowance on "
                                                "z-scores")
    adwin_delta: float = Field(0.002, gt=0, lt=1, description="ADWIN confidence")
    block_size: int = Field(16, gt=0, description="events averaged into one detector input")
    warmup_blocks: int = Field(10, ge=2, description="blocks that learn the reference before "
                                                     "any alert")
    reference_blocks: int = Field(100, ge=2, description="blocks the reference keeps learning "
                                                        "from after the warm-up (lagged)")
    min_effect: float = Field(0.75, ge=0, description="smallest mean |z| that may alert")
    cooldown_blocks: int = Field(10, ge=0, description="blocks without alert after one")
    projections: int = Field(4, ge=0, description="random projections of embeddings")
    centroid_events: int = Field(160, gt=0, description="embeddings that learn the centroid")
    input_features: int = Field(
        64, ge=0, description="the input signal, which no promotion re-references (0: off): "
                              "the events' input_embedding when they carry one, else the "
                              "text's byte bigrams hashed into this many buckets")
    seed: int = 0


class ActiveSettings(Section):
    """Active learning: which interactions go to humans."""

    strategy: Literal["least_confidence", "margin", "entropy"] = "margin"
    threshold: float = Field(0.6, ge=0, le=1, description="smallest uncertainty to ask about")
    budget: int = Field(100, ge=0, description="label requests per task per window")
    window_s: float = Field(3600.0, gt=0, description="budget window")


class BufferSettings(Section):
    """Replay buffer and micro-batches per task."""

    capacity: int = Field(2000, gt=0, description="reservoir size (examples)")
    max_new: int = Field(5000, gt=0, description="new examples kept between trainings")
    max_bytes: int = Field(4 * 1024 * 1024, gt=0, description="bound of the whole buffer")
    batch_size: int = Field(256, gt=0, description="examples per training request")
    replay_ratio: float = Field(0.3, ge=0, lt=1, description="share of replayed examples")
    balance: bool = True
    curriculum: bool = True
    batch_max_bytes: int = Field(1024 * 1024, gt=0, description="bound of one request's examples")
    reviewer_weight: float = Field(
        1.0, gt=0, le=100,
        description="weight in training of a reviewer's label (an answer to a label "
                    "request) against a user's 1.0: reviewers answer what the model was "
                    "least sure of, and users' labels are noisier. 2 was measured on the live "
                    "loop, 5 seeds, 2026-12-07: questions answered 2 of 5 shifts (5), VADER "
                    "live 0.694 (0.716): 1")
    resend_until_promoted: bool = Field(
        False,
        description="a request's new examples stay new, and later requests send them again, "
                    "until a version is promoted or a shift opens a new regime (then they "
                    "join the reservoir): a candidate "
                    "rejected for want of evidence does not take its labels with it, and the "
                    "next one trains on every label its parent never learnt (bounded by "
                    "batch_size); triggers count only examples never sent. Off: ten seeds "
                    "gave VADER 13 of 30 shifts (12) but questions final 0.718 (0.679) with 6 "
                    "of 10 shifts (8); beside learner.min_steps 32 questions lost (final "
                    "0.706 against 0.805, 4 seeds; docs/benchmarks.md)")
    seed: int = 0


class TriggerSettings(Section):
    """When a task asks for training."""

    min_examples: int = Field(32, gt=0, description="new examples needed by any trigger; a "
                                                    "drift trigger also waits for this many "
                                                    "labels of the regime its alert opened")
    cooldown_s: float = Field(10.0, ge=0, description="least time between two requests")
    max_in_flight: int = Field(
        1, ge=0, description="requests of a task sent and not yet answered by the learner; "
                             "while that many wait, only an operator's trigger sends another "
                             "(0: no limit): the learner's pace is the cooldown")
    answer_timeout_s: float = Field(
        900.0, gt=0, description="an unanswered request stops holding the next after this")
    regime_growth: float | None = Field(
        2.0, gt=1, description="schedule within a regime (the traffic since the last shift): "
                               "ask again when its labels reach min_examples, then each time "
                               "they grow by this factor (32, 64, 128, ...): many updates "
                               "after a shift, few once it is learnt (None: off)")
    max_interval: int = Field(
        2048, gt=0, description="most regime labels between two scheduled requests")
    every_s: float | None = Field(None, gt=0, description="schedule: every T seconds")
    every_examples: int | None = Field(None, gt=0, description="schedule: every N examples")
    on_drift: bool = True
    metric_threshold: float | None = Field(
        None, ge=0, le=1, description="accuracy floor (None: none; a floor is a property of "
                                      "the stream, the drop from the baseline is not)")
    metric_max_drop: float | None = Field(0.1, ge=0, le=1, description="drop from baseline")
    metric_min_outcomes: int = Field(100, gt=0, description="labels before the metric counts")
    challenge_min_score: float | None = Field(
        0.9, ge=0, le=1, description="challenge_score of a new version below this triggers")
    quality_window: int = Field(500, gt=0, description="outcomes in the rolling accuracy")


class ABTestSettings(Section):
    """A/B promotion: the worker tests a canaried candidate against the head on live feedback.

    The test is Wald's SPRT on paired outcomes with Ville's thresholds
    (:mod:`driftloop.streams.sprt`): a candidate is promoted only with
    P(promote | not better) <= ``alpha`` under continuous monitoring, and rejected early with
    P(reject | odds ratio >= ``odds_ratio``) <= ``beta``.
    """

    enabled: bool = Field(True, description="run A/B tests of candidate versions")
    alpha: float = Field(0.05, gt=0.0, lt=0.5,
                         description="bound on promoting a candidate that is not better")
    beta: float = Field(0.2, gt=0.0, lt=0.5,
                        description="bound on an early rejection of a candidate as good as "
                                    "odds_ratio")
    odds_ratio: float = Field(
        1.5, gt=1.0, le=100.0,
        description="the effect to detect: odds of a right answer, candidate over head "
                    "(0.80 -> 0.857 is 1.5)")
    min_samples: int = Field(20, ge=1, description="paired outcomes before any decision")
    max_samples: int = Field(2000, ge=1,
                             description="paired outcomes without a decision: the candidate "
                                         "is rejected")
    pair_window: int = Field(32, ge=1, le=10_000,
                             description="unpaired outcomes kept per domain, newest first")

    @model_validator(mode="after")
    def _check_samples(self) -> ABTestSettings:
        if self.max_samples < self.min_samples:
            raise ValueError(f"max_samples ({self.max_samples}) must be >= min_samples "
                             f"({self.min_samples})")
        return self


class WorkerSettings(Section):
    """The Faust stream worker."""

    app_id: str = "driftloop-worker"
    web_port: int = Field(6066, gt=0, lt=65536)
    data_dir: Path = Field(default_factory=lambda: data_home() / "worker")
    max_event_bytes: int = Field(
        1024 * 1024, gt=0, le=8 * 1024 * 1024,
        description="largest event (its JSON, alone or inside a batch) the worker accepts; "
                    "a larger one is a dead letter (too_large)")
    web_host: str = Field("127.0.0.1", description="interface of /metrics and /health")
    store: str = Field("memory://", description="Faust table store (memory:// or rocksdb://)")
    commit_interval_s: float = Field(1.0, gt=0, description="offset commit interval")
    session_timeout_s: float = Field(
        30.0, ge=6, description="consumer session: how long a dead worker keeps its partitions")
    stall_timeout_s: float = Field(
        60.0, gt=0, description="no progress with lag for this long: resume the partitions")
    gc_threshold: int = Field(
        100_000, ge=0,
        description="allocations between young-generation garbage collections (Python's "
                    "default is 700; 0 keeps it): the hot path allocates many short-lived "
                    "objects that reference counting frees anyway (`driftloop bench worker`)")
    max_domains: int = Field(
        128, ge=1, le=100_000,
        description="most domains of one task the worker watches and counts apart (each "
                    "keeps drift monitors, about 7 KB, in the task's state, which every step "
                    "writes); events naming a further domain are watched, counted and learnt "
                    "from as overflow_domain, and counted in domains_overflowed")
    overflow_domain: Slug = Field(
        "other", description="the domain events beyond max_domains are tracked as")
    join: JoinSettings = Field(default_factory=JoinSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    active: ActiveSettings = Field(default_factory=ActiveSettings)
    buffer: BufferSettings = Field(default_factory=BufferSettings)
    triggers: TriggerSettings = Field(default_factory=TriggerSettings)
    ab_test: ABTestSettings = Field(default_factory=ABTestSettings)
