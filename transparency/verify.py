"""Offline verification: a JSONL log export + signed checkpoint(s) + public key(s), nothing else.

What a customer's auditor runs (``auditlog verify --export … --checkpoint … --key …``);
docs/verification.md describes the same procedure for re-implementation.

The export to verify is the workspace's *log export* (``GET …/audit/log.jsonl``,
``auditlog export-log``): one line per leaf, in leaf order, each the event as
the JSONL export returns it plus two keys the leaf does not cover:
``log_index`` (the leaf's position) and ``leaf_hash`` (hex, what the log
stored). Lines without ``log_index`` are taken in file order.

Steps: check every checkpoint's Ed25519 signature with the trusted keys;
place each line at its ``log_index`` (a repeated index is an added line, a
missing one a removed line); recompute each leaf hash from the line (a line
whose recomputed hash differs from its ``leaf_hash`` was edited); fold the
leaves into the RFC 9162 tree and compare its root at every checkpoint size
with the signed root. A root that does not match without a named line (the
editor also rewrote ``leaf_hash``) is narrowed to the leaves between the
last checkpoint that matched and the first that did not.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transparency.canonical import leaf_bytes, uncovered_keys
from transparency.checkpoint import Checkpoint, Keyring
from transparency.errors import InvalidCanonicalForm, InvalidCheckpoint
from transparency.merkle import Frontier, leaf_hash

# Metadata keys a log export line carries besides the event; not covered by the leaf.
LINE_METADATA = ("log_index", "leaf_hash")


@dataclass(frozen=True, order=True)
class Divergence:
    """One thing that is wrong, located as precisely as the evidence allows."""

    leaf_index: int | None
    event_id: str | None
    reason: str
    line: int | None = None

    def describe(self) -> str:
        where = []
        if self.leaf_index is not None:
            where.append(f"leaf {self.leaf_index}")
        if self.event_id:
            where.append(f"event {self.event_id}")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{', '.join(where) or 'log'}: {self.reason}"


@dataclass
class Report:
    """The outcome of a verification: ``ok`` only when nothing diverged."""

    workspace_id: str
    tree_size: int = 0
    leaves_checked: int = 0
    checkpoints_checked: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.divergences

    @property
    def first(self) -> Divergence | None:
        """The first divergence in log order (those without a leaf index last)."""
        if not self.divergences:
            return None
        return min(self.divergences, key=lambda d: (d.leaf_index is None, d.leaf_index or 0, d.line or 0))

    def summary(self) -> str:
        if self.ok:
            return (f"OK: {self.workspace_id} log verified up to size {self.tree_size} "
                    f"({self.leaves_checked} leaves, {self.checkpoints_checked} signed checkpoint(s))")
        first = self.first
        assert first is not None
        return (f"FAILED: {self.workspace_id}: {len(self.divergences)} divergence(s); first: {first.describe()}")


@dataclass
class _Leaf:
    index: int
    event_id: str
    hash: bytes
    line: int


def check_checkpoints(checkpoints: Sequence[Checkpoint], keyring: Keyring, workspace_id: str,
                      report: Report) -> list[Checkpoint]:
    """The checkpoints whose signatures verify, by size; the others become divergences."""
    good: list[Checkpoint] = []
    for cp in checkpoints:
        if cp.workspace_id != workspace_id:
            report.divergences.append(Divergence(None, None, f"a checkpoint of workspace {cp.workspace_id} was "
                                                 f"given for {workspace_id}"))
            continue
        try:
            keyring.verify(cp)
        except InvalidCheckpoint as err:
            report.divergences.append(Divergence(None, None, str(err)))
            continue
        good.append(cp)
    good.sort(key=lambda c: (c.tree_size, c.timestamp))
    for a, b in itertools.pairwise(good):
        if a.tree_size == b.tree_size and a.root_hash != b.root_hash:
            report.divergences.append(Divergence(None, None, f"two signed checkpoints at size {a.tree_size} with "
                                                 "different roots: the log was forked"))
    report.checkpoints_checked = len(good)
    return good


def check_roots(leaf_hashes: Iterable[tuple[int, str, bytes]], checkpoints: Sequence[Checkpoint],
                report: Report, named: set[int]) -> int:
    """Fold leaves (in index order, contiguous from 0) and compare the root at every checkpoint size.

    ``named`` holds leaf indexes already reported: a root mismatch is only
    reported on its own when no leaf in its bracket was named. Returns how
    many leaves were folded.
    """
    frontier = Frontier()
    pending = list(checkpoints)
    last_good = 0
    ids: dict[int, str] = {}
    for index, event_id, h in leaf_hashes:
        while pending and pending[0].tree_size <= frontier.size:
            last_good = _compare(frontier, pending.pop(0), last_good, ids, report, named)
        frontier.append(h)
        if pending and index >= last_good:
            ids[index] = event_id
    while pending and pending[0].tree_size <= frontier.size:
        last_good = _compare(frontier, pending.pop(0), last_good, ids, report, named)
    for cp in pending:
        report.divergences.append(Divergence(
            frontier.size, None, f"the signed checkpoint covers {cp.tree_size} leaves but only {frontier.size} "
            f"are present: leaves {frontier.size}..{cp.tree_size - 1} were removed"))
        break
    return frontier.size


def _compare(frontier: Frontier, cp: Checkpoint, last_good: int, ids: dict[int, str], report: Report,
             named: set[int]) -> int:
    if frontier.root() == cp.root_hash:
        ids.clear()
        report.tree_size = max(report.tree_size, cp.tree_size)
        return cp.tree_size
    if not any(last_good <= i < cp.tree_size for i in named):
        report.divergences.append(Divergence(
            last_good, ids.get(last_good),
            f"the leaves do not hash to the root signed at size {cp.tree_size}: an event among leaves "
            f"{last_good}..{cp.tree_size - 1} was edited, removed, added or moved"))
    return last_good


def verify_export(lines: Iterable[bytes | str], checkpoints: Sequence[Checkpoint], keyring: Keyring) -> Report:
    """Verify a log export against signed checkpoints of one workspace (see the module docstring).

    Args:
        lines: the JSONL lines (bytes or text), in any order if they carry ``log_index``.
        checkpoints: one or more checkpoints of the workspace; each is checked.
        keyring: the public keys to trust.
    """
    if not checkpoints:
        raise InvalidCheckpoint("at least one checkpoint is needed to verify against")
    workspace_id = checkpoints[0].workspace_id
    report = Report(workspace_id)
    good = check_checkpoints(checkpoints, keyring, workspace_id, report)
    by_index: dict[int, _Leaf] = {}
    positions: dict[str, int] = {}
    unordered: list[_Leaf] = []
    uncovered: set[str] = set()
    named: set[int] = set()
    for line_no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            event: Any = json.loads(text)
        except json.JSONDecodeError as err:
            report.divergences.append(Divergence(None, None, f"not a JSON line: {err}", line_no))
            continue
        if not isinstance(event, dict):
            report.divergences.append(Divergence(None, None, "not a JSON object", line_no))
            continue
        event_id = str(event.get("id", ""))
        declared_index = event.get("log_index")
        if declared_index is not None and (not isinstance(declared_index, int) or declared_index < 0):
            report.divergences.append(Divergence(None, event_id, f"log_index {declared_index!r} is not a leaf index",
                                                 line_no))
            continue
        if event.get("workspace_id") != workspace_id:
            report.divergences.append(Divergence(declared_index, event_id, f"the line belongs to workspace "
                                                 f"{event.get('workspace_id')!r}, not {workspace_id}", line_no))
            continue
        uncovered.update(k for k in uncovered_keys(event) if k not in LINE_METADATA)
        try:
            h = leaf_hash(leaf_bytes(event))
        except InvalidCanonicalForm as err:
            report.divergences.append(Divergence(declared_index, event_id, f"cannot form the leaf: {err}", line_no))
            continue
        leaf = _Leaf(declared_index if declared_index is not None else -1, event_id, h, line_no)
        if declared_index is None:
            unordered.append(leaf)
            continue
        if declared_index in by_index:
            other = by_index[declared_index]
            report.divergences.append(Divergence(
                declared_index, event_id, f"a second line at this leaf (line {other.line} has event "
                f"{other.event_id}): a line was added", line_no))
            named.add(declared_index)
            continue
        by_index[declared_index] = leaf
        declared_hash = event.get("leaf_hash")
        if isinstance(declared_hash, str) and declared_hash != h.hex():
            report.divergences.append(Divergence(
                declared_index, event_id, "the line does not hash to the leaf the log stored for it: "
                "the event was edited", line_no))
            named.add(declared_index)
    if unordered:
        if by_index:
            report.divergences.append(Divergence(None, unordered[0].event_id, "a line without log_index among "
                                                 "lines that have one: a line was added", unordered[0].line))
        else:
            for i, leaf in enumerate(unordered):
                leaf.index = i
                by_index[i] = leaf
    for leaf in sorted(by_index.values(), key=lambda x: x.index):
        if leaf.event_id in positions:
            report.divergences.append(Divergence(
                leaf.index, leaf.event_id, f"the same event is also at leaf {positions[leaf.event_id]}: "
                "an event is logged once", leaf.line))
            named.add(leaf.index)
        else:
            positions[leaf.event_id] = leaf.index
    ordered = [by_index[i] for i in sorted(by_index)]
    contiguous: list[tuple[int, str, bytes]] = []
    for expected, leaf in enumerate(ordered):
        if leaf.index != expected:
            before = ordered[expected - 1].event_id if expected else "the start"
            report.divergences.append(Divergence(
                expected, None, f"leaf {expected} is missing (after event {before}, before event "
                f"{leaf.event_id} at leaf {leaf.index}): a line was removed"))
            named.add(expected)
            break
        contiguous.append((leaf.index, leaf.event_id, leaf.hash))
    report.leaves_checked = check_roots(contiguous, good, report, named)
    largest = good[-1].tree_size if good else 0
    beyond = [leaf for leaf in ordered if leaf.index >= largest]
    if beyond:
        report.divergences.append(Divergence(
            beyond[0].index, beyond[0].event_id, f"past the signed size {largest}: no checkpoint covers this "
            "line (added, or verify against a newer checkpoint)", beyond[0].line))
    if uncovered:
        report.notes.append(f"keys not covered by the leaves (not verified): {', '.join(sorted(uncovered))}")
    return report


def load_checkpoints(text: str) -> list[Checkpoint]:
    """One checkpoint object, a JSON list of them, or ``{"checkpoints": [...]}`` (the API's list answer)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidCheckpoint(f"the checkpoint file is not JSON: {err}") from err
    if isinstance(data, dict) and "checkpoints" in data:
        data = data["checkpoints"]
    items = data if isinstance(data, list) else [data]
    return [Checkpoint.from_json(item) for item in items]
