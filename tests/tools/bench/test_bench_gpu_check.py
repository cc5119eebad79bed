"""``driftloop bench gpu-check``'s parts that run on any machine: the mixed-precision decision
check (bf16 autocast exists on the CPU too) and the plain PEFT loop it compares against."""

from __future__ import annotations

import pytest

from driftloop.schemas.enums import TaskKind
from driftloop.schemas.settings import Settings
from driftloop.tools.bench.gpu_check import autocast_agreement, plain_peft_tokens_per_s
from driftloop.tools.bench.trainer_baseline import bench_request

pytestmark = pytest.mark.slow


def test_a_continued_update_under_bf16_autocast_reaches_the_full_precision_decision(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(artifacts={"store_url": str(tmp_path)},
                        learner={"device": "cpu", "torch_threads": 1})
    agreement = autocast_agreement(settings, n=64)
    assert agreement.dtype == "bfloat16"
    assert agreement.agrees, agreement
    assert 0.0 < agreement.full_score <= 1.0 and 0.0 < agreement.autocast_score <= 1.0


def test_the_plain_peft_loop_trains_the_same_examples(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(artifacts={"store_url": str(tmp_path)},
                        learner={"device": "cpu", "torch_threads": 1})
    request = bench_request(32, kind=TaskKind.CLASSIFICATION, request_id="plain")
    assert plain_peft_tokens_per_s(settings, request, steps=3) > 0
