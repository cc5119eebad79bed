"""Signing version events with a shared key: HMAC-SHA256 over the event's canonical JSON.

The signed bytes are the event without its ``signature`` field, as compact JSON with sorted
keys (what ``orjson.dumps(..., option=OPT_SORT_KEYS)`` writes for the event's JSON form), so
a verifier in any language recomputes them from the decoded event. The signature is written
``hmac-sha256:<hex>``.

Examples
--------
>>> from driftloop.schemas import ModelVersion
>>> event = ModelVersion(version_id="v1", ts=5.0, task="t", base_model="m",
...                      adapter_uri="file:///a/" + "0" * 64, sha256="0" * 64, size_bytes=1,
...                      status="promoted")
>>> signed = sign_version(event, "a shared key, 16+ chars")
>>> signed.signature.startswith("hmac-sha256:")
True
>>> version_signature_ok(signed, "a shared key, 16+ chars")
True
>>> version_signature_ok(signed.model_copy(update={"base_model": "evil/model"}),
...                      "a shared key, 16+ chars")
False
>>> version_signature_ok(event, "a shared key, 16+ chars")  # unsigned
False
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

from .events import ModelVersion
from .settings import Settings

__all__ = ["SIGNATURE_ALGORITHM", "deployment_key", "sign_version", "signed_bytes",
           "version_signature_ok"]

SIGNATURE_ALGORITHM = "hmac-sha256"


def signed_bytes(event: ModelVersion) -> bytes:
    """The bytes a signature covers: the event minus ``signature``, sorted compact JSON."""
    return orjson.dumps(event.model_dump(mode="json", exclude={"signature"}),
                        option=orjson.OPT_SORT_KEYS)


def _digest(event: ModelVersion, key: str) -> str:
    mac = hmac.new(key.encode("utf-8"), signed_bytes(event), hashlib.sha256)
    return f"{SIGNATURE_ALGORITHM}:{mac.hexdigest()}"


def sign_version(event: ModelVersion, key: str) -> ModelVersion:
    """A copy of ``event`` carrying its signature under ``key``."""
    return event.model_copy(update={"signature": _digest(event, key)})


def version_signature_ok(event: ModelVersion, key: str) -> bool:
    """True when ``event`` carries a signature and it is the one ``key`` gives."""
    if event.signature is None:
        return False
    return hmac.compare_digest(event.signature, _digest(event, key))


def deployment_key(settings: Settings) -> str | None:
    """The deployment's signing key (``trust.signing_key``), or None when it does not sign.

    >>> deployment_key(Settings()) is None
    True
    """
    key = settings.trust.signing_key
    return key.get_secret_value() if key is not None else None
