"""Whatever a client sends to /predict and /feedback, the answer is a 4xx/503 with a reason,
never a 500, and the service keeps answering.

The handlers are driven through aiohttp (routing, body limit, JSON parsing, handlers) without
the service's Kafka lifespan: nothing here crosses Kafka (the events submitted stay queued in
the unstarted batchers). The service on the real broker is in ``test_http.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.learner.serving.http import ServingService
from driftloop.schemas import DEFAULT_MAX_BYTES
from driftloop.schemas.settings import Settings

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
MAX_REQUEST = 2 * DEFAULT_MAX_BYTES
REFUSALS = {400, 413, 503}


class Client:
    """One service and test client on a private loop, shared by a module's examples."""

    def __init__(self, tmp: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.service = ServingService(Settings(
            serving={"replica_id": "fuzz", "tasks": ["sentiment"], "cache_dir": tmp / "serving",
                     "max_request_bytes": MAX_REQUEST, "max_inputs": 4},
            artifacts={"store_url": str(tmp / "artifacts")}), subscribe=False)
        app = self.service.app()
        app.cleanup_ctx.clear()  # no Kafka: the handlers only

        async def start() -> TestClient:
            client = TestClient(TestServer(app))
            await client.start_server()
            return client
        self.client = self.loop.run_until_complete(start())

    def post(self, path: str, body: bytes, content_type: str = "application/json"
             ) -> tuple[int, Any]:
        async def go() -> tuple[int, Any]:
            response = await self.client.post(path, data=body,
                                              headers={"Content-Type": content_type})
            text = await response.text()
            return response.status, text
        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.service.host.close()
        self.loop.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    made = Client(tmp_path_factory.mktemp("http-fuzz"))
    yield made
    made.close()


def refused_with_reason(status: int, text: str) -> str:
    assert status in REFUSALS, (status, text[:300])
    if status == 413 and not text.startswith("{"):
        return text  # aiohttp's own answer to a body over client_max_size
    error = orjson.loads(text)["error"]
    assert isinstance(error, str) and error
    return error


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-2**63, 2**63 - 1)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["task", "input", "inputs", "id", "ids", "domain", "metadata",
                         "interaction_id", "kind", "value", "source", "ts", "schema_name",
                         "schema_version", "x"]), inner, max_size=7),
    max_leaves=25)


@FUZZ
@given(path=st.sampled_from(["/predict", "/feedback"]), body=JSON)
def test_fuzzed_json_bodies_are_refused_with_a_reason(client: Client, path: str,
                                                      body: Any) -> None:
    status, text = client.post(path, orjson.dumps(body))
    if path == "/feedback" and status == 202:
        return  # a body that happens to be a valid Feedback
    refused_with_reason(status, text)


@FUZZ
@given(path=st.sampled_from(["/predict", "/feedback"]), body=st.binary(max_size=300))
def test_fuzzed_bytes_are_refused_with_a_reason(client: Client, path: str, body: bytes) -> None:
    status, text = client.post(path, body)
    refused_with_reason(status, text)


ADVERSARIAL = {
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "NaN": b'{"task": "sentiment", "input": "x", "metadata": {"a": NaN}}',
    "Infinity value": b'{"interaction_id": "i", "task": "sentiment", "kind": "rating", '
                      b'"value": Infinity}',
    "not UTF-8": b'{"task": "sentiment", "input": "\xff\xfe"}',
    "lone surrogate": b'{"task": "sentiment", "input": "\\ud800"}',
    "UTF-16": '{"task": "sentiment", "input": "x"}'.encode("utf-16"),
    "empty": b"",
    "ids not a list": b'{"task": "sentiment", "input": "x", "ids": 5}',
    "ids an object": b'{"task": "sentiment", "input": "x", "ids": {"a": 1}}',
    "id a number": b'{"task": "sentiment", "input": "x", "id": 5}',
    "huge integer": b'{"task": "sentiment", "input": "x", "domain": ' + b"9" * 400 + b"}",
    "feedback id an object": b'{"id": {}, "interaction_id": "i", "task": "sentiment", '
                             b'"kind": "label", "value": "positive"}',
    "feedback ts a string": b'{"ts": "now", "interaction_id": "i", "task": "sentiment", '
                            b'"kind": "label", "value": "positive"}',
    "feedback wrong schema": b'{"schema_name": "driftloop.interaction", "interaction_id": "i", '
                             b'"task": "sentiment", "kind": "label", "value": "positive"}',
}


@pytest.mark.parametrize("path", ["/predict", "/feedback"])
@pytest.mark.parametrize("body", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_adversarial_bodies_get_a_4xx_with_a_reason(client: Client, path: str,
                                                    body: bytes) -> None:
    refused_with_reason(*client.post(path, body))


def test_oversized_requests_and_events(client: Client) -> None:
    # Over serving.max_request_bytes: aiohttp refuses before reading it.
    status, _ = client.post("/feedback", b" " * (MAX_REQUEST + 1))
    assert status == 413
    # Under it, but the Feedback it makes is over the 1 MiB an event may be.
    note = "x" * (DEFAULT_MAX_BYTES + 10)
    body = orjson.dumps({"interaction_id": "i", "task": "sentiment", "kind": "label",
                         "value": "positive", "note": note})
    status, text = client.post("/feedback", body)
    assert status == 413
    assert "limit of one event is 1048576" in refused_with_reason(status, text)
    # The service still answers.
    good = orjson.dumps({"interaction_id": "i", "task": "sentiment", "kind": "label",
                         "value": "positive"})
    assert client.post("/feedback", good)[0] == 202
