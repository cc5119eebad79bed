from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.learner.adapters import (
    ADAPTER_METADATA_FILE,
    AdapterMetadata,
    LoraSpec,
    read_metadata,
)
from driftloop.learner.errors import AdapterFormatError
from driftloop.schemas.enums import TaskKind


def test_metadata_round_trip(tmp_path: Path) -> None:
    meta = AdapterMetadata(TaskKind.GENERATION, "base", "v1", (), "sentiment@1", {"k": 1})
    (tmp_path / ADAPTER_METADATA_FILE).write_text(meta.to_json())
    assert read_metadata(tmp_path) == meta


@pytest.mark.parametrize("content", ["not json", "{}", '{"task_kind": "regression", '
                                     '"base_model": "m", "version_id": "v"}'])
def test_malformed_metadata(tmp_path: Path, content: str) -> None:
    (tmp_path / ADAPTER_METADATA_FILE).write_text(content)
    with pytest.raises(AdapterFormatError, match="malformed"):
        read_metadata(tmp_path)


def test_missing_metadata(tmp_path: Path) -> None:
    with pytest.raises(AdapterFormatError, match="has no"):
        read_metadata(tmp_path)


@pytest.mark.parametrize(("kwargs", "message"), [({"r": 0}, "r must"), ({"alpha": 0}, "alpha"),
                                                 ({"dropout": 1.0}, "dropout")])
def test_bad_lora_spec(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoraSpec(**kwargs)
