"""The ``[label_studio]`` section: from TOML and DRIFTLOOP_* variables, URL checked at
start, token masked everywhere (``schemas/settings/label_studio.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from settings_helpers import clean_environment, write_toml  # noqa: F401

from driftloop.schemas import SettingsError
from driftloop.schemas.settings import load_settings

TOKEN = "ls-token-0123456789abcdef"


def test_the_section_reads_toml_and_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path / "a.toml",
                      '[label_studio]\nurl = "http://ls.internal:8080/"\n'
                      'tasks = ["sentiment"]\npoll_interval_s = 2.5\n')
    monkeypatch.setenv("DRIFTLOOP_LABEL_STUDIO__TOKEN", TOKEN)
    studio = load_settings(path).label_studio
    assert (studio.url, studio.tasks, studio.poll_interval_s) == \
        ("http://ls.internal:8080", ("sentiment",), 2.5)
    assert studio.token.get_secret_value() == TOKEN
    assert studio.group_id == "driftloop-label-studio"


def test_the_token_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(label_studio={"token": TOKEN})
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.safe_dict())
    with caplog.at_level(logging.INFO):
        logging.getLogger("aiohttp.client").info("Authorization: Token %s", TOKEN)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("section, message", [
    ({"url": "ls.internal:8080"}, "label_studio.url: expected an http"),
    ({"poll_interval_s": 0}, "label_studio.poll_interval_s"),
    ({"tokn": TOKEN}, "label_studio.tokn"),
])
def test_a_bad_section_stops_at_start(section: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(label_studio=section)
