"""The JSON Schema files: the contract of every event for producers in any language.

``schemas/json/<name>.schema.json`` (draft 2020-12) ships inside the package; this module
reads them. Each Python event type in :mod:`driftloop.schemas.events`, and the command
decoder of :mod:`driftloop.schemas.commands`, judges samples the same way as its file
(``tests/schemas/test_schema_contracts.py``).

Examples
--------
>>> from driftloop.schemas import Command, Feedback, json_schema
>>> json_schema(Feedback)["$id"]
'https://driftloop.dev/schemas/feedback/1'
>>> json_schema("driftloop.batch")["required"]
['schema_name', 'schema_version', 'events']
>>> json_schema(Command)["required"]
['id', 'task', 'kind']
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

from .codec import BATCH_SCHEMA_NAME, event_short_name
from .commands import Command
from .events import EVENT_TYPES, Event

__all__ = ["JSON_SCHEMA_NAMES", "json_schema"]

# Short names, as in the file names: the events, the batch envelope, then the command
# (which alone carries no schema_name: its Kafka header marks it).
JSON_SCHEMA_NAMES: tuple[str, ...] = (
    *(event_short_name(cls) for cls in EVENT_TYPES.values()),
    BATCH_SCHEMA_NAME.rsplit(".", 1)[-1],
    "command",
)


@cache
def _schema_bytes(short: str) -> bytes:
    return resources.files(__package__).joinpath("json", f"{short}.schema.json").read_bytes()


def json_schema(name_or_cls: str | type[Event] | type[Command]) -> dict[str, Any]:
    """The JSON Schema of an event type, the batch envelope or the command, as a fresh dict.

    ``name_or_cls`` is an event class, :class:`Command`, a schema name
    (``driftloop.feedback``) or a short name (``feedback``, ``batch``, ``command``). Unknown
    names raise ValueError listing the valid ones.
    """
    if name_or_cls is Command:
        short = "command"
    elif isinstance(name_or_cls, type) and issubclass(name_or_cls, Event):
        short = event_short_name(name_or_cls)
    elif isinstance(name_or_cls, str):
        short = name_or_cls.removeprefix("driftloop.")
    else:
        short = ""
    if short not in JSON_SCHEMA_NAMES:
        raise ValueError(f"no JSON Schema named {name_or_cls!r}; "
                         f"expected one of {', '.join(JSON_SCHEMA_NAMES)} or an event class "
                         f"or Command")
    return orjson.loads(_schema_bytes(short))
