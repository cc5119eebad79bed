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
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = ["Section", "data_home"]


def data_home() -> Path:
    """``$XDG_DATA_HOME/driftloop`` (``~/.local/share/driftloop`` without it)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "driftloop"


class Section(BaseModel):
    """A settings section: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
