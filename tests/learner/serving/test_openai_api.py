"""The service through the official ``openai`` client, the foreign client of our API: models
listed, completions and chat (streamed too) answered by the served version, its answers
published as interactions like /predict's, OpenAI's error shapes; and vLLM's runtime adapter
API (load, unload) with vLLM's bodies and answers."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer
from kafka_helpers import consume_until
from serving_helpers import TASK, publish, serving_settings, store, until, version_event

from driftloop.learner.serving.http import ServingService
from driftloop.schemas import Interaction, Topic, decode_batch
from driftloop.schemas.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@contextlib.asynccontextmanager
async def serving_v1(settings: Settings, resident_models, probes  # type: ignore[no-untyped-def]
                     ) -> AsyncIterator[tuple[TestClient, openai.AsyncOpenAI]]:
    """A replica serving v1 (the negative probe), and an OpenAI client pointed at it."""
    await publish(settings, version_event("v1", store(settings, probes["neg"])))
    service = ServingService(settings, models=resident_models)
    server = TestClient(TestServer(service.app()))
    await server.start_server()
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.port}/v1",
                                api_key="not-checked", max_retries=0)
    try:
        await until(lambda: service.subscriber.serving(TASK) == "v1", 60, "v1 served")
        yield server, client
    finally:
        await client.close()
        await server.close()


async def test_an_openai_client_lists_asks_chats_and_streams(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    settings = serving_settings(kafka_settings, tmp_path, "replica-openai")
    async with serving_v1(settings, resident_models, probes) as (_, client):
        models = {m.id for m in (await client.models.list()).data}
        assert {TASK, "v1"} <= models

        completion = await client.completions.create(model=TASK,
                                                     prompt=["an ordinary afternoon", "meh"])
        assert [c.text for c in completion.choices] == ["negative", "negative"]
        assert completion.model == "v1"
        ids = completion.model_extra["driftloop"]["interaction_ids"]

        chat = await client.chat.completions.create(
            model="v1", messages=[{"role": "system", "content": "answer with a label"},
                                  {"role": "user", "content": "a dull film"}])
        assert chat.choices[0].message.content == "negative" and chat.model == "v1"
        ids += chat.model_extra["driftloop"]["interaction_ids"]

        stream = await client.chat.completions.create(
            model=TASK, messages=[{"role": "user", "content": "so so"}], stream=True)
        deltas = [chunk.choices[0].delta.content async for chunk in stream]
        assert "".join(d for d in deltas if d) == "negative"

        with pytest.raises(openai.NotFoundError) as missing:
            await client.completions.create(model="no-such-model", prompt="x")
        assert missing.value.body["code"] == "model_not_found"
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model=TASK, messages=[])
    # The loop learns from this traffic as from /predict's: every answer is an interaction.
    records = await consume_until(kafka_settings, Topic.INTERACTIONS,
                                  lambda rs: sum(len(decode_batch(r.value, Interaction))
                                                 for r in rs) >= 4, timeout=30)
    published = {e.id: e for r in records for e in decode_batch(r.value, Interaction)}
    assert set(ids) <= set(published) and len(published) == 4
    assert {e.model_version for e in published.values()} == {"v1"}
    assert published[ids[-1]].input == "a dull film"


async def test_vllm_runtime_adapter_api_loads_and_unloads_named_adapters(  # type: ignore[no-untyped-def]
        kafka_settings, resident_models, probes, tmp_path: Path) -> None:
    settings = serving_settings(kafka_settings, tmp_path, "replica-lora")
    untrusted = tmp_path / "untrusted"
    shutil.copytree(probes["pos"], untrusted)
    meta = json.loads((untrusted / "driftloop.json").read_text())
    (untrusted / "driftloop.json").write_text(json.dumps({**meta, "base_model": "evil/model"}))

    async with serving_v1(settings, resident_models, probes) as (server, client):
        async def post(path: str, body: dict) -> tuple[int, str]:
            response = await server.post(path, json=body)
            return response.status, await response.text()

        # vLLM's request and answer, as a pusher sends them.
        assert await post("/v1/load_lora_adapter",
                          {"lora_name": "pos-probe", "lora_path": str(probes["pos"])}) == (
            200, "Success: LoRA adapter 'pos-probe' added successfully.")
        assert "pos-probe" in {m.id for m in (await client.models.list()).data}
        answer = await client.completions.create(model="pos-probe", prompt="a fine film")
        assert answer.choices[0].text == "positive" and answer.model == "pos-probe"
        status, text = await post("/v1/load_lora_adapter",
                                  {"lora_name": "pos-probe", "lora_path": str(probes["pos"])})
        assert status == 400 and "has already been loaded" in text
        status, text = await post("/v1/load_lora_adapter",
                                  {"lora_name": "evil", "lora_path": str(untrusted)})
        assert status == 400 and "'evil/model' is not trusted" in text
        status, text = await post("/v1/unload_lora_adapter", {"lora_name": "v1"})
        assert status == 400 and "answers task" in text  # the served version stays
        assert await post("/v1/unload_lora_adapter", {"lora_name": "pos-probe"}) == (
            200, "Success: LoRA adapter 'pos-probe' removed successfully.")
        status, text = await post("/v1/unload_lora_adapter", {"lora_name": "pos-probe"})
        assert status == 404 and json.loads(text)["error"]["type"] == "NotFoundError"
        with pytest.raises(openai.NotFoundError):
            await client.completions.create(model="pos-probe", prompt="a fine film")
