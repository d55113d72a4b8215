"""The FastAPI application: composition of routers, middleware and error handling.

``create_app(settings)`` opens the database (migrating it), loads the matcher,
and returns the app; background threads (index sync, job worker) start with the
app's lifespan (``uvicorn`` start-up, or ``with TestClient(app)``) and stop at
shutdown.

Request pipeline (outermost first):

1. :class:`ServiceMiddleware` -- request id (``X-Request-ID`` accepted or made,
   echoed), body-size limit while streaming (413), one JSON access-log line,
   Prometheus request metrics.
2. Routing; each route's dependencies authenticate the key
   (:func:`sentinelle.service.deps.require_scope`).
3. Error handlers: every error leaves as ``{"error": {"code", "message"}}``;
   client mistakes are 4xx, never 5xx.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__ as VERSION  # noqa: N812
from ..errors import BankError, BankImportError, InvalidHashError, MediaError, SentinelleError
from ..jobs.worker import start_worker
from ..plugins import load_plugins
from ..store.db import DatabaseError
from .auth import api_error
from .deps import body_limit_kind
from .key_audit import KeyUseAuditor
from .keys import KeyError_, KeyVerifier
from .logging import log_access, request_id_from
from .metrics import Metrics
from .ratelimit import RateLimiter
from .settings import Settings
from .state import ServiceState, build_state
from .sync import start_sync

log = logging.getLogger("sentinelle.service")

#: Every router of the service, in inclusion order: the HTTP API by role
#: (:mod:`sentinelle.service.api`) and the review console (:mod:`sentinelle.console.routes`).
#: Each module exports ``router``. A module that fails to import stops the start-up.
ROUTER_MODULES = (
    "sentinelle.service.api.media",
    "sentinelle.service.api.ops",
    "sentinelle.service.api.curation",
    "sentinelle.service.api.hma",
    "sentinelle.service.routes_guard",
    "sentinelle.service.api.provenance",
    "sentinelle.service.api.review",
    "sentinelle.console.routes.review",
    "sentinelle.console.routes.admin",
    "sentinelle.console.routes.password",
    "sentinelle.console.routes.guard_phrases",
    "sentinelle.console.routes.exchanges",
    "sentinelle.console.routes.triage",
    "sentinelle.service.api.modelguard",
    "sentinelle.service.api.exchanges",
)

DESCRIPTION = """Match media against hash banks of known child-abuse material.

