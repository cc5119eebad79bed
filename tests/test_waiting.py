"""The one wait of the tests: returns what the condition found, fails at its deadline saying so."""

from __future__ import annotations

import itertools
import time

import pytest
from waiting import WaitTimeout, wait_until, wait_until_async


def test_returns_the_first_truthy_value_once_the_condition_holds() -> None:
    calls = itertools.count(1)
    assert wait_until(lambda: next(calls) >= 3 and "found", 5, "the third call",
                      interval=0.01) == "found"
    assert next(calls) == 4  # not called again after it held


def test_fails_at_its_deadline_naming_what_and_the_last_value() -> None:
    began = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"the moon not met after 0\.2 s \(last seen: \[\]\)"):
        wait_until(list, 0.2, "the moon", interval=0.05)
    assert 0.2 <= time.monotonic() - began < 5


def test_the_failure_is_an_assertion_and_a_timeout_and_can_describe_the_state() -> None:
    with pytest.raises(AssertionError, match=r"\(3 records read\)"):
        wait_until(lambda: False, 0, "the records", seen=lambda: "3 records read")
    assert issubclass(WaitTimeout, TimeoutError)


def test_an_exception_of_the_condition_stops_the_wait_at_once() -> None:
    def died() -> bool:
        raise AssertionError("the worker exited")

    began = time.monotonic()
    with pytest.raises(AssertionError, match="the worker exited"):
        wait_until(died, 30, "the worker ready")
    assert time.monotonic() - began < 5


async def test_the_async_form_awaits_a_coroutine_condition() -> None:
    calls = itertools.count(1)

    async def third() -> int:
        n = next(calls)
        return n if n >= 3 else 0

    assert await wait_until_async(third, 5, "the third call", interval=0.01) == 3
    assert await wait_until_async(lambda: "plain", 1, "a plain condition") == "plain"


async def test_the_async_form_fails_at_its_deadline_naming_what() -> None:
    async def never() -> None:
        return None

    began = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"the sun not met after 0\.2 s \(last seen: None\)"):
        await wait_until_async(never, 0.2, "the sun", interval=0.05)
    assert 0.2 <= time.monotonic() - began < 5
