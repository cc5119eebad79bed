"""Training examples by reference: written whole, read only as the reference says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from learner_helpers import own_learner, sentiment_request
from pydantic import ValidationError

from driftloop.learner.registry.examples import (
    ExamplesRefError,
    put_examples,
    read_examples,
    with_referenced_examples,
)
from driftloop.learner.registry.store import ArtifactStore
from driftloop.schemas.events import ExamplesRef, TrainingExample, TrainingRequest

EXAMPLES = [TrainingExample(input=f"review {i}: fine", target="positive", domain="movies",
                            weight=1.5 if i % 2 else 1.0) for i in range(5)]
MAX = 1 << 20


def _store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "store"))


def test_examples_round_trip_once_per_content(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ref = put_examples(store, EXAMPLES)
    again = put_examples(store, EXAMPLES)
    assert ref == again and ref.count == 5
    path = Path(store.root) / "examples" / f"{ref.sha256}.jsonl"
    assert path.stat().st_size == ref.size_bytes
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.sha256
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left
    assert read_examples(store, ref, max_bytes=MAX) == EXAMPLES


def _tampered(store: ArtifactStore, ref: ExamplesRef, data: bytes) -> ExamplesRef:
    """``data`` written where ``ref`` points, with a reference that matches it in size."""
    Path(store.checked_path(ref.uri, folder="examples", suffix=".jsonl")).write_bytes(data)
    return ref.model_copy(update={"size_bytes": len(data)})


@pytest.mark.parametrize(("change", "message"), [
    (lambda s, r: r.model_copy(update={"uri": r.uri.replace("/examples/", "/")}),
     "is not an object of the examples/ folder"),
    (lambda s, r: r.model_copy(update={"uri": "file:///etc/" + r.sha256 + ".jsonl"}),
     "is not an object of the examples/ folder"),
    (lambda s, r: r.model_copy(update={"sha256": "0" * 64}), "is not named by its sha256"),
    (lambda s, r: r.model_copy(update={"uri": r.uri.replace(r.sha256, "1" * 64),
                                       "sha256": "1" * 64}), "does not exist in the store"),
    (lambda s, r: r.model_copy(update={"size_bytes": r.size_bytes + 1}), "the reference says"),
    (lambda s, r: r.model_copy(update={"size_bytes": MAX + 1}), "examples_ref_max_bytes"),
    (lambda s, r: r.model_copy(update={"count": 6}), "holds 5 examples, the reference says 6"),
    (lambda s, r: _tampered(s, r, b'{"input": "x", "target": "y"}\n'),
     "do not hash to its sha256"),
])
def test_a_reference_that_does_not_hold_is_refused_naming_why(  # type: ignore[no-untyped-def]
        tmp_path: Path, change, message: str) -> None:
    store = _store(tmp_path)
    ref = put_examples(store, EXAMPLES)
    with pytest.raises(ExamplesRefError, match=message):
        read_examples(store, change(store, ref), max_bytes=MAX)


def test_a_line_that_is_no_example_is_refused_with_its_number(tmp_path: Path) -> None:
    store = _store(tmp_path)
    data = b'{"input": "a", "target": "b"}\n{"input": 3}\n'
    digest = hashlib.sha256(data).hexdigest()
    folder = Path(store.root) / "examples"
    folder.mkdir(parents=True)
    (folder / f"{digest}.jsonl").write_bytes(data)
    ref = ExamplesRef(uri=store.uri_for(f"examples/{digest}.jsonl"), sha256=digest, count=2,
                      size_bytes=len(data))
    with pytest.raises(ExamplesRefError, match=r"line 2 of .* is not a training example"):
        read_examples(store, ref, max_bytes=MAX)


def test_a_request_needs_examples_inline_or_by_reference(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="inline or by examples_ref"):
        TrainingRequest(id="r", ts=1.0, task="sentiment", trigger="manual", examples=[])
    ref = put_examples(_store(tmp_path), EXAMPLES)
    request = TrainingRequest(id="r", ts=1.0, task="sentiment", trigger="manual",
                              examples=[TrainingExample(input="inline", target="negative")],
                              examples_ref=ref)
    whole = with_referenced_examples(request, _store(tmp_path), max_bytes=MAX)
    assert [e.input for e in whole.examples] == ["inline", *(e.input for e in EXAMPLES)]
    assert whole.examples_ref is None
    plain = request.model_copy(update={"examples_ref": None})
    assert with_referenced_examples(plain, _store(tmp_path), max_bytes=MAX) is plain


def test_a_request_by_reference_trains_the_same_adapter_as_inline(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    inline = sentiment_request("r-ref", domain="movies", n=32, seed=5)
    learner, log = own_learner(updater, sentiment_v1, tmp_path / "ref")
    ref = put_examples(learner.store, inline.examples[8:])
    by_ref = inline.model_copy(update={"examples": inline.examples[:8], "examples_ref": ref})
    plain, plain_log = own_learner(updater, sentiment_v1, tmp_path / "inline")
    referenced, alone = learner.update(by_ref, log), plain.update(inline, plain_log)
    assert referenced.event.sha256 == alone.event.sha256  # the very same weights
    assert referenced.event.metadata["examples_ref"] == {"sha256": ref.sha256, "count": 24}
    assert "examples_ref" not in alone.event.metadata
