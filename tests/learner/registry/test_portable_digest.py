"""The version event's sha256 and size_bytes are what its contract says, computed by a
process with no driftloop on its path, from the contract's own recipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from driftloop.schemas import json_schema

RECIPE = """
import hashlib, json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
outer, size = hashlib.sha256(), 0
for p in sorted(folder.iterdir(), key=lambda p: p.name):
    outer.update(f"{p.name}\\0{hashlib.sha256(p.read_bytes()).hexdigest()}\\n".encode())
    size += p.stat().st_size
print(json.dumps({"sha256": outer.hexdigest(), "size_bytes": size}))
"""


def test_an_outsider_computes_the_published_digest_and_size(sentiment_v1, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    event = sentiment_v1.event
    folder = Path(event.adapter_uri.removeprefix("file://"))
    # -I -S: isolated, no site-packages at all: the standard library and the recipe only
    run = subprocess.run([sys.executable, "-I", "-S", "-c", RECIPE, str(folder)], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert json.loads(run.stdout) == {"sha256": event.sha256, "size_bytes": event.size_bytes}
    # The loader's facts travel in the event's own fields.
    assert event.labels == ["negative", "positive"] and event.max_length == 64
    described = json_schema("driftloop.model_version")["properties"]["sha256"]["description"]
    assert "<file name>\\0<sha256 hex of its bytes>\\n" in described
