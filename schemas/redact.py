"""Keep secrets out of every log record, whoever logs it.

Settings hold secrets as :class:`pydantic.SecretStr`, so driftloop's own code never prints
them. Libraries do: aiokafka logs each request at DEBUG, and its SASL PLAIN request spells
the password (``SaslAuthenticateRequest_v1(sasl_auth_bytes=b'user\\x00user\\x00password')``).
:func:`register_secret` remembers a secret and installs, once per process, a log record
factory that masks every remembered secret (and any SASL auth bytes) in the message of
every record, before any handler or filter sees it.

Examples
--------
>>> import logging
>>> register_secret("hunter2")
>>> logger = logging.getLogger("driftloop.doctest.redact")
>>> record = logger.makeRecord(logger.name, logging.INFO, __file__, 1,
...                            "login with %s", ("hunter2",), None)
>>> record.getMessage()
'login with **********'
>>> redact("SaslAuthenticateRequest_v1(sasl_auth_bytes=b'u\\\\x00u\\\\x00pw')")
'SaslAuthenticateRequest_v1(sasl_auth_bytes=**********)'
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["MASK", "redact", "register_secret"]

MASK = "**********"
# The bytes of a SASL authenticate request, as repr() writes them (either quote style).
_SASL_BYTES = re.compile(r"""sasl_auth_bytes=b?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def redact(text: str) -> str:
    """``text`` with every registered secret and any SASL auth bytes masked."""
    if "sasl_auth_bytes" in text:
        text = _SASL_BYTES.sub(f"sasl_auth_bytes={MASK}", text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def register_secret(secret: str | None) -> None:
    """Mask ``secret`` in every log record of this process from now on (idempotent)."""
    global _installed
    # Very short secrets would mask ordinary words; those are refused by the broker anyway.
    if not secret or len(secret) < 4:
        return
    with _lock:
        _secrets.add(secret)
        if not _installed:
            _install()
            _installed = True


def _install() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call is logging's to report, not ours
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return record

    logging.setLogRecordFactory(factory)
