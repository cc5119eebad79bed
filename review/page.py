"""The built-in review page: one HTML page and the JSON API it calls (``driftloop review serve``).

- ``GET /``: the page (inline CSS and JS; no build step, no CDN; works offline).
- ``GET /api/tasks``: per task, requests waiting, answers held (undoable), answered.
- ``GET /api/next?task=&skip=id,id``: the request to answer next, what is left, what comes.
- ``POST /api/answer`` ``{"request_id", "value"}``: 202 accepted (published when its undo
  window has passed), 400 not a label of the task (nothing published), 404 unknown, 409
  answered already.
- ``POST /api/undo``: take back the reviewer's latest answer still in its window (200 with
  the request, 409 when there is none or it is published already: it then stands).
- ``GET /healthz`` (open), ``GET /metrics`` (Prometheus text).

Every path but ``/healthz`` needs the token (:mod:`.auth`). A POST must be
``application/json``: a cross-site form cannot send that without the browser asking first,
so a page elsewhere cannot answer in a signed-in reviewer's name.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from ..schemas.settings import Settings
from .answers import ReviewError
from .auth import REVIEWER_KEY, auth_middleware, check_exposure, review_token
from .desk import ReviewDesk
from .metrics import CONTENT_TYPE_LATEST, ReviewMetrics
from .views import request_view

__all__ = ["PAGE_KEY", "ReviewPage", "create_app"]

PAGE_KEY = web.AppKey("driftloop_review_page", "ReviewPage")
_MAX_BODY = 64 * 1024
_MAX_REVIEWER_CHARS = 64
_UPCOMING = 10
_DEFAULT_REVIEWER = "reviewer"


class BadRequest(ReviewError):
    """A request body the API cannot read."""

    status = 400


class NotJson(BadRequest):
    """A POST that is not ``application/json`` (a cross-site form would be)."""

    status = 415


class ReviewPage:
    """The page's handlers around one :class:`~.desk.ReviewDesk`.

    Parameters
    ----------
    settings
        Broker, topics, tasks and the ``[review]`` section.
    desk
        The desk to serve (default: one for ``tasks``); the app starts and stops it.
    tasks
        Offer only these tasks (default ``review.tasks``).
    token
        The token every request but ``/healthz`` must carry; None serves without auth
        (the command allows that only on loopback, with ``--no-auth``).

    Examples
    --------
    >>> page = ReviewPage(Settings(), token="a-long-review-token")
    >>> sorted({r.resource.canonical for r in page.app().router.routes()})
    ['/', '/api/answer', '/api/next', '/api/tasks', '/api/undo', '/healthz', '/metrics']
    """

    def __init__(self, settings: Settings, *, desk: ReviewDesk | None = None,
                 tasks: Iterable[str] | None = None, token: str | None) -> None:
        self.settings = settings
        self.desk = desk if desk is not None else ReviewDesk(settings, tasks=tasks)
        self.token = token
        self.metrics = ReviewMetrics()
        self._html = resources.files(__package__).joinpath("page.html").read_text("utf-8")

    def app(self) -> web.Application:
        """The aiohttp application; starting it starts the desk, cleanup stops it."""
        app = web.Application(client_max_size=_MAX_BODY,
                              middlewares=[auth_middleware(self.token)])
        app[PAGE_KEY] = self
        app.cleanup_ctx.append(self._lifespan)
        app.router.add_get("/", self.page)
        app.router.add_get("/api/tasks", self.tasks)
        app.router.add_get("/api/next", self.next)
        app.router.add_post("/api/answer", self.answer)
        app.router.add_post("/api/undo", self.undo)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.render_metrics)
        return app

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.desk.start()
        try:
            yield
        finally:
            await self.desk.stop()

    # -- the page -------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        nonce = secrets.token_urlsafe(16)
        html = self._html.replace("__NONCE__", nonce)
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": csp,
                                     "X-Content-Type-Options": "nosniff",
                                     "Referrer-Policy": "no-referrer",
                                     "Cache-Control": "no-store"})

    # -- the API ----------------------------------------------------------------------------

    async def tasks(self, request: web.Request) -> web.Response:
        counts = self.desk.queue.counts()
        rows = [{"task": task, "pending": c.pending, "held": c.held, "answered": c.answered}
                for task, c in counts.items()]
        return _json({"tasks": rows, "pending": sum(c.pending for c in counts.values()),
                      "undo_window_s": self.desk.queue.undo_window_s,
                      "reviewer": request.get(REVIEWER_KEY) or None})

    async def next(self, request: web.Request) -> web.Response:
        task = request.query.get("task") or None
        skip = [s for s in request.query.get("skip", "").split(",") if s]
        queue = self.desk.queue
        waiting = queue.pending(task)
        chosen = queue.next(task, exclude=skip) or (waiting[0] if waiting else None)
        view = None if chosen is None else request_view(
            queue, chosen, neighbours=self.settings.review.neighbours)
        upcoming = [{"request_id": r.id, "task": r.task, "text": r.interaction.input[:200],
                     "priority": r.priority, "reason": r.reason.value}
                    for r in waiting[:_UPCOMING + 1] if chosen is None or r.id != chosen.id]
        return _json({"request": view, "left": len(waiting), "upcoming": upcoming[:_UPCOMING]})

    async def answer(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            request_id, value = body.get("request_id"), body.get("value")
            if not isinstance(request_id, str) or not request_id:
                raise BadRequest('the body needs "request_id" (text) and "value"')
            reviewer = _reviewer(request, body)
            waiting = self.desk.queue.get(request_id)
            feedback = self.desk.answer(request_id, value, reviewer)
        except ReviewError as exc:
            self.metrics.rejected.labels(code=str(exc.status)).inc()
            return _json({"error": str(exc)}, status=exc.status)
        if waiting is not None:
            self.metrics.answered(feedback.task, waited_s=time.time() - waiting.ts)
        return _json({"feedback_id": feedback.id, "request_id": request_id,
                      "value": feedback.value, "reviewer": reviewer,
                      "undo_window_s": self.desk.queue.undo_window_s,
                      "left": len(self.desk.queue.pending())}, status=202)

    async def undo(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request, optional=True)
            request_back = self.desk.undo(_reviewer(request, body))
        except ReviewError as exc:
            return _json({"error": str(exc)}, status=exc.status)
        self.metrics.undos.labels(task=request_back.task).inc()
        return _json({"request": request_view(self.desk.queue, request_back,
                                              neighbours=self.settings.review.neighbours)})

    async def healthz(self, request: web.Request) -> web.Response:
        problems = self.desk.problems()
        return _json({"status": "ok" if not problems else "failing", "problems": problems,
                      "pending": len(self.desk.queue.pending()),
                      "unpublished": self.desk.queue.unpublished},
                     status=200 if not problems else 503)

    async def render_metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render(self.desk.queue.counts()))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response


def create_app(settings: Settings, *, tasks: Iterable[str] | None = None,
               no_auth: bool = False, desk: ReviewDesk | None = None) -> web.Application:
    """The review page's app: the token from the settings (or ``$DRIFTLOOP_REVIEW_TOKEN``),
    :class:`~.auth.ReviewSetupError` without one; none with ``no_auth`` (the caller checks
    where that is allowed: :func:`~.auth.check_exposure`)."""
    token = None if no_auth else review_token(settings)
    if token is None and not no_auth:
        check_exposure("", token=None, no_auth=False)
    return ReviewPage(settings, desk=desk, tasks=tasks, token=token).app()


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise NotJson("send the body as application/json")
    raw = await request.read()
    if optional and not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _reviewer(request: web.Request, body: dict[str, Any]) -> str:
    """The signed-in user name, else the body's ``reviewer``, else a generic name."""
    name = request.get(REVIEWER_KEY) or body.get("reviewer") or _DEFAULT_REVIEWER
    if not isinstance(name, str) or len(name.strip()) > _MAX_REVIEWER_CHARS:
        raise BadRequest(f'"reviewer" must be text of at most {_MAX_REVIEWER_CHARS} '
                         "characters")
    return name.strip() or _DEFAULT_REVIEWER


def _json(body: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})
