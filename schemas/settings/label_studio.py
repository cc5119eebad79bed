"""The Label Studio bridge's settings (``[label_studio]``): which server, which token, how
often to look for answers and how long to wait for a server that does not answer.

The token is a secret: masked when printed, kept out of every log record. The environment
gives it as ``DRIFTLOOP_LABEL_STUDIO__TOKEN`` like any nested setting; ``driftloop review
label-studio`` also reads the shorter ``DRIFTLOOP_LABEL_STUDIO_TOKEN``.

Examples
--------
>>> studio = LabelStudioSettings(url="http://ls.internal:8080/", token="0123456789abcdef")
>>> studio.url, studio.token, studio.poll_interval_s
('http://ls.internal:8080', SecretStr('**********'), 5.0)
>>> LabelStudioSettings(url="ls.internal:8080")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for LabelStudioSettings
url
  Value error, expected an http(s) URL such as http://localhost:8080, got 'ls.internal:8080' ...
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from ..redact import register_secret
from .section import Section

__all__ = ["LabelStudioSettings"]


class LabelStudioSettings(Section):
    """The bridge between label requests and a Label Studio server
    (``driftloop review label-studio``)."""

    url: str = Field("http://localhost:8080", description="the Label Studio server's base URL")
    token: SecretStr | None = Field(
        None, description="a Label Studio access token: a personal access token (Account & "
                          "Settings; refreshed as Label Studio's SDK does) or a legacy API "
                          "token (sent as 'Authorization: Token <key>')")
    tasks: tuple[str, ...] = Field(
        (), description="driftloop tasks bridged, one Label Studio project each")
    project_prefix: str = Field(
        "driftloop: ", description="a task's project is the one titled <prefix><task>: found "
                                   "again by title, so a restarted bridge reuses it")
    poll_interval_s: float = Field(
        5.0, gt=0.0, le=3600.0, description="how often Label Studio is asked for new answers")
    request_timeout_s: float = Field(30.0, gt=0.0, description="one HTTP request's limit")
    unreachable_deadline_s: float = Field(
        120.0, gt=0.0,
        description="a server that stays unreachable (or answers 5xx) this long is an error; "
                    "until then requests are retried with backoff")
    group_id: str = Field(
        "driftloop-label-studio", min_length=1,
        description="consumer group on label-requests (prefixed with kafka.topic_prefix)")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL such as http://localhost:8080, got "
                             f"{value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _register_token(self) -> LabelStudioSettings:
        if self.token is not None:
            register_secret(self.token.get_secret_value())
        return self
