"""The base of every settings section, and where driftloop keeps its files by default.

Every section is a frozen pydantic model that refuses unknown keys, so a typo in a TOML file
or a ``DRIFTLOOP_*`` variable stops the process at start instead of being ignored.

Examples
--------
>>> class Example(Section):
...     port: int = 1
>>> Example(prot=2)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Example
prot
  Extra inputs are not permitted ...
>>> data_home().name
'driftloop'

A setting that may be None takes ``none`` (or ``null``) from an environment variable, where
no other spelling of None exists:

>>> class Optional(Section):
...     floor: float | None = 0.7
>>> Optional(floor="none").floor is None, Optional(floor="0.5").floor
(True, 0.5)
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["Section", "data_home"]


def data_home() -> Path:
    """``$XDG_DATA_HOME/driftloop`` (``~/.local/share/driftloop`` without it)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "driftloop"


class Section(BaseModel):
    """A settings section: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _none_from_text(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            value = out.get(name)
            if (isinstance(value, str) and value.strip().lower() in ("none", "null")
                    and _allows_none(field.annotation)):
                out[name] = None
        return out


def _allows_none(annotation: Any) -> bool:
    return (typing.get_origin(annotation) in (typing.Union, types.UnionType)
            and type(None) in typing.get_args(annotation))
