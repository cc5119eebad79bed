"""Score a published classification adapter in a fresh process (run by test_service.py).

Usage: ``python score_adapter.py SPEC.json``; SPEC holds the store URL, the version event and
the training request. Prints ``{"accuracy": ...}`` on the request's held-out new examples.
Only public pieces are used: the store (which verifies the sha256), the stored form turned
back into driftloop's in-memory one (:mod:`driftloop.learner.models.portable`), the adapter's
``driftloop.json``, the base model, and ``PeftModel.from_pretrained``. (Loading without
driftloop at all: ``tests/learner/registry/test_portable_load.py``.)
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(spec_path: str) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer

    from driftloop.learner.gate.split import split_request
    from driftloop.learner.models.adapters import read_metadata
    from driftloop.learner.models.classification import MeanPoolClassifier
    from driftloop.learner.models.portable import to_internal
    from driftloop.learner.models.resident import resolve_base_model
    from driftloop.learner.registry.store import ArtifactStore
    from driftloop.schemas.events import ModelVersion, TrainingRequest

    torch.set_num_threads(1)
    spec = json.loads(open(spec_path, encoding="utf-8").read())
    event = ModelVersion.model_validate(spec["event"])
    request = TrainingRequest.model_validate(spec["request"])
    store = ArtifactStore(spec["store_url"])
    folder = to_internal(store.fetch(event.adapter_uri, event.sha256))  # a private copy
    meta = read_metadata(folder)
    name, _ = resolve_base_model(event.base_model)
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = PeftModel.from_pretrained(
        MeanPoolClassifier(AutoModel.from_pretrained(name), len(meta.labels)), str(folder))
    model.eval()
    holdout = split_request(request, holdout_fraction=spec["holdout_fraction"],
                            seed=spec["seed"]).holdout_new
    encoded = tokenizer([e.input for e in holdout], padding=True, truncation=True,
                        max_length=spec["max_length"], return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
    predicted = [meta.labels[i] for i in logits.argmax(-1).tolist()]
    correct = sum(p == e.target for p, e in zip(predicted, holdout, strict=True))
    print(json.dumps({"accuracy": correct / len(holdout), "n": len(holdout)}))


if __name__ == "__main__":
    main(sys.argv[1])
