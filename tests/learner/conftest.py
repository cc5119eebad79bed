"""Learner fixtures: offline Hugging Face, two torch threads, base models loaded once.

Loading a base model costs seconds (SmolLM2's GGUF ~15 s); the session-scoped
:class:`ResidentModels` keeps them for every test, the way the learner process does.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from collections.abc import Sequence

import pytest
import torch

from driftloop.learner.models import ResidentModels, default_base_model
from driftloop.learner.vader import balanced_sample, read_domain
from driftloop.schemas.enums import TaskKind
from driftloop.schemas.events import TrainingRequest

TORCH_THREADS = 2
torch.set_num_threads(TORCH_THREADS)

# Small and fast on a shared 2-core machine, yet enough data for a clear held-out gain.
LEARNER_TEST_SETTINGS = {"torch_threads": TORCH_THREADS, "max_length": 64, "batch_size": 8,
                         "eval_every": 4, "patience": 3}


@pytest.fixture(scope="session")
def resident_models() -> ResidentModels:
    """The session's resident base models (shared by every learner test)."""
    return ResidentModels(capacity=2)


@pytest.fixture(scope="session")
def minilm(resident_models: ResidentModels):  # type: ignore[no-untyped-def]
    return resident_models.get(default_base_model(TaskKind.CLASSIFICATION),
                               TaskKind.CLASSIFICATION)


def sentiment_request(request_id: str, domain: str = "tweets", n: int = 96, *, seed: int = 0,
                      flip: bool = False, replay: Sequence[tuple[str, str]] = (),
                      parent: str | None = None, task: str = "sentiment",
                      **fields: object) -> TrainingRequest:
    """A training request of real VADER examples (labels flipped when ``flip``)."""
    swap = {"positive": "negative", "negative": "positive"}
    examples = [{"input": e.text, "target": swap[e.label] if flip else e.label}
                for e in balanced_sample(read_domain(domain), n, seed=seed)]
    examples += [{"input": text, "target": label, "origin": "replay"} for text, label in replay]
    return TrainingRequest(id=request_id, ts=1.0, task=task, trigger="manual",
                           parent_version=parent, examples=examples, **fields)


# Correct-label tweets that no request of these tests trains on: replayed old examples.
def replay_tweets(n: int = 32) -> list[tuple[str, str]]:
    picked = balanced_sample(read_domain("tweets"), 96 + n, seed=7)
    return [(e.text, e.label) for e in picked[:n]]


@pytest.fixture(scope="session")
def challenge_suite(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small challenge suite of clear-cut sentiment prompts (tags: easy, negation)."""
    from driftloop.learner.challenges import ChallengeCase, ChallengeSuite

    path = tmp_path_factory.mktemp("challenges") / "sentiment.jsonl"
    cases = [ChallengeCase(text, label, ("easy",)) for text, label in [
        ("I love this, it is wonderful!", "positive"), ("Best day ever, so happy :)", "positive"),
        ("This is awful, I hate it.", "negative"), ("Terrible service, never again.", "negative"),
        ("What a great and amazing movie", "positive"), ("Horrible, sad and boring.", "negative"),
    ]] + [ChallengeCase("not good at all", "negative", ("negation",))]
    ChallengeSuite.append(path, cases)
    return path


def learner_settings(store: str, *, challenge_suite=None, **learner: object):  # type: ignore[no-untyped-def]
    from driftloop.schemas.settings import Settings

    tasks = {"sentiment": {"kind": "classification", "labels": ["negative", "positive"],
                           "challenge_suite": str(challenge_suite) if challenge_suite else None},
             "moviegen": {"kind": "generation", "prompt_template_id": "sentiment"}}
    return Settings(artifacts={"store_url": store},
                    learner={**LEARNER_TEST_SETTINGS, **learner}, tasks=tasks)


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory, challenge_suite):  # type: ignore[no-untyped-def]
    return learner_settings(str(tmp_path_factory.mktemp("store")),
                            challenge_suite=challenge_suite)


@pytest.fixture(scope="session")
def updater(session_settings, resident_models):  # type: ignore[no-untyped-def]
    from driftloop.learner.update import IncrementalUpdater

    return IncrementalUpdater(session_settings, models=resident_models)


@pytest.fixture(scope="session")
def sentiment_v1(updater):  # type: ignore[no-untyped-def]
    """The first version of the sentiment task, trained once per session."""
    from driftloop.learner.registry import VersionLog

    return updater.update(sentiment_request("r1"), VersionLog())
