"""The measured default detector keeps its promise: no false alarm, every shift found."""

from __future__ import annotations

from driftloop.tools.bench.quality.calibrate import CANDIDATES, SCENARIOS, measure, render


def test_default_monitor_has_no_false_alarm_and_finds_every_shift():
    results = measure(["monitor CUSUM thr=20 delta=0.5 (default)"], runs=4, seed=99)
    assert {m.scenario for m in results} == set(SCENARIOS)
    for m in results:
        if m.scenario.startswith("stable"):
            assert m.runs_with_alert == 0, render(results)
        else:
            assert m.runs_with_alert == m.runs and m.extra_alerts_per_run == 0, render(results)
            assert m.median_delay is not None and m.median_delay <= 2_000, render(results)


def test_rivers_per_event_page_hinkley_default_is_noisy_on_stable_streams():
    # The reason for the wrapper (river #1914): defaults alarm on stable Gaussian noise.
    [stable] = [m for m in measure(["river PageHinkley default, per event"], runs=2)
                if m.scenario == "stable gauss"]
    assert stable.alerts_per_run > 5


def test_binary_detectors_only_see_bit_streams():
    results = measure(["river DDM default, per event (bits)"], runs=1)
    assert {m.scenario for m in results} == {"stable bits", "error 0.1->0.2"}
    assert "river DDM" in render(results) and len(CANDIDATES) >= 8
