"""The meta-start bench: every start is trained and scored on every left-out domain."""

from __future__ import annotations

import json

from driftloop.tools.bench.quality.meta_start import STARTS, meta_start, summarise_meta
from driftloop.tools.bench.quality.run import _meta_table


def test_every_left_out_domain_is_scored_from_every_start() -> None:
    run = meta_start("questions", seed=0, known=8, heldout=8, shots=(0, 8), torch_threads=1)
    assert sorted(run["domains"]) == ["group-0", "group-1", "group-2"]
    for curves in run["domains"].values():
        assert sorted(curves) == sorted(STARTS)
        assert all(sorted(c) == [0, 8] and all(0 <= a <= 1 for a in c.values())
                   for c in curves.values())
    # What --json writes and a report read back (string keys) give the same summary.
    back = json.loads(json.dumps(run))
    assert summarise_meta([back]) == summarise_meta([run])
    table = _meta_table({"known": 8, "summary": summarise_meta([run])})
    assert table[1].startswith("questions (1 seeds)") and table[2].lstrip().startswith("scratch")
