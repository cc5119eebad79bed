"""The report in a real browser (Debian's Chromium through Playwright), from demo-shaped
events on the real broker: the charts are drawn, have a size, and name the four domains;
the lineage, the gate tables and the coloured deltas are there; nothing is fetched.

Chromium comes from ``tools/dev setup`` (apt-get); without it this test fails, it does not
skip. It saves a screenshot of the top of the page; with ``REPORT_SCREENSHOT=docs/report.png``
it also writes the README's picture.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, chromium_or_fail
from kafka_helpers import produce
from report_samples import DOMAINS, TASK, demo_run

from driftloop.schemas import Topic, encode, encode_batch
from driftloop.schemas.settings import Settings
from driftloop.tools.ops.report import (
    ReportBounds,
    collect_report_data,
    parse_time,
    render_report,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CHARTS = (f"accuracy-by-domain-{TASK}", f"accuracy-by-version-{TASK}", f"lineage-{TASK}")



async def _publish(settings: Settings) -> None:
    run = demo_run(time.time() - 2 * 3600)
    await produce(settings, Topic.INTERACTIONS,
                  [encode_batch(run.interactions[i:i + 120])
                   for i in range(0, len(run.interactions), 120)], key=TASK)
    await produce(settings, Topic.FEEDBACK,
                  [encode_batch(run.feedback[i:i + 120])
                   for i in range(0, len(run.feedback), 120)], key=TASK)
    await produce(settings, Topic.DRIFT_ALERTS, [encode(a) for a in run.alerts], key=TASK)
    await produce(settings, Topic.TRAINING_REQUESTS, [encode(r) for r in run.requests],
                  key=TASK)
    await produce(settings, Topic.MODEL_VERSIONS, [encode(v) for v in run.versions], key=TASK)
    await produce(settings, Topic.LABEL_REQUESTS, [encode(r) for r in run.label_requests],
                  key=TASK)
    for ack in run.acks:
        await produce(settings, Topic.SERVING_ACKS, [encode(ack)],
                      key=f"{ack.replica}/{ack.task}")


def _render(settings: Settings, out: Path) -> None:
    """Read the broker as ``driftloop report --since 3h`` does; the page names no broker
    address, since its picture goes in the README."""
    data = asyncio.run(collect_report_data(settings, bounds=ReportBounds(
        since=parse_time("3h"))))
    assert (data.interactions, data.labelled, len(data.alerts), len(data.versions)) == (
        960, 960, 4, 7)
    out.write_text(render_report(data, title="driftloop demo", source="the demo's topics"),
                   encoding="utf-8")


def test_the_demo_s_report_draws_its_charts_in_chromium(
        kafka_settings: Settings, tmp_path: Path) -> None:
    chromium_or_fail()
    asyncio.run(_publish(kafka_settings))
    out = tmp_path / "report.html"
    _render(kafka_settings, out)
    asyncio.run(_check_in_browser(out, tmp_path))
    assert (tmp_path / "report.png").stat().st_size > 30_000


async def _check_in_browser(out: Path, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    fetched: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1200, "height": 900})
        try:
            page = browser.pages[0] if browser.pages else await browser.new_page()
            page.on("request", lambda request: fetched.append(request.url))
            await page.goto(out.as_uri())
            for chart in CHARTS:
                svg = page.locator(f"figure#{chart} svg")
                assert await svg.count() == 1, chart
                box = await svg.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100, (chart,
                                                                                          box)
            legend = " ".join(await page.locator(
                f"figure#{CHARTS[0]} svg text").all_text_contents())
            for domain in DOMAINS:
                assert domain in legend, domain
            assert "drift: error rate ↑" in legend and "drift: score ↓" in legend
            versions = " ".join(await page.locator(f"figure#{CHARTS[1]} svg text")
                                .all_text_contents())
            assert "sentiment-v6" in versions
            assert await page.locator(f"figure#{CHARTS[2]} g.version").count() == 6
            assert await page.locator("details.version-evidence table.gate").count() == 6
            green = await page.locator("table.gate td.better").first.evaluate(
                "cell => getComputedStyle(cell).color")
            red = await page.locator("table.gate td.worse").first.evaluate(
                "cell => getComputedStyle(cell).color")
            assert green == "rgb(26, 127, 55)" and red == "rgb(207, 34, 46)"
            assert "3 candidates in a row were rejected" in await page.inner_text("p.why")
            assert await page.locator("table.replicas tr").count() == 3  # header + 2 replicas
            assert await page.locator("table.label-requests").count() == 1
            await _screenshot(page, tmp_path)
        finally:
            await browser.close()
    assert all(url.startswith(("file:", "data:")) for url in fetched), fetched


async def _screenshot(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The top of the page down to the lineage graph: the cards, both charts, the lineage."""
    lineage = await page.locator(f"figure#{CHARTS[2]}").bounding_box()
    assert lineage is not None
    path = tmp_path / "report.png"
    await page.screenshot(path=str(path), full_page=True,
                          clip={"x": 0, "y": 0, "width": 1200,
                                "height": lineage["y"] + lineage["height"] + 16})
    wanted = os.environ.get("REPORT_SCREENSHOT")
    if wanted:
        Path(wanted).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, wanted)
