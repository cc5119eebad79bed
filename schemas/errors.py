"""Errors of the event contracts, rooted in :class:`DriftloopError`.

Every driftloop package family roots its errors in :class:`DriftloopError`, so a caller can
catch everything driftloop raises with one ``except``. Contract violations raise
:class:`ValidationError`, which names the field and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .enums import DeadLetterReason

__all__ = ["CommandError", "DriftloopError", "FieldError", "SettingsError", "ValidationError",
           "show_value"]


class DriftloopError(Exception):
    """Root of every error driftloop raises on purpose.

    ``retriable`` tells a caller whether trying the same thing again may succeed
    (a broker that is still starting) or never will (a malformed event); ``exit_status`` is
    the status the command line exits with when the error ends a process (1 unless a
    supervisor needs to tell the cause apart).
    """

    retriable: bool = False
    exit_status: int = 1


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an event failed its contract: where, why, and what was there."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class ValidationError(DriftloopError, ValueError):
    """An event (or a raw payload) does not satisfy its contract.

    The message names the field and the reason, for example
    ``feedback.value: expected a number for kind=rating, got "five"``; ``errors`` holds
    every violation found, ``code`` the :class:`~driftloop.schemas.DeadLetterReason` the record
    is dead-lettered under (``invalid_json``, ``invalid_utf8``, ``too_large``,
    ``invalid_event``, ``unknown_schema``, ``invalid_batch``...). ``event_index`` is the
    position of the bad event inside a batch envelope, None outside one.

    Examples
    --------
    >>> err = ValidationError([FieldError("feedback.value", 'expected a number, got "five"')])
    >>> str(err)
    'feedback.value: expected a number, got "five"'
    >>> err.code.value
    'invalid_event'
    """

    def __init__(self, errors: list[FieldError], *,
                 code: DeadLetterReason | str = DeadLetterReason.INVALID_EVENT,
                 event_index: int | None = None) -> None:
        if not errors:
            raise ValueError("ValidationError needs at least one FieldError")
        self.errors = list(errors)
        self.code = DeadLetterReason(code)  # an unlisted code is a bug: fail where it is made
        self.event_index = event_index
        first = str(self.errors[0])
        more = len(self.errors) - 1
        super().__init__(first if more == 0 else f"{first} (and {more} more)")

    @classmethod
    def single(cls, path: str, reason: str, *,
               code: DeadLetterReason | str = DeadLetterReason.INVALID_EVENT
               ) -> ValidationError:
        return cls([FieldError(path, reason)], code=code)


class CommandError(ValidationError):
    """A command on the ``feedback`` topic breaks its contract (``schemas/commands.py``).

    A :class:`ValidationError` like any other decoding failure, with the code the worker
    dead-letters it under (``invalid_command``); the message is the reason alone, since a
    command has no schema name to prefix it with.

    Examples
    --------
    >>> err = CommandError("command must be a JSON object")
    >>> str(err), err.code.value, err.errors[0].path
    ('command must be a JSON object', 'invalid_command', 'command')
    """

    def __init__(self, message: str) -> None:
        self.errors = [FieldError("command", message)]
        self.code = DeadLetterReason.INVALID_COMMAND
        self.event_index = None
        Exception.__init__(self, message)


def show_value(value: Any) -> str:
    """How a bad value reads inside an error message: JSON spelling, long strings cut.

    >>> show_value("five"), show_value(None), show_value(True), show_value([1, 2])
    ('"five"', 'null', 'true', 'an array')
    """
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 40 else f'"{value[:37]}..."'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return repr(value)


class SettingsError(DriftloopError, ValueError):
    """The settings (TOML file or DRIFTLOOP_* environment) are invalid; the message says which."""
