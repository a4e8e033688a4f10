"""The action catalog: which category and target kind each action belongs to.

The catalog is data (``catalog.json``) so that product people can review it and
the UI can show it; the producer takes category and target kind from it so
that callers cannot file an action under the wrong chip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from schemas.errors import UnknownAction


@dataclass(frozen=True, slots=True)
class Label:
    key: str
    label: str


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    category: str
    target_kind: str
    description: str


@dataclass(frozen=True)
class Catalog:
    categories: tuple[Label, ...]
    target_kinds: tuple[Label, ...]
    actions: dict[str, ActionSpec]

    def action(self, name: str) -> ActionSpec:
        """The spec of ``name``; raises UnknownAction for a name not in the catalog."""
        try:
            return self.actions[name]
        except KeyError:
            raise UnknownAction(name) from None

    @property
    def category_keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.categories)

    @property
    def target_kind_keys(self) -> frozenset[str]:
        return frozenset(k.key for k in self.target_kinds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "categories": [{"key": c.key, "label": c.label} for c in self.categories],
            "target_kinds": [{"key": k.key, "label": k.label} for k in self.target_kinds],
            "actions": [
                {
                    "name": a.name,
                    "category": a.category,
                    "target_kind": a.target_kind,
                    "description": a.description,
                }
                for a in self.actions.values()
            ],
        }


def parse_catalog(doc: dict[str, Any]) -> Catalog:
    """Build a Catalog from its JSON document, refusing dangling references."""
    categories = tuple(Label(c["key"], c["label"]) for c in doc["categories"])
    kinds = tuple(Label(k["key"], k["label"]) for k in doc["target_kinds"])
    category_keys = {c.key for c in categories}
    kind_keys = {k.key for k in kinds}
    actions: dict[str, ActionSpec] = {}
    for raw in doc["actions"]:
        spec = ActionSpec(raw["name"], raw["category"], raw["target_kind"], raw.get("description", ""))
        if spec.name in actions:
            raise ValueError(f"action {spec.name} is listed twice in the catalog")
        if spec.category not in category_keys:
            raise ValueError(f"action {spec.name} names unknown category {spec.category!r}")
        if spec.target_kind not in kind_keys:
            raise ValueError(f"action {spec.name} names unknown target kind {spec.target_kind!r}")
        actions[spec.name] = spec
    return Catalog(categories, kinds, actions)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped with this build."""
    text = resources.files("schemas").joinpath("catalog.json").read_text(encoding="utf-8")
    return parse_catalog(json.loads(text))
