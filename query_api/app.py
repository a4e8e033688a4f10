"""The FastAPI application: routers, error handlers, the Audit page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from clickhouse.client import get_client, http_pool, is_embedded, open_client
from clickhouse.pool import ClientPool, HandlesBusy
from config.settings import Settings
from producers.producer import AuditProducer
from query_api.context import ApiContext
from query_api.cursor import CursorCodec
from query_api.errors import ApiError
from query_api.queries import EventReader
from query_api.routes import catalog, demo, events, export_links, health, timeline, transparency
from query_api.security import TokenVerifier
from schemas.catalog import load_catalog

logger = logging.getLogger(__name__)


def build_context(settings: Settings, audit_producer: AuditProducer | None = None,
                  readiness: dict[str, Callable[[], tuple[bool, str, str]]] | None = None) -> ApiContext:
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    pages, exports = reader_pools(settings)
    return ApiContext(
        settings=settings,
        client=client,
        reader=EventReader(pages, settings.events_table, max_threads=settings.api.page_max_threads,
                           quiet_max_threads=settings.api.page_quiet_max_threads),
        pages=pages,
        exports=exports,
        verifier=TokenVerifier(settings.api),
        cursors=CursorCodec(settings.api.cursor_secret),
        catalog=load_catalog(),
        audit_producer=audit_producer,
        readiness=readiness or {},
    )


def reader_pools(settings: Settings) -> tuple[ClientPool, ClientPool]:
    """The API's two shares of engine handles: pages (and single events), and exports.

    Separate shares so that exports, however many and however long, never hold a handle a
    page needs; against a server both share one HTTP connection pool.
    """
    ch, api = settings.clickhouse, settings.api
    connections = None if is_embedded(ch.dsn) else http_pool(api.page_handles + api.export_handles)

    def factory() -> Client:
        return open_client(ch.dsn, ch.uncompressed_cache_mb, connections)

    return (ClientPool(factory, api.page_handles, api.handle_wait_seconds, "pages"),
            ClientPool(factory, api.export_handles, api.handle_wait_seconds, "exports"))


# Human wording for the framework's validation errors (pydantic error types), by parameter.
_PROBLEMS = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "string_too_long": "must be at most {max_length} characters long",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "has characters it may not hold",
    "literal_error": "must be one of {expected}",
    "uuid_parsing": "must be a UUID such as 0190f5a3-6b1e-7c2d-8e3f-4a5b6c7d8e9f",
    "uuid_type": "must be a UUID such as 0190f5a3-6b1e-7c2d-8e3f-4a5b6c7d8e9f",
    "missing": "is required",
}


def describe_validation_error(error: dict[str, Any]) -> tuple[str, str]:
    """(field, message) for one of the framework's validation errors, worded for a person."""
    loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "header", "body")]
    field = loc[-1] if loc else "request"
    template = _PROBLEMS.get(str(error.get("type")))
    try:
        problem = template.format(**(error.get("ctx") or {})) if template else str(error.get("msg"))
    except (KeyError, IndexError):
        problem = str(error.get("msg"))
    given = error.get("input")
    shown = f" (got {str(given)[:60]!r})" if isinstance(given, str | int | float) and given != "" else ""
    return field, f"{field} {problem}{shown}."


def error_body(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The one error body (``ErrorOut``)."""
    return {"status": status, "code": code, "message": message, "field": field}


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Audit log query API",
        version="1",
        description="Who changed what, and when: filtered, cursor-paginated reads and exports of a "
        "workspace's audit log. Owners and admins only. Every 4xx answer has one body: "
        "`{status, code, message, field}`.",
    )
    app.state.context = context

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, exc.code, exc.message, exc.field),
                            status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [describe_validation_error(e) for e in exc.errors()]
        field = problems[0][0] if problems else None
        message = " ".join(m for _, m in problems) or "The request is not valid."
        return JSONResponse(error_body(400, "invalid_parameter", message, field), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "There is nothing at this address; see /docs for the API.",
                   405: "This address does not take that method; see /docs for the API."}.get(
            exc.status_code, str(exc.detail))
        return JSONResponse(error_body(exc.status_code, code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(ClickHouseError)
    async def store_error(_request: Request, exc: ClickHouseError) -> JSONResponse:
        logger.error("store_error error=%s", type(exc).__name__, exc_info=exc)
        return JSONResponse(error_body(503, "store_unavailable", "The audit log store did not answer; try "
                                       "again in a moment."), status_code=503)

    @app.exception_handler(HandlesBusy)
    async def handles_busy(_request: Request, exc: HandlesBusy) -> JSONResponse:
        logger.warning("handles_busy detail=%s", exc)
        return JSONResponse(error_body(503, "store_busy", "Every engine handle stayed busy; try again in a "
                                       "moment."), status_code=503, headers={"Retry-After": "1"})

    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(events.router)
    app.include_router(timeline.router)
    app.include_router(export_links.router)
    app.include_router(transparency.router)
    if context.settings.api.demo_sign_in:
        # Only the embedded run mode hands out demo tokens; elsewhere the route does not exist.
        app.include_router(demo.router)

    static = resources.files("query_api").joinpath("static")
    if static.joinpath("index.html").is_file():
        app.mount("/static", StaticFiles(directory=str(static)), name="static")

        @app.get("/favicon.ico", include_in_schema=False)
        def favicon() -> Response:
            # Browsers and crawlers ask for /favicon.ico whatever the page links; answer it, not a 404.
            return Response(static.joinpath("favicon.ico").read_bytes(), media_type="image/x-icon",
                            headers={"Cache-Control": "public, max-age=86400"})

        @app.get("/", include_in_schema=False)
        @app.get("/audit", include_in_schema=False)
        def audit_page() -> HTMLResponse:
            return HTMLResponse(static.joinpath("index.html").read_text("utf-8"))

    return app
