"""The constrained field types the events are built from, one per JSON Schema shape.

Every type here is strict: a JSON string is never read as a number or a boolean, a boolean
is never a number. That is what JSON Schema says, so a producer validating against the
``schemas/json`` files and driftloop's decoder always agree (``test_schema_contracts``
proves it).
The checks run inside pydantic's Rust core; only :data:`WholeNumber` calls back into Python.

Examples
--------
>>> from pydantic import TypeAdapter
>>> TypeAdapter(WholeNumber).validate_python(3.0)
3
>>> TypeAdapter(Number).validate_python("1.5")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ...
...
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, GetPydanticSchema, Strict
from pydantic_core import core_schema

__all__ = [
    "BASE64_PATTERN",
    "MAX_EMBEDDING_DIM",
    "MAX_SAFE_INTEGER",
    "SHA256_PATTERN",
    "SIGNATURE_PATTERN",
    "SLUG_PATTERN",
    "Base64",
    "Count",
    "Flag",
    "Name",
    "Number",
    "Probability",
    "SchemaVersion",
    "Sha256",
    "Signature",
    "SliceValue",
    "Slug",
    "Text",
    "TextOrNumber",
    "Timestamp",
    "Uri",
    "WholeNumber",
]

# The largest integer every JSON reader (JavaScript's doubles included) holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_EMBEDDING_DIM = 8192
# Task and domain names end up in metric labels, table keys and file names.
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# An HMAC-SHA256 over an event's canonical JSON, named by its algorithm.
SIGNATURE_PATTERN = r"^hmac-sha256:[0-9a-f]{64}$"
# Canonical, padded base64 (RFC 4648 section 4): the only form Python's b64encode writes.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _whole_float_to_int(value: Any) -> Any:
    # JSON Schema counts 2.0 as an integer (draft 2020-12, section 6.1.1), and writers in
    # other languages may send it so; anything else falls through to the strict int check.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


Text = Annotated[str, Strict()]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=256)]
Uri = Annotated[str, Strict(), Field(min_length=1, max_length=2048)]
Slug = Annotated[str, Strict(), Field(min_length=1, max_length=128, pattern=SLUG_PATTERN)]
SliceValue = Annotated[str, Strict(), Field(min_length=1, max_length=128)]
"""A slice's value as a training example carries it (``language``: ``de``)."""
Sha256 = Annotated[str, Strict(), Field(pattern=SHA256_PATTERN)]
Signature = Annotated[str, Strict(), Field(pattern=SIGNATURE_PATTERN)]
Base64 = Annotated[str, Strict(), Field(pattern=BASE64_PATTERN)]
Flag = Annotated[bool, Strict()]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Timestamp = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
WholeNumber = Annotated[
    int, Strict(), Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER),
    BeforeValidator(_whole_float_to_int),
]
Count = Annotated[WholeNumber, Field(ge=0)]
SchemaVersion = Annotated[WholeNumber, Field(ge=1)]

# A string or a number, reported as one error ("expected a string or a number") rather
# than one per union branch.
TextOrNumber = Annotated[
    str | float,
    GetPydanticSchema(lambda _tp, _handler: core_schema.union_schema(
        [core_schema.str_schema(strict=True),
         core_schema.float_schema(strict=True, allow_inf_nan=False)],
        custom_error_type="text_or_number_type",
        custom_error_message="expected a string or a number",
    )),
]
