"""Labels until a better version served, per shift of the demo's traffic."""

from __future__ import annotations

from driftloop.tools.demo.shifts import ShiftResult, shift_results
from driftloop.tools.demo.traffic import ServedPrediction, StreamItem


def answered(domain: str, version: str, ts: float) -> ServedPrediction:
    return ServedPrediction(StreamItem(f"{domain}{ts}", domain, "t", "positive"), "positive",
                            version, ts)


def test_each_shift_names_the_first_better_version_and_the_labels_it_took() -> None:
    served = [answered("a", "v1", 1.0), answered("a", "v2", 2.0), answered("b", "v2", 3.0),
              answered("b", "v3", 5.0), answered("b", "v4", 6.0), answered("c", "v4", 8.0)]
    scores = {("v2", "b"): 0.6, ("v3", "b"): 0.55, ("v4", "b"): 0.7, ("v4", "c"): 0.8}
    results = shift_results(served, ["a", "b", "c"], {"a": 1.0, "b": 3.0, "c": 8.0},
                            label_times=[1.1, 3.5, 4.0, 5.5, 6.5, 8.5], default="v0",
                            score=lambda version, domain: scores[(version, domain)])
    assert results == [ShiftResult("b", "v2", 0.6, "v4", 0.7, 3),
                       ShiftResult("c", "v4", 0.8)]
    assert results[1].line() == "shift to c: no better version served (v4 0.80 held-out)"
