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
            summary="The store answers queries")
def readyz(ctx: ContextDep) -> Response:
    try:
        ctx.client.query("SELECT 1")
    except Exception as err:  # any failure of the store means not ready
        body = HealthOut(status="unavailable", checks={"clickhouse": type(err).__name__})
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(HealthOut(status="ok", checks={"clickhouse": "ok"}).model_dump())


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
