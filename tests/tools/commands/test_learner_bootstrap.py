"""``driftloop learner bootstrap``: a new task's first version from a file, on the real broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftloop.learner.errors import TrainingRequestError
from driftloop.learner.topics.versions import read_version_log
from driftloop.schemas.enums import VersionStatus
from driftloop.schemas.settings import Settings
from driftloop.tools.cli import cli
from driftloop.tools.demo.vader import balanced_sample, read_domain

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def run(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    env = {f"DRIFTLOOP_{k.upper()}": json.dumps(v)
           for k, v in settings.model_dump(mode="json").items()
           if k in ("kafka", "artifacts", "learner")}
    return CliRunner().invoke(cli, ["learner", "bootstrap", *args], env=env)


def test_a_file_of_labelled_examples_becomes_the_first_version_once(
        kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(update={"learner": kafka_settings.learner.model_copy(
        update={"torch_threads": 1, "max_length": 64})})
    rows = balanced_sample(read_domain("tweets"), 48, seed=5)
    source = tmp_path / "first.csv"
    source.write_text("text,label\n" + "".join(
        f"\"{e.text.replace(chr(34), chr(39))}\",{e.label}\n" for e in rows))
    done = run(settings, "--task", "reviews", "--from", str(source))
    assert done.exit_code == 0, done.output
    registry = asyncio.run(read_version_log(settings))
    head = registry.head("reviews")
    assert head is not None and head.status is VersionStatus.PROMOTED
    assert head.version_id in done.output and head.parent_version is None
    assert head.metadata["labels"] == ["negative", "positive"]
    # A task that serves a version is the loop's from then on.
    again = run(settings, "--task", "reviews", "--from", str(source))
    assert again.exit_code != 0 and "already serves" in again.output


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.jsonl", '{"input": "ok", "target": "positive"}\n{broken\n', "line 2: not JSON"),
    ("cols.csv", "review,score\nfine,5\n", "names no input column"),
    ("empty.jsonl", "\n", "holds no examples"),
    ("types.jsonl", '{"input": 3, "target": "positive"}\n', "line 1: input"),
])
def test_a_bad_file_is_refused_naming_the_problem(kafka_settings: Settings, tmp_path: Path,
                                                  name: str, content: str,
                                                  message: str) -> None:
    source = tmp_path / name
    source.write_text(content)
    refused = run(kafka_settings, "--task", "reviews", "--from", str(source))
    # driftloop's main() prints a DriftloopError as one "error: ..." line and exits 1.
    assert isinstance(refused.exception, TrainingRequestError), refused.output
    assert message in str(refused.exception)
    assert asyncio.run(read_version_log(kafka_settings)).head("reviews") is None
