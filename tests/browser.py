"""The headless browser the page tests drive: Debian's Chromium through Playwright.

Chromium comes from ``tools/dev setup`` (apt-get); without it a browser test fails, it does
not skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_or_fail() -> None:
    """Fail (never skip) when Chromium or the playwright package is missing."""
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")):
        pytest.fail(f"{CHROMIUM} is missing: run `tools/dev setup` (it installs Debian's "
                    "chromium with apt-get) before the browser test")
    try:
        import playwright.async_api  # noqa: F401
    except ModuleNotFoundError:
        pytest.fail("the playwright package is missing: run `tools/dev setup` (it installs "
                    "the dev extra)")
