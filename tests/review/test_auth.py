"""Who may use the review page: the token as bearer or basic-auth password, the refusal to
serve without one, and where the token comes from (``review/auth.py``)."""

from __future__ import annotations

import base64

import pytest

from driftloop.review.auth import (
    ReviewSetupError,
    check_exposure,
    review_token,
    reviewer_from,
)
from driftloop.schemas import SettingsError
from driftloop.schemas.settings import Settings

TOKEN = "review-token-for-tests"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("header", "reviewer"), [
    (f"Bearer {TOKEN}", ""),
    (f"bearer   {TOKEN} ", ""),
    (basic("ann", TOKEN), "ann"),
    (basic("", TOKEN), ""),
    (basic("Zoë", TOKEN), "Zoë"),
    (basic("ann", "wrong-token-of-any-size"), None),
    (basic("ann", TOKEN + "x"), None),
    ("Bearer wrong", None),
    (f"Token {TOKEN}", None),
    ("Basic !!!not-base64", None),
    ("", None),
    (None, None),
])
def test_the_token_signs_in_as_bearer_or_basic_password(header: str | None,
                                                        reviewer: str | None) -> None:
    assert reviewer_from(header, TOKEN) == reviewer


def test_a_page_needs_a_token_unless_no_auth_on_loopback() -> None:
    with pytest.raises(ReviewSetupError, match="DRIFTLOOP_REVIEW_TOKEN"):
        check_exposure("127.0.0.1", token=None, no_auth=False)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(ReviewSetupError, match="--no-auth"):
            check_exposure(host, token=None, no_auth=True)
        check_exposure(host, token=TOKEN, no_auth=False)
    for host in ("127.0.0.1", "localhost", "::1"):
        check_exposure(host, token=None, no_auth=True)


def test_the_token_comes_from_the_settings_else_the_environment() -> None:
    env = {"DRIFTLOOP_REVIEW_TOKEN": "from-the-environment"}
    assert review_token(Settings(), env) == "from-the-environment"
    assert review_token(Settings(review={"token": TOKEN}), env) == TOKEN
    assert review_token(Settings(), {}) is None
    assert review_token(Settings(), {"DRIFTLOOP_REVIEW_TOKEN": ""}) is None
    with pytest.raises(SettingsError, match="at least 12 characters"):
        review_token(Settings(), {"DRIFTLOOP_REVIEW_TOKEN": "short"})


def test_the_token_is_masked_wherever_settings_are_shown() -> None:
    settings = Settings(review={"token": TOKEN})
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.safe_dict())
    assert settings.review.token.get_secret_value() == TOKEN
