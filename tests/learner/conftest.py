"""Learner fixtures: offline Hugging Face, one torch thread, base models loaded once.

Loading a base model costs seconds (SmolLM2's GGUF ~15 s); the session-scoped
:class:`ResidentModels` keeps them for every test, the way the learner process does.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch
from learner_helpers import TORCH_THREADS, learner_settings, sentiment_request

from driftloop.learner.models.resident import ResidentModels, default_base_model
from driftloop.schemas.enums import TaskKind

torch.set_num_threads(TORCH_THREADS)


@pytest.fixture(scope="session")
def resident_models() -> ResidentModels:
    """The session's resident base models (shared by every learner test)."""
    return ResidentModels(capacity=2)


@pytest.fixture(scope="session")
def minilm(resident_models: ResidentModels):  # type: ignore[no-untyped-def]
    return resident_models.get(default_base_model(TaskKind.CLASSIFICATION),
                               TaskKind.CLASSIFICATION)


@pytest.fixture(scope="session")
def challenge_suite(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small challenge suite of clear-cut sentiment prompts (tags: easy, negation)."""
    from driftloop.learner.gate.challenges import ChallengeCase, ChallengeSuite

    path = tmp_path_factory.mktemp("challenges") / "sentiment.jsonl"
    cases = [ChallengeCase(text, label, ("easy",)) for text, label in [
        ("I love this, it is wonderful!", "positive"), ("Best day ever, so happy :)", "positive"),
        ("This is awful, I hate it.", "negative"), ("Terrible service, never again.", "negative"),
        ("What a great and amazing movie", "positive"), ("Horrible, sad and boring.", "negative"),
    ]] + [ChallengeCase("not good at all", "negative", ("negation",))]
    ChallengeSuite.append(path, cases)
    return path


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory, challenge_suite):  # type: ignore[no-untyped-def]
    return learner_settings(str(tmp_path_factory.mktemp("store")),
                            challenge_suite=challenge_suite)


@pytest.fixture(scope="session")
def updater(session_settings, resident_models):  # type: ignore[no-untyped-def]
    from driftloop.learner.training.update import IncrementalUpdater

    return IncrementalUpdater(session_settings, models=resident_models)


@pytest.fixture(scope="session")
def sentiment_v1(updater):  # type: ignore[no-untyped-def]
    """The first version of the sentiment task, trained once per session."""
    from driftloop.learner.registry.version_log import VersionLog

    return updater.update(sentiment_request("r1"), VersionLog())
