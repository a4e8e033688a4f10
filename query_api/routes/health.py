"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from query_api.deps import ContextDep
from query_api.models import HealthOut

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, summary="The process is alive")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/readyz", response_model=HealthOut, responses={503: {"model": HealthOut}},
            summary="The store answers queries, and an in-process consumer makes progress")
def readyz(ctx: ContextDep) -> Response:
    checks: dict[str, str] = {}
    ready = True
    try:
        ctx.client.query("SELECT 1")
        checks["clickhouse"] = "ok"
    except Exception as err:  # any failure of the store means not ready
        checks["clickhouse"] = type(err).__name__
        ready = False
    for name, check in ctx.readiness.items():
        part_ready, state, detail = check()
        checks[name] = state if not detail else f"{state}: {detail}"
        ready = ready and part_ready
    body = HealthOut(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
