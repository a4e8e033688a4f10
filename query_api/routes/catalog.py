"""The catalog the UI needs: category chips, target kinds, action names."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import ContextDep
from query_api.models import CatalogOut

router = APIRouter(prefix="/v1/audit", tags=["catalog"])


@router.get("/catalog", response_model=CatalogOut, summary="Categories, target kinds and actions")
def get_catalog(ctx: ContextDep) -> CatalogOut:
    """The action catalog this build ships (public: it holds no workspace data)."""
    return CatalogOut.model_validate(ctx.catalog.as_dict())
