"""How stream state goes into Faust changelog topics: pickle, read back through an allowlist.

Detectors (River objects), buffers and join buckets are plain Python objects; pickling them
whole is what lets a restarted worker continue exactly where it stopped. A changelog topic is
still bytes on a broker, so reading it back only rebuilds classes from the modules listed in
:data:`ALLOWED_MODULES` (driftloop's stream state, River, numpy, the standard containers):
a tampered changelog fails to load instead of running code.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from faust.serializers.codecs import Codec

from .errors import StateError

__all__ = ["ALLOWED_MODULES", "StateCodec", "dumps", "loads"]

ALLOWED_MODULES = ("driftloop.streams.", "driftloop.schemas.", "river.", "numpy",
                   "collections", "random", "_random", "copyreg", "builtins", "datetime",
                   "pydantic", "pydantic_core", "enum", "decimal", "functools", "math")
_BUILTINS_REFUSED = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr",
                     "delattr", "globals", "locals", "vars", "input", "breakpoint"}


def _attribute(obj: Any, name: str) -> Any:
    # River keeps bound methods (Page-Hinkley's ``_test``), pickled as getattr(obj, name);
    # dunder names are how an unpickler escapes to globals, so they are refused.
    if not isinstance(name, str) or name.startswith("__"):
        raise pickle.UnpicklingError(f"state may not read attribute {name!r}")
    return getattr(obj, name)


class _AllowlistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name == "getattr":
            return _attribute
        allowed = any(module == m.rstrip(".") or module.startswith(m if m.endswith(".")
                                                                     else m + ".")
                      or module == m for m in ALLOWED_MODULES)
        if not allowed or (module == "builtins" and name in _BUILTINS_REFUSED):
            raise pickle.UnpicklingError(f"state may not contain {module}.{name}")
        return super().find_class(module, name)


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """Unpickle state; raises :class:`StateError` for anything outside the allowlist.

    >>> loads(dumps({"n": 1}))
    {'n': 1}
    """
    try:
        return _AllowlistUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as exc:
        raise StateError(f"stream state cannot be restored: {exc}") from None


class StateCodec(Codec):
    """Faust codec for table values (register once as ``driftloop-state``)."""

    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return loads(s)
