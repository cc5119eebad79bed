"""``driftloop push`` on the real broker: promoted adapters hot-swapped into a running server
through vLLM's runtime adapter API (here a driftloop replica that does not follow
model-versions itself, as vLLM does not), answers from the new version seen by an openai
client, a rollback unloads, one ServingAck per version under the pusher's name."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer
from kafka_helpers import consume_until
from monitoring_names import assert_serves
from serving_helpers import TASK, publish, serving_settings, store, until, version_event

from driftloop.learner.serving.http import ServingService
from driftloop.schemas import ServingAck, Topic, decode

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DRIFTLOOP = Path(sys.executable).parent / "driftloop"


async def test_push_hot_swaps_promoted_versions_into_a_server_and_rollback_unloads(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path, unused_port: int) -> None:
    target_settings = serving_settings(kafka_settings, tmp_path, "vllm-like")
    target = ServingService(target_settings, models=resident_models, subscribe=False)
    server = TestClient(TestServer(target.app()))
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="not-checked", max_retries=0)
    neg, pos = store(kafka_settings, probes["neg"]), store(kafka_settings, probes["pos"])
    await publish(kafka_settings, version_event("v1", neg))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.kafka.bootstrap_servers,
           "DRIFTLOOP_KAFKA__TOPIC_PREFIX": kafka_settings.kafka.topic_prefix,
           "DRIFTLOOP_ARTIFACTS__STORE_URL": kafka_settings.artifacts.store_url,
           "DRIFTLOOP_SERVING__KEEP_VERSIONS": "1"}
    pusher = subprocess.Popen(
        [str(DRIFTLOOP), "push", "--target", url, "--staging", str(tmp_path / "staging"),
         "--task", TASK, "--replica-id", "pusher-1", "--metrics-port", str(unused_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        await until(lambda: target.host.versions(TASK) == ["v1"] or pusher.poll() is not None,
                    120, "v1 pushed")
        assert pusher.poll() is None
        answer = await client.completions.create(model="v1", prompt="a fine film")
        assert answer.choices[0].text == "negative"

        published_at = time.monotonic()
        await publish(kafka_settings, version_event("v2", pos, parent="v1"))
        await until(lambda: target.host.versions(TASK) == ["v2"], 60, "v2 pushed, v1 unloaded")
        answer = await client.completions.create(model="v2", prompt="a fine film")
        assert answer.choices[0].text == "positive"
        swap = time.monotonic() - published_at
        with pytest.raises(openai.NotFoundError):
            await client.completions.create(model="v1", prompt="a fine film")
        with urllib.request.urlopen(f"http://127.0.0.1:{unused_port}/metrics", timeout=10) as r:
            page = r.read().decode()
        assert f'driftloop_serving_swaps_total{{task="{TASK}"}} 2.0' in page
        assert f'driftloop_serving_version_info{{task="{TASK}",version="v2"}} 1.0' in page
        assert "version=\"v1\"" not in page.split("driftloop_serving_version_info", 1)[1]
        assert_serves(page, "serving")  # what the dashboard and alert rules read

        rollback = version_event("v2", pos, status="rolled_back", parent="v1")
        await publish(kafka_settings, rollback)
        await until(lambda: target.host.versions(TASK) == ["v1"], 60, "rollback pushed")
    finally:
        pusher.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(pusher.communicate, timeout=60)
        await client.close()
        await server.close()
    assert pusher.returncode == 0, output[-3000:]
    records = await consume_until(
        kafka_settings, Topic.SERVING_ACKS,
        lambda rs: [decode(r.value, ServingAck).version_id for r in rs] == ["v1", "v2", "v1"],
        timeout=30)
    acks = [decode(r.value, ServingAck) for r in records]
    assert {a.replica for a in acks} == {"pusher-1"}
    assert swap < 30  # promoted event -> first answer from the pushed version
