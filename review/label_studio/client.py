"""An async client of Label Studio's REST API: the few calls the bridge makes, on aiohttp.

Two kinds of token work, as in Label Studio's own SDK:

- a *personal access token* (Label Studio 1.15 and later, the default since): a JWT refresh
  token, exchanged at ``/api/token/refresh/`` for a short-lived access token sent as
  ``Authorization: Bearer <access>``, exchanged again when the server answers 401;
- a *legacy API token*: sent as it is, ``Authorization: Token <key>`` (an organization
  must allow them; new ones do not by default since 1.16).

A server that does not answer (connection refused, timeouts, 5xx, 429) is asked again with
exponential backoff until ``deadline`` seconds have passed since the first failure, then
:class:`LabelStudioUnreachable`; a refused token is :class:`LabelStudioAuthError` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from .errors import (
    LabelStudioAuthError,
    LabelStudioError,
    LabelStudioRequestError,
    LabelStudioUnreachable,
)

__all__ = ["LabelStudioClient", "is_personal_token"]

log = logging.getLogger(__name__)

_PAGE_SIZE = 100
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_personal_token(token: str) -> bool:
    """True for a personal access token (a JWT: three dot-separated parts), False for a
    legacy API token (40 hex digits in a default install).

    >>> is_personal_token("eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2ln")
    True
    >>> is_personal_token("8c1d4e0f7a9b2c3d4e5f60718293a4b5c6d7e8f9")
    False
    """
    parts = token.split(".")
    return len(parts) == 3 and all(parts)


class LabelStudioClient:
    """Label Studio's REST API, the calls the bridge needs, with token auth and retries.

    Parameters
    ----------
    url
        The server's base URL (``http://localhost:8080``).
    token
        A personal access token or a legacy API token (see the module's notes).
    timeout
        Seconds one HTTP request may take.
    deadline
        Seconds a server may stay unreachable before :class:`LabelStudioUnreachable`.

    Examples
    --------
    >>> client = LabelStudioClient("http://localhost:8080/", "8c1d4e0f7a9b2c3d")
    >>> client.url, client.auth_scheme
    ('http://localhost:8080', 'Token')
    >>> async def main():  # doctest: +SKIP
    ...     async with LabelStudioClient("http://localhost:8080", token) as studio:
    ...         print((await studio.whoami())["email"])
    """

    def __init__(self, url: str, token: str, *, timeout: float = 30.0,
                 deadline: float = 120.0) -> None:
        if not token:
            raise LabelStudioAuthError("no Label Studio token: pass --token or set "
                                       "DRIFTLOOP_LABEL_STUDIO_TOKEN")
        if timeout <= 0 or deadline <= 0:
            raise ValueError(f"timeout and deadline must be > 0, got {timeout}, {deadline}")
        self.url, self.timeout, self.deadline = url.rstrip("/"), timeout, deadline
        self._token = token
        self._personal = is_personal_token(token)
        self._access: str | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def auth_scheme(self) -> str:
        """``Bearer`` (personal access token) or ``Token`` (legacy API token)."""
        return "Bearer" if self._personal else "Token"

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the HTTP session and check the token (:class:`LabelStudioAuthError`)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        await self.whoami()

    async def stop(self) -> None:
        """Close the HTTP session; idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> LabelStudioClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def __del__(self) -> None:
        if self._session is not None and not self._session.closed:
            warnings.warn(f"unclosed LabelStudioClient for {self.url}", ResourceWarning,
                          stacklevel=1)

    # -- the calls ---------------------------------------------------------------------------
    async def whoami(self) -> dict[str, Any]:
        """The user the token belongs to."""
        return await self.request("GET", "/api/current-user/whoami")

    async def projects(self) -> list[dict[str, Any]]:
        """Every project the token's user can see."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.request("GET", "/api/projects/",
                                      params={"page": page, "page_size": _PAGE_SIZE})
            found += body["results"]
            if not body.get("next"):
                return found
            page += 1

    async def create_project(self, **fields: Any) -> dict[str, Any]:
        return await self.request("POST", "/api/projects/", json=fields)

    async def update_project(self, project: int, **fields: Any) -> dict[str, Any]:
        return await self.request("PATCH", f"/api/projects/{project}/", json=fields)

    async def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Create ``tasks`` (each ``{"data": ..., "predictions": [...]}``); their ids."""
        body = await self.request("POST", f"/api/projects/{project}/import",
                                  params={"return_task_ids": "true"}, json=tasks)
        return list(body.get("task_ids", []))

    async def tasks(self, project: int, *, filters: list[dict[str, Any]] | None = None,
                    conjunction: str = "and", fields: str = "all"
                    ) -> AsyncIterator[dict[str, Any]]:
        """The project's tasks (with their annotations when ``fields="all"``), page by page,
        limited by data-manager ``filters`` (``{"filter": "filter:tasks:updated_at",
        "operator": "greater", "type": "Datetime", "value": ...}``)."""
        params: dict[str, Any] = {"project": project, "fields": fields,
                                  "page_size": _PAGE_SIZE}
        if filters:
            params["query"] = orjson.dumps(
                {"filters": {"conjunction": conjunction, "items": filters}}).decode()
        page, seen = 1, 0
        while True:
            body = await self.request("GET", "/api/tasks/", params={**params, "page": page})
            batch = body.get("tasks", [])
            for task in batch:
                yield task
            seen += len(batch)
            if len(batch) < _PAGE_SIZE or seen >= body.get("total", seen):
                return
            page += 1

    async def users(self) -> list[dict[str, Any]]:
        """The organization's users (id, email, names)."""
        body = await self.request("GET", "/api/users/")
        return body if isinstance(body, list) else body.get("results", [])

    # -- HTTP --------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None) -> Any:
        """One API call, its JSON answer; retried while the server is unreachable."""
        if self._session is None:
            raise LabelStudioError("LabelStudioClient is not started: use 'async with'")
        what = f"{method} {path}"
        failing_since: float | None = None
        attempt, refreshed = 0, False
        while True:
            try:
                headers = {"Authorization": f"{self.auth_scheme} {await self._credential()}"}
                async with self._session.request(method, self.url + path, params=params,
                                                  json=json, headers=headers) as response:
                    status, text = response.status, await response.text()
            except (TimeoutError, aiohttp.ClientConnectionError, _NoAnswer) as exc:
                status, text = 0, f"{type(exc).__name__}: {exc}"
            if status in (401, 403) and self._personal and not refreshed:
                self._access, refreshed = None, True  # the access token expired: once more
                continue
            if status and status not in _RETRIED_STATUSES:
                return self._answer(status, text, what)
            now = time.monotonic()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since >= self.deadline:
                raise LabelStudioUnreachable(
                    f"Label Studio at {self.url} did not answer {what} for "
                    f"{self.deadline:.0f} s (last: {_short(text) or status})")
            delay = min(0.5 * 2 ** attempt, 10.0)
            attempt += 1
            log.warning("Label Studio at %s: %s failed (%s); again in %.1f s", self.url, what,
                        _short(text) or status, delay)
            await asyncio.sleep(delay)  # backoff before the retry, bounded by the deadline

    def _answer(self, status: int, text: str, what: str) -> Any:
        if status in (401, 403):
            kind = "personal access token" if self._personal else "legacy API token"
            raise LabelStudioAuthError(
                f"Label Studio at {self.url} refused the {kind} ({status} {_detail(text)}): "
                "check --token / DRIFTLOOP_LABEL_STUDIO_TOKEN (Account & Settings in Label "
                "Studio; a legacy token also needs legacy tokens enabled in the organization)")
        if status >= 400:
            raise LabelStudioRequestError(status, what, _detail(text))
        if not text:
            return None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise LabelStudioRequestError(status, what, "the answer is not JSON (is "
                                          f"{self.url} a Label Studio server?)") from None

    async def _credential(self) -> str:
        if not self._personal:
            return self._token
        if self._access is None:
            self._access = await self._refresh()
        return self._access

    async def _refresh(self) -> str:
        assert self._session is not None
        async with self._session.post(f"{self.url}/api/token/refresh/",
                                      json={"refresh": self._token}) as response:
            status, text = response.status, await response.text()
        if status in _RETRIED_STATUSES:
            raise _NoAnswer(f"token refresh answered {status}: {_short(text)}")
        if status != 200:
            raise LabelStudioAuthError(
                f"Label Studio at {self.url} refused the personal access token ({status} "
                f"{_detail(text)}): check --token / DRIFTLOOP_LABEL_STUDIO_TOKEN")
        return str(orjson.loads(text)["access"])


class _NoAnswer(Exception):
    """The server is there but not serving (a 5xx to the token refresh): retried."""


def _detail(text: str) -> str:
    """The ``detail`` of a JSON error answer, else the start of the text."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _short(text)
    if isinstance(body, dict) and "detail" in body:
        extra = body.get("validation_errors")
        return f"{body['detail']}{f' {extra}' if extra else ''}"
    return _short(text)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
