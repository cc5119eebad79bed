"""The demo's HTTP client: answers from a listening server, None from a silent port."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer
from kafka_helpers import free_port

from driftloop.tools.demo.endpoints import DemoEndpoints


async def test_a_port_nobody_listens_on_answers_none_and_is_not_ok() -> None:
    port = free_port()
    async with DemoEndpoints(serve_port=port, worker_port=port) as endpoints:
        assert await endpoints.get_json(endpoints.worker + "/health") is None
        assert await endpoints.get_text(endpoints.worker + "/metrics") is None
        assert not await endpoints.worker_ok() and not await endpoints.serve_ok()


async def test_health_pages_and_posts_reach_the_server() -> None:
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def starting(request: web.Request) -> web.Response:
        return web.json_response({"status": "starting"})

    async def feedback(request: web.Request) -> web.Response:
        return web.json_response({"seen": (await request.json())["value"]}, status=202)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/healthz", starting)
    app.router.add_post("/feedback", feedback)
    server = TestServer(app)
    await server.start_server()
    try:
        async with DemoEndpoints(serve_port=server.port, worker_port=server.port) as endpoints:
            assert await endpoints.worker_ok()
            assert not await endpoints.serve_ok()  # answering, not ready
            assert await endpoints.post("/feedback", {"value": "negative"}) == (
                202, {"seen": "negative"})
            assert await endpoints.get_text(endpoints.serve + "/missing") is None  # a 404
    finally:
        await server.close()
