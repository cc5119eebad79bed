"""The demo's HTTP client of ``driftloop serve`` and of the worker's health page.

The demo talks to its children the way a user would: predictions and feedback through the
service's HTTP API, readiness and progress through ``/healthz``, ``/health`` and
``/metrics``. A child that is not listening (yet, or any more) is an answer of ``None``,
not an error: the demo's waits poll these until a deadline.
"""

from __future__ import annotations

from typing import Any

import aiohttp

__all__ = ["DemoEndpoints"]


class DemoEndpoints:
    """One HTTP session for the service (``serve``) and the worker's web port (``worker``).

    Examples
    --------
    >>> endpoints = DemoEndpoints(serve_port=18080, worker_port=16066)
    >>> endpoints.serve, endpoints.worker
    ('http://127.0.0.1:18080', 'http://127.0.0.1:16066')
    """

    def __init__(self, serve_port: int, worker_port: int, *, review_port: int | None = None,
                 review_token: str | None = None) -> None:
        self.serve = f"http://127.0.0.1:{serve_port}"
        self.worker = f"http://127.0.0.1:{worker_port}"
        self.review = None if review_port is None else f"http://127.0.0.1:{review_port}"
        self._review_auth = {"Authorization": f"Bearer {review_token}"} if review_token else {}
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DemoEndpoints:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST ``body`` to the service; its status and JSON answer."""
        assert self.session is not None
        async with self.session.post(self.serve + path, json=body) as response:
            return response.status, await response.json()

    async def get_text(self, url: str) -> str | None:
        assert self.session is not None
        try:
            async with self.session.get(url) as response:
                return await response.text() if response.status == 200 else None
        except (aiohttp.ClientError, OSError):
            return None  # not listening (yet, or any more)

    async def get_json(self, url: str) -> dict[str, Any] | None:
        assert self.session is not None
        try:
            async with self.session.get(url) as response:
                return await response.json() if response.status == 200 else None
        except (aiohttp.ClientError, OSError, ValueError):
            return None  # not listening yet

    async def review_next(self, task: str, skip: list[str] | None = None
                          ) -> dict[str, Any] | None:
        """The review page's next request of ``task`` (its view) other than those in
        ``skip``; None when none waits."""
        assert self.session is not None and self.review is not None
        params = {"task": task, "skip": ",".join(skip or ())}
        async with self.session.get(f"{self.review}/api/next", params=params,
                                    headers=self._review_auth) as response:
            response.raise_for_status()
            return (await response.json())["request"]

    async def review_answer(self, request_id: str, value: str,
                            reviewer: str) -> tuple[int, dict[str, Any]]:
        """Answer a request on the review page, as its keyboard does."""
        assert self.session is not None and self.review is not None
        async with self.session.post(f"{self.review}/api/answer", headers=self._review_auth,
                                     json={"request_id": request_id, "value": value,
                                           "reviewer": reviewer}) as response:
            return response.status, await response.json()

    async def review_ok(self) -> bool:
        """Whether the review page's ``/healthz`` answers ``ok`` (True without a page)."""
        return self.review is None or _ok(await self.get_json(self.review + "/healthz"))

    async def worker_ok(self) -> bool:
        """Whether the worker's ``/health`` answers ``ok``."""
        return _ok(await self.get_json(self.worker + "/health"))

    async def serve_ok(self) -> bool:
        """Whether the service's ``/healthz`` answers ``ok``."""
        return _ok(await self.get_json(self.serve + "/healthz"))


def _ok(body: dict[str, Any] | None) -> bool:
    return body is not None and body.get("status") == "ok"
