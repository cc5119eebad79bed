"""Training examples by reference: a large request's examples as one object in the store.

A Kafka message is bounded (the topic's ``max.message.bytes``; driftloop's requests stay
under ``TRAINING_REQUEST_MAX_BYTES``), and a request of thousands of long examples is not.
Its producer writes the examples once with :func:`put_examples`, as JSON Lines named by the
SHA-256 of their bytes (``<store root>/examples/<sha256>.jsonl``, written whole or not at
all), and sends the request with ``examples_ref`` naming that object beside any inline
examples. The learner reads them with :func:`read_examples` before it plans the update: the
URI must be an examples object of its own store, and the size, the digest, every line and
the count must be as the reference says, or the request is refused
(:class:`ExamplesRefError`, a dead letter): a request cannot make the learner read
anything else. Content addressing makes a replayed request read the same examples.

Examples
--------
>>> import tempfile
>>> from driftloop.learner.registry.store import ArtifactStore
>>> store = ArtifactStore(tempfile.mkdtemp())
>>> ref = put_examples(store, [TrainingExample(input="great", target="positive")])
>>> ref.count, ref.uri.endswith(f"/examples/{ref.sha256}.jsonl")
(1, True)
>>> [e.input for e in read_examples(store, ref, max_bytes=1 << 20)]
['great']
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

import orjson
from pydantic import ValidationError

from ...schemas.events import ExamplesRef, TrainingExample, TrainingRequest
from ..errors import ArtifactError, TrainingRequestError
from .store import ArtifactStore

__all__ = ["EXAMPLES_FOLDER", "ExamplesRefError", "put_examples", "read_examples",
           "with_referenced_examples"]

EXAMPLES_FOLDER = "examples"
_SUFFIX = ".jsonl"


class ExamplesRefError(TrainingRequestError):
    """A request's ``examples_ref`` names no examples object of the store, or one that is
    not as the reference says (size, digest, a line, the count): never read, never trained."""


def put_examples(store: ArtifactStore, examples: Sequence[TrainingExample]) -> ExamplesRef:
    """Write ``examples`` to ``store`` as one content-addressed JSON Lines object (a no-op
    when the same bytes are there) and return the reference a request carries."""
    if not examples:
        raise ValueError("no examples to store")
    data = b"".join(orjson.dumps(e.model_dump(mode="json", exclude_defaults=True)) + b"\n"
                    for e in examples)
    digest = hashlib.sha256(data).hexdigest()
    folder = f"{store.root}/{EXAMPLES_FOLDER}"
    final = f"{folder}/{digest}{_SUFFIX}"
    if not store.fs.exists(final):
        store.fs.makedirs(folder, exist_ok=True)
        staging = f"{folder}/.incoming-{uuid.uuid4().hex}"
        store.fs.pipe_file(staging, data)
        store.fs.mv(staging, final)  # whole or not at all: a reader never sees a part
    uri = store.uri_for(f"{EXAMPLES_FOLDER}/{digest}{_SUFFIX}")
    return ExamplesRef(uri=uri, sha256=digest, count=len(examples), size_bytes=len(data))


def read_examples(store: ArtifactStore, ref: ExamplesRef, *,
                  max_bytes: int) -> list[TrainingExample]:
    """The examples ``ref`` names, checked against it; :class:`ExamplesRefError` otherwise."""
    try:
        path = store.checked_path(ref.uri, folder=EXAMPLES_FOLDER, suffix=_SUFFIX)
    except ArtifactError as exc:
        raise ExamplesRefError(f"examples_ref: {exc}") from exc
    if not path.endswith(f"/{ref.sha256}{_SUFFIX}"):
        raise ExamplesRefError(f"examples_ref: {ref.uri} is not named by its sha256 "
                               f"{ref.sha256}")
    if ref.size_bytes > max_bytes:
        raise ExamplesRefError(f"examples_ref: {ref.size_bytes} bytes, more than "
                               f"learner.examples_ref_max_bytes ({max_bytes})")
    try:
        size = store.fs.size(path)
    except FileNotFoundError:
        raise ExamplesRefError(f"examples_ref: {ref.uri} does not exist in the store") from None
    if size != ref.size_bytes:
        raise ExamplesRefError(f"examples_ref: {ref.uri} is {size} bytes, the reference "
                               f"says {ref.size_bytes}")
    data = store.fs.cat_file(path)
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ExamplesRefError(f"examples_ref: the bytes of {ref.uri} do not hash to its "
                               "sha256")
    examples = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            examples.append(TrainingExample.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ExamplesRefError(f"examples_ref: line {number} of {ref.uri} is not a "
                                   f"training example: {first['msg']}") from None
    if len(examples) != ref.count:
        raise ExamplesRefError(f"examples_ref: {ref.uri} holds {len(examples)} examples, the "
                               f"reference says {ref.count}")
    return examples


def with_referenced_examples(request: TrainingRequest, store: ArtifactStore, *,
                             max_bytes: int) -> TrainingRequest:
    """``request`` with the examples its ``examples_ref`` names after its inline ones (and
    no reference left to read); a request without one as it is."""
    ref = request.examples_ref
    if ref is None:
        return request
    examples = read_examples(store, ref, max_bytes=max_bytes)
    return request.model_copy(update={"examples": [*request.examples, *examples],
                                      "examples_ref": None})