Every route except `GET /v1/health` needs an API key: `Authorization: Bearer <key>`
or `X-API-Key: <key>` (create one with `sentinelle key create`). Scopes: `scan`,
`curate`, `metrics`, `admin` (all). Errors are `{"error": {"code", "message"}}`.
"""


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit (-> 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            {
                "error": {
                    "code": "body_too_large",
                    "message": f"request body is over the limit of {limit} bytes",
                    "limit": limit,
                }
            },
        )


def _limit_for(settings: Settings, path: str) -> int:
    kind = body_limit_kind(path)
    if kind == "upload":
        return settings.max_upload_bytes
    if kind == "import":
        return settings.max_import_bytes
    return settings.max_json_bytes


class ServiceMiddleware:
    """Request id, body limit, access log and metrics, as plain ASGI (no buffering)."""

    def __init__(self, app: ASGIApp, get_state: Any) -> None:
        self.app = app
        self.get_state = get_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: ServiceState = self.get_state()
        start = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        rid = request_id_from(headers.get(b"x-request-id", b"").decode("latin-1") or None)
        scope.setdefault("state", {})["request_id"] = rid  # request.state.request_id
        limit = _limit_for(state.settings, scope.get("path", ""))
        status = {"code": 500}
        received = {"n": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                hs = list(message.get("headers") or [])
                hs.append((b"x-request-id", rid.encode("ascii")))
                message = {**message, "headers": hs}
            await send(message)

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["n"] += len(message.get("body", b""))
                if received["n"] > limit:
                    raise _BodyTooLarge(limit)
            return message

        declared = headers.get(b"content-length")
        try:
            too_big = declared is not None and int(declared) > limit
        except ValueError:
            too_big = False
        try:
            if too_big:
                await self._reply_413(send_wrapper, limit)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            key_id = (scope.get("state") or {}).get("key_id")
            if state.metrics is not None:
                state.metrics.observe(scope["method"], template, status["code"], elapsed)
            log_access(
                request_id=rid,
                method=scope["method"],
                route=template,
                status=status["code"],
                duration_ms=round(elapsed * 1000, 2),
                key_id=key_id,
                instance=state.instance_id,
                bytes_in=received["n"],
            )

    @staticmethod
    async def _reply_413(send: Send, limit: int) -> None:
        import json

        body = json.dumps(
            {
                "error": {
                    "code": "body_too_large",
                    "message": f"request body is over the limit of {limit} bytes",
                    "limit": limit,
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------ errors
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


def _error(status: int, code: str, message: str, headers: Any = None, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


def _status_for(err: SentinelleError) -> int:
    if isinstance(err, DatabaseError):
        return 503
    if isinstance(err, MediaError):
        return 413 if err.code == "file_too_large" else 422
    if isinstance(err, InvalidHashError | BankImportError):
        return 422
    if isinstance(err, BankError):
        if err.code in ("unknown_bank", "unknown_entry"):
            return 404
        if err.code in ("bank_exists",):
            return 409
        return 400
    if isinstance(err, KeyError_):
        return 400
    return 400


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        d = exc.detail
        if isinstance(d, dict) and "error" in d:
            return JSONResponse(d, status_code=exc.status_code, headers=exc.headers)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return _error(exc.status_code, code, str(d), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()[:50]
        ]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error(422, "invalid_request", f"{where}: {first['message']}", details=details)

    @app.exception_handler(SentinelleError)
    async def sentinelle_error(request: Request, exc: SentinelleError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=_status_for(exc))

    @app.exception_handler(SQLAlchemyError)
    async def db_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("database error", extra={"fields": {"error": type(exc).__name__}})
        return _error(503, "database_unavailable", "the database is unavailable; retry later")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error", extra={"fields": {"error": type(exc).__name__}})
        return _error(500, "internal_error", "internal error")


# ------------------------------------------------------------------ routers
def _include_routers(app: FastAPI) -> None:
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)


def _start_worker(state: ServiceState) -> None:
    state.stoppers.append(start_worker(state))


#: Text the prompt guard is warmed with: plain and benign (the first check loads
#: the lexicons and readings; every later one costs milliseconds).
WARM_UP_PROMPT = "a watercolour of a lighthouse at dawn"


def _warm_prompt_guard() -> threading.Thread | None:
    """Load the prompt guard's lexicons and readings in a daemon thread.

    The first ``/v1/guard/prompt`` call otherwise pays for them (seconds). They
    are cached process-wide (:func:`sentinelle.guard.lexicon.default_lexicons`,
    the pykakasi reader), so a throwaway :class:`~sentinelle.guard.PromptGuard`
    warms them for the app's own guard, whose configuration is still read from
    the environment on first use. Start-up does not wait for this, and a failure
    is only logged (the route reports its own error then). Nothing is recorded.
    """
    from ..guard import PromptGuard

    def warm() -> None:
        started = time.perf_counter()
        try:
            PromptGuard().check(WARM_UP_PROMPT)
        except Exception as e:  # noqa: BLE001 - never let warming break the service
            log.warning("prompt guard warm-up failed", extra={"fields": {"error": repr(e)[:200]}})
            return
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        log.info("prompt guard warm", extra={"fields": {"duration_ms": elapsed_ms}})

    thread = threading.Thread(target=warm, name="sentinelle-guard-warm-up", daemon=True)
    thread.start()
    return thread


def create_app(settings: Settings | None = None, *, start_background: bool = True) -> FastAPI:
    """Build the service. Opens and migrates the database now (fails fast if unreachable)."""
    settings = settings or Settings.from_env()
    load_plugins()  # job kinds, periodic tasks and hooks of the built-ins
    state = build_state(settings)
    state.keys = KeyVerifier(state.engine, ttl_s=settings.key_cache_s)
    state.limiter = RateLimiter()
    state.metrics = Metrics(state)
    state.key_audit = KeyUseAuditor(state.engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        state.stoppers.append(state.key_audit.stop)  # writes pending key.use summaries
        if start_background:
            state.stoppers.append(start_sync(state))
            _start_worker(state)
            app.state.sentinelle_warm_up = _warm_prompt_guard()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="Sentinelle",
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # Form()/File() parameters (the console's forms): no file parts, ever. Starlette
        # would spool one over 1 MiB to a temporary file on disk; uploads go through
        # the streaming in-memory reader of service/uploads.py instead.
        form_limits={"max_files": 0},
    )
    app.state.sentinelle = state
    app.add_middleware(ServiceMiddleware, get_state=lambda: state)
    _install_error_handlers(app)
    _include_routers(app)
    return app


__all__ = ["api_error", "create_app"]
