"""The JSON Schema files: the contract of every event for producers in any language.

``schemas/json/<name>.schema.json`` (draft 2020-12) ships inside the package; this module
reads them. Each Python event type in :mod:`driftloop.schemas.events` judges samples the
same way as its file (``tests/schemas/test_schema_contracts.py``).

Examples
--------
>>> from driftloop.schemas import Feedback, json_schema
>>> json_schema(Feedback)["$id"]
'https://driftloop.dev/schemas/feedback/1'
>>> json_schema("driftloop.batch")["required"]
['schema_name', 'schema_version', 'events']
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

from .codec import BATCH_SCHEMA_NAME, event_short_name
from .events import EVENT_TYPES, Event

__all__ = ["JSON_SCHEMA_NAMES", "json_schema"]

# Short names, as in the file names: the seven events, then the batch envelope.
JSON_SCHEMA_NAMES: tuple[str, ...] = (
    *(event_short_name(cls) for cls in EVENT_TYPES.values()),
    BATCH_SCHEMA_NAME.rsplit(".", 1)[-1],
)


@cache
def _schema_bytes(short: str) -> bytes:
    return resources.files(__package__).joinpath("json", f"{short}.schema.json").read_bytes()


def json_schema(name_or_cls: str | type[Event]) -> dict[str, Any]:
    """The JSON Schema of an event type or the batch envelope, as a fresh dict.

    ``name_or_cls`` is an event class, a schema name (``driftloop.feedback``) or a short
    name (``feedback``, ``batch``). Unknown names raise ValueError listing the valid ones.
    """
    if isinstance(name_or_cls, type) and issubclass(name_or_cls, Event):
        short = event_short_name(name_or_cls)
    elif isinstance(name_or_cls, str):
        short = name_or_cls.removeprefix("driftloop.")
    else:
        short = ""
    if short not in JSON_SCHEMA_NAMES:
        raise ValueError(f"no JSON Schema named {name_or_cls!r}; "
                         f"expected one of {', '.join(JSON_SCHEMA_NAMES)} or an event class")
    return orjson.loads(_schema_bytes(short))
