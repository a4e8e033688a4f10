"""The FastAPI application: routers, error handlers, the Audit page."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from auditlog.settings import Settings
from clickhouse.client import get_client
from producers.producer import AuditProducer
from query_api.context import ApiContext
from query_api.cursor import CursorCodec
from query_api.errors import ApiError
from query_api.queries import EventReader
from query_api.routes import catalog, demo, events, export_links, health, transparency
from query_api.security import TokenVerifier
from schemas.catalog import load_catalog

logger = logging.getLogger(__name__)


def build_context(settings: Settings, audit_producer: AuditProducer | None = None) -> ApiContext:
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    return ApiContext(
        settings=settings,
        client=client,
        reader=EventReader(client, settings.events_table),
        verifier=TokenVerifier(settings.api),
        cursors=CursorCodec(settings.api.cursor_secret),
        catalog=load_catalog(),
        audit_producer=audit_producer,
    )


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "request"
    return f"{where}: {error.get('msg')}"


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Audit log query API",
        version="1",
        description="Who changed what, and when: filtered, cursor-paginated reads and exports of a "
        "workspace's audit log. Owners and admins only.",
    )
    app.state.context = context

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_describe(e) for e in exc.errors()]
        return JSONResponse(
            {"error": "invalid_parameter", "message": "; ".join(problems), "detail": problems}, status_code=422
        )

    app.include_router(health.router)
    app.include_router(catalog.router)
    app.include_router(events.router)
    app.include_router(export_links.router)
    app.include_router(transparency.router)
    if context.settings.api.demo_sign_in:
        # Only the embedded run mode hands out demo tokens; elsewhere the route does not exist.
        app.include_router(demo.router)

    static = resources.files("query_api").joinpath("static")
    if static.joinpath("index.html").is_file():
        app.mount("/static", StaticFiles(directory=str(static)), name="static")

        @app.get("/", include_in_schema=False)
        @app.get("/audit", include_in_schema=False)
        def audit_page() -> HTMLResponse:
            return HTMLResponse(static.joinpath("index.html").read_text("utf-8"))

    return app
