"""The base install (``pip install driftloop``, no extras) is the client: it publishes and
decodes every event, and brings no torch, Faust or River with it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from event_samples import FULL
from kafka_helpers import consume_until

from driftloop.schemas import EVENT_TYPES, Interaction, Topic, decode_batch, encode

pytestmark = [pytest.mark.kafka]

ROOT = Path(__file__).resolve().parents[2]


def test_schemas_and_client_import_without_the_heavy_stack() -> None:
    code = ("import sys, driftloop.schemas, driftloop.client, driftloop.schemas.settings; "
            "print(sorted(m for m in ('torch', 'faust', 'river', 'transformers', 'numpy') "
            "if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stdout.strip() == "[]"


@pytest.mark.slow
async def test_the_base_install_publishes_and_decodes_every_event_without_torch(
        kafka_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    venv = tmp_path / "venv"
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "venv", str(venv)],
                            check=True)
    python = venv / "bin" / "python"
    install = await asyncio.to_thread(
        subprocess.run, [str(python), "-m", "pip", "install", "--quiet",
                         "--disable-pip-version-check", str(ROOT)],
        capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps([encode(e).decode() for e in FULL]))
    script = textwrap.dedent(f"""
        import asyncio, json, sys
        from driftloop.client import Publisher
        from driftloop.schemas import EVENT_TYPES, Interaction, decode, encode
        from driftloop.schemas.settings import Settings

        decoded = 0
        for raw in json.load(open({str(samples)!r})):
            name = json.loads(raw)["schema_name"]
            event = decode(raw.encode(), EVENT_TYPES[name])
            assert json.loads(encode(event)) == json.loads(raw), name
            decoded += 1
        settings = Settings(kafka={{"bootstrap_servers": {kafka_settings.kafka.bootstrap_servers!r},
                                    "topic_prefix": {kafka_settings.kafka.topic_prefix!r}}})
        async def main():
            async with Publisher(settings) as publisher:
                return await publisher.send([Interaction(
                    id="from-base", ts=1.0, task="base", model_version="v1", input="hello")])
        sent = asyncio.run(main())
        heavy = sorted(m for m in ("torch", "faust", "river", "transformers", "numpy")
                       if m in sys.modules)
        print(json.dumps({{"decoded": decoded, "sent": sent, "heavy": heavy}}))
    """)
    run = await asyncio.to_thread(subprocess.run, [str(python), "-c", script],
                                  capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"decoded": len(FULL), "sent": 1, "heavy": []}
    assert {type(e) for e in FULL} == set(EVENT_TYPES.values())  # every event type
    [record] = await consume_until(kafka_settings, Topic.INTERACTIONS, 1, timeout=30)
    assert decode_batch(record.value, Interaction)[0].id == "from-base"
    # A command of an extra says which extra to install, in one line.
    learner = await asyncio.to_thread(
        subprocess.run, [str(venv / "bin" / "driftloop"), "learner", "--max-requests", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert learner.returncode == 1
    assert "pip install 'driftloop[learner]'" in learner.stderr, learner.stderr[-2000:]
    assert "Traceback" not in learner.stderr
    pip_list = await asyncio.to_thread(
        subprocess.run, [str(python), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True)
    installed = {p["name"].lower() for p in json.loads(pip_list.stdout)}
    assert not installed & {"torch", "faust-streaming", "river", "transformers", "peft"}
