"""The synthetic-data bench: both arms scored on every later domain, the variants counted."""

from __future__ import annotations

import json

from driftloop.tools.bench.quality.run import _synthetic_table
from driftloop.tools.bench.quality.synthetic_gain import (
    ARMS,
    summarise_synthetic,
    synthetic_gain,
)


def test_both_arms_are_scored_on_every_later_domain_and_the_variants_are_counted() -> None:
    run = synthetic_gain("questions", seed=0, known=8, heldout=8, shots=(8,),
                         teacher_labels=16, torch_threads=1)
    assert sorted(run["domains"]) == ["group-1", "group-2"]  # the first one is learnt first
    for curves in run["domains"].values():
        assert sorted(curves) == sorted(ARMS)
        assert all(list(c) == [8] and 0 <= c[8] <= 1 for c in curves.values())
    variants = run["variants"]
    # 8 labels, at most 0.3 of the training part: 3 variants, 2 sources asked twice each.
    assert variants["asked"] == 2 * 4
    assert variants["kept"] + sum(variants["dropped"].values()) == variants["asked"]
    assert 0 <= variants["teacher_kept"] <= variants["kept"]
    assert sorted(run["teachers"]) == sorted(run["domains"])
    back = json.loads(json.dumps(run))
    assert summarise_synthetic([back]) == summarise_synthetic([run])
    table = _synthetic_table({"known": 8, "summary": summarise_synthetic([run])})
    assert table[1].startswith("questions (1 seeds, ")
    assert [line.split()[0] for line in table[2:]] == ["real", "synthetic", "teacher", "probes",
                                                       "gain", "teacher-gain", "probes-gain"]
    # the first version (8 labels of another domain) answers some of each domain's 8 wrong:
    # those went first as sources of the probes arm
    assert 0 < variants["probes"] <= 2 * 8 and variants["probes_trained"] <= variants["probes"]
