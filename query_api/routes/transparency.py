"""The transparency log over HTTP: checkpoints, inclusion and consistency proofs, the log export, the keys.

Same access rule as the events (owners and admins of the workspace), except
the public keys: anyone may fetch them, since they are what an auditor checks
everything else with. Proofs are RFC 9162 audit paths and consistency proofs,
lists of hex hashes, checked as docs/verification.md describes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from query_api.deps import ContextDep, CurrentUser
from query_api.errors import InvalidFilter, NotFound
from query_api.models import ErrorOut
from query_api.routes.events import ERRORS, WorkspaceId
from transparency.checkpoint import Checkpoint, public_pem
from transparency.errors import TransparencyError
from transparency.export import log_lines
from transparency.merkle import consistency_proof, inclusion_proof_and_leaf
from transparency.sequencer import tables_for
from transparency.service import current_key_id, load_keyring
from transparency.store import LogStore

router = APIRouter(tags=["transparency"])
WS_PREFIX = "/v1/workspaces/{workspace_id}/audit"
NOT_FOUND: dict[int | str, dict[str, object]] = {**ERRORS, 404: {"model": ErrorOut}}
TreeSize = Annotated[int | None, Query(ge=1, le=2**62, description="A signed checkpoint's tree size (default: "
                                                                     "the latest checkpoint)")]


class CheckpointOut(BaseModel):
    format: str = Field(description="auditlog-checkpoint/v1")
    workspace_id: str
    tree_size: int
    root_hash: str = Field(description="RFC 9162 tree hash, hex")
    timestamp: str
    leaf_format: str
    key_id: str = Field(description="First 16 hex digits of SHA-256 over the raw Ed25519 public key")
    signature: str = Field(description="Ed25519 signature (base64) over the checkpoint text")


class CheckpointList(BaseModel):
    checkpoints: list[CheckpointOut]


class InclusionProofOut(BaseModel):
    event_id: str
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || JCS(event)), hex")
    audit_path: list[str] = Field(description="RFC 9162 §2.1.3 inclusion path, hex, deepest first")
    checkpoint: CheckpointOut


class ConsistencyProofOut(BaseModel):
    from_size: int
    to_size: int
    proof: list[str] = Field(description="RFC 9162 §2.1.4 consistency proof, hex")
    from_checkpoint: CheckpointOut
    to_checkpoint: CheckpointOut


class PublicKeyOut(BaseModel):
    key_id: str
    algorithm: str = "Ed25519"
    public_key_pem: str
    current: bool = Field(description="Signs new checkpoints (the others signed earlier ones)")


class PublicKeys(BaseModel):
    keys: list[PublicKeyOut]


def _store(ctx: ContextDep) -> Iterator[LogStore]:
    """The log's tables on a page handle of the pool, for this request.

    A request that fails returns its handle closed (clickhouse/pool.py): a chDB handle may hand a
    failed query's partial output to the next query, which must never reach a proof.
    """
    with ctx.pages.lease() as client:
        yield LogStore(client, tables_for(ctx.settings))


StoreDep = Annotated[LogStore, Depends(_store)]


def _out(cp: Checkpoint) -> CheckpointOut:
    return CheckpointOut.model_validate(cp.to_json())


def _checkpoint(store: LogStore, workspace_id: str, tree_size: int | None) -> Checkpoint:
    cp = store.checkpoint(workspace_id, tree_size)
    if cp is not None:
        return cp
    if tree_size is None:
        raise NotFound(f"Workspace {workspace_id} has no signed checkpoint yet.")
    raise NotFound(f"No signed checkpoint of workspace {workspace_id} has tree size {tree_size}.")


@router.get("/v1/audit/transparency/keys", response_model=PublicKeys, summary="The checkpoint signing keys")
def public_keys(ctx: ContextDep) -> PublicKeys:
    """Every public key checkpoints were signed with (no sign-in: an auditor needs them first)."""
    try:
        current = current_key_id(ctx.settings)
    except TransparencyError:
        current = None
    ring = load_keyring(ctx.settings)
    return PublicKeys(keys=[PublicKeyOut(key_id=kid, public_key_pem=public_pem(key), current=kid == current)
                            for kid, key in ring.keys.items()])


@router.get(f"{WS_PREFIX}/checkpoints", response_model=CheckpointList, responses=ERRORS,
            summary="Every signed checkpoint of the workspace's log, oldest first")
def list_checkpoints(
    store: StoreDep, user: CurrentUser, workspace_id: WorkspaceId,
    after_size: Annotated[int, Query(ge=0, le=2**62, description="Only checkpoints of larger trees")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many, smallest sizes first")] = 1000,
) -> CheckpointList:
    """Signed tree heads by size; compare each size with a log export to narrow down a divergence."""
    user.require_reader(workspace_id)
    return CheckpointList(checkpoints=[_out(cp) for cp in store.checkpoints(workspace_id, after_size, limit)])


@router.get(f"{WS_PREFIX}/checkpoints/latest", response_model=CheckpointOut, responses=NOT_FOUND,
            summary="The latest signed checkpoint")
def latest_checkpoint(store: StoreDep, user: CurrentUser, workspace_id: WorkspaceId) -> CheckpointOut:
    """The newest signed tree head: "log verified up to N events"."""
    user.require_reader(workspace_id)
    return _out(_checkpoint(store, workspace_id, None))


@router.get(f"{WS_PREFIX}/checkpoints/{{tree_size}}", response_model=CheckpointOut, responses=NOT_FOUND,
            summary="The signed checkpoint at a tree size")
def checkpoint_by_size(store: StoreDep, user: CurrentUser, workspace_id: WorkspaceId,
                       tree_size: Annotated[int, Path(ge=0, le=2**62)]) -> CheckpointOut:
    """The signed tree head of that size (404 if none was signed at exactly that size)."""
    user.require_reader(workspace_id)
    return _out(_checkpoint(store, workspace_id, tree_size))


@router.get(f"{WS_PREFIX}/events/{{event_id}}/proof", response_model=InclusionProofOut, responses=NOT_FOUND,
            summary="An event's inclusion proof against a signed checkpoint")
def event_proof(store: StoreDep, user: CurrentUser, workspace_id: WorkspaceId, event_id: uuid.UUID,
                tree_size: TreeSize = None) -> InclusionProofOut:
    """The RFC 9162 audit path from the event's leaf to the checkpoint's root (O(log n) stored hashes)."""
    user.require_reader(workspace_id)
    cp = _checkpoint(store, workspace_id, tree_size)
    index = store.leaf_of(workspace_id, str(event_id))
    if index is None:
        raise NotFound(f"Event {event_id} is not in the log of workspace {workspace_id} (yet).")
    if index >= cp.tree_size:
        raise NotFound(f"Event {event_id} is leaf {index}, after the checkpoint of size {cp.tree_size}; "
                       "ask again against a newer checkpoint.")
    reader = store.reader(workspace_id)
    leaf, path = inclusion_proof_and_leaf(reader, index, cp.tree_size, store.stride)
    return InclusionProofOut(event_id=str(event_id), leaf_index=index, tree_size=cp.tree_size, leaf_hash=leaf.hex(),
                             audit_path=[h.hex() for h in path], checkpoint=_out(cp))


@router.get(f"{WS_PREFIX}/consistency", response_model=ConsistencyProofOut, responses=NOT_FOUND,
            summary="A consistency proof between two signed checkpoints")
def consistency(store: StoreDep, user: CurrentUser, workspace_id: WorkspaceId,
                from_size: Annotated[int, Query(alias="from", ge=1, le=2**62, description="The older size")],
                to_size: Annotated[int, Query(alias="to", ge=1, le=2**62, description="The newer size")]
                ) -> ConsistencyProofOut:
    """Proves that the log at ``to`` extends the log at ``from`` (both sizes of signed checkpoints)."""
    user.require_reader(workspace_id)
    if from_size > to_size:
        raise InvalidFilter("from must not be larger than to: a log only grows.")
    old, new = _checkpoint(store, workspace_id, from_size), _checkpoint(store, workspace_id, to_size)
    proof = consistency_proof(store.reader(workspace_id), from_size, to_size, store.stride)
    return ConsistencyProofOut(from_size=from_size, to_size=to_size, proof=[h.hex() for h in proof],
                               from_checkpoint=_out(old), to_checkpoint=_out(new))


@router.get(f"{WS_PREFIX}/log.jsonl", response_class=StreamingResponse, responses={
    **NOT_FOUND, 200: {"description": "One line per leaf, in leaf order", "content": {"application/x-ndjson": {}}}},
    summary="The log export: every event in leaf order, for offline verification")
def log_export(ctx: ContextDep, user: CurrentUser, workspace_id: WorkspaceId,
               tree_size: TreeSize = None) -> StreamingResponse:
    """The events of leaves 0..tree_size-1, each as the JSONL export writes it plus log_index and leaf_hash."""
    user.require_reader(workspace_id)
    with ctx.pages.lease() as client:  # only for the checkpoint: the stream reads on its own client
        cp = _checkpoint(LogStore(client, tables_for(ctx.settings)), workspace_id, tree_size)
    return StreamingResponse(
        log_lines(ctx.settings, workspace_id, cp.tree_size), media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="audit-log-{workspace_id}-{cp.tree_size}.jsonl"'},
    )
