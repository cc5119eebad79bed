"""The ``[review]`` section (``schemas/settings/review.py``): read from TOML and the
environment, the token masked everywhere and refused when short."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from settings_helpers import clean_environment, write_toml  # noqa: F401

from driftloop.schemas import SettingsError
from driftloop.schemas.settings import load_settings

TOKEN = "a-review-token-nobody-guesses"


def test_the_section_comes_from_toml_and_the_environment(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path / "r.toml", '[review]\nport = 9000\ntasks = ["sentiment"]\n'
                                           'undo_window_s = 2.5\n')
    monkeypatch.setenv("DRIFTLOOP_REVIEW__TOKEN", TOKEN)
    review = load_settings(path).review
    assert (review.port, review.tasks, review.undo_window_s) == (9000, ("sentiment",), 2.5)
    assert review.token.get_secret_value() == TOKEN
    assert load_settings().review.host == "127.0.0.1"


def test_the_token_is_masked_and_kept_out_of_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(review={"token": TOKEN})
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.safe_dict())
    with caplog.at_level(logging.INFO):
        logging.getLogger("driftloop.test").info("token is %s", TOKEN)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("values", [{"token": "too-short"}, {"undo_window_s": -1},
                                    {"port": 0}, {"neighbours": 50}, {"unknown": 1}])
def test_bad_values_stop_at_start(values: dict) -> None:
    with pytest.raises(SettingsError, match="review"):
        load_settings(review=values)
