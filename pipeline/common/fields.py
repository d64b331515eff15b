"""Attributes of an object under their own names: for the dicts and constructors whose keys are the names
of the fields they copy (`fields_of(variant, "name", "platform")` == {"name": variant.name, ...})."""

from __future__ import annotations

from typing import Any


def fields_of(obj: object, *names: str) -> dict[str, Any]:
    """{name: obj.name} for each of `names`, in their order (JSON output keeps it)."""
    return {name: getattr(obj, name) for name in names}
