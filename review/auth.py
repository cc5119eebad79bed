"""Who may use the review page: one shared token, sent the two ways HTTP clients know.

A script sends ``Authorization: Bearer <token>``; a browser signs in with basic auth, any
user name and the token as password (the browser asks once and then sends it with every
request of the page), and that user name is the reviewer recorded in each answer's
feedback. Every request without the token gets 401, except ``/healthz`` (a load balancer's
probe has no secret). A page that would take answers from anyone who can reach it is
refused, unless asked for explicitly (``--no-auth``) on the loopback interface.

Examples
--------
>>> import base64
>>> basic = "Basic " + base64.b64encode(b"ann:a-long-review-token").decode()
>>> reviewer_from(basic, "a-long-review-token"), reviewer_from("Bearer nope", "a-long-review-token")
('ann', None)
>>> reviewer_from("Bearer a-long-review-token", "a-long-review-token")
''
>>> check_exposure("0.0.0.0", token=None, no_auth=True)
Traceback (most recent call last):
...
driftloop.review.auth.ReviewSetupError: --no-auth serves the page to anyone who can reach ...
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from aiohttp import web

from ..schemas.errors import DriftloopError
from ..schemas.redact import register_secret
from ..schemas.settings import Settings

__all__ = ["LOOPBACK_HOSTS", "REVIEWER_KEY", "TOKEN_ENV", "ReviewSetupError", "auth_middleware",
           "check_exposure", "review_token", "reviewer_from"]

TOKEN_ENV = "DRIFTLOOP_REVIEW_TOKEN"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
REALM = "driftloop review"
# The request key of the reviewer it was signed in as (basic auth's user name; "" for a
# bearer token or without auth). aiohttp has typed request keys from 3.12 on (and warns
# about plain ones); before, a plain key.
REVIEWER_KEY: Any = (web.RequestKey("driftloop_reviewer", str) if hasattr(web, "RequestKey")
                     else "driftloop_reviewer")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReviewSetupError(DriftloopError):
    """The review page cannot start as configured (no token, no auth on a public address)."""


def review_token(settings: Settings, environ: Mapping[str, str] = os.environ) -> str | None:
    """The page's token: ``review.token`` (``DRIFTLOOP_REVIEW__TOKEN``, ``[review] token``),
    else ``$DRIFTLOOP_REVIEW_TOKEN``; None when neither is set.

    >>> review_token(Settings(), {"DRIFTLOOP_REVIEW_TOKEN": "from-the-environment"})
    'from-the-environment'
    >>> review_token(Settings(review={"token": "from-the-settings"}), {}) is not None
    True
    """
    if settings.review.token is not None:
        return settings.review.token.get_secret_value()
    token = environ.get(TOKEN_ENV) or None
    if token is not None:
        # Read past the settings' checks: same length rule, same masking in logs.
        Settings(review={"token": token})
        register_secret(token)
    return token


def check_exposure(host: str, *, token: str | None, no_auth: bool) -> None:
    """Refuse a page without a token, and one without auth anywhere but on loopback."""
    if no_auth and host not in LOOPBACK_HOSTS:
        raise ReviewSetupError(
            f"--no-auth serves the page to anyone who can reach {host}: without auth it "
            f"listens on 127.0.0.1 only; set a token ({TOKEN_ENV} or [review] token) instead")
    if token is None and not no_auth:
        raise ReviewSetupError(
            f"the review page needs a token: set {TOKEN_ENV} (or [review] token in the "
            "config file), or pass --no-auth to serve it without one on 127.0.0.1")


def reviewer_from(header: str | None, token: str) -> str | None:
    """Who an ``Authorization`` header signs in as: the basic-auth user name ("" for a
    bearer token), None when it does not carry the token."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme, rest = scheme.lower(), rest.strip()
    if scheme == "bearer":
        return "" if _same(rest, token) else None
    if scheme != "basic":
        return None
    try:
        user, _, password = base64.b64decode(rest, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user.strip() if _same(password, token) else None


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def auth_middleware(token: str | None, *, open_paths: Collection[str] = ("/healthz",)
                    ) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: 401 (asking for basic auth) without the token, except on
    ``open_paths``; ``token=None`` lets every request in (``--no-auth``)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is None or request.path in open_paths:
            request[REVIEWER_KEY] = ""
            return await handler(request)
        reviewer = reviewer_from(request.headers.get("Authorization"), token)
        if reviewer is None:
            return web.json_response(
                {"error": "sign in: basic auth with any user name and the review token as "
                          "password, or 'Authorization: Bearer <token>'"},
                status=401, headers={"WWW-Authenticate": f'Basic realm="{REALM}", '
                                                         'charset="UTF-8"'})
        request[REVIEWER_KEY] = reviewer
        return await handler(request)

    return middleware
