"""The review page in a real browser (Debian's Chromium through Playwright), on the real
broker: ten label requests answered with the keyboard only, one of them undone and answered
again, and ten feedback events on the topic.

Chromium comes from ``tools/dev setup`` (apt-get); without it this test fails, it does not
skip. It saves a screenshot of the page with requests answered and waiting; with
``REVIEW_PAGE_SCREENSHOT=docs/review-page.png`` it also writes the screenshot in docs/review.md.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
from aiohttp import web
from browser import CHROMIUM, CHROMIUM_ARGS, chromium_or_fail
from kafka_helpers import free_port, produce
from review_samples import TOKEN, feedback_on_topic, label_request, review_settings
from waiting import wait_until_async

from driftloop.review.page import create_app
from driftloop.schemas import Topic, encode
from driftloop.schemas.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TEXTS = [
    "The plot was thin but the actors clearly had fun with it.",
    "Not the worst two hours I have spent, not far off either.",
    "Great soundtrack. Shame about everything else.",
    "I expected to hate it and ended up watching it twice.",
    "Slow start, strong finish, forgettable middle.",
    "The sequel nobody asked for, done better than it had any right to be.",
    "Pretty to look at, hard to care about.",
    "My kids loved it; I checked my phone a lot.",
    "Clever idea, clumsy execution.",
    "It is fine. Really, just fine.",
]
# key pressed -> the label it gives (digits and the labels' first letters)
KEYS = [("1", "negative"), ("p", "positive"), ("n", "negative"), ("2", "positive")]



def _embedding(n: int) -> list[float]:
    # Points around a circle: each request has near neighbours and far ones.
    return [math.cos(n * 0.7), math.sin(n * 0.7), 0.3]


async def test_ten_requests_are_labelled_with_the_keyboard_only(kafka_settings: Settings,
                                                                tmp_path: Path) -> None:
    chromium_or_fail()
    from playwright.async_api import async_playwright

    settings = review_settings(kafka_settings, undo_window_s=3)
    requests = [label_request(n, priority=round(0.95 - 0.05 * n, 2), text=TEXTS[n],
                              embedding=_embedding(n)) for n in range(10)]
    others = [label_request(20 + n, task="toxicity", priority=0.5, text=f"comment {n}")
              for n in range(2)]
    await produce(settings, Topic.LABEL_REQUESTS, [encode(r) for r in requests],
                  key="sentiment")
    await produce(settings, Topic.LABEL_REQUESTS, [encode(r) for r in others], key="toxicity")

    runner = web.AppRunner(create_app(settings))
    await runner.setup()  # starts the desk
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/?task=sentiment"
    answered: dict[str, str] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                headless=True, http_credentials={"username": "ann", "password": TOKEN},
                viewport={"width": 1200, "height": 760})
            try:
                page = browser.pages[0] if browser.pages else await browser.new_page()
                await page.goto(url)

                async def shown(other_than: str | None = None) -> str:
                    async def current() -> str | None:
                        rid = await page.get_attribute("#card", "data-request-id")
                        return rid if rid and rid != other_than else None
                    return await wait_until_async(current, 30, "the next request on the page")

                previous: str | None = None
                for index in range(10):
                    rid = await shown(other_than=previous)
                    if index == 4:  # answered ones are neighbours now: docs/review.md's picture
                        await _screenshot(page, tmp_path)
                    key, value = KEYS[index % len(KEYS)]
                    await page.keyboard.press(key)
                    answered[rid] = value
                    previous = rid
                    if index == 2:  # undo it (u), see it again, answer it the other way
                        await shown(other_than=rid)
                        await page.keyboard.press("u")
                        await wait_until_async(lambda rid=rid: _shows(page, rid), 30,
                                               "the undone request shown again")
                        await wait_until_async(lambda: _message_has(page, "Undone"), 10,
                                               "the undo said")
                        await page.keyboard.press("2" if value == "negative" else "1")
                        answered[rid] = "positive" if value == "negative" else "negative"
                await wait_until_async(lambda: _text_is(page, "#left", "0 left"), 30,
                                       "nothing left on the page")
                assert await page.is_visible("#empty")
                await page.screenshot(path=str(tmp_path / "done.png"))
            finally:
                await browser.close()
        assert len(answered) == 10

        async def ten() -> list | None:
            events = await feedback_on_topic(settings)
            return events if len(events) >= 10 else None
        events = await wait_until_async(ten, 60, "ten feedback events")
    finally:
        await runner.cleanup()
    assert len(events) == 10
    assert {e.metadata["label_request_id"]: e.value for e in events} == answered
    assert {e.metadata["reviewer"] for e in events} == {"ann"}
    assert (tmp_path / "review-page.png").stat().st_size > 10_000


async def _shows(page, request_id: str) -> bool:  # type: ignore[no-untyped-def]
    return await page.get_attribute("#card", "data-request-id") == request_id


async def _message_has(page, text: str) -> bool:  # type: ignore[no-untyped-def]
    return text in (await page.inner_text("#message"))


async def _text_is(page, selector: str, text: str) -> bool:  # type: ignore[no-untyped-def]
    return (await page.inner_text(selector)).strip() == text


async def _screenshot(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await wait_until_async(lambda: _neighbours_listed(page), 10, "neighbours on the page")
    path = tmp_path / "review-page.png"
    await page.screenshot(path=str(path), full_page=True)
    wanted = os.environ.get("REVIEW_PAGE_SCREENSHOT")
    if wanted:
        Path(wanted).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, wanted)


async def _neighbours_listed(page) -> bool:  # type: ignore[no-untyped-def]
    return await page.locator("#neighbours li .label:not(.none)").count() > 0
