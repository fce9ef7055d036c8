"""The simulator's HTTP app (Starlette): provider routes, and ``/_sim/*`` to read counters and change knobs.

Every provider call goes through ``Simulator._answer``: check auth, read and parse the body (400 when it is not
what the real service accepts), maybe inject a fault (a scripted first failure per request key, a random error
status, or a hang), sleep the simulated latency, answer. Calls are counted when they arrive, so a call the client
abandoned still counts: that is what a real provider bills.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ingestd.sim import routes
from ingestd.sim.config import RouteConfig, SimConfig
from ingestd.sim.routes import BadRequest, Produced
from ingestd.sim.state import Call, SimState

Producer = Callable[[Request, SimState], Awaitable[Produced]]


class Simulator:
    """The request handlers, sharing one ``SimState``."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def provider_route(self, path: str, route: str, produce: Producer, *, deepgram: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            key = request.headers.get("idempotency-key") or request.headers.get("x-request-key")
            call = self.state.begin(route, key)
            outcome = "error"
            try:
                response, outcome = await self._answer(request, call, produce, deepgram)
                return response
            finally:
                self.state.end(call, outcome)

        return Route(path, endpoint, methods=["POST"])

    async def _answer(self, request: Request, call: Call, produce: Producer, deepgram: bool) -> tuple[Response, str]:
        config = self.state.config
        if config.require_auth and not request.headers.get("authorization"):
            return _error(401, "missing Authorization header", deepgram), "401"
        try:
            produced = await produce(request, self.state)
        except BadRequest as exc:
            return _error(400, str(exc), deepgram), "400"
        route_config = config.routes[call.route]
        fault = self._fault(route_config, call)
        if fault == "hang":
            await self._hang(request)
            return Response(status_code=504), "hang"
        if fault == "malformed":
            return Response("<html>upstream glitch</html>", media_type="text/html"), "malformed"
        if fault is not None:
            return self._fault_response(int(fault), route_config, deepgram), str(fault)
        seconds = route_config.latency(self.state.rng, produced.audio_seconds, call.in_flight)
        await asyncio.sleep(seconds * config.time_scale)
        if isinstance(produced.payload, str):
            return PlainTextResponse(produced.payload), "ok"
        return JSONResponse(produced.payload), "ok"

    def _fault(self, route_config: RouteConfig, call: Call) -> str | int | None:
        if call.key is not None and call.attempt <= route_config.fail_first_per_key:
            return route_config.fail_first_status
        draw = self.state.rng.random()
        threshold = route_config.hang_rate
        if draw < threshold:
            return "hang"
        threshold += route_config.malformed_rate
        if draw < threshold:
            return "malformed"
        for status, rate in sorted(route_config.error_rates.items()):
            threshold += rate
            if draw < threshold:
                return status
        return None

    def _fault_response(self, status: int, route_config: RouteConfig, deepgram: bool) -> Response:
        response = _error(status, f"simulated {status}", deepgram)
        if status in (429, 503):
            seconds = route_config.retry_after_seconds * self.state.config.time_scale
            response.headers["Retry-After"] = str(int(seconds)) if seconds == int(seconds) else f"{seconds:.3f}"
        return response

    async def _hang(self, request: Request) -> None:
        # Hold the call open until the client gives up (disconnects) or the server shuts down.
        while not self.state.closing and not await request.is_disconnected():
            await asyncio.sleep(0.02)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.snapshot())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse(self.state.snapshot())

    async def config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                patch = await request.json()
                if not isinstance(patch, dict):
                    raise ValueError("the config patch must be a JSON object")
                self.state.configure(patch)
            except (ValueError, ValidationError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.state.config.model_dump(mode="json"))


def _error(status: int, message: str, deepgram: bool) -> JSONResponse:
    if deepgram:  # Deepgram's error shape
        body: dict[str, Any] = {"err_code": f"SIM_{status}", "err_msg": message, "request_id": "sim"}
    else:  # OpenAI's
        body = {"error": {"message": message, "type": "simulated_error", "code": str(status)}}
    return JSONResponse(body, status_code=status)


def create_app(config: SimConfig | None = None) -> Starlette:
    """The simulator as an ASGI app; ``app.state.sim`` is its ``SimState``."""
    state = SimState(config)
    sim = Simulator(state)
    app = Starlette(
        routes=[
            sim.provider_route("/v1/listen", "deepgram", routes.deepgram_listen, deepgram=True),
            sim.provider_route("/v1/audio/transcriptions", "transcriptions", routes.transcriptions),
            sim.provider_route("/v1/chat/completions", "chat", routes.chat_completions),
            sim.provider_route("/v1/embeddings", "embeddings", routes.embeddings),
            sim.provider_route("/v1/vad", "vad", routes.vad),
            Route("/_sim/stats", sim.stats, methods=["GET"]),
            Route("/_sim/reset", sim.reset, methods=["POST"]),
            Route("/_sim/config", sim.config, methods=["GET", "POST"]),
            Route("/healthz", lambda request: PlainTextResponse("ok"), methods=["GET"]),
        ]
    )
    app.state.sim = state
    return app
