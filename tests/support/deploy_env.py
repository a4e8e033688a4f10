"""Helpers for the deploy/ tests: map AUDITLOG_* variables onto the settings object."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel

from config.settings import Settings

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")


def settings_field_exists(variable: str) -> bool:
    """Whether ``AUDITLOG_A__B`` names a real field (pydantic-settings ignores unknown ones silently)."""
    if not variable.startswith("AUDITLOG_"):
        return False
    model: type[BaseModel] = Settings
    parts = variable.removeprefix("AUDITLOG_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if i < len(parts) - 1:
            annotation = field.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose-style ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` against ``env``."""

    def one(match: re.Match[str]) -> str:
        name, kind, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if kind == "-":
            return arg
        raise KeyError(f"{name} is required: {arg}")

    return _INTERPOLATION.sub(one, value)
