"""``driftloop bench codec`` runs and reports decode beside its parse-only baseline."""

from __future__ import annotations

import json

from click.testing import CliRunner

from driftloop.tools.bench.codec import measure
from driftloop.tools.commands.bench import bench


def test_measure_reports_every_timing() -> None:
    result = measure(dim=8, number=5, rounds=2)
    assert set(result) == {"bytes", "orjson_loads_us", "decode_us", "encode_us"}
    assert all(value > 0 for value in result.values())


def test_the_command_prints_the_ratio() -> None:
    out = CliRunner().invoke(bench, ["codec", "--dim", "16", "--number", "5", "--rounds", "2"])
    assert out.exit_code == 0, out.output
    assert "16-float embedding" in out.output
    assert "x the parse alone" in out.output


def test_json_is_the_document_alone_on_stdout() -> None:
    out = CliRunner().invoke(bench, ["codec", "--dim", "16", "--number", "5", "--rounds", "2",
                                     "--json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.stdout)
    assert shown["dim"] == 16 and shown["decode_ratio"] == shown["decode_us"] / shown[
        "orjson_loads_us"]


def test_bad_options_are_usage_errors() -> None:
    out = CliRunner().invoke(bench, ["codec", "--dim", "0"])
    assert out.exit_code == 2
    assert "--dim" in out.output
