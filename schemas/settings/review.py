"""The review page's settings (``[review]``): where ``driftloop review serve`` listens, its
token, and how long an answer can still be taken back.

The token is a secret: masked when printed, kept out of every log record. The environment
gives it as ``DRIFTLOOP_REVIEW__TOKEN`` like any nested setting; ``driftloop review serve``
also reads the shorter ``DRIFTLOOP_REVIEW_TOKEN``.

Examples
--------
>>> review = ReviewSettings(token="a-long-review-token", tasks=["sentiment"])
>>> review.token, review.tasks, review.undo_window_s
(SecretStr('**********'), ('sentiment',), 10.0)
>>> ReviewSettings(token="short")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ReviewSettings
...
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from ..redact import register_secret
from .section import Section

__all__ = ["MIN_REVIEW_TOKEN_CHARS", "ReviewSettings"]

# The token guards what the model is taught next: short enough to guess is too short.
MIN_REVIEW_TOKEN_CHARS = 12


class ReviewSettings(Section):
    """The built-in review page (``driftloop review serve``)."""

    host: str = Field("127.0.0.1", description="interface the review page listens on")
    port: int = Field(8095, gt=0, lt=65536, description="port of the review page")
    token: SecretStr | None = Field(
        None, description="the page's access token, sent as 'Authorization: Bearer <token>' "
                          "or as the password of basic auth (any user name; it names the "
                          "reviewer); None = the page refuses to start unless --no-auth on "
                          "127.0.0.1")
    tasks: tuple[str, ...] = Field(
        (), description="tasks whose label requests the page offers; empty = every task")
    group_id: str = Field(
        "driftloop-review", min_length=1,
        description="consumer group on label-requests (prefixed with kafka.topic_prefix; a "
                    "page limited to some tasks gets a group of its own)")
    undo_window_s: float = Field(
        10.0, ge=0.0, le=3600.0,
        description="an answer is held this long before it is published, and can be undone "
                    "meanwhile; once published it stands")
    neighbours: int = Field(
        3, ge=0, le=20, description="similar requests shown beside each one (by embedding)")
    memory: int = Field(
        1000, gt=0, description="answered requests per task kept as neighbours to show")

    @model_validator(mode="after")
    def _check_token(self) -> ReviewSettings:
        if self.token is not None:
            token = self.token.get_secret_value()
            if len(token) < MIN_REVIEW_TOKEN_CHARS:
                raise ValueError(f"review.token must be at least {MIN_REVIEW_TOKEN_CHARS} "
                                 "characters")
            register_secret(token)
        return self
