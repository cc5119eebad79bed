"""``driftloop review serve`` as a process: refuses to serve without a token, prints its URL,
and a page killed within an answer's undo window offers the request again, publishing
nothing for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from kafka_helpers import free_port, produce
from waiting import wait_until_async

from driftloop.client.kafka import read_to_end_offsets
from driftloop.schemas import Feedback, Interaction, LabelRequest, Topic, decode_batch, encode
from driftloop.schemas.settings import Settings

DRIFTLOOP = str(Path(sys.executable).parent / "driftloop")
TOKEN = "review-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DRIFTLOOP_REVIEW", "DRIFTLOOP_CONFIG"))}
    if settings is not None:
        env |= {"DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
                "DRIFTLOOP_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix}
    return env | extra


def test_serve_refuses_without_a_token_and_without_auth_off_loopback(tmp_path: Path) -> None:
    refused = subprocess.run([DRIFTLOOP, "review", "serve"], env=_env(), cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "needs a token: set DRIFTLOOP_REVIEW_TOKEN" in refused.stderr
    public = subprocess.run([DRIFTLOOP, "review", "serve", "--no-auth", "--host", "0.0.0.0"],
                            env=_env(), cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert public.returncode == 1
    assert "--no-auth serves the page to anyone who can reach 0.0.0.0" in public.stderr
    short = subprocess.run([DRIFTLOOP, "review", "serve"], cwd=tmp_path, timeout=60,
                           env=_env(DRIFTLOOP_REVIEW_TOKEN="short"), capture_output=True,
                           text=True)
    assert short.returncode == 1 and "at least 12 characters" in short.stderr


@pytest.fixture
def pages() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _start(pages: list[subprocess.Popen[str]], settings: Settings, port: int, tmp_path: Path,
           *, undo_window_s: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [DRIFTLOOP, "review", "serve", "--port", str(port), "--task", "sentiment"],
        env=_env(settings, DRIFTLOOP_REVIEW_TOKEN=TOKEN,
                 DRIFTLOOP_REVIEW__UNDO_WINDOW_S=str(undo_window_s)),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    pages.append(process)
    return process


async def _offered(session: aiohttp.ClientSession, url: str, process: subprocess.Popen[str]
                   ) -> str | None:
    if process.poll() is not None:
        raise AssertionError(f"the page exited with {process.returncode}")
    try:
        async with session.get(url + "api/next", headers=BEARER) as response:
            body = await response.json() if response.status == 200 else {}
    except aiohttp.ClientConnectionError:
        return None
    return (body.get("request") or {}).get("request_id")


@pytest.mark.slow
async def test_a_page_killed_in_the_undo_window_offers_the_request_again(
        kafka_settings: Settings, pages: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    first = _start(pages, kafka_settings, port, tmp_path, undo_window_s=600)
    assert first.stdout is not None
    assert first.stdout.readline().strip().startswith(f"review page on {url} (sentiment;")
    seen = Interaction(id="i1", ts=999.0, task="sentiment", model_version="v1", input="so-so",
                       scores={"probabilities": {"negative": 0.5, "positive": 0.5}})
    request = LabelRequest(id="lr-i1", ts=1000.0, task="sentiment", interaction=seen,
                           reason="margin", priority=0.7)
    await produce(kafka_settings, Topic.LABEL_REQUESTS, [encode(request)], key="sentiment")
    async with aiohttp.ClientSession() as session:
        assert await wait_until_async(lambda: _offered(session, url, first), 60,
                                      "the request on the first page") == "lr-i1"
        async with session.get(url + "api/tasks") as unauthenticated:
            assert unauthenticated.status == 401
        async with session.post(url + "api/answer", headers=BEARER,
                                json={"request_id": "lr-i1", "value": "negative"}) as answer:
            assert answer.status == 202
        first.send_signal(signal.SIGKILL)  # within the 600 s window: nothing was published
        first.wait(timeout=30)
        second = _start(pages, kafka_settings, port, tmp_path, undo_window_s=0)
        assert await wait_until_async(lambda: _offered(session, url, second), 60,
                                      "the request offered again after the kill") == "lr-i1"
        async with session.post(url + "api/answer", headers=BEARER,
                                json={"request_id": "lr-i1", "value": "positive"}) as answer:
            assert answer.status == 202

        async def settled() -> bool:
            async with session.get(url + "healthz") as health:
                return (await health.json())["unpublished"] == 0
        await wait_until_async(settled, 30, "the answer published")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0
    records = await read_to_end_offsets(kafka_settings,
                                        kafka_settings.kafka.topic(Topic.FEEDBACK), timeout=30)
    events = [e for r in records or [] for e in decode_batch(r.value, Feedback)]
    assert [(e.id, e.value) for e in events] == [("lr-i1.review", "positive")]
