"""``driftloop versions`` against the real broker: list, show, promote, rollback."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from driftloop.learner.errors import RegistryError
from driftloop.learner.topics.versions import publish_with_new_producer, read_version_log
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.events import ModelVersion
from driftloop.schemas.settings import Settings
from driftloop.tools.cli import cli

pytestmark = pytest.mark.kafka


def version(version_id: str, status: str, parent: str | None = None) -> ModelVersion:
    return ModelVersion(version_id=version_id, ts=1.0, task="sentiment", base_model="m",
                        parent_version=parent, adapter_uri=f"file:///store/{'a' * 64}",
                        sha256="a" * 64, size_bytes=10, status=status,
                        metrics_before={"holdout_score": 0.5},
                        metrics_after={"holdout_score": 0.75})


def run(settings: Settings, *args: str, answer: str | None = None):  # type: ignore[no-untyped-def]
    env = {f"DRIFTLOOP_{k.upper()}": json.dumps(v)
           for k, v in settings.model_dump(mode="json").items() if k in ("kafka", "artifacts")}
    return CliRunner().invoke(cli, ["versions", *args], env=env, input=answer)


def test_list_show_promote_rollback(kafka_settings: Settings) -> None:
    assert run(kafka_settings, "list").output.strip() == "no versions"
    asyncio.run(publish_with_new_producer(kafka_settings, [
        version("v1", "promoted"), version("v2", "promoted", "v1"),
        version("v3", "rejected", "v2")]))

    listed = run(kafka_settings, "list", "--task", "sentiment")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert [line.split()[0] for line in lines] == ["v1", "*", "v3"]
    assert "v2" in lines[1] and "0.500 -> 0.750" in lines[1] and "rejected" in lines[2]
    as_json = json.loads(run(kafka_settings, "list", "--json").output)
    assert [(r["version_id"], r["head"], r["status"]) for r in as_json] == [
        ("v1", False, "promoted"), ("v2", True, "promoted"), ("v3", False, "rejected")]
    assert as_json[1]["holdout_after"] == 0.75

    shown = run(kafka_settings, "show", "v3", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["lineage"] == ["v3", "v2", "v1"]
    as_text = run(kafka_settings, "show", "v3").output.splitlines()
    assert "lineage" in as_text[-1] and '["v3","v2","v1"]' in as_text[-1]
    assert any(line.split() == ["status", "rejected"] for line in as_text)

    refused = run(kafka_settings, "rollback", "--task", "sentiment", answer="n\n")
    assert refused.exit_code == 1 and "roll sentiment back from v2 to v1?" in refused.output
    assert asyncio.run(read_version_log(kafka_settings)).head("sentiment").version_id == "v2"
    rolled = run(kafka_settings, "rollback", "--task", "sentiment", answer="y\n")
    assert rolled.exit_code == 0, rolled.output
    registry = asyncio.run(read_version_log(kafka_settings))
    assert registry.head("sentiment").version_id == "v1"
    assert registry.get("v2").status is VersionStatus.ROLLED_BACK

    promoted = run(kafka_settings, "promote", "v3", "--reason", "operator override", "--yes")
    assert promoted.exit_code == 0, promoted.output
    registry = asyncio.run(read_version_log(kafka_settings))
    assert registry.head("sentiment").version_id == "v3"
    assert registry.get("v3").reason == "operator override"


def test_errors_name_the_problem(kafka_settings: Settings) -> None:
    asyncio.run(publish_with_new_producer(kafka_settings, [version("v1", "promoted")]))
    for args, message in ((("show", "nope"), "unknown model version"),
                          (("promote", "nope"), "unknown model version"),
                          (("rollback", "--task", "sentiment"), "no parent"),
                          (("rollback", "--task", "other"), "no promoted version")):
        result = run(kafka_settings, *args)
        assert isinstance(result.exception, RegistryError), result.output
        assert message in str(result.exception)
