"""What a learner and a serving replica may load (``[trust]``).

Anyone who can write to ``model-versions`` or ``training-requests`` names a base model and a
parent version; these settings decide which of those names a process acts on. The base
models every process trusts are the packaged defaults, the ones the configured tasks name
(their ``base_model``) and the ones listed here; anything else is refused. With a
``signing_key`` the learner signs each version event (HMAC-SHA256) and replicas refuse an
event without a valid signature.

Examples
--------
>>> trust = TrustSettings(base_models=["org/encoder", "/models/local"],
...                       base_model_sha256={"/models/local": "ab" * 32})
>>> trust.base_models, trust.signing_key
(('org/encoder', '/models/local'), None)
>>> TrustSettings(base_model_sha256={"/models/local": "not-a-digest"})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for TrustSettings
...
>>> str(TrustSettings(signing_key="a" * 32).signing_key)
'**********'
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, StringConstraints, model_validator

from ..fields import SHA256_PATTERN
from ..redact import register_secret
from .section import Section

__all__ = ["MIN_SIGNING_KEY_CHARS", "TrustSettings"]

MIN_SIGNING_KEY_CHARS = 16
"""A shorter key is refused: HMAC is only as strong as its key."""

_Digest = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]


class TrustSettings(Section):
    """Base models a process may load, and the key version events are signed with."""

    base_models: tuple[str, ...] = Field(
        (), description="hub ids or local paths trusted besides the packaged defaults and the "
                        "tasks' base_model; \"*\" trusts any (not for production)")
    base_model_sha256: dict[str, _Digest] = Field(
        default_factory=dict,
        description="local path -> sha256 of its weights file (sha256sum model.safetensors); "
                    "a listed path whose weights hash otherwise is refused")
    signing_key: SecretStr | None = Field(
        None, description="shared HMAC-SHA256 key: the learner signs version events, replicas "
                          "refuse unsigned or wrongly signed ones (None = no signatures)")

    @model_validator(mode="after")
    def _check_key(self) -> TrustSettings:
        if self.signing_key is not None:
            key = self.signing_key.get_secret_value()
            if len(key) < MIN_SIGNING_KEY_CHARS:
                raise ValueError(f"signing_key must be at least {MIN_SIGNING_KEY_CHARS} "
                                 "characters")
            register_secret(key)
        return self
