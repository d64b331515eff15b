"""Loading and validating pipelines.yaml: schema, YAML with positions, templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.config.loader import LoadedConfig, load_config

__all__ = ["LoadedConfig", "load_config"]


def __getattr__(name: str) -> Any:
    """The loader (pydantic and the models) loads on first use, not with the package: shell completion
    reads the declared names through pipeline.config.names, which needs only the YAML parser."""
    if name in __all__:
        from pipeline.config import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
