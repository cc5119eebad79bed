"""``driftloop serve`` as a process: serves the promoted version, acks it, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka_helpers import consume_until, free_port, produce
from monitoring_names import assert_serves
from waiting import wait_until_async

from driftloop.learner.models.resident import ResidentModels, default_base_model
from driftloop.learner.registry.store import ArtifactStore
from driftloop.learner.serving import write_probe_adapter
from driftloop.schemas import ModelVersion, TaskKind, Topic, encode
from driftloop.schemas.settings import Settings
from driftloop.tools.cli import cli

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _get(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {**os.environ,
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "DRIFTLOOP_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "DRIFTLOOP_ARTIFACTS__STORE_URL": settings.artifacts.store_url,
            "DRIFTLOOP_SERVING__CACHE_DIR": str(tmp_path / "cache"),
            "DRIFTLOOP_SERVING__TORCH_THREADS": "1"}


async def test_serve_answers_with_the_promoted_version_and_stops_on_sigterm(  # type: ignore[no-untyped-def]
        kafka_settings, tmp_path: Path) -> None:
    models = ResidentModels(capacity=1)
    base = models.get(default_base_model(TaskKind.CLASSIFICATION), TaskKind.CLASSIFICATION)
    stored = ArtifactStore(kafka_settings.artifacts.store_url).put(write_probe_adapter(
        base, tmp_path / "neg", version_id="v1", labels=("negative", "positive"),
        favour="negative"))
    event = ModelVersion(version_id="v1", ts=time.time(), task="sentiment",
                         base_model=base.model_id, adapter_uri=stored.uri, sha256=stored.sha256,
                         size_bytes=stored.size_bytes, status="promoted")
    await produce(kafka_settings, Topic.MODEL_VERSIONS, [encode(event)], key="sentiment")
    port = free_port()
    env = _env(kafka_settings, tmp_path)
    argv = [sys.executable, "-m", "driftloop.tools", "serve", "--port", str(port),
            "--replica-id", "proc-1", "--task", "sentiment"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        async def serving_v1() -> tuple[int, dict] | None:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            try:
                status, health = await asyncio.to_thread(_get, f"{url}/healthz")
            except (urllib.error.URLError, ConnectionError):
                return None  # not listening yet
            return (status, health) if health["serving"].get("sentiment") == "v1" else None

        status, health = await wait_until_async(serving_v1, 120, "driftloop serve serving v1")
        assert status == 200 and health["replica"] == "proc-1"
        status, answer = await asyncio.to_thread(_get, f"{url}/predict",
                                                 {"task": "sentiment", "input": "so-so"})
        assert status == 200 and (answer["output"], answer["model_version"]) == ("negative", "v1")
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as page:
            assert_serves(page.read().decode(), "serving")  # what the dashboard reads

        shown = await asyncio.to_thread(CliRunner().invoke, cli, ["serve", "acks"], env=env)
        assert shown.exit_code == 0, shown.output
        [line] = [line for line in shown.output.splitlines() if "proc-1" in line]
        assert "serving" in line and "v1" in line and line.rstrip().endswith("ok (promoted)")
        shown = await asyncio.to_thread(CliRunner().invoke, cli, ["serve", "acks", "--json"],
                                        env=env)
        [row] = [row for row in json.loads(shown.output) if row["replica"] == "proc-1"]
        assert (row["version_id"], row["status"], row["converged"]) == ("v1", "serving", True)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    [record] = await consume_until(kafka_settings, Topic.INTERACTIONS, 1)
    assert answer["id"].encode() in record.value


def test_an_unreachable_broker_is_one_clear_line_not_a_traceback(unused_port: int,
                                                                 tmp_path: Path) -> None:
    env = {**os.environ, "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{unused_port}",
           "DRIFTLOOP_ARTIFACTS__STORE_URL": str(tmp_path / "store"),
           "DRIFTLOOP_SERVING__CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "driftloop.tools", "serve", "--port",
                           str(free_port())], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "error: kafka:" in done.stderr and "Traceback" not in done.stderr
    assert "Unclosed" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "0"], "--port"), (["--canary-fraction", "1.5"], "--canary-fraction")])
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    shown = CliRunner().invoke(cli, ["serve", *args])
    assert shown.exit_code == 2 and message in shown.output
