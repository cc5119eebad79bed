"""The demo's set-up without a broker: input refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.schemas.errors import SettingsError
from driftloop.schemas.settings import Settings
from driftloop.tools.demo.run import run_demo


def test_a_malformed_broker_address_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--bootstrap-servers 'nohost': expected host:port"):
        run_demo(Settings(), broker="nohost", workdir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
